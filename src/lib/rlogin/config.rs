//! rlogind's keys (CONTRACT.md): host trust (shared with rshd), `login`
//! and `issue_file`, typed once at load.

use std::path::PathBuf;

use crate::auth::HostTrust;
use crate::rsh::{host_trust, TRUST_KEYS};
use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

pub const KEYS: &[KeySpec] = &[
    TRUST_KEYS[0],
    TRUST_KEYS[1],
    TRUST_KEYS[2],
    TRUST_KEYS[3],
    TRUST_KEYS[4],
    KeySpec::new(
        "login",
        Kind::Text,
        "builtin",
        "builtin, or a login program with arguments (%h: the client's host, %u: the user)",
    ),
    KeySpec::new(
        "issue_file",
        Kind::Path,
        "/etc/issue.net",
        "shown before the password prompt",
    ),
];

/// Largest issue file shown (the rest is cut).
pub const ISSUE_MAX: usize = 4096;

/// How a login without trust proceeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// Our own prompt, checked by the monitor; the account's shell after.
    Builtin,
    /// A login program on the terminal: its path and argument templates.
    Program(Vec<String>),
}

/// rlogind's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub trust: HostTrust,
    pub login: Login,
    /// The issue file's content, read when the configuration is loaded (a
    /// pre-login process sees no files); None when there is none.
    pub issue: Option<Vec<u8>>,
    pub issue_file: Option<PathBuf>,
}

/// `Service::config` of rlogind.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let login = match s.text("login").trim() {
            "builtin" | "" => Login::Builtin,
            text => {
                let words: Vec<String> = text.split_whitespace().map(String::from).collect();
                if !words[0].starts_with('/') {
                    return Err(s.error(
                        "login",
                        format!("'{}' is not builtin or an absolute path", words[0]),
                    ));
                }
                Login::Program(words)
            }
        };
        let issue_file = s.path("issue_file");
        let issue = issue_file.as_ref().and_then(|p| {
            let mut text = std::fs::read(p).ok()?;
            text.truncate(ISSUE_MAX);
            Some(text)
        });
        Ok(Config {
            trust: host_trust(s)?,
            login,
            issue,
            issue_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::invocation::load_options;

    fn config(options: &[&str]) -> Result<Config, ConfigError> {
        load_options(&super::super::SERVICE, options).map(|s| s.daemon::<Config>().clone())
    }

    #[test]
    fn defaults_and_checks() {
        let c = config(&["issue_file=/nonexistent"]).unwrap();
        assert_eq!(c.login, Login::Builtin);
        assert_eq!(c.issue, None);
        assert!(c.trust.require_privileged_port);
        let c = config(&["login=/bin/login -p -h %h"]).unwrap();
        assert_eq!(
            c.login,
            Login::Program(vec![
                "/bin/login".into(),
                "-p".into(),
                "-h".into(),
                "%h".into()
            ])
        );
        assert_eq!(config(&["login=login -p"]).unwrap_err().key, "login");
        assert_eq!(config(&["trust=sometimes"]).unwrap_err().key, "trust");
    }

    #[test]
    fn the_issue_file_is_read_at_load() {
        let p = std::env::temp_dir().join(format!("classicd-issue-{}", std::process::id()));
        std::fs::write(&p, "Welcome\n").unwrap();
        let c = config(&[&format!("issue_file={}", p.display())]).unwrap();
        assert_eq!(c.issue.as_deref(), Some(&b"Welcome\n"[..]));
        std::fs::remove_file(&p).unwrap();
    }
}
