//! mbox folders in the c-client format (UW IMAP, Pine, Dovecot's mbox):
//! the folder's UIDVALIDITY, last UID and keywords in an `X-IMAPbase:`
//! field of the first message (or of a hidden "FOLDER INTERNAL DATA"
//! message's `X-IMAP:`), and in every message `X-UID:`, `Status:` (R seen,
//! O no longer recent), `X-Status:` (D deleted, A answered, F flagged,
//! T draft) and `X-Keywords:`. These fields are the store's, not the
//! message's: clients never see them, and sizes leave them out.
//!
//! A UID counts only while UIDs rise through the file and stay at or below
//! the last one given (c-client's rule): a message a mail reader moved or
//! copied with its X-UID gets a new one. The folder's index directory
//! (`classicd-mbox`, "VALIDITY LAST") keeps the last UID given too, so
//! that an emptied folder, or one whose first message another program
//! removed with its X-IMAPbase, never gives a UID twice.
//!
//! Changes are written under the mbox's dot-lock and fcntl lock: new mail
//! is appended; flags, new UIDs and expunges rewrite the file beside it,
//! fsynced and renamed over it (a crash leaves the old file or the new
//! one, whole), keeping its group and mode.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::flags::{Flag, Flags};
use super::folder::header_end;
use super::uidlist::UID_MAX;
use crate::fs::AsideFile;
use crate::mail::header_fields;
use crate::mail::lock::{fcntl_lock, fcntl_unlock, DotLock, LOCK_WAIT};
use crate::mail::mboxrd::FromQuoter;
use crate::wire::wire_size;

/// The fields the store keeps in each message's header.
const INTERNAL: &[&str] = &[
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "x-imapbase",
    "x-imap",
];

/// The index file in the folder's index directory.
pub const INDEX: &str = "classicd-mbox";

/// A header larger than this is cut there when looked at (the fields the
/// store keeps are near its end only in files another program wrote).
const HEADER_MAX: u64 = 1 << 20;

/// The folder's UID state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Base {
    pub validity: u32,
    pub uidlast: u32,
    pub keywords: Vec<String>,
}

/// The store's view of one message's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub uid: Option<u32>,
    /// System flags only (keywords are kept by name).
    pub system: Flags,
    /// `O`: seen by a session (no longer \Recent).
    pub old: bool,
    pub keywords: Vec<String>,
}

/// One message of the file.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The From_ line, the header, the body (after the blank line; `end`
    /// when there is none) and the end of the message.
    pub from: u64,
    pub content: u64,
    pub body: u64,
    pub end: u64,
    /// Wire size of the message as clients see it.
    pub size: u64,
    /// INTERNALDATE, from the From_ line.
    pub date: i64,
    pub state: State,
}

#[derive(Debug, Default)]
pub struct Scanned {
    /// From X-IMAPbase (or a pseudo-message's X-IMAP).
    pub base: Option<Base>,
    pub entries: Vec<Entry>,
}

fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    (!name.is_empty() && name.iter().all(|&b| b > b' ' && b < 0x7f)).then_some(name)
}

fn is_internal(name: &[u8]) -> bool {
    INTERNAL
        .iter()
        .any(|i| i.as_bytes().eq_ignore_ascii_case(name))
}

fn value(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    String::from_utf8_lossy(&field[(colon + 1).min(field.len())..])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The header without the store's fields (what clients see), and the
/// wire octets taken out.
pub fn strip(header: &[u8]) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(header.len());
    let mut removed = 0;
    for f in header_fields(header) {
        if field_name(f).is_some_and(is_internal) {
            removed += wire_size(f);
        } else {
            out.extend_from_slice(f);
        }
    }
    (out, removed)
}

fn parse_base(v: &str) -> Option<Base> {
    let mut w = v.split_whitespace();
    let validity = w.next()?.parse().ok()?;
    let uidlast = w.next()?.parse().ok()?;
    Some(Base {
        validity,
        uidlast,
        keywords: w.map(str::to_string).collect(),
    })
}

