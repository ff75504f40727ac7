//! smtpd's dialogue, in the unprivileged pre-login process of the
//! privilege split (it never logs anyone in: AUTH only proves a client, and
//! the process stays nopriv_user, confined, and is reused for the next
//! connection as Postfix's smtpd is). It reads command lines, runs them
//! through the state machine and writes the replies, batched under
//! PIPELINING, on the shared line driver. Everything privileged goes
//! through the monitor (`delivery`, answered by `privileged`): recipient
//! lookups, credentials, and the message itself, streamed in chunks into
//! the queue as it arrives, never held whole.

use std::io;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::aliases::Resolution;
use super::command;
use super::data::{received_header, DataParser, ReceivedInfo};
use super::delivery::{self, Commit, Request, Response};
use super::reply::Reply;
use super::state::{self, Action, DataOutcome, State, MAX_RECIPIENTS};
use super::Config;
use crate::calendar::rfc5322_date;
use crate::net::dialogue::{self, Dialogue, Flow, LineProtocol, Silence};
use crate::net::{is_timeout, Ending, Line};
use crate::runtime::session::{Monitor, PreLogin, Privileged, TcpProtocol, Verdict};
use crate::runtime::ListenKind;

/// Longest line read, commands and message text alike (RFC 5321 says 512
/// and 1000; we are lenient up to the buffer).
const LINE_MAX: usize = 4094;
/// Message data is handed to the monitor in chunks of about this size.
const CHUNK: usize = 32 * 1024;

/// smtpd in the privilege split.
pub struct Smtp;

pub static SMTP: Smtp = Smtp;

impl TcpProtocol for Smtp {
    fn prelogin(&self, s: PreLogin) {
        let settings = s.settings.clone();
        let (common, config) = (settings.common(), settings.daemon::<Config>());
        let hostname = config.hostname.clone();
        let peer_ip = unmapped(s.conn.peer.ip());
        let local_domains = super::privileged::local_domains(config, s.conn.local.ip());
        let lmtp = s.kind == ListenKind::Extra("lmtp_listen");
        let local_client = crate::net::is_unix_peer(&s.conn.peer);
        let cfg = state::Config {
            hostname: hostname.clone(),
            local_domains,
            max_size: config.max_message_size,
            tls_available: s.tls.is_some(),
            implicit_tls: s.kind == ListenKind::Tls,
            loopback: peer_ip.is_loopback(),
            submission: s.kind == ListenKind::Extra("submission_listen"),
            relay_client: config.relay_client(peer_ip),
            vrfy: config.vrfy,
            expn: config.expn,
            max_auth_failures: common.login_attempts.max(1),
            max_recipients: MAX_RECIPIENTS,
            max_errors: 20,
            lmtp,
        };
        let banner = match &common.banner {
            Some(b) => b.clone(),
            None if lmtp => format!("{hostname} LMTP classicd smtpd"),
            None => format!("{hostname} ESMTP classicd smtpd"),
        };
        let mut d = Driver {
            d: Dialogue::new(s.conn, s.tls, LINE_MAX),
            state: State::new(cfg),
            client: if local_client {
                "[unix]".to_string()
            } else {
                format!("[{peer_ip}]")
            },
            peer_ip,
            monitor: s.monitor,
            last: String::new(),
            queue_ready: true,
        };
        if lmtp && !local_client && !config.relay_client(peer_ip) {
            // LMTP hands mail to mailboxes without further checks: only
            // the MTAs of relay_from (or of this host, through a Unix
            // socket) may speak it.
            log::info!("reject: LMTP connection from {peer_ip}: not in relay_from");
            d.reply(&Reply::new(
                554,
                "5.7.1",
                format!("{hostname} LMTP is not offered to you"),
            ));
            let _ = d.d.flush();
            d.d.conn.close();
            return;
        }
        let greeting = d.state.greeting(&banner);
        d.reply(&greeting);
        dialogue::run(&mut d);
    }

