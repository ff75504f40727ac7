#![forbid(unsafe_code)]
//! tftpd: TFTP (RFC 1350) with options (RFC 2347-2349) and windows (RFC 7440).

pub mod machine;
pub mod packet;
mod session;
mod transfer;

use crate::runtime::config::{ConfigError, KeySpec, Kind, Settings};
use crate::runtime::{Handler, Service};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new("root", Kind::Path, "/srv/tftp", "the only directory served"),
    KeySpec::new(
        "create",
        Kind::Bool,
        "no",
        "allow write requests to create files",
    ),
    KeySpec::new("user", Kind::Text, "nobody", "account the server runs as"),
    KeySpec::new(
        "max_blksize",
        Kind::Uint,
        "65464",
        "largest negotiated block size",
    ),
    KeySpec::new(
        "max_windowsize",
        Kind::Uint,
        "64",
        "largest negotiated window",
    ),
];

fn check(s: &Settings) -> Result<(), ConfigError> {
    let bad = |key: &str, message: &str| ConfigError {
        origin: s.origin(key),
        key: key.into(),
        message: message.into(),
    };
    if !(8..=65464).contains(&s.uint("max_blksize")) {
        return Err(bad("max_blksize", "must be between 8 and 65464"));
    }
    if !(1..=65535).contains(&s.uint("max_windowsize")) {
        return Err(bad("max_windowsize", "must be between 1 and 65535"));
    }
    if s.text("user").is_empty() {
        return Err(bad("user", "must name an account"));
    }
    Ok(())
}

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
    check,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};
