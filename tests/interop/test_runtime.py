"""The common contract every daemon shares: flags, exit codes, configuration
errors, inetd mode through a real socket, standalone with -F and -D,
pid_file, SIGTERM, SIGHUP, limits, idle timeout, systemd sockets, xinetd."""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, Xinetd, binary, free_port, wait_port

# Every TCP daemon built so far, with the start of its greeting and its
# "too busy" reply.
TCP_DAEMONS = {
    "ftpd": (b"220", b"421"),
    "smtpd": (b"220", b"421"),
    "pop3d": (b"+OK", b"-ERR"),
}
BUILT = [d for d in TCP_DAEMONS if (BIN / d).exists()]
# Flags and configuration checks apply to every daemon, UDP ones included.
ALL = BUILT + [d for d in ("tftpd",) if (BIN / d).exists()]


def greeting(sock):
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def run(name, *args, **kw):
    return subprocess.run([str(binary(name)), *args], capture_output=True, text=True,
                          timeout=30, **kw)


@pytest.mark.parametrize("name", ALL)
def test_version_and_help(name):
    r = run(name, "-V")
    assert r.returncode == 0 and name in r.stdout
    r = run(name, "-h")
    assert r.returncode == 0 and "-D" in r.stdout and "-o KEY=VALUE" in r.stdout
    r = run(name, "-Z")
    assert r.returncode == 2 and "Usage" in r.stderr


@pytest.mark.parametrize("name", ALL)
def test_check_prints_effective_settings(name, lab):
    conf = lab.dir / f"{name}.conf"
    conf.write_text("# sample\nmax_sessions = 7\n\nbanner = hello there\n")
    r = run(name, "-t", "-f", str(conf), "-o", "max_per_ip=3")
    assert r.returncode == 0, r.stderr
    assert "max_sessions = 7\n" in r.stdout
    assert "max_per_ip = 3\n" in r.stdout
    assert "banner = hello there\n" in r.stdout
    assert "idle_timeout = " in r.stdout and "listen = " in r.stdout


@pytest.mark.parametrize("name", ALL)
def test_bad_configuration_names_file_line_key(name, lab):
    conf = lab.dir / "bad.conf"
    conf.write_text("max_sessions = 5\nno_such_key = 1\n")
    r = run(name, "-t", "-f", str(conf))
    assert r.returncode == 2
    assert f"{conf}:2" in r.stderr and "no_such_key" in r.stderr
    conf.write_text("max_per_ip = lots\n")
    r = run(name, "-t", "-f", str(conf))
    assert r.returncode == 2 and f"{conf}:1" in r.stderr and "max_per_ip" in r.stderr
    r = run(name, "-t", "-o", "log=somewhere")
    assert r.returncode == 2 and "log" in r.stderr
    r = run(name, "-t", "-o", "listen=nowhere")
    assert r.returncode == 2 and "listen" in r.stderr
    r = run(name, "-t", "-f", str(lab.dir / "missing.conf"))
    assert r.returncode == 2 and "missing.conf" in r.stderr


@pytest.mark.parametrize("name", ALL)
def test_runtime_failure_exit_code(name, lab):
    # The port is taken: cannot bind is a failure at run time.
    udp = name not in TCP_DAEMONS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        if not udp:
            s.listen(1)
        port = s.getsockname()[1]
        r = run(name, "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "log=stderr")
    assert r.returncode == 1 and "bind" in r.stderr
    r = run(name, "-t", "-o", f"tls_cert={lab.dir}/none.pem", "-o", f"tls_key={lab.dir}/none.pem")
    assert r.returncode == 1 and "none.pem" in r.stderr


@pytest.mark.parametrize("name", BUILT)
def test_inetd_mode_through_a_real_socket(name, daemon):
    d = daemon(name, mode="inetd")
    with d.connect() as s:
        assert greeting(s).startswith(TCP_DAEMONS[name][0])
    # Each connection is its own process; a second works as well.
    with d.connect() as s:
        assert greeting(s).startswith(TCP_DAEMONS[name][0])


@pytest.mark.parametrize("name", BUILT)
def test_inetd_mode_refuses_a_terminal(name):
    r = run(name, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "not a socket" in r.stderr


@pytest.mark.parametrize("name", BUILT)
def test_standalone_ipv4_and_ipv6_with_banner(name, lab):
    port = free_port()
    p = subprocess.Popen([str(binary(name)), "-F", "-o", f"listen=127.0.0.1:{port},[::1]:{port}",
                          "-o", "banner=Lab server", "-o", "log=stderr"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc=p)
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, port)) as s:
                g = greeting(s)
                assert g.startswith(TCP_DAEMONS[name][0]) and b"Lab server" in g
    finally:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=10)[1]
    assert p.returncode == 0
    assert "connection from 127.0.0.1" in out and "connection from [::1]" in out
    assert "session with 127.0.0.1" in out


