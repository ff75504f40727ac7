//! The server's side of a TELNET connection as a state machine: client
//! bytes in (`receive`), terminal output in (`output`), terminal events in
//! (`packet`); bytes for each side and effects on the terminal out,
//! through a `Sink`. No sockets, no terminal, no clock: time comes in as
//! an argument, the session glue performs the effects.
//!
//! The same machine serves the login prompt (phase `Login`: data goes to
//! the prompt's line editor, there is no terminal yet) and the session on
//! a pseudo-terminal (phase `Session`), so the options negotiated before
//! login carry over unchanged.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::command::{describe, Command, Control, Reader};
use super::linemode::{slc, Linemode, ModeChange, Modes};
use super::terminal::{self, TerminalInfo};
use crate::pty::UrgentMark;
use crate::runtime::session::ipc::{Malformed, Reader as IpcReader, Writer};
use crate::telnet::options::{Change, Options, Policy};
use crate::telnet::sub::{self, lflow, Sub, VarKind};
use crate::telnet::{self, nvt, opt, Verb, DM, IAC};

/// Free network room a command needs before it is read: the longest
/// answer one command can make (an SLC table, a STATUS list) fits.
pub const REPLY_ROOM: usize = 512;
/// Free terminal room a command needs (EC, EL, EOF write one byte).
pub const TERMINAL_ROOM: usize = 16;
/// SENDs of TTYPE in one cycle, at most (the list is MAX_TYPES long).
const MAX_TTYPE_ASKS: u8 = terminal::MAX_TYPES as u8 + 1;
/// At most one AYT answer per this long.
const AYT_INTERVAL: Duration = Duration::from_millis(200);
/// The answer to AYT.
pub const AYT_REPLY: &[u8] = b"\r\n[Yes]\r\n";

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the terminal: negotiation and the login prompt.
    Login,
    /// On a pseudo-terminal.
    Session,
}

/// What the machine asks of the terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Signal the terminal's foreground process group (IP, BRK, ABORT,
    /// SUSP); at the login prompt, the line is abandoned.
    Signal(Signal),
    /// The window changed (NAWS): rows, columns.
    Resize { rows: u16, cols: u16 },
    /// Drop the terminal output not yet sent (AO, a flush).
    DiscardOutput,
    /// LINEMODE started or stopped: external processing on the terminal.
    ExternalProcessing(bool),
    /// The client asked for other modes or control characters (LINEMODE).
    SetModes(ModeChange),
    /// End of file for the program (IAC EOF in LINEMODE, where the
    /// terminal's own line processing is off).
    EndOfFile,
}

/// Where the machine's output goes. Byte methods take all or nothing and
/// return false when full; the machine checks room before it reads a
/// command, so they fail only for data, which it then keeps for later.
pub trait Sink {
    fn terminal_room(&self) -> usize;
    /// Bytes for the program (or the login prompt's editor).
    fn terminal(&mut self, bytes: &[u8]) -> bool;
    fn network_room(&self) -> usize;
    /// The program's output, mapped for the wire (discardable by AO).
    fn data(&mut self, bytes: &[u8]) -> bool;
    /// Protocol bytes, in order with the data, never discarded.
    fn reply(&mut self, bytes: &[u8]) -> bool;
    /// One byte as TCP urgent data.
    fn urgent(&mut self, byte: u8) -> bool;
    fn effect(&mut self, effect: Effect);
}

/// SENDs awaiting their IS.
mod awaiting {
    pub const TSPEED: u8 = 1;
    pub const XDISPLOC: u8 = 2;
    pub const ENVIRON: u8 = 4;
    pub const NAWS: u8 = 8;
}

/// The options we ask for when the connection opens (RFC 1143 requests).
const OPENING_REMOTE: &[u8] = &[
    opt::TTYPE,
    opt::TSPEED,
    opt::XDISPLOC,
    opt::NEW_ENVIRON,
    opt::NAWS,
    opt::LFLOW,
];
const OPENING_LOCAL: &[u8] = &[opt::ECHO, opt::SGA, opt::STATUS];

