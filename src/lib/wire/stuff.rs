//! Going out: a stored message (LF or CRLF line ends) as a dot-stuffed,
//! dot-terminated block on the wire.

use std::io::{self, Write};

/// Dot-stuffing into the wire form, fed in pieces of any size: every line
/// end becomes CRLF (an LF alone gets its CR; a CR before an LF is kept as
/// that LF's CR), a line that starts with "." gets a second one, and
/// `finish` ends an unterminated last line and adds the "." line.
///
/// Input that already is CRLF text (the spool's form) goes out unchanged
/// but for the dots.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The last byte of the current line so far was a CR.
    prev_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
            prev_cr: false,
        }
    }
}

impl DotStuffer {
    pub fn new() -> DotStuffer {
        DotStuffer::default()
    }

    /// Append `input` up to and including its first LF, stuffed, to `out`.
    /// Returns how many bytes of `input` that was and whether a line ended
    /// (for callers that count lines, such as TOP).
    pub fn push_line(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let Some(&first) = input.first() else {
            return (0, false);
        };
        if self.at_line_start {
            self.at_line_start = false;
            if first == b'.' {
                out.push(b'.');
            }
        }
        match memchr::memchr(b'\n', input) {
            Some(p) => {
                let line = &input[..p];
                if let Some(&last) = line.last() {
                    self.prev_cr = last == b'\r';
                }
                out.extend_from_slice(line);
                if !self.prev_cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                self.prev_cr = false;
                self.at_line_start = true;
                (p + 1, true)
            }
            None => {
                out.extend_from_slice(input);
                self.prev_cr = input[input.len() - 1] == b'\r';
                (input.len(), false)
            }
        }
    }

    /// Append all of `input`, stuffed, to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            let (used, _) = self.push_line(input, out);
            input = &input[used..];
        }
    }

    /// Whether the next byte starts a line.
    pub fn at_line_start(&self) -> bool {
        self.at_line_start
    }

    /// End the block: CRLF after an unterminated last line (only the LF
    /// after a trailing CR), then the "." line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            if !self.prev_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
            self.at_line_start = true;
            self.prev_cr = false;
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Writes are gathered up to this size: one write per ~64 KiB, so that a
/// reply never meets delayed ACKs with small segments.
const CHUNK: usize = 64 * 1024;

/// What the current line held so far: the header ends at a line that is
/// empty or a lone CR, however the input was split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineSoFar {
    Empty,
    Cr,
    Text,
}

/// Writes a stored message as a multi-line reply (POP3 RETR/TOP, NNTP
/// ARTICLE): a status line, the message through a [`DotStuffer`],
/// optionally only the header and the first `body_lines` lines of the
/// body (TOP), and the "." line on `finish`; in big writes.
pub struct WireWriter<'a, W: Write + ?Sized> {
    out: &'a mut W,
    buf: Vec<u8>,
    stuffer: DotStuffer,
    /// TOP: None = whole message; Some(n) = header, blank line, n lines.
    body_lines: Option<u64>,
    in_body: bool,
    line: LineSoFar,
    done: bool,
}

impl<'a, W: Write + ?Sized> WireWriter<'a, W> {
    /// `prefix` (the "+OK ...\r\n" status line) is sent in the same write
    /// as the start of the message.
    pub fn new(out: &'a mut W, prefix: &[u8], body_lines: Option<u64>) -> Self {
        let mut buf = Vec::with_capacity(CHUNK + 1024);
        buf.extend_from_slice(prefix);
        WireWriter {
            out,
            buf,
            stuffer: DotStuffer::new(),
            body_lines,
            in_body: false,
            line: LineSoFar::Empty,
            done: false,
        }
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// A line ended: track the header/body boundary and the TOP limit.
    fn end_line(&mut self) {
        if self.in_body {
            if let Some(n) = self.body_lines.as_mut() {
                if *n == 0 {
                    self.done = true;
                } else {
                    *n -= 1;
                    if *n == 0 {
                        self.done = true;
                    }
                }
            }
        } else if self.line != LineSoFar::Text {
            self.in_body = true;
            if self.body_lines == Some(0) {
                self.done = true;
            }
        }
        self.line = LineSoFar::Empty;
    }

    /// Feed stored bytes.
    pub fn write_stored(&mut self, mut chunk: &[u8]) -> io::Result<()> {
        while !chunk.is_empty() && !self.done {
            let (used, ended) = self.stuffer.push_line(chunk, &mut self.buf);
            let text = &chunk[..used - ended as usize];
            if !text.is_empty() {
                self.line = match (self.line, text) {
                    (LineSoFar::Empty, b"\r") => LineSoFar::Cr,
                    _ => LineSoFar::Text,
                };
            }
            if ended {
                self.end_line();
            }
            chunk = &chunk[used..];
            self.flush_if_full()?;
        }
        Ok(())
    }

    /// End the message (CRLF after an unterminated last line) and the reply
    /// (`.` line), and send what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.stuffer.finish(&mut self.buf);
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }

