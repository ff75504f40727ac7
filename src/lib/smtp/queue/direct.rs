//! Direct delivery: the session itself delivers a small, purely local
//! message before it answers 250, instead of spooling it for the runner.
//! The guarantee is the queue's: each mailbox has the message durably
//! (mail::deliver fsyncs) before the session goes on, and whatever could not
//! be delivered is committed to the queue before the 250.

use std::io;
use std::time::{Duration, Instant};

use super::client::Outcome;
use super::local;
use super::{Envelope, Recipient, Route};
use crate::auth::{self, Authenticator};
use crate::mail::Location;

/// Time a session spends delivering one message before it leaves the
/// remaining recipients to the queue: the client waits for the 250 (RFC
/// 5321 gives it 10 minutes), and a contended mbox lock alone may take a
/// minute.
const BUDGET: Duration = Duration::from_secs(60);

/// Whether the session may deliver `env` itself: every recipient is a
/// local mailbox and none asked for a success DSN (composing DSNs is the
/// runner's job).
pub fn eligible(env: &Envelope) -> bool {
    !env.recipients.is_empty()
        && env
            .recipients
            .iter()
            .all(|r| matches!(r.route, Route::Local { .. }) && !r.notify.success)
}

/// Deliver `data` (the message as it would be spooled: CRLF lines, our
/// Received header first) to every recipient of `env`, each time acting as
/// the recipient. Deliveries are logged as the runner logs them. Returns
/// the recipients left for the queue (DSN parameters kept): those whose
/// account or mailbox failed, to be retried or bounced by the runner.
pub fn deliver(
    auth: &Authenticator,
    mail_location: &Location,
    id: &str,
    env: &Envelope,
    data: &[u8],
) -> Vec<Recipient> {
    let started = Instant::now();
    let mut left = Vec::new();
    for r in &env.recipients {
        if started.elapsed() > BUDGET {
            log::info!("{id}: to=<{}>: left to the queue: out of time", r.address);
            left.push(r.clone());
            continue;
        }
        let (outcome, text) = deliver_one(auth, mail_location, id, &env.sender, r, data);
        if outcome != Outcome::Sent {
            log::info!("{id}: to=<{}>: left to the queue: {text}", r.address);
            left.push(r.clone());
        }
    }
    left
}

/// Deliver `data` to one recipient, acting as it, and log a delivery as
/// the runner does (a failure is the caller's to log); a recipient that is
/// not a local mailbox is Deferred (the queue's).
pub fn deliver_one(
    auth: &Authenticator,
    mail_location: &Location,
    id: &str,
    sender: &str,
    r: &Recipient,
    data: &[u8],
) -> (Outcome, String) {
    let Route::Local {
        account,
        mailbox_spec,
    } = &r.route
    else {
        return (Outcome::Deferred, "4.4.0 not a local mailbox".into());
    };
    let (outcome, text) = match local::lookup(auth, account) {
        Err(failed) => failed,
        // An smtpd session is a single-threaded process (it starts no
        // threads), so switching the process's effective ids for the
        // delivery affects nothing else. Without root this only works
        // for our own uid; other accounts are the queue's (which will
        // say why).
        Ok(acct) => match auth::act_as(&acct) {
            Ok(_acting) => {
                let spec = mailbox_spec.as_deref();
                local::deliver_to(&acct, spec, mail_location, sender, data)
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                (Outcome::Deferred, format!("4.3.0 not delivered here: {e}"))
            }
            Err(e) => (
                Outcome::Deferred,
                format!("4.3.0 cannot act as {account}: {e}"),
            ),
        },
    };
    if outcome == Outcome::Sent {
        log::info!(
            "{id}: to=<{}>, relay=local, status=sent ({text})",
            r.address
        );
    }
    (outcome, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::queue::Notify;

    fn rcpt(route: Route, success: bool) -> Recipient {
        Recipient {
            address: "x@lab.test".into(),
            route,
            notify: Notify {
                success,
                ..Notify::default()
            },
            orcpt: None,
        }
    }

    fn local() -> Route {
        Route::Local {
            account: "x".into(),
            mailbox_spec: None,
        }
    }

    #[test]
    fn only_purely_local_mail_without_success_dsn() {
        let mut env = Envelope::default();
        assert!(!eligible(&env));
        env.recipients = vec![rcpt(local(), false), rcpt(local(), false)];
        assert!(eligible(&env));
        env.recipients.push(rcpt(Route::Remote, false));
        assert!(!eligible(&env));
        env.recipients = vec![rcpt(local(), false), rcpt(local(), true)];
        assert!(!eligible(&env));
    }

    #[test]
    fn failures_are_left_with_their_parameters() {
        let dir =
            std::env::temp_dir().join(format!("classicd-direct-{}", super::super::spool::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = dir.join("passwd");
        std::fs::write(&passwd, "").unwrap();
        let auth = Authenticator::new(Some(passwd), "smtp");
        let mut r = rcpt(local(), false);
        r.orcpt = Some("rfc822;X@lab.test".into());
        r.notify.never = true;
        let env = Envelope {
            recipients: vec![r.clone()],
            ..Envelope::default()
        };
        // No such account: the runner will bounce it.
        let left = deliver(
            &auth,
            &Location::parse("maildir:~/Maildir").unwrap(),
            "ID",
            &env,
            b"Subject: x\r\n\r\nhi\r\n",
        );
        assert_eq!(left, vec![r]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
