//! Feeds: each accepted article whose groups match a peer's pattern is
//! queued for that peer (by the spool writer, `outgoing/PEER`) and offered
//! to it by a sender process, one connection per peer at a time, retried
//! with backoff while the peer is down.
//!
//! The runner is nntpd's companion process (as smtpd's queue runner is):
//! the shared [`crate::queue::Scheduler`] holds one entry per peer whose
//! round is one sender process, so a peer never has two connections; the
//! retry times come from [`crate::queue::Backoff`]; writers wake it through
//! the FIFO `spool_dir/feed.kick`. Without a master (inetd), `nntpd
//! --feed` from cron runs every peer's queue once.

pub mod client;
pub mod queue;
mod runner;
pub mod sender;

pub use runner::{feed_mode, run_feeds};

/// The runner's wake-up FIFO, in the spool.
pub const KICK: &str = "feed.kick";
/// Held (flock) by the one process that feeds: the runner or --feed.
pub const LOCK: &str = "feed.lock";
