//! imap: see `classicd::imap::command::fuzz_imap` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::imap::command::fuzz_imap(data));
