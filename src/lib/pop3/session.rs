//! The pop3d glue, in the two processes of the privilege split:
//!
//! - pre-login (unprivileged, confined): AUTHORIZATION: greeting, CAPA,
//!   STLS, USER/PASS and AUTH PLAIN; credentials go to the monitor, and a
//!   granted login starts the account's session with the connection;
//! - the account's process: opens and locks the maildrop as the account,
//!   then TRANSACTION and UPDATE.
//!
//! Both run on the shared line driver (`net::dialogue`). RETR goes out in
//! 64 KiB writes through `wire::WireWriter`, in constant memory
//! whatever the message size.

use std::io::{self, BufRead};

use super::command;
use super::state::{Action, Config, LoginFailure, Machine};
use crate::auth;
use crate::mail::{Maildrop, OpenError};
use crate::net::dialogue::{self, Dialogue, Flow, LineProtocol, Silence};
use crate::net::Ending;
use crate::runtime::session::{ipc, LoggedIn, Monitor, PreLogin, TcpProtocol, Verdict};
use crate::runtime::ListenKind;
use crate::wire::WireWriter;

/// Longest command line (RFC 2449 allows 255 octets; SASL responses are
/// longer).
pub const LINE_MAX: usize = 4096;

/// pop3d in the privilege split.
pub struct Pop3;

pub static POP3: Pop3 = Pop3;

fn config(s: &crate::runtime::config::Settings, tls_available: bool, tls_active: bool) -> Config {
    Config {
        tls_available,
        tls_active,
        cleartext_login: s.daemon::<super::Config>().cleartext_login,
        login_attempts: s.common().login_attempts,
    }
}

impl TcpProtocol for Pop3 {
    fn prelogin(&self, s: PreLogin) {
        let tls_active = s.kind == ListenKind::Tls;
        let cfg = config(&s.settings, s.tls.is_some(), tls_active);
        let banner = s.banner("pop3d");
        let mut d = Dialogue::new(s.conn, s.tls, LINE_MAX);
        d.reply(format!("+OK {banner}\r\n").as_bytes());
        let mut p = Authorization {
            d,
            m: Machine::new(cfg),
            monitor: s.monitor,
        };
        dialogue::run(&mut p);
    }

    fn session(&self, s: LoggedIn) {
        let tls_active = match Handover::decode(&s.handover) {
            Some(h) => h.tls_active,
            None => {
                log::error!("user {}: bad hand-over", s.account.name);
                return;
            }
        };
        let cfg = config(&s.settings, s.tls.is_some(), tls_active);
        // Whatever a mailbox makes it wait on, the session does not outlive
        // the idle timer by more than a little.
        let mut conn = s.conn;
        conn.set_watchdog(Some(
            s.settings.common().idle_timeout + std::time::Duration::from_secs(10),
        ));
        let mut t = Transaction {
            d: Dialogue::new(conn, None, LINE_MAX),
            m: Machine::new(cfg),
            drop: None,
            user: s.account.name.clone(),
            retrieved: 0,
        };
        let first = t.open(&s.settings, &s.account);
        if t.apply(first) == Flow::Close {
            let _ = t.d.flush();
            t.d.conn.close();
            return;
        }
        dialogue::run(&mut t);
        if t.drop.is_some() {
            log::info!(
                "user {}: session ended without QUIT, nothing deleted",
                t.user
            );
        }
    }
}

/// What the pre-login side hands to the account's process.
struct Handover {
    tls_active: bool,
}

impl Handover {
    fn encode(&self) -> Vec<u8> {
        ipc::Writer::new(1).u8(u8::from(self.tls_active)).finish()
    }

    fn decode(b: &[u8]) -> Option<Handover> {
        let (tag, mut r) = ipc::Reader::new(b).ok()?;
        let tls_active = r.bool().ok()?;
        r.end().ok()?;
        (tag == 1).then_some(Handover { tls_active })
    }
}

fn masked(line: &[u8], sasl: bool) -> String {
    if sasl {
        return "****".into();
    }
    let kw = command::keyword(line);
    match kw.as_str() {
        "PASS" => "PASS ****".into(),
        "AUTH" => {
            // The mechanism may be shown, an initial response never.
            let text = String::from_utf8_lossy(line);
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                [_, mech, _, ..] => format!("AUTH {} ****", auth::printable(mech)),
                _ => auth::printable(&text),
            }
        }
        _ => auth::printable(&String::from_utf8_lossy(line)),
    }
}

