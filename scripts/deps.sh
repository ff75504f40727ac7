#!/bin/sh
# Check (and, as root on Debian/Ubuntu, install) what the build or the tests
# need. Otherwise say exactly what to install.
#   scripts/deps.sh build   C headers and libraries the crates link against
#   scripts/deps.sh test    pytest and the real clients the interop suite drives
#
# pytest must be importable by the interpreter the Makefile runs ($PYTHON,
# default python3), which need not be Debian's (pyenv, a venv): apt's
# python3-pytest serves only Debian's. When that interpreter lacks it, pip
# installs it there, or, where pip may not (an externally managed
# interpreter), into target/interop-venv, which the Makefile then uses.
set -u
PYTHON=${PYTHON:-python3}
VENV=target/interop-venv
what=${1:-build}
missing_pkgs=""
add() { missing_pkgs="$missing_pkgs $1"; }

have_header() { [ -f "/usr/include/$1" ] || [ -f "/usr/local/include/$1" ]; }
have_libclang() {
    [ -n "${LIBCLANG_PATH:-}" ] && return 0
    for f in /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* /usr/local/lib/libclang*.so* \
        /usr/local/llvm*/lib/libclang*.so*; do
        [ -e "$f" ] && return 0
    done
    return 1
}

if [ "$what" = build ]; then
    command -v cc >/dev/null 2>&1 || add gcc
    have_header security/pam_appl.h || add libpam0g-dev
    have_header crypt.h || add libcrypt-dev
    have_libclang || add libclang-dev
else
    command -v python3 >/dev/null 2>&1 && ! python3 -c 'import pytest' 2>/dev/null && add python3-pytest
    for pair in curl:curl lftp:lftp ftp:ftp swaks:swaks xinetd:xinetd fetchmail:fetchmail \
                openssl:openssl s-nail:s-nail mutt:mutt tftp:tftp-hpa atftp:atftp; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || add "$pkg"
    done
fi

# pytest for $PYTHON itself, whatever apt did for Debian's python3.
ensure_pytest() {
    "$PYTHON" -c 'import pytest' 2>/dev/null && return 0
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pytest' 2>/dev/null && return 0
    "$PYTHON" -m pip install -q pytest >/dev/null 2>&1 && "$PYTHON" -c 'import pytest' 2>/dev/null && return 0
    echo "pytest: installing it into $VENV for $PYTHON"
    "$PYTHON" -m venv --system-site-packages "$VENV" >/dev/null 2>&1 \
        && "$VENV/bin/python" -m pip install -q pytest >/dev/null 2>&1 \
        && return 0
    echo "pytest is required for $PYTHON: $PYTHON -m pip install pytest" >&2
    return 1
}

if [ -z "$missing_pkgs" ]; then
    [ "$what" = build ] && exit 0
    ensure_pytest
    exit $?
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing_pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing_pkgs >/dev/null \
        || { echo "apt-get install$missing_pkgs failed" >&2; [ "$what" = build ] && exit 1; }
    [ "$what" = build ] && exit 0
    ensure_pytest
    exit $?
fi

if [ "$what" = build ]; then
    echo "missing build dependencies. Install them first:" >&2
    echo "  Debian/Ubuntu: apt-get install$missing_pkgs" >&2
    echo "  FreeBSD:       pkg install llvm (PAM and crypt are in base)" >&2
    exit 1
fi
echo "note: the interop suite skips what needs:$missing_pkgs (apt-get install$missing_pkgs)" >&2
ensure_pytest
