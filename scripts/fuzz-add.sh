#!/bin/sh
# Add a cargo-fuzz target for a library entry point `pub fn NAME(data: &[u8])`
# that panics when an invariant breaks:
#   scripts/fuzz-add.sh telnet classicd::telnet::fuzz_telnet
# creates fuzz/fuzz_targets/telnet.rs, its [[bin]] in fuzz/Cargo.toml and
# fuzz/corpus/telnet/ (put a few real inputs there). See HACKING.md, Fuzzing.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 TARGET crate::path::to::fuzz_fn" >&2; exit 2; }
name=$1 entry=$2
cd "$(dirname "$0")/../fuzz"
case $name in *[!a-z0-9_]*) echo "$0: target names are [a-z0-9_]" >&2; exit 2 ;; esac
[ -e "fuzz_targets/$name.rs" ] && { echo "$0: fuzz_targets/$name.rs exists" >&2; exit 1; }
cat > "fuzz_targets/$name.rs" <<RS
//! $name: see \`$entry\` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| $entry(data));
RS
printf '\n[[bin]]\nname = "%s"\npath = "fuzz_targets/%s.rs"\ntest = false\ndoc = false\nbench = false\n' \
    "$name" "$name" >> Cargo.toml
mkdir -p "corpus/$name"
echo "fuzz/fuzz_targets/$name.rs added; put seeds in fuzz/corpus/$name/, then"
echo "  make fuzz FUZZ_TARGETS=$name FUZZ_RUNS=10000000"
