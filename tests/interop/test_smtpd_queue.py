"""smtpd's queue: local delivery, relaying (relay_host, transport_file, MX),
retries, DSN bounces, durability across kill -9, the --queue listing and
delivery without a master (inetd mode, --flush).

Python's smtplib is the client; tiny fake SMTP and DNS servers in this file
play the remote side where a real smtpd cannot misbehave on demand. All
traffic stays on loopback.
"""

import email
import os
import re
import signal
import smtplib
import socket
import socketserver
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import IS_ROOT, binary, free_port
from smtp_helpers import PAST_MEMORY_LIMIT, queue_listing, runner_pid, wait_for

SMTPD = "smtpd"


# ---------------------------------------------------------------- helpers


def maildir_messages(home, box="Maildir"):
    new = Path(home) / box / "new"
    if not new.exists():
        return []
    return [p.read_bytes() for p in sorted(new.iterdir())]


def send(port, sender, rcpts, body, host="127.0.0.1", mail_options=(), rcpt_options=()):
    with smtplib.SMTP(host, port, timeout=30) as s:
        s.ehlo("client.test")
        return s.sendmail(sender, rcpts, body, mail_options=list(mail_options),
                          rcpt_options=list(rcpt_options))


def message(subject, extra=""):
    return (f"From: demo@a.test\r\nTo: someone\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@client.test>\r\n\r\n"
            f"body of {subject}\r\n{extra}")


class FakeSMTP:
    """A scripted remote MTA. `rcpt_reply(n)` gives the reply to the n-th
    RCPT (0-based, over all connections); messages are kept."""

    def __init__(self, rcpt_reply=lambda n: "250 2.1.5 ok", data_reply=lambda n: "250 2.0.0 queued",
                 host="127.0.0.1", port=0, ehlo_lines=("PIPELINING", "8BITMIME", "DSN"),
                 data_delay=0.0):
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.ehlo_lines = ehlo_lines
        self.data_delay = data_delay
        self.rcpts = 0
        self.datas = 0
        self.messages = []
        self.commands = []
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def handle(self):
                outer._serve(self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def _serve(self, r, w):
        def say(s):
            w.write(s.encode() + b"\r\n")
            w.flush()

        say("220 fake.test ESMTP")
        rcpts = []
        while True:
            line = r.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            with self.lock:
                self.commands.append(cmd)
            verb = cmd.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                lines = ["fake.test"] + list(self.ehlo_lines)
                for l in lines[:-1]:
                    w.write(f"250-{l}\r\n".encode())
                say(f"250 {lines[-1]}")
            elif verb == "MAIL":
                rcpts = []
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                with self.lock:
                    n = self.rcpts
                    self.rcpts += 1
                reply = self.rcpt_reply(n)
                if reply.startswith("2"):
                    rcpts.append(cmd)
                say(reply)
            elif verb == "DATA":
                say("354 go ahead")
                data = b""
                while True:
                    l = r.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l
                if self.data_delay:
                    time.sleep(self.data_delay)
                with self.lock:
                    n = self.datas
                    self.datas += 1
                reply = self.data_reply(n)
                if reply.startswith("2"):
                    with self.lock:
                        self.messages.append((rcpts, data))
                say(reply)
            elif verb == "QUIT":
                say("221 bye")
                return
            elif verb == "RSET":
                say("250 ok")
            else:
                say("502 5.5.1 not implemented")

    def close(self):
        # shutdown() waits for serve_forever; never let that hang a test.
        t = threading.Thread(target=self.server.shutdown, daemon=True)
        t.start()
        t.join(5)
        self.server.server_close()


@pytest.fixture
def fake_smtp():
    made = []

    def make(**kw):
        f = FakeSMTP(**kw)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def smtpd(daemon, lab, name, *opts, **kw):
    """A standalone smtpd for domain NAME.test with its own spool."""
    q = lab.dir / f"queue-{name}"
    d = daemon(SMTPD, f"queue_dir={q}", f"hostname=mx.{name}.test", f"local_domains={name}.test",
               "aliases_file=", "retry_interval=1", *opts, **kw)
    d.queue_dir = q
    return d


def dsn_parts(raw):
    msg = email.message_from_bytes(raw)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    kinds = [p.get_content_type() for p in parts]
    assert kinds[0] == "text/plain" and kinds[1] == "message/delivery-status", kinds
    status = "".join(str(x) for x in parts[1].get_payload())
    return msg, status, kinds


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("size", ["small", "big"])
def test_local_delivery_is_owned_by_the_recipient(lab, daemon, size):
    # A small message is delivered by the session, a big one by a worker of
    # the runner: both as the recipient.
    a = smtpd(daemon, lab, "a")
    runner = runner_pid(a)
    extra = PAST_MEMORY_LIMIT if size == "big" else ""
    send(a.port, "sender@elsewhere.test", ["demo@a.test"], message("local one", extra))
    msgs = wait_for(lambda: maildir_messages(lab.home))
    assert msgs, a.log()
    assert b"Return-Path: <sender@elsewhere.test>" in msgs[0]
    assert b"\r\n" not in msgs[0], "local delivery converts CRLF to LF"
    f = next((lab.home / "Maildir" / "new").iterdir())
    st = f.stat()
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == lab.uid
    sent = wait_for(lambda: re.search(r"smtpd\[(\d+)\]: info: \w+: to=<demo@a.test>, relay=local, "
                                      r"status=sent", a.log()))
    assert sent, a.log()
    assert (int(sent.group(1)) == runner) == (size == "big")
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, a.queue_dir))


