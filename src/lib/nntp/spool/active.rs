//! The active file, in INN's format: one line per group, `name high low
//! flag`, the numbers zero-padded to ten digits so that a new high-water
//! mark is written in place (a few bytes, one pwrite) rather than by
//! rewriting the file. Adding or removing a group rewrites it aside and
//! renames it (fs::durable), which readers notice by its inode.
//!
//! Parsing is pure ([`parse`]); [`ActiveFile`] keeps an index of where each
//! group's line is, re-read when the file is replaced, and always reads the
//! numbers themselves afresh.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::nntp::command::valid_group_name;

/// Width of the numbers INN writes (and we do).
pub const WIDTH: usize = 10;

/// A group's flag (INN's active(5)): `y` posting allowed, `n` no local
/// posting (articles from peers still arrive), `m` moderated, and the
/// rarer `j`, `x`, `=group` kept as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flag {
    Yes,
    No,
    Moderated,
    /// Anything else INN knows, carried as written.
    Other(String),
}

impl Flag {
    pub fn parse(s: &str) -> Option<Flag> {
        Some(match s {
            "y" => Flag::Yes,
            "n" => Flag::No,
            "m" => Flag::Moderated,
            "j" | "x" => Flag::Other(s.to_string()),
            s if s.starts_with('=') && valid_group_name(&s[1..]) => Flag::Other(s.to_string()),
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Flag::Yes => "y",
            Flag::No => "n",
            Flag::Moderated => "m",
            Flag::Other(s) => s,
        }
    }
}

/// One line of the active file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub high: u64,
    pub low: u64,
    pub flag: Flag,
}

impl Entry {
    /// The article count GROUP reports: an estimate from the marks, as
    /// INN's (RFC 3977 6.1.1 allows it).
    pub fn count(&self) -> u64 {
        if self.high >= self.low {
            self.high - self.low + 1
        } else {
            0
        }
    }

    /// The line as written, with its LF.
    pub fn line(&self) -> String {
        format!(
            "{} {:0w$} {:0w$} {}\n",
            self.name,
            self.high,
            self.low,
            self.flag.as_str(),
            w = WIDTH
        )
    }
}

