//! mbox files (mboxrd): `From sender asctime` separator lines, `>From `
//! quoting of body lines matching `^>*From `, a blank line after each
//! message. Locked with a dot-lock and an fcntl lock (see `lock`).
//!
//! Sessions: the message list is read under the locks at open, then the
//! locks are released and only the session's flock (exclusivity against
//! other pop3d/imapd sessions) is kept. Holding the delivery locks for a
//! whole POP3 session (up to idle_timeout, ten minutes) would stall smtpd;
//! instead, UPDATE takes the locks again, re-reads the file, and writes a new
//! file without the deleted messages, which are found by UID (a hash of the
//! content, independent of offsets). Mail delivered during the session is
//! therefore kept, and even a rewrite by a mail reader in the meantime
//! cannot make us delete the wrong message. The new file is written beside
//! the mbox, fsynced and renamed over it: a crash at any moment leaves either
//! the old or the new mbox, whole (at worst a stray temporary file).
//! Deliveries check after locking that the file they locked is still the
//! one at the path, so none is written to a replaced inode.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::lock::{fcntl_lock, fcntl_unlock, DotLock, SessionLock, LOCK_WAIT};
use super::mboxrd::FromQuoter;
use super::{fnv1a, CommitReport, MessageInfo, OpenError, FNV_OFFSET};
use crate::fs::AsideFile;
use crate::wire::WireSize;

const CHUNK: usize = 64 * 1024;

use crate::calendar::asctime;

pub(crate) fn open_locked_for_append(path: &Path) -> io::Result<File> {
    loop {
        let f = super::open_regular(
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600),
            path,
        )?;
        fcntl_lock(&f, true, LOCK_WAIT)?;
        let a = f.metadata()?;
        if !a.file_type().is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        // A session may have renamed a rewritten mbox over the one we opened.
        match fs::symlink_metadata(path) {
            Ok(b) if a.ino() == b.ino() && a.dev() == b.dev() => return Ok(f),
            _ => continue,
        }
    }
}

pub fn deliver(path: &Path, return_path: &str, message: &mut dyn Read) -> io::Result<()> {
    let _dot = DotLock::acquire(path, LOCK_WAIT)?;
    let f = open_locked_for_append(path)?;
    let old_len = f.metadata()?.len();
    let result = append(&f, old_len, return_path, message).and_then(|()| f.sync_all());
    if result.is_err() {
        // No torn message: back to the old end.
        let _ = f.set_len(old_len);
        let _ = f.sync_all();
    }
    fcntl_unlock(&f);
    result
}

fn append(mut f: &File, old_len: u64, return_path: &str, message: &mut dyn Read) -> io::Result<()> {
    let mut out = Vec::with_capacity(2 * CHUNK);
    // Keep the previous message separated by a blank line.
    if old_len > 0 {
        let mut tail = [0u8; 2];
        let n = if old_len >= 2 { 2 } else { 1 };
        f.read_exact_at(&mut tail[..n], old_len - n as u64)?;
        if tail[n - 1] != b'\n' {
            out.extend_from_slice(b"\n\n");
        } else if n == 2 && tail[0] != b'\n' {
            out.push(b'\n');
        }
    }
    let sender = if return_path.is_empty() {
        "MAILER-DAEMON"
    } else {
        return_path
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let sender: String = sender.chars().filter(|c| !c.is_whitespace()).collect();
    out.extend_from_slice(format!("From {sender} {}\n", asctime(now.as_secs())).as_bytes());
    out.extend_from_slice(format!("Return-Path: <{return_path}>\n").as_bytes());
    let mut q = FromQuoter::quoter();
    let mut chunk = vec![0u8; CHUNK];
    let mut last = b'\n';
    loop {
        let n = match message.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        last = chunk[n - 1];
        q.feed(&chunk[..n], &mut out);
        if out.len() >= CHUNK {
            f.write_all(&out)?;
            out.clear();
        }
    }
    q.finish(&mut out);
    if last != b'\n' {
        out.push(b'\n');
    }
    out.push(b'\n');
    f.write_all(&out)
}

/// One message in the file.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    /// Start of the From_ line.
    pub(crate) from: u64,
    /// Start of the content (after the From_ line).
    pub(crate) body: u64,
    /// End of the content (before the separating blank line).
    pub(crate) end: u64,
    uid: String,
    /// The content's wire size, unquoted.
    pub(crate) size: u64,
}

