"""smtpd, the receiving side: the dialogue, ESMTP, listeners, local
recipients and aliases, driven by real clients (smtplib, swaks, s-nail,
smtp-source, xinetd). Bad input and SMTP smuggling: test_smtpd_input.py."""

import email
import os
import smtplib
import subprocess
import time

import pytest

from conftest import free_port, need, wait_port, binary, IS_ROOT
from smtp_helpers import (HOST, HOSTNAME, Raw, client_tls, smtpd_opts, start_smtpd,
                          wait_stored)

MSG = "From: a@far.test\r\nTo: demo@lab.test\r\nSubject: {subj}\r\n\r\nhello {subj}\r\n"


def body_of(raw: bytes):
    return email.message_from_bytes(raw)


def test_smtplib_plain_delivery_and_received_header(daemon, lab):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port, local_hostname="client.example") as s:
        code, banner = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8", "dsn"):
            assert s.has_extn(ext), ext
        assert s.esmtp_features["size"] == "36700160"
        refused = s.sendmail("a@far.test", ["demo@lab.test"], MSG.format(subj="plain"))
        assert refused == {}
    msgs = wait_stored(lab, 1)
    assert len(msgs) == 1
    m = body_of(msgs[0])
    assert m["Subject"] == "plain"
    # Delivered (by the session, before the 250) into demo's Maildir, with
    # Return-Path.
    new = wait_maildir(lab.home, 1)
    assert len(new) == 1
    assert new[0].startswith(b"Return-Path: <a@far.test>")
    rcv = m.get_all("Received")[0]
    assert "from client.example ([127.0.0.1])" in rcv
    assert f"by {HOSTNAME}" in rcv and "with ESMTP" in rcv
    assert "from=<a@far.test>" in d.log() and "nrcpt=1" in d.log()


def wait_maildir(home, count, timeout=15):
    deadline = time.time() + timeout
    files = []
    while time.time() < deadline:
        d = home / "Maildir" / "new"
        files = sorted(d.iterdir()) if d.is_dir() else []
        if len(files) >= count:
            break
        time.sleep(0.1)
    return [f.read_bytes() for f in files]


def test_another_instance_as_the_remote_mta(daemon, lab):
    b = start_smtpd(daemon, lab, "local_domains=remote.test", "hostname=mx.remote.test",
                    queue="queue-b")
    a = start_smtpd(daemon, lab, f"relay_host={HOST}:{b.port}", "retry_interval=1")
    with smtplib.SMTP(HOST, a.port, local_hostname="ua.test") as s:
        assert s.sendmail("alice@lab.test", ["demo@remote.test"], MSG.format(subj="hop")) == {}
    new = wait_maildir(lab.home, 1, timeout=30)
    assert len(new) == 1, a.log() + b.log()
    m = body_of(new[0])
    assert m["Subject"] == "hop"
    received = m.get_all("Received")
    assert len(received) == 2
    assert "by mx.remote.test" in received[0] and f"by {HOSTNAME}" in received[1]
    assert "from ua.test ([127.0.0.1])" in received[1]


def test_each_rcpt_on_its_own(daemon, lab):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        refused = s.sendmail("a@far.test", ["demo@lab.test", "nosuch@lab.test", "alice@localhost"],
                             MSG.format(subj="multi"))
        assert list(refused) == ["nosuch@lab.test"]
        assert refused["nosuch@lab.test"][0] == 550
        assert b"5.1.1" in refused["nosuch@lab.test"][1]
    msgs = wait_stored(lab, 2)
    assert 1 <= len(msgs) <= 2  # one queue file, or one per mailbox once delivered


