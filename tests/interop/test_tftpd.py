"""tftpd with real clients (tftp-hpa, curl, atftp), standalone and in inetd
`wait` mode, where the runtime hands the bound UDP socket to the session."""

import os
import socket
import struct
import subprocess

import pytest

from conftest import IS_ROOT, Xinetd, binary, need, need_reference


@pytest.fixture
def tree(lab):
    root = lab.mkdir("tftp", owned=False)
    (root / "big.bin").write_bytes(os.urandom(3_000_000))
    (root / "text.txt").write_bytes(b"one\ntwo\r\nthree\n")
    up = lab.mkdir("tftp/up")
    os.chmod(up, 0o777)
    outside = lab.dir / "secret.txt"
    outside.write_text("not for tftp\n")
    os.symlink(outside, root / "link-out")
    return root


def tftp_get(port, name, dest, mode="binary", extra=()):
    tftp = need("tftp")
    return subprocess.run([tftp, "127.0.0.1", str(port), "-m", mode, *extra, "-c", "get", name, str(dest)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("mode", ["standalone", "inetd"])
def test_get_put_with_tftp_hpa(mode, lab, tree, daemon):
    d = daemon("tftpd", f"root={tree}", "create=yes", udp=True, mode=mode)
    got = lab.dir / "got.bin"
    r = tftp_get(d.port, "big.bin", got)
    assert r.returncode == 0, r.stdout + r.stderr
    assert got.read_bytes() == (tree / "big.bin").read_bytes()
    src = lab.dir / "upload.bin"
    src.write_bytes(os.urandom(200_001))
    r = subprocess.run([need("tftp"), "127.0.0.1", str(d.port), "-m", "binary", "-c", "put", str(src), "up/new.bin"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tree / "up" / "new.bin").read_bytes() == src.read_bytes()
    # No temporary file is left behind.
    assert sorted(p.name for p in (tree / "up").iterdir()) == ["new.bin"]


def test_netascii_converts_line_ends(lab, tree, daemon):
    d = daemon("tftpd", f"root={tree}", udp=True)
    # Raw protocol: the wire form is CR LF for LF.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(b"\x00\x01text.txt\x00netascii\x00", ("127.0.0.1", d.port))
    data, peer = s.recvfrom(1024)
    assert data[:4] == b"\x00\x03\x00\x01"
    assert data[4:] == b"one\r\ntwo\r\0\r\nthree\r\n"
    s.sendto(b"\x00\x04\x00\x01", peer)
    s.close()
    got = lab.dir / "t.txt"
    assert tftp_get(d.port, "text.txt", got, mode="netascii").returncode == 0
    assert got.read_bytes() == b"one\ntwo\r\nthree\n"


def test_curl_and_atftp_with_options(lab, tree, daemon):
    d = daemon("tftpd", f"root={tree}", "max_windowsize=16", udp=True)
    curl = need("curl")
    out = lab.dir / "c.bin"
    r = subprocess.run([curl, "-sS", "--tftp-blksize", "1428", f"tftp://127.0.0.1:{d.port}/big.bin", "-o", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (tree / "big.bin").read_bytes()
    atftp = need("atftp")
    out2 = lab.dir / "a.bin"
    r = subprocess.run([atftp, "--option", "blksize 8192", "--option", "windowsize 64", "--option", "tsize 0",
                        "-g", "-r", "big.bin", "-l", str(out2), "127.0.0.1", str(d.port)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out2.read_bytes() == (tree / "big.bin").read_bytes()


def test_refusals(lab, tree, daemon):
    d = daemon("tftpd", f"root={tree}", udp=True)
    for name, code in [("../secret.txt", 1), ("/etc/passwd", 1), ("link-out", 2), ("missing", 1)]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(b"\x00\x01" + name.encode() + b"\x00octet\x00", ("127.0.0.1", d.port))
        data, _ = s.recvfrom(1024)
        op, err = struct.unpack("!HH", data[:4])
        assert op == 5, (name, data)
        assert err in (code, 1, 2), (name, data)
        s.close()
    # create = no: a write request for a new file is refused.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(b"\x00\x02up/x.bin\x00octet\x00", ("127.0.0.1", d.port))
    data, _ = s.recvfrom(1024)
    assert data[:4] == b"\x00\x05\x00\x02"
    # Garbage gets an error, and the server goes on.
    s.sendto(b"\x00\x01\xff\xfe", ("127.0.0.1", d.port))
    data, _ = s.recvfrom(1024)
    assert data[:2] == b"\x00\x05"
    s.close()
    got = lab.dir / "ok.bin"
    assert tftp_get(d.port, "big.bin", got).returncode == 0
    assert d.alive()


def test_xinetd_udp_wait(lab, tree):
    with Xinetd(lab, binary("tftpd"), f"-o root={tree}", udp=True) as x:
        got = lab.dir / "x.bin"
        r = tftp_get(x.port, "big.bin", got)
        assert r.returncode == 0, r.stdout + r.stderr
        assert got.read_bytes() == (tree / "big.bin").read_bytes()


def test_same_scenario_against_tftpd_hpa(lab, tree):
    """The reference daemon passes the get scenario too: the test is right."""
    import shutil
    import time
    from conftest import free_port
    ref = need_reference(shutil.which("in.tftpd") or "/usr/sbin/in.tftpd", "tftpd-hpa")
    port = free_port(socket.SOCK_DGRAM)
    user = ["-u", "root"] if IS_ROOT else []
    p = subprocess.Popen([ref, "-L", "-s", str(tree), "-a", f"127.0.0.1:{port}", *user],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        got = lab.dir / "ref.bin"
        r = tftp_get(port, "big.bin", got)
        assert r.returncode == 0, r.stdout + r.stderr
        assert got.read_bytes() == (tree / "big.bin").read_bytes()
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_transfer_limit_and_no_truncation_without_data(lab, tree, daemon):
    target = tree / "up" / "keep.bin"
    target.write_bytes(b"precious")
    os.chmod(target, 0o666)
    d = daemon("tftpd", f"root={tree}", "max_sessions=1", udp=True)
    # A write request that never sends data (as a spoofed one would not).
    w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    w.settimeout(5)
    w.sendto(b"\x00\x02up/keep.bin\x00octet\x00", ("127.0.0.1", d.port))
    data, _ = w.recvfrom(1024)
    assert data == b"\x00\x04\x00\x00"
    assert target.read_bytes() == b"precious"
    # While it is pending, a second transfer is refused: the limit holds.
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.settimeout(5)
    r.sendto(b"\x00\x01big.bin\x00octet\x00", ("127.0.0.1", d.port))
    data, _ = r.recvfrom(1024)
    assert data[:4] == b"\x00\x05\x00\x00" and b"busy" in data
    # The abandoned upload times out and changes nothing.
    import time
    time.sleep(8)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in (tree / "up").iterdir()) == ["keep.bin"]
    got = lab.dir / "after.bin"
    assert tftp_get(d.port, "big.bin", got).returncode == 0
