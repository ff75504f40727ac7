"""nntpd as a reader's server (RFC 3977), driven by Python's nntplib and a
raw client; the reader scenarios run against INN too (`server` is
parametrized), which proves the test, not only the daemon."""

import io
import os
import socket
import ssl
import time
import warnings

import pytest

from conftest import IS_ROOT, need_reference
from nntp_helpers import (InnServer, NntpdServer, Raw, article, article_files, msgid, stuff,
                          wait_for)
import inn_lab

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

GROUPS = (("lab.test", "y"), ("lab.other", "y"), ("misc.quiet", "n"))


@pytest.fixture(params=["nntpd", "inn"])
def server(request, daemon, lab):
    if request.param == "nntpd":
        yield NntpdServer(daemon, lab, GROUPS)
    else:
        need_reference(str(inn_lab.INND), "inn2")
        s = InnServer(lab.dir / "inn", GROUPS)
        yield s
        s.stop()


def post(port, subject, groups="lab.test", body="Some text.\r\n", extra=""):
    s = nntplib.NNTP("127.0.0.1", port, readermode=True)
    try:
        art = (f"From: Poster <poster@test.example>\r\nNewsgroups: {groups}\r\n"
               f"Subject: {subject}\r\n{extra}\r\n{body}").encode()
        return s.post(io.BytesIO(art))
    finally:
        s.quit()


def reader(port):
    return nntplib.NNTP("127.0.0.1", port, readermode=True)


def test_reader_commands(server):
    for i in range(3):
        assert post(server.port, f"article {i}").startswith("240")
    s = reader(server.port)
    caps = s.getcapabilities()
    assert "READER" in caps and "OVER" in caps and "HDR" in caps
    assert "ACTIVE" in caps["LIST"] and "OVERVIEW.FMT" in caps["LIST"]
    resp, count, first, last, name = s.group("lab.test")
    assert resp.startswith("211") and (count, first, last) == (3, 1, 3)
    # LISTGROUP with a range
    resp, lines = s._longcmd("LISTGROUP lab.test 2-")
    assert resp.startswith("211") and lines == [b"2", b"3"]
    # ARTICLE/HEAD/BODY/STAT by number and by message-id
    resp, info = s.article(1)
    mid = info.message_id
    assert resp.startswith("220") and info.number == 1
    assert any(l.startswith(b"Path: ") and server.identity.encode() in l for l in info.lines)
    assert any(l.startswith(b"Xref: ") for l in info.lines)
    assert any(l.startswith(b"Injection-Date: ") for l in info.lines)
    assert s.head(mid)[0].startswith("221")
    assert s.body(2)[0].startswith("222")
    assert s.stat(mid)[0].startswith("223")
    # NEXT and LAST move the current article
    s.stat(1)
    assert s.next()[1] == 2
    assert s.last()[1] == 1
    with pytest.raises(nntplib.NNTPTemporaryError, match="^422"):
        s.last()
    s.stat(3)
    with pytest.raises(nntplib.NNTPTemporaryError, match="^421"):
        s.next()
    # OVER, XOVER, HDR, XHDR
    resp, overviews = s.over((1, 3))
    assert resp.startswith("224") and [n for n, _ in overviews] == [1, 2, 3]
    assert overviews[0][1]["subject"] == "article 0"
    assert overviews[0][1]["message-id"] == mid
    resp, xo = s.xover(2, 3)
    assert [n for n, _ in xo] == [2, 3]
    resp, hdrs = s.hdr("Subject", "1-3") if hasattr(s, "hdr") else s.xhdr("Subject", "1-3")
    assert [h for _, h in hdrs] == ["article 0", "article 1", "article 2"]
    resp, lines = s._longcmd(f"HDR Subject {mid}")
    assert resp.startswith("225") and lines == [b"0 article 0"]
    try:
        resp, lines = s._longcmd(f"OVER {mid}")
        assert resp.startswith("224") and len(lines) == 1
    except nntplib.NNTPPermanentError as e:
        # OVER by message-id is optional (OVER MSGID in CAPABILITIES)
        assert server.kind == "inn" and str(e)[:3] == "503"
    # LIST variants, with wildmats
    resp, groups = s.list("lab.*")
    assert sorted(g.group for g in groups) == ["lab.other", "lab.test"]
    assert {g.group: g.flag for g in s.list()[1]}["misc.quiet"] == "n"
    resp, descs = s.descriptions("lab.*")
    assert resp.startswith("215")
    if server.kind == "nntpd":   # (inn_lab's newsgroups file is not served by its nnrpd)
        assert set(descs) >= {"lab.test", "lab.other"} and descs["lab.test"] == "A group."
    assert s._longcmdstring("LIST ACTIVE.TIMES lab.test")[0].startswith("215")
    fmt = s._longcmdstring("LIST OVERVIEW.FMT")[1]
    assert fmt[:5] == ["Subject:", "From:", "Date:", "Message-ID:", "References:"]
    assert s._longcmdstring("LIST HEADERS")[0].startswith("215")
    try:
        s._longcmd("LIST DISTRIB.PATS")
    except nntplib.NNTPError as e:
        assert str(e)[:3] == "503"
    # NEWGROUPS, NEWNEWS, DATE, HELP
    since = s.date()[1].replace(year=2000)
    assert {g.group for g in s.newgroups(since)[1]} >= {"lab.test", "lab.other"}
    assert mid in s.newnews("lab.*", since)[1]
    assert s.date()[0].startswith("111")
    assert s.help()[0].startswith("100")
    # error codes
    with pytest.raises(nntplib.NNTPTemporaryError, match="^411"):
        s.group("no.such.group")
    with pytest.raises(nntplib.NNTPTemporaryError, match="^423"):
        s.stat(99)
    with pytest.raises(nntplib.NNTPTemporaryError, match="^430"):
        s.stat("<nonexistent@nowhere>")
    with pytest.raises(nntplib.NNTPPermanentError, match="^500"):
        s._shortcmd("FROBNICATE")
    with pytest.raises(nntplib.NNTPPermanentError, match="^501"):
        s._shortcmd("GROUP")
    assert s.quit().startswith("205")


