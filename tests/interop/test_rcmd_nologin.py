"""/etc/nologin refuses logins other than root's, for rshd and rlogind.
The daemons run in a private mount namespace whose /etc is a copy with a
nologin file, so the machine's own logins are never blocked."""

import shutil
import subprocess

import pytest

from conftest import IS_ROOT, binary, free_port, need, wait_port
from rcmd_helpers import connect_reserved, recv_all, recv_until, write_rhosts

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="mount namespaces, reserved ports")


def start_with_nologin(lab, name, text):
    unshare = need("unshare")
    etc = lab.dir / "etc-copy"
    etc.mkdir()
    port = free_port()
    script = (f"mount -t tmpfs tmpfs {etc} && cp -a /etc/. {etc}/ && "
              f"printf '{text}' > {etc}/nologin && mount --bind {etc} /etc && "
              f"exec {binary(name)} -F -o listen=127.0.0.1:{port} -o log=stderr "
              f"-o passwd_file={lab.passwd_file} -o hosts_equiv={lab.dir}/equiv")
    log = open(lab.dir / f"{name}.log", "w")
    p = subprocess.Popen([unshare, "-m", "--propagation", "private", "sh", "-c", script],
                         stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc=p)
    return p, port


@pytest.mark.parametrize("name", ["rshd", "rlogind"])
def test_nologin_refuses_accounts(lab, name):
    write_rhosts(lab.home, "+ +\n")
    p, port = start_with_nologin(lab, name, "Down for maintenance.\\n")
    try:
        s = connect_reserved(port)
        if name == "rshd":
            s.sendall(b"\0root\0demo\0echo in\0")
            assert recv_all(s) == b"\x01Logins currently disabled.\n"
        else:
            s.sendall(b"\0root\0demo\0xterm\0")
            out = recv_all(s)
            assert out.startswith(b"\0") and b"Down for maintenance.\r\n" in out, out
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert "nologin exists" in (lab.dir / f"{name}.log").read_text()
