//! inetd mode and the standalone master.
//!
//! The master binds every listener, accepts, checks the limits and forks one
//! session process per connection; it never reads from a client. It reaps
//! children on SIGCHLD, re-reads its configuration on SIGHUP and on SIGTERM
//! closes its listeners and exits while sessions run to their end.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustls::ServerConfig;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::config::Settings;
use super::invocation::{Invocation, Mode};
use super::pool::{self, Pool};
use super::session::{self, Context};
use super::supervise::{self, Children, Kind};
use super::{hostname, log as dlog, Handler, ListenKind, Service, UdpSession};
use crate::sys;

/// Load the TLS configuration when `tls_cert` and `tls_key` are set.
/// The pairing of the keys is checked with the configuration
/// (`Common::build`); here the files are read.
pub fn load_tls(s: &Settings) -> Result<Option<Arc<ServerConfig>>, String> {
    match (&s.common().tls_cert, &s.common().tls_key) {
        (Some(c), Some(k)) => crate::net::tls::server_config(c, k)
            .map(Some)
            .map_err(|e| format!("TLS: {e}")),
        _ => Ok(None),
    }
}

/// What every connection shares: settings, TLS, and (as root) the
/// pre-login account and its empty directory, resolved once.
fn context(
    service: &Service,
    inv: &Invocation,
    settings: &Arc<Settings>,
    tls: &Option<Arc<ServerConfig>>,
) -> Result<Context, String> {
    let nopriv = match service.handler {
        Handler::Split(_) => Context::prepare(settings)?,
        _ => None,
    };
    Ok(Context {
        settings: settings.clone(),
        tls: tls.clone(),
        hostname: hostname(),
        inetd: inv.mode == Mode::Inetd,
        debug: inv.debug,
        line_max: service.line_max,
        extra_listeners: service.extra_listeners,
        nopriv,
    })
}

/// No core files: a session's memory holds passwords and mail.
fn forbid_core_dumps() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
}

/// Log panics through the logger (stderr may be a client's socket).
fn install_panic_logger() {
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}");
    }));
}

/// inetd mode: the connection (or, for UDP, the bound socket) is fd 0.
pub fn run_inetd(
    service: &'static Service,
    inv: &Invocation,
    settings: Arc<Settings>,
    tls: Option<Arc<ServerConfig>>,
) -> ! {
    let Some(fd0) = sys::take_inherited_fd(0) else {
        eprintln!("{}: fd 0 is not open", service.name);
        std::process::exit(1);
    };
    if nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd0.as_raw_fd()).is_err()
    {
        eprintln!(
            "{}: standard input is not a socket; run from inetd, or use -D or -F",
            service.name
        );
        std::process::exit(2);
    }
    // Keep the socket on a fresh descriptor and put /dev/null on 0-2, so
    // that nothing written to stdout or stderr can reach the client.
    let sock: OwnedFd = match fd0.try_clone() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            std::process::exit(1);
        }
    };
    drop(fd0);
    redirect_stdio_to_null();
    dlog::init(service.name, inv.log_target(&settings), inv.debug);
    install_panic_logger();
    forbid_core_dumps();
    sys::ignore_signal(Signal::SIGPIPE);
    let code = match service.handler {
        Handler::Split(proto) => {
            let ctx = match context(service, inv, &settings, &tls) {
                Ok(c) => c,
                Err(e) => {
                    log::error!("{e}");
                    std::process::exit(1);
                }
            };
            let tcp = sys::tcp_stream_from(sock);
            session::serve(proto, tcp, ListenKind::Plain, &ctx)
        }
        Handler::Udp(handler) => {
            let socket = sys::udp_socket_from(sock);
            handler(UdpSession {
                socket,
                settings,
                hostname: hostname(),
                inetd: true,
                debug: inv.debug,
            });
            0
        }
    };
    std::process::exit(code)
}

fn redirect_stdio_to_null() {
    use std::os::fd::IntoRawFd;
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let null_fd = null.as_raw_fd();
    for fd in 0..3 {
        if fd != null_fd {
            let _ = nix::unistd::dup2(null_fd, fd);
        }
    }
    // If /dev/null itself landed on 0, 1 or 2, it must stay open there.
    if null_fd <= 2 {
        let _ = null.into_raw_fd();
    }
}

