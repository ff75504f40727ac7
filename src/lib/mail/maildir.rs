//! Maildir (https://cr.yp.to/proto/maildir.html) with Dovecot's size fields.
//!
//! Delivery writes tmp/`<secs>.M<usec>P<pid>Q<n>.<host>`, fsyncs it and
//! renames it to new/`<name>,S=<bytes>,W=<wire bytes>`, then fsyncs new/:
//! new/ never holds a partial file. Readers take sizes from `W=` without
//! opening files.
//!
//! pop3d reads a Maildir through the store (`mail::store::Folder`), as
//! imapd does: the same messages, in the same UID order, from the same
//! dovecot-uidlist. Its UIDL is the unique part of the file name (before
//! `,` and `:`), which never changes when the message moves to cur/ or
//! gets flags.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::SessionLock;
use super::store::{Flag, FlagChange, Flags, Folder};
use super::{safe_uid, CommitReport, MessageInfo, OpenError};
use crate::fs::AsideFile;
use crate::wire::WireSize;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The session lock file, inside the maildir.
pub const LOCK_FILE: &str = ".pop3d.lock";

/// Create `dir` with tmp/, new/, cur/ (mode 0700) as needed.
pub(crate) fn create(dir: &Path) -> io::Result<()> {
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

pub(crate) fn unique_name() -> String {
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

/// The UIDL of a message: the unique part of its file name (before the
/// first `,`), which never changes while the message lives, made safe for
/// POP3.
fn uidl_of(base: &str) -> String {
    safe_uid(base.split(',').next().unwrap_or(base))
}

/// pop3d's view of a Maildir: the store's folder (UIDs from
/// dovecot-uidlist, in UID order, as imapd numbers them), held exclusively
/// against other POP3 sessions for RFC 1939's lock.
pub struct Maildrop {
    folder: Folder,
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
        // UIDs are given (as an IMAP session would) to messages the uidlist
        // does not know yet; \Recent is left to the IMAP sessions.
        let mut folder = Folder::open_view(dir)?;
        let mut infos = Vec::with_capacity(folder.messages.len());
        let mut i = 0;
        while i < folder.messages.len() {
            match folder.size(i) {
                Ok(size) => {
                    infos.push(MessageInfo {
                        uid: uidl_of(&folder.messages[i].base),
                        size,
                    });
                    i += 1;
                }
                Err(err) => {
                    // Gone meanwhile, or unreadable (a directory, a file of
                    // another owner): one entry must not hide the whole
                    // maildrop; it is left out of this session.
                    if err.kind() != io::ErrorKind::NotFound {
                        let m = &folder.messages[i];
                        log::warn!("{}/{}: skipped: {err}", dir.display(), m.name);
                    }
                    folder.messages.remove(i);
                }
            }
        }
        Ok(Maildrop {
            folder,
            infos,
            _lock: lock,
        })
    }

    pub fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }

    pub fn open_message(&mut self, index: usize) -> io::Result<Box<dyn BufRead + '_>> {
        // Read as far as the size it had when opened (a message file never
        // changes): no read to find the end, and no 64 KiB buffer for a
        // message of a few.
        let (f, meta) = self.folder.open_message_meta(index)?;
        let room = meta.len().clamp(1, 64 * 1024) as usize;
        Ok(Box::new(BufReader::with_capacity(room, f.take(meta.len()))))
    }

    /// Messages retrieved get \Seen (from new/ to cur/ with `:2,S`, or `S`
    /// added in cur/), then those deleted are expunged: through the store,
    /// so that IMAP sessions see both (modseqs logged, uidlist kept).
    /// Messages never retrieved stay where they are, new/ ones included.
    pub fn commit(mut self, deleted: &[bool], seen: &[bool]) -> io::Result<CommitReport> {
        let flag = |v: &[bool], i: usize| v.get(i).copied().unwrap_or(false);
        let n = self.folder.messages.len();
        let seen_now: Vec<(usize, FlagChange)> = (0..n)
            .filter(|&i| flag(seen, i) && !flag(deleted, i))
            .map(|i| (i, FlagChange::Add(Flags::default().with(Flag::Seen))))
            .collect();
        let gone: Vec<usize> = (0..n).filter(|&i| flag(deleted, i)).collect();
        if !seen_now.is_empty() {
            self.folder.set_flags(&seen_now)?;
        }
        let mut report = CommitReport::default();
        if !gone.is_empty() {
            report.deleted = self.folder.expunge_counted(&gone)?.1;
        }
        Ok(report)
    }
}

