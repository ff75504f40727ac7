//! The privilege split of one TCP connection, the same for every daemon:
//!
//! ```text
//!   monitor (root, per connection)
//!    |-- pre-login process: nopriv_user, chrooted into an empty directory,
//!    |   no new privileges; speaks the protocol, runs TLS, asks the monitor
//!    |   to check credentials
//!    `-- account process: the account that logged in (chrooted when the
//!        service says so); the session proper
//! ```
//!
//! No byte from the network is parsed by a process that is root or can
//! become root again. The monitor reads only its own channel messages,
//! validates every field, and answers a closed set of requests (see
//! `ipc::Request`): check these credentials, start the session of the
//! account just granted, connect from the service's reserved port to the
//! client, and the service's own narrow privileged path (smtpd's lookups
//! and deliveries). It keeps the PAM session open while the account's
//! process runs and closes it at the end, as root.
//!
//! A login under TLS leaves the TLS connection in the pre-login process,
//! which then relays the decrypted stream to the account's process over a
//! socket pair (as Dovecot's login processes do); the account's process
//! never holds the client's TLS state, and the monitor never runs TLS.
//! Without TLS the account's process takes the TCP connection itself, with
//! whatever the client had pipelined after its login line.

pub mod ipc;
mod monitor;
mod relay;
mod terminal;
#[cfg(test)]
mod tests;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rustls::ServerConfig;

use super::config::Settings;
use super::ListenKind;
use crate::auth::Account;
use crate::net::Conn;
use ipc::{Channel, Request, Response};

pub use monitor::{serve, serve_reusable, Context};

/// A TCP service in the privilege split. Each method says which process it
/// runs in; only the root-side ones (`admit`, `anonymous`, `privileged`)
/// run with privileges, and they see nothing from the network but what the
/// monitor decoded and checked.
pub trait TcpProtocol: Sync {
    /// In the unprivileged pre-login process: greet the client and speak
    /// the protocol up to a login, then `PreLogin::start_session`.
    fn prelogin(&self, s: PreLogin);

    /// In the account's process, after `start_session`: the session proper.
    /// Services without logins (smtpd) never get here.
    fn session(&self, s: LoggedIn) {
        let _ = s;
    }

    /// In the monitor, as root: whether a proven account may use this
    /// service, and where its session is confined.
    fn admit(&self, settings: &Settings, account: &Account) -> Result<Plan, String> {
        let _ = (settings, account);
        Ok(Plan::default())
    }

    /// In the monitor, as root: the account and plan of an anonymous login,
    /// or None when the service has none (or it is switched off).
    fn anonymous(&self, settings: &Settings) -> Option<Result<(Account, Plan), String>> {
        let _ = settings;
        None
    }

    /// The local ports connections to the client may come from, for
    /// `Monitor::reserved_port`, tried from the top: ftpd's data port (20
    /// for a server on 21), rshd's 512-1023 for its stderr connection as
    /// rresvport(3) does. None: the service has none.
    fn reserved_ports(&self, local: SocketAddr) -> Option<std::ops::RangeInclusive<u16>> {
        let _ = local;
        None
    }

    /// In the monitor, as root: the service's own narrow privileged path
    /// (smtpd's recipient lookups and deliveries). `request` comes from the
    /// unprivileged side: decode it with bounds, trust nothing in it.
    fn privileged(&self, m: &mut Privileged, request: &[u8]) -> Result<Vec<u8>, String> {
        let _ = (m, request);
        Err("no such request".into())
    }

    /// In the monitor, as root: the login program to start on a terminal
    /// for a client that has not logged in, which authenticates by itself
    /// (telnetd's and rlogind's `login = PROGRAM`). Build its argv and
    /// environment from the configuration; `request` comes from the
    /// unprivileged side (decode it with bounds, trust nothing in it) and
    /// `host` is the client's forward-confirmed name or its address.
    fn terminal_program(
        &self,
        settings: &Settings,
        host: &str,
        request: &[u8],
    ) -> Result<crate::pty::Program, String> {
        let _ = (settings, host, request);
        Err("no login program for this service".into())
    }

