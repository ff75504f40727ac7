//! The wire form of messages: any stored bytes, dot-stuffed in pieces
//! (DotStuffer), read back by the line reader and the strict un-stuffer
//! (Unstuffer) give the stored lines, with the block ending exactly where
//! it was written; WireSize counts what the stuffer sends before its dots;
//! CRLF -> LF (mailboxes) gives LF lines.
#![no_main]
use classicd::net::{Ending, Line, LineBuf};
use classicd::wire::{CrlfToLf, DotLine, DotStuffer, Unstuffer, WireSize};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&piece, stored)) = data.split_first() else {
        return;
    };
    let piece = 1 + piece as usize % 13;
    let mut stuffer = DotStuffer::new();
    let mut wire = Vec::new();
    let mut size = WireSize::new();
    for c in stored.chunks(piece) {
        stuffer.push(c, &mut wire);
        size.feed(c);
    }
    stuffer.finish(&mut wire);

    // The lines as stored: split at LF; a CR before the LF (or at the very
    // end) is that line end's, not content.
    let mut lines: Vec<&[u8]> = stored.split(|&b| b == b'\n').collect();
    if stored.is_empty() || stored.ends_with(b"\n") {
        lines.pop();
    }
    let lines: Vec<&[u8]> = lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let dots = lines.iter().filter(|l| l.first() == Some(&b'.')).count();
    assert_eq!(size.total() as usize, wire.len() - 3 - dots, "WireSize");

    // Read back as a server would, with what the client sends next.
    wire.extend_from_slice(b"QUIT\r\n");
    let mut reader = &wire[..];
    let mut buf = LineBuf::new(stored.len() + 8);
    let mut u = Unstuffer::new();
    let mut back = Vec::new();
    loop {
        match buf.read_line(&mut reader, stored.len() + 4).unwrap() {
            Line::Complete(l, ending) => match u.line(&l, ending) {
                DotLine::End => break,
                DotLine::Text(t) => {
                    assert_eq!(ending, Ending::CrLf);
                    back.push(t.to_vec());
                }
            },
            other => panic!("the block did not end: {other:?}"),
        }
    }
    assert_eq!(back, lines);
    let mut rest = buf.buffered().to_vec();
    rest.extend_from_slice(reader);
    assert_eq!(rest, b"QUIT\r\n", "the block ended early or late");

    // The wire lines back to LF for a mailbox.
    let mut crlf = Vec::new();
    for l in &back {
        crlf.extend_from_slice(l);
        crlf.extend_from_slice(b"\r\n");
    }
    let mut lf = Vec::new();
    let mut conv = CrlfToLf::new();
    for c in crlf.chunks(piece) {
        conv.feed(c, &mut lf);
    }
    conv.finish(&mut lf);
    let mut want = Vec::new();
    for l in &back {
        want.extend_from_slice(l);
        want.push(b'\n');
    }
    assert_eq!(lf, want);
});