/// One line, or None when it is not a valid active line.
pub fn parse_line(line: &str) -> Option<Entry> {
    let mut w = line.split_ascii_whitespace();
    let name = w.next()?;
    let high = w.next()?;
    let low = w.next()?;
    let flag = Flag::parse(w.next()?)?;
    if w.next().is_some() || !valid_group_name(name) {
        return None;
    }
    let num = |s: &str| -> Option<u64> {
        (s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    Some(Entry {
        name: name.to_string(),
        high: num(high)?,
        low: num(low)?,
        flag,
    })
}

/// Every valid line of an active file (invalid ones are skipped: the
/// caller may log them).
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

/// Where a group's line is, and the widths of its numbers.
#[derive(Clone, Debug)]
struct Slot {
    /// Offset of the high-water mark.
    high_at: u64,
    high_width: usize,
    low_at: u64,
    low_width: usize,
    /// The line's length with its LF (the numbers keep their widths).
    len: usize,
    line_at: u64,
}

/// The active file of a spool, indexed by group.
pub struct ActiveFile {
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of the file the index is of.
    id: (u64, u64),
    slots: HashMap<String, Slot>,
    order: Vec<String>,
    /// Under the spool lock nobody else changes the file: it is checked
    /// once, and the entries read are kept (`pin`, `unpin`).
    pinned: Option<HashMap<String, Entry>>,
    /// Groups whose marks were set while pinned: written by `unpin`.
    dirty: Vec<String>,
}

impl ActiveFile {
    pub fn new(path: &Path) -> ActiveFile {
        ActiveFile {
            path: path.to_path_buf(),
            file: None,
            id: (0, 0),
            slots: HashMap::new(),
            order: Vec::new(),
            pinned: None,
            dirty: Vec::new(),
        }
    }

    /// The caller holds the spool lock: check the file once now, and
    /// trust what is read and written until `unpin`.
    pub fn pin(&mut self) -> io::Result<()> {
        self.pinned = None;
        self.refresh()?;
        self.pinned = Some(HashMap::new());
        Ok(())
    }

    /// Write the marks set while pinned, and let go.
    pub fn unpin(&mut self) -> io::Result<()> {
        let written = self.write_dirty();
        self.discard();
        written
    }

    fn write_dirty(&mut self) -> io::Result<()> {
        for name in std::mem::take(&mut self.dirty) {
            let marks = self.pinned.as_ref().and_then(|c| c.get(&name));
            if let Some((high, low)) = marks.map(|e| (e.high, e.low)) {
                self.write_marks(&name, high, low)?;
            }
        }
        Ok(())
    }

    /// Let go, dropping the marks set while pinned: they were never
    /// written, so the numbers may be handed out again.
    pub fn discard(&mut self) {
        self.pinned = None;
        self.dirty.clear();
    }

    /// Re-read the index if the file was replaced (or never read).
    pub fn refresh(&mut self) -> io::Result<()> {
        if self.pinned.is_some() && self.file.is_some() {
            return Ok(());
        }
        let meta = std::fs::metadata(&self.path)?;
        let id = (meta.dev(), meta.ino());
        if self.file.is_some() && id == self.id {
            return Ok(());
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .or_else(|_| File::open(&self.path))?;
        let id = {
            let m = file.metadata()?;
            (m.dev(), m.ino())
        };
        let mut text = Vec::new();
        io::Read::read_to_end(&mut &file, &mut text)?;
        let mut slots = HashMap::new();
        let mut order = Vec::new();
        let mut at = 0usize;
        for line in text.split_inclusive(|&b| b == b'\n') {
            let here = at;
            at += line.len();
            let Ok(s) = std::str::from_utf8(line) else {
                continue;
            };
            if parse_line(s).is_none() {
                continue;
            }
            // The fields, by position: name, high, low.
            let mut fields = Vec::new();
            let mut start = None;
            for (i, b) in line.iter().enumerate() {
                let space = b.is_ascii_whitespace();
                match (start, space) {
                    (None, false) => start = Some(i),
                    (Some(s0), true) => {
                        fields.push((s0, i));
                        start = None;
                    }
                    _ => {}
                }
            }
            let (name, high, low) = (fields[0], fields[1], fields[2]);
            let name = s[name.0..name.1].to_string();
            order.push(name.clone());
            slots.insert(
                name,
                Slot {
                    high_at: (here + high.0) as u64,
                    high_width: high.1 - high.0,
                    low_at: (here + low.0) as u64,
                    low_width: low.1 - low.0,
                    len: line.len(),
                    line_at: here as u64,
                },
            );
        }
        self.file = Some(file);
        self.id = id;
        self.slots = slots;
        self.order = order;
        Ok(())
    }

    /// The group's line as it is now (numbers read afresh).
    pub fn get(&mut self, name: &str) -> io::Result<Option<Entry>> {
        if let Some(e) = self.pinned.as_ref().and_then(|c| c.get(name)) {
            return Ok(Some(e.clone()));
        }
        self.refresh()?;
        let (Some(slot), Some(file)) = (self.slots.get(name), &self.file) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; slot.len];
        file.read_exact_at(&mut buf, slot.line_at)?;
        let e = std::str::from_utf8(&buf).ok().and_then(parse_line);
        if let (Some(c), Some(e)) = (self.pinned.as_mut(), &e) {
            c.insert(name.to_string(), e.clone());
        }
        Ok(e)
    }

    /// The names of the groups, in file order.
    pub fn names(&mut self) -> io::Result<Vec<String>> {
        self.refresh()?;
        Ok(self.order.clone())
    }

    fn write_number(&self, at: u64, width: usize, n: u64) -> io::Result<bool> {
        let text = format!("{n:0width$}");
        if text.len() != width {
            return Ok(false);
        }
        let Some(file) = &self.file else {
            return Err(io::Error::other("active file not open"));
        };
        file.write_all_at(text.as_bytes(), at)?;
        Ok(true)
    }

    /// Set a group's marks (under the spool lock). In place when the
    /// numbers fit their fields, else by rewriting the file.
    /// While pinned they are kept and written by `unpin`, once a batch.
    pub fn set_marks(&mut self, name: &str, high: u64, low: u64) -> io::Result<()> {
        if self.pinned.is_some() {
            // Into the kept entries (read now if it is not one yet).
            self.get(name)?;
        }
        if let Some(e) = self.pinned.as_mut().and_then(|c| c.get_mut(name)) {
            e.high = high;
            e.low = low;
            if !self.dirty.iter().any(|d| d == name) {
                self.dirty.push(name.to_string());
            }
            return Ok(());
        }
        self.write_marks(name, high, low)
    }

    fn write_marks(&mut self, name: &str, high: u64, low: u64) -> io::Result<()> {
        self.refresh()?;
        let Some(slot) = self.slots.get(name).cloned() else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such group"));
        };
        let adjacent = slot.low_at == slot.high_at + slot.high_width as u64 + 1;
        let in_place = if adjacent {
            // One write for both: "HIGH LOW".
            let text = format!(
                "{high:0hw$} {low:0lw$}",
                hw = slot.high_width,
                lw = slot.low_width
            );
            text.len() == slot.high_width + 1 + slot.low_width && {
                let Some(file) = &self.file else {
                    return Err(io::Error::other("active file not open"));
                };
                file.write_all_at(text.as_bytes(), slot.high_at)?;
                true
            }
        } else {
            self.write_number(slot.high_at, slot.high_width, high)?
                && self.write_number(slot.low_at, slot.low_width, low)?
        };
        if in_place {
            return Ok(());
        }
        self.rewrite(|entries| {
            if let Some(e) = entries.iter_mut().find(|e| e.name == name) {
                e.high = high;
                e.low = low;
            }
        })
    }

    /// fsync the file (after in-place updates).
    pub fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Every entry as it is now.
    pub fn entries(&mut self) -> io::Result<Vec<Entry>> {
        let text = std::fs::read(&self.path)?;
        Ok(parse(&String::from_utf8_lossy(&text)))
    }

    /// Rewrite the file with `change` applied (under the spool lock),
    /// durably, aside and renamed.
    pub fn rewrite(&mut self, change: impl FnOnce(&mut Vec<Entry>)) -> io::Result<()> {
        // Marks kept while pinned go in first: the rewrite reads the file.
        self.write_dirty()?;
        let mut entries = self.entries()?;
        change(&mut entries);
        let text: String = entries.iter().map(Entry::line).collect();
        crate::fs::durable::write_file(&self.path, 0o644, text.as_bytes())?;
        self.file = None;
        if let Some(c) = self.pinned.as_mut() {
            c.clear();
        }
        self.refresh()
    }
}

/// Fuzzing entry point: any bytes as an active file.
pub fn fuzz_active(data: &[u8]) {
    for e in parse(&String::from_utf8_lossy(data)) {
        let again = parse_line(e.line().trim_end());
        assert_eq!(again.as_ref(), Some(&e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_format() {
        let e = parse_line("lab.test 0000000012 0000000003 y").unwrap();
        assert_eq!(e.high, 12);
        assert_eq!(e.low, 3);
        assert_eq!(e.count(), 10);
        assert_eq!(e.line(), "lab.test 0000000012 0000000003 y\n");
        assert_eq!(parse_line("a 5 6 m").unwrap().count(), 0);
        assert_eq!(
            parse_line("a 0 1 =b.c").unwrap().flag,
            Flag::Other("=b.c".into())
        );
        for bad in [
            "",
            "a 1 1",
            "a 1 1 q",
            "a x 1 y",
            "a 1 1 y extra",
            "../x 1 1 y",
            "A 1 1 y",
            "a -1 1 y",
            "a 123456789012345678901 1 y",
        ] {
            assert!(parse_line(bad).is_none(), "{bad}");
        }
        assert_eq!(parse("a 1 1 y\nbad\nb 2 1 n\n").len(), 2);
    }

    #[test]
    fn in_place_updates_and_rewrites() {
        let dir = std::env::temp_dir().join(format!("nntp-active-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("active");
        std::fs::write(&path, "a.b 0000000000 0000000001 y\nc 5 1 n\n").unwrap();
        let mut a = ActiveFile::new(&path);
        assert_eq!(a.names().unwrap(), vec!["a.b", "c"]);
        a.set_marks("a.b", 7, 1).unwrap();
        assert_eq!(a.get("a.b").unwrap().unwrap().high, 7);
        // "5" has one digit: 10 does not fit, so the file is rewritten.
        a.set_marks("c", 10, 2).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "a.b 0000000007 0000000001 y\nc 0000000010 0000000002 n\n"
        );
        assert_eq!(a.get("c").unwrap().unwrap().low, 2);
        assert!(a.get("nope").unwrap().is_none());
        // Another writer replaces the file: seen at once.
        crate::fs::durable::write_file(&path, 0o644, b"z 0000000001 0000000001 m\n").unwrap();
        assert_eq!(a.names().unwrap(), vec!["z"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinned_marks_are_written_once_at_unpin_or_dropped() {
        let dir = std::env::temp_dir().join(format!("nntp-active-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("active");
        std::fs::write(&path, "a.b 0000000000 0000000001 y\nc 5 1 n\n").unwrap();
        let mut a = ActiveFile::new(&path);
        a.pin().unwrap();
        for n in 1..=3 {
            let e = a.get("a.b").unwrap().unwrap();
            assert_eq!(e.high, n - 1);
            a.set_marks("a.b", n, 1).unwrap();
        }
        // Nothing written yet; one write at unpin.
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(before.starts_with("a.b 0000000000 "));
        a.set_marks("c", 10, 2).unwrap();
        a.unpin().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a.b 0000000003 0000000001 y\nc 0000000010 0000000002 n\n"
        );
        // Dropped: the numbers were written nowhere.
        a.pin().unwrap();
        a.set_marks("a.b", 4, 1).unwrap();
        a.discard();
        assert_eq!(a.get("a.b").unwrap().unwrap().high, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_active(b"a 1 1 y\n\xff 1 1 y\nb 99999999999999999999 0 n\n");
    }
}