/// AUTHORIZATION, in the unprivileged pre-login process.
struct Authorization {
    d: Dialogue,
    m: Machine,
    monitor: Monitor,
}

/// The actions both phases carry out alike: a reply, and what follows it.
/// The others come back.
fn reply(d: &mut Dialogue, a: Action) -> Result<Flow, Action> {
    let (b, flow) = match a {
        Action::Reply(b) => (b, Flow::Continue),
        Action::Close(b) => (b, Flow::Close),
        Action::StartTls(b) => (b, Flow::StartTls),
        other => return Err(other),
    };
    d.reply(&b);
    Ok(flow)
}

impl Authorization {
    fn apply(&mut self, a: Action) -> Flow {
        let a = match reply(&mut self.d, a) {
            Ok(flow) => return flow,
            Err(a) => a,
        };
        match a {
            Action::Login { user, pass } => {
                let next = self.login(&user, &pass);
                self.apply(next)
            }
            // Nothing but a login leaves AUTHORIZATION.
            _ => Flow::Close,
        }
    }

    fn login(&mut self, user: &str, pass: &str) -> Action {
        let d = &mut self.d;
        match self.monitor.password(user, pass) {
            Verdict::Denied => self.m.login_failed(LoginFailure::Denied),
            Verdict::Unavailable => self.m.login_failed(LoginFailure::Temporary),
            Verdict::Granted(_) => {
                // Replies to what came before the login go out first.
                if d.flush().is_err() {
                    return Action::Close(Vec::new());
                }
                let handover = Handover {
                    tls_active: d.conn.is_tls(),
                };
                let e = self.monitor.start_session(&mut d.conn, &handover.encode());
                log::error!("user {user}: cannot start the session: {e}");
                self.m.login_failed(LoginFailure::Fatal)
            }
        }
    }
}

impl LineProtocol for Authorization {
    fn redact(&self, line: &[u8]) -> String {
        masked(line, self.m.expects_sasl_response())
    }

    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        let a = self.m.handle(line);
        self.apply(a)
    }

    fn too_long(&mut self) -> Flow {
        let a = self.m.too_long();
        self.apply(a)
    }

    /// RFC 1939: no response to an autologout.
    fn silent(&mut self, _: Silence) {}

    fn tls_started(&mut self) {
        self.m.tls_started();
    }
}

/// TRANSACTION and UPDATE, in the account's process.
struct Transaction {
    d: Dialogue,
    m: Machine,
    drop: Option<Maildrop>,
    user: String,
    retrieved: usize,
}

impl Transaction {
    /// Open and lock the maildrop, as the account: the reply to the login.
    fn open(
        &mut self,
        settings: &crate::runtime::config::Settings,
        account: &auth::Account,
    ) -> Action {
        let location = &settings.daemon::<super::Config>().mail_location;
        let mailbox = match location.mailbox_for(account) {
            Ok(m) => m,
            Err(e) => {
                log::error!("user {}: {e}", account.name);
                return self.m.login_failed(LoginFailure::Fatal);
            }
        };
        match Maildrop::open(&mailbox) {
            Ok(d) => {
                let msgs = d.messages().to_vec();
                log::info!(
                    "user {}: maildrop {} opened, {} messages",
                    account.name,
                    mailbox.path().display(),
                    msgs.len()
                );
                self.drop = Some(d);
                self.m.login_ok(msgs)
            }
            Err(OpenError::InUse) => {
                log::warn!("user {}: maildrop in use", account.name);
                self.m.login_failed(LoginFailure::InUse)
            }
            Err(OpenError::Io(e)) => {
                log::error!(
                    "user {}: cannot open {}: {e}",
                    account.name,
                    mailbox.path().display()
                );
                self.m.login_failed(LoginFailure::Fatal)
            }
        }
    }

