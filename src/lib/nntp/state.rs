//! The NNTP state machine (RFC 3977 reader and transit commands, RFC 4642
//! STARTTLS, RFC 4643 AUTHINFO USER/PASS, RFC 4644 streaming): commands in,
//! actions out. It knows the session (rights, selected group, current
//! article, login) and every reply's wording; what needs the spool or the
//! monitor is an action, whose result comes back through a method that
//! makes the reply. No files, no sockets, no clock.

use super::command::{Command, ListKind, ParseError, Part, Range, Selection, Since, Target};
use super::request::{Kind, Outcome, Want};
use super::wildmat::Wildmat;

/// What the connection allows, fixed at its start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The name in the greeting.
    pub hostname: String,
    /// STARTTLS can be offered (tls_cert and tls_key are set).
    pub tls_available: bool,
    /// The connection is under TLS (implicit TLS, or after STARTTLS).
    pub tls_active: bool,
    /// The client is on the loopback interface (AUTHINFO needs no TLS).
    pub loopback: bool,
    /// Bad commands before the connection is closed.
    pub max_errors: u32,
}

/// What the monitor says this client may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// The peer (from peers_file) this client is: it may feed us.
    pub peer: Option<String>,
    pub read: bool,
    pub post: bool,
}

/// The selected group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub low: u64,
    pub high: u64,
    pub count: u64,
}

/// Where an article is looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locator {
    /// A number in a group.
    Number(String, u64),
    Id(String),
}

/// What the session glue must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Reply(Vec<u8>),
    Close(Vec<u8>),
    /// Send the reply, then the TLS handshake; then `tls_started`.
    StartTls(Vec<u8>),
    /// Check credentials with the monitor; then `auth_result`.
    Authenticate {
        user: String,
        pass: String,
    },
    /// Ask the monitor for a group; then `group_result`. `list`: LISTGROUP
    /// (with its range), which lists the numbers after the 211 line.
    SelectGroup {
        name: String,
        list: Option<Option<Range>>,
    },
    /// LISTGROUP of the selected group: 211 (from `listing_line`), then
    /// the numbers in range.
    ListNumbers(Group, Range),
    /// Find an article; then `article_result`, which says what to send.
    Article(Part, Locator),
    /// OVER: 224 and the overview lines (or 423/430 when none).
    Over(Locator, Range),
    /// HDR/XHDR of a field.
    Hdr {
        field: String,
        at: Locator,
        range: Range,
        xhdr: bool,
    },
    List(ListKind),
    NewGroups(Since),
    NewNews(Wildmat, Since),
    /// LAST (false) or NEXT (true) from the current article; then
    /// `step_result`.
    Step(bool, String, u64),
    /// DATE: `date_reply` with the time.
    Date,
    /// Read an article (after the reply, if any: POST's 340, IHAVE's 335)
    /// and hand it to the monitor; `permitted` false: read it, drop it,
    /// refuse it (a TAKETHIS that must still be consumed).
    Receive {
        kind: Kind,
        id: String,
        prompt: Option<Vec<u8>>,
        permitted: bool,
    },
    /// CHECK or IHAVE's question: ask the monitor; then `want_result`.
    Want(Kind, String),
}

/// The session.
pub struct State {
    cfg: Config,
    rights: Rights,
    user: Option<String>,
    pending_user: Option<String>,
    group: Option<Group>,
    current: Option<u64>,
    errors: u32,
}

fn line(s: impl AsRef<str>) -> Vec<u8> {
    let mut v = s.as_ref().as_bytes().to_vec();
    v.extend_from_slice(b"\r\n");
    v
}

fn reply(s: impl AsRef<str>) -> Action {
    Action::Reply(line(s))
}

/// A multi-line reply: status, lines, ".".
fn multi(status: &str, lines: &[&str]) -> Vec<u8> {
    let mut out = line(status);
    for l in lines {
        if l.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(&line(l));
    }
    out.extend_from_slice(b".\r\n");
    out
}