def test_relay_via_relay_host_between_two_smtpds(lab, daemon):
    b = smtpd(daemon, lab, "b", "mail_location=maildir:~/MailB")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{b.port}")
    send(a.port, "demo@a.test", ["demo@b.test"], message("via relay host"))
    msgs = wait_for(lambda: maildir_messages(lab.home, "MailB"))
    assert msgs, a.log() + b.log()
    assert b"Subject: via relay host" in msgs[0]
    # Both hops added their Received line.
    assert msgs[0].count(b"Received: ") >= 2
    assert f"relay=127.0.0.1[127.0.0.1]:{b.port}, status=sent" in a.log()


def test_relay_via_transport_file(lab, daemon):
    b = smtpd(daemon, lab, "b", "mail_location=maildir:~/MailB")
    transport = lab.dir / "transport"
    transport.write_text(f"# test routes\nb.test 127.0.0.1:{b.port}\n")
    a = smtpd(daemon, lab, "a", f"transport_file={transport}")
    send(a.port, "demo@a.test", ["demo@b.test"], message("via transport"))
    msgs = wait_for(lambda: maildir_messages(lab.home, "MailB"))
    assert msgs, a.log() + b.log()
    assert b"Subject: via transport" in msgs[0]


def test_starttls_outbound_when_offered(lab, daemon, tls_files):
    cert, key = tls_files
    b = smtpd(daemon, lab, "b", "mail_location=maildir:~/MailB", f"tls_cert={cert}", f"tls_key={key}")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{b.port}")
    send(a.port, "demo@a.test", ["demo@b.test"], message("over tls"))
    msgs = wait_for(lambda: maildir_messages(lab.home, "MailB"))
    assert msgs, a.log() + b.log()
    # The receiving side records the protocol in its Received line.
    assert b"ESMTPS" in msgs[0] or b"TLS" in msgs[0], msgs[0][:600]


def test_4xx_is_retried_until_the_remote_recovers(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "451 4.3.0 busy, try later" if n < 1 else "250 2.1.5 ok")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    send(a.port, "demo@a.test", ["user@remote.test"], message("retry me"))
    assert wait_for(lambda: "status=deferred" in a.log()), a.log()
    listing = queue_listing(lab, a.queue_dir)
    assert "user@remote.test" in listing or fake.messages, listing
    assert wait_for(lambda: fake.messages, timeout=20), a.log()
    assert b"Subject: retry me" in fake.messages[0][1]
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, a.queue_dir))
    # No bounce went to the sender.
    assert not maildir_messages(lab.home)


