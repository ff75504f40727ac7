//! smtpd's privileged path codec (dialogue -> monitor requests, answers):
//! what decodes re-encodes to the same bytes and decodes to the same; an
//! EXPN list too long for one message is cut, never altered.
#![no_main]
use classicd::smtp::aliases::Resolution;
use classicd::smtp::delivery::{Request, Response};

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
        let again = Response::decode(&bytes).expect("an encoded response decodes");
        match (&r, &again) {
            (
                Response::Resolution(Resolution::Targets(all), a),
                Response::Resolution(Resolution::Targets(cut), b),
            ) if cut.len() < all.len() => {
                assert_eq!(a, b);
                assert_eq!(&all[..cut.len()], &cut[..]);
            }
            _ => {
                assert_eq!(bytes, msg, "{r:?} has another encoding");
                assert_eq!(again, r);
            }
        }
    }
});
