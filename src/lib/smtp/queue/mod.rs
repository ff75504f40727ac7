#![forbid(unsafe_code)]
//! The mail queue: a durable spool, the queue runner that delivers what is
//! in it (local mailboxes, or remote hosts over SMTP with MX lookup), retries
//! with backoff, DSN bounces, and the admin's listing (`smtpd --queue`).
//!
//! # How mail flows
//!
//! A session writes a message into [`Queue::begin`]'s [`Incoming`] and calls
//! [`Incoming::commit`] with the envelope: the message is fsynced, renamed
//! into the spool and the spool directory fsynced before the queue id is
//! returned, so a 250 after DATA is never a lie. `commit` also wakes the
//! runner. The runner (the standalone master's companion process,
//! [`run_queue`]) delivers local mail at once, in parallel worker processes,
//! and remote mail through `relay_host`, `transport_file` or DNS MX records.
//!
//! # Without a master (inetd mode)
//!
//! There is no runner under inetd. After committing, the session calls
//! [`deliver_now`]: when a runner answers the wake-up it does nothing more,
//! otherwise it forks a detached one-shot delivery of that message. Mail
//! that is deferred stays in the spool and is retried by `smtpd --flush`
//! (the equivalent of `sendmail -q`), run from cron every few minutes.
//!
//! # Spool layout (`queue_dir`)
//!
//! - `tmp/`: messages being received; anything old here is garbage.
//! - `q/ID`: a committed message: the data (CRLF lines), then the envelope,
//!   then a fixed-size trailer (see `spool.rs`).
//! - `st/ID`: delivery state once something happened (recipients done,
//!   attempts, next retry, last error), replaced atomically.
//! - `kick`: the runner's wake-up FIFO; `lock`: flock held by the runner
//!   (exclusive), by `--flush` (exclusive) and by one-shot deliveries (shared).

pub mod bounce;
pub mod client;
pub mod dns;
mod dsn_route;
mod kick;
mod listing;
mod local;
mod relay;
pub mod route;
mod runner;
pub mod schedule;
pub mod spool;
mod worker;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    /// Start receiving a message: a new file in the spool's tmp area.
    pub fn begin(&self) -> io::Result<Incoming> {
        let (id, file) = spool::create_tmp(&self.dir)?;
        Ok(Incoming {
            dir: self.dir.clone(),
            id,
            out: Some(io::BufWriter::with_capacity(64 * 1024, file)),
            written: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A message being received: a file in the spool's tmp area. Dropping it
/// without `commit` removes it (as `abort` does).
pub struct Incoming {
    dir: PathBuf,
    id: String,
    out: Option<io::BufWriter<std::fs::File>>,
    written: u64,
}

impl Write for Incoming {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| io::Error::other("message already finished"))?;
        let n = out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
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

    /// Make the message durable (fsync data + envelope, atomic rename, fsync
    /// dir) and return its queue id. Only after this returns may the server
    /// answer 250. The runner is woken for this message.
    pub fn commit(mut self, env: &Envelope) -> io::Result<String> {
        let out = self.out.take().expect("commit once");
        let result = spool::commit(&self.dir, &self.id, out, self.written, env);
        if result.is_err() {
            spool::remove_tmp(&self.dir, &self.id);
        } else {
            runner::kick_id(&self.dir, &self.id);
        }
        result.map(|_| std::mem::take(&mut self.id))
    }

    /// Throw the message away.
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        if self.out.take().is_some() {
            spool::remove_tmp(&self.dir, &self.id);
        }
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

/// The spool directory the settings name.
pub fn queue_dir(settings: &Settings) -> PathBuf {
    route::QueueConfig::from_settings(settings).queue_dir
}

#[allow(dead_code)]
fn _assert_runner_signature() {
    let _: fn(Arc<Settings>) = run_queue;
    let _: fn(&Settings, &str) = deliver_now;
}
