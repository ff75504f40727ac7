//! SEARCH keys (every key of RFC 3501, with MODSEQ of RFC 7162) over one
//! message. Pure: what a key needs of the message (its size, date, header,
//! body) comes through `Data`, which the session loads lazily, so that a
//! search on flags never opens a file and one on a header reads headers
//! only. Text matches are case-insensitive substrings on MIME-decoded
//! header fields and body parts (UTF-8).

use super::command::SearchKey;
use super::date::day_of;
use super::mime;
use crate::mail::store::{Flag, Flags, Keywords};

/// What a search may ask of a message's contents (wire form).
pub trait Data {
    fn size(&mut self) -> u64;
    fn internal_date(&mut self) -> i64;
    fn header(&mut self) -> &[u8];
    fn whole(&mut self) -> &[u8];
}

/// What is known of the message without reading it.
pub struct Facts<'a> {
    pub seq: u32,
    pub uid: u32,
    /// The largest sequence number and UID (for `*`).
    pub max_seq: u32,
    pub max_uid: u32,
    pub flags: Flags,
    pub recent: bool,
    pub modseq: u64,
    pub keywords: &'a Keywords,
}

/// Charsets SEARCH accepts (everything is matched as UTF-8).
pub fn charset_ok(c: &str) -> bool {
    matches!(
        c.to_ascii_uppercase().as_str(),
        "UTF-8" | "US-ASCII" | "UTF8"
    )
}

fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase())
}

/// The flag a SEARCH key names.
fn flag_of(name: &str) -> Option<Flag> {
    Flag::from_name(name)
}

/// Whether the key needs more than flags and numbers (used to decide the
/// cost; answers are the same either way).
pub fn reads_contents(k: &SearchKey) -> bool {
    match k {
        SearchKey::Header(..) | SearchKey::Body(_) | SearchKey::Text(_) => true,
        SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_) => true,
        SearchKey::Not(k) => reads_contents(k),
        SearchKey::Or(a, b) => reads_contents(a) || reads_contents(b),
        SearchKey::And(v) => v.iter().any(reads_contents),
        _ => false,
    }
}

/// The highest MODSEQ a key names (RFC 7162: a SEARCH with MODSEQ answers
/// with the highest modseq of what it found).
pub fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

pub fn matches(k: &SearchKey, f: &Facts, d: &mut dyn Data) -> bool {
    use SearchKey as K;
    match k {
        K::All => true,
        K::Seq(set) => set.contains(f.seq, f.max_seq),
        K::Uid(set) => set.contains(f.uid, f.max_uid),
        K::Flag(name, on) => flag_of(name).is_some_and(|fl| f.flags.has(fl)) == *on,
        K::Keyword(name, on) => {
            let has = f
                .keywords
                .find(name)
                .is_some_and(|i| f.flags.has_keyword(i));
            has == *on
        }
        K::New => f.recent && !f.flags.has(Flag::Seen),
        K::Old => !f.recent,
        K::Recent(on) => f.recent == *on,
        K::Larger(n) => d.size() > *n,
        K::Smaller(n) => d.size() < *n,
        K::ModSeq(m) => f.modseq >= *m,
        K::Before(t) => day_of(d.internal_date()) < *t,
        K::On(t) => day_of(d.internal_date()) == *t,
        K::Since(t) => day_of(d.internal_date()) >= *t,
        K::SentBefore(t) => mime::sent_day(d.header()).is_some_and(|s| s < *t),
        K::SentOn(t) => mime::sent_day(d.header()).is_some_and(|s| s == *t),
        K::SentSince(t) => mime::sent_day(d.header()).is_some_and(|s| s >= *t),
        K::Header(name, value) => {
            let fields = mime::decoded_header(d.header(), Some(name));
            fields.iter().any(|v| contains(v, value))
        }
        K::Body(text) => body_matches(d, text),
        K::Text(text) => {
            let h = mime::decoded_header(d.header(), None);
            h.iter().any(|v| contains(v, text)) || body_matches(d, text)
        }
        K::Not(k) => !matches(k, f, d),
        K::Or(a, b) => matches(a, f, d) || matches(b, f, d),
        K::And(v) => v.iter().all(|k| matches(k, f, d)),
    }
}

