//! Message structure for FETCH and SEARCH: the part tree (from the
//! mail-parser crate, which keeps each part's offsets and descends into
//! message/rfc822), ENVELOPE, BODY and BODYSTRUCTURE, sections and BINARY.
//! Pure: it works on the message's wire form (CRLF line ends), so every
//! offset is an offset on the wire.

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, PartType};

use super::command::{Section, SectionText};
use super::syntax::{nstring, nstring_into, quote, quote_into};

/// The message with every bare LF made CRLF (the wire form IMAP counts in).
pub fn to_wire(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 32 + 16);
    // Line by line, each copied whole (a byte at a time cost a whole
    // mailbox's FETCH BODY[] several percent).
    let mut rest = stored;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        out.extend_from_slice(&rest[..i]);
        if i == 0 || rest[i - 1] != b'\r' {
            out.push(b'\r');
        }
        out.push(b'\n');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out
}

/// One body part: where its header and body are, and its MIME fields.
#[derive(Clone, Debug, Default)]
pub struct Part {
    pub header: (usize, usize),
    pub body: (usize, usize),
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub encoding: String,
    pub md5: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Option<String>,
    pub location: Option<String>,
    pub children: Vec<Part>,
    /// The message inside a message/rfc822 part.
    pub message: Option<Box<Part>>,
}

impl Part {
    pub fn is_multipart(&self) -> bool {
        self.ctype.eq_ignore_ascii_case("multipart")
    }
}

fn unfold(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// The raw (undecoded, unfolded) value of a header field of a header block.
pub fn raw_header(header: &[u8], name: &str) -> Option<String> {
    let mut found = None;
    for_each_field(header, |n, v| {
        if found.is_none() && n.eq_ignore_ascii_case(name.as_bytes()) {
            found = Some(unfold(v));
        }
    });
    found
}

/// Each field of a header block: name and raw value (continuations in).
pub fn for_each_field<'a>(header: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) {
    for field in crate::mail::header_fields(header) {
        if let Some(colon) = field.iter().position(|&c| c == b':') {
            let name = &field[..colon];
            if !name.is_empty() && !name.iter().any(|c| c.is_ascii_whitespace()) {
                f(name, &field[colon + 1..]);
            }
        }
    }
}

/// The part tree of a message in wire form.
pub fn structure(raw: &[u8]) -> Part {
    match MessageParser::new().parse(raw) {
        Some(m) => build(&m, 0, raw),
        None => Part {
            header: (0, 0),
            body: (0, raw.len()),
            ctype: "text".into(),
            subtype: "plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
            encoding: "7bit".into(),
            ..Part::default()
        },
    }
}

fn text_value(v: &HeaderValue) -> Option<String> {
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => Some(l.join(" ")),
        _ => None,
    }
}

