//! NNTP command lines (RFC 3977, 4642, 4643, 4644, 6048) to commands. No
//! I/O: bytes in, a command or the reason it is not one out.

use super::wildmat::Wildmat;

/// Longest command line, without its CRLF (RFC 3977 3.1: 512 octets with it).
pub const MAX_LINE: usize = 510;
/// Longest argument of any kind (a message-id is at most 250).
const MAX_ARG: usize = 497;
/// Article numbers have at most 16 digits (RFC 3977 6).
const MAX_DIGITS: usize = 16;

/// Which part of an article ARTICLE, HEAD, BODY and STAT want.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Article,
    Head,
    Body,
    Stat,
}

/// An article named by a command: the current one, a number in the
/// current group, or a message-id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Current,
    Number(u64),
    Id(String),
}

/// `n`, `n-` or `n-m` (RFC 3977 3.2.1.2); `high` None is "to the end".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub low: u64,
    pub high: Option<u64>,
}

impl Range {
    pub fn contains(&self, n: u64) -> bool {
        n >= self.low && self.high.is_none_or(|h| n <= h)
    }

    /// No number fits (`5-3`).
    pub fn is_empty(&self) -> bool {
        self.high.is_some_and(|h| h < self.low)
    }
}

/// What OVER and HDR act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Current,
    Range(Range),
    Id(String),
}

/// LIST's keywords (RFC 3977 7.6, RFC 6048).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    Active(Option<Wildmat>),
    ActiveTimes(Option<Wildmat>),
    Newsgroups(Option<Wildmat>),
    OverviewFmt,
    /// `LIST HEADERS [MSGID|RANGE]`.
    Headers,
    DistribPats,
}

/// A date and time given to NEWGROUPS and NEWNEWS, as seconds since the
/// epoch (UTC, whether or not "GMT" was given: we keep server time in UTC).
pub type Since = i64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capabilities,
    ModeReader,
    ModeStream,
    Group(String),
    /// LISTGROUP [group [range]].
    ListGroup(Option<String>, Option<Range>),
    Last,
    Next,
    Article(Part, Target),
    /// OVER (and XOVER, which takes no message-id).
    Over(Selection),
    /// HDR and XHDR: the field (a header name or `:bytes`/`:lines`).
    Hdr(String, Selection, bool),
    List(ListKind),
    NewGroups(Since),
    NewNews(Wildmat, Since),
    Date,
    Help,
    Post,
    Ihave(String),
    Check(String),
    Takethis(String),
    AuthUser(String),
    AuthPass(String),
    StartTls,
    Quit,
}

/// Why a line is not a command: the reply code says which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// 500: no such command.
    Unknown,
    /// 501: a known command with bad arguments (and why).
    Syntax(&'static str),
    /// 503: a LIST keyword we know of but do not keep.
    Unsupported,
}

/// Whether `s` is a message-id as RFC 3977 3.6 allows it: `<`, 1 to 248
/// printable characters other than `>`, `>`; at most 250 octets. (No
/// message-id ever becomes a file name: the history is keyed by a hash.)
pub fn valid_message_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b.len() <= 250
        && b[0] == b'<'
        && b[b.len() - 1] == b'>'
        && b[1..b.len() - 1]
            .iter()
            .all(|&c| (0x21..=0x7e).contains(&c) && c != b'>')
}

/// Whether `s` is a newsgroup name (RFC 5536 3.1.4, as INN takes them):
/// dot-separated non-empty components of lower-case letters, digits and
/// `+ - _`, at most 250 octets, none of them `all` or `ctl`-like tricks
/// such as an empty component; never `.` or `..`, never a `/`: a group
/// name is used as a directory name in the spool.
pub fn valid_group_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 250
        && s.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'_')
                })
        })
}

fn number(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || s.len() > MAX_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("bad article number"));
    }
    s.parse()
        .map_err(|_| ParseError::Syntax("bad article number"))
}

