//! A folder's header cache, `classicd-headers` beside its `dovecot-uidlist`:
//! each message's header block (what `Folder::read_header` returns), so that
//! a SEARCH of a header field or a FETCH ENVELOPE over thousands of messages
//! reads one file instead of opening thousands (Dovecot answers those from
//! its `dovecot.index.cache` the same way).
//!
//! A message's header never changes (Maildir files are renamed, never
//! rewritten) and a UID names one message for as long as the folder's
//! UIDVALIDITY holds, so an entry never goes stale: the file is append-only,
//! keyed by UID, and starts with its format (2) and the UIDVALIDITY it
//! belongs to. Each record is `H <uid> <len> <check>\n`, the bytes, `\n`;
//! appends are single writes on an O_APPEND descriptor, so sessions never
//! interleave. Nothing is fsynced: it is a cache. A record is checked when
//! it is used, not when the file is read (a FETCH of every envelope starts
//! answering before it has looked at them all); one that does not check
//! out (a crash mid-write), or whose framing is wrong, ends what this
//! session takes from the file, and the file is started afresh by the
//! next compaction. A file of another format is removed and built again.
//! Records of expunged messages are dropped by a compaction (rewritten
//! aside under a dot-lock, then renamed over) once they outnumber the
//! live ones.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::mail::lock::DotLock;

pub const FILE: &str = "classicd-headers";

/// Headers longer than this are read from their message each time.
pub const MAX_CACHED: usize = 16 * 1024;

/// A bigger file is not read (started afresh instead).
const MAX_FILE: u64 = 1 << 31;

/// A record's first line is no longer.
const MAX_LINE: usize = 64;

/// The most of the file a session keeps in memory.
const MAX_MEMORY: usize = 32 << 20;

/// The file is read this much at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Dead records beyond this many (and beyond the live ones) start a
/// compaction.
const DEAD_SLACK: usize = 1000;

#[derive(Default)]
pub struct HeaderCache {
    path: PathBuf,
    uidvalidity: u32,
    file: Option<File>,
    /// The file's inode: a compaction by another session replaces it.
    inode: u64,
    /// UID -> where its record's bytes are and their check.
    index: HashMap<u32, Entry>,
    /// How far the file was read and its records indexed.
    read_to: u64,
    /// A record did not check out: no more reading or writing this file.
    broken: bool,
    /// The file's bytes from `mem_at` on, as read (while they fit in
    /// MAX_MEMORY): a SEARCH over every message then makes no system call
    /// per message. Past that size only an incomplete record is kept, and
    /// records are read with pread.
    mem: Vec<u8>,
    mem_at: u64,
    mem_off: bool,
}

/// A record in the file: the offset of its bytes, their length, and the
/// check they must match.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    at: u64,
    len: u32,
    check: u64,
}

/// A record's check: it catches a torn record, which is all it is for.
/// Eight bytes a step (format 1's FNV-1a took one byte a step, and was most
/// of reading a cache of 10,000 headers).
fn check(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64) ^ 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut v = [0u8; 8];
        v.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(v)).wrapping_mul(K).rotate_left(29);
    }
    let rest = words.remainder();
    let mut v = [0u8; 8];
    v[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(v)).wrapping_mul(K);
    h ^ (h >> 31)
}

fn first_line(uidvalidity: u32) -> String {
    format!("classicd-headers 2 V{uidvalidity}\n")
}

fn record(uid: u32, bytes: &[u8]) -> Vec<u8> {
    let mut r = format!("H {uid} {} {:x}\n", bytes.len(), check(bytes)).into_bytes();
    r.extend_from_slice(bytes);
    r.push(b'\n');
    r
}

impl HeaderCache {
    /// The cache of the folder in `dir` (nothing is read until needed).
    pub fn new(dir: &Path, uidvalidity: u32) -> HeaderCache {
        HeaderCache {
            path: dir.join(FILE),
            uidvalidity,
            ..HeaderCache::default()
        }
    }

    /// The UIDVALIDITY the cache was made for (0: none yet).
    pub fn validity(&self) -> u32 {
        self.uidvalidity
    }

