#![forbid(unsafe_code)]
//! pop3d: POP3 (RFC 1939) with CAPA and response codes (RFC 2449), STLS
//! (RFC 2595) and SASL PLAIN (RFC 5034), serving the Maildir or mbox of
//! `mail_location` that smtpd delivers to. See pop3d(8).

pub mod command;
pub mod session;
pub mod state;

use crate::runtime::config::{ConfigError, KeySpec, Kind, Settings};
use crate::runtime::{Handler, Service};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "mail_location",
        Kind::Text,
        "maildir:~/Maildir",
        "maildir:PATH or mbox:PATH; ~ is the account's home, %u its name",
    ),
    KeySpec::new(
        "cleartext_login",
        Kind::Bool,
        "yes",
        "accept USER/PASS and AUTH PLAIN on connections not under TLS",
    ),
];

pub static SERVICE: Service = Service {
    name: "pop3d",
    port: 110,
    pam_service: "pop3",
    log_facility: "mail",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
    handler: Handler::Split(&session::POP3),
    check,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};

/// `mail_location` must name a known format and an absolute path;
/// refusing cleartext logins needs TLS.
fn check(s: &Settings) -> Result<(), ConfigError> {
    let probe = crate::auth::Account {
        name: "user".into(),
        uid: 0,
        gid: 0,
        home: "/home/user".into(),
        shell: "/bin/sh".into(),
        virtual_user: true,
        groups: vec![],
    };
    crate::mail::mailbox_for(s.text("mail_location"), &probe)
        .map(|_| ())
        .map_err(|message| ConfigError {
            origin: s.origin("mail_location"),
            key: "mail_location".into(),
            message,
        })?;
    if !s.bool("cleartext_login") && s.path("tls_cert").is_none() {
        return Err(ConfigError {
            origin: s.origin("cleartext_login"),
            key: "cleartext_login".into(),
            message: "'no' needs tls_cert and tls_key (else nobody could log in)".into(),
        });
    }
    Ok(())
}
