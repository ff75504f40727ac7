#![forbid(unsafe_code)]
//! ftpd: the File Transfer Protocol (RFC 959) with the extensions clients
//! use today: EPRT/EPSV (RFC 2428), FEAT/OPTS (RFC 2389), SIZE, MDTM, REST
//! STREAM, MLST/MLSD (RFC 3659), AUTH TLS/PBSZ/PROT (RFC 4217).
//!
//! The master forks a session per client; inside a session every transfer
//! or listing runs in its own data process while the control connection
//! keeps answering ABOR, STAT and NOOP. Active-mode connections from port
//! 20 are made by the session's root monitor, to the client's address only.

pub mod command;
mod config;
pub mod framing;
pub mod handover;
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
    handler: Handler::Split(&session::FTP),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};

/// The port active-mode data connections come from: 20 for a server on
/// 21, else the control port minus one.
pub fn data_port(control: std::net::SocketAddr) -> u16 {
    if control.port() == 21 {
        20
    } else {
        control.port().saturating_sub(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_port_is_20_or_control_minus_one() {
        assert_eq!(data_port("0.0.0.0:21".parse().unwrap()), 20);
        assert_eq!(data_port("[::1]:21".parse().unwrap()), 20);
        assert_eq!(data_port("127.0.0.1:2121".parse().unwrap()), 2120);
        assert_eq!(data_port("127.0.0.1:1".parse().unwrap()), 1);
    }
}
