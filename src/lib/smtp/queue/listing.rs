//! `smtpd --queue` (like mailq) and `smtpd --flush` (like sendmail -q).

use std::fmt::Write as _;
use std::path::Path;

use super::runner;
use super::spool::{self, RcptStatus, State, StoredEnvelope};
use crate::calendar::rfc5322_date;
use crate::runtime::config::Settings;
use crate::smtp::Config;

/// One message as the listing shows it.
pub fn format_entry(id: &str, se: &StoredEnvelope, st: &State, now: u64) -> String {
    let mut s = String::new();
    let sender = if se.env.sender.is_empty() {
        "<>".to_string()
    } else {
        se.env.sender.clone()
    };
    let _ = writeln!(
        s,
        "{id:<24} {:>9}  {}  {}",
        se.size,
        rfc5322_date(se.created),
        sender
    );
    if let Some(e) = &st.last_error {
        let next = if st.next_attempt > now {
            format!(", next try in {} s", st.next_attempt - now)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{:<36}({} attempt{}{next}: {})",
            "",
            st.attempts,
            if st.attempts == 1 { "" } else { "s" },
            e.chars().take(200).collect::<String>()
        );
    }
    for (i, r) in se.env.recipients.iter().enumerate() {
        let mark = match st.status(i) {
            RcptStatus::Pending => "",
            RcptStatus::Sent => " (sent)",
            RcptStatus::Failed => " (bounced)",
        };
        let _ = writeln!(s, "{:<36}{}{mark}", "", r.address);
    }
    s
}

/// The whole listing.
pub fn listing(dir: &Path) -> Result<String, String> {
    let ids = match spool::list_ids(dir) {
        Ok(ids) => ids,
        // Nothing was ever queued here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    if ids.is_empty() {
        return Ok("Mail queue is empty\n".into());
    }
    let now = spool::now();
    let mut out = format!(
        "{:<24} {:>9}  {:<31}  {}\n",
        "-Queue ID-", "-Size-", "-Arrival Time-", "-Sender/Recipient-"
    );
    let mut total = 0u64;
    let mut n = 0;
    for id in ids {
        let (_, se) = match spool::open_message(dir, &id) {
            Ok(x) => x,
            // Delivered while we were listing, or damaged.
            Err(_) => continue,
        };
        let st = spool::read_state(dir, &id);
        out.push_str(&format_entry(&id, &se, &st, now));
        out.push('\n');
        total += se.size;
        n += 1;
    }
    let _ = writeln!(
        out,
        "-- {} Kbytes in {n} Request{}.",
        total.div_ceil(1024),
        if n == 1 { "" } else { "s" }
    );
    Ok(out)
}

pub fn list_queue_mode(settings: &Settings, _args: &[String]) -> i32 {
    let cfg: &Config = settings.daemon();
    match listing(&cfg.queue_dir) {
        Ok(s) => {
            print!("{s}");
            0
        }
        Err(e) => {
            eprintln!("smtpd: cannot list the queue: {e}");
            1
        }
    }
}

/// Retry every queued message now: through the running queue runner when
/// there is one, else in this process (inetd mode, from cron).
pub fn flush_mode(settings: &Settings, _args: &[String]) -> i32 {
    let cfg: &Config = settings.daemon();
    if runner::kick_flush(&cfg.queue_dir) {
        println!("smtpd: the queue runner is retrying every message");
        return 0;
    }
    match runner::flush_once(settings) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("smtpd: cannot run the queue: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::queue::{Envelope, Notify, Recipient, Route};

    #[test]
    fn entry_shows_sender_error_and_pending() {
        let se = StoredEnvelope {
            env: Envelope {
                sender: String::new(),
                recipients: vec![
                    Recipient {
                        address: "a@x.test".into(),
                        route: Route::Remote,
                        notify: Notify::default(),
                        orcpt: None,
                    },
                    Recipient {
                        address: "b@x.test".into(),
                        route: Route::Remote,
                        notify: Notify::default(),
                        orcpt: None,
                    },
                ],
                ..Envelope::default()
            },
            created: 0,
            size: 1234,
        };
        let mut st = State {
            attempts: 2,
            next_attempt: 700,
            last_error: Some("451 4.3.0 try later".into()),
            ..State::default()
        };
        st.set(1, RcptStatus::Sent);
        let s = format_entry("ID1", &se, &st, 100);
        assert!(s.starts_with("ID1"));
        assert!(s.contains("1234"));
        assert!(s.contains("<>"));
        assert!(s.contains("(2 attempts, next try in 600 s: 451 4.3.0 try later)"));
        assert!(s.contains("a@x.test\n"));
        assert!(s.contains("b@x.test (sent)"));
    }
}
