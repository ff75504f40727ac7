//! Delivery to the LMTP server of `mail_location = lmtp:...`: a worker
//! connects once (TCP or a Unix socket), then carries its batch of queued
//! messages over that one connection, driving the `lmtp` state machine with
//! bounded reads and deadlines. Each recipient's outcome is the server's
//! reply for it; a broken connection defers what was not answered.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::client::{ClientMessage, Outcome, Reply, ReplyReader, MAX_REPLY_LINE};
use super::lmtp::{Session, Step};
use super::local::At;
use super::relay::{write_stuffed, Timeouts};
use super::spool::StoredEnvelope;
use crate::net::{Line, LineBuf};
use crate::smtp::LmtpTarget;

/// One message of a batch: its queue file, envelope, and the recipients
/// (indexes in the envelope, LMTP addresses) this job delivers.
pub struct Queued {
    pub id: String,
    pub file: File,
    pub se: StoredEnvelope,
    pub msg: ClientMessage,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl crate::net::ReadTimeout for Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
}

/// An open connection to the LMTP server.
pub struct Connection {
    s: Stream,
    lines: LineBuf,
    peer: String,
}

/// Connect to the server (before the worker drops its privileges: a Unix
/// socket may be reachable only by root).
pub fn connect(target: &LmtpTarget, t: &Timeouts) -> Result<Connection, String> {
    let peer = format!("lmtp:{target}");
    let s = match target {
        LmtpTarget::Unix(path) => UnixStream::connect(path)
            .map(Stream::Unix)
            .map_err(|e| format!("4.4.1 connect to {peer}: {e}"))?,
        LmtpTarget::Tcp(hp) => {
            let addrs = (hp.host.as_str(), hp.port)
                .to_socket_addrs()
                .map_err(|e| format!("4.4.3 {peer}: {e}"))?;
            let mut last = format!("4.4.3 {peer}: no address");
            let mut found = None;
            for a in addrs {
                match TcpStream::connect_timeout(&a, t.connect) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = format!("4.4.1 connect to {peer} ({a}): {e}"),
                }
            }
            Stream::Tcp(found.ok_or(last)?)
        }
    };
    let _ = s.set_write_timeout(Some(t.command.max(Duration::from_secs(30))));
    Ok(Connection {
        s,
        lines: LineBuf::new(MAX_REPLY_LINE + 2),
        peer,
    })
}

impl Connection {
    fn read_reply(&mut self, timeout: Duration) -> Result<Reply, String> {
        let until = Instant::now() + timeout;
        let mut rr = ReplyReader::default();
        loop {
            let mut d = crate::net::Deadline {
                s: &mut self.s,
                until,
            };
            match self.lines.read_line(&mut d, MAX_REPLY_LINE) {
                Ok(Line::Complete(l, _)) => {
                    log::debug!("{} < {}", self.peer, String::from_utf8_lossy(&l));
                    if let Some(r) = rr.feed(&l)? {
                        return Ok(r);
                    }
                }
                Ok(Line::TooLong) => return Err("4.4.2 reply line too long".into()),
                Ok(Line::Eof) => return Err("4.4.2 connection closed by the LMTP server".into()),
                Err(e) if crate::net::is_timeout(&e) => {
                    return Err(format!(
                        "4.4.2 timed out after {} s waiting for the LMTP server",
                        timeout.as_secs()
                    ))
                }
                Err(e) => return Err(format!("4.4.2 read error: {e}")),
            }
        }
    }

