//! The tftpd driver. The session owns the server socket (inetd `wait`):
//! it reads requests until the line has been quiet for a while, and serves
//! each in a forked transfer process on a fresh socket (the transfer ID of
//! RFC 1350), connected to the client so no other host can interfere.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::packet::{self, ErrorCode, Mode, Negotiated, Packet, Request};
use super::transfer::{advance, Window};
use crate::auth;
use crate::fs::{AsideFile, Jail};
use crate::runtime::supervise::{Children, Kind};
use crate::runtime::UdpSession;

/// How long the session waits for another request before it exits and
/// hands the socket back to inetd or the master.
const QUIET: Duration = Duration::from_secs(30);
const MAX_RETRIES: u32 = 5;
/// Largest datagram we accept: a full 65464-byte block plus its header.
const MAX_PACKET: usize = 65468;

struct Limits {
    create: bool,
    max_blksize: usize,
    max_windowsize: u16,
    /// Concurrent transfers in all, and from one address.
    max_transfers: usize,
    max_per_ip: usize,
}

pub fn serve(s: UdpSession) {
    let (common, config) = (s.settings.common(), s.settings.daemon::<super::Config>());
    let root = &config.root;
    let limits = Limits {
        create: config.create,
        max_blksize: config.max_blksize,
        max_windowsize: config.max_windowsize,
        max_transfers: common.max_sessions,
        max_per_ip: common.max_per_ip,
    };
    // Uploads get 0644 whatever umask inetd or the shell had.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let jail = match confine(root, &config.user) {
        Ok(j) => j,
        Err(e) => {
            log::error!("tftpd: cannot serve {}: {e}", root.display());
            // Drain the request that woke us so inetd does not spin.
            let mut buf = [0u8; 16];
            let _ = s.socket.set_read_timeout(Some(Duration::from_millis(100)));
            if let Ok((_, peer)) = s.socket.recv_from(&mut buf) {
                let _ = s.socket.send_to(
                    &packet::error(ErrorCode::NotDefined, "server misconfigured"),
                    peer,
                );
            }
            return;
        }
    };
    let _ = s.socket.set_read_timeout(Some(QUIET));
    let mut buf = vec![0u8; MAX_PACKET];
    let mut transfers: Children<std::net::IpAddr> = Children::new();
    loop {
        transfers.reap_any();
        let (n, peer) = match s.socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if crate::net::is_timeout(&e) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("tftpd: {e}");
                return;
            }
        };
        let request = match packet::parse(&buf[..n]) {
            Ok(Packet::Request(r)) => r,
            Ok(_) => continue, // stray DATA/ACK on the server port: ignore
            Err(e) => {
                let _ = s
                    .socket
                    .send_to(&packet::error(ErrorCode::IllegalOperation, e.0), peer);
                continue;
            }
        };
        let from_peer = transfers.count_where(Kind::Transfer, |ip| *ip == peer.ip());
        if transfers.len() >= limits.max_transfers || from_peer >= limits.max_per_ip {
            log::warn!("tftpd: refused {peer}: too many transfers");
            let _ = s.socket.send_to(
                &packet::error(ErrorCode::NotDefined, "server busy, try again later"),
                peer,
            );
            continue;
        }
        let local = s.socket.local_addr().ok();
        // The transfer makes its own socket; it keeps nothing of ours.
        let spawned = transfers.spawn(Kind::Transfer, peer.ip(), &[], || {
            transfer(request, peer, local, &jail, &limits);
            0
        });
        if let Err(e) = spawned {
            log::error!("tftpd: fork: {e}");
        }
    }
}

/// Confine the session: chroot into the root and become `user` when root;
/// otherwise resolve every name inside the root by path.
fn confine(root: &Path, user: &str) -> io::Result<Jail> {
    if !auth::running_as_root() {
        return Jail::new(root);
    }
    let account = auth::system_account(user)
        .ok_or_else(|| io::Error::other(format!("no account named {user}")))?;
    // Resolve the root before leaving the real file system behind.
    let real = root.canonicalize()?;
    auth::enter_chroot(&real)?;
    auth::drop_privileges(&account)?;
    Jail::new(Path::new("/"))
}

