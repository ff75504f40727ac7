//! The connection before there is a terminal, in the unprivileged
//! pre-login process: the opening negotiation, and the login prompts of
//! `login = builtin` (the monitor's conversation, each prompt shown and
//! its line read through the TELNET machine and the login line editor).
//! Reads are bounded: a fixed buffer, the login deadline on every read.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::linemode::Modes;
use super::login::{LineEditor, Outcome};
use super::state::{Context, Effect, Sink, State};
use crate::net::Conn;
use crate::pty::UrgentMark;
use crate::telnet::nvt;

/// Bytes read from the client at a time, and at most kept unparsed.
const READ_BUFFER: usize = 4096;
/// Typed-ahead bytes kept for the next prompt (or the session).
const TYPEAHEAD_MAX: usize = 4096;
/// The longest answer to a prompt (a name or a password).
const ANSWER_MAX: usize = 512;

/// The client connection with its TELNET machine, before the terminal.
pub struct Wire {
    pub conn: Conn,
    pub state: State,
    /// Read, not yet through the machine.
    pub raw: Vec<u8>,
    /// Data typed (NVT end of line applied), not yet taken by a prompt.
    pub typeahead: Vec<u8>,
    /// An interrupt (IP, BRK) came since the last prompt looked.
    interrupted: bool,
    /// Something TELNET (any IAC sequence) came from the client.
    pub heard_telnet: bool,
    /// The client closed, or the deadline passed, or a read failed.
    pub gone: bool,
}

/// The pre-login process's sink: data to the typeahead, replies to a
/// buffer sent after each read.
struct PromptSink<'a> {
    typeahead: &'a mut Vec<u8>,
    out: &'a mut Vec<u8>,
    interrupted: &'a mut bool,
}

impl Sink for PromptSink<'_> {
    fn terminal_room(&self) -> usize {
        TYPEAHEAD_MAX.saturating_sub(self.typeahead.len())
    }

    fn terminal(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.terminal_room() {
            return false;
        }
        self.typeahead.extend_from_slice(bytes);
        true
    }

    fn network_room(&self) -> usize {
        // Sent after each read: bounded by what one read can ask for.
        usize::MAX / 2
    }

    fn data(&mut self, bytes: &[u8]) -> bool {
        self.out.extend_from_slice(bytes);
        true
    }

    fn reply(&mut self, bytes: &[u8]) -> bool {
        self.out.extend_from_slice(bytes);
        true
    }

    fn urgent(&mut self, byte: u8) -> bool {
        // Before the session nothing is queued: in band is as good.
        self.out.push(byte);
        true
    }

    fn effect(&mut self, effect: Effect) {
        if let Effect::Signal(_) = effect {
            *self.interrupted = true;
            self.typeahead.clear();
        }
    }
}

impl Wire {
    pub fn new(conn: Conn) -> Wire {
        Wire {
            conn,
            state: State::new(super::state::Phase::Login),
            raw: Vec::with_capacity(READ_BUFFER),
            typeahead: Vec::new(),
            interrupted: false,
            heard_telnet: false,
            gone: false,
        }
    }

    /// The machine is between commands (see `State::between_commands`).
    pub fn state_between_commands(&self) -> bool {
        self.state.between_commands()
    }

