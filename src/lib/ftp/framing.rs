//! RFC 959's transmission modes and file structures, pure and streaming:
//! how the bytes of a file (after TYPE's conversion) are framed on the data
//! connection, and unframed on the way in.
//!
//! - MODE S (stream): the bytes as they are; the end of the file is the end
//!   of the connection. With STRU R, 0xFF is doubled and records end with
//!   0xFF 0x01 (EOR), the file with 0xFF 0x02 (EOF; 0x03: both).
//! - MODE B (block): blocks of a descriptor byte (128 EOR, 64 EOF, 32
//!   suspected errors, 16 restart marker), a 16-bit count and that many
//!   bytes; the last block carries EOF.
//! - MODE C (compressed): `0nnnnnnn` and n bytes of data, `10nnnnnn` and one
//!   byte repeated n times, `11nnnnnn` for n filler bytes (spaces in ASCII,
//!   zeros in image), and `00000000` with a descriptor byte for EOR/EOF.
//! - STRU F: a file is a byte stream. STRU R: a file is a sequence of
//!   records, here its lines (the newline is the record's end, not data).
//!   STRU P: a file is a sequence of pages, each with a header (header
//!   length 4, page index, data length, page type: 1 a simple page, 0 the
//!   last page, which has no data); with 8-bit logical bytes a page holds
//!   at most 255 bytes and the index counts modulo 256.
//!
//! Restart markers are not sent (REST is for MODE S only, as FEAT says).

/// MODE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMode {
    Stream,
    Block,
    Compressed,
}

/// STRU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    File,
    Record,
    Page,
}

const EOR: u8 = 0x80;
const EOF: u8 = 0x40;
/// The most a block carries.
const BLOCK: usize = 65535;
/// The most a page carries (its length is one 8-bit logical byte).
const PAGE: usize = 255;

/// Data that does not follow the framing it claims.
#[derive(Debug, PartialEq, Eq)]
pub struct FramingError(pub &'static str);

/// What the sender hands to the mode below the structure: data, the end
/// of a record, or the end of the file.
enum Unit<'a> {
    Data(&'a [u8]),
    EndOfRecord,
    EndOfFile,
}

/// File bytes to the wire.
pub struct Framer {
    mode: TransferMode,
    structure: Structure,
    /// The filler byte of MODE C (a space in ASCII, else zero).
    filler: u8,
    /// STRU P: the page being filled and the next page's index.
    page: Vec<u8>,
    index: u8,
    /// The previous unit ended a record (so EOF can join it, 0x03 / 192).
    record_open: bool,
}

impl Framer {
    pub fn new(mode: TransferMode, structure: Structure, ascii: bool) -> Framer {
        Framer {
            mode,
            structure,
            filler: if ascii { b' ' } else { 0 },
            page: Vec::new(),
            index: 1,
            record_open: false,
        }
    }

    /// Whether the bytes go out as they are (the fast paths may be used).
    pub fn is_plain(mode: TransferMode, structure: Structure) -> bool {
        mode == TransferMode::Stream && structure == Structure::File
    }

    /// Frame the next bytes of the file.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        match self.structure {
            Structure::File => self.unit(Unit::Data(data), out),
            Structure::Record => {
                let mut rest = data;
                while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                    self.unit(Unit::Data(&rest[..i]), out);
                    self.unit(Unit::EndOfRecord, out);
                    rest = &rest[i + 1..];
                }
                if !rest.is_empty() {
                    self.unit(Unit::Data(rest), out);
                    self.record_open = true;
                }
            }
            Structure::Page => {
                let mut rest = data;
                while !rest.is_empty() {
                    let room = PAGE - self.page.len();
                    let n = room.min(rest.len());
                    self.page.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                    if self.page.len() == PAGE {
                        self.flush_page(out);
                    }
                }
            }
        }
    }

    /// The end of the file.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.structure {
            Structure::Page => {
                if !self.page.is_empty() {
                    self.flush_page(out);
                }
                let last = [4, self.index, 0, 0];
                self.unit(Unit::Data(&last), out);
            }
            Structure::Record if self.record_open => {
                // A last line without its newline is still a record.
                self.unit(Unit::EndOfRecord, out);
            }
            _ => {}
        }
        self.unit(Unit::EndOfFile, out);
    }

    fn flush_page(&mut self, out: &mut Vec<u8>) {
        let page = std::mem::take(&mut self.page);
        let header = [4, self.index, page.len() as u8, 1];
        self.index = self.index.wrapping_add(1);
        self.unit(Unit::Data(&header), out);
        self.unit(Unit::Data(&page), out);
    }

    fn unit(&mut self, u: Unit<'_>, out: &mut Vec<u8>) {
        if matches!(u, Unit::EndOfRecord) {
            self.record_open = false;
        }
        match (self.mode, u) {
            (TransferMode::Stream, Unit::Data(d)) => {
                if self.structure == Structure::Record {
                    for &b in d {
                        out.push(b);
                        if b == 0xff {
                            out.push(0xff);
                        }
                    }
                } else {
                    out.extend_from_slice(d);
                }
            }
            (TransferMode::Stream, Unit::EndOfRecord) => out.extend_from_slice(&[0xff, 0x01]),
            (TransferMode::Stream, Unit::EndOfFile) => {
                if self.structure == Structure::Record {
                    out.extend_from_slice(&[0xff, 0x02]);
                }
            }
            (TransferMode::Block, Unit::Data(d)) => {
                for chunk in d.chunks(BLOCK) {
                    out.push(0);
                    out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    out.extend_from_slice(chunk);
                }
            }
            (TransferMode::Block, Unit::EndOfRecord) => out.extend_from_slice(&[EOR, 0, 0]),
            (TransferMode::Block, Unit::EndOfFile) => out.extend_from_slice(&[EOF, 0, 0]),
            (TransferMode::Compressed, Unit::Data(d)) => compress(d, self.filler, out),
            (TransferMode::Compressed, Unit::EndOfRecord) => out.extend_from_slice(&[0, EOR]),
            (TransferMode::Compressed, Unit::EndOfFile) => out.extend_from_slice(&[0, EOF]),
        }
    }
}

