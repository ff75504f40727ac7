//! What the server does to an article before storing it (RFC 5537): the
//! checks of an injecting agent for POST (3.5) and of a relaying agent for
//! IHAVE and TAKETHIS (3.6), and the fields it adds or changes: Path (our
//! identity first), Message-ID and Date when a poster left them out,
//! Injection-Date and Injection-Info, and Xref (written by the spool once
//! the numbers are known). Pure: the text, who sent it and the time in;
//! the stored header and what the spool needs out.

use super::article::{self, Article, Checked, Control, Refused};

/// How an article arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// POST by a reader: its address and account (if it logged in).
    Post { host: String, user: Option<String> },
    /// IHAVE or TAKETHIS from the peer of that name, offering that id.
    Peer { name: String, offered: String },
}

/// The context of one decision.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub path_identity: &'a str,
    pub now: i64,
    pub max_size: u64,
    /// Articles older than this are refused from peers (their history
    /// line would already be gone).
    pub history_lifetime: i64,
    /// For a new Message-ID: a value unique to this process and moment.
    pub unique: &'a str,
}

/// An article ready for the spool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub message_id: String,
    /// The groups it is posted to, in order (the spool keeps those it
    /// carries).
    pub newsgroups: Vec<String>,
    /// The header section as stored, without Xref, CRLF-ended, without
    /// the empty line.
    pub header: Vec<u8>,
    /// The article as offered (canonical text, not stuffed): its body
    /// is what follows `body_at` (kept in place, not copied).
    pub text: Vec<u8>,
    pub body_at: usize,
    /// Subject, From, Date, Message-ID, References (for the overview).
    pub overview: [String; 5],
    /// The new Path value (feeds skip the peers named in it).
    pub path: String,
    pub control: Option<Control>,
    pub approved: bool,
    /// Seconds since the epoch, from the Date field.
    pub date: i64,
}

impl Prepared {
    /// The body (canonical text, not stuffed).
    pub fn body(&self) -> &[u8] {
        &self.text[self.body_at.min(self.text.len())..]
    }
}

/// A day: how far in the future a Date may be.
const FUTURE_SLACK: i64 = 86_400;

/// Fields a poster may not set: the server writes them.
const SERVER_FIELDS: &[&str] = &[
    "Xref",
    "Injection-Date",
    "Injection-Info",
    "NNTP-Posting-Host",
    "NNTP-Posting-Date",
    "X-Trace",
];

fn quoted(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\\').collect()
}

/// Check an article and build what is stored. `Err` is the refusal (441
/// for POST, 437/439 for a peer).
pub fn prepare(text: Vec<u8>, origin: &Origin, cx: &Context) -> Result<Prepared, Refused> {
    if text.len() as u64 > cx.max_size {
        return Err(Refused(format!(
            "article too large ({} bytes, at most {})",
            text.len(),
            cx.max_size
        )));
    }
    article::check_text(&text)?;
    let a = article::parse(&text)?;
    let post = matches!(origin, Origin::Post { .. });
    let required: &[&str] = if post {
        &["From", "Newsgroups", "Subject"]
    } else {
        &[
            "Path",
            "From",
            "Newsgroups",
            "Subject",
            "Message-ID",
            "Date",
        ]
    };
    let checked = a.check(required)?;
    if checked.newsgroups.is_empty() {
        return Err(Refused("no newsgroups".into()));
    }
    let date = match checked.date {
        Some(d) if d > cx.now + FUTURE_SLACK => {
            return Err(Refused("Date is in the future".into()))
        }
        Some(d) if !post && d < cx.now - cx.history_lifetime => {
            return Err(Refused("article too old".into()))
        }
        Some(d) => d,
        None => cx.now,
    };
    let message_id = match (&checked.message_id, origin) {
        (Some(id), Origin::Peer { offered, .. }) if id != offered => {
            return Err(Refused("Message-ID does not match the one offered".into()))
        }
        (Some(id), _) => id.clone(),
        (None, _) => format!("<{}@{}>", cx.unique, cx.path_identity),
    };
    let old_path = a.get("Path");
    if let (Some(p), false) = (&old_path, post) {
        if article::path_has(p, cx.path_identity) {
            return Err(Refused("path loop: already here".into()));
        }
    }
    let path = match (&old_path, origin) {
        (None, Origin::Post { .. }) => format!("{}!.POSTED!not-for-mail", cx.path_identity),
        (Some(p), Origin::Post { .. }) => format!("{}!.POSTED!{p}", cx.path_identity),
        (Some(p), Origin::Peer { .. }) => format!("{}!{p}", cx.path_identity),
        (None, Origin::Peer { .. }) => unreachable!("Path is required from peers"),
    };
    let header = build_header(&a, &checked, origin, cx, &path, &message_id);
    let get = |n: &str| a.get(n).unwrap_or_default();
    let date_text = match a.get("Date") {
        Some(d) => d,
        None => crate::calendar::rfc5322_date(date.max(0) as u64),
    };
    let overview = [
        get("Subject"),
        get("From"),
        date_text,
        message_id.clone(),
        get("References"),
    ];
    let approved = a.get("Approved").is_some_and(|v| !v.is_empty());
    let body_at = a.body.min(text.len());
    drop(a);
    Ok(Prepared {
        overview,
        message_id,
        newsgroups: checked.newsgroups,
        header,
        text,
        body_at,
        path,
        control: checked.control,
        approved,
        date,
    })
}

