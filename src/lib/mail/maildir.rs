//! Maildir (https://cr.yp.to/proto/maildir.html) with Dovecot's size fields.
//!
//! Delivery writes tmp/`<secs>.M<usec>P<pid>Q<n>.<host>`, fsyncs it and
//! renames it to new/`<name>,S=<bytes>,W=<wire bytes>`, then fsyncs new/:
//! new/ never holds a partial file. Readers take sizes from `W=` without
//! opening files. The UID of a message is its base name (before `,` and
//! `:`), which never changes when the message moves to cur/ or gets flags.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::SessionLock;
use super::{safe_uid, CommitReport, MessageInfo, OpenError};
use crate::fs::AsideFile;
use crate::wire::WireSize;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The session lock file, inside the maildir.
pub const LOCK_FILE: &str = ".pop3d.lock";

/// Create `dir` with tmp/, new/, cur/ (mode 0700) as needed.
pub fn create(dir: &Path) -> io::Result<()> {
    let mut b = DirBuilder::new();
    b.recursive(true).mode(0o700);
    for sub in ["tmp", "new", "cur"] {
        b.create(dir.join(sub))?;
    }
    Ok(())
}

/// The host part of a unique name, with the characters that Maildir
/// reserves escaped as Dovecot does.
fn host_part() -> String {
    crate::host::hostname()
        .replace('/', "\\057")
        .replace(':', "\\072")
        .replace(',', "\\054")
}

fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        host_part()
    )
}

pub fn deliver(dir: &Path, return_path: &str, message: &mut dyn Read) -> io::Result<()> {
    create(dir)?;
    let name = unique_name();
    // Written in tmp/, put in new/ (fsync, rename, fsync new/) under a
    // name that carries its sizes; on error the tmp/ file goes.
    let mut f = AsideFile::create(dir.join("tmp").join(&name), 0o600)?;
    let (bytes, wire) = write_message(&mut f, return_path, message)?;
    f.commit(&dir.join("new").join(format!("{name},S={bytes},W={wire}")))
}

/// Write the message, return its size on disk and on the wire.
fn write_message(
    f: &mut AsideFile,
    return_path: &str,
    message: &mut dyn Read,
) -> io::Result<(u64, u64)> {
    let mut size = WireSize::new();
    let mut bytes = 0u64;
    let head = format!("Return-Path: <{return_path}>\n");
    size.feed(head.as_bytes());
    bytes += head.len() as u64;
    let mut out = Vec::with_capacity(128 * 1024);
    out.extend_from_slice(head.as_bytes());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match message.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size.feed(&chunk[..n]);
        bytes += n as u64;
        out.extend_from_slice(&chunk[..n]);
        if out.len() >= 64 * 1024 {
            f.write_all(&out)?;
            out.clear();
        }
    }
    f.write_all(&out)?;
    Ok((bytes, size.total()))
}

/// The parts of a stored file name.
struct Entry {
    sub: &'static str,
    name: String,
    uid: String,
    size: Option<u64>,
    /// Sort key: delivery time from the name, then the name.
    secs: u64,
    usec: u64,
}

