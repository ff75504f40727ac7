//! nntp_article: see `classicd::nntp::article::fuzz_article` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::nntp::article::fuzz_article(data));
