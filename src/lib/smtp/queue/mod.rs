#![forbid(unsafe_code)]
//! The mail queue: a durable spool, the queue runner that delivers what is
//! in it (local mailboxes, or remote hosts over SMTP with MX lookup), retries
//! with backoff, DSN bounces, and the admin's listing (`smtpd --queue`).
//!
//! # How mail flows
//!
//! A session writes a message into [`Queue::begin`]'s [`Incoming`], which
//! holds it in memory up to [`MEMORY_LIMIT`] and past that streams it into
//! a file in `tmp/`. At the end of DATA:
//!
//! - Direct delivery ([`direct`]): a message still in memory whose
//!   recipients are all local, none asking NOTIFY=SUCCESS, is delivered by
//!   the session itself, acting as each recipient in turn
//!   ([`crate::auth::act_as`]); the mail module fsyncs each mailbox. It
//!   never touches the spool unless a delivery fails: those recipients
//!   alone are committed, as below, for the runner to retry or bounce.
//! - Everything else (remote recipients, success DSNs, big messages) is
//!   committed: [`Incoming::commit`] fsyncs the message with its envelope,
//!   renames it into `q/` and fsyncs the directory before it returns the
//!   queue id, and wakes the runner.
//!
//! Either way the session answers 250 only once each recipient is in its
//! mailbox or in the queue on stable storage. The runner (the standalone
//! master's companion process, [`run_queue`]) delivers local mail at once,
//! in parallel worker processes, and remote mail through `relay_host`,
//! `transport_file` or DNS MX records.
//!
//! # Without a master (inetd mode)
//!
//! There is no runner under inetd. After committing (direct deliveries need
//! nothing more), the session calls [`deliver_now`]: when a runner answers
//! the wake-up it does nothing more, otherwise it forks a detached one-shot
//! delivery of that message. Mail
//! that is deferred stays in the spool and is retried by `smtpd --flush`
//! (the equivalent of `sendmail -q`), run from cron every few minutes.
//!
//! # Spool layout (`queue_dir`)
//!
//! - `tmp/`: messages being received (only those past the memory limit,
//!   and others for the moment of their commit); anything old is garbage.
//! - `q/ID`: a committed message: the data (CRLF lines), then the envelope,
//!   then a fixed-size trailer (see `spool.rs`).
//! - `st/ID`: delivery state once something happened (recipients done,
//!   attempts, next retry, last error), replaced atomically.
//! - `kick`: the runner's wake-up FIFO; `lock`: flock held by the runner
//!   (exclusive), by `--flush` (exclusive) and by one-shot deliveries (shared).

pub mod bounce;
pub mod client;
pub mod direct;
pub mod dns;
mod dsn_route;
mod kick;
mod listing;
pub mod lmtp;
mod lmtp_deliver;
mod local;
mod relay;
pub mod route;
mod runner;
pub mod spool;
mod worker;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::AsideFile;
use crate::runtime::config::Settings;

pub use listing::{flush_mode, list_queue_mode};
pub use runner::{deliver_now, run_queue};

/// The spool in `queue_dir`.
pub struct Queue {
    dir: PathBuf,
}

impl Queue {
    /// Open the spool, creating its directories (mode 0700) when missing.
    pub fn open(dir: &Path) -> io::Result<Queue> {
        spool::create_dirs(dir)?;
        Ok(Queue {
            dir: dir.to_path_buf(),
        })
    }

