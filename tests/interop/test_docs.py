"""Every configuration key a daemon accepts is documented, and every daemon
has its man page and sample configuration (which `-t` accepts)."""

import re
import subprocess

import pytest

from conftest import BIN, ROOT

DAEMONS = sorted(p.stem for p in (ROOT / "src" / "bin").glob("*.rs"))


def keys(name):
    r = subprocess.run([str(BIN / name), "-t"], capture_output=True, text=True, check=True)
    return [line.split(" = ")[0] for line in r.stdout.splitlines()]


def documented(text):
    # .B key, .BR key ", " other, .TP lines: any bold mention counts.
    words = set()
    for line in text.splitlines():
        if line.startswith((".B ", ".BR ", ".BI ", ".IR ")):
            words.update(re.findall(r"[a-z_0-9]+", line))
    return words


@pytest.mark.parametrize("name", DAEMONS)
def test_every_key_is_documented(name):
    text = (ROOT / "man" / "classicd.conf.5").read_text()
    page = ROOT / "man" / f"{name}.8"
    assert page.exists(), f"man/{name}.8 is missing"
    known = documented(text) | documented(page.read_text())
    missing = [k for k in keys(name) if k not in known]
    assert not missing, f"{name}: undocumented keys {missing}"


@pytest.mark.parametrize("name", DAEMONS)
def test_sample_configuration_is_valid(name):
    sample = ROOT / "etc" / f"{name}.conf"
    assert sample.exists(), f"etc/{name}.conf is missing"
    r = subprocess.run([str(BIN / name), "-t", "-f", str(sample)], capture_output=True, text=True)
    # Valid syntax and keys; a sample may name files this machine lacks.
    assert r.returncode in (0, 1), r.stderr
    assert "unknown key" not in r.stderr