    /// Whether this session has read the file (and so knows its records).
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// The header of `uid`, if cached.
    pub fn get(&mut self, uid: u32) -> Option<Vec<u8>> {
        if self.uidvalidity == 0 {
            return None;
        }
        if !self.index.contains_key(&uid) {
            self.refresh(Some(uid));
        }
        let e = *self.index.get(&uid)?;
        let (at, len) = (e.at, e.len as usize);
        let in_memory = at
            .checked_sub(self.mem_at)
            .and_then(|from| self.mem.get(from as usize..from as usize + len));
        let bytes = match in_memory {
            Some(b) => b.to_vec(),
            None => {
                let mut buf = vec![0u8; len];
                self.file.as_ref()?.read_exact_at(&mut buf, at).ok()?;
                buf
            }
        };
        if check(&bytes) != e.check {
            log::debug!(
                "{}: record of UID {uid} does not check out",
                self.path.display()
            );
            // Nothing more from this file; the next compaction mends it.
            self.broken = true;
            self.index.clear();
            return None;
        }
        Some(bytes)
    }

    /// Remember the header of `uid`. Failures only cost the cache.
    pub fn put(&mut self, uid: u32, header: &[u8]) {
        if self.uidvalidity == 0 || header.len() > MAX_CACHED || self.broken {
            return;
        }
        if self.file.is_none() {
            self.refresh(None);
        }
        if self.file.is_none() && self.create().is_err() {
            return;
        }
        if self.index.contains_key(&uid) {
            return;
        }
        if let Some(f) = self.file.as_mut() {
            // One write: appends of other sessions land before or after.
            let _ = f.write_all(&record(uid, header));
        }
    }

