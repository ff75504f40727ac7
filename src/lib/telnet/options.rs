//! Option negotiation that never loops: the Q method of RFC 1143. Each
//! option has two sides, ours ("us": WILL/WONT we send, DO/DONT we hear)
//! and the client's ("him": DO/DONT we send, WILL/WONT we hear), each in
//! one of NO, YES, WANTNO, WANTYES with a one-bit queue. A side answers a
//! request only when it changes state, so two implementations of this
//! method can never ping-pong, whatever either sends.
//!
//! What we agree to is a `Policy`: which options we will do ourselves and
//! which we let the client do. Everything else gets WONT/DONT.

use super::{DO, DONT, IAC, WILL, WONT};

/// A negotiation verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Will = 0,
    Wont = 1,
    Do = 2,
    Dont = 3,
}

impl Verb {
    pub fn byte(self) -> u8 {
        match self {
            Verb::Will => WILL,
            Verb::Wont => WONT,
            Verb::Do => DO,
            Verb::Dont => DONT,
        }
    }

    /// The three bytes on the wire.
    pub fn command(self, option: u8) -> [u8; 3] {
        [IAC, self.byte(), option]
    }
}

/// The state of one side of one option (RFC 1143).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Q {
    #[default]
    No,
    Yes,
    WantNo,
    WantYes,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Side {
    q: Q,
    /// The queue bit: OPPOSITE when set.
    opposite: bool,
}

/// Which options each side may have enabled, as two 256-bit sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    local: [u64; 4],
    remote: [u64; 4],
}

fn bit(set: &[u64; 4], option: u8) -> bool {
    set[usize::from(option / 64)] & (1 << (option % 64)) != 0
}

fn set_bit(set: &mut [u64; 4], option: u8, on: bool) {
    let word = &mut set[usize::from(option / 64)];
    if on {
        *word |= 1 << (option % 64);
    } else {
        *word &= !(1 << (option % 64));
    }
}

impl Policy {
    /// We agree to perform `options` (answer DO with WILL).
    pub fn local(mut self, options: &[u8]) -> Policy {
        for &o in options {
            set_bit(&mut self.local, o, true);
        }
        self
    }

    /// We let the client perform `options` (answer WILL with DO).
    pub fn remote(mut self, options: &[u8]) -> Policy {
        for &o in options {
            set_bit(&mut self.remote, o, true);
        }
        self
    }

    pub fn allows_local(&self, option: u8) -> bool {
        bit(&self.local, option)
    }

    pub fn allows_remote(&self, option: u8) -> bool {
        bit(&self.remote, option)
    }

    /// Let the client perform `option`, or no longer.
    pub fn set_remote(&mut self, option: u8, on: bool) {
        set_bit(&mut self.remote, option, on);
    }
}

/// What a received negotiation changed: an option turned on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Our side of the option (we now do it, or no longer).
    Local(u8, bool),
    /// The client's side.
    Remote(u8, bool),
}

/// The answer to a received negotiation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Send this.
    pub reply: Option<(Verb, u8)>,
    /// The option's state changed.
    pub change: Option<Change>,
}

/// Every option's two sides, and what we agree to.
#[derive(Clone, Debug)]
pub struct Options {
    us: Box<[Side; 256]>,
    him: Box<[Side; 256]>,
    pub policy: Policy,
}

impl Options {
    pub fn new(policy: Policy) -> Options {
        Options {
            us: Box::new([Side::default(); 256]),
            him: Box::new([Side::default(); 256]),
            policy,
        }
    }

    /// We perform `option` now.
    pub fn local(&self, option: u8) -> bool {
        self.us[usize::from(option)].q == Q::Yes
    }

    /// The client performs `option` now.
    pub fn remote(&self, option: u8) -> bool {
        self.him[usize::from(option)].q == Q::Yes
    }

    /// A request of ours about `option` is unanswered.
    pub fn pending(&self, option: u8) -> bool {
        let busy = |s: &Side| matches!(s.q, Q::WantNo | Q::WantYes);
        busy(&self.us[usize::from(option)]) || busy(&self.him[usize::from(option)])
    }

    /// Whether we asked the client to enable `option` and await the answer.
    pub fn remote_wanted(&self, option: u8) -> bool {
        self.him[usize::from(option)].q == Q::WantYes
    }

