//! The telnetd glue, in the processes of the privilege split:
//!
//! - pre-login (unprivileged, confined): the opening negotiation, the
//!   issue file (read by the monitor), then either
//!   - `login = builtin`: the monitor's login conversation (PAM's, or
//!     login:/Password: with a passwd_file), each prompt shown and read
//!     here; a granted login hands the negotiated state to the account's
//!     process; or
//!   - `login = PROGRAM`: the monitor starts the login program as root on
//!     a terminal and this process, still unprivileged and confined,
//!     relays for it;
//! - the account's process (`login = builtin`): a terminal from the
//!   monitor (owned by the account, with its login record), the account's
//!   shell on it as a login shell, and the relay, as the account.
//!
//! In both cases the monitor gives the terminal back when the session
//! ends (`Monitor::hang_up`), and the session's processes get SIGHUP.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::config::{Config, Login};
use super::issue;
use super::program;
use super::prompt::{Prompter, Wire};
use super::relay;
use super::state::State;
use super::terminal::{self, TerminalInfo};
use crate::runtime::config::Settings;
use crate::runtime::session::ipc::{Reader, Writer};
use crate::runtime::session::{LoggedIn, Monitor, PreLogin, Privileged, TcpProtocol, Verdict};

/// How long the opening negotiation may take, at most.
const NEGOTIATION_LIMIT: Duration = Duration::from_secs(3);
/// A client that answers nothing TELNET in this long is a raw one (nc,
/// socat): it gets the prompt without more waiting.
const NEGOTIATION_QUIET: Duration = Duration::from_millis(700);
/// How long the session's processes get to end after the hang-up.
const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// The monitor's one service request: the issue file, expanded.
const ISSUE_REQUEST: &[u8] = b"issue";

/// telnetd in the privilege split.
pub struct Telnetd;

pub static TELNETD: Telnetd = Telnetd;

impl TcpProtocol for Telnetd {
    fn prelogin(&self, s: PreLogin) {
        let cfg = s.settings.daemon::<Config>().clone();
        if let Some(tcp) = s.conn.tcp() {
            tune(tcp);
        }
        let mut wire = Wire::new(s.conn);
        wire.negotiate(NEGOTIATION_LIMIT, NEGOTIATION_QUIET);
        if wire.gone {
            return;
        }
        log::debug!(
            "terminal: types {:?}, window {:?}, user hint {:?}",
            wire.state.info.types,
            wire.state.info.window,
            wire.state.info.user
        );
        if let Some(text) = &s.settings.common().banner {
            wire.say(&format!("\n{text}\n"));
        }
        if cfg.issue_file.is_some() {
            match s.monitor.service(ISSUE_REQUEST) {
                Ok(text) => wire.send(&crate::telnet::nvt::text(&text)),
                Err(e) => log::debug!("issue file: {e}"),
            }
        }
        match cfg.login {
            Login::Builtin => builtin_login(wire, &s.monitor, &s.settings),
            Login::Program { .. } => program_login(wire, &s.monitor, &s.settings),
        }
    }

    fn session(&self, s: LoggedIn) {
        account_session(s);
    }

