//! smtpd's DATA: the bounded line reader over arbitrary chunking, then the
//! DataParser. What it stores is CRLF lines with no bare CR or LF, and the
//! size it counts is what it stored (below the limit).
#![no_main]
use classicd::net::{Line, LineBuf};
use classicd::smtp::data::DataParser;

/// A reader handing out `data` in pieces of sizes taken from `sizes`.
struct Chunks<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    i: usize,
}

impl std::io::Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = 1 + *self
            .sizes
            .get(self.i % self.sizes.len().max(1))
            .unwrap_or(&255) as usize;
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let max_size = u16::from_be_bytes([data[0], data[1]]) as u64 * 16;
    let (sizes, body) = data[2..].split_at(2);
    let mut reader = Chunks {
        data: body,
        sizes,
        i: 0,
    };
    let mut buf = LineBuf::new(1002);
    let mut p = DataParser::new(max_size);
    let mut out = Vec::new();
    let mut ended = false;
    loop {
        match buf.read_line(&mut reader, 1000).unwrap() {
            Line::Complete(l, ending) => {
                if p.feed(&l, ending, &mut out) {
                    ended = true;
                    break;
                }
            }
            Line::TooLong => p.line_too_long(),
            Line::Eof => break,
        }
    }
    assert_eq!(ended, p.ended());
    for (i, &b) in out.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR stored"),
            b'\n' => assert!(i > 0 && out[i - 1] == b'\r', "bare LF stored"),
            _ => {}
        }
    }
    assert!(out.is_empty() || out.ends_with(b"\r\n"));
    if max_size == 0 || p.size() <= max_size {
        assert_eq!(out.len() as u64, p.size());
    } else {
        assert!((out.len() as u64) <= p.size());
        assert!(p.verdict().is_some(), "oversized message accepted");
    }
    if ended {
        let _ = p.verdict();
        // After the end, every line is the end.
        assert!(p.feed(b"more", classicd::net::Ending::CrLf, &mut Vec::new()));
    }
});