def test_no_group_selected(server):
    c = Raw(server.port)
    assert c.greeting.startswith("200")
    assert c.cmd("MODE READER").startswith("20")
    assert c.cmd("NEXT")[:3] == "412"
    assert c.cmd("ARTICLE 1")[:3] == "412"
    assert c.cmd("GROUP lab.test").startswith("211 0")
    assert c.cmd("STAT")[:3] == "420"
    c.close()


def test_crosspost_is_stored_once(server):
    assert post(server.port, "cross", groups="lab.test,lab.other").startswith("240")
    s = reader(server.port)
    s.group("lab.other")
    _, info = s.article(1)
    xref = [l for l in info.lines if l.startswith(b"Xref: ")][0].decode()
    assert "lab.test:1" in xref and "lab.other:1" in xref
    s.group("lab.test")
    assert s.stat(1)[2] == info.message_id
    s.quit()
    if server.kind == "nntpd":
        # one file, linked into each group's directory
        inodes = {os.stat(f).st_ino for f in article_files(server.spool)}
        assert len(inodes) == 1


def test_dot_stuffing_and_long_lines(server):
    body = "..starts with two dots\r\n.one dot\r\n.\r\nx" + "y" * 990 + "\r\n"
    assert post(server.port, "dots", body=body).startswith("240")
    s = reader(server.port)
    s.group("lab.test")
    lines = s.body(1)[1].lines
    assert lines[:3] == [b"..starts with two dots", b".one dot", b"."]
    assert len(lines[3]) == 991
    s.quit()


