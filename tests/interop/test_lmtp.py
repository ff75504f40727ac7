"""LMTP both ways (RFC 2033): smtpd as a mailbox back end (`lmtp_listen`)
and as a front end (`mail_location = lmtp:...`), with the real peers:
Postfix delivering into our lmtp_listen, our smtpd delivering into
Dovecot's LMTP, and two smtpd hosts front to back.
"""

import os
import shutil
import random
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, free_port, need, need_reference, wait_port
from smtp_helpers import HOST, Raw, start_smtpd, wait_for


def maildir(home, box="Maildir"):
    new = Path(home) / box / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def message(subject, body="hello"):
    return (f"From: a@far.test\r\nTo: demo@lab.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@far.test>\r\n\r\n{body}\r\n")


def lmtp_backend(daemon, lab, *extra, **kw):
    """An smtpd whose only listener is LMTP."""
    return start_smtpd(daemon, lab, "listen=", *extra, listen_key="lmtp_listen", **kw)


def lmtp_dialogue(port, rcpts, body, sender="a@far.test"):
    """A byte-exact LMTP transaction: the RCPT replies and the replies after DATA."""
    c = Raw(port)
    assert c.greeting[0] == 220 and "LMTP" in c.greeting[1], c.greeting
    code, text = c.cmd("LHLO front.test")
    assert code == 250 and "PIPELINING" in text
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    rcpt_codes = [c.cmd(f"RCPT TO:<{r}>")[0] for r in rcpts]
    accepted = sum(1 for x in rcpt_codes if x == 250)
    code, _ = c.cmd("DATA")
    after = []
    if code == 354:
        c.send(body.encode() + b".\r\n")
        after = [c.reply() for _ in range(accepted)]
    c.cmd("QUIT")
    c.close()
    return rcpt_codes, code, after


# ------------------------------------------------------------ the back end


def test_backend_answers_per_recipient(daemon, lab):
    """One RCPT refused among several; the others each get their own 250
    after DATA, and each mailbox has the message."""
    d = lmtp_backend(daemon, lab)
    rcpts = ["demo@lab.test", "nosuchuser@lab.test", "alice@lab.test", "x@far.test"]
    codes, data, after = lmtp_dialogue(d.port, rcpts, message("per rcpt"))
    assert codes == [250, 550, 250, 554]
    assert data == 354
    assert [a[0] for a in after] == [250, 250], after
    assert "<demo@lab.test>" in after[0][1] and "<alice@lab.test>" in after[1][1]
    assert len(maildir(lab.users["demo"])) == 1
    assert len(maildir(lab.users["alice"])) == 1
    got = maildir(lab.users["demo"])[0].read_bytes()
    assert b"Subject: per rcpt" in got and b"with LMTP" in got


def test_backend_speaks_lmtp_only(daemon, lab):
    d = lmtp_backend(daemon, lab)
    c = Raw(d.port)
    assert c.cmd("HELO x.test")[0] == 500
    assert c.cmd("EHLO x.test")[0] == 500
    code, text = c.cmd("LHLO x.test")
    assert code == 250 and "AUTH" not in text
    c.close()


def test_backend_only_for_relay_from(daemon, lab):
    """relay_from decides who may speak LMTP: loopback here is not in it."""
    d = lmtp_backend(daemon, lab, "relay_from=192.0.2.0/24")
    c = Raw(d.port)
    assert c.greeting[0] == 554
    assert c.closed()
    assert maildir(lab.users["demo"]) == []


# ------------------------------------------------------------ the front end


