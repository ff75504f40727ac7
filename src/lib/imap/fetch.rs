//! FETCH items of one message, rendered. Pure: the session loads what
//! `need` says (nothing, the header, or the whole message) and passes it
//! in, in wire form.

use super::command::{FetchAtt, Section, SectionText};
use super::date::format_datetime;
use super::mime::{self, Part};
use super::syntax::literal;

/// What of the message FETCH items need read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    Nothing,
    Header,
    Whole,
}

pub fn need(atts: &[FetchAtt]) -> Need {
    let mut n = Need::Nothing;
    for a in atts {
        let this = match a {
            FetchAtt::Envelope | FetchAtt::Rfc822Header => Need::Header,
            FetchAtt::Section {
                section:
                    Section {
                        part,
                        text:
                            Some(
                                SectionText::Header
                                | SectionText::HeaderFields(_)
                                | SectionText::HeaderFieldsNot(_),
                            ),
                    },
                ..
            } if part.is_empty() => Need::Header,
            FetchAtt::Body
            | FetchAtt::BodyStructure
            | FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::Section { .. }
            | FetchAtt::Binary { .. }
            | FetchAtt::BinarySize(_) => Need::Whole,
            _ => Need::Nothing,
        };
        n = n.max(this);
    }
    n
}

/// Whether the items need the message's MIME structure (a parse of the
/// whole message): BODY, BODYSTRUCTURE, BINARY and sections inside parts.
/// BODY[], BODY[TEXT], RFC822 and the top level's header items are cut
/// from the bytes as they are (mbsync fetches whole messages by the
/// thousand).
pub fn needs_structure(atts: &[FetchAtt]) -> bool {
    atts.iter().any(|a| match a {
        FetchAtt::Body
        | FetchAtt::BodyStructure
        | FetchAtt::Binary { .. }
        | FetchAtt::BinarySize(_) => true,
        FetchAtt::Section { section, .. } => {
            !section.part.is_empty() || matches!(section.text, Some(SectionText::Mime))
        }
        _ => false,
    })
}

/// Whether the items set \Seen (BODY[] and RFC822 without PEEK).
pub fn sets_seen(atts: &[FetchAtt]) -> bool {
    atts.iter().any(|a| {
        matches!(
            a,
            FetchAtt::Rfc822
                | FetchAtt::Rfc822Text
                | FetchAtt::Section { peek: false, .. }
                | FetchAtt::Binary { peek: false, .. }
        )
    })
}

/// What the session knows of the message without reading it.
pub struct Meta<'a> {
    pub uid: u32,
    /// `(\Seen ...)`
    pub flags: &'a str,
    pub size: u64,
    pub internal_date: i64,
    pub modseq: u64,
}

/// Why an item could not be given.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError {
    /// BINARY of a part whose encoding we do not know: `NO [UNKNOWN-CTE]`.
    UnknownCte,
}

fn partial_of(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((start, len)) => {
            let s = (start as usize).min(data.len());
            let e = s.saturating_add(len as usize).min(data.len());
            &data[s..e]
        }
    }
}

fn section_name(s: &Section) -> String {
    let mut out: Vec<String> = s.part.iter().map(|n| n.to_string()).collect();
    match &s.text {
        None => {}
        Some(SectionText::Header) => out.push("HEADER".into()),
        Some(SectionText::Text) => out.push("TEXT".into()),
        Some(SectionText::Mime) => out.push("MIME".into()),
        Some(SectionText::HeaderFields(f)) => out.push(format!("HEADER.FIELDS ({})", f.join(" "))),
        Some(SectionText::HeaderFieldsNot(f)) => {
            out.push(format!("HEADER.FIELDS.NOT ({})", f.join(" ")))
        }
    }
    out.join(".")
}

/// The message as loaded for `need`: its wire bytes (header only for
/// `Need::Header`) and, for a whole message, its structure.
pub struct Loaded<'a> {
    pub wire: &'a [u8],
    pub structure: Option<&'a Part>,
}