    /// Send bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.gone {
            return;
        }
        if let Err(e) = self.conn.send(bytes) {
            log::debug!("sending to the client: {e}");
            self.gone = true;
        }
    }

    /// Send our text (a prompt, a message) in NVT form.
    pub fn say(&mut self, text: &str) {
        self.send(&nvt::text(text.as_bytes()));
    }

    /// Wait up to `wait` for client bytes and run them through the
    /// machine. Returns false when nothing came in time.
    pub fn pump(&mut self, wait: Duration) -> bool {
        if self.gone {
            return false;
        }
        if self.raw.is_empty() || !self.progress() {
            let ms = wait.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(self.conn.fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => return true,
                Err(e) => {
                    log::debug!("poll: {e}");
                    self.gone = true;
                    return false;
                }
            }
            if self.read() == 0 {
                return false;
            }
        }
        self.progress();
        true
    }

    /// Read what the client sent (bounded); 0 when it is gone.
    fn read(&mut self) -> usize {
        let start = self.raw.len();
        if start >= READ_BUFFER {
            return 0;
        }
        self.raw.resize(READ_BUFFER, 0);
        let result = self.conn.read(&mut self.raw[start..]);
        let n = match result {
            Ok(0) => {
                log::debug!("the client closed the connection");
                self.gone = true;
                0
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                log::info!("{}: {e}", self.conn.peer);
                self.gone = true;
                0
            }
        };
        self.raw.truncate(start + n);
        if self.raw[start..].contains(&crate::telnet::IAC) {
            self.heard_telnet = true;
        }
        n
    }

    /// Run what was read through the machine; true when something moved.
    fn progress(&mut self) -> bool {
        let ctx = Context {
            now: Instant::now(),
            modes: Modes::login_prompt(),
        };
        let mut out = Vec::new();
        let mut sink = PromptSink {
            typeahead: &mut self.typeahead,
            out: &mut out,
            interrupted: &mut self.interrupted,
        };
        let n = self
            .state
            .receive(&self.raw, UrgentMark::None, &ctx, &mut sink);
        self.raw.drain(..n);
        self.send(&out);
        n > 0
    }

    /// The opening negotiation: ask, then wait until the client has
    /// answered everything (or `limit` passes; a client that answers
    /// nothing at all within `quiet` is taken for a raw one).
    pub fn negotiate(&mut self, limit: Duration, quiet: Duration) {
        let opening = self.state.open();
        self.send(&opening);
        let started = Instant::now();
        while !self.gone && !self.state.settled() {
            let elapsed = started.elapsed();
            if elapsed >= limit || (!self.heard_telnet && elapsed >= quiet) {
                log::debug!(
                    "negotiation not finished after {:.1} s",
                    elapsed.as_secs_f64()
                );
                break;
            }
            let wait = if self.heard_telnet { limit } else { quiet };
            if !self.pump(wait.saturating_sub(elapsed)) && self.raw.len() >= READ_BUFFER {
                // The client is typing faster than anyone reads: the
                // prompt will take it.
                break;
            }
        }
    }

    /// Show `text` and read one line: echoed or not, edited, until its
    /// end; None when abandoned (^C, ^D, IAC IP) or the client is gone.
    pub fn ask(&mut self, text: &str, echo: bool) -> Option<String> {
        self.say(text);
        self.interrupted = false;
        let mut editor = LineEditor::new(echo, ANSWER_MAX);
        loop {
            let mut shown = Vec::new();
            if self.interrupted {
                self.interrupted = false;
                editor.interrupt(&mut shown);
            }
            let n = editor.feed(&self.typeahead, &mut shown);
            self.typeahead.drain(..n);
            let mut wire = Vec::new();
            nvt::output(&shown, false, usize::MAX, &mut wire);
            self.send(&wire);
            match editor.take() {
                Some(Outcome::Line(line)) => return String::from_utf8(line).ok(),
                Some(Outcome::Abandoned) => return None,
                None => {}
            }
            if self.gone {
                return None;
            }
            // The login deadline bounds every read (the monitor ends the
            // process shortly after it in any case).
            self.pump(Duration::from_secs(60));
        }
    }
}

/// The person at the other end of a login conversation.
pub struct Prompter<'a>(pub &'a mut Wire);

impl crate::auth::Converse for Prompter<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String> {
        self.0.ask(text, echo)
    }

    fn show(&mut self, text: &str, _error: bool) {
        let mut t = text.to_string();
        if !t.ends_with('\n') {
            t.push('\n');
        }
        self.0.say(&t);
    }
}

impl AsFd for Wire {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.conn.fd()
    }
}
