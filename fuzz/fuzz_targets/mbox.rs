//! mbox files as pop3d and imapd read them, and mboxrd quoting: see
//! `mail::fuzz_mbox` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::fuzz_mbox(data));