    fn privileged(&self, p: &mut Privileged, request: &[u8]) -> Result<Vec<u8>, String> {
        super::privileged::handle(p, request)
    }

    /// Clients never log in: AUTH proves them, the process stays who it is.
    fn logins(&self) -> bool {
        false
    }
}

struct Driver {
    d: Dialogue,
    state: State,
    peer_ip: IpAddr,
    client: String,
    monitor: Monitor,
    /// The command being answered, printable and masked, for the log.
    last: String,
    /// What the monitor said of its queue with its last lookup: when it
    /// cannot take mail, DATA is refused before the message comes.
    queue_ready: bool,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl LineProtocol for Driver {
    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn redact(&self, line: &[u8]) -> String {
        if self.state.awaiting_auth_line() {
            "****".into()
        } else {
            masked(line)
        }
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        let action = if self.state.awaiting_auth_line() {
            self.last = "(AUTH response)".into();
            self.state.auth_line(&String::from_utf8_lossy(line))
        } else {
            self.last = masked(line);
            match command::parse(line) {
                Ok(c) => self.state.handle(c),
                Err(r) => self.state.bad_command(r),
            }
        };
        self.perform(action)
    }

    fn too_long(&mut self) -> Flow {
        self.last = "(line too long)".into();
        let a = self.state.line_too_long();
        self.perform(a)
    }

    fn silent(&mut self, _: Silence) {
        self.timed_out();
    }

    fn closed(&mut self) {
        log::info!("lost connection with {}", self.client_name());
    }

    fn tls_started(&mut self) {
        self.state.tls_started();
    }
}

impl Driver {
    fn reply(&mut self, r: &Reply) {
        self.d.reply(&r.to_bytes());
    }

    /// The client as logs name it: `helo[ip]`.
    fn client_name(&self) -> String {
        format!("{}{}", self.state.helo().unwrap_or("unknown"), self.client)
    }

    /// Every refusal is logged with the client, the command and the reply.
    fn log_refusal(&self, r: &Reply) {
        if r.code >= 400 && r.code != 421 || r.code == 421 && !self.last.is_empty() {
            log::info!(
                "reject: {} from {}: {}",
                self.last.split(' ').next().unwrap_or(""),
                self.client_name(),
                r.to_string().trim_end().replace("\r\n", " | ")
            );
        }
    }

    fn timed_out(&mut self) {
        log::info!("timeout from {}", self.client_name());
        let host = self.state.config().hostname.clone();
        self.reply(&Reply::new(
            421,
            "4.4.2",
            format!("{host} Error: timeout exceeded"),
        ));
    }

    /// A request of the privileged path; None when the monitor failed us.
    fn ask(&self, req: &Request) -> Option<Response> {
        match self
            .monitor
            .service(&req.encode())
            .and_then(|b| Response::decode(&b).map_err(io::Error::from))
        {
            Ok(r) => Some(r),
            Err(e) => {
                log::error!("monitor: {e}");
                None
            }
        }
    }

    fn resolve(&mut self, address: &str, local: &str) -> Resolution {
        let req = Request::Resolve {
            address: address.to_string(),
            local: local.to_string(),
        };
        match self.ask(&req) {
            Some(Response::Resolution(r, ready)) => {
                self.queue_ready = ready;
                r
            }
            _ => Resolution::Unavailable("the lookup failed".into()),
        }
    }

