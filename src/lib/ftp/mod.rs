#![forbid(unsafe_code)]
//! ftpd: the File Transfer Protocol (RFC 959) with the extensions clients
//! use today: EPRT/EPSV (RFC 2428), FEAT/OPTS (RFC 2389), SIZE, MDTM, REST
//! STREAM, MLST/MLSD (RFC 3659), AUTH TLS/PBSZ/PROT (RFC 4217).
//!
//! The master forks a session per client; inside a session every transfer
//! or listing runs in its own data process while the control connection
//! keeps answering ABOR, STAT and NOOP. Active-mode connections from port
//! 20 come from a tiny privileged helper that binds that one port.

pub mod command;
mod config;
mod helper;
pub mod listing;
mod session;
pub mod state;
mod transfer;

pub use config::{Config, KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "ftpd",
    port: 21,
    pam_service: "ftp",
    log_facility: "ftp",
    idle_timeout: 300,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"421 Too many connections, try again later.\r\n",
    handler: Handler::Tcp(session::serve),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};
