//! rlogin: see `classicd::rlogin::command::fuzz_rlogin_input` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::rlogin::command::fuzz_rlogin_input(data));