/// What we agree to: we echo, suppress go-ahead, give STATUS, and send
/// BINARY when asked; the client may describe its terminal and send
/// BINARY. AUTHENTICATION, ENCRYPT and everything unknown are refused.
/// LINEMODE only on a terminal (it needs the terminal's modes).
fn policy(phase: Phase) -> Policy {
    let p = Policy::default()
        .local(&[opt::ECHO, opt::SGA, opt::STATUS, opt::BINARY])
        .remote(&[
            opt::TTYPE,
            opt::TSPEED,
            opt::XDISPLOC,
            opt::NEW_ENVIRON,
            opt::OLD_ENVIRON,
            opt::NAWS,
            opt::LFLOW,
            opt::SGA,
            opt::BINARY,
        ]);
    match phase {
        Phase::Login => p,
        Phase::Session => p.remote(&[opt::LINEMODE]),
    }
}

/// The context of one call: the time, and the terminal's modes.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub now: Instant,
    pub modes: Modes,
}

/// The server's state of one connection.
pub struct State {
    phase: Phase,
    reader: Reader,
    input: nvt::Input,
    options: Options,
    pub info: TerminalInfo,
    linemode: Linemode,
    /// TTYPE cycle: SENDs so far, the names seen (lower-cased), finished.
    ttype_asks: u8,
    ttype_seen: Vec<Vec<u8>>,
    ttype_done: bool,
    awaiting: u8,
    /// LFLOW: the flow state and restart mode last sent.
    flow_sent: Option<bool>,
    restart_any_sent: Option<bool>,
    last_ayt: Option<Instant>,
    /// The client has sent TELNET commands: it is a TELNET client, not a
    /// raw one (nc, socat), which gets no more negotiation than it must.
    telnet_client: bool,
    /// Scratch for mapped terminal output.
    scratch: Vec<u8>,
}

