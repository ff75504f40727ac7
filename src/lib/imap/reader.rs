//! One IMAP command from the wire, bounded: its lines and literals are
//! gathered into one buffer (literals inline, as `{N}` CRLF and N octets)
//! with limits on the line length, each literal, the command's total size,
//! and the number of literals. A synchronizing literal over its limit is
//! refused before the client sends it; a non-synchronizing one (LITERAL+)
//! over its limit ends the session, since its octets are already coming.
//! Pure: the session feeds lines and literal octets in.

/// Longest line, literals excluded.
pub const LINE_MAX: usize = 65536;
/// Largest literal outside APPEND's message.
pub const LITERAL_MAX: usize = 65536;
/// Largest command, APPEND's message excluded.
pub const COMMAND_MAX: usize = 1 << 20;
/// Literals in one command.
pub const LITERALS_MAX: usize = 64;

/// What to do next with a command being read.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The command is whole.
    Done(Vec<u8>),
    /// Read `size` octets of a literal (after sending "+ " when `sync`),
    /// then `literal()` them and read the next line.
    Literal { size: usize, sync: bool },
    /// Refuse the command with this tagged reply (a synchronizing literal
    /// too large: the client sends nothing more of it).
    Refuse(Vec<u8>),
    /// Say this and end the session.
    Close(Vec<u8>),
}

/// Gathers one command.
pub struct Assembler {
    buf: Vec<u8>,
    literals: usize,
    message_max: usize,
    in_literal: bool,
}

/// The tag of a command being read (for replies to a bad one).
pub fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf.iter().position(|&c| c == b' ').unwrap_or(buf.len());
    let t = &buf[..end];
    (!t.is_empty()
        && t.len() <= 64
        && t.iter()
            .all(|&c| c.is_ascii_graphic() && !b"(){%*\"\\+".contains(&c)))
    .then(|| String::from_utf8_lossy(t).into_owned())
}

fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.split(|&c| c == b' ').skip(1);
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

/// `{N}`, `{N+}` or `{N-}` (and `~{N}`) at the end of a line: the size and
/// whether it is synchronizing.
fn literal_at_end(line: &[u8]) -> Option<Result<(u64, bool), ()>> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|&c| c == b'{')?;
    let mut inner = &line[open + 1..line.len() - 1];
    let sync = match inner.last() {
        Some(b'+') | Some(b'-') => {
            inner = &inner[..inner.len() - 1];
            false
        }
        _ => true,
    };
    if inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if inner.len() > 19 {
        return Some(Err(()));
    }
    let n: u64 = std::str::from_utf8(inner).ok()?.parse().ok()?;
    Some(Ok((n, sync)))
}

impl Assembler {
    /// `message_max`: the largest APPEND message (max_message_size).
    pub fn new(message_max: usize) -> Assembler {
        Assembler {
            buf: Vec::new(),
            literals: 0,
            message_max,
            in_literal: false,
        }
    }

    fn bad(&self, text: &str) -> Vec<u8> {
        match tag_of(&self.buf) {
            Some(t) => format!("{t} BAD {text}\r\n").into_bytes(),
            None => format!("* BAD {text}\r\n").into_bytes(),
        }
    }

    /// A line of the command (without its CRLF).
    pub fn line(&mut self, line: &[u8]) -> Step {
        // A line after the first continues the command after a literal.
        self.buf.extend_from_slice(line);
        let Some(lit) = literal_at_end(line) else {
            return Step::Done(std::mem::take(&mut self.buf));
        };
        let append = is_append(&self.buf);
        let (size, sync) = match lit {
            Ok(x) => x,
            Err(()) => return Step::Close(b"* BYE Literal too large\r\n".to_vec()),
        };
        self.literals += 1;
        // APPEND's message literal may be as large as a message; any other
        // literal is a name, a password or a search string.
        let limit = if append {
            self.message_max
        } else {
            LITERAL_MAX
        };
        let too_big = size > limit as u64
            || self.literals > LITERALS_MAX
            || (!append || self.literals > 1) && self.buf.len() as u64 + size > COMMAND_MAX as u64;
        if too_big {
            let reply = if append && size > limit as u64 {
                let t = tag_of(&self.buf).unwrap_or_else(|| "*".into());
                format!("{t} NO [TOOBIG] Message too large\r\n").into_bytes()
            } else {
                self.bad("Literal too large")
            };
            self.buf.clear();
            return if sync {
                Step::Refuse(reply)
            } else {
                // Its octets are on their way: we cannot find where the
                // next command starts.
                let mut r = reply;
                r.extend_from_slice(b"* BYE Literal too large\r\n");
                Step::Close(r)
            };
        }
        self.in_literal = true;
        Step::Literal {
            size: size as usize,
            sync,
        }
    }

