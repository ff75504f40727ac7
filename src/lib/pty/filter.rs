//! The hook a protocol puts into the relay: one trait with a method per
//! direction (the TELNET codec needs state shared by both, e.g. BINARY),
//! and `Outputs`, everything a filter may do in answer.

use std::io;
use std::os::fd::BorrowedFd;

use nix::sys::signal::Signal;
use nix::sys::termios::{InputFlags, LocalFlags, SpecialCharacterIndices, Termios};

use super::buffer::{Bytes, Kind, Outbound};
use crate::sys;

/// Where client input stands relative to TCP urgent data (TELNET SYNCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrgentMark {
    /// No urgent data is pending.
    None,
    /// The client has sent urgent data whose mark lies beyond this input:
    /// all of it comes before the mark (TELNET: a SYNCH is under way,
    /// discard data, keep commands).
    Ahead,
    /// `input[i]` is the urgent byte itself (TELNET: the DM of `IAC DM`);
    /// everything before it comes before the mark.
    At(usize),
}

/// A packet-mode control byte read from the master (TIOCPKT), telling what
/// happened to the terminal. The bit values are 4.3BSD's, the same on Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketControl(pub u8);

impl PacketControl {
    /// The terminal's input queue was flushed.
    pub const FLUSHREAD: u8 = 0x01;
    /// The terminal's output queue was flushed.
    pub const FLUSHWRITE: u8 = 0x02;
    /// Output was stopped (^S).
    pub const STOP: u8 = 0x04;
    /// Output was restarted (^Q).
    pub const START: u8 = 0x08;
    /// ^S/^Q are no longer flow control (IXON off, or other characters).
    pub const NOSTOP: u8 = 0x10;
    /// ^S/^Q are flow control again (IXON on with the usual characters).
    pub const DOSTOP: u8 = 0x20;
    /// The termios changed while EXTPROC is on (TELNET LINEMODE).
    pub const IOCTL: u8 = 0x40;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A terminal window size; the pixel fields are 0 when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl WindowSize {
    pub fn new(rows: u16, cols: u16) -> WindowSize {
        WindowSize {
            rows,
            cols,
            ..WindowSize::default()
        }
    }
}

/// Tell the terminal of `master` its new window size; the kernel sends
/// SIGWINCH to its foreground process group.
pub fn set_window_size(master: BorrowedFd, size: WindowSize) -> io::Result<()> {
    sys::tty::set_window(
        master,
        &nix::pty::Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: size.xpixel,
            ws_ypixel: size.ypixel,
        },
    )
}

/// The window size of the terminal on `fd` (master or slave).
pub fn window_size(fd: BorrowedFd) -> io::Result<WindowSize> {
    let w = sys::tty::window(fd)?;
    Ok(WindowSize {
        rows: w.ws_row,
        cols: w.ws_col,
        xpixel: w.ws_xpixel,
        ypixel: w.ws_ypixel,
    })
}

/// Turn external processing (EXTPROC) on or off for the terminal of
/// `master`: TELNET LINEMODE leaves line editing to the client, and a
/// master in packet mode then hears of every termios change.
pub fn set_external_processing(master: BorrowedFd, on: bool) -> io::Result<()> {
    sys::tty::set_external_processing(master, on)
}

/// The terminal's current modes as the program on it set them, for a
/// protocol that mirrors them (TELNET LINEMODE, LFLOW, ECHO).
#[derive(Clone)]
pub struct TerminalModes(Termios);

impl TerminalModes {
    /// Read the modes of the terminal whose master is `master`.
    pub fn of(master: BorrowedFd) -> io::Result<TerminalModes> {
        Ok(TerminalModes(nix::sys::termios::tcgetattr(master)?))
    }

    /// Line editing by the terminal (ICANON).
    pub fn canonical(&self) -> bool {
        self.0.local_flags.contains(LocalFlags::ICANON)
    }

    pub fn echo(&self) -> bool {
        self.0.local_flags.contains(LocalFlags::ECHO)
    }

    /// INTR, QUIT and SUSP characters raise signals (ISIG).
    pub fn signals(&self) -> bool {
        self.0.local_flags.contains(LocalFlags::ISIG)
    }