    fn send(&mut self, lines: &[String]) -> Result<(), String> {
        let mut b = Vec::new();
        for l in lines {
            log::debug!("{} > {l}", self.peer);
            b.extend_from_slice(l.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        self.s
            .write_all(&b)
            .and_then(|_| self.s.flush())
            .map_err(|e| format!("4.4.2 write error: {e}"))
    }

    /// Drive the session until it wants something the caller gives: Ready
    /// (or Close). `body` is the message for a SendBody.
    fn drive(
        &mut self,
        s: &mut Session,
        mut step: Step,
        body: Option<(&File, u64)>,
        t: &Timeouts,
    ) -> Step {
        let mut wait = t.command;
        loop {
            let sent = match &step {
                Step::Ready | Step::Close(_) => return step,
                Step::Read => Ok(()),
                Step::Send(lines) => {
                    wait = t.command;
                    self.send(lines)
                }
                Step::SendBody => {
                    wait = t.data_end;
                    match body {
                        Some((file, size)) => {
                            let mut data = At {
                                file,
                                pos: 0,
                                end: size,
                            };
                            write_stuffed(&mut self.s, &mut data, size)
                        }
                        None => Err("4.3.0 no message to send".into()),
                    }
                }
            };
            if let Err(e) = sent {
                return s.connection_failed(&e);
            }
            step = match self.read_reply(wait) {
                Ok(r) => s.on_reply(r),
                Err(e) => s.connection_failed(&e),
            };
        }
    }

    /// The greeting and LHLO: Ready, or Close with the reason.
    pub fn open(&mut self, s: &mut Session, t: &Timeouts) -> Step {
        let step = match self.read_reply(t.greeting) {
            Ok(r) => s.on_reply(r),
            Err(e) => s.connection_failed(&e),
        };
        self.drive(s, step, None, t)
    }

    /// One message over the open session; its results by recipient index.
    pub fn deliver(
        &mut self,
        s: &mut Session,
        q: &Queued,
        t: &Timeouts,
    ) -> Vec<(usize, Outcome, String)> {
        let step = s.begin(q.msg.clone());
        self.drive(s, step, Some((&q.file, q.se.size)), t);
        let mut out: Vec<(usize, Outcome, String)> = s
            .take_results()
            .into_iter()
            .map(|(i, r)| (i, r.outcome, r.text))
            .collect();
        for r in &q.msg.rcpts {
            if !out.iter().any(|(i, _, _)| *i == r.index) {
                out.push((
                    r.index,
                    Outcome::Deferred,
                    "4.4.2 no reply from the LMTP server".into(),
                ));
            }
        }
        out
    }

    /// QUIT, briefly.
    pub fn quit(mut self, s: &mut Session) {
        if s.is_ready() {
            let step = s.quit();
            let t = Timeouts {
                command: Duration::from_secs(10),
                ..Timeouts::default()
            };
            self.drive(s, step, None, &t);
        }
    }
}

/// Deliver a batch over one connection already opened (and greeted):
/// `report(id, rcpt, outcome, text)` once per recipient of each message.
pub fn deliver_batch(
    conn: Option<Connection>,
    hostname: &str,
    batch: &[Queued],
    failed_connect: &str,
    report: &mut dyn FnMut(&str, usize, Outcome, String),
) {
    let t = Timeouts::default();
    let defer_all =
        |from: usize, why: &str, report: &mut dyn FnMut(&str, usize, Outcome, String)| {
            for q in &batch[from..] {
                for r in &q.msg.rcpts {
                    report(&q.id, r.index, Outcome::Deferred, why.to_string());
                }
            }
        };
    let Some(mut conn) = conn else {
        defer_all(0, failed_connect, report);
        return;
    };
    let mut s = Session::new(hostname);
    if let Step::Close(why) = conn.open(&mut s, &t) {
        defer_all(0, &why, report);
        return;
    }
    for (n, q) in batch.iter().enumerate() {
        if !s.is_ready() {
            defer_all(n, "4.4.2 the LMTP connection was lost", report);
            return;
        }
        for (rcpt, outcome, text) in conn.deliver(&mut s, q, &t) {
            report(&q.id, rcpt, outcome, text);
        }
    }
    conn.quit(&mut s);
}

/// The address an account is given to the LMTP server: the account name
/// at the recipient's own domain when it is one of ours, else at our first
/// local domain (Dovecot, Cyrus and our own back end look the account up
/// by this address).
pub fn lmtp_address(account: &str, original: &str, local_domains: &[String]) -> String {
    let domain = original
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| local_domains.contains(d));
    match domain.or_else(|| local_domains.first().cloned()) {
        Some(d) => format!("{account}@{d}"),
        None => account.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_for_the_server() {
        let domains = vec!["lab.test".to_string(), "example.org".to_string()];
        assert_eq!(
            lmtp_address("demo", "postmaster@Example.ORG", &domains),
            "demo@example.org"
        );
        assert_eq!(
            lmtp_address("demo", "demo@[127.0.0.1]", &domains),
            "demo@lab.test"
        );
        assert_eq!(lmtp_address("demo", "demo", &domains), "demo@lab.test");
        assert_eq!(lmtp_address("demo", "demo", &[]), "demo");
    }
}
