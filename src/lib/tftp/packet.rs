//! TFTP packets (RFC 1350) with options (RFC 2347 to 2349, RFC 7440): parse
//! and build, no I/O.

use std::fmt;

pub const RRQ: u16 = 1;
pub const WRQ: u16 = 2;
pub const DATA: u16 = 3;
pub const ACK: u16 = 4;
pub const ERROR: u16 = 5;
pub const OACK: u16 = 6;

/// RFC 1350 error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    DiskFull = 3,
    IllegalOperation = 4,
    UnknownTransferId = 5,
    FileExists = 6,
    NoSuchUser = 7,
    /// RFC 2347: option negotiation refused.
    BadOptions = 8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Octet,
    NetAscii,
}

/// A read or write request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub write: bool,
    pub filename: String,
    pub mode: Mode,
    /// Options in the order sent, names lower-cased.
    pub options: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Request(Request),
    Data { block: u16, data: &'a [u8] },
    Ack { block: u16 },
    Error { code: u16, message: String },
    OAck(Vec<(String, String)>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Split NUL-terminated strings; every one must be terminated.
fn strings(mut b: &[u8]) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let end = b
            .iter()
            .position(|&c| c == 0)
            .ok_or(ParseError("unterminated string"))?;
        let s = std::str::from_utf8(&b[..end]).map_err(|_| ParseError("string is not UTF-8"))?;
        out.push(s.to_string());
        b = &b[end + 1..];
    }
    Ok(out)
}

pub fn parse(b: &[u8]) -> Result<Packet<'_>, ParseError> {
    if b.len() < 4 {
        return Err(ParseError("packet too short"));
    }
    let op = u16::from_be_bytes([b[0], b[1]]);
    let rest = &b[2..];
    match op {
        RRQ | WRQ => {
            let s = strings(rest)?;
            if s.len() < 2 || s.len() % 2 != 0 {
                return Err(ParseError("malformed request"));
            }
            let mode = match s[1].to_ascii_lowercase().as_str() {
                "octet" => Mode::Octet,
                "netascii" => Mode::NetAscii,
                _ => return Err(ParseError("unsupported transfer mode")),
            };
            if s[0].is_empty() {
                return Err(ParseError("empty file name"));
            }
            let options = s[2..]
                .chunks(2)
                .map(|kv| (kv[0].to_ascii_lowercase(), kv[1].clone()))
                .collect();
            Ok(Packet::Request(Request {
                write: op == WRQ,
                filename: s[0].clone(),
                mode,
                options,
            }))
        }
        DATA => Ok(Packet::Data {
            block: u16::from_be_bytes([rest[0], rest[1]]),
            data: &rest[2..],
        }),
        ACK => Ok(Packet::Ack {
            block: u16::from_be_bytes([rest[0], rest[1]]),
        }),
        ERROR => {
            let code = u16::from_be_bytes([rest[0], rest[1]]);
            let msg = rest[2..].split(|&c| c == 0).next().unwrap_or(&[]);
            Ok(Packet::Error {
                code,
                message: String::from_utf8_lossy(msg).into_owned(),
            })
        }
        OACK => {
            let s = strings(rest)?;
            if s.len() % 2 != 0 {
                return Err(ParseError("malformed option acknowledgement"));
            }
            Ok(Packet::OAck(
                s.chunks(2)
                    .map(|kv| (kv[0].clone(), kv[1].clone()))
                    .collect(),
            ))
        }
        _ => Err(ParseError("unknown opcode")),
    }
}

pub fn data(block: u16, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&DATA.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(payload);
}

pub fn ack(block: u16) -> [u8; 4] {
    let [a, b] = ACK.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&ERROR.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    out.push(0);
    out
}

pub fn oack(options: &[(String, String)]) -> Vec<u8> {
    let mut out = OACK.to_be_bytes().to_vec();
    for (k, v) in options {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// The longest retransmission timeout we agree to, in seconds.
pub const MAX_TIMEOUT: u64 = 30;

/// What the server agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: usize,
    pub timeout_secs: u64,
    pub windowsize: u16,
    /// The client asked for tsize (RFC 2349): answer with the file size.
    pub tsize_requested: bool,
    /// The size a writing client announced.
    pub tsize: Option<u64>,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            blksize: 512,
            timeout_secs: 1,
            windowsize: 1,
            tsize_requested: false,
            tsize: None,
        }
    }
}

