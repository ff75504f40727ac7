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

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

pub const FILE: &str = "classicd-modseq";

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
    /// How far the file has been read.
    offset: u64,
    lines: usize,
    /// Lines beyond one per message before a compaction.
    slack: usize,
}

/// A change to log.
pub enum Change<'a> {
    Flags(u32, &'a str),
    Expunged(u32),
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

    fn absorb(&mut self, text: &str) {
        for line in text.lines() {
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
            let (Ok(uid), Ok(m)) = (a.parse::<u32>(), b.parse::<u64>()) else {
                continue;
            };
            self.highest = self.highest.max(m);
            if c == "X" {
                self.entries.remove(&uid);
                self.expunged.push((uid, m));
            } else if let Some(letters) = c.strip_prefix(':') {
                self.entries.insert(uid, (m, letters.to_string()));
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
        let len = f.metadata()?.len();
        if len < self.offset {
            // Compacted by another session: read it anew.
            let path = std::mem::take(&mut self.path);
            *self = ModLog {
                path,
                highest: 1,
                slack: self.slack,
                ..ModLog::default()
            };
        }
        if len == self.offset {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Only whole lines: a writer may be in the middle of one.
        let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        self.offset += end as u64;
        self.absorb(&String::from_utf8_lossy(&buf[..end]));
        Ok(true)
    }

    /// The modseq of a message (1 when never logged: as old as the log).
    pub fn modseq(&self, uid: u32) -> u64 {
        self.entries.get(&uid).map_or(1, |e| e.0)
    }

    pub fn letters(&self, uid: u32) -> Option<&str> {
        self.entries.get(&uid).map(|e| e.1.as_str())
    }

    /// Log changes, each with a fresh modseq, durably; returns the modseq of
    /// each, in order.
    /// A flag change whose letters are already the last ones logged for
    /// its message (another session saw the rename first and logged it)
    /// keeps the modseq it got there: every session shows one modseq.
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
        use std::os::unix::fs::MetadataExt;
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // A compaction replaces the file: lock the one at the path.
        let lock = loop {
            let f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)?;
            let lock =
                Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
            let held = lock.metadata()?;
            match std::fs::symlink_metadata(&self.path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => break lock,
                _ => continue,
            }
        };
        self.refresh()?;
        let mut out = String::new();
        let mut seqs = Vec::with_capacity(changes.len());
        for c in changes {
            if let Change::Flags(uid, letters) = c {
                if self.letters(*uid) == Some(*letters) || !still(c) {
                    seqs.push(self.modseq(*uid));
                    continue;
                }
            }
            self.highest += 1;
            let m = self.highest;
            seqs.push(m);
            match c {
                Change::Flags(uid, letters) => out.push_str(&format!("{uid} {m} :{letters}\n")),
                Change::Expunged(uid) => out.push_str(&format!("{uid} {m} X\n")),
            }
        }
        if out.is_empty() {
            return Ok(seqs);
        }
        (&*lock).write_all(out.as_bytes())?;
        lock.sync_data()?;
        self.offset += out.len() as u64;
        self.absorb(&out);
        if self.lines > 4 * self.entries.len() + self.slack {
            let _ = self.compact(&lock);
        }
        Ok(seqs)
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
        self.offset = out.len() as u64;
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
}
