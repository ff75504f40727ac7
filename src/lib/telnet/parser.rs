//! The TELNET byte stream cut into tokens (RFC 854, 855): runs of data,
//! commands, option negotiations and subnegotiations. Streaming: the input
//! may be split anywhere, and the parser keeps what it needs between
//! calls. Bounded: a subnegotiation keeps at most `MAX_SUBNEGOTIATION`
//! bytes, the rest is counted and dropped, and the whole of it is consumed
//! whatever its length (it never reaches the terminal).
//!
//! A data token never changes the parser's state, so a caller that can
//! take only part of a data run may hand the rest back in the next call
//! (that is how the relay's back-pressure reaches the codec).

use super::options::Verb;
use super::{DO, DONT, IAC, SB, SE, WILL, WONT};

/// The longest subnegotiation kept (payload, after IAC IAC is undone).
/// NEW-ENVIRON lists are the longest a client sends us; 1 KiB is ample.
pub const MAX_SUBNEGOTIATION: usize = 1024;

/// One unit of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Token<'i, 'p> {
    /// Bytes for the other side, never containing IAC (IAC IAC gives a
    /// one-byte run of 255). Borrowed from the input.
    Data(&'i [u8]),
    /// IAC followed by a command byte (NOP, DM, BRK, IP, AO, AYT, EC, EL,
    /// GA, EOR, ABORT, SUSP, EOF, or a byte no RFC defines).
    Command(u8),
    /// IAC WILL/WONT/DO/DONT option.
    Negotiate(Verb, u8),
    /// IAC SB option payload IAC SE, IAC IAC undone in the payload
    /// (borrowed from the parser).
    Subnegotiation { option: u8, payload: &'p [u8] },
    /// A subnegotiation longer than `MAX_SUBNEGOTIATION`: consumed whole,
    /// its payload dropped.
    SubnegotiationTooLong { option: u8, length: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT.
    Verb(Verb),
    /// After IAC SB: the option code comes next.
    SbOption,
    /// Inside a subnegotiation's payload.
    Sb,
    /// After IAC inside a subnegotiation.
    SbIac,
}

/// The streaming tokenizer.
#[derive(Clone, Debug)]
pub struct Parser {
    state: State,
    sb_option: u8,
    sb: Vec<u8>,
    /// Payload bytes seen, kept or not.
    sb_length: usize,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

const IAC_BYTE: &[u8] = &[IAC];

impl Parser {
    pub fn new() -> Parser {
        Parser {
            state: State::Data,
            sb_option: 0,
            sb: Vec::new(),
            sb_length: 0,
        }
    }

    /// Whether the parser is between tokens in plain data (no IAC
    /// sequence or subnegotiation is half read).
    pub fn in_data(&self) -> bool {
        self.state == State::Data
    }

    /// Read from `input` up to the next complete token. Returns how many
    /// bytes were consumed and the token, or None when the input ran out
    /// (everything consumed, state kept for the next call). A token may
    /// come with nothing consumed: a subnegotiation that an IAC and a
    /// command end instead of IAC SE, when the command byte is the first
    /// of `input`; the next call reads that byte.
    pub fn next<'p, 'i>(&'p mut self, input: &'i [u8]) -> (usize, Option<Token<'i, 'p>>) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Data => {
                    if b == IAC {
                        self.state = State::Iac;
                        i += 1;
                        continue;
                    }
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == IAC)
                        .map_or(input.len(), |p| i + p);
                    return (run, Some(Token::Data(&input[i..run])));
                }
                State::Iac => {
                    i += 1;
                    match b {
                        IAC => {
                            self.state = State::Data;
                            return (i, Some(Token::Data(IAC_BYTE)));
                        }
                        WILL | WONT | DO | DONT => {
                            let verb = match b {
                                WILL => Verb::Will,
                                WONT => Verb::Wont,
                                DO => Verb::Do,
                                _ => Verb::Dont,
                            };
                            self.state = State::Verb(verb);
                        }
                        SB => self.state = State::SbOption,
                        _ => {
                            self.state = State::Data;
                            return (i, Some(Token::Command(b)));
                        }
                    }
                }
                State::Verb(verb) => {
                    self.state = State::Data;
                    return (i + 1, Some(Token::Negotiate(verb, b)));
                }
                State::SbOption => {
                    i += 1;
                    self.sb_option = b;
                    self.sb.clear();
                    self.sb_length = 0;
                    self.state = State::Sb;
                }
                State::Sb => {
                    // The payload up to the next IAC, in one go.
                    let end = input[i..]
                        .iter()
                        .position(|&c| c == IAC)
                        .map_or(input.len(), |p| i + p);
                    self.keep(&input[i..end]);
                    i = end;
                    if i < input.len() {
                        self.state = State::SbIac;
                        i += 1;
                    }
                }
                State::SbIac => match b {
                    IAC => {
                        self.keep(&[IAC]);
                        self.state = State::Sb;
                        i += 1;
                    }
                    SE => {
                        self.state = State::Data;
                        return (i + 1, Some(self.finished()));
                    }
                    _ => {
                        // IAC and a command inside a subnegotiation: a
                        // client that forgot the SE. The subnegotiation
                        // ends here and the command is read next, as the
                        // BSD servers do (never as payload, never as data).
                        self.state = State::Iac;
                        return (i, Some(self.finished()));
                    }
                },
            }
        }
        (i, None)
    }

    fn keep(&mut self, bytes: &[u8]) {
        self.sb_length = self.sb_length.saturating_add(bytes.len());
        let room = MAX_SUBNEGOTIATION.saturating_sub(self.sb.len());
        self.sb.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finished<'i>(&self) -> Token<'i, '_> {
        if self.sb_length > MAX_SUBNEGOTIATION {
            Token::SubnegotiationTooLong {
                option: self.sb_option,
                length: self.sb_length,
            }
        } else {
            Token::Subnegotiation {
                option: self.sb_option,
                payload: &self.sb,
            }
        }
    }
}

