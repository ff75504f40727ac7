#!/bin/sh
# Benchmark pop3d side by side with Dovecot's POP3 on the same machine and
# the same 10,000-message Maildir (a copy each):
#   (the QUIT after RETR all, where the messages are marked seen, is timed apart)
#   login+STAT+UIDL+QUIT, cold (first session on a fresh maildir, page cache
#   dropped when allowed) and warm (best of 5); RETR of all messages with
#   poplib (best of 5); peak RSS of the session process. The servers take
#   turns round by round (the machine is shared: load falls on both alike).
# Usage: scripts/bench-pop3d.sh [MESSAGES]   (needs target/release/pop3d;
# Dovecot is used when `dovecot` is installed: apt-get install dovecot-pop3d)
set -eu
cd "$(dirname "$0")/.."
N=${1:-10000}
BIN=${CLASSICD_BIN:-target/release}
[ -x "$BIN/pop3d" ] || { echo "build first: cargo build --release" >&2; exit 1; }
exec python3 - "$N" "$BIN/pop3d" <<'EOF'
import os, poplib, pwd, grp, shutil, socket, subprocess, sys, tempfile, time

n = int(sys.argv[1])
pop3d = os.path.abspath(sys.argv[2])
root = os.geteuid() == 0
base = tempfile.mkdtemp(prefix="bench-pop3d-")
os.chmod(base, 0o755)
uid, gid = (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid) if root else (os.getuid(), os.getgid())
ROUNDS = 5
hash_ = subprocess.run(["openssl", "passwd", "-6", "demo"], capture_output=True, text=True, check=True).stdout.strip()


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


def make_maildir(home):
    md = os.path.join(home, "Maildir")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub))
    body = "".join(f"Line {j} of a typical message body, about seventy characters long.\n" for j in range(30))
    t = 1700000000
    for i in range(n):
        msg = (f"Return-Path: <sender{i}@example.org>\nFrom: Sender {i} <sender{i}@example.org>\n"
               f"To: demo@example.org\nSubject: benchmark message {i}\n"
               f"Message-ID: <{i}.bench@example.org>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\n{body}")
        data = msg.encode()
        wire = len(data) + data.count(b"\n")
        name = f"{t + i}.M{i}P1Q{i}.bench,S={len(data)},W={wire}"
        with open(os.path.join(md, "new", name), "wb") as f:
            f.write(data)
    if root:
        for d, _, files in os.walk(home):
            os.chown(d, uid, gid)
            for f in files:
                os.chown(os.path.join(d, f), uid, gid)


def drop_caches():
    try:
        subprocess.run(["sync"])
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def session(port):
    t = time.perf_counter()
    p = poplib.POP3("127.0.0.1", port)
    p.user("demo")
    p.pass_("demo")
    count, _ = p.stat()
    uids = p.uidl()[1]
    p.quit()
    assert count == n and len(uids) == n, (count, len(uids))
    return time.perf_counter() - t


def children_rss(pids_before):
    return None


def retr_all(port, find_pid):
    t = time.perf_counter()
    p = poplib.POP3("127.0.0.1", port)
    p.user("demo")
    p.pass_("demo")
    total = 0
    for i in range(1, n + 1):
        total += p.retr(i)[2]
    retr = time.perf_counter() - t
    hwm = find_pid()
    t = time.perf_counter()
    p.quit()  # UPDATE: both servers mark the retrieved messages seen
    return retr, time.perf_counter() - t, hwm


def vmhwm_of(pids):
    best = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best


def pids_named(name, parent=None):
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,comm="], capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        pid, ppid, comm = line.split(None, 2)
        if comm.strip() == name and (parent is None or int(ppid) == parent):
            res.append(int(pid))
    return res


results = {}
procs = []
servers = []  # (name, port, find_pid)
try:
    # classicd pop3d
    home = os.path.join(base, "classicd", "demo")
    os.makedirs(home)
    make_maildir(home)
    pw = os.path.join(base, "classicd", "passwd")
    open(pw, "w").write(f"demo:{hash_}:{uid}:{gid}::{home}:/bin/sh\n")
    port = free_port()
    log = open(os.path.join(base, "pop3d.log"), "w")
    master = subprocess.Popen([pop3d, "-F", "-o", f"listen=127.0.0.1:{port}", "-o", f"passwd_file={pw}",
                               "-o", "log=stderr"], stdout=log, stderr=log)
    procs.append(master)
    wait_port(port)
    servers.append(("classicd pop3d", port, lambda: vmhwm_of(pids_named("pop3d", master.pid))))

    if shutil.which("dovecot"):
        dv = os.path.join(base, "dovecot")
        dhome = os.path.join(dv, "demo")
        os.makedirs(dhome)
        make_maildir(dhome)
        os.makedirs(os.path.join(dv, "run"))
        dpw = os.path.join(dv, "passwd")
        open(dpw, "w").write(f"demo:{{CRYPT}}{hash_}:{uid}:{gid}::{dhome}::\n")
        os.chmod(dpw, 0o644)
        dport = free_port()
        conf = os.path.join(dv, "dovecot.conf")
        me = pwd.getpwuid(os.getuid()).pw_name
        users = "" if root else f"default_internal_user = {me}\ndefault_login_user = {me}"
        open(conf, "w").write(f"""
base_dir = {dv}/run
state_dir = {dv}/state
log_path = {dv}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {dpw}
}}
userdb {{
  driver = passwd-file
  args = {dpw}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {dport}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
}}
{users}
""")
        d = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(d)
        wait_port(dport)
        servers.append(("Dovecot pop3", dport, lambda: vmhwm_of(pids_named("pop3"))))
    else:
        print("(dovecot not installed: apt-get install dovecot-pop3d for the side-by-side run)")

    # The servers take turns in every round, so that load from elsewhere on
    # this shared machine falls on both alike; each figure is its best round.
    dropped = True
    cold = {}
    for name, p, _ in servers:
        dropped = drop_caches() and dropped
        cold[name] = session(p)
    warm = {name: [] for name, _, _ in servers}
    for _ in range(5):
        for name, p, _ in servers:
            warm[name].append(session(p))
    retr = {name: [] for name, _, _ in servers}
    first = {}
    for r in range(ROUNDS):
        for name, p, find_pid in servers:
            t, q, h = retr_all(p, find_pid)
            retr[name].append(t)
            if r == 0:
                first[name] = (q, h)  # QUIT after the first RETR all marks every message seen
    for name, _, _ in servers:
        results[name] = (cold[name], min(warm[name]), min(retr[name]), first[name][0], first[name][1])

    print(f"{n} messages; page cache {'dropped' if dropped else 'NOT dropped (no permission)'} before cold runs")
    print(f"{'server':<16} {'cold login+STAT+UIDL':>22} {'warm':>10} {'RETR all':>10} {'QUIT after':>11} {'session peak RSS':>17}")
    for name, (c, w, r, q, h) in results.items():
        print(f"{name:<16} {c:>21.3f}s {w:>9.3f}s {r:>9.2f}s {q:>10.2f}s {h:>14} kB")
    if len(results) == 2:
        (c1, w1, r1, _, _), (c2, w2, r2, _, _) = results.values()
        print(f"ratios (Dovecot's time over ours): cold {c2 / c1:.2f}x, warm {w2 / w1:.2f}x, RETR all {r2 / r1:.2f}x")
finally:
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(base, ignore_errors=True)
EOF
