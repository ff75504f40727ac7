//! Delivery status notifications (RFC 3464): a multipart/report with a
//! human-readable part, a message/delivery-status part and the original
//! message (message/rfc822) or its headers (text/rfc822-headers). Pure:
//! the runner queues what `compose` returns with the null sender.

use std::fmt::Write as _;

use crate::calendar::rfc5322_date;

/// The DSN Action field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnAction {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl DsnAction {
    fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
        }
    }
}

/// One recipient's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsnRcpt {
    pub address: String,
    /// ORCPT as given ("rfc822;addr").
    pub orcpt: Option<String>,
    pub action: DsnAction,
    /// The reply or our explanation, e.g. "550 5.1.1 no such user".
    pub diagnostic: String,
    /// "host[ip]:port" for remote attempts.
    pub remote_mta: Option<String>,
    pub last_attempt: u64,
}

/// What a DSN is about.
pub struct DsnInput<'a> {
    /// Our hostname (Reporting-MTA, From: MAILER-DAEMON@...).
    pub reporting_mta: &'a str,
    /// The original sender: the DSN's recipient.
    pub to: &'a str,
    pub queue_id: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: u64,
    pub received_from: &'a str,
    pub rcpts: &'a [DsnRcpt],
    /// The original message (CRLF lines).
    pub original: &'a [u8],
    /// Return the full message (else only its headers).
    pub full: bool,
    pub now: u64,
    /// A unique token for the boundary and Message-ID.
    pub unique: &'a str,
}

/// Full messages larger than this are returned as headers only.
pub const MAX_RETURNED: usize = 10 * 1024 * 1024;

/// Whether a "delayed" DSN is due (NOTIFY=DELAY): once, after this long in
/// the queue, unless the lifetime is shorter.
pub fn delay_warning_due(created: u64, now: u64, lifetime: u64, already: bool) -> bool {
    const WARN_AFTER: u64 = 4 * 3600;
    !already && lifetime > WARN_AFTER && now >= created.saturating_add(WARN_AFTER)
}

/// The enhanced status code in a reply text, or one derived from its basic
/// code ("550 ..." -> "5.0.0"); `fallback` when there is neither.
pub fn status_of(text: &str, fallback: &str) -> String {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    let candidates = std::iter::once(first).chain(words.next());
    for w in candidates {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return w.to_string();
        }
    }
    match first.as_bytes().first() {
        Some(b'2') if first.len() == 3 => "2.0.0".into(),
        Some(b'4') if first.len() == 3 => "4.0.0".into(),
        Some(b'5') if first.len() == 3 => "5.0.0".into(),
        _ => fallback.into(),
    }
}

/// The header section of a message (up to and including the blank line).
pub fn headers_of(msg: &[u8]) -> &[u8] {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| msg.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(msg.len());
    &msg[..end.min(1024 * 1024)]
}