/// What the store's fields of a header say; `Some(base)` second when the
/// header carries one; true third when it is a pseudo-message's.
fn read_state(header: &[u8]) -> (State, Option<Base>, bool) {
    let mut s = State::default();
    let (mut base, mut pseudo) = (None, false);
    for f in header_fields(header) {
        let Some(name) = field_name(f) else { continue };
        let name = name.to_ascii_lowercase();
        let v = value(f);
        match name.as_slice() {
            b"status" => {
                s.system.set(Flag::Seen, v.contains('R'));
                s.old = v.contains('O');
            }
            b"x-status" => {
                for (c, flag) in [
                    ('D', Flag::Deleted),
                    ('A', Flag::Answered),
                    ('F', Flag::Flagged),
                    ('T', Flag::Draft),
                ] {
                    s.system.set(flag, v.contains(c));
                }
            }
            b"x-keywords" => {
                s.keywords = v
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            b"x-uid" => s.uid = v.parse().ok().filter(|&u| u > 0 && u <= UID_MAX),
            b"x-imapbase" => base = parse_base(&v),
            b"x-imap" => {
                base = parse_base(&v);
                pseudo = true;
            }
            _ => {}
        }
    }
    (s, base, pseudo)
}

/// INTERNALDATE from a From_ line (`From sender Www Mmm dd hh:mm:ss yyyy`,
/// perhaps with a zone before or after the year): UTC seconds.
pub fn from_line_date(line: &[u8]) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().rposition(|w| MONTHS.contains(w))?;
    let month = MONTHS.iter().position(|m| *m == words[at])? as u32 + 1;
    let day: u32 = words.get(at + 1)?.parse().ok()?;
    let time: Vec<i64> = words
        .get(at + 2)?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let year: i64 = words
        .get(at + 3..)
        .unwrap_or(&[])
        .iter()
        .take(2)
        .find_map(|w| w.parse().ok().filter(|y: &i64| (1970..10000).contains(y)))?;
    let (h, m, s) = (
        *time.first()?,
        *time.get(1)?,
        time.get(2).copied().unwrap_or(0),
    );
    if !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(crate::calendar::days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s)
}

fn read_range(f: &File, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; (to - from) as usize];
    f.read_exact_at(&mut v, from)?;
    Ok(v)
}

/// Where the header of a message starting with `b` ends (after its blank
/// line): at once when the message starts with a blank line (it has no
/// header).
pub fn header_len(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"\n") {
        Some(1)
    } else if b.starts_with(b"\r\n") {
        Some(2)
    } else {
        header_end(b)
    }
}

/// The length of the blank line that ends a header cut by `header_len`.
fn blank_len(h: &[u8]) -> usize {
    // `header_end` stops after "\n\n" or "\n\r\n": their last bytes differ.
    if h == b"\n" || h.ends_with(b"\n\n") {
        1
    } else if h == b"\r\n" || h.ends_with(b"\n\r\n") {
        2
    } else {
        0
    }
}

/// The header of the message at `content` (through its blank line, or to
/// `end`): its bytes and where the body starts.
fn read_header(f: &File, content: u64, end: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut v = Vec::new();
    let mut pos = content;
    let limit = end.min(content + HEADER_MAX);
    while pos < limit {
        let step = (limit - pos).min(16 * 1024);
        let from = v.len().saturating_sub(3);
        let first = v.is_empty();
        v.extend_from_slice(&read_range(f, pos, pos + step)?);
        pos += step;
        let found = if first {
            header_len(&v)
        } else {
            header_end(&v[from..])
        };
        if let Some(e) = found {
            v.truncate(from + e);
            let body = content + v.len() as u64;
            return Ok((v, body));
        }
    }
    Ok((v, pos))
}

/// Read the folder's messages. A pseudo-message's X-IMAP is taken as the
/// base and the message is not listed.
pub fn scan(f: &File) -> io::Result<Scanned> {
    let fallback_date = f.metadata()?.mtime();
    let mut out = Scanned::default();
    for (i, s) in crate::mail::mbox::spans(f)?.into_iter().enumerate() {
        let (header, body) = read_header(f, s.body, s.end)?;
        let (state, base, pseudo) = read_state(&header);
        if i == 0 {
            out.base = base;
            if pseudo {
                continue;
            }
        }
        let removed = strip(&header).1;
        let from_line = read_range(f, s.from, s.body.min(s.from + 1024))?;
        out.entries.push(Entry {
            from: s.from,
            content: s.body,
            body,
            end: s.end,
            size: s.size.saturating_sub(removed),
            date: from_line_date(&from_line).unwrap_or(fallback_date),
            state,
        });
    }
    Ok(out)
}