    /// A negotiation from the client.
    pub fn receive(&mut self, verb: Verb, option: u8) -> Outcome {
        let i = usize::from(option);
        let (side, agree, yes, no, change): (_, _, _, _, fn(u8, bool) -> Change) = match verb {
            Verb::Will | Verb::Wont => (
                &mut self.him[i],
                self.policy.allows_remote(option),
                Verb::Do,
                Verb::Dont,
                Change::Remote,
            ),
            Verb::Do | Verb::Dont => (
                &mut self.us[i],
                self.policy.allows_local(option),
                Verb::Will,
                Verb::Wont,
                Change::Local,
            ),
        };
        let before = side.q == Q::Yes;
        let reply = match verb {
            Verb::Will | Verb::Do => receive_yes(side, agree, yes, no),
            Verb::Wont | Verb::Dont => receive_no(side, yes, no),
        };
        let after = side.q == Q::Yes;
        Outcome {
            reply: reply.map(|v| (v, option)),
            change: (before != after).then(|| change(option, after)),
        }
    }

    /// Ask to perform `option` ourselves (WILL); None: nothing to send.
    pub fn enable_local(&mut self, option: u8) -> Option<(Verb, u8)> {
        ask_yes(&mut self.us[usize::from(option)], option, Verb::Will)
    }

    /// Stop performing `option` (WONT).
    pub fn disable_local(&mut self, option: u8) -> Option<(Verb, u8)> {
        ask_no(&mut self.us[usize::from(option)], option, Verb::Wont)
    }

    /// Ask the client to perform `option` (DO).
    pub fn enable_remote(&mut self, option: u8) -> Option<(Verb, u8)> {
        ask_yes(&mut self.him[usize::from(option)], option, Verb::Do)
    }

    /// Ask the client to stop performing `option` (DONT).
    pub fn disable_remote(&mut self, option: u8) -> Option<(Verb, u8)> {
        ask_no(&mut self.him[usize::from(option)], option, Verb::Dont)
    }

    /// Every option's state in two bytes each, for the ones not at rest in
    /// NO (a hand-over between processes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for o in 0..=255u8 {
            let (u, h) = (self.us[usize::from(o)], self.him[usize::from(o)]);
            if u != Side::default() || h != Side::default() {
                out.push(o);
                out.push(side_byte(u) | side_byte(h) << 4);
            }
        }
        out
    }

    /// The reverse of `encode`; None when malformed.
    pub fn decode(bytes: &[u8], policy: Policy) -> Option<Options> {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let mut o = Options::new(policy);
        for pair in bytes.chunks(2) {
            let i = usize::from(pair[0]);
            o.us[i] = byte_side(pair[1] & 0x0f)?;
            o.him[i] = byte_side(pair[1] >> 4)?;
        }
        Some(o)
    }
}

