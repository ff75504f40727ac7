//! News articles (RFC 5536): the text checked octet by octet, the header
//! section parsed with bounds, the fields a server relies on (Message-ID,
//! Newsgroups, Path, Date, Control) read and checked, and the overview
//! values (RFC 3977 8.3) made from them. Pure: bytes in, values out.
//!
//! An article here is its canonical text: CRLF line ends, no dot-stuffing
//! (the spool adds it back when it stores the wire form).

use super::command::{valid_group_name, valid_message_id};

/// Most header fields in one article.
pub const MAX_FIELDS: usize = 1000;
/// Most newsgroups one article is posted to.
pub const MAX_GROUPS: usize = 100;

/// One header field: its name and raw value (what follows the colon, to
/// the end of its last continuation line, internal CRLFs included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// A parsed article: its header fields in order, and where the body starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Article<'a> {
    pub fields: Vec<Field<'a>>,
    /// Offset of the body in the text (the text's length when there is no
    /// empty line: an article of header fields only).
    pub body: usize,
}

/// Why an article is refused (the text goes into the 437/439/441 reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

fn refused(s: impl Into<String>) -> Refused {
    Refused(s.into())
}

/// RFC 3977 3.6 and RFC 5536 3: no NUL, and CR and LF only as CRLF pairs.
pub fn check_text(text: &[u8]) -> Result<(), Refused> {
    if memchr::memchr(0, text).is_some() {
        return Err(refused("article contains a NUL octet"));
    }
    if text.is_empty() {
        return Ok(());
    }
    if !text.ends_with(b"\r\n") {
        return Err(refused("article does not end with CRLF"));
    }
    // Every LF follows a CR, and there are as many CRs as LFs: then every
    // CR is followed by an LF too.
    let mut lfs = 0usize;
    for p in memchr::memchr_iter(b'\n', text) {
        if p == 0 || text[p - 1] != b'\r' {
            return Err(refused("bare LF in article"));
        }
        lfs += 1;
    }
    let crs = memchr::memchr_iter(b'\r', text).count();
    if crs != lfs {
        return Err(refused("bare CR in article"));
    }
    Ok(())
}

fn valid_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 128 && name.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

/// Parse the header section of canonical text (see [`check_text`]).
pub fn parse(text: &[u8]) -> Result<Article<'_>, Refused> {
    let mut fields: Vec<Field> = Vec::new();
    // (start of the value, end of its last line) of the field being read.
    let mut open: Option<(usize, &str, usize)> = None;
    let mut pos = 0;
    let mut body = text.len();
    while pos < text.len() {
        let end = match memchr::memmem::find(&text[pos..], b"\r\n") {
            Some(p) => pos + p,
            None => return Err(refused("header line without CRLF")),
        };
        let line = &text[pos..end];
        if line.is_empty() {
            body = end + 2;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match open.as_mut() {
                Some((_, _, last)) => *last = end,
                None => return Err(refused("continuation line before any header field")),
            }
        } else {
            if let Some((start, name, last)) = open.take() {
                fields.push(Field {
                    name,
                    value: &text[start..last],
                });
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(refused("header line without a colon"));
            };
            if !valid_field_name(&line[..colon]) {
                return Err(refused("bad header field name"));
            }
            if fields.len() >= MAX_FIELDS {
                return Err(refused("too many header fields"));
            }
            let name = std::str::from_utf8(&line[..colon]).map_err(|_| refused("bad name"))?;
            open = Some((pos + colon + 1, name, end));
        }
        pos = end + 2;
    }
    if let Some((start, name, last)) = open {
        fields.push(Field {
            name,
            value: &text[start..last],
        });
    }
    if fields.is_empty() {
        return Err(refused("no header fields"));
    }
    Ok(Article { fields, body })
}

/// A field value unfolded (CRLFs removed), its TABs and other controls
/// made spaces, trimmed; as text (invalid UTF-8 replaced).
pub fn unfold(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\r' if value.get(i + 1) == Some(&b'\n') => i += 1,
            b'\n' => {}
            b if b < 0x20 || b == 0x7f => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    let s = String::from_utf8_lossy(&out);
    s.trim_matches(|c: char| c == ' ').to_string()
}

