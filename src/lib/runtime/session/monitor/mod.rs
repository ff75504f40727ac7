//! The root side of one connection: start the pre-login process, answer
//! its requests (and later the account process's), start the account's
//! session, and clean up (the PAM session is closed here, as root, when the
//! account's process ends).

mod logins;
mod terminals;

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rustls::ServerConfig;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::ipc::{Channel, Request, Response};
use super::{login_deadline, LoggedIn, Monitor, Names, Plan, PreLogin, Privileged, TcpProtocol};
use crate::auth::{self, Account, Authenticator, Login};
use crate::net::{Conn, Stream};
use crate::runtime::config::Settings;
use crate::runtime::supervise::{Children, Kind};
use crate::runtime::ListenKind;

/// What every connection of a service shares, fixed when the configuration
/// is loaded.
pub struct Context {
    pub settings: Arc<Settings>,
    pub tls: Option<Arc<ServerConfig>>,
    pub hostname: String,
    pub inetd: bool,
    pub debug: bool,
    /// The longest line the protocol reads.
    pub line_max: usize,
    /// The service's extra listener keys (to name a connection's listener
    /// between processes).
    pub extra_listeners: &'static [&'static str],
    /// The pre-login account and its empty directory (as root).
    pub nopriv: Option<(Account, PathBuf)>,
}

impl Context {
    /// Resolve the pre-login account and directory (as root); an error names
    /// what is wrong, for the operator.
    pub fn prepare(settings: &Settings) -> Result<Option<(Account, PathBuf)>, String> {
        if !auth::running_as_root() {
            return Ok(None);
        }
        let name = settings.common().nopriv_user.as_str();
        let account = auth::system_account(name)
            .ok_or_else(|| format!("nopriv_user: no account named '{name}'"))?;
        if account.uid == 0 {
            return Err(format!("nopriv_user: '{name}' is root"));
        }
        let empty = auth::empty_dir().map_err(|e| format!("empty directory: {e}"))?;
        Ok(Some((account, empty)))
    }
}

/// Extra time the pre-login process gets past its login deadline before the
/// monitor ends it (it says goodbye itself at the deadline).
const DEADLINE_GRACE: Duration = Duration::from_secs(5);

/// One side the monitor listens to.
struct Side {
    pid: Pid,
    /// Shared with a login conversation that relays prompts on it.
    chan: Rc<Channel>,
}

/// The monitor's own state for one connection.
struct MonitorState<'a> {
    proto: &'static dyn TcpProtocol,
    ctx: &'a Context,
    kind: ListenKind,
    peer: SocketAddr,
    local: SocketAddr,
    auth: Authenticator,
    /// Credentials checked and good: the account, its plan and its login
    /// (the PAM session, closed when this is dropped).
    granted: Option<(Account, Plan, Option<Login>, bool)>,
    /// The account proven (kept after the session started).
    proven: Option<String>,
    failures: u64,
    /// The host-trust question was asked in this connection.
    trust_asked: bool,
    /// The client's forward-confirmed name, once looked up (None inside:
    /// it has none).
    peer_name: Option<Option<String>>,
    /// The login record written for this connection (line, pid), closed
    /// when it ends.
    record: Option<(String, i32)>,
    /// The service's login program was started in this connection.
    terminal_started: bool,
    children: Children<()>,
    service_state: Option<Box<dyn std::any::Any>>,
    /// The connection's pseudo-terminal (terminal services).
    held: Option<super::terminal::Held>,
}

/// Serve one TCP connection through the privilege split; returns the exit
/// code of the connection's process.
pub fn serve(
    proto: &'static dyn TcpProtocol,
    tcp: TcpStream,
    kind: ListenKind,
    ctx: &Context,
) -> i32 {
    serve_connections(proto, tcp, kind, ctx, &mut || None, false)
}

/// How a connection's part of the monitor's work ended.
enum Ended {
    /// The pre-login process is gone (or was told to go).
    Gone,
    /// The pre-login process finished the connection and waits for another
    /// (services without logins, reused as smtpd's are).
    Done,
}

