//! Adding messages to a folder (APPEND, COPY, MOVE): each put in place
//! whole, then all given UIDs at once under the uidlist's lock.

use super::*;
use crate::mail::store::cclient;

/// Add messages to a folder (APPEND, COPY, MOVE); durable on return.
/// `finish` returns the folder's UIDVALIDITY and the new UIDs in order.
pub enum Adder {
    Maildir(MaildirAdder),
    Mbox(MboxAdder),
}

impl Adder {
    /// To the Maildir folder `dir`.
    pub fn new(dir: &Path) -> io::Result<Adder> {
        Ok(Adder::Maildir(MaildirAdder::new(dir)?))
    }

    /// To the mbox folder `path` with its index directory `index`.
    pub fn mbox(path: &Path, index: &Path) -> io::Result<Adder> {
        Ok(Adder::Mbox(MboxAdder::new(path, index)?))
    }

    /// A new message from its bytes (any line ends: stored with LF, as
    /// deliveries are), with flags and an internal date.
    pub fn add_bytes(
        &mut self,
        data: &[u8],
        flags: Flags,
        other: &str,
        date: Option<i64>,
    ) -> io::Result<()> {
        match self {
            Adder::Maildir(a) => a.add_bytes(data, flags, other, date),
            Adder::Mbox(a) => a.add_bytes(data, flags, date),
        }
    }

    /// A copy of a Maildir message's file.
    pub fn add_copy(&mut self, from: &Path, flags: Flags, other: &str) -> io::Result<()> {
        match self {
            Adder::Maildir(a) => a.add_copy(from, flags, other),
            Adder::Mbox(a) => {
                let mut f = crate::mail::open_regular(fs::OpenOptions::new().read(true), from)?;
                let date = f.metadata()?.mtime();
                let mut data = Vec::new();
                f.read_to_end(&mut data)?;
                a.add_bytes(&data, flags, Some(date))
            }
        }
    }

    pub fn finish(self) -> io::Result<(u32, Vec<u32>)> {
        match self {
            Adder::Maildir(a) => a.finish(),
            Adder::Mbox(a) => a.finish(),
        }
    }
}

/// Adding to a Maildir folder: each message is written whole in tmp/
/// (and fsynced) as it comes, then all are put in place and given UIDs at
/// once, as one batch of the folder's modseq log (so that the sessions
/// that have the folder open learn of them from the log).
pub struct MaildirAdder {
    dir: PathBuf,
    pending: Vec<Pending>,
}

/// A message waiting in tmp/.
struct Pending {
    /// Its file in tmp/ (removed if the adder is dropped unfinished).
    file: Waiting,
    base: String,
    name: String,
    in_new: bool,
}

/// A file in tmp/: written by us, or a hard link to the message copied
/// (no descriptor needed for that: only its name, to rename or remove).
/// (None once placed.)
enum Waiting {
    Written(Option<AsideFile>),
    Linked(Option<PathBuf>),
}

