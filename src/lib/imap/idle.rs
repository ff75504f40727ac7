//! IDLE (RFC 2177): the session waits on the client's socket and on an
//! inotify watch of the selected folder's new/ and cur/ at once (one
//! poll), so a delivery, an expunge or another session's flag change is
//! pushed the moment it happens, with no polling of the directories.
//! (Where there is no inotify, as on the BSDs, the wait looks at the folder
//! every 5 seconds instead.)

use std::os::fd::{AsFd, BorrowedFd};

use crate::mail::store::Folder;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
#[cfg(target_os = "linux")]
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// No change notification on this system: never made.
#[cfg(not(target_os = "linux"))]
enum Inotify {}

/// Change notification for a folder directory; None when inotify is not
/// available (the wait then wakes every few seconds to look).
pub struct Watch {
    inotify: Option<Inotify>,
}

impl Watch {
    #[cfg(target_os = "linux")]
    pub fn new(folder: Option<&Folder>) -> Watch {
        let Some(folder) = folder else {
            return Watch { inotify: None };
        };
        let dir = folder.dir.as_path();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok();
        if let (Some(i), Some(mbox)) = (&inotify, folder.mbox_path()) {
            // The file (appends) and its directory (a rewrite renamed over
            // it); other sessions' flag changes rewrite it too.
            let _ = i.add_watch(mbox, AddWatchFlags::IN_MODIFY);
            if let Some(parent) = mbox.parent() {
                let _ = i.add_watch(
                    parent,
                    AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_CREATE
                        | AddWatchFlags::IN_DELETE,
                );
            }
            return Watch { inotify };
        }
        if let Some(i) = &inotify {
            let flags = AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_ATTRIB;
            for sub in ["new", "cur"] {
                if let Err(e) = i.add_watch(&dir.join(sub), flags) {
                    log::warn!("inotify on {}: {e}", dir.join(sub).display());
                }
            }
            // Flag changes of other imapd sessions are also in the modseq log.
            let _ = i.add_watch(
                dir,
                AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE,
            );
        }
        Watch { inotify }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_folder: Option<&Folder>) -> Watch {
        Watch { inotify: None }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        #[cfg(target_os = "linux")]
        return self.inotify.as_ref().map(|i| i.as_fd());
        #[cfg(not(target_os = "linux"))]
        return self.inotify.as_ref().map(|i| match *i {});
    }

    fn drain(&self) {
        #[cfg(target_os = "linux")]
        if let Some(i) = &self.inotify {
            while matches!(i.read_events(), Ok(v) if !v.is_empty()) {}
        }
    }
}

/// What woke the wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The client sent something.
    Client,
    /// The folder changed (or the fallback timer ran out).
    Folder,
    /// Nothing for `limit`.
    Timeout,
}

/// Wait for the client or the folder, at most `limit`; `look_again`:
/// wake as for a change of the folder after that long (a view followed
/// from the log that a reading must confirm: see store/folder/follow.rs).
pub fn wait(
    client: &impl AsFd,
    watch: &Watch,
    limit: Duration,
    look_again: Option<Duration>,
) -> Wake {
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Wake::Timeout;
        }
        // Without inotify, look at the folder every 5 seconds.
        let mut every = look_again;
        if watch.inotify.is_none() {
            every = Some(every.map_or(Duration::from_secs(5), |d| d.min(Duration::from_secs(5))));
        }
        let step = match every {
            Some(d) => left.min(d),
            None => left,
        };
        let looks = every.is_some_and(|d| d <= left);
        let ms = step.as_millis().min(i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = vec![PollFd::new(client.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = watch.fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(0) if looks => return Wake::Folder,
            Ok(0) => continue,
            Ok(_) => {
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                if ready(&fds[0]) {
                    return Wake::Client;
                }
                if fds.len() > 1 && ready(&fds[1]) {
                    drop(fds);
                    // Deliveries come in bursts: let this one settle.
                    std::thread::sleep(Duration::from_millis(20));
                    watch.drain();
                    return Wake::Folder;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Wake::Client,
        }
    }
}
