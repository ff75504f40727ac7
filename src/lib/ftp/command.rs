//! Control lines into commands (RFC 959, 2228, 2428, 3659, 4217). No I/O.

use super::framing::{Structure, TransferMode};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Longest path argument accepted (bytes).
pub const MAX_ARG: usize = 1024;

/// TYPE argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Ascii,
    Image,
}

/// What EPSV asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epsv {
    /// No argument, or the control connection's protocol.
    Any,
    /// `EPSV 1` or `EPSV 2`.
    Proto(u8),
    /// `EPSV ALL`: from now on only EPSV sets up data connections.
    All,
}

/// SITE subcommands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    Chmod(u32, String),
    Umask(Option<u32>),
    Idle(Option<u64>),
    Help,
}

/// EPRT argument: the address, or a network protocol we do not speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eprt {
    Addr(SocketAddr),
    UnknownProto,
}

/// One parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Acct,
    Cwd(String),
    Cdup,
    Pwd,
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    /// LIST/NLST: the path (options such as `-la` split off) and whether
    /// `-a` was given.
    List(Option<String>, bool),
    Nlst(Option<String>, bool),
    Retr(String),
    Stor(String),
    Stou(Option<String>),
    Appe(String),
    Rest(u64),
    Size(String),
    Mdtm(String),
    /// MFMT: set the modification time (seconds since the epoch, UTC).
    Mfmt(i64, String),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Feat,
    OptsUtf8(bool),
    OptsMlst(Vec<String>),
    Type(DataType),
    Mode(TransferMode),
    Stru(Structure),
    Allo,
    Port(SocketAddr),
    Pasv,
    Eprt(Eprt),
    Epsv(Epsv),
    Abor,
    Stat(Option<String>),
    Syst,
    Help(Option<String>),
    Noop,
    Site(Site),
    Quit,
    Auth(String),
    Pbsz(u64),
    Prot(char),
}

/// Why a line is not a command we can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// 500: unknown verb (kept, printable, for the reply).
    Unknown(String),
    /// 501: bad or missing argument.
    Syntax(&'static str),
    /// 504: valid but unsupported parameter.
    NotImplemented(&'static str),
    /// 500: an empty line.
    Empty,
}

/// Telnet: IAC and the commands the control stream may carry.
const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Remove Telnet sequences from a control line: `IAC IAC` is a 0xFF data
/// byte, `IAC WILL/WONT/DO/DONT x` is dropped whole, any other `IAC x`
/// (IP, DM, AYT, ...) is dropped; an IAC before a non-command byte or at
/// the end goes too.
pub fn strip_telnet(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != IAC {
            out.push(line[i]);
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&c) if (WILL..=DONT).contains(&c) => i += 3,
            // Not a Telnet command: the IAC alone is dropped (its DM was
            // taken out of band).
            Some(&c) if c < 240 => i += 1,
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    out
}

/// Whether the line (before Telnet stripping) carries an interrupt (IP) or
/// synch (DM): the client wants attention, as ahead of ABOR.
pub fn has_telnet_interrupt(line: &[u8]) -> bool {
    line.windows(2)
        .any(|w| w[0] == IAC && (w[1] == 244 || w[1] == 242))
}

/// The verb of a line, for logs (upper case, printable, short).
pub fn verb_of(line: &[u8]) -> String {
    let v: String = line
        .iter()
        .take_while(|&&b| b != b' ')
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() {
                b.to_ascii_uppercase() as char
            } else {
                '?'
            }
        })
        .collect();
    v
}