fn parse_name(sub: &'static str, name: String) -> Entry {
    let base = name.split(':').next().unwrap_or("");
    let mut fields = base.split(',');
    let uid = fields.next().unwrap_or("").to_string();
    let size = fields
        .filter_map(|f| f.strip_prefix("W="))
        .find_map(|v| v.parse().ok());
    let mut parts = uid.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let usec = parts
        .next()
        .and_then(|p| p.strip_prefix('M'))
        .and_then(|p| p.split('P').next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    Entry {
        sub,
        name,
        uid: safe_uid(&uid),
        size,
        secs,
        usec,
    }
}

pub struct Maildrop {
    dir: PathBuf,
    entries: Vec<Entry>,
    infos: Vec<MessageInfo>,
    _lock: SessionLock,
}

impl Maildrop {
    pub fn open(dir: &Path) -> Result<Maildrop, OpenError> {
        create(dir)?;
        let lockf = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(LOCK_FILE))?;
        let lock = SessionLock::try_take(lockf)?.ok_or(OpenError::InUse)?;
        clean_tmp(&dir.join("tmp"));
        let mut entries = Vec::new();
        for sub in ["new", "cur"] {
            for e in fs::read_dir(dir.join(sub))? {
                let e = e?;
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                // Only files are messages: a FIFO, a device, a socket or a
                // link placed in new/ or cur/ is passed over (and would not
                // be opened anyway: see open_regular).
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    log::warn!(
                        "{}/{sub}/{name}: not a regular file; skipped",
                        dir.display()
                    );
                    continue;
                }
                entries.push(parse_name(sub, name));
            }
        }
        entries.sort_by(|a, b| (a.secs, a.usec, &a.name).cmp(&(b.secs, b.usec, &b.name)));
        // One UID, one message (a copy left in new/ and cur/ by a crash
        // between link and unlink is the same message).
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| seen.insert(e.uid.clone()));
        let mut infos = Vec::with_capacity(entries.len());
        let mut kept = Vec::with_capacity(entries.len());
        for mut e in entries {
            let size = match e.size {
                Some(s) => s,
                None => match measure(&dir.join(e.sub).join(&e.name)) {
                    Ok(s) => s,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        // One unreadable entry (a directory, a file of
                        // another owner) must not hide the whole maildrop.
                        log::warn!("{}/{}/{}: skipped: {err}", dir.display(), e.sub, e.name);
                        continue;
                    }
                },
            };
            e.size = Some(size);
            infos.push(MessageInfo {
                uid: e.uid.clone(),
                size,
            });
            kept.push(e);
        }
        Ok(Maildrop {
            dir: dir.to_path_buf(),
            entries: kept,
            infos,
            _lock: lock,
        })
    }

    pub fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }

    fn path(&self, e: &Entry) -> PathBuf {
        self.dir.join(e.sub).join(&e.name)
    }

    /// Find a message that another program (a mail reader changing its
    /// flags) renamed since the session started. False if it is gone.
    fn relocate(&mut self, index: usize) -> io::Result<bool> {
        for sub in ["cur", "new"] {
            for d in fs::read_dir(self.dir.join(sub))? {
                let Ok(name) = d?.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let found = parse_name(sub, name);
                if found.uid == self.entries[index].uid {
                    let e = &mut self.entries[index];
                    e.sub = found.sub;
                    e.name = found.name;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    pub fn open_message(&mut self, index: usize) -> io::Result<Box<dyn BufRead + '_>> {
        let open = |p: &Path| super::open_regular(OpenOptions::new().read(true), p);
        let f = match open(&self.path(&self.entries[index])) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.relocate(index)? => {
                open(&self.path(&self.entries[index]))?
            }
            r => r?,
        };
        Ok(Box::new(BufReader::with_capacity(64 * 1024, f)))
    }

    pub fn commit(mut self, deleted: &[bool], seen: &[bool]) -> io::Result<CommitReport> {
        use nix::errno::Errno;
        use nix::unistd::{unlinkat, UnlinkatFlags};
        use std::os::fd::AsRawFd;
        let mut report = CommitReport::default();
        let mut first_err: Option<io::Error> = None;
        // Names relative to directory descriptors: no path walk per file.
        let new_dir = File::open(self.dir.join("new"))?;
        let cur_dir = File::open(self.dir.join("cur"))?;
        let fd = |sub: &str| {
            if sub == "new" {
                new_dir.as_raw_fd()
            } else {
                cur_dir.as_raw_fd()
            }
        };
        let (mut touched_new, mut touched_cur) = (false, false);
        for i in 0..self.entries.len() {
            let del = deleted.get(i).copied().unwrap_or(false);
            if !del && !seen.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut relocated = false;
            loop {
                let e = &self.entries[i];
                let sub = e.sub;
                let r = if del {
                    unlinkat(Some(fd(e.sub)), e.name.as_str(), UnlinkatFlags::NoRemoveDir)
                } else {
                    match seen_name(e) {
                        Some(to) => nix::fcntl::renameat(
                            Some(fd(e.sub)),
                            e.name.as_str(),
                            Some(cur_dir.as_raw_fd()),
                            to.as_str(),
                        ),
                        None => Ok(()),
                    }
                };
                match r {
                    Ok(()) => {
                        touched_new |= sub == "new";
                        touched_cur |= sub == "cur" || !del;
                        report.deleted += del as usize;
                    }
                    // Renamed by a mail reader meanwhile: find it once.
                    Err(Errno::ENOENT) if !relocated && self.relocate(i).unwrap_or(false) => {
                        relocated = true;
                        continue;
                    }
                    Err(Errno::ENOENT) => {} // gone meanwhile
                    Err(err) => {
                        log::warn!("{}: {err}", self.path(&self.entries[i]).display());
                        first_err.get_or_insert(err.into());
                    }
                }
                break;
            }
        }
        if touched_new {
            new_dir.sync_all()?;
        }
        if touched_cur {
            cur_dir.sync_all()?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

/// Check the reading of a stored file name (`data`, as read_dir gives it)
/// and the name a seen message moves to: a UIDL-safe UID that the move
/// keeps, the size kept or recorded, and a second move that changes
/// nothing. Panics when one breaks. For cargo-fuzz
/// (`fuzz/fuzz_targets/maildir_name.rs`).
pub fn fuzz_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return; // never listed
    }
    for sub in ["new", "cur"] {
        let mut e = parse_name(sub, name.to_string());
        assert!(!e.uid.is_empty() && e.uid.len() <= 70, "{:?}", e.uid);
        assert!(
            e.uid.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{:?}",
            e.uid
        );
        // Open measures a file whose name has no usable size.
        e.size.get_or_insert(1234);
        let Some(to) = seen_name(&e) else {
            continue; // already so, or an info format left alone
        };
        assert!(!to.contains('/') && !to.starts_with('.'), "{to:?}");
        let moved = parse_name("cur", to.clone());
        assert_eq!(moved.uid, e.uid, "the UID changed: {name:?} -> {to:?}");
        assert!(moved.size.is_none() || moved.size == e.size, "{to:?}");
        let mut moved = moved;
        moved.size = e.size;
        assert_eq!(seen_name(&moved), None, "{name:?} -> {to:?} moves again");
    }
}

/// The cur/ name of a message the client has seen (retrieved), when it
/// must change: a message in new/ moves to cur/ with `:2,S` (seen); one in
/// cur/ gets `S` added to its flags. Messages never retrieved stay where
/// they are, new/ ones included: for a mail reader they are still new.
/// A name without `,W=` gets it (measured this session), so that the next
/// sessions need not read the file; the UID, before the first comma, stays.
fn seen_name(e: &Entry) -> Option<String> {
    let (base, info) = match e.name.split_once(':') {
        Some((b, i)) => (b, Some(i)),
        None => (e.name.as_str(), None),
    };
    let base = match e.size {
        Some(w) if !base.split(',').skip(1).any(|f| f.starts_with("W=")) => {
            format!("{base},W={w}")
        }
        _ => base.to_string(),
    };
    let mut flags: Vec<char> = match info {
        None => Vec::new(),
        Some(i) => match i.strip_prefix("2,") {
            Some(f) => f.chars().collect(),
            None => return None, // an info format we do not know: leave it
        },
    };
    if !flags.contains(&'S') {
        flags.push('S');
        flags.sort_unstable();
    }
    let name = format!("{base}:2,{}", flags.into_iter().collect::<String>());
    (e.sub != "cur" || name != e.name).then_some(name)
}

/// Files left in tmp/ by deliveries that died: the Maildir convention is to
/// remove those untouched for 36 hours.
fn clean_tmp(tmp: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(36 * 3600);
    let Ok(dir) = fs::read_dir(tmp) else { return };
    for e in dir.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn measure(path: &Path) -> io::Result<u64> {
    let mut f = super::open_regular(OpenOptions::new().read(true), path)?;
    let mut w = WireSize::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(w.total());
        }
        w.feed(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::{read_all, TempDir};
    use crate::mail::{deliver as deliver_any, Mailbox, Maildrop as Drop_};

    #[test]
    fn deliver_list_read_delete() {
        let t = TempDir::new("maildir");
        let mb = Mailbox::Maildir(t.0.join("Maildir"));
        deliver_any(&mb, "a@x", &mut &b"Subject: one\n\nbody\n"[..]).unwrap();
        deliver_any(&mb, "b@x", &mut &b"Subject: two\n\n.dot\n"[..]).unwrap();
        assert!(fs::read_dir(t.0.join("Maildir/tmp"))
            .unwrap()
            .next()
            .is_none());
        let mut d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 2);
        let one = read_all(&mut d, 0);
        assert_eq!(one, b"Return-Path: <a@x>\nSubject: one\n\nbody\n");
        assert_eq!(d.messages()[0].size, one.len() as u64 + 4);
        let uids: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
        assert_ne!(uids[0], uids[1]);
        // A second session is refused while this one lives.
        assert!(matches!(Drop_::open(&mb), Err(OpenError::InUse)));
        // A mail reader renames both (flags) during the session.
        for e in fs::read_dir(t.0.join("Maildir/new")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            fs::rename(
                e.path(),
                t.0.join("Maildir/cur").join(format!("{name}:2,F")),
            )
            .unwrap();
        }
        assert_eq!(read_all(&mut d, 0), one);
        d.commit(&[true, false], &[false, true]).unwrap();
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 1);
        assert_eq!(d.messages()[0].uid, uids[1]);
        let cur: Vec<String> = fs::read_dir(t.0.join("Maildir/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(cur.len(), 1);
        assert!(cur[0].ends_with(":2,FS"), "{cur:?}");
        assert!(cur[0].starts_with(&uids[1]));
    }

    #[test]
    fn stale_tmp_files_are_removed() {
        let t = TempDir::new("maildir-tmp");
        let dir = t.0.join("M");
        create(&dir).unwrap();
        let old = dir.join("tmp/old");
        let fresh = dir.join("tmp/fresh");
        fs::write(&fresh, b"x").unwrap();
        let f = File::create(&old).unwrap();
        f.set_modified(SystemTime::now() - std::time::Duration::from_secs(40 * 3600))
            .unwrap();
        drop(f);
        drop(Drop_::open(&Mailbox::Maildir(dir)).unwrap());
        assert!(!old.exists() && fresh.exists());
    }

    #[test]
    fn foreign_names_are_measured_and_uids_stable() {
        let t = TempDir::new("maildir-foreign");
        let dir = t.0.join("M");
        create(&dir).unwrap();
        fs::write(dir.join("new/123.abc.host"), b"A: b\r\n\r\nx\n").unwrap();
        fs::write(dir.join("cur/100.def.host:2,RS"), b"A: b\n\nend").unwrap();
        fs::create_dir(dir.join("new/200.junk.host")).unwrap();
        let mb = Mailbox::Maildir(dir.clone());
        let d = Drop_::open(&mb).unwrap();
        let m = d.messages().to_vec();
        assert_eq!(m[0].uid, "100.def.host");
        assert_eq!(m[0].size, 13);
        assert_eq!(m[1].uid, "123.abc.host");
        assert_eq!(m[1].size, 11);
        d.commit(&[false, false], &[false, false]).unwrap();
        assert!(dir.join("new/123.abc.host").exists());
        assert!(dir.join("cur/100.def.host:2,RS").exists());
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages(), &m[..]);
        d.commit(&[false, false], &[true, true]).unwrap();
        assert!(dir.join("cur/123.abc.host,W=11:2,S").exists());
        assert!(dir.join("cur/100.def.host,W=13:2,RS").exists());
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages(), &m[..]);
    }
}
