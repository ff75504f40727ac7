//! LINEMODE (RFC 1184) on the server side: the client edits lines itself
//! while the terminal is canonical, and the terminal's modes and control
//! characters are mirrored to it as MODE and SLC (Set Local Characters).
//! The terminal is the authority: its termios decides the mode, and what
//! the client proposes for a control character is written back into the
//! termios (so `stty erase` and the client's erase key agree).
//!
//! Bounded: whatever the client sends, one reply holds at most one triplet
//! per function we know (18); unknown functions get no answer (an
//! inetutils server once answered each one, into a fixed buffer:
//! CVE-2026-32746). FORWARDMASK is refused.

use crate::telnet::sub::{self, lm};

/// SLC functions (RFC 1184 section 2.4).
pub mod slc {
    pub const SYNCH: u8 = 1;
    pub const BRK: u8 = 2;
    pub const IP: u8 = 3;
    pub const AO: u8 = 4;
    pub const AYT: u8 = 5;
    pub const EOR: u8 = 6;
    pub const ABORT: u8 = 7;
    pub const EOF: u8 = 8;
    pub const SUSP: u8 = 9;
    pub const EC: u8 = 10;
    pub const EL: u8 = 11;
    pub const EW: u8 = 12;
    pub const RP: u8 = 13;
    pub const LNEXT: u8 = 14;
    pub const XON: u8 = 15;
    pub const XOFF: u8 = 16;
    pub const FORW1: u8 = 17;
    pub const FORW2: u8 = 18;
    /// The highest function we know.
    pub const MAX: u8 = 18;

    pub const NOSUPPORT: u8 = 0;
    pub const CANTCHANGE: u8 = 1;
    pub const VALUE: u8 = 2;
    pub const DEFAULT: u8 = 3;
    pub const LEVELBITS: u8 = 3;
    pub const ACK: u8 = 128;
    pub const FLUSHIN: u8 = 64;
    pub const FLUSHOUT: u8 = 32;
}

/// The terminal's modes, as far as TELNET mirrors them (the session reads
/// them from the terminal's termios).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    /// ICANON: lines are edited.
    pub canonical: bool,
    /// ECHO.
    pub echo: bool,
    /// ISIG: INTR, QUIT, SUSP raise signals.
    pub signals: bool,
    /// IXON with ^S and ^Q: output flow control is the terminal's.
    pub flow_control: bool,
    /// IXANY: any character restarts output.
    pub restart_any: bool,
    /// ICRNL: a CR typed is a newline.
    pub icrnl: bool,
    /// The control character of each SLC function (index: the function
    /// code), None when disabled or not a character on this system.
    pub chars: [Option<u8>; 19],
    /// The functions this terminal has a control character for (bit n:
    /// function n), whether set or disabled now.
    pub supported: u32,
}

impl Modes {
    /// What the login prompt behaves like before there is a terminal: a
    /// canonical, echoing, signalling line with the usual characters.
    pub fn login_prompt() -> Modes {
        let mut chars = [None; 19];
        chars[usize::from(slc::IP)] = Some(0x03);
        chars[usize::from(slc::ABORT)] = Some(0x1c);
        chars[usize::from(slc::EOF)] = Some(0x04);
        chars[usize::from(slc::SUSP)] = Some(0x1a);
        chars[usize::from(slc::EC)] = Some(0x7f);
        chars[usize::from(slc::EL)] = Some(0x15);
        Modes {
            canonical: true,
            echo: true,
            signals: true,
            flow_control: false,
            restart_any: false,
            icrnl: true,
            chars,
            supported: 0,
        }
    }

    pub fn char(&self, function: u8) -> Option<u8> {
        self.chars.get(usize::from(function)).copied().flatten()
    }

    fn supports(&self, function: u8) -> bool {
        function <= slc::MAX && self.supported & (1 << function) != 0
    }

    /// The MODE mask the terminal calls for.
    pub fn mode(&self) -> u8 {
        (if self.canonical { lm::EDIT } else { 0 }) | (if self.signals { lm::TRAPSIG } else { 0 })
    }

    /// Our SLC entry for `function`: level and flags, value.
    fn entry(&self, function: u8) -> (u8, u8) {
        match self.char(function) {
            Some(c) if self.supports(function) => (slc::VALUE | flush_flags(function), c),
            _ => (slc::NOSUPPORT, 0),
        }
    }
}

