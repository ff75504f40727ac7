"""imapd with the mail clients people use: curl's imap://, fetchmail (IMAP
and IDLE), mbsync (isync) and offlineimap syncing both ways, and mutt in a
terminal (tmux). Each works through the contract alone."""

import imaplib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import need
from imap_helpers import maildir_deliver

MSG = "From: Alice <alice@example.org>\nTo: demo@lab.test\nSubject: {subject}\nDate: Fri, 2 Feb 2024 10:00:00 +0000\nMessage-ID: <{subject}@example.org>\n\n{body}\n"


def deliver(lab, subject, body="hello"):
    maildir_deliver(lab.home, MSG.format(subject=subject, body=body))
    lab.chown_tree(lab.home)


def server_subjects(d, folder="INBOX"):
    m = imaplib.IMAP4(d.host, d.port)
    m.login("demo", "demo")
    m.select(folder)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.logout()
    out = {}
    for i in range(0, len(data) - 1, 2):
        if isinstance(data[i], tuple):
            subj = data[i][1].decode().split(":", 1)[1].strip()
            out[subj] = data[i][0].decode() + data[i + 1].decode()
    return out


def test_curl(lab, daemon):
    curl = need("curl")
    deliver(lab, "for curl", "body via curl")
    d = daemon("imapd")
    base = f"imap://demo:demo@{d.host}:{d.port}"
    out = subprocess.run([curl, "-s", f"{base}/"], capture_output=True, text=True, timeout=30)
    assert "INBOX" in out.stdout, out
    out = subprocess.run([curl, "-s", f"{base}/INBOX;UID=1"], capture_output=True, text=True, timeout=30)
    assert "Subject: for curl" in out.stdout and "body via curl" in out.stdout, out
    out = subprocess.run([curl, "-s", f"{base}/INBOX", "-X", "SEARCH SUBJECT curl"],
                         capture_output=True, text=True, timeout=30)
    assert "SEARCH 1" in out.stdout, out
    # Upload (APPEND) with curl.
    msg = lab.dir / "up.eml"
    msg.write_text("Subject: uploaded by curl\r\n\r\nhi\r\n")
    out = subprocess.run([curl, "-s", "-T", str(msg), f"{base}/INBOX"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out
    assert "uploaded by curl" in server_subjects(d)


def fetchmail_rc(lab, d, extra=""):
    out = lab.dir / "fetched.mbox"
    rc = lab.dir / "fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 protocol imap port {d.port}\n"
        f'  user "demo" password "demo" is root here\n'
        f"  {extra} fetchall\n"
        f"  mda \"/bin/sh -c 'cat >> {out}'\"\n")
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(lab.dir), FETCHMAILHOME=str(lab.dir))
    return rc, out, env


def test_fetchmail_keep_then_delete(lab, daemon):
    fetchmail = need("fetchmail")
    for i in range(3):
        deliver(lab, f"fm {i}")
    d = daemon("imapd")
    rc, out, env = fetchmail_rc(lab, d, "keep")
    r = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "--nodetach", "-v", "--sslproto", ""],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_text().count("Subject: fm ") == 3
    assert len(server_subjects(d)) == 3
    rc, out, env = fetchmail_rc(lab, d, "nokeep")
    r = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "--nodetach", "-v", "--sslproto", ""],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert server_subjects(d) == {}


