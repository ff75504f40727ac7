"""telnetd: logins and sessions through the contract (-F, inetd, xinetd, -o
keys), driven by real clients: a raw-socket TELNET client for the wire,
PuTTY's plink, socat, and (test_telnetd_terminal.py) the Debian telnet
client in a terminal."""

import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import IS_ROOT, MiniInetd, Xinetd, binary, free_port, need, wait_port
from telnet_helpers import (AO, AYT, BRK, DM, DO, DONT, ECHO, EC, EL, IAC, IP, LINEMODE, NAWS,
                            SGA, TelnetClient, TTYPE, WILL, WONT, sb)


@pytest.fixture
def telnetd(daemon, lab):
    issue = lab.dir / "issue.net"
    issue.write_text("Welcome to %h\n")

    def start(*opts, **kw):
        return daemon("telnetd", f"issue_file={issue}", *opts, **kw)

    return start


def logged_in(d, **kw):
    c = TelnetClient(d.port, **kw)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    return c


def test_builtin_login_gives_the_account_a_terminal(telnetd, lab):
    d = telnetd()
    c = TelnetClient(d.port, term="XTERM", size=(132, 43))
    text = c.read_until(rb"login: ")
    assert b"Welcome to " in text
    c.line("demo")
    c.read_until(rb"Password: ")
    c.line("demo")
    c.read_until(rb"\$ $")
    assert c.shell("echo $TERM") == "xterm"
    assert c.shell("stty size") == "43 132"
    assert re.fullmatch(r"/dev/pts/\d+", c.shell("tty"))
    assert c.shell("id -u") == str(lab.uid)
    assert c.shell("echo $HOME") == str(lab.home)
    # The options a terminal client expects were negotiated.
    assert c.sent(WILL, ECHO) and c.sent(WILL, SGA) and c.sent(DO, TTYPE) and c.sent(DO, NAWS)
    c.line("exit")
    assert c.wait_closed(), "the connection stays open after the shell exits"
    assert "login ok: user demo" in d.log()