    /// START/STOP characters are flow control (IXON).
    pub fn flow_control(&self) -> bool {
        self.0.input_flags.contains(InputFlags::IXON)
    }

    /// Any character restarts stopped output (IXANY).
    pub fn restart_any(&self) -> bool {
        self.0.input_flags.contains(InputFlags::IXANY)
    }

    /// Line editing is left to the other end (EXTPROC).
    pub fn external_processing(&self) -> bool {
        self.0.local_flags.contains(LocalFlags::EXTPROC)
    }

    /// A control character (VINTR, VERASE, VSTART...), None when disabled.
    pub fn control_char(&self, which: SpecialCharacterIndices) -> Option<u8> {
        let c = self.0.control_chars[which as usize];
        (c != libc::_POSIX_VDISABLE).then_some(c)
    }

    /// Everything else.
    pub fn termios(&self) -> &Termios {
        &self.0
    }

    /// To change modes a protocol mirrors (TELNET LINEMODE's MODE and
    /// SLC), then `Outputs::set_terminal_modes`.
    pub fn termios_mut(&mut self) -> &mut Termios {
        &mut self.0
    }
}

/// Everything a filter may do: put bytes toward the terminal or the
/// network, and act on the terminal. Byte methods take all or nothing and
/// return false when there is no room: the filter then stops and returns
/// what it has consumed, and is called again with the rest once room
/// frees up. That is how back-pressure reaches a protocol.
pub struct Outputs<'a> {
    to_terminal: &'a mut Bytes,
    to_network: &'a mut Outbound,
    master: BorrowedFd<'a>,
    pub(super) discard_requested: bool,
    pub(super) end_requested: bool,
}

impl<'a> Outputs<'a> {
    pub(super) fn new(
        to_terminal: &'a mut Bytes,
        to_network: &'a mut Outbound,
        master: BorrowedFd<'a>,
    ) -> Outputs<'a> {
        Outputs {
            to_terminal,
            to_network,
            master,
            discard_requested: false,
            end_requested: false,
        }
    }

    /// Free space toward the terminal.
    pub fn terminal_room(&self) -> usize {
        self.to_terminal.room()
    }

    /// Free space toward the network (shared by data, replies and urgent).
    pub fn network_room(&self) -> usize {
        self.to_network.room()
    }

    /// Bytes for the program, as if typed.
    #[must_use]
    pub fn to_terminal(&mut self, bytes: &[u8]) -> bool {
        self.to_terminal.push(bytes)
    }

    /// The terminal's output, mapped to the wire; `discard_output` may drop
    /// it while it waits.
    #[must_use]
    pub fn to_network(&mut self, bytes: &[u8]) -> bool {
        self.to_network.push(Kind::Data, bytes)
    }

    /// Protocol bytes for the client (option replies, commands), in order
    /// with the data, never discarded.
    #[must_use]
    pub fn reply(&mut self, bytes: &[u8]) -> bool {
        self.to_network.push(Kind::Protocol, bytes)
    }

    /// One byte sent as TCP urgent data (MSG_OOB) at its place in the
    /// stream: rlogind's packet-mode control bytes, TELNET SYNCH's DM.
    #[must_use]
    pub fn urgent(&mut self, byte: u8) -> bool {
        self.to_network.push(Kind::Urgent, &[byte])
    }

    /// Tell the terminal its new window size (the program gets SIGWINCH).
    pub fn resize(&mut self, size: WindowSize) -> io::Result<()> {
        set_window_size(self.master, size)
    }

    /// Send a signal to the terminal's foreground process group, whatever
    /// its mode (TELNET IP, BRK, SUSP; a program in raw mode gets it too).
    pub fn signal(&mut self, sig: Signal) -> io::Result<()> {
        sys::tty::signal_foreground(self.master, sig)
    }

    /// Drop the terminal output not yet sent to the network (TELNET AO):
    /// what the program wrote and the relay has not read, what it has read
    /// and not filtered, and the data waiting for the socket. Protocol and
    /// urgent bytes stay. Takes effect at once for bytes queued so far.
    pub fn discard_output(&mut self) {
        self.to_network.discard_data();
        // The program's output still in the pty: it is the master's input.
        let _ = nix::sys::termios::tcflush(self.master, nix::sys::termios::FlushArg::TCIFLUSH);
        self.discard_requested = true;
    }

    /// End the session: the relay sends what is queued for the network
    /// (bounded by its drain timeout) and returns `End::Filter`.
    pub fn end(&mut self) {
        self.end_requested = true;
    }

    /// The terminal's current modes (ICANON, ECHO, IXON, control chars).
    pub fn terminal_modes(&self) -> io::Result<TerminalModes> {
        TerminalModes::of(self.master)
    }

    /// Turn external processing (EXTPROC) on or off: TELNET LINEMODE.
    pub fn set_external_processing(&mut self, on: bool) -> io::Result<()> {
        set_external_processing(self.master, on)
    }

    /// End of file for the program, as its terminal's EOF character at
    /// the start of a line gives (TELNET IAC EOF). Under external
    /// processing Linux hands input to the reader uncooked, so the
    /// character alone would be read as a byte: external processing is
    /// turned off and the character written after the input queued before
    /// it, for the line discipline to make it an end of file. Returns true
    /// when external processing was turned off: the caller turns it back
    /// on (`set_external_processing`) once the program has had its end of
    /// file, at the program's next output or the client's next input.
    pub fn end_of_file(&mut self) -> io::Result<bool> {
        let mut modes = self.terminal_modes()?;
        let Some(eof) = modes.control_char(nix::sys::termios::SpecialCharacterIndices::VEOF) else {
            return Ok(false);
        };
        if !modes.external_processing() {
            if !self.to_terminal.push(&[eof]) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            return Ok(false);
        }
        // What was typed before the EOF goes first.
        while !self.to_terminal.is_empty() {
            let n = nix::unistd::write(self.master, self.to_terminal.data())?;
            self.to_terminal.consume(n);
        }
        modes.0.local_flags.remove(LocalFlags::EXTPROC);
        self.set_terminal_modes(&modes)?;
        nix::unistd::write(self.master, &[eof])?;
        Ok(true)
    }

    /// Set the terminal's modes (TELNET LINEMODE: the client's MODE and
    /// control characters), at once.
    pub fn set_terminal_modes(&mut self, modes: &TerminalModes) -> io::Result<()> {
        nix::sys::termios::tcsetattr(self.master, nix::sys::termios::SetArg::TCSANOW, &modes.0)?;
        Ok(())
    }
}

