//! The journal: what makes an accepted article durable before it is
//! acknowledged, at the cost of one fdatasync per batch of articles rather
//! than several fsyncs per article.
//!
//! Each writing process appends to its own segment, `journal/<pid>.<n>`,
//! held with an exclusive flock while it lives. A record is written under
//! the spool lock, right after the article's numbers, overview, history and
//! feed lines (and before its file, which is written just after the lock is
//! let go); the segment is fdatasynced before the replies go out. Once the
//! spool itself is on disk (syncfs, at a checkpoint) the segment goes.
//!
//! A writer that ends with records in its segment, all synced, does not
//! sync the file system then (every other writer would wait behind that
//! flush): it retires the segment, renamed `journal/done-<boot>-<name>`
//! with the id of the running boot. While the boot id is the same, what
//! the records describe is in the page cache or on disk, so such a
//! segment only needs a sync of the spool before it goes; a later writer
//! (each checks at its start, and the feed process every few seconds)
//! does that once the kernel has written it back itself (`SETTLE`), and
//! every checkpoint does. A retired segment from another boot is
//! replayed like an orphan.
//!
//! After a crash, or a kill -9, a segment whose flock nobody holds is
//! replayed by the next writer: each record puts back whatever of its
//! article is missing (file, overview line, history line, feed lines,
//! high-water mark). Replay is idempotent, and a torn last record (a
//! crash mid-write) fails its checksum and is dropped: it was never
//! acknowledged.
//!
//! Record: `NJR1`, payload length (u32 LE), checksum of the payload (u32
//! LE), payload.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::runtime::session::ipc::{Malformed, Reader, Writer};

const MAGIC: &[u8; 4] = b"NJR2";
/// A record is at most one article plus its lines.
pub const MAX_RECORD: usize = 64 << 20;

/// One accepted article, as replay needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub message_id: String,
    pub arrived: u64,
    /// Each group and the number the article has there.
    pub xref: Vec<(String, u64)>,
    /// The peers it is queued for.
    pub peers: Vec<String>,
    /// Its overview line without the number (the number differs by group).
    pub overview: Vec<u8>,
    /// The stored form: wire format, dot-stuffed, ending with ".\r\n".
    pub stored: Vec<u8>,
}

/// The record checksum: a 32-bit digest of a 64-bit multiply-rotate hash
/// taken eight bytes at a time. It only has to catch a torn or damaged
/// record, and must cost little next to the write it guards.
pub fn checksum(data: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = (data.len() as u64) ^ 0x243f_6a88_85a3_08d3;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    let rest = words.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 32;
    h as u32
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Append the encoded record to `out` (a batch's journal).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let names: usize = self.xref.iter().map(|(g, _)| g.len() + 12).sum::<usize>()
            + self.peers.iter().map(|p| p.len() + 4).sum::<usize>();
        let size = 40 + self.message_id.len() + names + self.overview.len() + self.stored.len();
        let mut w = Writer::with_capacity(1, size)
            .str(&self.message_id)
            .u64(self.arrived)
            .u32(self.xref.len() as u32);
        for (g, n) in &self.xref {
            w = w.str(g).u64(*n);
        }
        w = w.u32(self.peers.len() as u32);
        for p in &self.peers {
            w = w.str(p);
        }
        let payload = w.bytes(&self.overview).bytes(&self.stored).finish();
        out.reserve(payload.len() + 12);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&checksum(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }

    fn decode_payload(payload: &[u8]) -> Result<Record, Malformed> {
        let (tag, mut r) = Reader::new(payload)?;
        if tag != 1 {
            return Err(Malformed);
        }
        let message_id = r.str(250)?.to_string();
        let arrived = r.u64()?;
        let n = r.u32()? as usize;
        if n > crate::nntp::article::MAX_GROUPS {
            return Err(Malformed);
        }
        let mut xref = Vec::with_capacity(n);
        for _ in 0..n {
            xref.push((r.str(250)?.to_string(), r.u64()?));
        }
        let n = r.u32()? as usize;
        if n > 1000 {
            return Err(Malformed);
        }
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            peers.push(r.str(250)?.to_string());
        }
        let overview = r.bytes(super::overview::MAX_LINE)?.to_vec();
        let stored = r.bytes(MAX_RECORD)?.to_vec();
        r.end()?;
        Ok(Record {
            message_id,
            arrived,
            xref,
            peers,
            overview,
            stored,
        })
    }
}