/// A bound socket and what it is for.
enum Socketish {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

struct Listener {
    sock: Socketish,
    kind: ListenKind,
    addr: SocketAddr,
    /// For UDP: the session that owns the socket until it ends.
    busy: bool,
}

impl Listener {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.sock {
            Socketish::Tcp(l) => l.as_fd(),
            Socketish::Udp(u) => u.as_fd(),
        }
    }
}

/// Every configured address with the list it came from. (`Common` holds the
/// service's extra listeners too: `_service` is left for the callers' sake.)
fn wanted_addresses(_service: &Service, s: &Settings) -> Vec<(SocketAddr, ListenKind)> {
    let mut out: Vec<(SocketAddr, ListenKind)> = Vec::new();
    let c = s.common();
    out.extend(c.listen.iter().map(|a| (*a, ListenKind::Plain)));
    out.extend(c.tls_listen.iter().map(|a| (*a, ListenKind::Tls)));
    for (key, addrs) in &c.extra_listen {
        out.extend(addrs.iter().map(|a| (*a, ListenKind::Extra(key))));
    }
    out
}

fn bind(service: &Service, addr: SocketAddr) -> io::Result<Socketish> {
    let udp = matches!(service.handler, Handler::Udp(_));
    let (ty, proto) = if udp {
        (Type::DGRAM, Protocol::UDP)
    } else {
        (Type::STREAM, Protocol::TCP)
    };
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // [::] and 0.0.0.0 on the same port are two listeners, not a clash.
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_cloexec(true)?;
    sock.bind(&SockAddr::from(addr))?;
    if udp {
        Ok(Socketish::Udp(sock.into()))
    } else {
        sock.listen(128)?;
        sock.set_nonblocking(true)?;
        Ok(Socketish::Tcp(sock.into()))
    }
}

fn bind_all(service: &Service, s: &Settings) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    for (addr, kind) in wanted_addresses(service, s) {
        let sock = bind(service, addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
        out.push(Listener {
            sock,
            kind,
            addr,
            busy: false,
        });
    }
    if out.is_empty() {
        return Err("no listening address configured".into());
    }
    Ok(out)
}

/// Listeners passed by systemd socket activation (LISTEN_FDS), if any. Each
/// is matched to the configured list its address is in (default: plain).
fn systemd_listeners(service: &Service, s: &Settings) -> Option<Vec<Listener>> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    if pid != std::process::id() {
        return None;
    }
    let n: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let wanted = wanted_addresses(service, s);
    let mut out = Vec::new();
    for fd in 3..3 + n {
        let owned = sys::take_inherited_fd(fd)?;
        let _ = nix::fcntl::fcntl(
            owned.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        let sock = match service.handler {
            Handler::Udp(_) => Socketish::Udp(sys::udp_socket_from(owned)),
            Handler::Split(_) => {
                let l = sys::tcp_listener_from(owned);
                let _ = l.set_nonblocking(true);
                Socketish::Tcp(l)
            }
        };
        let addr = match &sock {
            Socketish::Tcp(l) => l.local_addr().ok()?,
            Socketish::Udp(u) => u.local_addr().ok()?,
        };
        let kind = wanted
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, k)| *k)
            .unwrap_or(ListenKind::Plain);
        out.push(Listener {
            sock,
            kind,
            addr,
            busy: false,
        });
    }
    Some(out)
}

/// Detach from the terminal: fork, new session, fork again, / as the
/// working directory, /dev/null on 0-2. The command that was started
/// returns only once the daemon says it is ready (the pid file written):
/// systemd's Type=forking with PIDFile=, start-stop-daemon and scripts read
/// the pid file as soon as the command returns. Its exit status is the
/// daemon's verdict: 0 ready, 1 it could not start.
fn daemonize() -> io::Result<Ready> {
    let (mut wait, tell) = UnixStream::pair()?;
    if !supervise::detach()? {
        // The starting process: wait for the verdict.
        drop(tell);
        let mut byte = [0u8; 1];
        let ok = matches!(wait.read(&mut byte), Ok(1) if byte[0] == b'1');
        std::process::exit(if ok { 0 } else { 1 });
    }
    drop(wait);
    nix::unistd::setsid()?;
    if !supervise::detach()? {
        std::process::exit(0);
    }
    std::env::set_current_dir("/")?;
    redirect_stdio_to_null();
    Ok(Ready(Some(tell)))
}

/// The detached daemon's line to the command that started it.
struct Ready(Option<UnixStream>);

