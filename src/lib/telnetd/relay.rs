//! The TELNET machine as the pty relay's filter: client bytes through
//! `State::receive` to the terminal, terminal output through
//! `State::output` to the client, packet-mode events through
//! `State::packet`; the machine's effects carried out on the terminal
//! (signals to its foreground group, window size, discarding output,
//! EXTPROC and modes for LINEMODE).

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::sys::termios::{LocalFlags, SpecialCharacterIndices as V};

use super::linemode::{slc, Modes};
use super::state::{Context, Effect, Sink, State};
use crate::pty::{
    self, ChildWatch, Filter, Outputs, PacketControl, TerminalModes, UrgentMark, WindowSize,
};

/// The relay's buffers: larger than the default, so that a program that
/// writes fast costs one large write to the client per many reads of the
/// terminal (which hands out 4 KiB at a time).
const RELAY_BUFFER: usize = 64 * 1024;

/// Outside LINEMODE, packet mode reports IXON's changes but not IXANY's:
/// with LFLOW on, the modes are read again after terminal output, on every
/// small read (a prompt, an echo) and at most this often during bulk
/// output.
const FLOW_CHECK: Duration = Duration::from_millis(250);
const SMALL_OUTPUT: usize = 1024;

/// Each SLC function and the terminal's control character for it.
const CHARS: &[(u8, V)] = &[
    (slc::IP, V::VINTR),
    (slc::AO, V::VDISCARD),
    (slc::ABORT, V::VQUIT),
    (slc::EOF, V::VEOF),
    (slc::SUSP, V::VSUSP),
    (slc::EC, V::VERASE),
    (slc::EL, V::VKILL),
    (slc::EW, V::VWERASE),
    (slc::RP, V::VREPRINT),
    (slc::LNEXT, V::VLNEXT),
    (slc::XON, V::VSTART),
    (slc::XOFF, V::VSTOP),
    (slc::FORW1, V::VEOL),
    (slc::FORW2, V::VEOL2),
];

/// The terminal's modes as the machine sees them.
pub fn modes_of(t: &TerminalModes) -> Modes {
    let mut chars = [None; 19];
    let mut supported = 0u32;
    for &(f, v) in CHARS {
        chars[usize::from(f)] = t.control_char(v);
        supported |= 1 << f;
    }
    Modes {
        canonical: t.canonical(),
        echo: t.echo(),
        signals: t.signals(),
        flow_control: t.flow_control()
            && t.control_char(V::VSTART) == Some(0x11)
            && t.control_char(V::VSTOP) == Some(0x13),
        restart_any: t.restart_any(),
        icrnl: t
            .termios()
            .input_flags
            .contains(nix::sys::termios::InputFlags::ICRNL),
        chars,
        supported,
    }
}

/// The relay's filter.
pub struct TelnetFilter {
    pub state: State,
    /// The terminal's modes as last read (reading them is a system call,
    /// made only when a command or an event needs them).
    modes: Modes,
    /// External processing is off for an end of file (see
    /// `Outputs::end_of_file`): back on at the next event.
    resume_external: bool,
    /// When the modes were last read for LFLOW (see FLOW_CHECK).
    flow_checked: Option<Instant>,
}

impl TelnetFilter {
    pub fn new(state: State, modes: Modes) -> TelnetFilter {
        TelnetFilter {
            state,
            modes,
            resume_external: false,
            flow_checked: None,
        }
    }

    /// LFLOW outside LINEMODE: the restart mode (IXANY) as it is now,
    /// told to the client before the output that follows the change.
    fn check_flow(&mut self, output_len: usize, out: &mut Outputs) {
        if !self.state.remote(crate::telnet::opt::LFLOW) || self.state.linemode() {
            return;
        }
        let now = Instant::now();
        let due = output_len <= SMALL_OUTPUT
            || self
                .flow_checked
                .is_none_or(|t| now.duration_since(t) >= FLOW_CHECK);
        if !due || out.network_room() < super::state::REPLY_ROOM {
            return;
        }
        self.flow_checked = Some(now);
        self.refresh(out);
        let update = self.state.flow(&self.modes);
        if !update.is_empty() && !out.reply(&update) {
            log::debug!("no room for LFLOW");
        }
    }

    /// After an end of file, external processing back on once the program
    /// has read it (it writes again, or the client types again), and the
    /// client told what changed meanwhile.
    fn resume(&mut self, out: &mut Outputs) {
        if !self.resume_external {
            return;
        }
        self.resume_external = false;
        if let Err(e) = out.set_external_processing(true) {
            log::debug!("external processing back on: {e}");
        }
        self.refresh(out);
        let update = self.state.modes_update(&self.modes);
        if !update.is_empty() && !out.reply(&update) {
            log::debug!("no room for the modes update");
        }
    }

    fn refresh(&mut self, out: &mut Outputs) {
        match out.terminal_modes() {
            Ok(m) => {
                // In LINEMODE external processing must stay on, but on
                // Linux it is a termios flag like the others: a program
                // that restores modes it saved earlier clears it.
                if self.state.linemode() && !self.resume_external && !m.external_processing() {
                    log::debug!("external processing cleared by the program: set again");
                    if let Err(e) = out.set_external_processing(true) {
                        log::debug!("external processing: {e}");
                    }
                }
                self.modes = modes_of(&m);
            }
            Err(e) => log::debug!("reading the terminal's modes: {e}"),
        }
    }
}