fn transfer(
    req: Request,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    jail: &Jail,
    limits: &Limits,
) {
    let bind_addr: SocketAddr = match local {
        Some(SocketAddr::V6(_)) => "[::]:0".parse().unwrap_or(peer),
        _ => "0.0.0.0:0".parse().unwrap_or(peer),
    };
    let sock = match UdpSocket::bind(bind_addr).and_then(|s| s.connect(peer).map(|_| s)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("tftpd: transfer socket for {peer}: {e}");
            return;
        }
    };
    let verb = if req.write { "WRQ" } else { "RRQ" };
    let name = auth::printable(&req.filename);
    let outcome = if req.write {
        receive(&sock, &req, jail, limits)
    } else {
        send(&sock, &req, jail, limits)
    };
    match outcome {
        Ok(bytes) => log::info!("tftpd: {verb} {name} from {peer}: {bytes} bytes"),
        Err((code, why)) => {
            let _ = sock.send(&packet::error(code, &why));
            log::warn!("tftpd: {verb} {name} from {peer} failed: {why}");
        }
    }
}

type Failure = (ErrorCode, String);

fn io_failure(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::NotFound => (ErrorCode::FileNotFound, "file not found".into()),
        io::ErrorKind::PermissionDenied => (ErrorCode::AccessViolation, "access violation".into()),
        io::ErrorKind::AlreadyExists => (ErrorCode::FileExists, "file already exists".into()),
        _ if e.raw_os_error() == Some(libc::ENOSPC) => (ErrorCode::DiskFull, "disk full".into()),
        _ => (ErrorCode::NotDefined, e.to_string()),
    }
}

fn resolve(jail: &Jail, filename: &str) -> Result<PathBuf, Failure> {
    // Names are taken relative to the root, with or without a leading "/".
    let (_, real) = jail.resolve("/", filename).map_err(io_failure)?;
    Ok(real)
}

/// Wait for a packet from the peer, with the negotiated timeout.
fn recv<'a>(
    sock: &UdpSocket,
    buf: &'a mut [u8],
    timeout: Duration,
) -> Result<Option<Packet<'a>>, Failure> {
    let _ = sock.set_read_timeout(Some(timeout));
    match sock.recv(buf) {
        Ok(n) => match packet::parse(&buf[..n]) {
            Ok(Packet::Error { message, .. }) => Err((
                ErrorCode::NotDefined,
                format!("client: {}", auth::printable(&message)),
            )),
            Ok(p) => Ok(Some(p)),
            Err(_) => Ok(None),
        },
        Err(e) if crate::net::is_timeout(&e) => Ok(None),
        // ICMP port unreachable: the client is gone.
        Err(e) => Err((ErrorCode::NotDefined, e.to_string())),
    }
}

/// Blocks of a file as they go on the wire (netascii converted on the fly).
struct Blocks {
    file: File,
    mode: Mode,
    size: usize,
    pending: Vec<u8>,
    eof: bool,
}

impl Blocks {
    fn next(&mut self) -> io::Result<Vec<u8>> {
        while self.pending.len() < self.size && !self.eof {
            let mut chunk = vec![0u8; self.size.max(8192)];
            let n = self.file.read(&mut chunk)?;
            if n == 0 {
                self.eof = true;
            } else if self.mode == Mode::NetAscii {
                packet::to_netascii(&chunk[..n], &mut self.pending);
            } else {
                self.pending.extend_from_slice(&chunk[..n]);
            }
        }
        let take = self.pending.len().min(self.size);
        Ok(self.pending.drain(..take).collect())
    }
}

/// Send the option acknowledgement and wait for ACK 0 (reads) or the first
/// DATA (writes: returned to the caller).
fn send_oack(
    sock: &UdpSocket,
    oack: &[u8],
    timeout: Duration,
    expect_ack: bool,
) -> Result<Option<Vec<u8>>, Failure> {
    let mut buf = vec![0u8; MAX_PACKET];
    for _ in 0..MAX_RETRIES {
        sock.send(oack).map_err(io_failure)?;
        match recv(sock, &mut buf, timeout)? {
            Some(Packet::Ack { block: 0 }) if expect_ack => return Ok(None),
            Some(Packet::Data { block: 1, data }) if !expect_ack => return Ok(Some(data.to_vec())),
            _ => {}
        }
    }
    Err((
        ErrorCode::NotDefined,
        "no answer to the option acknowledgement".into(),
    ))
}

