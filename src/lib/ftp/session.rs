//! The session driver: reads control lines, asks the state machine what to
//! do, and does it with the jail and sockets. Transfers are in
//! `transfer.rs`.
//!
//! It runs in both processes of the privilege split: before login in the
//! unprivileged, confined pre-login process (which knows no files: every
//! command but the login ones needs a login, see `state`), which asks the
//! monitor to check credentials and then hands the connection over; after
//! login in the account's process, which the monitor has already confined
//! (chroot for `chroot_users` and anonymous sessions) and switched to the
//! account.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::command::{self, parse};
use super::handover::Handover;
use super::listing::{self, Entry};
use super::state::{self, Action, Reply, State};
use super::Config;
use crate::auth::{self, Account};
use crate::fs::{normalize, Jail};
use crate::net::dialogue::{self, Dialogue, LineProtocol, Silence};
use crate::net::{Conn, Ending};
use crate::runtime::config::Settings;
use crate::runtime::session::{LoggedIn, Monitor, Plan, PreLogin, TcpProtocol, Verdict};
use crate::runtime::ListenKind;

pub use crate::net::dialogue::Flow;

/// Longest command line (beyond it: 500 and the line is dropped).
pub const LINE_MAX: usize = 4096;

/// The driver's state around the protocol state machine.
pub struct Driver {
    pub d: Dialogue,
    pub settings: Arc<Settings>,
    pub state: State,
    /// Set at login: where client paths resolve.
    pub jail: Option<Jail>,
    /// The real anonymous upload directory, once known.
    pub upload_real: Option<PathBuf>,
    pub passive: Option<TcpListener>,
    /// The root monitor: credentials before login, connections from the
    /// data port after.
    pub monitor: Monitor,
    /// uid/gid to name, filled before a chroot hides /etc.
    pub users: HashMap<u32, String>,
    pub groups: HashMap<u32, String>,
}

/// ftpd in the privilege split.
pub struct Ftp;

pub static FTP: Ftp = Ftp;

fn config(settings: &Settings, conn: &Conn, tls: bool, tls_active: bool) -> state::Config {
    let (common, config) = (settings.common(), settings.daemon::<Config>());
    state::Config {
        anonymous: config.anonymous,
        anon_upload_dir: config.anon_upload_dir.clone(),
        port_enable: config.port_enable,
        tls,
        tls_active,
        login_attempts: common.login_attempts.min(1000),
        peer: conn.peer,
        local: conn.local,
        umask: config.umask,
        idle: common.idle_timeout.as_secs(),
    }
}

/// Urgent data (the Telnet DM clients send before ABOR) stays in line.
fn oob_inline(conn: &Conn) {
    if let Some(tcp) = conn.tcp() {
        let _ = socket2::SockRef::from(tcp).set_out_of_band_inline(true);
    }
}

impl TcpProtocol for Ftp {
    fn prelogin(&self, s: PreLogin) {
        oob_inline(&s.conn);
        let banner = s.banner("ftpd");
        let cfg = config(
            &s.settings,
            &s.conn,
            s.tls.is_some(),
            s.kind == ListenKind::Tls,
        );
        let mut drv = Driver {
            d: Dialogue::new(s.conn, s.tls, LINE_MAX),
            settings: s.settings,
            state: State::new(cfg),
            jail: None,
            upload_real: None,
            passive: None,
            monitor: s.monitor,
            users: HashMap::new(),
            groups: HashMap::new(),
        };
        if drv.reply(220, &banner).is_err() {
            return;
        }
        dialogue::run(&mut drv);
    }

