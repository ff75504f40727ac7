//! viewcache: see `classicd::mail::store::folder::fuzz_viewcache` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::store::folder::fuzz_viewcache(data));
