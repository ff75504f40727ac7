//! The pseudo-terminals of terminal services (telnetd, rlogind), on the
//! monitor's side: as root it opens them, gives them to the account (or
//! starts the service's login program on them), keeps the utmp/wtmp
//! records, and gives them back at the end, as login(1) and sshd's
//! monitor do. The unprivileged processes get a master to relay on and
//! never need root for any of it.
//!
//! The monitor keeps a master of its own until the end: while it is open
//! the terminal's number cannot go to another session, so giving the
//! terminal back by its name is safe; closing it is the hang-up that sends
//! SIGHUP to whatever still runs on the terminal.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::stat::{fchmod, Mode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fchown, Gid, Group, Pid, Uid};

use crate::auth::{self, Account};
use crate::pty::{self, Program};
use crate::sys;

/// How long a login program gets to end after the hang-up before it is
/// killed.
const PROGRAM_GRACE: Duration = Duration::from_secs(3);

/// A terminal the monitor opened for its connection.
pub(super) struct Held {
    master: OwnedFd,
    line: String,
    /// The pid of the login record ours or login(1)'s.
    record_pid: i32,
    /// The login program started here (our child), if any.
    program: Option<Pid>,
}

impl Held {
    /// A terminal for the session of `account`: its slave owned by the
    /// account, group tty, mode 0620 (others may not write to it; write(1)
    /// and wall through group tty may); a login record for `host`, with
    /// `pid` (the account's process). Returns the master and the slave for
    /// the account's process.
    pub(super) fn for_account(
        account: &Account,
        rows: u16,
        cols: u16,
        host: &str,
        pid: Pid,
    ) -> io::Result<(Held, OwnedFd, OwnedFd)> {
        let (master, slave, line) = pty::open(rows, cols)?;
        if auth::running_as_root() {
            let tty = Group::from_name("tty").ok().flatten().map(|g| g.gid);
            let (gid, mode) = match tty {
                Some(g) => (g, 0o620),
                None => (Gid::from_raw(account.gid), 0o600),
            };
            fchown(
                slave.as_raw_fd(),
                Some(Uid::from_raw(account.uid)),
                Some(gid),
            )?;
            fchmod(slave.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        }
        let theirs = master.try_clone()?;
        sys::write_utmp(
            &sys::LoginRecord {
                user: &account.name,
                line: &line,
                host,
                pid: pid.as_raw(),
            },
            true,
        );
        log::info!("user {}: terminal {line}", account.name);
        let held = Held {
            master,
            line,
            record_pid: pid.as_raw(),
            program: None,
        };
        Ok((held, theirs, slave))
    }

    /// Start the service's login program on a new terminal, as root (the
    /// program authenticates and changes identity by itself, and writes
    /// its own login record). Returns the master for the relay and the
    /// program's pid.
    pub(super) fn for_program(
        program: &Program,
        rows: u16,
        cols: u16,
    ) -> io::Result<(Held, OwnedFd, Pid)> {
        let (master, slave, line) = pty::open(rows, cols)?;
        let session = pty::spawn_on(master, slave, line, program, || Ok(()))?;
        let pid = session.child;
        let master = OwnedFd::from(session.master);
        let theirs = master.try_clone()?;
        log::info!("login program started on {} (pid {pid})", session.line);
        let held = Held {
            master,
            line: session.line,
            record_pid: pid.as_raw(),
            program: Some(pid),
        };
        Ok((held, theirs, pid))
    }

    pub(super) fn line(&self) -> &str {
        &self.line
    }

    /// The session is over: the logout record, the terminal back to root
    /// with mode 0600, the hang-up, and a login program reaped (killed if
    /// it outlives the grace period).
    pub(super) fn release(self) {
        sys::write_utmp(
            &sys::LoginRecord {
                user: "",
                line: &self.line,
                host: "",
                pid: self.record_pid,
            },
            false,
        );
        if auth::running_as_root() {
            // Still ours (our master keeps the number): by name is safe.
            let path = format!("/dev/{}", self.line);
            if let Err(e) = give_back(&path) {
                log::debug!("{path}: {e}");
            }
        }
        drop(self.master);
        if let Some(pid) = self.program {
            reap(pid);
        }
        log::debug!("terminal {} released", self.line);
    }
}

/// Owner root, group root, mode 0600.
fn give_back(path: &str) -> io::Result<()> {
    nix::unistd::chown(path, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))?;
    nix::sys::stat::fchmodat(
        None,
        path,
        Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(())
}

/// Wait for a login program after the hang-up; kill its process group if
/// it lingers.
fn reap(pid: Pid) {
    let deadline = Instant::now() + PROGRAM_GRACE;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(WaitStatus::StillAlive) => {
                log::warn!("login program {pid} still running after the hang-up: killed");
                let _ = killpg(pid, Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return;
            }
            Err(nix::errno::Errno::EINTR) => {}
            _ => return,
        }
    }
}