fn build_header(
    a: &Article,
    checked: &Checked,
    origin: &Origin,
    cx: &Context,
    path: &str,
    message_id: &str,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(1024);
    let mut push = |name: &str, value: &[u8]| {
        h.extend_from_slice(name.as_bytes());
        h.push(b':');
        h.extend_from_slice(value);
        h.extend_from_slice(b"\r\n");
    };
    push("Path", format!(" {path}").as_bytes());
    for f in &a.fields {
        let n = f.name;
        if n.eq_ignore_ascii_case("Path") || SERVER_FIELDS.iter().any(|s| s.eq_ignore_ascii_case(n))
        {
            continue;
        }
        push(n, f.value);
    }
    if let Origin::Post { host, user } = origin {
        if checked.message_id.is_none() {
            push("Message-ID", format!(" {message_id}").as_bytes());
        }
        if checked.date.is_none() {
            push(
                "Date",
                format!(" {}", crate::calendar::rfc5322_date(cx.now.max(0) as u64)).as_bytes(),
            );
        }
        push(
            "Injection-Date",
            format!(" {}", crate::calendar::rfc5322_date(cx.now.max(0) as u64)).as_bytes(),
        );
        let mut info = format!(" {}; posting-host=\"{}\"", cx.path_identity, quoted(host));
        if let Some(u) = user {
            info.push_str(&format!("; posting-account=\"{}\"", quoted(u)));
        }
        push("Injection-Info", info.as_bytes());
    }
    h
}

