//! Modification sequences (CONDSTORE/QRESYNC, RFC 7162) of a folder, kept in
//! `classicd-modseq` beside its `dovecot-uidlist`: an append-only log of
//! lines `UID MODSEQ :LETTERS` (the message's flags as its file name spells
//! them at that modseq) and `UID MODSEQ X` (expunged). Appends are made
//! under an flock of the log and fsynced before the change is acknowledged;
//! the log is compacted (rewritten aside) when it grows to several lines per
//! message, keeping the highest expunge modseq dropped as a floor.
//!
//! A flag change made by another program (a mail reader renaming a file)
//! is noticed when a file name's letters differ from the last ones logged
//! for its UID, and gets a modseq then.
//!
//! The log also tells other sessions what changed in a Maildir folder's
//! directories, so that they need not read 10,000 names again after every
//! change (as Dovecot's transaction log does): a session changes new/ and
//! cur/ only inside a *batch*, holding the log's lock, and ends the batch
//! with the directories' stamps before and after it (`S BEFORE AFTER`),
//! its renames as flag lines, its unlinks as `UID MODSEQ X`, the messages
//! it put in place as `UID MODSEQ +n/NAME` (new/) or `+c/NAME` (cur/).
//! A reader whose view was exact at stamps A, and whose log shows batches
//! leading from A to the stamps the directories have now, applies them
//! instead of reading the directories (`Folder::sync`). `UID MODSEQ V` is
//! a message a session found gone (another program removed it): a hint
//! for modseqs, never applied without reading the directories.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::flags::FileName;

pub const FILE: &str = "classicd-modseq";

/// Events a reader may leave untaken before they are dropped (it then
/// reads the directories instead).
const MAX_EVENTS: usize = 100_000;

/// A directory's identity and change time.
pub type Stamp = (u64, i64, i64);

/// The stamps of a Maildir folder's new/ and cur/.
pub type DirStamps = (Stamp, Stamp);

pub fn stamp(path: &Path) -> io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.ino(), m.mtime(), m.mtime_nsec()))
}

pub fn dir_stamps(dir: &Path) -> io::Result<DirStamps> {
    Ok((stamp(&dir.join("new"))?, stamp(&dir.join("cur"))?))
}

/// `ino.sec.nsec,ino.sec.nsec` (new/, cur/).
pub fn render_stamps(s: &DirStamps) -> String {
    let one = |t: &Stamp| format!("{}.{}.{}", t.0, t.1, t.2);
    format!("{},{}", one(&s.0), one(&s.1))
}

pub fn parse_stamps(text: &str) -> Option<DirStamps> {
    let one = |t: &str| -> Option<Stamp> {
        let mut it = t.split('.');
        let s = (
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        );
        it.next().is_none().then_some(s)
    };
    let (a, b) = text.split_once(',')?;
    Some((one(a)?, one(b)?))
}

/// What the log says happened, in its order (see the module comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Flags(u32, String),
    Removed(u32),
    Vanished(u32),
    Added {
        uid: u32,
        in_new: bool,
        name: String,
    },
    Stamps(DirStamps, DirStamps),
}

/// A batch of changes to a folder's directories in progress: the log is
/// locked (no other batch runs) and the stamps before it are known.
pub struct Batch {
    lock: Flock<File>,
    before: DirStamps,
}

#[derive(Clone, Debug, Default)]
pub struct ModLog {
    path: PathBuf,
    /// Per UID: its modseq and the letters logged with it.
    pub entries: HashMap<u32, (u64, String)>,
    /// Expunged UIDs and when.
    pub expunged: Vec<(u32, u64)>,
    pub highest: u64,
    /// Expunges at or below this modseq were forgotten by a compaction.
    pub floor: u64,
    /// UIDs whose file a session removed (`X`), and found gone (`V`).
    removed: HashSet<u32>,
    vanished: HashSet<u32>,
    /// What was read since the folder last took it; `events_lost` when
    /// some of it could not be kept (too much, or the log was compacted).
    /// Each with the offset of its line in the file.
    events: Vec<(u64, Event)>,
    events_lost: bool,
    /// How far the file has been read, and which file (a compaction
    /// replaces it).
    offset: u64,
    inode: u64,
    lines: usize,
    /// Lines beyond one per message before a compaction.
    slack: usize,
}

