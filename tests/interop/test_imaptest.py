"""Dovecot's compliance and stress tester (../shared/vendor/imaptest, built
here from its vendored source) against imapd, and against Dovecot itself
to prove the test: the scripted tests (`test=`) and a stress run with state
tracking (`clients=10 own_flags checkpoint`). Known failures are listed
with their reason in KNOWN; anything else fails the test."""

import imaplib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CI, ROOT
from imap_helpers import Dovecot

VENDOR = ROOT.parent / "shared" / "vendor"
BUILD = Path(os.environ.get("IMAPTEST_BUILD", "/tmp/imaptest-build"))

# Scripted tests imapd fails on purpose, with the reason.
KNOWN = {
    # A message APPENDed with a literal8 whose body has bare LFs next to
    # NULs: we store messages with LF line ends (as smtpd delivers) and
    # give them back with CRLF, so a bare LF inside binary data comes back
    # as CRLF and BINARY.SIZE counts the CRs. Dovecot keeps such a message
    # byte for byte.
    "append-binary",
}


def imaptest():
    """The imaptest binary, built on first use."""
    if not (VENDOR / "build-imaptest.sh").exists() or shutil.which("autoconf") is None \
            or not Path("/usr/include/dovecot").exists():
        if CI:
            pytest.fail("imaptest cannot be built: .ci/run must install dovecot-dev autoconf automake libtool")
        pytest.skip("imaptest's build dependencies are missing")
    out = subprocess.run(["sh", str(VENDOR / "build-imaptest.sh"), str(BUILD)], capture_output=True,
                         text=True, timeout=900)
    if out.returncode != 0:
        pytest.fail(f"imaptest did not build: {out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def run(binary, host, port, *args, timeout=300):
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    p = subprocess.run([binary, f"host={host}", f"port={port}", "user=demo", "pass=demo", *args],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=BUILD)
    return p.stdout + p.stderr


def failed_groups(output):
    return {m.group(1) for m in re.finditer(r"^\*\*\* Test (\S+) command", output, re.M)}


@pytest.fixture(params=["imapd", "dovecot"])
def target(request, lab, daemon):
    if request.param == "imapd":
        d = daemon("imapd")
        yield request.param, d.host, d.port
    else:
        dv = Dovecot(lab)
        yield request.param, dv.host, dv.port
        dv.stop()


@pytest.fixture(params=["imapd-mbox"])
def mbox_target(request, lab, daemon):
    d = daemon("imapd", "mail_location=mbox:~/mbox")
    yield "imapd", d.host, d.port


def test_scripted(target):
    scripted(target)


def test_scripted_on_mbox_folders(mbox_target):
    # The same protocol over mbox folders (c-client format): the same
    # results.
    scripted(mbox_target)


def scripted(target):
    name, host, port = target
    binary = imaptest()
    out = run(binary, host, port, f"test={BUILD / 'src' / 'tests'}")
    summary = re.search(r"(\d+) test groups: (\d+) failed", out)
    assert summary, out[-3000:]
    failed = failed_groups(out)
    allowed = KNOWN if name == "imapd" else set()
    assert failed <= allowed, f"{name}: unexpected failures {failed - allowed}\n{out[-5000:]}"


# Stress errors both servers get, with the reason.
TOLERATED = [
    # imaptest wants a FETCH FLAGS in STORE's answer even for a message
    # another session expunged meanwhile; Dovecot 2.3 does not always send
    # one. imapd answers with the flags asked for (the expunged=yes case,
    # not tolerated, and test_imapd's test_store_on_a_message_expunged_
    # elsewhere); these two cover a file that vanished under the STORE.
    re.compile(r"STORE didn't (return FETCH FLAGS|update keyword \S+) for seq \d+ \(expunged=(\?|no)\)"),
    # With own_flags each client owns some keywords; Dovecot 2.3 also
    # reports others' STORE FLAGS (replace) taking them away.
    re.compile(r"Owned keyword changed"),
]

# A few checkpoint differences per 20-second run remain on imapd (listed in
# README's imapd notes: a message renamed by one session while another
# reads the directory, seen a checkpoint late). More than this fails.
CHECKPOINT_SLACK = 3


def empty_inbox(host, port):
    """Expunge what an earlier try left: imaptest's state tracking starts
    with a STORE on 1:* of the messages it found (client-state.c:1374),
    whose flags it has not allocated yet, and panics (array.c:10) on most
    runs that start from a full INBOX, against Dovecot too; from an empty
    one it did not in 8 runs here."""
    m = imaplib.IMAP4(host, port)
    m.login("demo", "demo")
    typ, data = m.select("INBOX")
    if int(data[0]):
        m.store("1:*", "+FLAGS", r"(\Deleted)")
        m.expunge()
    m.logout()


def checked_stress(name, host, port, clients, secs, tries, checkpoint=1):
    """imaptest's stress with state tracking; its output, or a skip when
    imaptest 924f619 trips over its own assertions in every try (its
    planner at a checkpoint, client-state.c:222, when a client that logged
    out has connected again but not had its greeting yet; array.c): such a
    run proves nothing either way. imapd greets from a fresh pre-login
    process per connection (a fork), a millisecond later than Dovecot's
    waiting login processes, which makes the window wider. A try that
    panics costs up to its whole `secs` (seen from the first second to
    the last)."""
    binary = imaptest()
    for attempt in range(tries):
        empty_inbox(host, port)
        out = run(binary, host, port, f"mbox={BUILD / 'src' / 'tests' / 'default.mbox'}",
                  f"clients={clients}", "own_flags", f"checkpoint={checkpoint}", f"secs={secs}", timeout=120)
        if "Panic:" not in out:
            break
    else:
        pytest.skip(f"{name}: imaptest panicked (its own assertion) in {tries} runs")
    # It did run: the totals line has counts.
    assert re.search(r"^\s*\d+(\s+\d+){5}", out, re.M), out[-2000:]
    return [l for l in out.splitlines() if l.startswith(("Error:", "Panic:"))
            and not any(t.search(l) for t in TOLERATED)]


def test_stress_with_state_tracking(target):
    name, host, port = target
    errors = checked_stress(name, host, port, clients=10, secs=20, tries=8)
    checkpoint = [l for l in errors if l.startswith("Error: Checkpoint:")]
    if len(checkpoint) <= CHECKPOINT_SLACK:
        errors = [l for l in errors if l not in checkpoint]
    assert not errors, f"{name}:\n" + "\n".join(errors[:40])


def test_stress_on_mbox_folders(mbox_target):
    # Every STORE, expunge and new UID writes the mbox again: fewer clients
    # than on Maildir, the same state tracking, checked every 3 seconds:
    # with a checkpoint every second imaptest's planner panicked (its own
    # assertion, client-state.c:222) in 6 of 8 runs here, so that 8 tries
    # often ended in a skip; every 3 seconds, in none of 8.
    name, host, port = mbox_target
    errors = checked_stress(name, host, port, clients=3, secs=10, tries=8, checkpoint=3)
    assert not errors, "\n".join(errors[:40])
