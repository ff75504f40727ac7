//! Local delivery: in a worker process, open the queued messages, become
//! the recipient (when running as root), and hand each message with LF line
//! endings to the mail module, which makes it durable before returning.
//! The account lookup and the delivery itself are shared with the session's
//! direct delivery (`direct.rs`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::client::Outcome;
use super::spool;
use crate::auth::{self, Account, AuthError, Authenticator};
use crate::mail::{self, Location};
use crate::wire::CrlfToLfReader;

/// A reader over a byte range of a file, by offset (several readers may
/// share one file).
pub struct At<F> {
    pub file: F,
    pub pos: u64,
    pub end: u64,
}

impl<F: std::borrow::Borrow<File>> Read for At<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want = buf.len().min((self.end - self.pos) as usize);
        let n = self.file.borrow().read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "queued message shorter than recorded",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// One recipient of one message for this account.
#[derive(Clone, Debug)]
pub struct LocalTask {
    pub id: String,
    pub rcpt: usize,
    pub account: String,
    pub mailbox_spec: Option<String>,
    pub return_path: String,
    pub size: u64,
}

/// The account a local recipient names, or how its deliveries end: it is
/// gone for good (Failed), or the account store is out of reach (Deferred).
pub fn lookup(auth: &Authenticator, account: &str) -> Result<Account, (Outcome, String)> {
    match auth.lookup(account) {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err((
            Outcome::Failed,
            format!("550 5.1.1 <{account}>: no such local account"),
        )),
        Err(AuthError::Unavailable(why)) => Err((
            Outcome::Deferred,
            format!("4.3.0 account lookup failed: {why}"),
        )),
        Err(_) => Err((Outcome::Deferred, "4.3.0 account lookup failed".into())),
    }
}

/// Deliver one message (CRLF lines, as spooled) into the account's mailbox
/// (`mailbox_spec`, a ~/.forward entry, else `mail_location`), with the
/// caller's privileges: the caller has become the account. Sent only once
/// the mailbox has it durably.
pub fn deliver_to(
    acct: &Account,
    mailbox_spec: Option<&str>,
    mail_location: &Location,
    return_path: &str,
    message: impl Read,
) -> (Outcome, String) {
    let mailbox = match mailbox_spec {
        Some(spec) => mail::mailbox_for(spec, acct),
        None => mail_location.mailbox_for(acct),
    };
    let mailbox = match mailbox {
        Ok(m) => m,
        Err(e) => return (Outcome::Deferred, format!("4.3.5 {e}")),
    };
    let mut reader = CrlfToLfReader::new(message);
    match mail::deliver(&mailbox, return_path, &mut reader) {
        Ok(()) => (
            Outcome::Sent,
            format!("250 2.0.0 delivered to {}", mailbox.path().display()),
        ),
        Err(e) => (
            Outcome::Deferred,
            format!("4.2.0 delivery to {} failed: {e}", mailbox.path().display()),
        ),
    }
}

/// Deliver `tasks` for `account`. Runs in a worker process: may drop
/// privileges for good. `report` is called once per task.
pub fn run_job(
    auth: &Authenticator,
    mail_location: &Location,
    queue_dir: &std::path::Path,
    account: &str,
    tasks: &[LocalTask],
    after_drop: &dyn Fn(),
    report: &mut dyn FnMut(&LocalTask, Outcome, String),
) {
    let acct = match lookup(auth, account) {
        Ok(a) => a,
        Err((outcome, text)) => {
            for t in tasks {
                report(t, outcome, text.clone());
            }
            return;
        }
    };
    // Open everything while we still may.
    let files: Vec<io::Result<File>> = tasks
        .iter()
        .map(|t| File::open(spool::queue_path(queue_dir, &t.id)))
        .collect();
    if auth::running_as_root() {
        if let Err(e) = auth::drop_privileges(&acct) {
            for t in tasks {
                report(
                    t,
                    Outcome::Deferred,
                    format!("4.3.0 cannot switch to {account}: {e}"),
                );
            }
            return;
        }
    }
    after_drop();
    for (t, f) in tasks.iter().zip(files) {
        let file = match f {
            Ok(f) => f,
            Err(e) => {
                report(
                    t,
                    Outcome::Deferred,
                    format!("4.3.0 cannot open the queued message: {e}"),
                );
                continue;
            }
        };
        let message = At {
            file: &file,
            pos: 0,
            end: t.size,
        };
        let spec = t.mailbox_spec.as_deref();
        let (outcome, text) = deliver_to(&acct, spec, mail_location, &t.return_path, message);
        report(t, outcome, text);
    }
}
