#!/usr/bin/env python3
"""make lab: every built daemon on 127.0.0.1, in a throwaway directory, with
one account demo/demo and a little sample content; prints how to connect with
the standard clients. Ctrl-C stops them all.

The lab directory is ./lab (wiped at each start), or $LAB_DIR. As root the
sessions run as an unprivileged account, which must be able to reach the
lab's tree: when ./lab is under a directory it cannot enter (a checkout in
/root, mode 0700), the lab goes to /var/tmp/classicd-lab instead, and an
explicit $LAB_DIR that it cannot reach is refused with what to do.
"""

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("CLASSICD_BIN", ROOT / "target" / "release"))
LAB_EXPLICIT = "LAB_DIR" in os.environ
LAB = Path(os.environ.get("LAB_DIR", ROOT / "lab")).resolve()
FALLBACK = Path("/var/tmp/classicd-lab")
HOST = "127.0.0.1"
IS_ROOT = os.geteuid() == 0

PORTS = {
    "ftpd": 2121, "smtpd": 2525, "pop3d": 1110, "imapd": 1143, "nntpd": 1119,
    "telnetd": 2323, "rlogind": 1513, "rshd": 1514, "tftpd": 6969,
}

HOW = {
    "ftpd": [
        "ftp -p {h} {p}                      (user demo, password demo; or anonymous)",
        "curl ftp://demo:demo@{h}:{p}/        (listing; add a file name to download)",
        "lftp -u demo,demo -p {p} {h}",
    ],
    "smtpd": [
        "swaks --server {h}:{p} --to demo@lab.test --from you@example.org",
        "swaks --server {h}:2587 --to demo@lab.test -tls -au demo -ap demo   (submission)",
        "python3 -c \"import smtplib; smtplib.SMTP('{h}',{p}).sendmail('a@b','demo@localhost','Subject: hi\\n\\nhello')\"",
    ],
    "pop3d": [
        "curl pop3://demo:demo@{h}:{p}/       (list; /1 to read message 1)",
        "python3 -c \"import poplib; m=poplib.POP3('{h}',{p}); m.user('demo'); m.pass_('demo'); print(m.stat())\"",
    ],
    "imapd": [
        "curl 'imap://demo:demo@{h}:{p}/INBOX;UID=1'   (read message 1; /INBOX lists)",
        "mutt -f imap://demo@{h}:{p}/INBOX             (password demo)",
        "python3 -c \"import imaplib; m=imaplib.IMAP4('{h}',{p}); m.login('demo','demo'); print(m.select('INBOX'))\"",
    ],
    "nntpd": [
        "NNTPSERVER={h} tin -g {h} -p {p} lab.test    (or: slrn -h {h}:{p})",
        "curl nntp://{h}:{p}/lab.test/1       (article 1 of lab.test; posting is open)",
    ],
    "telnetd": ["telnet {h} {p}"],
    "rlogind": ["rlogin -p {p} -l demo {h}        (trusted through demo's .rhosts: no password)"],
    "rshd": ["rsh -p {p} -l demo {h} uname -a   (rsh-redone's rsh; trusted, as rlogin)"],
    "tftpd": ["tftp {h} {p} -c get welcome.txt   (or: curl tftp://{h}:{p}/welcome.txt)"],
}

WELCOME_MAIL = """From: Lab <postmaster@lab.test>
To: demo@lab.test
Subject: Welcome to the classicd lab
Date: Sun, 22 Nov 2026 10:00:00 +0000
Message-ID: <welcome@lab.test>

Hello demo,

this message was put in your mailbox when the lab started. Send yourself
more through smtpd on port 2525 and read them here.
"""


def crypt_hash(password):
    return subprocess.run(["openssl", "passwd", "-6", password], check=True,
                          capture_output=True, text=True).stdout.strip()


def ids():
    if IS_ROOT:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    return os.getuid(), os.getgid()