/// The index's (validity, last UID).
pub fn read_index(dir: &Path) -> Option<(u32, u32)> {
    let text = fs::read_to_string(dir.join(INDEX)).ok()?;
    let mut w = text.split_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

pub fn write_index(dir: &Path, base: &Base) -> io::Result<()> {
    if read_index(dir) == Some((base.validity, base.uidlast)) {
        return Ok(());
    }
    let text = format!("{} {}\n", base.validity, base.uidlast);
    crate::fs::durable::write_file(&dir.join(INDEX), 0o600, text.as_bytes())
}

/// The folder's base, and UIDs for messages without a valid one (true
/// when some were given: the file must be written).
pub fn resolve_uids(scanned: &mut Scanned, index: &Path) -> io::Result<(Base, bool)> {
    let kept = read_index(index);
    let (validity, mut uidlast) = match (&scanned.base, kept) {
        (Some(b), Some((v, l))) if b.validity == v => (v, b.uidlast.max(l)),
        (Some(b), _) => (b.validity, b.uidlast),
        (None, Some((v, l))) => (v, l),
        (None, None) => (
            super::folder::next_uidvalidity(index.parent().unwrap_or(index)),
            0,
        ),
    };
    let mut prev = 0;
    let mut given = false;
    for e in &mut scanned.entries {
        match e.state.uid {
            Some(u) if u > prev && u <= uidlast => prev = u,
            _ => {
                if uidlast >= UID_MAX {
                    return Err(io::Error::other("UIDs exhausted: rebuild the folder"));
                }
                uidlast += 1;
                e.state.uid = Some(uidlast);
                prev = uidlast;
                given = true;
            }
        }
    }
    let keywords = scanned
        .base
        .as_ref()
        .map(|b| b.keywords.clone())
        .unwrap_or_default();
    let base = Base {
        validity,
        uidlast,
        keywords,
    };
    // A file without the base (or with an older one) gets it at its next
    // writing; the index has it meanwhile.
    Ok((base, given))
}

/// The store's fields for a message (`base` on the first of the file).
fn render_state(out: &mut Vec<u8>, s: &State, base: Option<&Base>) {
    if let Some(b) = base {
        out.extend_from_slice(format!("X-IMAPbase: {} {:010}", b.validity, b.uidlast).as_bytes());
        for k in &b.keywords {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
        }
        out.push(b'\n');
    }
    let mut status = String::new();
    if s.system.has(Flag::Seen) {
        status.push('R');
    }
    if s.old {
        status.push('O');
    }
    if !status.is_empty() {
        out.extend_from_slice(format!("Status: {status}\n").as_bytes());
    }
    let mut x = String::new();
    for (c, flag) in [
        ('D', Flag::Deleted),
        ('A', Flag::Answered),
        ('F', Flag::Flagged),
        ('T', Flag::Draft),
    ] {
        if s.system.has(flag) {
            x.push(c);
        }
    }
    if !x.is_empty() {
        out.extend_from_slice(format!("X-Status: {x}\n").as_bytes());
    }
    if !s.keywords.is_empty() {
        out.extend_from_slice(format!("X-Keywords: {}\n", s.keywords.join(" ")).as_bytes());
    }
    if let Some(u) = s.uid {
        out.extend_from_slice(format!("X-UID: {u}\n").as_bytes());
    }
}

/// A message to add: its From_ line, header (LF ends, without the store's
/// fields and the blank line), body (mboxrd-quoted), and state.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub from_line: Vec<u8>,
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    pub state: State,
}

impl NewMessage {
    /// From a client's bytes (any line ends).
    pub fn new(data: &[u8], date: i64, state: State) -> NewMessage {
        let mut lf = Vec::with_capacity(data.len());
        let mut conv = crate::wire::CrlfToLf::new();
        conv.feed(data, &mut lf);
        conv.finish(&mut lf);
        let (header, body) = match header_len(&lf) {
            Some(e) => (&lf[..e - blank_len(&lf[..e])], &lf[e..]),
            None => (&lf[..], &[][..]),
        };
        let mut header = strip(header).0;
        if !header.is_empty() && !header.ends_with(b"\n") {
            header.push(b'\n');
        }
        let mut quoted = Vec::with_capacity(body.len());
        let mut q = FromQuoter::quoter();
        q.feed(body, &mut quoted);
        q.finish(&mut quoted);
        let from_line = format!(
            "From MAILER-DAEMON {}\n",
            crate::calendar::asctime(date.max(0) as u64)
        );
        NewMessage {
            from_line: from_line.into_bytes(),
            header,
            body: quoted,
            state,
        }
    }
}

