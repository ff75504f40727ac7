//! telnet: see `classicd::telnet::fuzz_telnet` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::telnet::fuzz_telnet(data));