    fn session(&self, s: LoggedIn) {
        oob_inline(&s.conn);
        // Modes of created files come from the session's own umask.
        nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let Some(h) = Handover::decode(&s.handover) else {
            log::error!("user {}: bad hand-over", s.account.name);
            return;
        };
        let cfg = config(&s.settings, &s.conn, s.tls.is_some(), h.tls_active);
        let confined = s.chrooted || s.root != Path::new("/");
        let home = if confined {
            "/".to_string()
        } else if s.account.home.is_dir() {
            s.account.home.to_string_lossy().into_owned()
        } else {
            "/".to_string()
        };
        let jail = match Jail::new(&s.root) {
            Ok(j) => j,
            Err(e) => {
                log::error!(
                    "user {}: cannot use {}: {e}",
                    s.account.name,
                    s.root.display()
                );
                return;
            }
        };
        let mut drv = Driver {
            d: Dialogue::new(s.conn, s.tls, LINE_MAX),
            settings: s.settings,
            state: State::resumed(cfg, h),
            jail: Some(jail),
            upload_real: None,
            passive: None,
            monitor: s.monitor,
            users: s.user_names.into_iter().collect(),
            groups: s.group_names.into_iter().collect(),
        };
        if s.anonymous {
            if let Some(v) = drv.config().anon_upload_dir.clone() {
                drv.upload_real = drv.jail.as_ref().and_then(|j| j.real(&v).ok());
            }
        }
        let r = drv.state.login_ok(&home);
        if drv.send(&r).is_err() {
            return;
        }
        dialogue::run(&mut drv);
    }

    /// As root, before the account's process exists: ftpusers_file and
    /// check_shell, and the chroot of chroot_users.
    fn admit(&self, settings: &Settings, a: &Account) -> Result<Plan, String> {
        if let Some(why) = refused(settings, a) {
            return Err(why.into());
        }
        Ok(Plan {
            chroot: settings
                .daemon::<Config>()
                .chroot_users
                .then(|| a.home.clone()),
        })
    }

    /// As root: anonymous sessions run as anon_user (ftp, else nobody),
    /// looked up like every account (in passwd_file when it is set, else the
    /// system's), confined to anon_root.
    fn anonymous(&self, settings: &Settings) -> Option<Result<(Account, Plan), String>> {
        let config = settings.daemon::<Config>();
        if !config.anonymous {
            return None;
        }
        let plan = Plan {
            chroot: Some(config.anon_root.clone()),
        };
        if !auth::running_as_root() {
            return Some(Ok((current_account(), plan)));
        }
        let accounts = settings.common().authenticator();
        let candidates: Vec<&str> = match &config.anon_user {
            Some(n) => vec![n.as_str()],
            None => vec!["ftp", "nobody"],
        };
        for name in candidates {
            match accounts.lookup(name) {
                Ok(Some(a)) => return Some(Ok((a, plan))),
                Ok(None) => continue,
                Err(e) => return Some(Err(format!("anon_user {name}: {e:?}"))),
            }
        }
        Some(Err(
            "no account to run anonymous sessions as (anon_user, ftp or nobody)".into(),
        ))
    }

    fn reserved_ports(&self, local: SocketAddr) -> Option<std::ops::RangeInclusive<u16>> {
        let port = super::data_port(local);
        Some(port..=port)
    }
}

/// Without root, anonymous sessions stay who we are.
fn current_account() -> Account {
    Account {
        name: "ftp".into(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        home: PathBuf::from("/"),
        shell: PathBuf::from("/bin/sh"),
        virtual_user: true,
        groups: vec![],
    }
}

/// Accounts refused by `ftpusers_file` or `check_shell`.
fn refused(settings: &Settings, a: &Account) -> Option<&'static str> {
    let config = settings.daemon::<Config>();
    if let Some(path) = &config.ftpusers_file {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text
                .lines()
                .map(str::trim)
                .any(|l| !l.starts_with('#') && l == a.name)
            {
                return Some("listed in ftpusers_file");
            }
        }
    }
    if config.check_shell && !auth::shell_allowed(&a.shell) {
        return Some("shell not in /etc/shells");
    }
    None
}

impl LineProtocol for Driver {
    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn redact(&self, line: &[u8]) -> String {
        command::loggable(&command::strip_telnet(line))
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        self.command(line).unwrap_or(Flow::Close)
    }

    fn too_long(&mut self) -> Flow {
        match self.reply(500, "Command line too long.") {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close,
        }
    }

    fn silent(&mut self, why: Silence) {
        let _ = match why {
            Silence::Idle => self.reply(421, "Timeout: closing control connection."),
            Silence::Deadline => self.reply(421, "Login timeout: closing control connection."),
        };
    }

