//! A bounded line reader: memory never grows past a fixed buffer, whatever
//! the peer sends. An overlong line is consumed up to its end and reported
//! as `Line::TooLong`, so the protocol can answer and go on.

use std::io::{self, Read};

/// How a line ended on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    CrLf,
    /// A bare LF (not preceded by CR).
    Lf,
}

/// What one read of a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its terminator.
    Complete(Vec<u8>, Ending),
    /// A line longer than the limit; it was read to its end and dropped.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// A line as `read_line_ref` gives it: borrowed from the buffer until the
/// next read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRef<'a> {
    Complete(&'a [u8], Ending),
    TooLong,
    Eof,
}

impl LineRef<'_> {
    /// The line copied out of the buffer.
    pub fn into_line(self) -> Line {
        match self {
            LineRef::Complete(l, ending) => Line::Complete(l.to_vec(), ending),
            LineRef::TooLong => Line::TooLong,
            LineRef::Eof => Line::Eof,
        }
    }
}

/// Where `read_span` found a line: its place in the buffer (so that a
/// caller can do something between the read and the borrow).
pub(super) enum Span {
    Complete(std::ops::Range<usize>, Ending),
    TooLong,
    Eof,
}

/// The read buffer behind a line reader. It is separate from the stream so
/// that a connection can switch streams (STARTTLS) and drop what was
/// buffered before the switch.
pub struct LineBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    discarding: bool,
}

impl LineBuf {
    /// A buffer for lines of at most `capacity - 2` bytes.
    pub fn new(capacity: usize) -> LineBuf {
        LineBuf {
            buf: vec![0u8; capacity.max(64)].into_boxed_slice(),
            start: 0,
            end: 0,
            discarding: false,
        }
    }