@pytest.mark.parametrize("name", BUILT)
def test_detach_pid_file_and_sigterm(name, lab):
    """-D: ready when the command returns; SIGTERM stops listening."""
    port = free_port()
    pid_file = lab.dir / f"{name}.pid"
    r = run(name, "-D", "-o", f"listen=127.0.0.1:{port}", "-o", f"pid_file={pid_file}")
    assert r.returncode == 0, r.stderr
    # The pid file is there as soon as the command returns (systemd's
    # Type=forking with PIDFile=, start-stop-daemon), and the daemon listens.
    pid = int(pid_file.read_text())
    os.kill(pid, 0)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    # A session that is open when the master stops runs on to its end.
    s = socket.create_connection(("127.0.0.1", port))
    assert greeting(s).startswith(TCP_DAEMONS[name][0])
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 5
    while pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_file.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    s.sendall(b"QUIT\r\n")
    assert greeting(s)[:1] in (b"2", b"+")
    s.close()


def test_detach_reports_a_failed_start(lab):
    """-D returns 1 when the daemon cannot start after detaching (its pid
    file cannot be written), not 0 with nothing running."""
    port = free_port()
    r = run("pop3d", "-D", "-o", f"listen=127.0.0.1:{port}",
            "-o", f"pid_file={lab.dir}/missing/dir/pop3d.pid")
    assert r.returncode == 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def open_sessions(d, n, ok, deadline=15):
    """Open n sessions that all get the greeting, once the start-up probe's
    session (which still counts against the limits) has ended."""
    end = time.time() + deadline
    while True:
        socks = [d.connect() for _ in range(n)]
        if all(greeting(s).startswith(ok) for s in socks):
            return socks
        for s in socks:
            s.close()
        if time.time() > end:
            pytest.fail(f"could not open {n} sessions")
        time.sleep(0.2)


@pytest.mark.parametrize("name", BUILT)
def test_max_sessions_and_max_per_ip(name, daemon):
    ok, busy = TCP_DAEMONS[name]
    d = daemon(name, "max_sessions=2", "max_per_ip=5")
    a, b = open_sessions(d, 2, ok)
    with d.connect() as c:
        assert greeting(c).startswith(busy)
    a.close()
    # The freed place is usable once the master has reaped the session.
    (c,) = open_sessions(d, 1, ok)
    c.close()
    b.close()
    d2 = daemon(name, "max_per_ip=1")
    (a,) = open_sessions(d2, 1, ok)
    with d2.connect() as c:
        assert greeting(c).startswith(busy)
    a.close()
    assert "max_per_ip reached" in d2.log()


@pytest.mark.parametrize("name", BUILT)
def test_sighup_rereads_configuration(name, lab, daemon):
    conf = lab.dir / "hup.conf"
    conf.write_text("banner = first\n")
    d = daemon(name, extra_args=["-f", str(conf)])
    with d.connect() as s:
        assert b"first" in greeting(s)
    conf.write_text("banner = second\n")
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    with d.connect() as s:
        assert b"second" in greeting(s)
    # A broken file is refused and the old settings stay.
    conf.write_text("banner = third\nbogus = 1\n")
    d.signal(signal.SIGHUP)
    time.sleep(0.5)
    with d.connect() as s:
        assert b"second" in greeting(s)
    assert d.alive()
    assert "not reloaded" in d.log()


@pytest.mark.parametrize("name", BUILT)
def test_idle_timeout_ends_a_silent_session(name, daemon):
    d = daemon(name, "idle_timeout=1")
    with d.connect() as s:
        greeting(s)
        s.settimeout(10)
        started = time.time()
        rest = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert time.time() - started < 8


@pytest.mark.parametrize("name", BUILT)
def test_overlong_and_nul_lines_do_not_kill_the_session(name, daemon):
    d = daemon(name)
    with d.connect() as s:
        greeting(s)
        s.sendall(b"X" * 100_000 + b"\r\n")
        reply = greeting(s)
        assert reply[:1] in (b"5", b"-"), reply
        s.sendall(b"NO\0OP\r\n")
        assert greeting(s)[:1] in (b"5", b"-")
        s.sendall(b"QUIT\r\n")
        assert greeting(s)[:1] in (b"2", b"+")
    assert d.alive()


@pytest.mark.parametrize("name", BUILT)
def test_systemd_socket_activation(name, lab):
    port = free_port()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(8)
    fd = lsock.fileno()
    script = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" -F -o log=stderr -o listen=127.0.0.1:1'
    # The socket becomes fd 3, as systemd passes it.
    p = subprocess.Popen(["sh", "-c", script, str(binary(name))], pass_fds=[fd, 3],
                         preexec_fn=lambda: os.dup2(fd, 3), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lsock.close()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert greeting(s).startswith(TCP_DAEMONS[name][0])
        s.close()
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=10)[1]
    assert f"127.0.0.1:{port}" in err


def test_xinetd_launches_a_daemon(lab):
    name = BUILT[0]
    with Xinetd(lab, binary(name), "-o banner=via-xinetd") as x:
        with socket.create_connection(("127.0.0.1", x.port)) as s:
            g = greeting(s)
            assert g.startswith(TCP_DAEMONS[name][0]) and b"via-xinetd" in g


