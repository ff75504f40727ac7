//! The session state machine: (state, command) -> a reply or an action for
//! the driver. No sockets, no files, no clock. The driver reports outcomes
//! back (`login_ok`, `login_failed`, `cwd_ok`, ...).

use std::net::{IpAddr, SocketAddr};

use super::command::{Command, DataType, Eprt, Epsv, ParseError, Site, VERBS};
use super::framing::{Structure, TransferMode};
use super::listing::FACTS;
use crate::fs::normalize;

/// What the state machine needs to know about the session's setting.
#[derive(Clone, Debug)]
pub struct Config {
    pub anonymous: bool,
    /// Normalised virtual path of the anonymous upload directory.
    pub anon_upload_dir: Option<String>,
    pub port_enable: bool,
    /// AUTH TLS may be offered.
    pub tls: bool,
    /// The control connection is already under TLS (implicit TLS port).
    pub tls_active: bool,
    pub login_attempts: u32,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub umask: u32,
    pub idle: u64,
}

/// A reply: code and text; a text with several lines becomes a multi-line
/// reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            text: text.into(),
        }
    }

    /// The wire form. Middle lines of a multi-line reply start with a space,
    /// so none can be taken for the last one.
    pub fn wire(&self) -> String {
        let lines: Vec<&str> = self.text.split('\n').collect();
        if lines.len() == 1 {
            return format!("{} {}\r\n", self.code, self.text);
        }
        let mut out = format!("{}-{}\r\n", self.code, lines[0]);
        for l in &lines[1..lines.len() - 1] {
            if !l.starts_with(' ') {
                out.push(' ');
            }
            out.push_str(l);
            out.push_str("\r\n");
        }
        out.push_str(&format!("{} {}\r\n", self.code, lines[lines.len() - 1]));
        out
    }
}

/// How the next data connection is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSetup {
    None,
    /// The driver holds a passive listener.
    Passive,
    /// Connect to the client here.
    Active(SocketAddr),
}

/// What a data transfer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Retr,
    Stor,
    Appe,
    Stou,
    /// `ls -l` lines; `all` shows dot files.
    List {
        all: bool,
    },
    Nlst {
        all: bool,
    },
    Mlsd,
}