/// The message being read by `parse`.
struct Building {
    from: u64,
    body: u64,
    q: FromQuoter,
    size: WireSize,
    uid: UidHash,
    scratch: Vec<u8>,
}

impl Building {
    fn new(from: u64, body: u64) -> Building {
        Building {
            from,
            body,
            q: FromQuoter::unquoter(),
            size: WireSize::new(),
            uid: UidHash::new(),
            scratch: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.scratch.clear();
        self.q.feed(bytes, &mut self.scratch);
        self.absorb();
    }

    fn absorb(&mut self) {
        self.size.feed(&self.scratch);
        self.uid.feed(&self.scratch);
    }

    fn finish(mut self, end: u64) -> Span {
        self.scratch.clear();
        self.q.finish(&mut self.scratch);
        self.absorb();
        self.uid.finish();
        Span {
            from: self.from,
            body: self.body,
            end,
            uid: format!("{:016x}.{:x}", self.uid.hash, self.uid.len),
            size: self.size.total(),
        }
    }
}

/// Header fields that mail readers rewrite in place (mutt, Pine, Dovecot,
/// UW IMAP): left out of the UID so that reading a message elsewhere does
/// not make it new to POP3 clients.
const VOLATILE: &[&[u8]] = &[
    b"status",
    b"x-status",
    b"x-keywords",
    b"x-uid",
    b"x-imap",
    b"x-imapbase",
    b"content-length",
    b"lines",
];

/// The UID of an mbox message: FNV-1a of its (unquoted) content without
/// the VOLATILE header fields, and the length hashed. Independent of the
/// message's offset in the file. Constant memory: a header line is held
/// only up to its colon (at most 32 bytes) to decide.
struct UidHash {
    hash: u64,
    len: u64,
    in_header: bool,
    at_start: bool,
    skipping: bool,
    pend: Vec<u8>,
}

impl UidHash {
    fn new() -> UidHash {
        UidHash {
            hash: FNV_OFFSET,
            len: 0,
            in_header: true,
            at_start: true,
            skipping: false,
            pend: Vec::with_capacity(32),
        }
    }

    fn put(&mut self, b: &[u8]) {
        self.hash = fnv1a(b, self.hash);
        self.len += b.len() as u64;
    }

    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if !self.in_header {
                self.put(input);
                return;
            }
            if self.at_start {
                let b = input[0];
                input = &input[1..];
                self.pend.push(b);
                let first = self.pend.len() == 1;
                if !(b == b':'
                    || b == b'\n'
                    || self.pend.len() >= 32
                    || first && (b == b' ' || b == b'\t'))
                {
                    continue;
                }
                let pend = std::mem::take(&mut self.pend);
                if b == b'\n' {
                    if pend == b"\n" || pend == b"\r\n" {
                        self.in_header = false;
                    }
                    self.skipping = false;
                    self.put(&pend);
                } else if first {
                    // A continuation line belongs to the field before it.
                    if !self.skipping {
                        self.put(&pend);
                    }
                    self.at_start = false;
                } else {
                    self.skipping = b == b':'
                        && VOLATILE
                            .iter()
                            .any(|v| v.eq_ignore_ascii_case(&pend[..pend.len() - 1]));
                    if !self.skipping {
                        self.put(&pend);
                    }
                    self.at_start = false;
                }
                self.pend = pend;
                self.pend.clear();
                continue;
            }
            match input.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    if !self.skipping {
                        self.put(&input[..=p]);
                    }
                    input = &input[p + 1..];
                    self.at_start = true;
                }
                None => {
                    if !self.skipping {
                        self.put(input);
                    }
                    input = &[];
                }
            }
        }
    }

    fn finish(&mut self) {
        let pend = std::mem::take(&mut self.pend);
        self.put(&pend);
    }
}

