//! trust: see `classicd::auth::trust::fuzz_trust` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::auth::trust::fuzz_trust(data));