def test_5xx_bounces_at_once_to_the_local_sender(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "550 5.1.1 <user@remote.test>: no such user")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    send(a.port, "demo@a.test", ["user@remote.test"], message("doomed"),
         mail_options=["RET=HDRS", "ENVID=env42"])
    msgs = wait_for(lambda: maildir_messages(lab.home), timeout=15)
    assert msgs, a.log()
    msg, status, kinds = dsn_parts(msgs[0])
    assert msg["Subject"].startswith("Undelivered Mail")
    assert b"Return-Path: <>" in msgs[0]
    assert "Action: failed" in status and "Status: 5.1.1" in status, status
    assert "no such user" in status
    assert "Original-Envelope-Id: env42" in status
    assert kinds[2] == "text/rfc822-headers"
    assert "status=bounced" in a.log()
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, a.queue_dir))


def test_bounce_to_an_aliased_local_sender(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "550 5.1.1 no such user")
    aliases = lab.dir / "aliases"
    aliases.write_text("bounces: demo\n")
    # A later -o wins over smtpd()'s empty aliases_file.
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}", f"aliases_file={aliases}")
    send(a.port, "bounces@a.test", ["user@remote.test"], message("aliased sender"))
    msgs = wait_for(lambda: maildir_messages(lab.home), timeout=15)
    assert msgs, a.log()
    _, status, _ = dsn_parts(msgs[0])
    assert "Action: failed" in status


def test_unreachable_past_lifetime_bounces_with_full_message(lab, daemon):
    closed = free_port()
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{closed}", "queue_lifetime=3")
    send(a.port, "demo@a.test", ["user@remote.test"], message("never arrives"))
    listing = wait_for(lambda: (lambda s: s if "user@remote.test" in s and "connect" in s else None)(
        queue_listing(lab, a.queue_dir)), timeout=10)
    assert listing, a.log()
    assert "demo@a.test" in listing
    msgs = wait_for(lambda: maildir_messages(lab.home), timeout=20)
    assert msgs, a.log()
    msg, status, kinds = dsn_parts(msgs[0])
    assert "Action: failed" in status and "4.4.7" in status, status
    assert kinds[2] == "message/rfc822"
    assert b"body of never arrives" in msgs[0]


def test_bounces_are_never_bounced(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "550 5.1.1 no")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    send(a.port, "", ["user@remote.test"], message("a bounce"))
    assert wait_for(lambda: "undeliverable bounce discarded" in a.log()), a.log()
    time.sleep(0.5)
    assert not maildir_messages(lab.home)


def test_success_dsn_on_request(lab, daemon):
    a = smtpd(daemon, lab, "a")
    lab.add_user("other", "other")
    send(a.port, "demo@a.test", ["other@a.test"], message("notify me"),
         rcpt_options=["NOTIFY=SUCCESS"])
    msgs = wait_for(lambda: maildir_messages(lab.home), timeout=15)
    assert msgs, a.log()
    msg, status, _ = dsn_parts(msgs[0])
    assert "Action: delivered" in status and "Status: 2.0.0" in status
    assert maildir_messages(lab.users["other"])


def test_remote_delivery_passes_dsn_parameters(lab, daemon, fake_smtp):
    fake = fake_smtp()
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    send(a.port, "demo@a.test", ["user@remote.test"], message("params"),
         mail_options=["RET=FULL", "ENVID=abc"], rcpt_options=["NOTIFY=FAILURE"])
    assert wait_for(lambda: fake.messages), a.log()
    mail = [c for c in fake.commands if c.upper().startswith("MAIL")][0]
    rcpt = [c for c in fake.commands if c.upper().startswith("RCPT")][0]
    assert "RET=FULL" in mail and "ENVID=abc" in mail, mail
    assert "NOTIFY=FAILURE" in rcpt, rcpt
    assert any(c.startswith("EHLO mx.a.test") for c in fake.commands)


def test_partial_delivery_is_recorded_and_not_repeated(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "451 4.3.0 later" if n < 2 else "250 ok")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    send(a.port, "x@elsewhere.test", ["demo@a.test", "user@remote.test"], message("half and half"))
    assert wait_for(lambda: fake.messages, timeout=30), a.log()
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, a.queue_dir))
    # The local copy was delivered once, before and despite the retries.
    assert len(maildir_messages(lab.home)) == 1
    assert a.log().count("to=<demo@a.test>") == 1


class Garbage:
    """A remote that talks nonsense: a huge line, then garbage, then hangs."""

    def __init__(self, script):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.script = script
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(c,), daemon=True).start()

    def close(self):
        # shutdown() wakes the accepting thread; close() alone would not,
        # and the port would keep listening.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def talk(self, c):
        try:
            c.sendall(self.script)
            time.sleep(5)
        except OSError:
            pass
        finally:
            c.close()