/// Serve connections through the privilege split, the first and then each
/// that `next` gives (a reused monitor: forking one per connection costs
/// more than an FTP login's dialogue), with one pre-login process for them
/// all when the service has no logins (smtpd: a process that never becomes
/// anyone is reused, as Postfix's smtpd is); returns the exit code.
pub fn serve_reusable(
    proto: &'static dyn TcpProtocol,
    tcp: TcpStream,
    kind: ListenKind,
    ctx: &Context,
    next: &mut dyn FnMut() -> Option<(TcpStream, ListenKind)>,
) -> i32 {
    serve_connections(proto, tcp, kind, ctx, next, true)
}

/// `serve` (one connection) or `serve_reusable` (`pooled`: one after
/// another).
fn serve_connections(
    proto: &'static dyn TcpProtocol,
    tcp: TcpStream,
    kind: ListenKind,
    ctx: &Context,
    next: &mut dyn FnMut() -> Option<(TcpStream, ListenKind)>,
    pooled: bool,
) -> i32 {
    let reuse = !proto.logins();
    let mut m = MonitorState {
        proto,
        ctx,
        kind,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        auth: ctx.settings.common().authenticator(),
        granted: None,
        proven: None,
        failures: 0,
        trust_asked: false,
        peer_name: None,
        record: None,
        terminal_started: false,
        children: Children::new(),
        service_state: None,
        held: None,
    };
    if pooled && proto.logins() {
        // A monitor that checks a login per connection, again and again:
        // its PAM modules are loaded once, for all of them.
        m.auth.keep_loaded();
    }
    let mut code = 0;
    let mut prelogin: Option<Side> = None;
    let mut conn = Some((tcp, kind));
    while let Some((tcp, kind)) = conn.take() {
        let (peer, local) = match crate::net::addresses(&tcp) {
            Ok(a) => a,
            Err(_) => {
                log::info!("connection lost before it started");
                code = 1;
                break;
            }
        };
        m.begin_connection(peer, local, kind);
        let started = Instant::now();
        log::info!("connection from {peer}");
        let side = match prelogin.take() {
            Some(side) => match side.hand(&tcp, kind, ctx) {
                Ok(()) => Ok(side),
                Err(e) => Err(e),
            },
            None => m.start_prelogin(&tcp, reuse),
        };
        let ended = match side.and_then(|side| m.run(side, &tcp)) {
            Ok((ended, side)) => {
                prelogin = side;
                ended
            }
            Err(e) => {
                log::warn!("session with {peer}: {e}");
                code = 1;
                Ended::Gone
            }
        };
        m.end_connection();
        if prelogin.is_none() {
            // Whatever of this connection is still there (a pre-login
            // process past its deadline, a relay) goes before the next.
            m.stop_children();
        }
        log::info!(
            "session with {peer} ended after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // This connection is over here: the client sees its end once the
        // session's processes have closed it too, not when the next one
        // comes (a byte stream ends only at EOF: rshd's command output, a
        // terminal's relay, closed by its last holder).
        drop(tcp);
        // The monitor serves the next connection it is handed (it never
        // read the network and is still root); the pre-login process only
        // when it waits for one (services without logins), else a new one
        // is forked: a login service's pre-login process has seen a
        // password, and the next client's must not meet it.
        match ended {
            Ended::Done if reuse => conn = next(),
            Ended::Gone if code == 0 => conn = next(),
            _ => {}
        }
    }
    // The pre-login process waiting for another connection is let go.
    if let Some(side) = prelogin.take() {
        drop(side.chan);
        m.children.wait(side.pid);
    }
    m.stop_children();
    code
}

impl Side {
    /// Give a waiting pre-login process its next connection.
    fn hand(&self, tcp: &TcpStream, kind: ListenKind, ctx: &Context) -> std::io::Result<()> {
        let msg = Response::Connection {
            kind: encode_kind(kind, ctx),
        }
        .encode();
        self.chan.send(&msg, &[tcp.as_raw_fd()])
    }
}

fn encode_kind(kind: ListenKind, ctx: &Context) -> u8 {
    match kind {
        ListenKind::Plain => 0,
        ListenKind::Tls => 1,
        ListenKind::Extra(name) => ctx
            .extra_listeners
            .iter()
            .position(|k| *k == name)
            .map_or(0, |i| 2 + i as u8),
    }
}

fn decode_kind(k: u8, ctx: &Context) -> Option<ListenKind> {
    match k {
        0 => Some(ListenKind::Plain),
        1 => Some(ListenKind::Tls),
        n => ctx
            .extra_listeners
            .get(n as usize - 2)
            .map(|k| ListenKind::Extra(k)),
    }
}

impl MonitorState<'_> {
    /// End every child process still there, and reap it.
    fn stop_children(&mut self) {
        for pid in self.children.pids() {
            let _ = kill(pid, Signal::SIGTERM);
            self.children.wait(pid);
        }
    }

    fn begin_connection(&mut self, peer: SocketAddr, local: SocketAddr, kind: ListenKind) {
        self.peer = peer;
        self.local = local;
        self.kind = kind;
        self.failures = 0;
        self.proven = None;
        self.trust_asked = false;
        self.peer_name = None;
        self.terminal_started = false;
    }

    /// Forget everything of the connection that ended (a message half
    /// received is dropped with the service's state; the PAM session
    /// closes with the login).
    fn end_connection(&mut self) {
        // The terminal is given back before the PAM session closes, as
        // login(1) does.
        if let Some(t) = self.held.take() {
            t.release();
        }
        if let Some((line, pid)) = self.record.take() {
            crate::sys::write_utmp(
                &crate::sys::LoginRecord {
                    user: "",
                    line: &line,
                    host: "",
                    pid,
                },
                false,
            );
        }
        self.service_state = None;
        drop(self.granted.take());
        self.proven = None;
    }

    /// Answer the processes of one connection until it ends. Returns how,
    /// and the pre-login process when it waits for another connection.
    fn run(&mut self, prelogin: Side, tcp: &TcpStream) -> std::io::Result<(Ended, Option<Side>)> {
        let deadline =
            login_deadline(&self.ctx.settings, self.proto.logins()).map(|d| d + DEADLINE_GRACE);
        let prelogin_pid = prelogin.pid;
        let mut sides = vec![prelogin];
        // Until the account's session starts, the pre-login process has a
        // deadline; after, the monitor waits for the account's process.
        let mut session_started = false;
        while !sides.is_empty() {
            let timeout = match (deadline, session_started) {
                (Some(d), false) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        log::info!("{}: no login in time; connection closed", self.peer);
                        return Ok((Ended::Gone, None));
                    }
                    PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                        .unwrap_or(PollTimeout::NONE)
                }
                _ => PollTimeout::NONE,
            };
            let ready: Vec<usize> = {
                let mut fds: Vec<PollFd> = sides
                    .iter()
                    .map(|s| PollFd::new(s.chan.as_fd(), PollFlags::POLLIN))
                    .collect();
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                fds.iter()
                    .enumerate()
                    .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect()
            };
            // Highest index first, so removals keep the others' places.
            for i in ready.into_iter().rev() {
                let (msg, passed) = match sides[i].chan.recv() {
                    // Descriptors count only with a Start (see `answer`).
                    Ok(Some((msg, fds))) => (msg, fds),
                    Ok(None) | Err(_) => {
                        // That process is done (a relay ends by itself once
                        // the account's process has closed its side).
                        let side = sides.remove(i);
                        self.children.wait(side.pid);
                        continue;
                    }
                };
                let req = match Request::decode(&msg) {
                    Ok(r) => r,
                    Err(_) => {
                        log::warn!("{}: malformed request from the session; ended", self.peer);
                        return Ok((Ended::Gone, None));
                    }
                };
                if let Request::Tell(body) = &req {
                    if let (Err(why), _) = self.service(body) {
                        log::warn!("{}: {why}; ended", self.peer);
                        return Ok((Ended::Gone, None));
                    }
                    continue;
                }
                if req == Request::Done {
                    // Only a reusable pre-login process, between connections.
                    if sides[i].pid != prelogin_pid || session_started || self.proto.logins() {
                        return Ok((Ended::Gone, None));
                    }
                    let side = sides.remove(i);
                    return Ok((Ended::Done, Some(side)));
                }
                let program = matches!(req, Request::Program { .. });
                let (reply, fds, started) =
                    self.answer(req, tcp, &sides[i].chan, sides[i].pid, passed);
                // A login program authenticates by itself: from now on the
                // pre-login process relays for it, with no login deadline.
                if program && matches!(reply, Response::Terminal { .. }) {
                    session_started = true;
                }
                let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
                if sides[i].chan.send(&reply.encode(), &raw).is_err() {
                    continue;
                }
                drop(fds);
                if let Some(account_side) = started {
                    session_started = true;
                    sides.push(account_side);
                    // From here the monitor only waits (for hours, for a
                    // terminal session): what the login freed goes back.
                    crate::sys::release_free_memory();
                }
            }
        }
        Ok((Ended::Gone, None))
    }

    /// Fork the pre-login process: the client's connection and one end of
    /// the channel are all it keeps.
    fn start_prelogin(&mut self, tcp: &TcpStream, reuse: bool) -> std::io::Result<Side> {
        let (mine, theirs) = Channel::pair()?;
        let tcp = tcp.try_clone()?;
        let keep = [tcp.as_raw_fd(), theirs.raw_fd()];
        let ctx = self.ctx;
        let (proto, kind) = (self.proto, self.kind);
        let pid = self.children.spawn(Kind::PreLogin, (), &keep, move || {
            if let Some((nopriv, empty)) = &ctx.nopriv {
                if let Err(e) = auth::enter_prelogin(nopriv, empty) {
                    log::error!("cannot enter the pre-login confinement: {e}");
                    return 1;
                }
            } else if let Err(e) = auth::enter_prelogin(&current_account(), Path::new("/")) {
                log::error!("cannot enter the pre-login confinement: {e}");
                return 1;
            }
            prelogin_main(proto, tcp, kind, ctx, theirs, reuse)
        })?;
        Ok(Side {
            pid,
            chan: Rc::new(mine),
        })
    }

    /// Answer one request: the reply, descriptors to send with it, and the
    /// account's process when this started one.
    fn answer(
        &mut self,
        req: Request,
        tcp: &TcpStream,
        chan: &Rc<Channel>,
        from: Pid,
        passed: Vec<OwnedFd>,
    ) -> (Response, Vec<OwnedFd>, Option<Side>) {
        let none = |r| (r, Vec::new(), None);
        match req {
            Request::Password { user, password } => none(self.password(&user, &password)),
            Request::Converse { user } => none(self.converse(&user, chan)),
            // Only inside a conversation.
            Request::Answer(_) => none(Response::Failed("no question asked".into())),
            Request::Anonymous { ident } => none(self.anonymous(&ident)),
            Request::Trust { ruser, luser } => none(self.trust(&ruser, &luser)),
            Request::PeerName => none(Response::PeerName {
                name: self.peer_name(),
            }),
            Request::Terminal {
                user,
                term,
                rows,
                cols,
            } => match self.terminal(&user, &term, rows, cols) {
                Ok(master) => (Response::Socket, vec![master], None),
                Err(why) => {
                    log::warn!("{}: no terminal: {why}", self.peer);
                    none(Response::Failed(why))
                }
            },
            Request::LoginRecord { line, pid } => none(match self.login_record(&line, pid) {
                Ok(()) => Response::Done,
                Err(why) => {
                    log::warn!("{}: no login record: {why}", self.peer);
                    Response::Failed(why)
                }
            }),
            Request::Start {
                handover,
                unread,
                tls,
            } => match self.start_account(tcp, handover, unread, tls, passed) {
                Ok((relay, side)) => (Response::Started, relay.into_iter().collect(), Some(side)),
                Err(e) => {
                    log::error!("cannot start the session for {}: {e}", self.peer);
                    none(Response::Failed("cannot start the session".into()))
                }
            },
            Request::ReservedPort { port } => match self.reserved_port(port) {
                Ok(sock) => (Response::Socket, vec![OwnedFd::from(sock)], None),
                Err(e) => none(Response::Failed(e.to_string())),
            },
            // Handled by `run`.
            Request::Done | Request::Tell(_) => none(Response::Failed("not now".into())),
            Request::Service(body) => match self.service(&body) {
                (Ok(b), fds) => (Response::Service(b), fds, None),
                (Err(why), _) => none(Response::Failed(why)),
            },
            Request::OpenTerminal { rows, cols } => match self.open_terminal(rows, cols, from) {
                Ok((line, fds)) => (Response::Terminal { line, pid: 0 }, fds, None),
                Err(why) => {
                    log::error!("terminal for {}: {why}", self.peer);
                    none(Response::Failed(why))
                }
            },
            Request::Program {
                rows,
                cols,
                request,
            } => match self.start_program(rows, cols, &request) {
                Ok((line, pid, master)) => (Response::Terminal { line, pid }, vec![master], None),
                Err(why) => {
                    log::error!("login program for {}: {why}", self.peer);
                    none(Response::Failed(why))
                }
            },
            Request::HangUp => {
                if let Some(t) = self.held.take() {
                    t.release();
                }
                none(Response::Released)
            }
        }
    }

    /// The service's own privileged path: its answer, and the
    /// descriptors to send with it.
    fn service(&mut self, body: &[u8]) -> (Result<Vec<u8>, String>, Vec<OwnedFd>) {
        let mut p = Privileged {
            settings: &self.ctx.settings,
            peer: self.peer,
            local: self.local,
            authenticated: self.proven.as_deref(),
            inetd: self.ctx.inetd,
            state: &mut self.service_state,
            fds: Vec::new(),
        };
        let answer = self.proto.privileged(&mut p, body);
        (answer, p.fds)
    }

    /// Fork the account's process. With TLS, a socket pair joins it to the
    /// pre-login process, which relays; the pre-login end is returned.
    fn start_account(
        &mut self,
        tcp: &TcpStream,
        handover: Vec<u8>,
        unread: Vec<u8>,
        tls: bool,
        passed: Vec<OwnedFd>,
    ) -> std::io::Result<(Option<OwnedFd>, Side)> {
        let Some((account, plan, login, anonymous)) = self.granted.as_ref() else {
            return Err(std::io::Error::other("start before a login was granted"));
        };
        let (relay_end, stream) = if tls {
            let (a, b) = UnixStream::pair()?;
            (Some(OwnedFd::from(a)), Stream::Relayed(b))
        } else {
            (None, Stream::Plain(tcp.try_clone()?))
        };
        let (mine, theirs) = Channel::pair()?;
        // The pre-login side's descriptors go to the account's process as
        // they are: they were already the unprivileged side's.
        let mut keep = vec![stream.fd().as_raw_fd(), theirs.raw_fd()];
        keep.extend(passed.iter().map(|f| f.as_raw_fd()));
        let env = login.as_ref().map(|l| l.pam_env()).unwrap_or_default();
        let chroot = plan.chroot.clone().filter(|_| auth::running_as_root());
        let (user_names, group_names) = if chroot.is_some() {
            names_for(account)
        } else {
            (Vec::new(), Vec::new())
        };
        let root = match (&plan.chroot, &chroot) {
            (_, Some(_)) => PathBuf::from("/"),
            (Some(dir), None) => dir.clone(),
            (None, _) => PathBuf::from("/"),
        };
        let (peer, local, kind, ctx, proto) =
            (self.peer, self.local, self.kind, self.ctx, self.proto);
        let account = account.clone();
        let anonymous = *anonymous;
        let pid = self.children.spawn(Kind::Account, (), &keep, move || {
            if let Some(dir) = &chroot {
                if let Err(e) = auth::enter_chroot(dir) {
                    log::error!("user {}: cannot enter {}: {e}", account.name, dir.display());
                    return 1;
                }
            }
            if let Err(e) = auth::drop_privileges(&account) {
                log::error!("user {}: cannot switch to the account: {e}", account.name);
                return 1;
            }
            let mut conn = match Conn::resume(stream, peer, local, ctx.line_max + 2, &unread) {
                Ok(c) => c,
                Err(_) => return 1,
            };
            if !proto.byte_stream() {
                let _ = conn.set_idle_timeout(Some(ctx.settings.common().idle_timeout));
            }
            proto.session(LoggedIn {
                conn,
                account,
                handover,
                passed,
                env,
                root,
                chrooted: chroot.is_some(),
                user_names,
                group_names,
                anonymous,
                settings: ctx.settings.clone(),
                kind,
                tls: ctx.tls.clone(),
                hostname: ctx.hostname.clone(),
                inetd: ctx.inetd,
                debug: ctx.debug,
                monitor: Monitor {
                    chan: std::rc::Rc::new(theirs),
                },
            });
            0
        })?;
        Ok((
            relay_end,
            Side {
                pid,
                chan: Rc::new(mine),
            },
        ))
    }

    /// Connect from one of the service's reserved ports to the client's
    /// address (never elsewhere: a privileged source port is what .rhosts
    /// trust rests on, so a session must not get one to point anywhere).
    fn reserved_port(&self, port: u16) -> std::io::Result<Socket> {
        let Some(ports) = self.proto.reserved_ports(self.local) else {
            return Err(std::io::Error::other("no reserved port for this service"));
        };
        if port == 0 {
            return Err(std::io::Error::other("port 0"));
        }
        let to = SocketAddr::new(self.peer.ip(), port);
        let mut last = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        for source in ports.rev() {
            let from = SocketAddr::new(self.local.ip(), source);
            let s = Socket::new(Domain::for_address(from), Type::STREAM, Some(Protocol::TCP))?;
            s.set_reuse_address(true)?;
            s.set_cloexec(true)?;
            if let Err(e) = s.bind(&SockAddr::from(from)) {
                last = e;
                continue;
            }
            match s.connect_timeout(&SockAddr::from(to), Duration::from_secs(30)) {
                Ok(()) => return Ok(s),
                // That port is still tied to an earlier connection to the
                // same place: the next one may not be.
                Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

/// The names a chrooted session shows for its own ids and root's.
fn names_for(account: &Account) -> (Names, Names) {
    use nix::unistd::{Gid, Group, Uid, User};
    let mut users = vec![(0, "root".to_string())];
    let mut groups = vec![(0, "root".to_string())];
    users.push((account.uid, account.name.clone()));
    if !account.virtual_user {
        if let Ok(Some(u)) = User::from_uid(Uid::from_raw(account.uid)) {
            users.push((account.uid, u.name));
        }
    }
    if let Ok(Some(g)) = Group::from_gid(Gid::from_raw(account.gid)) {
        groups.push((account.gid, g.name));
    }
    (users, groups)
}

/// This process's own identity, as an account (when not root, the
/// pre-login process stays who we are).
fn current_account() -> Account {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    Account {
        name: String::new(),
        uid,
        gid,
        home: PathBuf::from("/"),
        shell: PathBuf::from("/bin/sh"),
        virtual_user: true,
        groups: vec![],
    }
}

/// The pre-login process: make the connection (implicit TLS first when the
/// listener asks for it) and hand it to the protocol.
fn prelogin_main(
    proto: &'static dyn TcpProtocol,
    tcp: TcpStream,
    kind: ListenKind,
    ctx: &Context,
    chan: Channel,
    reuse: bool,
) -> i32 {
    let chan = std::rc::Rc::new(chan);
    let mut next = Some((tcp, kind));
    while let Some((tcp, kind)) = next.take() {
        let monitor = Monitor { chan: chan.clone() };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            one_connection(proto, tcp, kind, ctx, monitor)
        }));
        if outcome.is_err() || !reuse {
            return i32::from(outcome.is_err());
        }
        // Ready for another connection: the monitor sends it, or closes
        // the channel (then this process ends).
        if chan.send(&Request::Done.encode(), &[]).is_err() {
            return 0;
        }
        next = match chan.recv() {
            Ok(Some((msg, fds))) => match (Response::decode(&msg), fds.into_iter().next()) {
                (Ok(Response::Connection { kind }), Some(fd)) => {
                    decode_kind(kind, ctx).map(|k| (TcpStream::from(fd), k))
                }
                _ => None,
            },
            _ => None,
        };
    }
    0
}

/// One connection in the pre-login process.
fn one_connection(
    proto: &'static dyn TcpProtocol,
    tcp: TcpStream,
    kind: ListenKind,
    ctx: &Context,
    monitor: Monitor,
) {
    let mut conn = match Conn::new(tcp, ctx.line_max + 2) {
        Ok(c) => c,
        Err(e) => {
            log::info!("connection lost before it started: {e}");
            return;
        }
    };
    if !proto.byte_stream() {
        let _ = conn.set_idle_timeout(Some(ctx.settings.common().idle_timeout));
    }
    conn.set_deadline(login_deadline(&ctx.settings, proto.logins()));
    if kind == ListenKind::Tls {
        let Some(cfg) = ctx.tls.as_ref() else {
            return;
        };
        if let Err(e) = conn.start_tls(cfg) {
            log::info!("TLS handshake with {} failed: {e}", conn.peer);
            return;
        }
    }
    proto.prelogin(PreLogin {
        conn,
        settings: ctx.settings.clone(),
        kind,
        tls: ctx.tls.clone(),
        hostname: ctx.hostname.clone(),
        inetd: ctx.inetd,
        debug: ctx.debug,
        monitor,
    });
}
