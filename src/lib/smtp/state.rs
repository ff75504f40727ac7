//! The SMTP dialogue as a state machine: commands in, replies and actions
//! out. No sockets, files or clock: the session driver performs each
//! action (recipient lookup, TLS, authentication, opening the queue) and
//! reports the outcome back, which yields the reply.

use super::address::{parse_mailbox, Mailbox, Path};
use super::aliases::{Resolution, Target};
use super::command::{Command, MailParams, RcptParams};
use super::reply::Reply;
use super::sasl;

/// What the state machine knows about the session's surroundings.
#[derive(Clone, Debug)]
pub struct Config {
    pub hostname: String,
    /// Lower-cased domains delivered here.
    pub local_domains: Vec<String>,
    /// 0: no limit.
    pub max_size: u64,
    /// STARTTLS can be offered (tls_cert/tls_key set).
    pub tls_available: bool,
    /// The connection is TLS from the first byte (tls_listen).
    pub implicit_tls: bool,
    /// The client is on loopback: AUTH is allowed without TLS.
    pub loopback: bool,
    /// Submission listener: AUTH required before MAIL.
    pub submission: bool,
    /// The client is in relay_from.
    pub relay_client: bool,
    pub vrfy: bool,
    pub expn: bool,
    pub max_auth_failures: u32,
    pub max_recipients: usize,
    pub max_errors: u32,
}

/// What the driver must do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this reply.
    Reply(Reply),
    /// Send this reply and end the session.
    Close(Reply),
    /// Resolve a local recipient (aliases, accounts, .forward), then call
    /// `rcpt_resolved`.
    /// Resolve the local part of `address` (the RCPT address as given).
    Lookup { address: String, local: String },
    /// VRFY/EXPN with the key on: resolve, then call `verify_resolved`.
    Verify { local: String, expand: bool },
    /// Send the reply, run the TLS handshake, then call `tls_started`
    /// (or end the session if it fails).
    StartTls(Reply),
    /// Send the challenge; the next line goes to `auth_line`.
    Challenge(Reply),
    /// Check these credentials, then call `auth_result`.
    Authenticate { user: String, password: String },
    /// Open a queue file, then call `data_start` (or `data_end` with a
    /// temporary failure if it cannot be opened).
    BeginData,
}

/// An accepted RCPT and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The address as the client gave it.
    pub address: String,
    pub params: RcptParams,
    pub targets: Vec<Target>,
}

/// Most recipients one transaction accepts.
pub const MAX_RECIPIENTS: usize = 1000;

/// The mail transaction in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// "" for the null sender.
    pub sender: String,
    pub params: MailParams,
    pub recipients: Vec<Accepted>,
    /// RCPT commands refused so far (for "no valid recipients").
    pub refused: usize,
    pending: Option<(String, RcptParams)>,
}

impl Transaction {
    /// A transaction built directly (the driver's unit tests).
    #[cfg(test)]
    pub fn for_tests(sender: &str, params: MailParams, recipients: Vec<Accepted>) -> Transaction {
        Transaction {
            sender: sender.into(),
            params,
            recipients,
            refused: 0,
            pending: None,
        }
    }

    /// Recipients that lead to at least one delivery.
    pub fn deliverable(&self) -> usize {
        self.recipients
            .iter()
            .filter(|a| a.targets.iter().any(|t| *t != Target::Discard))
            .count()
    }
}

/// How the DATA phase ended, as far as the driver is concerned.
#[derive(Debug)]
pub enum DataOutcome {
    /// Committed to the queue under this id (or dropped: "discarded").
    Queued(String),
    /// Refused by content checks: this reply.
    Refused(Reply),
    /// The queue could not take it: 451.
    TempFail,
}

#[derive(Debug, PartialEq, Eq)]
enum AuthStep {
    PlainResponse,
    LoginUser,
    LoginPassword(String),
}

