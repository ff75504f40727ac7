"""LMTP both ways (RFC 2033): smtpd as a mailbox back end (`lmtp_listen`)
and as a front end (`mail_location = lmtp:...`), with the real peers:
Postfix delivering into our lmtp_listen, our smtpd delivering into
Dovecot's LMTP, and two smtpd hosts front to back.
"""

import os
import random
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, free_port, need, need_reference, wait_port
from smtp_helpers import HOST, Raw, start_smtpd, wait_for


def maildir(home, box="Maildir"):
    new = Path(home) / box / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def message(subject, body="hello"):
    return (f"From: a@far.test\r\nTo: demo@lab.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@far.test>\r\n\r\n{body}\r\n")


def lmtp_backend(daemon, lab, *extra, **kw):
    """An smtpd whose only listener is LMTP."""
    return start_smtpd(daemon, lab, *extra, listen_key="lmtp_listen", **kw)


def lmtp_dialogue(port, rcpts, body, sender="a@far.test"):
    """A byte-exact LMTP transaction: the RCPT replies and the replies after DATA."""
    c = Raw(port)
    assert c.greeting[0] == 220 and "LMTP" in c.greeting[1], c.greeting
    code, text = c.cmd("LHLO front.test")
    assert code == 250 and "PIPELINING" in text
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    rcpt_codes = [c.cmd(f"RCPT TO:<{r}>")[0] for r in rcpts]
    accepted = sum(1 for x in rcpt_codes if x == 250)
    code, _ = c.cmd("DATA")
    after = []
    if code == 354:
        c.send(body.encode() + b".\r\n")
        after = [c.reply() for _ in range(accepted)]
    c.cmd("QUIT")
    c.close()
    return rcpt_codes, code, after


# ------------------------------------------------------------ the back end


def test_backend_answers_per_recipient(daemon, lab):
    """One RCPT refused among several; the others each get their own 250
    after DATA, and each mailbox has the message."""
    d = lmtp_backend(daemon, lab)
    rcpts = ["demo@lab.test", "nosuchuser@lab.test", "alice@lab.test", "x@far.test"]
    codes, data, after = lmtp_dialogue(d.port, rcpts, message("per rcpt"))
    assert codes == [250, 550, 250, 554]
    assert data == 354
    assert [a[0] for a in after] == [250, 250], after
    assert "<demo@lab.test>" in after[0][1] and "<alice@lab.test>" in after[1][1]
    assert len(maildir(lab.users["demo"])) == 1
    assert len(maildir(lab.users["alice"])) == 1
    got = maildir(lab.users["demo"])[0].read_bytes()
    assert b"Subject: per rcpt" in got and b"with LMTP" in got


def test_backend_speaks_lmtp_only(daemon, lab):
    d = lmtp_backend(daemon, lab)
    c = Raw(d.port)
    assert c.cmd("HELO x.test")[0] == 500
    assert c.cmd("EHLO x.test")[0] == 500
    code, text = c.cmd("LHLO x.test")
    assert code == 250 and "AUTH" not in text
    c.close()


def test_backend_only_for_relay_from(daemon, lab):
    """relay_from decides who may speak LMTP: loopback here is not in it."""
    d = lmtp_backend(daemon, lab, "relay_from=192.0.2.0/24")
    c = Raw(d.port)
    assert c.greeting[0] == 554
    assert c.closed()
    assert maildir(lab.users["demo"]) == []
