//! What the client told us about its terminal (TTYPE, NAWS, TSPEED,
//! XDISPLOC, the environment options), with each value checked against a
//! strict shape before it is kept: these strings end up in a program's
//! environment, so only an allow-list of variables, each with a
//! conservative alphabet, ever gets there.

use crate::runtime::session::ipc::{Malformed, Reader, Writer};

/// At most this many terminal types are kept from a TTYPE cycle.
pub const MAX_TYPES: usize = 8;
/// The longest terminal type name kept (terminfo names are short).
pub const MAX_TYPE_LEN: usize = 40;
/// The longest DISPLAY kept.
pub const MAX_DISPLAY_LEN: usize = 128;
/// The longest login name hint kept.
pub const MAX_USER_LEN: usize = 32;

/// The terminal as the client described it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TerminalInfo {
    /// TTYPE's list in the client's order, lower-cased, valid names only.
    pub types: Vec<String>,
    /// TERM from NEW-ENVIRON/OLD-ENVIRON, if valid.
    pub env_term: Option<String>,
    /// NAWS: columns and rows (0: unknown).
    pub window: Option<(u16, u16)>,
    /// TSPEED: transmit and receive.
    pub speed: Option<(u32, u32)>,
    /// DISPLAY from XDISPLOC or the environment, if valid.
    pub display: Option<String>,
    /// USER from the environment: only ever a hint for the login name.
    pub user: Option<String>,
}

/// A terminal type name: letters, digits and `+ . _ -`, starting with a
/// letter or digit, at most MAX_TYPE_LEN; lower-cased (RFC 1091 names are
/// case-insensitive and often sent in capitals).
pub fn terminal_type(raw: &[u8]) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_TYPE_LEN
        && raw[0].is_ascii_alphanumeric()
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    ok.then(|| String::from_utf8_lossy(raw).to_ascii_lowercase())
}

/// An X display: `host:display[.screen]`, the host a name or an address
/// (IPv6 in brackets or not), nothing a shell or an option parser could
/// read otherwise.
pub fn display(raw: &[u8]) -> Option<String> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_DISPLAY_LEN
        && raw[0] != b'-'
        && raw.contains(&b':')
        && raw.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-' | b'[' | b']')
        });
    ok.then(|| String::from_utf8_lossy(raw).into_owned())
}

/// A login name hint: a plausible account name (never an option: no
/// leading `-`, no space), at most MAX_USER_LEN.
pub fn login_name(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    (s.len() <= MAX_USER_LEN && crate::auth::plausible_name(s) && !s.starts_with('-'))
        .then(|| s.to_string())
}

impl TerminalInfo {
    /// The window size to open the terminal with: NAWS where known, else
    /// 24 rows of 80 columns.
    pub fn rows_cols(&self) -> (u16, u16) {
        let (cols, rows) = self.window.unwrap_or((0, 0));
        (
            if rows == 0 { 24 } else { rows },
            if cols == 0 { 80 } else { cols },
        )
    }

    /// TERM for the session: the first of the client's types the host
    /// knows (`known` looks in terminfo), else TERM from the environment
    /// if known, else the first type given, else "dumb".
    pub fn choose_term(&self, known: impl Fn(&str) -> bool) -> String {
        let candidates = self.types.iter().chain(self.env_term.iter());
        if let Some(t) = candidates.clone().find(|t| known(t)) {
            return t.clone();
        }
        candidates
            .into_iter()
            .next()
            .cloned()
            .unwrap_or_else(|| "dumb".to_string())
    }

    pub fn encode(&self, w: Writer) -> Writer {
        let mut w = w.u8(self.types.len().min(MAX_TYPES) as u8);
        for t in self.types.iter().take(MAX_TYPES) {
            w = w.str(t);
        }
        let (cols, rows) = self.window.unwrap_or((0, 0));
        let (tx, rx) = self.speed.unwrap_or((0, 0));
        w.str(self.env_term.as_deref().unwrap_or(""))
            .u8(u8::from(self.window.is_some()))
            .u16(cols)
            .u16(rows)
            .u8(u8::from(self.speed.is_some()))
            .u32(tx)
            .u32(rx)
            .str(self.display.as_deref().unwrap_or(""))
            .str(self.user.as_deref().unwrap_or(""))
    }

    /// The reverse of `encode`; every string is checked again.
    pub fn decode(r: &mut Reader) -> Result<TerminalInfo, Malformed> {
        let n = usize::from(r.u8()?);
        if n > MAX_TYPES {
            return Err(Malformed);
        }
        let mut types = Vec::with_capacity(n);
        for _ in 0..n {
            types.push(terminal_type(r.str(MAX_TYPE_LEN)?.as_bytes()).ok_or(Malformed)?);
        }
        let optional = |s: &str, check: fn(&[u8]) -> Option<String>| {
            if s.is_empty() {
                Ok(None)
            } else {
                check(s.as_bytes()).map(Some).ok_or(Malformed)
            }
        };
        let env_term = optional(r.str(MAX_TYPE_LEN)?, terminal_type)?;
        let has_window = r.bool()?;
        let (cols, rows) = (r.u16()?, r.u16()?);
        let has_speed = r.bool()?;
        let (tx, rx) = (r.u32()?, r.u32()?);
        let display = optional(r.str(MAX_DISPLAY_LEN)?, display)?;
        let user = optional(r.str(MAX_USER_LEN)?, login_name)?;
        Ok(TerminalInfo {
            types,
            env_term,
            window: has_window.then_some((cols, rows)),
            speed: has_speed.then_some((tx, rx)),
            display,
            user,
        })
    }
}