#[derive(Debug)]
pub struct State {
    cfg: Config,
    tls: bool,
    helo: Option<String>,
    esmtp: bool,
    auth_user: Option<String>,
    auth_failures: u32,
    auth_step: Option<AuthStep>,
    txn: Option<Transaction>,
    in_data: bool,
    errors: u32,
}

fn r(code: u16, status: &'static str, text: impl Into<String>) -> Action {
    Action::Reply(Reply::new(code, status, text))
}

impl State {
    pub fn new(cfg: Config) -> State {
        State {
            tls: cfg.implicit_tls,
            cfg,
            helo: None,
            esmtp: false,
            auth_user: None,
            auth_failures: 0,
            auth_step: None,
            txn: None,
            in_data: false,
            errors: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn helo(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    pub fn auth_user(&self) -> Option<&str> {
        self.auth_user.as_deref()
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn transaction(&self) -> Option<&Transaction> {
        self.txn.as_ref()
    }

    /// The next line is an AUTH response, not a command.
    pub fn awaiting_auth_line(&self) -> bool {
        self.auth_step.is_some()
    }

    /// The `with` clause of the Received header (RFC 3848, RFC 6531).
    pub fn protocol(&self) -> String {
        let utf8 = self.txn.as_ref().is_some_and(|t| t.params.smtputf8);
        let mut p = String::from(match (utf8, self.esmtp) {
            (true, _) => "UTF8SMTP",
            (false, true) => "ESMTP",
            (false, false) => "SMTP",
        });
        if self.esmtp || utf8 {
            if self.tls {
                p.push('S');
            }
            if self.auth_user.is_some() {
                p.push('A');
            }
        }
        p
    }

    /// AUTH may be used on this connection now.
    fn auth_allowed(&self) -> bool {
        self.tls || self.cfg.loopback
    }

    fn is_local_domain(&self, d: &str) -> bool {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        self.cfg.local_domains.contains(&d)
    }

    /// A recipient is local when its domain is local or it has none.
    fn is_local(&self, m: &Mailbox) -> bool {
        m.domain.as_deref().is_none_or(|d| self.is_local_domain(d))
    }

    /// The greeting sent when the connection opens.
    pub fn greeting(&self, banner: &str) -> Reply {
        Reply::plain(220, banner)
    }

    /// A command that could not be parsed: its reply, counted as an error.
    pub fn bad_command(&mut self, reply: Reply) -> Action {
        self.error(reply)
    }

    /// A command line longer than allowed.
    pub fn line_too_long(&mut self) -> Action {
        self.error(Reply::new(500, "5.5.2", "Line too long"))
    }

    fn error(&mut self, reply: Reply) -> Action {
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            return Action::Close(Reply::new(
                421,
                "4.7.0",
                format!("{} Too many errors, closing connection", self.cfg.hostname),
            ));
        }
        Action::Reply(reply)
    }

    fn ehlo_reply(&self, name: &str) -> Reply {
        let mut lines = vec![format!("{} greets {}", self.cfg.hostname, name)];
        lines.push("PIPELINING".into());
        if self.cfg.max_size > 0 {
            lines.push(format!("SIZE {}", self.cfg.max_size));
        } else {
            lines.push("SIZE".into());
        }
        lines.push("8BITMIME".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        if self.cfg.tls_available && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed() && self.auth_user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("SMTPUTF8".into());
        lines.push("DSN".into());
        lines.push("HELP".into());
        Reply::multi(250, None, lines)
    }

    /// Handle one parsed command.
    pub fn handle(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::Helo(name) => {
                self.txn = None;
                self.esmtp = false;
                let reply = r(
                    250,
                    "2.0.0",
                    format!("{} Hello {}", self.cfg.hostname, name),
                );
                self.helo = Some(name);
                reply
            }
            Command::Ehlo(name) => {
                self.txn = None;
                self.esmtp = true;
                let reply = Action::Reply(self.ehlo_reply(&name));
                self.helo = Some(name);
                reply
            }
            Command::Mail(path, params) => self.mail(path, params),
            Command::Rcpt(path, params) => self.rcpt(path, params),
            Command::Data => self.data(),
            Command::Bdat => self.error(Reply::new(502, "5.5.1", "BDAT not supported")),
            Command::Rset => {
                self.txn = None;
                r(250, "2.0.0", "Ok")
            }
            Command::Noop => r(250, "2.0.0", "Ok"),
            Command::Quit => Action::Close(Reply::new(
                221,
                "2.0.0",
                format!("{} closing connection", self.cfg.hostname),
            )),
            Command::Help => Action::Reply(Reply::multi(
                214,
                Some("2.0.0"),
                vec![
                    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY EXPN".into(),
                    "STARTTLS AUTH; see RFC 5321 and smtpd(8)".into(),
                ],
            )),
            Command::Vrfy(arg) => self.verify(&arg, false),
            Command::Expn(arg) => self.verify(&arg, true),
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
        }
    }

    fn mail(&mut self, path: Path, params: MailParams) -> Action {
        if self.helo.is_none() {
            return self.error(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Error: nested MAIL command"));
        }
        if self.cfg.submission && self.auth_user.is_none() {
            return r(530, "5.7.0", "Authentication required");
        }
        if let (Some(size), true) = (params.size, self.cfg.max_size > 0) {
            if size > self.cfg.max_size {
                return r(
                    552,
                    "5.3.4",
                    "Message size exceeds fixed maximum message size",
                );
            }
        }
        if !self.esmtp
            && (params.size.is_some()
                || params.body_8bit
                || params.smtputf8
                || params.ret.is_some()
                || params.envid.is_some())
        {
            return self.error(Reply::new(555, "5.5.4", "ESMTP parameters require EHLO"));
        }
        let sender = match path {
            Path::Null => String::new(),
            Path::Mailbox(m) => {
                if m.is_utf8() && !params.smtputf8 {
                    return r(553, "5.6.7", "Non-ASCII sender address requires SMTPUTF8");
                }
                if m.domain.is_none() {
                    return r(553, "5.1.7", "Sender address must have a domain");
                }
                m.address()
            }
        };
        self.txn = Some(Transaction {
            sender,
            params,
            recipients: Vec::new(),
            refused: 0,
            pending: None,
        });
        r(250, "2.1.0", "Ok")
    }

    fn rcpt(&mut self, path: Path, params: RcptParams) -> Action {
        let relay_ok = self.cfg.relay_client || self.auth_user.is_some();
        let max = self.cfg.max_recipients;
        let local = match &path {
            Path::Mailbox(m) => self.is_local(m),
            Path::Null => false,
        };
        let Some(txn) = self.txn.as_mut() else {
            return self.error(Reply::new(503, "5.5.1", "Error: need MAIL command"));
        };
        let Path::Mailbox(m) = path else {
            txn.refused += 1;
            return r(501, "5.1.3", "Bad recipient address syntax");
        };
        let address = m.address();
        if m.is_utf8() && !txn.params.smtputf8 {
            txn.refused += 1;
            return r(
                553,
                "5.6.7",
                "Non-ASCII recipient address requires SMTPUTF8",
            );
        }
        if txn.recipients.len() >= max {
            txn.refused += 1;
            return r(452, "4.5.3", "Error: too many recipients");
        }
        if local {
            txn.pending = Some((address.clone(), params));
            return Action::Lookup {
                address,
                local: m.local_unquoted(),
            };
        }
        if !relay_ok {
            txn.refused += 1;
            return r(554, "5.7.1", format!("<{address}>: Relay access denied"));
        }
        txn.recipients.push(Accepted {
            targets: vec![Target::Remote(address.clone())],
            address,
            params,
        });
        r(250, "2.1.5", "Ok")
    }

    /// The outcome of a `Lookup`.
    pub fn rcpt_resolved(&mut self, res: Resolution) -> Action {
        let Some(txn) = self.txn.as_mut() else {
            return r(503, "5.5.1", "Error: need MAIL command");
        };
        let Some((address, params)) = txn.pending.take() else {
            return r(503, "5.5.1", "Error: no recipient pending");
        };
        match res {
            Resolution::Targets(targets) => {
                txn.recipients.push(Accepted {
                    address,
                    params,
                    targets,
                });
                r(250, "2.1.5", "Ok")
            }
            Resolution::Unknown => {
                txn.refused += 1;
                r(
                    550,
                    "5.1.1",
                    format!("<{address}>: Recipient address rejected: User unknown"),
                )
            }
            Resolution::Loop => {
                txn.refused += 1;
                r(550, "5.4.6", format!("<{address}>: Alias loop"))
            }
            Resolution::Unavailable(_) => {
                txn.refused += 1;
                r(
                    451,
                    "4.3.0",
                    format!("<{address}>: Temporary lookup failure"),
                )
            }
        }
    }

    fn data(&mut self) -> Action {
        let Some(txn) = self.txn.as_ref() else {
            return self.error(Reply::new(503, "5.5.1", "Error: need MAIL command"));
        };
        if txn.recipients.is_empty() {
            if txn.refused > 0 {
                return r(554, "5.5.1", "Error: no valid recipients");
            }
            return self.error(Reply::new(503, "5.5.1", "Error: need RCPT command"));
        }
        Action::BeginData
    }

    /// The queue file is open: tell the client to go ahead.
    pub fn data_start(&mut self) -> Reply {
        self.in_data = true;
        Reply::plain(354, "End data with <CR><LF>.<CR><LF>")
    }

    /// The end of DATA (or the failure to start it). The transaction is
    /// over either way.
    pub fn data_end(&mut self, outcome: DataOutcome) -> Reply {
        self.in_data = false;
        self.txn = None;
        match outcome {
            DataOutcome::Queued(id) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            DataOutcome::Refused(reply) => reply,
            DataOutcome::TempFail => Reply::new(
                451,
                "4.3.0",
                "Error: queue file write error, try again later",
            ),
        }
    }

    fn verify(&mut self, arg: &str, expand: bool) -> Action {
        let enabled = if expand { self.cfg.expn } else { self.cfg.vrfy };
        if !enabled {
            return if expand {
                r(502, "5.5.1", "EXPN not available")
            } else {
                r(
                    252,
                    "2.0.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                )
            };
        }
        let inner = arg
            .trim()
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(arg.trim());
        let Ok(m) = parse_mailbox(inner) else {
            return r(501, "5.1.3", "Bad address syntax");
        };
        if !self.is_local(&m) {
            return r(252, "2.1.5", "Cannot verify remote address");
        }
        Action::Verify {
            local: m.local_unquoted(),
            expand,
        }
    }

    /// The outcome of a `Verify`.
    pub fn verify_resolved(&self, local: &str, expand: bool, res: Resolution) -> Reply {
        match res {
            Resolution::Targets(t) if expand => {
                let mut lines: Vec<String> = t
                    .iter()
                    .filter_map(|t| match t {
                        Target::Local(a) => Some(format!("<{a}@{}>", self.cfg.hostname)),
                        Target::Remote(a) => Some(format!("<{a}>")),
                        Target::Discard => None,
                    })
                    .collect();
                if lines.is_empty() {
                    lines.push(format!("<{local}@{}>", self.cfg.hostname));
                }
                Reply::multi(250, Some("2.1.5"), lines)
            }
            Resolution::Targets(_) => {
                Reply::new(250, "2.1.5", format!("<{local}@{}>", self.cfg.hostname))
            }
            Resolution::Unknown => Reply::new(550, "5.1.1", format!("<{local}>: User unknown")),
            Resolution::Loop => Reply::new(550, "5.4.6", format!("<{local}>: Alias loop")),
            Resolution::Unavailable(_) => Reply::new(451, "4.3.0", "Temporary lookup failure"),
        }
    }

    fn starttls(&mut self) -> Action {
        if !self.cfg.tls_available {
            return self.error(Reply::new(502, "5.5.1", "STARTTLS not available"));
        }
        if self.tls {
            return self.error(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(
                503,
                "5.5.1",
                "Error: MAIL transaction in progress",
            ));
        }
        Action::StartTls(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }

    /// The handshake succeeded: forget everything learned before it
    /// (RFC 3207 4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.auth_user = None;
        self.txn = None;
        self.auth_step = None;
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Action {
        if !self.esmtp {
            return self.error(Reply::new(503, "5.5.1", "Error: send EHLO first"));
        }
        if self.auth_user.is_some() {
            return self.error(Reply::new(503, "5.5.1", "Error: already authenticated"));
        }
        if self.txn.is_some() {
            return self.error(Reply::new(
                503,
                "5.5.1",
                "Error: MAIL transaction in progress",
            ));
        }
        if !self.auth_allowed() {
            return r(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        match mechanism {
            "PLAIN" => match initial {
                None => {
                    self.auth_step = Some(AuthStep::PlainResponse);
                    Action::Challenge(Reply::plain(334, ""))
                }
                Some(resp) => self.plain(&resp),
            },
            "LOGIN" => match initial {
                None => {
                    self.auth_step = Some(AuthStep::LoginUser);
                    Action::Challenge(Reply::plain(334, sasl::b64_encode(b"Username:")))
                }
                Some(resp) => {
                    self.auth_step = Some(AuthStep::LoginUser);
                    self.auth_line(&resp)
                }
            },
            _ => r(504, "5.5.4", "Unrecognized authentication mechanism"),
        }
    }

    fn plain(&mut self, resp: &str) -> Action {
        let resp = if resp == "=" { "" } else { resp };
        match sasl::decode_plain(resp) {
            Some((authz, user, password)) if authz.is_empty() || authz == user => {
                Action::Authenticate { user, password }
            }
            Some(_) => r(535, "5.7.8", "Authentication credentials invalid"),
            None => r(501, "5.5.2", "Cannot decode AUTH response"),
        }
    }

    /// A line sent in answer to a 334 challenge.
    pub fn auth_line(&mut self, line: &str) -> Action {
        let Some(step) = self.auth_step.take() else {
            return r(503, "5.5.1", "Error: no authentication in progress");
        };
        let line = line.trim();
        if line == "*" {
            return r(501, "5.7.0", "Authentication aborted");
        }
        match step {
            AuthStep::PlainResponse => self.plain(line),
            AuthStep::LoginUser => match sasl::decode_text(line) {
                Some(user) => {
                    self.auth_step = Some(AuthStep::LoginPassword(user));
                    Action::Challenge(Reply::plain(334, sasl::b64_encode(b"Password:")))
                }
                None => r(501, "5.5.2", "Cannot decode AUTH response"),
            },
            AuthStep::LoginPassword(user) => match sasl::decode_text(line) {
                Some(password) => Action::Authenticate { user, password },
                None => r(501, "5.5.2", "Cannot decode AUTH response"),
            },
        }
    }

    /// The outcome of `Authenticate`: Ok(account name), Err(temporary).
    pub fn auth_result(&mut self, result: Result<Option<String>, ()>) -> Action {
        match result {
            Ok(Some(name)) => {
                self.auth_user = Some(name);
                r(235, "2.7.0", "Authentication successful")
            }
            Ok(None) => {
                self.auth_failures += 1;
                if self.auth_failures >= self.cfg.max_auth_failures.max(1) {
                    Action::Close(Reply::new(
                        421,
                        "4.7.0",
                        format!("{} Too many failed authentications", self.cfg.hostname),
                    ))
                } else {
                    r(535, "5.7.8", "Authentication credentials invalid")
                }
            }
            Err(()) => r(454, "4.7.0", "Temporary authentication failure"),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
