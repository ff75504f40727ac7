#!/bin/sh
# bench-telnetd.sh: classicd telnetd side by side with inetutils telnetd,
# same run, same client, same account, reported as ratios.
#
#   throughput: `cat` of a SIZE_MB file (tmpfs) through the pty to the
#     client (MB/s of file data, median of ROUNDS)
#   the CPU time the daemon's processes spent on that (median of ROUNDS)
#   keystroke echo round trip: one byte typed, its echo back (the
#     terminal's echo, character mode), ECHOES times, in batches of 100
#     taken in turn with the reference: median and p99
#   memory (PSS) of an idle logged-in session, over IDLE (10) sessions at
#     once: the daemon's processes (ours: the connection's monitor, which
#     holds the PAM session, and the account's relay process; inetutils:
#     telnetd, with login(1), which holds its PAM session, shown apart;
#     the shell is not counted)
#   HOLD (1000) idle logged-in sessions at once (ours only), then a
#     command on every one: all must answer
#
# Needs root (inetutils telnetd logs in through login(1) and PAM): a
# throwaway account "telbench" is created for the run and removed after.
# inetutils telnetd is used when found at $REFERENCE (/usr/sbin/telnetd).
#
# Environment: SIZE_MB (100), ECHOES (2000), ROUNDS (3), HOLD (1000), IDLE (10),
# TELNETD (target/release/telnetd), BENCH_DIR (/dev/shm),
# ONLY (cat,echo,pss,hold).
set -eu
cd "$(dirname "$0")/.."
TELNETD=${TELNETD:-target/release/telnetd}
[ -x "$TELNETD" ] || cargo build --release
if [ "$(id -u)" != 0 ]; then
    echo "bench-telnetd.sh: run as root (the reference logs in through login(1))" >&2
    exit 1
fi
REFERENCE=${REFERENCE:-/usr/sbin/telnetd}
export TELNETD REFERENCE
exec python3 - "$@" <<'PYEOF'
import os, pwd, re, resource, select, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, "scripts")
import pty_alone