@pytest.mark.parametrize("name", BUILT)
def test_inetd_mode_never_logs_to_the_client(name, daemon):
    # Even asked for stderr and debug output, the client sees only protocol.
    d = daemon(name, "log=stderr", mode="inetd", extra_args=["-d"])
    with d.connect() as s:
        g = greeting(s)
        assert g.startswith(TCP_DAEMONS[name][0])
        s.sendall(b"QUIT\r\n")
        s.settimeout(10)
        rest = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
    for text in (g, rest):
        assert b"info:" not in text and b"debug:" not in text and b"connection from" not in text


@pytest.mark.parametrize("name", BUILT)
def test_refused_tls_client_gets_no_handshake(name, daemon, tls_files):
    cert, key = tls_files
    port = free_port()
    daemon(name, f"tls_cert={cert}", f"tls_key={key}", f"tls_listen=127.0.0.1:{port}",
               "max_sessions=0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        started = time.time()
        s.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello
        try:
            assert s.recv(4096) == b""  # closed, no ServerHello
        except ConnectionResetError:
            pass  # or reset, since what the client sent was never read
        assert time.time() - started < 5


@pytest.mark.parametrize("name", BUILT)
def test_inetd_session_has_dev_null_on_fd0(name, daemon):
    d = daemon(name, mode="inetd")
    with d.connect() as s:
        greeting(s)
        deadline = time.time() + 5
        while not d.inetd.children and time.time() < deadline:
            time.sleep(0.02)  # the emulator records the child after spawning it
        child = d.inetd.children[-1]
        assert os.readlink(f"/proc/{child.pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{child.pid}/fd/2") == "/dev/null"


@pytest.mark.parametrize("name", BUILT)
def test_tls_keys_must_pair(name, lab):
    r = run(name, "-t", "-o", f"tls_cert={lab.dir}/c.pem")
    assert r.returncode == 2 and "tls_key" in r.stderr
    r = run(name, "-t", "-o", "tls_listen=127.0.0.1:9999")
    assert r.returncode == 2 and "tls_listen" in r.stderr
    r = run(name, "-F", "-o", "listen=")
    assert r.returncode == 2 and "listen" in r.stderr


def running(pid):
    """Alive and not a zombie (this machine's init may reap late)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not (BIN / "smtpd").exists(), reason="smtpd not built")
def test_smtpd_reuses_session_processes_within_the_limits(daemon):
    """smtpd (max_use > 1): a session process whose client left serves the
    next connection; an idle one does not count against the limits; SIGHUP
    retires the idle ones and SIGTERM leaves none behind."""
    import re

    d = daemon("smtpd", "max_per_ip=1", "max_sessions=1")
    for _ in range(4):
        # The place is free once the process has reported itself idle.
        (s,) = open_sessions(d, 1, b"220")
        s.sendall(b"QUIT\r\n")
        assert greeting(s).startswith(b"221")
        s.close()
    pids = set(re.findall(r"smtpd\[(\d+)\]: info: connection from", d.log()))
    assert len(pids) == 1, d.log()
    # Busy processes still count: a second client at once is refused.
    (first,) = open_sessions(d, 1, b"220")
    with d.connect() as c:
        assert greeting(c).startswith(b"421")
    first.sendall(b"NOOP\r\n")
    assert greeting(first).startswith(b"250")
    first.close()
    d.signal(signal.SIGHUP)
    d.wait_log("configuration reloaded")
    (s,) = open_sessions(d, 1, b"220")
    s.close()
    after = set(re.findall(r"smtpd\[(\d+)\]: info: connection from", d.log())) - pids
    assert after, "a process from before the reload served a new connection"
    workers = {int(p) for p in pids | after}
    d.signal(signal.SIGTERM)
    d.proc.wait(timeout=10)
    deadline = time.time() + 5
    while time.time() < deadline and any(running(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if running(p)]


@pytest.mark.skipif(not (BIN / "smtpd").exists(), reason="smtpd not built")
def test_sigterm_to_master_and_companion_at_once_stops_both(daemon):
    """As `pkill smtpd` does: the queue runner and the master get SIGTERM
    together. The master must not restart the runner on its way out, nor
    hang waiting for it."""
    for _ in range(3):
        d = daemon("smtpd")
        d.wait_log("queue runner started")
        kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(d.pid)], capture_output=True,
                              text=True).stdout.split()
        assert kids
        for k in kids:
            os.kill(int(k), signal.SIGTERM)
        d.signal(signal.SIGTERM)
        d.proc.wait(timeout=20)
        assert not [k for k in kids if running(k)], d.log()


def test_busy_reply_names_the_configured_host(daemon):
    """smtpd's 421 for a client over the limits names the configured
    `hostname`, never the machine's own name."""
    d = daemon("smtpd", "max_per_ip=1", "hostname=mx.configured.test",
               "local_domains=configured.test")
    (a,) = open_sessions(d, 1, b"220")
    with d.connect() as c:
        text = greeting(c)
    assert text.startswith(b"421") and b"mx.configured.test" in text, text
    assert socket.gethostname().encode() not in text
    a.close()
