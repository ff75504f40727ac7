//! imapd's keys (CONTRACT.md) and their typed form, built once at load.

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
        "max_message_size",
        Kind::Uint,
        "36700160",
        "largest message APPEND accepts, in bytes",
    ),
];

/// imapd's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub mail_location: Location,
    pub max_message_size: u64,
}

/// `Service::config` of imapd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let mail_location =
            Location::parse(s.text("mail_location")).map_err(|e| s.error("mail_location", e))?;
        let max_message_size = s.uint("max_message_size");
        if max_message_size == 0 || max_message_size > u32::MAX as u64 {
            return Err(s.error("max_message_size", "must be between 1 and 4294967295"));
        }
        Ok(Config {
            mail_location,
            max_message_size,
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
    fn defaults_and_checks() {
        let c = config(&[]).unwrap();
        assert_eq!(c.mail_location.format, Format::Maildir);
        assert_eq!(c.max_message_size, 36700160);
        let c = config(&["mail_location=mbox:/var/mail/%u", "max_message_size=1000"]).unwrap();
        assert_eq!(c.mail_location.format, Format::Mbox);
        assert_eq!(c.max_message_size, 1000);
        assert_eq!(
            config(&["mail_location=Maildir"]).unwrap_err().key,
            "mail_location"
        );
        assert_eq!(
            config(&["max_message_size=0"]).unwrap_err().key,
            "max_message_size"
        );
        assert_eq!(
            config(&["max_message_size=x"]).unwrap_err().key,
            "max_message_size"
        );
    }
}