/// One message in mbox form, separated from the next by a blank line.
fn render(out: &mut Vec<u8>, m: &NewMessage, base: Option<&Base>) {
    out.extend_from_slice(&m.from_line);
    out.extend_from_slice(&m.header);
    render_state(out, &m.state, base);
    out.push(b'\n');
    out.extend_from_slice(&m.body);
    if !m.body.is_empty() && !m.body.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// An entry of the file as a message to write again, with a new state.
fn reread(f: &File, e: &Entry, state: &State) -> io::Result<NewMessage> {
    let mut header = read_range(f, e.content, e.body)?;
    // The blank line ending the header is written by `render`.
    header.truncate(header.len() - blank_len(&header));
    Ok(NewMessage {
        from_line: read_range(f, e.from, e.content)?,
        header: strip(&header).0,
        body: read_range(f, e.body, e.end)?,
        state: state.clone(),
    })
}

/// An mbox under its dot-lock and an fcntl lock (write when it can be).
pub struct Locked {
    pub file: File,
    writable: bool,
    _dot: DotLock,
}

impl Drop for Locked {
    fn drop(&mut self) {
        fcntl_unlock(&self.file);
    }
}

/// Lock the mbox at `path`; None when it does not exist and `create` is
/// false.
pub fn lock(path: &Path, create: bool) -> io::Result<Option<Locked>> {
    let dot = DotLock::acquire(path, LOCK_WAIT)?;
    if create {
        let file = crate::mail::mbox::open_locked_for_append(path)?;
        return Ok(Some(Locked {
            file,
            writable: true,
            _dot: dot,
        }));
    }
    loop {
        let open = |write: bool| {
            crate::mail::open_regular(OpenOptions::new().read(true).write(write), path)
        };
        let (file, writable) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (open(false)?, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        fcntl_lock(&file, writable, LOCK_WAIT)?;
        let a = file.metadata()?;
        // Replaced by a writer between our open and the lock: again.
        match fs::symlink_metadata(path) {
            Ok(b) if a.ino() == b.ino() && a.dev() == b.dev() => {
                return Ok(Some(Locked {
                    file,
                    writable,
                    _dot: dot,
                }))
            }
            _ => fcntl_unlock(&file),
        }
    }
}

impl Locked {
    /// Write the folder again: `entries` of this file with their states
    /// (in file order), then `added`; durable on return.
    pub fn rewrite(
        &self,
        path: &Path,
        entries: &[(&Entry, &State)],
        added: &[NewMessage],
        base: &Base,
    ) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is not writable", path.display()),
            ));
        }
        let meta = self.file.metadata()?;
        let mut out = AsideFile::beside(path, 0o600)?;
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut first = true;
        let mut put = |buf: &mut Vec<u8>, m: &NewMessage, out: &mut AsideFile| {
            render(buf, m, first.then_some(base));
            first = false;
            if buf.len() >= 128 * 1024 {
                out.write_all(buf)?;
                buf.clear();
            }
            io::Result::Ok(())
        };
        for (e, s) in entries {
            put(&mut buf, &reread(&self.file, e, s)?, &mut out)?;
        }
        for m in added {
            put(&mut buf, m, &mut out)?;
        }
        out.write_all(&buf)?;
        // The mailbox's group and mode are kept; where the group cannot
        // be, nobody but the owner may read it.
        let mut mode = meta.permissions().mode() & 0o7777;
        let gid = nix::unistd::Gid::from_raw(meta.gid());
        if nix::unistd::fchown(std::os::fd::AsRawFd::as_raw_fd(out.file()), None, Some(gid))
            .is_err()
        {
            mode &= 0o700;
        }
        out.file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        out.commit(path)
    }

    /// Add messages at the end; durable on return, nothing torn on error.
    /// The first message of an empty file carries the base.
    pub fn append(&self, added: &[NewMessage], base: &Base) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        let mut out = Vec::new();
        if len > 0 {
            let n = len.min(2);
            let tail = read_range(&self.file, len - n, len)?;
            if tail.last() != Some(&b'\n') {
                out.extend_from_slice(b"\n\n");
            } else if n == 2 && tail[0] != b'\n' {
                out.push(b'\n');
            }
        }
        for (i, m) in added.iter().enumerate() {
            render(&mut out, m, (len == 0 && i == 0).then_some(base));
        }
        let r = (&self.file)
            .write_all(&out)
            .and_then(|()| self.file.sync_all());
        if r.is_err() {
            let _ = self.file.set_len(len);
            let _ = self.file.sync_all();
        }
        r
    }
}