fn range(s: &str) -> Result<Range, ParseError> {
    match s.split_once('-') {
        None => {
            let n = number(s)?;
            Ok(Range {
                low: n,
                high: Some(n),
            })
        }
        Some((lo, "")) => Ok(Range {
            low: number(lo)?,
            high: None,
        }),
        Some((lo, hi)) => Ok(Range {
            low: number(lo)?,
            high: Some(number(hi)?),
        }),
    }
}

fn message_id(s: &str) -> Result<String, ParseError> {
    if valid_message_id(s) {
        Ok(s.to_string())
    } else {
        Err(ParseError::Syntax("bad message-id"))
    }
}

fn target(arg: Option<&str>) -> Result<Target, ParseError> {
    match arg {
        None => Ok(Target::Current),
        Some(a) if a.starts_with('<') => message_id(a).map(Target::Id),
        Some(a) => number(a).map(Target::Number),
    }
}

fn selection(arg: Option<&str>) -> Result<Selection, ParseError> {
    match arg {
        None => Ok(Selection::Current),
        Some(a) if a.starts_with('<') => message_id(a).map(Selection::Id),
        Some(a) => range(a).map(Selection::Range),
    }
}

fn group(arg: &str) -> Result<String, ParseError> {
    // Any non-empty token is taken; a name that cannot exist is simply
    // not found (411), as RFC 3977 answers an unknown group.
    if arg.len() > MAX_ARG {
        return Err(ParseError::Syntax("group name too long"));
    }
    Ok(arg.to_string())
}

fn wildmat(arg: Option<&str>) -> Result<Option<Wildmat>, ParseError> {
    arg.map(|a| Wildmat::parse(a).map_err(|e| ParseError::Syntax(e.0)))
        .transpose()
}

