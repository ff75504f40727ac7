//! rshd's keys (CONTRACT.md) and their typed form; the host-trust keys are
//! rlogind's too (`host_trust`).

use std::path::PathBuf;

use crate::auth::{trust::Policy, HostTrust, TrustMode};
use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

/// The keys of host trust, shared by rshd and rlogind.
pub const TRUST_KEYS: [KeySpec; 5] = [
    KeySpec::new(
        "hosts_equiv",
        Kind::Path,
        "/etc/hosts.equiv",
        "the host-wide trust file",
    ),
    KeySpec::new("use_rhosts", Kind::Bool, "yes", "honour ~/.rhosts"),
    KeySpec::new(
        "root_rhosts",
        Kind::Bool,
        "no",
        "let root in through its .rhosts (hosts.equiv never counts for root)",
    ),
    KeySpec::new(
        "require_privileged_port",
        Kind::Bool,
        "yes",
        "refuse clients whose source port is not in 512-1023",
    ),
    KeySpec::new(
        "trust",
        Kind::Text,
        "native",
        "native (ruserok's rules) or pam (the PAM stack, e.g. pam_rhosts)",
    ),
];

pub const KEYS: &[KeySpec] = &TRUST_KEYS;

/// rshd's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub trust: HostTrust,
}

/// `Service::config` of rshd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config {
        trust: host_trust(s)?,
    }))
}

/// The host-trust keys, checked: `trust` is native or pam, and pam needs
/// system accounts (a passwd_file has no PAM stack).
pub fn host_trust(s: &Settings) -> Result<HostTrust, ConfigError> {
    let mode = match s.text("trust") {
        "native" => TrustMode::Native(Policy {
            hosts_equiv: s
                .path("hosts_equiv")
                .unwrap_or_else(|| PathBuf::from("/etc/hosts.equiv")),
            use_rhosts: s.bool("use_rhosts"),
            root_rhosts: s.bool("root_rhosts"),
        }),
        "pam" if s.common().passwd_file.is_some() => {
            return Err(s.error(
                "trust",
                "'pam' needs system accounts: passwd_file must be unset",
            ))
        }
        "pam" => TrustMode::Pam,
        other => return Err(s.error("trust", format!("'{other}': expected native or pam"))),
    };
    Ok(HostTrust {
        mode,
        require_privileged_port: s.bool("require_privileged_port"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::invocation::load_options;

    fn config(options: &[&str]) -> Result<Config, ConfigError> {
        load_options(&super::super::SERVICE, options).map(|s| s.daemon::<Config>().clone())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert!(c.trust.require_privileged_port);
        assert_eq!(
            c.trust.mode,
            TrustMode::Native(Policy {
                hosts_equiv: PathBuf::from("/etc/hosts.equiv"),
                use_rhosts: true,
                root_rhosts: false,
            })
        );
    }

    #[test]
    fn checks() {
        let c = config(&["trust=pam", "require_privileged_port=no"]).unwrap();
        assert_eq!(c.trust.mode, TrustMode::Pam);
        assert!(!c.trust.require_privileged_port);
        assert_eq!(config(&["trust=maybe"]).unwrap_err().key, "trust");
        let e = config(&["trust=pam", "passwd_file=/etc/lab.passwd"]).unwrap_err();
        assert_eq!(e.key, "trust");
        assert_eq!(
            config(&["hosts_equiv=relative"]).unwrap_err().key,
            "hosts_equiv"
        );
        let c = config(&["hosts_equiv=/srv/equiv", "use_rhosts=no", "root_rhosts=yes"]).unwrap();
        assert_eq!(
            c.trust.mode,
            TrustMode::Native(Policy {
                hosts_equiv: PathBuf::from("/srv/equiv"),
                use_rhosts: false,
                root_rhosts: true,
            })
        );
    }
}
