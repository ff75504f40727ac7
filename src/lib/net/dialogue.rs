//! The one driver loop of the line protocols (ftpd, smtpd, pop3d, and
//! imapd and nntpd to come): read a line, classify it (complete, too long,
//! end of stream, idle, deadline), hand it to the protocol, batch the
//! replies while the client has pipelined more, run the STARTTLS sequence
//! (reply, flush, handshake, forget the plaintext read before it) and keep
//! secrets out of the debug log.
//!
//! A protocol's session glue owns a [`Dialogue`] and implements
//! [`LineProtocol`]: it turns each line into a command, asks its state
//! machine (`State::handle(command) -> Action`) and performs the action,
//! replying through the dialogue; [`run`] drives it.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use rustls::ServerConfig;

use super::{is_timeout, Conn, Ending, Line};

/// What the driver does after a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Send the replies so far, then the TLS handshake; then
    /// `LineProtocol::tls_started`.
    StartTls,
    /// Send the replies so far and end the session.
    Close,
}

/// Why the client's side ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// No line for `idle_timeout`.
    Idle,
    /// The login deadline passed.
    Deadline,
}

/// A line protocol, as the driver sees it.
pub trait LineProtocol {
    /// The connection it speaks over.
    fn dialogue(&mut self) -> &mut Dialogue;
    /// What the debug log may show of a line from the client (passwords and
    /// SASL responses masked, controls made printable).
    fn redact(&self, line: &[u8]) -> String;
    /// A complete line arrived (without its ending).
    fn line(&mut self, line: &[u8], ending: Ending) -> Flow;
    /// A line longer than the limit was read to its end and dropped.
    fn too_long(&mut self) -> Flow;
    /// The client went quiet: queue the protocol's goodbye, if it has one.
    fn silent(&mut self, why: Silence);
    /// The client closed the connection (or it failed).
    fn closed(&mut self) {}
    /// The TLS handshake asked for by `Flow::StartTls` succeeded.
    fn tls_started(&mut self);
}

/// Replies are flushed at the latest when this much is waiting.
const BATCH: usize = 64 * 1024;

/// A connection being driven: the stream, the replies not yet sent, lines
/// put back to be read again.
pub struct Dialogue {
    pub conn: Conn,
    /// The TLS configuration, when the upgrade may be offered.
    pub tls: Option<Arc<ServerConfig>>,
    line_max: usize,
    out: Vec<u8>,
    /// Lines read while something else was going on (an FTP transfer),
    /// served before the connection is read again.
    pending: VecDeque<Vec<u8>>,
}

impl Dialogue {
    pub fn new(conn: Conn, tls: Option<Arc<ServerConfig>>, line_max: usize) -> Dialogue {
        Dialogue {
            conn,
            tls,
            line_max,
            out: Vec::with_capacity(1024),
            pending: VecDeque::new(),
        }
    }

    /// Queue a reply (sent when the client has nothing more buffered, or
    /// at the next flush). Its first line goes to the debug log.
    pub fn reply(&mut self, bytes: &[u8]) {
        if log::log_enabled!(log::Level::Debug) {
            let first = bytes.split(|&b| b == b'\r' || b == b'\n').next();
            log::debug!("> {}", String::from_utf8_lossy(first.unwrap_or(&[])));
        }
        self.out.extend_from_slice(bytes);
    }

    /// Send what is queued.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.conn.send(&self.out);
        self.out.clear();
        r
    }

    /// Take what is queued (to send it in one write with more, as POP3's
    /// RETR does with its status line).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the client has sent more than has been read.
    pub fn has_input(&self) -> bool {
        !self.pending.is_empty() || self.conn.has_buffered_input()
    }

    /// Whether more from the client can be read without waiting: read
    /// and not served yet, or in the socket now. A streaming peer's
    /// batch goes on while this holds.
    pub fn input_waiting(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        if self.has_input() {
            return true;
        }
        let mut fds = [PollFd::new(self.conn.fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
    }

    /// Keep a line to be served before the connection is read again.
    pub fn put_back(&mut self, line: Vec<u8>) {
        self.pending.push_back(line);
    }

    pub fn pending_lines(&self) -> usize {
        self.pending.len()
    }

    /// Read one line for the protocol's own use (message data, a SASL
    /// exchange), bounded by the protocol's limit.
    pub fn read_line(&mut self) -> io::Result<Line> {
        if let Some(l) = self.pending.pop_front() {
            return Ok(Line::Complete(l, Ending::CrLf));
        }
        self.conn.read_line(self.line_max)
    }

    /// The TLS handshake after the protocol's "go ahead" reply: flush, then
    /// upgrade, dropping what the client sent ahead of it.
    pub fn start_tls(&mut self) -> io::Result<()> {
        self.flush()?;
        let Some(cfg) = self.tls.clone() else {
            return Err(io::Error::other("TLS is not configured"));
        };
        self.pending.clear();
        self.conn.start_tls(&cfg)
    }
}

/// Drive a protocol until its session ends.
pub fn run(p: &mut impl LineProtocol) {
    let peer = p.dialogue().conn.peer;
    loop {
        let d = p.dialogue();
        // Replies wait while the client has pipelined more.
        if (!d.has_input() || d.out.len() >= BATCH) && d.flush().is_err() {
            log::info!("write to {peer} failed");
            p.closed();
            return;
        }
        let flow = match d.read_line() {
            Ok(Line::Complete(l, ending)) => {
                log::debug!("< {}", p.redact(&l));
                p.line(&l, ending)
            }
            Ok(Line::TooLong) => {
                log::debug!("< (line too long)");
                p.too_long()
            }
            Ok(Line::Eof) => {
                log::info!("{peer} closed the connection");
                p.closed();
                return;
            }
            Err(e) if is_timeout(&e) => {
                let why = if d.conn.deadline_passed() {
                    Silence::Deadline
                } else {
                    Silence::Idle
                };
                log::info!(
                    "{peer}: {}",
                    match why {
                        Silence::Idle => "idle for too long",
                        Silence::Deadline => "no login in time",
                    }
                );
                p.silent(why);
                let d = p.dialogue();
                let _ = d.flush();
                d.conn.close();
                return;
            }
            Err(e) => {
                log::info!("read from {peer} failed: {e}");
                p.closed();
                return;
            }
        };
        match flow {
            Flow::Continue => {}
            Flow::StartTls => match p.dialogue().start_tls() {
                Ok(()) => p.tls_started(),
                Err(e) => {
                    log::info!("TLS handshake with {peer} failed: {e}");
                    p.closed();
                    return;
                }
            },
            Flow::Close => {
                let d = p.dialogue();
                let _ = d.flush();
                d.conn.close();
                return;
            }
        }
    }
}
