//! mbox folders' c-client fields (X-UID, Status, X-Status, X-Keywords,
//! X-IMAPbase): see `mail::fuzz_cclient` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::fuzz_cclient(data));