/// Whether the terminfo database of this host describes `name` (the
/// directories ncurses searches, both layouts: first letter or its hex).
pub fn terminfo_knows(name: &str) -> bool {
    if terminal_type(name.as_bytes()).as_deref() != Some(name) {
        return false;
    }
    let first = name.as_bytes()[0];
    [
        "/etc/terminfo",
        "/lib/terminfo",
        "/usr/share/terminfo",
        "/usr/lib/terminfo",
    ]
    .iter()
    .any(|dir| {
        let by_letter = format!("{dir}/{}/{name}", first as char);
        let by_hex = format!("{dir}/{first:02x}/{name}");
        std::path::Path::new(&by_letter).is_file() || std::path::Path::new(&by_hex).is_file()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_types_are_screened() {
        assert_eq!(
            terminal_type(b"XTERM-256COLOR").as_deref(),
            Some("xterm-256color")
        );
        assert_eq!(terminal_type(b"vt100").as_deref(), Some("vt100"));
        for bad in [
            &b""[..],
            b"-x",
            b"a b",
            b"x;rm",
            b"../../etc",
            b"a/b",
            b"\x1b[2J",
        ] {
            assert_eq!(terminal_type(bad), None, "{bad:?}");
        }
        assert_eq!(terminal_type(&[b'a'; 41]), None);
    }

    #[test]
    fn displays_are_screened() {
        assert_eq!(display(b"host:0.0").as_deref(), Some("host:0.0"));
        assert_eq!(display(b"[::1]:1").as_deref(), Some("[::1]:1"));
        for bad in [
            &b"host"[..],
            b"-display:0",
            b"a:0 b",
            b"a:0;x",
            b"$(x):0",
            b"",
        ] {
            assert_eq!(display(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn login_names_are_never_options() {
        assert_eq!(login_name(b"demo").as_deref(), Some("demo"));
        for bad in [
            &b"-f root"[..],
            b"-froot",
            b"-f",
            b"root root",
            b"",
            b"a\nb",
            b"\x02-f",
        ] {
            assert_eq!(login_name(bad), None, "{bad:?}");
        }
        assert_eq!(login_name(&[b'a'; 33]), None);
    }

    #[test]
    fn term_choice() {
        let info = TerminalInfo {
            types: vec!["weird".into(), "xterm".into()],
            env_term: Some("vt100".into()),
            ..TerminalInfo::default()
        };
        assert_eq!(info.choose_term(|t| t == "xterm" || t == "vt100"), "xterm");
        assert_eq!(info.choose_term(|t| t == "vt100"), "vt100");
        assert_eq!(info.choose_term(|_| false), "weird");
        assert_eq!(TerminalInfo::default().choose_term(|_| true), "dumb");
    }

    #[test]
    fn window_defaults() {
        let mut info = TerminalInfo::default();
        assert_eq!(info.rows_cols(), (24, 80));
        info.window = Some((132, 0));
        assert_eq!(info.rows_cols(), (24, 132));
        info.window = Some((100, 40));
        assert_eq!(info.rows_cols(), (40, 100));
    }

    #[test]
    fn round_trip_and_recheck() {
        let info = TerminalInfo {
            types: vec!["xterm".into(), "vt100".into()],
            env_term: Some("xterm".into()),
            window: Some((120, 40)),
            speed: Some((38400, 9600)),
            display: Some("h:0".into()),
            user: Some("demo".into()),
        };
        let bytes = info.encode(Writer::new(1)).finish();
        let (_, mut r) = Reader::new(&bytes).unwrap();
        assert_eq!(TerminalInfo::decode(&mut r).unwrap(), info);
        r.end().unwrap();
        // A forged hand-over with an option for a user name is refused.
        let forged = TerminalInfo {
            user: Some("-froot".into()),
            ..TerminalInfo::default()
        };
        let bytes = forged.encode(Writer::new(1)).finish();
        let (_, mut r) = Reader::new(&bytes).unwrap();
        assert!(TerminalInfo::decode(&mut r).is_err());
    }

    #[test]
    fn terminfo_lookup() {
        // Debian's ncurses-base always has these.
        if std::path::Path::new("/usr/share/terminfo/x/xterm").exists()
            || std::path::Path::new("/lib/terminfo/x/xterm").exists()
        {
            assert!(terminfo_knows("xterm"));
        }
        assert!(!terminfo_knows("no-such-terminal-here"));
        assert!(!terminfo_knows("../x/xterm"));
    }
}
