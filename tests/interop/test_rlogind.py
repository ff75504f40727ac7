"""rlogind driven by real rlogin clients in tmux (rsh-redone's and
netkit's), a raw client for the wire (handshake bounds, the window-size
escape split across writes, urgent control bytes in packet mode), the
builtin password login, and inetd/xinetd. Needs root: reserved ports."""

import os
import re
import socket
import struct
import subprocess
import time

import pytest

from conftest import IS_ROOT, MiniInetd, Xinetd, binary, need
from rcmd_helpers import (Tmux, connect_reserved, recv_all, recv_until, recv_urgent,
                          rlogin_redone, write_rhosts)

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="rlogin clients bind reserved ports")


def rlogind(daemon, lab, *opts, **kw):
    return daemon("rlogind", f"hosts_equiv={lab.dir}/hosts.equiv",
                  f"issue_file={lab.dir}/issue.net", *opts, **kw)


def window(rows, cols, x=0, y=0):
    return b"\xff\xffss" + struct.pack(">HHHH", rows, cols, x, y)


def test_trusted_login_with_rsh_redone_rlogin(daemon, lab):
    client = rlogin_redone()
    write_rhosts(lab.home, "localhost root\n")
    d = rlogind(daemon, lab)
    t = Tmux(f"{client} -l demo -p {d.port} 127.0.0.1", cols=100, rows=30)
    try:
        t.wait_prompt()
        t.type("echo TERM=$TERM; stty size; tty; pwd; echo zero=$0")
        s = t.wait("zero=-")
        assert "TERM=tmux" in s or "TERM=screen" in s, s
        assert "30 100" in s
        assert str(lab.home) in s and "/dev/pts/" in s and "zero=-sh" in s
        # The window follows the client's.
        t.resize(120, 40)
        time.sleep(0.5)
        t.type("stty size")
        t.wait("40 120")
        t.type("echo pts-$(tty | cut -c6-8)")
        t.wait("pts-pts")
        # A full-screen program: raw mode and back.
        t.type("stty raw -echo; sleep 0.3; stty -raw echo; echo back-$((1+1))")
        t.wait("back-2")
        t.type("exit")
        deadline = time.time() + 10
        while "session ended" not in d.log() and time.time() < deadline:
            time.sleep(0.1)
    finally:
        t.close()
    log = d.log()
    assert ".rhosts line 1" in log and "trusted login" in log
    assert "shell exit status 0" in log
    # The login is in wtmp, written by the monitor (login and logout).
    last = subprocess.run(["last", "-w", "-n", "50", "demo"], capture_output=True, text=True).stdout
    assert "pts/" in last and "localhost" in last, last


def test_netkit_rlogin(daemon, lab):
    client = need("netkit-rlogin")
    write_rhosts(lab.home, "+ root\n")
    d = rlogind(daemon, lab)
    t = Tmux(f"{client} -l demo -p {d.port} 127.0.0.1", cols=90, rows=25)
    try:
        t.wait_prompt()
        # netkit's rlogin sends its window only once the urgent window
        # request has gone from its reader to its writer by signals; on a
        # loaded machine that can come after the prompt. Wait for it as a
        # user would (the session logs it), then look.
        deadline = time.time() + 10
        while "window size from the client" not in d.log() and time.time() < deadline:
            time.sleep(0.1)
        assert "window size from the client: 25 rows, 90 columns" in d.log(), d.log()
        t.type("stty size; id -un")
        s = t.wait("nobody")
        assert "25 90" in s
    finally:
        t.close()


def test_password_login_when_not_trusted(daemon, lab):
    client = rlogin_redone()
    write_rhosts(lab.home, "-localhost\n")
    (lab.dir / "issue.net").write_text("Welcome to the lab\n")
    d = rlogind(daemon, lab)
    t = Tmux(f"{client} -l demo -p {d.port} 127.0.0.1")
    try:
        t.wait("Password:")
        assert "Welcome to the lab" in t.screen()
        t.type("wrong")
        t.wait("login:")
        assert "Login incorrect" in t.screen()
        t.type("demo")
        t.wait("Password:")
        t.type("demo")
        t.wait_prompt()
        t.type("echo logged-in-$USER")
        t.wait("logged-in-demo")
        # The password was never echoed.
        assert "wrong" not in t.screen()
    finally:
        t.close()
    log = d.log()
    assert ".rhosts line 1 refuses" in log
    assert "login failed: user demo" in log and "password login" in log


def test_the_wire_window_escape_and_urgent_controls(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rlogind(daemon, lab)
    s = connect_reserved(d.port)
    s.sendall(b"\0root\0demo\0vt100/38400\0")
    assert s.recv(1) == b"\0"
    # The window request comes as urgent data.
    assert recv_urgent(s) == 0x80
    # A window size split across three writes, with data around it.
    w = window(33, 111)
    for piece in (b"stty size; stty speed; echo T=$TERM" + w[:3], w[3:7], w[7:] + b"\r"):
        s.sendall(piece)
        time.sleep(0.1)
    out = recv_until(s, b"T=vt100")
    assert b"33 111" in out and b"38400" in out, out
    # Raw mode turns flow control off: 0x10 urgent; cooked: 0x20.
    s.sendall(b"stty raw -ixon\r")
    assert recv_urgent(s) == 0x10
    s.sendall(b"stty -raw ixon\n")
    assert recv_urgent(s) == 0x20
    s.sendall(b"exit\r")
    recv_all(s, timeout=5)



def traced(client, trace, port):
    """The client under strace: what it receives as urgent data and what it
    does to its own terminal with it."""
    strace = need("strace")
    return (f"{strace} -f -ff -o {trace} -e trace=recvfrom,ioctl "
            f"{client} -l demo -p {port} 127.0.0.1")


def read_trace(trace):
    """The client's processes' traces (one file each: no lines split)."""
    return "\n".join(p.read_text() for p in sorted(trace.parent.glob(trace.name + ".*")))


ESCAPES = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13, "\\": 92, '"': 34}