def blocking_parent(path, uid, gid):
    """The first directory above `path` that the account (uid, gid) cannot
    enter, or None when it can reach it."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid == gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return parent
    return None


def choose_lab_dir():
    """Where the tree goes: LAB if the lab's account can reach it, else the
    fallback (or, for an explicit LAB_DIR, an error saying what to do)."""
    global LAB
    if not IS_ROOT:
        return
    uid, gid = ids()
    blocker = blocking_parent(LAB, uid, gid)
    if blocker is None:
        return
    account = pwd.getpwuid(uid).pw_name
    if LAB_EXPLICIT:
        sys.exit(f"lab: the sessions run as {account}, who cannot enter {blocker}: "
                 f"choose a LAB_DIR it can reach (e.g. /var/tmp/classicd-lab), "
                 f"or let others traverse it: chmod o+x {blocker}")
    print(f"lab: {account} cannot enter {blocker}, so the lab's tree goes to {FALLBACK}",
          file=sys.stderr)
    LAB = FALLBACK


def chown_tree(path, uid, gid):
    if not IS_ROOT:
        return
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, uid, gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), uid, gid)


def make_tree():
    if LAB.exists():
        shutil.rmtree(LAB)
    uid, gid = ids()
    for d in ("etc", "home/demo", "ftp/pub", "ftp/incoming", "spool/smtpd", "news", "tftp", "run"):
        (LAB / d).mkdir(parents=True, exist_ok=True)
    os.chmod(LAB, 0o755)
    home = LAB / "home/demo"
    (LAB / "etc/passwd").write_text(
        f"demo:{crypt_hash('demo')}:{uid}:{gid}:Lab demo user:{home}:/bin/sh\n"
        f"ftp:*:{uid}:{gid}:Anonymous FTP:{LAB}/ftp:/usr/sbin/nologin\n")
    # FTP content.
    (home / "README.txt").write_text("This is demo's home directory in the classicd lab.\n")
    (home / "docs").mkdir()
    for i in range(3):
        (home / "docs" / f"note{i}.txt").write_text(f"note {i}\n" * 20)
    with open(home / "data.bin", "wb") as f:
        f.write(os.urandom(1 << 20))
    (LAB / "ftp/pub/welcome.txt").write_text("Anonymous FTP works. Uploads go to /incoming.\n")
    os.chmod(LAB / "ftp/incoming", 0o733)
    # Mail: one message waiting in demo's Maildir.
    for sub in ("tmp", "new", "cur"):
        (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    msg = WELCOME_MAIL.replace("\n", "\n")
    name = f"{int(time.time())}.lab{os.getpid()}.localhost,S={len(msg)}"
    (home / "Maildir/new" / name).write_text(msg)
    (LAB / "etc/aliases").write_text("postmaster: demo\nroot: demo\nabuse: demo\n")
    # rlogin and rsh: demo trusts whoever runs the lab, from this host, so
    # that `rlogin` and `rsh` get in without a password (ruserok's rules:
    # the file is demo's, 0600).
    me = pwd.getpwuid(os.getuid()).pw_name
    rhosts = home / ".rhosts"
    rhosts.write_text(f"# make lab: {me} on this host may be demo\n"
                      f"localhost {me}\n127.0.0.1 {me}\n")
    os.chmod(rhosts, 0o600)
    # TFTP content.
    (LAB / "tftp/welcome.txt").write_text("Hello over TFTP.\n")
    chown_tree(home, uid, gid)
    chown_tree(LAB / "spool", uid, gid)
    # A self-signed certificate so that STARTTLS, STLS and AUTH TLS can be tried.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-days", "30", "-keyout", str(LAB / "etc/key.pem"), "-out", str(LAB / "etc/cert.pem")],
        check=True, capture_output=True)
    os.chmod(LAB / "etc/key.pem", 0o600)


def config(name):
    common = [
        f"listen = {HOST}:{PORTS[name]}",
        f"passwd_file = {LAB}/etc/passwd",
        "log = stderr",
    ]
    tls = [f"tls_cert = {LAB}/etc/cert.pem", f"tls_key = {LAB}/etc/key.pem"]
    own = {
        "ftpd": tls + ["anonymous = yes", f"anon_root = {LAB}/ftp", "anon_upload_dir = /incoming",
                       "check_shell = no",
                       f"ftpusers_file = {LAB}/etc/ftpusers", "pasv_ports = 30000-30100"],
        "smtpd": tls + ["hostname = localhost", "local_domains = localhost, lab.test",
                        f"queue_dir = {LAB}/spool/smtpd", f"aliases_file = {LAB}/etc/aliases",
                        "mail_location = maildir:~/Maildir", f"submission_listen = {HOST}:2587"],
        "pop3d": tls + ["mail_location = maildir:~/Maildir"],
        "imapd": tls + ["mail_location = maildir:~/Maildir"],
        "nntpd": [f"spool_dir = {LAB}/news", "path_identity = lab.test"],
        "telnetd": [f"issue_file = {LAB}/etc/issue.net"],
        "rlogind": [f"hosts_equiv = {LAB}/etc/hosts.equiv", "require_privileged_port = no"],
        "rshd": [f"hosts_equiv = {LAB}/etc/hosts.equiv", "require_privileged_port = no"],
        "tftpd": [f"root = {LAB}/tftp"],
    }.get(name, [])
    path = LAB / "etc" / f"{name}.conf"
    path.write_text("# generated by make lab\n" + "\n".join(common + own) + "\n")
    return path


LAB_ARTICLES = [
    ("Welcome to lab.test", "This group is the lab's: read, follow up, post.\r\n"),
    ("Re: Welcome to lab.test", "A follow-up, to see a thread.\r\n"),
    ("Another thread", "Posted by make lab.\r\n"),
]


def news_groups(binary):
    """The lab's groups, made through the contract (nntpd --newgroup)."""
    for name, desc in (("lab.test", "The classicd lab's test group"),
                       ("lab.misc", "Anything else")):
        subprocess.run([str(binary), "-o", f"spool_dir={LAB}/news", "--newgroup", name, "y", desc],
                       check=True, capture_output=True)


