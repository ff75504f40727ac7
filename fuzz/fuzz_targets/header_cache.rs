//! header_cache: see `classicd::mail::store::headers::fuzz_header_cache` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::store::headers::fuzz_header_cache(data));
