"""smtpd's direct delivery: a small message for local mailboxes only is
delivered by the session itself, as each recipient, before the 250. What
fails there is committed to the queue for the runner to retry or bounce;
big messages, mail with a remote recipient and NOTIFY=SUCCESS take the queue
as before. See man/smtpd.8, "How mail flows"."""

import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import IS_ROOT, binary
from smtp_helpers import (HOST, PAST_MEMORY_LIMIT, queue_listing, runner_pid, start_smtpd,
                          wait_for)

MSG = "From: a@far.test\r\nTo: demo@lab.test\r\nSubject: {subj}\r\n\r\nhello {subj}\r\n"
LOCATIONS = {"maildir": "maildir:~/Maildir", "mbox": "mbox:~/mbox"}


def spool_files(d):
    """What the spool holds: {subdir: [names]} (empty lists when drained;
    tmp/spare.N are finished messages' files kept to be written over)."""
    q = d.lab.dir / "queue"
    return {sub: sorted(n for n in os.listdir(q / sub) if not n.startswith("spare."))
            if (q / sub).is_dir() else []
            for sub in ("q", "tmp", "st")}


def empty_spool(d):
    return spool_files(d) == {"q": [], "tmp": [], "st": []}


def messages(home, kind="maildir"):
    """The files (Maildir) or the mbox holding a user's mail, and the mail."""
    if kind == "mbox":
        box = home / "mbox"
        if not box.exists():
            return [], []
        data = box.read_bytes()
        return [box], [m for m in re.split(rb"(?m)^(?=From )", data) if m]
    new = home / "Maildir" / "new"
    files = sorted(new.iterdir()) if new.is_dir() else []
    return files, [f.read_bytes() for f in files]


