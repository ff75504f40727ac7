"""Clients for the telnetd tests.

TelnetClient: a raw-socket TELNET client that answers negotiations as a
terminal client does (TTYPE, NAWS, TSPEED, NEW-ENVIRON with what it is told
to send), records every command the server sends, and reads the screen
text with the TELNET sequences taken out. Used for the wire cases, where
exact bytes matter.

Tmux: a real terminal (tmux) to run the Debian telnet client in, read with
capture-pane.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import time

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
GA, EL, EC, AYT, AO, IP, BRK, DM, NOP = 249, 248, 247, 246, 245, 244, 243, 242, 241
XEOF, SUSP, ABORT = 236, 237, 238
BINARY, ECHO, SGA, STATUS, TM = 0, 1, 3, 5, 6
TTYPE, NAWS, TSPEED, LFLOW, LINEMODE, XDISPLOC = 24, 31, 32, 33, 34, 35
OLD_ENVIRON, AUTHENTICATION, ENCRYPT, NEW_ENVIRON = 36, 37, 38, 39


def sb(option, payload):
    """IAC SB option payload IAC SE, IAC doubled in the payload."""
    return bytes([IAC, SB, option]) + bytes(payload).replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])


class TelnetClient:
    """A scripted TELNET client on a raw socket."""

    def __init__(self, port, host="127.0.0.1", term="XTERM", size=(80, 24), env=None,
                 accept=(TTYPE, NAWS, TSPEED, NEW_ENVIRON, SGA), linemode=False, timeout=15,
                 speed="38400,38400", display=None, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A list of types is cycled as RFC 1091 says: one per SEND, the
        # last one repeated.
        self.terms = [term] if isinstance(term, str) else list(term)
        self.ttype_sends = 0
        self.term = self.terms[0]
        self.size = size
        self.speed = speed
        self.display = display
        self.env = env or []
        self.accept = set(accept) | ({LINEMODE} if linemode else set())
        self.text = b""          # screen bytes, commands removed
        self.pos = 0             # where read_until looks from
        self.commands = []       # (verb or 'SB'/'CMD', option, payload)
        self.raw = b""           # every byte received
        self.closed = False
        self._pending = b""
        self._on = set()

    # -- sending
    def send(self, data):
        """Send bytes as data (IAC doubled)."""
        self.sock.sendall(bytes(data).replace(b"\xff", b"\xff\xff"))

    def send_raw(self, data):
        self.sock.sendall(bytes(data))

    def line(self, text):
        self.send(text.encode() + b"\r\n")

    # -- receiving
    def _answer(self, verb, opt):
        if verb == DO:
            if opt in (TTYPE, NAWS, TSPEED, NEW_ENVIRON, LINEMODE, XDISPLOC, OLD_ENVIRON, LFLOW, BINARY) \
                    and opt in self.accept:
                if opt not in self._on:
                    self._on.add(opt)
                    self.send_raw([IAC, WILL, opt])
                    if opt == NAWS:
                        w, h = self.size
                        self.send_raw(sb(NAWS, [w >> 8, w & 255, h >> 8, h & 255]))
            elif opt == TM:
                self.send_raw([IAC, WILL, TM])
            else:
                self.send_raw([IAC, WONT, opt])
        elif verb == WILL:
            if opt in (ECHO, SGA, STATUS, BINARY):
                if ("him", opt) not in self._on:
                    self._on.add(("him", opt))
                    self.send_raw([IAC, DO, opt])
            else:
                self.send_raw([IAC, DONT, opt])
        elif verb == DONT:
            if opt in self._on:
                self._on.discard(opt)
                self.send_raw([IAC, WONT, opt])
        elif verb == WONT:
            if ("him", opt) in self._on:
                self._on.discard(("him", opt))
                self.send_raw([IAC, DONT, opt])

    def _subneg(self, opt, payload):
        if opt == TTYPE and payload[:1] == b"\x01":
            name = self.terms[min(self.ttype_sends, len(self.terms) - 1)]
            self.ttype_sends += 1
            self.send_raw(sb(TTYPE, b"\x00" + name.encode()))
        elif opt == TSPEED and payload[:1] == b"\x01":
            self.send_raw(sb(TSPEED, b"\x00" + self.speed.encode()))
        elif opt == XDISPLOC and payload[:1] == b"\x01" and self.display:
            self.send_raw(sb(XDISPLOC, b"\x00" + self.display.encode()))
        elif opt in (NEW_ENVIRON, OLD_ENVIRON) and payload[:1] == b"\x01":
            body = b"\x00"
            for item in self.env:
                body += item if isinstance(item, bytes) else b"\x00" + item[0].encode() + b"\x01" + item[1].encode()
            self.send_raw(sb(opt, body))

    def _feed(self, data):
        self.raw += data
        buf = self._pending + data
        out = bytearray()
        i = 0
        while i < len(buf):
            b = buf[i]
            if b != IAC:
                out.append(b)
                i += 1
                continue
            if i + 1 >= len(buf):
                break
            c = buf[i + 1]
            if c == IAC:
                out.append(IAC)
                i += 2
            elif c in (WILL, WONT, DO, DONT):
                if i + 2 >= len(buf):
                    break
                self.commands.append((c, buf[i + 2], None))
                self._answer(c, buf[i + 2])
                i += 3
            elif c == SB:
                end = None
                j = i + 3
                while j + 1 < len(buf):
                    if buf[j] == IAC and buf[j + 1] == IAC:
                        j += 2
                    elif buf[j] == IAC:
                        end = j
                        break
                    else:
                        j += 1
                if end is None or i + 2 >= len(buf):
                    break
                opt = buf[i + 2]
                payload = buf[i + 3:end].replace(b"\xff\xff", b"\xff")
                self.commands.append(("SB", opt, payload))
                self._subneg(opt, payload)
                i = end + 2 if buf[end + 1] == SE else end
            else:
                self.commands.append(("CMD", c, None))
                i += 2
        self._pending = buf[i:]
        self.text += bytes(out).replace(b"\r\x00", b"\r")

    def pump(self, timeout=0.2):
        """Read what comes within `timeout`; False once the server closed."""
        if self.closed:
            return False
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return True
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            self.closed = True
            return False
        self._feed(data)
        return True

    def read_until(self, pattern, timeout=15):
        """Screen text until `pattern` (bytes or a regex) shows after what
        earlier calls matched; returns the text from there to the end of
        the match. Raises on timeout or close."""
        deadline = time.time() + timeout
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        while True:
            m = rx.search(self.text, self.pos)
            if m:
                seen = self.text[self.pos:m.end()]
                self.pos = m.end()
                return seen
            if time.time() > deadline:
                raise AssertionError(f"no {pattern!r} after {timeout}s; got {self.text[self.pos:][-400:]!r}")
            if not self.pump(min(0.2, max(0.01, deadline - time.time()))):
                if not rx.search(self.text, self.pos):
                    raise AssertionError(f"closed before {pattern!r}; got {self.text[self.pos:][-400:]!r}")

    def wait_closed(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.pump(0.2):
                return True
        return False

    def login(self, user, password, prompt_user=True):
        if prompt_user:
            self.read_until(rb"login: ")
            self.line(user)
        self.read_until(rb"Password: ")
        self.line(password)

    def shell(self, cmd, timeout=15):
        """Run a shell command and return its output, between markers."""
        tag = f"{time.time_ns() % 10**9}"
        start, end = f"S{tag}S", f"E{tag}E"
        self.line(f"echo {start[:1]}''{start[1:]}; {cmd}; echo {end[:1]}''{end[1:]}")
        chunk = self.read_until(re.compile(re.escape(end.encode()) + rb"\r?\n"), timeout)
        body = chunk[chunk.index(start.encode()) + len(start):chunk.rindex(end.encode())]
        return body.replace(b"\r\n", b"\n").strip(b"\n").decode(errors="replace")

    def sent(self, verb, option):
        return (verb, option, None) in self.commands

    def subnegotiations(self, option):
        return [p for (k, o, p) in self.commands if k == "SB" and o == option]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Tmux:
    """A tmux terminal of a given size running one command."""

    def __init__(self, name, cmd, width=100, height=30, cwd="/tmp"):
        self.tmux = shutil.which("tmux")
        self.name = name
        env = dict(os.environ, TERM="xterm")
        subprocess.run([self.tmux, "kill-session", "-t", name], capture_output=True, env=env)
        subprocess.run([self.tmux, "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                        "-c", cwd, cmd], check=True, env=env)
        self.env = env

    def keys(self, *keys):
        subprocess.run([self.tmux, "send-keys", "-t", self.name, *keys], check=True, env=self.env)

    def type(self, text):
        self.keys("-l", text)

    def enter(self, text=""):
        if text:
            self.type(text)
        self.keys("Enter")

    def screen(self):
        r = subprocess.run([self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True,
                           text=True, env=self.env)
        return r.stdout

    def wait(self, pattern, timeout=15):
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < deadline:
            s = self.screen()
            if rx.search(s):
                return s
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} on the screen after {timeout}s:\n{self.screen()}")

    def resize(self, width, height):
        subprocess.run([self.tmux, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
                       check=True, env=self.env)

    def alive(self):
        r = subprocess.run([self.tmux, "has-session", "-t", self.name], capture_output=True, env=self.env)
        return r.returncode == 0

    def kill(self):
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True, env=self.env)


# A system account (NSS, PAM, login(1)) for the tests that need one: the
# reference daemon logs in through login(1), and the PAM tests.
SYSTEM_USER, SYSTEM_PASSWORD = "classicdtel", "Tel-passw0rd"


def ensure_system_account():
    """Create (as root) the account SYSTEM_USER with bash and its password;
    returns its pwd entry."""
    import pwd
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", SYSTEM_USER], check=True)
    subprocess.run(["usermod", "-s", "/bin/bash", SYSTEM_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{SYSTEM_USER}:{SYSTEM_PASSWORD}\n", text=True, check=True)
    return pwd.getpwnam(SYSTEM_USER)
