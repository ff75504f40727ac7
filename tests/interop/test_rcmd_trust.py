"""The trust matrix of .rhosts and hosts.equiv, run against our rshd and
rlogind and against Debian's reference (rsh-redone-server's in.rshd and
in.rlogind, which decide through pam_rhosts, that is glibc's ruserok) with
the same system account, files and raw client. Every difference is listed in DIFFERENCES with the
reason ours is right, and checked; everything else must agree."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess

import pytest

from conftest import IS_ROOT, MiniInetd, binary, free_port, need_reference, wait_port
from rcmd_helpers import connect_reserved, recv_all, write_rhosts

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="system accounts, reserved ports, /etc")

USER = "classicdrsh"
REFERENCE = "/usr/sbin/in.rshd"

# Case -> (ours, reference, why ours is right). Only these may differ.
DIFFERENCES = {
    "root_through_rhosts": (
        False, True,
        "root_rhosts defaults to no (CONTRACT.md): root's .rhosts is the most "
        "valuable trust file to forge; pam_rhosts lets root in through it",
    ),
    "stderr_port_not_reserved": (
        False, True,
        "with require_privileged_port the stderr port must be reserved too, as "
        "4.4BSD's rshd insists: the client's rcmd(3) listens on one, and a "
        "connection from our reserved port to an unprivileged port can be "
        "aimed at any local service by whoever runs the client",
    ),
}
# Not run live (the machine's DNS and PAM are shared), each a unit test:
#  - a client whose reverse DNS names a trusted host: in.rshd passes that
#    unconfirmed name as PAM_RHOST and ruserok resolves it, so the lie
#    matches the trusted host's lines; ours matches lines against the
#    peer's own address and asks netgroups only with a forward-confirmed
#    name (auth::trust tests: the_clients_own_reverse_name_never_matches_
#    unconfirmed);
#  - IPv4-mapped clients match IPv4 lines (ruserok would compare the
#    ::ffff: text);
#  - .rhosts over 256 KiB, user names over 32 bytes or starting with '-',
#    are refused; in.rshd reads 1023-byte fields and gives '-froot' to PAM;
#  - refusals: in.rshd sends the NUL of success, then "Authentication
#    failure" as if it were the command's output (rsh exits 0); ours sends
#    BSD's "\x01Permission denied." (rsh prints it and fails);
#  - signals: in.rshd makes the stderr socket the command's fd 2 and never
#    reads it, so ^C at the client never reaches the command; ours does.


@pytest.fixture(scope="module")
def account():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    return pwd.getpwnam(USER)


@contextlib.contextmanager
def saved(path):
    """Put `path` back as it was (absent, or its old content) afterwards."""
    backup = path + ".classicd-test"
    had = os.path.lexists(path)
    if had:
        shutil.move(path, backup)
    try:
        yield path
    finally:
        if os.path.lexists(path):
            os.unlink(path)
        if had:
            shutil.move(backup, path)


@pytest.fixture(scope="module")
def servers(account, tmp_path_factory):
    need_reference(REFERENCE, "rsh-redone-server")
    log = tmp_path_factory.mktemp("rshd") / "ours.log"
    port = free_port()
    f = open(log, "w")
    ours = subprocess.Popen([str(binary("rshd")), "-F", "-o", f"listen=127.0.0.1:{port}",
                             "-o", "log=stderr"], stdout=f, stderr=subprocess.STDOUT)
    wait_port(port, proc=ours)
    ref = MiniInetd([REFERENCE])
    yield {"ours": port, "reference": ref.port, "log": log}
    ref.stop()
    ours.terminate()
    ours.wait(timeout=10)
    f.close()


def trusted(port, luser=USER, stderr_port=b""):
    s = connect_reserved(port)
    s.sendall(stderr_port + b"\0root\0" + luser.encode() + b"\0echo TRUSTED\0")
    out = recv_all(s, timeout=10)
    return b"TRUSTED" in out


def setup(case, home, uid, gid, tmp):
    """Lay out the files of one case; returns the local user to ask for."""
    rhosts = os.path.join(home, ".rhosts")
    if os.path.lexists(rhosts):
        os.unlink(rhosts)
    simple = {
        "plus_plus": "+ +\n",
        "host_and_user": "localhost root\n",
        "numeric_address": "127.0.0.1 root\n",
        "any_host_this_user": "+ root\n",
        "host_alone_means_same_user": "localhost\n",
        "negative_host_first": "-localhost\n+ +\n",
        "negative_user_first": "+ -root\n+ +\n",
        "allow_before_negative": "localhost root\n-localhost\n",
        "comments_and_blanks": "# trusted hosts\n\n   \nlocalhost root\n",
        "other_host_only": "otherhost.invalid root\n",
        "other_user_only": "localhost someoneelse\n",
    }
    if case in simple:
        write_rhosts(home, simple[case], uid=uid, gid=gid)
    elif case == "world_writable":
        write_rhosts(home, "+ +\n", mode=0o646, uid=uid, gid=gid)
    elif case == "group_writable":
        write_rhosts(home, "+ +\n", mode=0o620, uid=uid, gid=gid)
    elif case == "owned_by_another":
        nobody = pwd.getpwnam("nobody")
        write_rhosts(home, "+ +\n", uid=nobody.pw_uid, gid=nobody.pw_gid)
    elif case == "owned_by_root":
        write_rhosts(home, "+ +\n", mode=0o644, uid=0, gid=0)
    elif case == "symlink":
        target = write_rhosts(str(tmp), "+ +\n", uid=uid, gid=gid)
        os.symlink(target, rhosts)
    elif case == "hard_linked":
        write_rhosts(home, "+ +\n", uid=uid, gid=gid)
        os.link(rhosts, os.path.join(home, ".rhosts-link"))
    elif case == "missing":
        pass
    elif case == "stderr_port_not_reserved":
        write_rhosts(home, "+ +\n", uid=uid, gid=gid)
    return USER


CASES = [
    "plus_plus", "host_and_user", "numeric_address", "any_host_this_user",
    "host_alone_means_same_user", "negative_host_first", "negative_user_first",
    "allow_before_negative", "comments_and_blanks", "other_host_only", "other_user_only",
    "world_writable", "group_writable", "owned_by_another", "owned_by_root", "symlink",
    "hard_linked", "missing", "stderr_port_not_reserved",
]
EXPECTED = {  # ruserok's answer for each case
    "plus_plus": True, "host_and_user": True, "numeric_address": True,
    "any_host_this_user": True, "host_alone_means_same_user": False,
    "negative_host_first": False, "negative_user_first": False,
    "allow_before_negative": True, "comments_and_blanks": True, "other_host_only": False,
    "other_user_only": False, "world_writable": False, "group_writable": False,
    "owned_by_another": False, "owned_by_root": True, "symlink": False, "hard_linked": False,
    "missing": False, "stderr_port_not_reserved": True,
}


@pytest.mark.parametrize("case", CASES)
def test_rhosts_matrix(servers, account, case, tmp_path):
    home = account.pw_dir
    with saved("/etc/hosts.equiv"):
        setup(case, home, account.pw_uid, account.pw_gid, tmp_path)
        listener = None
        stderr_port = b""
        if case == "stderr_port_not_reserved":
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(4)
            stderr_port = str(listener.getsockname()[1]).encode()
        try:
            got = {who: trusted(servers[who], stderr_port=stderr_port)
                   for who in ("ours", "reference")}
        finally:
            if listener:
                listener.close()
            for p in (".rhosts", ".rhosts-link"):
                if os.path.lexists(os.path.join(home, p)):
                    os.unlink(os.path.join(home, p))
    if case in DIFFERENCES:
        ours, ref, _why = DIFFERENCES[case]
        assert (got["ours"], got["reference"]) == (ours, ref), got
    else:
        assert got["ours"] == got["reference"] == EXPECTED[case], got


@pytest.mark.parametrize("case", ["hosts_equiv", "hosts_equiv_refusal_then_rhosts",
                                  "hosts_equiv_world_writable"])
def test_hosts_equiv_matrix(servers, account, case):
    home = account.pw_dir
    expected = {"hosts_equiv": True, "hosts_equiv_refusal_then_rhosts": True,
                "hosts_equiv_world_writable": False}[case]
    with saved("/etc/hosts.equiv") as equiv:
        text = {"hosts_equiv": "localhost root\n",
                "hosts_equiv_refusal_then_rhosts": "-localhost\n",
                "hosts_equiv_world_writable": "localhost root\n"}[case]
        with open(equiv, "w") as f:
            f.write(text)
        os.chmod(equiv, 0o666 if case.endswith("writable") else 0o644)
        if case == "hosts_equiv_refusal_then_rhosts":
            write_rhosts(home, "localhost root\n", uid=account.pw_uid, gid=account.pw_gid)
        try:
            got = {who: trusted(servers[who]) for who in ("ours", "reference")}
        finally:
            if os.path.lexists(os.path.join(home, ".rhosts")):
                os.unlink(os.path.join(home, ".rhosts"))
    assert got["ours"] == got["reference"] == expected, got
    log = open(servers["log"]).read()
    if expected:
        assert "allowed by" in log


def test_root_through_rhosts(servers):
    with saved("/root/.rhosts") as path:
        with open(path, "w") as f:
            f.write("localhost root\n")
        os.chmod(path, 0o600)
        got = {who: trusted(servers[who], luser="root") for who in ("ours", "reference")}
    ours, ref, _why = DIFFERENCES["root_through_rhosts"]
    assert (got["ours"], got["reference"]) == (ours, ref), got
    assert "root_rhosts is off" in open(servers["log"]).read()


def test_trust_through_pam(account, tmp_path):
    """trust = pam: the auth stage of the PAM service decides (pam_rhosts,
    given PAM_RUSER and PAM_RHOST); the same files, the same answers."""
    service = "classicd-rsh-test"
    with saved(f"/etc/pam.d/{service}") as pam:
        with open(pam, "w") as f:
            f.write("auth required pam_rhosts.so\naccount required pam_permit.so\n"
                    "session required pam_permit.so\n")
        port = free_port()
        log = tmp_path / "pam.log"
        with open(log, "w") as out:
            p = subprocess.Popen([str(binary("rshd")), "-F", "-o", f"listen=127.0.0.1:{port}",
                                  "-o", "log=stderr", "-o", "trust=pam", "-o",
                                  f"pam_service={service}"], stdout=out, stderr=subprocess.STDOUT)
            try:
                wait_port(port, proc=p)
                home = account.pw_dir
                write_rhosts(home, "localhost root\n", uid=account.pw_uid, gid=account.pw_gid)
                assert trusted(port)
                write_rhosts(home, "-localhost\n+ +\n", uid=account.pw_uid, gid=account.pw_gid)
                assert not trusted(port)
                write_rhosts(home, "+ +\n", mode=0o666, uid=account.pw_uid, gid=account.pw_gid)
                assert not trusted(port)
            finally:
                os.unlink(os.path.join(account.pw_dir, ".rhosts"))
                p.terminate()
                p.wait(timeout=10)
    text = log.read_text()
    assert f"allowed by PAM service {service}" in text
    assert f"denied by PAM service {service}" in text


def test_rlogind_runs_the_login_program(account, tmp_path):
    """login = /bin/login -p -h %h: the monitor starts login(1) on the
    terminal, with -f only when it granted trust itself; otherwise login
    asks for the password."""
    from rcmd_helpers import recv_until
    login = need_reference("/bin/login", "login")
    port = free_port()
    log = tmp_path / "rlogind.log"
    with open(log, "w") as out:
        p = subprocess.Popen([str(binary("rlogind")), "-F", "-o", f"listen=127.0.0.1:{port}",
                              "-o", "log=stderr", "-o", f"login={login} -p -h %h",
                              "-o", f"hosts_equiv={tmp_path}/equiv"],
                             stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_port(port, proc=p)
            home = account.pw_dir
            write_rhosts(home, "localhost root\n", uid=account.pw_uid, gid=account.pw_gid)
            s = connect_reserved(port)
            s.sendall(b"\0root\0" + USER.encode() + b"\0xterm/9600\0")
            assert s.recv(1) == b"\0"
            s.sendall(b"echo who-$(id -un)\r")
            assert f"who-{USER}".encode() in recv_until(s, f"who-{USER}".encode(), timeout=15)
            s.sendall(b"exit\r")
            s.close()
            os.unlink(os.path.join(home, ".rhosts"))
            s = connect_reserved(port)
            s.sendall(b"\0root\0" + USER.encode() + b"\0xterm/9600\0")
            assert b"Password:" in recv_until(s, b"Password:", timeout=15)
            s.close()
        finally:
            if os.path.lexists(os.path.join(account.pw_dir, ".rhosts")):
                os.unlink(os.path.join(account.pw_dir, ".rhosts"))
            p.terminate()
            p.wait(timeout=10)
    text = log.read_text()
    assert "started for classicdrsh on pts/" in text and "(trusted)" in text


@pytest.fixture(scope="module")
def rlogin_servers(account, tmp_path_factory):
    need_reference("/usr/sbin/in.rlogind", "rsh-redone-server")
    d = tmp_path_factory.mktemp("rlogind")
    port = free_port()
    f = open(d / "ours.log", "w")
    ours = subprocess.Popen([str(binary("rlogind")), "-F", "-o", f"listen=127.0.0.1:{port}",
                             "-o", "log=stderr", "-o", f"issue_file={d}/none"],
                            stdout=f, stderr=subprocess.STDOUT)
    wait_port(port, proc=ours)
    ref = MiniInetd(["/usr/sbin/in.rlogind"])
    yield {"ours": port, "reference": ref.port}
    ref.stop()
    ours.terminate()
    ours.wait(timeout=10)
    f.close()


def rlogin_trusted(port):
    """Trusted: the typed line reaches a shell; else a password prompt has it."""
    from rcmd_helpers import recv_until
    s = connect_reserved(port)
    s.sendall(b"\0root\0" + USER.encode() + b"\0xterm/9600\0")
    first = s.recv(1)
    assert first == b"\0", first
    s.sendall(b"echo TR-$((2+3))\r")
    out = recv_until(s, b"TR-5", timeout=4)
    s.close()
    return b"TR-5" in out


@pytest.mark.parametrize("case", ["plus_plus", "comments_and_blanks", "negative_host_first",
                                  "host_alone_means_same_user", "world_writable", "symlink",
                                  "hard_linked", "owned_by_another"])
def test_rlogin_matrix(rlogin_servers, account, case, tmp_path):
    home = account.pw_dir
    with saved("/etc/hosts.equiv"):
        setup(case, home, account.pw_uid, account.pw_gid, tmp_path)
        try:
            got = {who: rlogin_trusted(rlogin_servers[who]) for who in ("ours", "reference")}
        finally:
            for p in (".rhosts", ".rhosts-link"):
                if os.path.lexists(os.path.join(home, p)):
                    os.unlink(os.path.join(home, p))
    assert got["ours"] == got["reference"] == EXPECTED[case], got
