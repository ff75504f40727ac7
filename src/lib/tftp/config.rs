//! tftpd's keys (CONTRACT.md) and their typed form, built once at load.

use std::path::PathBuf;

use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new("root", Kind::Path, "/srv/tftp", "the only directory served"),
    KeySpec::new(
        "create",
        Kind::Bool,
        "no",
        "allow write requests to create files",
    ),
    KeySpec::new("user", Kind::Text, "nobody", "account the server runs as"),
    KeySpec::new(
        "max_blksize",
        Kind::Uint,
        "65464",
        "largest negotiated block size",
    ),
    KeySpec::new(
        "max_windowsize",
        Kind::Uint,
        "64",
        "largest negotiated window",
    ),
];

/// tftpd's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The only directory served.
    pub root: PathBuf,
    pub create: bool,
    /// The account the server runs as (looked up when it starts, as root).
    pub user: String,
    /// 8..=65464 (RFC 2348).
    pub max_blksize: usize,
    /// 1..=65535 (RFC 7440).
    pub max_windowsize: u16,
}

/// `Service::config` of tftpd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let bad = |key: &str, message: &str| s.error(key, message);
        let Some(root) = s.path("root") else {
            return Err(bad("root", "must name a directory"));
        };
        let max_blksize = s.uint("max_blksize");
        if !(8..=65464).contains(&max_blksize) {
            return Err(bad("max_blksize", "must be between 8 and 65464"));
        }
        let max_windowsize = s.uint("max_windowsize");
        if !(1..=65535).contains(&max_windowsize) {
            return Err(bad("max_windowsize", "must be between 1 and 65535"));
        }
        let user = s.text("user");
        if user.is_empty() {
            return Err(bad("user", "must name an account"));
        }
        Ok(Config {
            root,
            create: s.bool("create"),
            user: user.to_string(),
            // In range: checked above.
            max_blksize: max_blksize as usize,
            max_windowsize: max_windowsize as u16,
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
    fn defaults_and_values() {
        let c = config(&[]).unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/tftp"));
        assert!(!c.create);
        assert_eq!(c.user, "nobody");
        assert_eq!((c.max_blksize, c.max_windowsize), (65464, 64));
        let c = config(&[
            "root=/tmp/t",
            "create=yes",
            "max_blksize=512",
            "max_windowsize=1",
        ])
        .unwrap();
        assert_eq!(c.root, PathBuf::from("/tmp/t"));
        assert!(c.create);
        assert_eq!((c.max_blksize, c.max_windowsize), (512, 1));
    }

    #[test]
    fn limits_are_checked() {
        for (option, key) in [
            ("max_blksize=7", "max_blksize"),
            ("max_blksize=65465", "max_blksize"),
            ("max_windowsize=0", "max_windowsize"),
            ("max_windowsize=65536", "max_windowsize"),
            ("user=", "user"),
            ("root=", "root"),
        ] {
            assert_eq!(config(&[option]).unwrap_err().key, key, "{option}");
        }
    }
}
