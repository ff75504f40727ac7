#!/bin/sh
# bench-ftpd.sh: classicd ftpd side by side with vsftpd and pure-ftpd, same
# run, same client, same files (tmpfs), reported as ratios.
#
#   RETR and STOR of a 1 GiB file over loopback (MB/s, median of ROUNDS)
#   sessions per second: connect, login, LIST of 20 files, QUIT
#     (200 sessions, 8 in parallel)
#   memory (PSS) of an idle logged-in session (all its processes counted)
#   optionally (HOLD=10000): that many idle sessions held at once (ftpd only)
#
# Needs root (the reference daemons log local users in through PAM and
# chroot/drop privileges): a throwaway account "ftpbench" is created for
# the run and removed afterwards. vsftpd and pure-ftpd are used when found
# in PATH, or at $VSFTPD / $PUREFTPD; missing ones are skipped.
#
# Environment: SIZE_MB (1024), SESSIONS (200), PARALLEL (8), IDLE (50),
# HOLD (0), FTPD (target/release/ftpd), BENCH_DIR (/dev/shm),
# ONLY (retr,stor,sps,pss: the measurements to make), ROUNDS (5: each
# measurement is repeated, daemons in rotated order, and the median kept).
set -eu
cd "$(dirname "$0")/.."
FTPD=${FTPD:-target/release/ftpd}
[ -x "$FTPD" ] || cargo build --release
if [ "$(id -u)" != 0 ]; then
    echo "bench-ftpd.sh: run as root (reference daemons need PAM and chroot)" >&2
    exit 1
fi
VSFTPD=${VSFTPD:-$(command -v vsftpd || echo /usr/sbin/vsftpd)}
PUREFTPD=${PUREFTPD:-$(command -v pure-ftpd || echo /usr/sbin/pure-ftpd)}
export FTPD VSFTPD PUREFTPD
exec python3 - "$@" <<'PYEOF'
import ftplib, os, pwd, re, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from multiprocessing import Pool

