"""nntpd in transit: IHAVE and streaming (RFC 4644) from peers, duplicates
and Path loops, control messages, two nntpd feeding each other, INN
feeding nntpd (innfeed, innxmit) and fed by it, suck and rpost, a kill -9
in the middle of a feed, expiry."""

import io
import os
import re
import signal
import subprocess
import threading
import time
import warnings

import pytest

from conftest import binary, descendants, free_port, need, need_reference
from nntp_helpers import (InnServer, NntpdServer, Raw, article, has_article, make_spool, msgid,
                          stuff, wait_for)
import inn_lab

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def peers(lab, text, name="peers"):
    p = lab.dir / name
    p.write_text(text)
    return p


@pytest.fixture(params=["nntpd", "inn"])
def transit(request, daemon, lab):
    """A server that takes 127.0.0.1 as a peer."""
    if request.param == "nntpd":
        pf = peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n")
        yield NntpdServer(daemon, lab, opts=(f"peers_file={pf}",))
    else:
        need_reference(str(inn_lab.INND), "inn2")
        s = InnServer(lab.dir / "inn")
        yield s
        s.stop()


def test_ihave(transit):
    c = Raw(transit.port)
    mid, art = article()
    assert c.ihave(mid, art).startswith("235")
    assert c.ihave(mid, art)[:3] == "435"
    c.close()
    assert has_article(transit.port, mid)
    if transit.kind == "inn":
        return   # INN takes such an article (it only never feeds it back)
    # a Path that holds the server's own name: refused
    c = Raw(transit.port)
    mid2, art2 = article(path=f"elsewhere.test!{transit.identity}!origin.test")
    assert c.ihave(mid2, art2)[:3] == "437"
    c.close()
    assert not has_article(transit.port, mid2)


def test_streaming(transit):
    c = Raw(transit.port)
    assert c.cmd("MODE STREAM").startswith("203")
    mids = [msgid("s") for _ in range(5)]
    # pipelined: CHECKs then TAKETHIS in one write each
    c.send("".join(f"CHECK {m}\r\n" for m in mids))
    assert [c.line().split()[:2] for _ in mids] == [["238", m] for m in mids]
    c.send(b"".join(b"TAKETHIS " + m.encode() + b"\r\n" + stuff(article(m)[1]) for m in mids))
    assert [c.line().split()[:2] for _ in mids] == [["239", m] for m in mids]
    assert c.cmd(f"CHECK {mids[0]}").split()[:2] == ["438", mids[0]]
    c.send(b"TAKETHIS " + mids[1].encode() + b"\r\n" + stuff(article(mids[1])[1]))
    assert c.line().split()[:2] == ["439", mids[1]]
    c.close()
    for m in mids:
        assert has_article(transit.port, m)


def test_transit_is_for_peers_only(daemon, lab):
    pf = peers(lab, "feeder.test 127.0.0.9:9 nothing.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}",))
    c = Raw(srv.port)
    mid, art = article()
    assert c.cmd(f"IHAVE {mid}")[:3] in ("502", "480")
    c.close()
    c = Raw(srv.port, source="127.0.0.9")
    assert c.ihave(mid, art).startswith("235")
    c.close()


