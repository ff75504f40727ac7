"""The mail store end to end: what smtpd delivers (src/lib/mail, Maildir or
mbox) is what pop3d serves, byte for byte, with the locks both take."""

import poplib
import smtplib
import subprocess
import time

import pytest

from conftest import BIN

BODY = (b"Subject: end to end\r\n\r\nFrom the start of a line\r\n>From quoted\r\n"
        b".leading dot\r\n\r\nlast line\r\n")


def smtpd_works(d):
    try:
        with smtplib.SMTP(d.host, d.port, timeout=10) as s:
            code, _ = s.ehlo("client.test")
            return code == 250
    except (smtplib.SMTPException, OSError):
        return False


@pytest.mark.parametrize("location", ["maildir:~/Maildir", "mbox:~/mbox"])
def test_smtpd_delivers_pop3d_serves(lab, daemon, location):
    if not (BIN / "smtpd").exists():
        pytest.skip("smtpd is not built")
    spool = lab.mkdir("spool")
    aliases = lab.dir / "aliases"
    aliases.write_text("postmaster: demo\n")
    opts = ["hostname=localhost", "local_domains=localhost", f"queue_dir={spool}",
            f"aliases_file={aliases}", f"mail_location={location}"]
    check = subprocess.run([str(BIN / "smtpd"), "-t"] + [a for o in opts for a in ("-o", o)],
                           capture_output=True)
    if check.returncode != 0:
        pytest.skip("smtpd does not take the contract's keys yet")
    smtpd = daemon("smtpd", *opts)
    if not smtpd_works(smtpd):
        pytest.skip("smtpd does not accept mail yet")
    pop3d = daemon("pop3d", f"mail_location={location}")
    with smtplib.SMTP(smtpd.host, smtpd.port, timeout=20) as s:
        s.sendmail("alice@example.org", ["demo@localhost"], BODY)
    deadline = time.time() + 30
    while True:
        p = poplib.POP3(pop3d.host, pop3d.port, timeout=20)
        p.user("demo")
        try:
            p.pass_("demo")
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0]
            time.sleep(0.2)
            continue
        if p.stat()[0] == 1 or time.time() > deadline:
            break
        p.quit()
        time.sleep(0.3)
    assert p.stat()[0] == 1, smtpd.log()
    size = int(p.list(1).split()[2])
    resp, lines, octets = p.retr(1)
    assert octets == size
    text = b"\r\n".join(lines) + b"\r\n"
    assert lines[0] == b"Return-Path: <alice@example.org>"
    # smtpd may add trace headers; the body must arrive untouched.
    assert text.endswith(b"\r\n\r\nFrom the start of a line\r\n>From quoted\r\n"
                         b".leading dot\r\n\r\nlast line\r\n")
    assert b"Subject: end to end\r\n" in text
    p.dele(1)
    assert p.quit().startswith(b"+OK")
    p = poplib.POP3(pop3d.host, pop3d.port, timeout=20)
    p.user("demo")
    p.pass_("demo")
    assert p.stat()[0] == 0
    p.quit()
