"""Helpers for the imapd tests: a Dovecot IMAP server for the reference
runs, raw IMAP conversations, and Maildir delivery by hand."""

import os
import pwd
import shutil
import socket
import subprocess
import time

from conftest import CI, IS_ROOT, free_port, need_reference, wait_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class Dovecot:
    """Dovecot 2.3 serving IMAP for lab accounts, in a tree of its own."""

    def __init__(self, lab, mail_location="maildir:~/Maildir"):
        need_reference(DOVECOT, "dovecot-imapd")
        self.dir = lab.dir / f"dovecot-{free_port()}"
        (self.dir / "run").mkdir(parents=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        pw = self.dir / "passwd"
        lines = []
        for line in lab.passwd_file.read_text().splitlines():
            name, hash_, uid, gid, gecos, home, shell = line.split(":")
            lines.append(f"{name}:{{CRYPT}}{hash_}:{uid}:{gid}::{home}::")
        pw.write_text("\n".join(lines) + "\n")
        os.chmod(pw, 0o644)
        me = pwd.getpwuid(os.getuid()).pw_name
        users = "" if IS_ROOT else f"default_internal_user = {me}\ndefault_login_user = {me}"
        conf = self.dir / "dovecot.conf"
        conf.write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = {mail_location}
passdb {{
  driver = passwd-file
  args = {pw}
}}
userdb {{
  driver = passwd-file
  args = {pw}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{users}
""")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def log(self):
        try:
            return (self.dir / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Raw:
    """A raw IMAP conversation over one socket."""

    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, tag, text):
        """Send `tag text` and collect lines through the tagged reply."""
        self.send(f"{tag} {text}\r\n".encode() if isinstance(text, str) else tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        out = []
        while True:
            l = self.line()
            out.append(l)
            if l.startswith(tag.encode() + b" "):
                return out

    def closed(self, timeout=5):
        """Whether the server closed the connection (after what it sent)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    def close(self):
        self.s.close()


def maildir_deliver(home, text, name=None, sub="new"):
    """Put a message in demo's Maildir the way an MDA does (tmp, rename)."""
    md = home / "Maildir"
    for d in ("tmp", "new", "cur"):
        (md / d).mkdir(parents=True, exist_ok=True)
    name = name or f"{int(time.time())}.M{time.time_ns() % 1000000}P{os.getpid()}.test"
    tmp = md / "tmp" / name
    tmp.write_bytes(text if isinstance(text, bytes) else text.encode())
    os.rename(tmp, md / sub / name)
    return md / sub / name


def chown_home(lab):
    lab.chown_tree(lab.home)
