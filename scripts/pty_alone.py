"""What this host's pseudo-terminals carry with no server at all, for
bench-telnetd.sh and bench-rcmd.sh: `cat` of a file on a pty's slave, the
master read by a process that does nothing else (no network, no relay).
Linux hands a pty's reader at most 4 KiB at a time through a kernel worker
thread, so this is the scale of what any telnetd or rlogind can relay
here: the servers come out near it (a relay that gathers several reads
into one send has been seen up to a tenth above this Python reader; the
rate itself moves by a tenth or more from run to run).

Usage: python3 scripts/pty_alone.py FILE   (prints MB/s)
"""

import os
import pty
import sys
import time


def rate(path):
    """MB/s of `cat path` through a fresh pty to a reader doing nothing."""
    master, slave = pty.openpty()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(master)
        os.setsid()
        os.dup2(slave, 1)
        os.execvp("cat", ["cat", path])
    os.close(slave)
    got = 0
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the slave side is closed
            break
        if not data:
            break
        got += len(data)
    os.waitpid(pid, 0)
    os.close(master)
    return got / (time.perf_counter() - start) / 1e6


if __name__ == "__main__":
    print(f"{rate(sys.argv[1]):.1f}")
