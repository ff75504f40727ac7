//! The subnegotiations a server hears and says: TTYPE (RFC 1091), NAWS
//! (1073), TSPEED (1079), XDISPLOC (1096), NEW-ENVIRON (1572) and
//! OLD-ENVIRON (1408), LINEMODE (1184), STATUS (859), LFLOW (1372).
//! Decoding takes a payload the parser already bounded and unescaped, and
//! checks every length; encoding escapes IAC and frames with IAC SB/SE.

use super::parser::escape_iac;
use super::{opt, IAC, SB, SE};

/// The qualifiers of TTYPE, TSPEED, XDISPLOC and the environment options.
pub const IS: u8 = 0;
pub const SEND: u8 = 1;
/// NEW-ENVIRON: an unsolicited update.
pub const INFO: u8 = 2;

/// NEW-ENVIRON's markers (RFC 1572).
pub const ENV_VAR: u8 = 0;
pub const ENV_VALUE: u8 = 1;
pub const ENV_ESC: u8 = 2;
pub const ENV_USERVAR: u8 = 3;

/// At most this many variables are taken from one environment message.
pub const MAX_VARIABLES: usize = 32;

/// LINEMODE suboptions and MODE bits (RFC 1184).
pub mod lm {
    pub const MODE: u8 = 1;
    pub const FORWARDMASK: u8 = 2;
    pub const SLC: u8 = 3;
    pub const EDIT: u8 = 1;
    pub const TRAPSIG: u8 = 2;
    pub const MODE_ACK: u8 = 4;
    pub const SOFT_TAB: u8 = 8;
    pub const LIT_ECHO: u8 = 16;
    /// The mode bits a MODE may carry besides ACK.
    pub const MODE_MASK: u8 = EDIT | TRAPSIG | SOFT_TAB | LIT_ECHO;
}

/// LFLOW's commands (RFC 1372).
pub mod lflow {
    pub const OFF: u8 = 0;
    pub const ON: u8 = 1;
    pub const RESTART_ANY: u8 = 2;
    pub const RESTART_XON: u8 = 3;
}

/// Which kind of variable an environment entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarKind {
    /// A well-known variable (USER, DISPLAY, ...).
    Var,
    /// A user-defined one.
    UserVar,
}

/// One entry of an environment message: a name and, if sent, its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub kind: VarKind,
    pub name: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A decoded subnegotiation from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sub {
    /// TTYPE IS name.
    TerminalType(Vec<u8>),
    /// NAWS: width and height (0: unknown).
    WindowSize { width: u16, height: u16 },
    /// TSPEED IS "transmit,receive".
    Speed { transmit: u32, receive: u32 },
    /// XDISPLOC IS "host:display".
    DisplayLocation(Vec<u8>),
    /// NEW-ENVIRON or OLD-ENVIRON IS or INFO.
    Environment {
        info: bool,
        variables: Vec<Variable>,
    },
    /// LINEMODE MODE mask.
    LinemodeMode(u8),
    /// LINEMODE WILL/WONT/DO/DONT FORWARDMASK (the verb byte).
    LinemodeForwardMask(u8),
    /// LINEMODE SLC triplets (function, flags, value).
    LinemodeSlc(Vec<(u8, u8, u8)>),
    /// STATUS SEND.
    StatusSend,
    /// Anything else, well-formed or not, for an option we speak: ignored.
    Ignored,
    /// Malformed for its option (wrong length, unknown qualifier).
    Malformed,
}

/// Decode the payload of a subnegotiation for `option`.
pub fn decode(option: u8, payload: &[u8]) -> Sub {
    let (first, rest) = match payload.split_first() {
        Some((f, r)) => (*f, r),
        None => return Sub::Malformed,
    };
    match option {
        opt::TTYPE if first == IS => Sub::TerminalType(rest.to_vec()),
        opt::XDISPLOC if first == IS => Sub::DisplayLocation(rest.to_vec()),
        opt::TSPEED if first == IS => match parse_speed(rest) {
            Some((transmit, receive)) => Sub::Speed { transmit, receive },
            None => Sub::Malformed,
        },
        opt::NAWS if payload.len() == 4 => Sub::WindowSize {
            width: u16::from_be_bytes([payload[0], payload[1]]),
            height: u16::from_be_bytes([payload[2], payload[3]]),
        },
        opt::NEW_ENVIRON | opt::OLD_ENVIRON if first == IS || first == INFO => {
            let variables = if option == opt::NEW_ENVIRON {
                environment(rest, ENV_VAR, ENV_VALUE)
            } else {
                let (var, value) = old_environ_markers(rest);
                environment(rest, var, value)
            };
            Sub::Environment {
                info: first == INFO,
                variables,
            }
        }
        opt::LINEMODE => match first {
            lm::MODE if rest.len() == 1 => Sub::LinemodeMode(rest[0]),
            super::WILL | super::WONT | super::DO | super::DONT
                if rest.first() == Some(&lm::FORWARDMASK) =>
            {
                Sub::LinemodeForwardMask(first)
            }
            lm::SLC if rest.len() % 3 == 0 => {
                Sub::LinemodeSlc(rest.chunks(3).map(|t| (t[0], t[1], t[2])).collect())
            }
            _ => Sub::Malformed,
        },
        opt::STATUS if first == SEND && rest.is_empty() => Sub::StatusSend,
        opt::TTYPE
        | opt::XDISPLOC
        | opt::TSPEED
        | opt::NAWS
        | opt::NEW_ENVIRON
        | opt::OLD_ENVIRON
        | opt::STATUS => Sub::Malformed,
        _ => Sub::Ignored,
    }
}

