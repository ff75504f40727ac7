//! The connection's phases (RFC 9051 section 3): not authenticated,
//! authenticated, selected, logout; logins (LOGIN, AUTHENTICATE PLAIN and
//! LOGIN with SASL-IR), STARTTLS, capabilities and ENABLE. Lines in,
//! actions out: no files, no sockets, no clock. What a logged-in command
//! does to the mail store is the session's (`Action::Mailbox`).

use super::command::{self, Command, Tagged};
use crate::auth::sasl;

/// What the connection allows, fixed by configuration and the connection.
#[derive(Clone, Debug)]
pub struct Config {
    /// STARTTLS can be offered (tls_cert/tls_key set).
    pub tls_available: bool,
    /// Under TLS already (implicit TLS, or after STARTTLS).
    pub tls_active: bool,
    /// The client is on this host (loopback): passwords may travel in the
    /// clear even when TLS is available.
    pub local: bool,
    /// Failed logins before the connection is closed (0: no limit).
    pub login_attempts: u32,
    /// The largest APPEND (APPENDLIMIT).
    pub append_limit: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Vec<u8>),
    /// Send and end the session.
    Close(Vec<u8>),
    /// Send, then the TLS handshake, then `tls_started`.
    StartTls(Vec<u8>),
    /// Send a continuation; the next line is a SASL response (`handle`
    /// takes it).
    Continue(Vec<u8>),
    /// Check the credentials, then `login_ok` or `login_failed`.
    Login {
        tag: String,
        user: String,
        pass: String,
    },
    /// A logged-in command for the session to carry out on the store.
    Mailbox(Tagged),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    NotAuthenticated,
    Authenticated,
    Logout,
}

/// A SASL exchange under way.
#[derive(Clone, Debug)]
struct Sasl {
    tag: String,
    mechanism: String,
    user: Option<String>,
}

/// Extensions the client turned on with ENABLE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enabled {
    pub condstore: bool,
    pub qresync: bool,
    pub rev2: bool,
    pub utf8: bool,
}

pub struct Machine {
    cfg: Config,
    pub phase: Phase,
    sasl: Option<Sasl>,
    failures: u32,
    pub enabled: Enabled,
}

fn line(s: &str) -> Vec<u8> {
    format!("{s}\r\n").into_bytes()
}

impl Machine {
    pub fn new(cfg: Config) -> Machine {
        Machine {
            cfg,
            phase: Phase::NotAuthenticated,
            sasl: None,
            failures: 0,
            enabled: Enabled::default(),
        }
    }

    /// A machine for the account's process: logged in already.
    pub fn logged_in(cfg: Config) -> Machine {
        let mut m = Machine::new(cfg);
        m.phase = Phase::Authenticated;
        m
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether passwords may be sent now (else LOGINDISABLED).
    pub fn login_allowed(&self) -> bool {
        self.cfg.tls_active || !self.cfg.tls_available || self.cfg.local
    }

    /// Whether the next line is a SASL response (not to be logged).
    pub fn expects_sasl_response(&self) -> bool {
        self.sasl.is_some()
    }

    pub fn capabilities(&self) -> String {
        let mut c = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "SASL-IR",
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
        ];
        match self.phase {
            Phase::NotAuthenticated => {
                if self.cfg.tls_available && !self.cfg.tls_active {
                    c.push("STARTTLS");
                }
                if self.login_allowed() {
                    c.push("AUTH=PLAIN");
                    c.push("AUTH=LOGIN");
                } else {
                    c.push("LOGINDISABLED");
                }
            }
            _ => {
                c.extend([
                    "NAMESPACE",
                    "UNSELECT",
                    "UIDPLUS",
                    "MOVE",
                    "CHILDREN",
                    "LIST-EXTENDED",
                    "LIST-STATUS",
                    "SPECIAL-USE",
                    "ESEARCH",
                    "BINARY",
                    "CONDSTORE",
                    "QRESYNC",
                    "STATUS=SIZE",
                    "UTF8=ACCEPT",
                ]);
            }
        }
        let mut s = c.join(" ");
        if self.phase != Phase::NotAuthenticated {
            s.push_str(&format!(" APPENDLIMIT={}", self.cfg.append_limit));
        }
        s
    }

    /// The greeting's response code.
    pub fn greeting(&self, text: &str) -> Vec<u8> {
        line(&format!("* OK [CAPABILITY {}] {text}", self.capabilities()))
    }

