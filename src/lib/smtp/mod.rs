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
mod config;
pub mod data;
pub mod delivery;
mod privileged;
pub mod queue;
pub mod reply;
pub use crate::auth::sasl;
mod session;
pub mod state;

pub use config::{Config, HostPort, LmtpTarget, KEYS};

use crate::runtime::{ExtraMode, Handler, Service};

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
    extra_listeners: &["submission_listen", "lmtp_listen"],
    line_max: 4096,
    busy_reply: b"421 4.3.2 <host> Too many connections, try again later\r\n",
    handler: Handler::Split(&session::SMTP),
    config: config::build,
    extra_modes: MODES,
    companion: Some(queue::run_queue),
    // Like Postfix's smtpd. A session acts as a recipient only while it
    // delivers locally, and returns to root or aborts (auth::act_as).
    max_use: 100,
};
