//! smtpd's keys (CONTRACT.md) and their typed form, built once at load and
//! read by the sessions and the queue alike.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::address;
use crate::mail::Location;
use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Network, Settings};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "hostname",
        Kind::Text,
        "",
        "name in the banner, EHLO and Received (empty: the host's FQDN)",
    ),
    KeySpec::new(
        "local_domains",
        Kind::List,
        "",
        "domains delivered here (empty: the hostname)",
    ),
    KeySpec::new(
        "mail_location",
        Kind::Text,
        "maildir:~/Maildir",
        "maildir:PATH or mbox:PATH (~ the home, %u the name), or lmtp:HOST:PORT or lmtp:unix:PATH",
    ),
    KeySpec::new(
        "queue_dir",
        Kind::Path,
        "/var/spool/smtpd",
        "the spool for mail in transit",
    ),
    KeySpec::new("aliases_file", Kind::Path, "/etc/aliases", "aliases(5)"),
    KeySpec::new(
        "relay_from",
        Kind::Networks,
        "127.0.0.0/8, ::1/128",
        "networks that may relay without AUTH",
    ),
    KeySpec::new(
        "relay_host",
        Kind::Text,
        "",
        "send all remote mail through HOST:PORT (empty: MX lookup)",
    ),
    KeySpec::new(
        "transport_file",
        Kind::Path,
        "",
        "lines 'DOMAIN HOST:PORT' routing a domain to a next hop",
    ),
    KeySpec::new(
        "max_message_size",
        Kind::Uint,
        "36700160",
        "largest message accepted, bytes",
    ),
    KeySpec::new(
        "retry_interval",
        Kind::Duration,
        "300",
        "retry delay for deferred mail",
    ),
    KeySpec::new(
        "queue_lifetime",
        Kind::Duration,
        "432000",
        "give-up age for deferred mail",
    ),
    KeySpec::new("vrfy", Kind::Bool, "no", "answer VRFY truthfully"),
    KeySpec::new("expn", Kind::Bool, "no", "answer EXPN truthfully"),
    KeySpec::new(
        "submission_listen",
        Kind::Addrs,
        "",
        "addresses where AUTH is required before MAIL (587)",
    ),
    KeySpec::new(
        "lmtp_listen",
        Kind::Addrs,
        "",
        "addresses where LMTP (RFC 2033) is spoken to relay_from clients for local delivery",
    ),
];

/// smtpd's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `hostname`, else this host's fully qualified name: the name in the
    /// banner, EHLO (ours and the queue's), Received and DSNs.
    pub hostname: String,
    /// `local_domains`, lower-cased without a trailing dot; else the
    /// hostname.
    pub local_domains: Vec<String>,
    /// Where local mail is written; unused when `lmtp` is set.
    pub mail_location: Location,
    /// `mail_location = lmtp:...`: local mail is handed to this LMTP
    /// server by the queue.
    pub lmtp: Option<LmtpTarget>,
    pub queue_dir: PathBuf,
    pub aliases_file: Option<PathBuf>,
    pub relay_from: Vec<Network>,
    /// All remote mail goes there when set; else MX lookups.
    pub relay_host: Option<HostPort>,
    pub transport_file: Option<PathBuf>,
    pub max_message_size: u64,
    /// At least a second: the queue never retries in a busy loop.
    pub retry_interval: Duration,
    pub queue_lifetime: Duration,
    pub vrfy: bool,
    pub expn: bool,
}

