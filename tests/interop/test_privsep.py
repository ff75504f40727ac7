"""The privilege split, read from /proc: before login the process that
speaks to the client is nopriv_user, chrooted into an empty directory, with
NoNewPrivs set; a root monitor is its parent; after login the session runs
as the account (uid, gid and groups all the account's), and under TLS the
pre-login process stays on only as the relay, still unprivileged."""

import os
import poplib
import pwd
import grp
import socket
import ssl
import time

import pytest

from conftest import IS_ROOT, children, proc_status

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="the privilege split needs root")

# An account of the passwd_file alone, distinct from nobody (the default
# nopriv_user), so that before and after login are told apart.
UID = GID = 4242


@pytest.fixture
def alice(lab):
    home = lab.add_user("alice", "wonder")
    # add_user gives the lab's uid; rewrite alice's line with her own ids.
    lines = lab.passwd_file.read_text().splitlines()
    lines = [
        ":".join(f[:2] + [str(UID), str(GID)] + f[4:]) if f[0] == "alice" else l
        for l, f in ((l, l.split(":")) for l in lines)
    ]
    lab.passwd_file.write_text("\n".join(lines) + "\n")
    for sub in ("", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
        p = home / sub
        p.mkdir(exist_ok=True)
        os.chown(p, UID, GID)
    os.chmod(home, 0o700)
    return home


def nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    return pred()


def serving(sock):
    """The monitor and the pre-login process that hold the server side of
    the client socket `sock` (its peer is our local address)."""
    import re
    import subprocess
    host, port = sock.getsockname()[:2]

    def find():
        out = subprocess.run(["ss", "-tnpH", "state", "established", "dst", f"{host}:{port}"],
                             capture_output=True, text=True).stdout
        pids = {int(p) for p in re.findall(r"pid=(\d+)", out)}
        for pid in pids:
            kids = [k for k in children(pid) if k in pids]
            if len(kids) == 1:
                return pid, kids[0]
        return None
    found = wait_for(find)
    assert found, "no monitor with a pre-login child holds the connection"
    return found


def only_child(pid):
    kids = wait_for(lambda: len(children(pid)) == 1 and children(pid))
    assert kids and len(kids) == 1, children(pid)
    return kids[0]


def assert_prelogin(pid):
    st = proc_status(pid)
    uid, gid = nobody()
    assert st["uid"] == [uid] * 4, st
    assert st["gid"] == [gid] * 4, st
    assert uid not in st["groups"] or True
    assert 0 not in st["groups"], st
    assert st["root"] not in (None, "/"), st
    assert os.listdir(f"/proc/{pid}/root") == [], st
    assert st["nnp"] == 1, st


def assert_account(pid, root="/"):
    st = proc_status(pid)
    assert st["uid"] == [UID] * 4, st
    assert st["gid"] == [GID] * 4, st
    assert st["groups"] == [GID], st
    assert st["root"] == root, st


def assert_monitor(pid):
    st = proc_status(pid)
    assert st["uid"] == [0] * 4, st


def test_pop3d_before_and_after_login(lab, daemon, alice):
    d = daemon("pop3d")
    p = poplib.POP3(d.host, d.port, timeout=10)
    monitor, prelogin = serving(p.sock)
    assert_monitor(monitor)
    assert_prelogin(prelogin)
    p.user("alice")
    p.pass_("wonder")
    assert p.stat() == (0, 0)
    account = only_child(monitor)
    assert account != prelogin
    assert_account(account)
    assert not os.path.exists(f"/proc/{prelogin}")
    p.quit()


def test_pop3d_tls_login_keeps_an_unprivileged_relay(lab, daemon, alice, tls_files):
    cert, key = tls_files
    d = daemon("pop3d", f"tls_cert={cert}", f"tls_key={key}")
    p = poplib.POP3(d.host, d.port, timeout=10)
    ctx = ssl.create_default_context(cafile=str(cert))
    p.stls(context=ctx)
    monitor, prelogin = serving(p.sock)
    assert_prelogin(prelogin)
    p.user("alice")
    p.pass_("wonder")
    assert p.stat() == (0, 0)
    kids = wait_for(lambda: [k for k in children(monitor) if k != prelogin])
    assert len(kids) == 1
    assert_account(kids[0])
    # The relay is the pre-login process, still confined.
    assert prelogin in children(monitor)
    assert_prelogin(prelogin)
    p.quit()
    # The relay ends with the session; the monitor stays for the next one.
    assert wait_for(lambda: not os.path.exists(f"/proc/{prelogin}"))


@pytest.mark.parametrize("name,ok", [("pop3d", b"+OK"), ("ftpd", b"220")])
def test_login_deadline_ends_a_trickling_client(lab, daemon, name, ok):
    d = daemon(name, "login_timeout=2", "idle_timeout=60")
    s = d.connect()
    assert s.recv(512).startswith(ok)
    start = time.time()
    s.settimeout(0.5)
    closed_after = None
    # One byte every half second: never idle, never logged in.
    for b in b"USER demo\r\nPASS demodemodemodemo":
        try:
            s.sendall(bytes([b]))
            data = s.recv(512)
            if data == b"":
                closed_after = time.time() - start
                break
        except socket.timeout:
            continue
        except OSError:
            closed_after = time.time() - start
            break
    s.close()
    assert closed_after is not None and closed_after < 8, closed_after
    assert "no login in time" in d.log()


def test_nopriv_user_must_exist(lab, daemon):
    import subprocess
    from conftest import binary
    r = subprocess.run([str(binary("pop3d")), "-F", "-o", "listen=127.0.0.1:1",
                        "-o", "nopriv_user=no-such-user-classicd"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "nopriv_user" in r.stderr


def test_ftpd_before_and_after_login(lab, daemon, alice):
    import ftplib
    d = daemon("ftpd", "check_shell=no")
    f = ftplib.FTP()
    f.connect(d.host, d.port, timeout=10)
    monitor, prelogin = serving(f.sock)
    assert_monitor(monitor)
    assert_prelogin(prelogin)
    f.login("alice", "wonder")
    assert f.pwd() == str(alice)
    account = only_child(monitor)
    assert account != prelogin
    assert_account(account)
    f.quit()


def test_ftpd_chroot_users_and_tls(lab, daemon, alice, tls_files):
    import ftplib
    cert, key = tls_files
    d = daemon("ftpd", "check_shell=no", "chroot_users=yes", f"tls_cert={cert}",
               f"tls_key={key}")
    ctx = ssl.create_default_context(cafile=str(cert))
    f = ftplib.FTP_TLS(context=ctx)
    f.connect(d.host, d.port, timeout=10)
    f.auth()
    monitor, prelogin = serving(f.sock)
    assert_prelogin(prelogin)
    f.login("alice", "wonder")
    f.prot_p()
    assert f.pwd() == "/"
    (alice / "hello.txt").write_text("hi\n")
    got = []
    f.retrlines("RETR hello.txt", got.append)
    assert got == ["hi"]
    kids = wait_for(lambda: [k for k in children(monitor) if k != prelogin])
    assert len(kids) == 1
    # Confined to the home directory, as alice; the relay still nobody.
    assert_account(kids[0], root=str(alice))
    assert_prelogin(prelogin)
    f.quit()


def test_smtpd_dialogue_never_runs_as_root(lab, daemon, alice):
    import smtplib
    d = daemon("smtpd", f"queue_dir={lab.dir / 'queue'}", "local_domains=lab.test",
               "aliases_file=", "relay_from=")
    s = smtplib.SMTP(d.host, d.port, timeout=10)
    s.ehlo("client.test")
    monitor, dialogue = serving(s.sock)
    assert_monitor(monitor)
    assert_prelogin(dialogue)
    s.login("alice", "wonder")
    # AUTH proves the client; the dialogue stays unprivileged and confined.
    assert children(monitor) == [dialogue]
    assert_prelogin(dialogue)
    s.sendmail("a@far.test", ["alice@lab.test"], "Subject: x\r\n\r\nhello\r\n")
    s.quit()
    new = alice / "Maildir" / "new"
    files = wait_for(lambda: os.listdir(new))
    assert len(files) == 1
    st = os.stat(new / files[0])
    # Delivered as the recipient, by the monitor's narrow path.
    assert (st.st_uid, st.st_gid) == (UID, GID)
    # A later client is served by a confined dialogue process too (the
    # same one when its monitor was idle first).
    time.sleep(0.3)
    s = smtplib.SMTP(d.host, d.port, timeout=10)
    s.ehlo("client.test")
    monitor2, dialogue2 = serving(s.sock)
    assert_prelogin(dialogue2)
    assert (monitor2, dialogue2) == (monitor, dialogue)
    s.quit()


def test_ftpd_anonymous_runs_as_the_passwd_file_ftp_account(lab, daemon):
    """anon_user is looked up like every account: with a passwd_file, there
    (a virtual-user host has no system `ftp`), and the session runs as it,
    confined to anon_root."""
    import ftplib
    root = lab.dir / "anon"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "hello.txt").write_text("hi\n")
    lines = [l for l in lab.passwd_file.read_text().splitlines() if not l.startswith("ftp:")]
    lines.append(f"ftp:*:{UID + 1}:{GID + 1}:Anonymous FTP:/nonexistent:/usr/sbin/nologin")
    lab.passwd_file.write_text("\n".join(lines) + "\n")
    d = daemon("ftpd", "anonymous=yes", f"anon_root={root}")
    f = ftplib.FTP()
    f.connect(d.host, d.port, timeout=10)
    monitor, _ = serving(f.sock)
    f.login("anonymous", "guest@example.org")
    assert f.nlst("pub") == ["pub/hello.txt"] or f.nlst("pub") == ["hello.txt"]
    account = only_child(monitor)
    st = proc_status(account)
    assert st["uid"] == [UID + 1] * 4 and st["gid"] == [GID + 1] * 4, st
    assert st["root"] == str(root), st
    f.quit()


def _rhosts_for_alice(home):
    path = home / ".rhosts"
    path.write_text("+ +\n")
    os.chmod(path, 0o600)
    os.chown(path, UID, GID)


def test_rlogind_before_and_after_a_trusted_login(lab, daemon, alice):
    from rcmd_helpers import connect_reserved, recv_until
    _rhosts_for_alice(alice)
    d = daemon("rlogind", f"hosts_equiv={lab.dir}/equiv")
    s = connect_reserved(d.port)
    monitor, prelogin = serving(s)
    assert_monitor(monitor)
    assert_prelogin(prelogin)
    s.sendall(b"\0root\0alice\0xterm/9600\0echo in-$((1+2))\r")
    assert b"in-3" in recv_until(s, b"in-3")
    account = only_child(monitor)
    assert account != prelogin
    assert_account(account)
    shell = only_child(account)
    assert_account(shell)
    assert not os.path.exists(f"/proc/{prelogin}")
    s.sendall(b"exit\r")
    s.close()


def test_rshd_before_and_after_a_trusted_login(lab, daemon, alice):
    from rcmd_helpers import connect_reserved
    _rhosts_for_alice(alice)
    d = daemon("rshd", f"hosts_equiv={lab.dir}/equiv")
    s = connect_reserved(d.port)
    monitor, prelogin = serving(s)
    assert_monitor(monitor)
    assert_prelogin(prelogin)
    s.sendall(b"\0root\0alice\0echo started; sleep 3\0")
    s.settimeout(10)
    assert s.recv(64).startswith(b"\0")
    account = only_child(monitor)
    assert_account(account)
    command = only_child(account)
    assert_account(command)
    s.close()