/// A line fit for the debug log: PASS arguments masked.
pub fn loggable(line: &[u8]) -> String {
    if verb_of(line) == "PASS" {
        return "PASS ****".into();
    }
    line.iter()
        .take(200)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn text_arg(arg: Option<&[u8]>) -> Result<String, ParseError> {
    let a = arg.ok_or(ParseError::Syntax("argument required"))?;
    if a.is_empty() {
        return Err(ParseError::Syntax("argument required"));
    }
    if a.len() > MAX_ARG {
        return Err(ParseError::Syntax("argument too long"));
    }
    if a.contains(&0) || a.contains(&b'\r') || a.contains(&b'\n') {
        return Err(ParseError::Syntax("invalid character in argument"));
    }
    String::from_utf8(a.to_vec()).map_err(|_| ParseError::Syntax("argument is not UTF-8"))
}

fn opt_text_arg(arg: Option<&[u8]>) -> Result<Option<String>, ParseError> {
    match arg {
        None => Ok(None),
        Some([]) => Ok(None),
        a => text_arg(a).map(Some),
    }
}

fn no_arg(arg: Option<&[u8]>, c: Command) -> Result<Command, ParseError> {
    match arg {
        Some(a) if !a.iter().all(|b| *b == b' ') => Err(ParseError::Syntax("no argument allowed")),
        _ => Ok(c),
    }
}

/// LIST/NLST arguments: leading `-xyz` option words are split off (ls
/// options sent by clients); returns (path, all).
fn list_arg(arg: Option<&[u8]>) -> Result<(Option<String>, bool), ParseError> {
    let Some(s) = opt_text_arg(arg)? else {
        return Ok((None, false));
    };
    let mut all = false;
    let mut rest = s.as_str();
    while rest.starts_with('-') {
        let (opt, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if opt.contains('a') || opt.contains('A') {
            all = true;
        }
        rest = tail.trim_start();
    }
    let path = Some(rest.to_string()).filter(|p| !p.is_empty());
    Ok((path, all))
}

fn parse_port(arg: Option<&[u8]>) -> Result<SocketAddr, ParseError> {
    let s = text_arg(arg)?;
    let nums: Vec<u8> = s
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| ParseError::Syntax("PORT wants h1,h2,h3,h4,p1,p2"))?;
    if nums.len() != 6 {
        return Err(ParseError::Syntax("PORT wants h1,h2,h3,h4,p1,p2"));
    }
    let ip = Ipv4Addr::new(nums[0], nums[1], nums[2], nums[3]);
    let port = u16::from(nums[4]) << 8 | u16::from(nums[5]);
    Ok(SocketAddr::new(IpAddr::V4(ip), port))
}

fn parse_eprt(arg: Option<&[u8]>) -> Result<Eprt, ParseError> {
    let bad = ParseError::Syntax("EPRT wants |proto|address|port|");
    let s = text_arg(arg)?;
    let mut chars = s.chars();
    let d = chars.next().ok_or(bad.clone())?;
    if !(33..=126).contains(&(d as u32)) || d.is_ascii_digit() {
        return Err(bad);
    }
    let parts: Vec<&str> = s.split(d).collect();
    if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() {
        return Err(bad);
    }
    let port: u16 = parts[3].parse().map_err(|_| bad.clone())?;
    let ip: IpAddr = match parts[1] {
        "1" => IpAddr::V4(parts[2].parse().map_err(|_| bad.clone())?),
        "2" => IpAddr::V6(parts[2].parse().map_err(|_| bad.clone())?),
        p if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            return Ok(Eprt::UnknownProto)
        }
        _ => return Err(bad),
    };
    Ok(Eprt::Addr(SocketAddr::new(ip, port)))
}

fn parse_type(arg: Option<&[u8]>) -> Result<DataType, ParseError> {
    let s = text_arg(arg)?.to_ascii_uppercase();
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        ["A"] | ["A", "N"] => Ok(DataType::Ascii),
        ["I"] | ["L", "8"] | ["L8"] => Ok(DataType::Image),
        ["A", "T" | "C"] | ["E"] | ["E", _] | ["L", _] => {
            Err(ParseError::NotImplemented("type not supported"))
        }
        _ => Err(ParseError::Syntax("unknown TYPE")),
    }
}

fn parse_octal(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u32::from_str_radix(s, 8).ok().filter(|m| *m <= 0o7777)
}

fn parse_site(arg: Option<&[u8]>) -> Result<Command, ParseError> {
    let s = text_arg(arg)?;
    let (sub, rest) = s.split_once(' ').unwrap_or((&s, ""));
    let rest = rest.trim_start();
    match sub.to_ascii_uppercase().as_str() {
        "CHMOD" => {
            let (mode, file) = rest
                .split_once(' ')
                .ok_or(ParseError::Syntax("SITE CHMOD mode file"))?;
            let mode = parse_octal(mode).ok_or(ParseError::Syntax("bad mode"))?;
            let file = file.trim_start();
            if file.is_empty() {
                return Err(ParseError::Syntax("SITE CHMOD mode file"));
            }
            Ok(Command::Site(Site::Chmod(mode, file.to_string())))
        }
        "UMASK" => {
            if rest.is_empty() {
                return Ok(Command::Site(Site::Umask(None)));
            }
            let m = parse_octal(rest)
                .filter(|m| *m <= 0o777)
                .ok_or(ParseError::Syntax("bad umask"))?;
            Ok(Command::Site(Site::Umask(Some(m))))
        }
        "IDLE" => {
            if rest.is_empty() {
                return Ok(Command::Site(Site::Idle(None)));
            }
            let n = rest
                .parse::<u64>()
                .map_err(|_| ParseError::Syntax("SITE IDLE seconds"))?;
            Ok(Command::Site(Site::Idle(Some(n))))
        }
        "HELP" => Ok(Command::Site(Site::Help)),
        _ => Err(ParseError::NotImplemented("unknown SITE command")),
    }
}