/// MODE C's encoding of data: runs of the filler, runs of another byte,
/// and literal stretches.
fn compress(d: &[u8], filler: u8, out: &mut Vec<u8>) {
    let mut i = 0;
    let mut literal_start = 0;
    let flush_literal = |out: &mut Vec<u8>, from: usize, to: usize| {
        for chunk in d[from..to].chunks(127) {
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
    };
    while i < d.len() {
        let b = d[i];
        let run = d[i..].iter().take(63).take_while(|&&x| x == b).count();
        // A run pays off from two fillers (one byte) or three of another.
        if (b == filler && run >= 2) || run >= 3 {
            flush_literal(out, literal_start, i);
            if b == filler {
                out.push(0xc0 | run as u8);
            } else {
                out.push(0x80 | run as u8);
                out.push(b);
            }
            i += run;
            literal_start = i;
        } else {
            i += 1;
        }
    }
    flush_literal(out, literal_start, d.len());
}

/// Where the deframer is in the wire stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// Stream mode with records: after an 0xFF.
    Escape,
    /// Block mode: header bytes read so far (descriptor, count).
    BlockHeader(usize),
    /// Block mode: data bytes left in the block, its descriptor.
    BlockData(usize, u8),
    /// Compressed mode: the next byte is a control byte.
    Control,
    /// Compressed mode: literal bytes left.
    Literal(usize),
    /// Compressed mode: the byte to repeat comes next, this many times.
    Repeat(usize),
    /// Compressed mode: after 0x00, the descriptor.
    Descriptor,
    /// Plain bytes (stream, file or page).
    Plain,
}

/// The wire to file bytes.
pub struct Deframer {
    mode: TransferMode,
    structure: Structure,
    filler: u8,
    wire: Wire,
    header: [u8; 3],
    /// The end of the file was framed (block and compressed modes, records).
    done: bool,
    /// STRU P: the page parser's state.
    page_header: Vec<u8>,
    page_left: usize,
    last_page: bool,
}