fn send(sock: &UdpSocket, req: &Request, jail: &Jail, limits: &Limits) -> Result<u64, Failure> {
    let path = resolve(jail, &req.filename)?;
    let file = open_nofollow(std::fs::OpenOptions::new().read(true), &path)?;
    let meta = file.metadata().map_err(io_failure)?;
    if !meta.is_file() {
        return Err((ErrorCode::AccessViolation, "not a regular file".into()));
    }
    let (neg, mut acked_opts) =
        packet::negotiate(&req.options, limits.max_blksize, limits.max_windowsize);
    if neg.tsize_requested && req.mode == Mode::Octet {
        acked_opts.push(("tsize".into(), meta.len().to_string()));
    }
    let timeout = Duration::from_secs(neg.timeout_secs);
    if !acked_opts.is_empty() {
        send_oack(sock, &packet::oack(&acked_opts), timeout, true)?;
    }
    let mut blocks = Blocks {
        file,
        mode: req.mode,
        size: neg.blksize,
        pending: Vec::new(),
        eof: false,
    };
    send_blocks(sock, &mut blocks, neg)
}

/// Go-back-N with the negotiated window (RFC 7440); window 1 is RFC 1350.
fn send_blocks(sock: &UdpSocket, blocks: &mut Blocks, neg: Negotiated) -> Result<u64, Failure> {
    let timeout = Duration::from_secs(neg.timeout_secs);
    let mut win = Window::new(neg.windowsize as u64);
    // Blocks sent but not acknowledged, oldest first, with their number.
    let mut in_flight: std::collections::VecDeque<(u64, Vec<u8>)> = Default::default();
    let mut sent_bytes = 0u64;
    let mut last_block: Option<u64> = None;
    let mut retries = 0;
    let mut out = Vec::with_capacity(neg.blksize + 4);
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        // Fill the window.
        while last_block.is_none() && win.can_send() {
            let data = blocks.next().map_err(io_failure)?;
            let n = win.next_block();
            if data.len() < neg.blksize {
                last_block = Some(n);
            }
            sent_bytes += data.len() as u64;
            packet::data(n as u16, &data, &mut out);
            sock.send(&out).map_err(io_failure)?;
            in_flight.push_back((n, data));
        }
        match recv(sock, &mut buf, timeout)? {
            Some(Packet::Ack { block }) => {
                if let Some(upto) = advance(win.acked, win.sent, block) {
                    win.acked = upto;
                    retries = 0;
                    while in_flight.front().is_some_and(|(n, _)| *n <= upto) {
                        in_flight.pop_front();
                    }
                    if last_block == Some(upto) {
                        return Ok(sent_bytes);
                    }
                }
                // A duplicate ACK is ignored: resending on it is the
                // Sorcerer's Apprentice bug.
            }
            Some(_) => {}
            None => {
                retries += 1;
                if retries > MAX_RETRIES {
                    return Err((ErrorCode::NotDefined, "timed out".into()));
                }
                for (n, data) in &in_flight {
                    packet::data(*n as u16, data, &mut out);
                    sock.send(&out).map_err(io_failure)?;
                }
            }
        }
    }
}

/// Open without following a symbolic link in the last component, without
/// blocking on a FIFO, and only a regular file.
fn open_nofollow(opts: &mut std::fs::OpenOptions, path: &Path) -> Result<File, Failure> {
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                (ErrorCode::AccessViolation, "access violation".to_string())
            } else {
                io_failure(e)
            }
        })?;
    if !file.metadata().map_err(io_failure)?.is_file() {
        return Err((ErrorCode::AccessViolation, "not a regular file".into()));
    }
    Ok(file)
}

/// Where an upload goes. Whenever the directory allows it, the data goes to
/// a temporary file renamed over the target when complete, so an aborted or
/// spoofed transfer changes nothing. Otherwise (an existing file in a
/// directory we cannot write) the file is truncated only when the first
/// block arrives.
enum Upload {
    /// Removed if the transfer does not complete.
    Aside {
        file: AsideFile,
        dest: PathBuf,
    },
    InPlace {
        file: File,
        truncate_pending: bool,
    },
}