impl State {
    pub fn new(phase: Phase) -> State {
        State {
            phase,
            reader: Reader::new(),
            input: nvt::Input::default(),
            options: Options::new(policy(phase)),
            info: TerminalInfo::default(),
            linemode: Linemode::default(),
            ttype_asks: 0,
            ttype_seen: Vec::new(),
            ttype_done: false,
            awaiting: 0,
            flow_sent: None,
            restart_any_sent: None,
            last_ayt: None,
            telnet_client: false,
            scratch: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether we perform `option` (e.g. ECHO) now.
    pub fn local(&self, option: u8) -> bool {
        self.options.local(option)
    }

    /// Whether the client performs `option` now.
    pub fn remote(&self, option: u8) -> bool {
        self.options.remote(option)
    }

    /// Between commands (no IAC sequence half read): the machine may be
    /// handed over.
    pub fn between_commands(&self) -> bool {
        self.reader.in_data()
    }

    /// LINEMODE is on: the client edits lines.
    pub fn linemode(&self) -> bool {
        self.linemode.active
    }

    /// The opening negotiation: we will echo and suppress go-ahead (the
    /// client goes character at a time), and we ask about its terminal.
    pub fn open(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for &o in OPENING_REMOTE {
            push(&mut out, self.options.enable_remote(o));
        }
        for &o in OPENING_LOCAL {
            push(&mut out, self.options.enable_local(o));
        }
        out
    }

    /// Whether the opening negotiation is over: every request answered,
    /// the TTYPE cycle finished, every SEND answered.
    pub fn settled(&self) -> bool {
        let asked = OPENING_REMOTE
            .iter()
            .chain(OPENING_LOCAL)
            .chain(&[opt::OLD_ENVIRON]);
        asked.clone().all(|&o| !self.options.pending(o))
            && (self.ttype_done || !self.options.remote(opt::TTYPE))
            && self.awaiting == 0
    }

    /// Enter the session on a terminal whose modes are `modes`: LINEMODE
    /// is asked for now (it mirrors the terminal), and LFLOW starts.
    pub fn start_session(&mut self, modes: &Modes) -> Vec<u8> {
        self.phase = Phase::Session;
        self.options.policy = policy(Phase::Session);
        self.ttype_done = true;
        let mut out = Vec::new();
        if self.telnet_client {
            push(&mut out, self.options.enable_remote(opt::LINEMODE));
        }
        out.extend(self.flow_update(modes));
        out
    }

    /// Client bytes: commands are carried out, data goes to the terminal
    /// (NVT end of line applied), data ahead of a SYNCH's mark is dropped.
    /// Stops when the sink is short of room; returns the bytes consumed.
    pub fn receive(
        &mut self,
        input: &[u8],
        urgent: UrgentMark,
        ctx: &Context,
        sink: &mut dyn Sink,
    ) -> usize {
        let mut i = 0;
        while i < input.len() {
            if sink.network_room() < REPLY_ROOM || sink.terminal_room() < TERMINAL_ROOM {
                break;
            }
            let in_data = self.reader.in_data();
            let (n, command) = self.reader.next(&input[i..]);
            let Some(command) = command else {
                i += n;
                break;
            };
            if let Command::Data(mut data) = command {
                let mut n = n;
                // Before the mark of a SYNCH, data is dropped; a run that
                // crosses the mark is cut there.
                let discard = match urgent {
                    UrgentMark::None => false,
                    UrgentMark::Ahead => true,
                    UrgentMark::At(mark) => {
                        if in_data && i < mark && i + data.len() > mark && n == data.len() {
                            data = &data[..mark - i];
                            n = data.len();
                        }
                        i < mark
                    }
                };
                let taken = self.data(data, discard, &ctx.modes, sink);
                if taken < data.len() {
                    // Only a plain run (the reader was in data) can be
                    // taken in part; the rest is read again later.
                    debug_assert!(in_data && n == data.len());
                    i += taken;
                    break;
                }
                i += n;
                continue;
            }
            i += n;
            self.telnet_client = true;
            log::debug!("< {}", describe(&command));
            self.handle(command, ctx, sink);
        }
        i
    }

    /// Data typed by the client; returns the bytes taken.
    fn data(&mut self, data: &[u8], discard: bool, modes: &Modes, sink: &mut dyn Sink) -> usize {
        if discard {
            self.input = nvt::Input::default();
            return data.len();
        }
        let binary = self.options.remote(opt::BINARY);
        let mut mapped = std::mem::take(&mut self.scratch);
        mapped.clear();
        let taken = self
            .input
            .map(data, binary, sink.terminal_room(), &mut mapped);
        if self.linemode.active {
            self.line_discipline(&mut mapped, modes, sink);
        }
        let fits = mapped.is_empty() || sink.terminal(&mapped);
        debug_assert!(fits);
        self.scratch = mapped;
        taken
    }

    /// In LINEMODE the terminal does no input processing of its own
    /// (Linux's EXTPROC passes input uncooked): what it would do to typed
    /// bytes is done here. A CR becomes a newline under ICRNL; the
    /// interrupt, quit and suspend characters under ISIG raise their
    /// signals (a client that does not trap them sends them as data).
    fn line_discipline(&mut self, bytes: &mut Vec<u8>, modes: &Modes, sink: &mut dyn Sink) {
        let signal_of = |b: u8| -> Option<Signal> {
            if !modes.signals {
                return None;
            }
            [
                (slc::IP, Signal::SIGINT),
                (slc::ABORT, Signal::SIGQUIT),
                (slc::SUSP, Signal::SIGTSTP),
            ]
            .into_iter()
            .find(|&(f, _)| modes.char(f) == Some(b))
            .map(|(_, s)| s)
        };
        bytes.retain_mut(|b| {
            if let Some(sig) = signal_of(*b) {
                sink.effect(Effect::Signal(sig));
                return false;
            }
            if *b == b'\r' && modes.icrnl {
                *b = b'\n';
            }
            true
        });
    }

    fn handle(&mut self, command: Command, ctx: &Context, sink: &mut dyn Sink) {
        match command {
            Command::Data(_) => {}
            Command::Control(c) => self.control(c, ctx, sink),
            Command::Negotiate(verb, option) => self.negotiate(verb, option, ctx, sink),
            Command::Sub { option, sub } => self.subnegotiation(option, sub, ctx, sink),
            Command::SubTooLong { option, length } => {
                log::debug!(
                    "subnegotiation of {} bytes for {} dropped",
                    length,
                    telnet::option_name(option)
                );
            }
        }
    }

    fn control(&mut self, c: Control, ctx: &Context, sink: &mut dyn Sink) {
        let key = |function: u8, default: u8| [ctx.modes.char(function).unwrap_or(default)];
        match c {
            Control::InterruptProcess | Control::Break => {
                sink.effect(Effect::Signal(Signal::SIGINT))
            }
            Control::Abort => sink.effect(Effect::Signal(Signal::SIGQUIT)),
            Control::Suspend => sink.effect(Effect::Signal(Signal::SIGTSTP)),
            Control::AbortOutput => {
                // Drop what is queued, then a SYNCH so the client drops
                // what it has not shown yet (RFC 854, RFC 1123 3.2.4).
                sink.effect(Effect::DiscardOutput);
                let _ = sink.reply(&[IAC]) && sink.urgent(DM);
            }
            Control::AreYouThere => {
                let due = self
                    .last_ayt
                    .is_none_or(|t| ctx.now.duration_since(t) >= AYT_INTERVAL);
                if due {
                    self.last_ayt = Some(ctx.now);
                    let _ = sink.reply(AYT_REPLY);
                }
            }
            Control::EraseCharacter => {
                let _ = sink.terminal(&key(slc::EC, 0x7f));
            }
            Control::EraseLine => {
                let _ = sink.terminal(&key(slc::EL, 0x15));
            }
            Control::EndOfFile if self.linemode.active => sink.effect(Effect::EndOfFile),
            Control::EndOfFile => {
                let _ = sink.terminal(&key(slc::EOF, 0x04));
            }
            Control::Nop
            | Control::DataMark
            | Control::GoAhead
            | Control::EndOfRecord
            | Control::Unknown(_) => {}
        }
    }

    fn negotiate(&mut self, verb: Verb, option: u8, ctx: &Context, sink: &mut dyn Sink) {
        if option == opt::TM {
            // TIMING-MARK (RFC 860): answered in order, state unchanged.
            match verb {
                Verb::Do => {
                    let _ = sink.reply(&Verb::Will.command(opt::TM));
                }
                Verb::Will => {
                    let _ = sink.reply(&Verb::Dont.command(opt::TM));
                }
                _ => {}
            }
            return;
        }
        let refused_request = verb == Verb::Wont && self.options.remote_wanted(option);
        let outcome = self.options.receive(verb, option);
        let mut out = Vec::new();
        push(&mut out, outcome.reply);
        match outcome.change {
            Some(Change::Remote(o, true)) => self.remote_on(o, &ctx.modes, &mut out, sink),
            Some(Change::Remote(o, false)) => self.remote_off(o, &mut out, sink),
            _ => {}
        }
        if refused_request {
            self.refused(option, &mut out);
        }
        if !out.is_empty() {
            let _ = sink.reply(&out);
        }
    }

    /// The client now does `option`.
    fn remote_on(&mut self, option: u8, modes: &Modes, out: &mut Vec<u8>, sink: &mut dyn Sink) {
        match option {
            opt::TTYPE if self.phase == Phase::Login => {
                self.ttype_asks = 1;
                out.extend(sub::send(opt::TTYPE));
            }
            opt::TSPEED => {
                self.awaiting |= awaiting::TSPEED;
                out.extend(sub::send(opt::TSPEED));
            }
            opt::XDISPLOC => {
                self.awaiting |= awaiting::XDISPLOC;
                out.extend(sub::send(opt::XDISPLOC));
            }
            opt::NEW_ENVIRON => {
                self.awaiting |= awaiting::ENVIRON;
                out.extend(sub::send(opt::NEW_ENVIRON));
            }
            opt::OLD_ENVIRON if !self.options.remote(opt::NEW_ENVIRON) => {
                self.awaiting |= awaiting::ENVIRON;
                out.extend(sub::send(opt::OLD_ENVIRON));
            }
            opt::NAWS if self.phase == Phase::Login => self.awaiting |= awaiting::NAWS,
            opt::LINEMODE => {
                sink.effect(Effect::ExternalProcessing(true));
                out.extend(self.linemode.start(modes));
                self.echo_update(modes, out);
            }
            opt::LFLOW if self.phase == Phase::Session => out.extend(self.flow_update(modes)),
            _ => {}
        }
    }

    /// The client no longer does `option`.
    fn remote_off(&mut self, option: u8, out: &mut Vec<u8>, sink: &mut dyn Sink) {
        match option {
            opt::LINEMODE if self.linemode.active => {
                self.linemode.stop();
                sink.effect(Effect::ExternalProcessing(false));
                // Character at a time again: the terminal echoes.
                push(out, self.options.enable_local(opt::ECHO));
            }
            opt::TTYPE => self.ttype_done = true,
            opt::NAWS => self.awaiting &= !awaiting::NAWS,
            _ => {}
        }
    }

    /// The client refused an option we asked for.
    fn refused(&mut self, option: u8, out: &mut Vec<u8>) {
        match option {
            opt::NEW_ENVIRON if self.phase == Phase::Login => {
                // An older client may know the older option.
                push(out, self.options.enable_remote(opt::OLD_ENVIRON));
            }
            opt::TTYPE => self.ttype_done = true,
            _ => {}
        }
    }

    fn subnegotiation(&mut self, option: u8, sub: Sub, ctx: &Context, sink: &mut dyn Sink) {
        // A subnegotiation for an option not in effect is dropped whole:
        // refused options (ENCRYPT, AUTHENTICATION) never get further.
        let in_effect = match option {
            opt::STATUS => self.options.local(opt::STATUS),
            _ => self.options.remote(option),
        };
        if !in_effect {
            log::debug!("subnegotiation for {} dropped", telnet::option_name(option));
            return;
        }
        match sub {
            Sub::TerminalType(name) => self.terminal_type(&name, sink),
            Sub::WindowSize { width, height } => {
                self.awaiting &= !awaiting::NAWS;
                self.info.window = Some((width, height));
                if self.phase == Phase::Session {
                    let (rows, cols) = self.info.rows_cols();
                    sink.effect(Effect::Resize { rows, cols });
                }
            }
            Sub::Speed { transmit, receive } => {
                self.awaiting &= !awaiting::TSPEED;
                if self.phase == Phase::Login {
                    self.info.speed = Some((transmit, receive));
                }
            }
            Sub::DisplayLocation(d) => {
                self.awaiting &= !awaiting::XDISPLOC;
                if self.phase == Phase::Login && self.info.display.is_none() {
                    self.info.display = terminal::display(&d);
                }
            }
            Sub::Environment { info, variables } => {
                if !info {
                    self.awaiting &= !awaiting::ENVIRON;
                }
                if self.phase == Phase::Login {
                    self.environment(&variables);
                }
            }
            Sub::LinemodeMode(mask) => {
                let (reply, change) = self.linemode.client_mode(mask);
                if !change.is_empty() {
                    sink.effect(Effect::SetModes(change));
                }
                let _ = reply.is_empty() || sink.reply(&reply);
            }
            Sub::LinemodeForwardMask(verb) => {
                let reply = self.linemode.client_forwardmask(verb);
                let _ = reply.is_empty() || sink.reply(&reply);
            }
            Sub::LinemodeSlc(triplets) => {
                let (reply, change) = self.linemode.client_slc(&triplets, &ctx.modes);
                if !change.is_empty() {
                    sink.effect(Effect::SetModes(change));
                }
                let _ = reply.is_empty() || sink.reply(&reply);
            }
            Sub::StatusSend => {
                let on = |f: &dyn Fn(u8) -> bool| (0..=255u8).filter(|&o| f(o)).collect::<Vec<_>>();
                let reply = sub::status_is(
                    &on(&|o| self.options.local(o)),
                    &on(&|o| self.options.remote(o)),
                );
                let _ = sink.reply(&reply);
            }
            Sub::Ignored | Sub::Malformed => {
                log::debug!("subnegotiation for {} ignored", telnet::option_name(option));
            }
        }
    }

    /// One name of the TTYPE cycle: keep it, and ask for the next until
    /// the list repeats (RFC 1091) or the bound is reached.
    fn terminal_type(&mut self, raw: &[u8], sink: &mut dyn Sink) {
        if self.phase != Phase::Login || self.ttype_done {
            return;
        }
        let key = raw.to_ascii_lowercase();
        let repeat = self.ttype_seen.contains(&key);
        if !repeat {
            if let Some(name) = terminal::terminal_type(raw) {
                if self.info.types.len() < terminal::MAX_TYPES {
                    self.info.types.push(name);
                }
            }
            self.ttype_seen.push(key);
        }
        if repeat || self.ttype_asks >= MAX_TTYPE_ASKS {
            self.ttype_done = true;
        } else {
            self.ttype_asks += 1;
            let _ = sink.reply(&sub::send(opt::TTYPE));
        }
    }

    /// The allow-list of the environment options: TERM and DISPLAY when
    /// well-formed, USER only as a hint for the login name. Everything
    /// else (LD_*, IFS, CREDENTIALS_DIRECTORY, user variables...) is
    /// dropped here and never reaches a program.
    fn environment(&mut self, variables: &[sub::Variable]) {
        for v in variables {
            let value = v.value.as_deref().unwrap_or_default();
            let name = if v.kind == VarKind::Var {
                v.name.as_slice()
            } else {
                b""
            };
            let kept = match name {
                b"USER" => terminal::login_name(value).map(|u| self.info.user = Some(u)),
                b"DISPLAY" => terminal::display(value).map(|d| self.info.display = Some(d)),
                b"TERM" => terminal::terminal_type(value).map(|t| self.info.env_term = Some(t)),
                _ => None,
            };
            if kept.is_none() {
                log::debug!(
                    "environment variable {} not taken",
                    crate::auth::printable(&String::from_utf8_lossy(&v.name))
                );
            }
        }
    }

    /// The program's output for the wire; returns the bytes taken.
    pub fn output(&mut self, bytes: &[u8], sink: &mut dyn Sink) -> usize {
        let binary = self.options.local(opt::BINARY);
        let mut mapped = std::mem::take(&mut self.scratch);
        mapped.clear();
        let taken = nvt::output(bytes, binary, sink.network_room(), &mut mapped);
        let fits = mapped.is_empty() || sink.data(&mapped);
        debug_assert!(fits);
        self.scratch = mapped;
        taken
    }

    /// A packet-mode event of the terminal, with its modes now.
    pub fn packet(&mut self, control: u8, modes: &Modes, sink: &mut dyn Sink) {
        use crate::pty::PacketControl as P;
        let p = P(control);
        let mut out = Vec::new();
        if p.has(P::FLUSHWRITE) {
            // The terminal's output was flushed (an interrupt): so is ours,
            // and the client is told with a SYNCH.
            sink.effect(Effect::DiscardOutput);
            out.extend_from_slice(&[IAC]);
            let _ = sink.reply(&out) && sink.urgent(DM);
            out.clear();
        }
        if p.has(P::NOSTOP) || p.has(P::DOSTOP) || p.has(P::IOCTL) {
            out.extend(self.flow_update(modes));
        }
        if p.has(P::IOCTL) {
            out.extend(self.modes_update(modes));
        }
        if !out.is_empty() {
            let _ = sink.reply(&out);
        }
    }

    /// The terminal's modes may have changed unseen (external processing
    /// was off for a moment): what the client mirrors, brought up to date.
    pub fn modes_update(&mut self, modes: &Modes) -> Vec<u8> {
        let mut out = self.linemode.update(modes);
        self.echo_update(modes, &mut out);
        out.extend(self.flow_update(modes));
        out
    }

    /// LFLOW's messages for the terminal's modes now, if they changed
    /// since the last ones sent (the session reads the modes again where
    /// no packet-mode event says they changed: IXANY outside LINEMODE).
    pub fn flow(&mut self, modes: &Modes) -> Vec<u8> {
        self.flow_update(modes)
    }

    /// LFLOW: tell the client whether ^S/^Q are its to handle, and how
    /// output restarts, when that changed.
    fn flow_update(&mut self, modes: &Modes) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.options.remote(opt::LFLOW) {
            return out;
        }
        if self.flow_sent != Some(modes.flow_control) {
            self.flow_sent = Some(modes.flow_control);
            out.extend(sub::lflow(if modes.flow_control {
                lflow::ON
            } else {
                lflow::OFF
            }));
        }
        if self.restart_any_sent != Some(modes.restart_any) {
            self.restart_any_sent = Some(modes.restart_any);
            out.extend(sub::lflow(if modes.restart_any {
                lflow::RESTART_ANY
            } else {
                lflow::RESTART_XON
            }));
        }
        out
    }

    /// In LINEMODE the client echoes while the terminal would (we say
    /// WONT ECHO); with the terminal's echo off (a password) we say WILL
    /// ECHO, and echo nothing.
    fn echo_update(&mut self, modes: &Modes, out: &mut Vec<u8>) {
        if !self.linemode.active {
            return;
        }
        if modes.echo {
            push(out, self.options.disable_local(opt::ECHO));
        } else {
            push(out, self.options.enable_local(opt::ECHO));
        }
    }

    /// The state at login, for the account's process: the options as
    /// negotiated, what the client said of its terminal, a CR awaiting
    /// its LF. Taken only between commands.
    pub fn encode(&self) -> Vec<u8> {
        let w = Writer::new(b'T')
            .bytes(&self.options.encode())
            .u8(u8::from(self.input.after_cr()))
            .u8(u8::from(self.telnet_client));
        self.info.encode(w).finish()
    }

    /// The reverse of `encode`, in the Login phase until `start_session`.
    pub fn decode(bytes: &[u8]) -> Result<State, Malformed> {
        let (tag, mut r) = IpcReader::new(bytes)?;
        if tag != b'T' {
            return Err(Malformed);
        }
        let options = Options::decode(r.bytes(512)?, policy(Phase::Login)).ok_or(Malformed)?;
        let after_cr = r.bool()?;
        let telnet_client = r.bool()?;
        let info = TerminalInfo::decode(&mut r)?;
        r.end()?;
        let mut s = State::new(Phase::Login);
        s.options = options;
        s.input = nvt::Input::new(after_cr);
        s.info = info;
        s.telnet_client = telnet_client;
        s.ttype_done = true;
        Ok(s)
    }
}

fn push(out: &mut Vec<u8>, negotiation: Option<(Verb, u8)>) {
    if let Some((verb, option)) = negotiation {
        log::debug!("> {verb:?} {}", telnet::option_name(option));
        out.extend_from_slice(&verb.command(option));
    }
}

/// Fuzz entry point: a whole connection's client bytes through the
/// machine, before and after login, with a sink that is sometimes full.
pub fn fuzz_session(data: &[u8]) {
    let room = REPLY_ROOM + usize::from(data.first().copied().unwrap_or(0)) * 8;
    let mut sink = Recorder::with_room(room);
    let ctx = Context {
        now: Instant::now(),
        modes: Modes::login_prompt(),
    };
    let mut s = State::new(Phase::Login);
    let _ = s.open();
    let half = data.len() / 2;
    let mut rest = &data[..half];
    for phase in 0..2 {
        let mut stuck = 0;
        while !rest.is_empty() && stuck < 3 {
            let n = s.receive(rest, UrgentMark::None, &ctx, &mut sink);
            rest = &rest[n..];
            stuck = if n == 0 { stuck + 1 } else { 0 };
            sink.drain();
        }
        if phase == 0 {
            let bytes = s.encode();
            s = State::decode(&bytes).expect("a hand-over decodes");
            let _ = s.start_session(&ctx.modes);
            rest = &data[half..];
        }
    }
    assert!(sink.max_seen <= sink.capacity);
}

/// A sink that keeps everything, with a fixed room on each side (tests,
/// fuzzing): what a relay with small buffers would do.
#[derive(Debug, Default)]
pub struct Recorder {
    pub capacity: usize,
    pub terminal: Vec<u8>,
    pub network: Vec<u8>,
    /// (position in `network`, byte) of each urgent byte.
    pub urgent: Vec<(usize, u8)>,
    pub effects: Vec<Effect>,
    /// Bytes waiting in the "buffers" (dropped by `drain`).
    pending_terminal: usize,
    pending_network: usize,
    pub max_seen: usize,
}

impl Recorder {
    pub fn with_room(capacity: usize) -> Recorder {
        Recorder {
            capacity,
            ..Recorder::default()
        }
    }

    /// The buffers were written out.
    pub fn drain(&mut self) {
        self.pending_terminal = 0;
        self.pending_network = 0;
    }

    fn put_network(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.network_room() {
            return false;
        }
        self.pending_network += bytes.len();
        self.max_seen = self.max_seen.max(self.pending_network);
        self.network.extend_from_slice(bytes);
        true
    }
}

impl Sink for Recorder {
    fn terminal_room(&self) -> usize {
        self.capacity - self.pending_terminal
    }

    fn terminal(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.terminal_room() {
            return false;
        }
        self.pending_terminal += bytes.len();
        self.terminal.extend_from_slice(bytes);
        true
    }

    fn network_room(&self) -> usize {
        self.capacity - self.pending_network
    }

    fn data(&mut self, bytes: &[u8]) -> bool {
        self.put_network(bytes)
    }

    fn reply(&mut self, bytes: &[u8]) -> bool {
        self.put_network(bytes)
    }

    fn urgent(&mut self, byte: u8) -> bool {
        if self.network_room() == 0 {
            return false;
        }
        self.urgent.push((self.network.len(), byte));
        self.put_network(&[byte])
    }

    fn effect(&mut self, effect: Effect) {
        self.effects.push(effect);
    }
}