def transaction(d, rcpts, body, sender="a@far.test", rcpt_options=None):
    """One transaction; returns the queue id of the 250 ("queued as ID")."""
    with smtplib.SMTP(HOST, d.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail(sender)[0] == 250
        for r in rcpts:
            assert s.rcpt(r, (rcpt_options or {}).get(r, []))[0] == 250
        code, text = s.data(body)
        assert code == 250, (code, text, d.log())
        return text.decode().rsplit(" ", 1)[1]


def logged_by(d, pattern):
    """The pid of the process whose log line matches `pattern`."""
    m = re.search(r"smtpd\[(\d+)\]: info: " + pattern, d.log())
    return int(m.group(1)) if m else None


def envelope_lines(queue_file):
    """The envelope's recipient lines of a spool file (see spool.rs)."""
    data = queue_file.read_bytes()
    tail = data[data.rindex(b"\nV 1\n") + 1:]
    return [l.decode() for l in tail.split(b"\n") if l.startswith(b"P ")]


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_local_mail_is_delivered_before_the_250(daemon, lab, kind):
    d = start_smtpd(daemon, lab, f"mail_location={LOCATIONS[kind]}")
    runner = runner_pid(d)
    qid = transaction(d, ["demo@lab.test", "alice@lab.test"], MSG.format(subj="direct"))
    # No waiting: the 250 came after both mailboxes had the message durably.
    for user in ("demo", "alice"):
        home = lab.users[user]
        files, msgs = messages(home, kind)
        assert len(msgs) == 1, (user, d.log())
        assert b"Subject: direct" in msgs[0] and b"\r\n" not in msgs[0]
        assert b"Return-Path: <a@far.test>" in msgs[0]
        assert f"id {qid}".encode() in msgs[0], "the Received header names the queue id"
        st = files[0].stat()
        assert (st.st_uid, st.st_gid) == (lab.uid, lab.gid), "written as the recipient"
        assert st.st_mode & 0o777 == 0o600
        if kind == "maildir":
            box = (home / "Maildir").stat()
            assert box.st_uid == lab.uid and box.st_mode & 0o777 == 0o700
        # Logged as the runner would, but by the session, after the arrival.
        line = (rf"{qid}: to=<{user}@lab.test>, relay=local, status=sent "
                rf"\(250 2\.0\.0 delivered to {re.escape(str(home))}/")
        pid = logged_by(d, line)
        assert pid and pid != runner, d.log()
        assert d.log().index(f"{qid}: from=<a@far.test>, size=") < d.log().index(f"to=<{user}@")
    assert "nrcpt=2" in d.log()
    # Nothing went through the spool, and nothing is left there.
    assert empty_spool(d), spool_files(d)
    assert "Mail queue is empty" in queue_listing(lab, lab.dir / "queue")


def test_a_big_message_goes_through_the_queue(daemon, lab):
    d = start_smtpd(daemon, lab)
    runner = runner_pid(d)
    qid = transaction(d, ["demo@lab.test"], MSG.format(subj="big") + PAST_MEMORY_LIMIT)
    msgs = wait_for(lambda: messages(lab.home)[1])
    assert msgs, d.log()
    assert msgs[0].count(b"x" * 70 + b"\n") == PAST_MEMORY_LIMIT.count("\n")
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<demo@lab.test>, relay=local, status=sent")) == runner
    assert wait_for(lambda: empty_spool(d)), spool_files(d)


def test_an_unwritable_mailbox_is_queued_the_other_delivered_at_once(daemon, lab):
    d = start_smtpd(daemon, lab, "retry_interval=1")
    runner = runner_pid(d)
    alice = lab.users["alice"]
    blocker = alice / "Maildir"
    blocker.write_text("not a directory\n")
    qid = transaction(d, ["demo@lab.test", "alice@lab.test"], MSG.format(subj="half"),
                      rcpt_options={"alice@lab.test": ["NOTIFY=FAILURE", "ORCPT=rfc822;Alice@lab.test"]})
    # demo has it already; alice's copy is in the queue, alone in its
    # envelope, with its DSN parameters.
    assert len(messages(lab.home)[1]) == 1, d.log()
    assert logged_by(d, rf"{qid}: to=<demo@lab.test>, relay=local, status=sent") != runner
    assert logged_by(d, rf"{qid}: to=<alice@lab.test>: left to the queue: 4\.2\.0 delivery to ")
    queued = spool_files(d)["q"]
    assert queued == [qid], (queued, d.log())
    rcpts = envelope_lines(lab.dir / "queue" / "q" / qid)
    assert len(rcpts) == 1 and rcpts[0].startswith("P alice@lab.test F =rfc822;Alice@lab.test L alice"), rcpts
    # The runner tries, fails, and once the mailbox is fixed delivers it.
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<alice@lab.test>, relay=local, status=deferred")) == runner
    blocker.unlink()
    assert wait_for(lambda: messages(alice)[1], timeout=30), d.log()
    assert b"Subject: half" in messages(alice)[1][0]
    assert messages(alice)[0][0].stat().st_uid == lab.uid
    assert wait_for(lambda: empty_spool(d)), spool_files(d)
    assert len(messages(lab.home)[1]) == 1, "demo's copy was not sent again"


def test_an_account_gone_before_the_end_of_data_is_bounced(daemon, lab):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail("demo@lab.test")[0] == 250
        assert s.rcpt("demo@lab.test")[0] == 250
        assert s.rcpt("alice@lab.test")[0] == 250
        lines = lab.passwd_file.read_text().splitlines(keepends=True)
        lab.passwd_file.write_text("".join(l for l in lines if not l.startswith("alice:")))
        code, text = s.data(MSG.format(subj="gone"))
        assert code == 250
    qid = text.decode().rsplit(" ", 1)[1]
    assert logged_by(d, rf"{qid}: to=<alice@lab.test>: left to the queue: 550 5\.1\.1 ")
    # demo (also the sender) has the message, then the runner's bounce.
    msgs = wait_for(lambda: (lambda m: m if len(m) >= 2 else None)(messages(lab.home)[1]))
    assert msgs, d.log()
    dsn = [m for m in msgs if b"multipart/report" in m]
    assert len(dsn) == 1 and b"Action: failed" in dsn[0] and b"alice@lab.test" in dsn[0]
    assert wait_for(lambda: empty_spool(d)), spool_files(d)


def test_success_dsn_and_remote_recipients_take_the_queue(daemon, lab):
    d = start_smtpd(daemon, lab, "relay_host=127.0.0.1:9", "retry_interval=300")
    runner = runner_pid(d)
    qid = transaction(d, ["demo@lab.test"], MSG.format(subj="notify"), sender="demo@lab.test",
                      rcpt_options={"demo@lab.test": ["NOTIFY=SUCCESS"]})
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<demo@lab.test>, relay=local, status=sent")) == runner
    assert wait_for(lambda: len(messages(lab.home)[1]) == 2), d.log()  # the message and its DSN
    qid = transaction(d, ["alice@lab.test", "x@remote.test"], MSG.format(subj="mixed"))
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<alice@lab.test>, relay=local, status=sent")) == runner
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<x@remote.test>, relay=.*status=deferred"))


def test_inetd_mode_queues_only_what_failed(daemon, lab):
    d = start_smtpd(daemon, lab, mode="inetd")
    alice = lab.users["alice"]
    (alice / "Maildir").write_text("not a directory\n")
    qid = transaction(d, ["demo@lab.test", "alice@lab.test"], MSG.format(subj="inetd"))
    assert len(messages(lab.home)[1]) == 1
    assert spool_files(d)["q"] == [qid]
    # The one-shot delivery of the queued part fails too and leaves it;
    # --flush (cron's job) delivers it once the mailbox is fixed.
    q = lab.dir / "queue"
    assert wait_for(lambda: "1 attempt" in queue_listing(lab, q)), queue_listing(lab, q)
    (alice / "Maildir").unlink()
    r = subprocess.run([str(binary("smtpd")), "-o", f"passwd_file={lab.passwd_file}",
                        "-o", f"queue_dir={q}", "-o", "mail_location=maildir:~/Maildir", "--flush"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: messages(alice)[1]), r.stderr
    assert wait_for(lambda: empty_spool(d)), spool_files(d)
    assert len(messages(lab.home)[1]) == 1


@pytest.mark.skipif(not IS_ROOT, reason="only root could write where the recipient cannot")
def test_delivery_never_writes_where_the_recipient_cannot(daemon, lab):
    d = start_smtpd(daemon, lab, "retry_interval=300")
    private = lab.dir / "root-only"
    private.mkdir(mode=0o700)
    (lab.users["alice"] / "Maildir").symlink_to(private)
    qid = transaction(d, ["alice@lab.test"], MSG.format(subj="symlink"))
    assert logged_by(d, rf"{qid}: to=<alice@lab.test>: left to the queue: .*[Pp]ermission denied"), d.log()
    assert wait_for(lambda: logged_by(d, rf"{qid}: to=<alice@lab.test>, relay=local, status=deferred"))
    assert list(private.iterdir()) == []


def test_kill_9_of_sessions_mid_delivery_loses_nothing_acknowledged(daemon, lab):
    """Session processes are killed at random while clients send small local
    mail: every message that got its 250 is in new/, whole; what was cut off
    left at most a file in tmp/, never a torn one in new/."""
    import random
    import threading

    d = start_smtpd(daemon, lab, "mail_location=maildir:~/Maildir")
    runner = runner_pid(d)
    acked, stop = [], threading.Event()

    def client(k):
        i = 0
        while not stop.is_set():
            subj = f"k{k}-{i}"
            i += 1
            try:
                with smtplib.SMTP(HOST, d.port, timeout=10) as s:
                    s.sendmail("a@far.test", ["demo@lab.test"],
                               MSG.format(subj=subj) + "x" * 2000 + "\r\nEND\r\n")
                acked.append(subj)
            except (smtplib.SMTPException, OSError):
                pass

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    killed = 0
    try:
        for _ in range(40):
            kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(d.pid)], capture_output=True,
                                  text=True).stdout.split()
            kids = [int(k) for k in kids if int(k) != runner]
            if kids:
                try:
                    os.kill(random.choice(kids), 9)
                    killed += 1
                except ProcessLookupError:
                    pass  # it ended between ps and the kill
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert killed and acked, d.log()
    files, msgs = messages(lab.users["demo"])
    subjects = [re.search(rb"Subject: (\S+)", m).group(1).decode() for m in msgs]
    assert set(acked) <= set(subjects), sorted(set(acked) - set(subjects))
    assert all(m.rstrip(b"\n").endswith(b"END") for m in msgs), "a torn message in new/"
    assert d.alive()