/// Accept the options we know within our limits, drop the others (RFC 2347:
/// an option the server does not acknowledge is simply not used).
/// Returns the agreed values and the options to put in the OACK (without
/// tsize, whose value the caller fills in for reads).
pub fn negotiate(
    options: &[(String, String)],
    max_blksize: usize,
    max_windowsize: u16,
) -> (Negotiated, Vec<(String, String)>) {
    let mut n = Negotiated::default();
    let mut ack = Vec::new();
    for (k, v) in options {
        let Ok(num) = v.parse::<u64>() else { continue };
        match k.as_str() {
            "blksize" if (8..=65464).contains(&num) => {
                n.blksize = (num as usize).min(max_blksize.max(8));
                ack.push((k.clone(), n.blksize.to_string()));
            }
            // RFC 2349 allows up to 255 s; we acknowledge at most
            // MAX_TIMEOUT so that one request cannot pin a process for
            // twenty minutes.
            "timeout" if (1..=MAX_TIMEOUT).contains(&num) => {
                n.timeout_secs = num;
                ack.push((k.clone(), num.to_string()));
            }
            "windowsize" if (1..=65535).contains(&num) => {
                n.windowsize = (num as u16).min(max_windowsize.max(1));
                ack.push((k.clone(), n.windowsize.to_string()));
            }
            "tsize" => {
                n.tsize_requested = true;
                n.tsize = Some(num);
            }
            _ => {}
        }
    }
    (n, ack)
}

/// netascii encoding of outgoing data: LF -> CR LF, CR -> CR NUL.
/// `pending_cr` carries state across blocks.
pub fn to_netascii(input: &[u8], out: &mut Vec<u8>) {
    for &b in input {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
}

/// netascii decoding of incoming data: CR LF -> LF, CR NUL -> CR. A CR at
/// the end of a block is held in `pending_cr` until the next block.
pub fn from_netascii(input: &[u8], pending_cr: &mut bool, out: &mut Vec<u8>) {
    for &b in input {
        if *pending_cr {
            *pending_cr = false;
            match b {
                b'\n' => {
                    out.push(b'\n');
                    continue;
                }
                0 => {
                    out.push(b'\r');
                    continue;
                }
                _ => out.push(b'\r'),
            }
        }
        if b == b'\r' {
            *pending_cr = true;
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_with_options() {
        let p = parse(b"\0\x01dir/file.txt\0OCTET\0blksize\x001428\0tsize\x000\0").unwrap();
        let Packet::Request(r) = p else { panic!() };
        assert!(!r.write);
        assert_eq!(r.filename, "dir/file.txt");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(
            r.options,
            vec![
                ("blksize".into(), "1428".into()),
                ("tsize".into(), "0".into())
            ]
        );
        let Packet::Request(w) = parse(b"\0\x02up\0netascii\0").unwrap() else {
            panic!()
        };
        assert!(w.write && w.mode == Mode::NetAscii);
    }

    #[test]
    fn rejects_malformed_packets() {
        for bad in [
            &b"\0\x01"[..],
            b"\0\x01file\0octet",
            b"\0\x01file\0mail\0",
            b"\0\x01\0octet\0",
            b"\0\x09\0\0",
            b"\0\x01f\0octet\0blksize\0",
            b"\0\x01f\xff\0octet\0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builds_and_parses_data_ack_error_oack() {
        let mut buf = Vec::new();
        data(7, b"abc", &mut buf);
        assert_eq!(
            parse(&buf).unwrap(),
            Packet::Data {
                block: 7,
                data: b"abc"
            }
        );
        assert_eq!(parse(&ack(65535)).unwrap(), Packet::Ack { block: 65535 });
        let e = error(ErrorCode::FileNotFound, "nope");
        assert_eq!(
            parse(&e).unwrap(),
            Packet::Error {
                code: 1,
                message: "nope".into()
            }
        );
        let o = oack(&[("blksize".into(), "1024".into())]);
        assert_eq!(
            parse(&o).unwrap(),
            Packet::OAck(vec![("blksize".into(), "1024".into())])
        );
    }

    #[test]
    fn negotiation_clamps_and_drops() {
        let opts: Vec<(String, String)> = [
            ("blksize", "65464"),
            ("timeout", "0"),
            ("windowsize", "500"),
            ("tsize", "0"),
            ("frobnicate", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (n, ack) = negotiate(&opts, 1468, 16);
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.windowsize, 16);
        assert_eq!(n.timeout_secs, 1);
        assert!(n.tsize_requested);
        assert_eq!(
            ack,
            vec![
                ("blksize".to_string(), "1468".to_string()),
                ("windowsize".into(), "16".into())
            ]
        );
        let (n, ack) = negotiate(&[("blksize".into(), "4".into())], 65464, 64);
        assert_eq!(n.blksize, 512);
        assert!(ack.is_empty());
    }

    #[test]
    fn netascii_round_trip_across_blocks() {
        let text = b"line one\nbare\rcr\nend\r";
        let mut wire = Vec::new();
        to_netascii(text, &mut wire);
        assert_eq!(wire, b"line one\r\nbare\r\0cr\r\nend\r\0");
        let mut back = Vec::new();
        let mut cr = false;
        for chunk in wire.chunks(3) {
            from_netascii(chunk, &mut cr, &mut back);
        }
        assert_eq!(back, text);
    }
}
