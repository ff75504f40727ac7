//! The bounded line reader (every line protocol's input) over arbitrary
//! chunking, against a model: lines split at LF, a CR before the LF taken
//! as CRLF, a line longer than the limit reported as TooLong (whatever its
//! length), a partial last line dropped at EOF. Raw reads (FTP transfers,
//! TLS handshakes) get the buffered bytes first.
#![no_main]
use classicd::net::{Ending, Line, LineBuf};
use std::io::Read;

struct Chunks<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    i: usize,
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = 1 + self.sizes[self.i % self.sizes.len()] as usize;
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn model(stream: &[u8], max: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(p) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..p];
        let (content, ending) = match line.strip_suffix(b"\r") {
            Some(c) => (c, Ending::CrLf),
            None => (line, Ending::Lf),
        };
        out.push(if content.len() > max {
            Line::TooLong
        } else {
            Line::Complete(content.to_vec(), ending)
        });
        rest = &rest[p + 1..];
    }
    out.push(Line::Eof);
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // The buffer's capacity (at least 64) and the limit asked for.
    let capacity = 64 + data[0] as usize;
    let max = data[1] as usize * 2;
    let (sizes, stream) = data[2..].split_at(2);
    let mut buf = LineBuf::new(capacity);
    let limit = max.min(capacity - 2);
    let want = model(stream, limit);
    let mut reader = Chunks {
        data: stream,
        sizes,
        i: 0,
    };
    for (k, expected) in want.iter().enumerate() {
        // Now and then, the protocol reads raw bytes instead (the line
        // that follows is then read from where those stopped).
        if k == 1 && sizes[0] & 1 == 1 {
            let mut raw_buf = LineBuf::new(capacity);
            let mut r2 = Chunks {
                data: stream,
                sizes,
                i: 0,
            };
            let first = raw_buf.read_line(&mut r2, limit).unwrap();
            assert_eq!(&first, &want[0]);
            let mut rest = Vec::new();
            let mut tmp = [0u8; 7];
            loop {
                let n = raw_buf.read_raw(&mut r2, &mut tmp).unwrap();
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&tmp[..n]);
            }
            let after_first = match stream.iter().position(|&b| b == b'\n') {
                Some(p) => &stream[p + 1..],
                None => &[][..],
            };
            if !matches!(first, Line::Eof) {
                assert_eq!(rest, after_first, "raw reads lost or repeated bytes");
            }
        }
        let got = buf.read_line(&mut reader, max).unwrap();
        assert_eq!(&got, expected, "line {k}");
    }
});
