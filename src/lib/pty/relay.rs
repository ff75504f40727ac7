//! The relay between a client connection and a pty master: one poll(2)
//! loop, four bounded buffers, a filter in each direction.
//!
//! ```text
//!  client ──read──▶ net_in ──on_network───▶ to_pty ──write──▶ master
//!  client ◀─write── outbound ◀─on_terminal──── pty_in ◀──read── master
//!                      ▲  replies, urgent bytes (from either direction)
//! ```
//!
//! Back-pressure: a side is read only when the buffer its bytes go to has
//! room, and a filter takes only what its outputs can hold. A flood from
//! either side therefore fills four fixed buffers and then stops being
//! read; nothing is dropped and memory stays bounded.
//!
//! Urgent data from the client: the socket gets SO_OOBINLINE, so the urgent
//! byte stays in the stream at its place (nothing is reordered or lost,
//! and Linux and the BSDs behave alike). POLLPRI says urgent data was sent;
//! from then on `sockatmark` before each read tells whether the read starts
//! at the mark (a read never crosses it), which places the mark exactly.
//!
//! The loop: poll, read what is ready, then rounds of filtering and writing
//! until nothing moves. A terminal whose last read found data is read again
//! without a poll, filling the buffer (Linux hands out 4 KiB per read of a
//! master), so that a fast program costs one large write to the client
//! instead of many small ones. Rounds are capped so deadlines and client
//! input are still looked at while a program floods.
//!
//! The end: the client closing ends the relay at once. The program exiting
//! (a pidfd or kqueue watch, see `ChildWatch`) or the terminal hanging up
//! (EIO: every slave descriptor closed) stops input, drains what the pty
//! still holds through the filter to the network, then ends. The caller
//! then closes the master (SIGHUP to the session) and reaps the program.

use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{send, setsockopt, sockopt, MsgFlags};
use nix::unistd::Pid;

use super::buffer::{Bytes, Next, Outbound};
use super::filter::{Filter, Outputs, PacketControl, UrgentMark, CONTROL_ROOM};
use crate::sys;

/// How a relay behaves.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The size of each of the four buffers (at least 4 KiB).
    pub buffer_size: usize,
    /// Put the master in packet mode (TIOCPKT) for the relay's lifetime;
    /// control bytes go to `Filter::on_packet_control` (rlogind).
    pub packet_mode: bool,
    /// End the session after this long without a byte in either direction.
    pub idle_timeout: Option<Duration>,
    /// After the program exits or the terminal hangs up, how long the
    /// client gets to take the remaining output before the relay gives up.
    pub drain_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            buffer_size: 16 * 1024,
            packet_mode: false,
            idle_timeout: None,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

const MIN_BUFFER: usize = 8 * CONTROL_ROOM;

/// How the relay learns that the program on the terminal has exited. It
/// never reaps the program: its parent waits for it after the relay.
pub enum ChildWatch {
    /// Nothing to watch: the relay ends when the terminal hangs up (EIO)
    /// or the client goes. A background job holding the terminal open
    /// keeps it going.
    None,
    /// Watch this process: a pidfd on Linux (5.3 and later), a kqueue
    /// EVFILT_PROC on the BSDs and macOS. Neither needs a signal handler.
    /// The caller must not reap it before the relay returns (a zombie's
    /// pid cannot be reused; a reaped one could be).
    Pid(Pid),
    /// A descriptor that polls readable once the program has exited, e.g.
    /// the read end of a pipe the supervisor writes on SIGCHLD: for other
    /// systems, or a supervisor that reaps everything itself.
    Fd(OwnedFd),
}

/// Why the relay ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed or reset the connection; nothing more was sent.
    ClientClosed,
    /// The program exited; the output it left went to the client first.
    ChildExited,
    /// Every descriptor of the slave closed (EIO on the master); the
    /// output left went to the client first.
    Hangup,
    /// Nothing moved in either direction for `idle_timeout`.
    Idle,
    /// The filter called `Outputs::end`; what was queued went out first.
    Filter,
}