const HELP: &[&str] = &[
    "ARTICLE [message-ID|number]",
    "AUTHINFO USER name|PASS password",
    "BODY [message-ID|number]",
    "CAPABILITIES [keyword]",
    "CHECK message-ID",
    "DATE",
    "HDR header [message-ID|range]",
    "HEAD [message-ID|number]",
    "HELP",
    "IHAVE message-ID",
    "LAST",
    "LIST [ACTIVE [wildmat]|ACTIVE.TIMES [wildmat]|DISTRIB.PATS|HEADERS [MSGID|RANGE]|NEWSGROUPS [wildmat]|OVERVIEW.FMT]",
    "LISTGROUP [newsgroup [range]]",
    "MODE READER|STREAM",
    "NEWGROUPS [yy]yymmdd hhmmss [GMT]",
    "NEWNEWS wildmat [yy]yymmdd hhmmss [GMT]",
    "NEXT",
    "OVER [range|message-ID]",
    "POST",
    "QUIT",
    "STARTTLS",
    "STAT [message-ID|number]",
    "TAKETHIS message-ID",
    "XHDR header [message-ID|range]",
    "XOVER [range]",
];

impl State {
    pub fn new(cfg: Config, rights: Rights) -> State {
        State {
            cfg,
            rights,
            user: None,
            pending_user: None,
            group: None,
            current: None,
            errors: 0,
        }
    }

    pub fn rights(&self) -> &Rights {
        &self.rights
    }

    pub fn set_rights(&mut self, rights: Rights) {
        self.rights = rights;
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn group(&self) -> Option<&Group> {
        self.group.as_ref()
    }

    /// The greeting: 200 when this client may post, else 201.
    pub fn greeting(&self, banner: &str) -> Vec<u8> {
        if self.rights.post {
            line(format!("200 {banner} (posting ok)"))
        } else {
            line(format!("201 {banner} (no posting)"))
        }
    }

    /// AUTHINFO is possible now: not done, and under TLS when TLS is
    /// offered to a client that is not local.
    fn auth_allowed_now(&self) -> bool {
        self.user.is_none() && (self.cfg.tls_active || !self.cfg.tls_available || self.cfg.loopback)
    }

    fn capabilities(&self) -> Vec<u8> {
        let mut caps = vec!["VERSION 2".to_string(), "READER".to_string()];
        if self.rights.peer.is_some() {
            caps.push("IHAVE".into());
            caps.push("STREAMING".into());
        }
        if self.rights.post {
            caps.push("POST".into());
        }
        caps.push("NEWNEWS".into());
        caps.push("HDR".into());
        caps.push("OVER MSGID".into());
        caps.push("LIST ACTIVE ACTIVE.TIMES DISTRIB.PATS HEADERS NEWSGROUPS OVERVIEW.FMT".into());
        if self.cfg.tls_available && !self.cfg.tls_active && self.user.is_none() {
            caps.push("STARTTLS".into());
        }
        if self.user.is_none() {
            caps.push(if self.auth_allowed_now() {
                "AUTHINFO USER".into()
            } else {
                "AUTHINFO".into()
            });
        }
        caps.push(format!(
            "IMPLEMENTATION classicd nntpd {}",
            env!("CARGO_PKG_VERSION")
        ));
        let refs: Vec<&str> = caps.iter().map(String::as_str).collect();
        multi("101 Capability list:", &refs)
    }

    /// Reading is not allowed: 480 if logging in could change that.
    fn read_refusal(&self) -> Action {
        if self.user.is_none() {
            reply("480 Authentication required")
        } else {
            reply("502 Reading is not permitted")
        }
    }

    fn count_error(&mut self, a: Action) -> Action {
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            return Action::Close(line("400 Too many errors; closing connection"));
        }
        a
    }

    /// A line that did not parse.
    pub fn bad_command(&mut self, e: ParseError) -> Action {
        let a = match e {
            ParseError::Unknown => reply("500 Unknown command"),
            ParseError::Syntax(why) => reply(format!("501 Syntax error: {why}")),
            ParseError::Unsupported => reply("503 Not supported here"),
        };
        self.count_error(a)
    }

