//! The history: every message-id this server has seen, so that an article
//! is taken once whichever peer offers it, and remembered for longer than
//! the article itself is kept (`history_lifetime`).
//!
//! `history` is text, one line per message-id, appended under the spool
//! lock: `<message-id> TAB arrival TAB group:number,group:number` (the third
//! field empty when the article was refused or is gone). `history.index`
//! is a hash table over it (as INN's dbz is): a 64-byte header, then
//! 16-byte slots `(hash, offset of the line)`, linear probing, at most half
//! full; it grows by being rebuilt aside from the text and renamed, and the
//! old file is marked retired so that processes holding it reopen. A slot
//! only points at a line: a lookup always reads the line and compares the
//! message-id, so a stale slot can cost a probe, never a wrong answer.
//!
//! A message-id is never a file name here: only its hash is used.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::nntp::command::{valid_group_name, valid_message_id};

const MAGIC: &[u8; 8] = b"NNTPHIX1";
const HEADER: u64 = 64;
const SLOT: u64 = 16;
const MIN_SLOTS: u64 = 1 << 14;
/// Longest history line read back.
const MAX_LINE: usize = 8192;

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub message_id: String,
    /// Seconds since the epoch.
    pub arrived: u64,
    /// Where the article is stored (empty: refused, cancelled or expired).
    pub xref: Vec<(String, u64)>,
}

impl Line {
    pub fn format(&self) -> String {
        let xref: Vec<String> = self.xref.iter().map(|(g, n)| format!("{g}:{n}")).collect();
        format!(
            "{}\t{}\t{}\n",
            self.message_id,
            self.arrived,
            xref.join(",")
        )
    }
}

/// Parse a line (without its LF); None when malformed.
pub fn parse_line(line: &str) -> Option<Line> {
    let mut f = line.split('\t');
    let message_id = f.next()?;
    let arrived = f.next()?.parse().ok()?;
    let xref_text = f.next()?;
    if f.next().is_some() || !valid_message_id(message_id) {
        return None;
    }
    let mut xref = Vec::new();
    for item in xref_text.split(',').filter(|s| !s.is_empty()) {
        let (g, n) = item.rsplit_once(':')?;
        if !valid_group_name(g) || n.is_empty() || n.len() > 16 {
            return None;
        }
        xref.push((g.to_string(), n.parse().ok()?));
    }
    Some(Line {
        message_id: message_id.to_string(),
        arrived,
        xref,
    })
}

/// A slot whose line was taken back (`forget`): probes go past it.
const TOMBSTONE: u64 = u64::MAX;

/// FNV-1a, never 0 (an empty slot) nor the tombstone.
fn hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.clamp(1, TOMBSTONE - 1)
}

#[derive(Clone, Copy, Debug, Default)]
struct Header {
    slots: u64,
    used: u64,
    /// Bytes of the text the table covers.
    indexed: u64,
    retired: bool,
}

