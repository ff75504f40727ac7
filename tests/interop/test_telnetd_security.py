"""telnetd against the attacks that sank the C servers, each with its exact
bytes, and the daemon up for the next client after each: environment
injection (CVE-2026-24061, CVE-2026-28372, LD_PRELOAD and friends), SLC
overflow (CVE-2026-32746), erase commands first (CVE-2022-39028), AYT/AO
floods (CVE-2020-10188), ENCRYPT (CVE-2011-4862), over-long
subnegotiations, random bytes, kill -9, a client that vanishes; the
privileges of each process, the terminal's owner, utmp and wtmp."""

import os
import random
import socket
import stat
import struct
import subprocess
import time

import pytest

from conftest import IS_ROOT, binary, descendants, free_port, proc_status, wait_port
from telnet_helpers import (AO, AYT, DONT, EC, EL, ENCRYPT, IAC, IP, LINEMODE, NEW_ENVIRON, OLD_ENVIRON, SB,
                            SE, TelnetClient, WILL, WONT, sb)

# Each attack's bytes (a NEW-ENVIRON IS list), and the login name hint a
# valid USER in it gives (only ever a name, after a password prompt).
ENV_ATTACKS = {
    "USER=-f root": (b"\x00USER\x01-f root", None),
    "USER=-froot": (b"\x00USER\x01-froot", None),
    "USERVAR USER": (b"\x03USER\x01-f root", None),
    "ESC-quoted": (b"\x00USER\x01\x02\x00-f\x02\x01root", None),
    "USER then -f": (b"\x00USER\x01root\x00-f", "root"),
    "CREDENTIALS_DIRECTORY": (b"\x00CREDENTIALS_DIRECTORY\x01/tmp/creds\x00USER\x01root", "root"),
    "LD_PRELOAD": (b"\x00LD_PRELOAD\x01/tmp/x.so\x00LD_LIBRARY_PATH\x01/tmp\x00GCONV_PATH\x01/tmp", None),
    "IFS BASH_ENV": (b"\x00IFS\x01/\x00BASH_ENV\x01/tmp/x\x00ENV\x01/tmp/x", None),
}


@pytest.fixture
def telnetd(daemon):
    def start(*opts, **kw):
        d = daemon("telnetd", "issue_file=", *opts, **kw)
        # The readiness probe's own session ends first (its monitor then
        # waits in the pool, without children).
        deadline = time.time() + 5
        while alive(descendants(d.pid, 2)) and time.time() < deadline:
            time.sleep(0.05)
        return d

    return start


def attacker(port, payload, option=NEW_ENVIRON, info=False):
    """A client that answers the environment SEND with `payload`."""
    c = TelnetClient(port, env=[payload], accept=(option,))
    if info:
        c.send_raw(sb(option, b"\x02" + payload))
    return c


def still_serving(d):
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    assert c.shell("echo OK-$((1+1))") == "OK-2"
    c.close()


@pytest.mark.parametrize("name", sorted(ENV_ATTACKS))
def test_environment_attacks_on_the_builtin_login(telnetd, name):
    d = telnetd()
    payload, hint = ENV_ATTACKS[name]
    c = attacker(d.port, payload)
    first = c.read_until(rb"login: |Password: ")
    # Never an option, and nothing logs in without a password: a valid
    # name is a hint for the name only.
    if hint is None:
        assert first.endswith(b"login: "), first
        c.line("root")
        c.read_until(rb"Password: ")
    else:
        assert first.endswith(b"Password: "), first
    c.line("")
    c.read_until(rb"Login incorrect")
    c.close()
    still_serving(d)


def test_environment_attacks_by_info_and_old_environ(telnetd):
    d = telnetd()
    c = attacker(d.port, ENV_ATTACKS["USER=-f root"][0], info=True)
    assert c.read_until(rb"login: |Password: ").endswith(b"login: ")
    c.close()
    # OLD-ENVIRON with VAR and VALUE swapped (BSD's codes).
    c = TelnetClient(d.port, env=[b"\x01USER\x00-f root"], accept=(OLD_ENVIRON,))
    c.send_raw([IAC, WONT, NEW_ENVIRON])
    assert c.read_until(rb"login: |Password: ").endswith(b"login: ")
    c.close()
    still_serving(d)


