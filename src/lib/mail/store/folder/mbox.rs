//! A Folder whose messages are in one mbox file (c-client format, see
//! `store::cclient`). The view is the Maildir one (UIDs, flags, \Recent,
//! modseqs in the index directory's log); what differs is where it is read
//! from and how a change is made durable: under the mbox's locks, the file
//! read again, the change applied to what it says now, the file written.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{cur_name, Changes, FlagChange, Flags, Folder, Message};
use crate::mail::lock::{DotLock, LOCK_WAIT};
use crate::mail::store::cclient::{self, Base, Entry, Scanned, State};

/// The mbox's identity, size and change time: a sync with the same stamp
/// has nothing to read.
type FileStamp = (u64, u64, u64, i64, i64);

fn file_stamp(path: &Path) -> io::Result<Option<FileStamp>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some((
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) struct Backing {
    pub(crate) path: PathBuf,
    /// The file as last scanned (offsets are into it, whatever another
    /// program renamed over the path since) and its entries by UID.
    file: Option<File>,
    entries: HashMap<u32, Entry>,
    /// Trusted only when settled (see `sync`); None: read the file.
    stamp: Option<Option<FileStamp>>,
}

impl Backing {
    pub(crate) fn date(&self, uid: u32) -> io::Result<i64> {
        self.entries
            .get(&uid)
            .map(|e| e.date)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

impl Folder {
    /// Open the mbox folder `path` with its index directory `index` (made
    /// when missing).
    pub fn open_mbox(path: &Path, index: &Path, read_only: bool) -> io::Result<Folder> {
        crate::fs::create_private_dir_all(index)?;
        let mut f = Folder::blank(index, read_only);
        f.mbox = Some(Box::new(Backing {
            path: path.to_path_buf(),
            file: None,
            entries: HashMap::new(),
            stamp: None,
        }));
        f.sync(!read_only)?;
        Ok(f)
    }

    pub fn is_mbox(&self) -> bool {
        self.mbox.is_some()
    }

    /// The mbox file of an mbox folder.
    pub fn mbox_path(&self) -> Option<&Path> {
        self.mbox.as_deref().map(|b| b.path.as_path())
    }

    fn backing(&mut self) -> &mut Backing {
        self.mbox.as_deref_mut().expect("an mbox folder")
    }

    /// A message's flags from its state: keywords by their index here;
    /// those without one stay by name (returned second).
    fn flags_of(&self, s: &State) -> (Flags, Vec<String>) {
        let mut f = s.system;
        let mut extra = Vec::new();
        for k in &s.keywords {
            match self.keywords.find(k) {
                Some(i) => f.set_keyword(i, true),
                None => extra.push(k.clone()),
            }
        }
        (f, extra)
    }

    fn set_state(&self, s: &mut State, flags: Flags) {
        let extra = self.flags_of(s).1;
        let mut system = flags;
        system.keywords = 0;
        s.system = system;
        s.keywords = self
            .keywords
            .iter()
            .filter(|(i, _)| flags.has_keyword(*i))
            .map(|(_, k)| k.to_string())
            .chain(extra)
            .collect();
    }

    pub(super) fn sync_mbox(&mut self, take_recent: bool) -> io::Result<Changes> {
        let (log_moved, mut changes) = self.begin_sync();
        let path = self.backing().path.clone();
        let now_stamp = file_stamp(&path)?;
        if self.backing().stamp == Some(now_stamp) {
            if log_moved || !changes.flags.is_empty() {
                self.modseq_changes(&mut changes);
            }
            return Ok(changes);
        }
        let take = take_recent && !self.read_only;
        let (scanned, base, recent, file) = match cclient::lock(&path, false)? {
            None => {
                // The base of a folder without its file is decided under
                // the dot-lock too: two sessions must not pick two.
                let _dot = DotLock::acquire(&path, LOCK_WAIT)?;
                (Scanned::default(), self.empty_base(), HashSet::new(), None)
            }
            Some(locked) => {
                let mut scanned = cclient::scan(&locked.file)?;
                let (base, given) = cclient::resolve_uids(&mut scanned, &self.dir)?;
                let recent: HashSet<u32> = scanned
                    .entries
                    .iter()
                    .filter(|e| !e.state.old)
                    .filter_map(|e| e.state.uid)
                    .collect();
                cclient::write_index(&self.dir, &base)?;
                if given || (take && !recent.is_empty()) {
                    let states: Vec<State> = scanned
                        .entries
                        .iter()
                        .map(|e| State {
                            old: e.state.old || take,
                            ..e.state.clone()
                        })
                        .collect();
                    let pairs: Vec<(&Entry, &State)> =
                        scanned.entries.iter().zip(&states).collect();
                    locked.rewrite(&path, &pairs, &[], &base)?;
                    let file =
                        crate::mail::open_regular(std::fs::OpenOptions::new().read(true), &path)?;
                    let rescanned = cclient::scan(&file)?;
                    (rescanned, base, recent, Some(file))
                } else {
                    let file = locked.file.try_clone()?;
                    (scanned, base, recent, Some(file))
                }
            }
        };
        self.apply_scan(scanned, base, file, &recent, &mut changes)?;
        // An mtime moves in clock ticks: two changes within one tick leave
        // the stamp the same. Trusted once two seconds old.
        let settled = file_stamp(&path)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.backing().stamp = match settled {
            Some(s) if now - s.3 < 2 => None,
            s => Some(s),
        };
        self.modseq_changes(&mut changes);
        Ok(changes)
    }

    /// The base of a folder whose file does not exist (yet).
    fn empty_base(&self) -> Base {
        let (validity, uidlast) = cclient::read_index(&self.dir).unwrap_or((
            if self.uidvalidity != 0 {
                self.uidvalidity
            } else {
                super::next_uidvalidity(self.dir.parent().unwrap_or(&self.dir))
            },
            0,
        ));
        let base = Base {
            validity,
            uidlast,
            keywords: Vec::new(),
        };
        let _ = cclient::write_index(&self.dir, &base);
        base
    }

    /// Take a reading of the file into the view: what went, what changed,
    /// what came (`recent`: the UIDs that were \Recent when read).
    fn apply_scan(
        &mut self,
        scanned: Scanned,
        base: Base,
        file: Option<File>,
        recent: &HashSet<u32>,
        changes: &mut Changes,
    ) -> io::Result<()> {
        if self.uidvalidity != 0 && self.uidvalidity != base.validity {
            return Err(io::Error::other("UIDVALIDITY changed under the session"));
        }
        self.uidvalidity = base.validity;
        self.uidnext = base.uidlast.saturating_add(1);
        let mut names: Vec<String> = base.keywords.clone();
        for e in &scanned.entries {
            names.extend(e.state.keywords.iter().cloned());
        }
        names.sort();
        names.dedup();
        names.retain(|n| super::super::flags::valid_keyword(n));
        if self.read_only {
            self.load_keywords();
            if names.iter().any(|n| self.keywords.find(n).is_none()) {
                self.keywords = super::intern_keywords(&self.dir, &names)?.0;
            }
        } else {
            self.intern_keywords(&names)?;
        }
        let entries: HashMap<u32, Entry> = scanned
            .entries
            .into_iter()
            .filter_map(|e| Some((e.state.uid?, e)))
            .collect();
        let mut kept = Vec::with_capacity(self.messages.len());
        for mut m in std::mem::take(&mut self.messages) {
            match entries.get(&m.uid) {
                None => {
                    changes.expunged.push(m.uid);
                    self.gone.push(m);
                }
                Some(e) => {
                    let flags = self.flags_of(&e.state).0;
                    if flags != m.flags {
                        changes.flags.push(m.uid);
                        m.flags = flags;
                        m.name = cur_name(&m.base, flags, "");
                    }
                    m.size = Some(e.size);
                    kept.push(m);
                }
            }
        }
        self.messages = kept;
        let last = self.messages.last().map_or(0, |m| m.uid);
        let mut fresh: Vec<&Entry> = entries
            .values()
            .filter(|e| e.state.uid.is_some_and(|u| u > last))
            .collect();
        fresh.sort_by_key(|e| e.state.uid);
        changes.added = fresh.len();
        for e in fresh {
            let uid = e.state.uid.expect("filtered");
            let flags = self.flags_of(&e.state).0;
            let base = uid.to_string();
            self.messages.push(Message {
                uid,
                name: cur_name(&base, flags, ""),
                base,
                in_new: false,
                flags,
                other: String::new(),
                recent: recent.contains(&uid),
                modseq: 1,
                size: Some(e.size),
            });
        }
        let b = self.backing();
        b.entries = entries;
        b.file = file;
        Ok(())
    }

    fn entry(&mut self, index: usize) -> io::Result<(File, Entry)> {
        let uid = self.messages[index].uid;
        let b = self.backing();
        match (&b.file, b.entries.get(&uid)) {
            (Some(f), Some(e)) => Ok((f.try_clone()?, e.clone())),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    pub(super) fn read_mbox_message(&mut self, index: usize, header: bool) -> io::Result<Vec<u8>> {
        let (f, e) = self.entry(index)?;
        if header {
            cclient::read_message_header(&f, &e)
        } else {
            cclient::read_message(&f, &e)
        }
    }

    /// Apply a change to the file under its locks: `edit` gets the entries
    /// as the file has them now (with their UIDs) and says which to keep
    /// and with what state. The view's file and stamp are dropped: the
    /// next sync reads what others changed meanwhile.
    fn change_mbox(
        &mut self,
        mut edit: impl FnMut(&mut Folder, &[Entry]) -> Vec<Option<State>>,
    ) -> io::Result<()> {
        let path = self.backing().path.clone();
        let Some(locked) = cclient::lock(&path, false)? else {
            return Ok(());
        };
        let mut scanned = cclient::scan(&locked.file)?;
        let (base, given) = cclient::resolve_uids(&mut scanned, &self.dir)?;
        cclient::write_index(&self.dir, &base)?;
        let states = edit(self, &scanned.entries);
        let unchanged = scanned
            .entries
            .iter()
            .zip(&states)
            .all(|(e, s)| s.as_ref() == Some(&e.state));
        if !unchanged || given {
            let pairs: Vec<(&Entry, &State)> = scanned
                .entries
                .iter()
                .zip(&states)
                .filter_map(|(e, s)| Some((e, s.as_ref()?)))
                .collect();
            locked.rewrite(&path, &pairs, &[], &base)?;
            self.backing().stamp = None;
        }
        Ok(())
    }

    pub(super) fn set_mbox_flags(
        &mut self,
        updates: &[(usize, FlagChange)],
    ) -> io::Result<Vec<usize>> {
        let wanted: HashMap<u32, (usize, FlagChange)> = updates
            .iter()
            .map(|&(i, op)| (self.messages[i].uid, (i, op)))
            .collect();
        let mut changed: Vec<(usize, Flags)> = Vec::new();
        self.change_mbox(|f, entries| {
            entries
                .iter()
                .map(|e| {
                    let mut s = e.state.clone();
                    if let Some(&(i, op)) = e.state.uid.and_then(|u| wanted.get(&u)) {
                        let now = f.flags_of(&s).0;
                        let new = op.apply(now);
                        if new != now {
                            f.set_state(&mut s, new);
                            changed.push((i, new));
                        }
                    }
                    Some(s)
                })
                .collect()
        })?;
        changed.sort_by_key(|c| c.0);
        for &(i, flags) in &changed {
            let m = &mut self.messages[i];
            m.flags = flags;
            m.name = cur_name(&m.base, flags, "");
        }
        let indexes: Vec<usize> = changed.into_iter().map(|c| c.0).collect();
        self.log_flags(&indexes, None)?;
        Ok(indexes)
    }

    pub(super) fn expunge_mbox(&mut self, indexes: &[usize]) -> io::Result<(Vec<u32>, usize)> {
        let doomed: HashSet<u32> = indexes.iter().map(|&i| self.messages[i].uid).collect();
        let mut removed = 0;
        self.change_mbox(|_, entries| {
            entries
                .iter()
                .map(|e| {
                    if e.state.uid.is_some_and(|u| doomed.contains(&u)) {
                        removed += 1;
                        None
                    } else {
                        Some(e.state.clone())
                    }
                })
                .collect()
        })?;
        // All removed from the file under its lock, by this session.
        let uids = self.drop_from_view(|_, m| doomed.contains(&m.uid), &doomed, None)?;
        Ok((uids, removed))
    }
}
