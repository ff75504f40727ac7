//! Reusable session processes, for a service whose `max_use` is above one
//! (smtpd, as Postfix's smtpd does): after a clean session the process
//! tells the master it is idle and waits for the next connection, which the
//! master hands it over a Unix socket, instead of exiting. The master forks
//! only when no process is idle. For a short SMTP session, forking a
//! process, faulting its pages in and tearing it down again costs more CPU
//! than the whole dialogue.
//!
//! Only the master retires a process (by closing its hand-off socket), so a
//! connection is never handed to a process on its way out. A process is
//! reused only if its session ended cleanly and left its identity as it
//! found it; a service whose sessions drop privileges or chroot keeps
//! `max_use` at one.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use nix::unistd::{self, Gid, Pid, Uid};

use crate::sys;

/// Idle processes kept at most; one more idle is retired at once.
pub const IDLE_MAX: usize = 64;
/// An idle process unused this long is retired.
pub const IDLE_RETIRE: Duration = Duration::from_secs(60);

/// The master's side: the channel idle reports arrive on, and who is idle.
pub struct Pool {
    reports: UnixDatagram,
    /// Inherited by every worker: where it reports itself idle.
    report_to: UnixDatagram,
    /// Idle processes, the most recently used last (its pages are warm).
    pub idle: Vec<Pid>,
}

impl Pool {
    pub fn new() -> io::Result<Pool> {
        let (reports, report_to) = UnixDatagram::pair()?;
        reports.set_nonblocking(true)?;
        Ok(Pool {
            reports,
            report_to,
            idle: Vec::new(),
        })
    }

    /// Polled by the master for idle reports.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.reports.as_fd()
    }

    /// A new hand-off channel, made before forking a session process:
    /// the master keeps the first end, the process the second.
    pub fn channel(&self) -> io::Result<(UnixStream, UnixStream)> {
        let (master, worker) = UnixStream::pair()?;
        // A full or dead channel must not stall the master.
        master.set_nonblocking(true)?;
        Ok((master, worker))
    }

    /// The processes that reported themselves idle since the last call.
    pub fn take_reports(&mut self) -> Vec<Pid> {
        let mut pids = Vec::new();
        let mut buf = [0u8; 4];
        while let Ok(4) = self.reports.recv(&mut buf) {
            pids.push(Pid::from_raw(i32::from_ne_bytes(buf)));
        }
        pids
    }

    /// The side of the pool a new session process takes with it: its
    /// hand-off channel and a copy of the report socket.
    pub fn worker(&self, chan: UnixStream, max_use: u32) -> io::Result<Worker> {
        Ok(Worker {
            chan,
            report_to: self.report_to.try_clone()?,
            left: max_use.saturating_sub(1),
            euid: unistd::geteuid(),
            egid: unistd::getegid(),
        })
    }
}

/// Hand a connection to an idle process, with the index of the listener it
/// came from. An error means the process is gone or stuck: retire it.
pub fn hand_off(chan: &UnixStream, listener: u8, conn: &TcpStream) -> io::Result<()> {
    sys::send_fd(chan.as_fd(), listener, conn.as_fd())
}

/// A session process's side of the pool.
pub struct Worker {
    chan: UnixStream,
    report_to: UnixDatagram,
    /// Connections this process may still serve.
    left: u32,
    euid: Uid,
    egid: Gid,
}

impl Worker {
    /// The descriptors the session process must keep.
    pub fn fds(&self) -> [std::os::fd::RawFd; 2] {
        [self.chan.as_raw_fd(), self.report_to.as_raw_fd()]
    }

    /// After a clean session: report idle and wait for the next connection
    /// (the listener index and the socket). None: time to exit.
    pub fn next(&mut self) -> Option<(usize, TcpStream)> {
        if self.left == 0 || unistd::geteuid() != self.euid || unistd::getegid() != self.egid {
            return None;
        }
        self.left -= 1;
        let pid = std::process::id() as i32;
        self.report_to.send(&pid.to_ne_bytes()).ok()?;
        match sys::recv_fd(self.chan.as_fd()) {
            Ok((listener, Some(fd))) => Some((listener as usize, sys::tcp_stream_from(fd))),
            _ => None,
        }
    }
}

/// Whether an idle process has waited long enough to be retired.
pub fn stale(since: Instant, now: Instant) -> bool {
    now.duration_since(since) >= IDLE_RETIRE
}
