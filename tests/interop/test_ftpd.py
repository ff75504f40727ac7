"""ftpd driven by real clients: Python ftplib (passive, active, IPv6 EPSV and
EPRT, FTP_TLS with PROT P), curl, lftp, the Debian ftp client and xinetd;
plus the security rules (bounce, foreign passive connections, jail escapes,
anonymous confinement) and bad input."""

import ftplib
import io
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from conftest import IS_ROOT, binary, descendants, free_port, need, need_reference, wait_port


def content(n, seed=7):
    """Deterministic bytes with every value, NULs, CRs and LFs among them."""
    block = bytes((i * seed + i // 256) % 256 for i in range(65536))
    return (block * (n // len(block) + 1))[:n]


def put(lab, rel, data):
    p = lab.home / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    lab.chown_tree(lab.home)
    return p


def start(daemon, *opts, **kw):
    return daemon("ftpd", "check_shell=no", *opts, **kw)


def login(d, user="demo", password="demo", host=None, cls=ftplib.FTP, **kw):
    f = cls(**kw)
    f.connect(host or d.host, d.port, timeout=20)
    f.login(user, password)
    return f


def retr(f, path, rest=None):
    b = io.BytesIO()
    f.retrbinary(f"RETR {path}", b.write, rest=rest)
    return b.getvalue()


def anon_tree(lab):
    root = lab.dir / "anon"
    (root / "pub").mkdir(parents=True)
    (root / "incoming").mkdir()
    (root / "pub" / "readme.txt").write_text("anonymous content\n")
    (lab.dir / "secret.txt").write_text("outside the root\n")
    os.symlink(lab.dir / "secret.txt", root / "pub" / "escape")
    os.chmod(root / "incoming", 0o777)
    return root


# ---------------------------------------------------------------- ftplib


def test_ftplib_passive_session(lab, daemon):
    data = content(3_000_000)
    put(lab, "files/big.bin", data)
    put(lab, "files/notes.txt", b"one\ntwo\n")
    d = start(daemon)
    f = login(d)
    assert f.pwd() == str(lab.home)
    f.cwd("files")
    assert f.pwd() == str(lab.home / "files")
    assert sorted(f.nlst()) == ["big.bin", "notes.txt"]
    lines = []
    f.retrlines("LIST", lines.append)
    assert len(lines) == 2
    assert re.match(r"^-rw-r--r-- +1 +\S+ +\S+ +3000000 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) big\.bin$", lines[0]), lines
    assert retr(f, "big.bin") == data
    assert f.size("big.bin") == 3_000_000
    assert re.match(r"^213 \d{14}$", f.sendcmd("MDTM big.bin"))
    facts = dict(f.mlsd())
    assert facts["big.bin"]["type"] == "file" and facts["big.bin"]["size"] == "3000000"
    assert "r" in facts["big.bin"]["perm"] and re.match(r"^\d{14}$", facts["big.bin"]["modify"])
    assert f.sendcmd("MLST notes.txt").startswith("250-")
    # Upload, resume, append, rename, delete, directories.
    up = content(1_500_000, seed=13)
    f.storbinary("STOR up.bin", io.BytesIO(up))
    assert (lab.home / "files" / "up.bin").read_bytes() == up
    assert retr(f, "up.bin", rest=1_000_000) == up[1_000_000:]
    f.storbinary("STOR part.bin", io.BytesIO(up[:700_000]))
    f.storbinary("STOR part.bin", io.BytesIO(up[700_000:]), rest=700_000)
    assert (lab.home / "files" / "part.bin").read_bytes() == up
    f.storbinary("APPE part.bin", io.BytesIO(b"tail"))
    assert (lab.home / "files" / "part.bin").read_bytes() == up + b"tail"
    resp = f.sendcmd("TYPE I")
    assert resp.startswith("200")
    conn, _ = f.ntransfercmd("STOU")
    conn.sendall(b"unique")
    conn.close()
    assert f.voidresp().startswith("226")
    f.rename("up.bin", "moved.bin")
    assert (lab.home / "files" / "moved.bin").exists()
    f.delete("moved.bin")
    assert f.mkd("sub") == str(lab.home / "files" / "sub")
    f.cwd("sub")
    f.cwd("..")
    f.sendcmd("CDUP")
    assert f.pwd() == str(lab.home)
    f.rmd("files/sub")
    assert not (lab.home / "files" / "sub").exists()
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.cwd("nonexistent")
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr(f, "files/nonexistent")
    assert f.sendcmd("SYST") == "215 UNIX Type: L8"
    feat = f.sendcmd("FEAT")
    for x in ("EPSV", "MLST type*;size*;modify*;perm*;unique*;", "REST STREAM", "SIZE", "UTF8"):
        assert x in feat
    assert f.sendcmd("OPTS UTF8 ON").startswith("200")
    assert f.sendcmd("NOOP").startswith("200")
    assert f.sendcmd("STAT").startswith("211-")
    assert "notes.txt" in f.sendcmd("STAT files")
    assert f.sendcmd("SITE CHMOD 600 files/notes.txt").startswith("200")
    assert (lab.home / "files" / "notes.txt").stat().st_mode & 0o777 == 0o600
    assert f.sendcmd("SITE UMASK 077").startswith("200")
    f.storbinary("STOR files/private.bin", io.BytesIO(b"x"))
    assert (lab.home / "files" / "private.bin").stat().st_mode & 0o777 == 0o600
    assert f.sendcmd("HELP").startswith("214")
    assert f.sendcmd("MFMT 20200102030405 files/notes.txt") == "213 Modify=20200102030405; " + str(lab.home / "files" / "notes.txt")
    assert f.sendcmd("MDTM files/notes.txt") == "213 20200102030405"
    f.quit()
    assert re.search(r"RETR \S*/files/big\.bin 3000000 bytes", d.log())
    assert "PASS demo" not in d.log()


def test_ascii_mode_converts_line_endings(lab, daemon):
    put(lab, "text.txt", b"a\nb\nc\n")
    d = start(daemon)
    f = login(d)
    lines = []
    f.sendcmd("TYPE A")
    conn = f.transfercmd("RETR text.txt")
    raw = b""
    while chunk := conn.recv(4096):
        raw += chunk
    conn.close()
    f.voidresp()
    assert raw == b"a\r\nb\r\nc\r\n"
    f.storlines("STOR back.txt", io.BytesIO(b"x\r\ny\r\n"))
    assert (lab.home / "back.txt").read_bytes() == b"x\ny\n"
    f.retrlines("RETR text.txt", lines.append)
    assert lines == ["a", "b", "c"]
    # TYPE I is byte-exact.
    blob = b"\r\n\n\r\x00\xff" * 1000
    f.storbinary("STOR blob", io.BytesIO(blob))
    assert (lab.home / "blob").read_bytes() == blob
    assert retr(f, "blob") == blob
    f.quit()


def test_ftplib_active_mode(lab, daemon):
    data = content(2_000_000)
    put(lab, "a.bin", data)
    d = start(daemon)
    f = login(d)
    f.set_pasv(False)
    assert retr(f, "a.bin") == data
    f.storbinary("STOR b.bin", io.BytesIO(data))
    assert (lab.home / "b.bin").read_bytes() == data
    assert "a.bin" in f.nlst()
    f.quit()


def active_retr(f, name):
    """RETR over an active (PORT) data connection: the data and the
    address it came from."""
    with socket.create_server(("127.0.0.1", 0)) as ls:
        port = ls.getsockname()[1]
        f.sendcmd("PORT 127,0,0,1,%d,%d" % (port >> 8, port & 255))
        f.putcmd(f"RETR {name}")
        c, peer = ls.accept()
    assert f.getresp().startswith("150")
    got = b""
    with c:
        while chunk := c.recv(65536):
            got += chunk
    assert f.voidresp().startswith("226")
    return got, peer


def test_active_mode_source_port(lab, daemon):
    """Active data connections come from the control port minus one."""
    put(lab, "a.bin", b"x" * 1000)
    for _ in range(50):
        port = free_port()
        try:
            socket.create_server(("127.0.0.1", port - 1)).close()
            break
        except OSError:
            continue
    d = start(daemon, port=port)
    f = login(d)
    got, peer = active_retr(f, "a.bin")
    assert got == b"x" * 1000
    # Not on port 21: from the control port minus one (bound by the session
    # itself, being unprivileged; port 20 would come from the root monitor).
    assert peer[1] == d.port - 1, peer
    f.quit()


def test_port_20_through_the_root_monitor(lab, daemon):
    """On port 21, as root: active connections come from port 20, made by the
    session's root monitor while the session runs as the lab account."""
    if not IS_ROOT:
        pytest.skip("needs root")
    try:
        socket.create_server(("127.0.0.1", 21)).close()
        socket.create_server(("127.0.0.1", 20)).close()
    except OSError:
        pytest.skip("port 21 or 20 is busy")
    put(lab, "p20.bin", b"z" * 5000)
    d = start(daemon, port=21)
    for _ in range(2):
        f = login(d)
        got, peer = active_retr(f, "p20.bin")
        assert got == b"z" * 5000 and peer[1] == 20, peer
        # The session itself (below its monitor) runs as the lab account.
        uids = {os.stat(f"/proc/{pid}").st_uid for pid in descendants(d.pid, depth=2)}
        assert uids == {lab.uid}, uids
        f.quit()


def test_ipv6_epsv_and_eprt(lab, daemon):
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    data = content(500_000)
    put(lab, "six.bin", data)
    d = start(daemon, host="::1")
    f = login(d, host="::1")
    assert f.af == socket.AF_INET6
    assert retr(f, "six.bin") == data  # EPSV
    f.set_pasv(False)
    assert retr(f, "six.bin") == data  # EPRT |2|::1|port|
    with pytest.raises(ftplib.error_perm, match="^500"):
        f.sendcmd("PASV")
    with pytest.raises(ftplib.error_perm, match="^522"):
        f.sendcmd("EPRT |1|127.0.0.1|5000|")
    f.quit()


def test_epsv_all_refuses_port(lab, daemon):
    d = start(daemon)
    f = login(d)
    assert f.sendcmd("EPSV ALL").startswith("200")
    with pytest.raises(ftplib.error_perm, match="^503"):
        f.sendcmd("PORT 127,0,0,1,200,10")
    with pytest.raises(ftplib.error_perm, match="^503"):
        f.sendcmd("PASV")
    assert f.sendcmd("EPSV").startswith("229")
    f.quit()


def test_tls_prot_p(lab, daemon, tls_files):
    import ssl

    cert, key = tls_files
    data = content(1_000_000)
    put(lab, "secret.bin", data)
    d = start(daemon, f"tls_cert={cert}", f"tls_key={key}")
    ctx = ssl.create_default_context(cafile=str(cert))
    f = ftplib.FTP_TLS(context=ctx)
    f.connect("127.0.0.1", d.port, timeout=20)
    assert "AUTH TLS" in f.sendcmd("FEAT")
    f.auth()
    f.login("demo", "demo")
    f.prot_p()
    assert retr(f, "secret.bin") == data
    f.storbinary("STOR up.bin", io.BytesIO(data))
    assert (lab.home / "up.bin").read_bytes() == data
    assert "secret.bin" in f.nlst()
    lines = []
    f.retrlines("LIST", lines.append)
    assert any("secret.bin" in l for l in lines)
    f.prot_c()
    assert retr(f, "secret.bin") == data
    f.quit()


def test_no_auth_tls_without_certificate(lab, daemon):
    d = start(daemon)
    f = ftplib.FTP()
    f.connect("127.0.0.1", d.port, timeout=20)
    assert "AUTH TLS" not in f.sendcmd("FEAT")
    with pytest.raises(ftplib.error_perm, match="^502"):
        f.sendcmd("AUTH TLS")
    f.quit()


# ---------------------------------------------------------------- login


def test_login_replies_and_attempts(lab, daemon):
    d = start(daemon, "login_attempts=2")
    f = ftplib.FTP()
    f.connect("127.0.0.1", d.port, timeout=20)
    assert f.sendcmd("USER demo").startswith("331")
    with pytest.raises(ftplib.error_perm, match="^530"):
        f.sendcmd("PASS wrong")
    with pytest.raises(ftplib.error_perm, match="^530"):
        f.sendcmd("PWD")
    with pytest.raises(ftplib.error_perm, match="^503"):
        f.sendcmd("PASS demo")
    f.sendcmd("USER nosuchuser")
    with pytest.raises(ftplib.error_perm, match="^530"):
        f.sendcmd("PASS x")
    # The second failure closed the connection.
    with pytest.raises((EOFError, OSError)):
        f.sendcmd("NOOP")
    f = login(d)
    assert f.sendcmd("PASS demo").startswith("230")
    f.quit()
    assert "login failed" in d.log()


def test_ftpusers_and_shell_checks(lab, daemon):
    ftpusers = lab.dir / "ftpusers"
    ftpusers.write_text("# comment\nroot\ndemo\n")
    d = start(daemon, f"ftpusers_file={ftpusers}")
    with pytest.raises(ftplib.error_perm, match="^530"):
        login(d)
    lab.add_user("shelly", "pw")
    with open(lab.passwd_file) as fh:
        text = fh.read().replace(":/bin/sh\n", ":/bin/sh\n").replace(
            f"{lab.users['shelly']}:/bin/sh", f"{lab.users['shelly']}:/usr/sbin/nologin")
    lab.passwd_file.write_text(text)
    d2 = daemon("ftpd", "check_shell=yes")
    with pytest.raises(ftplib.error_perm, match="^530"):
        login(d2, "shelly", "pw")
    f = login(d2)  # /bin/sh is in /etc/shells
    f.quit()


def test_anonymous_confinement(lab, daemon):
    root = anon_tree(lab)
    d = start(daemon, "anonymous=yes", f"anon_root={root}", "anon_upload_dir=incoming")
    f = login(d, "anonymous", "guest@example.org")
    assert f.pwd() == "/"
    assert sorted(f.nlst()) == ["incoming", "pub"]
    assert retr(f, "pub/readme.txt") == b"anonymous content\n"
    for path in ("../secret.txt", "/../secret.txt", "pub/escape", str(lab.dir / "secret.txt")):
        with pytest.raises(ftplib.error_perm, match="^550"):
            retr(f, path)
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.storbinary("STOR pub/new.txt", io.BytesIO(b"no"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.mkd("newdir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.delete("pub/readme.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.rename("pub/readme.txt", "pub/x")
    f.storbinary("STOR incoming/drop.bin", io.BytesIO(b"dropped"))
    assert (root / "incoming" / "drop.bin").read_bytes() == b"dropped"
    # The upload directory takes files but does not give them back.
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.storbinary("STOR incoming/drop.bin", io.BytesIO(b"overwrite"))
    assert (root / "incoming" / "drop.bin").read_bytes() == b"dropped"
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr(f, "incoming/drop.bin")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.nlst("incoming")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.size("incoming/drop.bin")
    f.cwd("incoming")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.retrlines("LIST", lambda l: None)
    f.quit()
    assert "anonymous login" in d.log()
    # Anonymous logins are off unless asked for.
    d2 = start(daemon, f"anon_root={root}")
    with pytest.raises(ftplib.error_perm, match="^530"):
        login(d2, "anonymous", "x")


def test_local_user_jail_and_chroot(lab, daemon):
    (lab.dir / "outside.txt").write_text("outside\n")
    put(lab, "in.txt", b"inside\n")
    os.symlink(lab.dir / "outside.txt", lab.home / "link-out")
    d = start(daemon, "chroot_users=yes")
    f = login(d)
    assert f.pwd() == "/"
    assert retr(f, "in.txt") == b"inside\n"
    for path in ("../outside.txt", "/../../outside.txt", "link-out", "../../../../etc/passwd"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            retr(f, path)
    f.cwd("../../..")
    assert f.pwd() == "/"
    assert "in.txt" in f.nlst()
    f.quit()


# ---------------------------------------------------------------- security


def raw_session(d):
    s = socket.create_connection((d.host, d.port), timeout=20)
    fh = s.makefile("rb")

    def reply():
        line = fh.readline()
        text = line
        if line[3:4] == b"-":
            code = line[:3]
            while not (line[:3] == code and line[3:4] == b" "):
                line = fh.readline()
                if not line:
                    break
                text += line
        return text.decode(errors="replace")

    def cmd(line):
        s.sendall(line if isinstance(line, bytes) else line.encode() + b"\r\n")
        return reply()

    assert reply().startswith("220")
    return s, cmd, reply


def test_bounce_port_refused(lab, daemon):
    d = start(daemon)
    s, cmd, _ = raw_session(d)
    cmd("USER demo")
    assert cmd("PASS demo").startswith("230")
    assert cmd("PORT 10,1,2,3,200,10").startswith("500")
    assert cmd("PORT 127,0,0,2,200,10").startswith("500")
    assert cmd("PORT 127,0,0,1,0,25").startswith("500")
    assert cmd("EPRT |1|192.0.2.1|2000|").startswith("500")
    assert cmd("EPRT |1|127.0.0.1|21|").startswith("500")
    assert cmd("EPRT |2|::1|2000|").startswith("522")
    assert cmd("RETR x").startswith(("425", "550"))
    s.close()
    d2 = start(daemon, "port_enable=no")
    s, cmd, _ = raw_session(d2)
    cmd("USER demo")
    cmd("PASS demo")
    assert cmd("PORT 127,0,0,1,200,10").startswith("502")
    s.close()


def test_foreign_passive_connection_gets_nothing(lab, daemon):
    put(lab, "data.bin", b"payload" * 1000)
    d = start(daemon)
    s, cmd, reply = raw_session(d)
    cmd("USER demo")
    cmd("PASS demo")
    cmd("TYPE I")
    r = cmd("EPSV")
    port = int(re.search(r"\|\|\|(\d+)\|", r).group(1))
    intruder = socket.socket()
    intruder.bind(("127.0.0.2", 0))
    intruder.settimeout(10)
    intruder.connect(("127.0.0.1", port))
    s.sendall(b"RETR data.bin\r\n")
    time.sleep(0.3)
    good = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert reply().startswith("150")
    try:
        stolen = intruder.recv(65536)
    except (ConnectionResetError, socket.timeout):
        stolen = b""
    assert stolen == b""
    got = b""
    while chunk := good.recv(65536):
        got += chunk
    assert got == b"payload" * 1000
    assert reply().startswith("226")
    assert "refused" in d.log()
    s.close()


def test_abor_while_waiting_for_the_data_connection(lab, daemon):
    put(lab, "w.bin", b"w" * 100)
    d = start(daemon)
    s, cmd, reply = raw_session(d)
    cmd("USER demo")
    cmd("PASS demo")
    assert cmd("EPSV").startswith("229")
    s.sendall(b"RETR w.bin\r\n")
    time.sleep(0.5)
    started = time.time()
    s.sendall(b"ABOR\r\n")
    assert reply().startswith("425")
    assert reply().startswith("225")
    assert time.time() - started < 5
    assert cmd("NOOP").startswith("200")
    s.close()


def test_bad_input_does_not_hurt(lab, daemon):
    d = start(daemon)
    s, cmd, _ = raw_session(d)
    assert cmd(b"X" * 50_000 + b"\r\n").startswith("500")
    assert cmd(b"USER de\0mo\r\n").startswith("501")
    assert cmd(b"\x01\x02\x03\r\n").startswith("500")
    assert cmd("USER demo").startswith("331")
    assert cmd("PASS demo").startswith("230")
    assert cmd(b"RETR a\0b\r\n").startswith("501")
    assert cmd("RETR " + "a" * 3000).startswith("501")
    assert cmd("CWD ../../../../../../../../..").startswith("250")
    assert cmd("PWD").startswith('257 "/"')
    assert cmd("REST -5").startswith("501")
    assert cmd("TYPE X").startswith("501")
    assert cmd("MODE Z").startswith("501")
    assert cmd("RNTO x").startswith("503")
    assert cmd("LIST").startswith("425")
    # Telnet IP and Synch before ABOR, with the DM sent urgent.
    s.sendall(b"\xff\xf4\xff")
    s.send(b"\xf2", socket.MSG_OOB)
    s.sendall(b"ABOR\r\n")
    assert _reply_line(s).startswith("225")
    assert cmd("NOOP").startswith("200")
    s.close()
    f = login(d)
    f.quit()


def _reply_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        buf += c
    return buf.decode(errors="replace")


def test_fifo_and_directory_are_not_files(lab, daemon):
    os.mkfifo(lab.home / "pipe")
    (lab.home / "adir").mkdir()
    lab.chown_tree(lab.home)
    d = start(daemon)
    f = login(d)
    for name in ("pipe", "adir"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            retr(f, name)
        with pytest.raises(ftplib.error_perm, match="^550"):
            f.size(name)
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.delete("adir")
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_client_vanishing_mid_transfer(lab, daemon):
    with open(lab.home / "huge.bin", "wb") as fh:
        fh.truncate(300 * 1024 * 1024)
    lab.chown_tree(lab.home)
    d = start(daemon)
    f = login(d)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR huge.bin")
    conn.recv(65536)
    conn.close()
    f.sock.close()
    f2 = login(d)
    f2.voidcmd("TYPE I")
    conn = f2.transfercmd("STOR partial.bin")
    conn.sendall(b"x" * 100_000)
    conn.close()
    assert f2.voidresp().startswith("226")
    f2.quit()
    time.sleep(0.5)
    f3 = login(d)
    assert "huge.bin" in f3.nlst()
    f3.quit()
    assert d.alive()


def _data_process_rss(d):
    """VmRSS (kB) of the grandchildren of the master: the data processes."""
    out = []
    for line in subprocess.run(["ps", "-eo", "pid=,ppid=,rss="], capture_output=True,
                               text=True).stdout.splitlines():
        pid, ppid, rss = map(int, line.split())
        out.append((pid, ppid, rss))
    sessions = {pid for pid, ppid, _ in out if ppid == d.pid}
    return [rss for pid, ppid, rss in out if ppid in sessions]


def test_memory_stays_constant_for_big_files(lab, daemon):
    size = 1 << 30
    with open(lab.home / "sparse.bin", "wb") as fh:
        fh.truncate(size)
    lab.chown_tree(lab.home)
    d = start(daemon)
    f = login(d)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR sparse.bin")
    buf = bytearray(1 << 20)
    n, peak = 0, 0
    while True:
        k = conn.recv_into(buf)
        if not k:
            break
        n += k
        if n % (64 << 20) < k:
            peak = max([peak, *_data_process_rss(d)])
    conn.close()
    assert f.voidresp().startswith("226")
    assert n == size
    assert 0 < peak < 16 * 1024, peak
    conn = f.transfercmd("STOR big-up.bin")
    chunk = bytes(1 << 20)
    peak = 0
    for i in range(512):
        conn.sendall(chunk)
        if i % 64 == 0:
            peak = max([peak, *_data_process_rss(d)])
    conn.close()
    assert f.voidresp().startswith("226")
    assert (lab.home / "big-up.bin").stat().st_size == 512 << 20
    assert 0 < peak < 16 * 1024, peak
    f.quit()


def test_abor_and_stat_during_transfer(lab, daemon):
    with open(lab.home / "huge.bin", "wb") as fh:
        fh.truncate(500 * 1024 * 1024)
    lab.chown_tree(lab.home)
    d = start(daemon)
    f = login(d)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR huge.bin")
    got = 0
    while got < 1_000_000:
        got += len(conn.recv(65536))
    time.sleep(0.7)
    # The control connection answers while the data process is busy.
    st = f.sendcmd("STAT")
    assert st.startswith("213") and "huge.bin" in st and "bytes so far" in st
    assert f.sendcmd("NOOP").startswith("200")
    resp = f.abort()
    assert resp.startswith("426"), resp
    assert f.getresp().startswith("226")
    conn.close()
    assert f.sendcmd("NOOP").startswith("200")
    assert f.sendcmd("ABOR").startswith("225")
    f.quit()


# ---------------------------------------------------------------- other clients


def test_curl(lab, daemon, tls_files):
    curl = need("curl")
    data = content(2_000_000)
    put(lab, "dl.bin", data)
    up = lab.dir / "up.bin"
    up.write_bytes(content(1_234_567, seed=3))
    cert, key = tls_files
    d = start(daemon, f"tls_cert={cert}", f"tls_key={key}")
    base = f"ftp://demo:demo@127.0.0.1:{d.port}/"
    home = base + "%2F" + str(lab.home).lstrip("/") + "/"

    def run(*args):
        r = subprocess.run([curl, "-sS", "--max-time", "60", *args], capture_output=True, timeout=90)
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout

    assert run(home + "dl.bin") == data
    assert run("-P", "-", home + "dl.bin") == data
    assert run("--disable-epsv", home + "dl.bin") == data
    run("-T", str(up), home + "curl-up.bin")
    assert (lab.home / "curl-up.bin").read_bytes() == up.read_bytes()
    run("-P", "-", "-T", str(up), home + "curl-up2.bin")
    assert (lab.home / "curl-up2.bin").read_bytes() == up.read_bytes()
    listing = run(home).decode()
    assert "dl.bin" in listing and "curl-up.bin" in listing
    names = run("-l", home).decode().split()
    assert "dl.bin" in names
    assert run("-r", "1000-", home + "dl.bin") == data[1000:]
    assert run("--ssl-reqd", "-k", home + "dl.bin") == data
    run("--ssl-reqd", "-k", "-T", str(up), home + "tls-up.bin")
    assert (lab.home / "tls-up.bin").read_bytes() == up.read_bytes()
    assert "dl.bin" in run("--ssl-reqd", "-k", home).decode()


def test_lftp_mirror_and_pget(lab, daemon):
    lftp = need("lftp")
    tree = {"a.txt": b"alpha\n", "sub/b.bin": content(700_000), "sub/deeper/c.bin": content(5000, 5)}
    for rel, data in tree.items():
        put(lab, "remote/" + rel, data)
    big = content(4_000_000, seed=11)
    put(lab, "big.bin", big)
    local = lab.dir / "local"
    local.mkdir()
    upload = lab.dir / "upsrc"
    (upload / "x").mkdir(parents=True)
    (upload / "x" / "y.bin").write_bytes(content(300_000, 17))
    (upload / "top.txt").write_text("top\n")
    d = start(daemon)
    script = (
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; "
        f"cd {lab.home}; mirror remote {local}/remote; mirror -R {upload} uploaded; "
        f"pget -n 4 big.bin -o {lab.dir}/big.copy; quit"
    )
    r = subprocess.run([lftp, "-u", "demo,demo", "-p", str(d.port), "-e", script, "127.0.0.1"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    for rel, data in tree.items():
        assert (local / "remote" / rel).read_bytes() == data, rel
    assert (lab.home / "uploaded" / "x" / "y.bin").read_bytes() == content(300_000, 17)
    assert (lab.home / "uploaded" / "top.txt").read_text() == "top\n"
    # mirror -R keeps modification times (MFMT).
    os_mtime = int((upload / "top.txt").stat().st_mtime)
    assert abs(int((lab.home / "uploaded" / "top.txt").stat().st_mtime) - os_mtime) <= 1
    assert (lab.dir / "big.copy").read_bytes() == big


def test_debian_ftp_client(lab, daemon):
    ftp = need("ftp")
    put(lab, "get.bin", content(200_000))
    put(lab, "text.txt", b"l1\nl2\n")
    put(lab, "m/one.txt", b"1\n")
    put(lab, "m/two.txt", b"2\n")
    work = lab.dir / "work"
    work.mkdir()
    (work / "put.bin").write_bytes(content(150_000, 9))
    (work / "p1.dat").write_bytes(b"p1")
    (work / "p2.dat").write_bytes(b"p2")
    os.chmod(work, 0o777)
    d = start(daemon)
    script = f"""user demo demo
binary
get get.bin
put put.bin
ascii
get text.txt
binary
ls
cd m
lcd {work}/mget
mget *.txt
cd ..
lcd {work}
mput *.dat
passive
get get.bin pget.bin
bye
"""
    (work / "mget").mkdir()
    r = subprocess.run([ftp, "-n", "-v", "-i", "127.0.0.1", str(d.port)], input=script.encode(),
                       cwd=work, capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace")
    assert (work / "get.bin").read_bytes() == content(200_000), out
    assert (lab.home / "put.bin").read_bytes() == content(150_000, 9), out
    assert (work / "text.txt").read_bytes() == b"l1\nl2\n"
    assert (work / "mget" / "one.txt").read_bytes() == b"1\n"
    assert (work / "mget" / "two.txt").read_bytes() == b"2\n"
    assert (lab.home / "p1.dat").read_bytes() == b"p1"
    assert (lab.home / "p2.dat").read_bytes() == b"p2"
    assert (work / "pget.bin").read_bytes() == content(200_000)
    assert "get.bin" in out and "226" in out


def test_inetd_mode(lab, daemon):
    put(lab, "i.txt", b"inetd\n")
    d = start(daemon, mode="inetd")
    f = login(d)
    assert retr(f, "i.txt") == b"inetd\n"
    f.quit()


def test_xinetd(lab):
    xinetd = need("xinetd")
    put(lab, "x.txt", b"via xinetd\n")
    port = free_port()
    conf = lab.dir / "xinetd.conf"
    conf.write_text(f"""
defaults
{{
    instances = 20
}}
service ftp-test
{{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = {"root" if IS_ROOT else os.environ.get("USER", "root")}
    bind        = 127.0.0.1
    port        = {port}
    server      = {binary("ftpd").resolve()}
    server_args = -o passwd_file={lab.passwd_file} -o check_shell=no -o banner=via-xinetd
}}
""")
    p = subprocess.Popen([xinetd, "-dontfork", "-pidfile", str(lab.dir / "x.pid"), "-f", str(conf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        f = ftplib.FTP()
        f.connect("127.0.0.1", port, timeout=20)
        assert "via-xinetd" in f.getwelcome()
        f.login("demo", "demo")
        assert retr(f, "x.txt") == b"via xinetd\n"
        f.set_pasv(False)
        assert retr(f, "x.txt") == b"via xinetd\n"
        f.quit()
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_config_check_lists_ftpd_keys(lab):
    r = subprocess.run([str(binary("ftpd")), "-t", "-o", "anonymous=yes", "-o", "pasv_ports=30000-30100"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for k in ("anonymous = yes", "anon_root = /srv/ftp", "pasv_ports = 30000-30100", "umask = 022",
              "idle_timeout = 300", "check_shell = yes", "port_enable = yes"):
        assert k in r.stdout
    r = subprocess.run([str(binary("ftpd")), "-t", "-o", "pasv_address=not-an-ip"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "pasv_address" in r.stderr


def test_pasv_ports_and_address(lab, daemon):
    low = free_port()
    d = start(daemon, f"pasv_ports={low}-{low + 3}", "pasv_address=127.0.0.1")
    f = login(d)
    for _ in range(3):
        r = f.sendcmd("PASV")
        nums = [int(x) for x in re.search(r"\((\d+(?:,\d+){5})\)", r).group(1).split(",")]
        assert nums[:4] == [127, 0, 0, 1]
        assert low <= nums[4] * 256 + nums[5] <= low + 3
    f.quit()


def test_implicit_tls_and_lftp_tls(lab, daemon, tls_files):
    curl = need("curl")
    lftp = need("lftp")
    cert, key = tls_files
    data = content(800_000)
    put(lab, "t.bin", data)
    d = start(daemon, f"tls_cert={cert}", f"tls_key={key}", listen_key="tls_listen")
    r = subprocess.run([curl, "-sS", "-k", "--max-time", "60",
                        f"ftps://demo:demo@127.0.0.1:{d.port}/%2F{str(lab.home).lstrip('/')}/t.bin"],
                       capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == data
    d2 = start(daemon, f"tls_cert={cert}", f"tls_key={key}")
    script = (
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; "
        f"set net:max-retries 1; set net:timeout 20; cd {lab.home}; get t.bin -o {lab.dir}/t.copy; "
        f"put {lab.dir}/t.copy -o t.back; quit"
    )
    r = subprocess.run([lftp, "-u", "demo,demo", "-p", str(d2.port), "-e", script, "127.0.0.1"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert (lab.dir / "t.copy").read_bytes() == data
    assert (lab.home / "t.back").read_bytes() == data
    assert "reset" not in d2.log()


# ---------------------------------------------------------------- reference


def anonymous_download_scenario(host, port, readme):
    """The same client steps against any anonymous FTP server."""
    f = ftplib.FTP()
    f.connect(host, port, timeout=20)
    assert f.getwelcome().startswith("220")
    f.login("anonymous", "test@example.org")
    assert "pub" in f.nlst()
    f.cwd("pub")
    assert f.size("big.bin") == len(readme)
    assert re.match(r"^213 \d{14}$", f.sendcmd("MDTM big.bin"))
    assert retr(f, "big.bin") == readme
    assert retr(f, "big.bin", rest=12345) == readme[12345:]
    f.set_pasv(False)
    assert retr(f, "big.bin") == readme
    with pytest.raises(ftplib.error_perm, match="^500"):
        f.sendcmd("PORT 192,0,2,1,200,10")
    with pytest.raises(ftplib.error_perm, match="^550"):
        f.storbinary("STOR nope.bin", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        retr(f, "missing.bin")
    f.quit()


def test_anonymous_scenario(lab, daemon):
    root = anon_tree(lab)
    data = content(600_000, 23)
    (root / "pub" / "big.bin").write_bytes(data)
    d = start(daemon, "anonymous=yes", f"anon_root={root}")
    anonymous_download_scenario("127.0.0.1", d.port, data)


def test_anonymous_scenario_against_vsftpd(lab):
    """The scenario above, against vsftpd: proves the test, not ftpd."""
    vsftpd = need_reference(shutil_which("vsftpd") or "/usr/sbin/vsftpd", "vsftpd")
    if not IS_ROOT:
        pytest.skip("vsftpd needs root")
    root = lab.dir / "vsroot"
    (root / "pub").mkdir(parents=True)
    data = content(600_000, 23)
    (root / "pub" / "big.bin").write_bytes(data)
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    port = free_port()
    conf = lab.dir / "vsftpd.conf"
    conf.write_text(f"""listen=YES
listen_address=127.0.0.1
listen_port={port}
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={root}
no_anon_password=YES
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
connect_from_port_20=NO
""")
    os.chmod(lab.dir, 0o755)
    p = subprocess.Popen([vsftpd, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=p)
        anonymous_download_scenario("127.0.0.1", port, data)
    finally:
        p.terminate()
        p.wait(timeout=10)


def shutil_which(name):
    import shutil

    return shutil.which(name)


def test_stou_keeps_a_free_name_and_numbers_a_taken_one(lab, daemon):
    put(lab, "report.txt", b"old")
    d = start(daemon)
    f = login(d)
    f.voidcmd("TYPE I")
    for name, data in (("fresh.txt", b"new"), ("report.txt", b"second")):
        conn, _ = f.ntransfercmd(f"STOU {name}")
        conn.sendall(data)
        conn.close()
        assert f.voidresp().startswith("226")
    assert (lab.home / "fresh.txt").read_bytes() == b"new"
    assert (lab.home / "report.txt").read_bytes() == b"old"
    assert (lab.home / "report.txt.1").read_bytes() == b"second"
    f.quit()


def test_rfc_details_prot_pbsz_chmod_and_rest(lab, daemon, tls_files):
    cert, key = tls_files
    put(lab, "small.bin", b"0123456789")
    d = start(daemon, f"tls_cert={cert}", f"tls_key={key}")
    f = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(cert)))
    f.connect(d.host, d.port, timeout=20)
    f.auth()
    # RFC 4217: PROT before PBSZ is out of order.
    f2 = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(cert)))
    f2.connect(d.host, d.port, timeout=20)
    f2.auth()
    with pytest.raises(ftplib.error_perm, match="^503"):
        f2.sendcmd("PROT P")
    f2.close()
    f.login("demo", "demo")
    f.prot_p()
    # No setuid, setgid or sticky bits from the network.
    for mode in ("4755", "2755", "1777", "6777"):
        with pytest.raises(ftplib.error_perm, match="^550"):
            f.sendcmd(f"SITE CHMOD {mode} small.bin")
    assert (lab.home / "small.bin").stat().st_mode & 0o7000 == 0
    # A restart past the end is refused, not a sparse file of that size.
    f.voidcmd("TYPE I")
    f.sendcmd("REST 1000000000")
    with pytest.raises(ftplib.error_perm, match="^554"):
        f.storbinary("STOR small.bin", io.BytesIO(b"x"))
    assert (lab.home / "small.bin").stat().st_size == 10
    # Within the file it still resumes.
    f.storbinary("STOR small.bin", io.BytesIO(b"AB"), rest=8)
    assert (lab.home / "small.bin").read_bytes() == b"01234567AB"
    f.quit()


def block_decode(wire, records=False):
    """RFC 959 block mode, decoded here independently of ftpd."""
    out, i, eof = bytearray(), 0, False
    while i < len(wire):
        desc, n = wire[i], int.from_bytes(wire[i + 1:i + 3], "big")
        out += wire[i + 3:i + 3 + n]
        i += 3 + n
        if desc & 0x80 and records:
            out += b"\n"
        if desc & 0x40:
            eof = True
    assert eof and i == len(wire)
    return bytes(out)


def compressed_decode(wire, filler=b"\0"):
    out, i, eof = bytearray(), 0, False
    while i < len(wire):
        c = wire[i]
        if c == 0:
            eof = eof or bool(wire[i + 1] & 0x40)
            i += 2
        elif c < 0x80:
            out += wire[i + 1:i + 1 + c]
            i += 1 + c
        elif c < 0xc0:
            out += bytes([wire[i + 1]]) * (c & 0x3f)
            i += 2
        else:
            out += filler * (c & 0x3f)
            i += 1
    assert eof
    return bytes(out)


def raw_retr(f, path):
    conn, _ = f.ntransfercmd(f"RETR {path}")
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    conn.close()
    assert f.voidresp().startswith("226")
    return data


def test_transmission_modes_and_structures(lab, daemon):
    """MODE B and C, STRU R and P, as RFC 959 defines them, checked with
    decoders written here, and framed uploads."""
    data = b"first line\n" + b"\0" * 100 + b"\xff\xfezzzzzzzz\nlast" + bytes(range(256)) * 400
    put(lab, "m.bin", data)
    d = start(daemon)
    f = login(d)
    f.voidcmd("TYPE I")
    f.voidcmd("MODE B")
    assert block_decode(raw_retr(f, "m.bin")) == data
    f.voidcmd("MODE C")
    wire = raw_retr(f, "m.bin")
    assert compressed_decode(wire) == data
    # The 100 zeros went as two filler runs (63 and 37).
    assert b"\xff\xe5" in wire
    # Records are the file's lines (the last one gains its end).
    f.voidcmd("MODE B")
    f.voidcmd("STRU R")
    assert block_decode(raw_retr(f, "m.bin"), records=True) == data + b"\n"
    # Stream mode with records: 0xFF doubled, EOR and EOF marks.
    f.voidcmd("MODE S")
    wire = raw_retr(f, "m.bin")
    assert wire.startswith(b"first line\xff\x01") and wire.endswith(b"\xff\x01\xff\x02")
    # Pages: 4-byte headers, a last page of type 0.
    f.voidcmd("STRU P")
    wire = raw_retr(f, "m.bin")
    assert wire[:4] == bytes([4, 1, 255, 1]) and wire[-4:][2:] == bytes([0, 0])
    assert "MODE: S; STRU: P" in f.sendcmd("STAT")
    # A framed upload is stored unframed; a broken one fails.
    f.voidcmd("STRU F")
    f.voidcmd("MODE B")
    payload = b"uploaded in blocks\n"
    conn, _ = f.ntransfercmd("STOR up.bin")
    conn.sendall(b"\0" + len(payload).to_bytes(2, "big") + payload + b"\x40\0\0")
    conn.close()
    assert f.voidresp().startswith("226")
    assert (lab.home / "up.bin").read_bytes() == payload
    conn, _ = f.ntransfercmd("STOR broken.bin")
    conn.sendall(b"\0\0\x05ab")
    conn.close()
    with pytest.raises(ftplib.error_temp, match="^451"):
        f.voidresp()
    # REST is for stream mode.
    with pytest.raises(ftplib.error_perm, match="^504"):
        f.sendcmd("REST 10")
    f.voidcmd("MODE S")
    f.quit()