/// `Service::config` of smtpd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| s.error(key, message);
        let spec = s.text("mail_location");
        let (mail_location, lmtp) = match LmtpTarget::parse(spec) {
            Some(Ok(target)) => (
                Location::parse("maildir:~/Maildir").expect("a valid location"),
                Some(target),
            ),
            Some(Err(e)) => return Err(err("mail_location", e)),
            None => (
                Location::parse(spec).map_err(|e| err("mail_location", e))?,
                None,
            ),
        };
        let hostname = match s.opt_text("hostname") {
            Some(h) if !address::valid_domain(h) || h.starts_with('[') => {
                return Err(err("hostname", format!("'{h}' is not a host name")))
            }
            Some(h) => h.to_string(),
            None => crate::host::fqdn(),
        };
        let mut local_domains = Vec::new();
        for d in s.list("local_domains") {
            if !address::valid_domain(d) {
                return Err(err("local_domains", format!("'{d}' is not a domain name")));
            }
            local_domains.push(d.trim_end_matches('.').to_ascii_lowercase());
        }
        if local_domains.is_empty() {
            local_domains.push(hostname.to_ascii_lowercase());
        }
        let Some(queue_dir) = s.path("queue_dir") else {
            return Err(err("queue_dir", "must name a directory".into()));
        };
        let relay_host = match s.opt_text("relay_host") {
            None => None,
            Some(r) => Some(
                HostPort::parse(r)
                    .ok_or_else(|| err("relay_host", format!("'{r}' is not HOST:PORT")))?,
            ),
        };
        Ok(Config {
            hostname,
            local_domains,
            mail_location,
            lmtp,
            queue_dir,
            aliases_file: s.path("aliases_file"),
            relay_from: s.networks("relay_from").to_vec(),
            relay_host,
            transport_file: s.path("transport_file"),
            max_message_size: s.uint("max_message_size"),
            retry_interval: s.duration("retry_interval").max(Duration::from_secs(1)),
            queue_lifetime: s.duration("queue_lifetime"),
            vrfy: s.bool("vrfy"),
            expn: s.bool("expn"),
        })
    }

    /// Whether mail for `domain` is delivered here.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        d == "localhost" || self.local_domains.contains(&d)
    }

    /// Whether a client at `ip` may relay without AUTH.
    pub fn relay_client(&self, ip: IpAddr) -> bool {
        self.relay_from.iter().any(|n| n.contains(ip))
    }
}

/// Where `mail_location = lmtp:...` hands local mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LmtpTarget {
    Tcp(HostPort),
    Unix(PathBuf),
}

impl LmtpTarget {
    /// `lmtp:HOST:PORT` (port 24 when left out) or `lmtp:unix:PATH`; None
    /// when `spec` is not an lmtp: location at all.
    pub fn parse(spec: &str) -> Option<Result<LmtpTarget, String>> {
        let spec = spec.trim();
        let rest = spec
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("lmtp:"))
            .map(|_| &spec[5..])?;
        Some(if let Some(path) = rest.strip_prefix("unix:") {
            if path.starts_with('/') && path.len() > 1 {
                Ok(LmtpTarget::Unix(PathBuf::from(path)))
            } else {
                Err(format!("{spec:?}: lmtp:unix: needs an absolute path"))
            }
        } else {
            match HostPort::parse(rest) {
                Some(mut hp) => {
                    if !rest.trim_end().ends_with(&format!(":{}", hp.port)) {
                        hp.port = 24;
                    }
                    Ok(LmtpTarget::Tcp(hp))
                }
                None => Err(format!(
                    "{spec:?}: expected lmtp:HOST:PORT or lmtp:unix:PATH"
                )),
            }
        })
    }
}