    /// Whether clients log in (login_timeout applies before they do).
    fn logins(&self) -> bool {
        true
    }

    /// In the monitor, as root: how this service decides host trust
    /// (`Monitor::trust`: rlogind and rshd's .rhosts and hosts.equiv), or
    /// None when it has none (the request is then refused).
    fn trust(&self, settings: &Settings) -> Option<crate::auth::HostTrust> {
        let _ = settings;
        None
    }

    /// In the monitor, as root: the login program to run on a terminal
    /// for `user` (rlogind's `login = PROGRAM`), or None when the service
    /// has none. `trusted`: the monitor granted host trust for that user
    /// in this connection (the program may then skip its password, as
    /// `login -f` does); `host` is the monitor's own name of the client.
    fn login_program(
        &self,
        settings: &Settings,
        user: &str,
        term: &str,
        host: &str,
        trusted: bool,
    ) -> Option<crate::pty::Program> {
        let _ = (settings, user, term, host, trusted);
        None
    }

    /// A byte stream rather than a line protocol (telnetd, rlogind): the
    /// connection gets no idle timer (a terminal session may rightly be
    /// quiet for hours; the relay has its own), and the service reads it
    /// raw (`Conn`'s `Read`, which keeps the login deadline) rather than
    /// by lines; `Service::line_max` then only sizes the read-ahead buffer.
    fn byte_stream(&self) -> bool {
        false
    }
}

/// Ids and their names.
pub type Names = Vec<(u32, String)>;

/// How the monitor sets up the session of an admitted account.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Confine the session to this directory: chroot when running as root,
    /// otherwise the session resolves paths inside it (see `LoggedIn::root`).
    pub chroot: Option<PathBuf>,
}

/// What the monitor's service hook may use.
pub struct Privileged<'a> {
    pub settings: &'a Settings,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The account proven in this connection (smtpd AUTH), if any.
    pub authenticated: Option<&'a str>,
    /// Started by inetd (no master, no queue runner).
    pub inetd: bool,
    /// The service's own state in this monitor, kept across requests.
    pub state: &'a mut Option<Box<dyn std::any::Any>>,
    /// Descriptors to send with the answer (nntpd's spool reads: the
    /// monitor opens a checked file, the confined process reads it).
    /// Dropped for a told request, which has no answer.
    pub fds: Vec<std::os::fd::OwnedFd>,
}

/// The unprivileged pre-login side of a connection.
pub struct PreLogin {
    pub conn: Conn,
    pub settings: Arc<Settings>,
    pub kind: ListenKind,
    /// Set when tls_cert and tls_key are: the upgrade may be offered.
    pub tls: Option<Arc<ServerConfig>>,
    pub hostname: String,
    pub inetd: bool,
    pub debug: bool,
    pub monitor: Monitor,
}

impl PreLogin {
    /// The greeting text: `banner`, else the host and program names.
    pub fn banner(&self, program: &str) -> String {
        banner(&self.settings, &self.hostname, program)
    }
}

/// The account's side of a connection, after login.
pub struct LoggedIn {
    /// The client: the TCP connection, or the relay of the TLS connection
    /// the pre-login process keeps (`conn.is_tls()` is true then).
    pub conn: Conn,
    pub account: Account,
    /// What the pre-login side handed over (the protocol's state at login).
    pub handover: Vec<u8>,
    /// Descriptors the pre-login side handed over with it, in order
    /// (rshd's stderr connection): `Monitor::start_session_passing`.
    pub passed: Vec<std::os::fd::OwnedFd>,
    /// The environment PAM set for the session.
    pub env: Vec<(String, String)>,
    /// Where the session's paths resolve: "/" when chrooted, the plan's
    /// directory when confinement is by path (not root), else "/".
    pub root: PathBuf,
    /// The plan was carried out with chroot (the system's files are out of
    /// sight).
    pub chrooted: bool,
    /// Names of the ids a chrooted session shows (the account's own, root),
    /// learned before the chroot.
    pub user_names: Names,
    pub group_names: Names,
    pub anonymous: bool,
    pub settings: Arc<Settings>,
    pub kind: ListenKind,
    pub tls: Option<Arc<ServerConfig>>,
    pub hostname: String,
    pub inetd: bool,
    pub debug: bool,
    pub monitor: Monitor,
}

