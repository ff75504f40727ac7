#![forbid(unsafe_code)]
//! imapd: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) over the account's
//! Maildir++ folders (the store smtpd delivers to and pop3d serves), with
//! STARTTLS, SASL PLAIN/LOGIN with SASL-IR, IDLE, UIDPLUS, MOVE, ESEARCH,
//! LIST-EXTENDED/LIST-STATUS/SPECIAL-USE, BINARY, CONDSTORE/QRESYNC,
//! LITERAL+/LITERAL-, ENABLE, ID, NAMESPACE, UNSELECT. See imapd(8).
//!
//! - `syntax.rs`, `command.rs`: bytes of one command -> `Command` (pure);
//! - `reader.rs`: the bounded assembly of a command from lines and literals;
//! - `state.rs`: the connection's phases, logins and capabilities (pure);
//! - `mime.rs`, `fetch.rs`, `search.rs`: message structure, FETCH items and
//!   SEARCH keys over message bytes (pure);
//! - `selected.rs`: the selected folder as the client knows it (sequence
//!   numbers, pending expunges and flag changes);
//! - `session.rs`, `mailbox.rs`, `idle.rs`: the glue (store, socket, inotify).

pub mod command;
mod config;
pub mod date;
pub mod fetch;
pub mod mime;
pub mod mutf7;
pub mod reader;
pub mod search;
pub mod selected;
pub mod session;
pub mod state;
pub mod syntax;

mod idle;
mod mailbox;

pub use config::{Config, KEYS};

use crate::runtime::{Handler, Service};

pub static SERVICE: Service = Service {
    name: "imapd",
    port: 143,
    pam_service: "imap",
    log_facility: "mail",
    idle_timeout: 1800,
    keys: KEYS,
    extra_listeners: &[],
    line_max: reader::LINE_MAX,
    busy_reply: b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n",
    handler: Handler::Split(&session::IMAP),
    config: config::build,
    extra_modes: &[],
    companion: None,
    max_use: 100,
};
