#![forbid(unsafe_code)]
//! tftpd: TFTP (RFC 1350) with options (RFC 2347-2349) and windows (RFC 7440).

mod config;
pub mod machine;
pub mod packet;
mod session;
mod transfer;

pub use config::{Config, KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "tftpd",
    port: 69,
    pam_service: "tftp",
    log_facility: "daemon",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 512,
    busy_reply: b"",
    handler: Handler::Udp(session::serve),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};
