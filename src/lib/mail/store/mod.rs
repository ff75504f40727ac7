//! The mail store as IMAP sees it (and pop3d and smtpd through the same
//! files): an account's folders as Maildir++ (INBOX is the Maildir itself,
//! folder `A.B` the directory `.A.B` inside it, as Dovecot and Courier lay
//! them out), each with UIDs and UIDVALIDITY in Dovecot's `dovecot-uidlist`,
//! keywords in `dovecot-keywords`, flags in file names, and modseqs in
//! `classicd-modseq`.
//!
//! Folder names arrive here as they are stored (IMAP's modified UTF-7; the
//! protocol converts UTF-8 names first) and are checked before any path is
//! made of them: components separated by `.`, none empty (so no `..`, no
//! leading `.`), no `/`, no control characters; and a folder directory
//! must be a real directory inside the Maildir, never a symbolic link.

pub mod cclient;
pub mod flags;
pub mod folder;
pub mod headers;
pub mod modlog;
pub mod uidlist;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use flags::{Flag, Flags, Keywords};
pub use folder::Adder;
pub use folder::{Changes, FlagChange, Folder, Message};

/// The hierarchy separator (Maildir++).
pub const SEPARATOR: char = '.';

/// Subscriptions, one name per line (Dovecot reads this form).
const SUBSCRIPTIONS: &str = "subscriptions";

pub(crate) fn create_maildir(dir: &Path) -> io::Result<()> {
    super::maildir::create(dir)
}

/// Make the account's Maildir (INBOX) when it is missing.
pub fn create_inbox(root: &Path) -> io::Result<()> {
    create_maildir(root)
}

pub(crate) fn unique_name() -> String {
    super::maildir::unique_name()
}

#[derive(Debug)]
pub enum StoreError {
    /// The name cannot be a folder (the reason).
    Invalid(&'static str),
    NotFound,
    Exists,
    /// The operation is not allowed on this folder (INBOX).
    Refused(&'static str),
    Io(io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Invalid(why) => write!(f, "invalid folder name: {why}"),
            StoreError::NotFound => write!(f, "no such folder"),
            StoreError::Exists => write!(f, "folder already exists"),
            StoreError::Refused(why) => write!(f, "{why}"),
            StoreError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError::Io(e)
    }
}

/// Whether `name` is INBOX (any case).
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// A name in its stored form, INBOX spelled in capitals (also as the first
/// component of its children).
pub fn normalize(name: &str) -> String {
    match name.split_once(SEPARATOR) {
        Some((first, rest)) if is_inbox(first) => format!("INBOX{SEPARATOR}{rest}"),
        _ if is_inbox(name) => "INBOX".into(),
        _ => name.to_string(),
    }
}

/// Check a folder name (stored form).
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid("empty"));
    }
    if name.len() > 255 {
        return Err(StoreError::Invalid("too long"));
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(StoreError::Invalid("control characters"));
    }
    if name.contains('/') {
        return Err(StoreError::Invalid("'/' is not allowed"));
    }
    if name.contains('*') || name.contains('%') {
        return Err(StoreError::Invalid("wildcards are not allowed"));
    }
    if name.split(SEPARATOR).any(|c| c.is_empty()) {
        return Err(StoreError::Invalid(
            "empty hierarchy level ('..' or a leading or trailing '.')",
        ));
    }
    Ok(())
}

/// An account's folders.
#[derive(Clone, Debug)]
pub struct Tree {
    /// The Maildir (INBOX), or for mbox the directory of the other folders.
    root: PathBuf,
    /// mbox: INBOX's file (`mail_location`). Folder `A.B` is then the file
    /// `A.B` in `root`, and every folder has an index directory
    /// `root/.imap/NAME` (as Dovecot keeps its mbox indexes).
    inbox: Option<PathBuf>,
}

/// mbox: the subscriptions file in the folder directory (Dovecot's name).
const MBOX_SUBSCRIPTIONS: &str = ".subscriptions";

fn is_real_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir())
}

impl Tree {
    /// The tree whose INBOX is the Maildir `root`.
    pub fn new(root: &Path) -> Tree {
        Tree {
            root: root.to_path_buf(),
            inbox: None,
        }
    }

    /// mbox folders: INBOX the file `inbox`, the others files in `dir`.
    pub fn new_mbox(inbox: &Path, dir: &Path) -> Tree {
        Tree {
            root: dir.to_path_buf(),
            inbox: Some(inbox.to_path_buf()),
        }
    }

