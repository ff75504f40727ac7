#![forbid(unsafe_code)]
//! rshd: the BSD remote shell (rshd(8), rcmd(3)): one command per
//! connection, its stdout on the connection and its stderr on a second
//! connection back to the client, made from a reserved port; trust from
//! /etc/hosts.equiv and ~/.rhosts as ruserok(3) decides it (`auth::trust`),
//! asked of the monitor. See rshd(8).

pub mod command;
mod config;
pub mod env;
mod exec;
pub mod session;
pub mod state;

pub use command::fuzz_rsh_fields;
pub use config::{host_trust, Config, KEYS, TRUST_KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "rshd",
    port: 514,
    pam_service: "rsh",
    log_facility: "auth",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"\x01rshd: too many connections, try again later.\n",
    handler: Handler::Split(&session::RSH),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};