@pytest.mark.parametrize("script", [
    b"220-" + b"x" * 100000 + b"\r\n220 ok\r\n",
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    b"\x00\xff\xfe garbage\r\n",
])
def test_garbage_from_the_remote_is_a_deferral(lab, daemon, script):
    g = Garbage(script)
    try:
        a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{g.port}", "retry_interval=300")
        send(a.port, "demo@a.test", ["user@remote.test"], message("garbage"))
        assert wait_for(lambda: "status=deferred" in a.log(), timeout=20), a.log()
        # The attempt is counted when the runner settles the message, just
        # after it logs the outcome.
        assert wait_for(lambda: "1 attempt" in queue_listing(lab, a.queue_dir), timeout=10)
        out = queue_listing(lab, a.queue_dir)
        assert "user@remote.test" in out and "1 attempt" in out, out
        assert "panic" not in a.log() and "internal error" not in a.log()
    finally:
        g.close()


def test_queue_listing_shows_deferred_mail(lab, daemon, fake_smtp):
    fake = fake_smtp(rcpt_reply=lambda n: "452 4.2.2 mailbox full")
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}", "retry_interval=300")
    send(a.port, "demo@a.test", ["user@remote.test", "two@remote.test"], message("listed"))
    out = wait_for(lambda: (lambda s: s if "mailbox full" in s else None)(queue_listing(lab, a.queue_dir)))
    assert out, a.log()
    lines = out.splitlines()
    assert lines[0].startswith("-Queue ID-")
    assert "demo@a.test" in out and "user@remote.test" in out and "two@remote.test" in out
    assert "1 Request." in out


def test_kill_9_of_the_runner_loses_nothing(lab, daemon):
    a = smtpd(daemon, lab, "a")
    n = 60
    for i in range(n):
        # Big, so that it goes through the queue and its runner.
        send(a.port, "x@elsewhere.test", ["demo@a.test"], message(f"k{i}", PAST_MEMORY_LIMIT))
        if i == n // 2:
            pid = runner_pid(a)
            assert pid, a.log()
            os.kill(pid, signal.SIGKILL)
    got = wait_for(lambda: len({m.split(b"Subject: ")[1].split(b"\n")[0]
                                for m in maildir_messages(lab.home)}) >= n, timeout=30)
    assert got, a.log()
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, a.queue_dir))


def test_kill_9_of_the_master_mid_delivery_then_restart(lab, daemon, fake_smtp):
    fake = fake_smtp(data_delay=1.0)
    q = lab.dir / "queue-a"
    a = smtpd(daemon, lab, "a", f"relay_host=127.0.0.1:{fake.port}")
    for i in range(5):
        send(a.port, "demo@a.test", [f"u{i}@remote.test"], message(f"m{i}"))
    time.sleep(0.3)
    a.proc.kill()
    a.proc.wait()
    # Restart on the same spool: everything acknowledged is delivered.
    a2 = daemon(SMTPD, f"queue_dir={q}", "hostname=mx.a.test", "local_domains=a.test",
                "aliases_file=", "retry_interval=1", f"relay_host=127.0.0.1:{fake.port}")
    ok = wait_for(lambda: {r for rs, _ in fake.messages for r in rs} and
                  all(any(f"u{i}@remote.test" in r for rs, _ in fake.messages for r in rs)
                      for i in range(5)), timeout=40)
    assert ok, a.log() + a2.log()
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, q), timeout=20)


def test_inetd_mode_delivers_without_a_master(lab, daemon):
    q = lab.dir / "queue-i"
    d = daemon(SMTPD, f"queue_dir={q}", "hostname=mx.a.test", "local_domains=a.test",
               "aliases_file=", mode="inetd")
    # Delivered by the session...
    send(d.port, "x@elsewhere.test", ["demo@a.test"], message("inetd one"))
    assert len(maildir_messages(lab.home)) == 1
    # ...and, past the memory limit, queued then delivered by a one-shot.
    send(d.port, "x@elsewhere.test", ["demo@a.test"], message("inetd two", PAST_MEMORY_LIMIT))
    assert wait_for(lambda: len(maildir_messages(lab.home)) == 2, timeout=15)
    assert wait_for(lambda: "Mail queue is empty" in queue_listing(lab, q))