/// A change to log.
pub enum Change<'a> {
    Flags(u32, &'a str),
    /// Its file removed by this session.
    Expunged(u32),
    /// Found gone (removed by someone else).
    Vanished(u32),
    /// Put in place by this session: UID, in new/, file name.
    Added(u32, bool, &'a str),
}

impl ModLog {
    pub fn open(dir: &Path) -> ModLog {
        let mut l = ModLog {
            path: dir.join(FILE),
            highest: 1,
            slack: 4096,
            ..ModLog::default()
        };
        let _ = l.refresh();
        l
    }

    fn event(&mut self, at: u64, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.clear();
            self.events_lost = true;
        }
        self.events.push((at, e));
    }

    /// Take in whole lines read at offset `at` of the file.
    fn absorb(&mut self, bytes: &[u8], at: u64) {
        let mut pos = at;
        for raw in bytes.split_inclusive(|&b| b == b'\n') {
            let here = pos;
            pos += raw.len() as u64;
            let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = String::from_utf8_lossy(raw);
            let line: &str = &text;
            self.lines += 1;
            let mut it = line.splitn(3, ' ');
            let (Some(a), Some(b), Some(c)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if a == "F" {
                // The compaction's floor line: `F MODSEQ -`.
                if let Ok(m) = b.parse::<u64>() {
                    self.floor = self.floor.max(m);
                    self.highest = self.highest.max(m);
                }
                continue;
            }
            if a == "S" {
                if let (Some(before), Some(after)) = (parse_stamps(b), parse_stamps(c)) {
                    self.event(here, Event::Stamps(before, after));
                }
                continue;
            }
            let (Ok(uid), Ok(m)) = (a.parse::<u32>(), b.parse::<u64>()) else {
                continue;
            };
            self.highest = self.highest.max(m);
            if c == "X" || c == "V" {
                self.entries.remove(&uid);
                self.expunged.push((uid, m));
                if c == "X" {
                    self.removed.insert(uid);
                    self.event(here, Event::Removed(uid));
                } else {
                    self.vanished.insert(uid);
                    self.event(here, Event::Vanished(uid));
                }
            } else if let Some(letters) = c.strip_prefix(':') {
                self.entries.insert(uid, (m, letters.to_string()));
                self.event(here, Event::Flags(uid, letters.to_string()));
            } else if let Some(placed) = c.strip_prefix('+') {
                let (in_new, name) = match placed.split_once('/') {
                    Some(("n", name)) => (true, name),
                    Some(("c", name)) => (false, name),
                    _ => continue,
                };
                let letters = FileName::parse(name).letters.unwrap_or("").to_string();
                self.entries.insert(uid, (m, letters));
                self.event(
                    here,
                    Event::Added {
                        uid,
                        in_new,
                        name: name.to_string(),
                    },
                );
            }
        }
    }

    /// Read what other sessions appended; true when there was some (or
    /// the log was compacted and read anew).
    pub fn refresh(&mut self) -> io::Result<bool> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let len = meta.len();
        if len < self.offset || (self.offset > 0 && meta.ino() != self.inode) {
            // Compacted by another session: read it anew. What happened
            // between is no longer told one change at a time.
            let path = std::mem::take(&mut self.path);
            *self = ModLog {
                path,
                highest: 1,
                slack: self.slack,
                events_lost: true,
                ..ModLog::default()
            };
        }
        self.inode = meta.ino();
        if len == self.offset {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Only whole lines: a writer may be in the middle of one.
        let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let at = self.offset;
        self.offset += end as u64;
        self.absorb(&buf[..end], at);
        Ok(true)
    }

    /// Take what was read since the last call, and whether some of it was
    /// lost (the caller must then read the directories).
    pub fn take_events(&mut self) -> (Vec<Event>, bool) {
        let lost = std::mem::take(&mut self.events_lost);
        let events = std::mem::take(&mut self.events);
        (events.into_iter().map(|e| e.1).collect(), lost)
    }

    /// The file read (its inode) and how far: where a view taken now
    /// stands in the log.
    pub fn position(&self) -> (u64, u64) {
        (self.inode, self.offset)
    }

    /// The events read and not yet taken, in order.
    pub fn pending_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|e| &e.1)
    }

    /// Forget the events of lines before `offset` (a view saved at that
    /// point already has them).
    pub fn drop_events_before(&mut self, offset: u64) {
        self.events.retain(|e| e.0 >= offset);
    }

    /// Read the log to its end and stamp the folder's directories at the
    /// same moment (no batch runs in between): the stamps the view will
    /// be exact for once the events read so far are applied.
    pub fn snapshot(&mut self, dir: &Path) -> io::Result<DirStamps> {
        let lock = self.lock_current(false)?;
        // No log yet: nothing to read (one made meanwhile is read next
        // time; its batch then does not start at these stamps).
        if lock.is_some() {
            self.refresh()?;
        }
        dir_stamps(dir)
    }

    /// The log's lock, on the file now at its path (a compaction replaces
    /// it). Exclusive: for writing, the file made when missing. Shared:
    /// None when there is no file yet.
    fn lock_current(&self, exclusive: bool) -> io::Result<Option<Flock<File>>> {
        loop {
            let mut o = OpenOptions::new();
            o.read(true).custom_flags(libc::O_NOFOLLOW);
            if exclusive {
                o.append(true).create(true).mode(0o600);
            }
            let f = match o.open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !exclusive => return Ok(None),
                Err(e) => return Err(e),
            };
            let kind = if exclusive {
                FlockArg::LockExclusive
            } else {
                FlockArg::LockShared
            };
            let lock = Flock::lock(f, kind).map_err(|(_, e)| io::Error::from(e))?;
            let held = lock.metadata()?;
            match std::fs::symlink_metadata(&self.path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => return Ok(Some(lock)),
                _ => continue,
            }
        }
    }

    /// The modseq of a message (1 when never logged: as old as the log).
    pub fn modseq(&self, uid: u32) -> u64 {
        self.entries.get(&uid).map_or(1, |e| e.0)
    }

    pub fn letters(&self, uid: u32) -> Option<&str> {
        self.entries.get(&uid).map(|e| e.1.as_str())
    }

    /// Whether a session logged removing the message's file.
    pub fn was_removed(&self, uid: u32) -> bool {
        self.removed.contains(&uid)
    }

    /// Log changes, each with a fresh modseq, durably; returns the modseq of
    /// each, in order.
    /// A flag change whose letters are already the last ones logged for
    /// its message (another session saw the rename first and logged it)
    /// keeps the modseq it got there: every session shows one modseq.
    /// (Changes to a Maildir folder's directories go through `begin` and
    /// `commit` instead.)
    pub fn log(&mut self, changes: &[Change]) -> io::Result<Vec<u64>> {
        self.log_as(changes, &|_| true)
    }

    /// Log flag changes seen in file names (another program's, or a
    /// session's not logged yet); `still` says, under the log's lock,
    /// whether the file still has those letters (a stale sighting of a
    /// name renamed since must not be logged as the newest state).
    pub fn log_observed(
        &mut self,
        changes: &[Change],
        still: &dyn Fn(&Change) -> bool,
    ) -> io::Result<Vec<u64>> {
        self.log_as(changes, still)
    }

    fn log_as(
        &mut self,
        changes: &[Change],
        still: &dyn Fn(&Change) -> bool,
    ) -> io::Result<Vec<u64>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let lock = self.lock_current(true)?.expect("made when missing");
        self.refresh()?;
        self.append_locked(&lock, changes, still, None)
    }

    /// Start changing the folder `dir`'s directories: the log locked, read
    /// to its end, the stamps before taken.
    pub fn begin(&mut self, dir: &Path) -> io::Result<Batch> {
        let lock = self.lock_current(true)?.expect("made when missing");
        self.refresh()?;
        let before = dir_stamps(dir)?;
        Ok(Batch { lock, before })
    }

    /// End a batch: its changes logged with the stamps after it, durably.
    /// Returns the modseq of each change.
    pub fn commit(&mut self, batch: Batch, dir: &Path, changes: &[Change]) -> io::Result<Vec<u64>> {
        let after = dir_stamps(dir)?;
        self.append_locked(&batch.lock, changes, &|_| true, Some((batch.before, after)))
    }

    fn append_locked(
        &mut self,
        lock: &Flock<File>,
        changes: &[Change],
        still: &dyn Fn(&Change) -> bool,
        stamps: Option<(DirStamps, DirStamps)>,
    ) -> io::Result<Vec<u64>> {
        let mut out = String::new();
        let mut seqs = Vec::with_capacity(changes.len());
        for c in changes {
            let known = match c {
                Change::Flags(uid, letters) => self.letters(*uid) == Some(*letters) || !still(c),
                // Told once: a second session expunging the same message,
                // or finding it gone, adds nothing.
                Change::Expunged(uid) => self.removed.contains(uid),
                Change::Vanished(uid) => self.removed.contains(uid) || self.vanished.contains(uid),
                Change::Added(..) => false,
            };
            if known {
                seqs.push(match c {
                    Change::Flags(uid, _) => self.modseq(*uid),
                    _ => self.highest,
                });
                continue;
            }
            self.highest += 1;
            let m = self.highest;
            seqs.push(m);
            match c {
                Change::Flags(uid, letters) => out.push_str(&format!("{uid} {m} :{letters}\n")),
                Change::Expunged(uid) => out.push_str(&format!("{uid} {m} X\n")),
                Change::Vanished(uid) => out.push_str(&format!("{uid} {m} V\n")),
                Change::Added(uid, in_new, name) => {
                    let sub = if *in_new { "n" } else { "c" };
                    out.push_str(&format!("{uid} {m} +{sub}/{name}\n"));
                }
            }
        }
        if let Some((before, after)) = stamps {
            // Even a batch that logged nothing is told when the directories
            // moved: readers follow the stamps from one batch to the next.
            if before != after || !out.is_empty() {
                out.push_str(&format!(
                    "S {} {}\n",
                    render_stamps(&before),
                    render_stamps(&after)
                ));
            }
        }
        if out.is_empty() {
            return Ok(seqs);
        }
        let mut w = &**lock;
        w.write_all(out.as_bytes())?;
        lock.sync_data()?;
        let at = self.offset;
        self.offset += out.len() as u64;
        self.absorb(out.as_bytes(), at);
        if self.lines > 4 * self.entries.len() + self.slack {
            let _ = self.compact(lock);
        }
        Ok(seqs)
    }

    #[cfg(test)]
    fn compact_now(&mut self) {
        let lock = self.lock_current(true).unwrap().unwrap();
        self.compact(&lock).unwrap();
    }

    /// Rewrite the log with one line per message, under the lock.
    fn compact(&mut self, _lock: &Flock<File>) -> io::Result<()> {
        let dropped = self.expunged.iter().map(|e| e.1).max().unwrap_or(0);
        let floor = self.floor.max(dropped);
        let mut out = format!("F {floor} -\n");
        let mut uids: Vec<_> = self.entries.iter().collect();
        uids.sort_by_key(|e| e.0);
        for (uid, (m, letters)) in uids {
            out.push_str(&format!("{uid} {m} :{letters}\n"));
        }
        crate::fs::durable::write_file(&self.path, 0o600, out.as_bytes())?;
        self.floor = floor;
        self.expunged.clear();
        self.removed.clear();
        self.vanished.clear();
        self.offset = out.len() as u64;
        self.inode = std::fs::symlink_metadata(&self.path)?.ino();
        self.lines = self.entries.len() + 1;
        Ok(())
    }

    /// Expunged UIDs newer than `since`; None when that is older than what
    /// the log still remembers (the caller then reports every UID of the
    /// range that is not there).
    pub fn expunged_since(&self, since: u64) -> Option<Vec<u32>> {
        if since < self.floor {
            return None;
        }
        let mut v: Vec<u32> = self
            .expunged
            .iter()
            .filter(|e| e.1 > since)
            .map(|e| e.0)
            .collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }
}

