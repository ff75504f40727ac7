#![forbid(unsafe_code)]
//! Pseudo-terminal sessions for telnetd and rlogind: open a pty pair, start
//! a program on the slave as a new session with it as the controlling
//! terminal, set the window size, and keep utmp/wtmp records; and the relay
//! between the client's connection and the pty master (`relay`), with a
//! `Filter` per direction for the protocol.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::supervise::{self, Kind};
use crate::sys;

mod buffer;
mod filter;
mod relay;
#[cfg(test)]
mod relay_tests;

pub use filter::{
    set_external_processing, set_window_size, window_size, Filter, Outputs, PacketControl,
    Passthrough, TerminalModes, UrgentMark, WindowSize, CONTROL_ROOM,
};
pub use relay::{relay, relay_with_typeahead, ChildWatch, End, Outcome, RelayConfig};

/// A program to start on a terminal, spelled out whole: the caller builds
/// its arguments and environment from allow-lists, never from what a
/// client sent as such.
#[derive(Clone, Debug)]
pub struct Program {
    pub path: CString,
    /// argv, argv[0] included.
    pub argv: Vec<CString>,
    /// `NAME=value` entries: the whole environment.
    pub env: Vec<CString>,
    /// Where it starts (None: where we are).
    pub dir: Option<PathBuf>,
}

/// The master side of a running terminal session.
pub struct PtySession {
    pub master: File,
    pub child: Pid,
    /// The terminal name without "/dev/", e.g. "pts/3".
    pub line: String,
    record: Option<(String, String)>,
}

/// Open a pty pair with the given window size.
pub fn open(rows: u16, cols: u16) -> io::Result<(OwnedFd, OwnedFd, String)> {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = nix::pty::openpty(Some(&ws), None)?;
    // openpty leaves both ends inheritable; the program gets the slave as
    // fds 0-2 only, and never the master (or the pty would not hang up).
    for fd in [pair.master.as_raw_fd(), pair.slave.as_raw_fd()] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
    }
    let name = nix::unistd::ttyname(&pair.slave)
        .map(|p| p.to_string_lossy().trim_start_matches("/dev/").to_string())
        .unwrap_or_else(|_| "pts/?".into());
    Ok((pair.master, pair.slave, name))
}

/// Start `program` on a new pseudo-terminal, as the leader of a new session
/// whose controlling terminal it is; `utmp` (user, remote host) makes a
/// login record. `prepare` runs in the child just before the program (the
/// last identity change, for instance). The child is started by the
/// supervisor: it keeps nothing but the terminal.
pub fn spawn(
    program: &Program,
    rows: u16,
    cols: u16,
    utmp: Option<(&str, &str)>,
    prepare: impl FnOnce() -> io::Result<()>,
) -> io::Result<PtySession> {
    let (master, slave, line) = open(rows, cols)?;
    let keep = [slave.as_raw_fd()];
    let child = supervise::spawn(Kind::Program, &keep, move || {
        let result = become_terminal_session(slave).and_then(|()| {
            if let Some(dir) = &program.dir {
                std::env::set_current_dir(dir)?;
            }
            prepare()?;
            Ok(nix::unistd::execve(
                &program.path,
                &program.argv,
                &program.env,
            )?)
        });
        match result {
            Err(e) => log::error!("cannot start {:?}: {e}", program.path),
            Ok(never) => match never {},
        }
        127
    })?;
    let record = utmp.map(|(u, h)| (u.to_string(), h.to_string()));
    if let Some((user, host)) = &record {
        sys::write_utmp(
            &sys::LoginRecord {
                user,
                line: &line,
                host,
                pid: child.as_raw(),
            },
            true,
        );
    }
    Ok(PtySession {
        master: File::from(master),
        child,
        line,
        record,
    })
}

/// In the child: a new session, the terminal as its controlling terminal
/// and as fds 0-2.
fn become_terminal_session(slave: OwnedFd) -> io::Result<()> {
    nix::unistd::setsid()?;
    sys::set_controlling_terminal(slave.as_raw_fd())?;
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd)?;
    }
    if slave.as_raw_fd() > 2 {
        drop(slave);
    } else {
        // It is one of 0-2 already: keep it open there.
        std::mem::forget(slave);
    }
    Ok(())
}

impl PtySession {
    /// Tell the terminal (and so the program) about a new window size.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        sys::set_window_size(self.master.as_raw_fd(), rows, cols)
    }

    /// Wait for the program and close the login record.
    pub fn finish(self) -> io::Result<WaitStatus> {
        let status = loop {
            match waitpid(self.child, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r?,
            }
        };
        if let Some((user, host)) = &self.record {
            sys::write_utmp(
                &sys::LoginRecord {
                    user,
                    line: &self.line,
                    host,
                    pid: self.child.as_raw(),
                },
                false,
            );
        }
        Ok(status)
    }
}

/// A program run through /bin/sh -c, with a plain environment (tests).
#[cfg(test)]
pub fn shell(script: &str) -> Program {
    let c = |s: &str| CString::new(s).unwrap();
    Program {
        path: c("/bin/sh"),
        argv: vec![c("sh"), c("-c"), c(script)],
        env: vec![c("PATH=/usr/bin:/bin"), c("TERM=dumb")],
        dir: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn program_gets_a_controlling_terminal_of_the_right_size() {
        let program = shell("tty; stty size; test -t 0 && echo interactive");
        let mut s = spawn(&program, 33, 101, None, || Ok(())).expect("spawn on a pty");
        assert!(s.line.starts_with("pts/"), "{}", s.line);
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        // Reading the master ends with EIO once the program has exited.
        while let Ok(n) = s.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("/dev/pts/"), "{text}");
        assert!(text.contains("33 101"), "{text}");
        assert!(text.contains("interactive"), "{text}");
        assert!(matches!(s.finish().unwrap(), WaitStatus::Exited(_, 0)));
    }

    #[test]
    fn resize_reaches_the_terminal() {
        let mut s = spawn(&shell("read x; stty size"), 24, 80, None, || Ok(())).unwrap();
        s.resize(50, 132).unwrap();
        use std::io::Write;
        s.master.write_all(b"go\n").unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&out).contains("50 132"));
        s.finish().unwrap();
    }
}