    /// Whether TOP's limit was reached (the rest need not be read).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(stored: &[u8], top: Option<u64>, piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = WireWriter::new(&mut out, b"+OK\r\n", top);
        for c in stored.chunks(piece.max(1)) {
            w.write_stored(c).unwrap();
        }
        w.finish().unwrap();
        out
    }

    #[test]
    fn crlf_and_dot_stuffing() {
        for piece in [1, 2, 3, 1000] {
            assert_eq!(
                wire(b"a: b\n\n.hi\n..\r\nend", None, piece),
                b"+OK\r\na: b\r\n\r\n..hi\r\n...\r\nend\r\n.\r\n"
            );
        }
        assert_eq!(wire(b"", None, 10), b"+OK\r\n.\r\n");
    }

    #[test]
    fn size_matches_writer() {
        let cases: [&[u8]; 7] = [
            b"a\nb\n",
            b"a\r\nb",
            b"x\r",
            b"",
            b"\n\n\r\n\r\r\n",
            b".a\n.\n",
            b"no newline",
        ];
        for c in cases {
            let out = wire(c, None, 1);
            let body = &out[5..out.len() - 3];
            let unstuffed: Vec<u8> = {
                let mut v = Vec::new();
                for line in body.split_inclusive(|&b| b == b'\n') {
                    let l = if line.starts_with(b".") {
                        &line[1..]
                    } else {
                        line
                    };
                    v.extend_from_slice(l);
                }
                v
            };
            assert_eq!(super::super::wire_size(c), unstuffed.len() as u64, "{c:?}");
        }
    }

    #[test]
    fn top_limits_body_lines() {
        let m = b"H: 1\nH2: 2\n\nl1\nl2\nl3\n";
        for piece in [1, 100] {
            assert_eq!(
                wire(m, Some(0), piece),
                b"+OK\r\nH: 1\r\nH2: 2\r\n\r\n.\r\n"
            );
            assert_eq!(
                wire(m, Some(2), piece),
                b"+OK\r\nH: 1\r\nH2: 2\r\n\r\nl1\r\nl2\r\n.\r\n"
            );
            assert_eq!(wire(m, Some(9), piece), wire(m, None, piece));
        }
        // CRLF-stored header end.
        assert_eq!(
            wire(b"H: 1\r\n\r\nb\r\nc\r\n", Some(1), 1),
            b"+OK\r\nH: 1\r\n\r\nb\r\n.\r\n"
        );
    }

    #[test]
    fn header_end_does_not_depend_on_how_input_is_split() {
        // "\r\r" is a line of text, not the blank line, in one piece or two.
        let m = b"H: 1\n\r\r\nH2: 2\n\nbody\n";
        for piece in 1..m.len() {
            assert_eq!(
                wire(m, Some(0), piece),
                b"+OK\r\nH: 1\r\n\r\r\nH2: 2\r\n\r\n.\r\n",
                "piece {piece}"
            );
        }
    }

    #[test]
    fn stuffer_on_crlf_text_only_adds_dots() {
        let mut d = DotStuffer::new();
        let mut out = Vec::new();
        d.push(b".a\r\nb\r\n.", &mut out);
        d.push(b".\r\nc", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"..a\r\nb\r\n...\r\nc\r\n.\r\n");
        let mut d = DotStuffer::new();
        let mut out = Vec::new();
        d.push(b"x\r\n", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"x\r\n.\r\n");
        let mut d = DotStuffer::new();
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(out, b".\r\n");
    }

    #[test]
    fn stuffer_normalises_lf_and_ends_the_last_line() {
        for piece in 1..8 {
            let mut d = DotStuffer::new();
            let mut out = Vec::new();
            for c in b"a\n.b\r\n\nc\r".chunks(piece) {
                d.push(c, &mut out);
            }
            d.finish(&mut out);
            assert_eq!(out, b"a\r\n..b\r\n\r\nc\r\n.\r\n", "piece {piece}");
        }
    }
}
