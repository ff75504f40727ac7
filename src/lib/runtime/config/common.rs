//! The keys every daemon takes (CONTRACT.md), typed once at load.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Settings};
use crate::auth::{self, Authenticator};

/// Where the `log` key sends log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTo {
    Syslog,
    Stderr,
}

/// One field per common key; unset optional keys are `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Common {
    pub listen: Vec<SocketAddr>,
    pub tls_listen: Vec<SocketAddr>,
    /// The service's own listener keys (smtpd's `submission_listen`), each
    /// with its addresses, so that the master binds them with the rest.
    pub extra_listen: Vec<(&'static str, Vec<SocketAddr>)>,
    /// Unix-domain stream sockets (`unix:PATH` items of `listen` and of
    /// the service's own listener keys), by key.
    pub unix_listen: Vec<(&'static str, PathBuf)>,
    /// Both or neither (checked): the TLS upgrade is offered when set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub passwd_file: Option<PathBuf>,
    pub pam_service: String,
    /// None when not written: the mode decides (stderr under -F, else
    /// syslog), so `log = syslog` under -F still means syslog.
    pub log: Option<LogTo>,
    pub log_facility: String,
    pub max_sessions: usize,
    pub max_per_ip: usize,
    pub idle_timeout: Duration,
    pub login_attempts: u32,
    pub pid_file: Option<PathBuf>,
    pub banner: Option<String>,
    /// The account a session runs as before login (a plausible name;
    /// whether it exists is for the session layer to find out).
    pub nopriv_user: String,
    /// How long a client has to complete a login.
    pub login_timeout: Duration,
}

impl Common {
    /// Read the common keys and check them against each other.
    /// `extra_listeners` are the service's own keys of kind Addrs.
    pub fn build(s: &Settings, extra_listeners: &[&'static str]) -> Result<Common, ConfigError> {
        let err = |key: &str, message: String| s.error(key, message);
        let tls_cert = s.path("tls_cert");
        let tls_key = s.path("tls_key");
        let tls_listen = s.addrs("tls_listen").to_vec();
        match (&tls_cert, &tls_key) {
            (Some(_), None) => {
                return Err(err("tls_key", "tls_cert is set but tls_key is not".into()))
            }
            (None, Some(_)) => {
                return Err(err("tls_cert", "tls_key is set but tls_cert is not".into()))
            }
            (None, None) if !tls_listen.is_empty() => {
                return Err(err("tls_listen", "needs tls_cert and tls_key".into()))
            }
            _ => {}
        }
        if !s.unix_paths("tls_listen").is_empty() {
            return Err(err(
                "tls_listen",
                "unix: sockets are plain listeners".into(),
            ));
        }
        let unix_listen = std::iter::once("listen")
            .chain(extra_listeners.iter().copied())
            .flat_map(|key| s.unix_paths(key).iter().map(move |p| (key, p.clone())))
            .collect();
        let nopriv_user = s.text("nopriv_user").to_string();
        if !auth::plausible_name(&nopriv_user) {
            return Err(err(
                "nopriv_user",
                format!("'{nopriv_user}' is not an account name"),
            ));
        }
        let log = match s.origin("log") {
            super::Origin::Default => None,
            _ if s.text("log") == "stderr" => Some(LogTo::Stderr),
            _ => Some(LogTo::Syslog),
        };
        Ok(Common {
            listen: s.addrs("listen").to_vec(),
            tls_listen,
            extra_listen: extra_listeners
                .iter()
                .map(|&key| (key, s.addrs(key).to_vec()))
                .collect(),
            unix_listen,
            tls_cert,
            tls_key,
            passwd_file: s.path("passwd_file"),
            pam_service: s.text("pam_service").to_string(),
            log,
            log_facility: s.text("log_facility").to_string(),
            max_sessions: usize::try_from(s.uint("max_sessions")).unwrap_or(usize::MAX),
            max_per_ip: usize::try_from(s.uint("max_per_ip")).unwrap_or(usize::MAX),
            idle_timeout: s.duration("idle_timeout"),
            login_attempts: u32::try_from(s.uint("login_attempts")).unwrap_or(u32::MAX),
            pid_file: s.path("pid_file"),
            banner: s.opt_text("banner").map(String::from),
            nopriv_user,
            login_timeout: s.duration("login_timeout"),
        })
    }

    /// The account store these settings name.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator::new(self.passwd_file.clone(), &self.pam_service)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Origin, Schema};
    use super::*;

    const OWN: &[super::super::KeySpec] = &[super::super::KeySpec::new(
        "submission_listen",
        super::super::Kind::Addrs,
        "",
        "",
    )];

    fn build(options: &[&str]) -> Result<Common, ConfigError> {
        let schema = Schema::new(OWN, &[("listen", "127.0.0.1:21".to_string())]);
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        let s = Settings::load(&schema, None, &options)?;
        Common::build(&s, &["submission_listen"])
    }

    #[test]
    fn defaults_are_typed() {
        let c = build(&[]).unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:21".parse().unwrap()]);
        assert!(c.tls_listen.is_empty() && c.tls_cert.is_none() && c.passwd_file.is_none());
        assert_eq!(c.extra_listen, vec![("submission_listen", vec![])]);
        assert_eq!(c.log, None);
        assert_eq!(
            (c.max_sessions, c.max_per_ip, c.login_attempts),
            (200, 20, 3)
        );
        assert_eq!(c.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.nopriv_user, "nobody");
        assert_eq!(c.login_timeout, Duration::from_secs(60));
        assert_eq!((c.banner, c.pid_file), (None, None));
    }

    #[test]
    fn values_are_typed() {
        let c = build(&[
            "log=syslog",
            "banner=hello there",
            "passwd_file=/etc/lab.passwd",
            "submission_listen=127.0.0.1:587",
            "nopriv_user=_classicd",
            "login_timeout=5",
            "login_attempts=99999999999",
        ])
        .unwrap();
        assert_eq!(c.log, Some(LogTo::Syslog));
        assert_eq!(c.banner.as_deref(), Some("hello there"));
        assert_eq!(c.passwd_file, Some(PathBuf::from("/etc/lab.passwd")));
        assert_eq!(c.extra_listen[0].1, vec!["127.0.0.1:587".parse().unwrap()]);
        assert_eq!(c.nopriv_user, "_classicd");
        assert_eq!(c.login_timeout, Duration::from_secs(5));
        assert_eq!(c.login_attempts, u32::MAX);
        assert_eq!(build(&["log=stderr"]).unwrap().log, Some(LogTo::Stderr));
        let c = build(&["submission_listen=unix:/run/s, 127.0.0.1:587"]).unwrap();
        assert_eq!(
            c.unix_listen,
            vec![("submission_listen", PathBuf::from("/run/s"))]
        );
        assert_eq!(
            build(&["tls_listen=unix:/run/t"]).unwrap_err().key,
            "tls_listen"
        );
    }

    #[test]
    fn tls_keys_go_together() {
        let e = build(&["tls_cert=/c.pem"]).unwrap_err();
        assert_eq!(e.key, "tls_key");
        let e = build(&["tls_key=/k.pem"]).unwrap_err();
        assert_eq!(e.key, "tls_cert");
        let e = build(&["tls_listen=127.0.0.1:990"]).unwrap_err();
        assert_eq!(e.key, "tls_listen");
        let c = build(&["tls_cert=/c.pem", "tls_key=/k.pem"]).unwrap();
        assert_eq!(c.tls_cert, Some(PathBuf::from("/c.pem")));
    }

    #[test]
    fn nopriv_user_must_be_an_account_name() {
        for bad in ["", "a b", "-x", "../etc", "x:y"] {
            let e = build(&[&format!("nopriv_user={bad}")]).unwrap_err();
            assert_eq!(e.key, "nopriv_user", "{bad:?}");
            assert_eq!(e.origin, Origin::Option);
        }
        let e = build(&["login_timeout=soon"]).unwrap_err();
        assert_eq!(e.key, "login_timeout");
    }

    #[test]
    fn authenticator_from_the_typed_keys() {
        let c = build(&["passwd_file=/etc/lab.passwd"]).unwrap();
        let a = c.authenticator();
        assert_eq!(
            a.passwd_file(),
            Some(std::path::Path::new("/etc/lab.passwd"))
        );
    }
}