fn open_upload(path: &Path, create: bool) -> Result<Upload, Failure> {
    let existing = match path.symlink_metadata() {
        Ok(m) if m.is_file() => true,
        Ok(_) => return Err((ErrorCode::AccessViolation, "not a regular file".into())),
        Err(_) if create => false,
        Err(_) => {
            return Err((
                ErrorCode::AccessViolation,
                "file does not exist and create is off".into(),
            ))
        }
    };
    if existing {
        // We must be allowed to write the file itself, as writing in place
        // would require; the rename alone would not check it.
        drop(open_nofollow(
            std::fs::OpenOptions::new().write(true),
            path,
        )?);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tftp-{}", std::process::id()));
    let mode = match path.metadata() {
        Ok(m) if existing => std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
        _ => 0o644,
    };
    match AsideFile::create(temp, mode) {
        Ok(file) => Ok(Upload::Aside {
            file,
            dest: path.to_path_buf(),
        }),
        Err(e) if existing && e.kind() == io::ErrorKind::PermissionDenied => Ok(Upload::InPlace {
            file: open_nofollow(std::fs::OpenOptions::new().write(true), path)?,
            truncate_pending: true,
        }),
        Err(e) => Err(io_failure(e)),
    }
}

impl Upload {
    fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        match self {
            Upload::Aside { file, .. } => file.write_all(data).map_err(io_failure),
            Upload::InPlace {
                file,
                truncate_pending,
            } => {
                if std::mem::take(truncate_pending) {
                    file.set_len(0).map_err(io_failure)?;
                }
                file.write_all(data).map_err(io_failure)
            }
        }
    }

    /// fsync, and rename into place when written aside. (The directory is
    /// not fsynced: a crash right after may still lose the rename.)
    fn finish(mut self) -> Result<(), Failure> {
        self.write(&[])?;
        match self {
            Upload::Aside { file, dest } => file.install(&dest).map_err(io_failure),
            Upload::InPlace { file, .. } => file.sync_all().map_err(io_failure),
        }
    }
}

fn receive(sock: &UdpSocket, req: &Request, jail: &Jail, limits: &Limits) -> Result<u64, Failure> {
    let path = resolve(jail, &req.filename)?;
    let mut upload = open_upload(&path, limits.create)?;
    let (neg, acked_opts) =
        packet::negotiate(&req.options, limits.max_blksize, limits.max_windowsize);
    let timeout = Duration::from_secs(neg.timeout_secs);
    let mut expected: u64 = 1;
    let mut written = 0u64;
    let mut pending_cr = false;
    let mut decoded = Vec::new();
    // With options, the OACK is answered by the first block; without, ACK 0
    // invites it.
    let mut first: Option<Vec<u8>> = if acked_opts.is_empty() {
        sock.send(&packet::ack(0)).map_err(io_failure)?;
        None
    } else {
        let mut opts = acked_opts;
        if let Some(t) = neg.tsize {
            opts.push(("tsize".into(), t.to_string()));
        }
        send_oack(sock, &packet::oack(&opts), timeout, false)?
    };
    let mut buf = vec![0u8; MAX_PACKET];
    let mut retries = 0;
    let mut since_ack = 0u64;
    loop {
        let block = match first.take() {
            Some(data) => Some((1u16, data)),
            None => match recv(sock, &mut buf, timeout)? {
                Some(Packet::Data { block, data }) => Some((block, data.to_vec())),
                _ => None,
            },
        };
        let Some((number, data)) = block else {
            retries += 1;
            if retries > MAX_RETRIES {
                return Err((ErrorCode::NotDefined, "timed out".into()));
            }
            // Ask again for what we expect next.
            sock.send(&packet::ack((expected - 1) as u16))
                .map_err(io_failure)?;
            continue;
        };
        if number != expected as u16 {
            // Out of order (a window lost a block): re-acknowledge the last
            // good block so the sender goes back to it.
            sock.send(&packet::ack((expected - 1) as u16))
                .map_err(io_failure)?;
            since_ack = 0;
            continue;
        }
        retries = 0;
        decoded.clear();
        if req.mode == Mode::NetAscii {
            packet::from_netascii(&data, &mut pending_cr, &mut decoded);
        } else {
            decoded.extend_from_slice(&data);
        }
        upload.write(&decoded)?;
        written += decoded.len() as u64;
        let last = data.len() < neg.blksize;
        since_ack += 1;
        if last {
            upload.finish()?;
            sock.send(&packet::ack(expected as u16))
                .map_err(io_failure)?;
            dally(sock, expected as u16, timeout);
            return Ok(written);
        }
        if since_ack >= neg.windowsize as u64 {
            sock.send(&packet::ack(expected as u16))
                .map_err(io_failure)?;
            since_ack = 0;
        }
        expected += 1;
    }
}

/// After the final ACK, answer a retransmitted last block (our ACK was lost)
/// for one timeout period.
fn dally(sock: &UdpSocket, last: u16, timeout: Duration) {
    let mut buf = vec![0u8; MAX_PACKET];
    while let Ok(Some(Packet::Data { block, .. })) = recv(sock, &mut buf, timeout) {
        if block == last {
            let _ = sock.send(&packet::ack(last));
        }
    }
}
