"""The Debian telnet client (inetutils) in a real terminal (tmux) against
telnetd: log in, the password not echoed, `stty size` matches the window
and follows a resize, TERM, vi draws, Ctrl-C interrupts `sleep 100`, ^D
ends `cat`, `logout` ends the client. The same scenario runs against
inetutils telnetd (the reference, through inetd and login(1)) to prove the
test, and against our `login = /bin/login -p -h %h`."""

import os
import re
import subprocess
import time

import pytest

from conftest import IS_ROOT, MiniInetd, binary, crypt_hash, need, need_reference, wait_port
from telnet_helpers import SYSTEM_PASSWORD, SYSTEM_USER, Tmux, ensure_system_account

USER, PASSWORD = SYSTEM_USER, SYSTEM_PASSWORD
PROMPT = r"(?m)\$ *$"


def scenario(port, user, password, name):
    telnet = need("telnet")
    tmux_path = need("tmux")
    assert tmux_path
    t = Tmux(name, f"env TERM=xterm-256color {telnet} 127.0.0.1 {port}; echo CLIENT-EXIT=$?; sleep 600",
             width=100, height=30)
    try:
        t.wait(r"login:")
        t.enter(user)
        t.wait(r"Password:")
        t.enter(password)
        t.wait(PROMPT)
        assert password not in t.screen(), "the password was echoed"
        t.enter("clear; stty size")
        t.wait(r"(?m)^30 100$")
        t.resize(120, 40)
        time.sleep(0.5)
        t.enter("clear; stty size")
        t.wait(r"(?m)^40 120$")
        t.enter("echo TERM=$TERM")
        t.wait(r"(?m)^TERM=xterm-256color$")
        # vi draws the whole screen, and the text typed into it.
        t.enter("clear; vi")
        t.wait(r"(?m)^~\s*$")
        t.type("ihello from vi")
        t.keys("Escape")
        t.wait(r"hello from vi")
        t.type(":q!")
        t.keys("Enter")
        t.wait(PROMPT)
        # Ctrl-C interrupts a foreground program.
        t.enter("clear; sleep 100")
        time.sleep(1)
        started = time.time()
        t.keys("C-c")
        t.enter("echo AFTER-$((40+2))")
        t.wait(r"(?m)^AFTER-42$", 10)
        assert time.time() - started < 8
        # ^D ends cat's input (LINEMODE's end of file, too).
        t.enter("clear; cat; echo CAT-ENDED")
        time.sleep(0.5)
        t.enter("a line")
        t.wait(r"(?m)^a line$")
        t.keys("C-d")
        t.wait(r"(?m)^CAT-ENDED$", 10)
        # A password read by a program is not echoed either.
        t.enter("clear; read -s -p 'Secret: ' s; echo; echo got-$s")
        t.wait(r"Secret:")
        t.enter("hush123")
        t.wait(r"(?m)^got-hush123$")
        assert "Secret: hush123" not in t.screen()
        t.enter("logout")
        t.wait(r"CLIENT-EXIT=", 15)
    finally:
        t.kill()


@pytest.fixture
def bash_user(lab):
    """A lab account whose shell is bash (logout, read -s)."""
    home = lab.dir / "home" / USER
    home.mkdir(parents=True, exist_ok=True)
    if IS_ROOT:
        os.chown(home, lab.uid, lab.gid)
    with open(lab.passwd_file, "a") as f:
        f.write(f"{USER}:{crypt_hash(PASSWORD)}:{lab.uid}:{lab.gid}:{USER}:{home}:/bin/bash\n")
    return USER


@pytest.fixture(scope="module")
def system_account():
    if not IS_ROOT:
        pytest.skip("needs root to create a system account")
    return ensure_system_account()


def test_debian_client_builtin_login(daemon, lab, bash_user):
    d = daemon("telnetd", "issue_file=")
    scenario(d.port, bash_user, PASSWORD, "tel-builtin")
    assert "login ok: user classicdtel" in d.log()


def test_debian_client_with_login_program(system_account, lab):
    port = _free()
    p = subprocess.Popen([str(binary("telnetd")), "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "log=stderr",
                          "-o", "login=/bin/login -p -h %h", "-o", "issue_file="],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc=p)
        scenario(port, USER, PASSWORD, "tel-program")
    finally:
        p.terminate()
        p.communicate(timeout=10)


def test_debian_client_against_inetutils_telnetd(system_account):
    """The reference, under inetd: proves the scenario itself."""
    telnetd = need_reference("/usr/sbin/telnetd", "inetutils-telnetd")
    inetd = MiniInetd([telnetd])
    try:
        scenario(inetd.port, USER, PASSWORD, "tel-reference")
    finally:
        inetd.stop()


def _free():
    from conftest import free_port
    return free_port()


def test_builtin_login_through_pam(system_account):
    """No passwd_file: the account from NSS, the password through PAM's
    conversation (service login), relayed prompt by prompt."""
    from telnet_helpers import TelnetClient
    port = _free()
    p = subprocess.Popen([str(binary("telnetd")), "-F", "-o", f"listen=127.0.0.1:{port}", "-o", "log=stderr",
                          "-o", "issue_file="], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc=p)
        c = TelnetClient(port)
        c.login(USER, "wrong")
        c.read_until(rb"Login incorrect")
        c.login(USER, PASSWORD)
        c.read_until(rb"\$ $")
        assert c.shell("id -un") == USER
        assert c.shell("echo $HOME") == system_account.pw_dir
        c.line("exit")
        assert c.wait_closed()
    finally:
        p.terminate()
        log = p.communicate(timeout=10)[1]
    assert f"login ok: user {USER}" in log and f"login failed" in log
