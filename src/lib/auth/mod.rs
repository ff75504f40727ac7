#![forbid(unsafe_code)]
//! Accounts and logins: a `passwd_file` of virtual users or system accounts
//! through NSS and PAM; the uniform failure delay; privilege drop; chroot.

#[cfg(feature = "pam")]
mod pam;
#[cfg(not(feature = "pam"))]
#[path = "no_pam.rs"]
mod pam;
mod passwd_file;
mod privilege;
pub mod sasl;
pub mod trust;
mod trust_system;

pub use passwd_file::{parse_line, PasswdEntry};
pub use privilege::{
    act_as, drop_privileges, empty_dir, enter_chroot, enter_prelogin, running_as_root, ActingAs,
};

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use trust_system::{addresses, confirmed_name, read_trust_file, SystemWorld};

/// An account a session can run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
    /// From `passwd_file`: no supplementary groups, no PAM session.
    pub virtual_user: bool,
    /// Supplementary groups, resolved when the account is looked up, so
    /// that the privilege drop never consults NSS (which may load modules
    /// from a user-writable chroot).
    pub groups: Vec<u32>,
}

/// Why a login did not succeed. Unknown user and bad password are the same
/// `Denied`, so nothing tells a client which accounts exist.
#[derive(Debug)]
pub enum AuthError {
    Denied,
    /// The account store could not be consulted (unreadable passwd_file,
    /// PAM misconfigured): a temporary failure, not the client's fault.
    Unavailable(String),
}

/// The person at a terminal, for an interactive login: prompts out, answers
/// back (None: no answer, the login is abandoned), messages shown.
pub trait Converse {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String>;
    fn show(&mut self, text: &str, error: bool);
}

/// A successful login: the account, and the PAM session while it lasts.
pub struct Login {
    pub account: Account,
    pam: Option<pam::PamLogin>,
}

impl Login {
    /// Environment variables PAM set for the session (for shells).
    pub fn pam_env(&self) -> Vec<(String, String)> {
        self.pam.as_ref().map(|p| p.env()).unwrap_or_default()
    }
}

/// Every failed login takes at least this long, whatever failed.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Checks names and passwords against the configured account store.
#[derive(Clone, Debug)]
pub struct Authenticator {
    passwd_file: Option<PathBuf>,
    pam_service: String,
}

impl Authenticator {
    pub fn new(passwd_file: Option<PathBuf>, pam_service: &str) -> Authenticator {
        Authenticator {
            passwd_file,
            pam_service: pam_service.to_string(),
        }
    }

    /// In a process that checks one login after another (a reused
    /// monitor): keep the PAM stack's modules loaded between them. Nothing
    /// with a `passwd_file` (no PAM).
    pub fn keep_loaded(&self) {
        if self.passwd_file.is_none() {
            pam::keep_loaded(&self.pam_service);
        }
    }

    pub fn passwd_file(&self) -> Option<&Path> {
        self.passwd_file.as_deref()
    }

    /// Find an account by name without checking a password (mail delivery,
    /// trust-file logins). Names with odd characters never match.
    pub fn lookup(&self, name: &str) -> Result<Option<Account>, AuthError> {
        if !plausible_name(name) {
            return Ok(None);
        }
        match &self.passwd_file {
            Some(path) => passwd_file::lookup(path, name)
                .map(|e| e.map(|e| e.account()))
                .map_err(|e| AuthError::Unavailable(format!("{}: {e}", path.display()))),
            None => Ok(system_account(name)),
        }
    }

    /// Check a name and password. Logs the outcome with `peer`; a failure
    /// returns only after FAILURE_DELAY, the same for every cause.
    pub fn authenticate(&self, name: &str, password: &str, peer: &str) -> Result<Login, AuthError> {
        let started = Instant::now();
        let result = if !plausible_name(name) {
            passwd_file::burn_time(password);
            Err(AuthError::Denied)
        } else {
            match &self.passwd_file {
                Some(path) => passwd_file::check(path, name, password)
                    .map(|account| Login { account, pam: None }),
                None => {
                    pam::login(&self.pam_service, name, password, peer).map(|(account, p)| Login {
                        account,
                        pam: Some(p),
                    })
                }
            }
        };
        Self::settle(name, peer, started, result)
    }

    /// A login at a terminal: the prompts (for the name too, when `name`
    /// is None) and messages go to `conv`, which relays them to the person
    /// at the other end. With a passwd_file: "login: " and "Password: ";
    /// with PAM: whatever the stack asks, an expired password changed
    /// when it allows. The same failure delay as `authenticate`.
    pub fn converse(
        &self,
        name: Option<&str>,
        peer: &str,
        mut conv: Box<dyn Converse>,
    ) -> Result<Login, AuthError> {
        let started = Instant::now();
        let name = name.filter(|n| !n.is_empty()).map(str::to_string);
        let result = match &self.passwd_file {
            Some(path) => {
                let name = match name {
                    Some(n) => Some(n),
                    None => conv.prompt("login: ", true),
                };
                match (name, conv.prompt("Password: ", false)) {
                    (Some(n), Some(p)) if plausible_name(&n) => {
                        let r = passwd_file::check(path, &n, &p)
                            .map(|account| Login { account, pam: None });
                        return Self::settle(&n, peer, started, r);
                    }
                    (_, Some(p)) => {
                        passwd_file::burn_time(&p);
                        Err(AuthError::Denied)
                    }
                    _ => Err(AuthError::Denied),
                }
            }
            None => {
                if name.as_deref().is_some_and(|n| !plausible_name(n)) {
                    Err(AuthError::Denied)
                } else {
                    pam::login_interactive(&self.pam_service, name.as_deref(), peer, conv).map(
                        |(account, p)| Login {
                            account,
                            pam: Some(p),
                        },
                    )
                }
            }
        };
        let shown = match &result {
            Ok(l) => l.account.name.clone(),
            Err(_) => "(unknown)".to_string(),
        };
        Self::settle(&shown, peer, started, result)
    }