    /// A command line over 512 octets.
    pub fn line_too_long(&mut self) -> Action {
        self.count_error(reply("501 Line too long (512 octets at most)"))
    }

    /// The selected group and current article number, or the reply that
    /// says what is missing.
    fn current(&self) -> Result<(String, u64), Action> {
        let Some(g) = &self.group else {
            return Err(reply("412 No newsgroup selected"));
        };
        match self.current {
            Some(n) => Ok((g.name.clone(), n)),
            None => Err(reply("420 Current article number is invalid")),
        }
    }

    fn selection(&self, sel: Selection) -> Result<(Locator, Range), Action> {
        match sel {
            Selection::Id(id) => Ok((Locator::Id(id), Range { low: 0, high: None })),
            Selection::Current => {
                let (g, n) = self.current()?;
                Ok((
                    Locator::Number(g, n),
                    Range {
                        low: n,
                        high: Some(n),
                    },
                ))
            }
            Selection::Range(r) => match &self.group {
                None => Err(reply("412 No newsgroup selected")),
                Some(g) => Ok((Locator::Number(g.name.clone(), 0), r)),
            },
        }
    }

    pub fn handle(&mut self, c: Command) -> Action {
        let reading = matches!(
            c,
            Command::Group(_)
                | Command::ListGroup(..)
                | Command::Last
                | Command::Next
                | Command::Article(..)
                | Command::Over(_)
                | Command::Hdr(..)
                | Command::List(_)
                | Command::NewGroups(_)
                | Command::NewNews(..)
        );
        if reading && !self.rights.read {
            return self.read_refusal();
        }
        match c {
            Command::Capabilities => Action::Reply(self.capabilities()),
            Command::ModeReader => {
                if self.rights.post {
                    reply("200 Posting allowed")
                } else {
                    reply("201 Posting prohibited")
                }
            }
            Command::ModeStream => match self.rights.peer {
                Some(_) => reply("203 Streaming permitted"),
                None => reply("502 Transit service is for peers only"),
            },
            Command::Group(name) => Action::SelectGroup { name, list: None },
            Command::ListGroup(Some(name), range) => Action::SelectGroup {
                name,
                list: Some(range),
            },
            Command::ListGroup(None, range) => match &self.group {
                None => reply("412 No newsgroup selected"),
                Some(g) => {
                    self.current = (g.count > 0).then_some(g.low);
                    Action::ListNumbers(g.clone(), range.unwrap_or(Range { low: 0, high: None }))
                }
            },
            Command::Last | Command::Next => match self.current() {
                Ok((g, n)) => Action::Step(matches!(c, Command::Next), g, n),
                Err(a) => a,
            },
            Command::Article(part, target) => match target {
                Target::Id(id) => Action::Article(part, Locator::Id(id)),
                Target::Number(n) => match &self.group {
                    None => reply("412 No newsgroup selected"),
                    Some(g) => Action::Article(part, Locator::Number(g.name.clone(), n)),
                },
                Target::Current => match self.current() {
                    Ok((g, n)) => Action::Article(part, Locator::Number(g, n)),
                    Err(a) => a,
                },
            },
            Command::Over(sel) => match self.selection(sel) {
                Ok((at, range)) => Action::Over(at, range),
                Err(a) => a,
            },
            Command::Hdr(field, sel, xhdr) => match self.selection(sel) {
                Ok((at, range)) => Action::Hdr {
                    field,
                    at,
                    range,
                    xhdr,
                },
                Err(a) => a,
            },
            Command::List(ListKind::OverviewFmt) => Action::Reply(multi(
                "215 Order of fields in overview database.",
                super::spool::overview::FORMAT,
            )),
            Command::List(ListKind::Headers) => Action::Reply(multi(
                "215 Headers and metadata items supported:",
                &[":", ":bytes", ":lines"],
            )),
            Command::List(kind) => Action::List(kind),
            Command::NewGroups(since) => Action::NewGroups(since),
            Command::NewNews(w, since) => Action::NewNews(w, since),
            Command::Date => Action::Date,
            Command::Help => Action::Reply(multi("100 Help text follows", HELP)),
            Command::Post => {
                if self.rights.post {
                    Action::Receive {
                        kind: Kind::Post,
                        id: String::new(),
                        prompt: Some(line("340 Send article to be posted")),
                        permitted: true,
                    }
                } else if self.user.is_none() {
                    reply("480 Authentication required to post")
                } else {
                    reply("440 Posting not permitted")
                }
            }
            Command::Ihave(id) => match self.rights.peer {
                Some(_) => Action::Want(Kind::Ihave, id),
                None => reply("502 Transit service is for peers only"),
            },
            Command::Check(id) => match self.rights.peer {
                Some(_) => Action::Want(Kind::Takethis, id),
                None => reply("502 Transit service is for peers only"),
            },
            Command::Takethis(id) => Action::Receive {
                kind: Kind::Takethis,
                permitted: self.rights.peer.is_some(),
                id,
                prompt: None,
            },
            Command::AuthUser(user) => {
                if self.user.is_some() {
                    reply("502 Already authenticated")
                } else if !self.auth_allowed_now() {
                    reply("483 Encryption required: use STARTTLS first")
                } else {
                    self.pending_user = Some(user);
                    reply("381 Password required")
                }
            }
            Command::AuthPass(pass) => {
                if self.user.is_some() {
                    reply("502 Already authenticated")
                } else if !self.auth_allowed_now() {
                    reply("483 Encryption required: use STARTTLS first")
                } else {
                    match self.pending_user.take() {
                        Some(user) => Action::Authenticate { user, pass },
                        None => reply("482 Authentication commands issued out of sequence"),
                    }
                }
            }
            Command::StartTls => {
                if self.cfg.tls_active {
                    reply("502 Already using TLS")
                } else if !self.cfg.tls_available || self.user.is_some() {
                    reply("502 STARTTLS not available")
                } else {
                    Action::StartTls(line("382 Continue with TLS negotiation"))
                }
            }
            Command::Quit => Action::Close(line("205 Bye")),
        }
    }

