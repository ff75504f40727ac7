//! The spool on disk: directory layout, queue ids, the committed message
//! file (data + envelope + trailer) and the per-message state file.
//!
//! A committed file `q/ID` is the message data as received (CRLF lines),
//! followed by the envelope as text lines, followed by a fixed-size trailer
//! `"\n#CLQ1 <envelope offset, 16 hex> <envelope length, 8 hex>\n"`. The file
//! is fsynced before it is renamed from `tmp/` into `q/`, so a file in `q/`
//! is complete; a missing or bad trailer (a damaged disk) makes it corrupt,
//! and it is moved aside to `corrupt/`, never half-delivered.
//!
//! Envelope and state are line-based `KEY value...` text; fields are
//! separated by one space and escaped with `%XX` for `%`, space, `=`,
//! control and non-UTF-8-safe bytes. An optional field is empty (None) or
//! `=` followed by its escaped value.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Envelope, Notify, Recipient, Ret, Route};
use crate::fs::{durable, sync_dir, AsideFile};

pub const TMP: &str = "tmp";
pub const QUEUE: &str = "q";
pub const STATE: &str = "st";
pub const CORRUPT: &str = "corrupt";
/// Finished message files kept in tmp/ for the next messages to be written
/// over (`tmp/spare.N`, N below [`SPARES`]): a busy queue then neither
/// allocates nor frees an inode per message, and after a burst the next
/// one finds its files made.
const SPARE: &str = "spare.";
const SPARES: u32 = 1024;
/// Larger files are removed, not kept: the spares hold at most
/// SPARES x this much of the disk.
const SPARE_MAX_BYTES: u64 = 256 * 1024;
/// Slots tried, by a session taking a spare or the runner leaving one.
const SPARE_TRIES: u32 = 6;

const MAGIC: &[u8] = b"\n#CLQ1 ";
/// "\n#CLQ1 " + 16 hex + " " + 8 hex + "\n"
pub const TRAILER_LEN: usize = 7 + 16 + 1 + 8 + 1;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Create the spool directories (0700) when missing.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    if [TMP, QUEUE, STATE].iter().all(|s| dir.join(s).is_dir()) {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true).mode(0o700);
    for sub in [TMP, QUEUE, STATE] {
        b.create(dir.join(sub))?;
    }
    Ok(())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new queue id: time, pid and a counter, in upper-case hex; ids sort by
/// arrival time (to the second) and never contain anything but [0-9A-F].
pub fn new_id() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:09X}{:05X}{:X}{:X}",
        d.as_secs(),
        d.subsec_micros(),
        std::process::id(),
        n & 0xfff
    )
}

/// Whether a name can be a queue id (guards paths built from a kick).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 40 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub fn queue_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(QUEUE).join(id)
}

pub fn state_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(STATE).join(id)
}