def test_the_password_is_not_echoed(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    c.read_until(rb"login: ")
    c.line("demo")
    echoed_name = c.read_until(rb"Password: ")
    c.line("demo")
    after = c.read_until(rb"\$ $")
    # The name was echoed by the server; the password never.
    assert echoed_name.startswith(b"demo\r\n")
    assert b"demo" not in after.split(b"$")[0]


def test_wrong_passwords_and_the_attempt_limit(telnetd):
    d = telnetd("login_attempts=2")
    c = TelnetClient(d.port)
    started = time.time()
    for _ in range(2):
        c.login("demo", "wrong")
        c.read_until(rb"Login incorrect")
    assert time.time() - started >= 2, "each failure takes the uniform delay"
    assert c.wait_closed(10)
    assert d.log().count("login failed: user demo") == 2
    # The daemon serves the next client.
    logged_in(d).close()


def test_an_unknown_account_fails_like_a_wrong_password(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    started = time.time()
    c.login("no-such-account", "whatever")
    c.read_until(rb"Login incorrect")
    assert time.time() - started >= 1, "the uniform delay"
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    # The shell is a login shell (argv[0] "-sh") in the account's home.
    assert c.shell("echo $0") == "-sh"
    assert c.shell("pwd") == c.shell("echo $HOME")


def test_a_user_hint_skips_the_login_prompt(telnetd):
    d = telnetd()
    c = TelnetClient(d.port, env=[("USER", "demo")])
    text = c.read_until(rb"Password: ")
    assert b"login: " not in text
    c.line("demo")
    c.read_until(rb"\$ $")
    assert c.shell("echo $USER $LOGNAME") == "demo demo"


def test_the_environment_is_an_allow_list(telnetd):
    d = telnetd()
    env = [("DISPLAY", "client.example:0"), ("TERM", "vt100"), ("LD_PRELOAD", "/tmp/evil.so"),
           ("LD_LIBRARY_PATH", "/tmp"), ("GCONV_PATH", "/tmp"), ("IFS", "/"), ("BASH_ENV", "/tmp/x"),
           ("CREDENTIALS_DIRECTORY", "/tmp/creds"), ("ENV", "/tmp/x"), ("SHELLOPTS", "xtrace"),
           ("PATH", "/tmp"), ("HOME", "/tmp"), ("MAIL", "/tmp/x")]
    c = logged_in(d, term="XTERM", env=env)
    out = c.shell("env | sort")
    variables = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert variables["DISPLAY"] == "client.example:0"
    assert variables["TERM"] == "xterm", "TTYPE's type the host knows wins"
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "BASH_ENV", "CREDENTIALS_DIRECTORY",
                 "ENV", "SHELLOPTS"):
        assert name not in variables, name
    assert variables["PATH"] != "/tmp" and variables["HOME"] != "/tmp"
    assert variables["MAIL"] == "/var/mail/demo"
    assert variables["USER"] == "demo" and variables["LOGNAME"] == "demo"


def test_window_size_follows_the_client(telnetd):
    d = telnetd()
    c = logged_in(d, size=(80, 24))
    assert c.shell("stty size") == "24 80"
    c.send_raw(sb(NAWS, [0, 200, 0, 60]))
    time.sleep(0.3)
    assert c.shell("stty size") == "60 200"
    # SIGWINCH reaches the foreground program.
    c.line("trap 'echo GOT-WINCH' WINCH; sleep 5 & wait")
    time.sleep(0.5)
    c.send_raw(sb(NAWS, [0, 100, 0, 30]))
    c.read_until(rb"GOT-WINCH", 10)


def test_interrupt_and_break_signal_the_foreground(telnetd):
    d = telnetd()
    c = logged_in(d)
    for command in (IP, BRK):
        c.line("sleep 100")
        time.sleep(0.7)
        started = time.time()
        c.send_raw([IAC, command])
        c.read_until(rb"\$ $", 10)
        assert time.time() - started < 5


def test_a_raw_program_still_gets_interrupt(telnetd):
    d = telnetd()
    c = logged_in(d)
    c.line("stty raw -echo; sleep 100; stty sane; echo BACK")
    time.sleep(0.7)
    c.send_raw([IAC, IP])
    c.read_until(rb"\$ $", 10)


def wait_urgent(c, timeout=30):
    """The next byte of TCP urgent data, reading the stream as fast as it
    comes (what the kernels buffered before the mark comes first)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, x = select.select([c.sock], [], [c.sock], 0.2)
        if x:
            try:
                return c.sock.recv(1, socket.MSG_OOB)
            except OSError:
                pass
        if r and not c.pump(0):
            return None
    return None


def test_are_you_there_and_abort_output(telnetd):
    d = telnetd()
    c = logged_in(d)
    c.send_raw([IAC, AYT])
    c.read_until(rb"\[Yes\]")
    # AO: output dropped, then a SYNCH: IAC and DM as urgent data.
    c.line("while :; do echo flooding-the-terminal; done")
    time.sleep(0.5)
    c.send_raw([IAC, AO])
    assert wait_urgent(c) == bytes([DM])
    c.send_raw([IAC, IP])
    c.read_until(rb"\$ $", 20)


def test_erase_and_kill_at_the_login_prompt(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    c.read_until(rb"login: ")
    # CVE-2022-39028: IAC EC and IAC EL as the first bytes.
    c.send_raw([IAC, EC, IAC, EL])
    c.send(b"junk")
    c.send_raw([IAC, EL])
    c.send(b"demx")
    c.send_raw([IAC, EC])
    c.line("o")
    c.read_until(rb"Password: ")
    c.line("demo")
    c.read_until(rb"\$ $")


def test_linemode_with_a_linemode_client(telnetd):
    d = telnetd()
    c = logged_in(d, linemode=True)
    deadline = time.time() + 5
    while time.time() < deadline and not c.subnegotiations(LINEMODE):
        c.pump(0.1)
    assert c.sent(DO, LINEMODE)
    subs = c.subnegotiations(LINEMODE)
    assert any(p[:1] == b"\x01" for p in subs), "MODE"
    assert any(p[:1] == b"\x03" for p in subs), "SLC"
    # CVE-2026-32746: forty unknown SLC triplets: nothing overflows, the
    # answer stays small, the session goes on.
    before = len(c.raw)
    c.send_raw(sb(LINEMODE, [3] + [x for i in range(40) for x in (40 + i, 2, i)]))
    time.sleep(0.3)
    c.pump(0.2)
    assert len(c.raw) - before < 256
    c.send(b"echo LINE-$((1+1))\r\n")
    c.read_until(rb"LINE-2")


def test_standalone_and_a_second_client(telnetd):
    d = telnetd()
    a = logged_in(d)
    b = logged_in(d)
    assert a.shell("tty") != b.shell("tty")


def test_from_inetd(telnetd, lab):
    d = telnetd(mode="inetd")
    c = logged_in(d)
    assert c.shell("echo INETD-$((2*3))") == "INETD-6"
    c.line("exit")
    assert c.wait_closed()


def test_from_xinetd(lab):
    need("xinetd")
    issue = lab.dir / "issue.net"
    issue.write_text("xinetd lab\n")
    args = f"-o passwd_file={lab.passwd_file} -o issue_file={issue} -o log=stderr"
    with Xinetd(lab, binary("telnetd"), args) as x:
        c = TelnetClient(x.port)
        assert b"xinetd lab" in c.read_until(rb"login: ")
        c.line("demo")
        c.read_until(rb"Password: ")
        c.line("demo")
        c.read_until(rb"\$ $")
        assert c.shell("echo XINETD") == "XINETD"
        c.line("exit")
        assert c.wait_closed()


def test_plink(telnetd):
    plink = need("plink")
    d = telnetd()
    script = b"demo\necho PLINK-$((6*7))\nexit\n"
    r = subprocess.run([plink, "-telnet", "-batch", "-l", "demo", "-P", str(d.port), "127.0.0.1"],
                       input=script, capture_output=True, timeout=30)
    assert b"PLINK-42" in r.stdout, r.stdout + r.stderr


def test_socat(telnetd):
    """socat as a raw client: no TELNET at all, lines typed as they come."""
    socat = need("socat")
    d = telnetd()
    p = subprocess.Popen([socat, "-", f"TCP:127.0.0.1:{d.port}"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""

    def until(what, timeout=15):
        nonlocal out
        deadline = time.time() + timeout
        while what not in out and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                out += os.read(p.stdout.fileno(), 4096)
        assert what in out, out

    try:
        until(b"login: ")
        p.stdin.write(b"demo\r\n")
        p.stdin.flush()
        until(b"Password: ")
        p.stdin.write(b"demo\r\n")
        p.stdin.flush()
        until(b"$ ")
        p.stdin.write(b"echo SOCAT-$((6*7))\r\n")
        p.stdin.flush()
        until(b"SOCAT-42\r\n")
        p.stdin.write(b"exit\r\n")
        p.stdin.flush()
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    # A raw client is not asked for LINEMODE after login.
    assert bytes([IAC, DO, LINEMODE]) not in out


def test_configuration_checks():
    telnetd = binary("telnetd")
    r = subprocess.run([str(telnetd), "-t", "-o", "login=/bin/login -p -h %h"], capture_output=True, text=True)
    assert r.returncode == 0 and "login = /bin/login -p -h %h" in r.stdout
    for bad in ("login=login", "login=/bin/login %u", "issue_file=relative"):
        r = subprocess.run([str(telnetd), "-t", "-o", bad], capture_output=True, text=True)
        assert r.returncode == 2 and bad.split("=")[0] in r.stderr, r.stderr


def test_the_login_deadline(telnetd):
    d = telnetd("login_timeout=2")
    c = TelnetClient(d.port)
    c.read_until(rb"login: ")
    assert c.wait_closed(15), "the pre-login process outlived login_timeout"
