"""Helpers shared by the smtpd interop tests (receiving side)."""

import os
import re
import socket
import subprocess
import ssl
import time
from pathlib import Path

from conftest import binary

HOST = "127.0.0.1"
HOSTNAME = "mx.lab.test"
# Message text past the 256 KiB a session keeps in memory: such a message
# goes through the queue even when it is local.
PAST_MEMORY_LIMIT = ("x" * 70 + "\r\n") * 3800


def smtpd_opts(lab, *extra, tls=None, queue="queue"):
    """The -o options of a lab smtpd: its own spool, aliases, local domains."""
    q = lab.dir / queue
    aliases = lab.dir / "aliases"
    if not aliases.exists():
        aliases.write_text("staff: demo, alice\nloop1: loop2\nloop2: loop1\n"
                           "far: someone@far.test\nnobody: /dev/null\n")
    opts = [f"queue_dir={q}", f"hostname={HOSTNAME}", "local_domains=lab.test,localhost",
            f"aliases_file={aliases}", "mail_location=maildir:~/Maildir"]
    if tls:
        opts += [f"tls_cert={tls[0]}", f"tls_key={tls[1]}"]
    return opts + list(extra)


def traversable(lab):
    """Deliveries run as the recipient (nobody, under root)."""
    from conftest import make_traversable
    make_traversable(lab.dir)


def start_smtpd(daemon, lab, *extra, tls=None, queue="queue", **kw):
    traversable(lab)
    if "alice" not in lab.users:
        lab.add_user("alice", "alice")
    return daemon("smtpd", *smtpd_opts(lab, *extra, tls=tls, queue=queue), **kw)


def client_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _maildir_files(home):
    out = []
    for sub in ("new", "cur"):
        d = Path(home) / "Maildir" / sub
        if d.is_dir():
            out += sorted(p for p in d.iterdir() if p.is_file())
    return out


def _queue_files(lab):
    d = lab.dir / "queue" / "q"
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def stored(lab, settle=5.0):
    """Every message the system holds for the lab users: delivered to a
    Maildir or still in the queue. Waits (up to `settle` s) for the queue to
    drain so that no message is seen twice on its way from one to the other."""
    deadline = time.time() + settle
    while _queue_files(lab) and time.time() < deadline:
        time.sleep(0.1)
    # A message may leave the queue for a Maildir between the listing and
    # the read: then take the snapshot again.
    for _ in range(100):
        files = []
        for home in lab.users.values():
            files += _maildir_files(home)
        files += _queue_files(lab)
        try:
            return [f.read_bytes() for f in files]
        except FileNotFoundError:
            time.sleep(0.05)
    raise RuntimeError("the queue never held still long enough to read")


def wait_stored(lab, count, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = stored(lab, settle=0)
        if len(msgs) >= count:
            return stored(lab)
        time.sleep(0.1)
    return stored(lab)


def tmp_files(lab):
    d = lab.dir / "queue" / "tmp"
    # spare.N: a finished message's file kept to be written over.
    return [p for p in d.iterdir() if not p.name.startswith("spare.")] if d.is_dir() else []


class Raw:
    """A byte-exact SMTP client for what real clients never send."""

    def __init__(self, port, host=HOST, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(l[4:] for l in lines)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def cmd(self, line: str):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """Whether the server closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def as_root_can_chown(path, lab):
    if os.geteuid() == 0:
        os.chown(path, lab.uid, lab.gid)


def wait_for(pred, timeout=20.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def queue_listing(lab, queue_dir):
    r = subprocess.run([str(binary("smtpd")), "-o", f"passwd_file={lab.passwd_file}",
                        "-o", f"queue_dir={queue_dir}", "--queue"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def runner_pid(d):
    """The queue runner's pid, from its start-up log line."""
    def find():
        pids = re.findall(r"smtpd\[(\d+)\]: info: queue runner started", d.log())
        pids = [int(p) for p in pids if Path(f"/proc/{p}").exists()]
        return pids[-1] if pids else None
    return wait_for(find, timeout=10)