/// A new file in tmp/ for an incoming message.
pub fn create_tmp(dir: &Path) -> io::Result<(String, AsideFile)> {
    loop {
        let id = new_id();
        match create_tmp_for(dir, &id) {
            Ok(f) => return Ok((id, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Create `tmp/ID` for an id chosen earlier. `AlreadyExists` when the id is
/// taken, by a message being received (tmp/) or committed (q/): the commit's
/// rename would replace that message, so the caller must pick another id.
/// Dropping the file before [`commit`] removes it.
pub fn create_tmp_for(dir: &Path, id: &str) -> io::Result<AsideFile> {
    let f = match take_spare(dir, id) {
        Some(f) => f?,
        None => AsideFile::create(dir.join(TMP).join(id), 0o600)?,
    };
    if fs::symlink_metadata(queue_path(dir, id)).is_ok() {
        drop(f);
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("queue id {id} is already in q/"),
        ));
    }
    Ok(f)
}

/// A spare file taken over as `tmp/ID`, if one is there to take;
/// `Some(Err(AlreadyExists))` when the id is taken.
fn take_spare(dir: &Path, id: &str) -> Option<io::Result<AsideFile>> {
    if !durable::RENAME_NOREPLACE {
        return None;
    }
    let tmp = dir.join(TMP);
    // Slots picked at random (no listing of tmp/): sessions at the same
    // moment seldom try the same one, and a pool a few tenths full is hit
    // within the tries.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // (Never 0: xorshift would stay there.)
    let mut x = (nanos ^ std::process::id().rotate_left(16) ^ COUNTER.load(Ordering::Relaxed)) | 1;
    for _ in 0..SPARE_TRIES {
        // xorshift: the next pseudo-random slot.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let spare = tmp.join(format!("{SPARE}{}", x % SPARES));
        match AsideFile::reuse(&spare, tmp.join(id)) {
            Ok(f) => return Some(Ok(f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Some(Err(e)),
            // An empty slot, one taken meanwhile, or a file not fit.
            Err(_) => continue,
        }
    }
    None
}

/// Take a finished message out of q/: kept as a spare in a free slot
/// from `*slot` on (the runner's count, moved past the slots tried) where
/// the platform can take spares and the file is small, else removed. The
/// caller fsyncs q/ as for a removal.
pub fn retire(dir: &Path, id: &str, slot: &mut u32) -> io::Result<()> {
    let path = queue_path(dir, id);
    let small = || fs::symlink_metadata(&path).is_ok_and(|m| m.len() <= SPARE_MAX_BYTES);
    if durable::RENAME_NOREPLACE && small() {
        for _ in 0..SPARE_TRIES {
            *slot = (*slot + 1) % SPARES;
            let spare = dir.join(TMP).join(format!("{SPARE}{slot}"));
            match durable::rename_noreplace(&path, &spare) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(_) => break,
            }
        }
    }
    fs::remove_file(path)
}

/// Append envelope and trailer, fsync, rename into q/, fsync q/. On error
/// nothing is left in q/ (nor in tmp/, once `out` is dropped).
pub fn commit(
    dir: &Path,
    id: &str,
    mut out: io::BufWriter<AsideFile>,
    data_len: u64,
    env: &Envelope,
) -> io::Result<()> {
    let stored = StoredEnvelope {
        env: env.clone(),
        created: now(),
        size: data_len,
    };
    let text = stored.serialize();
    let mut tail = Vec::with_capacity(text.len() + TRAILER_LEN);
    tail.extend_from_slice(text.as_bytes());
    tail.extend_from_slice(&trailer(data_len, text.len() as u64));
    // Through the buffer: a small message is one write with its envelope.
    out.write_all(&tail)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.trim()?;
    file.install(&queue_path(dir, id))?;
    if let Err(e) = sync_dir(&dir.join(QUEUE)) {
        // Not known to be durable, so not acknowledged: it must not be
        // delivered either.
        let _ = fs::remove_file(queue_path(dir, id));
        return Err(e);
    }
    Ok(())
}

fn trailer(offset: u64, len: u64) -> Vec<u8> {
    let mut t = Vec::with_capacity(TRAILER_LEN);
    t.extend_from_slice(MAGIC);
    t.extend_from_slice(format!("{offset:016x} {len:08x}\n").as_bytes());
    t
}

/// Parse a trailer into (envelope offset, envelope length).
pub fn parse_trailer(t: &[u8], file_len: u64) -> Option<(u64, u64)> {
    if t.len() != TRAILER_LEN || !t.starts_with(MAGIC) || t[TRAILER_LEN - 1] != b'\n' {
        return None;
    }
    let s = std::str::from_utf8(&t[MAGIC.len()..TRAILER_LEN - 1]).ok()?;
    let (a, b) = s.split_once(' ')?;
    let off = u64::from_str_radix(a, 16).ok()?;
    let len = u64::from_str_radix(b, 16).ok()?;
    if off.checked_add(len)?.checked_add(TRAILER_LEN as u64)? != file_len {
        return None;
    }
    Some((off, len))
}

/// What the spool keeps beside the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEnvelope {
    pub env: Envelope,
    /// Arrival time, seconds since the epoch.
    pub created: u64,
    /// Bytes of message data.
    pub size: u64,
}

/// Read the envelope of a committed message file.
pub fn read_envelope(file: &mut File) -> io::Result<StoredEnvelope> {
    let len = file.metadata()?.len();
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if len < TRAILER_LEN as u64 {
        return Err(bad("truncated spool file"));
    }
    let mut t = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64))?;
    file.read_exact(&mut t)?;
    let (off, elen) = parse_trailer(&t, len).ok_or_else(|| bad("bad spool trailer"))?;
    if elen > 16 * 1024 * 1024 {
        return Err(bad("envelope too large"));
    }
    let mut text = vec![0u8; elen as usize];
    file.seek(SeekFrom::Start(off))?;
    file.read_exact(&mut text)?;
    let text = String::from_utf8(text).map_err(|_| bad("envelope is not UTF-8"))?;
    let se = StoredEnvelope::parse(&text).map_err(|e| bad(&e))?;
    if se.size != off {
        return Err(bad("envelope size does not match"));
    }
    Ok(se)
}

/// Open a committed message: the file (positioned at the start of the
/// data) and its envelope.
pub fn open_message(dir: &Path, id: &str) -> io::Result<(File, StoredEnvelope)> {
    let mut f = File::open(queue_path(dir, id))?;
    let se = read_envelope(&mut f)?;
    f.seek(SeekFrom::Start(0))?;
    Ok((f, se))
}

/// Move a damaged file out of the way.
pub fn quarantine(dir: &Path, id: &str) {
    let _ = fs::DirBuilder::new().mode(0o700).create(dir.join(CORRUPT));
    let _ = fs::rename(queue_path(dir, id), dir.join(CORRUPT).join(id));
    let _ = fs::rename(
        state_path(dir, id),
        dir.join(CORRUPT).join(format!("{id}.st")),
    );
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c == '=' || c == ' ' || c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad escape")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "bad UTF-8 in escape".to_string())
}

fn opt(v: &Option<String>) -> String {
    match v {
        None => String::new(),
        Some(s) => format!("={}", escape(s)),
    }
}

fn parse_opt(f: &str) -> Result<Option<String>, String> {
    match f.strip_prefix('=') {
        None if f.is_empty() => Ok(None),
        None => Err(format!("bad optional field {f:?}")),
        Some(v) => unescape(v).map(Some),
    }
}

fn notify_str(n: &Notify) -> String {
    let mut s = String::new();
    for (on, c) in [
        (n.never, 'N'),
        (n.success, 'S'),
        (n.failure, 'F'),
        (n.delay, 'D'),
    ] {
        if on {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

fn parse_notify(s: &str) -> Result<Notify, String> {
    let mut n = Notify {
        never: false,
        success: false,
        failure: false,
        delay: false,
    };
    for c in s.chars() {
        match c {
            'N' => n.never = true,
            'S' => n.success = true,
            'F' => n.failure = true,
            'D' => n.delay = true,
            '-' => {}
            _ => return Err(format!("bad notify {s:?}")),
        }
    }
    Ok(n)
}

impl StoredEnvelope {
    pub fn serialize(&self) -> String {
        let e = &self.env;
        let mut s = String::new();
        s.push_str("V 1\n");
        s.push_str(&format!("T {}\n", self.created));
        s.push_str(&format!("Z {}\n", self.size));
        s.push_str(&format!("S {}\n", escape(&e.sender)));
        s.push_str(&format!("F {}\n", escape(&e.received_from)));
        s.push_str(&format!(
            "O {} {} {} {}\n",
            match e.ret {
                None => "-",
                Some(Ret::Full) => "FULL",
                Some(Ret::Hdrs) => "HDRS",
            },
            opt(&e.envid),
            e.smtputf8 as u8,
            e.body_8bit as u8
        ));
        for r in &e.recipients {
            let route = match &r.route {
                Route::Remote => "R".to_string(),
                Route::Local {
                    account,
                    mailbox_spec,
                } => format!("L {} {}", escape(account), opt(mailbox_spec)),
            };
            s.push_str(&format!(
                "P {} {} {} {}\n",
                escape(&r.address),
                notify_str(&r.notify),
                opt(&r.orcpt),
                route
            ));
        }
        s.push_str(".\n");
        s
    }

    pub fn parse(text: &str) -> Result<StoredEnvelope, String> {
        let mut env = Envelope::default();
        let (mut created, mut size) = (None, None);
        let mut version = false;
        let mut ended = false;
        for line in text.split('\n') {
            if ended {
                if line.is_empty() {
                    continue;
                }
                return Err("data after the end of the envelope".into());
            }
            let (k, rest) = line.split_once(' ').unwrap_or((line, ""));
            let f: Vec<&str> = rest.split(' ').collect();
            let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s:?}"));
            match k {
                "V" if rest == "1" => version = true,
                "V" => return Err(format!("unknown spool version {rest:?}")),
                "T" => created = Some(num(rest)?),
                "Z" => size = Some(num(rest)?),
                "S" => env.sender = unescape(rest)?,
                "F" => env.received_from = unescape(rest)?,
                "O" if f.len() == 4 => {
                    env.ret = match f[0] {
                        "-" => None,
                        "FULL" => Some(Ret::Full),
                        "HDRS" => Some(Ret::Hdrs),
                        x => return Err(format!("bad RET {x:?}")),
                    };
                    env.envid = parse_opt(f[1])?;
                    env.smtputf8 = f[2] == "1";
                    env.body_8bit = f[3] == "1";
                }
                "P" if f.len() >= 4 => {
                    let route = match (f[3], f.len()) {
                        ("R", 4) => Route::Remote,
                        ("L", 6) => Route::Local {
                            account: unescape(f[4])?,
                            mailbox_spec: parse_opt(f[5])?,
                        },
                        _ => return Err(format!("bad route in {line:?}")),
                    };
                    env.recipients.push(Recipient {
                        address: unescape(f[0])?,
                        notify: parse_notify(f[1])?,
                        orcpt: parse_opt(f[2])?,
                        route,
                    });
                }
                "." if rest.is_empty() => ended = true,
                _ => return Err(format!("bad envelope line {line:?}")),
            }
        }
        if !version || !ended {
            return Err("incomplete envelope".into());
        }
        Ok(StoredEnvelope {
            env,
            created: created.ok_or("no arrival time")?,
            size: size.ok_or("no size")?,
        })
    }
}

/// What happened to one recipient so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcptStatus {
    Pending,
    /// Delivered (or relayed); any success DSN already queued.
    Sent,
    /// Failed for good; the failure DSN already queued (or not wanted).
    Failed,
}

/// The delivery state of a message, kept in `st/ID`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Per recipient, by index; missing entries are Pending.
    pub done: Vec<(usize, RcptStatus)>,
    pub attempts: u32,
    /// 0: as soon as possible.
    pub next_attempt: u64,
    pub last_attempt: u64,
    pub last_error: Option<String>,
    /// A delay DSN was already sent.
    pub delay_warned: bool,
}

impl State {
    pub fn status(&self, i: usize) -> RcptStatus {
        self.done
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, s)| *s)
            .unwrap_or(RcptStatus::Pending)
    }

    pub fn set(&mut self, i: usize, s: RcptStatus) {
        self.done.retain(|(j, _)| *j != i);
        if s != RcptStatus::Pending {
            self.done.push((i, s));
        }
    }

    pub fn serialize(&self) -> String {
        let mut s = format!(
            "A {}\nN {}\nL {}\nW {}\nE {}\n",
            self.attempts,
            self.next_attempt,
            self.last_attempt,
            self.delay_warned as u8,
            opt(&self.last_error)
        );
        for (i, st) in &self.done {
            let c = match st {
                RcptStatus::Pending => continue,
                RcptStatus::Sent => 'S',
                RcptStatus::Failed => 'F',
            };
            s.push_str(&format!("D {i} {c}\n"));
        }
        s.push_str(".\n");
        s
    }

    pub fn parse(text: &str) -> Result<State, String> {
        let mut st = State::default();
        let mut ended = false;
        for line in text.split('\n') {
            if line.is_empty() {
                continue;
            }
            let (k, rest) = line.split_once(' ').unwrap_or((line, ""));
            let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s:?}"));
            match k {
                "A" => st.attempts = num(rest)? as u32,
                "N" => st.next_attempt = num(rest)?,
                "L" => st.last_attempt = num(rest)?,
                "W" => st.delay_warned = rest == "1",
                "E" => st.last_error = parse_opt(rest)?,
                "D" => {
                    let (i, c) = rest.split_once(' ').ok_or("bad D line")?;
                    let i = num(i)? as usize;
                    let s = match c {
                        "S" => RcptStatus::Sent,
                        "F" => RcptStatus::Failed,
                        _ => return Err(format!("bad status {c:?}")),
                    };
                    st.set(i, s);
                }
                "." => ended = true,
                _ => return Err(format!("bad state line {line:?}")),
            }
        }
        if !ended {
            return Err("truncated state".into());
        }
        Ok(st)
    }
}