    fn tls_started(&mut self) {
        self.state.tls_started();
    }
}

impl Driver {
    /// ftpd's typed configuration.
    fn config(&self) -> &Config {
        self.settings.daemon()
    }

    /// Send one reply at once: FTP clients wait for each (150 before the
    /// data, 226 after).
    pub fn reply(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.send(&Reply::new(code, text))
    }

    pub fn send(&mut self, r: &Reply) -> io::Result<()> {
        self.d.reply(r.wire().as_bytes());
        self.d.flush()
    }

    /// Run one control line.
    pub fn command(&mut self, raw: &[u8]) -> io::Result<Flow> {
        let line = command::strip_telnet(raw);
        let cmd = match parse(&line) {
            Ok(c) => c,
            Err(e) => {
                self.send(&state::parse_error_reply(&e))?;
                return Ok(Flow::Continue);
            }
        };
        let action = self.state.handle(cmd);
        self.perform(action)
    }

    fn perform(&mut self, action: Action) -> io::Result<Flow> {
        match action {
            Action::Reply(r) => self.send(&r)?,
            Action::Close(r) => {
                self.send(&r)?;
                return Ok(Flow::Close);
            }
            Action::Login { user, pass } => return self.login(&user, &pass),
            Action::AnonLogin { ident } => return self.anon_login(&ident),
            Action::Cwd(v) => {
                let res = self.real(&v).and_then(|p| {
                    let m = std::fs::metadata(&p)?;
                    if !m.is_dir() {
                        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                    }
                    nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK)?;
                    Ok(())
                });
                match res {
                    Ok(()) => {
                        self.state.cwd_ok(&v);
                        self.reply(250, "Directory successfully changed.")?
                    }
                    Err(e) => self.fail(550, "Failed to change directory", &e)?,
                }
            }
            Action::Mkd(v) => {
                let umask = self.state.umask;
                let res = self
                    .real(&v)
                    .and_then(|p| std::fs::DirBuilder::new().mode(0o777 & !umask).create(p));
                match res {
                    Ok(()) => {
                        log::info!("MKD {v}");
                        self.reply(257, &format!("\"{}\" created.", v.replace('"', "\"\"")))?
                    }
                    Err(e) => self.fail(550, "Create directory operation failed", &e)?,
                }
            }
            Action::Rmd(v) => match self.real_nofollow(&v).and_then(std::fs::remove_dir) {
                Ok(()) => {
                    log::info!("RMD {v}");
                    self.reply(250, "Remove directory operation successful.")?
                }
                Err(e) => self.fail(550, "Remove directory operation failed", &e)?,
            },
            Action::Dele(v) => {
                let res = self.real_nofollow(&v).and_then(|p| {
                    if std::fs::symlink_metadata(&p)?.is_dir() {
                        return Err(io::Error::from_raw_os_error(libc::EISDIR));
                    }
                    std::fs::remove_file(p)
                });
                match res {
                    Ok(()) => {
                        log::info!("DELE {v}");
                        self.reply(250, "Delete operation successful.")?
                    }
                    Err(e) => self.fail(550, "Delete operation failed", &e)?,
                }
            }
            Action::Rnfr(v) => {
                match self
                    .real_nofollow(&v)
                    .and_then(|p| std::fs::symlink_metadata(p).map(|_| ()))
                {
                    Ok(()) => {
                        self.state.rnfr_ok(&v);
                        self.reply(350, "Ready for RNTO.")?
                    }
                    Err(e) => self.fail(550, "RNFR command failed", &e)?,
                }
            }
            Action::Rename { from, to } => {
                let res = self
                    .real_nofollow(&from)
                    .and_then(|f| Ok((f, self.real_nofollow(&to)?)))
                    .and_then(|(f, t)| std::fs::rename(f, t));
                match res {
                    Ok(()) => {
                        log::info!("RENAME {from} {to}");
                        self.reply(250, "Rename successful.")?
                    }
                    Err(e) => self.fail(550, "Rename failed", &e)?,
                }
            }
            Action::Size(v) => match self.real(&v).and_then(std::fs::metadata) {
                Ok(m) if m.is_file() => self.reply(213, &m.len().to_string())?,
                Ok(_) => self.reply(550, "Could not get file size.")?,
                Err(e) => self.fail(550, "Could not get file size", &e)?,
            },
            Action::Mdtm(v) => match self.real(&v).and_then(std::fs::metadata) {
                Ok(m) if m.is_file() => self.reply(213, &listing::timeval(m.mtime()))?,
                Ok(_) => self.reply(550, "Could not get file modification time.")?,
                Err(e) => self.fail(550, "Could not get file modification time", &e)?,
            },
            Action::Mfmt(t, v) => {
                let when = if t >= 0 {
                    UNIX_EPOCH + Duration::from_secs(t as u64)
                } else {
                    UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
                };
                let res = self.real(&v).and_then(|p| {
                    let f = std::fs::File::options()
                        .read(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(p)?;
                    f.set_modified(when)
                });
                match res {
                    Ok(()) => self.reply(213, &format!("Modify={}; {v}", listing::timeval(t)))?,
                    Err(e) => self.fail(550, "Could not set the modification time", &e)?,
                }
            }
            Action::Mlst(v) => match self.mlst(&v) {
                Ok(line) => self.reply(250, &format!("Listing {v}\n {line}\nEnd"))?,
                Err(e) => self.fail(550, "MLST failed", &e)?,
            },
            Action::StatPath(v) => match self.stat_listing(&v) {
                Ok(lines) => {
                    let mut text = format!("Status of {v}:");
                    for l in lines {
                        text.push_str("\n ");
                        text.push_str(&l);
                    }
                    text.push_str("\nEnd of status");
                    self.reply(213, &text)?
                }
                Err(e) => self.fail(550, "STAT failed", &e)?,
            },
            Action::StatServer => {
                let text = self.server_status(None);
                self.reply(211, &text)?
            }
            Action::Chmod(mode, v) => {
                let res = self.real(&v).and_then(|p| {
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                });
                match res {
                    Ok(()) => {
                        log::info!("SITE CHMOD {mode:o} {v}");
                        self.reply(200, "SITE CHMOD command ok.")?
                    }
                    Err(e) => self.fail(550, "SITE CHMOD command failed", &e)?,
                }
            }
            Action::SetIdle(n) => {
                let _ = self.d.conn.set_idle_timeout(Some(Duration::from_secs(n)));
                self.reply(200, &format!("Idle timeout set to {n} seconds."))?
            }
            Action::OpenPassive { extended } => self.open_passive(extended)?,
            Action::Port(_) => {
                self.passive = None;
                self.reply(200, "PORT command successful. Consider using PASV.")?
            }
            Action::StartTls => {
                if self.d.tls.is_none() || self.d.conn.tcp().is_none() {
                    self.reply(502, "TLS is not configured.")?;
                    return Ok(Flow::Continue);
                }
                self.reply(234, "Proceed with negotiation.")?;
                return Ok(Flow::StartTls);
            }
            Action::Abor => {
                self.passive = None;
                self.state.data_reset();
                self.reply(225, "No transfer to ABOR.")?
            }
            Action::Transfer(t) => return self.transfer(t),
        }
        Ok(Flow::Continue)
    }