impl<'a> Article<'a> {
    /// The first field of that name (case-insensitive), raw.
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// The first field of that name, unfolded.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).map(unfold)
    }

    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// The checks every article passes, injected here or relayed:
    /// fields that may appear once appear at most once, the required ones
    /// are there and non-empty, and those the server relies on parse.
    pub fn check(&self, required: &[&str]) -> Result<Checked, Refused> {
        for name in SINGLE {
            if self.count(name) > 1 {
                return Err(refused(format!("duplicate {name} header field")));
            }
        }
        for name in required {
            match self.get(name) {
                Some(v) if !v.is_empty() => {}
                _ => return Err(refused(format!("missing {name} header field"))),
            }
        }
        let newsgroups = match self.get("Newsgroups") {
            Some(v) => parse_newsgroups(&v)?,
            None => Vec::new(),
        };
        let message_id = match self.get("Message-ID") {
            Some(id) if valid_article_id(&id) => Some(id),
            Some(_) => return Err(refused("malformed Message-ID")),
            None => None,
        };
        let date = match self.get("Date") {
            Some(d) => Some(parse_date(&d).ok_or_else(|| refused("unparsable Date"))?),
            None => None,
        };
        if let Some(from) = self.get("From") {
            if !from.contains('@') {
                return Err(refused("From has no address"));
            }
        }
        let control = match self.get("Control") {
            Some(c) => Some(parse_control(&c)?),
            None => None,
        };
        Ok(Checked {
            newsgroups,
            message_id,
            date,
            control,
        })
    }
}

/// Fields that may appear at most once (RFC 5536 3.1, 3.2).
const SINGLE: &[&str] = &[
    "Approved",
    "Control",
    "Date",
    "Distribution",
    "Expires",
    "Followup-To",
    "From",
    "Injection-Date",
    "Injection-Info",
    "Message-ID",
    "Newsgroups",
    "Organization",
    "Path",
    "References",
    "Sender",
    "Subject",
    "Supersedes",
    "Xref",
];

/// What the checks found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Every group named, in order, without duplicates.
    pub newsgroups: Vec<String>,
    pub message_id: Option<String>,
    /// The Date field, as seconds since the epoch.
    pub date: Option<i64>,
    pub control: Option<Control>,
}

/// A control message (RFC 5537 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Cancel(String),
    NewGroup {
        name: String,
        moderated: bool,
    },
    RmGroup(String),
    /// Anything else (checkgroups, ihave, sendme, ...): logged, not acted on.
    Other(String),
}

impl Control {
    pub fn verb(&self) -> &str {
        match self {
            Control::Cancel(_) => "cancel",
            Control::NewGroup { .. } => "newgroup",
            Control::RmGroup(_) => "rmgroup",
            Control::Other(v) => v,
        }
    }
}

fn parse_control(text: &str) -> Result<Control, Refused> {
    let mut words = text.split_whitespace();
    let verb = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.next();
    let bad = || refused(format!("malformed {verb} control message"));
    Ok(match verb.as_str() {
        "cancel" => match arg {
            Some(id) if valid_message_id(id) => Control::Cancel(id.to_string()),
            _ => return Err(bad()),
        },
        "newgroup" => match arg {
            Some(g) if valid_group_name(g) => Control::NewGroup {
                name: g.to_string(),
                moderated: words.next() == Some("moderated"),
            },
            _ => return Err(bad()),
        },
        "rmgroup" => match arg {
            Some(g) if valid_group_name(g) => Control::RmGroup(g.to_string()),
            _ => return Err(bad()),
        },
        "" => return Err(refused("empty Control header field")),
        v if v.len() <= 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Control::Other(v.to_string())
        }
        _ => return Err(bad()),
    })
}

/// A message-id as RFC 5536 3.1.3 wants it for a new article: the RFC 3977
/// syntax with an `@` between two non-empty parts.
pub fn valid_article_id(id: &str) -> bool {
    valid_message_id(id)
        && id[1..id.len() - 1]
            .rsplit_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
}

