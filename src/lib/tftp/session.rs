//! The tftpd driver. The session owns the server socket (inetd `wait`):
//! it reads requests until the line has been quiet for a while, and serves
//! each in a forked transfer process on a fresh socket (the transfer ID of
//! RFC 1350), connected to the client so no other host can interfere.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::machine::{self, Action, Failure, Outcome, Transfer};
use super::packet::{self, ErrorCode, Packet, Request};
use crate::auth;
use crate::fs::AsideFile;
use crate::fs::Jail;
use crate::runtime::supervise::{Children, Kind};
use crate::runtime::UdpSession;

/// How long the session waits for another request before it exits and
/// hands the socket back to inetd or the master.
const QUIET: Duration = Duration::from_secs(30);
/// Largest datagram we accept: a full 65464-byte block plus its header.
const MAX_PACKET: usize = 65468;

struct Limits {
    create: bool,
    /// What a client may negotiate.
    options: machine::Limits,
    /// Concurrent transfers in all, and from one address.
    max_transfers: usize,
    max_per_ip: usize,
}

pub fn serve(s: UdpSession) {
    let (common, config) = (s.settings.common(), s.settings.daemon::<super::Config>());
    let root = &config.root;
    let limits = Limits {
        create: config.create,
        options: machine::Limits {
            max_blksize: config.max_blksize,
            max_windowsize: config.max_windowsize,
        },
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
    let outcome = match LocalFile::open(&req, jail, limits.create) {
        Ok(mut file) => {
            let (machine, actions) = Transfer::start(&req, limits.options, file.size());
            run(&sock, machine, actions, &mut file)
        }
        Err(failure) => {
            let _ = sock.send(&failure.packet());
            Outcome::Failed(failure.message)
        }
    };
    match outcome {
        Outcome::Complete { bytes } => {
            log::info!("tftpd: {verb} {name} from {peer}: {bytes} bytes")
        }
        Outcome::Failed(why) => log::warn!("tftpd: {verb} {name} from {peer} failed: {why}"),
    }
}

/// Carry out the machine's actions until it is done: the only place a
/// transfer touches the socket, the file and the clock.
fn run(
    sock: &UdpSocket,
    mut machine: Transfer,
    first: Vec<Action>,
    file: &mut LocalFile,
) -> Outcome {
    let mut queue = VecDeque::from(first);
    let mut deadline: Option<Instant> = None;
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        while let Some(action) = queue.pop_front() {
            // A file operation is last in its batch: its answer's actions
            // follow in order.
            let answer = match action {
                Action::Send(datagram) => match sock.send(&datagram) {
                    Ok(_) => continue,
                    // ICMP port unreachable: the client is gone.
                    Err(e) => return Outcome::Failed(e.to_string()),
                },
                Action::SetTimer(after) => {
                    deadline = Some(Instant::now() + after);
                    continue;
                }
                Action::Read(max) => machine.file_read(file.read(max)),
                Action::Write(data) => machine.written(file.write(&data)),
                Action::Commit => machine.committed(file.commit()),
                Action::Done(outcome) => return outcome,
            };
            queue.extend(answer);
        }
        // The machine always arms a timer before it waits for the peer; the
        // fallback only bounds the wait should it not.
        let fire_at = *deadline
            .get_or_insert_with(|| Instant::now() + Duration::from_secs(packet::MAX_TIMEOUT));
        let now = Instant::now();
        if now >= fire_at {
            deadline = None;
            queue.extend(machine.timeout());
            continue;
        }
        let _ = sock.set_read_timeout(Some(fire_at - now));
        match sock.recv(&mut buf) {
            Ok(n) => queue.extend(machine.datagram(&buf[..n])),
            Err(e) if crate::net::is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            // ICMP port unreachable: the client is gone.
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
}

fn resolve(jail: &Jail, filename: &str) -> Result<PathBuf, Failure> {
    // Names are taken relative to the root, with or without a leading "/".
    let (_, real) = jail.resolve("/", filename)?;
    Ok(real)
}

/// The file end of a transfer.
enum LocalFile {
    Download { file: File, size: u64, buf: Vec<u8> },
    Upload(Upload),
}

impl LocalFile {
    fn open(req: &Request, jail: &Jail, create: bool) -> Result<LocalFile, Failure> {
        let path = resolve(jail, &req.filename)?;
        if req.write {
            return Ok(LocalFile::Upload(open_upload(&path, create)?));
        }
        let file = open_nofollow(std::fs::OpenOptions::new().read(true), &path)?;
        let size = file.metadata()?.len();
        Ok(LocalFile::Download {
            file,
            size,
            buf: Vec::new(),
        })
    }

    /// The size of a file to send.
    fn size(&self) -> Option<u64> {
        match self {
            LocalFile::Download { size, .. } => Some(*size),
            LocalFile::Upload(_) => None,
        }
    }

    fn read(&mut self, max: usize) -> io::Result<&[u8]> {
        let LocalFile::Download { file, buf, .. } = self else {
            return Err(io::Error::other("not a download"));
        };
        buf.resize(max, 0);
        let n = loop {
            match file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        Ok(&buf[..n])
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            LocalFile::Upload(upload) => upload.write(data),
            LocalFile::Download { .. } => Err(io::Error::other("not an upload")),
        }
    }

    fn commit(&mut self) -> io::Result<()> {
        match self {
            LocalFile::Upload(upload) => upload.commit(),
            LocalFile::Download { .. } => Err(io::Error::other("not an upload")),
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
                Failure::new(ErrorCode::AccessViolation, "access violation")
            } else {
                e.into()
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(Failure::new(
            ErrorCode::AccessViolation,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Where an upload goes. Whenever the directory allows it, the data goes to
/// a temporary file renamed over the target when complete, so an aborted or
/// spoofed transfer changes nothing. Otherwise (an existing file in a
/// directory we cannot write) the file is truncated only when the first
/// block arrives.
enum Upload {
    /// Written aside, renamed over the target when complete.
    Aside { file: AsideFile, dest: PathBuf },
    /// Written in place, truncated when the first block arrives.
    InPlace { file: File, truncate_pending: bool },
    /// Committed: nothing left to do.
    Done,
}

fn open_upload(path: &Path, create: bool) -> Result<Upload, Failure> {
    let existing = match path.symlink_metadata() {
        Ok(m) if m.is_file() => true,
        Ok(_) => {
            return Err(Failure::new(
                ErrorCode::AccessViolation,
                "not a regular file",
            ))
        }
        Err(_) if create => false,
        Err(_) => {
            return Err(Failure::new(
                ErrorCode::AccessViolation,
                "file does not exist and create is off",
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
        Err(e) => Err(e.into()),
    }
}

impl Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Upload::Aside { file, .. } => {
                let mut f = file.file();
                f.write_all(data)
            }
            Upload::InPlace {
                file,
                truncate_pending,
            } => {
                if std::mem::take(truncate_pending) {
                    file.set_len(0)?;
                }
                file.write_all(data)
            }
            Upload::Done => Err(io::Error::other("the upload is already complete")),
        }
    }

    /// Make the upload durable and put it in place. (The directory is not
    /// fsynced: a crash right after may still lose the rename.)
    fn commit(&mut self) -> io::Result<()> {
        self.write(&[])?;
        match std::mem::replace(self, Upload::Done) {
            Upload::Aside { file, dest } => file.install(&dest),
            Upload::InPlace { file, .. } => file.sync_all(),
            Upload::Done => Ok(()),
        }
    }
}
