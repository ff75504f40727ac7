"""rshd driven by real rsh clients (netkit's rsh on port 514 of a loopback
address of its own, rsh-redone's with -p), a raw client for the wire cases,
and inetd/xinetd. Needs root: clients bind reserved ports."""

import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import IS_ROOT, MiniInetd, Xinetd, binary, need
from rcmd_helpers import (connect_reserved, recv_all, reserved_socket, rsh_redone,
                          write_rhosts)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="rsh clients bind reserved ports")


def rshd(daemon, lab, *opts, **kw):
    return daemon("rshd", f"hosts_equiv={lab.dir}/hosts.equiv", *opts, **kw)


def handshake(s, port=b"", ruser=b"root", luser=b"demo", command=b"echo hi"):
    s.sendall(port + b"\0" + ruser + b"\0" + luser + b"\0" + command + b"\0")


def test_netkit_rsh_stdout_and_stderr_apart_stdin_and_exit(daemon, lab):
    rsh = need("netkit-rsh")
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab, host="127.0.0.37", port=514)
    r = subprocess.run([rsh, "-l", "demo", "127.0.0.37", "echo out; echo err >&2; pwd; id -un"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout.splitlines() == ["out", str(lab.home), "nobody"], r
    assert r.stderr == "err\n"
    # Standard input reaches the command; its output is all there at the end.
    r = subprocess.run([rsh, "-l", "demo", "127.0.0.37", "wc -c; head -c 3000000 /dev/zero"],
                       input=b"x" * 100000, capture_output=True, timeout=30)
    assert r.stdout.startswith(b"100000\n") and len(r.stdout) == 7 + 3000000
    # A clean environment, built from allow-lists.
    r = subprocess.run([rsh, "-l", "demo", "127.0.0.37", "env"], capture_output=True,
                       text=True, timeout=20, env={"PATH": os.environ["PATH"], "EVIL": "1"})
    names = sorted(l.split("=")[0] for l in r.stdout.splitlines())
    assert names == ["HOME", "LOGNAME", "PATH", "PWD", "SHELL", "USER"], names
    assert "trust: root@" in d.log() and ".rhosts line 1" in d.log()
    assert "command ended: exit status 0" in d.log()


def test_signals_from_the_client_reach_the_command(daemon, lab):
    rsh = need("netkit-rsh")
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab, host="127.0.0.38", port=514)
    # Short sleeps, not one long one: a signal that reaches the shell after
    # "ready" but before its child starts is held until that child ends
    # (POSIX: a trap runs once the foreground job is done).
    p = subprocess.Popen([rsh, "-l", "demo", "127.0.0.38",
                          "trap 'echo got INT >&2; exit 7' INT; echo ready; "
                          "i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # rsh forwards only the signals it does not inherit
                         # ignored (a suite run in the background ignores
                         # SIGINT).
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert "got INT" in err
    deadline = time.time() + 5
    while "exit status 7" not in d.log() and time.time() < deadline:
        time.sleep(0.1)
    assert "signal SIGINT from the client" in d.log()
    assert "exit status 7" in d.log()


def test_rsh_redone_client(daemon, lab):
    rsh = rsh_redone()
    write_rhosts(lab.home, "# lab\nlocalhost root\n")
    d = rshd(daemon, lab)
    r = subprocess.run([rsh, "-l", "demo", "-p", str(d.port), "127.0.0.1", "echo", "one", "two"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout == "one two\n", r
    assert "allowed by" in d.log() and "line 2" in d.log()


def test_no_trust_is_permission_denied(daemon, lab):
    write_rhosts(lab.home, "otherhost.invalid root\n+ -root\n+ +\n")
    d = rshd(daemon, lab)
    s = connect_reserved(d.port)
    handshake(s)
    assert recv_all(s) == b"\x01Permission denied.\n"
    assert "line 2 refuses" in d.log()
    # The daemon is there for the next client.
    write_rhosts(lab.home, "+ +\n")
    s = connect_reserved(d.port)
    handshake(s, command=b"echo again")
    assert recv_all(s) == b"\0again\n"


@pytest.mark.parametrize("fields, reply", [
    (b"12a\0", b"\x01rshd: bad stderr port.\n"),
    (b"70000\0", b"\x01rshd: bad stderr port.\n"),
    (b"123456\0", b"\x01rshd: bad stderr port.\n"),
    (b"40000\0", b"\x01rshd: the stderr port is not reserved.\n"),
    (b"\0" + b"r" * 33 + b"\0", b"\x01rshd: client user too long.\n"),
    (b"\0root\0" + b"d" * 40 + b"\0", b"\x01rshd: server user too long.\n"),
    (b"\0-froot\0demo\0id\0", b"\x01Permission denied.\n"),
    (b"\0root\0-froot\0id\0", b"\x01Permission denied.\n"),
    (b"\0root\0demo\0" + b"x" * 13000 + b"\0", b"\x01rshd: command too long.\n"),
])
def test_wire_refusals(daemon, lab, fields, reply):
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab)
    s = connect_reserved(d.port)
    s.sendall(fields)
    assert recv_all(s) == reply
    assert "refused" in d.log()


def test_privileged_ports(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    handshake(s)
    assert recv_all(s) == b"\x01Permission denied.\n"
    assert "not reserved" in d.log()
    # Without the requirement, any source port and any stderr port.
    d2 = rshd(daemon, lab, "require_privileged_port=no")
    err = socket.socket()
    err.bind(("127.0.0.1", 0))
    err.listen(1)
    s = socket.create_connection(("127.0.0.1", d2.port), timeout=10)
    handshake(s, port=str(err.getsockname()[1]).encode(), command=b"echo o; echo e >&2")
    e, addr = err.accept()
    # Made from a reserved port, to our own address.
    assert 512 <= addr[1] <= 1023 and addr[0] == "127.0.0.1"
    assert recv_all(s) == b"\0o\n"
    assert recv_all(e) == b"e\n"


def test_stderr_port_nobody_listens_on(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab)
    closed = reserved_socket(900, 700)
    port = closed.getsockname()[1]
    closed.close()
    s = connect_reserved(d.port)
    handshake(s, port=str(port).encode())
    assert recv_all(s) == b"\x01rshd: cannot connect to the stderr port.\n"


def test_slow_and_vanishing_clients(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rshd(daemon, lab, "login_timeout=2")
    s = connect_reserved(d.port)
    s.sendall(b"\0root\0")
    t = time.time()
    assert recv_all(s) == b"\x01rshd: timed out.\n"
    assert time.time() - t < 6
    # A client that vanishes mid-handshake, and one killed mid-command.
    s = connect_reserved(d.port)
    s.sendall(b"\0ro")
    s.close()
    s = connect_reserved(d.port)
    handshake(s, command=b"sleep 30")
    assert s.recv(1) == b"\0"
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    s.close()
    s = connect_reserved(d.port)
    handshake(s, command=b"echo still here")
    assert recv_all(s) == b"\0still here\n"


def test_use_rhosts_no_and_hosts_equiv(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    equiv = lab.dir / "hosts.equiv"
    d = rshd(daemon, lab, "use_rhosts=no")
    s = connect_reserved(d.port)
    handshake(s)
    assert recv_all(s) == b"\x01Permission denied.\n"
    assert "use_rhosts is off" in d.log()
    equiv.write_text("localhost root\n")
    os.chmod(equiv, 0o644)
    s = connect_reserved(d.port)
    handshake(s)
    assert recv_all(s) == b"\0hi\n"
    assert f"allowed by {equiv} line 1" in d.log()


def test_from_inetd_and_xinetd(lab):
    write_rhosts(lab.home, "+ +\n")
    args = ["-o", f"passwd_file={lab.passwd_file}", "-o", f"hosts_equiv={lab.dir}/equiv"]
    inetd = MiniInetd([str(binary("rshd"))] + args)
    try:
        s = connect_reserved(inetd.port)
        handshake(s, command=b"echo via inetd")
        assert recv_all(s) == b"\0via inetd\n"
    finally:
        inetd.stop()
    with Xinetd(lab, binary("rshd"), " ".join(args)) as x:
        s = connect_reserved(x.port)
        handshake(s, command=b"echo via xinetd")
        assert recv_all(s) == b"\0via xinetd\n"