/// A data transfer for the driver to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub kind: Kind,
    /// Normalised virtual path (for listings: the directory or pattern;
    /// for STOU: the directory plus the requested prefix).
    pub path: String,
    /// The argument as the client gave it (NLST prefixes names with it).
    pub arg: Option<String>,
    pub offset: u64,
    pub ascii: bool,
    /// MODE and STRU (see `framing`).
    pub mode: TransferMode,
    pub structure: Structure,
    /// Data under TLS (PROT P).
    pub private: bool,
    pub data: DataSetup,
    /// Create only: an existing file is not replaced (anonymous uploads).
    pub exclusive: bool,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Send the reply, then end the session.
    Close(Reply),
    Login {
        user: String,
        pass: String,
    },
    AnonLogin {
        ident: String,
    },
    Cwd(String),
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rename {
        from: String,
        to: String,
    },
    Size(String),
    Mdtm(String),
    /// Set a file's modification time.
    Mfmt(i64, String),
    Mlst(String),
    /// STAT with a path: a listing over the control connection.
    StatPath(String),
    /// STAT without argument.
    StatServer,
    Chmod(u32, String),
    /// Open a passive listener; reply 227 (false) or 229 (true).
    OpenPassive {
        extended: bool,
    },
    /// Active mode to this address (checked); reply 200.
    Port(SocketAddr),
    Transfer(Transfer),
    /// Reply 234, then the TLS handshake; then call `tls_started`.
    StartTls,
    /// ABOR with no transfer running.
    Abor,
    SetIdle(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Login {
    Out,
    UserGiven(String),
    In { anon: bool },
}

/// The session's protocol state.
#[derive(Clone, Debug)]
pub struct State {
    cfg: Config,
    login: Login,
    failures: u32,
    pub cwd: String,
    rnfr: Option<String>,
    rest: u64,
    pub dtype: DataType,
    pub mode: TransferMode,
    pub structure: Structure,
    private: bool,
    tls_active: bool,
    /// PBSZ was given (PROT needs it first).
    pbsz: bool,
    epsv_all: bool,
    data: DataSetup,
    pub facts: Vec<String>,
    pub umask: u32,
    pub idle: u64,
    pub user: Option<String>,
}

fn r(code: u16, text: &str) -> Action {
    Action::Reply(Reply::new(code, text))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn mode_letter(m: TransferMode) -> char {
    match m {
        TransferMode::Stream => 'S',
        TransferMode::Block => 'B',
        TransferMode::Compressed => 'C',
    }
}

pub fn stru_letter(s: Structure) -> char {
    match s {
        Structure::File => 'F',
        Structure::Record => 'R',
        Structure::Page => 'P',
    }
}

/// The reply for a line that did not parse.
pub fn parse_error_reply(e: &ParseError) -> Reply {
    match e {
        ParseError::Unknown(v) => Reply::new(500, format!("Unknown command {v}.")),
        ParseError::Syntax(why) => Reply::new(501, format!("Syntax error: {why}.")),
        ParseError::NotImplemented(why) => Reply::new(504, format!("Not implemented: {why}.")),
        ParseError::Empty => Reply::new(500, "Empty command."),
    }
}

impl State {
    pub fn new(cfg: Config) -> State {
        State {
            tls_active: cfg.tls_active,
            umask: cfg.umask,
            idle: cfg.idle,
            cfg,
            login: Login::Out,
            failures: 0,
            cwd: "/".into(),
            rnfr: None,
            rest: 0,
            dtype: DataType::Ascii,
            mode: TransferMode::Stream,
            structure: Structure::File,
            private: false,
            pbsz: false,
            epsv_all: false,
            data: DataSetup::None,
            facts: FACTS.iter().map(|s| s.to_string()).collect(),
            user: None,
        }
    }

    /// What a login hands to the account's process (see `handover`).
    pub fn handover(&self) -> super::handover::Handover {
        let user = match &self.login {
            Login::UserGiven(u) => u.clone(),
            _ => String::new(),
        };
        super::handover::Handover {
            user,
            tls_active: self.tls_active,
            pbsz: self.pbsz,
            private: self.private,
            facts: self.facts.clone(),
        }
    }

    /// The state of an account's process: as the pre-login process left
    /// it, about to be logged in (`login_ok`).
    pub fn resumed(cfg: Config, h: super::handover::Handover) -> State {
        let mut s = State::new(cfg);
        s.login = Login::UserGiven(h.user);
        s.tls_active = h.tls_active;
        s.pbsz = h.pbsz && h.tls_active;
        s.private = h.private && s.pbsz;
        s.facts = FACTS
            .iter()
            .filter(|f| h.facts.iter().any(|g| g == *f))
            .map(|f| f.to_string())
            .collect();
        s
    }

    pub fn logged_in(&self) -> bool {
        matches!(self.login, Login::In { .. })
    }

    pub fn anonymous(&self) -> bool {
        matches!(self.login, Login::In { anon: true })
    }

    pub fn tls_active(&self) -> bool {
        self.tls_active
    }

    pub fn data_setup(&self) -> DataSetup {
        self.data
    }

    pub fn rest(&self) -> u64 {
        self.rest
    }

    /// The driver logged the user in; `home` is the initial virtual cwd.
    pub fn login_ok(&mut self, home: &str) -> Reply {
        let anon = matches!(&self.login, Login::UserGiven(u) if self.is_anon_name(u));
        if let Login::UserGiven(u) = &self.login {
            self.user = Some(u.clone());
        }
        self.login = Login::In { anon };
        self.failures = 0;
        self.cwd = normalize("/", home);
        if anon {
            Reply::new(230, "Guest login ok, access restrictions apply.")
        } else {
            Reply::new(230, "Login successful.")
        }
    }

    /// A login failed: 530, and the session ends after `login_attempts`.
    pub fn login_failed(&mut self) -> Action {
        self.login = Login::Out;
        self.failures += 1;
        let reply = Reply::new(530, "Login incorrect.");
        if self.failures >= self.cfg.login_attempts.max(1) {
            Action::Close(reply)
        } else {
            Action::Reply(reply)
        }
    }

    pub fn cwd_ok(&mut self, vpath: &str) {
        self.cwd = vpath.to_string();
    }

    pub fn rnfr_ok(&mut self, vpath: &str) {
        self.rnfr = Some(vpath.to_string());
    }

    /// The TLS handshake after AUTH is done: the login starts over.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        if !self.logged_in() {
            self.login = Login::Out;
        }
    }

    /// The driver gave up a passive listener (failed to open, or used).
    pub fn data_reset(&mut self) {
        self.data = DataSetup::None;
    }

    pub fn passive_opened(&mut self) {
        self.data = DataSetup::Passive;
    }

    fn is_anon_name(&self, user: &str) -> bool {
        self.cfg.anonymous
            && (user.eq_ignore_ascii_case("anonymous") || user.eq_ignore_ascii_case("ftp"))
    }

    fn path(&self, arg: &str) -> String {
        normalize(&self.cwd, arg)
    }

    fn in_upload_dir(&self, vpath: &str) -> bool {
        match &self.cfg.anon_upload_dir {
            Some(u) => vpath == u || vpath.starts_with(&format!("{}/", u.trim_end_matches('/'))),
            None => false,
        }
    }

    /// Anonymous sessions may not read inside the upload directory.
    fn may_read(&self, vpath: &str) -> bool {
        !(self.anonymous() && self.in_upload_dir(vpath))
    }

    /// Anonymous sessions write nothing but new files in the upload dir.
    fn may_write(&self) -> bool {
        !self.anonymous()
    }

    fn denied() -> Action {
        r(550, "Permission denied.")
    }

    fn check_active(&self, addr: SocketAddr, verb: &str) -> Result<(), Action> {
        if !self.cfg.port_enable {
            return Err(r(502, &format!("{verb} is disabled; use PASV or EPSV.")));
        }
        if self.epsv_all {
            return Err(r(503, &format!("{verb} not allowed after EPSV ALL.")));
        }
        if canonical(addr.ip()) != canonical(self.cfg.peer.ip()) || addr.port() < 1024 {
            return Err(r(500, &format!("Illegal {verb} command.")));
        }
        Ok(())
    }

    fn transfer(&mut self, kind: Kind, path: String, arg: Option<String>) -> Action {
        if self.data == DataSetup::None {
            return r(425, "Use PORT, PASV, EPRT or EPSV first.");
        }
        let t = Transfer {
            kind,
            path,
            arg,
            offset: self.rest,
            ascii: self.dtype == DataType::Ascii,
            mode: self.mode,
            structure: self.structure,
            private: self.private && self.tls_active,
            data: self.data,
            exclusive: self.anonymous(),
        };
        self.rest = 0;
        self.data = DataSetup::None;
        Action::Transfer(t)
    }

    fn feat(&self) -> Reply {
        let mut lines = vec!["Features:".to_string()];
        if self.cfg.tls {
            lines.push(" AUTH TLS".into());
            lines.push(" PBSZ".into());
            lines.push(" PROT".into());
        }
        for f in ["EPRT", "EPSV", "MDTM", "MFMT"] {
            lines.push(format!(" {f}"));
        }
        let facts: String = FACTS
            .iter()
            .map(|f| {
                if self.facts.iter().any(|s| s == f) {
                    format!("{f}*;")
                } else {
                    format!("{f};")
                }
            })
            .collect();
        lines.push(format!(" MLST {facts}"));
        for f in ["PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"] {
            lines.push(format!(" {f}"));
        }
        lines.push("End".into());
        Reply::new(211, lines.join("\n"))
    }

    fn help(topic: Option<&str>) -> Reply {
        match topic {
            Some(t) if VERBS.contains(&t) => Reply::new(214, format!("Syntax: {t} (see RFC 959).")),
            Some(t) => Reply::new(502, format!("Unknown command {t}.")),
            None => {
                let mut lines = vec!["The following commands are recognized.".to_string()];
                for chunk in VERBS.chunks(8) {
                    lines.push(format!(" {}", chunk.join(" ")));
                }
                lines.push("Help OK.".into());
                Reply::new(214, lines.join("\n"))
            }
        }
    }

    /// Decide what a parsed command does.
    pub fn handle(&mut self, cmd: Command) -> Action {
        use Command as C;
        // RNFR must be followed at once by RNTO.
        let rnfr = if matches!(cmd, C::Rnto(_)) {
            self.rnfr.take()
        } else {
            self.rnfr = None;
            None
        };
        // Commands that need no login.
        match &cmd {
            C::User(u) => {
                if self.logged_in() {
                    return r(530, "Can't change to another user.");
                }
                self.login = Login::UserGiven(u.clone());
                return if self.is_anon_name(u) {
                    r(
                        331,
                        "Guest login ok, send your complete e-mail address as password.",
                    )
                } else {
                    r(331, "Please specify the password.")
                };
            }
            C::Pass(p) => {
                return match &self.login {
                    Login::In { .. } => r(230, "Already logged in."),
                    Login::Out => r(503, "Login with USER first."),
                    Login::UserGiven(u) if self.is_anon_name(u) => {
                        Action::AnonLogin { ident: p.clone() }
                    }
                    Login::UserGiven(u) => Action::Login {
                        user: u.clone(),
                        pass: p.clone(),
                    },
                }
            }
            C::Acct => {
                return if self.logged_in() {
                    r(202, "ACCT not needed.")
                } else {
                    r(503, "Login with USER first.")
                }
            }
            C::Quit => return Action::Close(Reply::new(221, "Goodbye.")),
            C::Noop => return r(200, "NOOP ok."),
            C::Syst => return r(215, "UNIX Type: L8"),
            C::Feat => return Action::Reply(self.feat()),
            C::Help(t) => return Action::Reply(Self::help(t.as_deref())),
            C::OptsUtf8(on) => {
                return if *on {
                    r(200, "Always in UTF8 mode.")
                } else {
                    r(504, "UTF8 cannot be turned off.")
                }
            }
            C::OptsMlst(facts) => {
                self.facts = FACTS
                    .iter()
                    .filter(|f| facts.iter().any(|g| g == *f))
                    .map(|f| f.to_string())
                    .collect();
                let list: String = self.facts.iter().map(|f| format!("{f};")).collect();
                return r(200, &format!("MLST OPTS {list}"));
            }
            C::Auth(mech) => {
                return if !self.cfg.tls {
                    r(502, "TLS is not configured.")
                } else if self.tls_active {
                    r(503, "Already using TLS.")
                } else if mech == "TLS" || mech == "TLS-C" || mech == "SSL" {
                    Action::StartTls
                } else {
                    r(504, "Unknown AUTH type.")
                }
            }
            C::Pbsz(_) => {
                return if self.tls_active {
                    self.pbsz = true;
                    r(200, "PBSZ=0")
                } else {
                    r(503, "PBSZ needs AUTH TLS first.")
                }
            }
            C::Prot(level) => {
                if !self.tls_active {
                    return r(503, "PROT needs AUTH TLS first.");
                }
                // RFC 4217 section 9: PBSZ before PROT.
                if !self.pbsz {
                    return r(503, "PROT needs PBSZ first.");
                }
                return match level {
                    'C' => {
                        self.private = false;
                        r(200, "PROT now Clear.")
                    }
                    'P' => {
                        self.private = true;
                        r(200, "PROT now Private.")
                    }
                    _ => r(536, "PROT level not supported."),
                };
            }
            C::Stat(None) => return Action::StatServer,
            C::Abor => return Action::Abor,
            _ => {}
        }
        if !self.logged_in() {
            return r(530, "Please login with USER and PASS.");
        }
        match cmd {
            C::Cwd(p) => {
                let v = self.path(&p);
                Action::Cwd(v)
            }
            C::Cdup => Action::Cwd(self.path("..")),
            C::Pwd => r(
                257,
                &format!(
                    "\"{}\" is the current directory.",
                    self.cwd.replace('"', "\"\"")
                ),
            ),
            C::Mkd(p) if self.may_write() => Action::Mkd(self.path(&p)),
            C::Rmd(p) if self.may_write() => Action::Rmd(self.path(&p)),
            C::Dele(p) if self.may_write() => Action::Dele(self.path(&p)),
            C::Rnfr(p) if self.may_write() => Action::Rnfr(self.path(&p)),
            C::Rnto(p) if self.may_write() => match rnfr {
                Some(from) => Action::Rename {
                    from,
                    to: self.path(&p),
                },
                None => r(503, "RNFR required first."),
            },
            C::Site(Site::Chmod(m, _)) if m & 0o7000 != 0 => r(
                550,
                "SITE CHMOD: setuid, setgid and sticky bits are not allowed.",
            ),
            C::Site(Site::Chmod(m, p)) if self.may_write() => Action::Chmod(m, self.path(&p)),
            C::Mfmt(t, p) if self.may_write() => Action::Mfmt(t, self.path(&p)),
            C::Mfmt(..) => Self::denied(),
            C::Mkd(_) | C::Rmd(_) | C::Dele(_) | C::Rnfr(_) | C::Rnto(_) => Self::denied(),
            C::Site(Site::Chmod(..)) => Self::denied(),
            C::Site(Site::Umask(None)) => {
                r(200, &format!("Your current UMASK is {:04o}.", self.umask))
            }
            C::Site(Site::Umask(Some(m))) => {
                self.umask = m;
                r(200, &format!("UMASK set to {m:04o}."))
            }
            C::Site(Site::Idle(None)) => r(
                200,
                &format!("Current idle timeout is {} seconds.", self.idle),
            ),
            C::Site(Site::Idle(Some(n))) => {
                if !(30..=7200).contains(&n) {
                    return r(501, "SITE IDLE takes 30 to 7200 seconds.");
                }
                self.idle = n;
                Action::SetIdle(n)
            }
            C::Site(Site::Help) => r(214, "SITE CHMOD UMASK IDLE HELP"),
            C::Size(p) | C::Mdtm(p) | C::Mlst(Some(p)) | C::Stat(Some(p))
                if !self.may_read(&self.path(&p)) =>
            {
                Self::denied()
            }
            C::Size(p) => Action::Size(self.path(&p)),
            C::Mdtm(p) => Action::Mdtm(self.path(&p)),
            C::Mlst(p) => {
                let v = self.path(p.as_deref().unwrap_or("."));
                if !self.may_read(&v) {
                    return Self::denied();
                }
                Action::Mlst(v)
            }
            C::Stat(p) => Action::StatPath(self.path(p.as_deref().unwrap_or("."))),
            C::Type(t) => {
                self.dtype = t;
                match t {
                    DataType::Ascii => r(200, "Switching to ASCII mode."),
                    DataType::Image => r(200, "Switching to Binary mode."),
                }
            }
            C::Mode(m) => {
                if m != TransferMode::Stream && self.rest != 0 {
                    self.rest = 0;
                }
                self.mode = m;
                r(200, &format!("Mode set to {}.", mode_letter(m)))
            }
            C::Stru(st) => {
                self.structure = st;
                r(200, &format!("Structure set to {}.", stru_letter(st)))
            }
            C::Allo => r(202, "ALLO not needed."),
            // Restarts in block and compressed modes would need restart
            // markers, which are not sent: REST is for stream mode.
            C::Rest(_) if self.mode != TransferMode::Stream => {
                r(504, "REST is for MODE S only (REST STREAM).")
            }
            C::Rest(n) => {
                self.rest = n;
                r(350, &format!("Restart position accepted ({n})."))
            }
            C::Port(addr) => match self.check_active(addr, "PORT") {
                Err(a) => a,
                Ok(()) => {
                    self.data = DataSetup::Active(addr);
                    Action::Port(addr)
                }
            },
            C::Eprt(Eprt::UnknownProto) => r(522, "Network protocol not supported, use (1,2)"),
            C::Eprt(Eprt::Addr(addr)) => {
                if addr.is_ipv4() != canonical(self.cfg.peer.ip()).is_ipv4() {
                    let p = if canonical(self.cfg.peer.ip()).is_ipv4() {
                        1
                    } else {
                        2
                    };
                    return r(522, &format!("Network protocol not supported, use ({p})"));
                }
                match self.check_active(addr, "EPRT") {
                    Err(a) => a,
                    Ok(()) => {
                        self.data = DataSetup::Active(addr);
                        Action::Port(addr)
                    }
                }
            }
            C::Pasv => {
                if self.epsv_all {
                    return r(503, "PASV not allowed after EPSV ALL.");
                }
                if !canonical(self.cfg.local.ip()).is_ipv4() {
                    return r(500, "PASV is IPv4 only; use EPSV.");
                }
                self.data = DataSetup::None;
                Action::OpenPassive { extended: false }
            }
            C::Epsv(Epsv::All) => {
                self.epsv_all = true;
                r(200, "EPSV ALL ok.")
            }
            C::Epsv(e) => {
                let mine = if canonical(self.cfg.local.ip()).is_ipv4() {
                    1
                } else {
                    2
                };
                if let Epsv::Proto(p) = e {
                    if p != mine {
                        return r(
                            522,
                            &format!("Network protocol not supported, use ({mine})"),
                        );
                    }
                }
                self.data = DataSetup::None;
                Action::OpenPassive { extended: true }
            }
            C::Retr(p) => {
                let v = self.path(&p);
                if !self.may_read(&v) {
                    return Self::denied();
                }
                self.transfer(Kind::Retr, v, Some(p))
            }
            C::List(ref p, _) | C::Nlst(ref p, _) | C::Mlsd(ref p)
                if !self.may_read(&self.path(p.as_deref().unwrap_or("."))) =>
            {
                Self::denied()
            }
            C::List(p, all) => {
                let v = self.path(p.as_deref().unwrap_or("."));
                self.transfer(Kind::List { all }, v, p)
            }
            C::Nlst(p, all) => {
                let v = self.path(p.as_deref().unwrap_or("."));
                self.transfer(Kind::Nlst { all }, v, p)
            }
            C::Mlsd(p) => {
                let v = self.path(p.as_deref().unwrap_or("."));
                self.transfer(Kind::Mlsd, v, p)
            }
            C::Appe(_) if self.anonymous() => Self::denied(),
            C::Stor(p) if self.anonymous() => {
                let v = self.path(&p);
                let parent = normalize(&v, "..");
                if !self.in_upload_dir(&parent) || self.rest > 0 {
                    return Self::denied();
                }
                self.transfer(Kind::Stor, v, Some(p))
            }
            C::Stor(p) => {
                let v = self.path(&p);
                self.transfer(Kind::Stor, v, Some(p))
            }
            C::Appe(p) => {
                let v = self.path(&p);
                self.transfer(Kind::Appe, v, Some(p))
            }
            C::Stou(p) => {
                if self.anonymous() && !self.in_upload_dir(&self.cwd) {
                    return Self::denied();
                }
                let prefix = p
                    .as_deref()
                    .and_then(|s| s.rsplit('/').next())
                    .filter(|s| !s.is_empty() && *s != "." && *s != "..")
                    .unwrap_or("ftp")
                    .to_string();
                let v = normalize(&self.cwd, &prefix);
                self.rest = 0;
                self.transfer(Kind::Stou, v, p)
            }
            // Handled before the login check.
            C::User(_)
            | C::Pass(_)
            | C::Acct
            | C::Quit
            | C::Noop
            | C::Syst
            | C::Feat
            | C::Help(_)
            | C::OptsUtf8(_)
            | C::OptsMlst(_)
            | C::Auth(_)
            | C::Pbsz(_)
            | C::Prot(_)
            | C::Abor => r(500, "Unexpected."),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
