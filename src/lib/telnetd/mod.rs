#![forbid(unsafe_code)]
//! telnetd: the TELNET virtual terminal (RFC 854) on a pseudo-terminal,
//! with the options of RFC 855-1572 negotiated by the Q method (RFC 1143)
//! in the unprivileged pre-login process, and the relay after login
//! running as the account (or, with a login program, still unprivileged).
//! See telnetd(8).

pub mod command;
mod config;
mod issue;
pub mod linemode;
pub mod login;
pub mod program;
mod prompt;
mod relay;
pub mod session;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod terminal;

pub use config::{Arg, Config, Login, Piece, KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "telnetd",
    port: 23,
    pam_service: "login",
    log_facility: "auth",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 1024,
    busy_reply: b"telnetd: too many connections; try again later\r\n",
    handler: Handler::Split(&session::TELNETD),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};