/// Fuzzing entry point: a log's text, as a crash or another program may
/// have left it, is read without a panic, and every event read, written
/// back as a line, reads as the same event.
pub fn fuzz_modlog(data: &[u8]) {
    let mut l = ModLog::default();
    l.absorb(data, 0);
    let (events, _) = l.take_events();
    for e in events {
        let line = match &e {
            Event::Flags(uid, letters) => format!("{uid} 2 :{letters}"),
            Event::Removed(uid) => format!("{uid} 2 X"),
            Event::Vanished(uid) => format!("{uid} 2 V"),
            Event::Added { uid, in_new, name } => {
                format!("{uid} 2 +{}/{name}", if *in_new { "n" } else { "c" })
            }
            Event::Stamps(b, a) => format!("S {} {}", render_stamps(b), render_stamps(a)),
        };
        // (A line's end, CR LF or LF, is not part of it.)
        if line.ends_with('\r') {
            continue;
        }
        let mut again = ModLog::default();
        again.absorb(format!("{line}\n").as_bytes(), 0);
        assert_eq!(again.take_events().0, vec![e], "{line:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::TempDir;

    #[test]
    fn log_refresh_compact() {
        let t = TempDir::new("modlog");
        let mut a = ModLog::open(&t.0);
        let mut b = ModLog::open(&t.0);
        assert_eq!(a.highest, 1);
        assert_eq!(
            a.log(&[Change::Flags(1, "S"), Change::Flags(2, "")])
                .unwrap(),
            vec![2, 3]
        );
        b.refresh().unwrap();
        assert_eq!(b.modseq(1), 2);
        assert_eq!(b.letters(2), Some(""));
        assert_eq!(b.log(&[Change::Expunged(1)]).unwrap(), vec![4]);
        a.refresh().unwrap();
        assert_eq!(a.expunged_since(3), Some(vec![1]));
        assert_eq!(a.expunged_since(4), Some(vec![]));
        assert_eq!(a.modseq(1), 1);
        a.slack = 50;
        for i in 0..60 {
            a.log(&[Change::Flags(2, if i % 2 == 0 { "S" } else { "" })])
                .unwrap();
        }
        // Compacted: expunges are forgotten below the floor.
        assert!(a.lines < 60);
        assert_eq!(a.expunged_since(3), None);
        b.refresh().unwrap();
        assert_eq!(b.highest, a.highest);
        assert_eq!(b.modseq(2), a.modseq(2));
        let c = ModLog::open(&t.0);
        assert_eq!(c.highest, a.highest);
        assert_eq!(c.floor, 4);
    }

    #[test]
    fn batches_tell_readers_what_changed_and_where_the_directories_were() {
        let t = TempDir::new("modlog-batch");
        for sub in ["new", "cur"] {
            std::fs::create_dir_all(t.0.join(sub)).unwrap();
        }
        let mut w = ModLog::open(&t.0);
        let mut r = ModLog::open(&t.0);
        let at = r.snapshot(&t.0).unwrap();
        let b = w.begin(&t.0).unwrap();
        std::fs::write(t.0.join("cur/m1:2,S"), b"x").unwrap();
        w.commit(
            b,
            &t.0,
            &[Change::Added(7, false, "m1:2,S"), Change::Flags(3, "F")],
        )
        .unwrap();
        // A second session expunging what the first did adds nothing.
        let b = w.begin(&t.0).unwrap();
        let seqs = w
            .commit(b, &t.0, &[Change::Expunged(5), Change::Vanished(6)])
            .unwrap();
        let b = w.begin(&t.0).unwrap();
        w.commit(b, &t.0, &[Change::Expunged(5), Change::Vanished(6)])
            .unwrap();
        let now = r.snapshot(&t.0).unwrap();
        let (events, lost) = r.take_events();
        assert!(!lost);
        assert_eq!(
            events,
            vec![
                Event::Added {
                    uid: 7,
                    in_new: false,
                    name: "m1:2,S".into()
                },
                Event::Flags(3, "F".into()),
                Event::Stamps(at, now),
                Event::Removed(5),
                Event::Vanished(6),
                Event::Stamps(now, now),
            ]
        );
        assert_eq!(seqs.len(), 2);
        assert!(r.was_removed(5) && !r.was_removed(6));
        assert_eq!(r.letters(7), Some("S"));
        // A compaction by the writer: the reader is told it lost the thread.
        w.slack = 0;
        w.compact_now();
        r.refresh().unwrap();
        assert!(r.take_events().1);
        assert_eq!(r.letters(7), Some("S"));
    }
}
