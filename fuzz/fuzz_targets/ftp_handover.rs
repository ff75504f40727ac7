//! ftpd's login handover (pre-login process -> account's process): what
//! decodes re-encodes to the same bytes and decodes again to the same.
#![no_main]
use classicd::ftp::handover::Handover;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(h) = Handover::decode(data) {
        let bytes = h.encode();
        assert_eq!(bytes, data, "{h:?} has another encoding");
        assert_eq!(Handover::decode(&bytes), Some(h));
    }
});