    /// TLS is up: RFC 4642 has the client start afresh.
    pub fn tls_started(&mut self) {
        self.cfg.tls_active = true;
        self.pending_user = None;
    }

    /// The monitor's verdict on AUTHINFO PASS: Some(name) granted, None
    /// denied; Err: the account store was unavailable.
    pub fn auth_result(&mut self, result: Result<Option<String>, ()>) -> Action {
        match result {
            Ok(Some(name)) => {
                self.user = Some(name);
                reply("281 Authentication accepted")
            }
            Ok(None) => self.count_error(reply("481 Authentication failed")),
            Err(()) => reply("403 Authentication temporarily unavailable"),
        }
    }

    /// GROUP or LISTGROUP's answer: the group's marks, or None (no such
    /// group). For LISTGROUP the glue lists the numbers after the line.
    pub fn group_result(&mut self, name: &str, found: Option<Group>, listing: bool) -> Action {
        let Some(g) = found else {
            return reply(format!("411 No such newsgroup {name}"));
        };
        self.current = (g.count > 0).then_some(g.low);
        let status = if listing {
            listing_line(&g)
        } else {
            line(format!("211 {} {} {} {}", g.count, g.low, g.high, g.name))
        };
        self.group = Some(g);
        Action::Reply(status)
    }

    /// An article was found (`Some(message_id)`) or not: the status line
    /// (the glue then sends the article, head or body for 220-222). A
    /// number sets the current article.
    pub fn article_result(&mut self, part: Part, at: &Locator, found: Option<&str>) -> Vec<u8> {
        let Some(id) = found else {
            return match at {
                Locator::Id(_) => line("430 No article with that message-id"),
                Locator::Number(..) => line("423 No article with that number"),
            };
        };
        let n = match at {
            Locator::Number(_, n) => {
                self.current = Some(*n);
                *n
            }
            Locator::Id(_) => 0,
        };
        let (code, what) = match part {
            Part::Article => (220, "article"),
            Part::Head => (221, "head"),
            Part::Body => (222, "body"),
            Part::Stat => (223, "status"),
        };
        line(format!("{code} {n} {id} {what}"))
    }