fn body_matches(d: &mut dyn Data, text: &str) -> bool {
    let whole = d.whole();
    mime::body_texts(whole).iter().any(|t| contains(t, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::{parse, Command};

    struct Msg(&'static [u8], i64);

    impl Data for Msg {
        fn size(&mut self) -> u64 {
            self.0.len() as u64
        }
        fn internal_date(&mut self) -> i64 {
            self.1
        }
        fn header(&mut self) -> &[u8] {
            &self.0[..mime::header_len(self.0)]
        }
        fn whole(&mut self) -> &[u8] {
            self.0
        }
    }

    fn key(s: &str) -> SearchKey {
        match parse(format!("a SEARCH {s}").as_bytes()).unwrap().command {
            Command::Search { key, .. } => key,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn keys() {
        let mut kw = Keywords::default();
        kw.intern("$Junk");
        let mut flags = Flags::default().with(Flag::Seen);
        flags.set_keyword(0, true);
        let f = Facts {
            seq: 2,
            uid: 20,
            max_seq: 3,
            max_uid: 30,
            flags,
            recent: true,
            modseq: 9,
            keywords: &kw,
        };
        let mut m = Msg(
            b"Date: Fri, 2 Feb 2024 23:30:00 -0500\r\nSubject: =?utf-8?q?R=C3=A9union?= today\r\nFrom: Alice <alice@example.org>\r\nX-Tag: blue\r\n\r\nThe agenda is ATTACHED.\r\n",
            1706832000 + 3600,
        );
        let yes = |s: &str, m: &mut Msg| matches(&key(s), &f, m);
        for k in [
            "ALL",
            "2",
            "1:*",
            "UID 20",
            "UID 15:*",
            "SEEN",
            "KEYWORD $junk",
            "UNKEYWORD Other",
            "RECENT",
            "NOT NEW",
            "UNANSWERED",
            "LARGER 10",
            "SMALLER 10000",
            "MODSEQ 9",
            "ON 2-Feb-2024",
            "SINCE 1-Feb-2024",
            "BEFORE 3-Feb-2024",
            "SENTON 2-Feb-2024",
            "SENTBEFORE 3-Feb-2024",
            "SUBJECT \"réunion\"",
            "SUBJECT TODAY",
            "FROM alice@example",
            "FROM ALICE",
            "HEADER X-Tag blu",
            "HEADER X-Tag \"\"",
            "BODY attached",
            "TEXT agenda",
            "TEXT alice",
            "OR DELETED SEEN",
            "(SEEN FLAGGED) OR 1 2",
            "NOT (DELETED)",
        ] {
            if k == "(SEEN FLAGGED) OR 1 2" {
                assert!(!yes(k, &mut m), "{k}");
                continue;
            }
            assert!(yes(k, &mut m), "{k}");
        }
        for k in [
            "3",
            "UID 21:25",
            "UNSEEN",
            "KEYWORD Other",
            "NEW",
            "OLD",
            "DELETED",
            "MODSEQ 10",
            "ON 1-Feb-2024",
            "SENTSINCE 3-Feb-2024",
            "SUBJECT nothing",
            "HEADER X-Other \"\"",
            "BODY alice",
            "LARGER 10000",
        ] {
            assert!(!yes(k, &mut m), "{k}");
        }
        assert!(reads_contents(&key("OR SEEN BODY x")) && !reads_contents(&key("SEEN UID 1:*")));
        assert!(uses_modseq(&key("NOT MODSEQ 3")));
        assert!(charset_ok("utf-8") && !charset_ok("ISO-8859-1"));
    }
}
