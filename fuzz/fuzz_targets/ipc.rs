//! The monitor channel's codec (every request the unprivileged side sends
//! to root, every answer back): what decodes re-encodes to the same bytes
//! and decodes to the same message. The first byte picks the direction.
#![no_main]
use classicd::runtime::session::ipc::{Request, Response};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&dir, msg)) = data.split_first() else {
        return;
    };
    if dir & 1 == 0 {
        if let Ok(r) = Request::decode(msg) {
            let bytes = r.encode();
            assert_eq!(bytes, msg, "{r:?} has another encoding");
            assert_eq!(Request::decode(&bytes), Ok(r));
        }
    } else if let Ok(r) = Response::decode(msg) {
        let bytes = r.encode();
        assert_eq!(bytes, msg, "{r:?} has another encoding");
        assert_eq!(Response::decode(&bytes), Ok(r));
    }
});