fn parse_speed(text: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(text).ok()?;
    let (t, r) = text.split_once(',')?;
    let number = |s: &str| -> Option<u32> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some((number(t)?, number(r)?))
}

/// OLD-ENVIRON's VAR and VALUE codes. RFC 1408 says VAR 0 and VALUE 1,
/// but BSD clients shipped them swapped; a list starts with a variable,
/// so the first of the two seen names the convention (as the BSD servers
/// decide it).
fn old_environ_markers(list: &[u8]) -> (u8, u8) {
    let mut i = 0;
    while i < list.len() {
        match list[i] {
            ENV_ESC => i += 2,
            0 => return (0, 1),
            1 => return (1, 0),
            _ => i += 1,
        }
    }
    (0, 1)
}

/// An environment list: markers, names and values with ESC quoting.
/// Entries past `MAX_VARIABLES` are dropped.
fn environment(list: &[u8], var: u8, value: u8) -> Vec<Variable> {
    #[derive(PartialEq)]
    enum Field {
        None,
        Name,
        Value,
    }
    let mut out: Vec<Variable> = Vec::new();
    let mut field = Field::None;
    let mut i = 0;
    while i < list.len() {
        let b = list[i];
        i += 1;
        let byte = if b == var || b == ENV_USERVAR {
            if out.len() == MAX_VARIABLES {
                break;
            }
            out.push(Variable {
                kind: if b == var {
                    VarKind::Var
                } else {
                    VarKind::UserVar
                },
                name: Vec::new(),
                value: None,
            });
            field = Field::Name;
            continue;
        } else if b == value {
            match out.last_mut() {
                Some(v) if field == Field::Name => {
                    v.value = Some(Vec::new());
                    field = Field::Value;
                }
                // A value with no name, or two values: ignored.
                _ => field = Field::None,
            }
            continue;
        } else if b == ENV_ESC {
            match list.get(i) {
                Some(&next) => {
                    i += 1;
                    next
                }
                None => break,
            }
        } else {
            b
        };
        if let Some(v) = out.last_mut() {
            match field {
                Field::Name => v.name.push(byte),
                Field::Value => v.value.get_or_insert_with(Vec::new).push(byte),
                Field::None => {}
            }
        }
    }
    out
}

/// `IAC SB option payload IAC SE`, IAC in the payload doubled.
pub fn frame(option: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    out.extend_from_slice(&[IAC, SB, option]);
    escape_iac(payload, &mut out);
    out.extend_from_slice(&[IAC, SE]);
    out
}

/// `SB option SEND SE`: TTYPE, TSPEED, XDISPLOC, NEW-ENVIRON, OLD-ENVIRON.
pub fn send(option: u8) -> Vec<u8> {
    frame(option, &[SEND])
}

/// LINEMODE MODE.
pub fn linemode_mode(mask: u8) -> Vec<u8> {
    frame(opt::LINEMODE, &[lm::MODE, mask])
}

/// LINEMODE's refusal of FORWARDMASK: WONT for a DO, DONT for a WILL.
pub fn linemode_forwardmask_refusal(verb: u8) -> Vec<u8> {
    let answer = match verb {
        super::DO => super::WONT,
        _ => super::DONT,
    };
    frame(opt::LINEMODE, &[answer, lm::FORWARDMASK])
}

/// LINEMODE SLC with these triplets.
pub fn linemode_slc(triplets: &[(u8, u8, u8)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + 3 * triplets.len());
    payload.push(lm::SLC);
    for &(f, flags, v) in triplets {
        payload.extend_from_slice(&[f, flags, v]);
    }
    frame(opt::LINEMODE, &payload)
}