    fn perform(&mut self, action: Action) -> Flow {
        match action {
            Action::Reply(r) => {
                self.log_refusal(&r);
                self.reply(&r);
                Flow::Continue
            }
            Action::Close(r) => {
                self.log_refusal(&r);
                self.reply(&r);
                Flow::Close
            }
            Action::Lookup { address, local } => {
                let res = self.resolve(&address, &local);
                let a = self.state.rcpt_resolved(res);
                self.perform(a)
            }
            Action::Verify { local, expand } => {
                let res = self.resolve("", &local);
                let r = self.state.verify_resolved(&local, expand, res);
                self.reply(&r);
                Flow::Continue
            }
            Action::StartTls(r) => {
                self.reply(&r);
                Flow::StartTls
            }
            Action::Challenge(r) => {
                self.reply(&r);
                Flow::Continue
            }
            Action::Authenticate { user, password } => {
                let _ = self.d.flush();
                let result = match self.monitor.password(&user, &password) {
                    Verdict::Granted(name) => Ok(Some(name)),
                    Verdict::Denied => Ok(None),
                    Verdict::Unavailable => Err(()),
                };
                let a = self.state.auth_result(result);
                self.perform(a)
            }
            Action::BeginData => self.data(),
        }
    }

    /// A one-way request of the privileged path; false when the monitor
    /// is gone.
    fn tell(&self, req: &Request) -> bool {
        match self.monitor.tell(&req.encode()) {
            Ok(()) => true,
            Err(e) => {
                log::error!("monitor: {e}");
                false
            }
        }
    }

    fn data(&mut self) -> Flow {
        if !self.queue_ready {
            self.end_data(DataOutcome::TempFail);
            return Flow::Continue;
        }
        let r = self.state.data_start();
        self.reply(&r);
        if !self.d.has_input() && self.d.flush().is_err() {
            return Flow::Close;
        }
        let (outcome, flow) = self.receive();
        self.end_data(outcome);
        flow
    }

    /// The reply to the end of DATA: one, or under LMTP one per recipient.
    fn end_data(&mut self, outcome: DataOutcome) {
        if self.state.config().lmtp {
            for r in self.state.lmtp_data_end(outcome) {
                self.log_refusal(&r);
                self.reply(&r);
            }
        } else {
            let r = self.state.data_end(outcome);
            self.reply(&r);
        }
    }