/// What `parse` reads from: the mbox file, or bytes (`fuzz_parse`).
trait ReadAt {
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read_at(buf, offset)
    }
}

struct Bytes<'a>(&'a [u8]);

impl ReadAt for Bytes<'_> {
    fn pread(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

/// A buffered reader that knows the file offset of its buffer.
struct Scan<'a> {
    f: &'a dyn ReadAt,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    off: u64,
    eof: bool,
}

impl Scan<'_> {
    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.off += n as u64;
    }

    /// Make at least `want` bytes available unless EOF comes first.
    fn ensure(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let file_pos = self.off + (self.end - self.start) as u64;
            let n = self.f.pread(&mut self.buf[self.end..], file_pos)?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
        Ok(())
    }
}

/// The message list of an mbox file (imapd's folders read it too).
pub(crate) fn spans(f: &File) -> io::Result<Vec<Span>> {
    parse(f)
}

/// Read the message list of an mbox.
fn parse(f: &dyn ReadAt) -> io::Result<Vec<Span>> {
    let mut r = Scan {
        f,
        buf: vec![0u8; CHUNK],
        start: 0,
        end: 0,
        off: 0,
        eof: false,
    };
    let mut spans = Vec::new();
    let mut cur: Option<Building> = None;
    let mut prev_empty = true;
    let mut pending_blank: Option<u64> = None;
    loop {
        r.ensure(5)?;
        if r.avail().is_empty() {
            break;
        }
        let line_off = r.off;
        if prev_empty && r.avail().starts_with(b"From ") {
            if let Some(c) = cur.take() {
                spans.push(c.finish(pending_blank.take().unwrap_or(line_off)));
            }
            pending_blank = None;
            skip_line(&mut r, |_| {})?;
            cur = Some(Building::new(line_off, r.off));
            prev_empty = false;
            continue;
        }
        let Some(c) = cur.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an mbox file (no From_ line at its start)",
            ));
        };
        if pending_blank.take().is_some() {
            c.feed(b"\n");
        }
        if r.avail()[0] == b'\n' {
            pending_blank = Some(line_off);
            r.consume(1);
            prev_empty = true;
            continue;
        }
        prev_empty = false;
        skip_line(&mut r, |piece| c.feed(piece))?;
    }
    if let Some(c) = cur.take() {
        spans.push(c.finish(pending_blank.unwrap_or(r.off)));
    }
    // Identical messages get distinct UIDs by their order.
    let mut count: HashMap<String, u32> = HashMap::new();
    for s in &mut spans {
        let n = count.entry(s.uid.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            s.uid = format!("{}-{}", s.uid, n);
        }
    }
    Ok(spans)
}

/// Consume through the next LF (or EOF), handing each piece to `sink`.
fn skip_line(r: &mut Scan, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
    loop {
        r.ensure(1)?;
        let avail = r.avail();
        if avail.is_empty() {
            return Ok(());
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(p) => {
                sink(&avail[..=p]);
                r.consume(p + 1);
                return Ok(());
            }
            None => {
                let n = avail.len();
                sink(avail);
                r.consume(n);
            }
        }
    }
}

/// Message content with the mboxrd quoting undone.
struct Unquote<R: Read> {
    inner: R,
    q: FromQuoter,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Read for Unquote<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Unquote<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.out.len() && !self.eof {
            self.out.clear();
            self.pos = 0;
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                self.q.finish(&mut self.out);
                self.eof = true;
            } else {
                self.q.feed(&self.raw[..n], &mut self.out);
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.out.len());
    }
}

