"""Helpers for the BSD r-services tests (rshd, rlogind): a raw client bound
to a reserved port, trust files, tmux for the terminal clients."""

import os
import select
import shutil
import socket
import subprocess
import time
import uuid

from conftest import IS_ROOT, free_port, need


def reserved_socket(port_from=1023, port_to=600, host="127.0.0.1"):
    """A TCP socket bound to a free port in 512-1023 (rresvport), as root."""
    for p in range(port_from, port_to, -1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, p))
            return s
        except OSError:
            s.close()
    raise RuntimeError("no free reserved port")


def connect_reserved(port, host="127.0.0.1"):
    """Connected from a reserved port; ports still in TIME_WAIT towards the
    same place are skipped (as rresvport's callers retry)."""
    import random
    start = random.randint(600, 1023)
    for p in list(range(start, 511, -1)) + list(range(1023, start, -1)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
            s.connect((host, port))
            s.settimeout(10)
            return s
        except OSError:
            s.close()
    raise RuntimeError("cannot connect from a reserved port")


def recv_all(s, timeout=10):
    """Everything until EOF (or the timeout)."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    return out


def recv_until(s, marker, timeout=10):
    deadline = time.time() + timeout
    out = b""
    s.settimeout(0.2)
    while marker not in out and time.time() < deadline:
        try:
            b = s.recv(4096)
            if not b:
                break
            out += b
        except socket.timeout:
            pass
    return out


def recv_urgent(s, timeout=5):
    """The next TCP urgent byte (select's exceptional condition)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, _, x = select.select([], [], [s], 0.2)
        if x:
            try:
                return s.recv(1, socket.MSG_OOB)[0]
            except OSError:
                time.sleep(0.05)
    return None


def write_rhosts(home, text, mode=0o600, uid=None, gid=None):
    path = os.path.join(home, ".rhosts")
    if os.path.lexists(path):
        os.unlink(path)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if IS_ROOT:
        st = os.stat(home)
        os.chown(path, st.st_uid if uid is None else uid, st.st_gid if gid is None else gid)
    return path


class Tmux:
    """A terminal client inside tmux: type with send(), read the screen."""

    def __init__(self, command, cols=100, rows=30):
        self.tmux = need("tmux")
        self.name = "cd-" + uuid.uuid4().hex[:8]
        subprocess.run([self.tmux, "new-session", "-d", "-s", self.name, "-x", str(cols),
                        "-y", str(rows), command + "; sleep 30"], check=True)

    def send(self, *keys):
        subprocess.run([self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text):
        subprocess.run([self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)
        self.send("Enter")

    def screen(self):
        return subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on the screen:\n{self.screen()}")

    def wait_prompt(self, timeout=10):
        """The shell's prompt alone on a line (tmux drops trailing blanks)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(l.strip() == "$" for l in self.screen().splitlines()):
                return
            time.sleep(0.1)
        raise AssertionError(f"no prompt on the screen:\n{self.screen()}")

    def resize(self, cols, rows):
        subprocess.run([self.tmux, "resize-window", "-t", self.name, "-x", str(cols),
                        "-y", str(rows)], check=True)

    def close(self):
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True)


def rsh_redone():
    return need("rsh-redone-rsh")


def rlogin_redone():
    return need("rsh-redone-rlogin")