    /// Read the message, handing it to the monitor as it comes (behind the
    /// Received header, which gets the queue id there); if it passes the
    /// checks, commit it (the monitor delivers or queues it).
    fn receive(&mut self) -> (DataOutcome, Flow) {
        let txn = self
            .state
            .transaction()
            .cloned()
            .expect("DATA has a transaction");
        let mut parser = DataParser::new(self.state.config().max_size);
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + LINE_MAX + 2);
        let single = (txn.recipients.len() == 1).then(|| txn.recipients[0].address.clone());
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = received_header(&ReceivedInfo {
            helo: self.state.helo().unwrap_or("unknown"),
            client_ip: self.peer_ip,
            hostname: &self.state.config().hostname,
            protocol: self.state.protocol(),
            for_rcpt: single.as_deref(),
            date: rfc5322_date(secs),
        });
        // The queue id goes in the "with" line (Postfix style: "id X").
        let id_at = header
            .find("\r\n\tfor ")
            .or_else(|| header.find("; "))
            .unwrap_or(header.len()) as u32;
        // The start is told only once the message outgrows one chunk; a
        // smaller one goes whole with the commit.
        let mut begin = Some((header, id_at));
        let mut monitor_ok = true;
        loop {
            match self.d.conn.read_line(LINE_MAX) {
                Ok(Line::Complete(l, ending)) => {
                    if parser.feed(&l, ending, &mut buf) {
                        break;
                    }
                }
                Ok(Line::TooLong) => parser.line_too_long(),
                Ok(Line::Eof) => {
                    log::info!(
                        "lost connection with {} during DATA; nothing stored",
                        self.client_name()
                    );
                    self.tell(&Request::Abort);
                    return (DataOutcome::TempFail, Flow::Close);
                }
                Err(e) => {
                    self.tell(&Request::Abort);
                    if is_timeout(&e) {
                        self.timed_out();
                    } else {
                        log::info!("read error from {}: {e}", self.client_name());
                    }
                    return (DataOutcome::TempFail, Flow::Close);
                }
            }
            if buf.len() >= CHUNK {
                if let Some((header, id_at)) = begin.take() {
                    monitor_ok &= self.tell(&Request::Begin { header, id_at });
                }
                monitor_ok &= self.send_data(&mut buf);
            }
        }
        let (bare_lf, bare_cr) = parser.anomalies();
        if bare_lf + bare_cr > 0 {
            log::info!(
                "{}: normalised {bare_lf} bare LF and {bare_cr} bare CR in message data",
                self.client_name()
            );
        }
        if let Some(r) = parser.verdict() {
            if begin.is_none() {
                self.tell(&Request::Abort);
            }
            log::info!(
                "reject: DATA from {}: {}; from=<{}>",
                self.client_name(),
                r.to_string().trim_end(),
                txn.sender
            );
            return (DataOutcome::Refused(r), Flow::Continue);
        }
        if !monitor_ok {
            self.tell(&Request::Abort);
            return (DataOutcome::TempFail, Flow::Continue);
        }
        // Recipients in batches that fit a message; the last with the
        // commit, beside what is left of the message.
        let ahead = buf.len() + begin.as_ref().map_or(0, |(h, _)| h.len());
        let mut batch = Vec::new();
        let mut size = ahead;
        for a in &txn.recipients {
            let a = delivery::Rcpt {
                address: a.address.clone(),
                params: a.params.clone(),
            };
            let n = delivery::rcpt_size(&a);
            if size + n > delivery::BATCH && !batch.is_empty() {
                if !self.tell(&Request::Recipients(std::mem::take(&mut batch))) {
                    return (DataOutcome::TempFail, Flow::Continue);
                }
                size = ahead;
            }
            size += n;
            batch.push(a);
        }
        let commit = Commit {
            begin,
            data: buf,
            sender: txn.sender.clone(),
            params: txn.params.clone(),
            recipients: batch,
            helo: self.state.helo().unwrap_or("unknown").to_string(),
            size: parser.size(),
            auth_user: self.state.auth_user().map(str::to_string),
            lmtp: self.state.config().lmtp,
        };
        match self.ask(&Request::Commit(commit)) {
            Some(Response::Queued(id)) => (DataOutcome::Queued(id), Flow::Continue),
            Some(Response::Delivered(list)) => (
                DataOutcome::PerRecipient(
                    list.into_iter()
                        .map(|(code, text)| Reply::plain(code, text))
                        .collect(),
                ),
                Flow::Continue,
            ),
            _ => (DataOutcome::TempFail, Flow::Continue),
        }
    }

    /// Hand the monitor what is buffered; false when it is gone.
    fn send_data(&mut self, buf: &mut Vec<u8>) -> bool {
        let mut ok = true;
        for chunk in buf.chunks(delivery::MAX_CHUNK) {
            ok &= self.tell(&Request::Data(chunk.to_vec()));
        }
        buf.clear();
        ok
    }
}

/// A command line made printable, with AUTH credentials masked.
fn masked(line: &[u8]) -> String {
    let text = crate::auth::printable(&String::from_utf8_lossy(line));
    if text
        .get(..5)
        .is_some_and(|v| v.eq_ignore_ascii_case("AUTH "))
    {
        let mut words = text.split_whitespace();
        let _ = words.next();
        let mech = words.next().unwrap_or("");
        let rest = if words.next().is_some() { " ****" } else { "" };
        return format!("AUTH {mech}{rest}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_masked_in_logs() {
        assert_eq!(masked(b"AUTH PLAIN AGRlbW8AZGVtbw=="), "AUTH PLAIN ****");
        assert_eq!(masked(b"auth login ZGVtbw=="), "AUTH login ****");
        assert_eq!(masked(b"AUTH LOGIN"), "AUTH LOGIN");
        assert_eq!(masked(b"MAIL FROM:<a@b>\r"), "MAIL FROM:<a@b>?");
        assert_eq!(masked("AUTH\u{e9}x".as_bytes()), "AUTH\u{e9}x");
    }
}
