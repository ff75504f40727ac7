//! The POP3 state machine (RFC 1939 AUTHORIZATION, TRANSACTION, UPDATE, with
//! RFC 2449 CAPA and response codes, RFC 2595 STLS, RFC 5034 SASL PLAIN).
//! Lines in, replies and steps for the driver out: no files, no sockets, no
//! clock.

use super::command::{self, Command, MsgNum, ParseError};
use crate::auth::sasl;
use crate::mail::MessageInfo;

/// What the session allows, fixed by configuration and the connection.
#[derive(Clone, Debug)]
pub struct Config {
    /// STLS can be offered (tls_cert/tls_key set).
    pub tls_available: bool,
    /// The connection is already under TLS (implicit TLS, or after STLS).
    pub tls_active: bool,
    /// Passwords may be sent without TLS (`cleartext_login`).
    pub cleartext_login: bool,
    /// Failed logins before the connection is closed (0: no limit).
    pub login_attempts: u32,
}

/// What the driver must do after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this reply and read the next line.
    Reply(Vec<u8>),
    /// Send this reply and end the session (no UPDATE).
    Close(Vec<u8>),
    /// Send this reply, start TLS, then call `tls_started`.
    StartTls(Vec<u8>),
    /// Check these credentials; then call `login_ok` or `login_failed`.
    Login { user: String, pass: String },
    /// Send `status`, then the message (or its header and `top` body lines),
    /// dot-stuffed, then ".". If the message cannot be read, call
    /// `retrieve_failed` instead and send what it returns.
    Retrieve {
        index: usize,
        status: Vec<u8>,
        top: Option<u64>,
    },
    /// QUIT in TRANSACTION: remove `deleted()`, mark `seen()`, then call
    /// `updated` and send its reply.
    Update,
}

/// Why a login did not lead to TRANSACTION.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong name or password.
    Denied,
    /// The account store is unavailable; the client may try again.
    Temporary,
    /// Another session holds the maildrop.
    InUse,
    /// The maildrop cannot be opened (or the session cannot become the
    /// account): the session ends.
    Fatal,
}

enum Phase {
    Authorization {
        user: Option<String>,
        /// AUTH PLAIN sent "+ ", waiting for the client's response line.
        sasl: bool,
    },
    Transaction {
        msgs: Vec<MessageInfo>,
        deleted: Vec<bool>,
        seen: Vec<bool>,
    },
    Done,
}

pub struct Machine {
    cfg: Config,
    phase: Phase,
    failures: u32,
}

fn line(s: &str) -> Vec<u8> {
    format!("{s}\r\n").into_bytes()
}