    /// Start receiving a message. Nothing touches the disk yet: see
    /// [`Incoming`].
    pub fn begin(&self) -> io::Result<Incoming> {
        Ok(Incoming {
            dir: self.dir.clone(),
            id: spool::new_id(),
            store: Store::Memory(Vec::new()),
            written: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Message data kept in memory before a spool file is created. Most mail is
/// smaller: then a message delivered during the session never touches the
/// spool, and one that is committed is written in one go.
pub const MEMORY_LIMIT: usize = 256 * 1024;

/// Write buffer of a spilled message.
const FILE_BUFFER: usize = 64 * 1024;

enum Store {
    /// Nothing on disk yet; never more than MEMORY_LIMIT bytes.
    Memory(Vec<u8>),
    /// Streamed into `tmp/ID` (removed when dropped uncommitted).
    File(io::BufWriter<AsideFile>),
    /// Committed or thrown away.
    Done,
}

/// A message being received, with the queue id it was given at
/// [`Queue::begin`] (it goes into the Received header). The data stays in
/// memory up to [`MEMORY_LIMIT`]; past that, or at [`Incoming::commit`], it
/// goes to a file in the spool's tmp area. Dropping it without `commit`
/// removes that file (as `abort` does).
pub struct Incoming {
    dir: PathBuf,
    id: String,
    store: Store,
    written: u64,
}

impl Write for Incoming {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Store::Memory(m) = &self.store {
            if m.len() + buf.len() > MEMORY_LIMIT {
                self.spill(FILE_BUFFER)?;
            }
        }
        let n = match &mut self.store {
            Store::Memory(m) => {
                m.extend_from_slice(buf);
                buf.len()
            }
            Store::File(out) => out.write(buf)?,
            Store::Done => return Err(io::Error::other("message already finished")),
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.store {
            Store::File(o) => o.flush(),
            _ => Ok(()),
        }
    }
}

impl Incoming {
    /// The queue id this message will have.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Bytes of message data written so far.
    pub fn size(&self) -> u64 {
        self.written
    }

    /// The whole message, while it is still held in memory only.
    pub fn in_memory(&self) -> Option<&[u8]> {
        match &self.store {
            Store::Memory(m) => Some(m),
            _ => None,
        }
    }

    /// Move the data held in memory into a new `tmp/ID`. Should the id be
    /// taken meanwhile (it was not reserved on disk), the message gets a
    /// fresh one rather than replace another message; only the Received
    /// header keeps the first, which the log line ties to the new.
    fn spill(&mut self, buffer: usize) -> io::Result<()> {
        let Store::Memory(mem) = &self.store else {
            return Ok(());
        };
        let file = loop {
            match spool::create_tmp_for(&self.dir, &self.id) {
                Ok(f) => break f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let fresh = spool::new_id();
                    log::warn!("{}: queue id in use; message stored as {fresh}", self.id);
                    self.id = fresh;
                }
                Err(e) => return Err(e),
            }
        };
        let mut out = io::BufWriter::with_capacity(buffer, file);
        let written = out.write_all(mem);
        // From here on the file is ours to remove (Drop, abort).
        self.store = Store::File(out);
        written
    }

    /// Make the message durable (fsync data + envelope, atomic rename, fsync
    /// dir) and return its queue id. Only after this returns may the server
    /// answer 250. The runner is woken for this message.
    pub fn commit(mut self, env: &Envelope) -> io::Result<String> {
        // Room for the envelope after the data: a small message is one
        // write.
        let room = self.in_memory().map_or(0, |m| m.len() + 4096);
        if let Err(e) = self.spill(room) {
            self.discard();
            return Err(e);
        }
        let Store::File(out) = std::mem::replace(&mut self.store, Store::Done) else {
            return Err(io::Error::other("message already finished"));
        };
        // On error the tmp/ file is gone with `out`.
        spool::commit(&self.dir, &self.id, out, self.written, env)?;
        runner::kick_id(&self.dir, &self.id);
        Ok(std::mem::take(&mut self.id))
    }

    /// Throw the message away.
    pub fn abort(mut self) {
        self.discard();
    }

    /// Dropping the tmp/ file removes it.
    fn discard(&mut self) {
        self.store = Store::Done;
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.discard();
    }
}

/// The envelope of a queued message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; "" is the null sender (bounces).
    pub sender: String,
    pub recipients: Vec<Recipient>,
    /// DSN RET= from MAIL FROM.
    pub ret: Option<Ret>,
    /// DSN ENVID= from MAIL FROM (xtext decoded).
    pub envid: Option<String>,
    pub smtputf8: bool,
    pub body_8bit: bool,
    /// Who handed us the message (for logs and DSNs), e.g.
    /// "client.example [192.0.2.1]".
    pub received_from: String,
}

/// DSN RET=: what a bounce carries of the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub route: Route,
    pub notify: Notify,
    /// DSN ORCPT= (the "type;address" form, xtext decoded).
    pub orcpt: Option<String>,
}

/// DSN NOTIFY=. The default (no NOTIFY given) is failure + delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Default for Notify {
    fn default() -> Notify {
        Notify {
            never: false,
            success: false,
            failure: true,
            delay: true,
        }
    }
}

/// Where a recipient goes, resolved by the receiving side at RCPT time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A local account; `mailbox_spec` overrides `mail_location` (e.g. a
    /// ~/.forward entry naming a mailbox), None means `mail_location`.
    Local {
        account: String,
        mailbox_spec: Option<String>,
    },
    /// Another host: relay_host, transport_file or MX.
    Remote,
}

/// Wake the runner now (best effort): a line on the FIFO `queue_dir/kick`. The
/// runner then rescans the spool. `commit` already wakes it for its message.
pub fn kick(queue_dir: &Path) {
    runner::kick_scan(queue_dir);
}

