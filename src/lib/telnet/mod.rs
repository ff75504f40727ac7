#![forbid(unsafe_code)]
//! The TELNET codec, pure and reusable: the byte stream of RFC 854 cut
//! into tokens (`parser`), option negotiation by the Q method of RFC 1143
//! (`options`), the subnegotiations this suite speaks (`sub`), and the
//! NVT's end-of-line rules (`nvt`). No sockets, no clock: bytes in,
//! tokens and bytes out. telnetd builds its session on it; ftpd's control
//! connection could strip its IAC sequences with the same parser.

pub mod nvt;
pub mod options;
pub mod parser;
pub mod sub;

pub use options::{Options, Policy, Verb};
pub use parser::{Parser, Token};

/// Interpret As Command: every TELNET command starts with it.
pub const IAC: u8 = 255;
pub const DONT: u8 = 254;
pub const DO: u8 = 253;
pub const WONT: u8 = 252;
pub const WILL: u8 = 251;
/// Subnegotiation begins.
pub const SB: u8 = 250;
/// Go ahead.
pub const GA: u8 = 249;
/// Erase line.
pub const EL: u8 = 248;
/// Erase character.
pub const EC: u8 = 247;
/// Are you there.
pub const AYT: u8 = 246;
/// Abort output.
pub const AO: u8 = 245;
/// Interrupt process.
pub const IP: u8 = 244;
/// Break.
pub const BRK: u8 = 243;
/// Data mark: the end of a SYNCH, sent as TCP urgent data.
pub const DM: u8 = 242;
pub const NOP: u8 = 241;
/// Subnegotiation ends.
pub const SE: u8 = 240;
/// End of record (RFC 885).
pub const EOR: u8 = 239;
/// Abort process (RFC 1184).
pub const ABORT: u8 = 238;
/// Suspend process (RFC 1184).
pub const SUSP: u8 = 237;
/// End of file (RFC 1184).
pub const XEOF: u8 = 236;

/// Option codes (the IANA TELNET options registry).
pub mod opt {
    pub const BINARY: u8 = 0;
    pub const ECHO: u8 = 1;
    pub const SGA: u8 = 3;
    pub const STATUS: u8 = 5;
    pub const TM: u8 = 6;
    pub const LOGOUT: u8 = 18;
    pub const TTYPE: u8 = 24;
    pub const EOR: u8 = 25;
    pub const NAWS: u8 = 31;
    pub const TSPEED: u8 = 32;
    pub const LFLOW: u8 = 33;
    pub const LINEMODE: u8 = 34;
    pub const XDISPLOC: u8 = 35;
    pub const OLD_ENVIRON: u8 = 36;
    pub const AUTHENTICATION: u8 = 37;
    pub const ENCRYPT: u8 = 38;
    pub const NEW_ENVIRON: u8 = 39;
}

/// Fuzz entry point of the codec (target `telnet`): the tokenizer's
/// parse-write-parse round trip and invariants on the input, and two Q
/// method peers negotiating what the input asks of them.
pub fn fuzz_telnet(data: &[u8]) {
    parser::fuzz_round_trip(data);
    options::fuzz_peers(data);
}

/// An option's name for the debug log.
pub fn option_name(option: u8) -> String {
    let name = match option {
        opt::BINARY => "BINARY",
        opt::ECHO => "ECHO",
        opt::SGA => "SGA",
        opt::STATUS => "STATUS",
        opt::TM => "TIMING-MARK",
        opt::LOGOUT => "LOGOUT",
        opt::TTYPE => "TTYPE",
        opt::EOR => "EOR",
        opt::NAWS => "NAWS",
        opt::TSPEED => "TSPEED",
        opt::LFLOW => "LFLOW",
        opt::LINEMODE => "LINEMODE",
        opt::XDISPLOC => "XDISPLOC",
        opt::OLD_ENVIRON => "OLD-ENVIRON",
        opt::AUTHENTICATION => "AUTHENTICATION",
        opt::ENCRYPT => "ENCRYPT",
        opt::NEW_ENVIRON => "NEW-ENVIRON",
        _ => return format!("option {option}"),
    };
    name.to_string()
}

/// A command's name for the debug log.
pub fn command_name(command: u8) -> String {
    let name = match command {
        GA => "GA",
        EL => "EL",
        EC => "EC",
        AYT => "AYT",
        AO => "AO",
        IP => "IP",
        BRK => "BRK",
        DM => "DM",
        NOP => "NOP",
        EOR => "EOR",
        ABORT => "ABORT",
        SUSP => "SUSP",
        XEOF => "EOF",
        _ => return format!("command {command}"),
    };
    name.to_string()
}