def test_control_messages(daemon, lab):
    pf = peers(lab, "trusted.test 127.0.0.1:9 nothing.*\nother.test 127.0.0.7:9 nothing.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}", "control_peers=trusted.test"))
    target, art = article()
    c = Raw(srv.port)
    assert c.ihave(target, art).startswith("235")
    c.close()
    # a cancel from a peer not allowed to send control messages: ignored
    c = Raw(srv.port, source="127.0.0.7")
    cid, cancel = article(groups="lab.test", subject=f"cmsg cancel {target}",
                          extra=(f"Control: cancel {target}",))
    r = c.ihave(cid, cancel)
    assert r[:3] in ("235", "437")
    c.close()
    assert has_article(srv.port, target)
    # from the trusted peer: carried out
    c = Raw(srv.port)
    cid, cancel = article(groups="lab.test", subject=f"cmsg cancel {target}",
                          extra=(f"Control: cancel {target}",))
    assert c.ihave(cid, cancel).startswith("235")
    nid, newgroup = article(groups="lab.new", subject="cmsg newgroup lab.new",
                            extra=("Control: newgroup lab.new",))
    assert c.ihave(nid, newgroup).startswith("235")
    c.close()
    assert not has_article(srv.port, target)
    wait_for(lambda: "lab.new " in (srv.spool / "active").read_text(), 10, "lab.new")
    # a reader's cancel is not obeyed either
    s = nntplib.NNTP("127.0.0.1", srv.port, readermode=True)
    mid2 = s.post(io.BytesIO(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: keep\r\n\r\nx\r\n"))
    mid2 = mid2.split()[-1]
    try:
        s.post(io.BytesIO(f"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: cmsg\r\n"
                          f"Control: cancel {mid2}\r\n\r\nx\r\n".encode()))
    except nntplib.NNTPTemporaryError:
        pass
    s.quit()
    assert has_article(srv.port, mid2)
    assert "not" in srv.log() or "ignored" in srv.log() or "refused" in srv.log()


def start_pair(daemon, lab, extra_a=(), extra_b=(), start_b=True):
    pa, pb = free_port(), free_port()
    spa = make_spool(lab, "spool-a", (("lab.test", "y"), ("lab.other", "y")))
    spb = make_spool(lab, "spool-b", (("lab.test", "y"), ("lab.other", "y")))
    fa = peers(lab, f"b.test 127.0.0.1:{pb} lab.*\n", "peers-a")
    fb = peers(lab, f"a.test 127.0.0.1:{pa} lab.*\n", "peers-b")
    common = ("feed_retry_interval=1",)
    a = NntpdServer(daemon, lab, spool=spa, identity="a.test",
                    opts=(f"peers_file={fa}", *common, *extra_a)) if True else None
    # NntpdServer picks its own port; restart on the one the peers file names
    a.d.stop()
    a.d = daemon("nntpd", *a.opts, port=pa)
    a.port = pa
    b = None
    if start_b:
        b = start_b_server(daemon, lab, spb, fb, pb, common + tuple(extra_b))
    return a, b, (spb, fb, pb, common + tuple(extra_b))


def start_b_server(daemon, lab, spb, fb, pb, opts):
    class B:
        pass
    b = B()
    b.spool, b.port, b.identity = spb, pb, "b.test"
    b.d = daemon("nntpd", f"spool_dir={spb}", "path_identity=b.test", f"peers_file={fb}",
                 *opts, port=pb)
    b.log = b.d.log
    return b


def post_to(port, subject, groups="lab.test"):
    s = nntplib.NNTP("127.0.0.1", port, readermode=True)
    try:
        r = s.post(io.BytesIO(f"From: p@test.example\r\nNewsgroups: {groups}\r\n"
                              f"Subject: {subject}\r\n\r\nbody of {subject}\r\n".encode()))
        return r.split()[-1]
    finally:
        s.quit()


def sent_counts(log):
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+) sent, (\d+) declined", log)]


def test_two_nntpd_feed_each_other(daemon, lab):
    a, b, _ = start_pair(daemon, lab)
    m1 = post_to(a.port, "from a")
    m2 = post_to(b.port, "from b", groups="lab.test,lab.other")
    wait_for(lambda: has_article(b.port, m1), 30, "a's article at b")
    wait_for(lambda: has_article(a.port, m2), 30, "b's article at a")
    s = nntplib.NNTP("127.0.0.1", b.port, readermode=True)
    _, info = s.article(m1)
    path = [l for l in info.lines if l.startswith(b"Path: ")][0]
    assert path.startswith(b"Path: b.test!a.test")
    s.quit()
    s = nntplib.NNTP("127.0.0.1", a.port, readermode=True)
    assert s.group("lab.other")[1] == 1
    s.quit()
    # nothing goes back where it came from, nothing twice
    time.sleep(3)
    for log in (a.log(), b.log()):
        counts = sent_counts(log)
        assert sum(x for x, _ in counts) == 1, log
        assert sum(y for _, y in counts) == 0, log


def test_feed_retried_while_peer_down(daemon, lab):
    a, _, (spb, fb, pb, opts) = start_pair(daemon, lab, start_b=False)
    mids = [post_to(a.port, f"while down {i}") for i in range(3)]
    wait_for(lambda: "next attempt" in a.log(), 20, "a failed attempt")
    b = start_b_server(daemon, lab, spb, fb, pb, opts)
    for m in mids:
        wait_for(lambda: has_article(b.port, m), 60, "the queued articles")
    time.sleep(2)
    assert sum(x for x, _ in sent_counts(a.log())) == 3


def test_nntpd_feeds_inn_and_inn_feeds_nntpd(daemon, lab):
    need_reference(str(inn_lab.INND), "inn2")
    ours = free_port()
    inn = InnServer(lab.dir / "inn", peers=[("ours.test", "127.0.0.1", ours, "lab.*")])
    try:
        pf = peers(lab, f"inn.test 127.0.0.1:{inn.port} lab.*\n")
        spool = make_spool(lab)
        d = daemon("nntpd", f"spool_dir={spool}", "path_identity=ours.test",
                   f"peers_file={pf}", "feed_retry_interval=1", port=ours)
        m1 = post_to(ours, "ours to inn")
        wait_for(lambda: has_article(inn.port, m1), 30, "nntpd's article at INN")
        # INN's innfeed streams to us
        m2 = post_to(inn.port, "inn to ours")
        inn.inn.flush_feeds()
        wait_for(lambda: has_article(ours, m2), 60, "INN's article at nntpd")
        s = nntplib.NNTP("127.0.0.1", ours, readermode=True)
        _, info = s.article(m2)
        assert any(l.startswith(b"Path: ours.test!inn.test") for l in info.lines)
        s.quit()
        time.sleep(2)
        # neither went back
        assert sum(y for _, y in sent_counts(d.log())) == 0
    finally:
        inn.stop()


def test_innxmit_feeds_nntpd(daemon, lab):
    need_reference(str(inn_lab.INND), "inn2")
    pf = peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}",))
    inn = inn_lab.Inn(lab.dir / "inn", free_port())   # its configuration only
    (inn.dir / "spool" / "tradspool.map").write_text("")
    inn._chown()
    batch = lab.dir / "batch"
    mids = []
    lines = []
    for i in range(5):
        mid, art = article(subject=f"innxmit {i}")
        f = lab.dir / f"art{i}"
        f.write_bytes(stuff(art))   # INN stores articles in wire form
        mids.append(mid)
        lines.append(f"{f} {mid}\n")
    batch.write_text("".join(lines))
    os.chmod(lab.dir, 0o755)
    for p in [batch, *(lab.dir / f"art{i}" for i in range(5))]:
        os.chmod(p, 0o666)
    r = inn.run("innxmit", "-P", str(srv.port), "-t", "30", "-T", "30", "127.0.0.1", str(batch),
                check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    for m in mids:
        assert has_article(srv.port, m)
    # and again: all refused as duplicates, none stored twice
    batch.write_text("".join(lines))
    inn.run("innxmit", "-P", str(srv.port), "-t", "30", "-T", "30", "127.0.0.1", str(batch),
            check=False)
    s = nntplib.NNTP("127.0.0.1", srv.port, readermode=True)
    assert s.group("lab.test")[1] == 5
    s.quit()


def test_suck_and_rpost(daemon, lab, tmp_path):
    need("suck")
    need("rpost")
    src = NntpdServer(daemon, lab, identity="src.test")
    mids = [post_to(src.port, f"for suck {i}") for i in range(3)]
    pf = peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n", "peers-dst")
    dst = NntpdServer(daemon, lab, identity="dst.test", name="spool-dst",
                      opts=(f"peers_file={pf}",))
    work = tmp_path / "suck"
    work.mkdir()
    (work / "sucknewsrc").write_text("lab.test 0\n")
    # suck pulls lab.test into one file per article (-m) ...
    r = subprocess.run(["suck", "127.0.0.1", "-N", str(src.port), "-M", "-m", "-dt", str(work),
                        "-dm", str(work / "msgs"), "-dd", str(work)],
                       cwd=work, capture_output=True, text=True, timeout=60)
    got = sorted(os.listdir(work / "msgs")) if (work / "msgs").exists() else []
    assert len(got) == 3, r.stdout + r.stderr
    # ... and rpost offers them to the other server (IHAVE: it is a peer)
    (work / "batch").write_text("".join(f"{g}\n" for g in got))
    r = subprocess.run(["rpost", "127.0.0.1", "-N", str(dst.port), "-b", str(work / "batch"),
                        "-p", str(work / "msgs")], cwd=work, capture_output=True, text=True,
                       timeout=60)
    for m in mids:
        assert has_article(dst.port, m), r.stdout + r.stderr


def test_kill9_loses_no_acknowledged_article(daemon, lab):
    pf = peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}",))
    acked, seen, stop = [], {}, threading.Event()

    def feeder():
        try:
            c = Raw(srv.port)
            c.cmd("MODE STREAM")
            while not stop.is_set():
                batch = [article(subject="crash")for _ in range(10)]
                c.send(b"".join(b"TAKETHIS " + m.encode() + b"\r\n" + stuff(a) for m, a in batch))
                for _ in batch:
                    r = c.line().split()
                    if r[0] == "239":
                        acked.append(r[1])
        except (OSError, EOFError, IndexError):
            pass

    def watcher():
        try:
            c = Raw(srv.port)
            c.cmd("MODE READER")
            while not stop.is_set():
                if not c.cmd("GROUP lab.test").startswith("211"):
                    continue
                if c.cmd("OVER 1-").startswith("224"):
                    for l in c.block():
                        f = l.split(b"\t")
                        seen[int(f[0])] = f[4].decode()
        except (OSError, EOFError, ValueError, IndexError):
            pass

    threads = [threading.Thread(target=feeder), threading.Thread(target=feeder),
               threading.Thread(target=watcher)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) > 200, 60, "articles to flow")
    pids = [srv.d.proc.pid] + descendants(srv.d.proc.pid, 1) + descendants(srv.d.proc.pid, 2) \
        + descendants(srv.d.proc.pid, 3)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    stop.set()
    for t in threads:
        t.join(30)
    srv.d.proc.wait()
    n_acked = len(acked)
    # the same spool, a new server
    d2 = daemon("nntpd", *srv.opts)
    for m in acked:
        assert has_article(d2.port, m), m
    s = nntplib.NNTP("127.0.0.1", d2.port, readermode=True)
    _, count, first, last, _ = s.group("lab.test")
    assert count >= n_acked
    _, over = s.over((first, last))
    numbers = [n for n, _ in over]
    assert len(numbers) == len(set(numbers))
    by_number = {n: o["message-id"] for n, o in over}
    for n, m in seen.items():
        assert by_number.get(n, m) == m, f"number {n} now names another article"
    s.post(io.BytesIO(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: after\r\n\r\nx\r\n"))
    _, _, _, new_last, _ = s.group("lab.test")
    _, over = s.over((new_last, new_last))
    assert over[0][1]["subject"] == "after"
    assert new_last > max([last, *seen.keys()])
    s.quit()


def test_expire(daemon, lab):
    expire_file = lab.dir / "expire"
    expire_file.write_text("lab.keep never\n")
    srv = NntpdServer(daemon, lab, (("lab.test", "y"), ("lab.keep", "y")),
                      opts=("article_lifetime=864000", f"expire_file={expire_file}",
                            "peers_file=" + str(peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n"))))
    old = [post_to(srv.port, f"old {i}") for i in range(3)]
    keep = post_to(srv.port, "kept", groups="lab.keep")
    new = post_to(srv.port, "new")
    then = time.time() - 20 * 86400
    for dirpath, _dirs, files in os.walk(srv.spool / "articles"):
        for f in files:
            p = os.path.join(dirpath, f)
            if not p.endswith("/4") or "lab.keep" in p:
                os.utime(p, (then, then))
    r = subprocess.run([str(binary("nntpd")), *sum((["-o", o] for o in srv.opts), []),
                        "--expire"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = nntplib.NNTP("127.0.0.1", srv.port, readermode=True)
    _, count, first, last, _ = s.group("lab.test")
    assert (count, first, last) == (1, 4, 4)
    _, over = s.over((1, 4))
    assert [n for n, _ in over] == [4]
    assert over[0][1]["message-id"] == new
    for m in old:
        with pytest.raises(nntplib.NNTPTemporaryError):
            s.stat(m)
    assert s.group("lab.keep")[1] == 1
    s.quit()
    assert has_article(srv.port, keep)
    # the history remembers them: a peer cannot bring them back
    c = Raw(srv.port)
    assert c.cmd(f"IHAVE {old[0]}")[:3] == "435"
    c.close()


class NoStreamingPeer:
    """A peer that knows only IHAVE (MODE STREAM is 500): records what it
    is offered and takes it."""

    def __init__(self):
        import socket as so
        self.sock = so.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.taken, self.commands = [], []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"200 old peer\r\n")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.strip().decode()
                self.commands.append(cmd.split()[0].upper())
                verb = cmd.split()[0].upper()
                if verb == "IHAVE":
                    conn.sendall(b"335 send it\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.taken.append(cmd.split()[1])
                    conn.sendall(b"235 thanks\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"205 bye\r\n")
                    return
                else:
                    conn.sendall(b"500 what?\r\n")
        finally:
            conn.close()


def test_feed_falls_back_to_ihave(daemon, lab):
    peer = NoStreamingPeer()
    pf = peers(lab, f"old.test 127.0.0.1:{peer.port} lab.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}", "feed_retry_interval=1"))
    mids = [post_to(srv.port, f"to an old peer {i}") for i in range(2)]
    wait_for(lambda: set(mids) <= set(peer.taken), 30, "the IHAVE offers")
    assert "IHAVE" in peer.commands and "TAKETHIS" not in peer.commands
    time.sleep(2)
    assert sorted(peer.taken) == sorted(mids)   # once each


def test_max_article_size_for_peers(daemon, lab):
    pf = peers(lab, "feeder.test 127.0.0.1:9 nothing.*\n")
    srv = NntpdServer(daemon, lab, opts=(f"peers_file={pf}", "max_article_size=2000"))
    c = Raw(srv.port)
    mid, art = article(body="x" * 70 + "\r\n" + ("y" * 70 + "\r\n") * 40)
    assert c.ihave(mid, art)[:3] == "437"
    mid2, small = article()
    assert c.ihave(mid2, small).startswith("235")
    c.close()
    assert not has_article(srv.port, mid)
