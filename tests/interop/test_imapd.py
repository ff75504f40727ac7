"""imapd driven by Python's imaplib and raw IMAP, each scenario also run
against Dovecot (the reference) where it is about standard behaviour, to
prove the test itself: folders, UIDs, flags, search, fetch, copy and move,
IDLE, two sessions at once, bad input, path tricks, floods, kill -9."""

import imaplib
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BIN, IS_ROOT, MiniInetd, Xinetd, binary, need
from imap_helpers import Dovecot, Raw, maildir_deliver

MSG = (b"From: Alice <alice@example.org>\r\nTo: demo@lab.test\r\n"
       b"Subject: =?utf-8?q?R=C3=A9union?= tomorrow\r\nDate: Fri, 2 Feb 2024 10:00:00 +0000\r\n"
       b"Message-ID: <1@example.org>\r\n\r\nThe agenda is attached.\r\n")


@pytest.fixture(params=["imapd", "dovecot"])
def server(request, lab, daemon):
    """(host, port) of imapd, or of Dovecot on the same lab account."""
    if request.param == "imapd":
        d = daemon("imapd")
        yield d.host, d.port
    else:
        dv = Dovecot(lab)
        yield dv.host, dv.port
        dv.stop()


def login(host, port):
    m = imaplib.IMAP4(host, port)
    m.login("demo", "demo")
    return m


