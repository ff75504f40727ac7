"""imapd over mbox folders (mail_location = mbox:PATH; the other folders in
~/mail): what smtpd delivers, read and changed through IMAP by imaplib, the
c-client headers checked in the file, and the same file read by Dovecot's
mbox driver (the reference) with the same UIDVALIDITY, UIDs and flags, in
both directions. pop3d serves the same file with its UIDLs unchanged."""

import imaplib
import os
import poplib
import re
import signal
import subprocess
import threading
import time

from imap_helpers import Dovecot

LOCATION = "mbox:~/mbox"


def deliver(lab, text, sender="alice@example.org"):
    """Append a message the way smtpd does (mboxrd, a From_ line)."""
    mbox = lab.home / "mbox"
    body = text.replace("\r\n", "\n")
    body = re.sub(r"(?m)^(>*From )", r">\1", body)
    with open(mbox, "a") as f:
        f.write(f"From {sender} Wed Dec  2 10:00:00 2026\n{body}")
        if not body.endswith("\n"):
            f.write("\n")
        f.write("\n")
    lab.chown_tree(lab.home)


def login(d):
    m = imaplib.IMAP4(d.host, d.port)
    m.login("demo", "demo")
    return m


def uids_flags(m):
    typ, data = m.fetch("1:*", "(UID FLAGS)")
    out = []
    for d in data:
        if not d:
            continue
        uid = int(re.search(rb"UID (\d+)", d).group(1))
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split()) - {b"\\Recent"}
        out.append((uid, flags))
    return out


def test_read_change_and_add_through_imap(lab, daemon):
    deliver(lab, "Subject: one\n\nFrom the start of a line\nbody\n")
    deliver(lab, "Subject: two\n\nsecond\n")
    d = daemon("imapd", f"mail_location={LOCATION}")
    m = login(d)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"], d.log()
    typ, data = m.fetch("1", "(RFC822.SIZE BODY[])")
    body = data[0][1]
    assert body == b"Subject: one\r\n\r\nFrom the start of a line\r\nbody\r\n"
    assert b"RFC822.SIZE %d" % len(body) in data[0][0]
    assert m.response("UIDVALIDITY")[1][0] is not None
    text = (lab.home / "mbox").read_text()
    assert "X-IMAPbase: " in text and "X-UID: 1\n" in text and "X-UID: 2\n" in text
    m.store("2", "+FLAGS", r"(\Answered \Flagged $Work)")
    m.store("1", "+FLAGS", r"(\Seen \Deleted)")
    text = (lab.home / "mbox").read_text()
    assert "X-Status: AF\n" in text and "X-Keywords: $Work\n" in text and "Status: RO\n" in text
    # A second session sees the flags; an expunge reaches it.
    m2 = login(d)
    m2.select("INBOX")
    assert uids_flags(m2) == [(1, {b"\\Seen", b"\\Deleted"}),
                              (2, {b"\\Answered", b"\\Flagged", b"$Work"})]
    m.expunge()
    m2.noop()
    assert m2.fetch("1:*", "UID")[1] == [b"1 (UID 2)"]
    # Other folders are files in ~/mail; APPEND and COPY give UIDPLUS codes.
    assert m.create("Sent")[0] == "OK"
    assert (lab.home / "mail" / "Sent").is_file()
    typ, data = m.append("Sent", r"(\Seen)", None, b"Subject: sent\r\n\r\nFrom me\r\n")
    assert re.match(rb"\[APPENDUID \d+ 1\]", data[0]), data
    typ, data = m.copy("1", "Sent")
    assert typ == "OK"
    typ, data = m.list()
    assert any(b'"Sent"' in x or b" Sent" in x for x in data), data
    m.select("Sent")
    typ, data = m.fetch("1:*", "(UID BODY.PEEK[])")
    assert data[0][1] == b"Subject: sent\r\n\r\nFrom me\r\n"
    assert data[2][1].startswith(b"Subject: two\r\n")
    assert m.uid("SEARCH", "KEYWORD", "$Work")[1] == [b"2"]
    # Path tricks stay refused.
    assert m.create("../evil")[0] == "NO"
    assert m.create("/etc/x")[0] == "NO"
    m.logout()
    m2.logout()


def test_idle_sees_a_delivery(lab, daemon):
    deliver(lab, "Subject: one\n\n")
    d = daemon("imapd", f"mail_location={LOCATION}")
    m = login(d)
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    assert m.readline().startswith(b"+")
    threading.Timer(0.5, deliver, (lab, "Subject: two\n\n")).start()
    started = time.time()
    line = m.readline()
    assert b"EXISTS" in line, line
    assert time.time() - started < 4
    m.send(b"DONE\r\n")
    while not m.readline().startswith(tag.encode()):
        pass
    m.logout()


def dovecot_mbox(lab):
    # Dovecot's mbox driver, indexes in memory: it reads the file's headers.
    return Dovecot(lab, mail_location="mbox:~/mail:INBOX=~/mbox:INDEX=MEMORY")


