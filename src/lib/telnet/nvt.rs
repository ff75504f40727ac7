//! The Network Virtual Terminal's end-of-line rules (RFC 854, RFC 1123
//! 3.3.1) and IAC escaping, both ways.
//!
//! In: outside BINARY, a client ends a line with CR LF or CR NUL; a Unix
//! terminal wants one CR (its ICRNL makes the newline), so the LF or NUL
//! after a CR is dropped. Out: the program's bytes with every IAC doubled
//! and, outside BINARY, a CR not followed by LF sent as CR NUL.

use super::IAC;

/// Input mapping: remembers a CR across calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Input {
    after_cr: bool,
}

impl Input {
    pub fn new(after_cr: bool) -> Input {
        Input { after_cr }
    }

    /// Whether the last byte taken was a CR (for a hand-over).
    pub fn after_cr(&self) -> bool {
        self.after_cr
    }

    /// Map data bytes from the client into `out`, at most `room` bytes of
    /// output; returns how many input bytes were taken. `binary`: the
    /// client sends BINARY (no CR rule).
    pub fn map(&mut self, data: &[u8], binary: bool, room: usize, out: &mut Vec<u8>) -> usize {
        if binary {
            self.after_cr = false;
            let n = data.len().min(room);
            out.extend_from_slice(&data[..n]);
            return n;
        }
        let mut taken = 0;
        let mut written = 0;
        while taken < data.len() {
            let b = data[taken];
            if self.after_cr && (b == b'\n' || b == 0) {
                self.after_cr = false;
                taken += 1;
                continue;
            }
            if written == room {
                break;
            }
            // The longest run with no CR in it goes in one copy.
            let end = data[taken..]
                .iter()
                .position(|&c| c == b'\r')
                .map_or(data.len(), |p| taken + p + 1)
                .min(taken.saturating_add(room - written));
            out.extend_from_slice(&data[taken..end]);
            written += end - taken;
            self.after_cr = data[end - 1] == b'\r';
            taken = end;
        }
        taken
    }
}

/// Map terminal output for the wire into `out`, taking as much of `data`
/// as fits in `room` bytes of output; returns the bytes taken. IAC is
/// doubled; outside BINARY a CR that is not followed by LF in `data` goes
/// out as CR NUL (a CR at the very end too: waiting for the next byte could
/// hold a progress line back for ever, and CR NUL LF shows the same).
pub fn output(data: &[u8], binary: bool, room: usize, out: &mut Vec<u8>) -> usize {
    let mut taken = 0;
    let mut written = 0;
    // Where the search for the next byte to escape goes on from: a CR LF
    // pair (every line a terminal writes) needs nothing, so runs of whole
    // lines are copied at once.
    let mut scan = 0;
    while taken < data.len() {
        let special = loop {
            let found = data[scan..]
                .iter()
                .position(|&c| c == IAC || (!binary && c == b'\r'));
            match found {
                None => break data.len(),
                Some(p) if data[scan + p] == b'\r' && data.get(scan + p + 1) == Some(&b'\n') => {
                    scan += p + 2;
                }
                Some(p) => break scan + p,
            }
        };
        let plain = (special - taken).min(room - written);
        out.extend_from_slice(&data[taken..taken + plain]);
        taken += plain;
        written += plain;
        if taken < special || taken == data.len() || room - written < 2 {
            break;
        }
        // data[taken] is IAC, or a CR with no LF after it.
        out.extend_from_slice(if data[taken] == IAC {
            &[IAC, IAC]
        } else {
            b"\r\0"
        });
        taken += 1;
        written += 2;
        scan = taken;
    }
    taken
}

/// Text of ours (prompts, messages, the issue file) for the wire: LF
/// becomes CR LF, a lone CR becomes CR NUL, IAC is doubled.
pub fn text(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 8 + 2);
    let mut prev = 0u8;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'\n' if prev != b'\r' => out.extend_from_slice(b"\r\n"),
            b'\r' if s.get(i + 1) != Some(&b'\n') => out.extend_from_slice(b"\r\0"),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            _ => out.push(b),
        }
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_all(chunks: &[&[u8]], binary: bool) -> Vec<u8> {
        let mut i = Input::default();
        let mut out = Vec::new();
        for c in chunks {
            assert_eq!(i.map(c, binary, usize::MAX, &mut out), c.len());
        }
        out
    }

    #[test]
    fn cr_lf_and_cr_nul_become_cr() {
        assert_eq!(input_all(&[b"ls\r\n"], false), b"ls\r");
        assert_eq!(input_all(&[b"ls\r\0pwd\r\n"], false), b"ls\rpwd\r");
        // Split between the CR and its LF.
        assert_eq!(input_all(&[b"ls\r", b"\nx"], false), b"ls\rx");
        // A CR followed by something else keeps both.
        assert_eq!(input_all(&[b"a\rb"], false), b"a\rb");
        // LF alone (some clients) passes.
        assert_eq!(input_all(&[b"a\nb"], false), b"a\nb");
        // In binary nothing changes.
        assert_eq!(input_all(&[b"a\r\n\r\0"], true), b"a\r\n\r\0");
    }

    #[test]
    fn input_respects_room() {
        let mut i = Input::default();
        let mut out = Vec::new();
        assert_eq!(i.map(b"abc\r\ndef", false, 2, &mut out), 2);
        assert_eq!(out, b"ab");
        assert_eq!(i.map(b"c\r\ndef", false, 2, &mut out), 3);
        assert_eq!(out, b"abc\r");
        // Room 0: a pending LF is still dropped, nothing else taken.
        assert_eq!(i.map(b"def", false, 0, &mut out), 0);
        assert_eq!(i.map(b"def", false, 10, &mut out), 3);
        assert_eq!(out, b"abc\rdef");
    }

    #[test]
    fn output_escapes() {
        let mut out = Vec::new();
        let data = b"a\r\nb\rc\xffd\r";
        assert_eq!(output(data, false, usize::MAX, &mut out), data.len());
        assert_eq!(out, b"a\r\nb\r\0c\xff\xffd\r\0");
        let mut out = Vec::new();
        output(data, true, usize::MAX, &mut out);
        assert_eq!(out, b"a\r\nb\rc\xff\xffd\r");
    }

    #[test]
    fn output_respects_room() {
        // Whatever the room, the pieces join to the whole.
        let data = b"\xff\xffab\r\ncd\re\xff";
        let mut whole = Vec::new();
        output(data, false, usize::MAX, &mut whole);
        for room in 2..whole.len() + 2 {
            let mut out = Vec::new();
            let mut rest: &[u8] = data;
            while !rest.is_empty() {
                let before = out.len();
                let n = output(rest, false, room, &mut out);
                assert!(out.len() - before <= room);
                assert!(n > 0, "no progress with room {room}");
                rest = &rest[n..];
            }
            assert_eq!(out, whole, "room {room}");
        }
        let mut out = Vec::new();
        assert_eq!(output(b"\xff", false, 1, &mut out), 0);
    }

    #[test]
    fn text_for_the_wire() {
        assert_eq!(text(b"login: "), b"login: ");
        assert_eq!(text(b"a\nb\r\nc\rd\xff"), b"a\r\nb\r\nc\r\0d\xff\xff");
    }
}
