#!/bin/sh
# Benchmark nntpd side by side with INN 2.7 (Debian's inn2) in the same run,
# the same client for both (scripts/nntp_bench.py):
#   feed   20,000 articles of 4 KB by TAKETHIS over 4 streaming connections
#          into an empty spool (articles/s; every one then checked readable
#          by STAT <message-id>); median of 3 rounds, servers alternating
#   over   OVER of the 20,000 articles of the group (best of 3)
#   reads  GROUP + ARTICLE of 1,000 random article numbers (best of 3)
# Durability is not the same: nntpd acknowledges an article only once its
# journal record is fdatasynced; INN does not sync before its 239.
# Each round uses a fresh spool; old ones are kept until the end (ext4
# makes creating files slow right after many were deleted).
# Usage: scripts/bench-nntpd.sh [ARTICLES] [ROUNDS]
# (needs target/release/nntpd; INN is used when inn2 is installed)
set -eu
cd "$(dirname "$0")/.."
N=${1:-20000}
ROUNDS=${2:-3}
BIN=${CLASSICD_BIN:-target/release}
[ -x "$BIN/nntpd" ] || { echo "build first: cargo build --release" >&2; exit 1; }
exec python3 - "$N" "$ROUNDS" "$BIN/nntpd" <<'EOF'
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, "scripts")
sys.path.insert(0, "tests/interop")
import nntp_bench
import inn_lab

n, rounds = int(sys.argv[1]), int(sys.argv[2])
nntpd = os.path.abspath(sys.argv[3])
base = tempfile.mkdtemp(prefix="bench-nntpd-")
os.chmod(base, 0o755)
GROUP = "bench.test"


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


class Ours:
    name = "nntpd"

    def __init__(self, d):
        self.port = free_port()
        spool = os.path.join(d, "spool")
        os.makedirs(spool)
        subprocess.run([nntpd, "-o", f"spool_dir={spool}", "--newgroup", GROUP, "y"],
                       check=True, capture_output=True)
        peers = os.path.join(d, "peers")
        with open(peers, "w") as f:
            f.write("bench 127.0.0.1:9 nothing.*\n")
        self.log = open(os.path.join(d, "log"), "w")
        self.proc = subprocess.Popen(
            [nntpd, "-F", "-o", f"listen=127.0.0.1:{self.port}", "-o", f"spool_dir={spool}",
             "-o", f"peers_file={peers}", "-o", "path_identity=ours.bench", "-o", "log=stderr"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        subprocess.run(["pkill", "-KILL", "-f", f"listen=127.0.0.1:{self.port}"], capture_output=True)


class Inn:
    name = "INN"

    def __init__(self, d):
        self.port = free_port()
        self.inn = inn_lab.Inn(d, self.port, groups=[(GROUP, "y")]).start()

    def stop(self):
        self.inn.stop()


def measure(server, tag, results):
    t0 = time.time()
    out = subprocess.run([sys.executable, "scripts/nntp_bench.py", "feed", "127.0.0.1",
                          str(server.port), GROUP, str(n), "4096", "4", tag],
                         capture_output=True, text=True)
    line = out.stdout.strip()
    if out.returncode != 0 or "missing 0" not in line:
        raise SystemExit(f"{server.name}: feed failed: {line} {out.stderr[-2000:]}")
    results.setdefault((server.name, "feed"), []).append(float(line.split()[1]))
    for what, args in (("over", []), ("reads", ["1000"])):
        best = None
        for _ in range(3):
            out = subprocess.run([sys.executable, "scripts/nntp_bench.py", what, "127.0.0.1",
                                  str(server.port), GROUP, *args], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{server.name}: {what} failed: {out.stdout} {out.stderr[-2000:]}")
            t = float(out.stdout.split()[1])
            best = t if best is None else min(best, t)
        results.setdefault((server.name, what), []).append(best)


have_inn = inn_lab.installed()
if not have_inn:
    print("INN (inn2) is not installed: nntpd alone")
results = {}
kinds = [Ours, Inn] if have_inn else [Ours]
try:
    for r in range(rounds):
        order = kinds if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            d = os.path.join(base, f"{kind.name}-{r}")
            os.makedirs(d)
            # Each round from a quiet disk: the last round's 80 MB of
            # article files are still being written back otherwise, and
            # a server that syncs its journal (ours) waits behind them
            # while one that never syncs (INN) does not.
            subprocess.run(["sync"])
            time.sleep(2)
            s = kind(d)
            try:
                measure(s, f"r{r}", results)
            finally:
                s.stop()
finally:
    shutil.rmtree(base, ignore_errors=True)


def med(name, what):
    v = results.get((name, what))
    if not v:
        return None
    return statistics.median(v) if what == "feed" else min(v)


print(f"nntpd benchmark: {n} articles of 4 KB, {rounds} rounds")
rows = [("feed", "articles/s, IHAVE streaming over 4 connections", True),
        ("over", "s, OVER of the whole group", False),
        ("reads", "s, GROUP + ARTICLE of 1,000 random articles", False)]
for what, unit, higher in rows:
    ours = med("nntpd", what)
    line = f"{what:6} nntpd {ours:10.3f}"
    theirs = med("INN", what)
    if theirs is not None:
        ratio = ours / theirs if higher else theirs / ours
        line += f"   INN {theirs:10.3f}   ratio {ratio:.2f}x"
    print(f"{line}   ({unit})")
# The feed's rounds, in order (INN's rate moves from run to run as much
# as ours: the median alone hides that).
for name in ("nntpd", "INN"):
    v = results.get((name, "feed"))
    if v:
        print(f"feed rounds {name}: " + " ".join(f"{x:.0f}" for x in v))
EOF
