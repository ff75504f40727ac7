#![forbid(unsafe_code)]
//! rlogind: the BSD remote login (RFC 1282): the handshake, the one-byte
//! answer, the user's shell on a pseudo-terminal relayed in packet mode
//! (control bytes as TCP urgent data, window sizes from the stream); trust
//! from /etc/hosts.equiv and ~/.rhosts as ruserok(3) decides it
//! (`auth::trust`), else the builtin password login. See rlogind(8).

pub mod command;
mod config;
pub mod filter;
pub mod login;
pub mod session;
mod terminal;

pub use command::fuzz_rlogin_input;
pub use config::{Config, Login, KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "rlogind",
    port: 513,
    pam_service: "rlogin",
    log_facility: "auth",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"\x01rlogind: too many connections, try again later.\r\n",
    handler: Handler::Split(&session::RLOGIN),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};
