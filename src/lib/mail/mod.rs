#![forbid(unsafe_code)]
//! Mailboxes shared by smtpd, pop3d and imapd: Maildir and mbox.
//!
//! Writing side: [`deliver`] (smtpd, after switching to the recipient).
//! Reading side: [`Maildrop`], an exclusively opened mailbox with a fixed list
//! of messages (size in wire octets, stable unique id), message bodies as
//! byte streams, and a [`Maildrop::commit`] that deletes and marks seen.
//!
//! Sizes are "wire" sizes: the octets of the message with every line ended
//! by CRLF (see [`crate::wire::WireSize`]), which is what POP3 LIST/STAT and
//! IMAP RFC822.SIZE report, before any dot-stuffing.

mod location;
mod lock;
mod maildir;
mod mbox;
mod mboxrd;
pub mod store;

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

pub use location::{mailbox_for, Format, Location};
pub use maildir::fuzz_name as fuzz_maildir_name;
pub use mbox::fuzz_parse as fuzz_mbox;
pub use store::cclient::fuzz_cclient;

/// Where an account's mail lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mailbox {
    /// A Maildir directory (with tmp/, new/, cur/).
    Maildir(PathBuf),
    /// An mbox file.
    Mbox(PathBuf),
}

impl Mailbox {
    pub fn path(&self) -> &Path {
        match self {
            Mailbox::Maildir(p) | Mailbox::Mbox(p) => p,
        }
    }
}

/// Deliver one message to the mailbox. `message` has LF line endings and no
/// From_ line; deliver prepends `Return-Path: <return_path>\n`. Durable on
/// return (fsync the file and, for Maildir, the new/ directory). Creates the
/// Maildir (tmp, new, cur, mode 0700) or the mbox file (mode 0600) when
/// missing. Runs with the caller's privileges: smtpd switches to the
/// recipient before calling it.
/// Open a mail file that must be a regular file: not a symbolic link, and
/// never blocking on what is not a file (opening a FIFO for reading waits
/// for a writer for ever, and a session stuck there holds the maildrop's
/// lock against every later login). O_NONBLOCK changes nothing for the
/// reads and writes of a regular file.
pub(crate) fn open_regular(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> io::Result<std::fs::File> {
    open_regular_meta(options, path).map(|(f, _)| f)
}

/// `open_regular`, with the file's metadata (read to check it anyway: a
/// caller that wants the size or the time asks no second time).
pub(crate) fn open_regular_meta(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok((f, meta))
}

/// A header block's fields, each with its continuation lines, every byte
/// in one of them (a blank line ending the block is one too).
pub fn header_fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| i + p + 1);
        let line = &header[i..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && i > start {
            out.push(&header[start..i]);
            start = i;
        }
        i = end;
    }
    if start < header.len() {
        out.push(&header[start..]);
    }
    out
}

pub fn deliver(mailbox: &Mailbox, return_path: &str, message: &mut dyn Read) -> io::Result<()> {
    // A return path is one line; anything else would forge headers.
    let return_path: String = return_path
        .chars()
        .filter(|c| !c.is_control() && *c != '<' && *c != '>')
        .collect();
    match mailbox {
        Mailbox::Maildir(dir) => maildir::deliver(dir, &return_path, message),
        Mailbox::Mbox(file) => mbox::deliver(file, &return_path, message),
    }
}

/// One message of an opened maildrop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// Unique and stable for the life of the message (POP3 UIDL): printable
    /// ASCII 0x21..0x7E, at most 70 characters.
    pub uid: String,
    /// Octets of the message with CRLF line endings.
    pub size: u64,
}

/// Why a maildrop could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another session holds the maildrop.
    InUse,
    Io(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::InUse => write!(f, "maildrop in use"),
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> OpenError {
        OpenError::Io(e)
    }
}

enum Drop_ {
    Maildir(Box<maildir::Maildrop>),
    Mbox(mbox::Maildrop),
}

/// A mailbox opened for one session: exclusive against other sessions
/// (pop3d, imapd) until dropped, with the message list fixed at open time.
/// Deliveries may go on meanwhile; they show up in the next session.
pub struct Maildrop {
    inner: Drop_,
}

/// Counts of what [`Maildrop::commit`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub deleted: usize,
}

impl Maildrop {
    /// Open and scan. `OpenError::InUse` when another session has it.
    pub fn open(mailbox: &Mailbox) -> Result<Maildrop, OpenError> {
        let inner = match mailbox {
            Mailbox::Maildir(d) => Drop_::Maildir(Box::new(maildir::Maildrop::open(d)?)),
            Mailbox::Mbox(f) => Drop_::Mbox(mbox::Maildrop::open(f)?),
        };
        Ok(Maildrop { inner })
    }

    pub fn messages(&self) -> &[MessageInfo] {
        match &self.inner {
            Drop_::Maildir(m) => m.messages(),
            Drop_::Mbox(m) => m.messages(),
        }
    }

    /// The message as stored for the user (LF or CRLF endings, no From_
    /// line, mbox quoting undone): feed it to [`crate::wire::WireWriter`].
    pub fn open_message(&mut self, index: usize) -> io::Result<Box<dyn BufRead + '_>> {
        if index >= self.messages().len() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such message"));
        }
        match &mut self.inner {
            Drop_::Maildir(m) => m.open_message(index),
            Drop_::Mbox(m) => m.open_message(index),
        }
    }

    /// End the session's changes: remove the messages flagged in `deleted`,
    /// mark those flagged in `seen` as read (Maildir: from new/ to cur/ with
    /// `:2,S`, or `S` added to the flags in cur/; others stay where they
    /// are; mbox: nothing, mbox has no flags here). Both slices are indexed like `messages()`. Durable on
    /// return; on error nothing is half done (mbox) or each message is either
    /// deleted or intact (Maildir).
    pub fn commit(self, deleted: &[bool], seen: &[bool]) -> io::Result<CommitReport> {
        match self.inner {
            Drop_::Maildir(m) => m.commit(deleted, seen),
            Drop_::Mbox(m) => m.commit(deleted, seen),
        }
    }
}

/// A UID made safe for POP3 UIDL (0x21..0x7E, at most 70 octets): kept as is
/// when it already is, else replaced by a hash of itself.
pub(crate) fn safe_uid(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= 70 && raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        raw.to_string()
    } else {
        format!("h{:016x}", fnv1a(raw.as_bytes(), FNV_OFFSET))
    }
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: stable across builds (unlike std's hasher).
pub(crate) fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::io::Read;
    use std::path::PathBuf;

    /// Message `i` of an open maildrop, whole.
    pub fn read_all(d: &mut super::Maildrop, i: usize) -> Vec<u8> {
        let mut v = Vec::new();
        d.open_message(i).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    /// A fresh temporary directory, removed on drop.
    pub struct TempDir(pub PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "classicd-mail-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_screened() {
        assert_eq!(safe_uid("abc.123"), "abc.123");
        let h = safe_uid("a b");
        assert!(h.starts_with('h') && h.len() == 17);
        assert_eq!(safe_uid(&"x".repeat(71)).len(), 17);
    }
}