impl Deframer {
    pub fn new(mode: TransferMode, structure: Structure, ascii: bool) -> Deframer {
        let wire = match mode {
            TransferMode::Stream => Wire::Plain,
            TransferMode::Block => Wire::BlockHeader(0),
            TransferMode::Compressed => Wire::Control,
        };
        Deframer {
            mode,
            structure,
            filler: if ascii { b' ' } else { 0 },
            wire,
            header: [0; 3],
            done: false,
            page_header: Vec::new(),
            page_left: 0,
            last_page: false,
        }
    }

    /// Unframe the next bytes from the network into the file's bytes.
    pub fn push(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
        let mut data = Vec::new();
        for &b in wire {
            if self.done {
                return Err(FramingError("data after the end of the file"));
            }
            self.byte(b, &mut data, out)?;
        }
        self.data(&data, out)
    }

    /// The connection ended: the framing must be complete.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), FramingError> {
        let _ = out;
        let framed_end = self.mode != TransferMode::Stream || self.structure == Structure::Record;
        if framed_end && !self.done {
            return Err(FramingError("the data ended without its end-of-file mark"));
        }
        if self.structure == Structure::Page && !self.last_page {
            return Err(FramingError("the pages ended without the last page"));
        }
        if !matches!(
            self.wire,
            Wire::Plain | Wire::BlockHeader(0) | Wire::Control
        ) {
            return Err(FramingError("the data ended inside a frame"));
        }
        Ok(())
    }

    /// One wire byte: data bytes collect in `data`; marks act at once
    /// (after the data before them).
    fn byte(&mut self, b: u8, data: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), FramingError> {
        match self.wire {
            Wire::Plain if self.structure == Structure::Record && b == 0xff => {
                self.wire = Wire::Escape
            }
            Wire::Plain => data.push(b),
            Wire::Escape => {
                self.wire = Wire::Plain;
                match b {
                    0xff => data.push(0xff),
                    0x01..=0x03 => {
                        self.flush(data, out)?;
                        self.mark(b & 1 != 0, b & 2 != 0, out);
                    }
                    _ => return Err(FramingError("an unknown escape in record structure")),
                }
            }
            Wire::BlockHeader(n) => {
                self.header[n] = b;
                if n < 2 {
                    self.wire = Wire::BlockHeader(n + 1);
                } else {
                    let count = u16::from_be_bytes([self.header[1], self.header[2]]) as usize;
                    let desc = self.header[0];
                    if desc & 0x10 != 0 {
                        // A restart marker: its bytes are not file data.
                        self.wire = Wire::BlockData(count, desc);
                    } else if count == 0 {
                        self.wire = Wire::BlockHeader(0);
                        self.flush(data, out)?;
                        self.mark(desc & EOR != 0, desc & EOF != 0, out);
                    } else {
                        self.wire = Wire::BlockData(count, desc);
                    }
                }
            }
            Wire::BlockData(left, desc) => {
                if desc & 0x10 == 0 {
                    data.push(b);
                }
                if left > 1 {
                    self.wire = Wire::BlockData(left - 1, desc);
                } else {
                    self.wire = Wire::BlockHeader(0);
                    if desc & 0x10 == 0 {
                        self.flush(data, out)?;
                        self.mark(desc & EOR != 0, desc & EOF != 0, out);
                    }
                }
            }
            Wire::Control => match b {
                0 => self.wire = Wire::Descriptor,
                1..=0x7f => self.wire = Wire::Literal(b as usize),
                0x80..=0xbf => {
                    let n = (b & 0x3f) as usize;
                    if n == 0 {
                        return Err(FramingError("a replicated run of no bytes"));
                    }
                    self.wire = Wire::Repeat(n);
                }
                _ => data.extend(std::iter::repeat_n(self.filler, (b & 0x3f) as usize)),
            },
            Wire::Literal(n) => {
                data.push(b);
                self.wire = if n > 1 {
                    Wire::Literal(n - 1)
                } else {
                    Wire::Control
                };
            }
            Wire::Repeat(n) => {
                data.extend(std::iter::repeat_n(b, n));
                self.wire = Wire::Control;
            }
            Wire::Descriptor => {
                self.wire = Wire::Control;
                self.flush(data, out)?;
                self.mark(b & EOR != 0, b & EOF != 0, out);
            }
        }
        Ok(())
    }

    fn flush(&mut self, data: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), FramingError> {
        let d = std::mem::take(data);
        self.data(&d, out)
    }

    /// End of a record (a newline in the file) and of the file.
    fn mark(&mut self, eor: bool, eof: bool, out: &mut Vec<u8>) {
        if eor && self.structure == Structure::Record {
            out.push(b'\n');
        }
        if eof {
            self.done = true;
        }
    }

    /// File data of the structure: pages unwrapped, else as it is.
    fn data(&mut self, d: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
        if self.structure != Structure::Page {
            out.extend_from_slice(d);
            return Ok(());
        }
        for &b in d {
            if self.last_page {
                return Err(FramingError("data after the last page"));
            }
            if self.page_left > 0 {
                out.push(b);
                self.page_left -= 1;
                continue;
            }
            self.page_header.push(b);
            let hl = self.page_header[0] as usize;
            if hl < 4 {
                return Err(FramingError("a page header shorter than 4"));
            }
            if self.page_header.len() == hl {
                let len = self.page_header[2] as usize;
                let kind = self.page_header[3];
                self.page_header.clear();
                match kind {
                    0 if len == 0 => self.last_page = true,
                    0 => return Err(FramingError("a last page with data")),
                    1..=3 => self.page_left = len,
                    _ => return Err(FramingError("an unknown page type")),
                }
            }
        }
        Ok(())
    }
}