fn multi(head: &str, items: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut out = line(head);
    for i in items {
        out.extend_from_slice(i.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

const WRONG_STATE: &str = "-ERR Command not valid in this state";

impl Machine {
    pub fn new(cfg: Config) -> Machine {
        Machine {
            cfg,
            phase: Phase::Authorization {
                user: None,
                sasl: false,
            },
            failures: 0,
        }
    }

    /// Whether passwords may be sent now.
    fn login_allowed(&self) -> bool {
        self.cfg.cleartext_login || self.cfg.tls_active
    }

    pub fn in_transaction(&self) -> bool {
        matches!(self.phase, Phase::Transaction { .. })
    }

    /// Whether the next line is a SASL response (not to be logged).
    pub fn expects_sasl_response(&self) -> bool {
        matches!(self.phase, Phase::Authorization { sasl: true, .. })
    }

    /// A line longer than the limit was dropped.
    pub fn too_long(&mut self) -> Action {
        if let Phase::Authorization { sasl, .. } = &mut self.phase {
            *sasl = false;
        }
        Action::Reply(line("-ERR Line too long"))
    }

    /// Handle one command line (without CRLF).
    pub fn handle(&mut self, raw: &[u8]) -> Action {
        if self.expects_sasl_response() {
            if let Phase::Authorization { sasl, .. } = &mut self.phase {
                *sasl = false;
            }
            let text = String::from_utf8_lossy(raw);
            let text = text.trim();
            if text == "*" {
                return Action::Reply(line("-ERR Authentication cancelled"));
            }
            return self.sasl_plain(text);
        }
        let cmd = match command::parse(raw) {
            Ok(c) => c,
            Err(ParseError::Empty) => return Action::Reply(line("-ERR Empty command")),
            Err(ParseError::BadBytes) => return Action::Reply(line("-ERR Invalid characters")),
            Err(ParseError::Unknown(w)) => {
                return Action::Reply(line(&format!("-ERR Unknown command: {w}")))
            }
            Err(ParseError::Syntax(usage)) => {
                return Action::Reply(line(&format!("-ERR Syntax: {usage}")))
            }
        };
        if let Command::Capa = cmd {
            return Action::Reply(self.capa());
        }
        match self.phase {
            Phase::Authorization { .. } => self.authorization(cmd),
            Phase::Transaction { .. } => self.transaction(cmd),
            Phase::Done => Action::Close(line("-ERR Session is over")),
        }
    }

    fn capa(&self) -> Vec<u8> {
        let mut caps: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Phase::Authorization { .. } = self.phase {
            if self.login_allowed() {
                caps.push("USER".into());
                caps.push("SASL PLAIN".into());
            }
            if self.cfg.tls_available && !self.cfg.tls_active {
                caps.push("STLS".into());
            }
        }
        multi("+OK Capability list follows", caps)
    }

    fn cleartext_refused() -> Action {
        Action::Reply(line(
            "-ERR [AUTH] Cleartext login disabled: use STLS (or the TLS port) first",
        ))
    }

    fn authorization(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::User(name) => {
                if !self.login_allowed() {
                    return Self::cleartext_refused();
                }
                self.phase = Phase::Authorization {
                    user: Some(name),
                    sasl: false,
                };
                Action::Reply(line("+OK Send your password"))
            }
            Command::Pass(pass) => {
                let Phase::Authorization { user, .. } = &mut self.phase else {
                    unreachable!()
                };
                match user.take() {
                    None => Action::Reply(line("-ERR USER first")),
                    Some(_) if !self.login_allowed() => Self::cleartext_refused(),
                    Some(user) => Action::Login { user, pass },
                }
            }
            Command::Apop(..) => Action::Reply(line("-ERR APOP is not supported")),
            Command::Auth {
                mechanism: None, ..
            } => Action::Reply(multi(
                "+OK Mechanisms follow",
                ["PLAIN".to_string()]
                    .into_iter()
                    .filter(|_| self.login_allowed()),
            )),
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => {
                if m != "PLAIN" {
                    return Action::Reply(line("-ERR Unsupported authentication mechanism"));
                }
                if !self.login_allowed() {
                    return Self::cleartext_refused();
                }
                match initial {
                    Some(i) if i == "=" => self.sasl_plain(""),
                    Some(i) => self.sasl_plain(&i),
                    None => {
                        self.phase = Phase::Authorization {
                            user: None,
                            sasl: true,
                        };
                        Action::Reply(line("+ "))
                    }
                }
            }
            Command::Stls => {
                if self.cfg.tls_active {
                    Action::Reply(line("-ERR Already under TLS"))
                } else if !self.cfg.tls_available {
                    Action::Reply(line("-ERR STLS not available"))
                } else {
                    Action::StartTls(line("+OK Begin TLS negotiation"))
                }
            }
            Command::Quit => {
                self.phase = Phase::Done;
                Action::Close(line("+OK Bye"))
            }
            _ => Action::Reply(line("-ERR Not logged in")),
        }
    }

    fn sasl_plain(&mut self, b64: &str) -> Action {
        let bad = || Action::Reply(line("-ERR [AUTH] Malformed PLAIN response"));
        let Some((authz, user, pass)) = sasl::decode_plain(b64) else {
            return bad();
        };
        if !authz.is_empty() && authz != user {
            return Action::Reply(line("-ERR [AUTH] Proxy authorization is not allowed"));
        }
        Action::Login {
            user: user.to_string(),
            pass: pass.to_string(),
        }
    }

    /// STLS done: the connection is protected; start AUTHORIZATION afresh.
    pub fn tls_started(&mut self) {
        self.cfg.tls_active = true;
        self.phase = Phase::Authorization {
            user: None,
            sasl: false,
        };
    }

    pub fn login_failed(&mut self, why: LoginFailure) -> Action {
        match why {
            LoginFailure::Denied => {
                self.failures += 1;
                if self.cfg.login_attempts > 0 && self.failures >= self.cfg.login_attempts {
                    self.phase = Phase::Done;
                    Action::Close(line("-ERR [AUTH] Authentication failed, closing"))
                } else {
                    Action::Reply(line("-ERR [AUTH] Authentication failed"))
                }
            }
            LoginFailure::Temporary => Action::Reply(line(
                "-ERR [SYS/TEMP] Authentication unavailable, try again later",
            )),
            LoginFailure::InUse => {
                self.phase = Phase::Done;
                Action::Close(line("-ERR [IN-USE] Maildrop is locked by another session"))
            }
            LoginFailure::Fatal => {
                self.phase = Phase::Done;
                Action::Close(line("-ERR [SYS/TEMP] Cannot open the maildrop"))
            }
        }
    }

    /// Logged in, maildrop open and locked: enter TRANSACTION.
    pub fn login_ok(&mut self, msgs: Vec<MessageInfo>) -> Action {
        let n = msgs.len();
        let size: u64 = msgs.iter().map(|m| m.size).sum();
        self.phase = Phase::Transaction {
            deleted: vec![false; n],
            seen: vec![false; n],
            msgs,
        };
        Action::Reply(line(&format!(
            "+OK Maildrop has {n} message{} ({size} octets)",
            if n == 1 { "" } else { "s" }
        )))
    }

    /// Messages marked deleted (TRANSACTION), by index.
    pub fn deleted(&self) -> &[bool] {
        match &self.phase {
            Phase::Transaction { deleted, .. } => deleted,
            _ => &[],
        }
    }

    /// Messages retrieved with RETR, by index.
    pub fn seen(&self) -> &[bool] {
        match &self.phase {
            Phase::Transaction { seen, .. } => seen,
            _ => &[],
        }
    }

    /// Outcome of UPDATE: the number of messages removed, or why not.
    pub fn updated(&mut self, result: Result<usize, String>) -> Action {
        let left = match &self.phase {
            Phase::Transaction { deleted, .. } => deleted.iter().filter(|d| !**d).count(),
            _ => 0,
        };
        self.phase = Phase::Done;
        match result {
            Ok(_) => Action::Close(line(&format!(
                "+OK Bye ({left} message{} left)",
                if left == 1 { "" } else { "s" }
            ))),
            Err(_) => Action::Close(line(
                "-ERR [SYS/TEMP] Some deleted messages could not be removed",
            )),
        }
    }

    /// The message of a `Action::Retrieve` could not be read.
    pub fn retrieve_failed(&mut self, index: usize) -> Vec<u8> {
        if let Phase::Transaction { seen, .. } = &mut self.phase {
            if let Some(s) = seen.get_mut(index) {
                *s = false;
            }
        }
        line("-ERR [SYS/TEMP] Cannot read the message")
    }

    fn transaction(&mut self, cmd: Command) -> Action {
        let Phase::Transaction {
            msgs,
            deleted,
            seen,
        } = &mut self.phase
        else {
            unreachable!()
        };
        // Message number -> index, or the error reply.
        let lookup = |n: MsgNum| -> Result<usize, Action> {
            if n == 0 || n > msgs.len() as u64 {
                return Err(Action::Reply(line("-ERR No such message")));
            }
            let i = (n - 1) as usize;
            if deleted[i] {
                return Err(Action::Reply(line(&format!("-ERR Message {n} is deleted"))));
            }
            Ok(i)
        };
        let live = || {
            msgs.iter()
                .zip(deleted.iter())
                .enumerate()
                .filter(|(_, (_, d))| !**d)
                .map(|(i, (m, _))| (i + 1, m))
        };
        match cmd {
            Command::Stat => {
                let (n, size) = live().fold((0u64, 0u64), |(n, s), (_, m)| (n + 1, s + m.size));
                Action::Reply(line(&format!("+OK {n} {size}")))
            }
            Command::List(None) => {
                let (n, size) = live().fold((0u64, 0u64), |(n, s), (_, m)| (n + 1, s + m.size));
                let head = format!("+OK {n} messages ({size} octets)");
                Action::Reply(multi(&head, live().map(|(i, m)| format!("{i} {}", m.size))))
            }
            Command::List(Some(n)) => match lookup(n) {
                Ok(i) => Action::Reply(line(&format!("+OK {n} {}", msgs[i].size))),
                Err(s) => s,
            },
            Command::Uidl(None) => Action::Reply(multi(
                "+OK Unique-ID listing follows",
                live().map(|(i, m)| format!("{i} {}", m.uid)),
            )),
            Command::Uidl(Some(n)) => match lookup(n) {
                Ok(i) => Action::Reply(line(&format!("+OK {n} {}", msgs[i].uid))),
                Err(s) => s,
            },
            Command::Retr(n) => match lookup(n) {
                Ok(i) => {
                    seen[i] = true;
                    Action::Retrieve {
                        index: i,
                        status: line(&format!("+OK {} octets", msgs[i].size)),
                        top: None,
                    }
                }
                Err(s) => s,
            },
            Command::Top(n, lines) => match lookup(n) {
                Ok(i) => Action::Retrieve {
                    index: i,
                    status: line("+OK Top of message follows"),
                    top: Some(lines),
                },
                Err(s) => s,
            },
            Command::Dele(n) => match lookup(n) {
                Ok(i) => {
                    deleted[i] = true;
                    Action::Reply(line(&format!("+OK Message {n} deleted")))
                }
                Err(s) => s,
            },
            Command::Noop => Action::Reply(line("+OK")),
            Command::Rset => {
                deleted.iter_mut().for_each(|d| *d = false);
                let size: u64 = msgs.iter().map(|m| m.size).sum();
                Action::Reply(line(&format!(
                    "+OK Maildrop has {} messages ({size} octets)",
                    msgs.len()
                )))
            }
            Command::Quit => Action::Update,
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop(..)
            | Command::Auth { .. }
            | Command::Stls
            | Command::Capa => Action::Reply(line(WRONG_STATE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            tls_available: true,
            tls_active: false,
            cleartext_login: true,
            login_attempts: 3,
        }
    }

    fn text(s: &Action) -> String {
        match s {
            Action::Reply(b) | Action::Close(b) | Action::StartTls(b) => {
                String::from_utf8(b.clone()).unwrap()
            }
            Action::Retrieve { status, .. } => String::from_utf8(status.clone()).unwrap(),
            other => format!("{other:?}"),
        }
    }

    fn msgs() -> Vec<MessageInfo> {
        (1..=3)
            .map(|i| MessageInfo {
                uid: format!("u{i}"),
                size: 100 * i,
            })
            .collect()
    }

    fn logged_in() -> Machine {
        let mut m = Machine::new(cfg());
        m.handle(b"USER demo");
        assert_eq!(
            m.handle(b"PASS demo"),
            Action::Login {
                user: "demo".into(),
                pass: "demo".into()
            }
        );
        let s = m.login_ok(msgs());
        assert_eq!(text(&s), "+OK Maildrop has 3 messages (600 octets)\r\n");
        m
    }

    #[test]
    fn authorization_state() {
        let mut m = Machine::new(cfg());
        assert_eq!(text(&m.handle(b"PASS x")), "-ERR USER first\r\n");
        for c in [
            &b"STAT"[..],
            b"LIST",
            b"RETR 1",
            b"DELE 1",
            b"NOOP",
            b"RSET",
            b"TOP 1 1",
            b"UIDL",
        ] {
            assert!(
                text(&m.handle(c)).starts_with("-ERR Not logged in"),
                "{c:?}"
            );
        }
        assert!(text(&m.handle(b"USER demo")).starts_with("+OK"));
        assert_eq!(
            m.handle(b"PASS se cret"),
            Action::Login {
                user: "demo".into(),
                pass: "se cret".into()
            }
        );
        // The USER is consumed by the attempt.
        assert_eq!(text(&m.handle(b"PASS again")), "-ERR USER first\r\n");
        assert!(text(&m.handle(b"APOP a b")).starts_with("-ERR"));
        assert_eq!(m.handle(b"QUIT"), Action::Close(b"+OK Bye\r\n".to_vec()));
    }

    #[test]
    fn failed_logins_close_after_the_limit() {
        let mut m = Machine::new(cfg());
        for i in 1..=3 {
            m.handle(b"USER demo");
            m.handle(b"PASS bad");
            let s = m.login_failed(LoginFailure::Denied);
            assert!(text(&s).starts_with("-ERR [AUTH]"));
            assert_eq!(matches!(s, Action::Close(_)), i == 3);
        }
        let mut m = Machine::new(cfg());
        assert!(matches!(
            m.login_failed(LoginFailure::Temporary),
            Action::Reply(ref b) if b.starts_with(b"-ERR [SYS/TEMP]")
        ));
        assert_eq!(
            text(&m.login_failed(LoginFailure::InUse)),
            "-ERR [IN-USE] Maildrop is locked by another session\r\n"
        );
    }

    #[test]
    fn capa_depends_on_state_and_tls() {
        let mut m = Machine::new(cfg());
        let c = text(&m.handle(b"CAPA"));
        for cap in [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "USER",
            "SASL PLAIN",
            "STLS",
        ] {
            assert!(c.contains(&format!("\r\n{cap}\r\n")), "{cap} in {c}");
        }
        assert!(c.ends_with("\r\n.\r\n"));
        m.tls_started();
        assert!(!text(&m.handle(b"CAPA")).contains("STLS"));
        let mut m = logged_in();
        let c = text(&m.handle(b"CAPA"));
        assert!(!c.contains("USER") && !c.contains("SASL") && c.contains("UIDL"));
    }

    #[test]
    fn cleartext_refused_until_tls() {
        let mut m = Machine::new(Config {
            cleartext_login: false,
            ..cfg()
        });
        let c = text(&m.handle(b"CAPA"));
        assert!(!c.contains("USER") && !c.contains("SASL") && c.contains("STLS"));
        assert!(text(&m.handle(b"USER demo")).starts_with("-ERR [AUTH]"));
        assert!(text(&m.handle(b"AUTH PLAIN AGRlbW8AZGVtbw==")).starts_with("-ERR [AUTH]"));
        assert_eq!(
            m.handle(b"STLS"),
            Action::StartTls(b"+OK Begin TLS negotiation\r\n".to_vec())
        );
        m.tls_started();
        assert!(text(&m.handle(b"STLS")).starts_with("-ERR"));
        m.handle(b"USER demo");
        assert!(matches!(m.handle(b"PASS demo"), Action::Login { .. }));
    }

    #[test]
    fn stls_unavailable_without_certificate() {
        let mut m = Machine::new(Config {
            tls_available: false,
            ..cfg()
        });
        assert!(!text(&m.handle(b"CAPA")).contains("STLS"));
        assert!(text(&m.handle(b"STLS")).starts_with("-ERR"));
    }

    #[test]
    fn sasl_plain() {
        let login = Action::Login {
            user: "demo".into(),
            pass: "demo".into(),
        };
        let mut m = Machine::new(cfg());
        assert_eq!(m.handle(b"AUTH PLAIN AGRlbW8AZGVtbw=="), login);
        assert_eq!(text(&m.handle(b"AUTH PLAIN")), "+ \r\n");
        assert!(m.expects_sasl_response());
        assert_eq!(m.handle(b"AGRlbW8AZGVtbw=="), login);
        assert_eq!(text(&m.handle(b"AUTH PLAIN")), "+ \r\n");
        assert!(text(&m.handle(b"*")).starts_with("-ERR"));
        assert!(!m.expects_sasl_response());
        assert!(text(&m.handle(b"AUTH PLAIN !!!")).starts_with("-ERR [AUTH]"));
        // authzid other than the user: refused.
        assert!(text(&m.handle(b"AUTH PLAIN cm9vdABkZW1vAGRlbW8=")).starts_with("-ERR [AUTH]"));
        assert!(text(&m.handle(b"AUTH CRAM-MD5")).starts_with("-ERR"));
        assert_eq!(
            text(&m.handle(b"AUTH")),
            "+OK Mechanisms follow\r\nPLAIN\r\n.\r\n"
        );
    }

    #[test]
    fn transaction_commands() {
        let mut m = logged_in();
        assert_eq!(text(&m.handle(b"STAT")), "+OK 3 600\r\n");
        assert_eq!(
            text(&m.handle(b"LIST")),
            "+OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n"
        );
        assert_eq!(text(&m.handle(b"LIST 2")), "+OK 2 200\r\n");
        assert_eq!(
            text(&m.handle(b"UIDL")),
            "+OK Unique-ID listing follows\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n"
        );
        assert_eq!(text(&m.handle(b"UIDL 3")), "+OK 3 u3\r\n");
        assert_eq!(text(&m.handle(b"NOOP")), "+OK\r\n");
        assert_eq!(
            m.handle(b"RETR 2"),
            Action::Retrieve {
                index: 1,
                status: b"+OK 200 octets\r\n".to_vec(),
                top: None
            }
        );
        assert_eq!(
            m.handle(b"TOP 1 5"),
            Action::Retrieve {
                index: 0,
                status: b"+OK Top of message follows\r\n".to_vec(),
                top: Some(5)
            }
        );
        assert_eq!(m.seen(), &[false, true, false]);
        for c in [
            &b"USER x"[..],
            b"PASS x",
            b"STLS",
            b"AUTH PLAIN",
            b"APOP a b",
        ] {
            assert_eq!(
                text(&m.handle(c)),
                "-ERR Command not valid in this state\r\n"
            );
        }
    }

    #[test]
    fn bad_message_numbers() {
        let mut m = logged_in();
        for c in [
            &b"RETR 0"[..],
            b"RETR 4",
            b"LIST 18446744073709551615",
            b"DELE 99999999999999999999999999",
            b"TOP 9 1",
            b"UIDL 4",
        ] {
            assert_eq!(text(&m.handle(c)), "-ERR No such message\r\n", "{c:?}");
        }
        assert!(text(&m.handle(b"RETR -1")).starts_with("-ERR Syntax"));
        assert!(text(&m.handle(b"RETR a\0")).starts_with("-ERR Invalid"));
        assert!(text(&m.too_long()).starts_with("-ERR"));
        assert!(text(&m.handle(b"XYZZY")).starts_with("-ERR Unknown"));
    }

    #[test]
    fn deleted_messages_and_rset() {
        let mut m = logged_in();
        assert_eq!(text(&m.handle(b"DELE 2")), "+OK Message 2 deleted\r\n");
        assert_eq!(text(&m.handle(b"DELE 2")), "-ERR Message 2 is deleted\r\n");
        for c in [&b"RETR 2"[..], b"LIST 2", b"TOP 2 0", b"UIDL 2"] {
            assert_eq!(text(&m.handle(c)), "-ERR Message 2 is deleted\r\n");
        }
        assert_eq!(text(&m.handle(b"STAT")), "+OK 2 400\r\n");
        assert_eq!(
            text(&m.handle(b"LIST")),
            "+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n"
        );
        assert_eq!(
            text(&m.handle(b"UIDL")),
            "+OK Unique-ID listing follows\r\n1 u1\r\n3 u3\r\n.\r\n"
        );
        assert_eq!(m.deleted(), &[false, true, false]);
        assert!(text(&m.handle(b"RSET")).starts_with("+OK Maildrop has 3 messages"));
        assert_eq!(m.deleted(), &[false, false, false]);
        m.handle(b"DELE 1");
        m.handle(b"DELE 3");
        assert_eq!(m.handle(b"QUIT"), Action::Update);
        assert_eq!(m.deleted(), &[true, false, true]);
        assert_eq!(text(&m.updated(Ok(2))), "+OK Bye (1 message left)\r\n");
        assert!(matches!(m.handle(b"NOOP"), Action::Close(_)));
    }

    #[test]
    fn update_failure_is_reported() {
        let mut m = logged_in();
        m.handle(b"DELE 1");
        assert_eq!(m.handle(b"QUIT"), Action::Update);
        assert!(text(&m.updated(Err("disk".into()))).starts_with("-ERR [SYS/TEMP]"));
    }

    #[test]
    fn pipelined_commands_are_answered_in_order() {
        let mut m = logged_in();
        let replies: Vec<String> = [&b"STAT"[..], b"DELE 1", b"LIST 1", b"STAT", b"NOOP"]
            .iter()
            .map(|c| text(&m.handle(c)))
            .collect();
        assert_eq!(
            replies,
            vec![
                "+OK 3 600\r\n",
                "+OK Message 1 deleted\r\n",
                "-ERR Message 1 is deleted\r\n",
                "+OK 2 500\r\n",
                "+OK\r\n"
            ]
        );
    }

    #[test]
    fn empty_maildrop() {
        let mut m = Machine::new(cfg());
        m.handle(b"USER demo");
        m.handle(b"PASS demo");
        assert_eq!(
            text(&m.login_ok(vec![])),
            "+OK Maildrop has 0 messages (0 octets)\r\n"
        );
        assert_eq!(text(&m.handle(b"STAT")), "+OK 0 0\r\n");
        assert_eq!(
            text(&m.handle(b"LIST")),
            "+OK 0 messages (0 octets)\r\n.\r\n"
        );
        assert_eq!(text(&m.handle(b"RETR 1")), "-ERR No such message\r\n");
    }
}
