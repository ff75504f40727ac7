//! One TFTP transfer as a state machine: datagrams from the peer, timer
//! expiries and the results of file operations in; actions out. No sockets,
//! files or clock: `session.rs` performs each action and feeds back what
//! happened.
//!
//! Time never enters the machine. It arms a timer with
//! `Action::SetTimer(d)`; the driver calls `timeout` once `d` has passed
//! with no newer `SetTimer`. Only progress (a new ACK, the expected block)
//! or a retransmission re-arms it: a datagram that changes nothing leaves
//! it alone, so a chattering peer cannot keep a stalled transfer alive.
//!
//! A request for a file operation (`Read`, `Write`, `Commit`) is always the
//! last action of its batch, and the machine waits for its answer: the
//! driver performs it at once (blocking I/O) and passes the result back.
//!
//! Packets from another transfer ID never get here: the driver's socket is
//! connected to the peer, so the kernel drops them.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use super::packet::{self, ErrorCode, Mode, Packet, Request};
use super::transfer::{advance, Window};
use crate::auth;

/// Retransmissions of one packet before the transfer is given up.
pub const MAX_RETRIES: u32 = 5;
/// Bytes asked of the file at a time when sending (before netascii).
const READ_CHUNK: usize = 8192;

/// The operator's limits on what a client may negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_blksize: usize,
    pub max_windowsize: u16,
}

/// Why a transfer stopped, as the peer is told (an ERROR packet) and the
/// log says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// The ERROR datagram that tells the peer.
    pub fn packet(&self) -> Vec<u8> {
        packet::error(self.code, &self.message)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::NotFound => Failure::new(ErrorCode::FileNotFound, "file not found"),
            io::ErrorKind::PermissionDenied => {
                Failure::new(ErrorCode::AccessViolation, "access violation")
            }
            io::ErrorKind::AlreadyExists => {
                Failure::new(ErrorCode::FileExists, "file already exists")
            }
            _ if e.raw_os_error() == Some(libc::ENOSPC) => {
                Failure::new(ErrorCode::DiskFull, "disk full")
            }
            _ => Failure::new(ErrorCode::NotDefined, e.to_string()),
        }
    }
}

/// How a transfer ended, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Bytes on the wire for a read (after netascii), bytes written to the
    /// file for a write.
    Complete {
        bytes: u64,
    },
    Failed(String),
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this datagram to the peer.
    Send(Vec<u8>),
    /// Call `timeout` when this long has passed, unless another SetTimer
    /// comes first (it replaces this one).
    SetTimer(Duration),
    /// Read up to this many bytes of the file, then call `file_read`
    /// (with no bytes at end of file).
    Read(usize),
    /// Append these bytes to the upload, then call `written`.
    Write(Vec<u8>),
    /// The upload is complete: make it durable and put it in place, then
    /// call `committed`. Only then is the last block acknowledged.
    Commit,
    /// The transfer is over; it takes no more input.
    Done(Outcome),
}

/// One transfer, from the request to its end.
#[derive(Debug)]
pub struct Transfer {
    mode: Mode,
    blksize: usize,
    windowsize: u64,
    timeout: Duration,
    /// Timeouts in a row without progress.
    retries: u32,
    /// The option acknowledgement, until the peer answers it (ACK 0 for a
    /// read, DATA 1 for a write): what a timeout retransmits meanwhile.
    oack: Option<Vec<u8>>,
    role: Role,
}

#[derive(Debug)]
enum Role {
    Send(Sender),
    Receive(Receiver),
    Over,
}

/// The sending side (RRQ): go-back-N over a window of blocks (RFC 7440),
/// window 1 being plain RFC 1350.
#[derive(Debug)]
struct Sender {
    window: Window,
    /// Blocks sent and not yet acknowledged, oldest first.
    in_flight: VecDeque<InFlight>,
    /// The short block that ends the file, once it is sent.
    last_block: Option<u64>,
    /// File bytes, netascii already applied, not yet cut into blocks.
    pending: Vec<u8>,
    eof: bool,
    /// A `Read` is out; the window fill resumes in `file_read`.
    reading: bool,
    bytes: u64,
}

#[derive(Debug)]
struct InFlight {
    number: u64,
    wire: Vec<u8>,
    /// Sent again since its first time (on a timeout or an early ACK).
    resent: bool,
}