SIZE = int(os.environ.get("SIZE_MB", "1024")) * 1024 * 1024
SESSIONS = int(os.environ.get("SESSIONS", "200"))
PARALLEL = int(os.environ.get("PARALLEL", "8"))
IDLE = int(os.environ.get("IDLE", "50"))
HOLD = int(os.environ.get("HOLD", "0"))
ONLY = set(os.environ.get("ONLY", "retr,stor,sps,pss").split(","))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
USER, PASSWORD = "ftpbench", "bench-Pw-1"
BASE = tempfile.mkdtemp(prefix="bench-ftpd-", dir=os.environ.get("BENCH_DIR", "/dev/shm"))
os.chmod(BASE, 0o755)
HOME = os.path.join(BASE, "home")
procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, p):
    for _ in range(200):
        if p.poll() is not None:
            raise RuntimeError("daemon exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("daemon does not listen")


def setup():
    created = False
    try:
        pwd.getpwnam(USER)
        # Left over from an interrupted run: its home is elsewhere.
        subprocess.run(["usermod", "-d", HOME, USER], check=True)
        created = True
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", HOME, "-s", "/bin/sh", USER], check=True)
        created = True
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    pw = pwd.getpwnam(USER)
    os.makedirs(os.path.join(HOME, "list"), exist_ok=True)
    with open(os.path.join(HOME, "big.bin"), "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(SIZE >> 20):
            f.write(block)
    with open(os.path.join(BASE, "upload.src"), "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(SIZE >> 20):
            f.write(block)
    for i in range(20):
        with open(os.path.join(HOME, "list", f"file{i:02}.txt"), "w") as f:
            f.write("x" * (100 * i))
    for dirpath, dirs, files in os.walk(HOME):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid)
    # Same account, same hash for every daemon: ftpd reads it from a passwd_file.
    shadow = [l for l in open("/etc/shadow") if l.startswith(USER + ":")][0].split(":")[1]
    with open(os.path.join(BASE, "passwd"), "w") as f:
        f.write(f"{USER}:{shadow}:{pw.pw_uid}:{pw.pw_gid}::{HOME}:/bin/sh\n")
    return created


def start_ftpd(port):
    return subprocess.Popen(
        [os.environ["FTPD"], "-F", "-o", f"listen=127.0.0.1:{port}", "-o", f"passwd_file={BASE}/passwd",
         "-o", "max_sessions=20000", "-o", "max_per_ip=20000", "-o", "log=syslog",
         "-o", "idle_timeout=3600",
         "-o", "ftpusers_file=/nonexistent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_vsftpd(port):
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    conf = os.path.join(BASE, "vsftpd.conf")
    with open(conf, "w") as f:
        f.write(f"""listen=YES
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=vsftpd
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
max_clients=20000
max_per_ip=20000
""")
    return subprocess.Popen([os.environ["VSFTPD"], conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_pureftpd(port):
    return subprocess.Popen(
        [os.environ["PUREFTPD"], "-S", f"127.0.0.1,{port}", "-l", "unix", "-E", "-H", "-c", "20000",
         "-C", "20000", "-p", "40000:50000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def login(port):
    f = ftplib.FTP()
    f.connect("127.0.0.1", port, timeout=60)
    f.login(USER, PASSWORD)
    return f


def retr_rate(port):
    f = login(port)
    f.voidcmd("TYPE I")
    mv = memoryview(bytearray(1 << 20))
    t = time.perf_counter()
    conn = f.transfercmd("RETR big.bin")
    n = 0
    while True:
        k = conn.recv_into(mv)
        if not k:
            break
        n += k
    conn.close()
    f.voidresp()
    dt = time.perf_counter() - t
    assert n == SIZE, n
    f.quit()
    return n / dt / 1e6


def stor_rate(port):
    f = login(port)
    f.voidcmd("TYPE I")
    with open(os.path.join(BASE, "upload.src"), "rb") as src:
        t = time.perf_counter()
        conn = f.transfercmd("STOR up.bin")
        conn.sendfile(src)
        conn.close()
        f.voidresp()
        dt = time.perf_counter() - t
    os.unlink(os.path.join(HOME, "up.bin"))
    f.quit()
    return SIZE / dt / 1e6


def one_session(port):
    f = login(port)
    f.cwd("list")
    lines = []
    f.retrlines("LIST", lines.append)
    assert len(lines) == 20, lines
    f.quit()


def sessions_rate(port):
    with Pool(PARALLEL) as pool:
        pool.map(one_session, [port] * PARALLEL)  # warm up
        t = time.perf_counter()
        pool.map(one_session, [port] * SESSIONS, chunksize=1)
        return SESSIONS / (time.perf_counter() - t)


def descendants(pid):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in children.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def pss(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def idle_pss(port, master):
    before = set(descendants(master))
    conns = [login(port) for _ in range(IDLE)]
    time.sleep(1)
    procs_ = [p for p in descendants(master) if p not in before]
    total = sum(pss(p) for p in procs_)
    for c in conns:
        c.quit()
    return total / IDLE, len(procs_) / IDLE


def hold(port, n, master):
    """n sessions connected and logged in at once, then one more served."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1000, n + 1000))
    socks = []
    t = time.perf_counter()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        s.sendall(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        socks.append(s)
    ok = 0
    for s in socks:
        buf = b""
        while b"\n230 " not in buf and not buf.startswith(b"230 ") and b"\n5" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        ok += b"230 " in buf
    dt = time.perf_counter() - t
    procs_ = descendants(master)
    per = sum(pss(p) for p in procs_) / n
    # Every one of them still answers: they are held at once.
    for s in socks:
        s.sendall(b"NOOP\r\n")
    alive = 0
    for s in socks:
        try:
            alive += s.recv(100).startswith(b"200")
        except OSError:
            pass
    ok = min(ok, alive)
    f = login(port)  # still serving
    f.quit()
    for s in socks:
        s.close()
    return ok, dt, per


def stop(p):
    sessions = descendants(p.pid)
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
    for d in sessions:
        try:
            os.kill(d, signal.SIGKILL)
        except OSError:
            pass


def start_all():
    daemons = {}
    for name, key, starter in (("ftpd", None, start_ftpd), ("vsftpd", "VSFTPD", start_vsftpd),
                               ("pure-ftpd", "PUREFTPD", start_pureftpd)):
        if key and not os.path.exists(os.environ[key]):
            print(f"  {name:10} not installed, skipped", flush=True)
            continue
        port = free_port()
        p = starter(port)
        procs.append(p)
        try:
            wait_port(port, p)
            daemons[name] = (port, p)
        except Exception as e:  # a reference that fails does not stop the run
            print(f"  {name:10} failed to start: {e}", flush=True)
    return daemons


created = setup()
try:
    print(f"bench-ftpd: {SIZE >> 20} MiB file on {BASE}, {SESSIONS} sessions x{PARALLEL}, "
          f"{IDLE} idle sessions; {os.cpu_count()} CPUs", flush=True)
    daemons = start_all()
    names = list(daemons)
    results = {n: {"retr": 0.0, "stor": 0.0, "sps": 0.0, "pss": 0.0, "procs": 0.0} for n in names}
    # Rounds with the order rotated, the median of each kept: a machine whose
    # load drifts favours no one, and one lucky round does not decide.
    for key, fn in (("retr", retr_rate), ("stor", stor_rate), ("sps", sessions_rate)):
        if key not in ONLY:
            continue
        runs = {n: [] for n in names}
        for r in range(ROUNDS):
            for n in names[r % len(names):] + names[:r % len(names)]:
                try:
                    runs[n].append(fn(daemons[n][0]))
                except Exception as e:
                    print(f"  {n:10} {key} failed: {e}", flush=True)
        for n in names:
            results[n][key] = statistics.median(runs[n]) if runs[n] else 0.0
    if "pss" in ONLY:
        for n in names:
            results[n]["pss"], results[n]["procs"] = idle_pss(daemons[n][0], daemons[n][1].pid)
    if HOLD and "ftpd" in daemons:
        results["ftpd"]["hold"] = hold(daemons["ftpd"][0], HOLD, daemons["ftpd"][1].pid)
    for n, r in results.items():
        print(f"  {n:10} RETR {r['retr']:7.0f} MB/s  STOR {r['stor']:7.0f} MB/s  "
              f"{r['sps']:6.1f} sessions/s  idle session {r['pss']:6.0f} KB PSS "
              f"({r['procs']:.0f} processes)", flush=True)
    for n in names:
        stop(daemons[n][1])
    me = results["ftpd"]
    refs = {k: v for k, v in results.items() if k != "ftpd"}
    if refs:
        print("ratios (ftpd / best reference; memory: reference / ftpd, higher is better):")
        for key, label, higher in (("retr", "RETR", True), ("stor", "STOR", True),
                                   ("sps", "sessions/s", True), ("pss", "idle PSS", False)):
            if key not in ONLY:
                continue
            best_name = (max if higher else min)(refs, key=lambda k: refs[k][key])
            best = refs[best_name][key]
            if not (best and me[key]):
                print(f"  {label:11}   n/a  (a measurement failed)")
                continue
            ratio = me[key] / best if higher else best / me[key]
            print(f"  {label:11} {ratio:5.2f}x  (vs {best_name})")
    print("targets: RETR, STOR >= 1.0x the better reference; >= 110 sessions/s; "
          "<= 250 KB per idle session; 10,000 idle sessions (HOLD=10000)")
    print(f"  ftpd: {me['sps']:.0f} sessions/s, {me['pss']:.0f} KB per idle session")
    if "hold" in me:
        print(f"  ftpd held {me['hold'][0]} of {HOLD} idle logged-in sessions at once "
              f"(set up in {me['hold'][1]:.0f} s, {me['hold'][2]:.0f} KB PSS each)")
finally:
    for p in procs:
        if p.poll() is None:
            stop(p)
    shutil.rmtree(BASE, ignore_errors=True)
    if created:
        for _ in range(20):
            if subprocess.run(["userdel", USER], capture_output=True).returncode != 8:
                break
            time.sleep(0.5)  # sessions still ending
PYEOF
