//! Stuffing and un-stuffing together, through the real line reader:
//! whatever the lines, what goes out comes back, and only the real end
//! marker ends the block.

use super::*;
use crate::net::{Line, LineBuf};

/// xorshift64*: a small deterministic generator, so that a failure can be
/// replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A line without LF, rich in what matters: dots (leading, lone, doubled),
/// CRs, NULs, spaces.
fn random_line(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"..\r\r a.Z\0\xff-";
    match rng.below(8) {
        0 => Vec::new(),
        1 => b".".to_vec(),
        2 => b"..".to_vec(),
        _ => {
            let len = rng.below(12) as usize;
            (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
                .collect()
        }
    }
}

/// Stuff `stored` in pieces of `piece` bytes.
fn stuff(stored: &[u8], piece: usize) -> Vec<u8> {
    let mut d = DotStuffer::new();
    let mut wire = Vec::new();
    for c in stored.chunks(piece) {
        d.push(c, &mut wire);
    }
    d.finish(&mut wire);
    wire
}

/// Read a block back as a server would: the line reader, then the
/// un-stuffer. Returns the content lines and what follows the block.
fn unstuff(wire: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut reader = wire;
    let mut buf = LineBuf::new(4096);
    let mut u = Unstuffer::new();
    let mut lines = Vec::new();
    loop {
        match buf.read_line(&mut reader, 4000).unwrap() {
            Line::Complete(l, ending) => match u.line(&l, ending) {
                DotLine::End => break,
                DotLine::Text(t) => {
                    // Every line of the wire form ends with CRLF.
                    assert_eq!(ending, crate::net::Ending::CrLf, "{l:?}");
                    lines.push(t.to_vec());
                }
            },
            other => panic!("block not ended: {other:?}"),
        }
    }
    let mut rest = buf.buffered().to_vec();
    rest.extend_from_slice(reader);
    (lines, rest)
}

#[test]
fn stuff_then_unstuff_is_the_identity_on_any_lines() {
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let n = rng.below(10) as usize;
        let lines: Vec<Vec<u8>> = (0..n).map(|_| random_line(&mut rng)).collect();
        let piece = 1 + rng.below(7) as usize;

        // Stored with CRLF line ends (the spool): any line comes back.
        let mut crlf = Vec::new();
        for l in &lines {
            crlf.extend_from_slice(l);
            crlf.extend_from_slice(b"\r\n");
        }
        let mut wire = stuff(&crlf, piece);
        assert_eq!(wire_size(&crlf), {
            // The wire size counts the octets before the dots are added.
            let dots = lines.iter().filter(|l| l.first() == Some(&b'.')).count();
            (wire.len() - 3 - dots) as u64
        });
        wire.extend_from_slice(b"QUIT\r\n");
        let (back, rest) = unstuff(&wire);
        assert_eq!(back, lines, "seed {seed}, CRLF");
        assert_eq!(rest, b"QUIT\r\n", "seed {seed}: ended early or late");

        // Stored with LF line ends (mailboxes): a line that ends with a CR
        // cannot be told from a CRLF line end there, so leave those out.
        let lf_lines: Vec<Vec<u8>> = lines
            .iter()
            .filter(|l| l.last() != Some(&b'\r'))
            .cloned()
            .collect();
        let mut lf = Vec::new();
        for l in &lf_lines {
            lf.extend_from_slice(l);
            lf.push(b'\n');
        }
        let (back, rest) = unstuff(&stuff(&lf, piece));
        assert_eq!(back, lf_lines, "seed {seed}, LF");
        assert!(rest.is_empty());

        // Back to LF for a mailbox: the LF-stored form again.
        let mut stored = Vec::new();
        let mut conv = CrlfToLf::new();
        let mut wire_lines = Vec::new();
        for l in &lf_lines {
            wire_lines.extend_from_slice(l);
            wire_lines.extend_from_slice(b"\r\n");
        }
        for c in wire_lines.chunks(piece) {
            conv.feed(c, &mut stored);
        }
        conv.finish(&mut stored);
        assert_eq!(stored, lf, "seed {seed}, CRLF -> LF");
    }
}

#[test]
fn an_unterminated_last_line_is_ended_before_the_dot() {
    let (back, rest) = unstuff(&stuff(b"a\r\n.b", 2));
    assert_eq!(back, vec![b"a".to_vec(), b".b".to_vec()]);
    assert!(rest.is_empty());
}
