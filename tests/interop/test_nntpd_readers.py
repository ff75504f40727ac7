"""tin and slrn in a real terminal (tmux): subscribe to lab.test, read a
thread, post a follow-up; against nntpd and against INN, the same keys."""

import os
import subprocess
import time
import uuid
import warnings

import pytest

from conftest import need, need_reference
from nntp_helpers import InnServer, NntpdServer, Raw, article, stuff, wait_for
import inn_lab

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

GROUPS = (("lab.test", "y"), ("lab.misc", "y"))


@pytest.fixture(params=["nntpd", "inn"])
def news(request, daemon, lab):
    if request.param == "nntpd":
        srv = NntpdServer(daemon, lab, GROUPS)
    else:
        need_reference(str(inn_lab.INND), "inn2")
        srv = InnServer(lab.dir / "inn", GROUPS)
    # a thread's start and one more thread
    c = Raw(srv.port)
    c.cmd("MODE READER")
    for subject in ("Welcome", "Second"):
        _, art = article(subject=subject, body=f"Hello from {subject}.\r\n")
        assert c.cmd("POST").startswith("340")
        c.send(stuff(art))
        assert c.line().startswith("240")
    c.close()
    yield srv
    if request.param == "inn":
        srv.stop()


class Tmux:
    def __init__(self, command, env):
        need("tmux")
        self.name = f"nntp-{uuid.uuid4().hex[:8]}"
        envs = [f"{k}={v}" for k, v in env.items()]
        # TERM as tmux's panes are (screen), the size fixed whatever
        # tmux's default-size says.
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "40",
                        "env", *envs, "TERM=screen", "COLUMNS=120", "LINES=40", *command],
                       check=True)
        subprocess.run(["tmux", "resize-window", "-t", self.name, "-x", "120", "-y", "40"],
                       capture_output=True)

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait(self, text, timeout=20):
        try:
            return wait_for(lambda: text in self.screen(), timeout, repr(text))
        except AssertionError:
            raise AssertionError(f"no {text!r} on the screen:\n{self.screen()}")

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def editor(home):
    path = home / "editor.sh"
    path.write_text('#!/bin/sh\nfor f; do :; done\necho "Agreed, from the reader." >> "$f"\n')
    os.chmod(path, 0o755)
    return path


def followups(port):
    s = nntplib.NNTP("127.0.0.1", port, readermode=True)
    try:
        _, count, first, last, _ = s.group("lab.test")
        _, over = s.over((first, last))
        return [o for _, o in over if o["subject"] == "Re: Welcome"]
    finally:
        s.quit()


def check_followup(port):
    found = wait_for(lambda: followups(port), 20, "the follow-up")
    s = nntplib.NNTP("127.0.0.1", port, readermode=True)
    s.group("lab.test")
    _, over = s.over((1, 3))
    welcome = [o for _, o in over if o["subject"] == "Welcome"][0]
    assert welcome["message-id"] in found[0]["references"]
    s.quit()


def test_tin(news, tmp_path):
    need("tin")
    home = tmp_path / "tinhome"
    (home / ".tin").mkdir(parents=True)
    (home / ".tin" / "tinrc").write_text("mail_address=Demo <demo@lab.test>\nbeginner_level=OFF\n")
    t = Tmux(["tin", "-r", "-g", "127.0.0.1", "-p", str(news.port), "-q"],
             {"HOME": home, "EDITOR": editor(tmp_path)})
    try:
        t.wait("Group Selection")
        t.keys("g")                    # go to a group by name
        time.sleep(0.5)
        t.keys("lab.test", "Enter")
        t.wait("lab.test")
        t.keys("s")                    # subscribe
        time.sleep(0.5)
        t.keys("Enter")                # the group's index
        t.wait("Welcome")
        t.wait("Second")
        t.keys("Enter")                # read the first thread
        t.wait("Hello from")
        t.keys("f")                    # follow up (the editor appends a line)
        t.wait("p=post")
        t.keys("p")
        check_followup(news.port)
    finally:
        t.close()


def point(t, text):
    """Move slrn's cursor (->) to the line holding `text`."""
    for _ in range(10):
        lines = t.screen().splitlines()
        cur = [i for i, l in enumerate(lines) if l.startswith("->")]
        want = [i for i, l in enumerate(lines) if text in l and not l.startswith("slrn")]
        if not cur or not want:
            time.sleep(0.3)
            continue
        if want[0] == cur[0] or cur[0] in want:
            return
        t.keys("Down" if want[0] > cur[0] else "Up")
        time.sleep(0.3)
    raise AssertionError(f"cannot point at {text!r}:\n{t.screen()}")


def test_slrn(news, tmp_path):
    need("slrn")
    home = tmp_path / "slrnhome"
    home.mkdir()
    (home / ".slrnrc").write_text(
        'set username "demo"\nset hostname "lab.test"\nset realname "Demo"\n'
        f'set editor_command "{editor(tmp_path)} \'%s\'"\nset confirm_actions 0\n')
    t = Tmux(["slrn", "-h", f"127.0.0.1:{news.port}", "--nntp", "-f", str(home / "newsrc"),
              "--create"], {"HOME": home})
    try:
        t.wait("lab.misc")
        t.keys("s")                    # subscribe where the cursor is
        time.sleep(0.5)
        point(t, "lab.test")
        t.keys("s")
        time.sleep(0.5)
        point(t, "lab.test")
        t.keys("Space")                # the group
        t.wait("Welcome")
        point(t, "Welcome")
        t.keys("Space")                # read it
        t.wait("Hello from Welcome")
        t.keys("f")                    # follow up
        t.wait("Post the message?")
        t.keys("y")
        check_followup(news.port)
    finally:
        t.close()
