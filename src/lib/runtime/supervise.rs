//! Every fork of the suite: the master's sessions, a session's pre-login and
//! account processes, FTP data transfers, TFTP transfers, the queue runner
//! and its workers, shells on a terminal. One place starts a child the same
//! way each time, so that no child inherits what it must not have:
//!
//! - the signal handlers of its parent (they would set the parent's flags
//!   and write to the parent's wake-up pipes) are reset to the defaults,
//!   SIGPIPE is ignored and the signal mask is cleared;
//! - every descriptor but 0-2 and the ones the caller lists is closed, so a
//!   child holds no listener, no other client's socket, no spool lock;
//! - the log is reopened, so syslog lines carry the child's own pid.
//!
//! The parent keeps a table of its children by kind, reaps them and counts
//! them for its limits. The child runs a closure and exits with its code;
//! it never returns into its parent's code, so nothing of the parent's is
//! dropped (or closed twice) in the child.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::sys::{self, Forked};

/// What a child is for (logs, counts, limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The master's process for one connection (in privilege-separated
    /// services: that connection's root monitor).
    Session,
    /// A short-lived process that tells a client over the limits that we
    /// are busy.
    Refusal,
    /// A long-running helper of the master (smtpd's queue runner).
    Companion,
    /// The unprivileged process that speaks the protocol before login.
    PreLogin,
    /// The process that runs as the account after login.
    Account,
    /// An FTP data transfer or listing.
    Data,
    /// A TFTP transfer.
    Transfer,
    /// A queue worker (one delivery job).
    Worker,
    /// A one-shot detached delivery (inetd mode, no runner to wake).
    Delivery,
    /// A program on a terminal or a command (telnetd, rlogind, rshd).
    Program,
    /// The two forks of detaching from the terminal (-D).
    Detach,
}

/// Fork a child that keeps only `keep` (and fds 0-2) and runs `child`,
/// exiting with the code it returns. Returns the child's pid in the parent.
///
/// Call it only from a single-threaded process: every process of the suite
/// is, up to a session's last fork.
pub fn spawn(kind: Kind, keep: &[RawFd], child: impl FnOnce() -> i32) -> io::Result<Pid> {
    // SAFETY: the suite forks only from single-threaded processes (the
    // master, a monitor, a session before any thread, the queue runner):
    // threads exist only inside a session after its last fork.
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() }?;
    match forked {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            sys::reset_signals();
            close_all_but(keep);
            super::log::reopen_after_fork();
            log::trace!("started as {kind:?}");
            let code = child();
            end_child(code)
        }
    }
}

/// The end of a forked child: `_exit`, not `exit`. The child's work is
/// done and what it wrote is written (the log writes each line at once);
/// `exit` would run the process's exit handlers and the destructors of
/// every library it inherited, such as a monitor's PAM modules, whose
/// state is the parent's: work for nothing, on every connection. Rust's
/// buffered stdout, the one buffer of ours `exit` would flush, is flushed
/// here (a session never prints, but a helper might).
pub fn end_child(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    sys::exit_now(code)
}

/// Start a program that needs nothing between the fork and its exec but
/// what `Command` itself does (descriptors, directory, environment,
/// process group): through posix_spawn (vfork-like: the parent's address
/// space is not copied, which a process holding a PAM session's libraries
/// pays for on every fork). What a child keeps is decided the same way as
/// `spawn` does it: every descriptor of this process above 2 is made
/// close-on-exec first, so the program gets only the ones `cmd` places on
/// 0-2. Signal dispositions: exec resets handlers; SIGPIPE is restored.
pub fn spawn_program(
    kind: Kind,
    cmd: &mut std::process::Command,
) -> io::Result<std::process::Child> {
    close_on_exec_above_2();
    log::trace!("starting a {kind:?}");
    cmd.spawn()
}

/// Mark every descriptor above 2 close-on-exec.
fn close_on_exec_above_2() {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    if sys::close_range(3, u32::MAX, true) {
        return;
    }
    for fd in open_descriptors().into_iter().filter(|&fd| fd > 2) {
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            let _ = fcntl(fd, FcntlArg::F_SETFD(flags));
        }
    }
}