/// What the relay did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub end: End,
    /// Bytes read from the client.
    pub from_network: u64,
    /// Bytes written to the client (urgent ones included).
    pub to_network: u64,
    /// The most the relay's buffers ever held, summed over the four.
    pub peak_buffered: usize,
    /// Bytes for the client still queued at the end (a drain that timed
    /// out, or a client gone).
    pub unsent: usize,
}

/// Relay between `conn` and the terminal whose master is `master` until
/// one of the `End`s. Both descriptors are made non-blocking for the
/// duration and restored after; the connection keeps SO_OOBINLINE. The
/// master is not closed: the caller does that to hang the terminal up.
pub fn relay<C, F>(
    conn: &mut C,
    master: BorrowedFd,
    child: ChildWatch,
    filter: &mut F,
    config: &RelayConfig,
) -> io::Result<Outcome>
where
    C: AsFd + Read + Write,
    F: Filter + ?Sized,
{
    relay_with_typeahead(conn, master, child, filter, config, &[])
}

/// `relay`, with client bytes already read before it (what a line reader
/// buffered past the login dialogue): the filter gets them first.
pub fn relay_with_typeahead<C, F>(
    conn: &mut C,
    master: BorrowedFd,
    child: ChildWatch,
    filter: &mut F,
    config: &RelayConfig,
    typeahead: &[u8],
) -> io::Result<Outcome>
where
    C: AsFd + Read + Write,
    F: Filter + ?Sized,
{
    let _conn_mode = NonBlocking::set(conn.as_fd().as_raw_fd())?;
    let _pty_mode = NonBlocking::set(master.as_raw_fd())?;
    let _packet = if config.packet_mode {
        sys::tty::set_packet_mode(master, true)?;
        Some(PacketModeOff(master))
    } else {
        None
    };
    // Not a socket, or one without urgent data: no POLLPRI, no marks.
    let urgent_supported = setsockopt(&conn.as_fd(), sockopt::OobInline, &true).is_ok();
    let (exit_fd, child_exited) = match child {
        ChildWatch::None => (None, false),
        ChildWatch::Pid(pid) => match sys::tty::exit_watch(pid)? {
            Some(fd) => (Some(fd), false),
            None => (None, true),
        },
        ChildWatch::Fd(fd) => (Some(fd), false),
    };
    let capacity = config.buffer_size.max(MIN_BUFFER);
    // Bounded by whoever read it; never dropped.
    let mut net_in = Bytes::new(capacity.max(typeahead.len()));
    let fits = net_in.push(typeahead);
    debug_assert!(fits);
    let now = Instant::now();
    let mut relay = Relay {
        conn,
        master,
        filter,
        config,
        net_in,
        to_pty: Bytes::new(capacity),
        pty_in: Bytes::new(capacity),
        outbound: Outbound::new(capacity),
        urgent_supported,
        urgent_pending: false,
        mark: None,
        pending_control: None,
        exit_fd,
        child_exited: false,
        pty_hup: false,
        pty_drained: false,
        pty_busy: false,
        finishing: None,
        drain_deadline: now,
        stopped: None,
        last_activity: now,
        from_network: 0,
        to_network: 0,
    };
    if child_exited {
        relay.child_has_exited();
    }
    let end = relay.run()?;
    let outcome = Outcome {
        end,
        from_network: relay.from_network,
        to_network: relay.to_network,
        peak_buffered: relay.net_in.peak()
            + relay.to_pty.peak()
            + relay.pty_in.peak()
            + relay.outbound.peak(),
        unsent: relay.outbound.len() + relay.pty_in.len(),
    };
    log::debug!(
        "relay ended ({:?}): {} bytes in, {} out, {} unsent",
        outcome.end,
        outcome.from_network,
        outcome.to_network,
        outcome.unsent
    );
    Ok(outcome)
}

