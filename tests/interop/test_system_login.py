"""System accounts (no passwd_file): NSS for the account, PAM for the
password, with the contract's pam_service names. Needs root, to create the
account and the PAM service files."""

import ftplib
import os
import poplib
import pwd
import smtplib
import subprocess

import pytest

from conftest import IS_ROOT, binary, free_port, wait_port

USER, PASSWORD = "classicdpam", "Pam-passw0rd"

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root to create a system account")


@pytest.fixture(scope="module")
def account():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    for service in ("ftp", "pop3", "smtp"):
        path = f"/etc/pam.d/{service}"
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("@include common-auth\n@include common-account\n@include common-session-noninteractive\n")
    home = pwd.getpwnam(USER).pw_dir
    for sub in ("tmp", "new", "cur"):
        os.makedirs(f"{home}/Maildir/{sub}", exist_ok=True)
    with open(f"{home}/Maildir/new/1.test.host", "w") as f:
        f.write("Subject: pam\n\nhello\n")
    with open(f"{home}/hello.txt", "w") as f:
        f.write("hello from a system account\n")
    subprocess.run(["chown", "-R", f"{USER}:", home], check=True)
    return pwd.getpwnam(USER)


def start(name, *opts):
    port = free_port()
    p = subprocess.Popen([str(binary(name)), "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "log=stderr",
                          *[x for o in opts for x in ("-o", o)]],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_port(port, proc=p)
    return p, port


def stop(p):
    p.terminate()
    return p.communicate(timeout=10)[1]


def test_ftp_login_through_pam(account):
    p, port = start("ftpd", "ftpusers_file=/nonexistent")
    try:
        f = ftplib.FTP()
        f.connect("127.0.0.1", port, timeout=20)
        with pytest.raises(ftplib.error_perm, match="530"):
            f.login(USER, "wrong")
        f = ftplib.FTP()
        f.connect("127.0.0.1", port, timeout=20)
        f.login(USER, PASSWORD)
        assert f.pwd() == account.pw_dir
        lines = []
        f.retrlines("RETR hello.txt", lines.append)
        assert lines == ["hello from a system account"]
        f.quit()
    finally:
        log = stop(p)
    assert f"login ok: user {USER}" in log and f"login failed: user {USER}" in log


def test_pop3_login_through_pam(account):
    p, port = start("pop3d")
    try:
        m = poplib.POP3("127.0.0.1", port, timeout=20)
        m.user(USER)
        m.pass_(PASSWORD)
        assert m.stat()[0] == 1
        m.quit()
    finally:
        stop(p)


def test_smtp_auth_through_pam(account, lab):
    p, port = start("smtpd", f"queue_dir={lab.dir}/spool", "hostname=localhost",
                    "relay_from=192.0.2.0/24")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.login(USER, PASSWORD)
    finally:
        stop(p)
