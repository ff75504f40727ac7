//! pop3d's keys (CONTRACT.md) and their typed form, built once at load.

use crate::mail::Location;
use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "mail_location",
        Kind::Text,
        "maildir:~/Maildir",
        "maildir:PATH or mbox:PATH; ~ is the account's home, %u its name",
    ),
    KeySpec::new(
        "cleartext_login",
        Kind::Bool,
        "yes",
        "accept USER/PASS and AUTH PLAIN on connections not under TLS",
    ),
];

/// pop3d's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub mail_location: Location,
    pub cleartext_login: bool,
}

/// `Service::config` of pop3d.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    /// `mail_location` must name a known format and an absolute path;
    /// refusing cleartext logins needs TLS.
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| s.error(key, message);
        let mail_location =
            Location::parse(s.text("mail_location")).map_err(|e| err("mail_location", e))?;
        let cleartext_login = s.bool("cleartext_login");
        if !cleartext_login && s.common().tls_cert.is_none() {
            return Err(err(
                "cleartext_login",
                "'no' needs tls_cert and tls_key (else nobody could log in)".into(),
            ));
        }
        Ok(Config {
            mail_location,
            cleartext_login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Format;
    use crate::runtime::invocation::load_options;

    fn config(options: &[&str]) -> Result<Config, ConfigError> {
        load_options(&super::super::SERVICE, options).map(|s| s.daemon::<Config>().clone())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.mail_location.format, Format::Maildir);
        assert_eq!(c.mail_location.to_string(), "maildir:~/Maildir");
        assert!(c.cleartext_login);
    }

    #[test]
    fn checks() {
        let c = config(&["mail_location=mbox:/var/mail/%u"]).unwrap();
        assert_eq!(c.mail_location.format, Format::Mbox);
        for bad in ["mail_location=/var/mail", "mail_location=maildir:Maildir"] {
            assert_eq!(config(&[bad]).unwrap_err().key, "mail_location", "{bad}");
        }
        let e = config(&["cleartext_login=no"]).unwrap_err();
        assert_eq!(e.key, "cleartext_login");
        let c = config(&[
            "cleartext_login=no",
            "tls_cert=/etc/ssl/c.pem",
            "tls_key=/etc/ssl/k.pem",
        ])
        .unwrap();
        assert!(!c.cleartext_login);
    }
}
