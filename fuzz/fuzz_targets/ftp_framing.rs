//! ftp_framing: see `classicd::ftp::framing::fuzz_framing` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::ftp::framing::fuzz_framing(data));
