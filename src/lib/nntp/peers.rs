//! The two small files an operator writes besides the configuration:
//!
//! - `peers_file`: lines `NAME HOST:PORT PATTERN` (CONTRACT.md). NAME is
//!   the peer's path identity: an article whose Path holds it is never
//!   offered to it. Articles whose newsgroups match the wildmat PATTERN are
//!   fed to HOST:PORT, and HOST may feed us.
//! - `moderators_file`: INN's moderators(5), lines `WILDMAT:ADDRESS`,
//!   `%s` in ADDRESS standing for the group name with dots made dashes;
//!   the first matching line wins.
//! - `expire_file`: lines `WILDMAT DAYS`, the last matching line wins
//!   (as INN's expire.ctl); groups no line matches keep `article_lifetime`.
//!
//! `#` starts a comment; blank lines are ignored. Parsing is pure; a bad
//! line is an error naming its number, so that `-t` catches it.

use super::wildmat::Wildmat;

/// One peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub pattern: Wildmat,
}

/// Whether `name` may be a peer's name (it is also a file name in
/// outgoing/): letters, digits, `. - _`, not starting with a dot.
pub fn valid_peer_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn content(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

/// Parse a peers file; the error names the line.
pub fn parse_peers(text: &str) -> Result<Vec<Peer>, String> {
    let mut out: Vec<Peer> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = content(line);
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, hostport, pattern] = words[..] else {
            return Err(bad("expected NAME HOST:PORT PATTERN"));
        };
        if !valid_peer_name(name) {
            return Err(bad("bad peer name"));
        }
        if out.iter().any(|p| p.name == name) {
            return Err(bad("peer named twice"));
        }
        let (host, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| bad("expected HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("bad port"))?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(bad("bad host"));
        }
        let pattern = Wildmat::parse(pattern).map_err(|e| bad(e.0))?;
        out.push(Peer {
            name: name.to_string(),
            host: host.to_string(),
            port,
            pattern,
        });
    }
    Ok(out)
}

/// One line of the moderators file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moderator {
    pub pattern: Wildmat,
    pub address: String,
}

pub fn parse_moderators(text: &str) -> Result<Vec<Moderator>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = content(line);
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let (pat, addr) = line
            .split_once(':')
            .ok_or_else(|| bad("expected WILDMAT:ADDRESS"))?;
        let addr = addr.trim();
        if addr.is_empty()
            || addr.len() > 256
            || !addr.contains('@')
            || addr
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>')
            || addr.matches('%').count() > addr.matches("%s").count()
        {
            return Err(bad("bad address"));
        }
        out.push(Moderator {
            pattern: Wildmat::parse(pat.trim()).map_err(|e| bad(e.0))?,
            address: addr.to_string(),
        });
    }
    Ok(out)
}

/// The moderator's address for `group`, if a line matches.
pub fn moderator_for(list: &[Moderator], group: &str) -> Option<String> {
    list.iter()
        .find(|m| m.pattern.matches(group))
        .map(|m| m.address.replace("%s", &group.replace('.', "-")))
}

/// One line of the expire file: groups and their age in days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpireRule {
    pub pattern: Wildmat,
    /// None: never expire.
    pub days: Option<u64>,
}

pub fn parse_expire(text: &str) -> Result<Vec<ExpireRule>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = content(line);
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let [pat, days] = words[..] else {
            return Err(bad("expected WILDMAT DAYS"));
        };
        let days = match days {
            "never" => None,
            d => Some(d.parse().map_err(|_| bad("DAYS is a number or never"))?),
        };
        out.push(ExpireRule {
            pattern: Wildmat::parse(pat).map_err(|e| bad(e.0))?,
            days,
        });
    }
    Ok(out)
}

/// How long `group`'s articles are kept, in seconds (None: for ever).
pub fn lifetime_for(rules: &[ExpireRule], group: &str, default: Option<u64>) -> Option<u64> {
    match rules.iter().rev().find(|r| r.pattern.matches(group)) {
        Some(r) => r.days.map(|d| d.saturating_mul(86_400)),
        None => default,
    }
}

/// Fuzzing entry point: any bytes as a peers, moderators and expire file.
pub fn fuzz_peers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_peers(&text);
    if let Ok(m) = parse_moderators(&text) {
        let _ = moderator_for(&m, "comp.lang.rust");
    }
    if let Ok(r) = parse_expire(&text) {
        let _ = lifetime_for(&r, "a.b", Some(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        let p = parse_peers(
            "# comment\nup news.up.example:119 comp.*,!comp.bin.*\n\ndown [::1]:1119 *  # all\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "up");
        assert_eq!(p[0].host, "news.up.example");
        assert_eq!(p[0].port, 119);
        assert!(p[0].pattern.matches("comp.lang"));
        assert!(!p[0].pattern.matches("comp.bin.x"));
        assert_eq!(p[1].host, "::1");
        for bad in [
            "up host:119",
            "up host 119 *",
            "up host:0 *",
            "up host:x *",
            "../up host:1 *",
            "up ho/st:1 *",
            "up host:1 [",
            "up host:1 *\nup host:2 *",
        ] {
            let e = parse_peers(bad).unwrap_err();
            assert!(e.starts_with("line "), "{bad}: {e}");
        }
    }

    #[test]
    fn moderators() {
        let m = parse_moderators("lab.mod*:%s@lab.test\n*:news@example.org\n").unwrap();
        assert_eq!(
            moderator_for(&m, "lab.moderated").as_deref(),
            Some("lab-moderated@lab.test")
        );
        assert_eq!(
            moderator_for(&m, "other").as_deref(),
            Some("news@example.org")
        );
        assert!(parse_moderators("x").is_err());
        assert!(parse_moderators("x:noat").is_err());
        assert!(parse_moderators("x:a b@c").is_err());
        assert!(parse_moderators("x:%d@c").is_err());
    }

    #[test]
    fn expire_rules() {
        let r = parse_expire("* 30\nlab.* 7\nlab.keep never\n").unwrap();
        assert_eq!(lifetime_for(&r, "lab.x", None), Some(7 * 86_400));
        assert_eq!(lifetime_for(&r, "lab.keep", Some(1)), None);
        assert_eq!(lifetime_for(&r, "other", None), Some(30 * 86_400));
        assert_eq!(lifetime_for(&[], "other", Some(9)), Some(9));
        assert!(parse_expire("x").is_err());
        assert!(parse_expire("x y").is_err());
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_peers(b"a b:1 *\n:%s@x\n* never\n\xff");
    }
}