/// The receiving side (WRQ).
#[derive(Debug)]
struct Receiver {
    /// The block we want next, counted past the 16-bit wrap; during
    /// `Writing`, `Committing` and `Dallying`, the block just received.
    expected: u64,
    /// In-order blocks since our last ACK: one ACK per window.
    since_ack: u64,
    /// We have acknowledged the last good block again for a block out of
    /// order, and wait for the one we want.
    nudged: bool,
    /// netascii: the previous block ended in a CR.
    pending_cr: bool,
    bytes: u64,
    phase: Phase,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Receiving,
    /// A `Write` is out; `last` if its block was the short one.
    Writing {
        last: bool,
    },
    /// A `Commit` is out.
    Committing,
    /// The final ACK is sent; a retransmitted last block means it was lost,
    /// so it is answered again until the timer fires (RFC 1350's dally).
    Dallying,
}

impl Transfer {
    /// Begin serving `request`, whose file is open. `file_size` is the size
    /// of a file to send, answered to the tsize option in octet mode
    /// (a netascii size is unknown before conversion).
    pub fn start(
        request: &Request,
        limits: Limits,
        file_size: Option<u64>,
    ) -> (Transfer, Vec<Action>) {
        let (negotiated, mut options) =
            packet::negotiate(&request.options, limits.max_blksize, limits.max_windowsize);
        if negotiated.tsize_requested {
            // RFC 2349: a writer's announced size is echoed; a reader is
            // told the size.
            let size = if request.write {
                negotiated.tsize
            } else {
                file_size.filter(|_| request.mode == Mode::Octet)
            };
            if let Some(size) = size {
                options.push(("tsize".into(), size.to_string()));
            }
        }
        let role = if request.write {
            Role::Receive(Receiver {
                expected: 1,
                since_ack: 0,
                nudged: false,
                pending_cr: false,
                bytes: 0,
                phase: Phase::Receiving,
            })
        } else {
            Role::Send(Sender {
                window: Window::new(negotiated.windowsize as u64),
                in_flight: VecDeque::new(),
                last_block: None,
                pending: Vec::new(),
                eof: false,
                reading: false,
                bytes: 0,
            })
        };
        let mut transfer = Transfer {
            mode: request.mode,
            blksize: negotiated.blksize,
            windowsize: negotiated.windowsize.max(1) as u64,
            timeout: Duration::from_secs(negotiated.timeout_secs),
            retries: 0,
            oack: (!options.is_empty()).then(|| packet::oack(&options)),
            role,
        };
        let mut out = Vec::new();
        if let Some(oack) = &transfer.oack {
            out.push(Action::Send(oack.clone()));
            out.push(Action::SetTimer(transfer.timeout));
        } else if request.write {
            // Without options, ACK 0 invites the first block.
            out.push(Action::Send(packet::ack(0).to_vec()));
            out.push(Action::SetTimer(transfer.timeout));
        } else {
            transfer.fill_window(&mut out);
        }
        (transfer, out)
    }

    /// The transfer has ended (its `Done` has been given).
    pub fn is_over(&self) -> bool {
        matches!(self.role, Role::Over)
    }

    /// A datagram from the peer, unparsed. Malformed ones are ignored.
    pub fn datagram(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut out = Vec::new();
        let Ok(packet) = packet::parse(bytes) else {
            return out;
        };
        if self.awaits_driver() {
            // Cannot happen with a driver that answers at once; a lost
            // datagram is what UDP may do anyway.
            return out;
        }
        if let Packet::Error { message, .. } = &packet {
            // RFC 1350: an ERROR ends the transfer and is not answered.
            // After the final ACK the file is safe whatever the peer says.
            let outcome = match &self.role {
                Role::Receive(r) if r.phase == Phase::Dallying => {
                    Outcome::Complete { bytes: r.bytes }
                }
                _ => Outcome::Failed(format!("client: {}", auth::printable(message))),
            };
            self.finish(outcome, &mut out);
            return out;
        }
        let sending = matches!(self.role, Role::Send(_));
        match packet {
            Packet::Ack { block } if sending => self.on_ack(block, &mut out),
            Packet::Data { block, data } if !sending => self.on_data(block, data, &mut out),
            // A request, an OACK, or a packet for the other direction: not
            // ours to answer.
            _ => {}
        }
        out
    }