impl std::fmt::Display for LmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LmtpTarget::Tcp(hp) if hp.host.contains(':') => write!(f, "[{}]:{}", hp.host, hp.port),
            LmtpTarget::Tcp(hp) => write!(f, "{}:{}", hp.host, hp.port),
            LmtpTarget::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A fixed next hop: `relay_host`, or a `transport_file` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// `HOST:PORT`, `[IPv6]:PORT` or a bare `HOST` (port 25).
    pub fn parse(s: &str) -> Option<HostPort> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once(']')?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if p.is_empty() => 25,
                None => return None,
            };
            (h, port)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
                Some(_) => return None,
                None if !s.is_empty() => (s, 25),
                None => return None,
            }
        };
        Some(HostPort {
            host: host.to_string(),
            port,
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

    fn hp(host: &str, port: u16) -> Option<HostPort> {
        Some(HostPort {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.hostname, crate::host::fqdn());
        assert_eq!(c.local_domains, vec![c.hostname.to_ascii_lowercase()]);
        assert_eq!(c.mail_location.to_string(), "maildir:~/Maildir");
        assert_eq!(c.queue_dir, PathBuf::from("/var/spool/smtpd"));
        assert_eq!(c.aliases_file, Some(PathBuf::from("/etc/aliases")));
        assert_eq!(c.relay_from.len(), 2);
        assert_eq!((&c.relay_host, &c.transport_file), (&None, &None));
        assert_eq!(c.max_message_size, 36700160);
        assert_eq!(c.retry_interval, Duration::from_secs(300));
        assert_eq!(c.queue_lifetime, Duration::from_secs(432000));
        assert!(!c.vrfy && !c.expn);
        assert!(c.relay_client("127.0.0.1".parse().unwrap()));
        assert!(!c.relay_client("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn values_are_parsed_once() {
        let c = config(&[
            "hostname=mx.example.org",
            "local_domains=Example.ORG, lab.test",
            "mail_location=mbox:/var/mail/%u",
            "relay_host=[::1]:2525",
            "aliases_file=",
            "retry_interval=0",
        ])
        .unwrap();
        assert_eq!(c.hostname, "mx.example.org");
        assert_eq!(c.local_domains, vec!["example.org", "lab.test"]);
        assert!(c.is_local_domain("EXAMPLE.org.") && c.is_local_domain("localhost"));
        assert!(!c.is_local_domain("mx.example.org"));
        assert_eq!(c.mail_location.format, Format::Mbox);
        assert_eq!(c.relay_host, hp("::1", 2525));
        assert_eq!(c.aliases_file, None);
        assert_eq!(c.retry_interval, Duration::from_secs(1));
        let c = config(&["hostname=mx.example.org"]).unwrap();
        assert_eq!(c.local_domains, vec!["mx.example.org"]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (option, key) in [
            ("mail_location=/var/mail", "mail_location"),
            ("mail_location=maildir:Maildir", "mail_location"),
            ("local_domains=exa mple.org", "local_domains"),
            ("hostname=[127.0.0.1]", "hostname"),
            ("hostname=-bad-", "hostname"),
            ("relay_host=mx:port", "relay_host"),
            ("relay_host=::1:25", "relay_host"),
            ("queue_dir=", "queue_dir"),
        ] {
            assert_eq!(config(&[option]).unwrap_err().key, key, "{option}");
        }
    }

    #[test]
    fn lmtp_locations() {
        let c = config(&["mail_location=lmtp:127.0.0.1:2424"]).unwrap();
        assert_eq!(
            c.lmtp,
            Some(LmtpTarget::Tcp(hp("127.0.0.1", 2424).unwrap()))
        );
        let c = config(&["mail_location=LMTP:unix:/run/dovecot/lmtp"]).unwrap();
        assert_eq!(c.lmtp, Some(LmtpTarget::Unix("/run/dovecot/lmtp".into())));
        assert_eq!(c.lmtp.unwrap().to_string(), "unix:/run/dovecot/lmtp");
        let c = config(&["mail_location=lmtp:store.example"]).unwrap();
        assert_eq!(
            c.lmtp,
            Some(LmtpTarget::Tcp(hp("store.example", 24).unwrap()))
        );
        let c = config(&["mail_location=lmtp:[::1]:24"]).unwrap();
        assert_eq!(c.lmtp.unwrap().to_string(), "[::1]:24");
        assert_eq!(config(&[]).unwrap().lmtp, None);
        for bad in ["lmtp:unix:run/x", "lmtp:", "lmtp:a:b", "lmtp:unix:"] {
            let e = config(&[&format!("mail_location={bad}")]).unwrap_err();
            assert_eq!(e.key, "mail_location", "{bad}");
        }
        let c = config(&["lmtp_listen=127.0.0.1:2424"]).unwrap();
        assert_eq!(c.lmtp, None);
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(HostPort::parse("mx.example:2525"), hp("mx.example", 2525));
        assert_eq!(HostPort::parse("127.0.0.1:25"), hp("127.0.0.1", 25));
        assert_eq!(HostPort::parse("[::1]:26"), hp("::1", 26));
        assert_eq!(HostPort::parse("[::1]"), hp("::1", 25));
        assert_eq!(HostPort::parse("mx.example"), hp("mx.example", 25));
        assert_eq!(HostPort::parse("mx:x"), None);
        assert_eq!(HostPort::parse("::1:25"), None);
        assert_eq!(HostPort::parse(""), None);
    }
}