def login_program_daemon(tmp_path, extra=()):
    """telnetd with a login program that shows what it was given: argv
    and the environment, exactly."""
    script = tmp_path / "show-login"
    script.write_text("#!/bin/sh\necho ARGV:\"$*\":\nenv | sort | sed 's/^/ENV:/'\necho END-OF-ENV\nsleep 30\n")
    script.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    port = free_port()
    p = subprocess.Popen([str(binary("telnetd")), "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "log=stderr",
                          "-o", f"login={script} -p -h %h", "-o", "issue_file=", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return p, port


@pytest.mark.skipif(not IS_ROOT, reason="a login program runs as root")
@pytest.mark.parametrize("name", sorted(ENV_ATTACKS))
def test_environment_attacks_on_a_login_program(tmp_path, name):
    p, port = login_program_daemon(tmp_path)
    try:
        payload, hint = ENV_ATTACKS[name]
        c = TelnetClient(port, term="XTERM", env=[payload])
        text = c.read_until(rb"END-OF-ENV").decode()
        argv = [l for l in text.replace("\r", "").splitlines() if l.startswith("ARGV:")][0]
        expected = "ARGV:-p -h localhost:" if hint is None else f"ARGV:-p -h localhost -- {hint}:"
        assert argv == expected, argv
        env = sorted(l[4:] for l in text.replace("\r", "").splitlines() if l.startswith("ENV:"))
        names = [e.split("=")[0] for e in env]
        # Only the allow-list (and what sh itself sets: PWD, SHLVL, _).
        assert set(names) <= {"TERM", "DISPLAY", "PWD", "SHLVL", "_"}, env
        assert "TERM=xterm" in env
        c.close()
    finally:
        p.terminate()
        p.wait(10)


@pytest.mark.skipif(not IS_ROOT, reason="a login program runs as root")
def test_a_valid_user_hint_comes_after_a_double_dash(tmp_path):
    p, port = login_program_daemon(tmp_path)
    try:
        c = TelnetClient(port, env=[("USER", "demo"), ("DISPLAY", "h.example:0")])
        text = c.read_until(rb"END-OF-ENV").decode()
        assert "ARGV:-p -h localhost -- demo:" in text
        assert "ENV:DISPLAY=h.example:0" in text
    finally:
        p.terminate()
        p.wait(10)


def test_slc_overflow_triplets(telnetd):
    """CVE-2026-32746: 40 unknown SLC triplets in one LINEMODE SLC."""
    d = telnetd()
    c = TelnetClient(d.port, linemode=True)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    deadline = time.time() + 5
    while time.time() < deadline and not c.subnegotiations(LINEMODE):
        c.pump(0.1)
    before = len(c.raw)
    triplets = bytes(x for i in range(40) for x in (0x30 + i, 0x02, 0x41))
    c.send_raw(bytes([IAC, SB, LINEMODE, 3]) + triplets + bytes([IAC, SE]))
    # And every known function, many times over.
    c.send_raw(bytes([IAC, SB, LINEMODE, 3]) + bytes(x for _ in range(20) for f in range(19) for x in (f, 2, 0x41))
               + bytes([IAC, SE]))
    time.sleep(0.5)
    c.pump(0.3)
    assert len(c.raw) - before < 300
    assert c.shell("echo ALIVE") == "ALIVE"
    still_serving(d)


@pytest.mark.parametrize("first", [EC, EL])
def test_erase_commands_as_the_first_bytes(telnetd, first):
    """CVE-2022-39028: IAC EC or IAC EL before anything else."""
    d = telnetd()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(bytes([IAC, first]))
    time.sleep(0.3)
    s.close()
    c = TelnetClient(d.port)
    c.send_raw([IAC, first, IAC, first])
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    c.send_raw([IAC, first])
    assert c.shell("echo FINE") == "FINE"


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_ayt_and_ao_flood_from_a_client_that_does_not_read(telnetd):
    """CVE-2020-10188: thousands of AYT and AO while never reading: the
    daemon's memory stays bounded and the session survives."""
    d = telnetd()
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    relay = [pid for pid in descendants(d.pid, 2) if pid != d.pid]
    before = {pid: rss_kb(pid) for pid in relay}
    c.sock.setblocking(False)
    chunk = bytes([IAC, AYT, IAC, AO]) * 4096
    sent = 0
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sent += c.sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.05)
    c.sock.setblocking(True)
    assert sent > 0
    for pid in relay:
        if os.path.exists(f"/proc/{pid}"):
            assert rss_kb(pid) - before[pid] < 4096, "memory grew with the flood"
    # Read what the server answered to all of it; the session is alive.
    quiet_since = time.time()
    deadline = time.time() + 120
    while time.time() - quiet_since < 2 and time.time() < deadline:
        before_len = len(c.raw)
        c.pump(0.5)
        if len(c.raw) != before_len:
            quiet_since = time.time()
    c.sock.settimeout(30)
    c.line("echo SURVIVED-$((3*3))")
    c.read_until(rb"SURVIVED-9", 60)
    still_serving(d)


def test_encrypt_is_refused(telnetd):
    """CVE-2011-4862: an ENCRYPT key id subnegotiation."""
    d = telnetd()
    c = TelnetClient(d.port)
    c.send_raw([IAC, WILL, ENCRYPT])
    c.send_raw(bytes([IAC, SB, ENCRYPT, 7, 1]) + b"\x41" * 2000 + bytes([IAC, SE]))
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    assert c.sent(DONT, ENCRYPT)
    assert b"AAAA" not in c.text
    assert c.shell("echo FINE") == "FINE"


def test_over_long_subnegotiations(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    c.send_raw(bytes([IAC, SB, NEW_ENVIRON, 0, 0]) + b"USER\x01" + b"a" * 100_000 + bytes([IAC, SE]))
    c.send_raw(bytes([IAC, SB, 200]) + b"\xff\xff" * 50_000 + bytes([IAC, SE]))
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    assert c.shell("echo FINE") == "FINE"


def test_ten_megabytes_of_random_bytes(telnetd):
    d = telnetd()
    rnd = random.Random(42)
    data = rnd.randbytes(10 << 20)
    # Before login: the prompts take what they can, the logins fail, the
    # connection ends; nothing else happens.
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    try:
        s.sendall(data)
    except OSError:
        pass
    s.close()
    # After login, into a program reading everything.
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    # In BINARY, so that exactly these bytes reach the program; raw, so
    # that none is a signal or an end of file.
    c.send_raw([IAC, WILL, 0])
    c.line(f"stty raw -echo; head -c {len(data)} > /dev/null; stty sane; echo STILL-$((2+2))")
    time.sleep(0.5)
    c.send(data)
    c.read_until(rb"STILL-4", 60)
    still_serving(d)


def session_processes(d):
    """The account's process and everything under it."""
    return [pid for depth in (2, 3, 4) for pid in descendants(d.pid, depth)]


def alive(pids):
    return [p for p in pids if os.path.exists(f"/proc/{p}") and
            open(f"/proc/{p}/stat").read().split()[2] != "Z"]


def gone(pids, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = [p for p in pids if os.path.exists(f"/proc/{p}") and
                open(f"/proc/{p}/stat").read().split()[2] != "Z"]
        if not left:
            return True
        time.sleep(0.1)
    return False


def test_kill_9_of_the_session_leaves_nothing_behind(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    c.line("sleep 1000")
    time.sleep(0.7)
    pids = session_processes(d)
    account = descendants(d.pid, 2)
    assert account and pids
    for pid in account:
        os.kill(pid, 9)
    assert c.wait_closed(10)
    assert gone(pids), "processes of the session outlived it"
    still_serving(d)


def test_a_client_that_vanishes_leaves_nothing_behind(telnetd):
    d = telnetd()
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    c.line("sleep 1000")
    time.sleep(0.7)
    pids = session_processes(d)
    assert len(pids) >= 3
    # A reset, as a client killed or unplugged gives.
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.sock.close()
    assert gone(pids), "processes of the session outlived the client"
    still_serving(d)


@pytest.mark.skipif(not IS_ROOT, reason="privileges are checked as root")
def test_privileges_of_each_process(telnetd, lab):
    d = telnetd()
    c = TelnetClient(d.port)
    c.read_until(rb"login: ")
    prelogin = alive(descendants(d.pid, 2))
    assert len(prelogin) == 1
    pre = proc_status(prelogin[0])
    monitor = pre["ppid"]
    assert proc_status(monitor)["uid"][0] == 0
    assert pre["uid"] == [65534] * 4 and pre["nnp"] == 1 and pre["root"] != "/"
    c.line("demo")
    c.read_until(rb"Password: ")
    c.line("demo")
    c.read_until(rb"\$ $")
    deadline = time.time() + 5
    while len(alive(descendants(monitor, 1))) != 1 and time.time() < deadline:
        time.sleep(0.05)
    account = alive(descendants(monitor, 1))
    assert len(account) == 1
    st = proc_status(account[0])
    assert st["uid"] == [lab.uid] * 4 and 0 not in st["groups"]


def utmp_records(path):
    """(type, pid, line, user, host) of each record of a utmp file."""
    out = []
    data = open(path, "rb").read()
    for i in range(0, len(data) - 383, 384):
        r = data[i:i + 384]
        typ, pid = struct.unpack_from("hxxi", r, 0)
        line = r[8:40].split(b"\0")[0].decode()
        user = r[44:76].split(b"\0")[0].decode()
        host = r[76:332].split(b"\0")[0].decode()
        out.append((typ, pid, line, user, host))
    return out


@pytest.mark.skipif(not IS_ROOT, reason="utmp, wtmp and the terminal's owner need root")
def test_terminal_owner_utmp_and_wtmp(telnetd, lab):
    if not os.path.exists("/run/utmp"):
        open("/run/utmp", "wb").close()
        os.chmod("/run/utmp", 0o664)
    wtmp_before = len(utmp_records("/var/log/wtmp"))
    d = telnetd()
    c = TelnetClient(d.port)
    c.login("demo", "demo")
    c.read_until(rb"\$ $")
    tty = c.shell("tty")
    st = os.stat(tty)
    import grp
    assert st.st_uid == lab.uid and st.st_gid == grp.getgrnam("tty").gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o620
    line = tty[len("/dev/"):]
    who = [r for r in utmp_records("/run/utmp") if r[2] == line and r[0] == 7]
    assert who and who[0][3] == "demo" and who[0][4] in ("localhost", "127.0.0.1")
    c.line("exit")
    assert c.wait_closed()
    time.sleep(0.5)
    records = utmp_records("/var/log/wtmp")[wtmp_before:]
    mine = [r for r in records if r[2] == line]
    assert [r[0] for r in mine][-2:] == [7, 8], mine
    assert mine[-2][3] == "demo"
    # Given back: root's, 0600 (or gone with the last master).
    if os.path.exists(tty):
        st = os.stat(tty)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