/// The protocol's side of the relay. The defaults pass bytes through
/// unchanged, so a filter implements only what it changes.
pub trait Filter {
    /// Bytes from the client. Return how many of `input` were consumed;
    /// the rest comes back in the next call, with what arrived since. A
    /// filter may leave a short incomplete sequence (half an escape) for
    /// later; it must consume when it has room, or the relay ends with an
    /// error once its buffers are stuck. `urgent` places TCP urgent data.
    fn on_network(&mut self, input: &[u8], urgent: UrgentMark, out: &mut Outputs) -> usize {
        let _ = urgent;
        let n = input.len().min(out.terminal_room());
        let fits = out.to_terminal(&input[..n]);
        debug_assert!(fits);
        n
    }

    /// The client has just sent urgent data (its mark may still be far
    /// ahead in the stream, behind data the relay cannot read yet): the
    /// moment a TELNET SYNCH starts discarding.
    fn on_urgent(&mut self, out: &mut Outputs) {
        let _ = out;
    }

    /// Bytes the program wrote to the terminal. Return how many of
    /// `output` were consumed, as `on_network` does.
    fn on_terminal(&mut self, output: &[u8], out: &mut Outputs) -> usize {
        let n = output.len().min(out.network_room());
        let fits = out.to_network(&output[..n]);
        debug_assert!(fits);
        n
    }

    /// A packet-mode control byte, in order with the terminal's output
    /// (every byte read before it has gone through `on_terminal`). At
    /// least `CONTROL_ROOM` bytes of network room are free.
    fn on_packet_control(&mut self, control: PacketControl, out: &mut Outputs) {
        let _ = (control, out);
    }
}

/// Network room guaranteed to `Filter::on_packet_control`.
pub const CONTROL_ROOM: usize = 512;

/// A filter that changes nothing (rshd-like relays, tests).
pub struct Passthrough;

impl Filter for Passthrough {}
