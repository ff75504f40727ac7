//! POP3 command lines (RFC 1939, 2449, 2595, 5034) parsed into commands.
//! No I/O.

/// A message number as the client wrote it. Numbers too large for u64 are
/// kept as `u64::MAX`, which no maildrop reaches ("no such message").
pub type MsgNum = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Apop(String, String),
    /// AUTH with no mechanism lists the mechanisms.
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<MsgNum>),
    Retr(MsgNum),
    Dele(MsgNum),
    Noop,
    Rset,
    Top(MsgNum, u64),
    Uidl(Option<MsgNum>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    /// Not a command we know (the keyword, made printable).
    Unknown(String),
    /// A known command with bad arguments: the usage.
    Syntax(&'static str),
    /// NUL or other control bytes, or invalid UTF-8.
    BadBytes,
}

/// The keyword of a line, upper-cased, for logging: "PASS" lines are never
/// logged in full.
pub fn keyword(line: &[u8]) -> String {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    String::from_utf8_lossy(&line[..end.min(16)]).to_ascii_uppercase()
}

fn number(s: &str) -> Option<MsgNum> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

fn one_number(args: &[&str], usage: &'static str) -> Result<MsgNum, ParseError> {
    match args {
        [n] => number(n).ok_or(ParseError::Syntax(usage)),
        _ => Err(ParseError::Syntax(usage)),
    }
}

fn opt_number(args: &[&str], usage: &'static str) -> Result<Option<MsgNum>, ParseError> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some).ok_or(ParseError::Syntax(usage)),
        _ => Err(ParseError::Syntax(usage)),
    }
}

fn no_args(args: &[&str], c: Command, usage: &'static str) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(c)
    } else {
        Err(ParseError::Syntax(usage))
    }
}

/// Parse one line (without its CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line
        .iter()
        .any(|&b| b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(ParseError::BadBytes);
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadBytes)?;
    let trimmed = line.trim_end_matches([' ', '\t']);
    if trimmed.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let (word, rest) = match trimmed.split_once(' ') {
        Some((w, r)) => (w, r),
        None => (trimmed, ""),
    };
    let word = word.to_ascii_uppercase();
    let args: Vec<&str> = rest.split([' ', '\t']).filter(|a| !a.is_empty()).collect();
    match word.as_str() {
        "USER" => match args.as_slice() {
            [name] => Ok(Command::User(name.to_string())),
            _ => Err(ParseError::Syntax("USER name")),
        },
        // The password is the rest of the line: it may hold spaces.
        "PASS" => {
            if rest.is_empty() {
                Err(ParseError::Syntax("PASS password"))
            } else {
                Ok(Command::Pass(rest.to_string()))
            }
        }
        "APOP" => match args.as_slice() {
            [name, digest] => Ok(Command::Apop(name.to_string(), digest.to_string())),
            _ => Err(ParseError::Syntax("APOP name digest")),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, i] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some(i.to_string()),
            }),
            _ => Err(ParseError::Syntax("AUTH mechanism [initial-response]")),
        },
        "STLS" => no_args(&args, Command::Stls, "STLS"),
        "CAPA" => no_args(&args, Command::Capa, "CAPA"),
        "QUIT" => no_args(&args, Command::Quit, "QUIT"),
        "STAT" => no_args(&args, Command::Stat, "STAT"),
        "NOOP" => no_args(&args, Command::Noop, "NOOP"),
        "RSET" => no_args(&args, Command::Rset, "RSET"),
        "LIST" => opt_number(&args, "LIST [msg]").map(Command::List),
        "UIDL" => opt_number(&args, "UIDL [msg]").map(Command::Uidl),
        "RETR" => one_number(&args, "RETR msg").map(Command::Retr),
        "DELE" => one_number(&args, "DELE msg").map(Command::Dele),
        "TOP" => match args.as_slice() {
            [m, n] => match (number(m), number(n)) {
                (Some(m), Some(n)) => Ok(Command::Top(m, n)),
                _ => Err(ParseError::Syntax("TOP msg lines")),
            },
            _ => Err(ParseError::Syntax("TOP msg lines")),
        },
        _ => Err(ParseError::Unknown(crate::auth::printable(&word))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse(b"user demo"), Ok(Command::User("demo".into())));
        assert_eq!(parse(b"PASS a b  c"), Ok(Command::Pass("a b  c".into())));
        assert_eq!(parse(b"STAT"), Ok(Command::Stat));
        assert_eq!(parse(b"list"), Ok(Command::List(None)));
        assert_eq!(parse(b"LIST 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"RETR 1 "), Ok(Command::Retr(1)));
        assert_eq!(parse(b"DELE 2"), Ok(Command::Dele(2)));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(parse(b"UIDL"), Ok(Command::Uidl(None)));
        assert_eq!(parse(b"uidl 7"), Ok(Command::Uidl(Some(7))));
        assert_eq!(parse(b"NOOP"), Ok(Command::Noop));
        assert_eq!(parse(b"RSET"), Ok(Command::Rset));
        assert_eq!(parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(parse(b"CAPA"), Ok(Command::Capa));
        assert_eq!(parse(b"STLS"), Ok(Command::Stls));
        assert_eq!(
            parse(b"AUTH plain AGRlbW8AZGVtbw=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGRlbW8AZGVtbw==".into())
            })
        );
        assert_eq!(
            parse(b"APOP u d"),
            Ok(Command::Apop("u".into(), "d".into()))
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"   "), Err(ParseError::Empty));
        assert_eq!(parse(b"RETR\0 1"), Err(ParseError::BadBytes));
        assert_eq!(parse(b"\xff\xfe"), Err(ParseError::BadBytes));
        assert_eq!(parse(b"FOO"), Err(ParseError::Unknown("FOO".into())));
        assert!(matches!(parse(b"RETR"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"RETR -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"RETR x"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"STAT 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"TOP 1"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER"), Err(ParseError::Syntax(_))));
        assert_eq!(
            parse(b"RETR 99999999999999999999999"),
            Ok(Command::Retr(u64::MAX))
        );
    }

    #[test]
    fn keyword_hides_arguments() {
        assert_eq!(keyword(b"pass secret"), "PASS");
    }
}