/// For the fuzzer: the first byte picks the framing; the rest is the wire.
/// Unframing must never panic, and what the framer makes of the result
/// must unframe to it again.
pub fn fuzz_framing(data: &[u8]) {
    let Some((&pick, wire)) = data.split_first() else {
        return;
    };
    let mode = [
        TransferMode::Stream,
        TransferMode::Block,
        TransferMode::Compressed,
    ][(pick % 3) as usize];
    let stru = [Structure::File, Structure::Record, Structure::Page][((pick / 3) % 3) as usize];
    let ascii = pick & 0x80 != 0;
    let mut d = Deframer::new(mode, stru, ascii);
    let mut file = Vec::new();
    if d.push(wire, &mut file).is_err() || d.finish(&mut file).is_err() {
        return;
    }
    let mut f = Framer::new(mode, stru, ascii);
    let mut again = Vec::new();
    f.push(&file, &mut again);
    f.finish(&mut again);
    let mut d = Deframer::new(mode, stru, ascii);
    let mut back = Vec::new();
    d.push(&again, &mut back).expect("our own framing unframes");
    d.finish(&mut back).expect("our own framing ends");
    let want = match stru {
        // A last record without its newline gains one.
        Structure::Record if !file.is_empty() && file.last() != Some(&b'\n') => {
            let mut w = file.clone();
            w.push(b'\n');
            w
        }
        _ => file,
    };
    assert_eq!(back, want);
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferMode::*;

    fn frame(mode: TransferMode, stru: Structure, ascii: bool, parts: &[&[u8]]) -> Vec<u8> {
        let mut f = Framer::new(mode, stru, ascii);
        let mut out = Vec::new();
        for p in parts {
            f.push(p, &mut out);
        }
        f.finish(&mut out);
        out
    }

    fn unframe(
        mode: TransferMode,
        stru: Structure,
        ascii: bool,
        wire: &[u8],
        chunk: usize,
    ) -> Result<Vec<u8>, FramingError> {
        let mut d = Deframer::new(mode, stru, ascii);
        let mut out = Vec::new();
        for c in wire.chunks(chunk.max(1)) {
            d.push(c, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn block_mode_frames_with_an_eof_block() {
        assert_eq!(
            frame(Block, Structure::File, false, &[b"abc"]),
            vec![0, 0, 3, b'a', b'b', b'c', EOF, 0, 0]
        );
        assert_eq!(
            frame(Block, Structure::Record, true, &[b"ab\ncd\n"]),
            vec![0, 0, 2, b'a', b'b', EOR, 0, 0, 0, 0, 2, b'c', b'd', EOR, 0, 0, EOF, 0, 0]
        );
    }

    #[test]
    fn stream_records_escape_ff_and_mark_ends() {
        assert_eq!(
            frame(Stream, Structure::Record, false, &[b"a\xff\nb"]),
            b"a\xff\xff\xff\x01b\xff\x01\xff\x02".to_vec()
        );
    }

    #[test]
    fn compressed_mode_uses_runs_and_fillers() {
        let wire = frame(Compressed, Structure::File, true, &[b"ab     xxxxq"]);
        assert_eq!(
            wire,
            vec![2, b'a', b'b', 0xc0 | 5, 0x80 | 4, b'x', 1, b'q', 0, EOF]
        );
        // Image type: zeros are the filler.
        let wire = frame(Compressed, Structure::File, false, &[&[0, 0, 0, 7]]);
        assert_eq!(wire, vec![0xc0 | 3, 1, 7, 0, EOF]);
    }

    #[test]
    fn pages_carry_headers_and_a_last_page() {
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let wire = frame(Stream, Structure::Page, false, &[&data]);
        assert_eq!(&wire[..4], &[4, 1, 255, 1]);
        assert_eq!(&wire[259..263], &[4, 2, 45, 1]);
        assert_eq!(&wire[wire.len() - 4..], &[4, 3, 0, 0]);
    }

    #[test]
    fn every_mode_and_structure_round_trips_whatever_the_chunks() {
        let mut data = b"line one\n\xff\xfe\n\n     spaces\nzzzzzzzzzzzzzzzzzzzz\n".to_vec();
        data.extend((0..70_000u32).map(|i| (i % 7) as u8));
        data.extend_from_slice(b"\nlast line without newline");
        for mode in [Stream, Block, Compressed] {
            for stru in [Structure::File, Structure::Record, Structure::Page] {
                for ascii in [false, true] {
                    let wire = frame(mode, stru, ascii, &[&data[..1000], &data[1000..]]);
                    for chunk in [1, 7, 4096] {
                        let back = unframe(mode, stru, ascii, &wire, chunk).unwrap();
                        let want = if stru == Structure::Record {
                            let mut w = data.clone();
                            w.push(b'\n');
                            w
                        } else {
                            data.clone()
                        };
                        assert_eq!(back, want, "{mode:?} {stru:?} ascii={ascii} chunk={chunk}");
                    }
                }
            }
        }
    }

    #[test]
    fn broken_framing_is_an_error() {
        // Block mode without its EOF block.
        assert!(unframe(Block, Structure::File, false, &[0, 0, 1, b'a'], 10).is_err());
        // Cut inside a block.
        assert!(unframe(Block, Structure::File, false, &[0, 0, 5, b'a'], 10).is_err());
        // Compressed mode, a run of nothing.
        assert!(unframe(Compressed, Structure::File, false, &[0x80, b'a'], 10).is_err());
        // Records: an unknown escape.
        assert!(unframe(Stream, Structure::Record, false, b"a\xff\x07", 10).is_err());
        // Data after the end.
        assert!(unframe(
            Block,
            Structure::File,
            false,
            &[EOF, 0, 0, 0, 0, 1, b'a'],
            10
        )
        .is_err());
        // Pages: no last page, a bad header.
        assert!(unframe(Stream, Structure::Page, false, &[4, 1, 1, 1, b'x'], 10).is_err());
        assert!(unframe(Stream, Structure::Page, false, &[2, 1], 10).is_err());
        // Plain stream with file structure: anything goes.
        assert_eq!(
            unframe(Stream, Structure::File, false, b"any", 10).unwrap(),
            b"any"
        );
    }

    /// For the fuzzer: arbitrary wire bytes in every framing never panic,
    /// and what frames round-trips.
    #[test]
    fn garbage_never_panics() {
        let mut seed = 12345u64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let mut wire = Vec::new();
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                wire.push((seed >> 33) as u8);
            }
            for mode in [Stream, Block, Compressed] {
                for stru in [Structure::File, Structure::Record, Structure::Page] {
                    let _ = unframe(mode, stru, seed & 1 == 0, &wire, 3);
                }
            }
        }
    }
}
