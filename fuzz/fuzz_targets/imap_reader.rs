//! imap_reader: see `classicd::imap::reader::fuzz_reader` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::imap::reader::fuzz_reader(data));
