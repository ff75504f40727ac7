//! Data transfers. The session prepares the file or directory (so errors
//! come back before 150), makes the data connection (passive accept
//! checked against the client's address, or active connect, from port 20
//! through the helper when we have the privilege), replies 150 and forks a
//! data process that moves the bytes and reports back over a socketpair.
//! Meanwhile the control loop keeps answering ABOR, STAT, NOOP and QUIT.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use socket2::{Domain, Protocol, Socket, Type};

use super::command::{self, Command};
use super::framing::{Deframer, Framer, FramingError, Structure};
use super::listing;
use super::session::{entry_from, now, Driver, Flow};
use super::state::{DataSetup, Kind, Transfer};
use crate::fs::normalize;
use crate::net::{Line, Stream};
use crate::runtime::supervise;
use crate::wire;

/// STOR reads and non-sendfile RETR writes go through buffers this big.
const BUF: usize = 256 * 1024;
/// sendfile moves at most this much per call (progress is reported between).
#[cfg(target_os = "linux")]
const SENDFILE_CHUNK: usize = 64 * 1024 * 1024;
/// How long a data connection may take to come.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many command lines are kept while a transfer runs.
const MAX_DEFERRED: usize = 16;

/// What the data process works on, opened by the session beforehand.
enum Job {
    Retr(File),
    Store(File),
    List {
        dir: PathBuf,
        /// Only names matching this glob.
        pattern: Option<String>,
        /// A single file instead of a directory: (real path, shown name).
        single: Option<(PathBuf, String)>,
        /// Prefix for NLST names (the directory part of a glob argument).
        prefix: String,
    },
}

impl Job {
    /// The open file the data process works on, if any.
    fn fd(&self) -> Option<RawFd> {
        match self {
            Job::Retr(f) | Job::Store(f) => Some(f.as_raw_fd()),
            Job::List { .. } => None,
        }
    }
}

