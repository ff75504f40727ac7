#![forbid(unsafe_code)]
//! nntpd: the news server for readers and peers (RFC 3977, with RFC 4642
//! STARTTLS, RFC 4643 AUTHINFO USER/PASS, RFC 4644 streaming, RFC 5536 and
//! 5537 articles), over a spool in INN's file formats, with overview,
//! history, expiry and feeds. See nntpd(8).
//!
//! `command` parses lines, `state` runs the dialogue, `session` drives it
//! in the unprivileged process, `request` is the narrow path to the
//! monitor, `privileged` answers it (reads as checked descriptors, writes
//! through `spool::store`), `feed` offers articles to peers.

pub mod article;
pub mod command;
mod config;
pub mod feed;
pub mod inject;
pub mod moderation;
mod modes;
pub mod peers;
mod privileged;
pub mod request;
pub mod session;
pub mod spool;
pub mod state;
pub mod wildmat;

pub use config::{Config, KEYS};

use crate::runtime::{ExtraMode, Handler, Service};

const MODES: &[ExtraMode] = &[
    ExtraMode {
        long: "newgroup",
        usage: "NAME [y|n|m] [DESCRIPTION]: create a group and exit",
        run: modes::newgroup,
    },
    ExtraMode {
        long: "rmgroup",
        usage: "NAME: remove a group (and its articles) and exit",
        run: modes::rmgroup,
    },
    ExtraMode {
        long: "expire",
        usage: "remove old articles (article_lifetime, expire_file) and exit",
        run: modes::expire,
    },
    ExtraMode {
        long: "feed",
        usage: "offer every peer its queued articles once and exit",
        run: feed::feed_mode,
    },
];

pub static SERVICE: Service = Service {
    name: "nntpd",
    port: 119,
    pam_service: "nntp",
    log_facility: "news",
    idle_timeout: 600,
    keys: KEYS,
    extra_listeners: &[],
    // The line buffer: article lines may be long; commands are held to
    // 512 octets by the dialogue itself.
    line_max: session::ARTICLE_LINE_MAX,
    busy_reply: b"400 <host> too many connections, try again later\r\n",
    handler: Handler::Split(&session::NNTP),
    config: config::build,
    extra_modes: MODES,
    companion: Some(feed::run_feeds),
    // As smtpd: the dialogue never becomes anyone, so its process (and
    // its monitor) serve the next connections too.
    max_use: 100,
};