    /// The timer set by the last `SetTimer` fired.
    pub fn timeout(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if self.awaits_driver() {
            return out;
        }
        if let Role::Receive(r) = &self.role {
            if r.phase == Phase::Dallying {
                let bytes = r.bytes;
                self.finish(Outcome::Complete { bytes }, &mut out);
                return out;
            }
        }
        self.retries += 1;
        if self.retries > MAX_RETRIES {
            let why = if self.oack.is_some() {
                "no answer to the option acknowledgement"
            } else {
                "timed out"
            };
            self.fail(Failure::new(ErrorCode::NotDefined, why), &mut out);
            return out;
        }
        if let Some(oack) = &self.oack {
            out.push(Action::Send(oack.clone()));
        } else {
            match &mut self.role {
                Role::Send(s) => s.resend_in_flight(&mut out),
                // Ask again for the block we expect; the sender's next
                // window starts there, and so does our count.
                Role::Receive(r) => {
                    out.push(Action::Send(ack(r.expected - 1)));
                    r.since_ack = 0;
                }
                Role::Over => return out,
            }
        }
        out.push(Action::SetTimer(self.timeout));
        out
    }

    /// The answer to `Read`: the bytes read (none at end of file).
    pub fn file_read(&mut self, result: io::Result<&[u8]>) -> Vec<Action> {
        let mut out = Vec::new();
        let Role::Send(s) = &mut self.role else {
            return out;
        };
        if !s.reading {
            return out;
        }
        s.reading = false;
        match result {
            Err(e) => self.fail(e.into(), &mut out),
            Ok(bytes) => {
                if bytes.is_empty() {
                    s.eof = true;
                } else if self.mode == Mode::NetAscii {
                    packet::to_netascii(bytes, &mut s.pending);
                } else {
                    s.pending.extend_from_slice(bytes);
                }
                self.fill_window(&mut out);
            }
        }
        out
    }

    /// The answer to `Write`.
    pub fn written(&mut self, result: io::Result<()>) -> Vec<Action> {
        let mut out = Vec::new();
        let Role::Receive(r) = &mut self.role else {
            return out;
        };
        let Phase::Writing { last } = r.phase else {
            return out;
        };
        if let Err(e) = result {
            self.fail(e.into(), &mut out);
            return out;
        }
        if last {
            r.phase = Phase::Committing;
            out.push(Action::Commit);
            return out;
        }
        r.phase = Phase::Receiving;
        r.since_ack += 1;
        if r.since_ack >= self.windowsize {
            out.push(Action::Send(ack(r.expected)));
            r.since_ack = 0;
        }
        r.expected += 1;
        out.push(Action::SetTimer(self.timeout));
        out
    }

    /// The answer to `Commit`.
    pub fn committed(&mut self, result: io::Result<()>) -> Vec<Action> {
        let mut out = Vec::new();
        let Role::Receive(r) = &mut self.role else {
            return out;
        };
        if r.phase != Phase::Committing {
            return out;
        }
        match result {
            Err(e) => self.fail(e.into(), &mut out),
            Ok(()) => {
                r.phase = Phase::Dallying;
                out.push(Action::Send(ack(r.expected)));
                out.push(Action::SetTimer(self.timeout));
            }
        }
        out
    }

    /// A file operation is out and its answer has not come back.
    fn awaits_driver(&self) -> bool {
        match &self.role {
            Role::Send(s) => s.reading,
            Role::Receive(r) => matches!(r.phase, Phase::Writing { .. } | Phase::Committing),
            Role::Over => true,
        }
    }