def news_articles():
    """A few articles in lab.test, posted to the running nntpd."""
    first = None
    for subject, body in LAB_ARTICLES:
        with socket.create_connection((HOST, PORTS["nntpd"]), timeout=10) as s:
            f = s.makefile("rb")
            f.readline()
            refs = f"References: {first}\r\n" if first and subject.startswith("Re:") else ""
            s.sendall(b"POST\r\n")
            if not f.readline().startswith(b"340"):
                return
            s.sendall((f"From: Lab <demo@lab.test>\r\nNewsgroups: lab.test\r\n"
                       f"Subject: {subject}\r\n{refs}\r\n{body}.\r\n").encode())
            reply = f.readline().decode().split()
            if first is None and reply and reply[0] == "240":
                first = reply[-1]
            s.sendall(b"QUIT\r\n")


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.3):
            return True
    except OSError:
        return False


def main():
    daemons = [d for d in PORTS if (BIN / d).exists()]
    if not daemons:
        sys.exit(f"no daemons built in {BIN}: run make first")
    choose_lab_dir()
    make_tree()
    (LAB / "etc/ftpusers").write_text("root\n")
    (LAB / "etc/issue.net").write_text("classicd lab\n")
    (LAB / "etc/hosts.equiv").write_text("")
    if "nntpd" in daemons:
        news_groups(BIN / "nntpd")
    procs = {}
    for name in daemons:
        conf = config(name)
        check = subprocess.run([str(BIN / name), "-t", "-f", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            print(f"!! {name}: configuration refused: {check.stderr.strip()}", file=sys.stderr)
            continue
        log = open(LAB / "run" / f"{name}.log", "w")
        procs[name] = subprocess.Popen([str(BIN / name), "-F", "-f", str(conf)],
                                       stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.7)
    if "nntpd" in procs and procs["nntpd"].poll() is None:
        try:
            news_articles()
        except OSError as e:
            print(f"!! nntpd: the lab's articles were not posted: {e}", file=sys.stderr)
    print(f"\nclassicd lab in {LAB}  (account demo, password demo; logs in {LAB}/run)\n")
    for name, p in procs.items():
        state = "running" if p.poll() is None else f"EXITED ({p.returncode}), see {LAB}/run/{name}.log"
        print(f"{name:8} {HOST}:{PORTS[name]:<5} {state}")
        for line in HOW.get(name, []):
            print("    " + line.format(h=HOST, p=PORTS[name]))
    print("\nCtrl-C stops them all.")
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop["now"] and any(p.poll() is None for p in procs.values()):
            time.sleep(0.3)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        print("lab stopped")


if __name__ == "__main__":
    main()
