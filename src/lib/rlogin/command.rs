//! The rlogin handshake (RFC 1282): `\0` client-user `\0` server-user `\0`
//! terminal-type/speed `\0`, each field bounded; and the window-size
//! escape the client sends in the data stream. Pure: bytes in, values out.

use crate::pty::WindowSize;

/// Longest user name (RFC 1282 leaves it open; BSD had 16).
pub const NAME_MAX: usize = 32;
/// Longest terminal-type/speed field (BSD's `term[64]`).
pub const TERM_MAX: usize = 64;
/// The terminal type when the client gives none or an odd one (BSD's).
pub const DEFAULT_TERM: &str = "network";

/// Why the handshake is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bad {
    /// The first field must be empty (the leading NUL).
    NotNul,
    /// A user name that is not one (empty, odd bytes, leading '-').
    Name,
    TooLong,
}

/// A user name from the network: at most NAME_MAX bytes of the safe set,
/// never starting with '-' (the `-froot` class).
pub fn parse_name(field: &[u8]) -> Result<String, Bad> {
    if field.len() > NAME_MAX {
        return Err(Bad::TooLong);
    }
    let name = std::str::from_utf8(field).map_err(|_| Bad::Name)?;
    if !crate::auth::plausible_name(name) {
        return Err(Bad::Name);
    }
    Ok(name.to_string())
}

/// The terminal type and speed: `xterm/38400`. A type of odd characters
/// becomes DEFAULT_TERM (it becomes TERM, and a terminfo lookup, in the
/// session); a speed that is not a known baud rate is dropped.
pub fn parse_terminal(field: &[u8]) -> (String, Option<u32>) {
    let text = String::from_utf8_lossy(field);
    let (term, speed) = match text.split_once('/') {
        Some((t, s)) => (t, Some(s)),
        None => (&*text, None),
    };
    let good = !term.is_empty()
        && term.len() <= 32
        && term.as_bytes()[0].is_ascii_alphanumeric()
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    let term = if good {
        term.to_string()
    } else {
        DEFAULT_TERM.to_string()
    };
    let speed = speed
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|s| SPEEDS.contains(s));
    (term, speed)
}

/// The baud rates a terminal can be set to everywhere.
pub const SPEEDS: [u32; 18] = [
    50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
    115200, 230400,
];

/// The window-size escape: 0xff 0xff 's' 's', then rows, columns, x and y
/// pixels as 16-bit big-endian numbers.
pub const ESCAPE_LEN: usize = 12;

/// What comes first in client input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// This many bytes of plain data.
    Data(usize),
    /// A window-size escape (ESCAPE_LEN bytes).
    Window(WindowSize),
    /// The input ends with what may be the start of an escape: wait for
    /// more before deciding.
    Incomplete,
}

/// The first piece of `input` (not empty). An escape is recognised
/// wherever it falls, also when it arrives in several reads.
pub fn next_piece(input: &[u8]) -> Piece {
    let mut i = 0;
    while i < input.len() {
        if input[i] != 0xff {
            i += 1;
            continue;
        }
        let rest = &input[i..];
        let prefix = [0xff, 0xff, b's', b's'];
        let n = rest.len().min(prefix.len());
        if rest[..n] != prefix[..n] {
            i += 1;
            continue;
        }
        if i > 0 {
            return Piece::Data(i);
        }
        if rest.len() < ESCAPE_LEN {
            return Piece::Incomplete;
        }
        let w = |k: usize| u16::from_be_bytes([rest[4 + 2 * k], rest[5 + 2 * k]]);
        return Piece::Window(WindowSize {
            rows: w(0),
            cols: w(1),
            xpixel: w(2),
            ypixel: w(3),
        });
    }
    Piece::Data(input.len())
}

/// Split `input` into its data and the window sizes it carries; returns
/// how many bytes were consumed (an incomplete escape at the end stays).
pub fn split_input(input: &[u8], data: &mut Vec<u8>, windows: &mut Vec<WindowSize>) -> usize {
    let mut at = 0;
    while at < input.len() {
        match next_piece(&input[at..]) {
            Piece::Data(n) => {
                data.extend_from_slice(&input[at..at + n]);
                at += n;
            }
            Piece::Window(w) => {
                windows.push(w);
                at += ESCAPE_LEN;
            }
            Piece::Incomplete => break,
        }
    }
    at
}