/// Read `st/ID`; a missing file is the initial state. A damaged one (which
/// the atomic replace makes impossible short of disk damage) is treated as
/// the initial state too: that may deliver twice, never lose.
pub fn read_state(dir: &Path, id: &str) -> State {
    match fs::read_to_string(state_path(dir, id)) {
        Ok(t) => State::parse(&t).unwrap_or_else(|e| {
            log::error!("{id}: damaged state file ignored: {e}");
            State::default()
        }),
        Err(_) => State::default(),
    }
}

/// Replace `st/ID` atomically and durably.
pub fn write_state(dir: &Path, id: &str, st: &State) -> io::Result<()> {
    durable::write_file(&state_path(dir, id), 0o600, st.serialize().as_bytes())
}

/// Remove a finished message (its state first: a state file without a
/// message is ignored, a message without state would be sent again). The
/// caller fsyncs q/ once for a batch of removals.
pub fn remove_message(dir: &Path, id: &str) {
    let _ = fs::remove_file(state_path(dir, id));
    let _ = fs::remove_file(queue_path(dir, id));
}

/// Ids of every committed message, oldest first.
pub fn list_ids(dir: &Path) -> io::Result<Vec<String>> {
    let mut ids: Vec<String> = fs::read_dir(dir.join(QUEUE))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_id(n))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Remove leftovers: tmp files older than a day (sessions that died), and
