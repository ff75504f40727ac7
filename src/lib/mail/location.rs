//! `mail_location`: where an account's mail lives. Parsed once, when the
//! configuration is loaded (or when a ~/.forward entry names a mailbox), and
//! expanded for each account.

use std::fmt;
use std::path::PathBuf;

use super::Mailbox;
use crate::auth::Account;

/// How a mailbox is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Maildir,
    Mbox,
}

/// A checked `maildir:PATH` or `mbox:PATH`. PATH may start with `~` (the
/// account's home) and hold `%u` (its name) and `%h` (its home); whatever
/// the account, it expands to an absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub format: Format,
    template: String,
}

impl Location {
    pub fn parse(spec: &str) -> Result<Location, String> {
        let spec = spec.trim();
        let (scheme, template) = spec
            .split_once(':')
            .ok_or_else(|| format!("{spec:?}: expected maildir:PATH or mbox:PATH"))?;
        let format = match scheme.to_ascii_lowercase().as_str() {
            "maildir" => Format::Maildir,
            "mbox" => Format::Mbox,
            other => {
                return Err(format!(
                    "{spec:?}: unknown format {other:?} (maildir or mbox)"
                ))
            }
        };
        let location = Location {
            format,
            template: template.to_string(),
        };
        // Checked once here rather than at each delivery: an account with
        // an absolute home must get an absolute mailbox.
        if !location.expand("user", "/home/user").is_absolute() {
            return Err(format!(
                "{spec:?}: {template:?} is not an absolute path (~/ is the home)"
            ));
        }
        Ok(location)
    }

    /// The account's mailbox.
    pub fn mailbox_for(&self, account: &Account) -> Result<Mailbox, String> {
        if account.name.contains('/') || account.name.is_empty() || account.name.starts_with('.') {
            return Err(format!(
                "account name {:?} unusable in a path",
                account.name
            ));
        }
        let home = account.home.to_string_lossy();
        let t = &self.template;
        if (t.starts_with('~') || t.contains("%h")) && !account.home.is_absolute() {
            return Err(format!(
                "mail_location {self}: account {} has no absolute home directory",
                account.name
            ));
        }
        let path = self.expand(&account.name, &home);
        if !path.is_absolute() {
            return Err(format!(
                "mail_location {self}: {} is not an absolute path",
                path.display()
            ));
        }
        Ok(match self.format {
            Format::Maildir => Mailbox::Maildir(path),
            Format::Mbox => Mailbox::Mbox(path),
        })
    }

    fn expand(&self, name: &str, home: &str) -> PathBuf {
        let t = &self.template;
        let path = if t == "~" {
            home.to_string()
        } else if let Some(tail) = t.strip_prefix("~/") {
            format!("{}/{}", home.trim_end_matches('/'), tail)
        } else {
            t.to_string()
        };
        PathBuf::from(path.replace("%u", name).replace("%h", home))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.format {
            Format::Maildir => "maildir",
            Format::Mbox => "mbox",
        };
        write!(f, "{scheme}:{}", self.template)
    }
}

/// Expand a location given as text (a ~/.forward mailbox entry) for an
/// account.
pub fn mailbox_for(location: &str, account: &Account) -> Result<Mailbox, String> {
    Location::parse(location)
        .map_err(|e| format!("mail_location {e}"))?
        .mailbox_for(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            name: "demo".into(),
            uid: 1000,
            gid: 1000,
            home: PathBuf::from("/home/demo"),
            shell: PathBuf::from("/bin/sh"),
            virtual_user: true,
            groups: vec![],
        }
    }

    #[test]
    fn locations_expand() {
        let a = account();
        assert_eq!(
            mailbox_for("maildir:~/Maildir", &a).unwrap(),
            Mailbox::Maildir("/home/demo/Maildir".into())
        );
        assert_eq!(
            mailbox_for("mbox:/var/mail/%u", &a).unwrap(),
            Mailbox::Mbox("/var/mail/demo".into())
        );
        assert_eq!(
            mailbox_for("mbox:~", &a).unwrap(),
            Mailbox::Mbox("/home/demo".into())
        );
        assert!(mailbox_for("maildir:Maildir", &a).is_err());
        let homeless = Account {
            home: PathBuf::new(),
            ..account()
        };
        assert!(mailbox_for("maildir:~/Maildir", &homeless).is_err());
        assert!(mailbox_for("mbox:/var/mail/%u", &homeless).is_ok());
        assert!(mailbox_for("mh:~/Mail", &a).is_err());
        assert!(mailbox_for("/var/mail/%u", &a).is_err());
    }

    #[test]
    fn parse_checks_once_and_shows_as_written() {
        for good in [
            "maildir:~/Maildir",
            "mbox:/var/mail/%u",
            "mbox:%h/mbox",
            "MBOX:~",
        ] {
            assert!(Location::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "maildir:",
            "maildir:Maildir",
            "mbox:%u",
            "mh:~/Mail",
            "/var/mail",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        let l = Location::parse(" maildir:~/Maildir ").unwrap();
        assert_eq!(l.format, Format::Maildir);
        assert_eq!(l.to_string(), "maildir:~/Maildir");
    }
}