def test_greeting_commands_and_503(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    assert r.greeting[0] == 220 and r.greeting[1].startswith(HOSTNAME)
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 503
    assert r.cmd("NOOP") == (250, "2.0.0 Ok")
    code, text = r.cmd("HELP")
    assert code == 214
    assert r.cmd("HELO client")[0] == 250
    assert r.cmd("RCPT TO:<demo@lab.test>") == (503, "5.5.1 Error: need MAIL command")
    assert r.cmd("DATA")[0] == 503
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 250
    assert r.cmd("MAIL FROM:<a@far.test>")[0] == 503
    assert r.cmd("DATA")[0] == 503
    assert r.cmd("RSET")[0] == 250
    assert r.cmd("VRFY demo")[0] == 252
    assert r.cmd("EXPN staff")[0] == 502
    assert r.cmd("BOGUS")[0] == 500
    assert r.cmd("QUIT")[0] == 221
    assert r.closed()


def test_vrfy_expn_when_enabled(daemon, lab):
    d = start_smtpd(daemon, lab, "vrfy=yes", "expn=yes")
    r = Raw(d.port)
    assert r.cmd("VRFY demo") == (250, f"2.1.5 <demo@{HOSTNAME}>")
    assert r.cmd("VRFY nosuch")[0] == 550
    code, text = r.cmd("EXPN staff")
    assert code == 250
    assert f"<demo@{HOSTNAME}>" in text and f"<alice@{HOSTNAME}>" in text
    r.cmd("QUIT")


def test_aliases_postmaster_and_loops(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    assert r.cmd("MAIL FROM:<>")[0] == 250
    assert r.cmd("RCPT TO:<staff@lab.test>")[0] == 250
    assert r.cmd("RCPT TO:<Postmaster>")[0] == 250
    assert r.cmd("RCPT TO:<postmaster@LAB.TEST>")[0] == 250
    code, text = r.cmd("RCPT TO:<loop1@lab.test>")
    assert code == 550 and "5.4.6" in text
    assert r.cmd("RCPT TO:<demo+tag@lab.test>")[0] == 250
    r.cmd("QUIT")


def test_dotforward(daemon, lab):
    d = start_smtpd(daemon, lab, "vrfy=yes", "expn=yes")
    fwd = lab.users["alice"] / ".forward"
    fwd.write_text("\\alice, demo\n")
    if IS_ROOT:
        os.chown(fwd, lab.uid, lab.gid)
    r = Raw(d.port)
    code, text = r.cmd("EXPN alice")
    assert code == 250
    assert f"<alice@{HOSTNAME}>" in text and f"<demo@{HOSTNAME}>" in text
    r.cmd("QUIT")
    # A symbolic link is not followed (it could name any file).
    target = lab.dir / "elsewhere"
    target.write_text("demo\n")
    fwd.unlink()
    fwd.symlink_to(target)
    r = Raw(d.port)
    assert r.cmd("EXPN alice") == (250, f"2.1.5 <alice@{HOSTNAME}>")
    r.cmd("QUIT")


def test_relay_denied_outside_relay_from(daemon, lab):
    d = start_smtpd(daemon, lab, "relay_from=10.9.9.0/24")
    r = Raw(d.port)
    r.cmd("EHLO c")
    r.cmd("MAIL FROM:<a@far.test>")
    code, text = r.cmd("RCPT TO:<x@elsewhere.test>")
    assert code == 554 and text.startswith("5.7.1")
    assert r.cmd("RCPT TO:<demo@lab.test>")[0] == 250
    # An alias pointing away is the local admin's choice, not a relay.
    assert r.cmd("RCPT TO:<far@lab.test>")[0] == 250
    r.cmd("QUIT")
    # Authenticated clients may relay (AUTH is allowed from loopback).
    with smtplib.SMTP(HOST, d.port) as s:
        s.login("demo", "demo")
        assert s.sendmail("demo@lab.test", ["x@elsewhere.test"], MSG.format(subj="r")) == {}


def test_relay_from_loopback_by_default(daemon, lab):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port) as s:
        assert s.sendmail("a@lab.test", ["x@elsewhere.test"], MSG.format(subj="r")) == {}


def test_dsn_parameters_are_stored(daemon, lab):
    d = start_smtpd(daemon, lab, "relay_host=127.0.0.1:9")  # never delivered
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        refused = s.sendmail("a@lab.test", ["x@elsewhere.test"], MSG.format(subj="dsn"),
                             mail_options=["RET=HDRS", "ENVID=QQ123"],
                             rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;x@elsewhere.test"])
        assert refused == {}
    q = list((lab.dir / "queue" / "q").iterdir())
    assert len(q) == 1
    data = q[0].read_bytes()
    assert b"QQ123" in data and b"rfc822;x@elsewhere.test" in data


def test_size_limits(daemon, lab):
    d = start_smtpd(daemon, lab, "max_message_size=2000")
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        assert s.esmtp_features["size"] == "2000"
        code, text = s.mail("a@far.test", ["SIZE=5000"])
        assert code == 552 and text.startswith(b"5.3.4")
        s.rset()
        # Announced small, actually big: refused after DATA.
        assert s.mail("a@far.test", ["SIZE=100"])[0] == 250
        assert s.rcpt("demo@lab.test")[0] == 250
        code, text = s.data("Subject: big\r\n\r\n" + ("y" * 70 + "\r\n") * 50)
        assert code == 552 and text.startswith(b"5.3.4")
        # The session goes on.
        assert s.sendmail("a@far.test", ["demo@lab.test"], MSG.format(subj="small")) == {}
    assert len(wait_stored(lab, 1)) == 1


def test_starttls_and_auth(daemon, lab, tls_files):
    d = start_smtpd(daemon, lab, tls=tls_files)
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        s.starttls(context=client_tls())
        s.ehlo()
        assert not s.has_extn("starttls")
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("demo", "wrong")
        assert e.value.smtp_code == 535
        s.login("demo", "demo")
        assert s.sendmail("demo@lab.test", ["demo@lab.test"], MSG.format(subj="tls")) == {}
    msgs = wait_stored(lab, 1)
    assert b"with ESMTPSA" in msgs[0]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_mechanisms(daemon, lab, mech):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        s.user, s.password = "demo", "demo"
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()), initial_response_ok=(mech == "PLAIN"))
        assert code == 235
    assert "login ok: user demo" in d.log()


