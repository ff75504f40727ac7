//! SASL PLAIN and LOGIN payloads and their base64 (smtpd, pop3d, imapd):
//! base64 decodes what it encodes, and re-encoding what decoded decodes to
//! the same bytes.
#![no_main]
use classicd::auth::sasl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let encoded = sasl::b64_encode(data);
    assert_eq!(sasl::b64_decode(&encoded).as_deref(), Some(data));
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(bytes) = sasl::b64_decode(s) {
        assert_eq!(sasl::b64_decode(&sasl::b64_encode(&bytes)), Some(bytes));
    }
    if let Some((authz, user, pass)) = sasl::decode_plain(s) {
        let raw = [authz.as_bytes(), user.as_bytes(), pass.as_bytes()].join(&0u8);
        assert_eq!(
            sasl::decode_plain(&sasl::b64_encode(&raw)),
            Some((authz, user, pass))
        );
    }
    if let Some(t) = sasl::decode_text(s) {
        assert!(!t.contains('\0'));
    }
});