impl Token<'_, '_> {
    /// The token's wire form: IAC doubled in data and payloads, a
    /// subnegotiation closed by IAC SE. False (nothing written) for a
    /// subnegotiation too long to have been kept.
    pub fn write(&self, out: &mut Vec<u8>) -> bool {
        match *self {
            Token::Data(d) => escape_iac(d, out),
            Token::Command(c) => out.extend_from_slice(&[IAC, c]),
            Token::Negotiate(verb, option) => out.extend_from_slice(&verb.command(option)),
            Token::Subnegotiation { option, payload } => {
                out.extend_from_slice(&[IAC, SB, option]);
                escape_iac(payload, out);
                out.extend_from_slice(&[IAC, SE]);
            }
            Token::SubnegotiationTooLong { .. } => return false,
        }
        true
    }
}

/// Double every IAC of `bytes` (data or a subnegotiation's payload).
pub fn escape_iac(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.split_inclusive(|&b| b == IAC) {
        out.extend_from_slice(chunk);
        if chunk.last() == Some(&IAC) {
            out.push(IAC);
        }
    }
}

/// Fuzz entry point: tokenize arbitrary bytes, split at every position
/// the input's first byte picks, and check the invariants (data never
/// holds IAC, payloads stay bounded, the same tokens whatever the split).
pub fn fuzz_parser(data: &[u8]) {
    let whole = tokens(data, usize::MAX);
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let split = tokens(data, step);
    assert_eq!(whole, split, "the tokens depend on how the input is split");
}

/// Fuzz entry point: parse, write the tokens back, parse again. The
/// tokens must come back the same (a too-long subnegotiation is written
/// with as many filler bytes), and writing them again gives the same
/// bytes: the wire form is canonical. Also checks `fuzz_parser`'s
/// invariants on both.
pub fn fuzz_round_trip(data: &[u8]) {
    fuzz_parser(data);
    let first = rewrite(data);
    fuzz_parser(&first);
    assert_eq!(
        tokens(data, usize::MAX),
        tokens(&first, usize::MAX),
        "the tokens change when written back"
    );
    assert_eq!(rewrite(&first), first, "the written form is not canonical");
}

/// Every complete token of `data`, written back.
pub fn rewrite(data: &[u8]) -> Vec<u8> {
    let mut p = Parser::new();
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut rest = data;
    while !rest.is_empty() {
        let (n, token) = p.next(rest);
        if let Some(t) = token {
            if let Token::SubnegotiationTooLong { option, length } = t {
                out.extend_from_slice(&[IAC, SB, option]);
                out.resize(out.len() + length, 0);
                out.extend_from_slice(&[IAC, SE]);
            } else {
                assert!(t.write(&mut out));
            }
        }
        rest = &rest[n..];
    }
    out
}

