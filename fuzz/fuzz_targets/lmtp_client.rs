//! lmtp_client: see `classicd::smtp::queue::lmtp::fuzz_lmtp_client` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::smtp::queue::lmtp::fuzz_lmtp_client(data));
