//! SMTP command lines parsed into `Command`, with their ESMTP parameters
//! (SIZE, BODY, SMTPUTF8, AUTH, RET, ENVID, NOTIFY, ORCPT). No I/O.

use super::address::{parse_path, split_path, xtext_decode, Path};
use super::reply::Reply;

/// RFC 3461 RET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetKind {
    Full,
    Hdrs,
}

/// RFC 3461 NOTIFY: NEVER, or any of SUCCESS, FAILURE, DELAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyFlags {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl NotifyFlags {
    pub const NEVER: NotifyFlags = NotifyFlags {
        success: false,
        failure: false,
        delay: false,
    };
    /// The default when NOTIFY is absent: failure and delay.
    pub const DEFAULT: NotifyFlags = NotifyFlags {
        success: false,
        failure: true,
        delay: true,
    };

    pub fn is_never(&self) -> bool {
        *self == NotifyFlags::NEVER
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    /// BODY=8BITMIME
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub ret: Option<RetKind>,
    /// ENVID, decoded from xtext.
    pub envid: Option<String>,
    /// AUTH=<mailbox> (RFC 4954), decoded; accepted and otherwise unused.
    pub auth: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// None: not given (the default applies).
    pub notify: Option<NotifyFlags>,
    /// ORCPT as `addr-type;address`, decoded from xtext.
    pub orcpt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    /// LMTP's greeting (RFC 2033); refused by SMTP listeners.
    Lhlo(String),
    Mail(Path, MailParams),
    Rcpt(Path, RcptParams),
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy(String),
    Expn(String),
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

fn syntax(text: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Syntax error: {text}"))
}

fn unsupported_param(p: &str) -> Reply {
    Reply::new(
        555,
        "5.5.4",
        format!(
            "Unsupported option: {}",
            p.chars().take(40).collect::<String>()
        ),
    )
}

/// Parse one command line (without its line ending). An error is the reply
/// to send.
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    if line.contains(&0) {
        return Err(Reply::new(500, "5.5.2", "Syntax error: NUL character"));
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(Reply::new(500, "5.5.2", "Syntax error: bad character"));
    };
    let (verb, arg) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let arg_trimmed = arg.trim();
    let no_arg = |c: Command| {
        if arg_trimmed.is_empty() {
            Ok(c)
        } else {
            Err(syntax("no parameters allowed"))
        }
    };
    match verb.as_str() {
        "HELO" | "EHLO" | "LHLO" => {
            let name = arg_trimmed;
            if name.is_empty() {
                return Err(syntax(&format!("{verb} requires a domain name")));
            }
            if name.len() > 255 || name.chars().any(|c| c.is_control()) {
                return Err(syntax("bad domain name"));
            }
            let name = name.to_string();
            Ok(match verb.as_str() {
                "HELO" => Command::Helo(name),
                "LHLO" => Command::Lhlo(name),
                _ => Command::Ehlo(name),
            })
        }
        "MAIL" => {
            let rest = strip_keyword(arg, "FROM:").ok_or_else(|| syntax("MAIL FROM:<address>"))?;
            let (p, params) = split_path(rest).map_err(syntax)?;
            let path = parse_path(p)
                .map_err(|e| Reply::new(501, "5.1.7", format!("Bad sender address syntax: {e}")))?;
            Ok(Command::Mail(path, mail_params(params)?))
        }
        "RCPT" => {
            let rest = strip_keyword(arg, "TO:").ok_or_else(|| syntax("RCPT TO:<address>"))?;
            let (p, params) = split_path(rest).map_err(syntax)?;
            let path = match parse_path(p) {
                Ok(Path::Null) => {
                    return Err(Reply::new(501, "5.1.3", "Bad recipient address syntax"))
                }
                Ok(path) => path,
                Err(e) => {
                    return Err(Reply::new(
                        501,
                        "5.1.3",
                        format!("Bad recipient address syntax: {e}"),
                    ))
                }
            };
            Ok(Command::Rcpt(path, rcpt_params(params)?))
        }
        "DATA" => no_arg(Command::Data),
        "BDAT" => Ok(Command::Bdat),
        "RSET" => no_arg(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_arg(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" | "EXPN" => {
            if arg_trimmed.is_empty() {
                return Err(syntax(&format!("{verb} requires an argument")));
            }
            let a = arg_trimmed.to_string();
            Ok(if verb == "VRFY" {
                Command::Vrfy(a)
            } else {
                Command::Expn(a)
            })
        }
        "STARTTLS" => no_arg(Command::StartTls),
        "AUTH" => {
            let mut it = arg_trimmed.split(' ').filter(|s| !s.is_empty());
            let mechanism = it
                .next()
                .ok_or_else(|| syntax("AUTH mechanism [initial-response]"))?
                .to_ascii_uppercase();
            let initial = it.next().map(String::from);
            if it.next().is_some() {
                return Err(syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        _ => Err(Reply::new(
            500,
            "5.5.2",
            "Syntax error: command not recognized",
        )),
    }
}

/// `FROM:` / `TO:` case-insensitively, tolerating a space before the colon
/// is not allowed, after it is.
fn strip_keyword<'a>(arg: &'a str, kw: &str) -> Option<&'a str> {
    let head = arg.get(..kw.len())?;
    head.eq_ignore_ascii_case(kw).then(|| &arg[kw.len()..])
}

fn params(s: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    s.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

fn mail_params(s: &str) -> Result<MailParams, Reply> {
    let mut out = MailParams::default();
    for (key, val) in params(s) {
        match (key.as_str(), val) {
            ("SIZE", Some(v)) if out.size.is_none() => {
                let n = v
                    .parse::<u64>()
                    .ok()
                    .filter(|_| v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| syntax("bad SIZE value"))?;
                out.size = Some(n);
            }
            ("BODY", Some(v)) => match v.to_ascii_uppercase().as_str() {
                "7BIT" => out.body_8bit = false,
                "8BITMIME" => out.body_8bit = true,
                _ => return Err(unsupported_param(&format!("BODY={v}"))),
            },
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("RET", Some(v)) if out.ret.is_none() => {
                out.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => RetKind::Full,
                    "HDRS" => RetKind::Hdrs,
                    _ => return Err(syntax("RET=FULL or RET=HDRS")),
                })
            }
            ("ENVID", Some(v)) if out.envid.is_none() => {
                let d = xtext_decode(v)
                    .filter(|d| d.len() <= 100)
                    .ok_or_else(|| syntax("bad ENVID value"))?;
                out.envid = Some(d);
            }
            ("AUTH", Some(v)) => {
                out.auth = Some(xtext_decode(v).ok_or_else(|| syntax("bad AUTH value"))?);
            }
            (k, _) => return Err(unsupported_param(k)),
        }
    }
    Ok(out)
}

fn rcpt_params(s: &str) -> Result<RcptParams, Reply> {
    let mut out = RcptParams::default();
    for (key, val) in params(s) {
        match (key.as_str(), val) {
            ("NOTIFY", Some(v)) if out.notify.is_none() => {
                let mut f = NotifyFlags::NEVER;
                let mut never = false;
                for item in v.split(',') {
                    match item.to_ascii_uppercase().as_str() {
                        "NEVER" => never = true,
                        "SUCCESS" => f.success = true,
                        "FAILURE" => f.failure = true,
                        "DELAY" => f.delay = true,
                        _ => return Err(syntax("bad NOTIFY value")),
                    }
                }
                if never && !f.is_never() {
                    return Err(syntax("NOTIFY=NEVER cannot be combined"));
                }
                out.notify = Some(f);
            }
            ("ORCPT", Some(v)) if out.orcpt.is_none() => {
                let (kind, addr) = v.split_once(';').ok_or_else(|| syntax("bad ORCPT value"))?;
                let decoded = xtext_decode(addr)
                    .filter(|a| !a.is_empty() && a.len() <= 500)
                    .ok_or_else(|| syntax("bad ORCPT value"))?;
                if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(syntax("bad ORCPT value"));
                }
                out.orcpt = Some(format!("{kind};{decoded}"));
            }
            (k, _) => return Err(unsupported_param(k)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::address::Mailbox;
    use super::*;

    fn p(s: &str) -> Result<Command, Reply> {
        parse(s.as_bytes())
    }

    fn addr(l: &str, d: &str) -> Path {
        Path::Mailbox(Mailbox {
            local: l.into(),
            domain: Some(d.into()),
        })
    }

    #[test]
    fn simple_verbs() {
        assert_eq!(p("helo x.example"), Ok(Command::Helo("x.example".into())));
        assert_eq!(p("LHLO mx.example"), Ok(Command::Lhlo("mx.example".into())));
        assert!(p("LHLO").is_err());
        assert_eq!(
            p("EHLO [127.0.0.1]"),
            Ok(Command::Ehlo("[127.0.0.1]".into()))
        );
        assert_eq!(p("DATA"), Ok(Command::Data));
        assert_eq!(p("rset"), Ok(Command::Rset));
        assert_eq!(p("NOOP anything"), Ok(Command::Noop));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("HELP MAIL"), Ok(Command::Help));
        assert_eq!(p("VRFY demo"), Ok(Command::Vrfy("demo".into())));
        assert_eq!(p("EXPN staff"), Ok(Command::Expn("staff".into())));
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(
            p("AUTH plain AGRlbW8AZGVtbw=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGRlbW8AZGVtbw==".into())
            })
        );
        assert_eq!(
            p("AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
    }

    #[test]
    fn errors() {
        assert_eq!(p("FOO").unwrap_err().code, 500);
        assert_eq!(p("").unwrap_err().code, 500);
        assert_eq!(p("EHLO").unwrap_err().code, 501);
        assert_eq!(p("HELO ").unwrap_err().code, 501);
        assert_eq!(p("DATA x").unwrap_err().code, 501);
        assert_eq!(p("QUIT now").unwrap_err().code, 501);
        assert_eq!(p("VRFY").unwrap_err().code, 501);
        assert_eq!(p("AUTH").unwrap_err().code, 501);
        assert_eq!(p("MAIL TO:<a@b>").unwrap_err().code, 501);
        assert_eq!(p("MAIL FROM:<a@b").unwrap_err().code, 501);
        assert_eq!(p("RCPT TO:<>").unwrap_err().code, 501);
        assert_eq!(p("RCPT TO:<a@@b>").unwrap_err().code, 501);
        let e = parse(b"NOOP \0").unwrap_err();
        assert_eq!((e.code, e.status), (500, Some("5.5.2")));
        assert_eq!(parse(b"HELO \xff").unwrap_err().code, 500);
    }

    #[test]
    fn mail_from() {
        assert_eq!(
            p("MAIL FROM:<a@b.c>"),
            Ok(Command::Mail(addr("a", "b.c"), MailParams::default()))
        );
        assert_eq!(
            p("mail from: <>"),
            Ok(Command::Mail(Path::Null, MailParams::default()))
        );
        let Ok(Command::Mail(_, m)) =
            p("MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>")
        else {
            panic!()
        };
        assert_eq!(m.size, Some(1000));
        assert!(m.body_8bit && m.smtputf8);
        assert_eq!(m.ret, Some(RetKind::Hdrs));
        assert_eq!(m.envid.as_deref(), Some("QQ+1"));
        assert_eq!(m.auth.as_deref(), Some("<>"));
        for bad in [
            "MAIL FROM:<a@b> SIZE=x",
            "MAIL FROM:<a@b> SIZE=",
            "MAIL FROM:<a@b> SIZE=99999999999999999999999",
            "MAIL FROM:<a@b> RET=ALL",
            "MAIL FROM:<a@b> ENVID=a+zz",
        ] {
            assert_eq!(p(bad).unwrap_err().code, 501, "{bad}");
        }
        assert_eq!(p("MAIL FROM:<a@b> BODY=BINARYMIME").unwrap_err().code, 555);
        assert_eq!(p("MAIL FROM:<a@b> FOO=1").unwrap_err().code, 555);
        assert_eq!(p("MAIL FROM:<a@b> SIZE=1 SIZE=2").unwrap_err().code, 555);
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(
            p("RCPT TO:<demo@localhost>"),
            Ok(Command::Rcpt(
                addr("demo", "localhost"),
                RcptParams::default()
            ))
        );
        assert_eq!(
            p("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt(
                Path::Mailbox(Mailbox {
                    local: "Postmaster".into(),
                    domain: None
                }),
                RcptParams::default()
            ))
        );
        let Ok(Command::Rcpt(_, r)) = p("RCPT TO:<a@b> NOTIFY=SUCCESS,delay ORCPT=rfc822;a+2Bx@b")
        else {
            panic!()
        };
        assert_eq!(
            r.notify,
            Some(NotifyFlags {
                success: true,
                failure: false,
                delay: true
            })
        );
        assert_eq!(r.orcpt.as_deref(), Some("rfc822;a+x@b"));
        let Ok(Command::Rcpt(_, r)) = p("RCPT TO:<a@b> NOTIFY=NEVER") else {
            panic!()
        };
        assert!(r.notify.unwrap().is_never());
        for bad in [
            "RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS",
            "RCPT TO:<a@b> NOTIFY=SOMETIMES",
            "RCPT TO:<a@b> ORCPT=nosemicolon",
            "RCPT TO:<a@b> ORCPT=rfc822;",
        ] {
            assert_eq!(p(bad).unwrap_err().code, 501, "{bad}");
        }
        assert_eq!(p("RCPT TO:<a@b> SIZE=1").unwrap_err().code, 555);
    }
}