    fn tagged(tag: &str, text: &str) -> Action {
        Action::Reply(line(&format!("{tag} {text}")))
    }

    /// A line longer than the limit was dropped.
    pub fn too_long(&mut self) -> Action {
        self.sasl = None;
        Action::Reply(line("* BAD Line too long"))
    }

    /// One whole command (or a SASL response line).
    pub fn handle(&mut self, raw: &[u8]) -> Action {
        if let Some(s) = self.sasl.take() {
            return self.sasl_step(s, raw);
        }
        let t = match command::parse(raw) {
            Ok(t) => t,
            Err(e) => {
                let tag = e.tag.unwrap_or_else(|| "*".into());
                return Action::Reply(line(&format!("{tag} BAD {}", e.why)));
            }
        };
        let tag = t.tag.clone();
        match (&t.command, self.phase) {
            (_, Phase::Logout) => Action::Close(Vec::new()),
            (Command::Capability, _) => Action::Reply(
                [
                    line(&format!("* CAPABILITY {}", self.capabilities())),
                    line(&format!("{tag} OK CAPABILITY completed")),
                ]
                .concat(),
            ),
            (Command::Logout, _) => {
                self.phase = Phase::Logout;
                Action::Close(
                    [
                        line("* BYE Logging out"),
                        line(&format!("{tag} OK LOGOUT completed")),
                    ]
                    .concat(),
                )
            }
            (Command::Id(_), _) => Action::Reply(
                [
                    line("* ID (\"name\" \"classicd imapd\" \"vendor\" \"classicd\")"),
                    line(&format!("{tag} OK ID completed")),
                ]
                .concat(),
            ),
            (Command::Noop, Phase::NotAuthenticated) => Self::tagged(&tag, "OK NOOP completed"),
            (Command::StartTls, Phase::NotAuthenticated) => {
                if self.cfg.tls_active {
                    Self::tagged(&tag, "BAD TLS is already active")
                } else if !self.cfg.tls_available {
                    Self::tagged(&tag, "BAD STARTTLS is not available")
                } else {
                    Action::StartTls(line(&format!("{tag} OK Begin TLS negotiation now")))
                }
            }
            (Command::Login(user, pass), Phase::NotAuthenticated) => {
                if !self.login_allowed() {
                    return Self::tagged(
                        &tag,
                        "NO [PRIVACYREQUIRED] Plaintext login disabled: STARTTLS first",
                    );
                }
                Action::Login {
                    tag,
                    user: user.clone(),
                    pass: pass.clone(),
                }
            }
            (Command::Authenticate(mech, initial), Phase::NotAuthenticated) => {
                self.authenticate(tag, mech.clone(), initial.clone())
            }
            (_, Phase::NotAuthenticated) => Self::tagged(&tag, "BAD Log in first"),
            (Command::StartTls, _) | (Command::Login(..), _) | (Command::Authenticate(..), _) => {
                Self::tagged(&tag, "BAD Already logged in")
            }
            (Command::Enable(caps), _) => self.enable(&tag, caps),
            _ => Action::Mailbox(t),
        }
    }

    fn enable(&mut self, tag: &str, caps: &[String]) -> Action {
        let mut done = Vec::new();
        for c in caps {
            let newly = match c.as_str() {
                "CONDSTORE" => !std::mem::replace(&mut self.enabled.condstore, true),
                "QRESYNC" => {
                    // QRESYNC implies CONDSTORE.
                    self.enabled.condstore = true;
                    !std::mem::replace(&mut self.enabled.qresync, true)
                }
                "IMAP4REV2" => !std::mem::replace(&mut self.enabled.rev2, true),
                "UTF8=ACCEPT" => !std::mem::replace(&mut self.enabled.utf8, true),
                _ => false,
            };
            if newly {
                done.push(if c == "IMAP4REV2" {
                    "IMAP4rev2"
                } else {
                    c.as_str()
                });
            }
        }
        let mut out = if done.is_empty() {
            line("* ENABLED")
        } else {
            line(&format!("* ENABLED {}", done.join(" ")))
        };
        out.extend(line(&format!("{tag} OK ENABLE completed")));
        Action::Reply(out)
    }

