"""smtpd against bad input: huge lines, NUL bytes, garbage, clients that
vanish mid-DATA, mail loops, and every SMTP-smuggling variant. The daemon
answers with clear 5xx replies, stores nothing it did not acknowledge, and
stays up."""

import smtplib
import time

import pytest

from smtp_helpers import HOST, Raw, start_smtpd, stored, tmp_files, wait_stored


def transaction(r, rcpt="demo@lab.test"):
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 250
    assert r.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert r.cmd("DATA")[0] == 354


def still_serving(port):
    with smtplib.SMTP(HOST, port) as s:
        assert s.noop()[0] == 250


def test_huge_command_line(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    code, text = r.cmd("MAIL FROM:<" + "a" * 100_000 + "@far.test>")
    assert (code, text[:5]) == (500, "5.5.2")
    assert "too long" in text.lower()
    # The session goes on.
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")
    still_serving(d.port)


def test_huge_line_in_data_refuses_message(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    r.send(b"Subject: long\r\n\r\n" + b"x" * 200_000 + b"\r\nend\r\n.\r\n")
    code, text = r.reply()
    assert code == 500 and text.startswith("5.5.2")
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")
    assert stored(lab, settle=0) == []


def test_nul_bytes(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    r.send(b"NOOP \x00\x00\r\n")
    assert r.reply()[0] == 500
    transaction(r)
    r.send(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n")
    code, text = r.reply()
    assert code == 554 and text.startswith("5.6.0")
    r.cmd("QUIT")
    assert stored(lab, settle=0) == []


def test_garbage_and_too_many_errors(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.send(b"\xff\xfe\xfd garbage\r\n")
    assert r.reply()[0] == 500
    r.send(b"GET / HTTP/1.0\r\n")
    assert r.reply()[0] == 500
    codes = []
    for _ in range(30):
        try:
            r.send(b"XYZZY\r\n")
            codes.append(r.reply()[0])
        except (EOFError, OSError):
            break
    assert codes[-1] == 421
    assert r.closed()
    still_serving(d.port)


def test_vanish_mid_data_stores_nothing(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    r.send(b"Subject: half\r\n\r\n" + b"some data\r\n" * 1000)
    r.close()
    time.sleep(1)
    assert stored(lab, settle=0) == []
    assert tmp_files(lab) == []
    assert "during DATA" in d.log()
    still_serving(d.port)


def test_too_many_received_headers(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    hops = b"".join(b"Received: from hop%d by hop%d; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i + 1)
                    for i in range(31))
    r.send(hops + b"Subject: loop\r\n\r\nlooping\r\n.\r\n")
    code, text = r.reply()
    assert code == 554 and text.startswith("5.4.6")
    # 30 is still fine.
    transaction(r)
    r.send(hops[: hops.index(b"Received: from hop30")] + b"Subject: ok\r\n\r\nfine\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    msgs = wait_stored(lab, 1)
    assert len(msgs) == 1 and b"Subject: ok" in msgs[0]


def test_dot_stuffing(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    r.send(b"Subject: dots\r\n\r\n..one\r\n...two\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    msg = wait_stored(lab, 1)[0]
    assert b"\n.one\r\n" in msg or b"\n.one\n" in msg
    assert b"\n..two" in msg


# Each variant: a fake end of data, then a second, forged transaction.
SMUGGLING = {
    "LF.LF": b"\n.\n",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CRLF": b"\r.\r\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.LF": b"\r.\n",
}


@pytest.mark.parametrize("variant", sorted(SMUGGLING))
def test_smtp_smuggling(daemon, lab, variant):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    fake_end = SMUGGLING[variant]
    payload = (b"From: a@far.test\r\nSubject: first\r\n\r\nfirst body" + fake_end +
               b"MAIL FROM:<admin@lab.test>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n"
               b"From: admin@lab.test\r\nSubject: forged\r\n\r\nsmuggled\r\n.\r\n")
    r.send(payload)
    code, text = r.reply()
    # One message accepted (or the whole thing refused): never two.
    assert code in (250, 550, 554), text
    assert r.cmd("NOOP")[0] == 250, "a smuggled command was executed"
    r.cmd("QUIT")
    msgs = stored(lab)
    if code == 250:
        assert len(msgs) == 1
        assert b"Subject: first" in msgs[0]
        # The forged transaction is inert content of the first message.
        assert b"smuggled" in msgs[0]
        assert b"MAIL FROM:<admin@lab.test>" in msgs[0]
    else:
        assert msgs == []
    # Nothing for alice, the forged recipient.
    maildir = lab.users["alice"] / "Maildir"
    assert not any((maildir / s).is_dir() and any((maildir / s).iterdir()) for s in ("new", "cur"))


def test_bare_lf_lines_are_normalised(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    r.send(b"Subject: lf\n\nline one\nline two\r\n.\r\n")
    assert r.reply()[0] == 250
    r.cmd("QUIT")
    msg = wait_stored(lab, 1)[0]
    assert b"line one" in msg and b"line two" in msg


def test_idle_timeout_mid_data_stores_nothing(daemon, lab):
    d = start_smtpd(daemon, lab, "idle_timeout=2")
    r = Raw(d.port)
    r.cmd("EHLO c")
    transaction(r)
    r.send(b"Subject: slow\r\n\r\nhalf a message\r\n")
    code, text = r.reply()
    assert code == 421 and text.startswith("4.4.2")
    assert r.closed()
    assert stored(lab, settle=0) == [] and tmp_files(lab) == []


def test_starttls_command_injection_is_ignored(daemon, lab, tls_files):
    from smtp_helpers import client_tls
    d = start_smtpd(daemon, lab, tls=tls_files)
    r = Raw(d.port)
    r.cmd("EHLO c")
    # Plaintext sent after STARTTLS must not survive into the TLS session.
    r.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert r.reply()[0] == 220
    r.sock = client_tls().wrap_socket(r.sock, server_hostname="localhost")
    r.buf = b""
    assert r.cmd("EHLO c")[0] == 250
    # Had the injected MAIL been executed, this would be a nested MAIL.
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 250
    r.cmd("QUIT")


def test_domain_literal_of_the_server_is_local(daemon, lab):
    d = start_smtpd(daemon, lab, "relay_from=10.9.9.0/24")
    r = Raw(d.port)
    r.cmd("EHLO c")
    r.cmd("MAIL FROM:<a@far.test>")
    assert r.cmd("RCPT TO:<demo@[127.0.0.1]>")[0] == 250
    assert r.cmd("RCPT TO:<demo@[10.1.2.3]>")[0] == 554
    r.cmd("QUIT")


def test_unwritable_queue_is_a_temporary_failure(daemon, lab):
    blocker = lab.dir / "not-a-dir"
    blocker.write_text("")
    d = start_smtpd(daemon, lab, f"queue_dir={blocker}/queue")
    r = Raw(d.port)
    r.cmd("EHLO c")
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 250
    assert r.cmd("RCPT TO:<demo@lab.test>")[0] == 250
    code, text = r.cmd("DATA")
    assert code == 451 and text.startswith("4.3.0")
    assert r.cmd("NOOP")[0] == 250
    r.cmd("QUIT")
