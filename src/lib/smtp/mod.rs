#![forbid(unsafe_code)]
//! smtpd: the SMTP MTA (RFC 5321) and message submission (RFC 6409).
//!
//! The receiving side lives here: `command` parses lines, `state` runs the
//! dialogue, `data` parses the message body, `aliases` expands local
//! recipients, and `session` drives it all over a connection: it delivers
//! small local mail itself (`queue::direct`) and hands the rest to the
//! durable `queue`, whose runner delivers it.

pub mod address;
pub mod aliases;
pub mod command;
pub mod data;
pub mod queue;
pub mod reply;
pub use crate::auth::sasl;
mod session;
pub mod state;

use crate::runtime::config::{ConfigError, KeySpec, Kind, Settings};
use crate::runtime::{ExtraMode, Handler, Service};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "hostname",
        Kind::Text,
        "",
        "name in the banner, EHLO and Received (empty: the host's FQDN)",
    ),
    KeySpec::new(
        "local_domains",
        Kind::List,
        "",
        "domains delivered here (empty: the hostname)",
    ),
    KeySpec::new(
        "mail_location",
        Kind::Text,
        "maildir:~/Maildir",
        "maildir:PATH or mbox:PATH; ~ is the home, %u the name",
    ),
    KeySpec::new(
        "queue_dir",
        Kind::Path,
        "/var/spool/smtpd",
        "the spool for mail in transit",
    ),
    KeySpec::new("aliases_file", Kind::Path, "/etc/aliases", "aliases(5)"),
    KeySpec::new(
        "relay_from",
        Kind::Networks,
        "127.0.0.0/8, ::1/128",
        "networks that may relay without AUTH",
    ),
    KeySpec::new(
        "relay_host",
        Kind::Text,
        "",
        "send all remote mail through HOST:PORT (empty: MX lookup)",
    ),
    KeySpec::new(
        "transport_file",
        Kind::Path,
        "",
        "lines 'DOMAIN HOST:PORT' routing a domain to a next hop",
    ),
    KeySpec::new(
        "max_message_size",
        Kind::Uint,
        "36700160",
        "largest message accepted, bytes",
    ),
    KeySpec::new(
        "retry_interval",
        Kind::Duration,
        "300",
        "retry delay for deferred mail",
    ),
    KeySpec::new(
        "queue_lifetime",
        Kind::Duration,
        "432000",
        "give-up age for deferred mail",
    ),
    KeySpec::new("vrfy", Kind::Bool, "no", "answer VRFY truthfully"),
    KeySpec::new("expn", Kind::Bool, "no", "answer EXPN truthfully"),
    KeySpec::new(
        "submission_listen",
        Kind::Addrs,
        "",
        "addresses where AUTH is required before MAIL (587)",
    ),
];

const MODES: &[ExtraMode] = &[
    ExtraMode {
        long: "queue",
        usage: "list the mail queue and exit",
        run: queue::list_queue_mode,
    },
    ExtraMode {
        long: "flush",
        usage: "attempt delivery of all queued mail now and exit",
        run: queue::flush_mode,
    },
];

pub static SERVICE: Service = Service {
    name: "smtpd",
    port: 25,
    pam_service: "smtp",
    log_facility: "mail",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &["submission_listen"],
    line_max: 4096,
    busy_reply: b"421 4.3.2 <host> Too many connections, try again later\r\n",
    handler: Handler::Tcp(session::serve),
    check,
    extra_modes: MODES,
    companion: Some(queue::run_queue),
    // Like Postfix's smtpd. A session acts as a recipient only while it
    // delivers locally, and returns to root or aborts (auth::act_as).
    max_use: 100,
};

fn check(s: &Settings) -> Result<(), ConfigError> {
    let loc = s.text("mail_location");
    let path = loc
        .strip_prefix("maildir:")
        .or_else(|| loc.strip_prefix("mbox:"))
        .unwrap_or("");
    if path.is_empty() {
        return Err(ConfigError {
            origin: s.origin("mail_location"),
            key: "mail_location".into(),
            message: format!("'{loc}' is not maildir:PATH or mbox:PATH"),
        });
    }
    for d in s.list("local_domains") {
        if !address::valid_domain(d) {
            return Err(ConfigError {
                origin: s.origin("local_domains"),
                key: "local_domains".into(),
                message: format!("'{d}' is not a domain name"),
            });
        }
    }
    if let Some(h) = s.opt_text("hostname") {
        if !address::valid_domain(h) || h.starts_with('[') {
            return Err(ConfigError {
                origin: s.origin("hostname"),
                key: "hostname".into(),
                message: format!("'{h}' is not a host name"),
            });
        }
    }
    Ok(())
}

/// The name this MTA goes by: `hostname`, else the host's fully qualified
/// name (gethostname, completed from /etc/hosts when it has no dot).
pub fn hostname(s: &Settings) -> String {
    if let Some(h) = s.opt_text("hostname") {
        return h.to_string();
    }
    let short = crate::runtime::hostname();
    if short.contains('.') {
        return short;
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            if names.contains(&short.as_str()) {
                if let Some(fqdn) = names.iter().find(|n| n.contains('.')) {
                    return fqdn.to_string();
                }
            }
        }
    }
    short
}

/// The domains delivered here, lower-cased: `local_domains`, else the
/// hostname.
pub fn local_domains(s: &Settings) -> Vec<String> {
    let mut d: Vec<String> = s
        .list("local_domains")
        .iter()
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if d.is_empty() {
        d.push(hostname(s).to_ascii_lowercase());
    }
    d
}
