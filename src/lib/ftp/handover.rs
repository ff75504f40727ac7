//! What the pre-login process hands to the account's process at login: the
//! little protocol state a client can set before logging in (the name it
//! gave, TLS on the control connection, PROT, OPTS MLST). Everything else
//! needs a login, so it starts afresh in the account's process. Encoded
//! with the monitor channel's bounded codec; decoded by the account's
//! process, which trusts nothing in it beyond its bounds.

use crate::runtime::session::ipc::{Reader, Writer};

const TAG: u8 = b'F';
/// At most this many MLST facts (there are eight).
const MAX_FACTS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    pub user: String,
    pub tls_active: bool,
    pub pbsz: bool,
    pub private: bool,
    pub facts: Vec<String>,
}

impl Handover {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(TAG)
            .str(&self.user)
            .u8(u8::from(self.tls_active))
            .u8(u8::from(self.pbsz))
            .u8(u8::from(self.private))
            .u8(self.facts.len().min(MAX_FACTS) as u8);
        for f in self.facts.iter().take(MAX_FACTS) {
            w = w.str(f);
        }
        w.finish()
    }

    pub fn decode(b: &[u8]) -> Option<Handover> {
        let (tag, mut r) = Reader::new(b).ok()?;
        if tag != TAG {
            return None;
        }
        let user = r.str(256).ok()?.to_string();
        let tls_active = r.bool().ok()?;
        let pbsz = r.bool().ok()?;
        let private = r.bool().ok()?;
        let n = r.u8().ok()? as usize;
        if n > MAX_FACTS {
            return None;
        }
        let mut facts = Vec::with_capacity(n);
        for _ in 0..n {
            facts.push(r.str(32).ok()?.to_string());
        }
        r.end().ok()?;
        Some(Handover {
            user,
            tls_active,
            pbsz,
            private,
            facts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Handover {
            user: "demo".into(),
            tls_active: true,
            pbsz: true,
            private: true,
            facts: vec!["type".into(), "size".into()],
        };
        assert_eq!(Handover::decode(&h.encode()), Some(h));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Handover::decode(b""), None);
        assert_eq!(Handover::decode(b"X"), None);
        let mut b = Handover {
            user: "u".into(),
            tls_active: false,
            pbsz: false,
            private: false,
            facts: vec![],
        }
        .encode();
        b.push(7);
        assert_eq!(Handover::decode(&b), None);
        // More facts announced than there may be.
        let mut many = Writer::new(TAG).str("u").u8(0).u8(0).u8(0).u8(200);
        for _ in 0..200 {
            many = many.str("x");
        }
        assert_eq!(Handover::decode(&many.finish()), None);
    }
}