    fn privileged(&self, p: &mut Privileged, request: &[u8]) -> Result<Vec<u8>, String> {
        if request != ISSUE_REQUEST {
            return Err("no such request".into());
        }
        let cfg = p.settings.daemon::<Config>();
        let Some(path) = &cfg.issue_file else {
            return Ok(Vec::new());
        };
        let mut text = Vec::new();
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        io::Read::read_to_end(
            &mut io::Read::take(file, issue::MAX_ISSUE as u64),
            &mut text,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(issue::expand(&text, &issue::facts()))
    }

    fn terminal_program(
        &self,
        settings: &Settings,
        host: &str,
        request: &[u8],
    ) -> Result<crate::pty::Program, String> {
        let cfg = settings.daemon::<Config>();
        let Login::Program { path, args } = &cfg.login else {
            return Err("login = builtin".into());
        };
        let (_, mut r) = Reader::new(request).map_err(|_| "malformed request")?;
        let info = TerminalInfo::decode(&mut r).map_err(|_| "malformed request")?;
        r.end().map_err(|_| "malformed request")?;
        let term = info.choose_term(terminal::terminfo_knows);
        program::login_program(path, args, host, &info, &term)
            .ok_or_else(|| "cannot build the login program's arguments".into())
    }

    fn byte_stream(&self) -> bool {
        true
    }
}

/// Socket options of a terminal session: urgent data in line (SYNCH),
/// keep-alives (a client that vanishes without a word is noticed), no
/// delay (each keystroke's echo goes at once).
fn tune(tcp: &TcpStream) {
    let s = socket2::SockRef::from(tcp);
    let _ = s.set_out_of_band_inline(true);
    let _ = s.set_keepalive(true);
    let _ = s.set_nodelay(true);
}

/// `login = builtin`: the monitor's conversation, `login_attempts` times
/// at most, then the account's session.
fn builtin_login(mut wire: Wire, monitor: &Monitor, settings: &Settings) {
    let mut hint = wire.state.info.user.clone();
    let attempts = settings.common().login_attempts.max(1);
    for _ in 0..attempts {
        let verdict = monitor.converse(hint.as_deref(), &mut Prompter(&mut wire));
        match verdict {
            Verdict::Granted(user) => {
                log::debug!("login granted to {user}");
                start_account_session(wire, monitor);
                return;
            }
            Verdict::Denied if wire.gone => return,
            Verdict::Denied => {
                wire.say("\nLogin incorrect\n");
                // The next attempt asks for the name again, as login(1).
                hint = None;
            }
            Verdict::Unavailable => {
                wire.say("\nLogin unavailable; try again later.\n");
                return;
            }
        }
    }
    wire.say("Too many failed logins.\n");
}

/// Hand the connection and the negotiated state to the account's process.
fn start_account_session(mut wire: Wire, monitor: &Monitor) {
    // Between commands, so the machine can be handed over whole.
    let until = Instant::now() + Duration::from_secs(1);
    while !wire.state_between_commands() && Instant::now() < until && !wire.gone {
        wire.pump(Duration::from_millis(100));
    }
    let handover = Writer::new(b'H')
        .bytes(&wire.state.encode())
        .bytes(&wire.typeahead)
        .bytes(&wire.raw)
        .finish();
    let e = monitor.start_session(&mut wire.conn, &handover);
    log::error!("cannot start the session: {e}");
    wire.say("\nCannot start the session.\n");
}

/// `login = PROGRAM`: the monitor starts it as root on a terminal; this
/// unprivileged process relays for it.
fn program_login(wire: Wire, monitor: &Monitor, settings: &Settings) {
    let info = &wire.state.info;
    let (rows, cols) = info.rows_cols();
    let request = info.encode(Writer::new(b'P')).finish();
    let terminal = match monitor.terminal_program(rows, cols, &request) {
        Ok(t) => t,
        Err(e) => {
            log::error!("cannot start the login program: {e}");
            let mut wire = wire;
            wire.say("\nLogin unavailable; try again later.\n");
            return;
        }
    };
    let Some(mut tcp) = wire.conn.tcp().and_then(|t| t.try_clone().ok()) else {
        return;
    };
    let watch = match terminal.program {
        Some(pid) => crate::pty::ChildWatch::Pid(pid),
        None => crate::pty::ChildWatch::None,
    };
    let idle = Some(settings.common().idle_timeout);
    let outcome = relay::run(
        &mut tcp,
        terminal.master.as_fd(),
        watch,
        wire.state,
        &wire.typeahead,
        &wire.raw,
        idle,
    );
    log_outcome(&outcome);
    let _ = tcp.shutdown(std::net::Shutdown::Both);
    drop(terminal.master);
    if let Err(e) = monitor.hang_up() {
        log::debug!("hang-up: {e}");
    }
}

/// The account's process: a terminal, the shell, the relay.
fn account_session(s: LoggedIn) {
    let user = s.account.name.clone();
    let Some((state, typed, unread)) = decode_handover(&s.handover) else {
        log::error!("user {user}: bad hand-over");
        return;
    };
    let Some(mut tcp) = s.conn.tcp().and_then(|t| t.try_clone().ok()) else {
        log::error!("user {user}: no connection");
        return;
    };
    let mut unread = unread;
    unread.splice(0..0, s.conn.buffered().iter().copied());
    let (rows, cols) = state.info.rows_cols();
    let term = state.info.choose_term(terminal::terminfo_knows);
    let t = match s.monitor.open_terminal(rows, cols) {
        Ok(t) => t,
        Err(e) => {
            log::error!("user {user}: no terminal: {e}");
            let _ = io::Write::write_all(&mut tcp, b"\r\nNo terminal is available.\r\n");
            return;
        }
    };
    let Some(slave) = t.slave else {
        return;
    };
    if let Some((tx, rx)) = state.info.speed {
        set_speed(&t.master, tx, rx);
    }
    let home = home_directory(&s.account.home);
    if home != s.account.home {
        let _ = io::Write::write_all(&mut tcp, b"No directory, logging in with HOME=/\r\n");
    }
    let display = state.info.display.clone();
    let Some(program) =
        program::shell_program(&s.account, &term, display.as_deref(), &s.env, &home)
    else {
        log::error!("user {user}: cannot build the shell's arguments");
        return;
    };
    let session = match crate::pty::spawn_on(t.master, slave, t.line.clone(), &program, || Ok(())) {
        Ok(p) => p,
        Err(e) => {
            log::error!("user {user}: cannot start the shell: {e}");
            let _ = s.monitor.hang_up();
            return;
        }
    };
    log::info!(
        "user {user}: session on {} (TERM={term}, {rows}x{cols})",
        t.line
    );
    let child = session.child;
    let master = session.master;
    let idle = Some(s.settings.common().idle_timeout);
    let outcome = relay::run(
        &mut tcp,
        master.as_fd(),
        crate::pty::ChildWatch::Pid(child),
        state,
        &typed,
        &unread,
        idle,
    );
    log_outcome(&outcome);
    let _ = tcp.shutdown(std::net::Shutdown::Both);
    // Hang up: our master, then the monitor's (SIGHUP to the session).
    drop(master);
    if let Err(e) = s.monitor.hang_up() {
        log::debug!("hang-up: {e}");
    }
    end_program(child);
    log::info!("user {user}: session ended");
}

fn decode_handover(b: &[u8]) -> Option<(State, Vec<u8>, Vec<u8>)> {
    let (tag, mut r) = Reader::new(b).ok()?;
    if tag != b'H' {
        return None;
    }
    let state = State::decode(r.bytes(8 * 1024).ok()?).ok()?;
    let typed = r.bytes(8 * 1024).ok()?.to_vec();
    let unread = r.bytes(8 * 1024).ok()?.to_vec();
    r.end().ok()?;
    Some((state, typed, unread))
}

fn log_outcome(outcome: &io::Result<crate::pty::Outcome>) {
    match outcome {
        Ok(o) => log::debug!(
            "relay ended: {:?} ({} bytes in, {} out)",
            o.end,
            o.from_network,
            o.to_network
        ),
        Err(e) => log::warn!("relay: {e}"),
    }
}

/// The account's home if it can go there, else "/".
fn home_directory(home: &std::path::Path) -> PathBuf {
    match std::fs::read_dir(home) {
        Ok(_) => home.to_path_buf(),
        Err(_) => PathBuf::from("/"),
    }
}

/// TSPEED: the terminal's speeds, to the nearest standard rate.
fn set_speed(master: &std::os::fd::OwnedFd, transmit: u32, receive: u32) {
    use nix::sys::termios::{cfsetispeed, cfsetospeed, tcgetattr, tcsetattr, BaudRate, SetArg};
    const RATES: &[(u32, BaudRate)] = &[
        (300, BaudRate::B300),
        (1200, BaudRate::B1200),
        (2400, BaudRate::B2400),
        (4800, BaudRate::B4800),
        (9600, BaudRate::B9600),
        (19200, BaudRate::B19200),
        (38400, BaudRate::B38400),
        (57600, BaudRate::B57600),
        (115200, BaudRate::B115200),
        (230400, BaudRate::B230400),
    ];
    let nearest = |r: u32| {
        RATES
            .iter()
            .min_by_key(|(v, _)| v.abs_diff(r))
            .map(|(_, b)| *b)
            .unwrap_or(BaudRate::B38400)
    };
    if let Ok(mut t) = tcgetattr(master.as_fd()) {
        let _ = cfsetospeed(&mut t, nearest(transmit));
        let _ = cfsetispeed(&mut t, nearest(receive));
        let _ = tcsetattr(master.as_fd(), SetArg::TCSANOW, &t);
    }
}

/// Reap the shell after the hang-up; kill what is left of its process
/// group if it does not end.
fn end_program(child: Pid) {
    let deadline = Instant::now() + HANGUP_GRACE;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = killpg(child, Signal::SIGKILL);
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return;
            }
            Err(nix::errno::Errno::EINTR) => {}
            _ => return,
        }
    }
}