    fn authenticate(&mut self, tag: String, mech: String, initial: Option<String>) -> Action {
        if mech != "PLAIN" && mech != "LOGIN" {
            return Self::tagged(&tag, "NO Unsupported authentication mechanism");
        }
        if !self.login_allowed() {
            return Self::tagged(
                &tag,
                "NO [PRIVACYREQUIRED] Plaintext login disabled: STARTTLS first",
            );
        }
        let s = Sasl {
            tag,
            mechanism: mech,
            user: None,
        };
        match initial {
            Some(i) => self.sasl_step(s, i.as_bytes()),
            None if s.mechanism == "LOGIN" => {
                self.sasl = Some(s);
                Action::Continue(line("+ VXNlcm5hbWU6"))
            }
            None => {
                self.sasl = Some(s);
                Action::Continue(line("+ "))
            }
        }
    }

    fn sasl_step(&mut self, mut s: Sasl, raw: &[u8]) -> Action {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text == "*" {
            return Self::tagged(&s.tag, "BAD Authentication cancelled");
        }
        let malformed = |tag: &str| Self::tagged(tag, "BAD Malformed SASL response");
        if s.mechanism == "PLAIN" {
            let decoded = if text == "=" {
                Some((String::new(), String::new(), String::new()))
            } else {
                sasl::decode_plain(text)
            };
            let Some((authz, user, pass)) = decoded else {
                return malformed(&s.tag);
            };
            if !authz.is_empty() && authz != user {
                return Self::tagged(
                    &s.tag,
                    "NO [AUTHORIZATIONFAILED] Proxy authorization is not allowed",
                );
            }
            return Action::Login {
                tag: s.tag,
                user,
                pass,
            };
        }
        // LOGIN: the user name, then the password.
        let value = if text == "=" {
            Some(String::new())
        } else {
            sasl::decode_text(text)
        };
        let Some(value) = value else {
            return malformed(&s.tag);
        };
        match s.user.take() {
            None => {
                s.user = Some(value);
                self.sasl = Some(s);
                Action::Continue(line("+ UGFzc3dvcmQ6"))
            }
            Some(user) => Action::Login {
                tag: s.tag,
                user,
                pass: value,
            },
        }
    }

    pub fn tls_started(&mut self) {
        self.cfg.tls_active = true;
    }

    /// The credentials of an `Action::Login` were refused.
    pub fn login_failed(&mut self, tag: &str, temporary: bool) -> Action {
        if temporary {
            return Self::tagged(
                tag,
                "NO [UNAVAILABLE] Authentication service unavailable, try again later",
            );
        }
        self.failures += 1;
        if self.cfg.login_attempts > 0 && self.failures >= self.cfg.login_attempts {
            self.phase = Phase::Logout;
            return Action::Close(
                [
                    line(&format!(
                        "{tag} NO [AUTHENTICATIONFAILED] Authentication failed"
                    )),
                    line("* BYE Too many failed logins"),
                ]
                .concat(),
            );
        }
        Self::tagged(tag, "NO [AUTHENTICATIONFAILED] Authentication failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            tls_available: true,
            tls_active: false,
            local: false,
            login_attempts: 3,
            append_limit: 1000,
        }
    }