/// Parse `data` as an mbox and check what the sessions rely on: messages
/// in order inside the file, each starting at a From_ line, its content
/// read back (unquoted) of the size listed, distinct UIDs; and mboxrd
/// quoting undone by unquoting, however the bytes are split. Panics when
/// one breaks. For cargo-fuzz (`fuzz/fuzz_targets/mbox.rs`).
pub fn fuzz_parse(data: &[u8]) {
    match parse(&Bytes(data)) {
        Err(_) => assert!(!data.starts_with(b"From "), "an mbox refused"),
        Ok(spans) => {
            let mut prev_end = 0;
            let mut uids = std::collections::HashSet::new();
            for s in &spans {
                assert!(prev_end <= s.from && s.from < s.body && s.body <= s.end);
                assert!(s.end <= data.len() as u64, "{s:?} beyond the end");
                assert!(data[s.from as usize..].starts_with(b"From "));
                let mut content = Vec::new();
                let mut u = Unquote {
                    inner: &data[s.body as usize..s.end as usize],
                    q: FromQuoter::unquoter(),
                    raw: vec![0u8; 4096],
                    out: Vec::new(),
                    pos: 0,
                    eof: false,
                };
                u.read_to_end(&mut content).expect("reading bytes");
                assert_eq!(crate::wire::wire_size(&content), s.size, "{s:?}");
                assert!(uids.insert(s.uid.clone()), "duplicate UID {}", s.uid);
                prev_end = s.end;
            }
        }
    }
    // Quoting for delivery, then unquoting for reading, is the identity.
    let piece = 1 + data.first().map_or(0, |&b| b as usize % 7);
    let mut quoted = Vec::new();
    let mut q = FromQuoter::quoter();
    for c in data.chunks(piece) {
        q.feed(c, &mut quoted);
    }
    q.finish(&mut quoted);
    let mut back = Vec::new();
    let mut u = FromQuoter::unquoter();
    for c in quoted.chunks(piece + 1) {
        u.feed(c, &mut back);
    }
    u.finish(&mut back);
    assert_eq!(back, data, "mboxrd quoting does not round-trip");
}

pub struct Maildrop {
    path: PathBuf,
    /// None when the mbox does not exist (an empty maildrop).
    lock: Option<SessionLock>,
    spans: Vec<Span>,
    infos: Vec<MessageInfo>,
}

impl Maildrop {
    pub fn open(path: &Path) -> Result<Maildrop, OpenError> {
        let empty = || Maildrop {
            path: path.to_path_buf(),
            lock: None,
            spans: Vec::new(),
            infos: Vec::new(),
        };
        loop {
            let f = match super::open_regular(OpenOptions::new().read(true), path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty()),
                Err(e) => return Err(e.into()),
            };
            let lock = SessionLock::try_take(f)?.ok_or(OpenError::InUse)?;
            let dot = DotLock::acquire(path, LOCK_WAIT)?;
            // The file may have been replaced (a session's UPDATE) between
            // our open and the lock.
            let a = lock.file().metadata()?;
            match fs::symlink_metadata(path) {
                Ok(b) if a.ino() == b.ino() && a.dev() == b.dev() => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty()),
                Err(e) => return Err(e.into()),
            }
            if !a.file_type().is_file() {
                return Err(io::Error::other(format!("{} is not a file", path.display())).into());
            }
            fcntl_lock(lock.file(), false, LOCK_WAIT)?;
            let parsed = parse(lock.file());
            fcntl_unlock(lock.file());
            drop(dot);
            let spans = parsed?;
            let infos = spans
                .iter()
                .map(|s| MessageInfo {
                    uid: s.uid.clone(),
                    size: s.size,
                })
                .collect();
            return Ok(Maildrop {
                path: path.to_path_buf(),
                lock: Some(lock),
                spans,
                infos,
            });
        }
    }

    pub fn messages(&self) -> &[MessageInfo] {
        &self.infos
    }

    pub fn open_message(&mut self, index: usize) -> io::Result<Box<dyn BufRead + '_>> {
        let span = &self.spans[index];
        let lock = self
            .lock
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no mailbox"))?;
        let mut f = lock.file().try_clone()?;
        // Cheap check that the file was not rewritten under us.
        let mut head = [0u8; 5];
        f.read_exact_at(&mut head, span.from)?;
        if &head != b"From " {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the mbox was changed by another program",
            ));
        }
        f.seek(SeekFrom::Start(span.body))?;
        Ok(Box::new(Unquote {
            inner: f.take(span.end - span.body),
            q: FromQuoter::unquoter(),
            raw: vec![0u8; CHUNK],
            out: Vec::with_capacity(CHUNK + 1024),
            pos: 0,
            eof: false,
        }))
    }

    pub fn commit(self, deleted: &[bool], _seen: &[bool]) -> io::Result<CommitReport> {
        let gone: std::collections::HashSet<&str> = self
            .spans
            .iter()
            .enumerate()
            .filter(|(i, _)| deleted.get(*i).copied().unwrap_or(false))
            .map(|(_, s)| s.uid.as_str())
            .collect();
        if gone.is_empty() {
            return Ok(CommitReport::default());
        }
        let _dot = DotLock::acquire(&self.path, LOCK_WAIT)?;
        let f = super::open_regular(OpenOptions::new().read(true).write(true), &self.path)?;
        fcntl_lock(&f, true, LOCK_WAIT)?;
        let spans = parse(&f)?;
        let keep: Vec<Span> = spans
            .iter()
            .filter(|s| !gone.contains(s.uid.as_str()))
            .cloned()
            .collect();
        let report = CommitReport {
            deleted: spans.len() - keep.len(),
        };
        if report.deleted > 0 {
            rewrite(&self.path, &f, &keep, None)?;
        }
        fcntl_unlock(&f);
        Ok(report)
    }
}