struct Relay<'a, C, F: ?Sized> {
    conn: &'a mut C,
    master: BorrowedFd<'a>,
    filter: &'a mut F,
    config: &'a RelayConfig,
    /// Client bytes not yet taken by the filter.
    net_in: Bytes,
    /// Filtered bytes for the terminal.
    to_pty: Bytes,
    /// Terminal output not yet taken by the filter.
    pty_in: Bytes,
    /// Everything for the client, in order.
    outbound: Outbound,
    /// The connection has urgent data (a TCP socket with SO_OOBINLINE).
    urgent_supported: bool,
    /// POLLPRI was seen and the urgent byte is not read yet.
    urgent_pending: bool,
    /// Where the urgent byte sits in `net_in`, until the filter takes it.
    mark: Option<usize>,
    /// A packet-mode control byte waiting for the output before it.
    pending_control: Option<u8>,
    exit_fd: Option<OwnedFd>,
    child_exited: bool,
    /// The terminal hung up (POLLHUP or EIO): read it directly, never poll.
    pty_hup: bool,
    /// The terminal has nothing more to give (EIO, or empty after exit).
    pty_drained: bool,
    /// The last read of the terminal found data: try again before polling.
    pty_busy: bool,
    /// Ending once the output is drained.
    finishing: Option<End>,
    drain_deadline: Instant,
    /// Ending now.
    stopped: Option<End>,
    last_activity: Instant,
    from_network: u64,
    to_network: u64,
}

/// A read of the master this long found the terminal's buffer full
/// (Linux's line discipline holds 4 KiB): more is likely waiting.
const FULL_TERMINAL_READ: usize = 4095;

/// Rounds of filtering and writing between two polls, so that a program
/// that never stops writing cannot keep the loop from checking deadlines.
const ROUNDS_PER_POLL: usize = 64;