SIZE = int(os.environ.get("SIZE_MB", "100")) * 1000 * 1000
ECHOES = int(os.environ.get("ECHOES", "2000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
HOLD = int(os.environ.get("HOLD", "1000"))
IDLE = int(os.environ.get("IDLE", "10"))
ONLY = set(os.environ.get("ONLY", "cat,echo,pss,hold").split(","))
USER, PASSWORD = "telbench", "bench-Pw-1"
BASE = tempfile.mkdtemp(prefix="bench-telnetd-", dir=os.environ.get("BENCH_DIR", "/dev/shm"))
os.chmod(BASE, 0o755)
IAC = 255
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


class Inetd:
    """inetd nowait for the reference: accept, run telnetd on the socket."""

    def __init__(self, argv):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.argv = argv
        self.children = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            fd = conn.fileno()
            self.children.append(subprocess.Popen(self.argv, stdin=fd, stdout=fd, stderr=subprocess.DEVNULL,
                                                  close_fds=True))
            conn.close()

    def stop(self):
        self.sock.close()
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.wait()


class Client:
    """A minimal TELNET client: refuses everything but ECHO/SGA from the
    server (character mode), reads raw."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _strip(self, data):
        out = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b == IAC and i + 1 < len(data):
                c = data[i + 1]
                if c == IAC:
                    out.append(IAC); i += 2; continue
                if c in (251, 252, 253, 254) and i + 2 < len(data):
                    opt = data[i + 2]
                    if c == 251:
                        self.s.sendall(bytes([IAC, 253 if opt in (1, 3) else 254, opt]))
                    elif c == 253:
                        self.s.sendall(bytes([IAC, 252, opt]))
                    i += 3; continue
                if c == 250:
                    end = data.find(bytes([IAC, 240]), i)
                    i = len(data) if end < 0 else end + 2; continue
                i += 2; continue
            out.append(b); i += 1
        return bytes(out)

    def until(self, pattern, timeout=60):
        rx = re.compile(pattern)
        end = time.time() + timeout
        while not rx.search(self.buf):
            if time.time() > end:
                raise SystemExit(f"no {pattern!r}: {self.buf[-200:]!r}")
            r, _, _ = select.select([self.s], [], [], 0.5)
            if r:
                d = self.s.recv(65536)
                if not d:
                    raise SystemExit(f"closed before {pattern!r}: {self.buf[-200:]!r}")
                self.buf += self._strip(d)
        m = rx.search(self.buf)
        self.buf = self.buf[m.end():]

    def line(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def login(self):
        self.until(rb"login: ?")
        self.line(USER)
        self.until(rb"Password: ?")
        self.line(PASSWORD)
        self.until(rb"\$ ?$")


def setup():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-d", os.path.join(BASE, "home"), "-s", "/bin/sh", USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    big = os.path.join(BASE, "big.txt")
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-classicd-telnetd-bench\n"
    with open(big, "wb") as f:
        f.write(line * (SIZE // len(line)))
    os.chmod(big, 0o644)
    return big


def ours():
    port = free_port()
    p = subprocess.Popen([os.environ["TELNETD"], "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "issue_file=",
                          "-o", "log=syslog", "-o", "max_sessions=2000", "-o", "max_per_ip=2000",
                          "-o", "login_timeout=600"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port)
    time.sleep(1)
    return port, p, lambda: None


def reference():
    ref = os.environ["REFERENCE"]
    if not os.path.exists(ref):
        return None
    inetd = Inetd([ref])
    stops.append(inetd.stop)
    return inetd.port, None, inetd.stop


def session_pids(port):
    """The server-side processes of the connection to `port` (by socket)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    return sorted({int(x) for x in re.findall(r"pid=(\d+)", out)})


def pss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids):
    """User and system time of `pids` so far."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def bench_cat(port, big):
    """MB/s of the file through the pty to the client, and the CPU time
    the daemon's processes of the connection spent on it."""
    c = Client(port)
    c.login()
    c.line("stty -echo")
    c.until(rb"\$ ?$")
    pids = session_pids(port)
    cpu0 = cpu_seconds(pids)
    marker = b"CAT-DONE-MARK"
    start = time.perf_counter()
    c.line(f"cat {big}; echo CAT-DONE''-MARK")
    total = 0
    tail = b""
    while True:
        d = c.s.recv(1 << 20)
        if not d:
            raise SystemExit("closed during cat")
        total += len(d)
        tail = (tail + d)[-64:]
        if marker in tail:
            break
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(pids) - cpu0
    c.s.close()
    return SIZE / elapsed / 1e6, cpu


def echo_session(port):
    """A logged-in session whose terminal echoes each byte typed (to a
    program that discards its input)."""
    c = Client(port)
    c.login()
    c.line("stty -icanon min 1 time 0 -echoctl; cat > /dev/null")
    time.sleep(0.5)
    c.s.setblocking(True)
    # Drain whatever came before.
    c.s.settimeout(0.3)
    try:
        while c.s.recv(65536):
            pass
    except socket.timeout:
        pass
    c.s.settimeout(10)
    return c


def echoes(c, count, times):
    for _ in range(count):
        ch = b"x"
        t0 = time.perf_counter()
        c.s.sendall(ch)
        got = b""
        while ch not in got:
            got += c.s.recv(64)
        times.append((time.perf_counter() - t0) * 1e6)


def bench_echo(ports):
    """Echo round trips on one session per server, in batches of 100 taken
    in turn, so that both see the same moments of a busy machine."""
    sessions = {name: echo_session(port) for name, port in ports.items()}
    times = {name: [] for name in ports}
    for _ in range(max(1, ECHOES // 100)):
        for name, c in sessions.items():
            echoes(c, 100, times[name])
    result = {}
    for name, c in sessions.items():
        c.s.close()
        t = sorted(times[name])
        result[name] = (statistics.median(t), t[int(len(t) * 0.99) - 1])
    return result


def bench_pss(port):
    """PSS per idle logged-in session, over IDLE sessions (so that what
    they share is shared as in real use): the processes that hold the
    connection (the daemon's), and login(1) apart (the reference's
    equivalent of our monitor, which holds the PAM session)."""
    clients = []
    for _ in range(IDLE):
        c = Client(port)
        c.login()
        clients.append(c)
    time.sleep(1)
    pids = session_pids(port)
    daemon = sum(pss_kb(p) for p in pids) // IDLE
    logins = [int(x) for x in subprocess.run(["pgrep", "-x", "login"], capture_output=True, text=True).stdout.split()]
    login = sum(pss_kb(p) for p in logins) // IDLE
    for c in clients:
        c.s.close()
    time.sleep(1)
    return daemon, len(pids) // IDLE, login


def bench_hold(port):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, HOLD + 512), max(hard, HOLD + 512)))
    clients = []
    start = time.time()
    for i in range(HOLD):
        c = Client(port)
        c.login()
        clients.append(c)
    logged = time.time() - start
    time.sleep(2)
    ok = 0
    for i, c in enumerate(clients):
        c.line(f"echo held-$(({i}+1))")
    for i, c in enumerate(clients):
        try:
            c.until(rf"held-{i + 1}\r?\n".encode(), 60)
            ok += 1
        except SystemExit:
            pass
    for c in clients:
        c.s.close()
    return ok, logged


