#!/bin/sh
# Benchmark rshd and rlogind side by side with Debian's reference
# (rsh-redone-server's in.rshd and in.rlogind under xinetd, as Debian runs
# them) in the same run, with the same system account and trust (.rhosts):
#   rsh: N commands `true` (150), 8 clients in parallel, each the full rcmd(3)
#        exchange (reserved source port, the stderr connection back);
#   rlogin: `cat` of a 100 MB file through a trusted rlogin session, from
#        the handshake to the last byte.
# Ours runs standalone (-F, its own master) and under the same xinetd.
# Prints commands/s (and the servers' CPU time a command, counted over
# their process trees), MB/s and the ratios ours/reference. Needs root.
# Usage: scripts/bench-rcmd.sh [COMMANDS] [MEGABYTES]
set -eu
cd "$(dirname "$0")/.."
BIN=${CLASSICD_BIN:-target/release}
[ -x "$BIN/rshd" ] && [ -x "$BIN/rlogind" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench-rcmd: needs root (reserved ports, a system account)" >&2; exit 0; }
exec python3 - "${1:-150}" "${2:-100}" "$BIN" <<'PY'
import os, pwd, random, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, "scripts")
import pty_alone

N, MB, BIN = int(sys.argv[1]), int(sys.argv[2]), os.path.abspath(sys.argv[3])
USER = "classicdbench"
REF_RSHD, REF_RLOGIND = "/usr/sbin/in.rshd", "/usr/sbin/in.rlogind"
XINETD = shutil.which("xinetd")
have_ref = os.path.exists(REF_RSHD) and os.path.exists(REF_RLOGIND) and XINETD
if not have_ref:
    print("bench-rcmd: reference not installed (apt-get install rsh-redone-server xinetd); ours only")

try:
    pw = pwd.getpwnam(USER)
except KeyError:
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    pw = pwd.getpwnam(USER)
rhosts = os.path.join(pw.pw_dir, ".rhosts")
with open(rhosts, "w") as f:
    f.write("localhost root\n127.0.0.1 root\n127.0.0.2 root\n")
os.chown(rhosts, pw.pw_uid, pw.pw_gid)
os.chmod(rhosts, 0o600)
work = tempfile.mkdtemp(prefix="bench-rcmd-")
os.chmod(work, 0o755)
big = os.path.join(work, "big.txt")
line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" * 2)[:99] + b"\n"
with open(big, "wb") as f:
    for _ in range(MB * 10000):
        f.write(line)
os.chmod(big, 0o644)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    end = time.time() + 20
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {port}")


