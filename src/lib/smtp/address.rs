//! RFC 5321 paths and mailboxes: `<>`, `<local@domain>`, quoted local
//! parts, address literals, source routes (accepted and ignored), and the
//! RFC 3461 xtext encoding. Pure, no I/O.

/// A parsed mailbox `local@domain` (or a bare local part such as
/// `postmaster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part as written (a quoted one keeps its quotes).
    pub local: String,
    /// The domain as written, or None for a bare local part.
    pub domain: Option<String>,
}

impl Mailbox {
    /// The address as it goes into the envelope: `local@domain`.
    pub fn address(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{}", self.local, d),
            None => self.local.clone(),
        }
    }

    /// The local part with quoting removed (`"a b"` -> `a b`).
    pub fn local_unquoted(&self) -> String {
        unquote(&self.local)
    }

    /// Whether any part is non-ASCII (needs SMTPUTF8).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || self.domain.as_deref().is_some_and(|d| !d.is_ascii())
    }
}

/// A reverse or forward path: the null path `<>` or a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    Null,
    Mailbox(Mailbox),
}

/// Split a MAIL/RCPT argument (after the colon) into the path text and the
/// rest (the ESMTP parameters). Accepts `<...>` with angle brackets, and,
/// leniently, a bare address without them.
pub fn split_path(arg: &str) -> Result<(&str, &str), &'static str> {
    let arg = arg.trim_start_matches(' ');
    if let Some(rest) = arg.strip_prefix('<') {
        // The closing bracket is the first '>' outside a quoted string.
        let mut in_quote = false;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quote => escaped = true,
                '"' => in_quote = !in_quote,
                '>' if !in_quote => {
                    let after = &rest[i + 1..];
                    if !after.is_empty() && !after.starts_with(' ') {
                        return Err("Syntax error in parameters");
                    }
                    return Ok((&rest[..i], after.trim_start_matches(' ')));
                }
                _ => {}
            }
        }
        Err("Missing '>' in address")
    } else {
        if arg.is_empty() {
            return Err("Missing address");
        }
        match arg.find(' ') {
            Some(i) => Ok((&arg[..i], arg[i..].trim_start_matches(' '))),
            None => Ok((arg, "")),
        }
    }
}

/// Parse the inside of `<...>`.
pub fn parse_path(inner: &str) -> Result<Path, &'static str> {
    if inner.is_empty() {
        return Ok(Path::Null);
    }
    // A source route `@a,@b:` is obsolete: accept it and ignore it.
    let inner = if inner.starts_with('@') {
        match inner.find(':') {
            Some(i) => &inner[i + 1..],
            None => return Err("Bad source route"),
        }
    } else {
        inner
    };
    parse_mailbox(inner).map(Path::Mailbox)
}

/// Parse `local@domain` or a bare local part.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, &'static str> {
    if s.len() > 320 {
        return Err("Address too long");
    }
    let (local, rest) = if s.starts_with('"') {
        let end = quoted_end(s).ok_or("Unterminated quoted local part")?;
        (&s[..end], &s[end..])
    } else {
        match s.rfind('@') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        }
    };
    if local.is_empty() || local.len() > 128 {
        return Err("Bad local part");
    }
    if !local.starts_with('"') && !valid_dot_string(local) {
        return Err("Bad local part");
    }
    let domain = if rest.is_empty() {
        None
    } else {
        let d = rest.strip_prefix('@').ok_or("Bad address")?;
        if !valid_domain(d) {
            return Err("Bad domain");
        }
        Some(d.to_string())
    };
    Ok(Mailbox {
        local: local.to_string(),
        domain,
    })
}

/// Index just past the closing quote of a quoted string at the start of `s`.
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            if c.is_control() && c != '\t' {
                return None;
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            c if c.is_control() => return None,
            _ => {}
        }
    }
    None
}

fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn valid_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// A domain name or an address literal `[1.2.3.4]` / `[IPv6:...]`.
pub fn valid_domain(d: &str) -> bool {
    if d.is_empty() || d.len() > 255 {
        return false;
    }
    if let Some(lit) = d.strip_prefix('[') {
        let Some(lit) = lit.strip_suffix(']') else {
            return false;
        };
        if let Some(v6) = lit.strip_prefix("IPv6:") {
            return v6.parse::<std::net::Ipv6Addr>().is_ok();
        }
        return lit.parse::<std::net::Ipv4Addr>().is_ok();
    }
    d.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
    })
}

/// Remove the quoting of a quoted local part.
pub fn unquote(local: &str) -> String {
    let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
        return local.to_string();
    };
    let mut out = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        if !escaped && c == '\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

/// Decode RFC 3461 xtext (`+HH` escapes); None when malformed.
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c @ b'!'..=b'~' if c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encode as RFC 3461 xtext.
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(l: &str, d: Option<&str>) -> Path {
        Path::Mailbox(Mailbox {
            local: l.into(),
            domain: d.map(String::from),
        })
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path(""), Ok(Path::Null));
        assert_eq!(parse_path("a@b.c"), Ok(mb("a", Some("b.c"))));
        assert_eq!(parse_path("postmaster"), Ok(mb("postmaster", None)));
        assert_eq!(
            parse_path("@r1.x,@r2.y:joe@z.example"),
            Ok(mb("joe", Some("z.example")))
        );
        assert_eq!(
            parse_path("\"a b@c\"@d.e"),
            Ok(mb("\"a b@c\"", Some("d.e")))
        );
        assert_eq!(
            parse_path("x@[127.0.0.1]"),
            Ok(mb("x", Some("[127.0.0.1]")))
        );
        assert_eq!(parse_path("x@[IPv6:::1]"), Ok(mb("x", Some("[IPv6:::1]"))));
        assert_eq!(
            parse_path("first.last+tag@ex.org").unwrap(),
            mb("first.last+tag", Some("ex.org"))
        );
        assert_eq!(
            parse_path("jöe@exämple.org"),
            Ok(mb("jöe", Some("exämple.org")))
        );
        for bad in [
            "a@",
            "@",
            "a..b@c",
            ".a@b",
            "a@b..c",
            "a b@c",
            "a@-b.c",
            "\"unterminated@x",
            "a@[1.2.3]",
            "a@b_c",
            "a@[IPv6:zz]",
            "@r1:",
            "<a@b>",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn split() {
        assert_eq!(split_path("<a@b>"), Ok(("a@b", "")));
        assert_eq!(split_path(" <a@b> SIZE=10"), Ok(("a@b", "SIZE=10")));
        assert_eq!(split_path("<>"), Ok(("", "")));
        assert_eq!(split_path("<\"a>b\"@c>"), Ok(("\"a>b\"@c", "")));
        assert_eq!(
            split_path("a@b BODY=8BITMIME"),
            Ok(("a@b", "BODY=8BITMIME"))
        );
        assert!(split_path("<a@b").is_err());
        assert!(split_path("<a@b>x").is_err());
        assert!(split_path("").is_err());
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("\"a\\\"b c\""), "a\"b c");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn xtext() {
        assert_eq!(
            xtext_decode("rfc822;a+2Bb@c").as_deref(),
            Some("rfc822;a+b@c")
        );
        assert_eq!(xtext_decode("a+2b"), None);
        assert_eq!(xtext_decode("a+2"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(
            xtext_decode(&xtext_encode("x+y=z")).as_deref(),
            Some("x+y=z")
        );
    }
}