def test_fetchmail_idle(lab, daemon):
    """fetchmail --idle waits in IDLE and fetches a new message at once."""
    fetchmail = need("fetchmail")
    d = daemon("imapd")
    rc, out, env = fetchmail_rc(lab, d, "keep idle")
    p = subprocess.Popen([fetchmail, "-f", str(rc), "--nosyslog", "--nodetach", "-v", "--sslproto", "",
                          "-d", "600"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        time.sleep(2)
        deliver(lab, "pushed to fetchmail")
        deadline = time.time() + 20
        while time.time() < deadline:
            if out.exists() and "pushed to fetchmail" in out.read_text():
                break
            time.sleep(0.2)
        assert out.exists() and "pushed to fetchmail" in out.read_text()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def mbsync_rc(lab, d, local):
    rc = lab.dir / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount lab
Host 127.0.0.1
Port {d.port}
User demo
Pass demo
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account lab

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel lab
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return rc


def mbox_deliver(lab, subject, body="hello"):
    """Append to demo's mbox as smtpd does (a From_ line, a blank line after)."""
    with open(lab.home / "mbox", "a") as f:
        f.write("From alice@example.org Fri Feb  2 10:00:00 2024\n")
        f.write(MSG.format(subject=subject, body=body) + "\n")
    lab.chown_tree(lab.home)


@pytest.mark.parametrize("location", ["maildir", "mbox"])
def test_mbsync_both_ways(lab, daemon, location):
    mbsync = need("mbsync")
    if location == "mbox":
        deliver = mbox_deliver  # noqa: F811 (the mbox INBOX's deliveries)
        d = daemon("imapd", "mail_location=mbox:~/mbox")
    else:
        deliver = globals()["deliver"]
        d = daemon("imapd")
    for i in range(3):
        deliver(lab, f"mb {i}")
    m = imaplib.IMAP4(d.host, d.port)
    m.login("demo", "demo")
    m.create("Archive")
    m.append("Archive", None, None, b"Subject: archived\r\n\r\nold\r\n")
    m.logout()
    local = lab.dir / "mbsync-local"
    local.mkdir()
    rc = mbsync_rc(lab, d, local)
    env = dict(os.environ, HOME=str(lab.dir))
    r = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    files = list((local / "INBOX").glob("*/*"))
    assert len([f for f in files if f.parent.name in ("cur", "new")]) == 3
    assert len(list((local / "Archive").glob("cur/*")) + list((local / "Archive").glob("new/*"))) == 1
    # Local changes go up: a new message, a flag, a deletion.
    new = local / "INBOX" / "new" / "1700000000.local.host"
    new.write_text("Subject: written locally\n\nup\n")
    victims = sorted(p for p in (local / "INBOX").glob("*/*") if p.parent.name in ("cur", "new") and p != new)
    flagged = victims[0]
    os.rename(flagged, flagged.parent.parent / "cur" / (flagged.name.split(":")[0] + ":2,FS"))
    deleted = victims[1]
    os.rename(deleted, deleted.parent.parent / "cur" / (deleted.name.split(":")[0] + ":2,ST"))
    r = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    subjects = server_subjects(d)
    assert "written locally" in subjects, subjects
    assert len(subjects) == 3, subjects
    assert any("\\Flagged" in v for v in subjects.values()), subjects
    # Server changes come down: a delivery and a flag.
    deliver(lab, "from the server")
    m = imaplib.IMAP4(d.host, d.port)
    m.login("demo", "demo")
    m.select("INBOX")
    m.uid("STORE", "1:*", "+FLAGS", r"(\Answered)")
    m.logout()
    r = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    texts = [p.read_text() for p in (local / "INBOX").glob("*/*") if p.parent.name in ("cur", "new")]
    assert any("from the server" in t for t in texts)
    names = [p.name for p in (local / "INBOX").glob("cur/*")]
    assert names and all(":2," in n and "R" in n.split(":2,")[1] for n in names), names
    # A second run with nothing new moves nothing.
    r = subprocess.run([mbsync, "-c", str(rc), "-a", "-V"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0


def test_offlineimap_both_ways(lab, daemon):
    offlineimap = need("offlineimap")
    for i in range(2):
        deliver(lab, f"oi {i}")
    d = daemon("imapd")
    m = imaplib.IMAP4(d.host, d.port)
    m.login("demo", "demo")
    m.create("Lists")
    m.append("Lists", None, None, b"Subject: list mail\r\n\r\nx\r\n")
    m.logout()
    local = lab.dir / "oi-local"
    local.mkdir()
    rc = lab.dir / "offlineimaprc"
    rc.write_text(f"""
[general]
accounts = lab
metadata = {lab.dir}/oi-meta
ui = quiet

[Account lab]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {d.port}
remoteuser = demo
remotepass = demo
ssl = no
starttls = no
""")
    env = dict(os.environ, HOME=str(lab.dir))
    cmd = [offlineimap, "-c", str(rc), "-o", "-u", "quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    inbox = local / "INBOX"
    msgs = [p for p in inbox.glob("*/*") if p.parent.name in ("cur", "new")]
    assert len(msgs) == 2, list(local.rglob("*"))
    assert any(local.glob("Lists/*/*"))
    # Up: a local message and a local flag.
    (inbox / "new" / "1700000000_0.local.host").write_text("Subject: from offlineimap\n\nup\n")
    os.rename(msgs[0], inbox / "cur" / (msgs[0].name.split(":2,")[0] + ":2,F"))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    subjects = server_subjects(d)
    assert "from offlineimap" in subjects, subjects
    assert any("\\Flagged" in v for v in subjects.values()), subjects
    # Down: a delivery.
    deliver(lab, "new on the server")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    texts = [p.read_text() for p in inbox.glob("*/*") if p.parent.name in ("cur", "new")]
    assert any("new on the server" in t for t in texts)


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=check, timeout=20)


def test_mutt_in_a_terminal(lab, daemon):
    need("tmux")
    mutt = need("mutt")
    deliver(lab, "read me in mutt", "the body mutt shows")
    d = daemon("imapd")
    rc = lab.dir / "muttrc"
    rc.write_text(f"""
set folder="imap://demo:demo@{d.host}:{d.port}/"
set spoolfile="+INBOX"
set imap_pass="demo"
set ssl_starttls=no
set ssl_force_tls=no
set move=no
set confirmappend=no
set header_cache=""
set message_cachedir=""
set sort=date
""")
    session = f"mutt{d.port}"
    env_home = lab.dir
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30",
         f"env HOME={env_home} TERM=xterm {mutt} -n -F {rc}")
    try:
        def screen():
            return tmux("capture-pane", "-p", "-t", session).stdout

        deadline = time.time() + 20
        while time.time() < deadline and "read me in mutt" not in screen():
            time.sleep(0.3)
        assert "read me in mutt" in screen(), screen()
        tmux("send-keys", "-t", session, "Enter")
        deadline = time.time() + 10
        while time.time() < deadline and "the body mutt shows" not in screen():
            time.sleep(0.3)
        assert "the body mutt shows" in screen(), screen()
        tmux("send-keys", "-t", session, "i")      # back to the index
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "F")      # flag it
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "$")      # sync to the server
        deadline = time.time() + 10
        while time.time() < deadline:
            flags = server_subjects(d).get("read me in mutt", "")
            if "\\Flagged" in flags:
                break
            time.sleep(0.3)
        assert "\\Flagged" in flags, flags
        # Quitting writes back what was read (\Seen).
        tmux("send-keys", "-t", session, "q")
        deadline = time.time() + 10
        while time.time() < deadline:
            flags = server_subjects(d).get("read me in mutt", "")
            if "\\Seen" in flags:
                break
            time.sleep(0.3)
        assert "\\Seen" in flags and "\\Flagged" in flags, flags
    finally:
        tmux("kill-session", "-t", session, check=False)