/// The groups of a Newsgroups value: comma-separated names (whitespace
/// around them allowed), each valid, without duplicates.
pub fn parse_newsgroups(value: &str) -> Result<Vec<String>, Refused> {
    let mut out: Vec<String> = Vec::new();
    for g in value.split(',') {
        let g = g.trim_matches(|c: char| c == ' ' || c == '\t');
        if !valid_group_name(g) {
            return Err(refused(format!(
                "bad newsgroup name '{}'",
                crate::auth::printable(g)
            )));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
        if out.len() > MAX_GROUPS {
            return Err(refused("too many newsgroups"));
        }
    }
    Ok(out)
}

/// The entries of a Path value (RFC 5536 3.1.5), diagnostics included.
pub fn path_entries(value: &str) -> impl Iterator<Item = &str> {
    value
        .split('!')
        .map(|e| e.trim_matches(|c: char| c == ' ' || c == '\t'))
        .filter(|e| !e.is_empty())
}

/// Whether a Path already holds `identity` (a loop, or an article back
/// from where it came).
pub fn path_has(value: &str, identity: &str) -> bool {
    path_entries(value).any(|e| e.eq_ignore_ascii_case(identity))
}

const ZONES: &[(&str, i64)] = &[
    ("UT", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("EST", -5),
    ("EDT", -4),
    ("CST", -6),
    ("CDT", -5),
    ("MST", -7),
    ("MDT", -6),
    ("PST", -8),
    ("PDT", -7),
];

/// An RFC 5322 date-time (with the obsolete forms: two-digit years, named
/// zones, no seconds, no day name), as seconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    // Comments such as "(UTC)" are dropped.
    let cleaned: String = {
        let mut depth = 0u32;
        text.chars()
            .filter(|&c| match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    false
                }
                _ => depth == 0,
            })
            .collect()
    };
    let mut w = cleaned.split_whitespace();
    let day: u32 = w.next()?.parse().ok()?;
    let mon = w.next()?;
    let month = crate::calendar::MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(mon))? as u32
        + 1;
    let year_text = w.next()?;
    if year_text.len() > 4 || !year_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut year: i64 = year_text.parse().ok()?;
    if year_text.len() <= 2 {
        year += if year < 50 { 2000 } else { 1900 };
    } else if year_text.len() == 3 {
        year += 1900;
    }
    let mut hms = w.next()?.split(':');
    // Unsigned: a sign is no part of a time (and "-99999999999:" must
    // not reach the arithmetic below).
    let h: i64 = hms.next()?.parse::<u8>().ok()?.into();
    let m: i64 = hms.next()?.parse::<u8>().ok()?.into();
    let s: i64 = match hms.next() {
        Some(s) => s.parse::<u8>().ok()?.into(),
        None => 0,
    };
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let offset = match w.next() {
        None => 0,
        Some(z)
            if (z.starts_with('+') || z.starts_with('-'))
                && z.len() == 5
                && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let n: i64 = z[1..].parse().ok()?;
            let secs = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        Some(z) => ZONES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(z))
            .map(|(_, h)| h * 3600)
            // Unknown military zones count as UTC (RFC 5322 4.3).
            .unwrap_or(0),
    };
    let days = crate::calendar::days_from_civil(year, month, day);
    if crate::calendar::civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// The overview values of an article (RFC 3977 8.3, OVERVIEW.FMT order):
/// Subject, From, Date, Message-ID, References, :bytes, :lines; the Xref
/// value is added by the spool once the numbers are known.
pub fn overview_fields(a: &Article, text: &[u8]) -> [String; 7] {
    let get = |n: &str| a.get(n).unwrap_or_default();
    let body = &text[a.body.min(text.len())..];
    let lines = memchr::memmem::find_iter(body, b"\r\n").count();
    [
        get("Subject"),
        get("From"),
        get("Date"),
        get("Message-ID"),
        get("References"),
        text.len().to_string(),
        lines.to_string(),
    ]
}

