"""pop3d driven by real clients: Python poplib (USER/PASS, STLS, implicit
TLS, AUTH PLAIN), curl pop3://, fetchmail (keep and delete), mutt, xinetd;
Dovecot runs the core scenario as a reference; over
Maildir and mbox; exclusive access, UPDATE only after QUIT, bad input."""

import base64
import collections
import fcntl
import os
import poplib
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, Xinetd, binary, descendants, free_port, need, need_reference, wait_port


MESSAGES = [
    b"From: alice@example.org\nSubject: one\n\nHello.\n.leading dot\n..two dots\n"
    b"From the start\n>From quoted\n.\n",
    b"From: bob@example.org\nSubject: two\n\nline 1\nline 2\nline 3\nline 4\n",
    b"From: carol@example.org\r\nSubject: three (CRLF stored)\r\n\r\nbody\r\nno final newline",
]


def wire(msg):
    """What RETR must send for a stored message, before dot-stuffing."""
    lines = msg.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((l if l.endswith(b"\r") else l + b"\r") + b"\n" for l in lines)


def put_maildir(lab, messages, user="demo", sizes=True):
    """Messages as a delivery agent leaves them (names with ,S= and ,W= when
    `sizes`, else bare names that pop3d must measure)."""
    md = lab.users[user] / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(messages):
        base = f"{1700000000 + i}.M{i}P{os.getpid()}Q{i}.test"
        name = f"{base},S={len(m)},W={len(wire(m))}" if sizes else base
        (md / "new" / name).write_bytes(m)
    lab.chown_tree(md)
    return md


def mbox_text(messages, sender="someone@example.org"):
    out = []
    for m in messages:
        out.append(f"From {sender} Thu Jan  1 00:00:00 2026\n".encode())
        for line in m.split(b"\n")[:-1] if m.endswith(b"\n") else m.split(b"\n"):
            if line.lstrip(b">").startswith(b"From "):
                line = b">" + line
            out.append(line + b"\n")
        out.append(b"\n")
    return b"".join(out)


def put_mbox(lab, messages, user="demo"):
    path = lab.users[user] / "mbox"
    path.write_bytes(mbox_text(messages))
    os.chmod(path, 0o600)
    lab.chown_tree(lab.users[user])
    return path


def joined(lines):
    """poplib's lines (already un-dot-stuffed) back into wire form."""
    return b"".join(l + b"\r\n" for l in lines)


# Where a server listens, for servers started without the daemon fixture.
Addr = collections.namedtuple("Addr", "host port")


def login(d, user="demo", password="demo"):
    p = poplib.POP3(d.host, d.port, timeout=20)
    p.user(user)
    p.pass_(password)
    return p


def login_when_free(d, timeout=10):
    """Log in once the previous session has let go of the maildrop."""
    deadline = time.time() + timeout
    while True:
        try:
            return login(d)
        except poplib.error_proto as e:
            if b"IN-USE" not in e.args[0] or time.time() > deadline:
                raise
            time.sleep(0.1)


def session_pids(d):
    """The account processes of the sessions: children of the monitors the
    master forked (one per connection)."""
    return [pid for pid in descendants(d.pid, depth=2)]


def check_messages(p, messages):
    count, total = p.stat()
    assert count == len(messages)
    assert total == sum(len(wire(m)) for m in messages)
    resp, listing, _ = p.list()
    for i, (line, m) in enumerate(zip(listing, messages), 1):
        assert line == f"{i} {len(wire(m))}".encode()
    for i, m in enumerate(messages, 1):
        resp, lines, octets = p.retr(i)
        assert resp.startswith(b"+OK %d octets" % len(wire(m))), resp
        assert joined(lines) == wire(m)
        assert octets == len(wire(m))


@pytest.fixture(params=["maildir", "mbox"])
def store(request, lab):
    """(mail_location option, put function) for each mailbox format."""
    if request.param == "maildir":
        return "mail_location=maildir:~/Maildir", put_maildir
    return "mail_location=mbox:~/mbox", put_mbox