fn banner(settings: &Settings, hostname: &str, program: &str) -> String {
    match &settings.common().banner {
        Some(b) => b.clone(),
        None => format!("{hostname} {program} ready"),
    }
}

/// The monitor's verdict on credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Good: the account's name.
    Granted(String),
    Denied,
    /// The account store could not be consulted.
    Unavailable,
}

/// A pseudo-terminal the monitor opened (`Monitor::terminal`,
/// `Monitor::terminal_program`).
pub struct Terminal {
    pub master: std::os::fd::OwnedFd,
    /// For the account's own program (`Monitor::terminal`); None when the
    /// monitor started the login program on it.
    pub slave: Option<std::os::fd::OwnedFd>,
    /// E.g. "pts/3".
    pub line: String,
    /// The login program, when the monitor started one (its parent is the
    /// monitor, which reaps it; watch it with `pty::ChildWatch::Pid`).
    pub program: Option<nix::unistd::Pid>,
}

/// An unprivileged process's handle on its monitor.
pub struct Monitor {
    /// Shared with the pre-login process's own loop, which keeps the
    /// channel between reused connections.
    chan: std::rc::Rc<Channel>,
}

impl Monitor {
    fn ask(&self, req: &Request) -> std::io::Result<(Response, Vec<std::os::fd::OwnedFd>)> {
        self.ask_passing(req, &[])
    }