fn parse_opts(arg: Option<&[u8]>) -> Result<Command, ParseError> {
    let s = text_arg(arg)?;
    let (opt, rest) = s.split_once(' ').unwrap_or((&s, ""));
    match opt.to_ascii_uppercase().as_str() {
        "UTF8" | "UTF-8" => match rest.trim().to_ascii_uppercase().as_str() {
            "ON" | "" => Ok(Command::OptsUtf8(true)),
            "OFF" => Ok(Command::OptsUtf8(false)),
            _ => Err(ParseError::Syntax("OPTS UTF8 ON|OFF")),
        },
        "MLST" => Ok(Command::OptsMlst(
            rest.trim()
                .split(';')
                .filter(|f| !f.is_empty())
                .map(|f| f.to_ascii_lowercase())
                .collect(),
        )),
        _ => Err(ParseError::Syntax("option not understood")),
    }
}

/// Parse one control line (Telnet sequences already stripped, terminator
/// removed). Verbs are case-insensitive; arguments keep their case.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    // Some clients pad with spaces; verbs are letters only.
    let line = match line.iter().position(|b| *b != b' ') {
        Some(p) => &line[p..],
        None => return Err(ParseError::Empty),
    };
    let (verb, arg) = match line.iter().position(|b| *b == b' ') {
        Some(p) => (&line[..p], Some(&line[p + 1..])),
        None => (line, None),
    };
    if verb.len() > 4 || verb.len() < 3 || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::Unknown(verb_of(line)));
    }
    let v = verb.to_ascii_uppercase();
    use Command as C;
    Ok(match v.as_slice() {
        b"USER" => C::User(text_arg(arg)?),
        // Passwords may be empty and may contain anything but NUL/CR/LF.
        b"PASS" => C::Pass(match arg {
            None => String::new(),
            Some(a) if a.len() > MAX_ARG || a.contains(&0) => {
                return Err(ParseError::Syntax("bad password"))
            }
            Some(a) => String::from_utf8_lossy(a).into_owned(),
        }),
        b"ACCT" => C::Acct,
        b"CWD" | b"XCWD" => C::Cwd(text_arg(arg)?),
        b"CDUP" | b"XCUP" => no_arg(arg, C::Cdup)?,
        b"PWD" | b"XPWD" => no_arg(arg, C::Pwd)?,
        b"MKD" | b"XMKD" => C::Mkd(text_arg(arg)?),
        b"RMD" | b"XRMD" => C::Rmd(text_arg(arg)?),
        b"DELE" => C::Dele(text_arg(arg)?),
        b"RNFR" => C::Rnfr(text_arg(arg)?),
        b"RNTO" => C::Rnto(text_arg(arg)?),
        b"LIST" => {
            let (p, a) = list_arg(arg)?;
            C::List(p, a)
        }
        b"NLST" => {
            let (p, a) = list_arg(arg)?;
            C::Nlst(p, a)
        }
        b"RETR" => C::Retr(text_arg(arg)?),
        b"STOR" => C::Stor(text_arg(arg)?),
        b"STOU" => C::Stou(opt_text_arg(arg)?),
        b"APPE" => C::Appe(text_arg(arg)?),
        b"REST" => C::Rest(
            text_arg(arg)?
                .trim()
                .parse()
                .map_err(|_| ParseError::Syntax("REST wants a byte offset"))?,
        ),
        b"SIZE" => C::Size(text_arg(arg)?),
        b"MDTM" => C::Mdtm(text_arg(arg)?),
        b"MFMT" => {
            let a = text_arg(arg)?;
            let bad = ParseError::Syntax("MFMT YYYYMMDDHHMMSS path");
            let (t, path) = a.split_once(' ').ok_or(bad.clone())?;
            let t = super::listing::parse_timeval(t).ok_or(bad.clone())?;
            if path.is_empty() {
                return Err(bad);
            }
            C::Mfmt(t, path.to_string())
        }
        b"MLSD" => C::Mlsd(opt_text_arg(arg)?),
        b"MLST" => C::Mlst(opt_text_arg(arg)?),
        b"FEAT" => no_arg(arg, C::Feat)?,
        b"OPTS" => parse_opts(arg)?,
        b"TYPE" => C::Type(parse_type(arg)?),
        b"MODE" => match text_arg(arg)?.to_ascii_uppercase().as_str() {
            "S" => C::Mode(TransferMode::Stream),
            "B" => C::Mode(TransferMode::Block),
            "C" => C::Mode(TransferMode::Compressed),
            _ => return Err(ParseError::Syntax("unknown MODE")),
        },
        b"STRU" => match text_arg(arg)?.to_ascii_uppercase().as_str() {
            "F" => C::Stru(Structure::File),
            "R" => C::Stru(Structure::Record),
            "P" => C::Stru(Structure::Page),
            _ => return Err(ParseError::Syntax("unknown STRU")),
        },
        b"ALLO" => C::Allo,
        b"PORT" => C::Port(parse_port(arg)?),
        b"PASV" => no_arg(arg, C::Pasv)?,
        b"EPRT" => C::Eprt(parse_eprt(arg)?),
        b"EPSV" => match opt_text_arg(arg)? {
            None => C::Epsv(Epsv::Any),
            Some(a) => match a.trim().to_ascii_uppercase().as_str() {
                "ALL" => C::Epsv(Epsv::All),
                "1" => C::Epsv(Epsv::Proto(1)),
                "2" => C::Epsv(Epsv::Proto(2)),
                n if n.bytes().all(|b| b.is_ascii_digit()) => C::Epsv(Epsv::Proto(0)),
                _ => return Err(ParseError::Syntax("EPSV [1|2|ALL]")),
            },
        },
        b"ABOR" => C::Abor,
        b"STAT" => C::Stat(opt_text_arg(arg)?),
        b"SYST" => no_arg(arg, C::Syst)?,
        b"HELP" => C::Help(opt_text_arg(arg)?.map(|s| s.to_ascii_uppercase())),
        b"NOOP" => C::Noop,
        b"SITE" => parse_site(arg)?,
        b"QUIT" => C::Quit,
        b"AUTH" => C::Auth(text_arg(arg)?.trim().to_ascii_uppercase()),
        b"PBSZ" => C::Pbsz(
            text_arg(arg)?
                .trim()
                .parse()
                .map_err(|_| ParseError::Syntax("PBSZ wants a number"))?,
        ),
        b"PROT" => {
            let a = text_arg(arg)?.trim().to_ascii_uppercase();
            match a.as_str() {
                "C" | "S" | "E" | "P" => C::Prot(a.chars().next().unwrap_or('C')),
                _ => return Err(ParseError::Syntax("PROT C|S|E|P")),
            }
        }
        _ => return Err(ParseError::Unknown(verb_of(line))),
    })
}