/// in st/ whatever is not the state of a queued message (states of
/// messages gone, temporary files of a state write cut short).
pub fn clean(dir: &Path) {
    let day = std::time::Duration::from_secs(86400);
    if let Ok(rd) = fs::read_dir(dir.join(TMP)) {
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|a| a > day);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    if let Ok(rd) = fs::read_dir(dir.join(STATE)) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".new").unwrap_or(&name);
            if !queue_path(dir, id).exists() || name.ends_with(".new") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn sample() -> StoredEnvelope {
        StoredEnvelope {
            env: Envelope {
                sender: "a b%c@example.org".into(),
                recipients: vec![
                    Recipient {
                        address: "demo@lab.test".into(),
                        route: Route::Local {
                            account: "demo".into(),
                            mailbox_spec: Some("maildir:~/Mail/in box".into()),
                        },
                        notify: Notify::default(),
                        orcpt: Some("rfc822;Demo@Lab.Test".into()),
                    },
                    Recipient {
                        address: "x@remote.example".into(),
                        route: Route::Remote,
                        notify: Notify {
                            never: true,
                            success: false,
                            failure: false,
                            delay: false,
                        },
                        orcpt: None,
                    },
                    Recipient {
                        address: "y@remote.example".into(),
                        route: Route::Local {
                            account: "y".into(),
                            mailbox_spec: None,
                        },
                        notify: Notify {
                            never: false,
                            success: false,
                            failure: false,
                            delay: false,
                        },
                        orcpt: Some(String::new()),
                    },
                ],
                ret: Some(Ret::Hdrs),
                envid: Some("QQ=1 2".into()),
                smtputf8: true,
                body_8bit: false,
                received_from: "client [127.0.0.1]\r\n".into(),
            },
            created: 1_700_000_000,
            size: 1234,
        }
    }

    #[test]
    fn envelope_round_trip() {
        let s = sample();
        let text = s.serialize();
        assert_eq!(StoredEnvelope::parse(&text).unwrap(), s);
        let mut null = sample();
        null.env.sender.clear();
        null.env.ret = None;
        null.env.envid = None;
        assert_eq!(StoredEnvelope::parse(&null.serialize()).unwrap(), null);
    }

    #[test]
    fn truncated_envelope_is_refused() {
        let text = sample().serialize();
        for cut in 0..text.len() - 1 {
            assert!(
                StoredEnvelope::parse(&text[..cut]).is_err(),
                "accepted a cut at {cut}"
            );
        }
    }

    #[test]
    fn trailer_checks_lengths() {
        let t = trailer(100, 20);
        assert_eq!(t.len(), TRAILER_LEN);
        assert_eq!(
            parse_trailer(&t, 100 + 20 + TRAILER_LEN as u64),
            Some((100, 20))
        );
        assert_eq!(parse_trailer(&t, 100 + 21 + TRAILER_LEN as u64), None);
        let mut bad = t.clone();
        bad[3] = b'X';
        assert_eq!(parse_trailer(&bad, 100 + 20 + TRAILER_LEN as u64), None);
    }

    #[test]
    fn state_round_trip_and_truncation() {
        let mut st = State {
            attempts: 3,
            next_attempt: 99,
            last_attempt: 42,
            last_error: Some("451 4.3.0 try later".into()),
            delay_warned: true,
            ..State::default()
        };
        st.set(0, RcptStatus::Sent);
        st.set(2, RcptStatus::Failed);
        let text = st.serialize();
        assert_eq!(State::parse(&text).unwrap(), st);
        assert!(State::parse(&text[..text.len() - 2]).is_err());
        assert_eq!(st.status(1), RcptStatus::Pending);
        assert_eq!(st.status(2), RcptStatus::Failed);
    }

    #[test]
    fn ids_are_unique_and_safe() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(valid_id(&a));
        assert!(!valid_id("../x"));
    }

    fn commit_text(dir: &Path, text: &[u8]) -> String {
        let (id, f) = create_tmp(dir).unwrap();
        let mut f = io::BufWriter::new(f);
        f.write_all(text).unwrap();
        commit(dir, &id, f, text.len() as u64, &sample().env).unwrap();
        id
    }

    fn read_data(dir: &Path, id: &str) -> Vec<u8> {
        let (mut f, se) = open_message(dir, id).unwrap();
        let mut data = vec![0u8; se.size as usize];
        f.read_exact(&mut data).unwrap();
        data
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finished_files_are_written_over_and_cut() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("clq-test-{}", new_id()));
        create_dirs(&dir).unwrap();
        let spares = |dir: &Path| -> Vec<u64> {
            fs::read_dir(dir.join(TMP))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(SPARE))
                .map(|e| e.metadata().unwrap().ino())
                .collect()
        };
        // Every slot holds a long finished message (any guess hits).
        let mut slot = 0;
        let long = commit_text(&dir, &[b'x'; 5000]);
        retire(&dir, &long, &mut slot).unwrap();
        assert!(!queue_path(&dir, &long).exists());
        assert_eq!(spares(&dir).len(), 1);
        for n in 0..SPARES {
            let p = dir.join(TMP).join(format!("{SPARE}{n}"));
            if !p.exists() {
                fs::write(&p, [b'x'; 5000]).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let before = spares(&dir);
        assert_eq!(before.len() as u32, SPARES);
        // The next message takes a spare; nothing of the longer message
        // before it stays in the file.
        let short = commit_text(&dir, b"Subject: short\r\n\r\nx\r\n");
        let m = fs::metadata(queue_path(&dir, &short)).unwrap();
        assert!(before.contains(&m.ino()));
        assert_eq!(read_data(&dir, &short), b"Subject: short\r\n\r\nx\r\n");
        assert!(m.len() < 1000, "{} bytes left", m.len());
        assert_eq!(spares(&dir).len() as u32, SPARES - 1);
        // A full set of spares: the next finished files are removed.
        for _ in 0..5 {
            let id = commit_text(&dir, b"a\r\n");
            retire(&dir, &short, &mut slot).ok();
            retire(&dir, &id, &mut slot).unwrap();
            assert!(!queue_path(&dir, &id).exists());
        }
        assert!(spares(&dir).len() as u32 <= SPARES);
        // A large one is never kept.
        let big = commit_text(&dir, &vec![b'y'; SPARE_MAX_BYTES as usize + 1]);
        let ino = fs::metadata(queue_path(&dir, &big)).unwrap().ino();
        for e in fs::read_dir(dir.join(TMP)).unwrap().flatten() {
            fs::remove_file(e.path()).unwrap();
        }
        retire(&dir, &big, &mut slot).unwrap();
        assert!(!spares(&dir).contains(&ino));
        assert!(spares(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_spare_with_another_link_is_not_taken() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("clq-test-{}", new_id()));
        create_dirs(&dir).unwrap();
        // Every slot: a file with a second link.
        fs::create_dir(dir.join("elsewhere")).unwrap();
        for n in 0..SPARES {
            let spare = dir.join(TMP).join(format!("{SPARE}{n}"));
            fs::write(&spare, b"old message").unwrap();
            fs::set_permissions(&spare, fs::Permissions::from_mode(0o600)).unwrap();
            fs::hard_link(&spare, dir.join("elsewhere").join(n.to_string())).unwrap();
        }
        let id = commit_text(&dir, b"new\r\n");
        assert_eq!(read_data(&dir, &id), b"new\r\n");
        // The linked files tried were removed from tmp/, never written
        // over; the message has a file of its own.
        for e in fs::read_dir(dir.join("elsewhere")).unwrap().flatten() {
            assert_eq!(fs::read(e.path()).unwrap(), b"old message");
        }
        let left = fs::read_dir(dir.join(TMP)).unwrap().count() as u32;
        assert!((SPARES - SPARE_TRIES..SPARES).contains(&left), "{left}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_or_a_readable_file_is_not_taken_for_a_spare() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("clq-test-{}", new_id()));
        create_dirs(&dir).unwrap();
        for n in 0..SPARES {
            let spare = dir.join(TMP).join(format!("{SPARE}{n}"));
            if n % 2 == 0 {
                nix::unistd::mkfifo(&spare, nix::sys::stat::Mode::S_IRWXU).unwrap();
            } else {
                fs::write(&spare, b"old message").unwrap();
                fs::set_permissions(&spare, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        // Neither hangs nor is written: the message gets a file of its own.
        let id = commit_text(&dir, b"new\r\n");
        assert_eq!(read_data(&dir, &id), b"new\r\n");
        let m = fs::metadata(queue_path(&dir, &id)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn commit_and_read_back() {
        let dir = std::env::temp_dir().join(format!("clq-test-{}", new_id()));
        create_dirs(&dir).unwrap();
        let (id, f) = create_tmp(&dir).unwrap();
        let mut f = io::BufWriter::new(f);
        f.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
        let env = sample().env;
        commit(&dir, &id, f, 20, &env).unwrap();
        let (mut f, se) = open_message(&dir, &id).unwrap();
        assert_eq!(se.env, env);
        assert_eq!(se.size, 20);
        let mut data = vec![0u8; se.size as usize];
        f.read_exact(&mut data).unwrap();
        assert_eq!(&data, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(list_ids(&dir).unwrap(), vec![id.clone()]);
        // A truncated file is refused.
        let p = queue_path(&dir, &id);
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        assert!(open_message(&dir, &id).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