#[allow(dead_code)]
fn _assert_runner_signature() {
    let _: fn(Arc<Settings>) = run_queue;
    let _: fn(&Settings, &str) = deliver_now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Spool(PathBuf);
    impl Spool {
        fn new() -> Spool {
            let d = std::env::temp_dir().join(format!("classicd-incoming-{}", spool::new_id()));
            spool::create_dirs(&d).unwrap();
            Spool(d)
        }
        fn files(&self, sub: &str) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(self.0.join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }
    impl Drop for Spool {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn env() -> Envelope {
        Envelope {
            sender: "a@b.test".into(),
            recipients: vec![Recipient {
                address: "x@lab.test".into(),
                route: Route::Local {
                    account: "x".into(),
                    mailbox_spec: None,
                },
                notify: Notify::default(),
                orcpt: None,
            }],
            ..Envelope::default()
        }
    }

    fn data(se_size: u64, id: &str, s: &Spool) -> Vec<u8> {
        let (mut f, se) = spool::open_message(&s.0, id).unwrap();
        assert_eq!(se.size, se_size);
        let mut v = vec![0u8; se.size as usize];
        io::Read::read_exact(&mut f, &mut v).unwrap();
        v
    }

    #[test]
    fn small_message_stays_in_memory_until_commit() {
        let s = Spool::new();
        let q = Queue::open(&s.0).unwrap();
        let mut inc = q.begin().unwrap();
        let id = inc.id().to_string();
        inc.write_all(b"Subject: x\r\n\r\n").unwrap();
        inc.write_all(b"hello\r\n").unwrap();
        assert_eq!(inc.in_memory(), Some(&b"Subject: x\r\n\r\nhello\r\n"[..]));
        assert!(s.files("tmp").is_empty() && s.files("q").is_empty());
        assert_eq!(inc.commit(&env()).unwrap(), id);
        assert!(s.files("tmp").is_empty());
        assert_eq!(s.files("q"), vec![id.clone()]);
        assert_eq!(data(21, &id, &s), b"Subject: x\r\n\r\nhello\r\n");
    }

    #[test]
    fn dropped_or_aborted_in_memory_leaves_nothing() {
        let s = Spool::new();
        let q = Queue::open(&s.0).unwrap();
        let mut inc = q.begin().unwrap();
        inc.write_all(b"x\r\n").unwrap();
        inc.abort();
        let mut inc = q.begin().unwrap();
        inc.write_all(b"x\r\n").unwrap();
        drop(inc);
        assert!(s.files("tmp").is_empty() && s.files("q").is_empty());
    }

    #[test]
    fn big_message_spills_to_the_spool_and_memory_stays_bounded() {
        let s = Spool::new();
        let q = Queue::open(&s.0).unwrap();
        let mut inc = q.begin().unwrap();
        let id = inc.id().to_string();
        let chunk = vec![b'y'; 32 * 1024];
        let mut want = Vec::new();
        for _ in 0..MEMORY_LIMIT / chunk.len() {
            inc.write_all(&chunk).unwrap();
            want.extend_from_slice(&chunk);
        }
        // Exactly at the limit: still nothing on disk.
        assert!(inc.in_memory().is_some() && s.files("tmp").is_empty());
        inc.write_all(b"one more\r\n").unwrap();
        want.extend_from_slice(b"one more\r\n");
        assert!(inc.in_memory().is_none());
        assert_eq!(s.files("tmp"), vec![id.clone()]);
        for _ in 0..10 {
            inc.write_all(&chunk).unwrap();
            want.extend_from_slice(&chunk);
        }
        assert_eq!(inc.size(), want.len() as u64);
        assert_eq!(inc.commit(&env()).unwrap(), id);
        assert!(s.files("tmp").is_empty());
        assert_eq!(data(want.len() as u64, &id, &s), want);

        // Aborted after the spill: the tmp file goes.
        let mut inc = q.begin().unwrap();
        inc.write_all(&vec![b'z'; MEMORY_LIMIT + 1]).unwrap();
        assert_eq!(s.files("tmp").len(), 1);
        inc.abort();
        assert!(s.files("tmp").is_empty());
    }

    #[test]
    fn an_id_taken_meanwhile_is_never_clobbered() {
        let s = Spool::new();
        let q = Queue::open(&s.0).unwrap();
        // Someone else's message being received under the same id...
        let mut a = q.begin().unwrap();
        let a_id = a.id().to_string();
        fs::write(s.0.join(spool::TMP).join(&a_id), b"theirs").unwrap();
        a.write_all(b"mine\r\n").unwrap();
        let stored = a.commit(&env()).unwrap();
        assert_ne!(stored, a_id);
        assert_eq!(data(6, &stored, &s), b"mine\r\n");
        assert_eq!(
            fs::read(s.0.join(spool::TMP).join(&a_id)).unwrap(),
            b"theirs"
        );
        // ...or already committed.
        let mut b = q.begin().unwrap();
        let b_id = b.id().to_string();
        fs::write(spool::queue_path(&s.0, &b_id), b"committed").unwrap();
        b.write_all(&vec![b'w'; MEMORY_LIMIT + 1]).unwrap();
        assert_ne!(b.id(), b_id);
        let stored = b.commit(&env()).unwrap();
        assert_ne!(stored, b_id);
        assert_eq!(
            fs::read(spool::queue_path(&s.0, &b_id)).unwrap(),
            b"committed"
        );
        // Only the other message's file is left in tmp/.
        assert_eq!(s.files("tmp"), vec![a_id]);
    }

    #[test]
    fn a_failed_spill_keeps_the_data_and_leaves_nothing() {
        let s = Spool::new();
        let q = Queue::open(&s.0).unwrap();
        let mut inc = q.begin().unwrap();
        inc.write_all(b"kept\r\n").unwrap();
        fs::remove_dir(s.0.join(spool::TMP)).unwrap();
        assert!(inc.write_all(&vec![b'v'; MEMORY_LIMIT]).is_err());
        assert_eq!(inc.in_memory(), Some(&b"kept\r\n"[..]));
        assert!(inc.commit(&env()).is_err());
        assert!(s.files("q").is_empty());
    }
}