/// The verbs HELP lists.
pub const VERBS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT", "HELP",
    "LIST", "MDTM", "MFMT", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV",
    "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REST", "RETR", "RMD", "RNFR", "RNTO", "SITE", "SIZE",
    "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCUP", "XCWD", "XMKD", "XPWD", "XRMD",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse(s.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(p("user demo"), Ok(Command::User("demo".into())));
        assert_eq!(p("UsEr Demo"), Ok(Command::User("Demo".into())));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("quit"), Ok(Command::Quit));
        assert_eq!(p("xpwd"), Ok(Command::Pwd));
        assert_eq!(p("  NOOP"), Ok(Command::Noop));
    }

    #[test]
    fn arguments_keep_spaces_and_case() {
        assert_eq!(
            p("RETR My File.txt"),
            Ok(Command::Retr("My File.txt".into()))
        );
        assert_eq!(p("CWD  lead"), Ok(Command::Cwd(" lead".into())));
        assert_eq!(p("PASS"), Ok(Command::Pass(String::new())));
        assert_eq!(p("PASS a b"), Ok(Command::Pass("a b".into())));
    }

    #[test]
    fn missing_and_bad_arguments() {
        for l in [
            "RETR",
            "RETR ",
            "CWD",
            "USER",
            "REST x",
            "REST -1",
            "PORT 1,2,3",
            "PORT 1,2,3,4,5,256",
            "PORT a,b,c,d,e,f",
            "TYPE",
            "TYPE Q",
            "MODE X",
            "PROT Z",
            "PBSZ x",
            "SITE CHMOD 999 f",
            "SITE CHMOD 644",
            "SITE UMASK 8",
            "SITE IDLE x",
            "OPTS FOO",
            "PWD x",
            "EPSV 1x",
        ] {
            assert!(
                matches!(p(l), Err(ParseError::Syntax(_))),
                "{l}: {:?}",
                p(l)
            );
        }
    }

    #[test]
    fn unknown_verbs_and_garbage() {
        assert_eq!(p("FOO"), Err(ParseError::Unknown("FOO".into())));
        assert_eq!(
            p("XXXXXXXXXX a"),
            Err(ParseError::Unknown("XXXXXXXXXX".into()))
        );
        assert!(matches!(p("\u{1}\u{2}"), Err(ParseError::Unknown(_))));
        assert!(matches!(parse(b"\xff\xfe"), Err(ParseError::Unknown(_))));
        assert!(matches!(p("RE1R x"), Err(ParseError::Unknown(_))));
        assert_eq!(p(""), Err(ParseError::Empty));
        assert_eq!(p("   "), Err(ParseError::Empty));
        assert_eq!(verb_of(b"ab\x01c d"), "AB?C");
    }

    #[test]
    fn nul_and_overlong_arguments_refused() {
        assert!(matches!(parse(b"RETR a\0b"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"USER a\0"), Err(ParseError::Syntax(_))));
        assert!(matches!(parse(b"PASS a\0"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"RETR \xff\xfe"),
            Err(ParseError::Syntax(_))
        ));
        let long = format!("RETR {}", "a".repeat(MAX_ARG + 1));
        assert!(matches!(p(&long), Err(ParseError::Syntax(_))));
        let ok = format!("RETR {}", "a".repeat(MAX_ARG));
        assert!(p(&ok).is_ok());
    }

    #[test]
    fn unsupported_parameters_are_504() {
        for l in ["TYPE E", "TYPE A T", "TYPE L 7", "SITE EXEC ls"] {
            assert!(matches!(p(l), Err(ParseError::NotImplemented(_))), "{l}");
        }
    }

    #[test]
    fn types() {
        assert_eq!(p("TYPE A"), Ok(Command::Type(DataType::Ascii)));
        assert_eq!(p("type a n"), Ok(Command::Type(DataType::Ascii)));
        assert_eq!(p("TYPE I"), Ok(Command::Type(DataType::Image)));
        assert_eq!(p("TYPE L 8"), Ok(Command::Type(DataType::Image)));
        assert_eq!(p("MODE s"), Ok(Command::Mode(TransferMode::Stream)));
        assert_eq!(p("MODE B"), Ok(Command::Mode(TransferMode::Block)));
        assert_eq!(p("mode c"), Ok(Command::Mode(TransferMode::Compressed)));
        assert_eq!(p("STRU F"), Ok(Command::Stru(Structure::File)));
        assert_eq!(p("STRU R"), Ok(Command::Stru(Structure::Record)));
        assert_eq!(p("STRU p"), Ok(Command::Stru(Structure::Page)));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(
            p("PORT 127,0,0,1,4,1"),
            Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
        );
        assert_eq!(
            p("EPRT |1|127.0.0.1|2000|"),
            Ok(Command::Eprt(Eprt::Addr("127.0.0.1:2000".parse().unwrap())))
        );
        assert_eq!(
            p("EPRT |2|::1|2000|"),
            Ok(Command::Eprt(Eprt::Addr("[::1]:2000".parse().unwrap())))
        );
        assert_eq!(
            p("EPRT !2!::1!2000!"),
            Ok(Command::Eprt(Eprt::Addr("[::1]:2000".parse().unwrap())))
        );
        assert_eq!(p("EPRT |3|x|1|"), Ok(Command::Eprt(Eprt::UnknownProto)));
        for bad in [
            "EPRT |1|::1|2000|",
            "EPRT |2|1.2.3.4|2000|",
            "EPRT |1|1.2.3.4|70000|",
            "EPRT |1|1.2.3.4|",
            "EPRT 1|1.2.3.4|5|",
            "EPRT",
        ] {
            assert!(matches!(p(bad), Err(ParseError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn epsv_forms() {
        assert_eq!(p("EPSV"), Ok(Command::Epsv(Epsv::Any)));
        assert_eq!(p("EPSV ALL"), Ok(Command::Epsv(Epsv::All)));
        assert_eq!(p("epsv all"), Ok(Command::Epsv(Epsv::All)));
        assert_eq!(p("EPSV 2"), Ok(Command::Epsv(Epsv::Proto(2))));
        assert_eq!(p("EPSV 7"), Ok(Command::Epsv(Epsv::Proto(0))));
    }

    #[test]
    fn list_options_are_split_off() {
        assert_eq!(p("LIST"), Ok(Command::List(None, false)));
        assert_eq!(p("LIST -la"), Ok(Command::List(None, true)));
        assert_eq!(
            p("LIST -l dir"),
            Ok(Command::List(Some("dir".into()), false))
        );
        assert_eq!(
            p("NLST -a -l x y"),
            Ok(Command::Nlst(Some("x y".into()), true))
        );
        assert_eq!(
            p("NLST *.txt"),
            Ok(Command::Nlst(Some("*.txt".into()), false))
        );
    }

    #[test]
    fn site_opts_auth_prot() {
        assert_eq!(
            p("SITE CHMOD 644 a b"),
            Ok(Command::Site(Site::Chmod(0o644, "a b".into())))
        );
        assert_eq!(
            p("site umask 027"),
            Ok(Command::Site(Site::Umask(Some(0o27))))
        );
        assert_eq!(p("SITE UMASK"), Ok(Command::Site(Site::Umask(None))));
        assert_eq!(p("SITE IDLE 60"), Ok(Command::Site(Site::Idle(Some(60)))));
        assert_eq!(p("SITE HELP"), Ok(Command::Site(Site::Help)));
        assert_eq!(p("OPTS UTF8 ON"), Ok(Command::OptsUtf8(true)));
        assert_eq!(p("OPTS utf8 off"), Ok(Command::OptsUtf8(false)));
        assert_eq!(
            p("OPTS MLST type;size;"),
            Ok(Command::OptsMlst(vec!["type".into(), "size".into()]))
        );
        assert_eq!(p("AUTH tls"), Ok(Command::Auth("TLS".into())));
        assert_eq!(p("PBSZ 0"), Ok(Command::Pbsz(0)));
        assert_eq!(p("PROT p"), Ok(Command::Prot('P')));
        assert_eq!(p("REST 100"), Ok(Command::Rest(100)));
        assert_eq!(
            p("MFMT 20261122101721 a b.txt"),
            Ok(Command::Mfmt(1_795_342_641, "a b.txt".into()))
        );
        assert!(matches!(p("MFMT 2026 x"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            p("MFMT 20261122101721"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(p("STOU"), Ok(Command::Stou(None)));
        assert_eq!(p("HELP retr"), Ok(Command::Help(Some("RETR".into()))));
    }

    #[test]
    fn telnet_sequences_are_stripped() {
        assert_eq!(strip_telnet(b"\xff\xf4\xff\xf2ABOR"), b"ABOR");
        assert_eq!(strip_telnet(b"\xff\xf4\xffABOR"), b"ABOR");
        assert_eq!(strip_telnet(b"RETR a\xff\xffb"), b"RETR a\xffb");
        assert_eq!(strip_telnet(b"\xff\xfb\x01NOOP"), b"NOOP");
        assert_eq!(strip_telnet(b"NOOP\xff"), b"NOOP");
        assert_eq!(strip_telnet(b"plain"), b"plain");
        assert!(has_telnet_interrupt(b"\xff\xf4\xff\xf2ABOR"));
        assert!(!has_telnet_interrupt(b"ABOR"));
        assert_eq!(
            parse(&strip_telnet(b"\xff\xf4\xff\xf2ABOR")),
            Ok(Command::Abor)
        );
    }

    #[test]
    fn passwords_are_masked_in_logs() {
        assert_eq!(loggable(b"pass secret"), "PASS ****");
        assert_eq!(loggable(b"USER a\x01"), "USER a?");
    }
}