def retrieve_delete_scenario(d, messages=MESSAGES):
    """The core poplib scenario, also run against Dovecot to prove it."""
    p = login(d)
    check_messages(p, messages)
    uids = p.uidl()[1]
    assert len(set(u.split()[1] for u in uids)) == 3
    # TOP: header, blank line, n body lines.
    lines = p.top(2, 2)[1]
    assert lines == [b"From: bob@example.org", b"Subject: two", b"", b"line 1", b"line 2"]
    assert p.dele(2).startswith(b"+OK")
    with pytest.raises(poplib.error_proto, match="deleted"):
        p.retr(2)
    assert p.stat()[0] == 2
    assert p.quit().startswith(b"+OK")
    # UPDATE happened; UIDs of the others are unchanged.
    p = login_when_free(d)
    assert p.stat()[0] == 2
    assert p.uidl()[1] == [b"1 " + uids[0].split()[1], b"2 " + uids[2].split()[1]]
    check_messages(p, [messages[0], messages[2]])
    p.quit()


def test_poplib_user_pass_retrieve_delete(lab, daemon, store):
    opt, put = store
    put(lab, MESSAGES)
    d = daemon("pop3d", opt)
    retrieve_delete_scenario(d)
    assert "retrieved" in d.log() and "deleted 1" in d.log()