def test_post_requires_headers(server):
    s = reader(server.port)
    with pytest.raises(nntplib.NNTPTemporaryError, match="^441"):
        s.post(io.BytesIO(b"From: a@b.example\r\nSubject: no groups\r\n\r\nbody\r\n"))
    with pytest.raises(nntplib.NNTPTemporaryError, match="^441"):
        s.post(io.BytesIO(b"Newsgroups: lab.test\r\nSubject: no from\r\n\r\nbody\r\n"))
    with pytest.raises(nntplib.NNTPTemporaryError, match="^441"):
        s.post(io.BytesIO(b"From: a@b.example\r\nNewsgroups: no.such.group\r\n"
                          b"Subject: nowhere\r\n\r\nbody\r\n"))
    s.quit()


def test_command_line_bound(daemon, lab):
    srv = NntpdServer(daemon, lab)
    c = Raw(srv.port)
    assert c.cmd("GROUP " + "a" * 600)[:3] == "501"
    # the session goes on
    assert c.cmd("DATE").startswith("111")
    c.close()


def test_message_id_never_a_file_name(daemon, lab):
    srv = NntpdServer(daemon, lab)
    secret = lab.dir / "secret"
    secret.write_text("no")
    c = Raw(srv.port)
    c.cmd("MODE READER")
    for bad in ("<../../secret>", "<a/b@c>", "<..>", "</etc/passwd>"):
        assert c.cmd(f"ARTICLE {bad}")[:3] in ("430", "501"), bad
    c.send(b"ARTICLE <a\x00b@c>\r\n")
    assert c.line()[:3] in ("430", "501")
    c.close()
    # a posting with such an id (valid: `/` is atext) is refused or stored
    # under its number, never under a name made of it
    s = reader(srv.port)
    for bad in ("<../../../escape@x>", "<a/../../escape2@x>"):
        try:
            s.post(io.BytesIO(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: x\r\n"
                              b"Message-ID: " + bad.encode() + b"\r\n\r\nbody\r\n"))
            assert s.stat(bad)[2] == bad
        except nntplib.NNTPTemporaryError as e:
            assert str(e)[:3] in ("441", "430")
    s.quit()
    assert not any("escape" in p.name for p in lab.dir.rglob("*"))
    for f in article_files(srv.spool):
        assert ".." not in os.path.relpath(f, srv.spool)
        assert os.path.basename(f).isdigit()


def test_nul_and_bare_cr_lf(daemon, lab):
    srv = NntpdServer(daemon, lab)
    c = Raw(srv.port)
    c.cmd("MODE READER")
    assert c.cmd("POST").startswith("340")
    c.send(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: nul\r\n\r\n"
           b"a\x00b\r\n.\r\n")
    assert c.line()[:3] == "441"
    assert c.cmd("POST").startswith("340")
    c.send(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: bare\r\n\r\n"
           b"one\rtwo\nthree\r\n.\r\n")
    r = c.line()
    assert r[:3] in ("240", "441")
    if r.startswith("240"):
        # what is stored is served back in canonical CRLF lines
        c.cmd("GROUP lab.test")
        assert c.cmd("BODY 1").startswith("222")
        body = c.block()
        assert all(b"\r" not in l and b"\n" not in l for l in body)
    c.close()


def test_max_article_size(daemon, lab):
    srv = NntpdServer(daemon, lab, opts=("max_article_size=2000",))
    with pytest.raises(nntplib.NNTPTemporaryError, match="^441"):
        post(srv.port, "big", body="x" * 70 + "\r\n" * 1 + ("y" * 70 + "\r\n") * 40)
    assert post(srv.port, "small").startswith("240")


def test_wildmat_cost_is_bounded(daemon, lab):
    groups = [(f"lab.{'a' * 60}{i}", "y") for i in range(30)]
    srv = NntpdServer(daemon, lab, groups)
    c = Raw(srv.port)
    c.cmd("MODE READER")
    pattern = "*a" * 40 + "*b"
    r = c.cmd(f"LIST ACTIVE {pattern}")
    assert r[:3] in ("215", "501")
    if r.startswith("215"):
        assert c.block() == []
    assert c.cmd("DATE").startswith("111")
    c.close()