/// Fuzzing entry point: any bytes as an article (text checks, header
/// parse, field checks, overview values, dates); and parse, write, parse:
/// an article a peer's offer would store is written in its stored form
/// (dot-stuffed), read back as a reader gets it, and must parse and be
/// taken again by a second server with the same message-id, groups and
/// body.
pub fn fuzz_article(data: &[u8]) {
    use crate::nntp::inject::{prepare, stored_form, Context, Origin};
    let _ = check_text(data);
    if let Ok(a) = parse(data) {
        let _ = a.check(&["From", "Newsgroups", "Subject"]);
        let _ = overview_fields(&a, data);
        if let Some(d) = a.get("Date") {
            let _ = parse_date(&d);
        }
    }
    let _ = parse_date(&String::from_utf8_lossy(data));
    let cx = |identity| Context {
        path_identity: identity,
        now: 1_800_000_000,
        max_size: 1 << 20,
        history_lifetime: 1 << 40,
        unique: "fuzz",
    };
    let offered = parse(data)
        .ok()
        .and_then(|a| a.get("Message-ID"))
        .unwrap_or_default();
    let origin = |offered: &str| Origin::Peer {
        name: "up.example".into(),
        offered: offered.to_string(),
    };
    let Ok(first) = prepare(data.to_vec(), &origin(&offered), &cx("one.example")) else {
        return;
    };
    let (stored, size, _) = stored_form(&first, Some("one.example lab.test:1"));
    // What ARTICLE sends, un-stuffed as a reader does.
    let mut text = Vec::new();
    let mut u = crate::wire::Unstuffer::new();
    let lines: Vec<&[u8]> = stored.split_inclusive(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let content = line
            .strip_suffix(b"\r\n")
            .expect("stored lines end with CRLF");
        match u.line(content, crate::net::Ending::CrLf) {
            crate::wire::DotLine::End => assert_eq!(i + 1, lines.len(), "ends once, at its end"),
            crate::wire::DotLine::Text(t) => {
                text.extend_from_slice(t);
                text.extend_from_slice(b"\r\n");
            }
        }
    }
    assert!(u.ended());
    assert_eq!(text.len() as u64, size);
    let again = parse(&text).expect("a stored article parses");
    assert_eq!(
        again.get("Message-ID").as_deref(),
        Some(first.message_id.as_str())
    );
    let second = prepare(text.clone(), &origin(&first.message_id), &cx("two.example"))
        .expect("a stored article is taken by the next server");
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.newsgroups, first.newsgroups);
    assert_eq!(second.body(), first.body());
}

#[cfg(test)]
mod tests {
    use super::*;

    const ART: &[u8] = b"Path: a!b\r\nFrom: A <a@example.org>\r\nNewsgroups: lab.test, lab.misc,lab.test\r\nSubject: hello\r\n  folded\r\nMessage-ID: <1@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n\r\nbody\r\n.line\r\n";

    #[test]
    fn parses_fields_and_body() {
        check_text(ART).unwrap();
        let a = parse(ART).unwrap();
        assert_eq!(a.fields.len(), 6);
        assert_eq!(a.get("subject").unwrap(), "hello  folded");
        assert_eq!(&ART[a.body..], b"body\r\n.line\r\n");
        let c = a.check(&["From", "Subject"]).unwrap();
        assert_eq!(c.newsgroups, vec!["lab.test", "lab.misc"]);
        assert_eq!(c.message_id.as_deref(), Some("<1@example.org>"));
        assert_eq!(c.date, Some(1_796_115_600));
        let ov = overview_fields(&a, ART);
        assert_eq!(ov[0], "hello  folded");
        assert_eq!(ov[6], "2");
        assert_eq!(ov[5], ART.len().to_string());
    }

    #[test]
    fn fuzz_finds() {
        // A negative hour overflowed the seconds (found by fuzzing).
        assert_eq!(parse_date("1 Jan 2026 -999999999999999:00:00"), None);
        assert_eq!(parse_date("1 Jan 2026 -1:00"), None);
        assert_eq!(parse_date("1 Jan -202 10:00"), None);
        assert_eq!(parse_date("1 Jan 2026 10:00 +0100"), Some(1_767_258_000));
        fuzz_article(include_bytes!("fuzz_finds/article-date-overflow"));
    }

    #[test]
    fn stored_articles_read_back() {
        fuzz_article(ART);
        fuzz_article(b"Path: x\r\nFrom: a@b\r\nNewsgroups: a.b\r\nSubject: s\r\nMessage-ID: <m@x>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n.\r\n..\r\n");
    }

    #[test]
    fn text_checks() {
        assert!(check_text(b"a\r\nb\0\r\n").is_err());
        assert!(check_text(b"a\nb\r\n").is_err());
        assert!(check_text(b"a\rb\r\n").is_err());
        assert!(check_text(b"a\r\nb").is_err());
        assert!(check_text(b"").is_ok());
        assert!(check_text(b"\r\n\r\n").is_ok());
        assert!(check_text(b"\n\r\n").is_err());
        assert!(check_text(b"a\r\n\n\r\n").is_err());
        assert!(check_text(b"a\r\r\n").is_err());
    }

