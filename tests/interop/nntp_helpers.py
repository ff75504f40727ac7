"""Helpers of the nntpd tests: a spool made through the contract
(`nntpd --newgroup`), a server started on it, a raw NNTP client for what
nntplib does not speak (IHAVE, MODE STREAM, bad input), and articles.

`news_server(kind, ...)` gives the same scenario on nntpd or on INN
(tests/interop/inn_lab.py): a test written against it proves itself on the
reference server too.
"""

import os
import socket
import subprocess
import time
import uuid

from conftest import IS_ROOT, binary, free_port
import inn_lab


def newgroup(spool, name, flag="y", desc=None):
    argv = [str(binary("nntpd")), "-o", f"spool_dir={spool}", "--newgroup", name, flag]
    if desc:
        argv.append(desc)
    subprocess.run(argv, check=True, capture_output=True)


def make_spool(lab, name="spool", groups=(("lab.test", "y"),)):
    spool = lab.dir / name
    for g in groups:
        # descriptions as inn_lab gives its groups
        newgroup(spool, *g) if len(g) > 2 else newgroup(spool, *g, "A group.")
    return spool


def msgid(tag="t"):
    return f"<{tag}.{uuid.uuid4().hex[:16]}@test.example>"


def article(mid=None, groups="lab.test", subject="a test", body="Hello.\r\n", path="feeder.test",
            extra=(), date=None):
    """An article in wire form (CRLF, not dot-stuffed) with a message-id."""
    mid = mid or msgid()
    date = date or time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    head = [f"Path: {path}!not-for-mail", "From: Tester <tester@test.example>",
            f"Newsgroups: {groups}", f"Subject: {subject}", f"Message-ID: {mid}",
            f"Date: {date}", *extra]
    return mid, ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def stuff(data):
    """Dot-stuff an article in wire form and terminate it."""
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
    return out + b".\r\n"


class Raw:
    """A line-level NNTP client over a plain socket."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self):
        l = self.f.readline(100000)
        if not l:
            raise EOFError("connection closed")
        return l.rstrip(b"\r\n").decode("utf-8", "replace")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def block(self):
        """A multi-line block, un-stuffed."""
        out = []
        while True:
            l = self.f.readline(100000)
            if not l:
                raise EOFError("connection closed in a block")
            l = l.rstrip(b"\r\n")
            if l == b".":
                return out
            out.append(l[1:] if l.startswith(b"..") else l)

    def ihave(self, mid, data):
        r = self.cmd(f"IHAVE {mid}")
        if not r.startswith("335"):
            return r
        self.send(stuff(data))
        return self.line()

    def close(self):
        try:
            self.send("QUIT\r\n")
            self.line()
        except OSError:
            pass
        except EOFError:
            pass
        self.sock.close()


class NntpdServer:
    kind = "nntpd"

    def __init__(self, daemon, lab, groups=(("lab.test", "y"),), opts=(), identity="ours.test",
                 mode="standalone", spool=None, name="spool"):
        self.lab = lab
        self.spool = spool or make_spool(lab, name, groups)
        self.identity = identity
        self.opts = [f"spool_dir={self.spool}", f"path_identity={identity}", *opts]
        self.d = daemon("nntpd", *self.opts, mode=mode)
        self.port = self.d.port

    def log(self):
        return self.d.log()


class InnServer:
    kind = "inn"

    def __init__(self, base, groups=(("lab.test", "y"),), identity="inn.test", **kw):
        self.port = free_port()
        self.identity = identity
        self.inn = inn_lab.Inn(base, self.port, pathhost=identity, groups=groups, **kw).start()

    def log(self):
        return self.inn.logs()

    def stop(self):
        self.inn.stop()


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stat(port, mid, host="127.0.0.1"):
    c = Raw(port, host)
    try:
        c.cmd("MODE READER")
        return c.cmd(f"STAT {mid}")
    finally:
        c.close()


def has_article(port, mid):
    try:
        return stat(port, mid).startswith("223")
    except OSError:
        return False


def article_files(spool):
    out = []
    for dirpath, _dirs, files in os.walk(spool / "articles"):
        out += [os.path.join(dirpath, f) for f in files]
    return out


def chown_news(path):
    if IS_ROOT:
        import pwd
        news = pwd.getpwnam("news")
        for dirpath, _dirs, files in os.walk(path):
            os.chown(dirpath, news.pw_uid, news.pw_gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), news.pw_uid, news.pw_gid)