def test_flush_retries_deferred_mail_without_a_master(lab, daemon, fake_smtp):
    # On an address of its own, so that nothing else on the machine can be
    # reached at the relay_host port.
    fake = fake_smtp(rcpt_reply=lambda n: "451 4.3.0 later" if n < 1 else "250 ok", host="127.0.0.3")
    q = lab.dir / "queue-i"
    d = daemon(SMTPD, f"queue_dir={q}", "hostname=mx.a.test", "local_domains=a.test",
               "aliases_file=", f"relay_host=127.0.0.3:{fake.port}", "retry_interval=3600",
               mode="inetd")
    send(d.port, "demo@a.test", ["user@remote.test"], message("flush me"))
    assert wait_for(lambda: "4.3.0 later" in queue_listing(lab, q), timeout=15)
    r = subprocess.run([str(binary(SMTPD)), "-o", f"passwd_file={lab.passwd_file}",
                        "-o", f"queue_dir={q}", "-o", f"relay_host=127.0.0.3:{fake.port}",
                        "-o", "hostname=mx.a.test", "-o", "local_domains=a.test", "--flush"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # The fake server's thread records the message; under load it may run
    # a moment after smtpd has logged the 250.
    assert wait_for(lambda: fake.messages, timeout=10), r.stderr
    assert "Mail queue is empty" in queue_listing(lab, q)


# ------------------------------------------------------- MX through DNS


def dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class FakeDNS:
    """Answers MX and A queries for a few names; everything else NXDOMAIN."""

    def __init__(self, mx, a):
        self.mx, self.a = mx, a
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                pkt, peer = self.sock.recvfrom(1500)
            except OSError:
                return
            qid = pkt[:2]
            i, labels = 12, []
            while pkt[i]:
                labels.append(pkt[i + 1:i + 1 + pkt[i]].decode())
                i += 1 + pkt[i]
            qname = ".".join(labels).lower()
            qtype = struct.unpack("!H", pkt[i + 1:i + 3])[0]
            question = pkt[12:i + 5]
            self.queries.append((qname, qtype))
            answers = []
            if qtype == 15 and qname in self.mx:
                rd = struct.pack("!H", 10) + dns_name(self.mx[qname])
                answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 60, len(rd)) + rd)
            if qtype == 1 and qname in self.a:
                rd = socket.inet_aton(self.a[qname])
                answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, len(rd)) + rd)
            known = qname in self.mx or qname in self.a
            rcode = 0 if known else 3
            hdr = qid + struct.pack("!HHHHH", 0x8180 | rcode, 1, len(answers), 0, 0)
            self.sock.sendto(hdr + question + b"".join(answers), peer)

    def close(self):
        self.sock.close()


@pytest.mark.skipif(not IS_ROOT, reason="MX delivery goes to port 25")
def test_mx_lookup_through_a_fake_dns_server(lab, daemon, fake_smtp, monkeypatch):
    try:
        fake = fake_smtp(host="127.0.0.2", port=25)
    except OSError as e:
        pytest.skip(f"cannot bind 127.0.0.2:25: {e}")
    dns = FakeDNS(mx={"mx-test.example": "mail.mx-test.example"},
                  a={"mail.mx-test.example": "127.0.0.2"})
    conf = lab.dir / "resolv.conf"
    conf.write_text(f"nameserver 127.0.0.1:{dns.port}\n")
    monkeypatch.setenv("CLASSICD_RESOLV_CONF", str(conf))
    try:
        a = smtpd(daemon, lab, "a")
        send(a.port, "demo@a.test", ["user@mx-test.example"], message("via mx"))
        assert wait_for(lambda: fake.messages), a.log()
        assert ("mx-test.example", 15) in dns.queries
        # A domain that does not exist bounces at once.
        send(a.port, "demo@a.test", ["user@nx.example"], message("nowhere"))
        msgs = wait_for(lambda: maildir_messages(lab.home), timeout=15)
        assert msgs, a.log()
        _, status, _ = dsn_parts(msgs[0])
        assert "Action: failed" in status and "5.1.2" in status
    finally:
        dns.close()