/// The descriptors this process has open (read from /proc or /dev/fd; the
/// directory's own is among them, closed again by then).
fn open_descriptors() -> Vec<RawFd> {
    match std::fs::read_dir(FD_DIR) {
        Ok(d) => d
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        // No /proc (a BSD without fdescfs): the usual range.
        Err(_) => (3..1024).collect(),
    }
}

/// Fork and keep running the caller's own code in the child (only for
/// detaching from the terminal: the parent exits at once and the child
/// goes on being the daemon). Descriptors are kept; signals are reset.
pub fn detach() -> io::Result<bool> {
    // SAFETY: as in `spawn`: detaching happens at start-up, before any
    // thread exists.
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() }?;
    Ok(match forked {
        Forked::Parent(_) => false,
        Forked::Child => true,
    })
}

/// Close every descriptor above 2 that is not in `keep`: the gaps between
/// the kept ones, a close_range(2) each, else one by one.
fn close_all_but(keep: &[RawFd]) {
    let mut kept: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut first = 3u32;
    let mut ranges_done = true;
    for &k in kept.iter().chain(std::iter::once(&u32::MAX)) {
        if k > first && !sys::close_range(first, k - 1, false) {
            ranges_done = false;
            break;
        }
        first = k.saturating_add(1);
    }
    if ranges_done {
        return;
    }
    for fd in open_descriptors() {
        // (The directory's own descriptor is among them; it is already
        // closed when read_dir's iterator was dropped, so EBADF is fine.)
        if fd > 2 && !keep.contains(&fd) {
            let _ = nix::unistd::close(fd);
        }
    }
}

#[cfg(target_os = "linux")]
const FD_DIR: &str = "/proc/self/fd";
#[cfg(not(target_os = "linux"))]
const FD_DIR: &str = "/dev/fd";

/// How a child ended.
#[derive(Debug)]
pub struct Ended<T> {
    pub pid: Pid,
    pub kind: Kind,
    pub data: T,
    pub status: WaitStatus,
}

impl<T> Ended<T> {
    /// Ended normally with status 0.
    pub fn success(&self) -> bool {
        matches!(self.status, WaitStatus::Exited(_, 0))
    }
}

/// A child collected by `reap_any`: known (its kind and data) or not.
#[derive(Debug)]
pub struct Reaped<T> {
    pub pid: Pid,
    pub child: Option<(Kind, T)>,
    pub status: WaitStatus,
}

/// A process's table of its children: kind and the caller's data for each.
pub struct Children<T> {
    table: HashMap<Pid, (Kind, T)>,
}

impl<T> Default for Children<T> {
    fn default() -> Self {
        Children {
            table: HashMap::new(),
        }
    }
}

impl<T> Children<T> {
    pub fn new() -> Children<T> {
        Children::default()
    }

    /// `spawn`, and record the child with `data`.
    pub fn spawn(
        &mut self,
        kind: Kind,
        data: T,
        keep: &[RawFd],
        child: impl FnOnce() -> i32,
    ) -> io::Result<Pid> {
        let pid = spawn(kind, keep, child)?;
        self.table.insert(pid, (kind, data));
        Ok(pid)
    }

    /// Record a child started with `spawn` (when the closure needed to
    /// borrow the table's owner).
    pub fn insert(&mut self, pid: Pid, kind: Kind, data: T) {
        self.table.insert(pid, (kind, data));
    }