    /// Open the file (again, when another session compacted it) and read
    /// the records appended since the last look: all of them, or (`until`)
    /// as far as that UID's. A FETCH of every message in UID order so reads
    /// the file a piece ahead of its answers instead of all before them.
    fn refresh(&mut self, until: Option<u32>) {
        if self.broken {
            return;
        }
        let replaced = match std::fs::metadata(&self.path) {
            Ok(m) => m.ino() != self.inode,
            Err(_) => {
                self.file = None;
                return;
            }
        };
        if replaced || self.file.is_none() {
            self.file = None;
            self.index.clear();
            self.read_to = 0;
            self.mem.clear();
            self.mem_off = false;
            match self.open_existing() {
                Ok(Some((f, inode))) => {
                    self.file = Some(f);
                    self.inode = inode;
                }
                _ => return,
            }
        }
        loop {
            if until.is_some_and(|u| self.index.contains_key(&u)) {
                return;
            }
            match self.read_piece() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    log::debug!("{}: {e}; not read further", self.path.display());
                    self.broken = true;
                    return;
                }
            }
        }
    }

    /// The file, if it exists and belongs to this UIDVALIDITY; one of
    /// another validity (the folder was made anew) is removed.
    fn open_existing(&mut self) -> io::Result<Option<(File, u64)>> {
        let mut f =
            match crate::mail::open_regular(OpenOptions::new().read(true).append(true), &self.path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
        let want = first_line(self.uidvalidity);
        let mut head = vec![0u8; want.len()];
        let ok = f.read_exact(&mut head).is_ok() && head == want.as_bytes();
        let meta = f.metadata()?;
        if !ok || meta.len() > MAX_FILE {
            let _ = std::fs::remove_file(&self.path);
            return Ok(None);
        }
        self.read_to = want.len() as u64;
        self.mem_at = self.read_to;
        Ok(Some((f, meta.ino())))
    }

    /// A new file beside the cache, this process's own, to be linked or
    /// renamed into place.
    fn aside(&self) -> io::Result<(PathBuf, File)> {
        let tmp = self
            .path
            .with_file_name(format!(".{FILE}.{}", std::process::id()));
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        Ok((tmp, f))
    }

    fn create(&mut self) -> io::Result<()> {
        let (tmp, mut f) = self.aside()?;
        f.write_all(first_line(self.uidvalidity).as_bytes())?;
        // Another session may have made one meanwhile: keep that one.
        let made = std::fs::hard_link(&tmp, &self.path);
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = made {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        self.refresh(None);
        if self.file.is_none() {
            return Err(io::Error::other("header cache not opened"));
        }
        Ok(())
    }

    /// Read the next piece of the file and index the complete records in
    /// it; false when the file (as it is now) has been read to its end.
    /// `mem` holds the file from `mem_at` to where reading goes on; past
    /// MAX_MEMORY only a record not yet complete is kept there.
    fn read_piece(&mut self) -> io::Result<bool> {
        let Some(f) = self.file.as_ref() else {
            return Ok(false);
        };
        if !self.mem_off && self.mem.len() + READ_CHUNK > MAX_MEMORY {
            self.mem_off = true;
            self.mem.drain(..(self.read_to - self.mem_at) as usize);
            self.mem_at = self.read_to;
        }
        let start = self.mem.len();
        self.mem.resize(start + READ_CHUNK, 0);
        let read = loop {
            match f.read_at(&mut self.mem[start..], self.mem_at + start as u64) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        let n = read.inspect_err(|_| self.mem.truncate(start))?;
        self.mem.truncate(start + n);
        let from = (self.read_to - self.mem_at) as usize;
        let used = parse_records(&self.mem[from..], self.read_to, &mut self.index)?;
        self.read_to += used as u64;
        if self.mem_off {
            self.mem.drain(..from + used);
            self.mem_at = self.read_to;
        }
        Ok(n == READ_CHUNK)
    }

    /// Drop the records of messages no longer in the folder, when they
    /// outnumber the live ones (or the file does not check out): the live
    /// records are written aside and renamed over the file. `live`: the
    /// folder's UIDs now; records above `below` may be of messages this
    /// view does not know yet and are kept.
    pub fn compact(&mut self, live: &HashSet<u32>, below: u32) {
        if self.uidvalidity == 0 {
            return;
        }
        self.refresh(None);
        let dead = self
            .index
            .keys()
            .filter(|u| **u < below && !live.contains(u))
            .count();
        if !(self.broken || (dead > DEAD_SLACK && dead > live.len())) {
            return;
        }
        let Ok(_lock) = DotLock::acquire_brief(&self.path, std::time::Duration::from_secs(2))
        else {
            return;
        };
        let Ok((tmp, mut out)) = self.aside() else {
            return;
        };
        let written = (|| -> io::Result<()> {
            let mut data = first_line(self.uidvalidity).into_bytes();
            if !self.broken {
                let mut keep: Vec<(u32, Entry)> = self
                    .index
                    .iter()
                    .filter(|(u, _)| **u >= below || live.contains(u))
                    .map(|(u, e)| (*u, *e))
                    .collect();
                keep.sort_unstable_by_key(|(u, _)| *u);
                let f = self.file.as_ref().ok_or(io::ErrorKind::NotFound)?;
                for (uid, e) in keep {
                    let mut b = vec![0u8; e.len as usize];
                    f.read_exact_at(&mut b, e.at)?;
                    // A record that does not check out is not carried over.
                    if check(&b) == e.check {
                        data.extend_from_slice(&record(uid, &b));
                    }
                }
            }
            out.write_all(&data)?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        self.broken = false;
        self.file = None;
        self.inode = 0;
        self.refresh(None);
    }
}

/// Index the complete records at the start of `buf` (which begins at file
/// offset `base`); returns how many bytes they took. A record still being
/// written is left for later; one framed wrongly is an error. The records'
/// checks are compared when they are used (`HeaderCache::get`).
fn parse_records(buf: &[u8], base: u64, index: &mut HashMap<u32, Entry>) -> io::Result<usize> {
    let bad = || io::Error::other("bad record line");
    let mut at = 0usize;
    while at < buf.len() {
        // A record's line is short: `H`, a UID, a length and a check.
        let window = &buf[at..buf.len().min(at + MAX_LINE + 1)];
        let Some(nl) = memchr::memchr(b'\n', window) else {
            if buf.len() - at > MAX_LINE {
                return Err(bad());
            }
            break;
        };
        let line = std::str::from_utf8(&buf[at..at + nl]).map_err(|_| bad())?;
        let mut w = line.split(' ');
        let (Some("H"), Some(uid), Some(len), Some(sum), None) =
            (w.next(), w.next(), w.next(), w.next(), w.next())
        else {
            return Err(bad());
        };
        let (Ok(uid), Ok(len), Ok(sum)) = (
            uid.parse::<u32>(),
            len.parse::<usize>(),
            u64::from_str_radix(sum, 16),
        ) else {
            return Err(bad());
        };
        if len > MAX_CACHED {
            return Err(io::Error::other("record too long"));
        }
        let start = at + nl + 1;
        if start + len + 1 > buf.len() {
            break;
        }
        if buf[start + len] != b'\n' {
            return Err(io::Error::other("record not framed"));
        }
        index.entry(uid).or_insert(Entry {
            at: base + start as u64,
            len: len as u32,
            check: sum,
        });
        at = start + len + 1;
    }
    Ok(at)
}

/// Fuzzing entry (cargo-fuzz target `header_cache`): the cache file's
/// records as a session reads them, from arbitrary bytes (the account can
/// write its own cache). Checked: no panic; every record indexed lies in
/// the input; reading in two pieces (as the bounded reads do) indexes the
/// same as reading at once; records written by `record` read back as
/// written and check out.
pub fn fuzz_header_cache(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut whole = HashMap::new();
    let whole_used = parse_records(rest, 0, &mut whole);
    if let Ok(used) = whole_used {
        assert!(used <= rest.len());
        for e in whole.values() {
            let (at, len) = (e.at as usize, e.len as usize);
            assert!(at + len < rest.len() + 1 && at + len <= used);
        }
        let split = (usize::from(cut) * rest.len() / 255).min(rest.len());
        let mut pieces = HashMap::new();
        let first =
            parse_records(&rest[..split], 0, &mut pieces).expect("a prefix of good records");
        let second = parse_records(&rest[first..], first as u64, &mut pieces)
            .expect("the rest of good records");
        assert_eq!(first + second, used);
        assert_eq!(pieces, whole);
    }
    // What we write reads back.
    let mut written = Vec::new();
    let mut want = Vec::new();
    for (i, part) in rest.chunks(97).enumerate().take(8) {
        written.extend_from_slice(&record(i as u32, part));
        want.push((i as u32, part.to_vec()));
    }
    let mut index = HashMap::new();
    assert_eq!(
        parse_records(&written, 0, &mut index).unwrap(),
        written.len()
    );
    for (uid, bytes) in want {
        let e = index[&uid];
        let stored = &written[e.at as usize..e.at as usize + e.len as usize];
        assert_eq!(stored, &bytes[..]);
        assert_eq!(check(stored), e.check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::TempDir;

    #[test]
    fn sessions_share_entries_and_a_new_validity_starts_afresh() {
        let t = TempDir::new("hcache");
        let mut a = HeaderCache::new(&t.0, 7);
        let mut b = HeaderCache::new(&t.0, 7);
        assert_eq!(a.get(1), None);
        a.put(1, b"Subject: one\n\n");
        b.put(2, b"Subject: two\n\n");
        assert_eq!(b.get(1).as_deref(), Some(&b"Subject: one\n\n"[..]));
        assert_eq!(a.get(2).as_deref(), Some(&b"Subject: two\n\n"[..]));
        // Too long to cache.
        a.put(3, &vec![b'x'; MAX_CACHED + 1]);
        assert_eq!(b.get(3), None);
        // The folder made anew: the old entries are not its messages'.
        let mut c = HeaderCache::new(&t.0, 8);
        assert_eq!(c.get(1), None);
        c.put(1, b"Subject: new one\n\n");
        assert_eq!(c.get(1).as_deref(), Some(&b"Subject: new one\n\n"[..]));
    }

    #[test]
    fn a_torn_record_ends_reading_and_a_compaction_mends_the_file() {
        let t = TempDir::new("hcache-torn");
        let mut a = HeaderCache::new(&t.0, 7);
        a.put(1, b"Subject: one\n\n");
        // A crash mid-write, then another session's append after it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(t.0.join(FILE))
            .unwrap();
        f.write_all(b"H 2 14 0\nSubject: tw").unwrap();
        f.write_all(&record(3, b"Subject: three\n\n")).unwrap();
        let mut b = HeaderCache::new(&t.0, 7);
        assert_eq!(b.get(1).as_deref(), Some(&b"Subject: one\n\n"[..]));
        assert_eq!(b.get(3), None);
        assert!(b.broken);
        // Nothing is added to a broken file; a compaction starts it again.
        b.put(4, b"Subject: four\n\n");
        mended_by_compaction(&t, &mut b, &[1, 3, 4], 4, b"Subject: four\n\n");
        assert_eq!(b.get(1), None);
    }

    /// A compaction starts a broken file again without its records, and a
    /// header put after it is read by the next session.
    fn mended_by_compaction(
        t: &TempDir,
        b: &mut HeaderCache,
        live: &[u32],
        uid: u32,
        header: &[u8],
    ) {
        b.compact(
            &live.iter().copied().collect(),
            live.iter().max().unwrap() + 1,
        );
        assert!(!b.broken);
        assert_eq!(b.get(uid), None);
        b.put(uid, header);
        assert_eq!(HeaderCache::new(&t.0, 7).get(uid).as_deref(), Some(header));
    }

    #[test]
    fn a_record_that_does_not_check_out_is_refused_when_used() {
        let t = TempDir::new("hcache-check");
        let mut a = HeaderCache::new(&t.0, 7);
        a.put(1, b"Subject: one\n\n");
        a.put(2, b"Subject: two\n\n");
        // One byte of the first record's header changed, its framing whole.
        let path = t.0.join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(3).position(|w| w == b"one").unwrap();
        bytes[at] = b'0';
        std::fs::write(&path, &bytes).unwrap();
        let mut b = HeaderCache::new(&t.0, 7);
        assert_eq!(b.get(1), None);
        assert!(b.broken);
        assert_eq!(b.get(2), None);
        mended_by_compaction(&t, &mut b, &[1, 2], 1, b"Subject: one\n\n");
    }

    #[test]
    fn a_cache_of_format_one_is_built_again() {
        let t = TempDir::new("hcache-format");
        let path = t.0.join(FILE);
        std::fs::write(&path, b"classicd-headers 1 V7\nH 1 3 0\nabc\n").unwrap();
        let mut a = HeaderCache::new(&t.0, 7);
        assert_eq!(a.get(1), None);
        a.put(1, b"Subject: one\n\n");
        assert_eq!(a.get(1).as_deref(), Some(&b"Subject: one\n\n"[..]));
        assert!(std::fs::read(&path)
            .unwrap()
            .starts_with(b"classicd-headers 2 V7\n"));
    }

    #[test]
    fn compaction_keeps_live_and_newer_records_and_others_follow_it() {
        let t = TempDir::new("hcache-compact");
        let mut a = HeaderCache::new(&t.0, 7);
        let mut other = HeaderCache::new(&t.0, 7);
        for uid in 1..=2100 {
            a.put(uid, format!("Subject: {uid}\n\n").as_bytes());
        }
        assert!(other.get(5).is_some());
        // Live: 2001..=2050; 2051.. are newer than this view knows.
        let live: HashSet<u32> = (2001..=2050).collect();
        a.compact(&live, 2051);
        assert!(a.get(5).is_none());
        assert_eq!(a.get(2001).as_deref(), Some(&b"Subject: 2001\n\n"[..]));
        assert_eq!(a.get(2100).as_deref(), Some(&b"Subject: 2100\n\n"[..]));
        // The other session sees the new file when it next misses.
        a.put(3000, b"Subject: 3000\n\n");
        assert_eq!(other.get(3000).as_deref(), Some(&b"Subject: 3000\n\n"[..]));
        assert!(other.get(5).is_none());
    }

    #[test]
    fn a_file_bigger_than_one_read_is_read_whole() {
        let t = TempDir::new("hcache-big");
        let mut a = HeaderCache::new(&t.0, 7);
        for uid in 1..=20_000 {
            a.put(uid, format!("Subject: message number {uid}\n\n").as_bytes());
        }
        assert!(std::fs::metadata(t.0.join(FILE)).unwrap().len() > 2 * READ_CHUNK as u64);
        let mut b = HeaderCache::new(&t.0, 7);
        for uid in [1, 6553, 13107, 20_000] {
            assert_eq!(
                b.get(uid).unwrap(),
                format!("Subject: message number {uid}\n\n").as_bytes()
            );
        }
        assert_eq!(b.index.len(), 20_000);
    }

    #[test]
    fn a_file_bigger_than_memory_is_read_in_pieces() {
        let t = TempDir::new("hcache-huge");
        let mut a = HeaderCache::new(&t.0, 7);
        let header = |uid: u32| {
            let mut h = format!("Subject: {uid}\n").into_bytes();
            h.resize(MAX_CACHED - 1, b'x');
            h.push(b'\n');
            h
        };
        let n = (MAX_MEMORY / MAX_CACHED + 10) as u32;
        for uid in 1..=n {
            a.put(uid, &header(uid));
        }
        let mut b = HeaderCache::new(&t.0, 7);
        for uid in [1, n / 2, n] {
            assert_eq!(b.get(uid).unwrap(), header(uid));
        }
        assert!(b.mem_off);
        assert_eq!(b.index.len(), n as usize);
    }

    #[test]
    fn the_fuzz_properties_hold_for_good_torn_and_odd_files() {
        let mut good = vec![128u8];
        good.extend(record(1, b"Subject: one\r\n\r\n"));
        good.extend(record(2, b"Subject: two\n\n"));
        fuzz_header_cache(&good);
        let mut torn = good.clone();
        torn.extend_from_slice(b"H 3 14 0\nSubject: th");
        fuzz_header_cache(&torn);
        // A UID written long: a line over the bound is refused whole or cut.
        let mut long = vec![200u8];
        long.extend_from_slice(
            format!("H {}1 1 {:x}\nx\n", "0".repeat(70), check(b"x")).as_bytes(),
        );
        fuzz_header_cache(&long);
        fuzz_header_cache(b"");
        fuzz_header_cache(b"\x00H");
    }
}