    fn on_ack(&mut self, block: u16, out: &mut Vec<Action>) {
        let Role::Send(s) = &mut self.role else {
            return;
        };
        if self.oack.is_some() {
            if block == 0 {
                self.oack = None;
                self.retries = 0;
                self.fill_window(out);
            }
            return;
        }
        // A duplicate, old or never-sent ACK is ignored: resending on a
        // duplicate is the Sorcerer's Apprentice bug. (So a receiver's ACK
        // for a gap at the first block of a window, which repeats the
        // window's ACK, waits for the timer.)
        let Some(upto) = advance(s.window.acked, s.window.sent, block) else {
            return;
        };
        s.window.acked = upto;
        self.retries = 0;
        while s.in_flight.front().is_some_and(|b| b.number <= upto) {
            s.in_flight.pop_front();
        }
        if s.last_block == Some(upto) {
            let bytes = s.bytes;
            self.finish(Outcome::Complete { bytes }, out);
            return;
        }
        // An ACK short of what we sent means the receiver saw a gap, or
        // timed out, and dropped whatever followed (RFC 7440): the next
        // window starts after the block it names. Resend the rest now
        // rather than a timeout later, unless it already went out again
        // (after our timeout): that copy may still be on its way, and
        // sending it twice more would only flood the receiver.
        if s.in_flight.front().is_some_and(|b| !b.resent) {
            s.resend_in_flight(out);
        }
        self.fill_window(out);
    }

    /// Send new blocks while the window has room, asking for file data as
    /// needed; arm the timer once the window is out.
    fn fill_window(&mut self, out: &mut Vec<Action>) {
        let Role::Send(s) = &mut self.role else {
            return;
        };
        while s.last_block.is_none() && s.window.can_send() {
            if s.pending.len() < self.blksize && !s.eof {
                s.reading = true;
                out.push(Action::Read(self.blksize.max(READ_CHUNK)));
                return;
            }
            let take = s.pending.len().min(self.blksize);
            let n = s.window.next_block();
            if take < self.blksize {
                s.last_block = Some(n);
            }
            s.bytes += take as u64;
            let mut wire = Vec::with_capacity(take + 4);
            packet::data(n as u16, &s.pending[..take], &mut wire);
            s.pending.drain(..take);
            out.push(Action::Send(wire.clone()));
            s.in_flight.push_back(InFlight {
                number: n,
                wire,
                resent: false,
            });
        }
        out.push(Action::SetTimer(self.timeout));
    }

    fn on_data(&mut self, block: u16, data: &[u8], out: &mut Vec<Action>) {
        let Role::Receive(r) = &mut self.role else {
            return;
        };
        match r.phase {
            Phase::Receiving => {}
            Phase::Dallying => {
                // Our final ACK was lost: the peer sends the last block again.
                if block == r.expected as u16 {
                    out.push(Action::Send(ack(r.expected)));
                }
                return;
            }
            Phase::Writing { .. } | Phase::Committing => return,
        }
        if block != r.expected as u16 {
            // A duplicate (our ACK was lost) or a gap in a window:
            // acknowledge the last good block (or repeat the OACK before
            // the first) so the sender goes back to the one we want. Once
            // per gap: a sender restarts its window on each such ACK, and
            // the rest of a window after a gap would restart it many
            // times. Our timer asks again if this one is lost.
            if !r.nudged {
                r.nudged = true;
                out.push(Action::Send(match &self.oack {
                    Some(oack) => oack.clone(),
                    None => ack(r.expected - 1),
                }));
                r.since_ack = 0;
            }
            return;
        }
        r.nudged = false;
        self.oack = None;
        self.retries = 0;
        let last = data.len() < self.blksize;
        let mut decoded = Vec::with_capacity(data.len() + 1);
        if self.mode == Mode::NetAscii {
            packet::from_netascii(data, &mut r.pending_cr, &mut decoded);
            if last && r.pending_cr {
                // A CR ending the file had no partner: keep it rather than
                // lose a byte we acknowledge.
                decoded.push(b'\r');
                r.pending_cr = false;
            }
        } else {
            decoded.extend_from_slice(data);
        }
        r.bytes += decoded.len() as u64;
        r.phase = Phase::Writing { last };
        out.push(Action::Write(decoded));
    }

    /// Tell the peer why, and end.
    fn fail(&mut self, failure: Failure, out: &mut Vec<Action>) {
        out.push(Action::Send(failure.packet()));
        self.finish(Outcome::Failed(failure.message), out);
    }

    fn finish(&mut self, outcome: Outcome, out: &mut Vec<Action>) {
        self.role = Role::Over;
        out.push(Action::Done(outcome));
    }
}

impl Sender {
    fn resend_in_flight(&mut self, out: &mut Vec<Action>) {
        for block in &mut self.in_flight {
            block.resent = true;
            out.push(Action::Send(block.wire.clone()));
        }
    }
}