/// What the client's interrupt keys flush (RFC 1184 section 5.8).
fn flush_flags(function: u8) -> u8 {
    match function {
        slc::IP | slc::ABORT | slc::BRK => slc::FLUSHIN | slc::FLUSHOUT,
        slc::SUSP => slc::FLUSHIN,
        slc::AO => slc::FLUSHOUT,
        _ => 0,
    }
}

/// Changes to make to the terminal's modes at the client's request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeChange {
    pub canonical: Option<bool>,
    pub signals: Option<bool>,
    /// (SLC function, new character).
    pub chars: Vec<(u8, u8)>,
}

impl ModeChange {
    pub fn is_empty(&self) -> bool {
        self.canonical.is_none() && self.signals.is_none() && self.chars.is_empty()
    }
}

/// The server's LINEMODE state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linemode {
    /// The client does LINEMODE.
    pub active: bool,
    /// The MODE last sent or agreed.
    mode: Option<u8>,
    /// The SLC entry last sent or agreed, per function.
    sent: [Option<(u8, u8)>; 19],
}

/// At most one triplet per function, in function order.
#[derive(Default)]
struct Reply([Option<(u8, u8)>; 19]);

impl Reply {
    fn set(&mut self, function: u8, flags: u8, value: u8) {
        self.0[usize::from(function)] = Some((flags, value));
    }

    fn bytes(&self) -> Vec<u8> {
        let triplets: Vec<(u8, u8, u8)> = (1..=slc::MAX)
            .filter_map(|f| self.0[usize::from(f)].map(|(fl, v)| (f, fl, v)))
            .collect();
        if triplets.is_empty() {
            Vec::new()
        } else {
            sub::linemode_slc(&triplets)
        }
    }
}

impl Linemode {
    /// The client agreed to LINEMODE: our MODE and our whole SLC table.
    pub fn start(&mut self, modes: &Modes) -> Vec<u8> {
        self.active = true;
        self.mode = None;
        self.sent = [None; 19];
        self.update(modes)
    }

    /// The client stopped LINEMODE.
    pub fn stop(&mut self) {
        *self = Linemode::default();
    }