    /// Reply for a failed file operation, and log it at debug level.
    pub fn fail(&mut self, code: u16, what: &str, e: &io::Error) -> io::Result<()> {
        log::debug!("{what}: {e}");
        let why = match (e.kind(), e.raw_os_error()) {
            (io::ErrorKind::NotFound, _) => "no such file or directory",
            (io::ErrorKind::PermissionDenied, _) => "permission denied",
            (io::ErrorKind::AlreadyExists, _) => "file exists",
            (_, Some(libc::ENOTDIR)) => "not a directory",
            (_, Some(libc::EISDIR)) => "is a directory",
            (_, Some(libc::ENOTEMPTY)) => "directory not empty",
            (io::ErrorKind::InvalidInput, _) => "not a plain file",
            _ => "operation failed",
        };
        self.reply(code, &format!("{what}: {why}."))
    }

    pub fn jail(&self) -> io::Result<&Jail> {
        self.jail
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied))
    }

    /// The real path of a virtual one, links followed, inside the jail.
    pub fn real(&self, v: &str) -> io::Result<PathBuf> {
        self.jail()?.real(v)
    }

    /// The real path of a virtual one whose last component is not
    /// followed (a link is deleted or renamed, not its target).
    pub fn real_nofollow(&self, v: &str) -> io::Result<PathBuf> {
        let v = normalize("/", v);
        let name = v.rsplit('/').next().unwrap_or("");
        if v == "/" || name.is_empty() {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let parent = self.real(&normalize(&v, ".."))?;
        Ok(parent.join(name))
    }

    /// Whether a real path is inside the anonymous upload directory.
    pub fn in_upload(&self, real: &Path) -> bool {
        self.state.anonymous()
            && self
                .upload_real
                .as_ref()
                .is_some_and(|u| real.starts_with(u))
    }

    fn mlst(&self, v: &str) -> io::Result<String> {
        let real = self.real(v)?;
        if self.in_upload(&real) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let m = std::fs::metadata(&real)?;
        let mut e = entry_from(v.to_string(), &m);
        e.name = v.to_string();
        let perm = self.perm_of(&e, &real, real.parent().unwrap_or(Path::new("/")));
        let kind = if e.is_dir() { Some("cdir") } else { None };
        Ok(listing::mlsx_line(&e, &self.state.facts, &perm, kind))
    }

    /// The MLSx perm fact for this session.
    pub fn perm_of(&self, e: &Entry, real: &Path, dir: &Path) -> String {
        use nix::unistd::{access, AccessFlags};
        let readable = access(real, AccessFlags::R_OK).is_ok();
        let anon = self.state.anonymous();
        let writable = !anon && access(real, AccessFlags::W_OK).is_ok();
        let dir_writable = !anon && access(dir, AccessFlags::W_OK).is_ok();
        listing::perm_fact(e, readable, writable, dir_writable)
    }

    fn stat_listing(&mut self, v: &str) -> io::Result<Vec<String>> {
        let real = self.real(v)?;
        if self.in_upload(&real) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let now = now();
        let m = std::fs::metadata(&real)?;
        let mut out = Vec::new();
        if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&real)?.filter_map(|e| e.ok()).collect();
            names.sort_by_key(|e| e.file_name());
            for de in names.iter().take(10_000) {
                let name = de.file_name().to_string_lossy().into_owned();
                if let Ok(md) = de.path().symlink_metadata() {
                    let mut e = entry_from(name, &md);
                    if e.is_link() {
                        e.link_target = std::fs::read_link(de.path())
                            .ok()
                            .map(|t| t.to_string_lossy().into_owned());
                    }
                    out.push(self.ls_line(&e, now));
                }
            }
        } else {
            let e = entry_from(v.rsplit('/').next().unwrap_or(v).to_string(), &m);
            out.push(self.ls_line(&e, now));
        }
        Ok(out)
    }

    pub fn ls_line(&mut self, e: &Entry, now: i64) -> String {
        let owner = self.user_name(e.uid);
        let group = self.group_name(e.gid);
        listing::ls_line(e, &owner, &group, now)
    }

    pub fn user_name(&mut self, uid: u32) -> String {
        if let Some(n) = self.users.get(&uid) {
            return n.clone();
        }
        let n = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        if self.users.len() < 1000 {
            self.users.insert(uid, n.clone());
        }
        n
    }

    pub fn group_name(&mut self, gid: u32) -> String {
        if let Some(n) = self.groups.get(&gid) {
            return n.clone();
        }
        let n = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| gid.to_string());
        if self.groups.len() < 1000 {
            self.groups.insert(gid, n.clone());
        }
        n
    }

    pub fn server_status(&self, transfer: Option<&str>) -> String {
        let mut lines = vec![
            "FTP server status:".to_string(),
            format!(" Connected to {}", self.d.conn.peer.ip()),
        ];
        match (&self.state.user, self.state.logged_in()) {
            (Some(u), true) => lines.push(format!(" Logged in as {}", auth::printable(u))),
            _ => lines.push(" Not logged in".into()),
        }
        lines.push(format!(
            " TYPE: {}",
            match self.state.dtype {
                command::DataType::Ascii => "ASCII",
                command::DataType::Image => "BINARY",
            }
        ));
        lines.push(format!(
            " MODE: {}; STRU: {}",
            state::mode_letter(self.state.mode),
            state::stru_letter(self.state.structure)
        ));
        lines.push(format!(
            " Session timeout in seconds is {}",
            self.state.idle
        ));
        lines.push(format!(
            " Control connection is {}",
            if self.d.conn.is_tls() {
                "TLS"
            } else {
                "plain text"
            }
        ));
        if let Some(t) = transfer {
            lines.push(format!(" {t}"));
        }
        lines.push("End of status".into());
        lines.join("\n")
    }

    fn open_passive(&mut self, extended: bool) -> io::Result<()> {
        self.passive = None;
        let ip = self.d.conn.local.ip();
        let listener = match self.config().pasv_ports {
            None => TcpListener::bind(SocketAddr::new(ip, 0)),
            Some((lo, hi)) => {
                let n = u32::from(hi - lo) + 1;
                let seed = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0)
                    ^ std::process::id();
                let mut res = Err(io::Error::from(io::ErrorKind::AddrInUse));
                for i in 0..n.min(4096) {
                    let port = lo as u32 + (seed.wrapping_add(i)) % n;
                    res = TcpListener::bind(SocketAddr::new(ip, port as u16));
                    if res.is_ok() {
                        break;
                    }
                }
                res
            }
        };
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                log::warn!("cannot open a passive listener: {e}");
                self.state.data_reset();
                return self.reply(425, "Could not open passive connection.");
            }
        };
        let port = listener.local_addr()?.port();
        self.passive = Some(listener);
        self.state.passive_opened();
        if extended {
            return self.reply(229, &format!("Entering Extended Passive Mode (|||{port}|)"));
        }
        let announced = self.config().pasv_address.or(match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        });
        let Some(a) = announced else {
            self.passive = None;
            self.state.data_reset();
            return self.reply(500, "PASV is IPv4 only; use EPSV.");
        };
        let o = a.octets();
        self.reply(
            227,
            &format!(
                "Entering Passive Mode ({},{},{},{},{},{}).",
                o[0],
                o[1],
                o[2],
                o[3],
                port >> 8,
                port & 0xff
            ),
        )
    }

    /// In the pre-login process: the monitor checks the credentials; a
    /// granted login hands the connection to the account's process.
    fn login(&mut self, user: &str, pass: &str) -> io::Result<Flow> {
        let verdict = self.monitor.password(user, pass);
        self.granted(verdict)
    }

    fn anon_login(&mut self, ident: &str) -> io::Result<Flow> {
        let verdict = self.monitor.anonymous(ident);
        self.granted(verdict)
    }

    fn granted(&mut self, verdict: Verdict) -> io::Result<Flow> {
        match verdict {
            Verdict::Granted(name) => {
                let handover = self.state.handover().encode();
                let e = self.monitor.start_session(&mut self.d.conn, &handover);
                log::error!("user {name}: cannot start the session: {e}");
                self.reply(530, "Login incorrect.")?;
                Ok(Flow::Close)
            }
            Verdict::Denied => self.login_failed(),
            Verdict::Unavailable => {
                self.reply(421, "Service not available, closing control connection.")?;
                Ok(Flow::Close)
            }
        }
    }

    fn login_failed(&mut self) -> io::Result<Flow> {
        match self.state.login_failed() {
            Action::Close(r) => {
                self.send(&r)?;
                Ok(Flow::Close)
            }
            Action::Reply(r) => {
                self.send(&r)?;
                Ok(Flow::Continue)
            }
            _ => Ok(Flow::Continue),
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Listing facts from metadata.
pub fn entry_from(name: String, m: &std::fs::Metadata) -> Entry {
    Entry {
        name,
        mode: m.mode(),
        nlink: m.nlink(),
        uid: m.uid(),
        gid: m.gid(),
        size: m.size(),
        mtime: m.mtime(),
        dev: m.dev(),
        ino: m.ino(),
        link_target: None,
    }
}