/// Fuzz entry point: the handshake fields and the client stream decoder.
pub fn fuzz_rlogin_input(data: &[u8]) {
    let mut fields = data.split(|&b| b == 0);
    if let Some(f) = fields.next() {
        let _ = parse_name(f);
        let _ = parse_terminal(f);
    }
    let (mut d, mut w) = (Vec::new(), Vec::new());
    let n = split_input(data, &mut d, &mut w);
    assert!(n <= data.len());
    assert!(data.len() - n < ESCAPE_LEN);
    let _ = super::login::fuzz_line_editor(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name(b"alice").as_deref(), Ok("alice"));
        assert_eq!(parse_name(&[b'a'; 33]), Err(Bad::TooLong));
        for bad in [&b""[..], b"-froot", b"a b", b"\xff"] {
            assert_eq!(parse_name(bad), Err(Bad::Name));
        }
    }

    #[test]
    fn terminals() {
        assert_eq!(
            parse_terminal(b"xterm/38400"),
            ("xterm".into(), Some(38400))
        );
        assert_eq!(parse_terminal(b"vt100"), ("vt100".into(), None));
        assert_eq!(
            parse_terminal(b"xterm-256color/9600"),
            ("xterm-256color".into(), Some(9600))
        );
        assert_eq!(parse_terminal(b"xterm/12345"), ("xterm".into(), None));
        assert_eq!(parse_terminal(b"xterm/fast"), ("xterm".into(), None));
        for odd in [
            &b""[..],
            b"/9600",
            b"../../x/9600",
            b"a b/9600",
            b"-x/9600",
            b"x;rm/9600",
        ] {
            assert_eq!(parse_terminal(odd).0, DEFAULT_TERM, "{odd:?}");
        }
    }

    fn escape(rows: u16, cols: u16) -> Vec<u8> {
        let mut e = vec![0xff, 0xff, b's', b's'];
        for v in [rows, cols, 640, 480] {
            e.extend_from_slice(&v.to_be_bytes());
        }
        e
    }

    #[test]
    fn window_escapes_anywhere() {
        let mut input = b"ls".to_vec();
        input.extend(escape(50, 132));
        input.extend(b"\r");
        let (mut d, mut w) = (Vec::new(), Vec::new());
        assert_eq!(split_input(&input, &mut d, &mut w), input.len());
        assert_eq!(d, b"ls\r");
        assert_eq!(
            w,
            vec![WindowSize {
                rows: 50,
                cols: 132,
                xpixel: 640,
                ypixel: 480
            }]
        );
    }

    #[test]
    fn window_escapes_split_across_reads() {
        let mut stream = b"a".to_vec();
        stream.extend(escape(24, 80));
        stream.extend(b"b");
        for cut in 0..stream.len() {
            let (mut d, mut w) = (Vec::new(), Vec::new());
            let mut pending = stream[..cut].to_vec();
            let n = split_input(&pending, &mut d, &mut w);
            pending.drain(..n);
            pending.extend_from_slice(&stream[cut..]);
            let n = split_input(&pending, &mut d, &mut w);
            assert_eq!(n, pending.len(), "cut at {cut}");
            assert_eq!(d, b"ab", "cut at {cut}");
            assert_eq!(w.len(), 1, "cut at {cut}");
        }
    }

    #[test]
    fn lone_ff_bytes_are_data() {
        let (mut d, mut w) = (Vec::new(), Vec::new());
        assert_eq!(split_input(b"\xffa\xff\xffxy", &mut d, &mut w), 6);
        assert_eq!(d, b"\xffa\xff\xffxy");
        // At the very end, a 0xff may start an escape: held back.
        let (mut d, mut w) = (Vec::new(), Vec::new());
        assert_eq!(split_input(b"ab\xff", &mut d, &mut w), 2);
        assert_eq!(split_input(b"\xff\xffs", &mut d, &mut w), 0);
        assert_eq!(split_input(b"\xff\xffsx", &mut d, &mut w), 4);
        assert!(w.is_empty());
    }

    #[test]
    fn fuzz_entry_survives() {
        for data in [
            &b""[..],
            b"\0\0\0",
            b"\xff\xffss",
            b"\xff\xffss12345678\x7f\x15\r",
        ] {
            fuzz_rlogin_input(data);
        }
    }
}