fn read_header(f: &File) -> io::Result<Option<Header>> {
    let mut b = [0u8; HEADER as usize];
    match f.read_exact_at(&mut b, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if &b[..8] != MAGIC {
        return Ok(None);
    }
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let h = Header {
        slots: u(8),
        used: u(16),
        indexed: u(24),
        retired: u(32) != 0,
    };
    let len = f.metadata()?.len();
    if h.slots == 0 || h.slots > (1 << 40) || len < HEADER + h.slots * SLOT {
        return Ok(None);
    }
    Ok(Some(h))
}

fn header_bytes(h: &Header) -> [u8; HEADER as usize] {
    let mut b = [0u8; HEADER as usize];
    b[..8].copy_from_slice(MAGIC);
    b[8..16].copy_from_slice(&h.slots.to_le_bytes());
    b[16..24].copy_from_slice(&h.used.to_le_bytes());
    b[24..32].copy_from_slice(&h.indexed.to_le_bytes());
    b[32..40].copy_from_slice(&u64::from(h.retired).to_le_bytes());
    b
}

/// The history of a spool.
pub struct History {
    text_path: PathBuf,
    index_path: PathBuf,
    text: File,
    index: Option<File>,
    /// Under the spool lock nobody else writes: the header and the text's
    /// length are kept here rather than read for each article.
    pinned: Option<(Header, u64)>,
    /// What was appended while pinned, written by `unpin` in one go.
    pending: Pending,
}

/// A pinned writer's lines and slots not written yet (`unpin` writes the
/// text, then the slots, then the header; `discard` drops them). Lookups
/// see them as if they were written.
#[derive(Default)]
struct Pending {
    text: Vec<u8>,
    slots: HashMap<u64, [u8; SLOT as usize]>,
    /// The header changed (used, indexed).
    header: bool,
    /// Where the last lookup's probe ended, (hash, slot): the insert of
    /// the message-id that lookup did not find goes there, unread.
    last_miss: Option<(u64, u64)>,
}

impl History {
    /// Open (creating the text if missing). The index is opened if it is
    /// there and sound; writers make it with [`History::ensure_index`].
    pub fn open(dir: &Path) -> io::Result<History> {
        let text_path = dir.join("history");
        let index_path = dir.join("history.index");
        let text = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&text_path)?;
        let mut h = History {
            text_path,
            index_path,
            text,
            index: None,
            pinned: None,
            pending: Pending::default(),
        };
        h.open_index()?;
        Ok(h)
    }

    /// (Re)open the index, and the text with it: an index is replaced
    /// together with the text it covers (expire) or after it (growth).
    fn open_index(&mut self) -> io::Result<()> {
        self.text = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.text_path)?;
        self.index = match OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.index_path)
        {
            Ok(f) => match read_header(&f)? {
                Some(h) if !h.retired => Some(f),
                _ => None,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }

    /// The caller holds the spool lock: index what is not, then keep the
    /// header and the text's length in memory until `unpin`.
    pub fn pin(&mut self) -> io::Result<()> {
        self.pinned = None;
        self.ensure_index()?;
        self.repin()
    }

    fn repin(&mut self) -> io::Result<()> {
        self.pinned = None;
        let h = self
            .header()?
            .ok_or_else(|| io::Error::other("history index missing"))?;
        let len = self.text.metadata()?.len();
        self.pinned = Some((h, len));
        Ok(())
    }

    /// Write what was appended while pinned, and let go.
    pub fn unpin(&mut self) -> io::Result<()> {
        let written = self.write_pending();
        self.discard();
        written
    }

    /// Let go, dropping what was appended while pinned: nothing of it was
    /// written.
    pub fn discard(&mut self) {
        self.pinned = None;
        self.pending = Pending::default();
    }

    /// The pending text (appended: nobody else writes under the lock),
    /// the slots, then the header's counts.
    fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.text.is_empty() {
            (&self.text).write_all(&self.pending.text)?;
            self.pending.text.clear();
        }
        if let Some(index) = &self.index {
            let mut slots: Vec<_> = self.pending.slots.drain().collect();
            slots.sort_unstable_by_key(|(i, _)| *i);
            for (i, s) in slots {
                index.write_all_at(&s, HEADER + i * SLOT)?;
            }
            if self.pending.header {
                if let Some((h, _)) = &self.pinned {
                    let mut counts = [0u8; 16];
                    counts[..8].copy_from_slice(&h.used.to_le_bytes());
                    counts[8..].copy_from_slice(&h.indexed.to_le_bytes());
                    index.write_all_at(&counts, 16)?;
                }
            }
        }
        self.pending.slots.clear();
        self.pending.header = false;
        Ok(())
    }

    /// A slot of the index, as pending or as on disk.
    fn read_slot(&self, i: u64) -> io::Result<[u8; SLOT as usize]> {
        if let Some(s) = self.pending.slots.get(&i) {
            return Ok(*s);
        }
        let index = self.index.as_ref().expect("header read");
        let mut s = [0u8; SLOT as usize];
        index.read_exact_at(&mut s, HEADER + i * SLOT)?;
        Ok(s)
    }

    fn current_len(&self) -> io::Result<u64> {
        match &self.pinned {
            Some((_, len)) => Ok(*len),
            None => Ok(self.text.metadata()?.len()),
        }
    }

    /// The index's header, reopening it if it was replaced.
    fn header(&mut self) -> io::Result<Option<Header>> {
        if let Some((h, _)) = &self.pinned {
            return Ok(Some(*h));
        }
        for _ in 0..2 {
            let Some(f) = &self.index else {
                self.open_index()?;
                if self.index.is_none() {
                    return Ok(None);
                }
                continue;
            };
            match read_header(f)? {
                Some(h) if !h.retired => return Ok(Some(h)),
                _ => self.open_index()?,
            }
        }
        Ok(None)
    }

    /// The line at `offset` of the text, if it is whole.
    fn line_at(&self, offset: u64) -> io::Result<Option<Line>> {
        if let Some((_, len)) = &self.pinned {
            let on_disk = len - self.pending.text.len() as u64;
            if offset >= on_disk {
                // (A slot can point anywhere: a damaged index.)
                let Some(rest) = usize::try_from(offset - on_disk)
                    .ok()
                    .and_then(|at| self.pending.text.get(at..))
                else {
                    return Ok(None);
                };
                let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                return Ok(std::str::from_utf8(&rest[..end]).ok().and_then(parse_line));
            }
        }
        let mut buf = vec![0u8; 512];
        let mut got = 0;
        loop {
            let n = self.text.read_at(&mut buf[got..], offset + got as u64)?;
            got += n;
            if let Some(end) = buf[..got].iter().position(|&b| b == b'\n') {
                return Ok(std::str::from_utf8(&buf[..end]).ok().and_then(parse_line));
            }
            if n == 0 || got >= MAX_LINE {
                return Ok(None);
            }
            if got == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        }
    }

    /// The line for a message-id, if it was ever seen.
    pub fn lookup(&mut self, message_id: &str) -> io::Result<Option<Line>> {
        let Some(h) = self.header()? else {
            return self.scan_for(message_id);
        };
        let want = hash(message_id);
        let mut i = want % h.slots;
        for _ in 0..h.slots {
            let s = self.read_slot(i)?;
            let sh = u64::from_le_bytes(s[..8].try_into().expect("8"));
            if sh == 0 {
                if self.pinned.is_some() {
                    self.pending.last_miss = Some((want, i));
                }
                break;
            }
            if sh == want {
                let off = u64::from_le_bytes(s[8..].try_into().expect("8"));
                if let Some(line) = self.line_at(off)? {
                    if line.message_id == message_id {
                        return Ok(Some(line));
                    }
                }
            }
            i = (i + 1) % h.slots;
        }
        // Lines past what the table covers (another writer's, in flight).
        let len = self.current_len()?;
        if h.indexed < len {
            return self.scan_from(h.indexed, message_id);
        }
        Ok(None)
    }

    fn scan_for(&self, message_id: &str) -> io::Result<Option<Line>> {
        self.scan_from(0, message_id)
    }

    fn scan_from(&self, from: u64, message_id: &str) -> io::Result<Option<Line>> {
        let mut found = None;
        self.each_from(from, |_, line| {
            if line.message_id == message_id {
                found = Some(line);
            }
        })?;
        Ok(found)
    }

    /// Call `f(offset, line)` for every well-formed line from `from`.
    fn each_from(&self, from: u64, mut f: impl FnMut(u64, Line)) -> io::Result<()> {
        let mut r = io::BufReader::with_capacity(1 << 16, &self.text);
        r.seek(SeekFrom::Start(from))?;
        let mut at = from;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = io::BufRead::read_until(&mut r, b'\n', &mut buf)?;
            if n == 0 || buf.last() != Some(&b'\n') {
                return Ok(());
            }
            if let Some(line) = std::str::from_utf8(&buf[..n - 1]).ok().and_then(parse_line) {
                f(at, line);
            }
            at += n as u64;
        }
    }

    /// Every line, in order (expire, NEWNEWS, replay).
    pub fn each(&self, f: impl FnMut(u64, Line)) -> io::Result<()> {
        self.each_from(0, f)
    }

    /// Take a message-id back (its article could not be stored after all):
    /// lookups no longer find it, until a rebuild reads its line again.
    /// Under the spool lock.
    pub fn forget(&mut self, message_id: &str) -> io::Result<()> {
        let Some(h) = self.header()? else {
            return Ok(());
        };
        let want = hash(message_id);
        let mut i = want % h.slots;
        for _ in 0..h.slots {
            let s = self.read_slot(i)?;
            let sh = u64::from_le_bytes(s[..8].try_into().expect("8"));
            if sh == 0 {
                break;
            }
            if sh == want {
                let off = u64::from_le_bytes(s[8..].try_into().expect("8"));
                if self
                    .line_at(off)?
                    .is_some_and(|l| l.message_id == message_id)
                {
                    let index = self.index.as_ref().expect("header read");
                    index.write_all_at(&TOMBSTONE.to_le_bytes(), HEADER + i * SLOT)?;
                }
            }
            i = (i + 1) % h.slots;
        }
        Ok(())
    }

    /// Build the index if it is missing or retired, and index any lines
    /// past what it covers. Under the spool lock.
    pub fn ensure_index(&mut self) -> io::Result<()> {
        if self.pinned.is_some() {
            return Ok(());
        }
        let Some(h) = self.header()? else {
            return self.rebuild(MIN_SLOTS);
        };
        let len = self.text.metadata()?.len();
        if h.indexed < len {
            let mut tail = Vec::new();
            self.each_from(h.indexed, |at, line| tail.push((at, line.message_id)))?;
            if (h.used + tail.len() as u64 + 1) * 2 > h.slots {
                return self.rebuild(h.slots * 2);
            }
            for (at, id) in tail {
                self.insert(&id, at)?;
            }
            self.set_indexed(len)?;
        }
        Ok(())
    }

    fn set_indexed(&mut self, len: u64) -> io::Result<()> {
        if let Some((h, _)) = self.pinned.as_mut() {
            h.indexed = len;
            self.pending.header = true;
            return Ok(());
        }
        let index = self.index.as_ref().expect("index open");
        index.write_all_at(&len.to_le_bytes(), 24)
    }

    fn insert(&mut self, message_id: &str, offset: u64) -> io::Result<()> {
        let Some(mut h) = self.header()? else {
            return Err(io::Error::other("history index missing"));
        };
        if (h.used + 1) * 2 > h.slots {
            return self.rebuild((h.slots * 2).max(MIN_SLOTS));
        }
        let want = hash(message_id);
        let i = match self.pending.last_miss.take() {
            Some((hashed, slot)) if hashed == want && self.pinned.is_some() => slot,
            _ => {
                let mut i = want % h.slots;
                while self.read_slot(i)?[..8] != [0; 8] {
                    i = (i + 1) % h.slots;
                }
                i
            }
        };
        let mut slot = [0u8; SLOT as usize];
        slot[..8].copy_from_slice(&want.to_le_bytes());
        slot[8..].copy_from_slice(&offset.to_le_bytes());
        h.used += 1;
        if let Some((p, _)) = self.pinned.as_mut() {
            p.used = h.used;
            self.pending.slots.insert(i, slot);
            self.pending.header = true;
            return Ok(());
        }
        let index = self.index.as_ref().expect("index open");
        index.write_all_at(&slot, HEADER + i * SLOT)?;
        index.write_all_at(&h.used.to_le_bytes(), 16)
    }

    /// Append a line and index it (under the spool lock).
    pub fn append(&mut self, line: &Line) -> io::Result<()> {
        self.ensure_index()?;
        let offset = self.current_len()?;
        let text = line.format();
        if let Some((_, len)) = self.pinned.as_mut() {
            self.pending.text.extend_from_slice(text.as_bytes());
            *len += text.len() as u64;
        } else {
            (&self.text).write_all(text.as_bytes())?;
        }
        self.insert(&line.message_id, offset)?;
        self.set_indexed(offset + text.len() as u64)
    }

    /// Rebuild the index from the text with at least `slots` slots (under
    /// the spool lock): aside, renamed, the old one marked retired.
    pub fn rebuild(&mut self, slots: u64) -> io::Result<()> {
        // The text is read from the file: what is pending goes there first
        // (its slots are of the old table, and dropped).
        self.write_pending()?;
        self.pending = Pending::default();
        let mut entries = Vec::new();
        self.each(|at, line| entries.push((hash(&line.message_id), at)))?;
        let len = self.text.metadata()?.len();
        let mut slots = slots.max(MIN_SLOTS);
        while (entries.len() as u64 + 1) * 2 > slots {
            slots *= 2;
        }
        let mut table = vec![0u8; (slots * SLOT) as usize];
        for (h, at) in &entries {
            let mut i = h % slots;
            loop {
                let p = (i * SLOT) as usize;
                if table[p..p + 8] == [0; 8] {
                    table[p..p + 8].copy_from_slice(&h.to_le_bytes());
                    table[p + 8..p + 16].copy_from_slice(&at.to_le_bytes());
                    break;
                }
                i = (i + 1) % slots;
            }
        }
        let header = Header {
            slots,
            used: entries.len() as u64,
            indexed: len,
            retired: false,
        };
        let mut f = crate::fs::AsideFile::beside(&self.index_path, 0o644)?;
        f.write_all(&header_bytes(&header))?;
        f.write_all(&table)?;
        f.install(&self.index_path)?;
        if let Some(old) = self.index.take() {
            let _ = old.write_all_at(&1u64.to_le_bytes(), 32);
        }
        let was_pinned = self.pinned.take().is_some();
        self.open_index()?;
        if self.index.is_none() {
            return Err(io::Error::other("history index rebuilt but unreadable"));
        }
        if was_pinned {
            self.repin()?;
        }
        Ok(())
    }

    /// Replace the text by `lines` (expire), then rebuild the index. Under
    /// the spool lock.
    pub fn rewrite(&mut self, lines: &[Line]) -> io::Result<()> {
        let mut f = crate::fs::AsideFile::beside(&self.text_path, 0o644)?;
        let mut w = io::BufWriter::new(&mut f);
        for l in lines {
            w.write_all(l.format().as_bytes())?;
        }
        w.flush()?;
        drop(w);
        f.commit(&self.text_path)?;
        self.text = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.text_path)?;
        self.rebuild(lines.len() as u64 * 2)
    }

    /// fsync the text and the index.
    pub fn sync(&self) -> io::Result<()> {
        self.text.sync_data()?;
        if let Some(i) = &self.index {
            i.sync_data()?;
        }
        Ok(())
    }

    /// The text's current length (for tests and replay).
    pub fn text_len(&self) -> io::Result<u64> {
        Ok(self.text.metadata()?.len())
    }

    /// The whole text, for callers that hand it on (NEWNEWS).
    pub fn text_file(&self) -> io::Result<File> {
        File::open(&self.text_path)
    }
}