def test_implicit_tls(daemon, lab, tls_files):
    port = free_port()
    start_smtpd(daemon, lab, f"tls_listen={HOST}:{port}", tls=tls_files)
    wait_port(port)
    with smtplib.SMTP_SSL(HOST, port, context=client_tls()) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        s.login("demo", "demo")
        assert s.sendmail("demo@lab.test", ["demo@lab.test"], MSG.format(subj="465")) == {}
    assert b"with ESMTPSA" in wait_stored(lab, 1)[0]


def test_submission_requires_auth(daemon, lab, tls_files):
    port = free_port()
    d = start_smtpd(daemon, lab, f"submission_listen={HOST}:{port}", tls=tls_files)
    wait_port(port)
    with smtplib.SMTP(HOST, port) as s:
        s.ehlo()
        code, text = s.mail("demo@lab.test")
        assert code == 530 and text.startswith(b"5.7.0")
        s.starttls(context=client_tls())
        s.ehlo()
        s.login("demo", "demo")
        assert s.sendmail("demo@lab.test", ["x@elsewhere.test"], MSG.format(subj="587")) == {}
    # Port 25 still takes mail without AUTH.
    with smtplib.SMTP(HOST, d.port) as s:
        assert s.sendmail("a@far.test", ["demo@lab.test"], MSG.format(subj="25")) == {}