/// Keep a header field value on one line and printable.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Compose the DSN message (CRLF lines).
pub fn compose(i: &DsnInput) -> Vec<u8> {
    let any = |a: DsnAction| i.rcpts.iter().any(|r| r.action == a);
    let subject = if any(DsnAction::Failed) {
        "Undelivered Mail Returned to Sender"
    } else if any(DsnAction::Delayed) {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };
    let boundary = format!("{}/{}", i.unique, i.reporting_mta);
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{to}>\r\n\
         Subject: {subject}\r\n\
         Date: {date}\r\n\
         Message-ID: <{unique}.dsn@{mta}>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\
         \r\n\
         This is a MIME-encapsulated message.\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Description: Notification\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n",
        mta = clean(i.reporting_mta),
        to = clean(i.to),
        date = rfc5322_date(i.now),
        unique = clean(i.unique),
    );
    let _ = write!(
        m,
        "This is the mail system at host {}.\r\n\r\n",
        clean(i.reporting_mta)
    );
    if any(DsnAction::Failed) {
        m.push_str(
            "I'm sorry to have to inform you that your message could not\r\n\
             be delivered to one or more recipients. It's attached below.\r\n\r\n",
        );
    } else if any(DsnAction::Delayed) {
        m.push_str(
            "Your message could not be delivered yet to one or more recipients.\r\n\
             It will be retried until it is too old; you need not send it again.\r\n\r\n",
        );
    } else {
        m.push_str("Your message was successfully delivered to the recipients below.\r\n\r\n");
    }
    for r in i.rcpts {
        let _ = write!(
            m,
            "<{}>: {}: {}\r\n",
            clean(&r.address),
            r.action.as_str(),
            clean(&r.diagnostic)
        );
    }
    // The machine-readable part.
    let _ = write!(
        m,
        "\r\n--{boundary}\r\n\
         Content-Description: Delivery report\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; {mta}\r\n\
         X-Queue-ID: {id}\r\n",
        mta = clean(i.reporting_mta),
        id = clean(i.queue_id),
    );
    if let Some(e) = i.envid {
        let _ = write!(m, "Original-Envelope-Id: {}\r\n", clean(e));
    }
    if !i.received_from.is_empty() {
        let _ = write!(m, "Received-From-MTA: dns; {}\r\n", clean(i.received_from));
    }
    let _ = write!(m, "Arrival-Date: {}\r\n", rfc5322_date(i.arrival));
    for r in i.rcpts {
        m.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            let o = if o.contains(';') {
                o.clone()
            } else {
                format!("rfc822;{o}")
            };
            let _ = write!(m, "Original-Recipient: {}\r\n", clean(&o));
        }
        let fallback = match r.action {
            DsnAction::Failed => "5.0.0",
            DsnAction::Delayed => "4.0.0",
            _ => "2.0.0",
        };
        let mut status = status_of(&r.diagnostic, fallback);
        // The status class must agree with the action.
        if r.action == DsnAction::Failed && status.starts_with('2') {
            status = "5.0.0".into();
        }
        let _ = write!(
            m,
            "Final-Recipient: rfc822; {}\r\nAction: {}\r\nStatus: {}\r\n",
            clean(&r.address),
            r.action.as_str(),
            status
        );
        if let Some(mta) = &r.remote_mta {
            let host = mta.split('[').next().unwrap_or(mta);
            let _ = write!(m, "Remote-MTA: dns; {}\r\n", clean(host));
        }
        if !r.diagnostic.is_empty() {
            let kind = if r
                .diagnostic
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_digit())
                && r.diagnostic.as_bytes().get(3) == Some(&b' ')
            {
                "smtp"
            } else {
                "x-unix"
            };
            let _ = write!(m, "Diagnostic-Code: {kind}; {}\r\n", clean(&r.diagnostic));
        }
        if r.last_attempt > 0 {
            let _ = write!(m, "Last-Attempt-Date: {}\r\n", rfc5322_date(r.last_attempt));
        }
    }
    let full = i.full && i.original.len() <= MAX_RETURNED;
    let _ = write!(
        m,
        "\r\n--{boundary}\r\nContent-Description: {}\r\nContent-Type: {}\r\n\r\n",
        if full {
            "Undelivered Message"
        } else {
            "Undelivered Message Headers"
        },
        if full {
            "message/rfc822"
        } else {
            "text/rfc822-headers"
        },
    );
    let mut out = m.into_bytes();
    let orig = if full {
        i.original
    } else {
        headers_of(i.original)
    };
    out.extend_from_slice(orig);
    if !orig.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_warning_once() {
        assert!(!delay_warning_due(0, 100, 432000, false));
        assert!(delay_warning_due(0, 4 * 3600, 432000, false));
        assert!(!delay_warning_due(0, 4 * 3600, 432000, true));
        assert!(!delay_warning_due(0, 5 * 3600, 3600, false));
    }

    fn input<'a>(rcpts: &'a [DsnRcpt], full: bool) -> DsnInput<'a> {
        DsnInput {
            reporting_mta: "mx.lab.test",
            to: "sender@lab.test",
            queue_id: "ABC",
            envid: Some("env-1"),
            arrival: 1_700_000_000,
            received_from: "client [127.0.0.1]",
            rcpts,
            original: b"Subject: hello\r\nFrom: a@b\r\n\r\nbody line\r\n",
            full,
            now: 1_700_000_100,
            unique: "U1",
        }
    }

    #[test]
    fn failure_report_structure() {
        let rcpts = [DsnRcpt {
            address: "x@remote.test".into(),
            orcpt: Some("rfc822;X@remote.test".into()),
            action: DsnAction::Failed,
            diagnostic: "550 5.1.1 <x@remote.test>: no such user".into(),
            remote_mta: Some("mx.remote.test[127.0.0.1]:25".into()),
            last_attempt: 1_700_000_050,
        }];
        let out = String::from_utf8(compose(&input(&rcpts, true))).unwrap();
        assert!(out.contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"U1/mx.lab.test\""));
        assert!(out.contains("Subject: Undelivered Mail Returned to Sender\r\n"));
        assert!(out.contains("Reporting-MTA: dns; mx.lab.test\r\n"));
        assert!(out.contains("Original-Envelope-Id: env-1\r\n"));
        assert!(out.contains("Original-Recipient: rfc822;X@remote.test\r\n"));
        assert!(out.contains(
            "Final-Recipient: rfc822; x@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(out.contains("Remote-MTA: dns; mx.remote.test\r\n"));
        assert!(out.contains("Diagnostic-Code: smtp; 550 5.1.1"));
        assert!(out.contains("Content-Type: message/rfc822\r\n\r\nSubject: hello\r\n"));
        assert!(out.contains("body line"));
        assert!(out.ends_with("--U1/mx.lab.test--\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'), "bare LF in DSN");
        // Parts are separated by the boundary exactly three times plus the end.
        assert_eq!(out.matches("--U1/mx.lab.test\r\n").count(), 3);
    }

    #[test]
    fn headers_only_and_success() {
        let rcpts = [DsnRcpt {
            address: "demo@lab.test".into(),
            orcpt: None,
            action: DsnAction::Delivered,
            diagnostic: "delivered to mailbox".into(),
            remote_mta: None,
            last_attempt: 0,
        }];
        let out = String::from_utf8(compose(&input(&rcpts, false))).unwrap();
        assert!(out.contains("Subject: Successful Mail Delivery Report"));
        assert!(out.contains("Action: delivered\r\nStatus: 2.0.0\r\n"));
        assert!(out.contains(
            "Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\nFrom: a@b\r\n\r\n"
        ));
        assert!(!out.contains("body line"));
        assert!(out.contains("Diagnostic-Code: x-unix; delivered to mailbox"));
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_of("550 5.7.1 no", "5.0.0"), "5.7.1");
        assert_eq!(status_of("451 try later", "4.0.0"), "4.0.0");
        assert_eq!(status_of("554 go away", "5.0.0"), "5.0.0");
        assert_eq!(status_of("4.4.1 connect to x: refused", "4.0.0"), "4.4.1");
        assert_eq!(status_of("garbage", "4.4.7"), "4.4.7");
    }
}