/// Fuzzing entry point: any bytes as history lines.
pub fn fuzz_history(data: &[u8]) {
    for line in String::from_utf8_lossy(data).lines() {
        if let Some(l) = parse_line(line) {
            assert_eq!(parse_line(l.format().trim_end_matches('\n')), Some(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nntp-hist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn line(i: u32) -> Line {
        Line {
            message_id: format!("<{i}@x>"),
            arrived: 1000 + u64::from(i),
            xref: vec![("a.b".into(), u64::from(i))],
        }
    }

    #[test]
    fn lines_round_trip() {
        let l = Line {
            message_id: "<a@b>".into(),
            arrived: 5,
            xref: vec![("x.y".into(), 3), ("z".into(), 9)],
        };
        assert_eq!(l.format(), "<a@b>\t5\tx.y:3,z:9\n");
        assert_eq!(parse_line("<a@b>\t5\tx.y:3,z:9"), Some(l));
        assert_eq!(parse_line("<a@b>\t5\t").unwrap().xref, vec![]);
        for bad in [
            "",
            "<a@b>",
            "<a@b>\tx\t",
            "a@b\t5\t",
            "<a@b>\t5\t../x:1",
            "<a@b>\t5\tx:",
            "<a@b>\t5\tx:1\textra",
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn append_lookup_grow_and_rewrite() {
        let d = temp("grow");
        let mut h = History::open(&d).unwrap();
        assert!(h.lookup("<1@x>").unwrap().is_none());
        let n = (MIN_SLOTS / 2 + 10) as u32;
        for i in 0..n {
            h.append(&line(i)).unwrap();
        }
        for i in (0..n).step_by(97) {
            assert_eq!(h.lookup(&format!("<{i}@x>")).unwrap(), Some(line(i)));
        }
        assert!(h.lookup("<nope@x>").unwrap().is_none());
        // A second handle (another process) sees the grown index.
        let mut other = History::open(&d).unwrap();
        assert_eq!(other.lookup("<5@x>").unwrap(), Some(line(5)));
        h.rewrite(&[line(7)]).unwrap();
        assert!(other.lookup("<5@x>").unwrap().is_none());
        assert_eq!(other.lookup("<7@x>").unwrap(), Some(line(7)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_pinned_writers_lines_are_written_at_unpin_and_seen_before() {
        let d = temp("pinned");
        let mut h = History::open(&d).unwrap();
        h.append(&line(0)).unwrap();
        h.pin().unwrap();
        // Enough to rebuild the table while pinned.
        let n = (MIN_SLOTS / 2 + 10) as u32;
        for i in 1..n {
            assert!(h.lookup(&format!("<{i}@x>")).unwrap().is_none());
            h.append(&line(i)).unwrap();
            // A duplicate in the same batch is found in what is pending.
            assert_eq!(h.lookup(&format!("<{i}@x>")).unwrap(), Some(line(i)));
        }
        for i in n..n + 50 {
            h.append(&line(i)).unwrap();
        }
        h.unpin().unwrap();
        let mut other = History::open(&d).unwrap();
        for i in (0..n + 50).step_by(7) {
            assert_eq!(other.lookup(&format!("<{i}@x>")).unwrap(), Some(line(i)));
        }
        // A discarded batch leaves nothing behind.
        let len = h.text_len().unwrap();
        h.pin().unwrap();
        h.append(&line(999_999)).unwrap();
        h.discard();
        assert_eq!(h.text_len().unwrap(), len);
        assert!(other.lookup("<999999@x>").unwrap().is_none());
        assert!(h.lookup("<999999@x>").unwrap().is_none());
        h.pin().unwrap();
        h.append(&line(999_998)).unwrap();
        h.unpin().unwrap();
        assert_eq!(other.lookup("<999998@x>").unwrap(), Some(line(999_998)));
        // A damaged slot pointing far past the text: not found, no panic.
        let want = hash("<zz@x>");
        let slots = read_header(h.index.as_ref().unwrap())
            .unwrap()
            .unwrap()
            .slots;
        let mut bad = [0u8; SLOT as usize];
        bad[..8].copy_from_slice(&want.to_le_bytes());
        bad[8..].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        let index = OpenOptions::new()
            .write(true)
            .open(d.join("history.index"))
            .unwrap();
        index
            .write_all_at(&bad, HEADER + (want % slots) * SLOT)
            .unwrap();
        h.pin().unwrap();
        h.append(&line(999_997)).unwrap();
        assert!(h.lookup("<zz@x>").unwrap().is_none());
        h.unpin().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_index_is_rebuilt_and_unindexed_lines_found() {
        let d = temp("missing");
        std::fs::write(d.join("history"), line(1).format() + &line(2).format()).unwrap();
        let mut h = History::open(&d).unwrap();
        // No index: found by scanning.
        assert_eq!(h.lookup("<2@x>").unwrap(), Some(line(2)));
        h.ensure_index().unwrap();
        assert_eq!(h.lookup("<1@x>").unwrap(), Some(line(1)));
        // A line written by a writer that died before indexing it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.join("history"))
            .unwrap();
        f.write_all(line(3).format().as_bytes()).unwrap();
        assert_eq!(h.lookup("<3@x>").unwrap(), Some(line(3)));
        h.ensure_index().unwrap();
        assert_eq!(h.lookup("<3@x>").unwrap(), Some(line(3)));
        // A garbage index is ignored.
        std::fs::write(d.join("history.index"), b"garbage").unwrap();
        let mut g = History::open(&d).unwrap();
        assert_eq!(g.lookup("<1@x>").unwrap(), Some(line(1)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_history(b"<a@b>\t1\tx:1\n<\t\t\n\xff\n");
    }
}