/// The ACK for a block counted past the wrap.
fn ack(block: u64) -> Vec<u8> {
    packet::ack(block as u16).to_vec()
}

/// Drive a transfer with arbitrary bytes, checking the invariants the
/// driver relies on; panics when one breaks. For cargo-fuzz:
/// `fuzz_target!(|data: &[u8]| classicd::tftp::machine::fuzz(data));`
///
/// The first two bytes choose the request (direction, mode, options) and
/// the limits; then each event is a tag byte and its operands: a raw
/// datagram, a timeout, an ACK, a DATA block, or the next chunk of the file
/// being sent. Writes and commits succeed; the file ends with the input.
pub fn fuzz(input: &[u8]) {
    let mut input = FuzzInput(input);
    let setup = input.byte();
    let sizes = input.byte();
    let mut options = Vec::new();
    if setup & 4 != 0 {
        options.push(("blksize".into(), (8 + (sizes & 0x1f) as u64).to_string()));
    }
    if setup & 8 != 0 {
        options.push(("windowsize".into(), (1 + (sizes >> 5) as u64).to_string()));
    }
    if setup & 16 != 0 {
        options.push(("tsize".into(), "0".into()));
    }
    if setup & 32 != 0 {
        options.push(("timeout".into(), "3".into()));
    }
    let request = Request {
        write: setup & 1 != 0,
        filename: "fuzz".into(),
        mode: if setup & 2 != 0 {
            Mode::NetAscii
        } else {
            Mode::Octet
        },
        options,
    };
    let limits = Limits {
        max_blksize: 8 + (sizes & 0x0f) as usize,
        max_windowsize: 1 + (setup >> 6) as u16,
    };
    let (mut transfer, mut actions) = Transfer::start(&request, limits, Some(0));
    // A window resent and a new one: anything more is an amplification.
    let max_sends = 2 * limits.max_windowsize as usize;
    let mut timeouts_in_a_row = 0;
    loop {
        check_batch(&actions, max_sends);
        let over = matches!(actions.last(), Some(Action::Done(_)));
        assert_eq!(over, transfer.is_over(), "Done iff over");
        if over {
            assert!(transfer.datagram(&packet::ack(1)).is_empty());
            assert!(transfer.timeout().is_empty());
            return;
        }
        actions = match actions.last() {
            Some(Action::Read(max)) => {
                let n = (input.byte() as usize).min(*max);
                transfer.file_read(Ok(input.take(n)))
            }
            Some(Action::Write(_)) => transfer.written(Ok(())),
            Some(Action::Commit) => transfer.committed(Ok(())),
            _ => {
                if input.0.is_empty() {
                    // Out of input: the peer has gone quiet, so timeouts
                    // alone must end the transfer.
                    timeouts_in_a_row += 1;
                    assert!(timeouts_in_a_row <= MAX_RETRIES + 2, "never gives up");
                    transfer.timeout()
                } else {
                    fuzz_event(&mut transfer, &mut input)
                }
            }
        };
    }
}

fn fuzz_event(transfer: &mut Transfer, input: &mut FuzzInput) -> Vec<Action> {
    match input.byte() % 4 {
        0 => {
            let n = input.byte() as usize;
            transfer.datagram(input.take(n))
        }
        1 => transfer.timeout(),
        2 => transfer.datagram(&packet::ack(input.u16())),
        _ => {
            let block = input.u16();
            let n = input.byte() as usize % 48;
            let mut wire = Vec::new();
            packet::data(block, input.take(n), &mut wire);
            transfer.datagram(&wire)
        }
    }
}

/// What the driver relies on in every batch of actions.
fn check_batch(actions: &[Action], max_sends: usize) {
    let sends = actions
        .iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .count();
    assert!(sends <= max_sends, "{sends} datagrams for one input");
    for (i, action) in actions.iter().enumerate() {
        let last = i + 1 == actions.len();
        match action {
            Action::Send(bytes) => assert!(packet::parse(bytes).is_ok(), "sends a bad packet"),
            Action::Read(_) | Action::Write(_) | Action::Commit | Action::Done(_) => {
                assert!(last, "{action:?} is not last in its batch")
            }
            Action::SetTimer(_) => {}
        }
    }
}

struct FuzzInput<'a>(&'a [u8]);

impl<'a> FuzzInput<'a> {
    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
