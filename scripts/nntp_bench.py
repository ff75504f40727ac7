#!/usr/bin/env python3
"""NNTP load for scripts/bench-nntpd.sh, the same client for every server:

  feed     N articles of SIZE bytes over C streaming connections (MODE
           STREAM, TAKETHIS pipelined, replies read as they come; an
           RFC 4644 server that refuses streaming gets IHAVE); prints
           articles per second, then checks every one is readable (STAT by
           message-id)
  over     OVER of the whole group, timed (prints seconds and lines)
  reads    GROUP + ARTICLE of R random article numbers, one round trip
           each (prints seconds)

Usage: nntp_bench.py feed HOST PORT GROUP N SIZE C TAG
       nntp_bench.py over HOST PORT GROUP
       nntp_bench.py reads HOST PORT GROUP R
"""

import multiprocessing
import random
import socket
import sys
import threading
import time


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb", buffering=1 << 16)
        greeting = self.line()
        if not greeting.startswith(b"20"):
            raise RuntimeError(greeting)

    def line(self):
        line = self.f.readline()
        if not line:
            raise EOFError("server closed the connection")
        return line.rstrip(b"\r\n")

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.line()

    def multi(self):
        n = 0
        size = 0
        while True:
            line = self.f.readline()
            if line in (b".\r\n", b""):
                return n, size
            n += 1
            size += len(line)


def article(tag, i, size):
    mid = f"<{tag}.{i}@bench.example>"
    head = (f"Path: bench.example!not-for-mail\r\nFrom: Bench <bench@bench.example>\r\n"
            f"Newsgroups: {GROUP}\r\nSubject: bench article {i}\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: {mid}\r\n\r\n")
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = (line * (max(0, size - len(head)) // len(line) + 1))[: max(0, size - len(head))]
    body = body.rstrip(b"\n").rstrip(b"\r") + b"\r\n"
    return mid, head.encode() + body


GROUP = "bench.test"


def feed_one(args):
    host, port, group, ids, size, tag = args
    global GROUP
    GROUP = group
    c = Conn(host, port)
    r = c.cmd("MODE STREAM")
    accepted = refused = 0
    if r.startswith(b"203"):
        done = threading.Event()
        counts = [0, 0]

        def reader():
            for _ in ids:
                rep = c.line()
                if rep.startswith(b"239"):
                    counts[0] += 1
                else:
                    counts[1] += 1
            done.set()

        t = threading.Thread(target=reader)
        t.start()
        buf = []
        pending = 0
        for i in ids:
            mid, art = article(tag, i, size)
            buf.append(f"TAKETHIS {mid}\r\n".encode() + art + b".\r\n")
            pending += 1
            if pending >= 16:
                c.s.sendall(b"".join(buf))
                buf, pending = [], 0
        if buf:
            c.s.sendall(b"".join(buf))
        t.join()
        accepted, refused = counts
    else:
        for i in ids:
            mid, art = article(tag, i, size)
            r = c.cmd(f"IHAVE {mid}")
            if not r.startswith(b"335"):
                refused += 1
                continue
            c.s.sendall(art + b".\r\n")
            if c.line().startswith(b"235"):
                accepted += 1
            else:
                refused += 1
    c.cmd("QUIT")
    return accepted, refused


def feed(host, port, group, n, size, conns, tag):
    chunks = [list(range(k, n, conns)) for k in range(conns)]
    with multiprocessing.Pool(conns) as pool:
        # Warm the pool's processes before the clock starts.
        pool.map(int, range(conns))
        t0 = time.time()
        results = pool.map(feed_one, [(host, port, group, ch, size, tag) for ch in chunks])
        elapsed = time.time() - t0
    accepted = sum(a for a, _ in results)
    refused = sum(r for _, r in results)
    # Every accepted article must be readable.
    c = Conn(host, port)
    c.cmd("MODE READER")
    missing = 0
    for i in range(n):
        mid, _ = article(tag, i, 0)
        r = c.cmd(f"STAT {mid}")
        if not r.startswith(b"223"):
            missing += 1
    c.cmd("QUIT")
    print(f"feed {n / elapsed:.0f} articles/s ({elapsed:.2f} s) accepted {accepted} "
          f"refused {refused} missing {missing}")
    return 0 if missing == 0 and accepted == n else 1


def over(host, port, group):
    c = Conn(host, port)
    c.cmd("MODE READER")
    r = c.cmd(f"GROUP {group}").split()
    low, high = r[2].decode(), r[3].decode()
    t0 = time.time()
    r = c.cmd(f"OVER {low}-{high}")
    if not r.startswith(b"224"):
        r = c.cmd(f"XOVER {low}-{high}")
    lines, size = c.multi()
    elapsed = time.time() - t0
    c.cmd("QUIT")
    print(f"over {elapsed:.3f} s {lines} lines {size} bytes")
    return 0


def reads(host, port, group, count):
    c = Conn(host, port)
    c.cmd("MODE READER")
    r = c.cmd(f"GROUP {group}").split()
    low, high = int(r[2]), int(r[3])
    rng = random.Random(42)
    picks = [rng.randint(low, high) for _ in range(count)]
    t0 = time.time()
    got = 0
    for n in picks:
        # As a reader does: GROUP, its answer, then ARTICLE (pipelining
        # the two meets INN's Nagle delay on every article: 40 ms each).
        c.s.sendall(f"GROUP {group}\r\n".encode())
        c.line()
        c.s.sendall(f"ARTICLE {n}\r\n".encode())
        if c.line().startswith(b"220"):
            c.multi()
            got += 1
    elapsed = time.time() - t0
    c.cmd("QUIT")
    print(f"reads {elapsed:.3f} s {got} articles")
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "feed":
        sys.exit(feed(a[1], int(a[2]), a[3], int(a[4]), int(a[5]), int(a[6]), a[7]))
    if a[0] == "over":
        sys.exit(over(a[1], int(a[2]), a[3]))
    if a[0] == "reads":
        sys.exit(reads(a[1], int(a[2]), a[3], int(a[4])))
    print(__doc__)
    sys.exit(2)