/// The stored form of a prepared article with its Xref value: the header,
/// `Xref:`, the empty line and the body, dot-stuffed with CRLFs and ended
/// by ".\r\n" (INN's wire format: ARTICLE sends it as it is). Also returns
/// the size of the article text (for :bytes) and the body's line count.
pub fn stored_form(p: &Prepared, xref: Option<&str>) -> (Vec<u8>, u64, u64) {
    let xref = xref.map(|x| format!("Xref: {x}\r\n"));
    let xref = xref.as_deref().unwrap_or("").as_bytes();
    let body = p.body();
    let size = (p.header.len() + xref.len() + 2 + body.len()) as u64;
    let lines = memchr::memmem::find_iter(body, b"\r\n").count() as u64;
    // Stuffed piece by piece: the stuffer keeps its place across them.
    let mut out = Vec::with_capacity(size as usize + 64);
    let mut s = crate::wire::DotStuffer::new();
    for piece in [&p.header[..], xref, b"\r\n", body] {
        s.push(piece, &mut out);
    }
    s.finish(&mut out);
    (out, size, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            path_identity: "news.example",
            now: 1_800_000_000,
            max_size: 10_000,
            history_lifetime: 86_400 * 30,
            unique: "u1",
        }
    }

    fn post() -> Origin {
        Origin::Post {
            host: "192.0.2.1".into(),
            user: Some("demo".into()),
        }
    }

    fn peer(id: &str) -> Origin {
        Origin::Peer {
            name: "up".into(),
            offered: id.into(),
        }
    }

    const POST: &[u8] =
        b"From: A <a@example.org>\r\nNewsgroups: lab.test\r\nSubject: hi\r\nXref: evil x:1\r\n\r\n.dot\r\nbody\r\n";

    #[test]
    fn a_post_gets_its_fields() {
        let p = prepare(POST.to_vec(), &post(), &cx()).unwrap();
        assert_eq!(p.message_id, "<u1@news.example>");
        assert_eq!(p.path, "news.example!.POSTED!not-for-mail");
        let h = String::from_utf8(p.header.clone()).unwrap();
        assert!(
            h.starts_with("Path: news.example!.POSTED!not-for-mail\r\n"),
            "{h}"
        );
        assert!(h.contains("Message-ID: <u1@news.example>\r\n"));
        assert!(h.contains("\r\nDate: "));
        assert!(h.contains("\r\nInjection-Date: "));
        assert!(h.contains(
            "Injection-Info: news.example; posting-host=\"192.0.2.1\"; posting-account=\"demo\"\r\n"
        ));
        assert!(!h.contains("evil"));
        let (stored, size, lines) = stored_form(&p, Some("news.example lab.test:1"));
        let s = String::from_utf8(stored).unwrap();
        assert!(s.contains("Xref: news.example lab.test:1\r\n\r\n..dot\r\nbody\r\n.\r\n"));
        assert_eq!(lines, 2);
        assert_eq!(size as usize, s.len() - 3 - 1);
    }

    #[test]
    fn post_checks() {
        let refuse = |t: &[u8]| prepare(t.to_vec(), &post(), &cx()).unwrap_err().0;
        assert!(refuse(b"From: a@b\r\nSubject: x\r\n\r\n").contains("Newsgroups"));
        assert!(
            refuse(b"From: a@b\r\nNewsgroups: a\r\nSubject: x\r\n\r\nnul\0\r\n").contains("NUL")
        );
        assert!(refuse(
            b"From: a@b\r\nNewsgroups: a\r\nSubject: x\r\nDate: 1 Jan 2099 00:00:00 GMT\r\n\r\n"
        )
        .contains("future"));
        let big = [POST, &vec![b'x'; 10_000][..], b"\r\n"].concat();
        assert!(refuse(&big).contains("too large"));
    }

    #[test]
    fn relayed_articles() {
        let art = b"Path: up.example!origin\r\nFrom: a@b\r\nNewsgroups: lab.test\r\nSubject: s\r\nMessage-ID: <1@o>\r\nDate: 15 Jan 2027 08:00:00 GMT\r\n\r\nb\r\n";
        let p = prepare(art.to_vec(), &peer("<1@o>"), &cx()).unwrap();
        assert_eq!(p.path, "news.example!up.example!origin");
        assert!(!String::from_utf8_lossy(&p.header).contains("Injection"));
        let refuse = |t: &[u8], id: &str| prepare(t.to_vec(), &peer(id), &cx()).unwrap_err().0;
        assert!(refuse(art, "<2@o>").contains("does not match"));
        let looped = String::from_utf8_lossy(art).replace("up.example!", "news.example!");
        assert!(refuse(looped.as_bytes(), "<1@o>").contains("loop"));
        let old = String::from_utf8_lossy(art).replace("2027", "1990");
        assert!(refuse(old.as_bytes(), "<1@o>").contains("too old"));
        let no_path = String::from_utf8_lossy(art).replace("Path: up.example!origin\r\n", "");
        assert!(refuse(no_path.as_bytes(), "<1@o>").contains("Path"));
    }
}