fn build(m: &mail_parser::Message, id: usize, raw: &[u8]) -> Part {
    let p = &m.parts[id];
    let clamp = |x: u32| (x as usize).min(raw.len());
    let mut part = Part {
        header: (clamp(p.offset_header), clamp(p.offset_body)),
        body: (
            clamp(p.offset_body),
            clamp(p.offset_end).max(clamp(p.offset_body)),
        ),
        ctype: "text".into(),
        subtype: "plain".into(),
        encoding: "7bit".into(),
        ..Part::default()
    };
    let mut has_ctype = false;
    for h in &p.headers {
        match (&h.name, &h.value) {
            (HeaderName::ContentType, HeaderValue::ContentType(ct)) => {
                has_ctype = true;
                part.ctype = ct.c_type.to_string();
                part.subtype = ct.c_subtype.as_deref().unwrap_or("").to_string();
                if let Some(attrs) = &ct.attributes {
                    part.params = attrs
                        .iter()
                        .map(|a| (a.name.to_string(), a.value.to_string()))
                        .collect();
                }
            }
            (HeaderName::ContentDisposition, HeaderValue::ContentType(ct)) => {
                let params = ct
                    .attributes
                    .as_ref()
                    .map(|a| {
                        a.iter()
                            .map(|a| (a.name.to_string(), a.value.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                part.disposition = Some((ct.c_type.to_string(), params));
            }
            (HeaderName::ContentTransferEncoding, v) => {
                if let Some(t) = text_value(v) {
                    part.encoding = t;
                }
            }
            (HeaderName::ContentId, v) => {
                let rawv = &raw[clamp(h.offset_start)..clamp(h.offset_end)];
                let _ = v;
                part.id = Some(unfold(rawv));
            }
            (HeaderName::ContentDescription, _) => {
                part.description = Some(unfold(&raw[clamp(h.offset_start)..clamp(h.offset_end)]));
            }
            (HeaderName::ContentLocation, _) => {
                part.location = Some(unfold(&raw[clamp(h.offset_start)..clamp(h.offset_end)]));
            }
            (HeaderName::ContentLanguage, _) => {
                part.language = Some(unfold(&raw[clamp(h.offset_start)..clamp(h.offset_end)]));
            }
            (HeaderName::Other(n), _) if n.eq_ignore_ascii_case("Content-MD5") => {
                part.md5 = Some(unfold(&raw[clamp(h.offset_start)..clamp(h.offset_end)]));
            }
            _ => {}
        }
    }
    if part.ctype.eq_ignore_ascii_case("text")
        && !part
            .params
            .iter()
            .any(|p| p.0.eq_ignore_ascii_case("charset"))
        && !has_ctype
    {
        part.params.push(("charset".into(), "us-ascii".into()));
    }
    match &p.body {
        PartType::Multipart(ids) => {
            part.children = ids.iter().map(|&c| build(m, c as usize, raw)).collect();
            if part.children.is_empty() {
                // A multipart whose boundary never came: one empty text part.
                part.ctype = "text".into();
                part.subtype = "plain".into();
            }
        }
        // Only a message stored as is shares our offsets; an encoded one
        // is a leaf.
        PartType::Message(inner)
            if p.encoding == mail_parser::Encoding::None && !inner.parts.is_empty() =>
        {
            let mut m = build(inner, 0, raw);
            // The message ends where its part does (an epilogue included).
            m.body.1 = part.body.1.max(m.body.0);
            part.message = Some(Box::new(m));
        }
        _ => {}
    }
    // The multipart itself came through a message part with our offsets.
    part
}

fn lines(b: &[u8]) -> usize {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    if !b.is_empty() && b.last() != Some(&b'\n') {
        n + 1
    } else {
        n
    }
}

fn params_list(params: &[(String, String)]) -> Vec<u8> {
    if params.is_empty() {
        return b"NIL".to_vec();
    }
    let mut out = b"(".to_vec();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(quote(k.as_bytes()));
        out.push(b' ');
        out.extend(quote(encode_word_if_needed(v).as_bytes()));
    }
    out.push(b')');
    out
}

fn opt(s: &Option<String>) -> Vec<u8> {
    nstring(s.as_deref().map(|s| s.as_bytes()))
}

/// BODY (`extended` false) or BODYSTRUCTURE of a part.
pub fn body_structure(raw: &[u8], p: &Part, extended: bool) -> Vec<u8> {
    let mut out = b"(".to_vec();
    if p.is_multipart() {
        for c in &p.children {
            out.extend(body_structure(raw, c, extended));
        }
        out.push(b' ');
        out.extend(quote(p.subtype.as_bytes()));
        if extended {
            out.push(b' ');
            out.extend(params_list(&p.params));
            out.push(b' ');
            extension_tail(&mut out, p);
        }
        out.push(b')');
        return out;
    }
    out.extend(quote(p.ctype.as_bytes()));
    out.push(b' ');
    out.extend(quote(p.subtype.as_bytes()));
    out.push(b' ');
    out.extend(params_list(&p.params));
    out.push(b' ');
    out.extend(opt(&p.id));
    out.push(b' ');
    out.extend(opt(&p.description));
    out.push(b' ');
    out.extend(quote(p.encoding.as_bytes()));
    let body = &raw[p.body.0..p.body.1];
    out.extend(format!(" {}", body.len()).as_bytes());
    if let Some(m) = &p.message {
        out.push(b' ');
        out.extend(envelope(&raw[m.header.0..m.header.1]));
        out.push(b' ');
        out.extend(body_structure(raw, m, extended));
        out.extend(format!(" {}", lines(body)).as_bytes());
    } else if p.ctype.eq_ignore_ascii_case("text") {
        out.extend(format!(" {}", lines(body)).as_bytes());
    }
    if extended {
        out.push(b' ');
        out.extend(opt(&p.md5));
        out.push(b' ');
        extension_tail(&mut out, p);
    }
    out.push(b')');
    out
}

fn extension_tail(out: &mut Vec<u8>, p: &Part) {
    match &p.disposition {
        None => out.extend(b"NIL"),
        Some((d, params)) => {
            out.push(b'(');
            out.extend(quote(d.as_bytes()));
            out.push(b' ');
            out.extend(params_list(params));
            out.push(b')');
        }
    }
    out.push(b' ');
    out.extend(opt(&p.language));
    out.push(b' ');
    out.extend(opt(&p.location));
}

/// Non-ASCII text as an RFC 2047 encoded word, so that it can travel as a
/// quoted string to clients that expect ASCII.
fn encode_word_if_needed(s: &str) -> String {
    if s.is_ascii() {
        s.to_string()
    } else {
        format!(
            "=?utf-8?b?{}?=",
            crate::auth::sasl::b64_encode(s.as_bytes())
        )
    }
}

/// The addresses of field `name`, as ENVELOPE's list, appended to `out`;
/// false (nothing appended) when there are none.
fn address_list(out: &mut Vec<u8>, msg: Option<&mail_parser::Message>, name: HeaderName) -> bool {
    let Some(addr) = msg
        .and_then(|m| m.header(name))
        .and_then(|h| h.as_address())
    else {
        return false;
    };
    let start = out.len();
    out.push(b'(');
    let push = |a: &mail_parser::Addr, out: &mut Vec<u8>| {
        let Some(address) = a.address.as_deref() else {
            return;
        };
        // A source route (`@route:user@host`) is the address's adl.
        let (adl, address) = match address.strip_prefix('@').and_then(|r| r.split_once(':')) {
            Some((route, rest)) => (Some(format!("@{route}")), rest),
            None => (None, address),
        };
        let (mailbox, host) = match address.rsplit_once('@') {
            Some((m, h)) => (m, Some(h)),
            None => (address, None),
        };
        out.push(b'(');
        match a.name.as_deref() {
            Some(n) if n.is_ascii() => quote_into(out, n.as_bytes()),
            Some(n) => quote_into(out, encode_word_if_needed(n).as_bytes()),
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        nstring_into(out, adl.as_deref().map(|s| s.as_bytes()));
        out.push(b' ');
        quote_into(out, mailbox.as_bytes());
        out.push(b' ');
        nstring_into(out, host.map(|h| h.as_bytes()));
        out.push(b')');
    };
    match addr {
        Address::List(list) => {
            for a in list {
                push(a, out);
            }
        }
        Address::Group(groups) => {
            for g in groups {
                match &g.name {
                    Some(n) => {
                        out.extend(b"(NIL NIL ");
                        quote_into(out, encode_word_if_needed(n).as_bytes());
                        out.extend(b" NIL)");
                        for a in &g.addresses {
                            push(a, out);
                        }
                        out.extend(b"(NIL NIL NIL NIL)");
                    }
                    None => {
                        for a in &g.addresses {
                            push(a, out);
                        }
                    }
                }
            }
        }
    }
    if out.len() == start + 1 {
        out.truncate(start);
        return false;
    }
    out.push(b')');
    true
}

/// A header field's raw value, unfolded and trimmed, as an nstring
/// appended to `out` (ASCII, the common case, without a copy).
fn push_text(out: &mut Vec<u8>, raw: Option<&[u8]>) {
    let Some(raw) = raw else {
        out.extend_from_slice(b"NIL");
        return;
    };
    if !raw.is_ascii() {
        quote_into(out, unfold(raw).as_bytes());
        return;
    }
    let v = trim_ascii_space(raw);
    let unfolded = |c: &&u8| **c != b'\r' && **c != b'\n';
    let len = v.iter().filter(unfolded).count();
    if len < 1024 && v.iter().filter(unfolded).all(|&c| c >= 0x20 && c != 0x7f) {
        out.push(b'"');
        for &c in v.iter().filter(unfolded) {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
        out.extend(v.iter().filter(unfolded));
    }
}

/// What `str::trim` takes off both ends, for ASCII bytes.
fn trim_ascii_space(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |p| p + 1);
    &b[start..end]
}

/// ENVELOPE of a message, from its header block.
pub fn envelope(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    envelope_into(&mut out, header);
    out
}

/// ENVELOPE of a message, appended to `out`: written in place, with one
/// parse of the address fields (this runs once a message for FETCH 1:*
/// ENVELOPE, where allocations were most of the cost).
pub fn envelope_into(out: &mut Vec<u8>, header: &[u8]) {
    // One pass over the header for the ten fields ENVELOPE names (the
    // first of each).
    const NAMES: [&str; 10] = [
        "date",
        "subject",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "in-reply-to",
        "message-id",
    ];
    const DATE: usize = 0;
    const SUBJECT: usize = 1;
    const IN_REPLY_TO: usize = 8;
    const MESSAGE_ID: usize = 9;
    let mut found: [Option<&[u8]>; 10] = [None; 10];
    for_each_field(header, |n, v| {
        if let Some(i) = NAMES
            .iter()
            .position(|w| n.eq_ignore_ascii_case(w.as_bytes()))
        {
            if found[i].is_none() {
                found[i] = Some(v);
            }
        }
    });
    // The address fields found, parsed in one go.
    const ADDRESS_FIELDS: [(usize, &str, HeaderName); 6] = [
        (2, "From", HeaderName::From),
        (3, "Sender", HeaderName::Sender),
        (4, "Reply-To", HeaderName::ReplyTo),
        (5, "To", HeaderName::To),
        (6, "Cc", HeaderName::Cc),
        (7, "Bcc", HeaderName::Bcc),
    ];
    let mut fields = Vec::new();
    for (i, name, _) in ADDRESS_FIELDS {
        if let Some(v) = found[i] {
            fields.extend_from_slice(name.as_bytes());
            fields.extend_from_slice(b": ");
            if v.is_ascii() {
                fields.extend(
                    trim_ascii_space(v)
                        .iter()
                        .filter(|&&c| c != b'\r' && c != b'\n'),
                );
            } else {
                fields.extend_from_slice(unfold(v).as_bytes());
            }
            fields.extend_from_slice(b"\r\n");
        }
    }
    fields.extend_from_slice(b"\r\n");
    let parsed = (fields.len() > 2)
        .then(|| MessageParser::new().parse_headers(&fields))
        .flatten();
    out.push(b'(');
    push_text(out, found[DATE]);
    out.push(b' ');
    push_text(out, found[SUBJECT]);
    let mut from: Option<(usize, usize)> = None;
    for (_, _, name) in ADDRESS_FIELDS {
        out.push(b' ');
        let start = out.len();
        if address_list(out, parsed.as_ref(), name.clone()) {
            if name == HeaderName::From {
                from = Some((start, out.len()));
            }
            continue;
        }
        // Sender and Reply-To default to From (RFC 3501 7.4.2).
        match (name, from) {
            (HeaderName::Sender | HeaderName::ReplyTo, Some((a, b))) => {
                out.extend_from_within(a..b);
            }
            _ => out.extend_from_slice(b"NIL"),
        }
    }
    out.push(b' ');
    push_text(out, found[IN_REPLY_TO]);
    out.push(b' ');
    push_text(out, found[MESSAGE_ID]);
    out.push(b')');
}

/// The part a path names (`[]`: the message).
fn find<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut p = root;
    for (depth, &n) in path.iter().enumerate() {
        // Inside a message/rfc822 part, numbers go on in its message.
        if depth > 0 {
            if let Some(m) = &p.message {
                p = m;
            }
        }
        if p.is_multipart() {
            p = p.children.get(n as usize - 1)?;
        } else if n == 1 {
            // A single-part message (or message/rfc822 body) is its own part 1.
        } else {
            return None;
        }
    }
    Some(p)
}

fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in crate::mail::header_fields(header) {
        if f == b"\r\n" || f == b"\n" {
            continue;
        }
        let Some(colon) = f.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&f[..colon])
            .trim()
            .to_ascii_uppercase();
        if names.contains(&name) != not {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of a section, or None when the part does not exist.
pub fn section(raw: &[u8], root: &Part, s: &Section) -> Option<Vec<u8>> {
    let part = find(root, &s.part)?;
    // HEADER, TEXT and the field lists of a part are those of the message
    // it holds (the top level's own for `[]`).
    let msg = if s.part.is_empty() {
        Some(part)
    } else {
        part.message.as_deref()
    };
    Some(match &s.text {
        None if s.part.is_empty() => raw.to_vec(),
        None => raw[part.body.0..part.body.1].to_vec(),
        Some(SectionText::Mime) => raw[part.header.0..part.header.1].to_vec(),
        Some(SectionText::Header) => {
            let m = msg?;
            raw[m.header.0..m.header.1].to_vec()
        }
        Some(SectionText::Text) => {
            let m = msg?;
            raw[m.body.0..m.body.1].to_vec()
        }
        Some(SectionText::HeaderFields(names)) => {
            let m = msg?;
            header_fields(&raw[m.header.0..m.header.1], names, false)
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            let m = msg?;
            header_fields(&raw[m.header.0..m.header.1], names, true)
        }
    })
}

/// Why BINARY cannot give a part.
#[derive(Debug, PartialEq, Eq)]
pub enum BinaryError {
    NoSuchPart,
    /// The content transfer encoding is not one we can undo.
    UnknownEncoding,
}

/// BINARY[path]: the part's body with its transfer encoding undone.
pub fn binary(raw: &[u8], root: &Part, path: &[u32]) -> Result<Vec<u8>, BinaryError> {
    if path.is_empty() {
        return Ok(raw.to_vec());
    }
    let part = find(root, path).ok_or(BinaryError::NoSuchPart)?;
    if part.is_multipart() {
        return Err(BinaryError::NoSuchPart);
    }
    let body = &raw[part.body.0..part.body.1];
    match part.encoding.to_ascii_lowercase().as_str() {
        "7bit" | "8bit" | "binary" | "" => Ok(body.to_vec()),
        "base64" => {
            let text: String = body
                .iter()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|&c| c as char)
                .collect();
            crate::auth::sasl::b64_decode(&text).ok_or(BinaryError::UnknownEncoding)
        }
        "quoted-printable" => Ok(qp_decode(body)),
        _ => Err(BinaryError::UnknownEncoding),
    }
}

/// Quoted-printable (RFC 2045 6.7): trailing white space of each line is
/// dropped, a line ending in `=` continues on the next, `=XX` is an octet.
fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut lines = input.split(|&c| c == b'\n').peekable();
    while let Some(mut l) = lines.next() {
        let last = lines.peek().is_none();
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        while matches!(l.last(), Some(b' ') | Some(b'\t')) {
            l = &l[..l.len() - 1];
        }
        let soft = l.last() == Some(&b'=');
        if soft {
            l = &l[..l.len() - 1];
        }
        qp_line(l, &mut out);
        if !soft && !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn qp_line(b: &[u8], out: &mut Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
}

/// The text of a message's header fields named `name` (`None`: every
/// field), for SEARCH: the raw value, and its RFC 2047 decoding (by
/// mail-parser) when it holds encoded words. Only the fields asked for
/// are parsed.
pub fn decoded_header(header: &[u8], name: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for_each_field(header, |n, v| {
        if name.is_some_and(|want| !n.eq_ignore_ascii_case(want.as_bytes())) {
            return;
        }
        let raw = unfold(v);
        // Only encoded words, and comments inside addresses (`<a (x)@ b>`
        // is a@b), need the parser; the rest matches as it stands.
        let address = [
            b"from".as_slice(),
            b"to",
            b"cc",
            b"bcc",
            b"reply-to",
            b"sender",
        ]
        .iter()
        .any(|a| n.eq_ignore_ascii_case(a));
        if !(raw.contains("=?") || address && raw.contains('(')) {
            out.push(raw);
            return;
        }
        let mut field = n.to_vec();
        field.extend_from_slice(b":");
        field.extend_from_slice(v);
        field.extend_from_slice(b"\r\n");
        let mut text = match MessageParser::new().parse_headers(&field) {
            Some(msg) => msg
                .headers()
                .first()
                .map(|h| header_text(&h.value))
                .unwrap_or_default(),
            None => String::new(),
        };
        // The raw text too: what the decoder dropped must still match.
        text.push(' ');
        text.push_str(&raw);
        out.push(text);
    });
    out
}

fn header_text(v: &HeaderValue) -> String {
    match v {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        HeaderValue::Address(a) => {
            let mut s = String::new();
            let list: Vec<&mail_parser::Addr> = match a {
                Address::List(l) => l.iter().collect(),
                Address::Group(g) => g.iter().flat_map(|g| g.addresses.iter()).collect(),
            };
            for a in list {
                if let Some(n) = &a.name {
                    s.push_str(n);
                    s.push(' ');
                }
                if let Some(ad) = &a.address {
                    s.push('<');
                    s.push_str(ad);
                    s.push_str("> ");
                }
            }
            s
        }
        _ => String::new(),
    }
}

/// Every text part's decoded content, for SEARCH BODY and TEXT.
pub fn body_texts(raw: &[u8]) -> Vec<String> {
    let Some(m) = MessageParser::new().parse(raw) else {
        return vec![String::from_utf8_lossy(raw).into_owned()];
    };
    let mut out = Vec::new();
    collect_texts(&m, &mut out, 0);
    out
}

fn collect_texts(m: &mail_parser::Message, out: &mut Vec<String>, depth: usize) {
    for p in &m.parts {
        match &p.body {
            PartType::Text(t) | PartType::Html(t) => out.push(t.to_string()),
            PartType::Message(inner) if depth < 8 => collect_texts(inner, out, depth + 1),
            PartType::InlineBinary(b) | PartType::Binary(b) => {
                if let Ok(s) = std::str::from_utf8(b) {
                    out.push(s.to_string());
                }
            }
            _ => {}
        }
    }
}

/// The day of the Date: field, as the start of that day in seconds,
/// its time and zone disregarded (SENTBEFORE, SENTON, SENTSINCE).
pub fn sent_day(header: &[u8]) -> Option<i64> {
    let msg = MessageParser::new().parse_headers(header)?;
    let d = msg.date()?;
    if d.month == 0 || d.day == 0 {
        return None;
    }
    Some(crate::calendar::days_from_civil(d.year as i64, d.month as u32, d.day as u32) * 86400)
}

/// The length of the header block (through the blank line).
pub fn header_len(wire: &[u8]) -> usize {
    crate::mail::store::folder::header_end(wire).unwrap_or(wire.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: \"A B\" <a@b.c>, =?utf-8?q?J=C3=B6rg?= <j@x.y>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n  folded\r\nMessage-ID: <1@x>\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nhello\r\nworld\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner text\r\n--YY--\r\n\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\nAAEC\r\n--XX--\r\nepilogue\r\n";

    fn s(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn addresses_with_comments_match_their_address() {
        let h = b"From: <user-from (comment)@ (comment) domain.org>\r\nTo: x@y\r\n\r\n";
        let v = decoded_header(h, Some("from"));
        assert!(
            v.iter().any(|f| f.contains("user-from@domain.org")),
            "{v:?}"
        );
    }

    #[test]
    fn wire_form() {
        assert_eq!(to_wire(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        // The same as a byte at a time: an LF not after CR gets one.
        let slow = |s: &[u8]| {
            let mut out = Vec::new();
            let mut prev = 0u8;
            for &b in s {
                if b == b'\n' && prev != b'\r' {
                    out.push(b'\r');
                }
                out.push(b);
                prev = b;
            }
            out
        };
        for case in [
            &b""[..],
            b"\n",
            b"\n\n",
            b"\r\n\n",
            b"\r\r\n",
            b"x\r",
            b"no end",
            b"\ra\n\rb\r\n\n\r",
        ] {
            assert_eq!(to_wire(case), slow(case), "{case:?}");
        }
    }

    #[test]
    fn envelope_of_a_message() {
        let e = s(&envelope(b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n  folded\r\nFrom: \"A B\" <a@b.c>, =?utf-8?q?J=C3=B6rg?= <j@x.y>\r\nTo: undisclosed-recipients:;\r\nCc: x@y.z\r\nMessage-ID: <1@x>\r\n\r\n"));
        assert_eq!(
            e,
            "(\"Thu, 1 Jan 2026 00:00:00 +0000\" \"=?utf-8?q?h=C3=A9?=  folded\" ((\"A B\" NIL \"a\" \"b.c\")(\"=?utf-8?b?SsO2cmc=?=\" NIL \"j\" \"x.y\")) ((\"A B\" NIL \"a\" \"b.c\")(\"=?utf-8?b?SsO2cmc=?=\" NIL \"j\" \"x.y\")) ((\"A B\" NIL \"a\" \"b.c\")(\"=?utf-8?b?SsO2cmc=?=\" NIL \"j\" \"x.y\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"x\" \"y.z\")) NIL NIL \"<1@x>\")"
        );
        assert_eq!(
            s(&envelope(b"\r\n")),
            "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn structure_and_sections() {
        let root = structure(MIXED);
        assert!(root.is_multipart());
        assert_eq!(root.children.len(), 3);
        let bs = s(&body_structure(MIXED, &root, true));
        assert!(bs.starts_with("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 2 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "), "{bs}");
        assert!(bs.contains("(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 4 NIL (\"attachment\" (\"filename\" \"a.bin\")) NIL NIL)"), "{bs}");
        assert!(
            bs.ends_with(" \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"),
            "{bs}"
        );
        let body = s(&body_structure(MIXED, &root, false));
        assert!(body.ends_with(" \"mixed\")"), "{body}");
        let sec = |p: &[u32], t: Option<SectionText>| {
            section(
                MIXED,
                &root,
                &Section {
                    part: p.to_vec(),
                    text: t,
                },
            )
            .map(|b| s(&b))
        };
        assert_eq!(sec(&[1], None).unwrap(), "hello\r\nworld");
        assert_eq!(sec(&[2, 1], None).unwrap(), "inner text");
        assert_eq!(
            sec(&[2], Some(SectionText::Header)).unwrap(),
            "Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
        );
        assert_eq!(
            sec(&[1], Some(SectionText::Mime)).unwrap(),
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        );
        assert_eq!(
            sec(
                &[],
                Some(SectionText::HeaderFields(vec![
                    "SUBJECT".into(),
                    "MESSAGE-ID".into()
                ]))
            )
            .unwrap(),
            "Subject: =?utf-8?q?h=C3=A9?=\r\n  folded\r\nMessage-ID: <1@x>\r\n\r\n"
        );
        assert!(
            sec(&[], Some(SectionText::HeaderFieldsNot(vec!["FROM".into()])))
                .unwrap()
                .starts_with("Subject:")
        );
        assert!(sec(&[], Some(SectionText::Text))
            .unwrap()
            .starts_with("preamble\r\n--XX"));
        assert_eq!(sec(&[], None).unwrap().len(), MIXED.len());
        assert_eq!(sec(&[4], None), None);
        assert_eq!(sec(&[1, 2], None), None);
        assert_eq!(sec(&[1], Some(SectionText::Header)), None);
        assert_eq!(binary(MIXED, &root, &[3]).unwrap(), vec![0, 1, 2]);
        assert_eq!(binary(MIXED, &root, &[9]), Err(BinaryError::NoSuchPart));
        // A plain message is its own part 1.
        let plain = b"Subject: x\r\n\r\nbody\r\n";
        let r = structure(plain);
        assert_eq!(
            section(
                plain,
                &r,
                &Section {
                    part: vec![1],
                    text: None
                }
            )
            .unwrap(),
            b"body\r\n"
        );
        assert_eq!(
            s(&body_structure(plain, &r, false)),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)"
        );
        assert_eq!(qp_decode(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        assert_eq!(
            qp_decode(b"hello  \r\nbar=\r\n\r\nfoo\t= \r\n=62\r\n"),
            b"hello\r\nbar\r\nfoo\tb\r\n"
        );
    }

    #[test]
    fn search_texts() {
        let h = decoded_header(
            b"Subject: =?utf-8?q?h=C3=A9llo?=\r\nFrom: =?utf-8?q?J=C3=B6rg?= <j@x.y>\r\n\r\n",
            Some("subject"),
        );
        assert!(h[0].contains("héllo"));
        let f = decoded_header(b"From: =?utf-8?q?J=C3=B6rg?= <j@x.y>\r\n\r\n", Some("FROM"));
        assert!(f[0].contains("Jörg") && f[0].contains("j@x.y"));
        let t = body_texts(MIXED);
        assert!(t.iter().any(|t| t.contains("hello")));
        assert!(t.iter().any(|t| t.contains("inner text")));
        assert_eq!(
            sent_day(b"Date: Thu, 1 Jan 2026 00:30:00 +0100\r\n\r\n"),
            Some(1767225600)
        );
    }
}
