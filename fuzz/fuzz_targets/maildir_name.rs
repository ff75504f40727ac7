//! Maildir file names (UID, size, flags) and the name of a seen message:
//! see `mail::fuzz_maildir_name` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::fuzz_maildir_name(data));
