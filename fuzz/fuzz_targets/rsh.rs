//! rsh: see `classicd::rsh::command::fuzz_rsh_fields` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::rsh::command::fuzz_rsh_fields(data));