/// A message's bytes as clients see them: the header without the store's
/// fields, the body unquoted.
pub fn read_message(f: &File, e: &Entry) -> io::Result<Vec<u8>> {
    check_still(f, e)?;
    let mut out = strip(&read_range(f, e.content, e.body)?).0;
    let body = read_range(f, e.body, e.end)?;
    let mut q = FromQuoter::unquoter();
    q.feed(&body, &mut out);
    q.finish(&mut out);
    Ok(out)
}

/// A message's header as clients see it.
pub fn read_message_header(f: &File, e: &Entry) -> io::Result<Vec<u8>> {
    check_still(f, e)?;
    Ok(strip(&read_range(f, e.content, e.body)?).0)
}

/// The file read is the one scanned (another program may have rewritten
/// it in place): the message still starts where it did.
fn check_still(f: &File, e: &Entry) -> io::Result<()> {
    let mut head = [0u8; 5];
    match f.read_exact_at(&mut head, e.from) {
        Ok(()) if &head == b"From " => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the mbox was changed by another program",
        )),
    }
}

/// Check the c-client field handling on any bytes: stripping the store's
/// fields keeps every other byte in order and accounts for the wire
/// octets taken out; a message written with a state reads back with that
/// state and with the client's bytes (line ends aside) unchanged; From_
/// line dates are in range. Panics when one breaks. For cargo-fuzz
/// (`fuzz/fuzz_targets/cclient.rs`).
pub fn fuzz_cclient(data: &[u8]) {
    let (out, removed) = strip(data);
    assert_eq!(
        wire_size(&out) + removed,
        wire_size(data),
        "strip lost octets"
    );
    let _ = read_state(data);
    if let Some(t) = from_line_date(data) {
        assert!((0..253_402_300_800).contains(&t), "{t}");
    }
    // A state from the first bytes, then the rest as a client's message.
    let (&b0, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut system = Flags::default();
    for (bit, f) in [
        (1, Flag::Seen),
        (2, Flag::Answered),
        (4, Flag::Flagged),
        (8, Flag::Deleted),
        (16, Flag::Draft),
    ] {
        system.set(f, b0 & bit != 0);
    }
    let state = State {
        uid: Some(u32::from(b0) + 1),
        system,
        old: b0 & 32 != 0,
        keywords: if b0 & 64 != 0 {
            vec!["$Work".into(), "Later".into()]
        } else {
            Vec::new()
        },
    };
    let m = NewMessage::new(rest, i64::from(b0) * 86_400, state.clone());
    let mut file = Vec::new();
    render(&mut file, &m, None);
    let content = &file[m.from_line.len()..];
    let stored_header = m.header.len()
        + {
            let mut fields = Vec::new();
            render_state(&mut fields, &state, None);
            fields.len()
        }
        + 1;
    let (back, _, pseudo) = read_state(&content[..stored_header]);
    assert!(!pseudo);
    assert_eq!(back, state, "the state did not read back");
    // What a client reads: the header without the store's fields, then
    // the body unquoted, equal to what it sent (LF ends).
    let mut seen = strip(&content[..stored_header]).0;
    let mut q = FromQuoter::unquoter();
    q.feed(&m.body, &mut seen);
    q.finish(&mut seen);
    let mut sent = Vec::new();
    let mut conv = crate::wire::CrlfToLf::new();
    conv.feed(rest, &mut sent);
    conv.finish(&mut sent);
    let sent_stripped = match header_len(&sent) {
        Some(e) => {
            let mut h = strip(&sent[..e - blank_len(&sent[..e])]).0;
            h.push(b'\n');
            h.extend_from_slice(&sent[e..]);
            h
        }
        None => {
            let mut h = strip(&sent).0;
            if !h.is_empty() && !h.ends_with(b"\n") {
                h.push(b'\n');
            }
            h.push(b'\n');
            h
        }
    };
    assert_eq!(seen, sent_stripped, "the message did not read back");
}

#[cfg(test)]
mod tests;
