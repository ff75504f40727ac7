//! nntp_command: see `classicd::nntp::command::fuzz_command` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::nntp::command::fuzz_command(data));
