"""pop3d driven by real clients: Python poplib (USER/PASS, STLS, implicit
TLS, AUTH PLAIN), curl pop3://, fetchmail (keep and delete), xinetd; over
Maildir and mbox; exclusive access, UPDATE only after QUIT, bad input."""

import base64
import fcntl
import os
import poplib
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import IS_ROOT, binary, free_port, need, wait_port


@pytest.fixture(autouse=True)
def traversable(lab):
    """As root the sessions run as nobody, who must reach the lab's homes:
    pytest makes its base directories 0700, so let others traverse them
    (search permission only, no listing)."""
    if IS_ROOT:
        for parent in lab.dir.parents:
            st = parent.stat()
            if st.st_uid == 0 and not st.st_mode & 0o001:
                os.chmod(parent, (st.st_mode & 0o7777) | 0o011)
            if str(parent) in ("/tmp", "/"):
                break


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
    out = b""
    for m in messages:
        out += f"From {sender} Thu Jan  1 00:00:00 2026\n".encode()
        for line in m.split(b"\n")[:-1] if m.endswith(b"\n") else m.split(b"\n"):
            if line.lstrip(b">").startswith(b"From "):
                line = b">" + line
            out += line + b"\n"
        out += b"\n"
    return out


def put_mbox(lab, messages, user="demo"):
    path = lab.users[user] / "mbox"
    path.write_bytes(mbox_text(messages))
    os.chmod(path, 0o600)
    lab.chown_tree(lab.users[user])
    return path


def joined(lines):
    """poplib's lines (already un-dot-stuffed) back into wire form."""
    return b"".join(l + b"\r\n" for l in lines)


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
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(d.pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


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


def test_poplib_user_pass_retrieve_delete(lab, daemon, store):
    opt, put = store
    put(lab, MESSAGES)
    d = daemon("pop3d", opt)
    p = login(d)
    check_messages(p, MESSAGES)
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
    p = login(d)
    assert p.stat()[0] == 2
    assert p.uidl()[1] == [b"1 " + uids[0].split()[1], b"2 " + uids[2].split()[1]]
    check_messages(p, [MESSAGES[0], MESSAGES[2]])
    p.quit()
    assert "retrieved" in d.log() and "deleted 1" in d.log()


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


def test_huge_message_constant_memory(lab, daemon):
    line = b"x" * 998 + b"\n"
    big = b"Subject: big\n\n" + line * 40_000 + b"y" * 5_000_000 + b"\n"  # 45 MB, one 5 MB line
    put_maildir(lab, [big])
    d = daemon("pop3d")
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
    p = login(d)
    n = p.stat()[0]
    p.quit()
    return n


def test_xinetd(lab):
    xinetd = need("xinetd")
    put_maildir(lab, MESSAGES)
    port = free_port()
    conf = lab.dir / "xinetd.conf"
    conf.write_text(f"""
defaults
{{
    instances = 10
}}
service pop3d-test
{{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = {"root" if IS_ROOT else os.environ.get("USER", "root")}
    bind        = 127.0.0.1
    port        = {port}
    server      = {binary("pop3d")}
    server_args = -o passwd_file={lab.passwd_file} -o log=syslog
}}
""")
    p = subprocess.Popen([xinetd, "-dontfork", "-pidfile", str(lab.dir / "x.pid"), "-f", str(conf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        time.sleep(0.2)
        c = poplib.POP3("127.0.0.1", port, timeout=20)
        c.user("demo")
        c.pass_("demo")
        check_messages(c, MESSAGES)
        c.dele(1)
        c.quit()
        c = poplib.POP3("127.0.0.1", port, timeout=20)
        c.user("demo")
        c.pass_("demo")
        assert c.stat()[0] == 2
        c.quit()
    finally:
        p.terminate()
        p.wait(timeout=10)
