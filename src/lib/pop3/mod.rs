#![forbid(unsafe_code)]
//! pop3d: POP3 (RFC 1939) with CAPA and response codes (RFC 2449), STLS
//! (RFC 2595) and SASL PLAIN (RFC 5034), serving the Maildir or mbox of
//! `mail_location` that smtpd delivers to. See pop3d(8).

pub mod command;
mod config;
pub mod session;
pub mod state;

pub use config::{Config, KEYS};

use crate::runtime::{Handler, Service};

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
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};
