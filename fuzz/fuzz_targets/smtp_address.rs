//! RFC 5321 paths and mailboxes, and RFC 3461 xtext. A mailbox written
//! back as `local@domain` parses to the same mailbox; xtext decodes what it
//! encodes.
#![no_main]
use classicd::smtp::address::{self, Path};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((inner, _params)) = address::split_path(s) {
        if let Ok(Path::Mailbox(m)) = address::parse_path(inner) {
            let written = m.address();
            assert_eq!(
                address::parse_mailbox(&written),
                Ok(m.clone()),
                "{written:?}"
            );
            let _ = (m.local_unquoted(), m.is_utf8());
        }
    }
    if let Ok(m) = address::parse_mailbox(s) {
        assert_eq!(address::parse_mailbox(&m.address()), Ok(m));
    }
    let _ = address::valid_domain(s);
    let _ = address::unquote(s);
    let encoded = address::xtext_encode(s);
    assert!(encoded
        .bytes()
        .all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
    assert_eq!(address::xtext_decode(&encoded).as_deref(), Some(s));
    if let Some(d) = address::xtext_decode(s) {
        assert_eq!(address::xtext_decode(&address::xtext_encode(&d)), Some(d));
    }
});