def test_smtputf8_and_8bitmime(daemon, lab):
    d = start_smtpd(daemon, lab)
    with smtplib.SMTP(HOST, d.port) as s:
        s.ehlo()
        msg = "Subject: caf\u00e9\r\n\r\nna\u00efve\r\n".encode()
        assert s.sendmail("j\u00f6e@far.test", ["demo@lab.test"], msg,
                          mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
        code, _ = s.mail("j\u00f6e@far.test")
        assert code == 553
    assert "caf\u00e9".encode() in wait_stored(lab, 1)[0]


def test_pipelining_batches_replies(daemon, lab):
    d = start_smtpd(daemon, lab)
    r = Raw(d.port)
    r.cmd("EHLO c")
    r.send(b"MAIL FROM:<a@far.test>\r\nRCPT TO:<demo@lab.test>\r\nRCPT TO:<nosuch@lab.test>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 550, 354]
    r.send(b"Subject: p\r\n\r\npipelined\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 221]
    assert len(wait_stored(lab, 1)) == 1


def test_inetd_mode(daemon, lab):
    d = start_smtpd(daemon, lab, mode="inetd")
    with smtplib.SMTP(HOST, d.port) as s:
        assert s.sendmail("a@far.test", ["demo@lab.test"], MSG.format(subj="inetd")) == {}
    assert len(wait_stored(lab, 1)) == 1


def test_swaks_pipeline_and_tls(daemon, lab, tls_files):
    swaks = need("swaks")
    d = start_smtpd(daemon, lab, tls=tls_files)
    base = [swaks, "--server", f"{HOST}:{d.port}", "--from", "a@far.test", "--to", "demo@lab.test",
            "--helo", "swaks.test"]
    out = subprocess.run(base + ["--pipeline"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "queued as" in out.stdout
    out = subprocess.run(base + ["-tls", "--auth", "LOGIN", "--auth-user", "demo",
                                 "--auth-password", "demo"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "235 2.7.0" in out.stdout and "queued as" in out.stdout
    msgs = wait_stored(lab, 2)
    assert len(msgs) == 2
    assert all(b"from swaks.test ([127.0.0.1])" in m for m in msgs)


def test_s_nail_sends_through_it(daemon, lab):
    snail = need("s-nail")
    d = start_smtpd(daemon, lab)
    env = dict(os.environ, HOME=str(lab.dir), MAILRC="/dev/null")
    out = subprocess.run(
        [snail, "-n", "-#", "-S", "v15-compat", "-S", f"mta=smtp://{HOST}:{d.port}",
         "-S", "smtp-auth=none", "-S", "sendwait", "-S", "hostname=client.test",
         "-r", "a@far.test", "-s", "from s-nail", "demo@lab.test"],
        input="hello from s-nail\n", capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    msgs = wait_stored(lab, 1)
    assert len(msgs) == 1
    assert body_of(msgs[0])["Subject"] == "from s-nail"


@pytest.mark.parametrize("secure", [False, True])
def test_mutt_sends_through_it(daemon, lab, tls_files, secure):
    mutt = need("mutt")
    d = start_smtpd(daemon, lab, tls=tls_files)
    home = lab.dir / "mutt-home"
    home.mkdir(exist_ok=True)
    certs = home / "certs"
    certs.write_bytes(tls_files[0].read_bytes())
    url = f"smtp://demo:demo@{HOST}:{d.port}/" if secure else f"smtp://{HOST}:{d.port}/"
    cmds = [f"set smtp_url={url}", "set from=demo@lab.test", "set use_from=yes",
            "set hostname=client.test", "set record=", "set copy=no",
            f"set ssl_starttls={'yes' if secure else 'no'}", f"set ssl_force_tls={'yes' if secure else 'no'}",
            f"set certificate_file={certs}", "set ssl_verify_host=no", "set smtp_authenticators=plain:login"]
    argv = [mutt, "-n", "-F", "/dev/null"]
    for c in cmds:
        argv += ["-e", c]
    argv += ["-s", "from mutt", "demo@lab.test"]
    env = dict(os.environ, HOME=str(home), TERM="dumb")
    out = subprocess.run(argv, input="hello from mutt\n", capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr + d.log()
    msgs = wait_stored(lab, 1)
    assert len(msgs) == 1
    assert body_of(msgs[0])["Subject"] == "from mutt"
    if secure:
        assert b"with ESMTPSA" in msgs[0]


def test_smtp_source(daemon, lab):
    source = need("smtp-source")
    d = start_smtpd(daemon, lab)
    out = subprocess.run([source, "-s", "3", "-m", "12", "-l", "2048", "-f", "a@far.test",
                          "-t", "demo@lab.test", f"{HOST}:{d.port}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(wait_stored(lab, 12, timeout=20)) == 12


def test_xinetd(lab, tmp_path):
    xinetd = need("xinetd")
    if not IS_ROOT:
        pytest.skip("xinetd services run as a given user: needs root")
    port = free_port()
    opts = " ".join(f"-o {o}" for o in smtpd_opts(lab) + [f"passwd_file={lab.passwd_file}"])
    conf = tmp_path / "xinetd.conf"
    conf.write_text(f"""
defaults
{{
    log_type = FILE {tmp_path}/xinetd.log
}}
service smtp-test
{{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    bind        = {HOST}
    port        = {port}
    server      = {binary('smtpd').resolve()}
    server_args = {opts}
}}
""")
    proc = subprocess.Popen([xinetd, "-dontfork", "-f", str(conf), "-pidfile", str(tmp_path / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=proc)
        with smtplib.SMTP(HOST, port) as s:
            assert s.sendmail("a@far.test", ["demo@lab.test"], MSG.format(subj="xinetd")) == {}
        assert len(wait_stored(lab, 1)) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_config_check_shows_keys(lab):
    out = subprocess.run([str(binary("smtpd")), "-t"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for key in ("hostname", "local_domains", "mail_location", "queue_dir", "aliases_file",
                "relay_from", "relay_host", "transport_file", "max_message_size",
                "retry_interval", "queue_lifetime", "vrfy", "expn", "submission_listen"):
        assert f"\n{key} = " in "\n" + out.stdout, key
    assert "mail_location = maildir:~/Maildir" in out.stdout
    bad = subprocess.run([str(binary("smtpd")), "-t", "-o", "mail_location=/var/mail"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "mail_location" in bad.stderr


def test_busy_reply(daemon, lab):
    d = start_smtpd(daemon, lab, "max_sessions=1")
    for _ in range(50):  # until the readiness probe's session is reaped
        first = Raw(d.port)
        if first.greeting[0] == 220:
            break
        first.close()
        time.sleep(0.2)
    assert first.greeting[0] == 220
    time.sleep(0.3)
    second = Raw(d.port)
    assert second.greeting[0] == 421 and "4.3.2" in second.greeting[1]
    first.cmd("QUIT")
