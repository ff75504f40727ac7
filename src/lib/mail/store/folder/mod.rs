//! One Maildir folder as IMAP sees it: messages with UIDs (from
//! dovecot-uidlist), flags (from file names), sizes, modseqs (from the
//! modseq log), kept in step with the directory by `sync`, which reports
//! what other sessions and programs did (deliveries, expunges, flag
//! changes) since the last call.
//!
//! Every change a client is told about is on disk first: renames and
//! unlinks are followed by an fsync of the directories they touched, the
//! uidlist is replaced durably, modseqs are fsynced.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::flags::{cur_name, FileName, Flags, Keywords};
use super::headers::HeaderCache;
use super::modlog::{stamp, Batch, Change, DirStamps, ModLog, Stamp};
use super::uidlist::UidList;
use crate::fs::AsideFile;
use crate::mail::lock::{DotLock, LOCK_WAIT};
use crate::wire::WireSize;

mod adder;
mod change;
mod follow;
mod mbox;
mod viewcache;
pub use adder::{Adder, MboxAdder};
pub use change::FlagChange;
pub use viewcache::fuzz_viewcache;

pub const UIDLIST: &str = "dovecot-uidlist";
pub const KEYWORDS: &str = "dovecot-keywords";
/// The highest UID given \Recent in some session.
pub const RECENT: &str = "classicd-recent";

/// One message of an open folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    /// The unique part of its file name (what the uidlist records).
    pub base: String,
    /// Its file name now, and whether it is in new/.
    pub name: String,
    pub in_new: bool,
    pub flags: Flags,
    /// Info letters we keep but do not map (`P`).
    pub other: String,
    /// \Recent for this session.
    pub recent: bool,
    pub modseq: u64,
    /// Octets with CRLF line ends, when known without reading the file.
    pub size: Option<u64>,
}

/// What a `sync` found changed since the last one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// UIDs gone, in ascending order.
    pub expunged: Vec<u32>,
    /// Messages added at the end.
    pub added: usize,
    /// UIDs whose flags changed.
    pub flags: Vec<u32>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.expunged.is_empty() && self.added == 0 && self.flags.is_empty()
    }
}

pub struct Folder {
    pub dir: PathBuf,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub messages: Vec<Message>,
    pub keywords: Keywords,
    pub modlog: ModLog,
    /// Messages removed from the view since the caller last took them
    /// (its client may still be told their last flags).
    pub gone: Vec<Message>,
    /// UIDs whose new flags were found when their file was looked for
    /// again (renamed by another session): news for the next sync.
    relocated: Vec<u32>,
    /// Bases of the view's messages that the last reading of the
    /// directories did not find (removed by another session): opening
    /// them fails at once instead of reading the directories again, so
    /// one command over many such messages reads them once, not once a
    /// message. Trusted within one command only: cleared by sync,
    /// set_flags, expunge and `forget_vanished`.
    vanished: HashSet<String>,
    /// How often the view's files were looked for again, and the
    /// directories read by a sync (tests).
    relocations: u32,
    readings: u32,
    /// Header blocks by UID, shared by the folder's sessions.
    header_cache: HeaderCache,
    read_only: bool,
    /// The stamps of new/ and cur/ the view is exact for (see follow.rs),
    /// whether they were taken by a reading of the directories made when
    /// they were already two seconds old, and since when they are not.
    view_at: Option<DirStamps>,
    verified: bool,
    unverified_since: Option<std::time::Instant>,
    /// The view came from classicd-view and no uidlist was read since
    /// (its UIDNEXT may be behind); the stamps it was last saved at.
    view_loaded: bool,
    saved_at: Option<DirStamps>,
    /// The stamp of dovecot-keywords when last read (None: not read yet;
    /// Some(None): there was none).
    keywords_stamp: Option<Option<Stamp>>,
    /// An mbox folder (c-client format): `dir` is then its index
    /// directory (modseqs, keyword indexes, the last UID given).
    mbox: Option<Box<mbox::Backing>>,
}

/// The uidlist's records: (UID, base).
type UidRecords = Vec<(u32, String)>;

/// What readdir found: base -> (in new/, full name).
type Listing = HashMap<String, (bool, String)>;