/// Fuzz entry point: two peers that both negotiate by the Q method, with
/// policies and requests taken from the input, exchange what they send
/// (each direction in order, as TCP delivers it), requests interleaved
/// with deliveries. However the requests cross, the exchange ends within
/// a bound proportional to the requests (no loop), and at rest nothing
/// is pending and both agree on every option: what one does, the other
/// knows it does.
pub fn fuzz_peers(data: &[u8]) {
    use std::collections::VecDeque;
    const OPTIONS: u8 = 8;
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let policy = |at: usize| {
        let mut p = Policy::default();
        for o in 0..OPTIONS {
            if byte(at) & (1 << o) != 0 {
                p = p.local(&[o]);
            }
            if byte(at + 1) & (1 << o) != 0 {
                p = p.remote(&[o]);
            }
        }
        p
    };
    let mut peers = [Options::new(policy(0)), Options::new(policy(2))];
    // wire[i]: what peer i sent, not yet delivered to the other.
    let mut wire: [VecDeque<(Verb, u8)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut delivered = 0usize;
    let deliver = |peers: &mut [Options; 2], wire: &mut [VecDeque<(Verb, u8)>; 2], from: usize| {
        let Some((verb, option)) = wire[from].pop_front() else {
            return false;
        };
        let to = 1 - from;
        if let Some(reply) = peers[to].receive(verb, option).reply {
            wire[to].push_back(reply);
        }
        true
    };
    let requests = data.get(4..).unwrap_or_default();
    for pair in requests.chunks(2) {
        let (op, option) = (pair[0], pair.get(1).copied().unwrap_or(0) % OPTIONS);
        let who = usize::from(op & 1);
        let sent = match (op >> 1) & 3 {
            0 => peers[who].enable_local(option),
            1 => peers[who].disable_local(option),
            2 => peers[who].enable_remote(option),
            _ => peers[who].disable_remote(option),
        };
        if let Some(m) = sent {
            wire[who].push_back(m);
        }
        // Then up to 3 deliveries, from either side.
        for k in 0..(op >> 3) & 3 {
            if deliver(&mut peers, &mut wire, usize::from((op >> (5 + k)) & 1)) {
                delivered += 1;
            }
        }
    }
    // Quiesce: deliver everything, alternating sides.
    let bound = 4 * requests.len() + 8;
    let mut side = 0;
    while !wire[0].is_empty() || !wire[1].is_empty() {
        if deliver(&mut peers, &mut wire, side) {
            delivered += 1;
        }
        side = 1 - side;
        assert!(delivered <= bound, "the negotiation does not end");
    }
    for o in 0..=255u8 {
        assert!(
            !peers[0].pending(o) && !peers[1].pending(o),
            "option {o} pending at rest"
        );
        assert_eq!(
            peers[0].local(o),
            peers[1].remote(o),
            "option {o}: the peers disagree"
        );
        assert_eq!(
            peers[0].remote(o),
            peers[1].local(o),
            "option {o}: the peers disagree"
        );
    }
}

fn side_byte(s: Side) -> u8 {
    let q = match s.q {
        Q::No => 0,
        Q::Yes => 1,
        Q::WantNo => 2,
        Q::WantYes => 3,
    };
    q | u8::from(s.opposite) << 2
}

fn byte_side(b: u8) -> Option<Side> {
    if b > 7 {
        return None;
    }
    let q = match b & 3 {
        0 => Q::No,
        1 => Q::Yes,
        2 => Q::WantNo,
        _ => Q::WantYes,
    };
    Some(Side {
        q,
        opposite: b & 4 != 0,
    })
}

/// WILL (for the client's side) or DO (for ours) arrived: the new state,
/// and what to answer.
fn receive_yes(side: &mut Side, agree: bool, yes: Verb, no: Verb) -> Option<Verb> {
    match (side.q, side.opposite) {
        (Q::No, _) if agree => {
            side.q = Q::Yes;
            Some(yes)
        }
        (Q::No, _) => Some(no),
        (Q::Yes, _) => None,
        // A refusal answered by an acceptance: a broken peer. Settle on NO.
        (Q::WantNo, false) => {
            side.q = Q::No;
            None
        }
        (Q::WantNo, true) => {
            side.q = Q::Yes;
            side.opposite = false;
            None
        }
        (Q::WantYes, false) => {
            side.q = Q::Yes;
            None
        }
        (Q::WantYes, true) => {
            side.q = Q::WantNo;
            side.opposite = false;
            Some(no)
        }
    }
}

/// WONT (for the client's side) or DONT (for ours) arrived.
fn receive_no(side: &mut Side, yes: Verb, no: Verb) -> Option<Verb> {
    match (side.q, side.opposite) {
        (Q::No, _) => None,
        (Q::Yes, _) => {
            side.q = Q::No;
            Some(no)
        }
        (Q::WantNo, false) => {
            side.q = Q::No;
            None
        }
        (Q::WantNo, true) => {
            side.q = Q::WantYes;
            side.opposite = false;
            Some(yes)
        }
        (Q::WantYes, _) => {
            side.q = Q::No;
            side.opposite = false;
            None
        }
    }
}

fn ask_yes(side: &mut Side, option: u8, yes: Verb) -> Option<(Verb, u8)> {
    match (side.q, side.opposite) {
        (Q::No, _) => {
            side.q = Q::WantYes;
            Some((yes, option))
        }
        (Q::WantNo, false) => {
            side.opposite = true;
            None
        }
        (Q::WantYes, true) => {
            side.opposite = false;
            None
        }
        // Already on, or already asked for.
        _ => None,
    }
}

fn ask_no(side: &mut Side, option: u8, no: Verb) -> Option<(Verb, u8)> {
    match (side.q, side.opposite) {
        (Q::Yes, _) => {
            side.q = Q::WantNo;
            Some((no, option))
        }
        (Q::WantYes, false) => {
            side.opposite = true;
            None
        }
        (Q::WantNo, true) => {
            side.opposite = false;
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::opt;

    #[test]
    fn two_q_method_peers_always_settle_and_agree() {
        // Crossing requests: both ask for the same side of option 1 at
        // once, one turns it off while its request is in flight.
        fuzz_peers(&[0xff, 0xff, 0xff, 0xff, 0, 1, 5, 1, 2, 1, 0b11000, 1]);
        // Nobody agrees to anything, everybody asks.
        fuzz_peers(&[0, 0, 0, 0, 0, 1, 1, 1, 4, 2, 5, 2, 6, 3, 7, 3]);
        // Many more, from a fixed pseudo-random sequence.
        let mut x: u32 = 0x2545_f491;
        for _ in 0..20_000 {
            let mut input = Vec::new();
            for _ in 0..(x % 40 + 4) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                input.push(x as u8);
            }
            fuzz_peers(&input);
        }
    }

    fn server() -> Options {
        Options::new(
            Policy::default()
                .local(&[opt::ECHO, opt::SGA])
                .remote(&[opt::NAWS, opt::TTYPE]),
        )
    }

    #[test]
    fn accepted_and_refused_requests() {
        let mut o = server();
        let out = o.receive(Verb::Will, opt::NAWS);
        assert_eq!(out.reply, Some((Verb::Do, opt::NAWS)));
        assert_eq!(out.change, Some(Change::Remote(opt::NAWS, true)));
        assert!(o.remote(opt::NAWS));
        // Said again: no answer (that is what ends loops).
        assert_eq!(o.receive(Verb::Will, opt::NAWS), Outcome::default());
        // Not in the policy: refused, state unchanged.
        let out = o.receive(Verb::Will, opt::ENCRYPT);
        assert_eq!(out.reply, Some((Verb::Dont, opt::ENCRYPT)));
        assert!(!o.remote(opt::ENCRYPT));
        let out = o.receive(Verb::Do, opt::ECHO);
        assert_eq!(out.reply, Some((Verb::Will, opt::ECHO)));
        let out = o.receive(Verb::Do, opt::AUTHENTICATION);
        assert_eq!(out.reply, Some((Verb::Wont, opt::AUTHENTICATION)));
    }

    #[test]
    fn our_requests_and_their_answers() {
        let mut o = server();
        assert_eq!(o.enable_remote(opt::TTYPE), Some((Verb::Do, opt::TTYPE)));
        assert!(o.pending(opt::TTYPE) && o.remote_wanted(opt::TTYPE));
        // Asking twice sends nothing more.
        assert_eq!(o.enable_remote(opt::TTYPE), None);
        // The acceptance is not answered.
        let out = o.receive(Verb::Will, opt::TTYPE);
        assert_eq!(out.reply, None);
        assert_eq!(out.change, Some(Change::Remote(opt::TTYPE, true)));
        assert!(!o.pending(opt::TTYPE));
        // A refusal of a request is not answered either.
        assert_eq!(o.enable_local(opt::SGA), Some((Verb::Will, opt::SGA)));
        assert_eq!(o.receive(Verb::Dont, opt::SGA), Outcome::default());
        assert!(!o.local(opt::SGA) && !o.pending(opt::SGA));
    }

    #[test]
    fn turning_off_is_acknowledged_once() {
        let mut o = server();
        o.receive(Verb::Do, opt::ECHO);
        let out = o.receive(Verb::Dont, opt::ECHO);
        assert_eq!(out.reply, Some((Verb::Wont, opt::ECHO)));
        assert_eq!(out.change, Some(Change::Local(opt::ECHO, false)));
        assert_eq!(o.receive(Verb::Dont, opt::ECHO), Outcome::default());
        assert_eq!(o.disable_local(opt::ECHO), None);
    }

    #[test]
    fn the_queue_bit_reverses_a_pending_request() {
        let mut o = server();
        o.receive(Verb::Do, opt::ECHO);
        assert_eq!(o.disable_local(opt::ECHO), Some((Verb::Wont, opt::ECHO)));
        // Change of mind while the WONT is unanswered: queued, not sent.
        assert_eq!(o.enable_local(opt::ECHO), None);
        // The DONT answers the WONT; the queued request goes out now.
        let out = o.receive(Verb::Dont, opt::ECHO);
        assert_eq!(out.reply, Some((Verb::Will, opt::ECHO)));
        assert!(o.pending(opt::ECHO));
        assert_eq!(o.receive(Verb::Do, opt::ECHO).reply, None);
        assert!(o.local(opt::ECHO));
    }

    #[test]
    fn two_q_method_peers_never_loop() {
        // Both sides refuse everything and answer each other for a while:
        // every exchange must die out.
        let mut a = Options::new(Policy::default());
        let mut b = Options::new(Policy::default().remote(&[1]).local(&[1]));
        let mut wire: Vec<(bool, Verb, u8)> = vec![];
        for o in 0..8u8 {
            if let Some((v, x)) = a.enable_remote(o) {
                wire.push((true, v, x));
            }
            if let Some((v, x)) = a.enable_local(o) {
                wire.push((true, v, x));
            }
        }
        let mut steps = 0;
        while let Some((from_a, v, o)) = wire.pop() {
            steps += 1;
            assert!(steps < 100, "negotiation loops");
            let out = if from_a {
                b.receive(v, o)
            } else {
                a.receive(v, o)
            };
            if let Some((v, x)) = out.reply {
                wire.push((!from_a, v, x));
            }
        }
        assert!(a.local(1) && a.remote(1) || !a.pending(1));
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut o = server();
        o.receive(Verb::Do, opt::ECHO);
        o.enable_remote(opt::TTYPE);
        let bytes = o.encode();
        let p = Options::decode(&bytes, o.policy).unwrap();
        assert!(p.local(opt::ECHO) && p.remote_wanted(opt::TTYPE));
        assert_eq!(p.encode(), bytes);
        assert!(Options::decode(&[1], o.policy).is_none());
        assert!(Options::decode(&[1, 0x88], o.policy).is_none());
    }
}