/// `yymmdd hhmmss` or `yyyymmdd hhmmss` (RFC 3977 7.3.2), optionally
/// followed by `GMT`: seconds since the epoch. A two-digit year is in the
/// century that makes it closest to (and not after) `now_year`'s.
pub fn parse_date(date: &str, time: &str, now_year: i64) -> Option<Since> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(date) || !digits(time) || time.len() != 6 {
        return None;
    }
    let (year, rest) = match date.len() {
        6 => {
            let yy: i64 = date[..2].parse().ok()?;
            let century = now_year - now_year.rem_euclid(100);
            let y = century + yy;
            (if y > now_year { y - 100 } else { y }, &date[2..])
        }
        8 => (date[..4].parse().ok()?, &date[4..]),
        _ => return None,
    };
    let month: u32 = rest[..2].parse().ok()?;
    let day: u32 = rest[2..].parse().ok()?;
    let (h, m, s): (i64, i64, i64) = (
        time[..2].parse().ok()?,
        time[2..4].parse().ok()?,
        time[4..].parse().ok()?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = crate::calendar::days_from_civil(year, month, day);
    // 31 February and its kind do not exist.
    if crate::calendar::civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

fn since(args: &[&str], now_year: i64) -> Result<Since, ParseError> {
    match args {
        [d, t] | [d, t, _] => {
            if let [_, _, gmt] = args {
                if !gmt.eq_ignore_ascii_case("GMT") {
                    return Err(ParseError::Syntax("expected GMT"));
                }
            }
            parse_date(d, t, now_year).ok_or(ParseError::Syntax("bad date or time"))
        }
        _ => Err(ParseError::Syntax("expected date and time")),
    }
}

/// Parse one command line (without its line end). `now_year` resolves
/// two-digit years in NEWGROUPS and NEWNEWS.
pub fn parse(line: &[u8], now_year: i64) -> Result<Command, ParseError> {
    if line.len() > MAX_LINE {
        return Err(ParseError::Syntax("line too long"));
    }
    if line.contains(&0) {
        return Err(ParseError::Syntax("NUL in command"));
    }
    // Control characters are no part of any argument (RFC 3977 3.1); the
    // tab separates like a space, a CR may end the line.
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    if body.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::Syntax("control character in command"));
    }
    let text = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("not UTF-8"))?;
    let text = text.trim_start_matches([' ', '\t']);
    let text = text.trim_end_matches([' ', '\t', '\r']);
    let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
    let Some(verb) = words.next() else {
        return Err(ParseError::Unknown);
    };
    let args: Vec<&str> = words.collect();
    let verb = verb.to_ascii_uppercase();
    let n = args.len();
    let too_many = || ParseError::Syntax("too many arguments");
    match verb.as_str() {
        "CAPABILITIES" if n <= 1 => Ok(Command::Capabilities),
        "MODE" => match args.first().map(|a| a.to_ascii_uppercase()).as_deref() {
            Some("READER") if n == 1 => Ok(Command::ModeReader),
            Some("STREAM") if n == 1 => Ok(Command::ModeStream),
            _ => Err(ParseError::Syntax("MODE READER or MODE STREAM")),
        },
        "GROUP" => match args.as_slice() {
            [g] => group(g).map(Command::Group),
            _ => Err(ParseError::Syntax("GROUP needs a group name")),
        },
        "LISTGROUP" => match args.as_slice() {
            [] => Ok(Command::ListGroup(None, None)),
            [g] => Ok(Command::ListGroup(Some(group(g)?), None)),
            [g, r] => Ok(Command::ListGroup(Some(group(g)?), Some(range(r)?))),
            _ => Err(too_many()),
        },
        "LAST" if n == 0 => Ok(Command::Last),
        "NEXT" if n == 0 => Ok(Command::Next),
        "ARTICLE" | "HEAD" | "BODY" | "STAT" if n <= 1 => {
            let part = match verb.as_str() {
                "ARTICLE" => Part::Article,
                "HEAD" => Part::Head,
                "BODY" => Part::Body,
                _ => Part::Stat,
            };
            Ok(Command::Article(part, target(args.first().copied())?))
        }
        "OVER" if n <= 1 => Ok(Command::Over(selection(args.first().copied())?)),
        "XOVER" if n <= 1 => match args.first() {
            Some(a) if a.starts_with('<') => Err(ParseError::Syntax("XOVER takes a range")),
            a => Ok(Command::Over(selection(a.copied())?)),
        },
        "HDR" | "XHDR" if (1..=2).contains(&n) => {
            let field = args[0];
            if field.len() > MAX_ARG || !field.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ParseError::Syntax("bad header name"));
            }
            let sel = selection(args.get(1).copied())?;
            Ok(Command::Hdr(field.to_string(), sel, verb == "XHDR"))
        }
        "LIST" => {
            let kw = args.first().map(|a| a.to_ascii_uppercase());
            let arg = args.get(1).copied();
            if n > 2 {
                return Err(too_many());
            }
            let kind = match kw.as_deref() {
                None | Some("ACTIVE") => ListKind::Active(wildmat(arg)?),
                Some("ACTIVE.TIMES") => ListKind::ActiveTimes(wildmat(arg)?),
                Some("NEWSGROUPS") => ListKind::Newsgroups(wildmat(arg)?),
                Some("OVERVIEW.FMT") if arg.is_none() => ListKind::OverviewFmt,
                Some("HEADERS") => match arg.map(|a| a.to_ascii_uppercase()).as_deref() {
                    None | Some("MSGID") | Some("RANGE") => ListKind::Headers,
                    _ => return Err(ParseError::Syntax("LIST HEADERS [MSGID|RANGE]")),
                },
                Some("DISTRIB.PATS") if arg.is_none() => ListKind::DistribPats,
                Some("OVERVIEW.FMT") | Some("DISTRIB.PATS") => return Err(too_many()),
                // Known to RFC 6048 or common practice, not kept here.
                Some(
                    "COUNTS" | "DISTRIBUTIONS" | "MODERATORS" | "MOTD" | "SUBSCRIPTIONS"
                    | "EXTENSIONS",
                ) => return Err(ParseError::Unsupported),
                Some(_) => return Err(ParseError::Syntax("unknown LIST keyword")),
            };
            Ok(Command::List(kind))
        }
        "NEWGROUPS" => Ok(Command::NewGroups(since(&args, now_year)?)),
        "NEWNEWS" => match args.split_first() {
            Some((w, rest)) => {
                let w = Wildmat::parse(w).map_err(|e| ParseError::Syntax(e.0))?;
                Ok(Command::NewNews(w, since(rest, now_year)?))
            }
            None => Err(ParseError::Syntax("NEWNEWS wildmat date time [GMT]")),
        },
        "DATE" if n == 0 => Ok(Command::Date),
        "HELP" if n == 0 => Ok(Command::Help),
        "POST" if n == 0 => Ok(Command::Post),
        "IHAVE" | "CHECK" | "TAKETHIS" => match args.as_slice() {
            [id] => {
                let id = message_id(id)?;
                Ok(match verb.as_str() {
                    "IHAVE" => Command::Ihave(id),
                    "CHECK" => Command::Check(id),
                    _ => Command::Takethis(id),
                })
            }
            _ => Err(ParseError::Syntax("a message-id is needed")),
        },
        "AUTHINFO" => {
            let sub = args.first().map(|a| a.to_ascii_uppercase());
            match sub.as_deref() {
                Some("USER") if n == 2 => Ok(Command::AuthUser(args[1].to_string())),
                Some("PASS") if n >= 2 => {
                    // The password is the rest of the line, spaces and all.
                    let after = text[8..].trim_start_matches([' ', '\t']);
                    let pass = after[4..].trim_start_matches([' ', '\t']);
                    Ok(Command::AuthPass(pass.to_string()))
                }
                Some("USER" | "PASS") => Err(ParseError::Syntax("AUTHINFO USER name")),
                Some("SASL" | "GENERIC" | "SIMPLE") => Err(ParseError::Unsupported),
                _ => Err(ParseError::Syntax("AUTHINFO USER or PASS")),
            }
        }
        "STARTTLS" if n == 0 => Ok(Command::StartTls),
        "QUIT" if n == 0 => Ok(Command::Quit),
        "CAPABILITIES" | "LAST" | "NEXT" | "ARTICLE" | "HEAD" | "BODY" | "STAT" | "OVER"
        | "XOVER" | "HDR" | "XHDR" | "DATE" | "HELP" | "POST" | "STARTTLS" | "QUIT" => {
            Err(ParseError::Syntax("wrong number of arguments"))
        }
        _ => Err(ParseError::Unknown),
    }
}