    /// A login by host trust (rlogind, rshd): `ruser` at the client
    /// (`addr`, and its forward-confirmed `host` name if it has one) asks
    /// to be the account `name` without a password. `Native`: ruserok's
    /// rules decide (see `trust`), then PAM's account and session stages
    /// run for a system account; `Pam`: the stack's auth stage decides
    /// (pam_rhosts, with PAM_RUSER and PAM_RHOST). Returns the login or the
    /// refusal, and in both cases what decided, for the log.
    pub fn trusted(
        &self,
        name: &str,
        ruser: &str,
        addr: IpAddr,
        host: Option<&str>,
        mode: &TrustMode,
    ) -> (Result<Login, AuthError>, String) {
        if !plausible_name(name) || !plausible_name(ruser) {
            return (Err(AuthError::Denied), "implausible user name".into());
        }
        let account = match self.lookup(name) {
            Ok(Some(a)) => a,
            Ok(None) => return (Err(AuthError::Denied), "no such account".into()),
            Err(e) => return (Err(e), "account store unavailable".into()),
        };
        let addr_text = trust::canonical(addr).to_string();
        let rhost = host.unwrap_or(&addr_text);
        match mode {
            TrustMode::Native(policy) => {
                let client = trust::Client {
                    addr: trust::canonical(addr),
                    name: host,
                    user: ruser,
                };
                let local = trust::Local {
                    user: &account.name,
                    uid: account.uid,
                    home: &account.home,
                };
                let mut world = SystemWorld { account: &account };
                let decision = trust::decide(policy, &client, &local, &mut world);
                let why = decision.to_string();
                if !decision.allowed() {
                    return (Err(AuthError::Denied), why);
                }
                if self.passwd_file.is_some() {
                    return (Ok(Login { account, pam: None }), why);
                }
                let r = pam::login_trusted(&self.pam_service, account, rhost, ruser, false);
                let why = match &r {
                    Ok(_) => why,
                    Err(_) => format!("{why}, but PAM refused the account"),
                };
                (
                    r.map(|(account, p)| Login {
                        account,
                        pam: Some(p),
                    }),
                    why,
                )
            }
            TrustMode::Pam => {
                if self.passwd_file.is_some() {
                    let e = "trust = pam needs system accounts".to_string();
                    return (Err(AuthError::Unavailable(e.clone())), e);
                }
                let r = pam::login_trusted(&self.pam_service, account, rhost, ruser, true);
                let why = match &r {
                    Ok(_) => format!("allowed by PAM service {}", self.pam_service),
                    Err(_) => format!("denied by PAM service {}", self.pam_service),
                };
                (
                    r.map(|(account, p)| Login {
                        account,
                        pam: Some(p),
                    }),
                    why,
                )
            }
        }
    }

    /// Log the outcome; a failure returns only after FAILURE_DELAY.
    fn settle(
        name: &str,
        peer: &str,
        started: Instant,
        result: Result<Login, AuthError>,
    ) -> Result<Login, AuthError> {
        match &result {
            Ok(_) => log::info!("login ok: user {name} from {peer}"),
            Err(AuthError::Denied) => {
                log::warn!("login failed: user {} from {peer}", printable(name))
            }
            Err(AuthError::Unavailable(why)) => {
                log::error!(
                    "login unavailable: user {} from {peer}: {why}",
                    printable(name)
                )
            }
        }
        // Every failure takes as long, whatever failed.
        if result.is_err() {
            if let Some(rest) = FAILURE_DELAY.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        result
    }
}

/// How host trust is decided: the `trust` key of rlogind and rshd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustMode {
    /// ruserok(3)'s rules, in the daemon (`trust = native`).
    Native(trust::Policy),
    /// The PAM stack of `pam_service` (pam_rhosts; `trust = pam`).
    Pam,
}

/// A service's host trust: how it is decided, and whether the client must
/// come from a reserved port (512-1023) for it to count at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTrust {
    pub mode: TrustMode,
    pub require_privileged_port: bool,
}

/// The source ports rcmd(3) clients bind (rresvport: 512-1023).
pub const RESERVED_PORTS: std::ops::RangeInclusive<u16> = 512..=1023;

/// An account from the system's NSS databases.
pub fn system_account(name: &str) -> Option<Account> {
    let u = nix::unistd::User::from_name(name).ok()??;
    let groups = privilege::group_list(&u.name, u.gid.as_raw());
    Some(Account {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
        shell: u.shell,
        virtual_user: false,
        groups,
    })
}

/// Whether `shell` is listed in /etc/shells (ftpd's `check_shell`).
pub fn shell_allowed(shell: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/etc/shells") else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .any(|l| !l.starts_with('#') && Path::new(l) == shell)
}

/// Account names are short and made of safe characters; anything else is
/// refused before it reaches NSS, PAM or a log line.
pub fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'))
}

/// A client-supplied string made safe for a log line.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_screened() {
        assert!(plausible_name("demo"));
        assert!(plausible_name("first.last"));
        assert!(!plausible_name(""));
        assert!(!plausible_name("-rf"));
        assert!(!plausible_name("a b"));
        assert!(!plausible_name("a:b"));
        assert!(!plausible_name("../etc"));
        assert!(!plausible_name(&"x".repeat(65)));
    }

    #[test]
    fn printable_masks_controls() {
        assert_eq!(printable("a\r\nb\0"), "a??b?");
    }
}
