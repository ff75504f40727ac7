#![forbid(unsafe_code)]
//! Pseudo-terminal sessions for telnetd and rlogind: open a pty pair, start
//! a program on the slave as a new session with it as the controlling
//! terminal, set the window size, and keep utmp/wtmp records; and the relay
//! between the client's connection and the pty master (`relay`), with a
//! `Filter` per direction for the protocol.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

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

/// The master side of a running terminal session.
pub struct PtySession {
    pub master: File,
    pub child: Child,
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

/// Run `cmd` on a new pseudo-terminal as its controlling terminal.
/// `utmp_user` and `host` make a login record when given.
pub fn spawn(
    mut cmd: Command,
    rows: u16,
    cols: u16,
    utmp: Option<(&str, &str)>,
) -> io::Result<PtySession> {
    let (master, slave, line) = open(rows, cols)?;
    let slave_file = File::from(slave);
    cmd.stdin(Stdio::from(slave_file.try_clone()?))
        .stdout(Stdio::from(slave_file.try_clone()?))
        .stderr(Stdio::from(slave_file));
    // In the child between fork and exec: a new session, then the terminal
    // on fd 0 becomes its controlling terminal.
    let child = sys::spawn_session_leader(&mut cmd)?;
    let record = utmp.map(|(u, h)| (u.to_string(), h.to_string()));
    if let Some((user, host)) = &record {
        sys::write_utmp(
            &sys::LoginRecord {
                user,
                line: &line,
                host,
                pid: child.id() as i32,
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

impl PtySession {
    /// Tell the terminal (and so the program) about a new window size.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        sys::set_window_size(self.master.as_raw_fd(), rows, cols)
    }

    /// Wait for the program and close the login record.
    pub fn finish(mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait()?;
        if let Some((user, host)) = &self.record {
            sys::write_utmp(
                &sys::LoginRecord {
                    user,
                    line: &self.line,
                    host,
                    pid: self.child.id() as i32,
                },
                false,
            );
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn program_gets_a_controlling_terminal_of_the_right_size() {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("tty; stty size; test -t 0 && echo interactive");
        let mut s = spawn(cmd, 33, 101, None).expect("spawn on a pty");
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
        assert!(s.finish().unwrap().success());
    }

    #[test]
    fn resize_reaches_the_terminal() {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("read x; stty size");
        let mut s = spawn(cmd, 24, 80, None).unwrap();
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