/// The wire form of a command whose arguments can be written back (the
/// feed sender writes IHAVE, CHECK, TAKETHIS and MODE STREAM this way);
/// None for LIST, NEWGROUPS and NEWNEWS, whose wildmats and dates are not
/// kept as text.
pub fn to_line(c: &Command) -> Option<String> {
    fn range(r: &Range) -> String {
        match r.high {
            Some(h) if h == r.low => r.low.to_string(),
            Some(h) => format!("{}-{h}", r.low),
            None => format!("{}-", r.low),
        }
    }
    fn selection(s: &Selection) -> String {
        match s {
            Selection::Current => String::new(),
            Selection::Range(r) => format!(" {}", range(r)),
            Selection::Id(id) => format!(" {id}"),
        }
    }
    Some(match c {
        Command::Capabilities => "CAPABILITIES".into(),
        Command::ModeReader => "MODE READER".into(),
        Command::ModeStream => "MODE STREAM".into(),
        Command::Group(g) => format!("GROUP {g}"),
        Command::ListGroup(None, _) => "LISTGROUP".into(),
        Command::ListGroup(Some(g), None) => format!("LISTGROUP {g}"),
        Command::ListGroup(Some(g), Some(r)) => format!("LISTGROUP {g} {}", range(r)),
        Command::Last => "LAST".into(),
        Command::Next => "NEXT".into(),
        Command::Article(part, target) => {
            let verb = match part {
                Part::Article => "ARTICLE",
                Part::Head => "HEAD",
                Part::Body => "BODY",
                Part::Stat => "STAT",
            };
            match target {
                Target::Current => verb.to_string(),
                Target::Number(n) => format!("{verb} {n}"),
                Target::Id(id) => format!("{verb} {id}"),
            }
        }
        Command::Over(s) => format!("OVER{}", selection(s)),
        Command::Hdr(field, s, x) => {
            format!(
                "{} {field}{}",
                if *x { "XHDR" } else { "HDR" },
                selection(s)
            )
        }
        Command::Date => "DATE".into(),
        Command::Help => "HELP".into(),
        Command::Post => "POST".into(),
        Command::Ihave(id) => format!("IHAVE {id}"),
        Command::Check(id) => format!("CHECK {id}"),
        Command::Takethis(id) => format!("TAKETHIS {id}"),
        Command::AuthUser(u) => format!("AUTHINFO USER {u}"),
        Command::AuthPass(p) => format!("AUTHINFO PASS {p}"),
        Command::StartTls => "STARTTLS".into(),
        Command::Quit => "QUIT".into(),
        Command::List(_) | Command::NewGroups(_) | Command::NewNews(..) => return None,
    })
}