class Dovecot:
    """Dovecot's POP3 on the lab's passwd_file and Maildirs (reference)."""

    def __init__(self, lab, mail_location="maildir:~/Maildir"):
        self.host, self.port = "127.0.0.1", free_port()
        base = lab.dir / "dovecot"
        (base / "run").mkdir(parents=True)
        conf = base / "dovecot.conf"
        users = ""
        if not IS_ROOT:
            import pwd
            me = pwd.getpwuid(os.getuid()).pw_name
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = {mail_location}
passdb {{
  driver = passwd-file
  args = {lab.passwd_file}
}}
userdb {{
  driver = passwd-file
  args = {lab.passwd_file}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
{users}""")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_reference_dovecot_same_scenario(lab, store):
    """The scenario above, against Dovecot: proves the test, not pop3d."""
    need_reference(shutil.which("dovecot"), "dovecot-pop3d")
    opt, put = store
    messages = MESSAGES
    if "mbox" in opt:
        # Dovecot serves mboxrd-quoted ">From " lines still quoted, where
        # pop3d undoes the quoting it (and smtpd) added: leave them out.
        messages = [b"\n".join(l for l in m.split(b"\n") if b"From " not in l[:7])
                    for m in MESSAGES]
    put(lab, messages)
    location = "maildir:~/Maildir" if "maildir" in opt else "mbox:~/mail:INBOX=~/mbox"
    d = Dovecot(lab, location)
    try:
        retrieve_delete_scenario(d, messages)
    finally:
        d.stop()


def test_rset_undeletes(lab, daemon, store):
    opt, put = store
    put(lab, MESSAGES)
    d = daemon("pop3d", opt)
    p = login(d)
    p.dele(1)
    p.dele(3)
    assert p.stat()[0] == 1
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 3
    p.quit()
    assert login(d).stat()[0] == 3


def test_maildir_new_moves_to_cur_and_uidls_stay(lab, daemon):
    md = put_maildir(lab, MESSAGES, sizes=False)
    d = daemon("pop3d")
    p = login(d)
    first = p.uidl()[1]
    check_messages(p, MESSAGES)
    p.quit()
    assert not os.listdir(md / "new")
    cur = sorted(os.listdir(md / "cur"))
    assert len(cur) == 3 and all(n.endswith(":2,S") for n in cur), cur
    p = login(d)
    assert p.uidl()[1] == first
    p.quit()


def test_mbox_delivery_during_session_is_kept(lab, daemon):
    path = put_mbox(lab, MESSAGES)
    d = daemon("pop3d", "mail_location=mbox:~/mbox")
    p = login(d)
    assert p.stat()[0] == 3
    p.dele(1)
    p.dele(2)
    # Another program appends a message the Debian way while we are in.
    late = b"From: late@example.org\nSubject: late\n\nFrom the late one\n"
    lock = str(path) + ".lock"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    with open(path, "ab") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        f.write(mbox_text([late]))
        f.flush()
        os.fsync(f.fileno())
        fcntl.lockf(f, fcntl.LOCK_UN)
    os.close(fd)
    os.unlink(lock)
    assert p.quit().startswith(b"+OK")
    p = login(d)
    check_messages(p, [MESSAGES[2], late])
    p.quit()
    text = path.read_bytes()
    assert text.startswith(b"From ") and b"\n>From the late one\n" in text
    assert not os.path.exists(lock)


def test_mbox_waits_for_a_held_dotlock(lab, daemon):
    path = put_mbox(lab, MESSAGES)
    d = daemon("pop3d", "mail_location=mbox:~/mbox")
    lock = str(path) + ".lock"
    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    p = poplib.POP3(d.host, d.port, timeout=20)
    p.user("demo")
    started = time.time()
    p._putcmd("PASS demo")
    time.sleep(1.5)
    os.close(fd)
    os.unlink(lock)
    assert p._getresp().startswith(b"+OK")
    assert time.time() - started >= 1.4
    p.quit()
    # The fcntl lock, held by another process, is waited for as well.
    holder = subprocess.Popen(
        ["python3", "-c", "import fcntl,sys,time\n"
         "f=open(sys.argv[1],'r+b'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True)\n"
         "time.sleep(1.5)", str(path)], stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"locked\n"
    started = time.time()
    p = login_when_free(d)
    assert time.time() - started >= 1.0
    assert p.stat()[0] == 3
    p.quit()
    holder.wait()


@pytest.mark.skipif(not IS_ROOT, reason="needs a directory the session user cannot write")
def test_mbox_in_a_read_only_directory_keeps_mail(lab, daemon):
    spool = lab.dir / "spool"  # like Debian's /var/mail: not writable by users
    spool.mkdir(mode=0o755)
    path = spool / "demo"
    path.write_bytes(mbox_text(MESSAGES))
    os.chown(path, lab.uid, lab.gid)
    os.chmod(path, 0o600)
    before = path.read_bytes()
    d = daemon("pop3d", f"mail_location=mbox:{spool}/%u")
    p = login(d)
    check_messages(p, MESSAGES)
    p.dele(1)
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p.quit()
    assert path.read_bytes() == before
    assert "relying on the fcntl lock alone" in d.log()


def test_no_update_without_quit(lab, daemon, store):
    opt, put = store
    put(lab, MESSAGES)
    d = daemon("pop3d", opt, "idle_timeout=2")
    # A dropped connection.
    p = login(d)
    p.dele(1)
    p.sock.close()
    # A killed session process.
    p = login_when_free(d)
    p.dele(2)
    pids = session_pids(d)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # An idle timeout.
    p = login_when_free(d)
    p.dele(3)
    time.sleep(3.5)
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        p.stat()
    p = login_when_free(d)
    assert p.stat()[0] == 3
    p.quit()
    assert "autologout" in d.log()


def test_message_removed_by_another_program(lab, daemon):
    md = put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    p = login(d)
    # A mail reader flags message 1 (rename) and expunges message 2.
    names = sorted(os.listdir(md / "new"))
    os.rename(md / "new" / names[0], md / "cur" / (names[0] + ":2,F"))
    os.unlink(md / "new" / names[1])
    assert joined(p.retr(1)[1]) == wire(MESSAGES[0])
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p.retr(2)
    assert joined(p.retr(3)[1]) == wire(MESSAGES[2])
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    assert sorted(os.listdir(md / "cur")) == sorted([names[0] + ":2,FS", names[2] + ":2,S"])
    assert "deleted 0" in d.log()


def test_second_session_gets_in_use(lab, daemon, store):
    opt, put = store
    put(lab, MESSAGES)
    d = daemon("pop3d", opt)
    p = login(d)
    q = poplib.POP3(d.host, d.port, timeout=20)
    q.user("demo")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        q.pass_("demo")
    p.quit()
    q = login(d)
    assert q.stat()[0] == 3
    q.quit()


@pytest.mark.skipif(not IS_ROOT, reason="privilege drop needs root")
def test_session_runs_as_the_mailbox_owner(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    p = login(d)
    p.noop()
    pids = session_pids(d)
    assert pids
    for pid in pids:
        status = open(f"/proc/{pid}/status").read()
        uids = next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1:]
        gids = next(l for l in status.splitlines() if l.startswith("Gid:")).split()[1:]
        assert uids == [str(lab.uid)] * 4 and gids == [str(lab.gid)] * 4
    p.quit()


def test_bad_password_gets_auth_code(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    p = poplib.POP3(d.host, d.port, timeout=20)
    p.user("demo")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_("wrong")
    p.user("demo")
    assert p.pass_("demo").startswith(b"+OK")
    p.quit()


def test_capa_and_pipelining(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    p = poplib.POP3(d.host, d.port, timeout=20)
    caps = p.capa()
    for c in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "USER", "SASL"):
        assert c in caps
    assert caps["SASL"] == ["PLAIN"]
    assert "STLS" not in caps  # no certificate configured
    p.quit()
    # Everything in one write: replies come back in order.
    with d.connect() as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"USER demo\r\nPASS demo\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nRETR 2\r\nNOOP\r\n"
                  b"RSET\r\nQUIT\r\n")
        got = [f.readline() for _ in range(5)]
        assert got[0].startswith(b"+OK") and got[1].startswith(b"+OK")
        assert got[2] == b"+OK 3 %d\r\n" % sum(len(wire(m)) for m in MESSAGES)
        assert got[3].startswith(b"+OK") and got[4].startswith(b"-ERR")
        assert f.readline().startswith(b"+OK %d octets" % len(wire(MESSAGES[1])))
        body = b""
        while True:
            line = f.readline()
            if line == b".\r\n":
                break
            body += line
        assert body == wire(MESSAGES[1])
        assert f.readline() == b"+OK\r\n"
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK Bye")


def test_bad_input_never_crashes(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    with d.connect() as s:
        f = s.makefile("rb")
        f.readline()

        def cmd(b):
            s.sendall(b + b"\r\n")
            return f.readline()

        assert cmd(b"STAT").startswith(b"-ERR")  # wrong state
        assert cmd(b"RETR 1").startswith(b"-ERR")
        assert cmd(b"A" * 100_000).startswith(b"-ERR")
        assert cmd(b"US\0ER demo").startswith(b"-ERR")
        assert cmd(b"\xff\xfe\xfd").startswith(b"-ERR")
        assert cmd(b"").startswith(b"-ERR")
        assert cmd(b"USER demo").startswith(b"+OK")
        assert cmd(b"PASS demo").startswith(b"+OK")
        for bad in (b"RETR 0", b"RETR 4", b"RETR 99999999999999999999999999", b"DELE -1",
                    b"LIST 4294967297", b"TOP 1", b"TOP x y", b"UIDL 0", b"RETR", b"USER x",
                    b"PASS x", b"STLS", b"AUTH PLAIN", b"XYZZY", b"LIST 1 2"):
            assert cmd(bad).startswith(b"-ERR"), bad
        assert cmd(b"NOOP") == b"+OK\r\n"
        assert cmd(b"STAT").startswith(b"+OK 3 ")
        assert cmd(b"QUIT").startswith(b"+OK")
    assert d.alive()


def test_auth_plain(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    p = poplib.POP3(d.host, d.port, timeout=20)
    token = base64.b64encode(b"\0demo\0demo").decode()
    assert p._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
    assert p.stat()[0] == 3
    p.quit()
    # Without an initial response: the "+ " continuation.
    p = poplib.POP3(d.host, d.port, timeout=20)
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0].startswith(b"+")
    assert p._shortcmd(token).startswith(b"+OK")
    p.quit()
    p = poplib.POP3(d.host, d.port, timeout=20)
    bad = base64.b64encode(b"\0demo\0nope").decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p._shortcmd("AUTH PLAIN " + bad)
    p.quit()


def tls_client():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_stls_and_cleartext_refusal(lab, daemon, tls_files):
    cert, key = tls_files
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d", f"tls_cert={cert}", f"tls_key={key}", "cleartext_login=no")
    p = poplib.POP3(d.host, d.port, timeout=20)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps
    with pytest.raises(poplib.error_proto, match="STLS"):
        p.user("demo")
    p.stls(context=tls_client())
    assert "STLS" not in p.capa() and "USER" in p.capa()
    p.user("demo")
    p.pass_("demo")
    check_messages(p, MESSAGES)
    p.quit()


def test_implicit_tls_port(lab, daemon, tls_files):
    cert, key = tls_files
    put_maildir(lab, MESSAGES)
    port = free_port()
    d = daemon("pop3d", f"tls_cert={cert}", f"tls_key={key}",
               f"tls_listen=127.0.0.1:{port}")
    p = poplib.POP3_SSL("127.0.0.1", port, context=tls_client(), timeout=20)
    assert "STLS" not in p.capa()
    token = base64.b64encode(b"\0demo\0demo").decode()
    assert p._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
    check_messages(p, MESSAGES)
    p.quit()
    assert d.alive()


def test_huge_message_constant_memory(lab, daemon, store):
    opt, put = store
    line = b"x" * 998 + b"\n"
    big = b"Subject: big\n\n" + line * 40_000 + b"y" * 5_000_000 + b"\n"  # 45 MB, one 5 MB line
    put(lab, [big])
    d = daemon("pop3d", opt)
    with d.connect() as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"USER demo\r\nPASS demo\r\nLIST 1\r\n")
        f.readline()
        f.readline()
        assert f.readline() == b"+OK 1 %d\r\n" % len(wire(big))
        s.sendall(b"RETR 1\r\n")
        assert f.readline() == b"+OK %d octets\r\n" % len(wire(big))
        got = 0
        while True:
            l = f.readline()
            if l == b".\r\n":
                break
            got += len(l)
        assert got == len(wire(big))
        pid = session_pids(d)[0]
        status = open(f"/proc/{pid}/status").read()
        hwm = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
        assert hwm < 20_000, f"session peak RSS {hwm} kB for a 45 MB message"
        s.sendall(b"QUIT\r\n")


def test_inetd_mode(lab, daemon):
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d", mode="inetd")
    p = login(d)
    check_messages(p, MESSAGES)
    p.quit()


def test_curl_list_and_retrieve(lab, daemon):
    curl = need("curl")
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    url = f"pop3://demo:demo@127.0.0.1:{d.port}/"
    r = subprocess.run([curl, "-sS", url], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{i} {len(wire(m))}".encode()
                                     for i, m in enumerate(MESSAGES, 1)]
    r = subprocess.run([curl, "-sS", url + "2"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == wire(MESSAGES[1])


def test_curl_stls_and_pop3s(lab, daemon, tls_files):
    curl = need("curl")
    cert, key = tls_files
    put_maildir(lab, MESSAGES)
    port = free_port()
    d = daemon("pop3d", f"tls_cert={cert}", f"tls_key={key}", f"tls_listen=127.0.0.1:{port}",
               "cleartext_login=no")
    r = subprocess.run([curl, "-sS", "--ssl-reqd", "-k", f"pop3://demo:demo@127.0.0.1:{d.port}/1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == wire(MESSAGES[0])
    r = subprocess.run([curl, "-sS", "-k", f"pop3s://demo:demo@127.0.0.1:{port}/"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3
    # Without TLS the password is refused.
    r = subprocess.run([curl, "-sS", f"pop3://demo:demo@127.0.0.1:{d.port}/"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0


def fetchmail_run(lab, d, keep, tls=False):
    fetchmail = need("fetchmail")
    out = lab.dir / "fetched.mbox"
    rc = lab.dir / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 protocol pop3 port {d.port} uidl\n'
        f'  user "demo" password "demo" is root here\n'
        f'  {"keep" if keep else "nokeep"} fetchall\n'
        f"  mda \"/bin/sh -c 'cat >> {out}'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(lab.dir), FETCHMAILHOME=str(lab.dir))
    r = subprocess.run([fetchmail, "-f", str(rc), "-i", str(lab.dir / "ids"), "--nosyslog",
                        "--nodetach", "-v"]
                       + (["--sslproto", "auto", "--nosslcertck"] if tls else ["--sslproto", ""]),
                       capture_output=True, text=True, timeout=60, env=env)
    return r, out


def test_fetchmail_keep_then_delete(lab, daemon, tls_files):
    need("fetchmail")
    cert, key = tls_files
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d", f"tls_cert={cert}", f"tls_key={key}")
    # keep, over STLS
    r, out = fetchmail_run(lab, d, keep=True, tls=True)
    assert "STLS" in r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_bytes()
    assert b"Subject: one" in text and b"Subject: two" in text and b"Subject: three" in text
    assert login_count(d) == 3
    out.unlink()
    # delete, in the clear
    r, out = fetchmail_run(lab, d, keep=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes().count(b"Subject: ") == 3
    assert login_count(d) == 0


def login_count(d):
    p = login_when_free(d)
    n = p.stat()[0]
    p.quit()
    return n


def test_xinetd(lab):
    put_maildir(lab, MESSAGES)
    with Xinetd(lab, binary("pop3d"), f"-o passwd_file={lab.passwd_file} -o log=syslog") as x:
        time.sleep(0.2)
        c = poplib.POP3("127.0.0.1", x.port, timeout=20)
        c.user("demo")
        c.pass_("demo")
        check_messages(c, MESSAGES)
        c.dele(1)
        c.quit()
        c = login_when_free(Addr("127.0.0.1", x.port))
        assert c.stat()[0] == 2
        c.quit()


def run_mutt(lab, port, keys, want):
    """Drive mutt on a pseudo-terminal: open the POP3 mailbox, wait until the
    index shows `want`, type `keys`, and wait for mutt to exit."""
    import pty
    import select
    mutt = need("mutt")
    rc = lab.dir / "muttrc"
    rc.write_text(f"""set pop_user = demo
set pop_pass = demo
set ssl_starttls = no
set ssl_force_tls = no
set delete = yes
set move = no
set confirmappend = no
set header_cache = ""
set message_cachedir = ""
set mbox_type = mbox
set folder = {lab.dir}
set record = ""
set spoolfile = "pop://demo@127.0.0.1:{port}/"
""")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="vt100", HOME=str(lab.dir), LINES="40", COLUMNS="132")
        os.execv(mutt, [mutt, "-n", "-F", str(rc), "-f", f"pop://demo@127.0.0.1:{port}/"])
    screen = b""

    def pump(until, timeout):
        nonlocal screen
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return False
                if not chunk:
                    return False
                screen += chunk
                if until and until(screen):
                    return True
        return False

    try:
        assert pump(lambda s: all(w in s for w in want), 20), screen.decode(errors="replace")
        for k in keys:
            os.write(fd, k)
            pump(None, 0.5)
        end = time.time() + 20
        while time.time() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return screen
            pump(None, 0.2)
        raise AssertionError("mutt did not exit: " + screen.decode(errors="replace")[-2000:])
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test_mutt_reads_and_deletes(lab, daemon):
    need("mutt")
    put_maildir(lab, MESSAGES)
    d = daemon("pop3d")
    # Read message 1 (Enter), back to the index, quit without deleting.
    run_mutt(lab, d.port, [b"\r", b"q", b"q"], [b"one", b"two", b"three"])
    assert login_count(d) == 3
    # Delete message 1 and quit: mutt purges it through DELE and QUIT.
    run_mutt(lab, d.port, [b"d", b"q"], [b"one", b"two", b"three"])
    p = login_when_free(d)
    assert p.stat()[0] == 2
    assert b"Subject: one" not in joined(p.top(1, 0)[1])
    p.quit()


def test_configuration_keys(tls_files):
    cert, key = tls_files
    pop3d = str(binary("pop3d"))
    r = subprocess.run([pop3d, "-t", "-o", "cleartext_login=no", "-o", f"tls_cert={cert}",
                        "-o", f"tls_key={key}", "-o", "mail_location=mbox:/var/mail/%u"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "cleartext_login = no\n" in r.stdout
    assert "mail_location = mbox:/var/mail/%u\n" in r.stdout
    assert "idle_timeout = 600\n" in r.stdout
    sample = Path(__file__).resolve().parents[2] / "etc" / "pop3d.conf"
    r = subprocess.run([pop3d, "-t", "-f", str(sample)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for bad in ("mail_location=mh:/x", "mail_location=maildir:relative", "cleartext_login=maybe",
                "cleartext_login=no"):
        r = subprocess.run([pop3d, "-t", "-o", bad], capture_output=True, text=True)
        assert r.returncode == 2 and bad.split("=")[0] in r.stderr, (bad, r.stderr)


def test_fifos_and_devices_in_a_mailbox_never_block(lab, daemon):
    """A FIFO (or a socket) in a Maildir is passed over; in the place of an
    mbox it is refused at once: no session hangs on it holding the
    maildrop, and the next login gets in."""
    md = put_maildir(lab, MESSAGES[:2])
    os.mkfifo(md / "new" / "1800000000.fifo.test,S=10,W=10")
    os.mkfifo(md / "cur" / "1800000001.fifo.test:2,S")
    import socket as _socket
    sock = _socket.socket(_socket.AF_UNIX)
    sock.bind(str(md / "new" / "1800000002.sock.test"))
    lab.chown_tree(md)
    d = daemon("pop3d")
    for _ in range(2):
        p = login(d)
        assert p.stat()[0] == 2
        for i in (1, 2):
            p.retr(i)
        p.quit()
    assert "not a regular file" in d.log()
    sock.close()
    # An mbox that is a FIFO: a clear temporary failure, then the next one.
    box = lab.dir / "fifo.mbox"
    os.mkfifo(box)
    os.chown(box, lab.uid, lab.gid)
    d2 = daemon("pop3d", f"mail_location=mbox:{box}")
    for _ in range(2):
        p = poplib.POP3(d2.host, d2.port, timeout=20)
        p.user("demo")
        with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
            p.pass_("demo")
        p.close()
