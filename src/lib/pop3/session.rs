//! The pop3d session driver: reads lines, feeds the state machine, carries
//! out its steps (login, privilege drop, maildrop, RETR streaming, UPDATE).
//!
//! Replies to pipelined commands are gathered and sent in one write when the
//! client has nothing more buffered; RETR goes out in 64 KiB writes through
//! `mail::wire::WireWriter`, in constant memory whatever the message size.

use std::io::{self, BufRead};

use super::command;
use super::state::{Config, LoginFailure, Machine, Step};
use crate::auth::{self, AuthError, Login};
use crate::mail::{wire::WireWriter, Maildrop, OpenError};
use crate::net::{self, Line};
use crate::runtime::Session;

/// Longest command line (RFC 2449 allows 255 octets; SASL responses are
/// longer).
const LINE_MAX: usize = 4096;

struct Driver {
    s: Session,
    m: Machine,
    out: Vec<u8>,
    drop: Option<Maildrop>,
    login: Option<Login>,
    user: String,
    retrieved: usize,
}

enum Flow {
    Go,
    End,
}

pub fn serve(s: Session) {
    let cfg = Config {
        tls_available: s.tls.is_some(),
        tls_active: s.conn.is_tls(),
        cleartext_login: s.settings.daemon::<super::Config>().cleartext_login,
        login_attempts: s.settings.common().login_attempts,
    };
    let banner = s.banner("pop3d");
    let mut d = Driver {
        s,
        m: Machine::new(cfg),
        out: format!("+OK {banner}\r\n").into_bytes(),
        drop: None,
        login: None,
        user: String::new(),
        retrieved: 0,
    };
    d.run();
    if d.drop.is_some() {
        log::info!(
            "user {}: session ended without QUIT, nothing deleted",
            d.user
        );
    }
    drop(d.login.take());
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

impl Driver {
    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let r = self.s.conn.send(&self.out);
            self.out.clear();
            r?;
        }
        Ok(())
    }

    fn run(&mut self) {
        loop {
            if !self.s.conn.has_buffered_input() || self.out.len() >= 64 * 1024 {
                if let Err(e) = self.flush() {
                    log::info!("write to {} failed: {e}", self.s.conn.peer);
                    return;
                }
            }
            let sasl = self.m.expects_sasl_response();
            let step = match self.s.conn.read_line(LINE_MAX) {
                Ok(Line::Complete(l, _)) => {
                    log::debug!("< {}", masked(&l, sasl));
                    self.m.input(&l)
                }
                Ok(Line::TooLong) => {
                    log::debug!("< (line too long)");
                    self.m.too_long()
                }
                Ok(Line::Eof) => {
                    log::info!("{} closed the connection", self.s.conn.peer);
                    return;
                }
                Err(e) if net::is_timeout(&e) => {
                    // RFC 1939: autologout, no UPDATE, no response.
                    log::info!("autologout of {}: idle for too long", self.s.conn.peer);
                    self.s.conn.close();
                    return;
                }
                Err(e) => {
                    log::info!("read from {} failed: {e}", self.s.conn.peer);
                    return;
                }
            };
            if let Flow::End = self.apply(step) {
                let _ = self.flush();
                self.s.conn.close();
                return;
            }
        }
    }

    fn reply(&mut self, b: Vec<u8>) {
        if log::log_enabled!(log::Level::Debug) {
            let first = b.split(|&c| c == b'\r').next().unwrap_or(&[]);
            log::debug!("> {}", String::from_utf8_lossy(first));
        }
        self.out.extend_from_slice(&b);
    }

    fn apply(&mut self, step: Step) -> Flow {
        match step {
            Step::Reply(b) => {
                self.reply(b);
                Flow::Go
            }
            Step::Close(b) => {
                self.reply(b);
                Flow::End
            }
            Step::StartTls(b) => {
                self.reply(b);
                if self.flush().is_err() {
                    return Flow::End;
                }
                let Some(cfg) = self.s.tls.clone() else {
                    return Flow::End;
                };
                if let Err(e) = self.s.conn.start_tls(&cfg) {
                    log::info!("TLS handshake with {} failed: {e}", self.s.conn.peer);
                    return Flow::End;
                }
                self.m.tls_started();
                Flow::Go
            }
            Step::Login { user, pass } => {
                let next = self.login(&user, &pass);
                self.apply(next)
            }
            Step::Retrieve { index, status, top } => self.retrieve(index, status, top),
            Step::Update => {
                let Some(drop) = self.drop.take() else {
                    let next = self.m.updated(Ok(0));
                    return self.apply(next);
                };
                let deleted = self.m.deleted().to_vec();
                let result = drop.commit(&deleted, self.m.seen());
                let next = match result {
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
                };
                self.apply(next)
            }
        }
    }

    fn login(&mut self, user: &str, pass: &str) -> Step {
        let peer = self.s.conn.peer.ip().to_string();
        let login = match self.s.auth.authenticate(user, pass, &peer) {
            Ok(l) => l,
            Err(AuthError::Denied) => return self.m.login_failed(LoginFailure::Denied),
            Err(AuthError::Unavailable(_)) => return self.m.login_failed(LoginFailure::Temporary),
        };
        let account = login.account.clone();
        self.login = Some(login);
        self.user = account.name.clone();
        if let Err(e) = auth::drop_privileges(&account) {
            log::error!("user {}: cannot switch to the account: {e}", account.name);
            return self.m.login_failed(LoginFailure::Fatal);
        }
        let location = &self.s.settings.daemon::<super::Config>().mail_location;
        let mailbox = match location.mailbox_for(&account) {
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

    fn retrieve(&mut self, index: usize, status: Vec<u8>, top: Option<u64>) -> Flow {
        let opened = match self.drop.as_mut() {
            Some(d) => d.open_message(index),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no maildrop")),
        };
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                log::error!("user {}: message {}: {e}", self.user, index + 1);
                let r = self.m.retrieve_failed(index);
                self.out.extend_from_slice(&r);
                return Flow::Go;
            }
        };
        log::debug!("> {}", String::from_utf8_lossy(&status[..status.len() - 2]));
        let mut prefix = std::mem::take(&mut self.out);
        prefix.extend_from_slice(&status);
        let result = (|| -> io::Result<()> {
            let mut w = WireWriter::new(&mut self.s.conn, &prefix, top);
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
                Flow::Go
            }
            Err(e) => {
                // The reply may be half sent: the session cannot go on.
                log::warn!("user {}: RETR {} failed: {e}", self.user, index + 1);
                Flow::End
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

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
}