fn err(kind: io::ErrorKind) -> io::Error {
    io::Error::from(kind)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Driver {
    /// Carry out a transfer to its final reply.
    pub fn transfer(&mut self, t: Transfer) -> io::Result<Flow> {
        // A restart past the end of the file would make a sparse file of
        // any size the client names (RFC 959: 554 for a bad REST).
        if t.kind == Kind::Stor && t.offset > 0 {
            let len = self
                .real(&t.path)
                .and_then(std::fs::metadata)
                .map_or(0, |m| m.len());
            if t.offset > len {
                self.passive = None;
                self.state.data_reset();
                self.reply(554, "Invalid REST position: beyond the end of the file.")?;
                return Ok(Flow::Continue);
            }
        }
        let (job, opening) = match self.prepare(&t) {
            Ok(p) => p,
            Err(e) => {
                self.passive = None;
                let what = match t.kind {
                    Kind::Retr => "Failed to open file",
                    Kind::Stor | Kind::Appe | Kind::Stou => "Could not create file",
                    _ => "Failed to list directory",
                };
                self.fail(550, what, &e)?;
                return Ok(Flow::Continue);
            }
        };
        let data = match self.open_data(&t) {
            Ok(d) => d,
            Err(e) => {
                log::info!("data connection to {} failed: {e}", self.d.conn.peer.ip());
                self.passive = None;
                self.reply(425, "Failed to establish connection.")?;
                return Ok(Flow::Continue);
            }
        };
        let idle = Duration::from_secs(self.state.idle.max(30));
        let _ = data.set_read_timeout(Some(idle));
        let _ = data.set_write_timeout(Some(idle));
        self.reply(150, &opening)?;
        let (rx, tx) = UnixStream::pair()?;
        let mut keep = vec![data.as_raw_fd(), tx.as_raw_fd()];
        keep.extend(job.fd());
        let spawned = supervise::spawn(supervise::Kind::Data, &keep, || {
            self.data_process(job, data, tx, &t);
            0
        });
        match spawned {
            Ok(pid) => self.monitor(pid, rx, &t),
            Err(e) => {
                log::error!("cannot fork a data process: {e}");
                self.reply(451, "Cannot start the transfer: local error.")?;
                Ok(Flow::Continue)
            }
        }
    }

    fn prepare(&mut self, t: &Transfer) -> io::Result<(Job, String)> {
        let mode = if t.ascii { "ASCII" } else { "BINARY" };
        match t.kind {
            Kind::Retr => {
                let real = self.real(&t.path)?;
                if self.in_upload(&real) {
                    return Err(err(io::ErrorKind::PermissionDenied));
                }
                // Non-blocking open: a FIFO must not hang the session.
                let f = File::options()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&real)?;
                let m = f.metadata()?;
                if m.is_dir() {
                    return Err(io::Error::from_raw_os_error(libc::EISDIR));
                } else if !m.is_file() {
                    return Err(err(io::ErrorKind::InvalidInput));
                }
                let msg = format!(
                    "Opening {mode} mode data connection for {} ({} bytes).",
                    t.path,
                    m.len()
                );
                Ok((Job::Retr(f), msg))
            }
            Kind::Stor | Kind::Appe => {
                let real = self.real(&t.path)?;
                let mut o = File::options();
                o.write(true)
                    .mode(0o666 & !self.state.umask)
                    .custom_flags(libc::O_NONBLOCK);
                if t.exclusive {
                    o.create_new(true);
                } else if t.kind == Kind::Appe {
                    o.append(true).create(true);
                } else {
                    o.create(true);
                }
                let mut f = o.open(&real)?;
                if !f.metadata()?.is_file() {
                    return Err(io::Error::from_raw_os_error(libc::EISDIR));
                }
                if t.kind == Kind::Stor {
                    f.set_len(t.offset)?;
                    f.seek(SeekFrom::Start(t.offset))?;
                }
                let msg = format!("Ok to send data for {}.", t.path);
                Ok((Job::Store(f), msg))
            }
            Kind::Stou => {
                let base = self.real(&t.path)?;
                // The name asked for when it is free; else the first free
                // of NAME.1, NAME.2, ... (RFC 959: "unique in that directory").
                let given = t.arg.is_some().then(|| base.clone());
                let numbered = (1..1000u32).map(|i| {
                    let mut p = base.clone().into_os_string();
                    p.push(format!(".{i}"));
                    PathBuf::from(p)
                });
                let mut last = err(io::ErrorKind::AlreadyExists);
                for real in given.into_iter().chain(numbered) {
                    match File::options()
                        .write(true)
                        .create_new(true)
                        .mode(0o666 & !self.state.umask)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&real)
                    {
                        Ok(f) => {
                            let name = real
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            return Ok((Job::Store(f), format!("FILE: {name}")));
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                        Err(e) => return Err(e),
                    }
                }
                Err(last)
            }
            Kind::List { .. } | Kind::Nlst { .. } | Kind::Mlsd => {
                let last = t.path.rsplit('/').next().unwrap_or("");
                let is_mlsd = t.kind == Kind::Mlsd;
                let (dir_v, pattern) = if !is_mlsd && listing::is_glob(last) {
                    (normalize(&t.path, ".."), Some(last.to_string()))
                } else {
                    (t.path.clone(), None)
                };
                let prefix = match (&pattern, t.arg.as_deref().and_then(|a| a.rsplit_once('/'))) {
                    (Some(_), Some((d, _))) => format!("{d}/"),
                    _ => String::new(),
                };
                let dir = self.real(&dir_v)?;
                if self.in_upload(&dir) {
                    return Err(err(io::ErrorKind::PermissionDenied));
                }
                let m = std::fs::metadata(&dir)?;
                let single = if m.is_dir() {
                    std::fs::read_dir(&dir)?;
                    None
                } else if is_mlsd {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                } else {
                    let shown = match t.kind {
                        Kind::Nlst { .. } => t.arg.clone().unwrap_or_else(|| last.to_string()),
                        _ => last.to_string(),
                    };
                    Some((dir.clone(), shown))
                };
                let msg = match t.kind {
                    Kind::Mlsd => "Here comes the machine listing.",
                    _ => "Here comes the directory listing.",
                };
                Ok((
                    Job::List {
                        dir,
                        pattern,
                        single,
                        prefix,
                    },
                    msg.to_string(),
                ))
            }
        }
    }

    fn open_data(&mut self, t: &Transfer) -> io::Result<TcpStream> {
        match t.data {
            DataSetup::Passive => {
                let l = self
                    .passive
                    .take()
                    .ok_or_else(|| err(io::ErrorKind::NotConnected))?;
                // The client speaking meanwhile (ABOR, QUIT) ends the wait,
                // unless it had already sent more (pipelining).
                let control = if self.d.conn.has_buffered_input() {
                    None
                } else {
                    Some(self.d.conn.fd())
                };
                accept_from(&l, self.d.conn.peer.ip(), control)
            }
            DataSetup::Active(addr) => self.connect_active(addr),
            DataSetup::None => Err(err(io::ErrorKind::NotConnected)),
        }
    }

    /// Connect to the client from the data port (20, or the control port
    /// minus one): made by the root monitor when that port is privileged,
    /// by ourselves otherwise; from any port when that one cannot be used.
    fn connect_active(&mut self, addr: SocketAddr) -> io::Result<TcpStream> {
        let local = self.d.conn.local;
        let port = super::data_port(local);
        let first = if port < 1024 {
            // The monitor connects only to the client's own address.
            self.monitor.reserved_port(addr.port())
        } else {
            bound_socket(addr, SocketAddr::new(local.ip(), port)).and_then(|s| {
                s.connect_timeout(&addr.into(), Duration::from_secs(30))?;
                Ok(s.into())
            })
        };
        match first {
            Ok(s) => return Ok(s),
            Err(e) => log::debug!("active connection from port {port}: {e}"),
        }
        let s = bound_socket(addr, SocketAddr::new(local.ip(), 0))?;
        s.connect_timeout(&addr.into(), Duration::from_secs(30))?;
        Ok(s.into())
    }

    /// Wait for the data process, answering the control connection.
    fn monitor(&mut self, pid: Pid, mut rx: UnixStream, t: &Transfer) -> io::Result<Flow> {
        let verb = match t.kind {
            Kind::Retr => "RETR",
            Kind::Stor => "STOR",
            Kind::Appe => "APPE",
            Kind::Stou => "STOU",
            Kind::List { .. } => "LIST",
            Kind::Nlst { .. } => "NLST",
            Kind::Mlsd => "MLSD",
        };
        let mut bytes = 0u64;
        let mut result: Option<(u16, String)> = None;
        let mut pending = Vec::new();
        let mut child_done = false;
        while !child_done {
            let (data_ready, ctl_ready) = if self.d.conn.has_buffered_input() {
                (false, true)
            } else {
                let mut fds = [
                    PollFd::new(rx.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.d.conn.fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if data_ready {
                let mut buf = [0u8; 512];
                match rx.read(&mut buf) {
                    Ok(0) | Err(_) => child_done = true,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                    let msg: Vec<u8> = pending.drain(..=i).collect();
                    let msg = String::from_utf8_lossy(&msg[..i]).into_owned();
                    let mut parts = msg.splitn(4, ' ');
                    match (parts.next(), parts.next(), parts.next(), parts.next()) {
                        (Some("P"), Some(n), _, _) => bytes = n.parse().unwrap_or(bytes),
                        (Some("D"), Some(code), Some(n), text) => {
                            bytes = n.parse().unwrap_or(bytes);
                            result =
                                Some((code.parse().unwrap_or(451), text.unwrap_or("").to_string()));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            if !ctl_ready {
                continue;
            }
            let line = match self.d.conn.read_line(super::session::LINE_MAX) {
                Ok(Line::Complete(l, _)) => l,
                Ok(Line::TooLong) => {
                    self.reply(500, "Command line too long.")?;
                    continue;
                }
                Ok(Line::Eof) | Err(_) => {
                    stop(pid);
                    log::info!("{verb} {} aborted: control connection closed", t.path);
                    return Ok(Flow::Close);
                }
            };
            let clean = command::strip_telnet(&line);
            log::debug!("<- {} (during transfer)", command::loggable(&clean));
            match command::parse(&clean) {
                Ok(Command::Abor) => {
                    stop(pid);
                    log::info!(
                        "{verb} {} aborted by the client after {bytes} bytes",
                        t.path
                    );
                    self.reply(426, "Connection closed; transfer aborted.")?;
                    self.reply(226, "ABOR successful.")?;
                    return Ok(Flow::Continue);
                }
                Ok(Command::Stat(None)) => {
                    let text = self
                        .server_status(Some(&format!("{verb} {}: {bytes} bytes so far", t.path)));
                    self.reply(213, &text)?;
                }
                Ok(Command::Noop) => self.reply(200, "NOOP ok.")?,
                Ok(Command::Quit) => {
                    stop(pid);
                    log::info!("{verb} {} aborted by QUIT after {bytes} bytes", t.path);
                    self.reply(221, "Goodbye.")?;
                    return Ok(Flow::Close);
                }
                _ if self.d.pending_lines() < MAX_DEFERRED => self.d.put_back(line),
                _ => self.reply(503, "Transfer in progress.")?,
            }
        }
        let _ = waitpid(pid, None);
        let (code, text) = result.unwrap_or((451, "Transfer failed: data process ended.".into()));
        if code == 226 {
            log::info!("{verb} {} {bytes} bytes", t.path);
        } else {
            log::info!(
                "{verb} {} failed after {bytes} bytes: {code} {text}",
                t.path
            );
        }
        self.reply(code, &text)?;
        Ok(Flow::Continue)
    }

    /// In the data process: move the bytes, report, and end.
    fn data_process(&mut self, job: Job, tcp: TcpStream, mut report: UnixStream, t: &Transfer) {
        let mut progress = Progress {
            report: &mut report,
            bytes: 0,
            last: Instant::now(),
        };
        let stream = if t.private {
            let Some(cfg) = self.d.tls.clone() else {
                let _ = progress.done(425, "TLS is not available.");
                return;
            };
            // No session tickets on data connections: a client that only
            // sends (STOR) never reads them, and closing with them unread
            // makes its kernel reset the connection before we read it all.
            let mut data_cfg = (*cfg).clone();
            data_cfg.send_tls13_tickets = 0;
            match Stream::accept_tls(tcp, &std::sync::Arc::new(data_cfg)) {
                Ok(s) => s,
                Err(e) => {
                    log::info!("TLS on the data connection failed: {e}");
                    let _ = progress.done(425, "TLS negotiation on the data connection failed.");
                    return;
                }
            }
        } else {
            Stream::Plain(tcp)
        };
        let (code, text) = match self.move_data(job, stream, t, &mut progress) {
            Ok(()) => (226, "Transfer complete."),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                log::info!("data transfer: {e}");
                (
                    451,
                    "Transfer aborted: the data does not follow MODE/STRU framing.",
                )
            }
            Err(e) => {
                log::debug!("data transfer: {e}");
                match e.raw_os_error() {
                    Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                        (452, "Transfer aborted: no space left.")
                    }
                    Some(libc::EIO) => (451, "Transfer aborted: local error."),
                    _ => (426, "Connection closed; transfer aborted."),
                }
            }
        };
        let _ = progress.done(code, text);
    }

    fn move_data(
        &mut self,
        job: Job,
        mut stream: Stream,
        t: &Transfer,
        progress: &mut Progress,
    ) -> io::Result<()> {
        let plain = Framer::is_plain(t.mode, t.structure);
        match job {
            Job::Retr(mut f) if !plain => {
                f.seek(SeekFrom::Start(t.offset))?;
                framed_out(&mut f, &mut stream, t, progress)?;
            }
            Job::Retr(mut f) => {
                if let (Stream::Plain(tcp), false) = (&stream, t.ascii) {
                    send_file(tcp, &f, t.offset, progress)?;
                } else {
                    f.seek(SeekFrom::Start(t.offset))?;
                    copy_out(&mut f, &mut stream, t.ascii, progress)?;
                }
            }
            Job::Store(mut f) => {
                match (&stream, t.ascii) {
                    _ if !plain => framed_in(&mut stream, &mut f, t, progress)?,
                    (Stream::Plain(tcp), false) => splice_in(tcp, &f, progress)?,
                    _ => copy_in(&mut stream, &mut f, t.ascii, progress)?,
                }
                f.sync_data()?;
            }
            Job::List {
                dir,
                pattern,
                single,
                prefix,
            } => {
                let counted = Counting {
                    inner: &mut stream,
                    progress,
                };
                // A listing is a transfer like another: in the current
                // MODE and STRU when they are not the plain ones.
                let framed = Framed {
                    inner: counted,
                    framer: Framer::new(t.mode, t.structure, true),
                    out: Vec::new(),
                };
                let mut w = BufWriter::with_capacity(64 * 1024, framed);
                self.write_listing(&mut w, t.kind, &dir, pattern.as_deref(), single, &prefix)?;
                w.flush()?;
                w.into_inner().map_err(|e| e.into_error())?.finish()?;
            }
        }
        stream.flush()?;
        stream.close();
        Ok(())
    }

    fn write_listing(
        &mut self,
        w: &mut impl Write,
        kind: Kind,
        dir: &std::path::Path,
        pattern: Option<&str>,
        single: Option<(PathBuf, String)>,
        prefix: &str,
    ) -> io::Result<()> {
        let now = now();
        if let Some((real, shown)) = single {
            let m = std::fs::symlink_metadata(&real)?;
            let line = match kind {
                Kind::Nlst { .. } => shown,
                _ => {
                    let e = entry_from(shown, &m);
                    self.ls_line(&e, now)
                }
            };
            return write!(w, "{line}\r\n");
        }
        let all = matches!(
            kind,
            Kind::List { all: true } | Kind::Nlst { all: true } | Kind::Mlsd
        );
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| {
                let s = n.to_string_lossy();
                (all || !s.starts_with('.')) && pattern.is_none_or(|p| listing::glob_match(p, &s))
            })
            .collect();
        names.sort();
        for name in names {
            let shown = name.to_string_lossy().into_owned();
            let path = dir.join(&name);
            let line = match kind {
                Kind::Nlst { .. } => format!("{prefix}{shown}"),
                Kind::List { .. } => {
                    let Ok(m) = std::fs::symlink_metadata(&path) else {
                        continue;
                    };
                    let mut e = entry_from(shown, &m);
                    if e.is_link() {
                        e.link_target = std::fs::read_link(&path)
                            .ok()
                            .map(|t| t.to_string_lossy().into_owned());
                    }
                    self.ls_line(&e, now)
                }
                _ => {
                    // MLSD describes what a link points to.
                    let Ok(m) = std::fs::metadata(&path) else {
                        continue;
                    };
                    let e = entry_from(shown, &m);
                    let perm = self.perm_of(&e, &path, dir);
                    listing::mlsx_line(&e, &self.state.facts, &perm, None)
                }
            };
            w.write_all(line.as_bytes())?;
            w.write_all(b"\r\n")?;
        }
        Ok(())
    }
}

/// A TCP socket for connecting to `to`, bound to `from`.
fn bound_socket(to: SocketAddr, from: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    s.set_cloexec(true)?;
    s.set_reuse_address(true)?;
    s.bind(&from.into())?;
    Ok(s)
}

/// Kill a data process and reap it.
fn stop(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
}

/// Accept the data connection, refusing any from another address than
/// the client's (closed at once, no data).
fn accept_from(
    l: &TcpListener,
    client: IpAddr,
    control: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<TcpStream> {
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(err(io::ErrorKind::TimedOut));
        }
        let mut fds = vec![PollFd::new(l.as_fd(), PollFlags::POLLIN)];
        if let Some(c) = control {
            fds.push(PollFd::new(c, PollFlags::POLLIN));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let listener_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        if !listener_ready
            && fds
                .get(1)
                .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()))
        {
            return Err(err(io::ErrorKind::Interrupted));
        }
        match l.accept() {
            Ok((s, peer)) => {
                if canonical(peer.ip()) != canonical(client) {
                    log::warn!(
                        "passive data connection from {} refused (client is {client})",
                        peer.ip()
                    );
                    let _ = s.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Progress reports from the data process to the session.
struct Progress<'a> {
    report: &'a mut UnixStream,
    bytes: u64,
    last: Instant,
}

impl Progress<'_> {
    fn add(&mut self, n: u64) {
        self.bytes += n;
        if self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            let _ = self
                .report
                .write_all(format!("P {}\n", self.bytes).as_bytes());
        }
    }

    fn done(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.report
            .write_all(format!("D {code} {} {text}\n", self.bytes).as_bytes())
    }
}

/// A writer that reports what goes through it (listings).
struct Counting<'a, 'b, W: Write> {
    inner: W,
    progress: &'a mut Progress<'b>,
}

impl<W: Write> Write for Counting<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Binary RETR over plain TCP: the kernel copies, memory stays constant.
#[cfg(target_os = "linux")]
fn send_file(tcp: &TcpStream, f: &File, offset: u64, progress: &mut Progress) -> io::Result<()> {
    let mut off = offset as libc::off_t;
    loop {
        match nix::sys::sendfile::sendfile(tcp.as_fd(), f.as_fd(), Some(&mut off), SENDFILE_CHUNK) {
            Ok(0) => return Ok(()),
            Ok(n) => progress.add(n as u64),
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => return Err(err(io::ErrorKind::TimedOut)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Elsewhere, binary RETR through a buffer.
#[cfg(not(target_os = "linux"))]
fn send_file(tcp: &TcpStream, f: &File, offset: u64, progress: &mut Progress) -> io::Result<()> {
    let mut f = f.try_clone()?;
    f.seek(SeekFrom::Start(offset))?;
    let mut s = Stream::Plain(tcp.try_clone()?);
    copy_out(&mut f, &mut s, false, progress)
}

/// Elsewhere, binary STOR through a buffer.
#[cfg(not(target_os = "linux"))]
fn splice_in(tcp: &TcpStream, f: &File, progress: &mut Progress) -> io::Result<()> {
    let mut s = Stream::Plain(tcp.try_clone()?);
    copy_in(&mut s, &mut f.try_clone()?, false, progress)
}

/// Binary STOR over plain TCP: socket -> pipe -> file with splice(2), so
/// the bytes are copied once, into the page cache; falls back to buffers
/// where splice does not go (file systems without splice_write).
#[cfg(target_os = "linux")]
fn splice_in(tcp: &TcpStream, f: &File, progress: &mut Progress) -> io::Result<()> {
    use nix::fcntl::{fcntl, splice, FcntlArg, SpliceFFlags};
    use std::os::fd::AsRawFd;
    let (pr, pw) = nix::unistd::pipe()?;
    let _ = fcntl(pw.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(1 << 20));
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_MORE;
    let mut first = true;
    loop {
        let n = match splice(tcp.as_fd(), None, pw.as_fd(), None, 1 << 20, flags) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => return Err(err(io::ErrorKind::TimedOut)),
            Err(e) => return Err(e.into()),
        };
        let mut left = n;
        while left > 0 {
            match splice(pr.as_fd(), None, f.as_fd(), None, left, flags) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                Ok(m) => left -= m,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EINVAL) if first => {
                    // The file system cannot take splice: drain the pipe
                    // through a buffer and go on that way.
                    let mut buf = vec![0u8; left];
                    let mut pipe = File::from(pr);
                    pipe.read_exact(&mut buf)?;
                    let mut out = f;
                    out.write_all(&buf)?;
                    progress.add(n as u64);
                    let mut s = Stream::Plain(tcp.try_clone()?);
                    return copy_in(&mut s, &mut out.try_clone()?, false, progress);
                }
                Err(e) => return Err(e.into()),
            }
        }
        first = false;
        progress.add(n as u64);
    }
}

/// A writer that frames what goes through it (listings in MODE B/C or
/// STRU R/P); plain stream mode passes it as it is.
struct Framed<W: Write> {
    inner: W,
    framer: Framer,
    out: Vec<u8>,
}

impl<W: Write> Framed<W> {
    fn finish(mut self) -> io::Result<()> {
        self.out.clear();
        self.framer.finish(&mut self.out);
        self.inner.write_all(&self.out)?;
        self.inner.flush()
    }
}

impl<W: Write> Write for Framed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.clear();
        self.framer.push(buf, &mut self.out);
        self.inner.write_all(&self.out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether TYPE A's line ends apply (record structure has its own).
fn crlf_lines(t: &Transfer) -> bool {
    t.ascii && t.structure != Structure::Record
}

/// RETR in MODE B or C, or STRU R or P: through the framer.
fn framed_out(
    f: &mut File,
    out: &mut Stream,
    t: &Transfer,
    progress: &mut Progress,
) -> io::Result<()> {
    let mut framer = Framer::new(t.mode, t.structure, t.ascii);
    let mut buf = vec![0u8; BUF];
    let (mut conv, mut wire) = (Vec::new(), Vec::new());
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(io::Error::from_raw_os_error(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            }
        };
        wire.clear();
        if crlf_lines(t) {
            conv.clear();
            wire::lf_to_crlf(&buf[..n], &mut conv);
            framer.push(&conv, &mut wire);
        } else {
            framer.push(&buf[..n], &mut wire);
        }
        out.write_all(&wire)?;
        progress.add(wire.len() as u64);
    }
    wire.clear();
    framer.finish(&mut wire);
    out.write_all(&wire)?;
    progress.add(wire.len() as u64);
    Ok(())
}

/// STOR in MODE B or C, or STRU R or P: through the deframer; a transfer
/// whose framing is broken or incomplete fails (nothing half-framed is
/// taken for a whole file).
fn framed_in(
    inp: &mut Stream,
    f: &mut File,
    t: &Transfer,
    progress: &mut Progress,
) -> io::Result<()> {
    let bad = |e: FramingError| io::Error::new(io::ErrorKind::InvalidData, e.0);
    let mut deframer = Deframer::new(t.mode, t.structure, t.ascii);
    let mut to_lf = wire::CrlfToLf::new();
    let mut buf = vec![0u8; BUF];
    let (mut data, mut conv) = (Vec::new(), Vec::new());
    let mut store = |data: &[u8], conv: &mut Vec<u8>, last: bool| -> io::Result<()> {
        if crlf_lines(t) {
            conv.clear();
            to_lf.feed(data, conv);
            if last {
                to_lf.finish(conv);
            }
            f.write_all(conv)
        } else {
            f.write_all(data)
        }
    };
    loop {
        let n = match inp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        progress.add(n as u64);
        data.clear();
        deframer.push(&buf[..n], &mut data).map_err(bad)?;
        store(&data, &mut conv, false)?;
    }
    data.clear();
    deframer.finish(&mut data).map_err(bad)?;
    store(&data, &mut conv, true)
}

/// RETR through a buffer: ASCII (LF -> CRLF) or TLS.
fn copy_out(
    f: &mut File,
    out: &mut Stream,
    ascii: bool,
    progress: &mut Progress,
) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut conv = Vec::new();
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(io::Error::from_raw_os_error(
                    e.raw_os_error().unwrap_or(libc::EIO),
                ))
            }
        };
        if ascii {
            conv.clear();
            wire::lf_to_crlf(&buf[..n], &mut conv);
            out.write_all(&conv)?;
            progress.add(conv.len() as u64);
        } else {
            out.write_all(&buf[..n])?;
            progress.add(n as u64);
        }
    }
}

/// STOR: from the network into the file, CRLF -> LF in ASCII.
fn copy_in(inp: &mut Stream, f: &mut File, ascii: bool, progress: &mut Progress) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut conv = Vec::new();
    let mut to_lf = wire::CrlfToLf::new();
    loop {
        let n = match inp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        progress.add(n as u64);
        let w = if ascii {
            conv.clear();
            to_lf.feed(&buf[..n], &mut conv);
            f.write_all(&conv)
        } else {
            f.write_all(&buf[..n])
        };
        // Local write errors keep their errno (ENOSPC -> 452).
        w?;
    }
    // A CR at the very end was data.
    conv.clear();
    to_lf.finish(&mut conv);
    f.write_all(&conv)
}