fn list_dirs(dir: &Path) -> io::Result<Listing> {
    let mut found = HashMap::new();
    // new/ before cur/: a message moved from one to the other between the
    // two reads is seen in one of them.
    for (sub, in_new) in [("new", true), ("cur", false)] {
        for e in fs::read_dir(dir.join(sub))? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            // Only files are messages: a FIFO, a device, a socket, a link
            // or a directory placed in new/ or cur/ is passed over (and
            // would not be opened anyway: see mail::open_regular).
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                log::warn!(
                    "{}/{sub}/{name}: not a regular file; skipped",
                    dir.display()
                );
                continue;
            }
            let base = FileName::parse(&name).base.to_string();
            // A copy left in both by a crash between link and unlink: the
            // cur/ one (with flags) wins.
            found.insert(base, (in_new, name));
        }
    }
    Ok(found)
}

/// Read the directories until a reading finds nothing the ones before it
/// missed (at most four), keeping everything any of them saw: readdir may
/// pass over a file renamed while it runs (a flag change), and a message
/// must never be taken for expunged, nor its UID record dropped, for that.
fn list_stable(dir: &Path, mut seen: Listing) -> io::Result<Listing> {
    for _ in 0..4 {
        let mut added = false;
        for (b, v) in list_dirs(dir)? {
            if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(b) {
                e.insert(v);
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    Ok(seen)
}

fn sort_key(base: &str) -> (u64, u64) {
    let mut parts = base.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let usec = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    (secs, usec)
}

/// A fresh UIDVALIDITY: the time, as Dovecot does.
pub fn new_uidvalidity() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() as u32).clamp(1, super::uidlist::UID_MAX)
}

/// A UIDVALIDITY for a new folder of the tree `dir` belongs to: the time,
/// but always above the last one given in that tree (a folder deleted and
/// made again within a second must not get the same one). Kept in the
/// tree's `dovecot-uidvalidity` (hex), as Dovecot does.
pub fn next_uidvalidity(dir: &Path) -> u32 {
    let root = if dir.join("maildirfolder").exists() {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    let file = root.join("dovecot-uidvalidity");
    let last = fs::read_to_string(&file)
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let v = new_uidvalidity()
        .max(last.saturating_add(1))
        .min(super::uidlist::UID_MAX);
    let _ = crate::fs::durable::write_file(&file, 0o600, format!("{v:08x}").as_bytes());
    v
}

/// 128 bits for a folder GUID: unique, not secret.
pub fn new_guid(dir: &Path) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!(
        "{}.{}.{}.{}.{}",
        now.as_nanos(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        dir.display(),
        crate::host::hostname()
    );
    let a = crate::mail::fnv1a(seed.as_bytes(), crate::mail::FNV_OFFSET);
    let b = crate::mail::fnv1a(seed.as_bytes(), a ^ 0x9e37_79b9_7f4a_7c15);
    format!("{a:016x}{b:016x}")
}

impl Folder {
    /// Open a folder directory (tmp/, new/, cur/ made when missing) and
    /// read it. `read_only` (EXAMINE): nothing is moved or written but the
    /// uidlist (UIDs must be given to be shown).
    pub fn open(dir: &Path, read_only: bool) -> io::Result<Folder> {
        Folder::open_with(dir, read_only, !read_only)
    }

    /// Open a folder to read and change, taking no \Recent and moving
    /// nothing from new/: pop3d's view of INBOX (a POP3 session is no mail
    /// reader in Maildir's or IMAP's sense until it retrieves a message).
    pub fn open_view(dir: &Path) -> io::Result<Folder> {
        Folder::open_with(dir, false, false)
    }

    fn open_with(dir: &Path, read_only: bool, take_recent: bool) -> io::Result<Folder> {
        super::create_maildir(dir)?;
        let mut f = Folder::blank(dir, read_only);
        f.sync(take_recent)?;
        Ok(f)
    }

    fn blank(dir: &Path, read_only: bool) -> Folder {
        Folder {
            dir: dir.to_path_buf(),
            uidvalidity: 0,
            uidnext: 1,
            messages: Vec::new(),
            keywords: Keywords::default(),
            modlog: ModLog::open(dir),
            gone: Vec::new(),
            relocated: Vec::new(),
            vanished: HashSet::new(),
            relocations: 0,
            readings: 0,
            header_cache: HeaderCache::default(),
            read_only,
            view_at: None,
            verified: false,
            unverified_since: None,
            view_loaded: false,
            saved_at: None,
            keywords_stamp: None,
            mbox: None,
        }
    }

    fn read_uidlist(&self) -> io::Result<Option<UidList>> {
        match fs::read(self.dir.join(UIDLIST)) {
            Ok(b) => match UidList::parse(&b) {
                Ok(l) => Ok(Some(l)),
                Err(e) => {
                    // Broken: start over with a new UIDVALIDITY, as Dovecot.
                    log::warn!("{}: {e}: UIDs renumbered", self.dir.display());
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_uidlist(&self, l: &UidList) -> io::Result<()> {
        let target = self.dir.join(UIDLIST);
        let mut f = AsideFile::beside(&target, 0o600)?;
        f.write_all(&l.render())?;
        f.commit(&target)
    }

    /// The UIDs of `bases` (the uidlist's, else new ones given under its
    /// lock, in delivery order), with the uidlist's validity and next UID.
    /// Also returns every record of the list (UID, base).
    fn uids_for(
        &mut self,
        bases: &[String],
        live: Option<&Listing>,
    ) -> io::Result<(HashMap<String, u32>, UidRecords)> {
        let mut list = self.read_uidlist()?;
        let mut known: HashMap<String, u32> = HashMap::new();
        let fill = |l: &UidList, known: &mut HashMap<String, u32>| {
            known.clear();
            for r in &l.records {
                known.insert(r.base.clone(), r.uid);
            }
        };
        if let Some(l) = &list {
            fill(l, &mut known);
        }
        let missing = |known: &HashMap<String, u32>| bases.iter().any(|b| !known.contains_key(b));
        if list.is_none() || missing(&known) {
            let _lock = DotLock::acquire_brief(&self.dir.join(UIDLIST), LOCK_WAIT)?;
            list = self.read_uidlist()?;
            let mut l = match list.take() {
                Some(l) if l.uidvalidity == self.uidvalidity || self.uidvalidity == 0 => l,
                Some(l) => l,
                None => UidList::new(next_uidvalidity(&self.dir), new_guid(&self.dir)),
            };
            fill(&l, &mut known);
            // Records of files gone are dropped, as Dovecot does, now and
            // then (a hundred at a time): gone means missing from readings
            // of the directories that agree, or (with no reading at hand)
            // removed by a session that logged it.
            let gone = |r: &super::uidlist::Record| match live {
                Some(live) => !live.contains_key(&r.base),
                None => self.modlog.was_removed(r.uid),
            };
            let stale = l.records.iter().filter(|r| gone(r)).count();
            if stale > 100 || stale * 4 > l.records.len() + 100 {
                match live {
                    Some(live) => {
                        let all = list_stable(&self.dir, live.clone())?;
                        l.records.retain(|r| all.contains_key(&r.base));
                    }
                    None => l.records.retain(|r| !self.modlog.was_removed(r.uid)),
                }
            }
            // In delivery order (the time and microseconds in the name),
            // each name's key parsed once, not at every comparison: a
            // fresh 10,000-message folder spent a sixth of its first
            // SELECT parsing names inside the sort. Names are unique, so
            // the order is total and an unstable sort gives the same.
            let mut fresh: Vec<((u64, u64), &String)> = bases
                .iter()
                .filter(|b| !known.contains_key(*b))
                .map(|b| (sort_key(b), b))
                .collect();
            fresh.sort_unstable();
            for (_, b) in fresh {
                match l.assign(b) {
                    Some(uid) => {
                        known.insert(b.clone(), uid);
                    }
                    None => {
                        return Err(io::Error::other("UIDs exhausted: rebuild the folder"));
                    }
                }
            }
            self.write_uidlist(&l)?;
            list = Some(l);
        }
        let l = list.expect("set above");
        self.uidvalidity = l.uidvalidity;
        self.uidnext = l.next_uid;
        let records = l.records.into_iter().map(|r| (r.uid, r.base)).collect();
        Ok((known, records))
    }

    fn load_keywords(&mut self) {
        let path = self.dir.join(KEYWORDS);
        let st = stamp(&path).ok();
        if self.keywords_stamp == Some(st) {
            return;
        }
        self.keywords_stamp = Some(st);
        self.keywords = fs::read(&path)
            .map(|b| Keywords::parse(&b))
            .unwrap_or_default();
    }

    /// The indexes of keywords, added to the folder's list when new.
    pub fn intern_keywords(&mut self, names: &[String]) -> io::Result<Vec<Option<usize>>> {
        let (k, idx) = intern_keywords(&self.dir, names)?;
        self.keywords = k;
        self.keywords_stamp = Some(stamp(&self.dir.join(KEYWORDS)).ok());
        Ok(idx)
    }

    /// Bring the view in step with the directory. `take_recent`: new
    /// arrivals are \Recent in this session (and in no later one).
    /// Messages stay where they are: in new/ until a flag is set (the
    /// rename that sets it puts them in cur/). Moving them all at the first
    /// SELECT, as some servers do, costs a rename per message and says
    /// nothing \Recent does not (classicd-recent keeps it).
    pub fn sync(&mut self, take_recent: bool) -> io::Result<Changes> {
        if self.mbox.is_some() {
            return self.sync_mbox(take_recent);
        }
        self.vanished.clear();
        self.load_keywords();
        let first = self.view_at.is_none() && self.messages.is_empty() && self.uidvalidity == 0;
        if first && self.load_view(take_recent)? {
            self.saved_at = self.view_at;
        }
        let now = self.modlog.snapshot(&self.dir)?;
        let log_at = self.modlog.position();
        let (events, lost) = self.modlog.take_events();
        let mut changes = self.take_relocated();
        // What other sessions did is in the log: follow it rather than
        // read every name again, when it explains the directories as they
        // are now (follow.rs).
        if !lost && self.follows(now, &events) {
            self.apply_events(&events, &mut changes, take_recent)?;
            self.view_at = Some(now);
            return Ok(changes);
        }
        self.read_dirs(now, log_at, changes, take_recent)
    }

    /// Read the directories and bring the view in step with them; `now`
    /// the stamps taken before the reading.
    fn read_dirs(
        &mut self,
        now: DirStamps,
        log_at: (u64, u64),
        mut changes: Changes,
        take_recent: bool,
    ) -> io::Result<Changes> {
        self.readings += 1;
        let mut live = list_dirs(&self.dir)?;
        self.vanished.clear();
        // A message that seems gone may have been renamed while we read:
        // read again before telling anyone it was expunged (an expunge in
        // a session's log is no proof: it logs the messages it found
        // vanished too).
        if self.messages.iter().any(|m| !live.contains_key(&m.base)) {
            live = list_stable(&self.dir, live)?;
        }
        let before = self.messages.len();
        let mut kept = Vec::with_capacity(before);
        for mut m in std::mem::take(&mut self.messages) {
            match live.get(&m.base) {
                None => {
                    changes.expunged.push(m.uid);
                    self.gone.push(m);
                }
                Some((in_new, name)) => {
                    if *name != m.name {
                        let (flags, other) = FileName::parse(name).flags();
                        if flags != m.flags {
                            changes.flags.push(m.uid);
                        }
                        m.flags = flags;
                        m.other = other;
                        m.name = name.clone();
                        m.in_new = *in_new;
                    }
                    kept.push(m);
                }
            }
        }
        self.messages = kept;
        let known: std::collections::HashSet<String> =
            self.messages.iter().map(|m| m.base.clone()).collect();
        let bases: Vec<String> = live
            .keys()
            .filter(|b| !known.contains(b.as_str()))
            .cloned()
            .collect();
        let had_uidvalidity = self.uidvalidity;
        // No file we have not numbered (another session's flag change or
        // expunge): the uidlist has nothing for us, and reading the whole
        // of it at every such change was most of a busy folder's cost.
        let (mut uids, records) = if bases.is_empty() && self.uidvalidity != 0 && !self.view_loaded
        {
            Default::default()
        } else {
            self.view_loaded = false;
            self.uids_for(&bases, Some(&live))?
        };
        // A message the uidlist knows, below the newest we are about to
        // show, but missing from our reading of the directories, may have
        // been passed over by readdir while it was being written: read
        // again, or its UID could never be shown in order.
        let last_known = self.messages.last().map_or(0, |m| m.uid);
        let newest = bases
            .iter()
            .filter_map(|b| uids.get(b))
            .max()
            .copied()
            .unwrap_or(0);
        // (Records of messages an imapd session expunged are no gap.)
        let expunged: HashSet<u32> = self.modlog.expunged.iter().map(|e| e.0).collect();
        let gap = |live: &Listing| {
            records.iter().any(|(u, b)| {
                *u > last_known && *u < newest && !live.contains_key(b) && !expunged.contains(u)
            })
        };
        let mut bases = bases;
        if gap(&live) {
            // A file renamed (flags) while readdir passes may be missed by
            // one reading; three in a row, never.
            live = list_stable(&self.dir, live)?;
            bases = live
                .keys()
                .filter(|b| !known.contains(b.as_str()))
                .cloned()
                .collect();
            uids = self.uids_for(&bases, Some(&live))?.0;
        }
        if had_uidvalidity != 0 && had_uidvalidity != self.uidvalidity {
            return Err(io::Error::other("UIDVALIDITY changed under the session"));
        }
        let last_uid = self.messages.last().map_or(0, |m| m.uid);
        let mut fresh: Vec<Message> = bases
            .into_iter()
            .filter_map(|base| {
                let uid = *uids.get(&base)?;
                let (in_new, name) = live.get(&base)?.clone();
                let parsed = FileName::parse(&name);
                let (flags, other) = parsed.flags();
                let size = parsed.sizes().0;
                Some(Message {
                    uid,
                    base,
                    name,
                    in_new,
                    flags,
                    other,
                    recent: false,
                    modseq: 1,
                    size,
                })
            })
            .collect();
        // UIDs are unique: no stability to pay for.
        fresh.sort_unstable_by_key(|m| m.uid);
        // A UID below one already shown (the race of two readers giving
        // UIDs at once) cannot be announced in order: it waits for the
        // next session.
        fresh.retain(|m| m.uid > last_uid);
        changes.added = fresh.len();
        let first_new = self.messages.len();
        self.messages.extend(fresh);
        if changes.added > 0 {
            self.mark_recent(first_new, take_recent && !self.read_only)?;
        }
        // A directory's mtime moves in clock ticks: a change made within
        // the tick of the stamps may not have moved them. Stamps taken
        // when two seconds old are past that (see follow.rs).
        self.view_at = Some(now);
        self.verified = follow::settled(&now);
        self.unverified_since = (!self.verified).then(std::time::Instant::now);
        self.modseq_changes(&mut changes);
        if self.verified && self.saved_at != Some(now) {
            self.save_view(now, log_at);
            self.saved_at = Some(now);
        }
        Ok(changes)
    }

    /// The flag changes found when files were looked for again, as news
    /// for the sync that takes them.
    fn take_relocated(&mut self) -> Changes {
        let mut relocated = std::mem::take(&mut self.relocated);
        relocated.sort_unstable();
        relocated.dedup();
        Changes {
            flags: relocated,
            ..Changes::default()
        }
    }

    /// What an mbox folder's sync starts with: the modseq log read on
    /// (true when it grew), and the flag changes found meanwhile.
    fn begin_sync(&mut self) -> (bool, Changes) {
        let log_moved = self.modlog.refresh().unwrap_or(true);
        // The log's news are for Maildir folders' views (follow.rs).
        let _ = self.modlog.take_events();
        (log_moved, self.take_relocated())
    }

    /// \Recent (RFC 3501 2.3.2): a message is recent in the first session
    /// to see it, and in no other. The highest UID already given out is
    /// kept in `classicd-recent` (under its flock); a read-write session
    /// takes the new ones above it, a read-only one shows them without
    /// taking them.
    fn mark_recent(&mut self, from: usize, take: bool) -> io::Result<()> {
        use nix::fcntl::{Flock, FlockArg};
        use std::io::Seek;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(RECENT);
        let file = match fs::OpenOptions::new()
            .read(true)
            .write(take)
            .create(take)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for m in &mut self.messages[from..] {
                    m.recent = true;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let kind = if take {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let mut lock = Flock::lock(file, kind).map_err(|(_, e)| io::Error::from(e))?;
        let mut text = String::new();
        lock.read_to_string(&mut text)?;
        let given: u32 = text.trim().parse().unwrap_or(0);
        let mut highest = given;
        for m in &mut self.messages[from..] {
            if m.uid > given {
                m.recent = true;
                highest = highest.max(m.uid);
            }
        }
        if take && highest > given {
            lock.set_len(0)?;
            lock.seek(io::SeekFrom::Start(0))?;
            lock.write_all(format!("{highest}\n").as_bytes())?;
            lock.sync_data()?;
        }
        Ok(())
    }

    /// Modseqs from the log; flag changes nobody logged yet (another mail
    /// program's) are logged now.
    fn modseq_changes(&mut self, changes: &mut Changes) {
        let mut unlogged: Vec<(usize, String)> = Vec::new();
        for (i, m) in self.messages.iter_mut().enumerate() {
            let letters = FileName::parse(&m.name).letters.unwrap_or("").to_string();
            let logged = self.modlog.letters(m.uid);
            match logged {
                Some(l) if l == letters => {}
                // Never logged and never flagged: as old as the folder.
                None if letters.is_empty() => {}
                _ => {
                    unlogged.push((i, letters));
                    continue;
                }
            }
            // A message's modseq never goes down (RFC 7162): the log may
            // have forgotten a message another session expunged while this
            // one still shows it.
            let seq = self.modlog.modseq(m.uid);
            if seq > m.modseq {
                if m.modseq != 0 && !changes.flags.contains(&m.uid) {
                    changes.flags.push(m.uid);
                }
                m.modseq = seq;
            }
        }
        if unlogged.is_empty() || self.read_only {
            return;
        }
        let list: Vec<Change> = unlogged
            .iter()
            .map(|(i, l)| Change::Flags(self.messages[*i].uid, l.as_str()))
            .collect();
        let dir = &self.dir;
        let in_mbox = self.mbox.is_some();
        let still = |c: &Change| match c {
            Change::Flags(uid, letters) => unlogged.iter().any(|(i, l)| {
                let m = &self.messages[*i];
                m.uid == *uid
                    && l == letters
                    && (in_mbox
                        || dir
                            .join(if m.in_new { "new" } else { "cur" })
                            .join(&m.name)
                            .exists())
            }),
            _ => true,
        };
        if let Ok(seqs) = self.modlog.log_observed(&list, &still) {
            for ((i, _), s) in unlogged.iter().zip(seqs) {
                // Not logged because its file is gone (expunged by another
                // session): the log answers 1, the message keeps its own.
                let m = &mut self.messages[*i];
                m.modseq = m.modseq.max(s);
            }
        }
    }

    pub fn highest_modseq(&self) -> u64 {
        self.modlog.highest
    }

    /// The message's file (Maildir; an mbox folder has one file, and its
    /// messages are read with `read_message`).
    pub fn path_of(&self, m: &Message) -> PathBuf {
        if let Some(b) = &self.mbox {
            return b.path.clone();
        }
        self.dir
            .join(if m.in_new { "new" } else { "cur" })
            .join(&m.name)
    }

    /// Open a message's file; one renamed by another program meanwhile is
    /// found again. One reading of the directories serves every message
    /// of the view (a FETCH of many messages whose flags other sessions
    /// changed reads them once, not once per message).
    pub fn open_message(&mut self, index: usize) -> io::Result<File> {
        self.open_message_meta(index).map(|(f, _)| f)
    }

    /// `open_message`, with the file's metadata: its size (a message file
    /// never changes) and time.
    pub fn open_message_meta(&mut self, index: usize) -> io::Result<(File, fs::Metadata)> {
        if self.mbox.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "an mbox message has no file of its own",
            ));
        }
        let open = |p: &Path| crate::mail::open_regular_meta(fs::OpenOptions::new().read(true), p);
        if self.vanished.contains(&self.messages[index].base) {
            return Err(io::ErrorKind::NotFound.into());
        }
        match open(&self.path_of(&self.messages[index])) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed by another session: its log says to what.
                if self.follow_log_name(index) {
                    match open(&self.path_of(&self.messages[index])) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        r => return r,
                    }
                }
                self.relocate()?;
                if self.vanished.contains(&self.messages[index].base) {
                    return Err(e);
                }
                open(&self.path_of(&self.messages[index]))
            }
            r => r,
        }
    }

    /// Start a command that opens many messages: what an earlier one found
    /// vanished is looked for again (once) if asked for.
    pub fn forget_vanished(&mut self) {
        self.vanished.clear();
    }

    /// Read the directories once and follow every message of the view:
    /// new names (flags another session changed) are taken, and the
    /// messages no longer there are remembered as vanished.
    fn relocate(&mut self) -> io::Result<()> {
        let mut live = list_dirs(&self.dir)?;
        // A file renamed while readdir passed may be missed by one reading:
        // read until they agree before calling anything vanished (a
        // message wrongly so would lose a STORE until the next sync).
        if self.messages.iter().any(|m| !live.contains_key(&m.base)) {
            live = list_stable(&self.dir, live)?;
        }
        self.relocations += 1;
        self.vanished.clear();
        for m in &mut self.messages {
            let Some((in_new, name)) = live.get(&m.base) else {
                self.vanished.insert(m.base.clone());
                continue;
            };
            if *name == m.name {
                continue;
            }
            m.in_new = *in_new;
            m.name = name.clone();
            let (flags, other) = FileName::parse(name).flags();
            if flags != m.flags {
                self.relocated.push(m.uid);
            }
            m.flags = flags;
            m.other = other;
        }
        Ok(())
    }

    /// The message's bytes as stored.
    pub fn read_message(&mut self, index: usize) -> io::Result<Vec<u8>> {
        if self.mbox.is_some() {
            return self.read_mbox_message(index, false);
        }
        let (f, meta) = self.open_message_meta(index)?;
        // Through `take` of the size the file had when opened, read_to_end
        // asks the file for no size of its own (a statx and an lseek a
        // message) and needs no read to find the end.
        let mut v = Vec::with_capacity(meta.len() as usize);
        f.take(meta.len()).read_to_end(&mut v)?;
        Ok(v)
    }

    /// The message's header (through the blank line), read from the start
    /// of its file only.
    /// Served from the folder's header cache when another session (or
    /// this one) read it before.
    pub fn read_header(&mut self, index: usize) -> io::Result<Vec<u8>> {
        if self.mbox.is_some() {
            return self.read_mbox_message(index, true);
        }
        if self.header_cache.validity() != self.uidvalidity {
            self.header_cache = HeaderCache::new(&self.dir, self.uidvalidity);
        }
        let uid = self.messages[index].uid;
        if let Some(h) = self.header_cache.get(uid) {
            return Ok(h);
        }
        let h = self.read_header_from_file(index)?;
        self.header_cache.put(uid, &h);
        Ok(h)
    }

    fn read_header_from_file(&mut self, index: usize) -> io::Result<Vec<u8>> {
        let mut f = self.open_message(index)?;
        let mut v = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let n = f.read(&mut chunk)?;
            if n == 0 {
                return Ok(v);
            }
            let from = v.len().saturating_sub(3);
            v.extend_from_slice(&chunk[..n]);
            if let Some(end) = header_end(&v[from..]) {
                v.truncate(from + end);
                return Ok(v);
            }
        }
    }

    /// The wire size (CRLF octets), measured and remembered when the file
    /// name does not say.
    pub fn size(&mut self, index: usize) -> io::Result<u64> {
        if let Some(s) = self.messages[index].size {
            return Ok(s);
        }
        let mut f = self.open_message(index)?;
        let mut w = WireSize::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.feed(&buf[..n]);
        }
        self.messages[index].size = Some(w.total());
        Ok(w.total())
    }

    /// INTERNALDATE: the file's modification time (seconds since 1970).
    pub fn internal_date(&mut self, index: usize) -> io::Result<i64> {
        if let Some(b) = &self.mbox {
            return b.date(self.messages[index].uid);
        }
        let (_, meta) = self.open_message_meta(index)?;
        Ok(meta.mtime())
    }

    pub fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }
}

/// Give keywords their indexes in the folder `dir`'s dovecot-keywords,
/// adding those it lacks, under the file's lock (two sessions adding
/// keywords at once must not give one index two names). Returns the list
/// as it is now, and the indexes (None for a keyword that no longer fits).
pub fn intern_keywords(dir: &Path, names: &[String]) -> io::Result<(Keywords, Vec<Option<usize>>)> {
    let path = dir.join(KEYWORDS);
    let read = || {
        fs::read(&path)
            .map(|b| Keywords::parse(&b))
            .unwrap_or_default()
    };
    let current = read();
    if names.iter().all(|n| current.find(n).is_some()) {
        let idx = names.iter().map(|n| current.find(n)).collect();
        return Ok((current, idx));
    }
    let _lock = DotLock::acquire_brief(&path, LOCK_WAIT)?;
    let mut k = read();
    let before = k.clone();
    let idx = names.iter().map(|n| k.intern(n)).collect();
    if k != before {
        crate::fs::durable::write_file(&path, 0o600, &k.render())?;
    }
    Ok((k, idx))
}

/// Where the header ends (just after the blank line), if it does in `b`.
pub fn header_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests;
