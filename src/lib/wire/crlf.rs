//! Line-end conversions, streaming: input may come in pieces of any size,
//! split anywhere (a CR and its LF may arrive in two reads).

use std::io::{self, Read};

/// Counts the wire size of a byte stream fed in pieces: each LF not
/// preceded by CR counts one more octet (it gets a CR), and a last line
/// without LF gets CRLF (only an LF after a trailing CR). [`super::DotStuffer`]
/// sends exactly these octets, before the dots it adds.
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

/// CRLF -> LF. A CR not followed by LF is data and is kept; a CR at the
/// end of one piece is held until the next piece (or `finish`) shows what
/// follows it.
#[derive(Clone, Debug, Default)]
pub struct CrlfToLf {
    held_cr: bool,
}

impl CrlfToLf {
    pub fn new() -> CrlfToLf {
        CrlfToLf::default()
    }

    /// Append `input`, converted, to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        if std::mem::take(&mut self.held_cr) && input[0] != b'\n' {
            out.push(b'\r');
        }
        while let Some(p) = input.iter().position(|&b| b == b'\r') {
            out.extend_from_slice(&input[..p]);
            match input.get(p + 1) {
                None => {
                    self.held_cr = true;
                    return;
                }
                // CRLF: the CR goes, the LF is copied with what follows.
                Some(b'\n') => {}
                Some(_) => out.push(b'\r'),
            }
            input = &input[p + 1..];
        }
        out.extend_from_slice(input);
    }

    /// End of input: a CR still held was data.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.held_cr) {
            out.push(b'\r');
        }
    }
}

const READ_CHUNK: usize = 64 * 1024;

/// A reader that turns CRLF into LF as it reads (see [`CrlfToLf`]), in
/// constant memory: the spool's CRLF messages handed to mailboxes, which
/// store LF.
pub struct CrlfToLfReader<R> {
    inner: R,
    conv: CrlfToLf,
    raw: Vec<u8>,
    /// Converted bytes not yet read, from `pos`.
    converted: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> CrlfToLfReader<R> {
    pub fn new(inner: R) -> Self {
        CrlfToLfReader {
            inner,
            conv: CrlfToLf::new(),
            raw: vec![0u8; READ_CHUNK],
            converted: Vec::with_capacity(READ_CHUNK + 1),
            pos: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for CrlfToLfReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.converted.len() {
                let n = out.len().min(self.converted.len() - self.pos);
                out[..n].copy_from_slice(&self.converted[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            self.converted.clear();
            self.pos = 0;
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                self.eof = true;
                self.conv.finish(&mut self.converted);
            } else {
                self.conv.feed(&self.raw[..n], &mut self.converted);
            }
        }
    }
}

/// LF -> CRLF for every LF, whatever precedes it (FTP ASCII mode: the
/// file's line ends are LF, and a CR in the file is data).
pub fn lf_to_crlf(mut input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len() + input.len() / 16);
    while let Some(p) = input.iter().position(|&b| b == b'\n') {
        out.extend_from_slice(&input[..p]);
        out.extend_from_slice(b"\r\n");
        input = &input[p + 1..];
    }
    out.extend_from_slice(input);
}

/// Append one content line in wire form: the line, then CRLF. A CR inside
/// the line is neither a line end nor part of one; it becomes a space so
/// that no later hop can take it for a line end. Returns how many CRs were
/// replaced.
pub fn push_crlf_line(mut line: &[u8], out: &mut Vec<u8>) -> u32 {
    let mut bare_cr = 0;
    while let Some(p) = line.iter().position(|&b| b == b'\r') {
        out.extend_from_slice(&line[..p]);
        out.push(b' ');
        bare_cr += 1;
        line = &line[p + 1..];
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
    bare_cr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its input `chunk` bytes at a time.
    struct Chunky<'a>(&'a [u8], usize);
    impl Read for Chunky<'_> {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(b.len());
            b[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_converted(input: &[u8], chunk: usize, out_chunk: usize) -> Vec<u8> {
        let mut r = CrlfToLfReader::new(Chunky(input, chunk));
        let mut out = Vec::new();
        let mut buf = vec![0u8; out_chunk];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn crlf_to_lf_at_every_boundary() {
        let input = b"a\r\nb\rc\r\n\r\n.\r\nend\r";
        let want = b"a\nb\rc\n\n.\nend\r";
        for chunk in 1..input.len() + 1 {
            for out_chunk in 1..5 {
                assert_eq!(
                    read_converted(input, chunk, out_chunk),
                    want,
                    "chunk {chunk}/{out_chunk}"
                );
            }
            let mut c = CrlfToLf::new();
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                c.feed(piece, &mut out);
            }
            c.finish(&mut out);
            assert_eq!(out, want, "push, chunk {chunk}");
        }
        // CR CR LF: the first CR is data, the second ends the line.
        let mut c = CrlfToLf::new();
        let mut out = Vec::new();
        c.feed(b"x\r", &mut out);
        c.feed(b"\r", &mut out);
        c.feed(b"\ny", &mut out);
        c.finish(&mut out);
        assert_eq!(out, b"x\r\ny");
    }

    #[test]
    fn ftp_ascii_conversions() {
        let mut o = Vec::new();
        lf_to_crlf(b"a\nb\n", &mut o);
        assert_eq!(o, b"a\r\nb\r\n");
        let mut o = Vec::new();
        lf_to_crlf(b"\r\n\nx", &mut o);
        assert_eq!(o, b"\r\r\n\r\nx");
        let mut c = CrlfToLf::new();
        let mut o = Vec::new();
        c.feed(b"a\r\nb\r", &mut o);
        c.feed(b"\nc\rd", &mut o);
        c.finish(&mut o);
        assert_eq!(o, b"a\nb\nc\rd");
    }

    #[test]
    fn content_lines_get_crlf_and_lose_bare_crs() {
        let mut o = Vec::new();
        assert_eq!(push_crlf_line(b"a\rb\r", &mut o), 2);
        assert_eq!(push_crlf_line(b"", &mut o), 0);
        assert_eq!(o, b"a b \r\n\r\n");
    }

    #[test]
    fn wire_size_in_pieces() {
        let cases: [&[u8]; 6] = [b"a\nb\n", b"a\r\nb", b"x\r", b"", b"\n\n\r\n\r\r\n", b"z"];
        let sizes = [6, 6, 3, 0, 9, 3];
        for (c, want) in cases.iter().zip(sizes) {
            assert_eq!(wire_size(c), want, "{c:?}");
            let mut s = WireSize::new();
            for piece in c.chunks(1) {
                s.feed(piece);
            }
            assert_eq!(s.total(), want, "{c:?} in pieces");
        }
    }
}
