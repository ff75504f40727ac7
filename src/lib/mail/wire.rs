//! Byte-stream transforms between stored messages and the wire, all in
//! constant memory whatever the line lengths:
//!
//! - [`WireSize`]: the size of a message once every line ends with CRLF.
//! - [`WireWriter`]: LF -> CRLF, dot-stuffing, a TOP line limit, written in
//!   big chunks (one write per ~64 KiB, so replies never meet delayed ACKs).
//! - [`FromQuoter`]: mboxrd `>From ` quoting and unquoting.
//!
//! The wire form of a stored message: each LF not preceded by CR becomes
//! CRLF, and a last line without LF gets CRLF. `WireSize` counts exactly the
//! octets `WireWriter` sends before dot-stuffing.

use std::io::{self, Write};

/// Counts the wire size of a byte stream fed in pieces.
#[derive(Clone, Debug, Default)]
pub struct WireSize {
    total: u64,
    last: Option<u8>,
}

impl WireSize {
    pub fn new() -> WireSize {
        WireSize::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut prev = self.last;
        for &b in chunk {
            if b == b'\n' && prev != Some(b'\r') {
                self.total += 1;
            }
            prev = Some(b);
        }
        self.total += chunk.len() as u64;
        if !chunk.is_empty() {
            self.last = prev;
        }
    }

    /// The size, counting the CRLF added to a last line without LF.
    pub fn total(&self) -> u64 {
        match self.last {
            Some(b'\n') | None => self.total,
            Some(b'\r') => self.total + 1,
            Some(_) => self.total + 2,
        }
    }
}

/// The wire size of a whole buffer.
pub fn wire_size(bytes: &[u8]) -> u64 {
    let mut w = WireSize::new();
    w.feed(bytes);
    w.total()
}

const CHUNK: usize = 64 * 1024;

/// Writes a message to a POP3/SMTP-style multi-line reply: CRLF line ends,
/// dot-stuffing, optionally only the header and the first `body_lines` lines
/// of the body (TOP), and the terminating `.` line on `finish`.
pub struct WireWriter<'a, W: Write + ?Sized> {
    out: &'a mut W,
    buf: Vec<u8>,
    at_line_start: bool,
    prev_cr: bool,
    /// TOP: None = whole message; Some(n) = header, blank line, n lines.
    body_lines: Option<u64>,
    in_body: bool,
    line_empty: bool,
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
            at_line_start: true,
            prev_cr: false,
            body_lines,
            in_body: false,
            line_empty: true,
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
        } else if self.line_empty {
            self.in_body = true;
            if self.body_lines == Some(0) {
                self.done = true;
            }
        }
        self.at_line_start = true;
        self.line_empty = true;
    }

    /// Feed stored bytes.
    pub fn write_stored(&mut self, mut chunk: &[u8]) -> io::Result<()> {
        while !chunk.is_empty() && !self.done {
            if self.at_line_start {
                self.at_line_start = false;
                if chunk[0] == b'.' {
                    self.buf.push(b'.');
                }
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    let line = &chunk[..p];
                    if !line.is_empty() {
                        self.line_empty = line == b"\r" && self.line_empty;
                        self.prev_cr = line[line.len() - 1] == b'\r';
                    }
                    self.buf.extend_from_slice(line);
                    if !self.prev_cr {
                        self.buf.push(b'\r');
                    }
                    self.buf.push(b'\n');
                    self.prev_cr = false;
                    chunk = &chunk[p + 1..];
                    self.end_line();
                }
                None => {
                    self.buf.extend_from_slice(chunk);
                    self.line_empty = chunk == b"\r" && self.line_empty;
                    self.prev_cr = chunk[chunk.len() - 1] == b'\r';
                    chunk = &[];
                }
            }
            self.flush_if_full()?;
        }
        Ok(())
    }

    /// End the message (CRLF after an unterminated last line) and the reply
    /// (`.` line), and send what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.at_line_start && !self.done {
            if !self.prev_cr {
                self.buf.push(b'\r');
            }
            self.buf.push(b'\n');
        }
        self.buf.extend_from_slice(b".\r\n");
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }

    /// Whether TOP's limit was reached (the rest need not be read).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// mboxrd quoting: `quote` turns lines matching `^>*From ` into `>` + line;
/// unquoting removes one `>` from lines matching `^>+From `. Fed in pieces,
/// constant memory (a run of `>` is counted, not stored).
#[derive(Clone, Debug)]
pub struct FromQuoter {
    quote: bool,
    at_start: bool,
    /// At line start: the number of '>' seen, then how much of "From " matched.
    gts: u64,
    matched: usize,
    pending: bool,
}

const FROM_: &[u8] = b"From ";

impl FromQuoter {
    pub fn quoter() -> FromQuoter {
        FromQuoter::new(true)
    }

    pub fn unquoter() -> FromQuoter {
        FromQuoter::new(false)
    }

    fn new(quote: bool) -> FromQuoter {
        FromQuoter {
            quote,
            at_start: true,
            gts: 0,
            matched: 0,
            pending: false,
        }
    }

    fn flush_pending(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.gts {
            out.push(b'>');
        }
        out.extend_from_slice(&FROM_[..self.matched]);
        self.gts = 0;
        self.matched = 0;
        self.pending = false;
    }

    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.at_start {
                let b = input[0];
                if self.matched == 0 && b == b'>' {
                    self.gts += 1;
                    self.pending = true;
                    input = &input[1..];
                    continue;
                }
                if b == FROM_[self.matched] {
                    self.matched += 1;
                    self.pending = true;
                    input = &input[1..];
                    if self.matched == FROM_.len() {
                        let gts = if self.quote {
                            self.gts + 1
                        } else {
                            self.gts.saturating_sub(1)
                        };
                        self.gts = gts;
                        self.flush_pending(out);
                        self.at_start = false;
                    }
                    continue;
                }
                self.flush_pending(out);
                self.at_start = false;
            }
            match input.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    out.extend_from_slice(&input[..=p]);
                    input = &input[p + 1..];
                    self.at_start = true;
                }
                None => {
                    out.extend_from_slice(input);
                    input = &[];
                }
            }
        }
    }

    /// End of input: emit a pending partial match.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending {
            self.flush_pending(out);
        }
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
            assert_eq!(wire_size(c), unstuffed.len() as u64, "{c:?}");
            let mut s = WireSize::new();
            for piece in c.chunks(1) {
                s.feed(piece);
            }
            assert_eq!(s.total(), wire_size(c));
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

    fn q(quoter: FromQuoter, input: &[u8], piece: usize) -> Vec<u8> {
        let mut q = quoter;
        let mut out = Vec::new();
        for c in input.chunks(piece.max(1)) {
            q.feed(c, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn from_quoting_round_trips() {
        let input = b"From a\nxFrom b\n>From c\n>>From d\n>Fro\nFrom\n>\n>>";
        for piece in [1, 2, 5, 100] {
            let quoted = q(FromQuoter::quoter(), input, piece);
            assert_eq!(
                quoted,
                b">From a\nxFrom b\n>>From c\n>>>From d\n>Fro\nFrom\n>\n>>".to_vec()
            );
            assert_eq!(q(FromQuoter::unquoter(), &quoted, piece), input.to_vec());
        }
    }
}