    /// Collect every child of this process that has ended, known or not
    /// (for processes whose children are all started here: the master, the
    /// queue runner). Unknown ones come back with `None` data.
    pub fn reap_any(&mut self) -> Vec<Reaped<T>> {
        let mut out = Vec::new();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _))) => {
                    out.push(Reaped {
                        pid,
                        child: self.table.remove(&pid),
                        status,
                    });
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return out,
                Ok(_) => {}
            }
        }
    }

    /// Collect the known children that have ended, leaving any other child
    /// alone (a PAM module may fork and wait for its own helper).
    pub fn reap(&mut self) -> Vec<Ended<T>> {
        let pids: Vec<Pid> = self.table.keys().copied().collect();
        let mut out = Vec::new();
        for pid in pids {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    if let Some((kind, data)) = self.table.remove(&pid) {
                        out.push(Ended {
                            pid,
                            kind,
                            data,
                            status: st,
                        });
                    }
                }
                // Gone without us (reaped elsewhere): forget it.
                Err(nix::errno::Errno::ECHILD) => {
                    if let Some((kind, data)) = self.table.remove(&pid) {
                        out.push(Ended {
                            pid,
                            kind,
                            data,
                            status: WaitStatus::Exited(pid, 0),
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Wait for one known child to end.
    pub fn wait(&mut self, pid: Pid) -> Option<Ended<T>> {
        let (kind, data) = self.table.remove(&pid)?;
        let status = loop {
            match waitpid(pid, None) {
                Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break st,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break WaitStatus::Exited(pid, 0),
            }
        };
        Some(Ended {
            pid,
            kind,
            data,
            status,
        })
    }

    /// Forget a child without waiting for it (it was handed to someone
    /// else, or will be reaped by `reap_any`).
    pub fn forget(&mut self, pid: Pid) -> Option<(Kind, T)> {
        self.table.remove(&pid)
    }

    pub fn get(&self, pid: Pid) -> Option<&T> {
        self.table.get(&pid).map(|(_, d)| d)
    }

    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut T> {
        self.table.get_mut(&pid).map(|(_, d)| d)
    }

    pub fn contains(&self, pid: Pid) -> bool {
        self.table.contains_key(&pid)
    }

    /// Children of one kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.table.values().filter(|(k, _)| *k == kind).count()
    }

    /// Children of one kind whose data passes `pred`.
    pub fn count_where(&self, kind: Kind, pred: impl Fn(&T) -> bool) -> usize {
        self.table
            .values()
            .filter(|(k, d)| *k == kind && pred(d))
            .count()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Pid, Kind, &T)> {
        self.table.iter().map(|(p, (k, d))| (*p, *k, d))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Pid, Kind, &mut T)> {
        self.table.iter_mut().map(|(p, (k, d))| (*p, *k, d))
    }

    pub fn pids(&self) -> Vec<Pid> {
        self.table.keys().copied().collect()
    }

    /// Send a signal to every child of one kind.
    pub fn signal(&self, kind: Kind, sig: nix::sys::signal::Signal) {
        for (pid, (k, _)) in &self.table {
            if *k == kind {
                let _ = nix::sys::signal::kill(*pid, sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Forking from the harness's threads is not safe: the check runs alone.
    #[test]
    fn a_child_keeps_only_what_it_is_given() {
        if !crate::test_alone::in_child(
            "runtime::supervise::tests::a_child_keeps_only_what_it_is_given",
        ) {
            return;
        }
        let (mut kept, kept_child) = UnixStream::pair().unwrap();
        let (_dropped, dropped_child) = UnixStream::pair().unwrap();
        let dropped_fd = dropped_child.as_raw_fd();
        let mut children = Children::new();
        let pid = children
            .spawn(Kind::Data, 7u32, &[kept_child.as_raw_fd()], || {
                // The listed descriptor works; the other one is closed.
                let closed = nix::fcntl::fcntl(dropped_fd, nix::fcntl::FcntlArg::F_GETFD).is_err();
                let mut s = &kept_child;
                let _ = s.write_all(if closed { b"ok" } else { b"no" });
                3
            })
            .unwrap();
        assert_eq!(children.count(Kind::Data), 1);
        let mut answer = [0u8; 2];
        kept.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"ok");
        let ended = children.wait(pid).unwrap();
        assert_eq!(ended.data, 7);
        assert!(matches!(ended.status, WaitStatus::Exited(_, 3)));
        assert!(children.is_empty());
        drop(dropped_child);
    }
}