/// Check the reading of a stored file name (`data`, as read_dir gives it)
/// and the names its flag changes give (parse, write, parse again): a
/// UIDL-safe UID that every rename keeps, the base (the uidlist's key) and
/// the sizes kept, the flags read back as written, and a second rename to
/// the same flags that changes nothing. Panics when one breaks. For
/// cargo-fuzz (`fuzz/fuzz_targets/maildir_name.rs`).
pub fn fuzz_name(data: &[u8]) {
    use super::store::flags::{cur_name, FileName};
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return; // never listed
    }
    let parsed = FileName::parse(name);
    let uidl = uidl_of(parsed.base);
    assert!(!uidl.is_empty() && uidl.len() <= 70, "{uidl:?}");
    assert!(uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{uidl:?}");
    let (flags, other) = parsed.flags();
    for change in [
        FlagChange::Add(Flags::default().with(Flag::Seen)),
        FlagChange::Remove(flags),
        FlagChange::Set(flags),
    ] {
        let want = change.apply(flags);
        let to = cur_name(parsed.base, want, &other);
        assert!(!to.contains('/') && !to.starts_with('.'), "{to:?}");
        let again = FileName::parse(&to);
        assert_eq!(
            again.base, parsed.base,
            "the base changed: {name:?} -> {to:?}"
        );
        assert_eq!(uidl_of(again.base), uidl, "{name:?} -> {to:?}");
        assert_eq!(again.sizes(), parsed.sizes(), "{name:?} -> {to:?}");
        let (got, kept) = again.flags();
        assert_eq!(got, want, "{name:?} -> {to:?}");
        assert_eq!(cur_name(again.base, got, &kept), to, "{to:?} moves again");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::{read_all, TempDir};
    use crate::mail::{deliver as deliver_any, Mailbox, Maildrop as Drop_};
    use std::fs::File;

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
        // The base keeps its name (the uidlist's key): only the flags change.
        assert!(dir.join("cur/123.abc.host:2,S").exists());
        assert!(dir.join("cur/100.def.host:2,RS").exists());
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages(), &m[..]);
    }

    #[test]
    fn pop3_is_a_view_of_the_imap_store() {
        use crate::mail::store::Folder;
        let t = TempDir::new("maildir-view");
        let dir = t.0.join("M");
        let mb = Mailbox::Maildir(dir.clone());
        for s in ["one", "two", "three"] {
            deliver_any(&mb, "a@x", &mut format!("Subject: {s}\n\nx\n").as_bytes()).unwrap();
        }
        // An IMAP session numbers them first; POP3 sees the same order.
        let mut imap = Folder::open(&dir, false).unwrap();
        assert_eq!(imap.messages.len(), 3);
        let d = Drop_::open(&mb).unwrap();
        let uidls: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
        let bases: Vec<String> = imap
            .messages
            .iter()
            .map(|m| m.base.split(',').next().unwrap().to_string())
            .collect();
        assert_eq!(uidls, bases);
        // POP3 retrieves the first, deletes the second: the IMAP session
        // sees \Seen and the expunge, with modseqs.
        let before = imap.highest_modseq();
        d.commit(&[false, true, false], &[true, true, false])
            .unwrap();
        let uids: Vec<u32> = imap.messages.iter().map(|m| m.uid).collect();
        let changes = imap.sync(true).unwrap();
        assert_eq!(changes.expunged, vec![uids[1]]);
        assert_eq!(changes.flags, vec![uids[0]]);
        assert!(imap.messages[0].flags.has(crate::mail::store::Flag::Seen));
        assert!(imap.highest_modseq() > before);
        // A POP3 session takes no \Recent: a message delivered now is
        // recent for the next IMAP session.
        deliver_any(&mb, "a@x", &mut &b"Subject: four\n\nx\n"[..]).unwrap();
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 3);
        drop(d);
        assert!(dir.join("new").read_dir().unwrap().next().is_some());
        let other = Folder::open(&dir, false).unwrap();
        assert!(other.messages.last().unwrap().recent);
        assert_eq!(other.messages.len(), 3);
    }
}
