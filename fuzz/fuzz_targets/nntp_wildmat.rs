//! nntp_wildmat: see `classicd::nntp::wildmat::fuzz_wildmat` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::nntp::wildmat::fuzz_wildmat(data));