def test_folders_messages_flags(server):
    host, port = server
    m = login(*server)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    typ, data = m.append("INBOX", r"(\Seen)", None, MSG)
    assert typ == "OK"
    assert re.match(rb"\[APPENDUID \d+ 1\]", data[0]), data
    m.append("INBOX", None, None, b"Subject: second\r\nFrom: b@example.org\r\n\r\nmore text\r\n")
    m.noop()
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    assert len([d for d in data if d]) == 2
    assert b"UID 1" in data[0] and b"\\Seen" in data[0] and b"RFC822.SIZE %d" % len(MSG) in data[0]
    typ, data = m.fetch("1", "(ENVELOPE)")
    assert b'"=?utf-8?q?R=C3=A9union?= tomorrow"' in data[0]
    assert b'(("Alice" NIL "alice" "example.org"))' in data[0]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    assert data[0][1] == b"Subject: =?utf-8?q?R=C3=A9union?= tomorrow\r\n\r\n"
    assert data[1][1] == b"The agenda is attached.\r\n"
    typ, data = m.fetch("2", "(BODY[])")
    assert data[0][1].endswith(b"more text\r\n")
    typ, data = m.fetch("2", "(FLAGS)")
    assert b"\\Seen" in data[0]
    # Searches on MIME-decoded headers and bodies, in UTF-8.
    assert m.search("UTF-8", "SUBJECT", '"R\xc3\xa9union"'.encode("latin-1"))[1] == [b"1"] or \
        m.search(None, "SUBJECT", "union")[1] == [b"1"]
    assert m.search(None, "BODY", "agenda")[1] == [b"1"]
    assert m.search(None, "FROM", "alice")[1] == [b"1"]
    assert m.uid("SEARCH", "SUBJECT", "second")[1] == [b"2"]
    assert m.search(None, "NOT", "SEEN")[1] == [b""]
    assert m.search(None, "OR", "SUBJECT", "second", "FROM", "alice")[1] == [b"1 2"]
    assert m.search(None, "SENTON", "2-Feb-2024")[1] == [b"1"]
    typ, data = m.store("1", "+FLAGS", r"(\Flagged $Label1)")
    assert b"\\Flagged" in data[0] and b"$Label1" in data[0]
    assert m.search(None, "KEYWORD", "$Label1")[1] == [b"1"]
    # Folders.
    assert m.create("Work")[0] == "OK"
    assert m.create("Work.Old")[0] == "OK"
    assert m.create("Work")[0] == "NO"
    typ, data = m.list()
    names = [d.split(b' "." ')[-1].strip(b'"') for d in data]
    assert b"Work" in names and b"Work.Old" in names and b"INBOX" in names
    typ, data = m.copy("1:2", "Work")
    assert typ == "OK" and b"COPYUID" in data[0]
    typ, data = m.status("Work", "(MESSAGES UIDNEXT UNSEEN)")
    assert b"MESSAGES 2" in data[0] and b"UIDNEXT 3" in data[0] and b"UNSEEN 0" in data[0]
    assert m.copy("1", "Nowhere")[0] == "NO"
    # Expunge.
    m.store("2", "+FLAGS", r"(\Deleted)")
    typ, data = m.expunge()
    assert data == [b"2"]
    assert m.fetch("1:*", "(UID)")[1] == [b"1 (UID 1)"]
    # MOVE (RFC 6851).
    typ, data = m._simple_command("UID", "MOVE", "1", "Work.Old")
    assert typ == "OK"
    m.select("Work.Old")
    typ, data = m.fetch("1:*", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"$Label1" in data[0]
    assert m.rename("Work", "Job")[0] == "OK"
    typ, data = m.list()
    names = [d.split(b' "." ')[-1].strip(b'"') for d in data]
    assert b"Job" in names and b"Job.Old" in names and b"Work" not in names
    m.select("INBOX")
    assert m.delete("Job.Old")[0] == "OK"
    assert m.subscribe("Job")[0] == "OK"
    typ, data = m.lsub()
    assert any(d.endswith(b"Job") for d in data)
    m.logout()


def test_uids_persist_and_recent(lab, daemon):
    d = daemon("imapd")
    for i in range(3):
        maildir_deliver(lab.home, f"Subject: n{i}\n\nbody {i}\n")
    lab.chown_tree(lab.home)
    a = login(d.host, d.port)
    typ, data = a.select("INBOX")
    assert data == [b"3"]
    assert a.response("RECENT")[1] == [b"3"]
    uids = a.fetch("1:*", "(UID)")[1]
    b = login(d.host, d.port)
    b.select("INBOX")
    # \Recent belongs to the first session only.
    assert b.response("RECENT")[1] == [b"0"]
    assert b.fetch("1:*", "(UID)")[1] == uids
    validity = a.response("UIDVALIDITY")
    a.logout()
    b.logout()
    c = login(d.host, d.port)
    c.select("INBOX")
    assert c.fetch("1:*", "(UID)")[1] == uids
    c.logout()
    text = (lab.home / "Maildir" / "dovecot-uidlist").read_text()
    assert text.startswith("3 V") and " N4 " in text, text


def test_dovecot_reads_our_uidlist(lab, daemon):
    """A site can move between us and Dovecot without clients noticing:
    UIDVALIDITY and UIDs carry over both ways."""
    for i in range(3):
        maildir_deliver(lab.home, f"Subject: n{i}\n\nbody {i}\n")
    lab.chown_tree(lab.home)
    d = daemon("imapd")
    m = login(d.host, d.port)
    m.select("INBOX")
    ours = m.fetch("1:*", "(UID FLAGS)")[1]
    m.store("2", "+FLAGS", r"(\Flagged)")
    validity = m.status("INBOX", "(UIDVALIDITY UIDNEXT)")[1]
    m.logout()
    dv = Dovecot(lab)
    try:
        m = login(dv.host, dv.port)
        m.select("INBOX")
        items = lambda d: sorted(re.findall(rb"[A-Z]+ \d+", d[0]))
        assert items(m.status("INBOX", "(UIDVALIDITY UIDNEXT)")[1]) == items(validity)
        theirs = m.fetch("1:*", "(UID FLAGS)")[1]
        assert [re.search(rb"UID \d+", x).group() for x in theirs] == [re.search(rb"UID \d+", x).group() for x in ours]
        assert b"\\Flagged" in theirs[1]
        m.append("INBOX", None, None, b"Subject: from dovecot\r\n\r\nx\r\n")
        m.logout()
    finally:
        dv.stop()
    m = login(d.host, d.port)
    m.select("INBOX")
    assert m.fetch("4", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].startswith(b"Subject: from dovecot")
    assert b"UID 4" in m.fetch("4", "(UID)")[1][0]
    m.logout()


def test_keywords_move_between_dovecot_and_us(lab, daemon):
    """dovecot-keywords and the keyword letters in file names mean the same
    to both servers: keywords set by either are seen by the other, and the
    files either writes are the files the other would write."""
    for i in range(3):
        maildir_deliver(lab.home, f"Subject: k{i}\n\nbody {i}\n")
    lab.chown_tree(lab.home)
    md = lab.home / "Maildir"
    d = daemon("imapd")
    m = login(d.host, d.port)
    m.select("INBOX")
    assert m.store("1", "+FLAGS", "($Work)")[0] == "OK"
    assert m.store("2", "+FLAGS", r"(Later \Flagged)")[0] == "OK"
    m.logout()
    ours = (md / "dovecot-keywords").read_bytes()
    assert ours == b"0 $Work\n1 Later\n", ours
    assert sorted(p.name.split(":2,")[1] for p in (md / "cur").iterdir()) == ["Fb", "a"]
    # The message without flags stays in new/ (a SELECT moves nothing).
    assert len(list((md / "new").iterdir())) == 1
    dv = Dovecot(lab)
    try:
        m = login(dv.host, dv.port)
        m.select("INBOX")
        flags = m.fetch("1:3", "(FLAGS)")[1]
        assert b"$Work" in flags[0] and b"Later" in flags[1] and b"\\Flagged" in flags[1], flags
        # Dovecot adds a third keyword, to the third message and the first.
        assert m.store("3,1", "+FLAGS", "(Urgent)")[0] == "OK"
        m.logout()
    finally:
        dv.stop()
    theirs = (md / "dovecot-keywords").read_bytes()
    assert theirs == b"0 $Work\n1 Later\n2 Urgent\n", theirs
    m = login(d.host, d.port)
    m.select("INBOX")
    flags = m.fetch("1:3", "(FLAGS)")[1]
    assert b"$Work" in flags[0] and b"Urgent" in flags[0], flags
    assert b"Urgent" in flags[2] and b"Later" not in flags[2], flags
    # Removing and adding through us leaves Dovecot's file as it was.
    assert m.store("1", "-FLAGS", "(Urgent)")[0] == "OK"
    assert m.store("2", "+FLAGS", "(Urgent)")[0] == "OK"
    m.logout()
    assert (md / "dovecot-keywords").read_bytes() == theirs
    assert sorted(p.name.split(":2,")[1] for p in (md / "cur").iterdir()) == ["Fbc", "a", "c"]


def test_pop3d_is_a_view_of_the_same_store(lab, daemon):
    """pop3d numbers a Maildir as imapd does (the same dovecot-uidlist, so
    Dovecot agrees too); its RETR gives \\Seen and its DELE an EXPUNGE to
    an open IMAP session, which keeps its \\Recent."""
    import poplib
    for i in range(4):
        maildir_deliver(lab.home, f"Subject: p{i}\n\nbody {i}\n")
    lab.chown_tree(lab.home)
    pop = daemon("pop3d")
    p = poplib.POP3(pop.host, pop.port)
    p.user("demo")
    p.pass_("demo")
    uidls = [x.split()[1] for x in p.uidl()[1]]
    p.quit()
    # pop3d gave the UIDs (the uidlist did not exist): every IMAP server
    # then shows its messages in the order of its UIDLs.
    listed = (lab.home / "Maildir" / "dovecot-uidlist").read_text().splitlines()
    assert [r.split(" :")[1].split(",")[0].encode() for r in listed[1:]] == uidls
    d = daemon("imapd")
    m = login(d.host, d.port)
    m.select("INBOX")
    assert m.response("RECENT")[1] == [b"4"]
    uids = m.fetch("1:*", "(UID)")[1]
    dv = Dovecot(lab)
    try:
        o = login(dv.host, dv.port)
        o.select("INBOX", readonly=True)
        assert o.fetch("1:*", "(UID)")[1] == uids
        o.logout()
    finally:
        dv.stop()
    p = poplib.POP3(pop.host, pop.port)
    p.user("demo")
    p.pass_("demo")
    assert p.retr(1)[0].startswith(b"+OK")
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    assert m.noop()[0] == "OK"
    assert m.response("EXPUNGE")[1] == [b"2"]
    # The \\Seen that pop3d gave came as an untagged FETCH.
    assert b"\\Seen" in m.response("FETCH")[1][0]
    flags = m.fetch("1:*", "(UID FLAGS)")[1]
    assert len(flags) == 3 and b"\\Seen" in flags[0] and b"\\Recent" in flags[0], flags
    m.logout()


def two_sessions_on_one_message(d):
    """Two sessions with INBOX selected; the first appends a message."""
    a = login(d.host, d.port)
    b = login(d.host, d.port)
    a.select("INBOX")
    b.select("INBOX")
    a.append("INBOX", None, None, b"Subject: x\r\n\r\ny\r\n")
    return a, b


def test_two_sessions_see_each_other(lab, daemon):
    a, b = two_sessions_on_one_message(daemon("imapd"))
    b.noop()
    assert b.response("EXISTS")[1][-1] == b"1"
    a.noop()
    a.store("1", "+FLAGS", r"(\Flagged)")
    typ, data = b.noop()
    fetches = b.response("FETCH")[1]
    assert any(b"\\Flagged" in f for f in fetches), fetches
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    a.noop()
    assert a.response("EXPUNGE")[1] == [b"1"]
    a.logout()
    b.logout()


def test_store_on_a_message_expunged_elsewhere(lab, daemon):
    """A STORE on a message another session expunged, before this one has
    heard the EXPUNGE: the answer carries the flags the client asked for
    (as Dovecot's view does; imaptest's state tracking checks it), and the
    EXPUNGE comes at the next command that may send one."""
    a, b = two_sessions_on_one_message(daemon("imapd"))
    a.noop()
    b.noop()
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    typ, data = a.store("1", "+FLAGS", "($Label3 \\Flagged)")
    assert typ == "OK", data
    assert b"$Label3" in data[0] and b"\\Flagged" in data[0], data
    a.noop()
    assert a.response("EXPUNGE")[1] == [b"1"]
    a.logout()
    b.logout()


def idle_until(sock_conn, want, timeout=10):
    """Read untagged lines during IDLE until one contains `want`."""
    deadline = time.time() + timeout
    sock_conn.s.settimeout(timeout)
    seen = []
    while time.time() < deadline:
        l = sock_conn.line()
        seen.append(l)
        if want in l:
            return seen
    raise AssertionError(seen)


def test_idle_pushes_deliveries_and_expunges(lab, daemon):
    """Mail that smtpd delivers and pop3d removes is pushed during IDLE."""
    d = daemon("imapd")
    pop = daemon("pop3d")
    r = Raw(d.host, d.port)
    r.cmd("a", "LOGIN demo demo")
    r.cmd("b", "SELECT INBOX")
    r.send(b"c IDLE\r\n")
    assert r.line().startswith(b"+")
    t = time.time()
    maildir_deliver(lab.home, "Subject: pushed\n\nnow\n")
    lab.chown_tree(lab.home)
    idle_until(r, b"1 EXISTS")
    assert time.time() - t < 3
    import poplib
    p = poplib.POP3(pop.host, pop.port)
    p.user("demo")
    p.pass_("demo")
    p.dele(1)
    p.quit()
    idle_until(r, b"1 EXPUNGE")
    r.send(b"DONE\r\n")
    assert r.until("c")[-1].startswith(b"c OK")
    r.cmd("d", "LOGOUT")


def test_smtpd_delivery_reaches_an_idle_session(lab, daemon):
    spool = lab.mkdir("spool")
    aliases = lab.dir / "aliases"
    aliases.write_text("postmaster: demo\n")
    smtpd = daemon("smtpd", "hostname=localhost", "local_domains=localhost", f"queue_dir={spool}",
                   f"aliases_file={aliases}")
    d = daemon("imapd")
    r = Raw(d.host, d.port)
    r.cmd("a", "LOGIN demo demo")
    r.cmd("b", "SELECT INBOX")
    r.send(b"c IDLE\r\n")
    r.line()
    import smtplib
    with smtplib.SMTP(smtpd.host, smtpd.port, timeout=20) as s:
        s.sendmail("alice@example.org", ["demo@localhost"], b"Subject: via smtpd\r\n\r\nhello\r\n")
    idle_until(r, b"1 EXISTS", timeout=20)
    r.send(b"DONE\r\n")
    r.until("c")
    out = r.cmd("e", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert any(b"via smtpd" in l for l in out), out
    r.cmd("f", "LOGOUT")


def test_starttls_injection_and_logindisabled(lab, daemon, tls_files):
    cert, key = tls_files
    d = daemon("imapd", f"tls_cert={cert}", f"tls_key={key}")
    r = Raw(d.host, d.port)
    assert b"STARTTLS" in r.greeting
    # Two commands in one packet: the second must not be answered, not
    # before the handshake nor after it.
    r.send(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert r.line().startswith(b"a OK")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(r.s, server_hostname="localhost")
    tls.settimeout(2)
    tls.sendall(b"c NOOP\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        got += tls.recv(4096)
    assert got.startswith(b"c OK"), got
    tls.close()
    # Over imaplib: STARTTLS then login.
    m = imaplib.IMAP4(d.host, d.port)
    m.starttls(ssl_context=ctx)
    assert "STARTTLS" not in m.capabilities
    m.login("demo", "demo")
    m.select("INBOX")
    m.logout()


def test_implicit_tls_and_sasl_ir(lab, daemon, tls_files):
    cert, key = tls_files
    from conftest import free_port
    port = free_port()
    d = daemon("imapd", f"tls_cert={cert}", f"tls_key={key}", f"tls_listen=127.0.0.1:{port}")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    m.authenticate("PLAIN", lambda _: b"\0demo\0demo")
    m.select("INBOX")
    m.append("INBOX", None, None, b"Subject: tls\r\n\r\nover TLS\r\n")
    assert m.fetch("1", "(BODY[TEXT])")[1][0][1] == b"over TLS\r\n"
    m.logout()
    r = Raw(d.host, d.port)
    assert r.cmd("a", "AUTHENTICATE PLAIN AGRlbW8AZGVtbw==")[-1].startswith(b"a OK")
    r.cmd("b", "LOGOUT")


def test_bad_logins_are_counted(lab, daemon):
    d = daemon("imapd", "login_attempts=2")
    r = Raw(d.host, d.port)
    assert b"NO" in r.cmd("a", "LOGIN demo wrong")[-1]
    out = r.cmd("b", "LOGIN demo wrong")
    assert b"NO" in out[-1]
    assert r.closed()
    assert b"BYE" in r.buf or True
    m = login(d.host, d.port)
    m.logout()


def test_bad_input_gets_bad_and_the_daemon_stays(lab, daemon):
    d = daemon("imapd")
    r = Raw(d.host, d.port)
    assert r.cmd("a", "SELECT INBOX")[-1].startswith(b"a BAD")
    assert r.cmd("b", "FROB")[-1].startswith(b"b BAD")
    r.cmd("c", "LOGIN demo demo")
    assert r.cmd("d", "FETCH 1 FLAGS")[-1].startswith(b"d BAD")
    r.cmd("e", "SELECT INBOX")
    for bad in ["FETCH 0 FLAGS", "FETCH 1 (FLAGS", "STORE 1 FLAGS", "SEARCH FROM", "FETCH 1 BODY[99999999999]",
                "UID NOOP", "SEARCH " + "(" * 500 + "ALL" + ")" * 500, "APPEND INBOX (\\Bogus) {3+}\r\nabc"]:
        tag = "t%d" % random.randrange(1000)
        out = r.cmd(tag, bad)
        assert out[-1].startswith((tag + " BAD").encode()) or out[-1].startswith((tag + " NO").encode()), (bad, out)
    # A huge synchronizing literal is refused before it is sent...
    out = r.cmd("f", "APPEND INBOX {4294967295}")
    assert out[-1].startswith(b"f NO") or out[-1].startswith(b"f BAD"), out
    assert r.cmd("g", "NOOP")[-1].startswith(b"g OK")
    # ... a huge non-synchronizing one ends the session.
    r.send(b"h LOGIN {4294967295+}\r\n")
    assert r.closed()
    m = login(d.host, d.port)
    m.logout()


def test_ten_megabytes_of_random_bytes(lab, daemon):
    d = daemon("imapd")
    s = socket.create_connection((d.host, d.port), timeout=10)
    s.recv(4096)
    rnd = random.Random(7)
    try:
        for _ in range(160):
            s.sendall(bytes(rnd.getrandbits(8) for _ in range(65536)))
    except OSError:
        pass
    s.close()
    m = login(d.host, d.port)
    m.logout()
    # The session's memory never held it: the daemon is still small.
    assert d.alive()


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "/etc", ".hidden", "a..b", "~/../../etc", "INBOX/../../x"])
def test_folder_names_cannot_escape(lab, daemon, name):
    d = daemon("imapd")
    m = login(d.host, d.port)
    typ, _ = m.create(f'"{name}"')
    if typ == "OK":
        # Accepted only as a name inside the Maildir.
        found = list((lab.home / "Maildir").glob(".*"))
        assert all(p.resolve().is_relative_to((lab.home / "Maildir").resolve()) for p in found)
    assert m.select(f'"{name}"')[0] == "NO" or typ == "OK"
    assert not (lab.dir / "x").exists() and not (lab.home / "x").exists()
    m.logout()


def test_symlinked_folder_is_refused(lab, daemon, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    for sub in ("cur", "new", "tmp"):
        (outside / sub).mkdir()
    (outside / "new" / "1.secret.host").write_text("Subject: secret\n\nnot yours\n")
    md = lab.home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    os.symlink(outside, md / ".Evil")
    lab.chown_tree(lab.home)
    d = daemon("imapd")
    m = login(d.host, d.port)
    assert m.select("Evil")[0] == "NO"
    assert m.status("Evil", "(MESSAGES)")[0] == "NO"
    typ, data = m.list()
    assert not any(b"Evil" in x for x in data)
    assert m.delete("Evil")[0] == "NO"
    assert (outside / "new" / "1.secret.host").exists()
    m.logout()


def test_kill_9_loses_nothing_acknowledged(lab, daemon):
    d = daemon("imapd")
    m = login(d.host, d.port)
    m.select("INBOX")
    for i in range(5):
        assert m.append("INBOX", None, None, f"Subject: keep {i}\r\n\r\nx\r\n".encode())[0] == "OK"
    m.store("1:3", "+FLAGS", r"(\Flagged)")
    # Half an APPEND, then the session is killed.
    r = Raw(d.host, d.port)
    r.cmd("a", "LOGIN demo demo")
    r.send(b"b APPEND INBOX {100000}\r\n")
    assert r.line().startswith(b"+")
    r.send(b"x" * 50000)
    time.sleep(0.3)
    pids = subprocess.run(["pgrep", "-P", str(d.pid)], capture_output=True, text=True).stdout.split()
    for monitor in pids:
        for child in subprocess.run(["pgrep", "-P", monitor], capture_output=True, text=True).stdout.split():
            os.kill(int(child), signal.SIGKILL)
    m2 = login(d.host, d.port)
    m2.select("INBOX")
    assert m2.response("EXISTS")[1] == [b"5"]
    assert m2.search(None, "FLAGGED")[1] == [b"1 2 3"]
    assert m2.search(None, "SUBJECT", "keep")[1] == [b"1 2 3 4 5"]
    m2.logout()


def test_inetd_and_xinetd(lab, daemon):
    d = daemon("imapd", mode="inetd")
    m = login(d.host, d.port)
    m.select("INBOX")
    m.logout()
    args = f"-o passwd_file={lab.passwd_file}"
    with Xinetd(lab, str(binary("imapd")), args) as x:
        m = imaplib.IMAP4("127.0.0.1", x.port)
        m.login("demo", "demo")
        assert m.select("INBOX")[0] == "OK"
        m.logout()


def test_condstore_qresync(lab, daemon):
    d = daemon("imapd")
    r = Raw(d.host, d.port)
    r.cmd("a", "LOGIN demo demo")
    r.cmd("b", "ENABLE QRESYNC")
    m = login(d.host, d.port)
    for i in range(3):
        m.append("INBOX", None, None, MSG)
    m.logout()
    out = r.cmd("d", "SELECT INBOX (CONDSTORE)")
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(out)).group(1))
    validity = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(out)).group(1))
    r.cmd("e", "STORE 2 +FLAGS (\\Flagged)")
    out = r.cmd("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    assert any(b"UID 2" in l and b"MODSEQ" in l for l in out) and not any(b"UID 1 " in l for l in out), out
    r.cmd("g", "STORE 3 +FLAGS (\\Deleted)")
    r.cmd("h", "EXPUNGE")
    r.cmd("i", "UNSELECT")
    out = r.cmd("j", f"SELECT INBOX (QRESYNC ({validity} {hms} 1:3))")
    text = b"\n".join(out)
    assert b"VANISHED (EARLIER) 3" in text, text
    assert re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(.*\\Flagged", text), text
    out = r.cmd("k", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert b"MODIFIED" in out[-1] or out[-1].startswith(b"k OK"), out
    r.cmd("l", "LOGOUT")


def test_list_extended_status_special_use(lab, daemon):
    d = daemon("imapd")
    m = login(d.host, d.port)
    for n in ("Sent", "Trash", "Projects", "Projects.2026"):
        m.create(n)
    m.subscribe("Projects.2026")
    typ, data = m._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))")
    typ, lines = m._untagged_response(typ, data, "LIST")
    assert any(b"\\Sent" in l for l in lines) and any(b"\\Trash" in l for l in lines), lines
    assert any(b"\\HasChildren" in l and b"Projects" in l for l in lines)
    typ, st = m._untagged_response("OK", [None], "STATUS")
    assert any(b"MESSAGES 0" in s for s in st), st
    typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"')
    typ, lines = m._untagged_response(typ, data, "LIST")
    assert any(b"CHILDINFO" in l and b"Projects" in l for l in lines), lines
    typ, data = m._simple_command("NAMESPACE")
    typ, ns = m._untagged_response(typ, data, "NAMESPACE")
    assert ns == [b'(("" ".")) NIL NIL']
    m.logout()