def test_dovecot_reads_what_imapd_wrote_and_back(lab, daemon):
    for i in range(3):
        deliver(lab, f"Subject: m{i}\n\nbody {i}\n")
    d = daemon("imapd", f"mail_location={LOCATION}")
    m = login(d)
    m.select("INBOX")
    validity = m.response("UIDVALIDITY")[1][0]
    m.store("2", "+FLAGS", r"(\Seen \Flagged)")
    m.store("3", "+FLAGS", r"(\Answered)")
    ours = uids_flags(m)
    m.logout()
    dv = dovecot_mbox(lab)
    try:
        class R:
            host, port = dv.host, dv.port
        v = login(R)
        v.select("INBOX")
        assert v.response("UIDVALIDITY")[1][0] == validity, dv.log()
        assert uids_flags(v) == ours, dv.log()
        # Dovecot changes flags and appends; imapd sees the same.
        v.store("1", "+FLAGS", r"(\Deleted)")
        v.append("INBOX", r"(\Draft)", None, b"Subject: from dovecot\r\n\r\nx\r\n")
        v.select("INBOX")
        theirs = uids_flags(v)
        v.logout()
    finally:
        dv.stop()
    m = login(d)
    m.select("INBOX")
    assert m.response("UIDVALIDITY")[1][0] == validity
    assert uids_flags(m) == theirs
    assert theirs[-1][0] == 4 and theirs[-1][1] == {b"\\Draft"}
    m.logout()


def test_pop3d_serves_the_same_file(lab, daemon):
    deliver(lab, "Subject: one\n\nx\n")
    deliver(lab, "Subject: two\n\ny\n")
    pop = daemon("pop3d", f"mail_location={LOCATION}")

    def uidl():
        p = poplib.POP3(pop.host, pop.port, timeout=10)
        p.user("demo")
        p.pass_("demo")
        r = [x.split()[1] for x in p.uidl()[1]]
        return p, r

    p, before = uidl()
    p.quit()
    d = daemon("imapd", f"mail_location={LOCATION}")
    m = login(d)
    m.select("INBOX")
    m.store("1:*", "+FLAGS", r"(\Seen)")
    p, after = uidl()
    # Flags written by imapd do not make old mail new to POP3 clients.
    assert after == before
    # A POP3 DELE reaches the IMAP session as an EXPUNGE.
    p.dele(1)
    p.quit()
    m.noop()
    assert m.fetch("1:*", "(UID)")[1] == [b"1 (UID 2)"]
    m.logout()


def session_pids(d):
    """The account's processes under the daemon's monitors."""
    out = []
    for monitor in subprocess.run(["pgrep", "-P", str(d.pid)], capture_output=True,
                                  text=True).stdout.split():
        out += subprocess.run(["pgrep", "-P", monitor], capture_output=True,
                              text=True).stdout.split()
    return [int(p) for p in out]


def test_kill_9_during_changes_loses_nothing(lab, daemon):
    n = 1000
    for i in range(n):
        deliver(lab, f"Subject: m{i}\n\nbody {i}\n" + ("x" * 99 + "\n") * 200)
    d = daemon("imapd", f"mail_location={LOCATION}")
    m = login(d)
    m.select("INBOX")
    # How long a change of every message's flags takes (it writes the file).
    started = time.time()
    m.store("1:*", "+FLAGS.SILENT", r"(\Answered)")
    took = time.time() - started
    m.logout()
    leftovers = 0
    outcomes = []
    for k in range(1, 9):
        m = login(d)
        m.select("INBOX")
        tag = m._new_tag().decode()
        flag = r"\Seen" if k % 2 else r"\Flagged"
        m.send(f"{tag} STORE 1:* {'+' if k % 3 else '-'}FLAGS.SILENT ({flag})\r\n".encode())
        # Killed at some point of that writing.
        time.sleep(took * k / 8)
        pids = session_pids(d)
        assert pids, "no session process to kill"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        try:
            m.shutdown()
        except OSError:
            pass
        leftovers = max(leftovers, len([p for p in os.listdir(lab.home) if p.endswith(".tmp")]))
        c = login(d)
        c.select("INBOX")
        assert c.response("EXISTS")[1] == [str(n).encode()], d.log()
        typ, data = c.fetch("1:*", "(UID FLAGS)")
        assert [int(re.search(rb"UID (\d+)", x).group(1)) for x in data] == list(range(1, n + 1))
        # Each change is whole or not there: every message has \Answered.
        assert all(b"\\Answered" in x for x in data)
        outcomes.append(sum(1 for x in data if flag.encode() in x))
        typ, data = c.fetch(f"{n}", "(BODY.PEEK[TEXT])")
        assert data[0][1].startswith(f"body {n - 1}\r\n".encode())
        c.logout()
    # A killed writing leaves its temporary file (hidden), never a folder.
    m = login(d)
    typ, data = m.list()
    assert len(data) == 1, data
    m.logout()
    print(f"store took {took:.3f} s; temporary files left by kills: {leftovers}; {outcomes}")