/// Tokenize `data` fed in pieces of `step` bytes, as owned summaries;
/// adjacent data runs are merged (a split may cut one in two).
fn tokens(data: &[u8], step: usize) -> Vec<(u8, Vec<u8>)> {
    let mut p = Parser::new();
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut empty_before = false;
    for piece in data.chunks(step.min(data.len().max(1))) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (n, token) = p.next(rest);
            assert!(n <= rest.len());
            let summary = match token {
                Some(Token::Data(d)) => {
                    assert!(!d.is_empty() && (d == [IAC] || !d.contains(&IAC)));
                    if let Some((0, prev)) = out.last_mut() {
                        prev.extend_from_slice(d);
                        rest = &rest[n..];
                        continue;
                    }
                    Some((0, d.to_vec()))
                }
                Some(Token::Command(c)) => Some((1, vec![c])),
                Some(Token::Negotiate(v, o)) => Some((2, vec![v as u8, o])),
                Some(Token::Subnegotiation { option, payload }) => {
                    assert!(payload.len() <= MAX_SUBNEGOTIATION);
                    let mut v = vec![option];
                    v.extend_from_slice(payload);
                    Some((3, v))
                }
                Some(Token::SubnegotiationTooLong { option, .. }) => Some((4, vec![option])),
                None => None,
            };
            // A token may come having consumed nothing (the command byte
            // that ended a subnegotiation without SE, first in this
            // piece, is read again by the next call); never twice so.
            let progress = n > 0 || summary.is_some();
            assert!(progress || rest.is_empty(), "no progress");
            assert!(n > 0 || !empty_before, "two calls consumed nothing");
            empty_before = n == 0;
            if let Some(s) = summary {
                out.push(s);
            }
            rest = &rest[n..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::{AYT, DM, EC, IP, NOP};

    /// Found by fuzzing (target telnet): fed a byte at a time, a LINEMODE
    /// subnegotiation that IAC WILL ends (no SE) gives its token with the
    /// WILL byte not yet consumed; the split-invariance check took that
    /// for no progress.
    #[test]
    fn a_subnegotiation_ended_by_a_command_split_before_the_command() {
        let crash = [
            0x01, 0x05, 0x01, 0x05, 0x09, 0xff, 0xfb, 0x22, 0xff, 0xfa, 0x22, 0x01, 0x03, 0xff,
            0xf0, 0xff, 0xfa, 0x22, 0x3a, 0x03, 0x01, 0x02, 0x7f, 0x03, 0x02, 0x03, 0x00, 0x01,
            0x07, 0x03, 0x68, 0x17, 0x09, 0xff, 0xfb, 0x0a, 0x22, 0xff, 0xfa, 0x22, 0x01, 0x03,
            0xff, 0xf0, 0xff, 0xfa, 0x22, 0x3a, 0x02, 0x03, 0x01, 0x02, 0x7f, 0x17, 0x03, 0x02,
            0x03, 0x00, 0x01, 0x07, 0x03, 0x68, 0x17, 0x0a, 0x02, 0x17,
        ];
        crate::telnet::fuzz_telnet(&crash);
        // The bare case: IAC at the end of one piece, WILL first in the next.
        let mut p = Parser::new();
        assert_eq!(p.next(&[IAC, SB, 34, 1, 3, IAC]), (6, None));
        let (n, t) = p.next(&[WILL, 5]);
        assert_eq!(n, 0);
        assert_eq!(
            t,
            Some(Token::Subnegotiation {
                option: 34,
                payload: &[1, 3]
            })
        );
        assert_eq!(
            p.next(&[WILL, 5]),
            (2, Some(Token::Negotiate(Verb::Will, 5)))
        );
    }

    #[test]
    fn tokens_are_written_back_in_canonical_form() {
        // Data with an IAC, a command, a negotiation, a subnegotiation
        // with an IAC in its payload, one cut short by a command (no SE),
        // and an unfinished one at the end (not written).
        let input = [
            b'a', IAC, IAC, b'b', IAC, AYT, IAC, WILL, 24, IAC, SB, 24, 0, IAC, IAC, 1, IAC, SE,
            IAC, SB, 31, 0, 80, IAC, NOP, IAC, SB, 39, 1,
        ];
        let out = rewrite(&input);
        assert_eq!(
            out,
            [
                b'a', IAC, IAC, b'b', IAC, AYT, IAC, WILL, 24, IAC, SB, 24, 0, IAC, IAC, 1, IAC,
                SE, IAC, SB, 31, 0, 80, IAC, SE, IAC, NOP
            ]
        );
        assert_eq!(rewrite(&out), out);
        fuzz_round_trip(&input);
        // Too long: the same length comes back.
        let mut long = vec![IAC, SB, 39];
        long.extend(std::iter::repeat_n(7u8, MAX_SUBNEGOTIATION + 5));
        long.extend_from_slice(&[IAC, SE]);
        fuzz_round_trip(&long);
    }

    /// Every token of `input`, owned.
    fn all(p: &mut Parser, input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let (n, t) = p.next(rest);
            match t {
                Some(t) => out.push(format!("{t:?}")),
                None => {
                    assert_eq!(n, rest.len());
                    return out;
                }
            }
            rest = &rest[n..];
        }
    }

    #[test]
    fn data_runs_stop_at_iac() {
        let mut p = Parser::new();
        let (n, t) = p.next(b"hello\xff\xf4world");
        assert_eq!((n, t), (5, Some(Token::Data(b"hello"))));
        assert_eq!(
            all(&mut p, b"\xff\xf4world"),
            ["Command(244)", "Data([119, 111, 114, 108, 100])"]
        );
    }

    #[test]
    fn doubled_iac_is_one_data_byte() {
        let mut p = Parser::new();
        assert_eq!(
            all(&mut p, b"a\xff\xffb"),
            ["Data([97])", "Data([255])", "Data([98])"]
        );
    }

    #[test]
    fn negotiations_and_commands() {
        let mut p = Parser::new();
        let got = all(
            &mut p,
            &[IAC, WILL, 24, IAC, DONT, 1, IAC, NOP, IAC, AYT, IAC, 7],
        );
        assert_eq!(
            got,
            [
                "Negotiate(Will, 24)",
                "Negotiate(Dont, 1)",
                "Command(241)",
                "Command(246)",
                "Command(7)"
            ]
        );
    }

    #[test]
    fn every_split_gives_the_same_tokens() {
        let input = [
            b'x', IAC, IAC, IAC, SB, 31, 0, 80, 0, 24, IAC, SE, b'y', IAC, DO, 3, IAC, SB, 24, 0,
            b'V', IAC, IAC, b'T', IAC, SE, IAC, DM,
        ];
        let whole = tokens(&input, usize::MAX);
        for step in 1..input.len() {
            assert_eq!(tokens(&input, step), whole, "split every {step}");
        }
        assert_eq!(whole[1], (3, vec![31, 0, 80, 0, 24]));
        assert_eq!(whole[4], (3, vec![24, 0, b'V', IAC, b'T']));
        assert_eq!(whole[5], (1, vec![DM]));
    }

    #[test]
    fn a_subnegotiation_is_never_data() {
        let mut p = Parser::new();
        let got = all(&mut p, b"\xff\xfa\x26secret keys\xff\xf0after");
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("Subnegotiation { option: 38"));
        assert_eq!(got[1], "Data([97, 102, 116, 101, 114])");
    }

    #[test]
    fn long_subnegotiations_are_consumed_and_dropped() {
        let mut input = vec![IAC, SB, 39];
        input.extend(std::iter::repeat_n(b'A', 100_000));
        input.extend_from_slice(&[IAC, SE, b'z']);
        let mut p = Parser::new();
        let got = all(&mut p, &input);
        assert_eq!(
            got,
            [
                "SubnegotiationTooLong { option: 39, length: 100000 }",
                "Data([122])"
            ]
        );
        // The kept part never grew past the bound.
        assert!(p.sb.capacity() <= 4 * MAX_SUBNEGOTIATION);
    }

    #[test]
    fn exactly_the_bound_is_kept() {
        let mut input = vec![IAC, SB, 39];
        input.extend(std::iter::repeat_n(b'A', MAX_SUBNEGOTIATION));
        input.extend_from_slice(&[IAC, SE]);
        let mut p = Parser::new();
        let (_, t) = p.next(&input);
        match t {
            Some(Token::Subnegotiation {
                option: 39,
                payload,
            }) => {
                assert_eq!(payload.len(), MAX_SUBNEGOTIATION)
            }
            t => panic!("{t:?}"),
        }
    }

    #[test]
    fn a_command_ends_an_unterminated_subnegotiation() {
        let mut p = Parser::new();
        let got = all(&mut p, &[IAC, SB, 24, 0, b'x', IAC, IP, b'q']);
        assert_eq!(
            got,
            [
                "Subnegotiation { option: 24, payload: [0, 120] }",
                "Command(244)",
                "Data([113])"
            ]
        );
    }

    #[test]
    fn state_is_kept_across_calls() {
        let mut p = Parser::new();
        assert_eq!(p.next(&[b'a', IAC]), (1, Some(Token::Data(b"a"))));
        assert_eq!(p.next(&[IAC]), (1, None));
        assert!(!p.in_data());
        assert_eq!(p.next(&[EC, b'b']), (1, Some(Token::Command(EC))));
        assert!(p.in_data());
    }

    #[test]
    fn escaping_doubles_iac() {
        let mut out = Vec::new();
        escape_iac(&[1, IAC, 2, IAC, IAC], &mut out);
        assert_eq!(out, [1, IAC, IAC, 2, IAC, IAC, IAC, IAC]);
    }

    #[test]
    fn fuzz_entry_survives_random_input() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Plenty of IAC and command bytes.
                    if seed.is_multiple_of(3) {
                        240 + (seed >> 8) as u8 % 16
                    } else {
                        (seed >> 16) as u8
                    }
                })
                .collect();
            fuzz_parser(&data);
        }
    }
}