    fn text(a: &Action) -> String {
        match a {
            Action::Reply(b) | Action::Close(b) | Action::StartTls(b) | Action::Continue(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            a => format!("{a:?}"),
        }
    }

    #[test]
    fn before_login() {
        let mut m = Machine::new(cfg());
        let caps = m.capabilities();
        assert!(
            caps.contains("STARTTLS") && caps.contains("LOGINDISABLED") && !caps.contains("AUTH=")
        );
        assert!(text(&m.handle(b"a LOGIN demo demo")).starts_with("a NO [PRIVACYREQUIRED]"));
        assert!(text(&m.handle(b"a AUTHENTICATE PLAIN")).starts_with("a NO [PRIVACYREQUIRED]"));
        assert!(text(&m.handle(b"a SELECT INBOX")).starts_with("a BAD Log in first"));
        assert!(text(&m.handle(b"a NOOP")).starts_with("a OK"));
        assert!(text(&m.handle(b"a CAPABILITY")).starts_with("* CAPABILITY IMAP4rev1 IMAP4rev2"));
        assert!(text(&m.handle(b"a ID NIL")).starts_with("* ID ("));
        assert!(matches!(m.handle(b"a STARTTLS"), Action::StartTls(_)));
        m.tls_started();
        assert!(text(&m.handle(b"b STARTTLS")).starts_with("b BAD TLS is already active"));
        let caps = m.capabilities();
        assert!(
            !caps.contains("STARTTLS")
                && caps.contains("AUTH=PLAIN")
                && !caps.contains("LOGINDISABLED")
        );
        assert_eq!(
            m.handle(b"c LOGIN demo \"p w\""),
            Action::Login {
                tag: "c".into(),
                user: "demo".into(),
                pass: "p w".into()
            }
        );
        assert!(text(&m.handle(b"garbage")).starts_with("garbage BAD"));
        assert!(text(&m.handle(b"")).starts_with("* BAD"));
        assert!(matches!(m.handle(b"z LOGOUT"), Action::Close(_)));
    }

    #[test]
    fn local_and_plain_connections_may_log_in() {
        let m = Machine::new(Config {
            local: true,
            ..cfg()
        });
        assert!(m.login_allowed());
        let m = Machine::new(Config {
            tls_available: false,
            ..cfg()
        });
        assert!(m.login_allowed());
        assert!(!m.capabilities().contains("STARTTLS"));
    }

    #[test]
    fn sasl() {
        let mut m = Machine::new(Config {
            local: true,
            ..cfg()
        });
        // SASL-IR.
        assert_eq!(
            m.handle(b"a AUTHENTICATE PLAIN AGRlbW8AZGVtbw=="),
            Action::Login {
                tag: "a".into(),
                user: "demo".into(),
                pass: "demo".into()
            }
        );
        assert_eq!(
            m.handle(b"b AUTHENTICATE PLAIN"),
            Action::Continue(b"+ \r\n".to_vec())
        );
        assert!(m.expects_sasl_response());
        assert_eq!(
            m.handle(b"AGRlbW8AZGVtbw=="),
            Action::Login {
                tag: "b".into(),
                user: "demo".into(),
                pass: "demo".into()
            }
        );
        assert!(matches!(
            m.handle(b"c AUTHENTICATE LOGIN"),
            Action::Continue(_)
        ));
        assert!(matches!(m.handle(b"ZGVtbw=="), Action::Continue(_)));
        assert_eq!(
            m.handle(b"c2VjcmV0"),
            Action::Login {
                tag: "c".into(),
                user: "demo".into(),
                pass: "secret".into()
            }
        );
        m.handle(b"d AUTHENTICATE PLAIN");
        assert!(text(&m.handle(b"*")).starts_with("d BAD Authentication cancelled"));
        m.handle(b"e AUTHENTICATE PLAIN");
        assert!(text(&m.handle(b"!!!")).starts_with("e BAD Malformed"));
        assert!(text(&m.handle(b"f AUTHENTICATE CRAM-MD5")).starts_with("f NO Unsupported"));
        assert!(text(&m.handle(b"g AUTHENTICATE PLAIN eABkZW1vAGRlbW8="))
            .starts_with("g NO [AUTHORIZATIONFAILED]"));
    }

    #[test]
    fn failures_close_after_the_limit() {
        let mut m = Machine::new(Config {
            local: true,
            ..cfg()
        });
        assert!(matches!(m.login_failed("a", false), Action::Reply(_)));
        assert!(matches!(m.login_failed("a", true), Action::Reply(_)));
        assert!(matches!(m.login_failed("b", false), Action::Reply(_)));
        let last = m.login_failed("c", false);
        assert!(matches!(last, Action::Close(_)));
        assert!(text(&last).contains("* BYE"));
    }

    #[test]
    fn after_login() {
        let mut m = Machine::logged_in(cfg());
        assert!(
            m.capabilities().contains("UIDPLUS") && m.capabilities().contains("APPENDLIMIT=1000")
        );
        assert!(text(&m.handle(b"a LOGIN x y")).starts_with("a BAD Already"));
        assert!(text(&m.handle(b"a STARTTLS")).starts_with("a BAD Already"));
        assert_eq!(
            text(&m.handle(b"a ENABLE QRESYNC X")),
            "* ENABLED QRESYNC\r\na OK ENABLE completed\r\n"
        );
        assert!(m.enabled.condstore && m.enabled.qresync);
        assert_eq!(
            text(&m.handle(b"b ENABLE QRESYNC")),
            "* ENABLED\r\nb OK ENABLE completed\r\n"
        );
        assert!(matches!(m.handle(b"a SELECT INBOX"), Action::Mailbox(_)));
        assert!(matches!(m.handle(b"a NOOP"), Action::Mailbox(_)));
    }
}