def urgent_bytes(trace):
    """The bytes a traced client received with MSG_OOB, in order."""
    out = []
    for m in re.finditer(r'recvfrom\(\d+, "(\\[0-7]{1,3}|\\.|[^"\\])", 1, MSG_OOB, .*\) = 1$',
                         trace, re.M):
        b = m.group(1)
        if b[0] != "\\":
            out.append(ord(b))
        elif b[1:].isdigit():
            out.append(int(b[1:], 8))
        else:
            out.append(ESCAPES[b[1:]])
    return out


@pytest.mark.parametrize("name", ["netkit-rlogin", "rsh-redone-rlogin"])
def test_an_interrupt_during_output_flushes_the_clients_output(daemon, lab, tmp_path, name):
    """^C in the middle of a flood: the terminal's output queue is flushed,
    which packet mode reports as flush-write, sent as urgent data; the real
    client gets it at the mark and drops what it had not shown yet (netkit's
    rlogin flushes its own terminal's output and reads up to the mark), so
    the prompt comes back at once instead of after the backlog."""
    client = need(name)
    write_rhosts(lab.home, "localhost root\n")
    d = rlogind(daemon, lab)
    trace = tmp_path / "client.trace"
    t = Tmux(traced(client, trace, d.port))
    try:
        t.wait_prompt()
        t.type("while :; do echo FILLER-LINE; done")
        t.wait("FILLER-LINE")
        t.send("C-c")
        # The client's output processes take the urgent byte before what
        # follows is typed (netkit's flushes its terminal when it does).
        time.sleep(1)
        t.type("echo after-$((6*7))")
        t.wait("after-42", timeout=30)
    finally:
        t.close()
    text = read_trace(trace)
    urgent = urgent_bytes(text)
    # The window request first, then flush-write (with flush-read: 0x03).
    assert urgent[0] & 0x80, urgent
    assert any(b & 0x02 for b in urgent[1:]), urgent
    if name == "netkit-rlogin":
        assert "ioctl(1, TCFLSH, TCOFLUSH)" in text, text[-2000:]
        assert "SIOCATMARK" in text


def test_a_program_flushing_the_terminal_flushes_the_client(daemon, lab, tmp_path):
    """tcflush(TCOFLUSH) on the terminal: flush-write alone (0x02) reaches
    the real client as urgent data; what follows the flush is shown."""
    client = need("netkit-rlogin")
    write_rhosts(lab.home, "localhost root\n")
    d = rlogind(daemon, lab)
    trace = tmp_path / "client.trace"
    t = Tmux(traced(client, trace, d.port))
    try:
        t.wait_prompt()
        t.type("python3 -c \"import os, termios; os.write(1, b'before\\n'); "
               "termios.tcflush(1, termios.TCOFLUSH); os.write(1, b'AFTER-' + b'2' * 3 + b'\\n')\"")
        t.wait("AFTER-222")
    finally:
        t.close()
    text = read_trace(trace)
    assert 0x02 in [b & 0x7f for b in urgent_bytes(text)], urgent_bytes(text)
    assert "ioctl(1, TCFLSH, TCOFLUSH)" in text


def test_handshake_bounds_and_refusals(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rlogind(daemon, lab, "login_timeout=2")
    cases = [
        (b"\0" + b"r" * 33 + b"\0", b"\x01rlogind: remote user name too long.\r\n"),
        (b"\0root\0" + b"d" * 33 + b"\0", b"\x01rlogind: local user name too long.\r\n"),
        (b"\0root\0-froot\0xterm/9600\0", b"\x01rlogind: Permission denied.\r\n"),
        (b"x\0root\0demo\0xterm\0", b"\x01rlogind: protocol error.\r\n"),
        (b"\0root\0demo", b"\x01rlogind: handshake timed out.\r\n"),
    ]
    for sent, reply in cases:
        s = connect_reserved(d.port)
        s.sendall(sent)
        assert recv_all(s) == reply, sent
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"\0root\0demo\0xterm\0")
    assert recv_all(s) == b"\x01rlogind: Permission denied.\r\n"
    # Still serving.
    s = connect_reserved(d.port)
    s.sendall(b"\0root\0demo\0xterm\0echo up-$((6*7))\r")
    assert b"up-42" in recv_until(s, b"up-42")


def test_odd_terminal_types_become_network(daemon, lab):
    write_rhosts(lab.home, "+ +\n")
    d = rlogind(daemon, lab)
    s = connect_reserved(d.port)
    s.sendall(b"\0root\0demo\0x;touch /tmp/pwned/9600\0echo T=$TERM.\r")
    assert b"T=network." in recv_until(s, b"T=network.")
    assert not os.path.exists("/tmp/pwned")


def test_from_inetd_and_xinetd(lab):
    write_rhosts(lab.home, "+ +\n")
    args = ["-o", f"passwd_file={lab.passwd_file}", "-o", f"hosts_equiv={lab.dir}/equiv"]
    inetd = MiniInetd([str(binary("rlogind"))] + args)
    try:
        s = connect_reserved(inetd.port)
        s.sendall(b"\0root\0demo\0xterm\0echo via-$((1+1))\r")
        assert b"via-2" in recv_until(s, b"via-2")
    finally:
        inetd.stop()
    with Xinetd(lab, binary("rlogind"), " ".join(args)) as x:
        s = connect_reserved(x.port)
        s.sendall(b"\0root\0demo\0xterm\0echo xi-$((2+1))\r")
        assert b"xi-3" in recv_until(s, b"xi-3")
