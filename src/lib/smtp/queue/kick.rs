//! Waking the queue runner: one line written to the FIFO `queue_dir/kick`
//! (`M<id>` a new message, `S` rescan, `F` flush). A missing runner is
//! noticed because nobody holds the FIFO open for reading.

use std::io::{self, Write};
use std::path::Path;

pub const KICK: &str = "kick";

/// Write one wake-up line to the runner's FIFO. Opening a FIFO for
/// writing without blocking fails (ENXIO) when nobody holds it for reading:
/// that is how a missing runner is noticed. The pipe buffer holds thousands
/// of wake-ups; when it is full the runner is alive and will rescan.
fn send_kick(queue_dir: &Path, msg: &[u8]) -> bool {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let path = queue_dir.join(KICK);
    let f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(_) => return false,
    };
    if !f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        return false;
    }
    let mut line = Vec::with_capacity(msg.len() + 1);
    line.extend_from_slice(msg);
    line.push(b'\n');
    // Below PIPE_BUF a write is all or nothing.
    match (&f).write(&line) {
        Ok(n) => n == line.len(),
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// Tell the runner about one new message; false when no runner answers.
pub fn kick_id(queue_dir: &Path, id: &str) -> bool {
    send_kick(queue_dir, format!("M{id}").as_bytes())
}

/// Ask the runner to rescan the spool; false when no runner answers.
pub fn kick_scan(queue_dir: &Path) -> bool {
    send_kick(queue_dir, b"S")
}

/// Ask the runner to retry everything now; false when no runner answers.
pub fn kick_flush(queue_dir: &Path) -> bool {
    send_kick(queue_dir, b"F")
}
