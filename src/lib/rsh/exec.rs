//! rshd in the account's process: the command, run by the account's shell
//! with `-c` in the account's home and a clean environment, its input and
//! output on the connection itself (no copy in between), its stderr through
//! a pipe that this process relays to the stderr connection, from which it
//! also takes the signals the client sends (one byte each) for the
//! command's process group. Done when the command has exited and its
//! stderr is drained: then both connections close and the client's rsh
//! ends with all the output.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::env::{environment_pairs, shell_argv0, shell_of};
use super::session::Handover;
use crate::auth::Account;
use crate::net::Stream;
use crate::runtime::session::LoggedIn;
use crate::runtime::supervise::{self, Kind};

/// Logins other than root's are refused while it exists.
pub const NOLOGIN: &str = "/etc/nologin";

pub fn run(s: LoggedIn, h: Handover) {
    let account = s.account;
    let who = format!("{}@{} as {}", h.req.ruser, h.host, account.name);
    let (stream, _) = s.conn.into_parts();
    let Stream::Plain(tcp) = stream else {
        log::error!("{who}: not a plain connection");
        return;
    };
    // The pre-login side's read timeout is the socket's, shared: the
    // command gets a plain blocking socket.
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    let _ = tcp.set_nonblocking(false);
    let stderr = match h.req.stderr_port {
        Some(_) => s.passed.into_iter().next().map(TcpStream::from),
        None => None,
    };
    if account.uid != 0 && Path::new(NOLOGIN).exists() {
        log::warn!("{who}: refused, {NOLOGIN} exists");
        let _ = (&tcp).write_all(b"\x01Logins currently disabled.\n");
        return;
    }
    let env = environment_pairs(&account, None, &s.env);
    if let Err(e) = (&tcp).write_all(b"\0") {
        log::info!("{who}: the client left: {e}");
        return;
    }
    let pipe = match stderr {
        Some(_) => match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => Some(p),
            Err(e) => {
                log::error!("{who}: pipe: {e}");
                return;
            }
        },
        None => None,
    };
    let (read_end, err_fd): (Option<OwnedFd>, std::io::Result<OwnedFd>) = match pipe {
        Some((r, w)) => (Some(r), Ok(w)),
        None => (None, tcp.try_clone().map(OwnedFd::from)),
    };
    let spawned = err_fd.and_then(|err| {
        let mut cmd = command(&account, &h.req.command, env, &tcp, err)?;
        supervise::spawn_program(Kind::Program, &mut cmd)
    });
    // The command holds the connection now: ours closes, so that the
    // client sees the end when the command (and what it left) closes.
    drop(tcp);
    let pid = match spawned {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(e) => {
            log::error!("{who}: cannot start the command: {e}");
            if let Some(sock) = &stderr {
                let _ = (&*sock).write_all(format!("rshd: cannot run the shell: {e}\n").as_bytes());
            }
            return;
        }
    };
    let status = match (read_end, stderr) {
        (Some(read), Some(sock)) => relay_stderr(pid, read, sock),
        _ => wait(pid),
    };
    log::info!("{who}: command ended: {}", describe(status));
}

/// The shell and its arguments, `shell -c command`, in its own process
/// group (the client's signals go to the group, as BSD's rshd sets it up),
/// in the home directory (or /, as BSD's rshd goes on without one), with
/// the connection as its input and output and `err` as its stderr.
fn command(
    account: &Account,
    command: &[u8],
    env: Vec<(String, String)>,
    tcp: &TcpStream,
    err: OwnedFd,
) -> std::io::Result<Command> {
    let shell = shell_of(account);
    // This process is the account already: whether the home can be entered
    // is its own permission check.
    let dir = if std::env::set_current_dir(&account.home).is_ok() {
        account.home.clone()
    } else {
        PathBuf::from("/")
    };
    let mut cmd = Command::new(&shell);
    cmd.arg0(shell_argv0(&shell, false))
        .arg("-c")
        .arg(OsStr::from_bytes(command))
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .process_group(0)
        .stdin(Stdio::from(OwnedFd::from(tcp.try_clone()?)))
        .stdout(Stdio::from(OwnedFd::from(tcp.try_clone()?)))
        .stderr(Stdio::from(err));
    Ok(cmd)
}

/// Copy the command's stderr to the stderr connection and deliver the
/// client's signals, until the command has exited and its stderr is closed.
fn relay_stderr(pid: Pid, pipe: OwnedFd, sock: TcpStream) -> Option<WaitStatus> {
    let watch = crate::sys::tty::exit_watch(pid).ok().flatten();
    let mut exited = watch.is_none();
    let mut pipe_open = true;
    let mut reading_signals = true;
    let mut writing = true;
    let mut buf = vec![0u8; 64 * 1024];
    while pipe_open || !exited {
        let (p, s, w) = {
            let mut fds = Vec::new();
            let p = at(&mut fds, pipe_open, pipe.as_fd());
            let s = at(&mut fds, reading_signals, sock.as_fd());
            let w = at(
                &mut fds,
                !exited,
                watch.as_ref().map_or(pipe.as_fd(), |w| w.as_fd()),
            );
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            (ready(p), ready(s), ready(w))
        };
        if p {
            match nix::unistd::read(pipe.as_raw_fd(), &mut buf) {
                Ok(0) => pipe_open = false,
                Ok(n) => {
                    // A client that stopped listening loses the rest, but
                    // the command is never blocked by it.
                    if writing && (&sock).write_all(&buf[..n]).is_err() {
                        writing = false;
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => pipe_open = false,
            }
        }
        if s {
            let mut sig = [0u8; 64];
            match (&sock).read(&mut sig) {
                Ok(0) | Err(_) => reading_signals = false,
                Ok(n) => {
                    for &b in &sig[..n] {
                        deliver(pid, b);
                    }
                }
            }
        }
        if w {
            exited = true;
        }
    }
    let status = wait(pid);
    let _ = sock.shutdown(std::net::Shutdown::Both);
    status
}

/// Add `fd` to a poll set when `on`: its index.
fn at<'a>(fds: &mut Vec<PollFd<'a>>, on: bool, fd: std::os::fd::BorrowedFd<'a>) -> Option<usize> {
    on.then(|| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    })
}

/// One byte from the client: a signal number for the command's group.
fn deliver(pid: Pid, byte: u8) {
    match Signal::try_from(i32::from(byte)) {
        Ok(sig) => {
            log::info!("signal {sig} from the client to the command");
            let _ = killpg(pid, sig);
        }
        Err(_) => log::info!("the client sent {byte}, which is no signal"),
    }
}

fn wait(pid: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.ok(),
        }
    }
}

fn describe(status: Option<WaitStatus>) -> String {
    match status {
        Some(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Some(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    }
}
