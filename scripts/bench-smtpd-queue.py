#!/usr/bin/env python3
"""Acceptance and delivery rate of smtpd's queue (or Postfix with --postfix-port).

N messages of SIZE bytes over P parallel SMTP sessions to one local Maildir
recipient. Prints the accept rate (messages acknowledged per second) and the
time until the last one is in the Maildir. Loopback only.

  scripts/bench-smtpd-queue.py [--bin target/release/smtpd] [-n 5000] [-p 20] [--size 10240]
"""

import argparse
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(Path(__file__).resolve().parents[1] / "target/release/smtpd"))
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("-p", type=int, default=20)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--port", type=int, default=22625)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--drain", action="store_true",
                    help="hold the queue runner (SIGSTOP) while accepting, then time delivery alone")
    a = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-smtpd-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    home = base / "home" / "demo"
    home.mkdir(parents=True)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        os.chown(home, uid, gid)
    else:
        uid, gid = os.getuid(), os.getgid()
    (base / "passwd").write_text(f"demo:x:{uid}:{gid}:demo:{home}:/bin/sh\n")
    log = open(base / "smtpd.log", "w")
    proc = subprocess.Popen([a.bin, "-F", "-o", f"listen=127.0.0.1:{a.port}", "-o", "log=stderr",
                             "-o", f"passwd_file={base / 'passwd'}", "-o", f"queue_dir={base / 'queue'}",
                             "-o", "hostname=mx.bench.test", "-o", "local_domains=bench.test",
                             "-o", "aliases_file=", "-o", f"max_per_ip={a.p + 5}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                smtplib.SMTP("127.0.0.1", a.port, timeout=1).quit()
                break
            except OSError:
                time.sleep(0.05)
        line = "x" * 76 + "\r\n"
        body = ("Subject: bench\r\n\r\n" + line * (a.size // len(line) + 1))[: a.size]
        counter = iter(range(a.n))
        lock = threading.Lock()
        errors = []

        def worker():
            s = smtplib.SMTP("127.0.0.1", a.port, timeout=60)
            s.ehlo("bench.client")
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                try:
                    s.sendmail("bench@client.test", ["demo@bench.test"], body)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            s.quit()

        runner = None
        if a.drain:
            import re
            import signal
            for _ in range(100):
                m = re.search(r"smtpd\[(\d+)\]: info: queue runner started", (base / "smtpd.log").read_text())
                if m:
                    runner = int(m.group(1))
                    break
                time.sleep(0.05)
            os.kill(runner, signal.SIGSTOP)
        t0 = time.time()
        ts = [threading.Thread(target=worker) for _ in range(a.p)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        accepted = time.time() - t0
        if runner:
            os.kill(runner, signal.SIGCONT)
            t0 = time.time()
        new = home / "Maildir" / "new"
        while True:
            n = len(os.listdir(new)) if new.exists() else 0
            if n >= a.n or time.time() - t0 > 600:
                break
            time.sleep(0.02)
        delivered = time.time() - t0
        print(f"{a.n} messages of {a.size} bytes over {a.p} sessions: "
              f"accepted in {accepted:.2f} s ({a.n / accepted:.0f} msg/s), "
              f"all {n} delivered after {delivered:.2f} s{' (delivery alone)' if runner else ''}; "
              f"errors: {len(errors)}")
        return 0 if n >= a.n and not errors else 1
    finally:
        proc.terminate()
        proc.wait()
        log.close()
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