    /// The terminal's modes may have changed: MODE and SLC for what did.
    pub fn update(&mut self, modes: &Modes) -> Vec<u8> {
        if !self.active {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mode = modes.mode();
        if self.mode != Some(mode) {
            self.mode = Some(mode);
            out.extend(sub::linemode_mode(mode));
        }
        let mut reply = Reply::default();
        for f in 1..=slc::MAX {
            let entry = modes.entry(f);
            if self.sent[usize::from(f)] != Some(entry) {
                self.sent[usize::from(f)] = Some(entry);
                reply.set(f, entry.0, entry.1);
            }
        }
        out.extend(reply.bytes());
        out
    }

    /// The client's MODE: a change it asks for (no ACK) or agrees to
    /// (ACK). Returns what to answer and what to change on the terminal.
    pub fn client_mode(&mut self, mask: u8) -> (Vec<u8>, ModeChange) {
        if !self.active {
            return (Vec::new(), ModeChange::default());
        }
        let ack = mask & lm::MODE_ACK != 0;
        let wanted = mask & (lm::EDIT | lm::TRAPSIG);
        if self.mode == Some(wanted) {
            return (Vec::new(), ModeChange::default());
        }
        self.mode = Some(wanted);
        let change = ModeChange {
            canonical: Some(wanted & lm::EDIT != 0),
            signals: Some(wanted & lm::TRAPSIG != 0),
            chars: Vec::new(),
        };
        let reply = if ack {
            Vec::new()
        } else {
            sub::linemode_mode(wanted | lm::MODE_ACK)
        };
        (reply, change)
    }

    /// The client's SLC triplets. Returns the one reply (bounded) and the
    /// control characters to set on the terminal.
    pub fn client_slc(
        &mut self,
        triplets: &[(u8, u8, u8)],
        modes: &Modes,
    ) -> (Vec<u8>, ModeChange) {
        let mut reply = Reply::default();
        let mut change = ModeChange::default();
        if !self.active {
            return (Vec::new(), change);
        }
        for &(function, flags, value) in triplets {
            let level = flags & slc::LEVELBITS;
            if function == 0 {
                // "0 DEFAULT 0" or "0 VALUE 0": send the whole table.
                if level == slc::DEFAULT || level == slc::VALUE {
                    for f in 1..=slc::MAX {
                        let (fl, v) = current(modes, &change, f);
                        self.sent[usize::from(f)] = Some((fl, v));
                        reply.set(f, fl, v);
                    }
                }
                continue;
            }
            // Unknown functions: no answer (bounded), and acknowledgements
            // need none.
            if function > slc::MAX || flags & slc::ACK != 0 {
                continue;
            }
            match level {
                slc::NOSUPPORT => reply.set(function, slc::NOSUPPORT | slc::ACK, 0),
                slc::DEFAULT => {
                    let (fl, v) = current(modes, &change, function);
                    self.sent[usize::from(function)] = Some((fl, v));
                    reply.set(function, fl, v);
                }
                _ if modes.supports(function) => {
                    let ours = flush_flags(function);
                    if modes.char(function) != Some(value) {
                        change.chars.retain(|&(f, _)| f != function);
                        change.chars.push((function, value));
                    }
                    self.sent[usize::from(function)] = Some((slc::VALUE | ours, value));
                    reply.set(function, level | ours | slc::ACK, value);
                }
                _ => {
                    self.sent[usize::from(function)] = Some((slc::NOSUPPORT, 0));
                    reply.set(function, slc::NOSUPPORT, 0);
                }
            }
        }
        (reply.bytes(), change)
    }

    /// FORWARDMASK: refused (a WONT for a DO, a DONT for a WILL; nothing
    /// for a refusal).
    pub fn client_forwardmask(&self, verb: u8) -> Vec<u8> {
        match verb {
            crate::telnet::WILL | crate::telnet::DO if self.active => {
                sub::linemode_forwardmask_refusal(verb)
            }
            _ => Vec::new(),
        }
    }
}

/// Our entry for `function`, counting changes agreed in this message.
fn current(modes: &Modes, change: &ModeChange, function: u8) -> (u8, u8) {
    match change.chars.iter().find(|(f, _)| *f == function) {
        Some(&(_, v)) => (slc::VALUE | flush_flags(function), v),
        None => modes.entry(function),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::{IAC, SB, SE};

    fn terminal() -> Modes {
        let mut m = Modes::login_prompt();
        m.chars[usize::from(slc::EW)] = Some(0x17);
        m.chars[usize::from(slc::XON)] = Some(0x11);
        m.chars[usize::from(slc::XOFF)] = Some(0x13);
        for f in [
            slc::IP,
            slc::AO,
            slc::ABORT,
            slc::EOF,
            slc::SUSP,
            slc::EC,
            slc::EL,
            slc::EW,
            slc::RP,
            slc::LNEXT,
            slc::XON,
            slc::XOFF,
            slc::FORW1,
            slc::FORW2,
        ] {
            m.supported |= 1 << f;
        }
        m
    }

    /// The triplets of an SLC message.
    fn triplets(bytes: &[u8]) -> Vec<(u8, u8, u8)> {
        let start = bytes
            .windows(4)
            .position(|w| w == [IAC, SB, 34, lm::SLC])
            .expect("an SLC message");
        let end = bytes[start..]
            .windows(2)
            .position(|w| w == [IAC, SE])
            .unwrap()
            + start;
        let payload = &bytes[start + 4..end];
        payload.chunks(3).map(|t| (t[0], t[1], t[2])).collect()
    }

    #[test]
    fn start_sends_mode_and_the_table() {
        let mut l = Linemode::default();
        let out = l.start(&terminal());
        assert_eq!(
            &out[..7],
            &[IAC, SB, 34, lm::MODE, lm::EDIT | lm::TRAPSIG, IAC, SE]
        );
        let t = triplets(&out);
        assert_eq!(t.len(), 18);
        assert!(t.contains(&(slc::IP, slc::VALUE | slc::FLUSHIN | slc::FLUSHOUT, 3)));
        assert!(t.contains(&(slc::EC, slc::VALUE, 0x7f)));
        assert!(t.contains(&(slc::SYNCH, slc::NOSUPPORT, 0)));
        // Nothing changed, nothing sent.
        assert!(l.update(&terminal()).is_empty());
    }

    #[test]
    fn terminal_changes_are_mirrored() {
        let mut l = Linemode::default();
        l.start(&terminal());
        let mut raw = terminal();
        raw.canonical = false;
        raw.chars[usize::from(slc::EC)] = Some(0x08);
        let out = l.update(&raw);
        assert_eq!(&out[..7], &[IAC, SB, 34, lm::MODE, lm::TRAPSIG, IAC, SE]);
        assert_eq!(triplets(&out), [(slc::EC, slc::VALUE, 0x08)]);
    }

    #[test]
    fn client_mode_requests_change_the_terminal() {
        let mut l = Linemode::default();
        l.start(&terminal());
        let (reply, change) = l.client_mode(lm::EDIT);
        assert_eq!(reply, sub::linemode_mode(lm::EDIT | lm::MODE_ACK));
        assert_eq!(change.canonical, Some(true));
        assert_eq!(change.signals, Some(false));
        // An ACK of the current mode needs nothing.
        let (reply, change) = l.client_mode(lm::EDIT | lm::MODE_ACK);
        assert!(reply.is_empty() && change.is_empty());
        // Outside LINEMODE: ignored.
        let mut off = Linemode::default();
        assert!(off.client_mode(lm::EDIT).1.is_empty());
    }

    #[test]
    fn client_slc_values_are_taken_and_acknowledged() {
        let mut l = Linemode::default();
        l.start(&terminal());
        let (reply, change) = l.client_slc(
            &[
                (slc::EC, slc::VALUE, 0x08),
                (slc::AYT, slc::VALUE, 0x14),
                (slc::IP, slc::DEFAULT, 0),
            ],
            &terminal(),
        );
        assert_eq!(change.chars, [(slc::EC, 0x08)]);
        assert_eq!(
            triplets(&reply),
            [
                (slc::IP, slc::VALUE | slc::FLUSHIN | slc::FLUSHOUT, 3),
                (slc::AYT, slc::NOSUPPORT, 0),
                (slc::EC, slc::VALUE | slc::ACK, 0x08),
            ]
        );
        // The terminal now has ^H: the mirror has nothing more to say.
        let mut after = terminal();
        after.chars[usize::from(slc::EC)] = Some(0x08);
        assert!(l.update(&after).is_empty());
    }

    #[test]
    fn forty_unknown_triplets_get_a_bounded_reply() {
        // CVE-2026-32746: each unknown function used to add to the reply.
        let mut l = Linemode::default();
        l.start(&terminal());
        let many: Vec<(u8, u8, u8)> = (0..40).map(|i| (100 + i, slc::VALUE, i)).collect();
        let (reply, change) = l.client_slc(&many, &terminal());
        assert!(reply.is_empty() && change.is_empty());
        // Every known function many times over: one triplet each at most.
        let mut flood = Vec::new();
        for _ in 0..50 {
            for f in 0..=255u8 {
                flood.push((f, slc::VALUE, 1));
            }
        }
        let (reply, _) = l.client_slc(&flood, &terminal());
        assert!(triplets(&reply).len() <= 18);
        assert!(reply.len() < 128);
    }

    #[test]
    fn whole_table_on_request() {
        let mut l = Linemode::default();
        l.start(&terminal());
        let (reply, _) = l.client_slc(&[(0, slc::DEFAULT, 0)], &terminal());
        assert_eq!(triplets(&reply).len(), 18);
        let (reply, _) = l.client_slc(&[(0, slc::NOSUPPORT, 0)], &terminal());
        assert!(reply.is_empty());
    }

    #[test]
    fn acks_and_nosupport() {
        let mut l = Linemode::default();
        l.start(&terminal());
        let (reply, change) = l.client_slc(&[(slc::EC, slc::VALUE | slc::ACK, 0x7f)], &terminal());
        assert!(reply.is_empty() && change.is_empty());
        let (reply, change) = l.client_slc(&[(slc::LNEXT, slc::NOSUPPORT, 0)], &terminal());
        assert!(change.is_empty());
        assert_eq!(
            triplets(&reply),
            [(slc::LNEXT, slc::NOSUPPORT | slc::ACK, 0)]
        );
    }

    #[test]
    fn forwardmask_is_refused() {
        let mut l = Linemode::default();
        l.start(&terminal());
        assert_eq!(
            l.client_forwardmask(crate::telnet::WILL),
            sub::linemode_forwardmask_refusal(crate::telnet::WILL)
        );
        assert!(l.client_forwardmask(crate::telnet::WONT).is_empty());
    }
}
