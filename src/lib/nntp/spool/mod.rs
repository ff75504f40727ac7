//! The news spool, in INN-compatible files where INN has them:
//!
//! ```text
//! spool_dir/
//!   active              group high low flag        (INN's active(5))
//!   active.times        group time creator         (INN's active.times(5))
//!   newsgroups          group<TAB>description      (INN's newsgroups(5))
//!   distrib.pats        INN's distrib.pats(5), served as it is, if there
//!   history             <id> TAB arrival TAB group:n,group:n
//!   history.index       hash table over history (see history.rs)
//!   articles/GROUP/B/N  one file per article (B = N modulo 16), INN's wire
//!                       format; a crosspost is stored once, hard-linked in
//!                       each group
//!   overview/GROUP      the group's overview, as OVER sends it
//!   outgoing/PEER       the articles queued for a peer; PEER.pos: how far
//!                       its sender got
//!   journal/            one segment per writing process (journal.rs)
//!   lock                flock: exclusive for writers, shared for readers
//! ```
//!
//! A group name is only ever a directory or file name after
//! `command::valid_group_name` said yes (no `/`, no `.` or `..` component);
//! a message-id never is one.

pub mod active;
pub mod expire;
pub mod history;
pub mod journal;
pub mod overview;
pub mod store;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::command::valid_group_name;

/// Article directories per group (see `Spool::article`).
pub const BUCKETS: u64 = 16;

/// A spool directory and the names in it.
#[derive(Clone, Debug)]
pub struct Spool {
    pub dir: PathBuf,
}

impl Spool {
    pub fn new(dir: &Path) -> Spool {
        Spool {
            dir: dir.to_path_buf(),
        }
    }

    pub fn active(&self) -> PathBuf {
        self.dir.join("active")
    }

    pub fn active_times(&self) -> PathBuf {
        self.dir.join("active.times")
    }

    pub fn newsgroups(&self) -> PathBuf {
        self.dir.join("newsgroups")
    }

    pub fn distrib_pats(&self) -> PathBuf {
        self.dir.join("distrib.pats")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }

    pub fn outgoing_dir(&self) -> PathBuf {
        self.dir.join("outgoing")
    }

    /// The directory of a group's articles. The name must be valid.
    pub fn group_dir(&self, group: &str) -> PathBuf {
        debug_assert!(valid_group_name(group));
        self.dir.join("articles").join(group)
    }

    /// An article's file: `articles/GROUP/B/N`, B being N modulo
    /// [`BUCKETS`]: creating a file locks its directory, so writers taking
    /// consecutive numbers work in different directories, side by side.
    pub fn article(&self, group: &str, number: u64) -> PathBuf {
        let mut p = self.group_dir(group);
        p.push((number % BUCKETS).to_string());
        p.push(number.to_string());
        p
    }

    pub fn overview(&self, group: &str) -> PathBuf {
        debug_assert!(valid_group_name(group));
        self.dir.join("overview").join(group)
    }

