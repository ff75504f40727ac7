//! Changing a folder's messages: flags (renames in cur/) and expunges
//! (unlinks), each a batch of the modseq log (see modlog.rs), durable
//! before it returns.

use super::*;

impl Folder {
    /// Give messages new flags (indexes and flags), durably: renames in
    /// cur/, one fsync, the modseqs logged. Returns the indexes whose flags
    /// really changed.
    pub fn set_flags(&mut self, updates: &[(usize, FlagChange)]) -> io::Result<Vec<usize>> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"));
        }
        if self.mbox.is_some() {
            return self.set_mbox_flags(updates);
        }
        // What an earlier command found vanished is not trusted here: a
        // STORE must find a message another session renamed meanwhile.
        self.vanished.clear();
        let batch = self.modlog.begin(&self.dir)?;
        let mut changed = Vec::new();
        let mut touched_new = false;
        for &(i, op) in updates {
            let mut tried_again = false;
            loop {
                // The change applies to the flags the file has now: another
                // session's change made meanwhile is kept (the rename from
                // a name that is gone fails, the file is found again).
                let m = &self.messages[i];
                let flags = op.apply(m.flags);
                if flags == m.flags {
                    break;
                }
                let to = cur_name(&m.base, flags, &m.other);
                match fs::rename(self.path_of(m), self.dir.join("cur").join(&to)) {
                    Ok(()) => {
                        touched_new |= m.in_new;
                        let m = &mut self.messages[i];
                        m.name = to.clone();
                        m.in_new = false;
                        m.flags = flags;
                        changed.push(i);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !tried_again => {
                        tried_again = true;
                        // Renamed by someone else: find it and try once more.
                        if self.open_message(i).is_ok() {
                            continue;
                        }
                    }
                    // Expunged meanwhile: the next sync says so.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                break;
            }
        }
        if !changed.is_empty() {
            crate::fs::sync_dir(&self.dir.join("cur"))?;
            if touched_new {
                crate::fs::sync_dir(&self.dir.join("new"))?;
            }
        }
        self.log_flags(&changed, Some(batch))?;
        Ok(changed)
    }

    /// Log the new flags of messages (indexes; their names already carry
    /// them), each getting its modseq; ends `batch` (the renames) when
    /// given.
    pub(super) fn log_flags(&mut self, changed: &[usize], batch: Option<Batch>) -> io::Result<()> {
        let letters: Vec<String> = changed
            .iter()
            .map(|&i| {
                FileName::parse(&self.messages[i].name)
                    .letters
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        let list: Vec<Change> = changed
            .iter()
            .zip(&letters)
            .map(|(&i, l)| Change::Flags(self.messages[i].uid, l.as_str()))
            .collect();
        let seqs = match batch {
            Some(b) => self.modlog.commit(b, &self.dir, &list)?,
            None => self.modlog.log(&list)?,
        };
        for (&i, s) in changed.iter().zip(seqs) {
            self.messages[i].modseq = s;
        }
        Ok(())
    }

    /// Take the messages `gone` names out of the view (into `self.gone`)
    /// and log their expunges: `X` for those in `removed` (their file was
    /// removed by this session), `V` for the others; ends `batch` (the
    /// removals) when given. Returns their UIDs, ascending.
    pub(super) fn drop_from_view(
        &mut self,
        gone: impl Fn(usize, &Message) -> bool,
        removed: &HashSet<u32>,
        batch: Option<Batch>,
    ) -> io::Result<Vec<u32>> {
        let mut uids = Vec::new();
        let mut kept = Vec::with_capacity(self.messages.len());
        for (i, m) in std::mem::take(&mut self.messages).into_iter().enumerate() {
            if gone(i, &m) {
                uids.push(m.uid);
                self.gone.push(m);
            } else {
                kept.push(m);
            }
        }
        self.messages = kept;
        let list: Vec<Change> = uids
            .iter()
            .map(|&u| {
                if removed.contains(&u) {
                    Change::Expunged(u)
                } else {
                    Change::Vanished(u)
                }
            })
            .collect();
        match batch {
            Some(b) => self.modlog.commit(b, &self.dir, &list)?,
            None => self.modlog.log(&list)?,
        };
        Ok(uids)
    }

    /// Remove messages (indexes, any order), durably. Returns the UIDs
    /// removed, ascending; the view no longer holds them.
    pub fn expunge(&mut self, indexes: &[usize]) -> io::Result<Vec<u32>> {
        Ok(self.expunge_counted(indexes)?.0)
    }

    /// As `expunge`, also counting the files this call removed (others may
    /// have been removed by another program first).
    pub fn expunge_counted(&mut self, indexes: &[usize]) -> io::Result<(Vec<u32>, usize)> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"));
        }
        if self.mbox.is_some() {
            return self.expunge_mbox(indexes);
        }
        self.vanished.clear();
        let batch = self.modlog.begin(&self.dir)?;
        let mut gone = vec![false; self.messages.len()];
        let (mut new_touched, mut cur_touched) = (false, false);
        let mut removed = HashSet::new();
        for &i in indexes {
            let m = &self.messages[i];
            if self.modlog.was_removed(m.uid) {
                // Another session expunged it first (its log says so).
                gone[i] = true;
                continue;
            }
            match fs::remove_file(self.path_of(m)) {
                Ok(()) => {
                    removed.insert(m.uid);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Renamed meanwhile (flags): find it; gone already: fine.
                    if self.open_message(i).is_ok() {
                        let m = &self.messages[i];
                        match fs::remove_file(self.path_of(m)) {
                            Ok(()) => {
                                removed.insert(m.uid);
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
            new_touched |= self.messages[i].in_new;
            cur_touched |= !self.messages[i].in_new;
            gone[i] = true;
        }
        if cur_touched {
            crate::fs::sync_dir(&self.dir.join("cur"))?;
        }
        if new_touched {
            crate::fs::sync_dir(&self.dir.join("new"))?;
        }
        let uids = self.drop_from_view(|i, _| gone[i], &removed, Some(batch))?;
        if self.header_cache.is_open() {
            let live: HashSet<u32> = self.messages.iter().map(|m| m.uid).collect();
            self.header_cache.compact(&live, self.uidnext);
        }
        Ok((uids, removed.len()))
    }
}

/// A change of a message's flags, applied to what its file says when the
/// rename is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagChange {
    Set(Flags),
    Add(Flags),
    Remove(Flags),
}

impl FlagChange {
    pub fn apply(self, mut f: Flags) -> Flags {
        match self {
            FlagChange::Set(n) => n,
            FlagChange::Add(n) => {
                f.apply(n, true);
                f
            }
            FlagChange::Remove(n) => {
                f.apply(n, false);
                f
            }
        }
    }
}
