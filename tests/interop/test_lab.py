"""make lab: every daemon on its contract port with the demo account, the
sample content served, mail to demo@lab.test delivered, Ctrl-C stops all."""

import ftplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time

import pytest

from conftest import BIN, ROOT, make_traversable

PORTS = {"ftpd": 2121, "smtpd": 2525, "pop3d": 1110, "imapd": 1143, "nntpd": 1119, "tftpd": 6969,
         "rlogind": 1513, "rshd": 1514, "telnetd": 2323}
# A key only the real protocol module declares (not a placeholder).
OWN_KEY = {"ftpd": "anonymous", "smtpd": "local_domains", "pop3d": "mail_location",
           "imapd": "mail_location", "nntpd": "spool_dir", "tftpd": "root", "rlogind": "trust",
           "rshd": "trust", "telnetd": "issue_file"}


def implemented(name):
    if not (BIN / name).exists():
        return False
    r = subprocess.run([str(BIN / name), "-t"], capture_output=True, text=True)
    return f"\n{OWN_KEY[name]} = " in "\n" + r.stdout


def busy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@pytest.fixture
def lab_run(tmp_path):
    if any(busy(p) for p in PORTS.values()):
        pytest.skip("a lab is already running on the contract ports")
    make_traversable(tmp_path)  # the sessions run as the demo uid
    env = dict(os.environ, LAB_DIR=str(tmp_path / "lab"), CLASSICD_BIN=str(BIN))
    p = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "lab.py")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    deadline = time.time() + 30
    while "Ctrl-C stops them all." not in out and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    yield p, out, tmp_path / "lab"
    p.send_signal(signal.SIGINT)
    rest = p.communicate(timeout=20)[0]
    assert "lab stopped" in rest
    for port in PORTS.values():
        assert not busy(port)


def test_lab_serves_the_demo_account(lab_run):
    p, out, lab = lab_run
    built = [d for d in PORTS if implemented(d)]
    for d in built:
        assert f"{d:8} 127.0.0.1:{PORTS[d]:<5} running" in out, out
    if "imapd" in built:
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", 1143)
        m.login("demo", "demo")
        typ, data = m.select("INBOX")
        assert typ == "OK" and int(data[0]) >= 1
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Welcome to the classicd lab" in data[0][1]
        m.logout()
    if "pop3d" in built:
        m = poplib.POP3("127.0.0.1", 1110, timeout=10)
        m.user("demo")
        m.pass_("demo")
        count, _ = m.stat()
        assert count >= 1
        assert b"Welcome to the classicd lab" in b"\n".join(m.retr(1)[1])
        m.quit()
    if "ftpd" in built:
        f = ftplib.FTP()
        f.connect("127.0.0.1", 2121, timeout=10)
        f.login("demo", "demo")
        assert "README.txt" in f.nlst()
        f.quit()
        f = ftplib.FTP()
        f.connect("127.0.0.1", 2121, timeout=10)
        f.login("anonymous", "guest@")
        assert "welcome.txt" in " ".join(f.nlst("pub"))
        f.quit()
    if "smtpd" in built:
        with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as s:
            s.sendmail("someone@example.org", ["demo@lab.test"],
                       "Subject: lab test\r\n\r\nhello through the lab\r\n")
        new = lab / "home" / "demo" / "Maildir" / "new"
        deadline = time.time() + 15
        while time.time() < deadline:
            if any(b"hello through the lab" in f.read_bytes() for f in new.iterdir()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("mail to demo@lab.test was not delivered")
    if "nntpd" in built:
        s = socket.create_connection(("127.0.0.1", 1119), timeout=10)
        f = s.makefile("rb")
        assert f.readline().startswith(b"200")
        s.sendall(b"GROUP lab.test\r\n")
        reply = f.readline().split()
        assert reply[0] == b"211" and int(reply[1]) >= 3, reply
        s.sendall(b"HEAD 1\r\n")
        head = b""
        while not head.endswith(b"\r\n.\r\n"):
            head += f.readline()
        assert b"Subject: Welcome to lab.test" in head
        s.close()
    if "tftpd" in built:
        r = subprocess.run(["curl", "-sS", "tftp://127.0.0.1:6969/welcome.txt"], capture_output=True, timeout=20)
        assert r.stdout == b"Hello over TFTP.\n"
    if "rshd" in built and shutil.which("rsh-redone-rsh"):
        r = subprocess.run(["rsh-redone-rsh", "-l", "demo", "-p", "1514", "127.0.0.1", "echo", "lab-rsh"],
                           capture_output=True, text=True, timeout=20)
        assert r.stdout == "lab-rsh\n", r
    if "rlogind" in built:
        s = socket.create_connection(("127.0.0.1", 1513), timeout=10)
        me = __import__("pwd").getpwuid(os.getuid()).pw_name
        s.sendall(b"\0" + me.encode() + b"\0demo\0xterm/38400\0echo lab-$((40+2))\r")
        out = b""
        deadline = time.time() + 10
        while b"lab-42" not in out and time.time() < deadline:
            b = s.recv(4096)
            if not b:
                break
            out += b
        assert b"lab-42" in out, out
    # telnetd: "running" on 2323 above; its logins are tested in
    # test_telnetd*.py.


def test_lab_from_a_checkout_others_cannot_enter(tmp_path):
    """A clone in /root (mode 0700) as root: the sessions run as an
    unprivileged account, so the lab's tree goes where it can reach it."""
    if os.geteuid() != 0:
        pytest.skip("the sessions change uid only as root")
    if any(busy(p) for p in PORTS.values()):
        pytest.skip("a lab is already running on the contract ports")
    private = tmp_path / "private"
    (private / "checkout" / "scripts").mkdir(parents=True)
    os.chmod(private, 0o700)
    shutil.copy(ROOT / "scripts" / "lab.py", private / "checkout" / "scripts" / "lab.py")
    env = {k: v for k, v in os.environ.items() if k != "LAB_DIR"}
    env["CLASSICD_BIN"] = str(BIN)
    p = subprocess.Popen([sys.executable, str(private / "checkout" / "scripts" / "lab.py")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = ""
    deadline = time.time() + 30
    while "Ctrl-C stops them all." not in out and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        out += line
    try:
        assert "/var/tmp/classicd-lab" in out, out
        if implemented("pop3d"):
            m = poplib.POP3("127.0.0.1", 1110, timeout=10)
            m.user("demo")
            m.pass_("demo")
            assert m.stat()[0] >= 1
            m.quit()
        if implemented("ftpd"):
            r = subprocess.run(["curl", "-sS", "ftp://demo:demo@127.0.0.1:2121/"],
                               capture_output=True, text=True, timeout=20)
            assert "README.txt" in r.stdout, r.stdout + r.stderr
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
    # An explicit LAB_DIR it cannot reach is refused with what to do.
    env["LAB_DIR"] = str(private / "lab")
    r = subprocess.run([sys.executable, str(private / "checkout" / "scripts" / "lab.py")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "chmod o+x" in r.stderr + r.stdout, r.stderr
