//! The queue runner (placeholder: the API is in place, delivery follows).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;

use crate::runtime::config::Settings;

pub const KICK: &str = "kick";

fn send_kick(queue_dir: &Path, msg: &[u8]) -> bool {
    let Ok(s) = UnixDatagram::unbound() else {
        return false;
    };
    let _ = s.set_nonblocking(true);
    match s.send_to(msg, queue_dir.join(KICK)) {
        Ok(_) => true,
        // A full socket buffer: the runner is alive, just busy.
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
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

/// The companion process: runs until SIGTERM.
pub fn run_queue(settings: Arc<Settings>) {
    let _ = settings;
}

/// Make sure message `id` gets a delivery attempt now.
pub fn deliver_now(settings: &Settings, id: &str) {
    let _ = (settings, id);
}