    /// The spool lock: exclusive to change the spool, shared to read a
    /// consistent state (the marks of a group).
    pub fn lock(&self, exclusive: bool) -> io::Result<Flock<File>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join("lock"))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(f, arg).map_err(|(_, e)| io::Error::from(e))
    }

    /// Make the directories and empty files of a new spool (what exists
    /// is left alone).
    pub fn create(&self) -> io::Result<()> {
        for d in ["", "articles", "overview", "outgoing", "journal"] {
            let p = self.dir.join(d);
            if !p.is_dir() {
                std::fs::create_dir_all(&p)?;
            }
        }
        for f in ["active", "active.times", "newsgroups", "history"] {
            let p = self.dir.join(f);
            if !p.exists() {
                crate::fs::durable::write_file(&p, 0o644, b"")?;
            }
        }
        Ok(())
    }

    /// Who owns the spool: writers act as that account.
    pub fn owner(&self) -> io::Result<(u32, u32)> {
        let m = std::fs::metadata(&self.dir)?;
        Ok((m.uid(), m.gid()))
    }

    /// Add a group (or change its flag), with its description (under the
    /// spool lock, which this takes). Returns whether it was new.
    pub fn new_group(
        &self,
        name: &str,
        flag: active::Flag,
        description: Option<&str>,
        creator: &str,
        now: u64,
    ) -> io::Result<bool> {
        if !valid_group_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a newsgroup name",
            ));
        }
        self.create()?;
        let _lock = self.lock(true)?;
        let mut act = active::ActiveFile::new(&self.active());
        let existed = act.get(name)?.is_some();
        for b in 0..BUCKETS {
            std::fs::create_dir_all(self.group_dir(name).join(b.to_string()))?;
        }
        let ov = self.overview(name);
        if !ov.exists() {
            crate::fs::durable::write_file(&ov, 0o644, b"")?;
        }
        act.rewrite(
            |entries| match entries.iter_mut().find(|e| e.name == name) {
                Some(e) => e.flag = flag.clone(),
                None => entries.push(active::Entry {
                    name: name.to_string(),
                    high: 0,
                    low: 1,
                    flag: flag.clone(),
                }),
            },
        )?;
        if !existed {
            let times = std::fs::read_to_string(self.active_times()).unwrap_or_default();
            let mut kept: String = times
                .lines()
                .filter(|l| l.split_whitespace().next() != Some(name))
                .map(|l| format!("{l}\n"))
                .collect();
            let creator = creator
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect::<String>();
            kept.push_str(&format!("{name} {now} {creator}\n"));
            crate::fs::durable::write_file(&self.active_times(), 0o644, kept.as_bytes())?;
        }
        if let Some(d) = description {
            self.set_description(name, Some(d))?;
        }
        crate::fs::sync_dir(&self.dir)?;
        Ok(!existed)
    }

    fn set_description(&self, name: &str, description: Option<&str>) -> io::Result<()> {
        let text = std::fs::read_to_string(self.newsgroups()).unwrap_or_default();
        let mut out: String = text
            .lines()
            .filter(|l| l.split(['\t', ' ']).next() != Some(name))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some(d) = description {
            let d: String = d
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out.push_str(&format!("{name}\t{d}\n"));
        }
        crate::fs::durable::write_file(&self.newsgroups(), 0o644, out.as_bytes())
    }

    /// Remove a group: from active, active.times and newsgroups, and its
    /// articles and overview (under the spool lock, which this takes).
    /// Returns whether it existed.
    pub fn remove_group(&self, name: &str) -> io::Result<bool> {
        if !valid_group_name(name) {
            return Ok(false);
        }
        let _lock = self.lock(true)?;
        let mut act = active::ActiveFile::new(&self.active());
        if act.get(name)?.is_none() {
            return Ok(false);
        }
        act.rewrite(|entries| entries.retain(|e| e.name != name))?;
        let times = std::fs::read_to_string(self.active_times()).unwrap_or_default();
        let kept: String = times
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(name))
            .map(|l| format!("{l}\n"))
            .collect();
        crate::fs::durable::write_file(&self.active_times(), 0o644, kept.as_bytes())?;
        self.set_description(name, None)?;
        let _ = std::fs::remove_dir_all(self.group_dir(name));
        let _ = std::fs::remove_file(self.overview(name));
        crate::fs::sync_dir(&self.dir)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_and_go() {
        let dir = std::env::temp_dir().join(format!("nntp-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Spool::new(&dir);
        assert!(s
            .new_group("lab.test", active::Flag::Yes, Some("A\ttest"), "me", 5)
            .unwrap());
        assert!(!s
            .new_group("lab.test", active::Flag::Moderated, None, "me", 6)
            .unwrap());
        assert!(s
            .new_group("../x", active::Flag::Yes, None, "me", 5)
            .is_err());
        let active = std::fs::read_to_string(s.active()).unwrap();
        assert_eq!(active, "lab.test 0000000000 0000000001 m\n");
        assert_eq!(
            std::fs::read_to_string(s.newsgroups()).unwrap(),
            "lab.test\tA test\n"
        );
        assert_eq!(
            std::fs::read_to_string(s.active_times()).unwrap(),
            "lab.test 5 me\n"
        );
        assert!(s.group_dir("lab.test").is_dir());
        assert!(s.remove_group("lab.test").unwrap());
        assert!(!s.remove_group("lab.test").unwrap());
        assert_eq!(std::fs::read_to_string(s.active()).unwrap(), "");
        assert!(!s.group_dir("lab.test").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