/// Every whole record of a segment's bytes, in order; reading stops at
/// the first that is torn or damaged (nothing after it was acknowledged
/// unless it was synced, and a synced record is never torn).
pub fn decode_all(data: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 12 {
        if &data[at..at + 4] != MAGIC {
            break;
        }
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(data[at + 8..at + 12].try_into().expect("4"));
        if len > MAX_RECORD || data.len() - at - 12 < len {
            break;
        }
        let payload = &data[at + 12..at + 12 + len];
        if checksum(payload) != crc {
            break;
        }
        match Record::decode_payload(payload) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
        at += 12 + len;
    }
    out
}

/// A retired segment is synced with the spool and removed once this old
/// (by then the kernel has written back what its records describe, so
/// the sync is short).
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);
/// More retired segments than this and a writer's end syncs the spool
/// itself (the journal directory stays short).
pub const MAX_RETIRED: usize = 64;
const RETIRED_PREFIX: &str = "done-";

/// This process's segment.
pub struct Segment {
    pub path: PathBuf,
    file: nix::fcntl::Flock<File>,
    pub len: u64,
    /// How much of it is known durable.
    synced: u64,
}

/// A retired segment, locked for us.
pub struct Retired {
    pub path: PathBuf,
    /// The boot it was retired under.
    pub boot: String,
    /// Time since its last record was written.
    pub age: std::time::Duration,
    pub file: nix::fcntl::Flock<File>,
}

impl Segment {
    /// A new segment in `dir`, locked.
    pub fn create(dir: &Path) -> io::Result<Segment> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        loop {
            let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("{}.{n}", std::process::id());
            let path = dir.join(&name);
            if path.exists() {
                continue;
            }
            // Made and locked under a hidden name, then renamed: a writer
            // looking for orphans at that moment must not find it unlocked
            // (it would take it, and our lock would fail).
            let hidden = dir.join(format!(".{name}"));
            let _ = std::fs::remove_file(&hidden);
            let f = OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .open(&hidden)?;
            let file = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                .map_err(|(_, e)| io::Error::from(e))?;
            if let Err(e) = std::fs::rename(&hidden, &path) {
                let _ = std::fs::remove_file(&hidden);
                return Err(e);
            }
            // The new name must survive a crash for its records to.
            crate::fs::sync_dir(dir)?;
            return Ok(Segment {
                path,
                file,
                len: 0,
                synced: 0,
            });
        }
    }

    /// Append records in one write.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match (&*self.file).write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // No half record stays behind to hide later ones.
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Make every record appended so far durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.synced = self.len;
        Ok(())
    }

    /// Every record is durable.
    pub fn is_synced(&self) -> bool {
        self.synced == self.len
    }

    /// Leave the segment, synced, for a later sync of the spool to remove
    /// (see the module's comment). If the rename is lost in a crash the
    /// segment is an orphan, replayed: never wrong, only slower.
    pub fn retire(&self, boot: &str) -> io::Result<()> {
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io::Error::other("segment without a name"))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::rename(
            &self.path,
            dir.join(format!("{RETIRED_PREFIX}{boot}-{name}")),
        )
    }

    /// Start afresh (after a checkpoint made the spool durable).
    pub fn truncate(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        use std::io::Seek;
        (&*self.file).seek(io::SeekFrom::Start(0))?;
        self.len = 0;
        Ok(())
    }
}

/// The entries of `dir` with UTF-8 names (none if it does not exist).
fn entries(dir: &Path) -> io::Result<Vec<(String, std::fs::DirEntry)>> {
    let list = match std::fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in list {
        let e = e?;
        if let Ok(name) = e.file_name().into_string() {
            out.push((name, e));
        }
    }
    Ok(out)
}

/// `path`, locked for us, unless someone else holds it.
fn lock_if_free(path: &Path) -> Option<nix::fcntl::Flock<File>> {
    let f = File::open(path).ok()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
}

/// Time since a file was last written.
fn age(m: io::Result<std::fs::Metadata>) -> Option<std::time::Duration> {
    m.and_then(|m| m.modified()).ok()?.elapsed().ok()
}