impl Waiting {
    /// Rename it to `target` (the file was synced when written; a link
    /// is to a synced file); on failure it is removed.
    fn place(&mut self, target: &Path) -> io::Result<()> {
        match self {
            Waiting::Written(f) => f.take().expect("placed once").place(target),
            Waiting::Linked(temp) => {
                let from = temp.take().expect("placed once");
                fs::rename(&from, target).inspect_err(|_| {
                    let _ = fs::remove_file(&from);
                })
            }
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Waiting::Linked(Some(temp)) = self {
            let _ = fs::remove_file(temp);
        }
    }
}

impl MaildirAdder {
    pub fn new(dir: &Path) -> io::Result<MaildirAdder> {
        super::super::create_maildir(dir)?;
        Ok(MaildirAdder {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// A new message from its bytes (any line ends: stored with LF, as
    /// deliveries are), with flags and an internal date.
    pub fn add_bytes(
        &mut self,
        data: &[u8],
        flags: Flags,
        other: &str,
        date: Option<i64>,
    ) -> io::Result<()> {
        let base0 = super::super::unique_name();
        let mut f = AsideFile::create(self.dir.join("tmp").join(&base0), 0o600)?;
        let mut lf = Vec::with_capacity(data.len());
        let mut w = WireSize::new();
        let mut conv = crate::wire::CrlfToLf::new();
        conv.feed(data, &mut lf);
        conv.finish(&mut lf);
        w.feed(&lf);
        f.write_all(&lf)?;
        if let Some(d) = date {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(d.max(0) as u64);
            let _ = f.file().set_modified(t);
        }
        f.file().sync_all()?;
        let base = format!("{base0},S={},W={}", lf.len(), w.total());
        self.hold(Waiting::Written(Some(f)), base, flags, other);
        Ok(())
    }

    /// A copy of another folder's message: a hard link under a new name
    /// when the file system allows, else the bytes copied.
    pub fn add_copy(&mut self, from: &Path, flags: Flags, other: &str) -> io::Result<()> {
        let from_name = from
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = FileName::parse(&from_name);
        let sizes: String = old
            .base
            .split(',')
            .skip(1)
            .filter(|f| f.starts_with("S=") || f.starts_with("W="))
            .map(|f| format!(",{f}"))
            .collect();
        let base = format!("{}{sizes}", super::super::unique_name());
        let temp = self.dir.join("tmp").join(&base);
        let file = match fs::hard_link(from, &temp) {
            Ok(()) => Waiting::Linked(Some(temp)),
            Err(_) => {
                let mut src = crate::mail::open_regular(fs::OpenOptions::new().read(true), from)?;
                let mtime = src.metadata()?.modified().ok();
                let mut f = AsideFile::create(temp, 0o600)?;
                io::copy(&mut src, &mut f)?;
                if let Some(t) = mtime {
                    let _ = f.file().set_modified(t);
                }
                f.file().sync_all()?;
                Waiting::Written(Some(f))
            }
        };
        self.hold(file, base, flags, other);
        Ok(())
    }

    fn hold(&mut self, file: Waiting, base: String, flags: Flags, other: &str) {
        // A message without flags is new mail (new/); one with flags has
        // been seen by a mail program (cur/).
        let (name, in_new) = if flags.is_empty() && other.is_empty() {
            (base.clone(), true)
        } else {
            (cur_name(&base, flags, other), false)
        };
        self.pending.push(Pending {
            file,
            base,
            name,
            in_new,
        });
    }

    /// Put the messages in place, sync the directories and give the UIDs,
    /// as one batch of the folder's log. Returns (UIDVALIDITY, UIDs).
    pub fn finish(self) -> io::Result<(u32, Vec<u32>)> {
        let mut folder = Folder::blank(&self.dir, true);
        let batch = folder.modlog.begin(&self.dir)?;
        let (mut new_touched, mut cur_touched) = (false, false);
        let mut placed = Vec::with_capacity(self.pending.len());
        for mut p in self.pending {
            let sub = if p.in_new { "new" } else { "cur" };
            p.file.place(&self.dir.join(sub).join(&p.name))?;
            new_touched |= p.in_new;
            cur_touched |= !p.in_new;
            placed.push((p.base, p.name, p.in_new));
        }
        if new_touched {
            crate::fs::sync_dir(&self.dir.join("new"))?;
        }
        if cur_touched {
            crate::fs::sync_dir(&self.dir.join("cur"))?;
        }
        let bases: Vec<String> = placed.iter().map(|p| p.0.clone()).collect();
        let uids = folder.uids_for(&bases, None)?.0;
        let list: Vec<u32> = bases
            .iter()
            .map(|b| uids.get(b).copied().unwrap_or(0))
            .collect();
        let mut logged: Vec<(u32, &str, bool)> = list
            .iter()
            .zip(&placed)
            .map(|(&u, p)| (u, p.1.as_str(), p.2))
            .collect();
        // In UID order: readers show them as they come.
        logged.sort_by_key(|l| l.0);
        let changes: Vec<Change> = logged
            .iter()
            .map(|&(u, name, in_new)| Change::Added(u, in_new, name))
            .collect();
        folder.modlog.commit(batch, &self.dir, &changes)?;
        Ok((folder.uidvalidity, list))
    }
}

/// Adding to an mbox folder: the messages are held, then written at once
/// under the mbox's locks with UIDs after the last given (the file's
/// messages without a UID get theirs first, so that UIDs rise through
/// the file).
pub struct MboxAdder {
    path: PathBuf,
    index: PathBuf,
    keywords: Keywords,
    added: Vec<cclient::NewMessage>,
}

impl MboxAdder {
    pub fn new(path: &Path, index: &Path) -> io::Result<MboxAdder> {
        crate::fs::create_private_dir_all(index)?;
        let keywords = fs::read(index.join(KEYWORDS))
            .map(|b| Keywords::parse(&b))
            .unwrap_or_default();
        Ok(MboxAdder {
            path: path.to_path_buf(),
            index: index.to_path_buf(),
            keywords,
            added: Vec::new(),
        })
    }

    pub fn add_bytes(&mut self, data: &[u8], flags: Flags, date: Option<i64>) -> io::Result<()> {
        let mut system = flags;
        system.keywords = 0;
        let state = cclient::State {
            uid: None,
            system,
            old: false,
            keywords: self
                .keywords
                .iter()
                .filter(|(i, _)| flags.has_keyword(*i))
                .map(|(_, k)| k.to_string())
                .collect(),
        };
        let date = date.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        self.added.push(cclient::NewMessage::new(data, date, state));
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<(u32, Vec<u32>)> {
        let locked = cclient::lock(&self.path, true)?.expect("created");
        let mut scanned = cclient::scan(&locked.file)?;
        let (mut base, given) = cclient::resolve_uids(&mut scanned, &self.index)?;
        let mut uids = Vec::with_capacity(self.added.len());
        for m in &mut self.added {
            if base.uidlast >= super::super::uidlist::UID_MAX {
                return Err(io::Error::other("UIDs exhausted: rebuild the folder"));
            }
            base.uidlast += 1;
            m.state.uid = Some(base.uidlast);
            uids.push(base.uidlast);
        }
        // The index first: a crash before the file is written leaves a gap
        // in the UIDs, never a UID given twice.
        cclient::write_index(&self.index, &base)?;
        if given {
            let pairs: Vec<(&cclient::Entry, &cclient::State)> =
                scanned.entries.iter().map(|e| (e, &e.state)).collect();
            locked.rewrite(&self.path, &pairs, &self.added, &base)?;
        } else {
            locked.append(&self.added, &base)?;
        }
        Ok((base.validity, uids))
    }
}
