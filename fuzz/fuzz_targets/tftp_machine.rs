//! tftpd's transfer state machine: datagrams, timeouts and file results
//! in any order, with its invariants checked by `tftp::machine::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classicd::tftp::machine::fuzz(data));