    /// LAST or NEXT found (number, message-id) or nothing.
    pub fn step_result(&mut self, forward: bool, found: Option<(u64, String)>) -> Action {
        match found {
            Some((n, id)) => {
                self.current = Some(n);
                reply(format!("223 {n} {id} retrieved"))
            }
            None if forward => reply("421 No next article in this group"),
            None => reply("422 No previous article in this group"),
        }
    }

    /// CHECK or IHAVE's answer from the monitor.
    pub fn want_result(&self, kind: Kind, id: &str, want: Want) -> Action {
        match (kind, want) {
            (Kind::Ihave, Want::Yes) => Action::Receive {
                kind: Kind::Ihave,
                id: id.to_string(),
                prompt: Some(line("335 Send it; end with <CR-LF>.<CR-LF>")),
                permitted: true,
            },
            (Kind::Ihave, Want::No) => reply("435 Article not wanted"),
            (Kind::Ihave, Want::Later) => reply("436 Transfer not possible; try again later"),
            (_, Want::Yes) => reply(format!("238 {id}")),
            (_, Want::No) => reply(format!("438 {id} not wanted")),
            (_, Want::Later) => reply(format!("431 {id} try later")),
        }
    }

    /// The reply to an article received (`outcome`) for POST, IHAVE or
    /// TAKETHIS.
    pub fn receive_result(&self, kind: Kind, id: &str, outcome: &Outcome) -> Vec<u8> {
        use super::request::short;
        let text = match (kind, outcome) {
            (Kind::Post, Outcome::Accepted(id)) => format!("240 Article received {id}"),
            (Kind::Post, Outcome::Mailed(_)) => {
                "240 Article received; mailed to the moderator".to_string()
            }
            (Kind::Post, Outcome::Duplicate) => "441 435 Duplicate message-id".to_string(),
            (Kind::Post, Outcome::Refused(why)) => format!("441 {}", short(why)),
            (Kind::Post, Outcome::Failed(why)) => format!("441 Posting failed: {}", short(why)),
            (Kind::Ihave, Outcome::Accepted(_) | Outcome::Mailed(_)) => {
                "235 Article transferred OK".to_string()
            }
            (Kind::Ihave, Outcome::Duplicate) => "437 Duplicate".to_string(),
            (Kind::Ihave, Outcome::Refused(why)) => format!("437 {}", short(why)),
            (Kind::Ihave, Outcome::Failed(why)) => {
                format!("436 Transfer failed: {}", short(why))
            }
            (Kind::Takethis, Outcome::Accepted(_) | Outcome::Mailed(_)) => format!("239 {id}"),
            (Kind::Takethis, Outcome::Duplicate) => format!("439 {id} duplicate"),
            (Kind::Takethis, Outcome::Refused(why)) => format!("439 {id} {}", short(why)),
            // RFC 4644 has no "try later" for TAKETHIS: 400-class would end
            // the stream, so the article is refused and offered again later
            // by CHECK (the history does not remember it).
            (Kind::Takethis, Outcome::Failed(why)) => format!("439 {id} {}", short(why)),
        };
        line(text)
    }

    /// DATE's reply for the time given (seconds since the epoch).
    pub fn date_reply(now: i64) -> Vec<u8> {
        let (y, mo, d, h, mi, s) = crate::calendar::utc(now);
        line(format!("111 {y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}"))
    }

    /// A timeout: RFC 3977's 400.
    pub fn timeout_reply() -> Vec<u8> {
        line("400 Idle timeout; closing connection")
    }
}

/// LISTGROUP's status line.
pub fn listing_line(g: &Group) -> Vec<u8> {
    line(format!(
        "211 {} {} {} {} list follows",
        g.count, g.low, g.high, g.name
    ))
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
