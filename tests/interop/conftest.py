"""Shared fixtures for the interop suite.

The built daemons are started through the operator contract alone (flags and
-o keys) and driven by real clients. Binaries come from target/release, or
from $CLASSICD_BIN.

Fixtures:
  lab        a throwaway directory with a passwd_file holding demo/demo
  daemon     a factory: daemon("ftpd", opts..., mode="standalone"|"inetd")
  tls_files  a self-signed certificate and key (session-wide)
Helpers:
  need(tool) fail under CI=true, skip otherwise, when a client is missing
  free_port(), wait_port(port), crypt_hash(password)
"""

import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CLASSICD_BIN", ROOT / "target" / "release"))
CI = os.environ.get("CI") == "true"
IS_ROOT = os.geteuid() == 0


def need(tool):
    """A real client this test needs: under CI=true its absence is a failure."""
    path = shutil.which(tool)
    if path is None:
        if CI:
            pytest.fail(f"{tool} is not installed (CI=true: .ci/run must install it)")
        pytest.skip(f"{tool} is not installed")
    return path


def need_reference(path, package):
    """A reference daemon a scenario also runs against: required under CI."""
    if path and os.path.exists(path):
        return path
    if CI:
        pytest.fail(f"{package} is not installed (CI=true: .ci/run must install it)")
    pytest.skip(f"{package} is not installed")


def binary(name):
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is not built: run make (or set CLASSICD_BIN)")
    return path


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def crypt_hash(password, method="-6"):
    """A crypt(3) hash made by openssl (sha512 by default; -5 for sha256)."""
    return subprocess.run(
        ["openssl", "passwd", method, password], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_traversable(path):
    """As root the sessions run as nobody, who must reach the lab's homes:
    pytest makes its base directories 0700, so let others traverse them
    (search permission only, no listing)."""
    if not IS_ROOT:
        return
    for parent in [Path(path), *Path(path).parents]:
        st = parent.stat()
        if st.st_uid == 0 and not st.st_mode & 0o001:
            os.chmod(parent, (st.st_mode & 0o7777) | 0o011)
        if str(parent) in ("/tmp", "/"):
            break


class Lab:
    """A throwaway tree: passwd_file, homes, spool directories.

    As root the accounts get nobody's uid (the sessions really drop to it);
    otherwise they get our own uid, since an unprivileged daemon cannot switch.
    """

    def __init__(self, base: Path):
        self.dir = base
        os.chmod(base, 0o755)
        make_traversable(base)
        self.passwd_file = base / "passwd"
        self.passwd_file.write_text("")
        if IS_ROOT:
            self.uid = pwd.getpwnam("nobody").pw_uid
            self.gid = grp.getgrnam("nogroup").gr_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        self.users = {}
        self.user, self.password = "demo", "demo"
        self.home = self.add_user("demo", "demo")
        # Anonymous FTP runs as `ftp`, looked up where every account is.
        with open(self.passwd_file, "a") as f:
            f.write(f"ftp:*:{self.uid}:{self.gid}:Anonymous FTP:/nonexistent:/usr/sbin/nologin\n")

    def add_user(self, name, password, hash_=None):
        home = self.dir / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, self.uid, self.gid) if IS_ROOT else None
        entry = f"{name}:{hash_ or crypt_hash(password)}:{self.uid}:{self.gid}:{name}:{home}:/bin/sh\n"
        with open(self.passwd_file, "a") as f:
            f.write(entry)
        self.users[name] = home
        return home

    def mkdir(self, rel, owned=True):
        p = self.dir / rel
        p.mkdir(parents=True, exist_ok=True)
        if IS_ROOT and owned:
            os.chown(p, self.uid, self.gid)
        return p

    def chown_tree(self, path):
        if IS_ROOT:
            for dirpath, dirnames, filenames in os.walk(path):
                os.chown(dirpath, self.uid, self.gid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), self.uid, self.gid, follow_symlinks=False)