    /// Bytes read from the network but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Consume `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Put bytes read elsewhere in front (a connection taken over from
    /// another process). Must fit the buffer.
    pub fn preload(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&bytes[..n]);
        self.start = 0;
        self.end = n;
        self.discarding = false;
    }

    /// Drop everything buffered (after a TLS upgrade: plaintext sent ahead
    /// of the handshake must not be taken as protected commands).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.discarding = false;
    }

    /// Read raw bytes: buffered ones first, then from `r`.
    pub fn read_raw<R: Read>(&mut self, r: &mut R, out: &mut [u8]) -> io::Result<usize> {
        if self.start < self.end {
            let n = out.len().min(self.end - self.start);
            out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.consume(n);
            return Ok(n);
        }
        r.read(out)
    }

    /// Read one line of at most `max` bytes (terminator not counted).
    pub fn read_line<R: Read>(&mut self, r: &mut R, max: usize) -> io::Result<Line> {
        Ok(self.read_line_ref(r, max)?.into_line())
    }

    /// `read_line` without a copy: the line stays in the buffer, which
    /// the next read may overwrite (an article's lines, read by the
    /// thousand).
    pub fn read_line_ref<R: Read>(&mut self, r: &mut R, max: usize) -> io::Result<LineRef<'_>> {
        let span = self.read_span(r, max)?;
        Ok(self.line_at(span))
    }

    /// The line `read_span` found.
    pub(super) fn line_at(&self, span: Span) -> LineRef<'_> {
        match span {
            Span::Complete(at, ending) => LineRef::Complete(&self.buf[at], ending),
            Span::TooLong => LineRef::TooLong,
            Span::Eof => LineRef::Eof,
        }
    }

    /// Read a line, and say where it is.
    pub(super) fn read_span<R: Read>(&mut self, r: &mut R, max: usize) -> io::Result<Span> {
        let max = max.min(self.buf.len() - 2);
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(pos) = memchr::memchr(b'\n', pending) {
                let start = self.start;
                let line_end = start + pos;
                let (content_end, ending) = if pos > 0 && self.buf[line_end - 1] == b'\r' {
                    (line_end - 1, Ending::CrLf)
                } else {
                    (line_end, Ending::Lf)
                };
                let too_long = self.discarding || content_end - start > max;
                self.discarding = false;
                // Only the marks move: the bytes stay until the next read.
                self.consume(pos + 1);
                return Ok(if too_long {
                    Span::TooLong
                } else {
                    Span::Complete(start..content_end, ending)
                });
            }
            if self.discarding {
                self.start = 0;
                self.end = 0;
            } else if self.end - self.start > max + 1 {
                // No terminator within the limit: drop what we have and skip
                // to the end of this line.
                self.discarding = true;
                self.start = 0;
                self.end = 0;
            } else if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            // A stopped and continued process sees EINTR from a read with
            // a timeout: nothing happened to the connection.
            let n = loop {
                match r.read(&mut self.buf[self.end..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                self.clear();
                return Ok(Span::Eof);
            }
            self.end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader interrupted (EINTR) before each read that gives bytes.
    struct Interrupted<'a>(&'a [u8], bool);
    impl Read for Interrupted<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = out.len().min(self.0.len()).min(3);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn interrupted_reads_are_retried() {
        let mut lb = LineBuf::new(64);
        let mut r = Interrupted(b"MAIL FROM:<a@b>\r\n", false);
        assert_eq!(
            lb.read_line(&mut r, 60).unwrap(),
            Line::Complete(b"MAIL FROM:<a@b>".to_vec(), Ending::CrLf)
        );
    }

    /// A reader that hands out its input a few bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], chunk: usize, cap: usize, max: usize) -> Vec<Line> {
        let mut r = Trickle(input, chunk);
        let mut b = LineBuf::new(cap);
        let mut out = Vec::new();
        loop {
            let l = b.read_line(&mut r, max).unwrap();
            let eof = l == Line::Eof;
            out.push(l);
            if eof {
                return out;
            }
        }
    }

    fn c(s: &str, e: Ending) -> Line {
        Line::Complete(s.as_bytes().to_vec(), e)
    }

    #[test]
    fn splits_crlf_and_bare_lf() {
        for chunk in [1, 3, 100] {
            let got = lines(b"USER a\r\nPASS b\nx\r\n", chunk, 64, 62);
            assert_eq!(
                got,
                vec![
                    c("USER a", Ending::CrLf),
                    c("PASS b", Ending::Lf),
                    c("x", Ending::CrLf),
                    Line::Eof
                ]
            );
        }
    }

    #[test]
    fn borrowed_lines_are_the_owned_ones() {
        let input = b"a\r\n\r\n.b\nTAIL";
        let mut buf = LineBuf::new(64);
        let mut r = &input[..];
        let mut got = Vec::new();
        loop {
            match buf.read_line_ref(&mut r, 62).unwrap() {
                LineRef::Complete(l, e) => got.push((l.to_vec(), e)),
                LineRef::TooLong => got.push((b"too long".to_vec(), Ending::Lf)),
                LineRef::Eof => break,
            }
        }
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), Ending::CrLf),
                (Vec::new(), Ending::CrLf),
                (b".b".to_vec(), Ending::Lf)
            ]
        );
    }

    #[test]
    fn overlong_line_is_skipped_and_reading_goes_on() {
        let mut input = vec![b'A'; 10_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        for chunk in [7, 4096] {
            let got = lines(&input, chunk, 128, 100);
            assert_eq!(got, vec![Line::TooLong, c("NOOP", Ending::CrLf), Line::Eof]);
        }
    }

    #[test]
    fn limit_is_exact() {
        let got = lines(b"12345\r\n123456\r\n", 100, 64, 5);
        assert_eq!(
            got,
            vec![c("12345", Ending::CrLf), Line::TooLong, Line::Eof]
        );
    }

    #[test]
    fn nul_bytes_pass_through_as_data() {
        let got = lines(b"a\0b\r\n", 2, 64, 10);
        assert_eq!(got[0], Line::Complete(b"a\0b".to_vec(), Ending::CrLf));
    }

    #[test]
    fn partial_last_line_is_eof() {
        assert_eq!(lines(b"QUIT", 2, 64, 10), vec![Line::Eof]);
    }

    #[test]
    fn raw_reads_drain_buffer_first() {
        let mut r = Trickle(b"LINE\r\nrawdata", 100);
        let mut b = LineBuf::new(64);
        assert_eq!(b.read_line(&mut r, 10).unwrap(), c("LINE", Ending::CrLf));
        let mut out = [0u8; 3];
        assert_eq!(b.read_raw(&mut r, &mut out).unwrap(), 3);
        assert_eq!(&out, b"raw");
    }
}
