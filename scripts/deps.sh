#!/bin/sh
# Check (and, as root on Debian/Ubuntu, install) what the build or the tests
# need. Otherwise say exactly what to install.
#   scripts/deps.sh build   C headers and libraries the crates link against
#   scripts/deps.sh test    pytest and the real clients the interop suite drives
set -u
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
    python3 -c 'import pytest' 2>/dev/null || add python3-pytest
    for pair in curl:curl lftp:lftp ftp:ftp swaks:swaks xinetd:xinetd fetchmail:fetchmail \
                openssl:openssl s-nail:s-nail mutt:mutt tftp:tftp-hpa atftp:atftp; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || add "$pkg"
    done
fi

[ -z "$missing_pkgs" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing_pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing_pkgs >/dev/null \
        || { echo "apt-get install$missing_pkgs failed" >&2; [ "$what" = build ] && exit 1; }
    exit 0
fi

if [ "$what" = build ]; then
    echo "missing build dependencies. Install them first:" >&2
    echo "  Debian/Ubuntu: apt-get install$missing_pkgs" >&2
    echo "  FreeBSD:       pkg install llvm (PAM and crypt are in base)" >&2
    exit 1
fi
echo "note: the interop suite skips what needs:$missing_pkgs (apt-get install$missing_pkgs)" >&2
if ! python3 -c 'import pytest' 2>/dev/null; then
    python3 -m pip install -q pytest 2>/dev/null || { echo "pytest is required: pip install pytest" >&2; exit 1; }
fi
exit 0