    /// The mbox file of a folder (mbox trees only; not checked for
    /// existence).
    fn mbox_file(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name(name)?;
        let name = normalize(name);
        match &self.inbox {
            Some(inbox) if name == "INBOX" => Ok(inbox.clone()),
            _ => Ok(self.root.join(name)),
        }
    }

    /// An adder for the folder `name`.
    pub fn adder(&self, name: &str) -> Result<Adder, StoreError> {
        let dir = self.dir(name)?;
        Ok(match &self.inbox {
            Some(_) => Adder::mbox(&self.mbox_file(name)?, &dir)?,
            None => Adder::new(&dir)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make what a session needs before its first command: the Maildir
    /// (INBOX), or the mbox folder directory.
    pub fn prepare(&self) -> io::Result<()> {
        match self.inbox {
            Some(_) => crate::fs::create_private_dir_all(&self.root),
            None => create_inbox(&self.root),
        }
    }

    /// The directory of a folder (not checked for existence).
    /// For an mbox tree, the folder's index directory (made when the
    /// folder exists).
    pub fn dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name(name)?;
        let name = normalize(name);
        if self.inbox.is_some() {
            let index = self.root.join(".imap").join(&name);
            if self.exists(&name) {
                crate::fs::create_private_dir_all(&index)?;
            }
            return Ok(index);
        }
        if name == "INBOX" {
            return Ok(self.root.clone());
        }
        Ok(self.root.join(format!("{SEPARATOR}{name}")))
    }

    /// Whether the folder exists (INBOX always does: it is made when
    /// missing). A symbolic link is no folder.
    pub fn exists(&self, name: &str) -> bool {
        if self.inbox.is_some() {
            return is_inbox(name)
                || self
                    .mbox_file(name)
                    .is_ok_and(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()));
        }
        match self.dir(name) {
            Ok(d) => is_real_dir(&d) || (is_inbox(name) && !d.exists()),
            Err(_) => false,
        }
    }

    /// Open a folder for a session; a missing, invalid or linked one is
    /// NotFound.
    pub fn open(&self, name: &str, read_only: bool) -> Result<Folder, StoreError> {
        let dir = self.dir(name)?;
        if !self.exists(name) {
            return Err(StoreError::NotFound);
        }
        if self.inbox.is_some() {
            return Ok(Folder::open_mbox(&self.mbox_file(name)?, &dir, read_only)?);
        }
        Ok(Folder::open(&dir, read_only)?)
    }

    /// Every folder's stored name, INBOX first, then sorted.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut names = vec!["INBOX".to_string()];
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let Ok(file) = e.file_name().into_string() else {
                continue;
            };
            if self.inbox.is_some() {
                // Files only (a link could lead out of the store), and
                // not a writer's dot-lock.
                if e.file_type().is_ok_and(|t| t.is_file())
                    && !file.starts_with(SEPARATOR)
                    && !file.ends_with(".lock")
                    && check_name(&file).is_ok()
                    && !is_inbox(&file)
                {
                    names.push(file);
                }
                continue;
            }
            let Some(name) = file.strip_prefix(SEPARATOR) else {
                continue;
            };
            // Directories only, links never (one could lead out of the store).
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if check_name(name).is_err() || is_inbox(name) {
                continue;
            }
            names.push(name.to_string());
        }
        names[1..].sort();
        Ok(names)
    }

    pub fn create(&self, name: &str) -> Result<(), StoreError> {
        if self.inbox.is_some() {
            return self.create_mbox(name);
        }
        let dir = self.dir(name)?;
        if is_inbox(name) || fs::symlink_metadata(&dir).is_ok() {
            return Err(StoreError::Exists);
        }
        if !self.root.exists() {
            create_maildir(&self.root)?;
        }
        create_maildir(&dir)?;
        // Maildir++: a folder says so (Courier and Dovecot deliver by it).
        crate::fs::durable::write_file(&dir.join("maildirfolder"), 0o600, b"")?;
        crate::fs::sync_dir(&self.root)?;
        Ok(())
    }

    /// Remove a folder and its messages; its children stay.
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        if is_inbox(name) {
            return Err(StoreError::Refused("INBOX cannot be deleted"));
        }
        if self.inbox.is_some() {
            return self.delete_mbox(name);
        }
        let dir = self.dir(name)?;
        if !is_real_dir(&dir) {
            return Err(StoreError::NotFound);
        }
        // Out of sight at once (a rename), then removed.
        let trash = self.root.join(format!(
            "{SEPARATOR}{SEPARATOR}deleted.{}.{}",
            std::process::id(),
            unique_name()
        ));
        fs::rename(&dir, &trash)?;
        crate::fs::sync_dir(&self.root)?;
        fs::remove_dir_all(&trash)?;
        Ok(())
    }

    /// Rename a folder and its children. INBOX's messages move to the new
    /// folder and INBOX stays, empty (RFC 3501).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        if self.inbox.is_some() {
            return self.rename_mbox(from, to);
        }
        let to_dir = self.dir(to)?;
        let from_dir = self.dir(from)?;
        if is_inbox(to) || fs::symlink_metadata(&to_dir).is_ok() {
            return Err(StoreError::Exists);
        }
        if !self.exists(from) {
            return Err(StoreError::NotFound);
        }
        if is_inbox(from) {
            return self.rename_inbox(&to_dir);
        }
        let (from, to) = (normalize(from), normalize(to));
        let children = self.children_to_move(&from, &to)?;
        fs::rename(&from_dir, &to_dir)?;
        for c in children {
            let new = format!("{to}{}", &c[from.len()..]);
            fs::rename(self.dir(&c)?, self.dir(&new)?)?;
        }
        crate::fs::sync_dir(&self.root)?;
        self.rename_subscriptions(&from, &to)
    }

    /// The children of `from` (stored names), which a rename to `to` takes
    /// along; refused when `to` is inside `from`.
    fn children_to_move(&self, from: &str, to: &str) -> Result<Vec<String>, StoreError> {
        if to.starts_with(&format!("{from}{SEPARATOR}")) {
            return Err(StoreError::Refused("cannot move a folder into itself"));
        }
        Ok(self
            .list()?
            .into_iter()
            .filter(|n| n.starts_with(&format!("{from}{SEPARATOR}")))
            .collect())
    }

    /// Subscriptions to a renamed folder and its children follow it.
    fn rename_subscriptions(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let subs = self.subscriptions();
        if subs
            .iter()
            .any(|s| *s == from || s.starts_with(&format!("{from}{SEPARATOR}")))
        {
            let renamed: Vec<String> = subs
                .into_iter()
                .map(|s| {
                    if s == from || s.starts_with(&format!("{from}{SEPARATOR}")) {
                        format!("{to}{}", &s[from.len()..])
                    } else {
                        s
                    }
                })
                .collect();
            self.save_subscriptions(&renamed)?;
        }
        Ok(())
    }

    fn rename_inbox(&self, to_dir: &Path) -> Result<(), StoreError> {
        create_maildir(&self.root)?;
        create_maildir(to_dir)?;
        crate::fs::durable::write_file(&to_dir.join("maildirfolder"), 0o600, b"")?;
        for sub in ["new", "cur"] {
            for e in fs::read_dir(self.root.join(sub))? {
                let e = e?;
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                match fs::rename(e.path(), to_dir.join(sub).join(&name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            crate::fs::sync_dir(&to_dir.join(sub))?;
            crate::fs::sync_dir(&self.root.join(sub))?;
        }
        crate::fs::sync_dir(&self.root)?;
        Ok(())
    }

    fn subscriptions_file(&self) -> PathBuf {
        match self.inbox {
            Some(_) => self.root.join(MBOX_SUBSCRIPTIONS),
            None => self.root.join(SUBSCRIPTIONS),
        }
    }

    pub fn subscriptions(&self) -> Vec<String> {
        let text = fs::read_to_string(self.subscriptions_file()).unwrap_or_default();
        let mut lines = text.lines().peekable();
        // Dovecot 2.3's own form starts with a version line and a blank
        // one, and separates levels with tabs.
        let v2 = lines.peek().is_some_and(|l| l.starts_with("V\t"));
        lines
            .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
            .map(|l| {
                if v2 {
                    l.replace('\t', &SEPARATOR.to_string())
                } else {
                    l.to_string()
                }
            })
            .filter(|l| check_name(l).is_ok())
            .map(|l| normalize(&l))
            .collect()
    }

    fn save_subscriptions(&self, names: &[String]) -> io::Result<()> {
        let mut text = String::new();
        for n in names {
            text.push_str(n);
            text.push('\n');
        }
        if self.inbox.is_some() {
            crate::fs::create_private_dir_all(&self.root)?;
        } else if !self.root.exists() {
            create_maildir(&self.root)?;
        }
        crate::fs::durable::write_file(&self.subscriptions_file(), 0o600, text.as_bytes())
    }

    /// Subscribe to a name (which need not exist, RFC 3501) or not.
    pub fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError> {
        check_name(name)?;
        let name = normalize(name);
        let mut subs = self.subscriptions();
        let had = subs.contains(&name);
        match (on, had) {
            (true, false) => subs.push(name),
            (false, true) => subs.retain(|s| *s != name),
            _ => return Ok(()),
        }
        Ok(self.save_subscriptions(&subs)?)
    }
}

mod mboxtree;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::TempDir;

    #[test]
    fn names_are_checked() {
        for bad in [
            "", "..", "a..b", ".a", "a.", "a/b", "/etc", "../x", "a\nb", "a*", "%", "a\0",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["INBOX", "Sent", "a.b.c", "~x", "Entw&APw-rfe", "a b"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        assert_eq!(normalize("inbox.Foo"), "INBOX.Foo");
        assert_eq!(normalize("Inbox"), "INBOX");
        let t = Tree::new(Path::new("/m"));
        assert_eq!(t.dir("inbox").unwrap(), Path::new("/m"));
        assert_eq!(t.dir("a.b").unwrap(), Path::new("/m/.a.b"));
        assert!(t.dir("../../etc").is_err());
    }

    #[test]
    fn create_list_rename_delete() {
        let tmp = TempDir::new("tree");
        let root = tmp.0.join("Maildir");
        let t = Tree::new(&root);
        assert_eq!(t.list().unwrap(), vec!["INBOX"]);
        t.create("Work").unwrap();
        t.create("Work.Old").unwrap();
        t.create("Sent").unwrap();
        assert!(matches!(t.create("work.Old"), Ok(())));
        assert!(matches!(t.create("Sent"), Err(StoreError::Exists)));
        assert!(matches!(t.create("inbox"), Err(StoreError::Exists)));
        assert!(root.join(".Work/maildirfolder").exists());
        // A link out of the store is not a folder.
        std::os::unix::fs::symlink("/tmp", root.join(".Evil")).unwrap();
        assert!(!t.exists("Evil"));
        assert!(matches!(t.open("Evil", true), Err(StoreError::NotFound)));
        assert!(matches!(t.delete("Evil"), Err(StoreError::NotFound)));
        assert_eq!(
            t.list().unwrap(),
            vec!["INBOX", "Sent", "Work", "Work.Old", "work.Old"]
        );
        t.subscribe("Work", true).unwrap();
        t.subscribe("Work.Old", true).unwrap();
        t.subscribe("Gone", true).unwrap();
        t.rename("Work", "Job").unwrap();
        assert_eq!(
            t.list().unwrap(),
            vec!["INBOX", "Job", "Job.Old", "Sent", "work.Old"]
        );
        assert_eq!(t.subscriptions(), vec!["Job", "Job.Old", "Gone"]);
        assert!(matches!(
            t.rename("Job", "Job.Old.X"),
            Err(StoreError::Exists) | Err(StoreError::Refused(_))
        ));
        assert!(matches!(t.rename("Job", "Sent"), Err(StoreError::Exists)));
        t.delete("Job").unwrap();
        assert_eq!(
            t.list().unwrap(),
            vec!["INBOX", "Job.Old", "Sent", "work.Old"]
        );
        assert!(matches!(t.delete("INBOX"), Err(StoreError::Refused(_))));
        t.subscribe("Gone", false).unwrap();
        assert_eq!(t.subscriptions(), vec!["Job", "Job.Old"]);
    }

    #[test]
    fn rename_inbox_moves_its_messages() {
        let tmp = TempDir::new("tree-inbox");
        let root = tmp.0.join("Maildir");
        let mb = crate::mail::Mailbox::Maildir(root.clone());
        crate::mail::deliver(&mb, "a@b", &mut &b"S: 1\n\n"[..]).unwrap();
        let t = Tree::new(&root);
        t.rename("INBOX", "Old").unwrap();
        assert_eq!(t.open("INBOX", true).unwrap().messages.len(), 0);
        assert_eq!(t.open("Old", true).unwrap().messages.len(), 1);
    }
}