    /// The octets of the literal asked for.
    pub fn literal(&mut self, octets: &[u8]) {
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(octets);
        self.in_literal = false;
    }

    /// Whether a command is being read (a literal's line came).
    pub fn busy(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// Fuzzing entry point: lines and literals in any order, never a panic or
/// a buffer beyond the limits.
pub fn fuzz_reader(data: &[u8]) {
    let mut a = Assembler::new(4096);
    for piece in data.split(|&b| b == b'\n') {
        match a.line(piece) {
            Step::Literal { size, .. } => {
                let n = size.min(piece.len());
                a.literal(&piece[..n]);
            }
            Step::Done(c) => {
                let _ = super::command::parse(&c);
            }
            Step::Refuse(_) | Step::Close(_) => {}
        }
        assert!(a.buf.len() <= COMMAND_MAX + 4096 + LINE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_literals() {
        let mut a = Assembler::new(1000);
        assert_eq!(a.line(b"a NOOP"), Step::Done(b"a NOOP".to_vec()));
        assert_eq!(
            a.line(b"a LOGIN {4}"),
            Step::Literal {
                size: 4,
                sync: true
            }
        );
        a.literal(b"demo");
        assert_eq!(
            a.line(b" {2+}"),
            Step::Literal {
                size: 2,
                sync: false
            }
        );
        a.literal(b"pw");
        assert_eq!(
            a.line(b""),
            Step::Done(b"a LOGIN {4}\r\ndemo {2+}\r\npw".to_vec())
        );
        let cmd = match a.line(b"b APPEND INBOX {900}") {
            Step::Literal {
                size: 900,
                sync: true,
            } => {
                a.literal(&[b'x'; 900]);
                a.line(b"")
            }
            s => panic!("{s:?}"),
        };
        assert!(matches!(cmd, Step::Done(c) if c.len() == 20 + 2 + 900));
        // A literal that is not at the end is no literal.
        assert_eq!(
            a.line(b"c NOOP {3} x"),
            Step::Done(b"c NOOP {3} x".to_vec())
        );
    }

    #[test]
    fn limits() {
        let mut a = Assembler::new(1000);
        assert_eq!(
            a.line(b"b APPEND INBOX {1001}"),
            Step::Refuse(b"b NO [TOOBIG] Message too large\r\n".to_vec())
        );
        assert!(!a.busy());
        assert_eq!(
            a.line(b"c LOGIN {65537}"),
            Step::Refuse(b"c BAD Literal too large\r\n".to_vec())
        );
        assert!(matches!(a.line(b"d LOGIN {65537+}"), Step::Close(_)));
        assert!(matches!(
            a.line(b"e APPEND x {4294967295}"),
            Step::Refuse(_)
        ));
        assert!(matches!(
            a.line(b"e APPEND x {99999999999999999999999}"),
            Step::Close(_)
        ));
        let mut a = Assembler::new(1000);
        for _ in 0..LITERALS_MAX {
            assert!(matches!(a.line(b"x {1}"), Step::Literal { .. }));
            a.literal(b"y");
        }
        assert!(matches!(a.line(b"x {1}"), Step::Refuse(_)));
        assert_eq!(tag_of(b"a1 FOO"), Some("a1".into()));
        assert_eq!(tag_of(b"* FOO"), None);
        assert_eq!(tag_of(b""), None);
    }
}