/// Fuzzing entry point: any bytes as a command line. What parses keeps
/// its invariants (message-ids and group names valid, within 512 octets)
/// and, written back, parses to the same command (parse, write, parse).
pub fn fuzz_command(data: &[u8]) {
    let Ok(c) = parse(data, 2026) else {
        return;
    };
    match &c {
        // Any token is taken as a group name (one that cannot exist is not
        // found, 411); the monitor checks it before it names a file.
        Command::Group(g) | Command::ListGroup(Some(g), _) => {
            assert!(!g.is_empty() && g.len() <= MAX_ARG);
            assert!(
                !g.bytes().any(|b| b.is_ascii_whitespace() || b == 0),
                "{g:?}"
            );
        }
        Command::Ihave(id) | Command::Check(id) | Command::Takethis(id) => {
            assert!(valid_message_id(id), "{id:?}")
        }
        Command::Article(_, Target::Id(id))
        | Command::Over(Selection::Id(id))
        | Command::Hdr(_, Selection::Id(id), _) => assert!(valid_message_id(id), "{id:?}"),
        _ => {}
    }
    if let Some(line) = to_line(&c) {
        assert_eq!(parse(line.as_bytes(), 2026), Ok(c.clone()), "{line:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse(s.as_bytes(), 2026)
    }

    #[test]
    fn fuzz_finds() {
        // A group name no group can have is a command still (411 follows).
        fuzz_command(b"GROUP la222A2222222b");
        // A bare LF inside a line is no separator and no argument.
        fuzz_command(b"GROUP b\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n");
        assert!(matches!(p("GROUP b\nc"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("GROUP b\x1b"), Err(ParseError::Syntax(_))));
        assert_eq!(p("GROUP b\r"), Ok(Command::Group("b".into())));
        assert_eq!(
            p("GROUP la222A2222222b"),
            Ok(Command::Group("la222A2222222b".into()))
        );
    }

    #[test]
    fn written_back_commands_parse_the_same() {
        for line in [
            "GROUP a.b",
            "LISTGROUP a.b 3-",
            "LISTGROUP a.b 3-7",
            "LISTGROUP a.b 4",
            "ARTICLE <a@b>",
            "head 12",
            "BODY",
            "STAT <x@y>",
            "OVER 1-",
            "XOVER 5-9",
            "OVER <a@b>",
            "HDR Subject 3-",
            "XHDR from <a@b>",
            "HDR :bytes",
            "IHAVE <a@b>",
            "CHECK <a@b>",
            "TAKETHIS <a@b>",
            "AUTHINFO USER demo",
            "AUTHINFO PASS x y",
            "MODE STREAM",
            "capabilities",
            "DATE",
            "QUIT",
        ] {
            fuzz_command(line.as_bytes());
            if let Ok(c) = p(line) {
                if let Some(w) = to_line(&c) {
                    assert_eq!(p(&w), Ok(c), "{line} -> {w}");
                }
            }
        }
    }

    #[test]
    fn every_command() {
        assert_eq!(p("CAPABILITIES"), Ok(Command::Capabilities));
        assert_eq!(p("capabilities AUTOUPDATE"), Ok(Command::Capabilities));
        assert_eq!(p("mode reader"), Ok(Command::ModeReader));
        assert_eq!(p("MODE STREAM"), Ok(Command::ModeStream));
        assert_eq!(p("GROUP lab.test"), Ok(Command::Group("lab.test".into())));
        assert_eq!(p("LISTGROUP"), Ok(Command::ListGroup(None, None)));
        assert_eq!(
            p("LISTGROUP a.b 3-"),
            Ok(Command::ListGroup(
                Some("a.b".into()),
                Some(Range { low: 3, high: None })
            ))
        );
        assert_eq!(p("LAST"), Ok(Command::Last));
        assert_eq!(p("next"), Ok(Command::Next));
        assert_eq!(
            p("ARTICLE"),
            Ok(Command::Article(Part::Article, Target::Current))
        );
        assert_eq!(
            p("HEAD 12"),
            Ok(Command::Article(Part::Head, Target::Number(12)))
        );
        assert_eq!(
            p("BODY <a@b>"),
            Ok(Command::Article(Part::Body, Target::Id("<a@b>".into())))
        );
        assert_eq!(
            p("STAT 0"),
            Ok(Command::Article(Part::Stat, Target::Number(0)))
        );
        assert_eq!(
            p("OVER 1-5"),
            Ok(Command::Over(Selection::Range(Range {
                low: 1,
                high: Some(5)
            })))
        );
        assert_eq!(
            p("OVER <x@y>"),
            Ok(Command::Over(Selection::Id("<x@y>".into())))
        );
        assert_eq!(p("XOVER"), Ok(Command::Over(Selection::Current)));
        assert!(matches!(p("XOVER <x@y>"), Err(ParseError::Syntax(_))));
        assert_eq!(
            p("HDR Subject 3"),
            Ok(Command::Hdr(
                "Subject".into(),
                Selection::Range(Range {
                    low: 3,
                    high: Some(3)
                }),
                false
            ))
        );
        assert_eq!(
            p("XHDR :bytes"),
            Ok(Command::Hdr(":bytes".into(), Selection::Current, true))
        );
        assert_eq!(p("LIST"), Ok(Command::List(ListKind::Active(None))));
        assert!(matches!(
            p("LIST ACTIVE comp.*"),
            Ok(Command::List(ListKind::Active(Some(_))))
        ));
        assert!(matches!(
            p("list newsgroups"),
            Ok(Command::List(ListKind::Newsgroups(None)))
        ));
        assert!(matches!(
            p("LIST ACTIVE.TIMES"),
            Ok(Command::List(ListKind::ActiveTimes(None)))
        ));
        assert_eq!(
            p("LIST OVERVIEW.FMT"),
            Ok(Command::List(ListKind::OverviewFmt))
        );
        assert_eq!(
            p("LIST HEADERS MSGID"),
            Ok(Command::List(ListKind::Headers))
        );
        assert_eq!(
            p("LIST DISTRIB.PATS"),
            Ok(Command::List(ListKind::DistribPats))
        );
        assert_eq!(p("LIST MOTD"), Err(ParseError::Unsupported));
        assert!(matches!(p("LIST FOO"), Err(ParseError::Syntax(_))));
        assert_eq!(p("DATE"), Ok(Command::Date));
        assert_eq!(p("HELP"), Ok(Command::Help));
        assert_eq!(p("POST"), Ok(Command::Post));
        assert_eq!(p("IHAVE <a@b>"), Ok(Command::Ihave("<a@b>".into())));
        assert_eq!(p("CHECK <a@b>"), Ok(Command::Check("<a@b>".into())));
        assert_eq!(p("TAKETHIS <a@b>"), Ok(Command::Takethis("<a@b>".into())));
        assert_eq!(
            p("AUTHINFO USER demo"),
            Ok(Command::AuthUser("demo".into()))
        );
        assert_eq!(
            p("authinfo pass two words"),
            Ok(Command::AuthPass("two words".into()))
        );
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn dates() {
        let since = |s: &str| match p(s) {
            Ok(Command::NewGroups(t)) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(since("NEWGROUPS 19700101 000000"), 0);
        assert_eq!(since("NEWGROUPS 700102 000000 GMT"), 86_400);
        assert_eq!(since("NEWGROUPS 260101 000000"), 1_767_225_600);
        assert_eq!(since("NEWGROUPS 990101 000000"), 915_148_800);
        assert!(p("NEWGROUPS 20260230 000000").is_err());
        assert!(p("NEWGROUPS 20260101 250000").is_err());
        assert!(p("NEWGROUPS 20260101 000000 UTC").is_err());
        assert!(p("NEWGROUPS 2026010 000000").is_err());
        assert!(p("NEWGROUPS").is_err());
        assert!(matches!(
            p("NEWNEWS * 20260101 000000"),
            Ok(Command::NewNews(_, 1_767_225_600))
        ));
        assert!(p("NEWNEWS 20260101 000000").is_err());
    }

    #[test]
    fn bad_input() {
        assert_eq!(p(""), Err(ParseError::Unknown));
        assert_eq!(p("   "), Err(ParseError::Unknown));
        assert_eq!(p("FROB"), Err(ParseError::Unknown));
        assert!(matches!(p("GROUP"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("GROUP a b"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("ARTICLE x"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("ARTICLE -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            p("ARTICLE 12345678901234567"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(p("ARTICLE <a b>"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("ARTICLE <>"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("IHAVE a@b"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("QUIT now"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("MODE"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("OVER 1-2-3"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("LIST ACTIVE a,"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"GROUP a\0b", 2026),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(&[b'A'; 600], 2026),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"GROUP \xff", 2026),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(p("AUTHINFO SASL PLAIN"), Err(ParseError::Unsupported));
    }

    #[test]
    fn message_ids_and_group_names() {
        assert!(valid_message_id("<a@b>"));
        assert!(valid_message_id("<../../etc/passwd@x>"));
        assert!(!valid_message_id("<a>b>"));
        assert!(!valid_message_id("<a b>"));
        assert!(!valid_message_id("a@b"));
        assert!(!valid_message_id(&format!("<{}>", "a".repeat(249))));
        assert!(valid_message_id(&format!("<{}>", "a".repeat(248))));
        assert!(valid_group_name("comp.lang.rust"));
        assert!(valid_group_name("alt.2600"));
        assert!(valid_group_name("a+b.c-d.e_f"));
        for bad in [
            "", ".", "..", "a..b", ".a", "a.", "A.b", "a/b", "a b", "../x",
        ] {
            assert!(!valid_group_name(bad), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let r = range("5-").unwrap();
        assert!(r.contains(5) && r.contains(u64::MAX) && !r.contains(4));
        assert!(range("5-3").unwrap().is_empty());
        assert!(!range("5").unwrap().is_empty());
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_command(b"AUTHINFO PASS");
        fuzz_command(b"AUTHINFO PASS ");
        fuzz_command(b"NEWNEWS [ 1 1");
        fuzz_command(&[0xc3]);
    }
}