class DovecotLmtp:
    """Dovecot's LMTP server (dovecot-lmtpd) on a passwd-file of accounts
    and their ~/Maildir: the mailbox back end a front end hands mail to."""

    def __init__(self, lab, passwd=None):
        need_reference(shutil.which("dovecot") and "/usr/lib/dovecot/lmtp", "dovecot-lmtpd")
        self.host, self.port = HOST, free_port()
        base = lab.dir / "dovecot"
        (base / "run").mkdir(parents=True, exist_ok=True)
        self.base = base
        self.socket = base / "run" / "lmtp"
        self.logfile = base / "dovecot.log"
        conf = base / "dovecot.conf"
        users = ""
        if not IS_ROOT:
            import pwd
            me = pwd.getpwuid(os.getuid()).pw_name
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        conf.write_text(f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {self.logfile}
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
mail_location = maildir:~/Maildir
auth_username_format = %Ln
passdb {{
  driver = passwd-file
  args = {passwd or lab.passwd_file}
}}
userdb {{
  driver = passwd-file
  args = {passwd or lab.passwd_file}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
{users}""")
        self.conf = conf
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def dovecot(lab):
    started = []

    def start(**kw):
        d = DovecotLmtp(lab, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def front(daemon, lab, location, *extra):
    """An smtpd front end whose local mail goes to `location` over LMTP."""
    return start_smtpd(daemon, lab, f"mail_location={location}", "retry_interval=1",
                       *extra, queue="queue-front")


def send(port, rcpts, body, sender="demo@lab.test"):
    with smtplib.SMTP(HOST, port, timeout=30) as s:
        s.ehlo("client.test")
        return s.sendmail(sender, rcpts, body)


def queued(lab, queue="queue-front"):
    d = lab.dir / queue / "q"
    return sorted(d.iterdir()) if d.is_dir() else []


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_front_end_into_dovecot_lmtp(daemon, lab, dovecot, over):
    """Our smtpd delivers local mail into Dovecot's LMTP: several messages
    over one connection, each recipient in its own Maildir."""
    dv = dovecot()
    location = f"lmtp:{HOST}:{dv.port}" if over == "tcp" else f"lmtp:unix:{dv.socket}"
    f = front(daemon, lab, location)
    for n in range(5):
        send(f.port, ["demo@lab.test", "alice@lab.test"], message(f"via dovecot {n}"))
    assert wait_for(lambda: len(maildir(lab.users["demo"])) == 5
                    and len(maildir(lab.users["alice"])) == 5), (f.log(), dv.log())
    assert wait_for(lambda: not queued(lab))
    body = maildir(lab.users["alice"])[0].read_bytes()
    assert b"Subject: via dovecot" in body
    # Dovecot added its own Received line on top of ours.
    assert body.count(b"Received:") >= 2
    assert f"relay=lmtp:{location[5:]}" in f.log()
    # One LMTP connection carried them (each session's lines are logged once).
    assert f.log().count("status=sent") == 10


def test_front_end_one_recipient_refused_bounces(daemon, lab, dovecot):
    """Dovecot refuses one recipient (it does not know alice) with 5xx:
    that one bounces with a DSN to the sender, the others are delivered
    once, nothing stays queued."""
    lab.add_user("alice", "alice")
    partial = lab.dir / "dovecot-passwd"
    partial.write_text("".join(l for l in lab.passwd_file.read_text().splitlines(True)
                               if not l.startswith("alice:")))
    dv = dovecot(passwd=partial)
    f = front(daemon, lab, f"lmtp:{HOST}:{dv.port}")
    send(f.port, ["demo@lab.test", "alice@lab.test"], message("one refused"))
    # demo gets the message and the bounce for alice.
    assert wait_for(lambda: len(maildir(lab.users["demo"])) == 2), (f.log(), dv.log())
    assert wait_for(lambda: not queued(lab)), f.log()
    texts = [p.read_bytes() for p in maildir(lab.users["demo"])]
    dsn = [t for t in texts if b"multipart/report" in t]
    assert len(dsn) == 1, texts
    assert b"alice@lab.test" in dsn[0] and b"Action: failed" in dsn[0]
    assert maildir(lab.users["alice"]) == []
    time.sleep(1.5)
    assert len(maildir(lab.users["demo"])) == 2


def test_front_end_back_end_down_then_up(daemon, lab, dovecot):
    """With the back end down, mail stays queued (nothing lost, no bounce);
    it is delivered once the back end returns."""
    dv = dovecot()
    dv.stop()
    f = front(daemon, lab, f"lmtp:{HOST}:{dv.port}")
    for n in range(3):
        send(f.port, ["demo@lab.test"], message(f"while down {n}"))
    assert wait_for(lambda: "status=deferred" in f.log()), f.log()
    time.sleep(1)
    assert len(queued(lab)) == 3
    assert maildir(lab.users["demo"]) == []
    dv.start()
    assert wait_for(lambda: len(maildir(lab.users["demo"])) == 3, timeout=30), f.log()
    assert wait_for(lambda: not queued(lab))
    assert not any(b"multipart/report" in p.read_bytes() for p in maildir(lab.users["demo"]))


def test_two_hosts_front_to_back(daemon, lab):
    """Two of our hosts: a front end (SMTP in, queue, LMTP out) and a back
    end (lmtp_listen, mailboxes). The back end does not know carol: she is
    refused there with 5xx and bounces at the front; the others are
    delivered once."""
    lab.add_user("alice", "alice")
    lab.add_user("carol", "carol")
    partial = lab.dir / "back-passwd"
    partial.write_text("".join(l for l in lab.passwd_file.read_text().splitlines(True)
                               if not l.startswith("carol:")))
    back = lmtp_backend(daemon, lab, f"passwd_file={partial}", queue="queue-back")
    f = front(daemon, lab, f"lmtp:{HOST}:{back.port}")
    send(f.port, ["demo@lab.test", "carol@lab.test", "alice@lab.test"], message("front to back"))
    assert wait_for(lambda: len(maildir(lab.users["demo"])) == 2
                    and len(maildir(lab.users["alice"])) == 1), (f.log(), back.log())
    assert wait_for(lambda: not queued(lab))
    texts = [p.read_bytes() for p in maildir(lab.users["demo"])]
    got = [t for t in texts if b"multipart/report" not in t]
    assert len(got) == 1 and b"with LMTP" in got[0] and b"with ESMTP" in got[0]
    dsn = [t for t in texts if b"multipart/report" in t]
    assert len(dsn) == 1 and b"carol@lab.test" in dsn[0] and b"5.1.1" in dsn[0]
    assert maildir(lab.users["carol"]) == []


# ------------------------------------------------------------ hostile input and kill -9


def test_ten_megabytes_of_random_bytes_on_the_lmtp_port(daemon, lab):
    """10 MB of random bytes: the session answers or hangs up, nothing is
    stored, and the next client is served."""
    d = lmtp_backend(daemon, lab)
    rnd = random.Random(15)
    junk = rnd.randbytes(10 * 1024 * 1024)
    s = socket.create_connection((HOST, d.port), timeout=30)
    s.settimeout(30)
    sent = 0
    try:
        while sent < len(junk):
            sent += s.send(junk[sent:sent + 65536])
    except (BrokenPipeError, ConnectionResetError):
        pass
    # The server gave up on it (too many errors) or is still reading.
    try:
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    codes, data, after = lmtp_dialogue(d.port, ["demo@lab.test"], message("after the junk"))
    assert codes == [250] and data == 354 and [a[0] for a in after] == [250]
    msgs = maildir(lab.users["demo"])
    assert len(msgs) == 1 and b"after the junk" in msgs[0].read_bytes()
    assert d.alive()


def all_processes(pid):
    """A daemon's master and every process below it (read from /proc at
    once: mid-DATA does not last long)."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = open(f"/proc/{p}/stat").read()
            except OSError:
                continue
            parent[int(p)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, level = [pid], [pid]
    while level:
        level = [c for c, pp in parent.items() if pp in level]
        out += level
    return out


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except OSError:
            pass


def kill_all(d):
    signal_all(all_processes(d.pid), signal.SIGKILL)
    d.proc.wait(timeout=10)


def spilled(lab, queue):
    """A message being received past what a session keeps in memory."""
    t = lab.dir / queue / "tmp"
    return t.is_dir() and any(not p.name.startswith("spare.") for p in t.iterdir())


def warm(back):
    """One LMTP connection that leaves the back end's session process idle
    and reusable, so that the next connection goes to processes known in
    advance (mid-DATA does not last long enough to look for them)."""
    c = Raw(back.port)
    c.cmd("LHLO warm.test")
    c.cmd("QUIT")
    c.close()
    time.sleep(0.5)
    return all_processes(back.pid)


BIG = message("big", "x" * 70 + "\r\n" + ("y" * 998 + "\r\n") * 30000)


def test_kill_9_of_the_back_end_mid_data(daemon, lab):
    """The back end dies mid-DATA: the front end keeps the message queued
    and delivers it, once, when the back end is back."""
    back = lmtp_backend(daemon, lab, queue="queue-back")
    held = warm(back)
    f = front(daemon, lab, f"lmtp:{HOST}:{back.port}")
    send(f.port, ["demo@lab.test"], BIG)
    assert wait_for(lambda: spilled(lab, "queue-back"), step=0.002), f.log()
    signal_all(held, signal.SIGKILL)
    kill_all(back)
    assert wait_for(lambda: "status=deferred" in f.log()), f.log()
    assert len(queued(lab)) == 1 and maildir(lab.users["demo"]) == []
    back = lmtp_backend(daemon, lab, queue="queue-back", port=back.port)
    assert wait_for(lambda: len(maildir(lab.users["demo"])) >= 1, timeout=30), f.log()
    assert wait_for(lambda: not queued(lab))
    time.sleep(1)
    msgs = maildir(lab.users["demo"])
    assert len(msgs) == 1 and msgs[0].stat().st_size > 29_000_000


def test_kill_9_of_the_front_end_mid_data(daemon, lab):
    """The front end dies mid-DATA: the back end stores nothing of the cut
    message; the front end, restarted on its queue, delivers it once."""
    back = lmtp_backend(daemon, lab, queue="queue-back")
    held = warm(back)
    f = front(daemon, lab, f"lmtp:{HOST}:{back.port}")
    send(f.port, ["demo@lab.test"], BIG)
    assert wait_for(lambda: spilled(lab, "queue-back"), step=0.002), f.log()
    # Hold the back end where it is (mid-DATA) while the front end dies.
    signal_all(held, signal.SIGSTOP)
    held = all_processes(back.pid)
    signal_all(held, signal.SIGSTOP)
    kill_all(f)
    signal_all(held, signal.SIGCONT)
    assert wait_for(lambda: "during DATA; nothing stored" in back.log()), back.log()
    assert maildir(lab.users["demo"]) == []
    assert len(queued(lab)) == 1
    f = front(daemon, lab, f"lmtp:{HOST}:{back.port}")
    assert wait_for(lambda: len(maildir(lab.users["demo"])) >= 1, timeout=30), f.log()
    assert wait_for(lambda: not queued(lab))
    time.sleep(1)
    assert len(maildir(lab.users["demo"])) == 1


# ------------------------------------------------------------ Postfix as the front end


class Postfix:
    """A private Postfix instance whose local mailboxes are behind LMTP
    (`mailbox_transport = lmtp:...`), as Postfix's LMTP_README sets it up."""

    def __init__(self, lab, transport):
        need("postfix")
        if not IS_ROOT:
            pytest.skip("a private Postfix instance needs root")
        self.port = free_port()
        p = lab.dir / "postfix"
        self.dir = p
        for sub in ("etc", "spool", "data"):
            (p / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(p / "data", "postfix")
        master = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            f = line.split()
            if line.startswith("smtp ") and len(f) >= 8 and f[1] == "inet":
                line = f"127.0.0.1:{self.port} inet n - n - - smtpd"
            elif line[:1].isalnum() and len(f) >= 8 and f[4] == "y":
                f[4] = "n"
                line = " ".join(f)
            master.append(line)
        (p / "etc" / "master.cf").write_text("\n".join(master) + "\n")
        (p / "etc" / "main.cf").write_text(f"""
compatibility_level = 3.6
queue_directory = {p}/spool
data_directory = {p}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.lab.test
mydomain = lab.test
mydestination = lab.test, localhost
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
mailbox_transport = {transport}
maillog_file = {p}/maillog
maillog_file_prefixes = {p}
queue_run_delay = 1s
minimal_backoff_time = 1s
""")
        r = subprocess.run(["postfix", "-c", str(p / "etc"), "start"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr + self.log()
        wait_port(self.port)

    def log(self):
        try:
            return (self.dir / "maillog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.dir / "etc"), "stop"], capture_output=True,
                       timeout=60)


@pytest.mark.parametrize("back_end", ["classicd", "classicd-unix", "dovecot"])
def test_postfix_delivers_into_lmtp_listen(daemon, lab, dovecot, back_end):
    """Postfix as the front end, mailboxes behind LMTP: our lmtp_listen, and
    Dovecot's LMTP as the reference for the same scenario. An unknown
    recipient is refused by the back end and bounced by Postfix."""
    lab.add_user("alice", "alice")
    if back_end == "classicd":
        back = lmtp_backend(daemon, lab, queue="queue-back")
        transport, back_log = f"lmtp:inet:127.0.0.1:{back.port}", back.log
    elif back_end == "classicd-unix":
        back, path = unix_backend(daemon, lab, queue="queue-back")
        transport, back_log = f"lmtp:unix:{path}", back.log
    else:
        dv = dovecot()
        transport, back_log = f"lmtp:inet:127.0.0.1:{dv.port}", dv.log
    pf = Postfix(lab, transport)
    try:
        send(pf.port, ["demo@lab.test", "alice@lab.test", "nosuch@lab.test"],
             message("through postfix"))
        assert wait_for(lambda: len(maildir(lab.users["alice"])) == 1
                        and len(maildir(lab.users["demo"])) == 2, timeout=60), \
            (pf.log(), back_log())
        texts = [p.read_bytes() for p in maildir(lab.users["demo"])]
        assert any(b"Subject: through postfix" in t and b"multipart/report" not in t
                   for t in texts)
        bounce = [t for t in texts if b"Undelivered Mail" in t or b"multipart/report" in t]
        assert len(bounce) == 1 and b"nosuch" in bounce[0], texts
        assert "status=sent" in pf.log() and "status=bounced" in pf.log()
    finally:
        pf.stop()


# ------------------------------------------------------------ a Unix socket


def unix_backend(daemon, lab, *extra, **kw):
    """A back end on a TCP port (to wait for) and a Unix socket."""
    port = free_port()
    path = lab.dir / "lmtp.sock"
    d = lmtp_backend(daemon, lab, f"lmtp_listen={HOST}:{port}, unix:{path}", *extra,
                     port=port, **kw)
    return d, path


def test_backend_on_a_unix_socket(daemon, lab):
    """lmtp_listen = unix:PATH: the same LMTP, for local clients (relay_from
    does not apply: they have no address; the socket's directory guards it)."""
    d, path = unix_backend(daemon, lab, "relay_from=192.0.2.0/24")
    assert path.is_socket() and path.stat().st_mode & 0o777 == 0o666
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    f = s.makefile("rwb")

    def reply():
        lines = []
        while True:
            line = f.readline().rstrip(b"\r\n").decode()
            lines.append(line)
            if line[3:4] != "-":
                return int(line[:3]), lines

    def cmd(line):
        f.write(line.encode() + b"\r\n")
        f.flush()
        return reply()

    assert reply()[0] == 220
    assert cmd("LHLO local.test")[0] == 250
    assert cmd("MAIL FROM:<a@far.test>")[0] == 250
    assert cmd("RCPT TO:<demo@lab.test>")[0] == 250
    assert cmd("RCPT TO:<nosuch@lab.test>")[0] == 550
    assert cmd("DATA")[0] == 354
    f.write(message("over a unix socket").encode() + b".\r\n")
    f.flush()
    code, lines = reply()
    assert code == 250 and "<demo@lab.test>" in lines[0]
    assert cmd("QUIT")[0] == 221
    s.close()
    got = maildir(lab.users["demo"])
    assert len(got) == 1 and b"over a unix socket" in got[0].read_bytes()
    # Over TCP the same back end still keeps to relay_from.
    assert Raw(d.port).greeting[0] == 554
    # The socket goes with the daemon.
    d.stop()
    assert not path.exists()


def test_two_hosts_over_a_unix_socket(daemon, lab):
    """mail_location = lmtp:unix:PATH into our own back end's socket."""
    back, path = unix_backend(daemon, lab, queue="queue-back")
    f = front(daemon, lab, f"lmtp:unix:{path}")
    send(f.port, ["demo@lab.test", "alice@lab.test"], message("by the socket"))
    assert wait_for(lambda: len(maildir(lab.users["demo"])) == 1
                    and len(maildir(lab.users["alice"])) == 1), (f.log(), back.log())
    assert wait_for(lambda: not queued(lab))
    assert f"relay=lmtp:unix:{path}" in f.log()