/// LFLOW with one command.
pub fn lflow(command: u8) -> Vec<u8> {
    frame(opt::LFLOW, &[command])
}

/// STATUS IS: `WILL o` for each option we perform, `DO o` for each the
/// client does (RFC 859). SE in the list is doubled as the RFC asks.
pub fn status_is(local: &[u8], remote: &[u8]) -> Vec<u8> {
    let mut payload = vec![IS];
    for (verb, options) in [(super::WILL, local), (super::DO, remote)] {
        for &o in options {
            payload.push(verb);
            payload.push(o);
            if o == SE {
                payload.push(SE);
            }
        }
    }
    frame(opt::STATUS, &payload)
}

/// Fuzz entry point: decode arbitrary payloads for every option we speak,
/// and check the bounds the session relies on.
pub fn fuzz_subnegotiation(data: &[u8]) {
    let Some((&option, payload)) = data.split_first() else {
        return;
    };
    let payload = &payload[..payload.len().min(super::parser::MAX_SUBNEGOTIATION)];
    for o in [
        option,
        opt::TTYPE,
        opt::NAWS,
        opt::TSPEED,
        opt::XDISPLOC,
        opt::NEW_ENVIRON,
        opt::OLD_ENVIRON,
        opt::LINEMODE,
        opt::STATUS,
    ] {
        match decode(o, payload) {
            Sub::Environment { variables, .. } => {
                assert!(variables.len() <= MAX_VARIABLES);
                let total: usize = variables
                    .iter()
                    .map(|v| v.name.len() + v.value.as_ref().map_or(0, Vec::len))
                    .sum();
                assert!(total <= payload.len());
            }
            Sub::LinemodeSlc(t) => assert!(3 * t.len() < payload.len()),
            Sub::TerminalType(n) | Sub::DisplayLocation(n) => assert!(n.len() < payload.len()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, value: Option<&str>) -> Variable {
        Variable {
            kind: VarKind::Var,
            name: name.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn terminal_type_and_display() {
        assert_eq!(
            decode(opt::TTYPE, b"\x00XTERM-256COLOR"),
            Sub::TerminalType(b"XTERM-256COLOR".to_vec())
        );
        assert_eq!(decode(opt::TTYPE, b"\x01"), Sub::Malformed);
        assert_eq!(decode(opt::TTYPE, b""), Sub::Malformed);
        assert_eq!(
            decode(opt::XDISPLOC, b"\x00host:0.0"),
            Sub::DisplayLocation(b"host:0.0".to_vec())
        );
    }

    #[test]
    fn window_size() {
        assert_eq!(
            decode(opt::NAWS, &[0, 132, 0, 50]),
            Sub::WindowSize {
                width: 132,
                height: 50
            }
        );
        assert_eq!(
            decode(opt::NAWS, &[1, 0, 255, 255]),
            Sub::WindowSize {
                width: 256,
                height: 65535
            }
        );
        assert_eq!(decode(opt::NAWS, &[0, 80, 0]), Sub::Malformed);
        assert_eq!(decode(opt::NAWS, &[0, 80, 0, 24, 0]), Sub::Malformed);
    }

    #[test]
    fn speed() {
        assert_eq!(
            decode(opt::TSPEED, b"\x0038400,9600"),
            Sub::Speed {
                transmit: 38400,
                receive: 9600
            }
        );
        for bad in [
            &b"\x0038400"[..],
            b"\x00a,b",
            b"\x00,1",
            b"\x001,",
            b"\x001234567890,1",
        ] {
            assert_eq!(decode(opt::TSPEED, bad), Sub::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn new_environ_list() {
        let got = decode(
            opt::NEW_ENVIRON,
            b"\x00\x00USER\x01demo\x00DISPLAY\x01h:0\x03LANG\x01C\x00EMPTY\x01\x00NOVALUE",
        );
        let Sub::Environment { info, variables } = got else {
            panic!("{got:?}")
        };
        assert!(!info);
        assert_eq!(variables[0], var("USER", Some("demo")));
        assert_eq!(variables[1], var("DISPLAY", Some("h:0")));
        assert_eq!(variables[2].kind, VarKind::UserVar);
        assert_eq!(variables[3], var("EMPTY", Some("")));
        assert_eq!(variables[4], var("NOVALUE", None));
    }

    #[test]
    fn esc_quotes_marker_bytes() {
        // USER = "\x01-f root" spelled with ESC before the VALUE byte.
        let got = decode(opt::NEW_ENVIRON, b"\x00\x00US\x02\x00ER\x01\x02\x01-f root");
        let Sub::Environment { variables, .. } = got else {
            panic!()
        };
        assert_eq!(variables, [var("US\0ER", Some("\x01-f root"))]);
        // A trailing ESC ends the list.
        let got = decode(opt::NEW_ENVIRON, b"\x00\x00USER\x02");
        assert!(matches!(got, Sub::Environment { .. }));
    }

    #[test]
    fn info_updates() {
        let got = decode(opt::NEW_ENVIRON, b"\x02\x00DISPLAY\x01x:1");
        assert_eq!(
            got,
            Sub::Environment {
                info: true,
                variables: vec![var("DISPLAY", Some("x:1"))]
            }
        );
        assert_eq!(decode(opt::NEW_ENVIRON, b"\x01"), Sub::Malformed);
    }

    #[test]
    fn old_environ_either_convention() {
        let rfc = decode(opt::OLD_ENVIRON, b"\x00\x00USER\x01demo");
        let bsd = decode(opt::OLD_ENVIRON, b"\x00\x01USER\x00demo");
        assert_eq!(rfc, bsd);
        let Sub::Environment { variables, .. } = bsd else {
            panic!()
        };
        assert_eq!(variables, [var("USER", Some("demo"))]);
    }

    #[test]
    fn variables_are_bounded() {
        let mut list = vec![IS];
        for i in 0..100 {
            list.push(ENV_VAR);
            list.extend_from_slice(format!("V{i}").as_bytes());
        }
        let Sub::Environment { variables, .. } = decode(opt::NEW_ENVIRON, &list) else {
            panic!()
        };
        assert_eq!(variables.len(), MAX_VARIABLES);
    }

    #[test]
    fn linemode_suboptions() {
        assert_eq!(decode(opt::LINEMODE, &[lm::MODE, 7]), Sub::LinemodeMode(7));
        assert_eq!(decode(opt::LINEMODE, &[lm::MODE]), Sub::Malformed);
        assert_eq!(
            decode(opt::LINEMODE, &[super::super::WILL, lm::FORWARDMASK]),
            Sub::LinemodeForwardMask(super::super::WILL)
        );
        assert_eq!(
            decode(opt::LINEMODE, &[lm::SLC, 3, 2, 3, 10, 2, 127]),
            Sub::LinemodeSlc(vec![(3, 2, 3), (10, 2, 127)])
        );
        assert_eq!(decode(opt::LINEMODE, &[lm::SLC, 3, 2]), Sub::Malformed);
        assert_eq!(decode(opt::LINEMODE, &[9]), Sub::Malformed);
    }

    #[test]
    fn status_and_others() {
        assert_eq!(decode(opt::STATUS, &[SEND]), Sub::StatusSend);
        assert_eq!(decode(opt::STATUS, &[IS, 1, 2]), Sub::Malformed);
        assert_eq!(decode(opt::ENCRYPT, b"\x01\x02keys"), Sub::Ignored);
        assert_eq!(decode(opt::ENCRYPT, b""), Sub::Malformed);
    }

    #[test]
    fn encoders_escape_and_frame() {
        assert_eq!(send(opt::TTYPE), [IAC, SB, 24, SEND, IAC, SE]);
        assert_eq!(
            linemode_slc(&[(3, 2, 0xff)]),
            [IAC, SB, 34, lm::SLC, 3, 2, IAC, IAC, IAC, SE]
        );
        assert_eq!(linemode_mode(3), [IAC, SB, 34, 1, 3, IAC, SE]);
        assert_eq!(
            linemode_forwardmask_refusal(super::super::WILL),
            [IAC, SB, 34, super::super::DONT, 2, IAC, SE]
        );
        assert_eq!(lflow(lflow::ON), [IAC, SB, 33, 1, IAC, SE]);
        assert_eq!(
            status_is(&[1, 3], &[31]),
            [
                IAC,
                SB,
                5,
                IS,
                super::super::WILL,
                1,
                super::super::WILL,
                3,
                super::super::DO,
                31,
                IAC,
                SE
            ]
        );
        assert_eq!(
            status_is(&[SE], &[]),
            [IAC, SB, 5, IS, super::super::WILL, SE, SE, IAC, SE]
        );
    }

    #[test]
    fn fuzz_entry_survives_random_input() {
        let mut seed = 7u64;
        for len in 0..300 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let b = (seed >> 33) as u8;
                    if b.is_multiple_of(2) {
                        b % 4
                    } else {
                        b
                    }
                })
                .collect();
            fuzz_subnegotiation(&data);
        }
    }
}
