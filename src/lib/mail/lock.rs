//! Mailbox locks.
//!
//! mbox files are locked the way Debian's mail programs expect (Debian
//! policy 22.6, liblockfile, mutt, procmail, exim): a dot-lock file
//! `<mbox>.lock` created with O_EXCL AND an fcntl(2) lock on the mbox, taken
//! in that order. A dot-lock older than [`DOTLOCK_STALE`] is broken. When the
//! mail directory does not let us create the dot-lock (a /var/mail writable
//! only by group mail), the fcntl lock alone is used and a warning logged.
//!
//! Session exclusivity (pop3d, imapd) uses flock(2), which on Linux does not
//! interact with fcntl locks, so deliveries are never blocked by a session.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::sys::{fcntl_lock_whole, RecordLock};

/// A dot-lock this old is left over from a crash.
pub const DOTLOCK_STALE: Duration = Duration::from_secs(300);
/// How long to wait for either lock before giving up (a temporary failure).
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A held dot-lock, removed on drop.
pub struct DotLock {
    path: Option<PathBuf>,
}

impl DotLock {
    /// Take `<file>.lock`, waiting up to `wait`.
    pub fn acquire(file: &Path, wait: Duration) -> io::Result<DotLock> {
        DotLock::acquire_polling(file, wait, Duration::from_millis(500))
    }

    /// The same for a lock held only for a moment (a folder's
    /// dovecot-uidlist while UIDs are given): looked at again within
    /// milliseconds, not half a second, so that sessions do not queue.
    pub fn acquire_brief(file: &Path, wait: Duration) -> io::Result<DotLock> {
        DotLock::acquire_polling(file, wait, Duration::from_millis(4))
    }

    fn acquire_polling(file: &Path, wait: Duration, max_pause: Duration) -> io::Result<DotLock> {
        let mut name = file.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let started = Instant::now();
        let mut pause = Duration::from_millis(1).min(max_pause);
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(DotLock { path: Some(path) });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path) {
                        log::warn!("removing stale lock {}", path.display());
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    log::warn!(
                        "cannot create {} ({e}); relying on the fcntl lock alone",
                        path.display()
                    );
                    return Ok(DotLock { path: None });
                }
                Err(e) => return Err(e),
            }
            if started.elapsed() >= wait {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is held", path.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(max_pause);
        }
    }
}

/// A dot-lock is stale when it is old, or when the process it names (our
/// locks hold the writer's pid, as mutt's and procmail's do) is gone: a
/// session killed with -9 in the middle of a change must not hold the
/// mailbox for five minutes. A lock whose content is no pid (another
/// program's) only goes stale with age.
fn is_stale(path: &Path) -> bool {
    let old = match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => SystemTime::now()
            .duration_since(t)
            .map(|age| age > DOTLOCK_STALE)
            .unwrap_or(false),
        Err(_) => false,
    };
    old || holder_is_gone(path)
}

fn holder_is_gone(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Some(pid) = text.trim().parse::<i32>().ok().filter(|&p| p > 1) else {
        return false;
    };
    // Signal 0 checks that the process exists; EPERM says it does (another
    // user's).
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Take an fcntl lock on the whole file (write lock when `write`), waiting up
/// to `wait`. It is released when the file (any descriptor of it in this
/// process) is closed, or by [`fcntl_unlock`].
pub fn fcntl_lock(file: &File, write: bool, wait: Duration) -> io::Result<()> {
    let kind = if write {
        RecordLock::Write
    } else {
        RecordLock::Read
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match fcntl_lock_whole(file.as_raw_fd(), kind) {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN) | Some(libc::EACCES) | Some(libc::EINTR)
                ) => {}
            Err(e) => return Err(e),
        }
        if started.elapsed() >= wait {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "mailbox is locked by another program",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

pub fn fcntl_unlock(file: &File) {
    let _ = fcntl_lock_whole(file.as_raw_fd(), RecordLock::Unlock);
}

/// A session's exclusive hold on a maildrop (flock, non-blocking).
pub struct SessionLock {
    _lock: Flock<File>,
}

impl SessionLock {
    /// Ok(None) when another session holds it.
    pub fn try_take(file: File) -> io::Result<Option<SessionLock>> {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(SessionLock { _lock: l })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(e.into()),
        }
    }

    pub fn file(&self) -> &File {
        &self._lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::testutil::TempDir;

    #[test]
    fn dotlock_is_exclusive_and_removed() {
        let t = TempDir::new("dotlock");
        let mbox = t.0.join("box");
        let l = DotLock::acquire(&mbox, LOCK_WAIT).unwrap();
        assert!(t.0.join("box.lock").exists());
        let e = DotLock::acquire(&mbox, Duration::from_millis(50))
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(l);
        assert!(!t.0.join("box.lock").exists());
        let _l = DotLock::acquire(&mbox, Duration::from_millis(50)).unwrap();
    }

    #[test]
    fn stale_dotlock_is_broken() {
        let t = TempDir::new("dotlock-stale");
        let mbox = t.0.join("box");
        let f = File::create(t.0.join("box.lock")).unwrap();
        f.set_modified(SystemTime::now() - DOTLOCK_STALE - Duration::from_secs(10))
            .unwrap();
        drop(f);
        let _l = DotLock::acquire(&mbox, Duration::from_millis(50)).unwrap();
        // A fresh one is not broken.
        let t2 = TempDir::new("dotlock-fresh");
        File::create(t2.0.join("box.lock")).unwrap();
        assert!(DotLock::acquire(&t2.0.join("box"), Duration::from_millis(50)).is_err());
    }

    #[test]
    fn a_dotlock_of_a_process_that_is_gone_is_broken() {
        let t = TempDir::new("dotlock-dead");
        let mbox = t.0.join("box");
        // A pid that no longer runs: a child that has been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(t.0.join("box.lock"), format!("{dead}\n")).unwrap();
        let _l = DotLock::acquire(&mbox, Duration::from_millis(50)).unwrap();
        // A living holder's (ours) and an unreadable one are respected.
        let t2 = TempDir::new("dotlock-alive");
        std::fs::write(t2.0.join("box.lock"), format!("{}\n", std::process::id())).unwrap();
        assert!(DotLock::acquire(&t2.0.join("box"), Duration::from_millis(50)).is_err());
        std::fs::write(t2.0.join("box.lock"), b"host:whatever\n").unwrap();
        assert!(DotLock::acquire(&t2.0.join("box"), Duration::from_millis(50)).is_err());
    }

    #[test]
    fn session_lock_refuses_second() {
        let t = TempDir::new("flock");
        let p = t.0.join("f");
        let f = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&p)
                .unwrap()
        };
        let a = SessionLock::try_take(f()).unwrap();
        assert!(a.is_some());
        assert!(SessionLock::try_take(f()).unwrap().is_none());
        drop(a);
        assert!(SessionLock::try_take(f()).unwrap().is_some());
    }
}