/// The machine's sink over the relay's outputs.
struct RelaySink<'o, 'a> {
    out: &'o mut Outputs<'a>,
    /// Modes changed by an effect: read them again.
    changed: bool,
    /// External processing was turned off for an end of file.
    paused: bool,
}

impl Sink for RelaySink<'_, '_> {
    fn terminal_room(&self) -> usize {
        self.out.terminal_room()
    }

    fn terminal(&mut self, bytes: &[u8]) -> bool {
        self.out.to_terminal(bytes)
    }

    fn network_room(&self) -> usize {
        self.out.network_room()
    }

    fn data(&mut self, bytes: &[u8]) -> bool {
        self.out.to_network(bytes)
    }

    fn reply(&mut self, bytes: &[u8]) -> bool {
        self.out.reply(bytes)
    }

    fn urgent(&mut self, byte: u8) -> bool {
        self.out.urgent(byte)
    }

    fn effect(&mut self, effect: Effect) {
        let result = match &effect {
            Effect::Signal(sig) => self.out.signal(*sig),
            Effect::Resize { rows, cols } => self.out.resize(WindowSize::new(*rows, *cols)),
            Effect::DiscardOutput => {
                self.out.discard_output();
                Ok(())
            }
            Effect::ExternalProcessing(on) => {
                self.changed = true;
                self.out.set_external_processing(*on)
            }
            Effect::EndOfFile => self.out.end_of_file().map(|paused| self.paused |= paused),
            Effect::SetModes(change) => {
                self.changed = true;
                self.out.terminal_modes().and_then(|mut m| {
                    let t = m.termios_mut();
                    if let Some(on) = change.canonical {
                        t.local_flags.set(LocalFlags::ICANON, on);
                    }
                    if let Some(on) = change.signals {
                        t.local_flags.set(LocalFlags::ISIG, on);
                    }
                    for &(f, c) in &change.chars {
                        if let Some(&(_, v)) = CHARS.iter().find(|(g, _)| *g == f) {
                            t.control_chars[v as usize] = c;
                        }
                    }
                    self.out.set_terminal_modes(&m)
                })
            }
        };
        if let Err(e) = result {
            log::debug!("{effect:?}: {e}");
        }
    }
}

impl Filter for TelnetFilter {
    fn on_network(&mut self, input: &[u8], urgent: UrgentMark, out: &mut Outputs) -> usize {
        self.resume(out);
        // Data alone needs no modes (but LINEMODE's line discipline does);
        // commands may.
        if self.state.linemode() || input.contains(&crate::telnet::IAC) {
            self.refresh(out);
        }
        let ctx = Context {
            now: Instant::now(),
            modes: self.modes,
        };
        let mut sink = RelaySink {
            out,
            changed: false,
            paused: false,
        };
        let n = self.state.receive(input, urgent, &ctx, &mut sink);
        let (changed, paused) = (sink.changed, sink.paused);
        self.resume_external |= paused;
        if changed {
            self.refresh(out);
        }
        n
    }

    fn on_terminal(&mut self, output: &[u8], out: &mut Outputs) -> usize {
        self.resume(out);
        self.check_flow(output.len(), out);
        let mut sink = RelaySink {
            out,
            changed: false,
            paused: false,
        };
        self.state.output(output, &mut sink)
    }

    fn on_packet_control(&mut self, control: PacketControl, out: &mut Outputs) {
        // (Not a moment to resume external processing: turning it off
        // for an end of file is itself announced by a packet.)
        self.refresh(out);
        let modes = self.modes;
        let mut sink = RelaySink {
            out,
            changed: false,
            paused: false,
        };
        self.state.packet(control.0, &modes, &mut sink);
    }
}

/// Relay between the client and the terminal of `master` until either
/// ends. `opening` (the session's first negotiation) goes out first,
/// `typed` (what the client typed before the terminal) to the terminal,
/// `unread` (client bytes not yet through the machine) to the filter.
#[allow(clippy::too_many_arguments)]
pub fn run(
    tcp: &mut TcpStream,
    master: BorrowedFd,
    child: ChildWatch,
    mut state: State,
    typed: &[u8],
    unread: &[u8],
    idle: Option<Duration>,
) -> io::Result<pty::Outcome> {
    let modes = modes_of(&TerminalModes::of(master)?);
    let opening = state.start_session(&modes);
    tcp.write_all(&opening)?;
    if !typed.is_empty() {
        // A fresh terminal takes a few KiB without blocking.
        let _ = nix::unistd::write(master, typed);
    }
    let mut filter = TelnetFilter::new(state, modes);
    let config = pty::RelayConfig {
        buffer_size: RELAY_BUFFER,
        packet_mode: true,
        idle_timeout: idle.filter(|d| !d.is_zero()),
        ..pty::RelayConfig::default()
    };
    // The relay holds a session for as long as it lasts, mostly idle: the
    // memory the login and the start of the session freed goes back.
    crate::sys::release_free_memory();
    pty::relay_with_typeahead(tcp, master, child, &mut filter, &config, unread)
}