    fn apply(&mut self, a: Action) -> Flow {
        let a = match a {
            // No TLS upgrade after login.
            Action::StartTls(_) => return Flow::Close,
            a => match reply(&mut self.d, a) {
                Ok(flow) => return flow,
                Err(a) => a,
            },
        };
        match a {
            // No second login.
            Action::Login { .. } | Action::Reply(_) | Action::Close(_) | Action::StartTls(_) => {
                Flow::Close
            }
            Action::Retrieve { index, status, top } => self.retrieve(index, status, top),
            Action::Update => {
                let next = self.update();
                self.apply(next)
            }
        }
    }

    fn update(&mut self) -> Action {
        let Some(drop) = self.drop.take() else {
            return self.m.updated(Ok(0));
        };
        let deleted = self.m.deleted().to_vec();
        match drop.commit(&deleted, self.m.seen()) {
            Ok(r) => {
                log::info!(
                    "user {}: retrieved {}, deleted {}",
                    self.user,
                    self.retrieved,
                    r.deleted
                );
                self.m.updated(Ok(r.deleted))
            }
            Err(e) => {
                log::error!("user {}: UPDATE failed: {e}", self.user);
                self.m.updated(Err(e.to_string()))
            }
        }
    }

    fn retrieve(&mut self, index: usize, status: Vec<u8>, top: Option<u64>) -> Flow {
        let d = &mut self.d;
        let opened = match self.drop.as_mut() {
            Some(m) => m.open_message(index),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no maildrop")),
        };
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                log::error!("user {}: message {}: {e}", self.user, index + 1);
                let r = self.m.retrieve_failed(index);
                d.reply(&r);
                return Flow::Continue;
            }
        };
        log::debug!("> {}", String::from_utf8_lossy(&status[..status.len() - 2]));
        // Replies still queued go out in the same write as the message.
        let mut prefix = d.take_output();
        prefix.extend_from_slice(&status);
        let result = (|| -> io::Result<()> {
            let mut w = WireWriter::new(&mut d.conn, &prefix, top);
            loop {
                let buf = reader.fill_buf()?;
                if buf.is_empty() || w.is_done() {
                    break;
                }
                let n = buf.len();
                w.write_stored(buf)?;
                reader.consume(n);
            }
            w.finish()
        })();
        drop(reader);
        match result {
            Ok(()) => {
                if top.is_none() {
                    self.retrieved += 1;
                }
                Flow::Continue
            }
            Err(e) => {
                // The reply may be half sent: the session cannot go on.
                log::warn!("user {}: RETR {} failed: {e}", self.user, index + 1);
                Flow::Close
            }
        }
    }
}

impl LineProtocol for Transaction {
    fn redact(&self, line: &[u8]) -> String {
        masked(line, false)
    }

    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        let a = self.m.handle(line);
        self.apply(a)
    }

    fn too_long(&mut self) -> Flow {
        let a = self.m.too_long();
        self.apply(a)
    }

    /// RFC 1939: an autologout ends the session without UPDATE and without
    /// a response.
    fn silent(&mut self, _: Silence) {
        log::info!("user {}: autologout, idle for too long", self.user);
    }

    fn tls_started(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::{masked, Handover};

    #[test]
    fn secrets_are_masked() {
        assert_eq!(masked(b"PASS secret", false), "PASS ****");
        assert_eq!(masked(b"pass secret", false), "PASS ****");
        assert_eq!(
            masked(b"AUTH PLAIN AGRlbW8AZGVtbw==", false),
            "AUTH PLAIN ****"
        );
        assert_eq!(masked(b"AUTH P AGRlbW8AZGVtbw==", false), "AUTH P ****");
        assert_eq!(masked(b"AUTH PLAIN", false), "AUTH PLAIN");
        assert_eq!(masked(b"AGRlbW8AZGVtbw==", true), "****");
        assert_eq!(masked(b"USER demo", false), "USER demo");
    }

    #[test]
    fn handover_round_trips_and_refuses_garbage() {
        let h = Handover { tls_active: true }.encode();
        assert!(Handover::decode(&h).is_some_and(|h| h.tls_active));
        assert!(Handover::decode(&[1, 2]).is_none());
        assert!(Handover::decode(&[2, 0]).is_none());
        assert!(Handover::decode(&[1, 0, 0]).is_none());
    }
}
