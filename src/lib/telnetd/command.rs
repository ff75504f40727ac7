//! Bytes from the client to commands: the TELNET tokens of `telnet::parser`
//! with their subnegotiations decoded (`telnet::sub`) and their commands
//! named. No I/O; the reader keeps its state between calls.

use crate::telnet::parser::{Parser, Token};
use crate::telnet::sub::{self, Sub};
use crate::telnet::{self, Verb};

/// A TELNET command (RFC 854, 1184).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Nop,
    /// DM outside a SYNCH (inside one the relay places it).
    DataMark,
    Break,
    InterruptProcess,
    AbortOutput,
    AreYouThere,
    EraseCharacter,
    EraseLine,
    GoAhead,
    EndOfRecord,
    Abort,
    Suspend,
    EndOfFile,
    /// A byte no RFC defines after IAC: ignored.
    Unknown(u8),
}

impl Control {
    pub fn from_byte(b: u8) -> Control {
        match b {
            telnet::NOP => Control::Nop,
            telnet::DM => Control::DataMark,
            telnet::BRK => Control::Break,
            telnet::IP => Control::InterruptProcess,
            telnet::AO => Control::AbortOutput,
            telnet::AYT => Control::AreYouThere,
            telnet::EC => Control::EraseCharacter,
            telnet::EL => Control::EraseLine,
            telnet::GA => Control::GoAhead,
            telnet::EOR => Control::EndOfRecord,
            telnet::ABORT => Control::Abort,
            telnet::SUSP => Control::Suspend,
            telnet::XEOF => Control::EndOfFile,
            other => Control::Unknown(other),
        }
    }
}

/// One command from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Bytes typed (never containing IAC; NVT end-of-line not yet applied).
    Data(&'a [u8]),
    Control(Control),
    Negotiate(Verb, u8),
    /// A subnegotiation, decoded for the options we speak.
    Sub {
        option: u8,
        sub: Sub,
    },
    /// A subnegotiation past the parser's bound: consumed, dropped.
    SubTooLong {
        option: u8,
        length: usize,
    },
}

/// The command reader: a TELNET parser that decodes what it cuts.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    parser: Parser,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Between commands, in plain data: a data command taken only in
    /// part may be handed back.
    pub fn in_data(&self) -> bool {
        self.parser.in_data()
    }

    /// The next command in `input`: bytes consumed and the command, or
    /// None when the input ran out.
    pub fn next<'i>(&mut self, input: &'i [u8]) -> (usize, Option<Command<'i>>) {
        let (n, token) = self.parser.next(input);
        let command = token.map(|t| match t {
            Token::Data(d) => Command::Data(d),
            Token::Command(c) => Command::Control(Control::from_byte(c)),
            Token::Negotiate(v, o) => Command::Negotiate(v, o),
            Token::Subnegotiation { option, payload } => Command::Sub {
                option,
                sub: sub::decode(option, payload),
            },
            Token::SubnegotiationTooLong { option, length } => {
                Command::SubTooLong { option, length }
            }
        });
        (n, command)
    }
}

/// How a command shows in the debug log (never its data).
pub fn describe(c: &Command) -> String {
    match c {
        Command::Data(d) => format!("{} data bytes", d.len()),
        Command::Control(k) => format!("{k:?}"),
        Command::Negotiate(v, o) => format!("{v:?} {}", telnet::option_name(*o)),
        Command::Sub { option, sub } => {
            let what = match sub {
                Sub::Environment { variables, .. } => format!("{} variables", variables.len()),
                Sub::TerminalType(_) => "IS".to_string(),
                Sub::WindowSize { width, height } => format!("{width}x{height}"),
                other => format!("{other:?}").chars().take(40).collect(),
            };
            format!("SB {} {what}", telnet::option_name(*option))
        }
        Command::SubTooLong { option, length } => {
            format!(
                "SB {} of {length} bytes (too long)",
                telnet::option_name(*option)
            )
        }
    }
}

/// Fuzz entry point: read commands from arbitrary bytes.
pub fn fuzz_command(data: &[u8]) {
    let mut r = Reader::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (n, c) = r.next(rest);
        if let Some(c) = &c {
            let _ = describe(c);
        }
        assert!(n > 0 || c.is_none());
        if n == 0 {
            break;
        }
        rest = &rest[n..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::{opt, IAC, SB, SE};

    fn commands(input: &[u8]) -> Vec<String> {
        let mut r = Reader::new();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let (n, c) = r.next(rest);
            match c {
                Some(c) => out.push(describe(&c)),
                None => return out,
            }
            rest = &rest[n..];
        }
    }

    #[test]
    fn every_command_is_named() {
        for (byte, name) in [
            (telnet::NOP, "Nop"),
            (telnet::DM, "DataMark"),
            (telnet::BRK, "Break"),
            (telnet::IP, "InterruptProcess"),
            (telnet::AO, "AbortOutput"),
            (telnet::AYT, "AreYouThere"),
            (telnet::EC, "EraseCharacter"),
            (telnet::EL, "EraseLine"),
            (telnet::GA, "GoAhead"),
            (telnet::EOR, "EndOfRecord"),
            (telnet::ABORT, "Abort"),
            (telnet::SUSP, "Suspend"),
            (telnet::XEOF, "EndOfFile"),
            (7, "Unknown(7)"),
        ] {
            assert_eq!(commands(&[IAC, byte]), [name]);
        }
    }

    #[test]
    fn subnegotiations_are_decoded() {
        let got = commands(&[IAC, SB, opt::NAWS, 0, 80, 0, 24, IAC, SE]);
        assert_eq!(got, ["SB NAWS 80x24"]);
        let got = commands(&[IAC, SB, opt::NEW_ENVIRON, 0, 0, b'U', IAC, SE]);
        assert_eq!(got, ["SB NEW-ENVIRON 1 variables"]);
        let got = commands(b"\xff\xfb\x18ab");
        assert_eq!(got, ["Will TTYPE", "2 data bytes"]);
    }

    #[test]
    fn fuzz_entry_survives_random_input() {
        let mut seed = 99u64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let b = (seed >> 33) as u8;
                    if b.is_multiple_of(3) {
                        0xf0 | (b >> 4)
                    } else {
                        b % 40
                    }
                })
                .collect();
            fuzz_command(&data);
        }
    }
}