/// `seq FETCH (...)` for one message, with `uid` added when `force_uid`
/// (UID FETCH, and QRESYNC/CONDSTORE unsolicited forms).
pub fn render(
    seq: usize,
    atts: &[FetchAtt],
    meta: &Meta,
    loaded: Option<&Loaded>,
    force_uid: bool,
    modseq: bool,
) -> Result<Vec<u8>, FetchError> {
    let mut items: Vec<Vec<u8>> = Vec::with_capacity(atts.len() + 2);
    let wire = loaded.map(|l| l.wire).unwrap_or(b"");
    let header_end = mime::header_len(wire);
    let has_uid = atts.contains(&FetchAtt::Uid);
    if force_uid && !has_uid {
        items.push(format!("UID {}", meta.uid).into_bytes());
    }
    for a in atts {
        let item = match a {
            FetchAtt::Uid => format!("UID {}", meta.uid).into_bytes(),
            FetchAtt::Flags => format!("FLAGS {}", meta.flags).into_bytes(),
            FetchAtt::InternalDate => {
                format!("INTERNALDATE {}", format_datetime(meta.internal_date)).into_bytes()
            }
            FetchAtt::Rfc822Size => format!("RFC822.SIZE {}", meta.size).into_bytes(),
            FetchAtt::ModSeq => format!("MODSEQ ({})", meta.modseq).into_bytes(),
            FetchAtt::Envelope => {
                let mut e = Vec::with_capacity(512);
                e.extend_from_slice(b"ENVELOPE ");
                mime::envelope_into(&mut e, &wire[..header_end]);
                e
            }
            FetchAtt::Body | FetchAtt::BodyStructure => {
                let ext = *a == FetchAtt::BodyStructure;
                let s = loaded.and_then(|l| l.structure);
                let bs = match s {
                    Some(p) => mime::body_structure(wire, p, ext),
                    None => b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)".to_vec(),
                };
                [
                    if ext {
                        b"BODYSTRUCTURE ".to_vec()
                    } else {
                        b"BODY ".to_vec()
                    },
                    bs,
                ]
                .concat()
            }
            FetchAtt::Rfc822 => [b"RFC822 ".to_vec(), literal(wire)].concat(),
            FetchAtt::Rfc822Header => {
                [b"RFC822.HEADER ".to_vec(), literal(&wire[..header_end])].concat()
            }
            FetchAtt::Rfc822Text => {
                [b"RFC822.TEXT ".to_vec(), literal(&wire[header_end..])].concat()
            }
            FetchAtt::Section {
                section, partial, ..
            } => {
                let data = match (loaded.and_then(|l| l.structure), &section.text) {
                    (Some(root), _) => mime::section(wire, root, section),
                    // No structure (only the header was read, or none was
                    // needed): the top level's items, cut from the bytes.
                    (None, None) if section.part.is_empty() => Some(wire.to_vec()),
                    (None, Some(SectionText::Text)) if section.part.is_empty() => {
                        Some(wire[header_end..].to_vec())
                    }
                    (None, Some(SectionText::Header)) => Some(wire[..header_end].to_vec()),
                    (
                        None,
                        Some(t @ (SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_))),
                    ) => {
                        let s = Section {
                            part: vec![],
                            text: Some(t.clone()),
                        };
                        let root = Part {
                            header: (0, header_end),
                            body: (header_end, header_end),
                            ..Part::default()
                        };
                        mime::section(wire, &root, &s)
                    }
                    _ => None,
                };
                let mut out = format!("BODY[{}]", section_name(section)).into_bytes();
                if let Some((start, _)) = partial {
                    out.extend(format!("<{start}>").as_bytes());
                }
                out.push(b' ');
                match data {
                    Some(d) => {
                        let d = partial_of(&d, *partial);
                        // NUL may travel only in a literal8 (RFC 3516).
                        if d.contains(&0) {
                            out.push(b'~');
                        }
                        out.extend(literal(d));
                    }
                    // A part that does not exist is empty (RFC 9051 6.4.5).
                    None => out.extend(b"\"\""),
                }
                out
            }
            FetchAtt::Binary { part, partial, .. } => {
                let root = loaded.and_then(|l| l.structure);
                let data = match root {
                    Some(r) => match mime::binary(wire, r, part) {
                        Ok(d) => Some(d),
                        Err(mime::BinaryError::UnknownEncoding) => {
                            return Err(FetchError::UnknownCte)
                        }
                        Err(mime::BinaryError::NoSuchPart) => None,
                    },
                    None => None,
                };
                let name: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                let mut out = format!("BINARY[{}]", name.join(".")).into_bytes();
                if let Some((start, _)) = partial {
                    out.extend(format!("<{start}>").as_bytes());
                }
                out.push(b' ');
                match data {
                    Some(d) => {
                        let d = partial_of(&d, *partial);
                        // Binary content goes as a literal8 when it holds NUL.
                        if d.contains(&0) {
                            out.push(b'~');
                        }
                        out.extend(literal(d));
                    }
                    None => out.extend(b"NIL"),
                }
                out
            }
            FetchAtt::BinarySize(part) => {
                let size = loaded
                    .and_then(|l| l.structure)
                    .map(|r| mime::binary(wire, r, part));
                let name: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                match size {
                    Some(Ok(d)) => {
                        format!("BINARY.SIZE[{}] {}", name.join("."), d.len()).into_bytes()
                    }
                    Some(Err(mime::BinaryError::UnknownEncoding)) => {
                        return Err(FetchError::UnknownCte)
                    }
                    _ => format!("BINARY.SIZE[{}] NIL", name.join(".")).into_bytes(),
                }
            }
        };
        items.push(item);
    }
    if modseq && !atts.contains(&FetchAtt::ModSeq) {
        items.push(format!("MODSEQ ({})", meta.modseq).into_bytes());
    }
    let mut out = format!("* {seq} FETCH (").into_bytes();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(it);
    }
    out.extend_from_slice(b")\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::{parse, Command};

    fn atts(s: &str) -> Vec<FetchAtt> {
        match parse(format!("a FETCH 1 {s}").as_bytes()).unwrap().command {
            Command::Fetch { atts, .. } => atts,
            c => panic!("{c:?}"),
        }
    }

    const MSG: &[u8] = b"Subject: hi\r\nFrom: a@b.c\r\n\r\nline 1\r\nline 2\r\n";

    fn meta() -> Meta<'static> {
        Meta {
            uid: 7,
            flags: "(\\Seen)",
            size: MSG.len() as u64,
            internal_date: 0,
            modseq: 3,
        }
    }

    #[test]
    fn needs() {
        assert_eq!(
            need(&atts("(FLAGS UID RFC822.SIZE INTERNALDATE)")),
            Need::Nothing
        );
        assert_eq!(need(&atts("(FLAGS ENVELOPE)")), Need::Header);
        assert_eq!(
            need(&atts("BODY.PEEK[HEADER.FIELDS (Subject)]")),
            Need::Header
        );
        assert_eq!(need(&atts("BODY.PEEK[1.HEADER]")), Need::Whole);
        assert_eq!(need(&atts("BODYSTRUCTURE")), Need::Whole);
        assert!(
            sets_seen(&atts("BODY[]"))
                && !sets_seen(&atts("BODY.PEEK[]"))
                && sets_seen(&atts("RFC822"))
        );
    }

    #[test]
    fn renders() {
        let root = mime::structure(MSG);
        let l = Loaded {
            wire: MSG,
            structure: Some(&root),
        };
        let r = |a: &str, uid: bool| {
            String::from_utf8(render(4, &atts(a), &meta(), Some(&l), uid, false).unwrap()).unwrap()
        };
        assert_eq!(
            r("(FLAGS RFC822.SIZE)", true),
            "* 4 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 44)\r\n"
        );
        assert_eq!(
            r("INTERNALDATE", false),
            "* 4 FETCH (INTERNALDATE \"01-Jan-1970 00:00:00 +0000\")\r\n"
        );
        assert_eq!(
            r("BODY[TEXT]<2.3>", false),
            "* 4 FETCH (BODY[TEXT]<2> {3}\r\nne )\r\n"
        );
        assert_eq!(
            r("BODY.PEEK[HEADER.FIELDS (FROM)]", false),
            "* 4 FETCH (BODY[HEADER.FIELDS (FROM)] {15}\r\nFrom: a@b.c\r\n\r\n)\r\n"
        );
        assert_eq!(r("BODY[3]", false), "* 4 FETCH (BODY[3] \"\")\r\n");
        assert_eq!(
            r("BINARY.SIZE[1]", false),
            "* 4 FETCH (BINARY.SIZE[1] 16)\r\n"
        );
        assert!(
            r("BODYSTRUCTURE", false).starts_with("* 4 FETCH (BODYSTRUCTURE (\"text\" \"plain\"")
        );
        assert!(r("RFC822.HEADER", false).contains("{28}\r\nSubject: hi\r\nFrom: a@b.c\r\n\r\n)"));
        let m = render(1, &atts("FLAGS"), &meta(), None, true, true).unwrap();
        assert_eq!(m, b"* 1 FETCH (UID 7 FLAGS (\\Seen) MODSEQ (3))\r\n");
        // Header only loaded.
        let h = Loaded {
            wire: b"Subject: hi\r\n\r\n",
            structure: None,
        };
        let e = render(1, &atts("ENVELOPE"), &meta(), Some(&h), false, false).unwrap();
        assert!(String::from_utf8(e).unwrap().contains("\"hi\""));
    }

    #[test]
    fn top_level_items_without_the_structure_render_as_with_it() {
        const MIXED: &[u8] = b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b--\r\n";
        for msg in [MSG, MIXED] {
            let root = mime::structure(msg);
            let with = Loaded {
                wire: msg,
                structure: Some(&root),
            };
            let without = Loaded {
                wire: msg,
                structure: None,
            };
            for a in [
                "BODY.PEEK[]",
                "BODY[]<3.10>",
                "BODY.PEEK[TEXT]",
                "BODY.PEEK[HEADER]",
                "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                "RFC822",
                "RFC822.TEXT",
                "RFC822.HEADER",
                "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            ] {
                let at = atts(a);
                assert!(!needs_structure(&at), "{a}");
                assert_eq!(
                    render(1, &at, &meta(), Some(&without), false, false).unwrap(),
                    render(1, &at, &meta(), Some(&with), false, false).unwrap(),
                    "{a}"
                );
            }
        }
        for a in [
            "BODY",
            "BODYSTRUCTURE",
            "BODY.PEEK[1]",
            "BODY.PEEK[1.MIME]",
            "BINARY.PEEK[]",
            "BINARY.SIZE[1]",
        ] {
            assert!(needs_structure(&atts(a)), "{a}");
        }
    }
}