impl Ready {
    /// Started: the command returns 0.
    fn done(&mut self) {
        if let Some(mut s) = self.0.take() {
            let _ = s.write_all(b"1");
        }
    }
}

// Dropped without `done` (an error on the way): the command returns 1.

struct PidFile(Option<PathBuf>);

impl PidFile {
    fn write(path: Option<PathBuf>) -> io::Result<PidFile> {
        if let Some(p) = &path {
            use std::os::unix::fs::OpenOptionsExt;
            // Written aside and renamed into place: readers never see it
            // half written, and (as root) no planted link is followed.
            let mut temp = p.clone().into_os_string();
            temp.push(format!(".{}", std::process::id()));
            let _ = std::fs::remove_file(&temp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            writeln!(f, "{}", std::process::id())?;
            std::fs::rename(&temp, p)?;
        }
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Signals arrive as flags, with a byte on a pipe to wake poll().
struct Signals {
    wake: UnixStream,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    chld: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        let chld = Arc::new(AtomicBool::new(false));
        use signal_hook::consts::*;
        for (sig, flag) in [
            (SIGTERM, &term),
            (SIGINT, &term),
            (SIGHUP, &hup),
            (SIGCHLD, &chld),
        ] {
            signal_hook::flag::register(sig, flag.clone())?;
            signal_hook::low_level::pipe::register(sig, notify.try_clone()?)?;
        }
        Ok(Signals {
            wake,
            term,
            hup,
            chld,
        })
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.wake.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A session process the master is waiting for.
struct Child {
    ip: IpAddr,
    /// For UDP sessions: the listener they hold.
    udp_listener: Option<usize>,
    /// A reusable session process: the master's end of its hand-off channel
    /// (None once retired: it exits after its session).
    handoff: Option<UnixStream>,
    /// Set while a reusable process waits for a connection (not a session).
    idle_since: Option<Instant>,
}

/// At most this many busy-reply processes at once; past it, a client over
/// the limits is simply disconnected.
const MAX_REFUSING: usize = 32;

/// How long the companion has to stop on SIGTERM before it is killed.
const COMPANION_GRACE: Duration = Duration::from_secs(10);

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

struct Master<'a> {
    service: &'static Service,
    inv: &'a Invocation,
    settings: Arc<Settings>,
    tls: Option<Arc<ServerConfig>>,
    listeners: Vec<Listener>,
    from_systemd: bool,
    children: Children<Child>,
    companion: Option<(Pid, Instant)>,
    /// Reusable session processes, when the service has `max_use` > 1.
    pool: Option<Pool>,
    /// What the sessions share (rebuilt on SIGHUP).
    ctx: Context,
}

/// Standalone mode (-D, -F).
pub fn run_standalone(
    service: &'static Service,
    inv: &Invocation,
    settings: Arc<Settings>,
    tls: Option<Arc<ServerConfig>>,
) -> ! {
    let (listeners, from_systemd) = match systemd_listeners(service, &settings) {
        Some(l) if !l.is_empty() => (l, true),
        _ => match bind_all(service, &settings) {
            Ok(l) => (l, false),
            Err(e) => {
                eprintln!("{}: {e}", service.name);
                std::process::exit(1);
            }
        },
    };
    let ctx = match context(service, inv, &settings, &tls) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            std::process::exit(1);
        }
    };
    let mut ready = Ready(None);
    if inv.mode == Mode::Detached {
        match daemonize() {
            Ok(r) => ready = r,
            Err(e) => {
                eprintln!("{}: cannot detach: {e}", service.name);
                std::process::exit(1);
            }
        }
    }
    dlog::init(service.name, inv.log_target(&settings), inv.debug);
    install_panic_logger();
    forbid_core_dumps();
    sys::ignore_signal(Signal::SIGPIPE);
    let pid_file = match PidFile::write(settings.common().pid_file.clone()) {
        Ok(p) => p,
        Err(e) => {
            log::error!("cannot write pid_file: {e}");
            std::process::exit(1);
        }
    };
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            std::process::exit(1);
        }
    };
    ready.done();
    let mut master = Master {
        service,
        inv,
        settings,
        tls,
        listeners,
        from_systemd,
        children: Children::new(),
        companion: None,
        pool: None,
        ctx,
    };
    if service.max_use > 1 {
        match Pool::new() {
            Ok(p) => master.pool = Some(p),
            Err(e) => log::error!("no reusable sessions: {e}"),
        }
    }
    master.start_companion();
    let addrs: Vec<String> = master
        .listeners
        .iter()
        .map(|l| l.addr.to_string())
        .collect();
    log::info!("{} started, listening on {}", service.name, addrs.join(" "));
    master.serve(&mut signals);
    log::info!(
        "{} stopping on request; sessions run to their end",
        service.name
    );
    master.stop_companion();
    drop(master);
    drop(pid_file);
    std::process::exit(0)
}