impl<C, F> Relay<'_, C, F>
where
    C: AsFd + Read + Write,
    F: Filter + ?Sized,
{
    fn run(&mut self) -> io::Result<End> {
        loop {
            let mut moved = false;
            for _ in 0..ROUNDS_PER_POLL {
                moved = false;
                // Read without waiting for poll while the program is gone
                // (Linux hands over its last bytes on a read even before
                // poll reports them), or while each read comes back full
                // (Linux gives at most 4 KiB per read of a master: filling
                // the buffer first makes one write to the client of many).
                while self.child_exited || self.pty_hup || self.pty_busy {
                    if !self.read_terminal() {
                        break;
                    }
                    moved = true;
                }
                moved |= self.filter_network()?;
                moved |= self.filter_terminal()?;
                moved |= self.write_terminal();
                moved |= self.write_network();
                if !moved || self.stopped.is_some() {
                    break;
                }
            }
            if let Some(end) = self.finished() {
                return Ok(end);
            }
            // Still moving when the rounds ran out: the buffers may hold
            // work no descriptor will announce, so only look, never sleep.
            self.wait(moved)?;
        }
    }

    /// Whether the relay is done, and why.
    fn finished(&self) -> Option<End> {
        if let Some(end) = self.stopped {
            return Some(end);
        }
        let now = Instant::now();
        if let Some(end) = self.finishing {
            let terminal_done = end == End::Filter
                || (self.pty_drained && self.pty_in.is_empty() && self.pending_control.is_none());
            if terminal_done && self.outbound.is_empty() {
                return Some(end);
            }
            if now >= self.drain_deadline {
                log::info!(
                    "relay: the client did not take the last {} bytes in time",
                    self.outbound.len() + self.pty_in.len()
                );
                return Some(end);
            }
            return None;
        }
        match self.config.idle_timeout {
            Some(idle) if now.duration_since(self.last_activity) >= idle => Some(End::Idle),
            _ => None,
        }
    }

    fn stop(&mut self, end: End) {
        self.stopped.get_or_insert(end);
    }

    /// Stop taking input; end once the output is drained.
    fn finish(&mut self, end: End) {
        if self.finishing.is_none() {
            self.finishing = Some(end);
            self.drain_deadline = Instant::now() + self.config.drain_timeout;
        }
    }

    fn child_has_exited(&mut self) {
        self.child_exited = true;
        self.exit_fd = None;
        self.finish(End::ChildExited);
    }

    fn terminal_hung_up(&mut self) {
        self.pty_hup = true;
        self.to_pty.clear();
        self.finish(End::Hangup);
    }

    /// Apply what a filter asked for beyond its output bytes.
    fn after_filter(&mut self, discard: bool, end: bool) {
        if discard {
            self.pty_in.clear();
        }
        if end {
            self.finish(End::Filter);
        }
    }

    fn filter_network(&mut self) -> io::Result<bool> {
        if self.net_in.is_empty() || self.finishing.is_some() {
            return Ok(false);
        }
        let urgent = match self.mark {
            Some(at) => UrgentMark::At(at),
            None if self.urgent_pending => UrgentMark::Ahead,
            None => UrgentMark::None,
        };
        let mut out = Outputs::new(&mut self.to_pty, &mut self.outbound, self.master);
        let taken = self.filter.on_network(self.net_in.data(), urgent, &mut out);
        let (discard, end) = (out.discard_requested, out.end_requested);
        let taken = taken.min(self.net_in.len());
        self.net_in.consume(taken);
        self.mark = self.mark.and_then(|at| at.checked_sub(taken));
        self.after_filter(discard, end);
        if taken == 0
            && self.net_in.room() == 0
            && self.to_pty.is_empty()
            && self.outbound.is_empty()
        {
            return Err(io::Error::other(
                "the network filter takes nothing from a full buffer",
            ));
        }
        Ok(taken > 0)
    }

    fn filter_terminal(&mut self) -> io::Result<bool> {
        if self.finishing == Some(End::Filter) {
            return Ok(false);
        }
        let mut moved = false;
        if !self.pty_in.is_empty() {
            let mut out = Outputs::new(&mut self.to_pty, &mut self.outbound, self.master);
            let taken = self.filter.on_terminal(self.pty_in.data(), &mut out);
            let (discard, end) = (out.discard_requested, out.end_requested);
            let taken = taken.min(self.pty_in.len());
            self.pty_in.consume(taken);
            self.after_filter(discard, end);
            if taken == 0 && self.pty_in.room() == 0 && self.outbound.is_empty() {
                return Err(io::Error::other(
                    "the terminal filter takes nothing from a full buffer",
                ));
            }
            moved = taken > 0;
        }
        // A control byte follows the output read before it, never passes it.
        if self.pty_in.is_empty() && self.outbound.room() >= CONTROL_ROOM {
            if let Some(control) = self.pending_control.take() {
                let mut out = Outputs::new(&mut self.to_pty, &mut self.outbound, self.master);
                self.filter
                    .on_packet_control(PacketControl(control), &mut out);
                let (discard, end) = (out.discard_requested, out.end_requested);
                self.after_filter(discard, end);
                moved = true;
            }
        }
        Ok(moved)
    }

    fn write_terminal(&mut self) -> bool {
        if self.to_pty.is_empty() || self.pty_hup || self.finishing.is_some() {
            return false;
        }
        match nix::unistd::write(self.master, self.to_pty.data()) {
            Ok(n) => {
                self.to_pty.consume(n);
                n > 0
            }
            Err(Errno::EAGAIN | Errno::EINTR) => false,
            Err(_) => {
                self.terminal_hung_up();
                false
            }
        }
    }

    fn write_network(&mut self) -> bool {
        let mut moved = false;
        while self.stopped.is_none() {
            let result = match self.outbound.next() {
                None => break,
                Some(Next::Stream(bytes)) => self.conn.write(bytes),
                Some(Next::Urgent(byte)) => send_urgent(self.conn, byte),
            };
            match result {
                Ok(0) => self.stop(End::ClientClosed),
                Ok(n) => {
                    self.outbound.sent(n);
                    self.to_network += n as u64;
                    moved = true;
                }
                Err(e) if is_transient(&e) => break,
                Err(e) => {
                    log::debug!("relay: writing to the client: {e}");
                    self.stop(End::ClientClosed);
                }
            }
        }
        moved
    }

    fn read_network(&mut self) {
        if self.net_in.room() == 0 {
            return;
        }
        let mut at_mark = false;
        if self.urgent_pending {
            match sys::tty::at_urgent_mark(self.conn.as_fd()) {
                // One mark at a time: the filter takes the first one first.
                Ok(true) if self.mark.is_some() => return,
                Ok(yes) => at_mark = yes,
                Err(e) => {
                    log::debug!("relay: no urgent mark on this connection: {e}");
                    self.urgent_pending = false;
                    self.urgent_supported = false;
                }
            }
        }
        let before = self.net_in.len();
        match self.conn.read(self.net_in.spare()) {
            Ok(0) => self.stop(End::ClientClosed),
            Ok(n) => {
                self.net_in.commit(n);
                self.from_network += n as u64;
                self.last_activity = Instant::now();
                if at_mark {
                    self.mark = Some(before);
                    self.urgent_pending = false;
                } else if self.urgent_pending && !self.urgent_still_pending() {
                    // The urgent byte arrived between sockatmark and the
                    // read, which took it as plain data: the mark is gone,
                    // and input must not be "ahead of a mark" for ever.
                    log::debug!("relay: an urgent mark went by unseen");
                    self.urgent_pending = false;
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => {
                log::debug!("relay: reading from the client: {e}");
                self.stop(End::ClientClosed);
            }
        }
    }

    /// Whether the kernel still reports urgent data not yet read.
    fn urgent_still_pending(&self) -> bool {
        let mut fds = [PollFd::new(self.conn.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLPRI)),
            Err(_) => true,
        }
    }

    /// The client sent urgent data: note it, and tell the filter at once,
    /// even when the data before the mark cannot be read yet.
    fn urgent_arrived(&mut self) {
        if self.urgent_pending {
            return;
        }
        self.urgent_pending = true;
        let mut out = Outputs::new(&mut self.to_pty, &mut self.outbound, self.master);
        self.filter.on_urgent(&mut out);
        let (discard, end) = (out.discard_requested, out.end_requested);
        self.after_filter(discard, end);
    }

    fn read_terminal(&mut self) -> bool {
        if self.pty_drained || self.pending_control.is_some() || self.pty_in.room() == 0 {
            return false;
        }
        self.pty_busy = false;
        let result = if self.config.packet_mode {
            // The control byte lands apart from the data: no shifting.
            let mut header = [0u8; 1];
            let mut parts = [
                IoSliceMut::new(&mut header),
                IoSliceMut::new(self.pty_in.spare()),
            ];
            match nix::sys::uio::readv(self.master, &mut parts) {
                Ok(0) => Ok(TerminalRead::Closed),
                Ok(_) if header[0] != 0 => Ok(TerminalRead::Control(header[0])),
                Ok(n) => Ok(TerminalRead::Data(n - 1)),
                Err(e) => Err(e),
            }
        } else {
            match nix::unistd::read(self.master.as_raw_fd(), self.pty_in.spare()) {
                Ok(0) => Ok(TerminalRead::Closed),
                Ok(n) => Ok(TerminalRead::Data(n)),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(TerminalRead::Data(n)) => {
                self.pty_in.commit(n);
                self.last_activity = Instant::now();
                // A read that did not fill the terminal's own buffer
                // emptied it: another would find nothing, and on Linux an
                // empty read waits for the terminal's buffer worker (a
                // flush and two context switches) before its EAGAIN.
                self.pty_busy = n >= FULL_TERMINAL_READ;
                true
            }
            Ok(TerminalRead::Control(byte)) => {
                self.pending_control = Some(byte);
                self.last_activity = Instant::now();
                true
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {
                if self.child_exited || self.pty_hup {
                    self.pty_drained = true;
                }
                false
            }
            // EIO on Linux, EOF on the BSDs: every slave descriptor is
            // closed and nothing is left to read.
            Ok(TerminalRead::Closed) | Err(Errno::EIO) => {
                self.pty_drained = true;
                self.terminal_hung_up();
                false
            }
            Err(e) => {
                log::debug!("relay: reading the terminal: {e}");
                self.pty_drained = true;
                self.terminal_hung_up();
                false
            }
        }
    }

    fn network_events(&self) -> PollFlags {
        let mut events = PollFlags::empty();
        if self.finishing.is_none() {
            if self.net_in.room() > 0 && !(self.mark.is_some() && self.urgent_pending) {
                events |= PollFlags::POLLIN;
            }
            if self.urgent_supported && !self.urgent_pending {
                events |= PollFlags::POLLPRI;
            }
        }
        if !self.outbound.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        events
    }

    fn terminal_events(&self) -> PollFlags {
        let mut events = PollFlags::empty();
        // After a hang-up poll would report POLLHUP for ever: read directly.
        if self.pty_hup || self.finishing.is_some() {
            return events;
        }
        if self.pending_control.is_none() && self.pty_in.room() > 0 {
            events |= PollFlags::POLLIN;
        }
        if !self.to_pty.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        events
    }

    fn poll_timeout(&self) -> PollTimeout {
        let deadline = match self.finishing {
            Some(_) => Some(self.drain_deadline),
            None => self.config.idle_timeout.map(|t| self.last_activity + t),
        };
        let Some(deadline) = deadline else {
            return PollTimeout::NONE;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // Round up, so that a wake-up is never a hair before the deadline.
        let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
        PollTimeout::try_from(ms.min(i32::MAX as u128)).unwrap_or(PollTimeout::MAX)
    }

    /// Sleep in poll until a side is ready (or only look, when `busy`),
    /// then read what is readable.
    fn wait(&mut self, busy: bool) -> io::Result<()> {
        let net_events = self.network_events();
        let pty_events = self.terminal_events();
        let timeout = if busy {
            PollTimeout::ZERO
        } else {
            self.poll_timeout()
        };
        let (net, pty, exited) = {
            let mut fds = vec![PollFd::new(self.conn.as_fd(), net_events)];
            // A side with nothing to wait for stays out, or its POLLHUP
            // would wake the loop for ever.
            if !pty_events.is_empty() {
                fds.push(PollFd::new(self.master, pty_events));
            }
            if let Some(fd) = &self.exit_fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            let revents = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .unwrap_or(PollFlags::empty())
            };
            let pty_at = if pty_events.is_empty() { None } else { Some(1) };
            let exit_at = self
                .exit_fd
                .as_ref()
                .map(|_| 1 + usize::from(pty_at.is_some()));
            (
                revents(0),
                pty_at.map_or(PollFlags::empty(), revents),
                exit_at.map_or(PollFlags::empty(), revents),
            )
        };
        if (net | pty | exited).contains(PollFlags::POLLNVAL) {
            return Err(Errno::EBADF.into()); // closed under us: a caller bug
        }
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR;
        if !exited.is_empty() {
            self.child_has_exited();
        }
        if net.contains(PollFlags::POLLPRI) {
            self.urgent_arrived();
        }
        if net.contains(PollFlags::POLLIN) {
            self.read_network();
        } else if net.intersects(gone) {
            if net_events.contains(PollFlags::POLLIN) {
                self.read_network(); // the error or EOF, after any data
            } else {
                self.stop(End::ClientClosed);
            }
        }
        if pty.contains(PollFlags::POLLIN) {
            self.read_terminal();
        }
        if pty.intersects(gone) && !pty.contains(PollFlags::POLLIN) {
            self.terminal_hung_up();
        }
        Ok(())
    }
}

enum TerminalRead {
    Data(usize),
    Control(u8),
    Closed,
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Send one byte as TCP urgent data. Where the connection has none (a
/// Unix socket on older kernels, a pipe), the byte goes in band, still in
/// its place.
fn send_urgent<C: AsFd + Write>(conn: &mut C, byte: u8) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = MsgFlags::MSG_OOB;
    match send(conn.as_fd().as_raw_fd(), &[byte], flags) {
        Ok(n) => Ok(n),
        Err(Errno::EOPNOTSUPP | Errno::EINVAL | Errno::ENOTSOCK) => conn.write(&[byte]),
        Err(e) => Err(e.into()),
    }
}

/// O_NONBLOCK on a descriptor while it lives, then the old flags back.
struct NonBlocking {
    fd: RawFd,
    old: OFlag,
}

impl NonBlocking {
    fn set(fd: RawFd) -> io::Result<NonBlocking> {
        let old = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
        fcntl(fd, FcntlArg::F_SETFL(old | OFlag::O_NONBLOCK))?;
        Ok(NonBlocking { fd, old })
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        let _ = fcntl(self.fd, FcntlArg::F_SETFL(self.old));
    }
}

/// Packet mode back off when the relay ends, so the caller reads plain
/// bytes from the master again.
struct PacketModeOff<'a>(BorrowedFd<'a>);

impl Drop for PacketModeOff<'_> {
    fn drop(&mut self) {
        let _ = sys::tty::set_packet_mode(self.0, false);
    }
}