/// The temporary file a rewrite of `path` goes through.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.pop3d.tmp"))
}

/// Replace `path` by a file holding the `keep` messages of `src`, crash-safely
/// (write, fsync, rename, fsync the directory). `crash_after` (tests) stops
/// after that many bytes as a crash would: no clean-up.
fn rewrite(path: &Path, src: &File, keep: &[Span], crash_after: Option<u64>) -> io::Result<()> {
    let create = |p: &Path| AsideFile::create(p, 0o600);
    let mut tmp = temp_path(path);
    let _ = fs::remove_file(&tmp); // left by an earlier crash
    let mut out = match create(&tmp) {
        Ok(f) => f,
        // Someone else's file of that name (in a sticky spool it cannot be
        // removed): take a name nobody can predict instead.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let mut name = tmp.into_os_string();
            name.push(format!(".{}.{nanos}", std::process::id()));
            tmp = PathBuf::from(name);
            create(&tmp)?
        }
        Err(e) => return Err(e),
    };
    let result = (|| {
        let mut buf = vec![0u8; CHUNK];
        let mut written = 0u64;
        for s in keep {
            let mut pos = s.from;
            while pos < s.end {
                let want = ((s.end - pos) as usize).min(CHUNK);
                let n = src.read_at(&mut buf[..want], pos)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "mbox shrank during rewrite",
                    ));
                }
                if let Some(limit) = crash_after {
                    if written + n as u64 > limit {
                        out.write_all(&buf[..(limit - written) as usize])?;
                        return Err(io::Error::other("simulated crash"));
                    }
                }
                out.write_all(&buf[..n])?;
                written += n as u64;
                pos += n as u64;
            }
            let mut last = [b'\n'];
            if s.end > s.body {
                src.read_exact_at(&mut last, s.end - 1)?;
            }
            if last[0] != b'\n' {
                out.write_all(b"\n")?;
            }
            out.write_all(b"\n")?;
        }
        // The new file keeps the mailbox's group and mode; where the group
        // cannot be kept, nobody but the owner may read it.
        let meta = src.metadata()?;
        let mut mode = meta.permissions().mode() & 0o7777;
        let gid = nix::unistd::Gid::from_raw(meta.gid());
        if nix::unistd::fchown(std::os::fd::AsRawFd::as_raw_fd(out.file()), None, Some(gid))
            .is_err()
        {
            mode &= 0o700;
        }
        out.file().set_permissions(fs::Permissions::from_mode(mode))
    })();
    let result = match result {
        Ok(()) => out.commit(path),
        // As a crash would: the temporary file stays.
        Err(e) if crash_after.is_some() => {
            out.abandon();
            Err(e)
        }
        // Dropping `out` removes the temporary file.
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        log::error!("{}: rewrite failed: {e}", path.display());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::{read_all, TempDir};
    use crate::mail::{deliver as deliver_any, Mailbox, Maildrop as Drop_};

    #[test]
    fn deliver_quotes_and_reads_back() {
        let t = TempDir::new("mbox");
        let path = t.0.join("demo");
        let mb = Mailbox::Mbox(path.clone());
        let m1 = b"Subject: a\n\nFrom here\n>From there\n\n";
        deliver_any(&mb, "x@y", &mut &m1[..]).unwrap();
        deliver_any(&mb, "", &mut &b"Subject: b\n\nno newline"[..]).unwrap();
        let text = fs::read(&path).unwrap();
        let s = String::from_utf8_lossy(&text);
        assert!(s.starts_with("From x@y "), "{s}");
        assert!(s.contains("\n>From here\n>>From there\n\n\nFrom MAILER-DAEMON "));
        assert!(s.ends_with("no newline\n\n"));
        assert!(!t.0.join("demo.lock").exists());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 2);
        let one = read_all(&mut d, 0);
        let mut want = b"Return-Path: <x@y>\n".to_vec();
        want.extend_from_slice(m1);
        assert_eq!(one, want);
        assert_eq!(d.messages()[0].size, crate::wire::wire_size(&want));
        assert_eq!(
            read_all(&mut d, 1),
            b"Return-Path: <>\nSubject: b\n\nno newline\n"
        );
        assert!(matches!(Drop_::open(&mb), Err(OpenError::InUse)));
    }

    #[test]
    fn delivery_waits_for_the_dotlock() {
        let t = TempDir::new("mbox-lock");
        let path = t.0.join("demo");
        let held = DotLock::acquire(&path, LOCK_WAIT).unwrap();
        let p2 = path.clone();
        let h = std::thread::spawn(move || {
            deliver_any(&Mailbox::Mbox(p2), "a@b", &mut &b"S: 1\n\nx\n"[..]).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!path.exists(), "delivered through a held lock");
        drop(held);
        h.join().unwrap();
        assert!(fs::read(&path).unwrap().starts_with(b"From a@b "));
    }

    #[test]
    fn update_keeps_mail_delivered_during_the_session() {
        let t = TempDir::new("mbox-merge");
        let mb = Mailbox::Mbox(t.0.join("demo"));
        for i in 0..3 {
            deliver_any(&mb, "s@x", &mut format!("N: {i}\n\nbody\n").as_bytes()).unwrap();
        }
        let d = Drop_::open(&mb).unwrap();
        let uids: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
        deliver_any(&mb, "s@x", &mut &b"N: late\n\nbody\n"[..]).unwrap();
        let r = d.commit(&[true, false, true], &[false; 3]).unwrap();
        assert_eq!(r.deleted, 2);
        let mut d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 2);
        assert_eq!(d.messages()[0].uid, uids[1]);
        assert!(read_all(&mut d, 1).ends_with(b"N: late\n\nbody\n"));
    }

    #[test]
    fn identical_messages_get_distinct_uids() {
        let t = TempDir::new("mbox-dup");
        let mb = Mailbox::Mbox(t.0.join("demo"));
        for _ in 0..2 {
            deliver_any(&mb, "s@x", &mut &b"Same\n\nsame\n"[..]).unwrap();
        }
        let d = Drop_::open(&mb).unwrap();
        assert_ne!(d.messages()[0].uid, d.messages()[1].uid);
    }

    #[test]
    fn crash_mid_rewrite_leaves_a_whole_mbox() {
        let t = TempDir::new("mbox-crash");
        let path = t.0.join("demo");
        let mb = Mailbox::Mbox(path.clone());
        for i in 0..4 {
            deliver_any(&mb, "s@x", &mut format!("N: {i}\n\nbody {i}\n").as_bytes()).unwrap();
        }
        let before = fs::read(&path).unwrap();
        let f = File::open(&path).unwrap();
        let spans = parse(&f).unwrap();
        let keep = vec![spans[1].clone(), spans[3].clone()];
        for cut in [0u64, 1, 10, 60] {
            assert!(rewrite(&path, &f, &keep, Some(cut)).is_err());
            assert_eq!(fs::read(&path).unwrap(), before);
            assert!(temp_path(&path).exists());
        }
        // The stray temporary file is no obstacle, and a reader sees all 4.
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 4);
        let uids: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
        d.commit(&[true, false, true, false], &[false; 4]).unwrap();
        assert!(!temp_path(&path).exists());
        let d = Drop_::open(&mb).unwrap();
        let now: Vec<String> = d.messages().iter().map(|m| m.uid.clone()).collect();
        assert_eq!(now, vec![uids[1].clone(), uids[3].clone()]);
    }

    #[test]
    fn foreign_mbox_without_trailing_blank() {
        let t = TempDir::new("mbox-foreign");
        let path = t.0.join("demo");
        fs::write(
            &path,
            b"From a Thu Jan  1 00:00:00 2026\nA: 1\n\nx\n\nFrom b Thu Jan  1 00:00:00 2026\nB: 2\n\ny",
        )
        .unwrap();
        let mb = Mailbox::Mbox(path.clone());
        let mut d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 2);
        assert_eq!(read_all(&mut d, 0), b"A: 1\n\nx\n");
        assert_eq!(read_all(&mut d, 1), b"B: 2\n\ny");
        assert_eq!(d.messages()[1].size, 11);
        drop(d);
        deliver_any(&mb, "c@d", &mut &b"C: 3\n\nz\n"[..]).unwrap();
        let d = Drop_::open(&mb).unwrap();
        assert_eq!(d.messages().len(), 3);
        d.commit(&[false, true, false], &[false; 3]).unwrap();
        let s = fs::read_to_string(&path).unwrap();
        assert!(s.starts_with("From a "));
        assert!(s.contains("x\n\nFrom c@d "), "{s}");
        assert!(s.ends_with("z\n\n"));
    }

    #[test]
    fn uids_ignore_headers_mail_readers_rewrite() {
        let uid = |m: &[u8], piece: usize| {
            let mut h = UidHash::new();
            for c in m.chunks(piece) {
                h.feed(c);
            }
            h.finish();
            (h.hash, h.len)
        };
        let plain = b"From: a\nSubject: s\n\nbody\nStatus: RO\n";
        let read = b"From: a\nStatus: RO\nX-Status: A\nSubject: s\nContent-Length: 17\n\nbody\nStatus: RO\n";
        let folded = b"From: a\nX-Keywords: a\n b\nSubject: s\n\nbody\nStatus: RO\n";
        for piece in [1, 3, 1000] {
            assert_eq!(uid(plain, piece), uid(read, 1000));
            assert_eq!(uid(plain, piece), uid(folded, piece));
            // The body is hashed whole, Status lines included.
            assert_ne!(
                uid(plain, piece),
                uid(b"From: a\nSubject: s\n\nbody\n", piece)
            );
            assert_ne!(
                uid(plain, piece),
                uid(b"From: b\nSubject: s\n\nbody\nStatus: RO\n", piece)
            );
        }
    }

    #[test]
    fn not_an_mbox_is_an_error() {
        let t = TempDir::new("mbox-bad");
        let path = t.0.join("demo");
        fs::write(&path, b"hello\n").unwrap();
        assert!(Drop_::open(&Mailbox::Mbox(path)).is_err());
    }
}