    #[test]
    fn malformed_headers() {
        assert!(parse(b" cont\r\n\r\n").is_err());
        assert!(parse(b"NoColon\r\n\r\n").is_err());
        assert!(parse(b": empty name\r\n\r\n").is_err());
        assert!(parse(b"\r\nbody\r\n").is_err());
        assert!(parse(b"A: b").is_err());
        let many: Vec<u8> = (0..=MAX_FIELDS)
            .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
            .collect();
        assert!(parse(&many).is_err());
        // Headers only: no body.
        let a = parse(b"A: b\r\n").unwrap();
        assert_eq!(a.body, 6);
    }

    #[test]
    fn field_checks() {
        let check = |t: &[u8]| parse(t).unwrap().check(&["From", "Subject", "Newsgroups"]);
        assert!(check(b"From: a@b\r\nSubject: s\r\nNewsgroups: x.y\r\n\r\n").is_ok());
        assert!(check(b"From: a@b\r\nSubject: s\r\n\r\n").is_err());
        assert!(check(b"From: a@b\r\nSubject: \r\nNewsgroups: x\r\n\r\n").is_err());
        assert!(check(b"From: nobody\r\nSubject: s\r\nNewsgroups: x\r\n\r\n").is_err());
        assert!(check(b"From: a@b\r\nSubject: s\r\nSubject: t\r\nNewsgroups: x\r\n\r\n").is_err());
        assert!(check(b"From: a@b\r\nSubject: s\r\nNewsgroups: x/../y\r\n\r\n").is_err());
        assert!(check(b"From: a@b\r\nSubject: s\r\nNewsgroups: x,,y\r\n\r\n").is_err());
        assert!(
            check(b"From: a@b\r\nSubject: s\r\nNewsgroups: x\r\nMessage-ID: <nope>\r\n\r\n")
                .is_err()
        );
        assert!(check(b"From: a@b\r\nSubject: s\r\nNewsgroups: x\r\nDate: soon\r\n\r\n").is_err());
        let groups: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let t = format!(
            "From: a@b\r\nSubject: s\r\nNewsgroups: {}\r\n\r\n",
            groups.join(",")
        );
        assert!(check(t.as_bytes()).is_err());
    }

    #[test]
    fn control_messages() {
        let c = |t: &str| parse_control(t);
        assert_eq!(c("cancel <a@b>"), Ok(Control::Cancel("<a@b>".into())));
        assert_eq!(
            c("newgroup lab.new moderated"),
            Ok(Control::NewGroup {
                name: "lab.new".into(),
                moderated: true
            })
        );
        assert_eq!(c("rmgroup lab.old"), Ok(Control::RmGroup("lab.old".into())));
        assert_eq!(c("checkgroups"), Ok(Control::Other("checkgroups".into())));
        assert!(c("cancel nope").is_err());
        assert!(c("newgroup ../x").is_err());
        assert!(c("").is_err());
        assert!(c("rm;rf").is_err());
    }

    #[test]
    fn paths() {
        assert!(path_has("a.example!b.example!not-for-mail", "B.example"));
        assert!(!path_has("a.example!b.example", "c.example"));
        assert!(path_has("x!.POSTED!y", "y"));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 +0000"), Some(0));
        assert_eq!(parse_date("1 Jan 1970 01:00 +0100"), Some(0));
        assert_eq!(parse_date("1 Jan 70 00:00:00 GMT"), Some(0));
        assert_eq!(parse_date("1 Jan 1970 00:00:00 -0100 (xyz)"), Some(3600));
        assert_eq!(parse_date("1 Jan 1970 00:00:00 EST"), Some(5 * 3600));
        assert_eq!(parse_date("31 Feb 2026 00:00:00 +0000"), None);
        assert_eq!(parse_date("1 Foo 2026 00:00:00"), None);
        assert_eq!(parse_date("1 Jan 2026 24:00:00"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn article_ids() {
        assert!(valid_article_id("<a@b>"));
        assert!(!valid_article_id("<ab>"));
        assert!(!valid_article_id("<@b>"));
        assert!(!valid_article_id("<a@>"));
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_article(b"A: b\r\n c\r\n\r\n");
        fuzz_article(b"Date: 1 Jan 99999999999999999999 00:00:00\r\n\r\n");
        fuzz_article(b"Date: , \r\n\r\n");
        fuzz_article(&[0xff, b':', b'\r', b'\n']);
    }
}
