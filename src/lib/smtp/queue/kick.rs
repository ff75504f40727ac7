//! Waking smtpd's queue runner: [`crate::queue::kick`] on the FIFO
//! `queue_dir/kick`. A new message is `M<id>`, a rescan `S`, a flush `F`.

use std::path::Path;

use crate::queue::kick::{self, Kick};

pub const KICK: &str = "kick";

/// Tell the runner about one new message; false when no runner answers.
pub fn kick_id(queue_dir: &Path, id: &str) -> bool {
    kick::send(&queue_dir.join(KICK), &Kick::Entry(id.to_string()))
}

/// Ask the runner to rescan the spool; false when no runner answers.
pub fn kick_scan(queue_dir: &Path) -> bool {
    kick::send(&queue_dir.join(KICK), &Kick::Scan)
}

/// Ask the runner to retry everything now; false when no runner answers.
pub fn kick_flush(queue_dir: &Path) -> bool {
    kick::send(&queue_dir.join(KICK), &Kick::Flush)
}