impl Master<'_> {
    fn serve(&mut self, signals: &mut Signals) {
        loop {
            let ready: Vec<usize> = {
                let mut fds = vec![PollFd::new(signals.wake.as_fd(), PollFlags::POLLIN)];
                if let Some(p) = &self.pool {
                    fds.push(PollFd::new(p.fd(), PollFlags::POLLIN));
                }
                let skip = fds.len();
                let mut index = Vec::new();
                for (i, l) in self.listeners.iter().enumerate() {
                    if !l.busy {
                        fds.push(PollFd::new(l.fd(), PollFlags::POLLIN));
                        index.push(i);
                    }
                }
                // Idle processes are retired on a clock.
                let timeout = match &self.pool {
                    Some(p) if !p.idle.is_empty() => PollTimeout::from(5000u16),
                    _ => PollTimeout::NONE,
                };
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => {
                        log::error!("poll: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                fds.iter()
                    .skip(skip)
                    .zip(&index)
                    .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(_, i)| *i)
                    .collect()
            };
            signals.drain();
            // Stopping first: a companion that died with us is not restarted.
            if signals.term.load(Ordering::SeqCst) {
                return;
            }
            if signals.chld.swap(false, Ordering::SeqCst) {
                self.reap();
            }
            if signals.hup.swap(false, Ordering::SeqCst) {
                self.reload();
                continue;
            }
            self.pool_reports();
            for i in ready {
                self.accept(i);
            }
        }
    }

    fn start_companion(&mut self) {
        let Some(run) = self.service.companion else {
            return;
        };
        let settings = self.settings.clone();
        match supervise::spawn(Kind::Companion, &[], move || {
            run(settings);
            0
        }) {
            Err(e) => log::error!("fork: {e}"),
            Ok(pid) => self.companion = Some((pid, Instant::now())),
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after a while: a signal
    /// that lands between its fork and its own handlers can be lost, and the
    /// master must not hang on it.
    fn stop_companion(&mut self) {
        let Some((pid, _)) = self.companion.take() else {
            return;
        };
        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + COMPANION_GRACE;
        while Instant::now() < deadline {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
                _ => return,
            }
        }
        log::warn!("companion process {pid} ignored SIGTERM; killed");
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }

    fn reap(&mut self) {
        for supervise::Reaped { pid, child, .. } in self.children.reap_any() {
            {
                {
                    if self.companion.is_some_and(|(p, _)| p == pid) {
                        let (_, since) = self.companion.take().unwrap_or((pid, Instant::now()));
                        log::error!("companion process {pid} ended; restarting it");
                        // Do not spin if it dies at once.
                        if since.elapsed() < Duration::from_secs(5) {
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        self.start_companion();
                    }
                    if let Some(p) = self.pool.as_mut() {
                        p.idle.retain(|&k| k != pid);
                    }
                    if let Some((_, c)) = child {
                        if let Some(i) = c.udp_listener {
                            if let Some(l) = self.listeners.get_mut(i) {
                                l.busy = false;
                            }
                        }
                    }
                }
            }
        }
    }

    fn reload(&mut self) {
        let settings = match self.inv.load(self.service) {
            Ok(s) => s,
            Err(e) => {
                log::error!("SIGHUP: configuration not reloaded: {e}");
                return;
            }
        };
        let tls = match load_tls(&settings) {
            Ok(t) => t,
            Err(e) => {
                log::error!("SIGHUP: configuration not reloaded: {e}");
                return;
            }
        };
        let settings = Arc::new(settings);
        let ctx = match context(self.service, self.inv, &settings, &tls) {
            Ok(c) => c,
            Err(e) => {
                log::error!("SIGHUP: configuration not reloaded: {e}");
                return;
            }
        };
        let old: Vec<_> = wanted_addresses(self.service, &self.settings);
        let new: Vec<_> = wanted_addresses(self.service, &settings);
        if old != new && !self.from_systemd {
            if self.listeners.iter().any(|l| l.busy) {
                log::error!("SIGHUP: listeners not changed while a UDP session runs");
            } else {
                // Close the old sockets first so that the same ports can be
                // bound again.
                self.listeners.clear();
                match bind_all(self.service, &settings) {
                    Ok(l) => self.listeners = l,
                    Err(e) => {
                        log::error!("SIGHUP: {e}; keeping the previous configuration");
                        match bind_all(self.service, &self.settings) {
                            Ok(l) => self.listeners = l,
                            Err(e) => log::error!("SIGHUP: cannot rebind: {e}"),
                        }
                        return;
                    }
                }
            }
        }
        dlog::init(
            self.service.name,
            self.inv.log_target(&settings),
            self.inv.debug,
        );
        self.settings = settings;
        self.tls = tls;
        self.ctx = ctx;
        // Processes holding the old settings serve no more connections.
        self.retire(|_| true);
        self.stop_companion();
        self.start_companion();
        log::info!("configuration reloaded");
    }

    fn accept(&mut self, i: usize) {
        match &self.listeners[i].sock {
            Socketish::Udp(_) => self.start_udp(i),
            Socketish::Tcp(l) => loop {
                match l.accept() {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nonblocking(false);
                        self.start_tcp(i, tcp, peer);
                        return;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) => {
                        log::error!("accept: {e}");
                        // Out of descriptors: do not spin.
                        std::thread::sleep(Duration::from_millis(50));
                        return;
                    }
                }
            },
        }
    }

    fn over_limit(&self, ip: IpAddr) -> Option<&'static str> {
        let max = self.settings.common().max_sessions;
        let per_ip = self.settings.common().max_per_ip;
        let busy = |c: &Child| c.idle_since.is_none();
        if self.children.count_where(Kind::Session, busy) >= max {
            return Some("max_sessions");
        }
        if self
            .children
            .count_where(Kind::Session, |c| busy(c) && c.ip == ip)
            >= per_ip
        {
            return Some("max_per_ip");
        }
        None
    }

    fn start_tcp(&mut self, i: usize, tcp: TcpStream, peer: SocketAddr) {
        let ip = canonical_ip(peer.ip());
        let kind = self.listeners[i].kind;
        if let Some(limit) = self.over_limit(ip) {
            if self.children.count(Kind::Refusal) >= MAX_REFUSING {
                log::warn!("refused {peer}: {limit} reached; disconnected");
                return;
            }
            let service = self.service;
            let refusal = Child {
                ip,
                udp_listener: None,
                handoff: None,
                idle_since: None,
            };
            let keep = [tcp.as_raw_fd()];
            let settings = self.settings.clone();
            match self.children.spawn(Kind::Refusal, refusal, &keep, move || {
                refuse(service, tcp, kind, &settings.reply_name());
                0
            }) {
                Ok(_) => log::warn!("refused {peer}: {limit} reached"),
                Err(e) => log::error!("fork: {e}"),
            }
            return;
        }
        let Some(tcp) = self.hand_to_idle(i, tcp, ip) else {
            return;
        };
        // A reusable session process gets its end of a hand-off channel
        // and of the pool's report socket.
        let worker = self.pool.as_ref().and_then(|p| {
            match p.channel().and_then(|(master_end, chan)| {
                Ok((master_end, p.worker(chan, self.service.max_use)?))
            }) {
                Ok(w) => Some(w),
                Err(e) => {
                    log::warn!("no hand-off channel for a new session: {e}");
                    None
                }
            }
        });
        let (handoff, worker) = match worker {
            Some((m, w)) => (Some(m), Some(w)),
            None => (None, None),
        };
        let mut keep = vec![tcp.as_raw_fd()];
        if let Some(w) = &worker {
            keep.extend(w.fds());
        }
        let kinds: Vec<ListenKind> = self.listeners.iter().map(|l| l.kind).collect();
        let session = Child {
            ip,
            udp_listener: None,
            handoff,
            idle_since: None,
        };
        let this = &*self;
        let spawned = supervise::spawn(Kind::Session, &keep, move || {
            let Handler::Split(proto) = this.service.handler else {
                return 1;
            };
            match worker {
                // A reusable session keeps its pre-login process across the
                // connections it is handed.
                Some(mut w) => {
                    let mut next = || {
                        let (listener, tcp) = w.next()?;
                        kinds.get(listener).map(|&k| (tcp, k))
                    };
                    session::serve_reusable(proto, tcp, kind, &this.ctx, &mut next)
                }
                None => session::serve(proto, tcp, kind, &this.ctx),
            }
        });
        match spawned {
            Ok(pid) => self.children.insert(pid, Kind::Session, session),
            Err(e) => log::error!("fork: {e}"),
        }
    }

    /// Give a connection to an idle reusable process, if there is one;
    /// otherwise hand it back.
    fn hand_to_idle(&mut self, i: usize, tcp: TcpStream, ip: IpAddr) -> Option<TcpStream> {
        let (Some(pool), Ok(listener)) = (self.pool.as_mut(), u8::try_from(i)) else {
            return Some(tcp);
        };
        while let Some(pid) = pool.idle.pop() {
            let Some(c) = self.children.get_mut(pid) else {
                continue;
            };
            let Some(chan) = c.handoff.as_ref() else {
                continue;
            };
            match pool::hand_off(chan, listener, &tcp) {
                Ok(()) => {
                    c.ip = ip;
                    c.idle_since = None;
                    return None;
                }
                Err(e) => {
                    log::debug!("session process {pid} did not take a connection: {e}");
                    c.handoff = None;
                }
            }
        }
        Some(tcp)
    }

    /// Read idle reports; retire processes over the idle cap or idle too long.
    fn pool_reports(&mut self) {
        let Some(pool) = self.pool.as_mut() else {
            return;
        };
        let now = Instant::now();
        for pid in pool.take_reports() {
            let Some(c) = self.children.get_mut(pid) else {
                continue;
            };
            if c.handoff.is_none() || c.idle_since.is_some() {
                continue;
            }
            c.idle_since = Some(now);
            if pool.idle.len() < pool::IDLE_MAX {
                pool.idle.push(pid);
            } else {
                c.handoff = None;
            }
        }
        self.retire(|c| c.idle_since.is_some_and(|t| pool::stale(t, now)));
    }

    /// Close the hand-off channel of the reusable processes `which` selects:
    /// an idle one exits at once, a busy one after its session.
    fn retire(&mut self, which: impl Fn(&Child) -> bool) {
        for (_, _, c) in self.children.iter_mut() {
            if c.handoff.is_some() && which(c) {
                c.handoff = None;
            }
        }
        if let Some(pool) = self.pool.as_mut() {
            let children = &self.children;
            pool.idle
                .retain(|pid| children.get(*pid).is_some_and(|c| c.handoff.is_some()));
        }
    }

    fn start_udp(&mut self, i: usize) {
        let Handler::Udp(handler) = self.service.handler else {
            return;
        };
        let Socketish::Udp(sock) = &self.listeners[i].sock else {
            return;
        };
        let socket = match sock.try_clone() {
            Ok(s) => s,
            Err(e) => {
                log::error!("UDP socket: {e}");
                return;
            }
        };
        let child = Child {
            ip: IpAddr::from([0, 0, 0, 0]),
            udp_listener: Some(i),
            handoff: None,
            idle_since: None,
        };
        let keep = [socket.as_raw_fd()];
        let (settings, debug) = (self.settings.clone(), self.inv.debug);
        let spawned = self.children.spawn(Kind::Session, child, &keep, move || {
            handler(UdpSession {
                socket,
                settings,
                hostname: hostname(),
                inetd: false,
                debug,
            });
            0
        });
        match spawned {
            Ok(_) => self.listeners[i].busy = true,
            Err(e) => log::error!("fork: {e}"),
        }
    }
}

/// In a short-lived child: tell a client over the limits that we are busy.
/// Bounded: one write with a short timeout, and no TLS handshake (a refused
/// client gets no cryptographic work out of us): on an implicit-TLS port it
/// is only disconnected.
fn refuse(service: &Service, tcp: TcpStream, kind: ListenKind, name: &str) {
    if kind == ListenKind::Tls {
        return;
    }
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
    // `<host>` in the reply stands for the daemon's name (smtpd's 421).
    let reply = String::from_utf8_lossy(service.busy_reply).replace("<host>", name);
    let mut stream = crate::net::Stream::Plain(tcp);
    let _ = stream.write_all(reply.as_bytes());
    stream.close();
}