def reserved(port=None, source="127.0.0.1"):
    """A socket bound to a reserved port (connected to `port` if given)."""
    start = random.randint(512, 1023)
    for p in list(range(start, 511, -1)) + list(range(1023, start, -1)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((source, p))
            if port is None:
                s.listen(1)
            else:
                s.connect(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
    raise RuntimeError("no reserved port")


def rsh_true(port):
    """One rcmd(3) exchange: stderr listener, handshake, NUL, EOF on both."""
    lst = reserved()
    s = reserved(port)
    s.sendall(str(lst.getsockname()[1]).encode() + b"\0root\0" + USER.encode() + b"\0true\0")
    lst.settimeout(10)
    e, _ = lst.accept()
    lst.close()
    s.settimeout(10)
    if s.recv(1) != b"\0":
        raise RuntimeError("refused")
    while s.recv(4096):
        pass
    e.settimeout(10)
    while e.recv(4096):
        pass
    s.close()
    e.close()


def rsh_rate(port, n=N, workers=8):
    errors = []
    left = [n]
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                rsh_true(port)
            except Exception as e:  # counted, not fatal
                errors.append(e)

    rsh_true(port)  # warm
    t = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(workers)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    dt = time.perf_counter() - t
    if errors:
        print(f"   port {port}: {len(errors)} errors, first: {errors[0]!r}")
    return (n - len(errors)) / dt


def tree_cpu(root):
    """CPU seconds used by `root` and its descendants, the dead ones
    included once reaped (their parent's cutime/cstime): the servers'
    own cost, whatever else this machine runs."""
    parent, times = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        times[int(d)] = sum(int(x) for x in fields[11:15])
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += times.get(p, 0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total / os.sysconf("SC_CLK_TCK")


def rlogin_cat(port):
    # From another loopback address: the rsh rounds left the reserved
    # ports of 127.0.0.1 in TIME_WAIT.
    s = reserved(port, source="127.0.0.2")
    s.sendall(b"\0root\0" + USER.encode() + b"\0xterm/38400\0")
    s.settimeout(20)
    assert s.recv(1) == b"\0"
    t = time.perf_counter()
    s.sendall(f"stty -echo; cat {big}; echo DONE-$((40+2))\r".encode())
    got = 0
    tail = b""
    while True:
        b = s.recv(1 << 18)
        if not b:
            break
        got += len(b)
        tail = (tail + b)[-64:]
        if b"DONE-42" in tail:
            break
    dt = time.perf_counter() - t
    s.sendall(b"exit\r")
    s.close()
    return got / dt / 1e6


def time_wait_reserved():
    """TIME_WAIT connections with a reserved port on either end."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] != "06":
                continue
            ports = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16))
            n += any(512 <= p <= 1023 for p in ports)
    return n


def settle():
    """Wait until the last round's reserved ports have left TIME_WAIT (60 s
    on Linux): a SYN that meets one of them waits a second for its retry,
    so a round that starts among another's leftovers measures those."""
    end = time.time() + 70
    time.sleep(1)
    while time_wait_reserved() and time.time() < end:
        time.sleep(1)


def best(f, rounds=3):
    return max(f() for _ in range(rounds))


procs = []
conf_ports = {}
ours_rshd, ours_rlogind = free_port(), free_port()
for name, port in (("rshd", ours_rshd), ("rlogind", ours_rlogind)):
    p = subprocess.Popen([f"{BIN}/{name}", "-F", "-o", f"listen=127.0.0.1:{port}",
                          "-o", "log=syslog", "-o", "max_per_ip=100"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port)
xinetd_ports = {}
if XINETD:
    conf = os.path.join(work, "xinetd.conf")
    services = [("ours-rshd", f"{BIN}/rshd"), ("ours-rlogind", f"{BIN}/rlogind")]
    if have_ref:
        services += [("ref-rshd", REF_RSHD), ("ref-rlogind", REF_RLOGIND)]
    text = "defaults\n{\n    instances = UNLIMITED\n    cps = 100000 1\n    per_source = UNLIMITED\n}\n"
    for name, server in services:
        port = free_port()
        xinetd_ports[name] = port
        text += (f"service {name}\n{{\n    type = UNLISTED\n    socket_type = stream\n"
                 f"    protocol = tcp\n    wait = no\n    user = root\n    bind = 127.0.0.1\n"
                 f"    port = {port}\n    server = {server}\n}}\n")
    with open(conf, "w") as f:
        f.write(text)
    x = subprocess.Popen([XINETD, "-dontfork", "-pidfile", os.path.join(work, "x.pid"), "-f", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(x)
    for port in xinetd_ports.values():
        wait_port(port)

try:
    print(f"rsh: {N} x `true`, 8 in parallel (best of 2 rounds, servers in turn,"
          " each round after the last one's reserved ports left TIME_WAIT)")
    settle()
    # Whose process tree each one's CPU is counted in (xinetd serves one
    # at a time here, so its tree's growth during a round is that round's).
    servers = {"ours -F": procs[0].pid}
    if XINETD:
        servers["ours xinetd"] = servers["in.rshd xinetd"] = x.pid
    targets = {"ours -F": ours_rshd}
    if "ours-rshd" in xinetd_ports:
        targets["ours xinetd"] = xinetd_ports["ours-rshd"]
    if have_ref:
        targets["in.rshd xinetd"] = xinetd_ports["ref-rshd"]
    r = {k: 0.0 for k in targets}
    cpu = {k: [] for k in targets}
    for _ in range(2):
        for k, port in targets.items():
            before = tree_cpu(servers[k])
            rate = rsh_rate(port)
            time.sleep(0.5)
            cpu[k].append((tree_cpu(servers[k]) - before) / (N + 1))
            r[k] = max(r[k], rate)
            settle()
    for k, v in r.items():
        print(f"   {k:16} {v:8.1f} commands/s   {min(cpu[k]) * 1000:5.2f} ms CPU a command")
    if have_ref:
        print(f"   ratio ours -F / in.rshd:     {r['ours -F'] / r['in.rshd xinetd']:.2f}x"
              f" (CPU a command, in.rshd / ours: {min(cpu['in.rshd xinetd']) / min(cpu['ours -F']):.2f}x)")
        print(f"   ratio ours xinetd / in.rshd: {r['ours xinetd'] / r['in.rshd xinetd']:.2f}x"
              f" (CPU a command, in.rshd / ours: {min(cpu['in.rshd xinetd']) / min(cpu['ours xinetd']):.2f}x)")
    print(f"rlogin: cat of {MB} MB (best of 3)")
    r = {"ours -F": best(lambda: rlogin_cat(ours_rlogind))}
    if "ours-rlogind" in xinetd_ports:
        r["ours xinetd"] = best(lambda: rlogin_cat(xinetd_ports["ours-rlogind"]))
    if have_ref:
        r["in.rlogind xinetd"] = best(lambda: rlogin_cat(xinetd_ports["ref-rlogind"]))
    r["pty alone"] = best(lambda: pty_alone.rate(big))
    for k, v in r.items():
        print(f"   {k:18} {v:8.1f} MB/s")
    if have_ref:
        print(f"   ratio ours -F / in.rlogind:  {r['ours -F'] / r['in.rlogind xinetd']:.2f}x")
    print("   (pty alone: cat on a pseudo-terminal read by a process doing nothing else,"
          " no server: what the kernel's pty carries here, run to run)")
finally:
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
    shutil.rmtree(work, ignore_errors=True)
    os.unlink(rhosts)
PY