def main():
    big = setup()
    results = {}
    servers = {"classicd": ours()}
    ref = reference()
    if ref:
        servers["inetutils"] = ref
    else:
        print("inetutils telnetd not found: classicd alone", file=sys.stderr)
    names = list(servers)
    if "cat" in ONLY:
        for name in names:
            results[(name, "cat")] = []
        results["pty alone"] = []
        for r in range(ROUNDS):
            for name in names[r % len(names):] + names[:r % len(names)]:
                results[(name, "cat")].append(bench_cat(servers[name][0], big))
            results["pty alone"].append(pty_alone.rate(big))
    if "echo" in ONLY:
        for name, r in bench_echo({name: servers[name][0] for name in names}).items():
            results[(name, "echo")] = r
    if "pss" in ONLY:
        for name in names:
            results[(name, "pss")] = bench_pss(servers[name][0])
    print(f"\ntelnetd benchmark ({SIZE // 1000000} MB cat, {ECHOES} echoes, median of {ROUNDS} rounds)")
    if "cat" in ONLY:
        med = {n: statistics.median(r[0] for r in results[(n, "cat")]) for n in names}
        cpu = {n: statistics.median(r[1] for r in results[(n, "cat")]) for n in names}
        line = "  cat throughput:   " + ", ".join(f"{n} {med[n]:.1f} MB/s" for n in names)
        if len(names) > 1:
            line += f"   ratio {med['classicd'] / med['inetutils']:.2f}x"
        print(line)
        print(f"  the pty alone:    {statistics.median(results['pty alone']):.1f} MB/s (cat read by a process"
              " doing nothing else, no server: what the kernel's pty carries here, run to run)")
        line = f"  daemon CPU for the {SIZE // 1000000} MB: " + ", ".join(f"{n} {cpu[n]:.2f} s" for n in names)
        if len(names) > 1 and cpu["classicd"]:
            line += f"   ratio {cpu['inetutils'] / cpu['classicd']:.2f}x less"
        print(line)
    if "echo" in ONLY:
        e = {n: results[(n, "echo")] for n in names}
        line = "  echo round trip:  " + ", ".join(f"{n} median {e[n][0]:.0f} us p99 {e[n][1]:.0f} us" for n in names)
        if len(names) > 1:
            line += (f"   ratio (theirs/ours) median {e['inetutils'][0] / e['classicd'][0]:.2f}x"
                     f" p99 {e['inetutils'][1] / e['classicd'][1]:.2f}x")
        print(line)
    if "pss" in ONLY:
        p = {n: results[(n, "pss")] for n in names}
        line = "  idle session PSS: " + ", ".join(
            f"{n} {p[n][0]} KB ({p[n][1]} processes)" + (f" + login(1) {p[n][2]} KB" if p[n][2] else "")
            for n in names)
        if len(names) > 1 and p["classicd"][0]:
            mine = p["classicd"][0]
            line += (f"   ratio {p['inetutils'][0] / mine:.2f}x smaller (daemon alone),"
                     f" {(p['inetutils'][0] + p['inetutils'][2]) / mine:.2f}x (with login(1))")
        print(line)
    if "hold" in ONLY and HOLD:
        ok, logged = bench_hold(servers["classicd"][0])
        print(f"  {HOLD} idle logged-in sessions at once (classicd): {ok}/{HOLD} answered;"
              f" logins took {logged:.1f} s")


stops = []

try:
    main()
finally:
    for stop in stops:
        stop()
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    # What is left of the throwaway account's sessions, by pid.
    try:
        uid = pwd.getpwnam(USER).pw_uid
    except KeyError:
        uid = None
    for pid in [int(d) for d in os.listdir("/proc") if d.isdigit()] if uid is not None else []:
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.5)
    subprocess.run(["userdel", "-f", USER], capture_output=True)
    shutil.rmtree(BASE, ignore_errors=True)
PYEOF