    fn ask_passing(
        &self,
        req: &Request,
        fds: &[std::os::fd::RawFd],
    ) -> std::io::Result<(Response, Vec<std::os::fd::OwnedFd>)> {
        self.chan.send(&req.encode(), fds)?;
        let Some((msg, fds)) = self.chan.recv()? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the monitor is gone",
            ));
        };
        Ok((Response::decode(&msg)?, fds))
    }

    fn verdict(&self, req: &Request) -> Verdict {
        match self.ask(req) {
            Ok((Response::Granted { user }, _)) => Verdict::Granted(user),
            Ok((Response::Denied, _)) => Verdict::Denied,
            Ok(_) => Verdict::Unavailable,
            Err(e) => {
                log::error!("monitor: {e}");
                Verdict::Unavailable
            }
        }
    }

    /// Check a name and password (a failure takes at least a second).
    pub fn password(&self, user: &str, password: &str) -> Verdict {
        self.verdict(&Request::Password {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// A login at a terminal (telnetd, rlogind): the monitor runs the
    /// conversation (PAM's, or "login:" and "Password:" with a
    /// passwd_file) and each prompt and message comes to `terminal`, which
    /// shows it to the person and returns the answer (echo off where the
    /// prompt says so). `user`: the name already known, if any.
    pub fn converse(
        &self,
        user: Option<&str>,
        terminal: &mut dyn crate::auth::Converse,
    ) -> Verdict {
        let req = Request::Converse {
            user: user.unwrap_or_default().to_string(),
        };
        if let Err(e) = self.chan.send(&req.encode(), &[]) {
            log::error!("monitor: {e}");
            return Verdict::Unavailable;
        }
        loop {
            let msg = match self.chan.recv() {
                Ok(Some((msg, _))) => msg,
                _ => return Verdict::Unavailable,
            };
            match Response::decode(&msg) {
                Ok(Response::Prompt { text, echo }) => {
                    let answer = terminal.prompt(&text, echo);
                    if self
                        .chan
                        .send(&Request::Answer(answer).encode(), &[])
                        .is_err()
                    {
                        return Verdict::Unavailable;
                    }
                }
                Ok(Response::Message { text, error }) => terminal.show(&text, error),
                Ok(Response::Granted { user }) => return Verdict::Granted(user),
                Ok(Response::Denied) => return Verdict::Denied,
                _ => return Verdict::Unavailable,
            }
        }
    }

    /// A login by host trust: may `ruser` at the client (whose address the
    /// monitor knows itself) be the local account `luser` without a
    /// password? Asked once per connection; a refusal takes no delay and
    /// is not counted as a failed login (a password may follow).
    pub fn trust(&self, ruser: &str, luser: &str) -> Verdict {
        self.verdict(&Request::Trust {
            ruser: ruser.to_string(),
            luser: luser.to_string(),
        })
    }

    /// The client's host name, forward-confirmed by the monitor, or its
    /// numeric address.
    pub fn peer_name(&self) -> std::io::Result<String> {
        match self.ask(&Request::PeerName)? {
            (Response::PeerName { name }, _) => Ok(name),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// The login on terminal `line` (the account's "pts/N") by process
    /// `pid` goes into utmp and wtmp, written by the monitor (root's
    /// files); its logout record follows when the connection ends.
    pub fn login_record(&self, line: &str, pid: i32) -> std::io::Result<()> {
        match self.ask(&Request::LoginRecord {
            line: line.to_string(),
            pid,
        })? {
            (Response::Done, _) => Ok(()),
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// The service's login program on a new terminal (see
    /// `TcpProtocol::login_program`): the pty master, for the relay.
    pub fn terminal(
        &self,
        user: &str,
        term: &str,
        rows: u16,
        cols: u16,
    ) -> std::io::Result<std::fs::File> {
        let req = Request::Terminal {
            user: user.to_string(),
            term: term.to_string(),
            rows,
            cols,
        };
        match self.ask(&req)? {
            (Response::Socket, fds) => match fds.into_iter().next() {
                Some(fd) => Ok(std::fs::File::from(fd)),
                None => Err(std::io::Error::other("no terminal came")),
            },
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// An anonymous login, if the service offers one.
    pub fn anonymous(&self, ident: &str) -> Verdict {
        self.verdict(&Request::Anonymous {
            ident: ident.to_string(),
        })
    }

    /// A connection to the client's `port` from the service's reserved
    /// local port, made by the monitor.
    pub fn reserved_port(&self, port: u16) -> std::io::Result<TcpStream> {
        match self.ask(&Request::ReservedPort { port })? {
            (Response::Socket, fds) => match fds.into_iter().next() {
                Some(fd) => Ok(TcpStream::from(fd)),
                None => Err(std::io::Error::other("no socket came")),
            },
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// A pseudo-terminal for this account's session (telnetd): the monitor
    /// opens it, makes it the account's, writes the login record, and
    /// gives it back at `hang_up` (or when this process ends).
    pub fn open_terminal(&self, rows: u16, cols: u16) -> std::io::Result<Terminal> {
        match self.ask(&Request::OpenTerminal { rows, cols })? {
            (Response::Terminal { line, .. }, fds) => {
                let mut fds = fds.into_iter();
                match (fds.next(), fds.next()) {
                    (Some(master), Some(slave)) => Ok(Terminal {
                        master,
                        slave: Some(slave),
                        line,
                        program: None,
                    }),
                    _ => Err(std::io::Error::other("no terminal came")),
                }
            }
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// Start the service's login program on a new terminal (the monitor
    /// builds it with `TcpProtocol::terminal_program` from `request`); the
    /// login deadline no longer applies: the program has its own.
    pub fn terminal_program(
        &self,
        rows: u16,
        cols: u16,
        request: &[u8],
    ) -> std::io::Result<Terminal> {
        let req = Request::Program {
            rows,
            cols,
            request: request.to_vec(),
        };
        match self.ask(&req)? {
            (Response::Terminal { line, pid }, fds) => match fds.into_iter().next() {
                Some(master) if pid > 0 && pid <= i32::MAX as u32 => Ok(Terminal {
                    master,
                    slave: None,
                    line,
                    program: Some(nix::unistd::Pid::from_raw(pid as i32)),
                }),
                _ => Err(std::io::Error::other("no terminal came")),
            },
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// The terminal session is over: the monitor writes the logout record,
    /// gives the terminal back to root and closes its side (the hang-up).
    pub fn hang_up(&self) -> std::io::Result<()> {
        match self.ask(&Request::HangUp)? {
            (Response::Released, _) => Ok(()),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// A request of the service's own privileged path that wants no
    /// answer (its failure shows in the next answer).
    pub fn tell(&self, request: &[u8]) -> std::io::Result<()> {
        self.chan
            .send(&Request::Tell(request.to_vec()).encode(), &[])
    }

    /// A request of the service's own privileged path.
    pub fn service(&self, request: &[u8]) -> std::io::Result<Vec<u8>> {
        self.service_with_fds(request).map(|(b, _)| b)
    }

    /// A request of the service's own privileged path whose answer may
    /// carry descriptors (`Privileged::fds`).
    pub fn service_with_fds(
        &self,
        request: &[u8],
    ) -> std::io::Result<(Vec<u8>, Vec<std::os::fd::OwnedFd>)> {
        match self.ask(&Request::Service(request.to_vec()))? {
            (Response::Service(b), fds) => Ok((b, fds)),
            (Response::Failed(why), _) => Err(std::io::Error::other(why)),
            _ => Err(std::io::Error::other("unexpected answer")),
        }
    }

    /// Start the session of the account just granted, handing it `conn`
    /// and `handover`. Does not return when it worked: without TLS this
    /// process ends at once (the account's process has the connection);
    /// under TLS it relays for the account's process until either side
    /// closes, then ends. Returns the error when it did not work.
    pub fn start_session(&self, conn: &mut Conn, handover: &[u8]) -> std::io::Error {
        self.start_session_passing(conn, handover, &[])
    }

    /// `start_session`, handing the account's process `fds` as well (at
    /// most `sys::MAX_FDS`; they come in `LoggedIn::passed`): a connection
    /// the protocol opened before login (rshd's stderr connection).
    pub fn start_session_passing(
        &self,
        conn: &mut Conn,
        handover: &[u8],
        fds: &[std::os::fd::BorrowedFd],
    ) -> std::io::Error {
        use std::os::fd::AsRawFd;
        if fds.len() > crate::sys::MAX_FDS {
            return std::io::Error::other("too many descriptors to hand over");
        }
        let raw: Vec<std::os::fd::RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let tls = conn.is_tls();
        let unread = if tls {
            Vec::new()
        } else {
            conn.buffered().to_vec()
        };
        let req = Request::Start {
            handover: handover.to_vec(),
            unread,
            tls,
        };
        match self.ask_passing(&req, &raw) {
            Ok((Response::Started, fds)) if !tls => {
                drop(fds);
                // This process's part is over (it is a supervised child).
                crate::runtime::supervise::end_child(0)
            }
            Ok((Response::Started, fds)) => match fds.into_iter().next() {
                Some(fd) => {
                    relay::run(conn, std::os::unix::net::UnixStream::from(fd));
                    crate::runtime::supervise::end_child(0)
                }
                None => std::io::Error::other("no relay came"),
            },
            Ok((Response::Failed(why), _)) => std::io::Error::other(why),
            Ok(_) => std::io::Error::other("unexpected answer"),
            Err(e) => e,
        }
    }
}

/// When the pre-login process must be done: `login_timeout` after the
/// connection, for services with logins.
fn login_deadline(settings: &Settings, logins: bool) -> Option<Instant> {
    let t = settings.common().login_timeout;
    (logins && !t.is_zero()).then(|| Instant::now() + t)
}
