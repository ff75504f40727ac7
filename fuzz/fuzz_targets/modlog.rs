//! modlog: see `classicd::mail::store::modlog::fuzz_modlog` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::mail::store::modlog::fuzz_modlog(data));
