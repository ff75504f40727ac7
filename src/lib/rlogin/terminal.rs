//! rlogind in the account's process: the account's login shell on a new
//! pseudo-terminal (TERM from the handshake, its speed, the window size the
//! client sent), the login recorded in utmp and wtmp by the monitor, then
//! the relay in packet mode until either side ends.

use std::ffi::CString;
use std::os::fd::AsFd;

use nix::sys::termios::{self, BaudRate, SetArg};
use nix::sys::wait::{waitpid, WaitStatus};

use super::filter::RloginFilter;
use super::session::Handover;
use crate::net::Stream;
use crate::pty::{self, ChildWatch, Program, RelayConfig};
use crate::rsh::env::{environment, shell_argv0, shell_of};
use crate::runtime::session::LoggedIn;

/// Logins other than root's are refused while it exists (login(1)'s rule,
/// for the builtin login and trusted logins alike).
pub const NOLOGIN: &str = "/etc/nologin";

pub fn run(s: LoggedIn, h: Handover) {
    let account = s.account;
    let who = format!("{}@{} as {}", h.ruser, h.host, account.name);
    let (stream, unread) = s.conn.into_parts();
    let Stream::Plain(mut tcp) = stream else {
        log::error!("{who}: not a plain connection");
        return;
    };
    let _ = tcp.set_read_timeout(None);
    let _ = tcp.set_write_timeout(None);
    if account.uid != 0 {
        if let Ok(text) = std::fs::read(NOLOGIN) {
            use std::io::Write;
            let mut text = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
            if text.is_empty() {
                text = "Logins are currently disabled.\n".into();
            }
            let _ = tcp.write_all(&super::login::crlf(&text));
            log::warn!("{who}: refused, {NOLOGIN} exists");
            return;
        }
    }
    let shell = shell_of(&account);
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let program = Program {
        path: CString::new(shell.as_os_str().as_encoded_bytes().to_vec()).unwrap_or_default(),
        argv: vec![c(&shell_argv0(&shell, true))],
        env: environment(&account, Some(&h.term), &s.env),
        dir: None,
    };
    let window = h.window.unwrap_or(pty::WindowSize::new(24, 80));
    let home = account.home.clone();
    let speed = baud(h.speed);
    let session = pty::spawn(&program, window.rows, window.cols, None, move || {
        // The home directory, else / (login(1) says so and goes on).
        if std::env::set_current_dir(&home).is_err() {
            std::env::set_current_dir("/")?;
        }
        if let Some(rate) = speed {
            let stdin = std::io::stdin();
            let mut t = termios::tcgetattr(stdin.as_fd())?;
            termios::cfsetspeed(&mut t, rate)?;
            termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &t)?;
        }
        Ok(())
    });
    let session = match session {
        Ok(p) => p,
        Err(e) => {
            log::error!("{who}: cannot start the shell: {e}");
            return;
        }
    };
    let _ = pty::set_window_size(session.master.as_fd(), window);
    if let Err(e) = s
        .monitor
        .login_record(&session.line, session.child.as_raw())
    {
        log::warn!("{who}: no utmp record: {e}");
    }
    log::info!("{who}: shell on {}", session.line);
    let mut filter = RloginFilter::new(h.window.is_none());
    let mut typeahead = h.typeahead;
    typeahead.extend_from_slice(&unread);
    let config = RelayConfig {
        packet_mode: true,
        ..RelayConfig::default()
    };
    let outcome = pty::relay_with_typeahead(
        &mut tcp,
        session.master.as_fd(),
        ChildWatch::Pid(session.child),
        &mut filter,
        &config,
        &typeahead,
    );
    let child = session.child;
    // Closing the master hangs the terminal up: SIGHUP to what is left.
    drop(session);
    let _ = tcp.shutdown(std::net::Shutdown::Both);
    let status = loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r,
        }
    };
    let ended = match &outcome {
        Ok(o) => format!(
            "{:?}, {} bytes in, {} out",
            o.end, o.from_network, o.to_network
        ),
        Err(e) => format!("relay error: {e}"),
    };
    let status = match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    };
    log::info!("{who}: session ended ({ended}); shell {status}");
}

/// In the pre-login process, with `login = PROGRAM`: relay between the
/// client and the terminal the monitor started the login program on, in
/// packet mode, until the terminal hangs up or the client goes.
pub fn relay_program(
    mut tcp: std::net::TcpStream,
    master: std::fs::File,
    window_pending: bool,
    typeahead: &[u8],
) {
    let _ = tcp.set_read_timeout(None);
    let mut filter = RloginFilter::new(window_pending);
    let config = RelayConfig {
        packet_mode: true,
        ..RelayConfig::default()
    };
    let relayed = pty::relay_with_typeahead(
        &mut tcp,
        master.as_fd(),
        ChildWatch::None,
        &mut filter,
        &config,
        typeahead,
    );
    match relayed {
        Ok(o) => log::info!(
            "login program session ended ({:?}, {} bytes in, {} out)",
            o.end,
            o.from_network,
            o.to_network
        ),
        Err(e) => log::info!("login program session: relay error: {e}"),
    }
    drop(master);
    let _ = tcp.shutdown(std::net::Shutdown::Both);
}

/// A terminal speed from the handshake.
fn baud(speed: u32) -> Option<BaudRate> {
    use BaudRate::*;
    Some(match speed {
        50 => B50,
        75 => B75,
        110 => B110,
        134 => B134,
        150 => B150,
        200 => B200,
        300 => B300,
        600 => B600,
        1200 => B1200,
        1800 => B1800,
        2400 => B2400,
        4800 => B4800,
        9600 => B9600,
        19200 => B19200,
        38400 => B38400,
        57600 => B57600,
        115200 => B115200,
        230400 => B230400,
        _ => return None,
    })
}
