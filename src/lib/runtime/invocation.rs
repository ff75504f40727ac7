//! What the command line fixes for the life of the process, and the loading
//! of the configuration it names. Below both `cli` (which parses the flags)
//! and `master` (which reloads on SIGHUP), so that each uses it alone.

use std::path::PathBuf;

use super::config::{ConfigError, LogTo, Schema, Settings};
use super::log::Target;
use super::Service;

/// How the process was asked to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Inetd,
    Detached,
    Foreground,
}

/// Everything the command line fixes for the life of the process.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub mode: Mode,
    pub file: Option<PathBuf>,
    pub overrides: Vec<String>,
    pub debug: bool,
}

impl Invocation {
    /// Load (or reload) the configuration the command line names and build
    /// its typed forms, with every check: what loads here is what runs.
    pub fn load(&self, service: &Service) -> Result<Settings, ConfigError> {
        let schema = schema_for(service);
        let mut s = Settings::load(&schema, self.file.as_deref(), &self.overrides)?;
        s.build_typed(service.extra_listeners, service.config)?;
        self.check_listeners(&s)?;
        Ok(s)
    }

    /// A standalone daemon needs somewhere to listen (unless systemd hands
    /// it sockets); under inetd the socket comes with the process.
    fn check_listeners(&self, s: &Settings) -> Result<(), ConfigError> {
        let c = s.common();
        let count = c.listen.len()
            + c.tls_listen.len()
            + c.extra_listen.iter().map(|(_, a)| a.len()).sum::<usize>();
        if self.mode != Mode::Inetd && count == 0 && std::env::var_os("LISTEN_FDS").is_none() {
            return Err(ConfigError {
                origin: s.origin("listen"),
                key: "listen".into(),
                message: "no listening address configured".into(),
            });
        }
        Ok(())
    }

    /// Where log lines go for these settings in this mode.
    pub fn log_target(&self, s: &Settings) -> Target {
        let c = s.common();
        let syslog = Target::Syslog(c.log_facility.clone());
        match (self.mode, c.log) {
            // In inetd mode fds 0-2 are the client's socket.
            (Mode::Inetd, _) => syslog,
            (Mode::Foreground, Some(LogTo::Syslog)) => syslog,
            (Mode::Foreground, _) => Target::Stderr,
            (Mode::Detached, Some(LogTo::Stderr)) => Target::Stderr,
            (Mode::Detached, _) => syslog,
        }
    }
}

/// The service's schema: common keys with its defaults, plus its own keys.
pub fn schema_for(service: &Service) -> Schema {
    Schema::new(
        service.keys,
        &[
            ("listen", format!("0.0.0.0:{p},[::]:{p}", p = service.port)),
            ("pam_service", service.pam_service.to_string()),
            ("log_facility", service.log_facility.to_string()),
            ("idle_timeout", service.idle_timeout.to_string()),
        ],
    )
}

/// The settings `service` runs with under inetd for these `-o` options,
/// typed: what a daemon's unit tests build their configuration with.
pub fn load_options(service: &Service, options: &[&str]) -> Result<Settings, ConfigError> {
    Invocation {
        mode: Mode::Inetd,
        file: None,
        overrides: options.iter().map(|o| o.to_string()).collect(),
        debug: false,
    }
    .load(service)
}

#[cfg(test)]
mod tests {
    use super::super::config::Origin;
    use super::*;

    #[test]
    fn log_target_by_mode_and_key() {
        let svc = &crate::pop3::SERVICE;
        let target = |mode, options: &[&str]| {
            let inv = Invocation {
                mode,
                file: None,
                overrides: vec![],
                debug: false,
            };
            inv.log_target(&load_options(svc, options).unwrap())
        };
        let syslog = Target::Syslog("mail".into());
        assert_eq!(target(Mode::Foreground, &[]), Target::Stderr);
        assert_eq!(target(Mode::Foreground, &["log=syslog"]), syslog);
        assert_eq!(target(Mode::Detached, &[]), syslog);
        assert_eq!(target(Mode::Detached, &["log=stderr"]), Target::Stderr);
        assert_eq!(target(Mode::Inetd, &["log=stderr"]), syslog);
    }

    #[test]
    fn standalone_needs_a_listener() {
        let svc = &crate::pop3::SERVICE;
        let inv = Invocation {
            mode: Mode::Foreground,
            file: None,
            overrides: vec!["listen=".into()],
            debug: false,
        };
        if std::env::var_os("LISTEN_FDS").is_none() {
            assert_eq!(inv.load(svc).unwrap_err().key, "listen");
        }
        assert!(load_options(svc, &["listen="]).is_ok());
    }

    #[test]
    fn every_daemon_builds_its_defaults() {
        for svc in [
            &crate::ftp::SERVICE,
            &crate::pop3::SERVICE,
            &crate::smtp::SERVICE,
            &crate::tftp::SERVICE,
            &crate::nntp::SERVICE,
        ] {
            let s = load_options(svc, &[]).unwrap_or_else(|e| panic!("{}: {e}", svc.name));
            assert_eq!(s.common().max_sessions, 200);
            assert_eq!(s.origin("listen"), Origin::Default);
        }
    }
}