def test_random_bytes(daemon, lab):
    srv = NntpdServer(daemon, lab)
    rnd = os.urandom(10 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.recv(200)
        try:
            s.sendall(rnd)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass
    # and again as the body of a posting
    c = Raw(srv.port)
    c.cmd("MODE READER")
    if c.cmd("POST").startswith("340"):
        try:
            c.send(rnd.replace(b"\r\n.\r\n", b"") + b"\r\n.\r\n")
            c.line()
        except (OSError, EOFError):
            pass
    c.sock.close()
    assert post(srv.port, "still alive").startswith("240")


def test_reading_and_posting_rights(daemon, lab):
    srv = NntpdServer(daemon, lab, opts=("posting=no", "open_networks=10.0.0.0/8"))
    c = Raw(srv.port)
    assert c.greeting.startswith("201")
    c.cmd("MODE READER")
    assert c.cmd("GROUP lab.test")[:3] == "480"
    assert c.cmd("POST")[:3] in ("440", "480")
    assert c.cmd("AUTHINFO USER demo").startswith("381")
    assert c.cmd("AUTHINFO PASS wrong")[:3] == "481"
    assert c.cmd("AUTHINFO USER demo").startswith("381")
    assert c.cmd("AUTHINFO PASS demo").startswith("281")
    assert c.cmd("GROUP lab.test").startswith("211")
    assert c.cmd("POST").startswith("340")
    _, art = article(groups="lab.test", subject="authenticated")
    c.send(stuff(art))
    assert c.line().startswith("240")
    assert c.cmd("AUTHINFO USER demo")[:3] == "502"
    c.close()


def test_post_users(daemon, lab):
    lab.add_user("reader", "reader")
    srv = NntpdServer(daemon, lab, opts=("posting=no", "post_users=demo"))
    c = Raw(srv.port)
    c.cmd("AUTHINFO USER reader")
    assert c.cmd("AUTHINFO PASS reader").startswith("281")
    c.cmd("MODE READER")
    assert c.cmd("POST")[:3] == "440"
    c.close()


def test_starttls_and_authinfo(daemon, lab, tls_files):
    cert, key = tls_files
    srv = NntpdServer(daemon, lab, opts=(f"tls_cert={cert}", f"tls_key={key}", "posting=no"))
    s = reader(srv.port)
    assert "STARTTLS" in s.getcapabilities()
    ctx = ssl.create_default_context(cafile=str(cert))
    s.starttls(ctx)
    assert "STARTTLS" not in s.getcapabilities()
    assert s.login("demo", "demo").startswith("281") if False else True
    s.login("demo", "demo", usenetrc=False)
    assert s.post(io.BytesIO(b"From: a@b.example\r\nNewsgroups: lab.test\r\nSubject: tls\r\n"
                             b"\r\nover TLS\r\n")).startswith("240")
    s.quit()
    # a pipelined command after STARTTLS is discarded, not run
    c = Raw(srv.port)
    c.send("STARTTLS\r\nDATE\r\n")
    assert c.line().startswith("382")
    c.sock.settimeout(2)
    try:
        extra = c.sock.recv(100)
    except socket.timeout:
        extra = b""
    assert not extra.startswith(b"111")
    c.sock.close()


def non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_authinfo_needs_tls_from_afar(daemon, lab, tls_files):
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback address on this host")
    cert, key = tls_files
    spool = None
    from nntp_helpers import make_spool
    spool = make_spool(lab)
    d = daemon("nntpd", f"spool_dir={spool}", f"tls_cert={cert}", f"tls_key={key}",
               "posting=no", host=addr)
    c = Raw(d.port, host=addr)
    assert c.cmd("AUTHINFO USER demo")[:3] == "483"
    c.cmd("MODE READER")
    assert c.cmd("POST")[:3] in ("480", "483")
    c.close()


def test_moderated_group_mails_the_moderator(daemon, lab):
    """A posting to a moderated group goes by mail, through the suite's
    smtpd, to the moderator (demo at lab.test), and is not posted."""
    from smtp_helpers import start_smtpd, wait_stored
    smtpd = start_smtpd(daemon, lab)
    mods = lab.dir / "moderators"
    mods.write_text("lab.*:demo@lab.test\n")
    srv = NntpdServer(daemon, lab, (("lab.test", "y"), ("lab.mod", "m")),
                      opts=(f"moderators_file={mods}", f"mail_relay=127.0.0.1:{smtpd.port}"))
    r = post(srv.port, "for the moderator", groups="lab.mod")
    assert r.startswith("240")
    msgs = wait_stored(lab, 1, 20)
    assert len(msgs) == 1
    assert b"Subject: for the moderator" in msgs[0] and b"Newsgroups: lab.mod" in msgs[0]
    s = reader(srv.port)
    assert s.group("lab.mod")[1] == 0
    s.quit()


def test_inetd_and_xinetd(daemon, lab):
    from conftest import Xinetd, binary
    spool = NntpdServer.__init__  # noqa: F841
    from nntp_helpers import make_spool
    spool = make_spool(lab)
    d = daemon("nntpd", f"spool_dir={spool}", "path_identity=inetd.test", mode="inetd")
    assert post(d.port, "from inetd").startswith("240")
    s = reader(d.port)
    assert s.group("lab.test")[1] == 1
    s.quit()
    args = f"-o spool_dir={spool} -o path_identity=xinetd.test -o passwd_file={lab.passwd_file}"
    with Xinetd(lab, str(binary("nntpd")), args) as x:
        assert post(x.port, "from xinetd").startswith("240")
        s = reader(x.port)
        assert s.group("lab.test")[1] == 2
        s.quit()


def test_thunderbird_session(daemon, lab):
    """The commands Thunderbird sends, in its order (MODE READER, LIST
    EXTENSIONS, LIST, GROUP, XOVER, XHDR, ARTICLE, POST), scripted."""
    srv = NntpdServer(daemon, lab)
    for i in range(3):
        post(srv.port, f"tb {i}")
    c = Raw(srv.port)
    assert c.cmd("MODE READER").startswith("20")
    r = c.cmd("LIST EXTENSIONS")
    if r.startswith("202") or r.startswith("215"):
        c.block()
    else:
        assert r[:3] in ("500", "501", "503")
    assert c.cmd("LIST").startswith("215")
    assert any(l.startswith(b"lab.test ") for l in c.block())
    assert c.cmd("GROUP lab.test") == "211 3 1 3 lab.test"
    assert c.cmd("XOVER 1-3").startswith("224")
    over = c.block()
    assert len(over) == 3 and over[0].split(b"\t")[1] == b"tb 0"
    assert c.cmd("XHDR From 1-3").startswith("221")
    assert len(c.block()) == 3
    assert c.cmd("ARTICLE 2").startswith("220")
    assert b"Subject: tb 1" in c.block()
    assert c.cmd("POST").startswith("340")
    mid = over[0].split(b"\t")[4].decode()
    _, art = article(subject="Re: tb 0", extra=(f"References: {mid}",))
    c.send(stuff(art))
    assert c.line().startswith("240")
    c.close()


def test_spool_is_inn_format(daemon, lab):
    srv = NntpdServer(daemon, lab, (("lab.test", "y"),), mode="standalone")
    post(srv.port, "one")
    post(srv.port, "two")
    active = (srv.spool / "active").read_text().split("\n")[0].split()
    assert active == ["lab.test", "0000000002", "0000000001", "y"]
    assert (srv.spool / "newsgroups").exists()
    # the history: message-id, arrival time, where
    hist = (srv.spool / "history").read_text().splitlines()
    assert len(hist) == 2
    for l in hist:
        mid, when, where = l.split("\t")
        assert mid.startswith("<") and when.isdigit() and where.startswith("lab.test:")


def test_commands_bounded_when_unknown(daemon, lab):
    srv = NntpdServer(daemon, lab)
    c = Raw(srv.port)
    for _ in range(3):
        assert c.cmd("X" * 2000)[:3] == "501"
    c.close()