/// Segments in `dir` that no living process holds, each locked for us.
pub fn orphans(dir: &Path) -> io::Result<Vec<(PathBuf, nix::fcntl::Flock<File>)>> {
    let mut out = Vec::new();
    for (name, e) in entries(dir)? {
        if !name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            continue;
        }
        let path = e.path();
        if name.starts_with('.') {
            // Left by a crash before its rename (it never held a record):
            // removed once old and held by nobody (a young one may be
            // being made).
            let old = age(e.metadata()).is_some_and(|a| a.as_secs() > 60);
            if old && lock_if_free(&path).is_some() {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if let Some(l) = lock_if_free(&path) {
            out.push((path, l));
        }
    }
    Ok(out)
}

/// How many retired segments `dir` holds.
pub fn retired_count(dir: &Path) -> usize {
    entries(dir).map_or(0, |list| {
        list.iter()
            .filter(|(n, _)| n.starts_with(RETIRED_PREFIX))
            .count()
    })
}

/// The retired segments in `dir` that nobody else is handling, each
/// locked for us.
pub fn retired(dir: &Path) -> io::Result<Vec<Retired>> {
    let mut out = Vec::new();
    for (name, e) in entries(dir)? {
        let Some((boot, _)) = name
            .strip_prefix(RETIRED_PREFIX)
            .and_then(|rest| rest.split_once('-'))
        else {
            continue;
        };
        let path = e.path();
        let Some(file) = lock_if_free(&path) else {
            continue;
        };
        out.push(Retired {
            boot: boot.to_string(),
            age: age(file.metadata()).unwrap_or_default(),
            path,
            file,
        });
    }
    Ok(out)
}

/// The records of a locked orphan.
pub fn read_segment(f: &File) -> io::Result<Vec<Record>> {
    let mut data = Vec::new();
    let mut f = f;
    f.read_to_end(&mut data)?;
    Ok(decode_all(&data))
}

/// Fuzzing entry point: any bytes as a journal segment.
pub fn fuzz_journal(data: &[u8]) {
    for r in decode_all(data) {
        assert_eq!(decode_all(&r.encode()), vec![r]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        Record {
            message_id: format!("<{i}@x>"),
            arrived: 7,
            xref: vec![("a.b".into(), i), ("c".into(), i + 1)],
            peers: vec!["peer".into()],
            overview: b"s\tf\td\t<i@x>\t\t3\t1\tXref: h a.b:1".to_vec(),
            stored: b"A: b\r\n\r\nbody\r\n.\r\n".to_vec(),
        }
    }

    #[test]
    fn the_checksum_sees_changes() {
        let a = checksum(b"0123456789abcdef01");
        assert_ne!(a, checksum(b"0123456789abcdef02"));
        assert_ne!(a, checksum(b"1123456789abcdef01"));
        assert_ne!(checksum(b""), checksum(b"\0"));
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_dropped() {
        let mut data = record(1).encode();
        data.extend(record(2).encode());
        assert_eq!(decode_all(&data), vec![record(1), record(2)]);
        let whole = data.len();
        // Torn: the second record cut short.
        assert_eq!(decode_all(&data[..whole - 3]), vec![record(1)]);
        // Damaged: a flipped byte in the second record's payload.
        let mut bad = data.clone();
        bad[whole - 5] ^= 1;
        assert_eq!(decode_all(&bad), vec![record(1)]);
        assert!(decode_all(b"NJR2\xff\xff\xff\xff").is_empty());
    }

    #[test]
    fn segments_are_locked_while_alive() {
        let dir = std::env::temp_dir().join(format!("nntp-jnl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Segment::create(&dir).unwrap();
        s.append(&record(1).encode()).unwrap();
        s.sync().unwrap();
        // Held by us: not an orphan.
        assert!(orphans(&dir).unwrap().is_empty());
        let path = s.path.clone();
        drop(s);
        let o = orphans(&dir).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].0, path);
        assert_eq!(read_segment(&o[0].1).unwrap(), vec![record(1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_segment_being_made_is_never_taken_for_an_orphan() {
        let dir = std::env::temp_dir().join(format!("nntp-jnl-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hunters: Vec<_> = (0..3)
            .map(|_| {
                let (dir, stop) = (dir.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // Held a moment, as a replay holds what it found.
                        let found = orphans(&dir).unwrap();
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        drop(found);
                    }
                })
            })
            .collect();
        for _ in 0..300 {
            // Each one held by us the moment its name shows.
            let s = Segment::create(&dir).unwrap();
            drop(s);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in hunters {
            h.join().unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_journal(b"NJR2\x01\x00\x00\x00\x00\x00\x00\x00\x01");
        fuzz_journal(&record(3).encode());
    }
}