class MiniInetd:
    """inetd `nowait` through a real socket: accept, then run the daemon with
    the connection as fds 0, 1 and 2, as inetd does."""

    def __init__(self, argv, host="127.0.0.1", port=None, log=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port or 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.argv = argv
        self.children = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            fd = conn.fileno()
            p = subprocess.Popen(self.argv, stdin=fd, stdout=fd, stderr=fd, close_fds=True)
            self.children.append(p)
            conn.close()

    def stop(self):
        self.stopped = True
        # Wake the accepting thread and let it end before the descriptor is
        # freed: a thread still in accept() on a reused descriptor number
        # took connections meant for the next test's fake server.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        try:
            self.sock.close()
        except OSError:
            pass
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.wait()


class MiniInetdUdp:
    """inetd `wait` for a UDP service: when the socket is readable, run the
    daemon with it as fds 0-2 and wait for it to exit before looking again."""

    def __init__(self, argv, host="127.0.0.1", port=None):
        import select
        self._select = select
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port or 0))
        self.port = self.sock.getsockname()[1]
        self.argv = argv
        self.children = []
        self.runs = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                ready, _, _ = self._select.select([self.sock], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready or self.stopped:
                continue
            fd = self.sock.fileno()
            p = subprocess.Popen(self.argv, stdin=fd, stdout=fd, stderr=fd, close_fds=True)
            self.children.append(p)
            self.runs += 1
            p.wait()

    def stop(self):
        self.stopped = True
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.thread.join(5)
        self.sock.close()


class Daemon:
    def __init__(self, name, lab, opts=(), mode="standalone", host="127.0.0.1", port=None,
                 listen_key="listen", extra_args=(), wait=True, udp=False):
        self.name = name
        self.lab = lab
        self.host = host
        self.udp = udp
        self.port = port or free_port(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM, host=host)
        self.mode = mode
        self.logfile = lab.dir / f"{name}-{self.port}.log"
        addr = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.argv = [str(binary(name))]
        common = ["-o", f"passwd_file={lab.passwd_file}"]
        for o in opts:
            common += ["-o", o]
        self.proc = None
        self.inetd = None
        if mode == "standalone":
            self.argv += ["-F", "-o", f"{listen_key}={addr}", "-o", "log=stderr"] + common + list(extra_args)
            self._log = open(self.logfile, "w")
            self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT)
            if wait and udp:
                self.wait_log("started")
            elif wait:
                wait_port(self.port, host, proc=self.proc)
        elif mode == "inetd":
            self.argv += common + list(extra_args)
            if udp:
                self.inetd = MiniInetdUdp(self.argv, host=host, port=self.port)
            else:
                self.inetd = MiniInetd(self.argv, host=host, port=self.port)
        else:
            raise ValueError(mode)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def wait_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no '{text}' in the log after {timeout}s: {self.log()}")

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connect(self, timeout=10):
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.inetd:
            self.inetd.stop()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
        # Sessions outlive the master by design; end the ones a test left.
        if self.mode == "standalone":
            addr = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            pattern = "=" + addr.replace(".", "\\.").replace("[", "\\[").replace("]", "\\]") + "( |$)"
            subprocess.run(["pkill", "-KILL", "-f", pattern], capture_output=True)


class Xinetd:
    """A real xinetd in the foreground with one service on a free port."""

    def __init__(self, lab, server, server_args="", udp=False):
        path = need("xinetd")
        self.port = free_port(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        user = "root" if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name
        conf = lab.dir / f"xinetd-{self.port}.conf"
        conf.write_text(f"""
defaults
{{
    instances = 10
}}
service classicd-{self.port}
{{
    type        = UNLISTED
    socket_type = {"dgram" if udp else "stream"}
    protocol    = {"udp" if udp else "tcp"}
    wait        = {"yes" if udp else "no"}
    user        = {user}
    bind        = 127.0.0.1
    port        = {self.port}
    server      = {server}
    server_args = {server_args}
}}
""")
        self.proc = subprocess.Popen([path, "-dontfork", "-pidfile", str(lab.dir / f"x-{self.port}.pid"),
                                      "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if udp:
            time.sleep(1)
        else:
            wait_port(self.port, proc=self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def children(pid):
    """The processes whose parent is `pid`."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def descendants(pid, depth):
    """The processes `depth` generations below `pid` (1: its children)."""
    level = [pid]
    for _ in range(depth):
        level = [c for p in level for c in children(p)]
    return level


def proc_status(pid):
    """What /proc says of a process's identity and confinement: uid and
    gid (real, effective, saved, fs), supplementary groups, root directory,
    NoNewPrivs."""
    status = open(f"/proc/{pid}/status").read()
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    try:
        root = os.readlink(f"/proc/{pid}/root")
    except OSError:
        root = None
    return {
        "uid": [int(x) for x in fields["Uid"].split()],
        "gid": [int(x) for x in fields["Gid"].split()],
        "groups": sorted(int(x) for x in fields["Groups"].split()),
        "root": root,
        "nnp": int(fields.get("NoNewPrivs", "0").strip()),
        "ppid": int(fields["PPid"].strip()),
    }


def stray_daemons():
    """Processes of our binaries started from a pytest temp tree."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if exe.startswith(str(BIN)) and b"pytest-of-" in cmdline:
            found.append(int(pid))
    return found


@pytest.fixture(autouse=True, scope="module")
def no_stray_daemons(request):
    """Whatever a test module left running (sessions outlive their master by
    design) must not answer on ports the next module uses."""
    yield
    for pid in stray_daemons():
        if os.environ.get("CLASSICD_REPORT_STRAYS"):
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
            print(f"\nstray after {request.module.__name__}: {pid} {cmd.decode(errors='replace')}")
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


@pytest.fixture
def daemon(lab):
    started = []

    def start(name, *opts, **kw):
        d = Daemon(name, lab, opts, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    os.chmod(d, 0o755)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
         "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    os.chmod(key, 0o644)
    return cert, key
