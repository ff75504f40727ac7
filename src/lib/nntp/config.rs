//! nntpd's keys (CONTRACT.md, and ours) and their typed form, built once
//! at load: the peers, moderators and expire files are read and parsed
//! here, so that a bad line stops the daemon at start, on SIGHUP (the old
//! configuration stays) or under -t, with its file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::valid_group_name;
use super::peers::{self, ExpireRule, Moderator, Peer};
use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Network, Settings};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "spool_dir",
        Kind::Path,
        "/var/spool/news",
        "articles, the active file, the overview and the history",
    ),
    KeySpec::new(
        "path_identity",
        Kind::Text,
        "",
        "this server's name in Path: (empty: the host's FQDN)",
    ),
    KeySpec::new(
        "posting",
        Kind::Bool,
        "yes",
        "clients that did not log in may POST (from open_networks)",
    ),
    KeySpec::new(
        "peers_file",
        Kind::Path,
        "",
        "lines 'NAME HOST:PORT PATTERN': feeds out, and who may feed us",
    ),
    KeySpec::new(
        "moderators_file",
        Kind::Path,
        "",
        "INN's moderators format, 'WILDMAT:ADDRESS' (%s: the group, dots as dashes)",
    ),
    KeySpec::new(
        "max_article_size",
        Kind::Uint,
        "1000000",
        "largest article taken, bytes, posted or fed",
    ),
    KeySpec::new(
        "open_networks",
        Kind::Networks,
        "0.0.0.0/0, ::/0",
        "clients from these networks may read without logging in",
    ),
    KeySpec::new(
        "post_users",
        Kind::List,
        "",
        "accounts that may post once logged in (empty: every account)",
    ),
    KeySpec::new(
        "control_peers",
        Kind::List,
        "",
        "peers whose control messages (cancel, newgroup, rmgroup) are carried out",
    ),
    KeySpec::new(
        "mail_relay",
        Kind::Text,
        "127.0.0.1:25",
        "HOST:PORT of the SMTP server that takes postings for moderators",
    ),
    KeySpec::new(
        "article_lifetime",
        Kind::Duration,
        "2592000",
        "nntpd --expire removes articles older than this (0: never)",
    ),
    KeySpec::new(
        "expire_file",
        Kind::Path,
        "",
        "lines 'WILDMAT DAYS' (or never): per-group article lifetimes",
    ),
    KeySpec::new(
        "history_lifetime",
        Kind::Duration,
        "5184000",
        "message-ids are remembered this long; older articles are refused",
    ),
    KeySpec::new(
        "feed_retry_interval",
        Kind::Duration,
        "60",
        "first wait before a feed to a peer that is down is tried again",
    ),
    KeySpec::new(
        "feed_lifetime",
        Kind::Duration,
        "432000",
        "articles a peer could not take for this long are dropped from its feed",
    ),
];

/// nntpd's configuration, typed.
#[derive(Clone, Debug)]
pub struct Config {
    pub spool_dir: PathBuf,
    /// `path_identity`, else this host's fully qualified name.
    pub path_identity: String,
    pub posting: bool,
    pub peers: Vec<Peer>,
    pub moderators: Vec<Moderator>,
    pub max_article_size: u64,
    pub open_networks: Vec<Network>,
    pub post_users: Vec<String>,
    pub control_peers: Vec<String>,
    pub mail_relay: (String, u16),
    /// None: never.
    pub article_lifetime: Option<u64>,
    pub expire_rules: Vec<ExpireRule>,
    pub history_lifetime: Duration,
    pub feed_retry_interval: Duration,
    pub feed_lifetime: Duration,
}

/// `Service::config` of nntpd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

fn read_file(s: &Settings, key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| s.error(key, format!("cannot read {}: {e}", path.display())))
}

/// Whether `s` may be a path identity (RFC 5536 3.1.5: a name without `!`
/// and white space).
fn valid_identity(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| s.error(key, message);
        let Some(spool_dir) = s.path("spool_dir") else {
            return Err(err("spool_dir", "must name a directory".into()));
        };
        let path_identity = match s.opt_text("path_identity") {
            Some(p) if !valid_identity(p) => {
                return Err(err("path_identity", format!("'{p}' is not a host name")))
            }
            Some(p) => p.to_string(),
            None => crate::host::fqdn(),
        };
        let peers = match s.path("peers_file") {
            Some(p) => peers::parse_peers(&read_file(s, "peers_file", &p)?)
                .map_err(|e| err("peers_file", format!("{}: {e}", p.display())))?,
            None => Vec::new(),
        };
        let moderators = match s.path("moderators_file") {
            Some(p) => peers::parse_moderators(&read_file(s, "moderators_file", &p)?)
                .map_err(|e| err("moderators_file", format!("{}: {e}", p.display())))?,
            None => Vec::new(),
        };
        let expire_rules = match s.path("expire_file") {
            Some(p) => peers::parse_expire(&read_file(s, "expire_file", &p)?)
                .map_err(|e| err("expire_file", format!("{}: {e}", p.display())))?,
            None => Vec::new(),
        };
        let control_peers = s.list("control_peers").to_vec();
        if let Some(unknown) = control_peers
            .iter()
            .find(|c| !peers.iter().any(|p| &p.name == *c))
        {
            return Err(err(
                "control_peers",
                format!("'{unknown}' is not a peer of peers_file"),
            ));
        }
        let relay = s.text("mail_relay");
        let mail_relay = relay
            .rsplit_once(':')
            .and_then(|(h, p)| {
                let port = p.parse::<u16>().ok().filter(|p| *p > 0)?;
                let h = h.trim_start_matches('[').trim_end_matches(']');
                (!h.is_empty()).then(|| (h.to_string(), port))
            })
            .ok_or_else(|| err("mail_relay", format!("'{relay}' is not HOST:PORT")))?;
        let max_article_size = s.uint("max_article_size");
        if max_article_size < 1024 {
            return Err(err(
                "max_article_size",
                "at least 1024 bytes (an article's header alone needs some)".into(),
            ));
        }
        let lifetime = s.duration("article_lifetime").as_secs();
        Ok(Config {
            spool_dir,
            path_identity,
            posting: s.bool("posting"),
            peers,
            moderators,
            max_article_size,
            open_networks: s.networks("open_networks").to_vec(),
            post_users: s.list("post_users").to_vec(),
            control_peers,
            mail_relay,
            article_lifetime: (lifetime > 0).then_some(lifetime),
            expire_rules,
            history_lifetime: s
                .duration("history_lifetime")
                .max(Duration::from_secs(86_400)),
            feed_retry_interval: s
                .duration("feed_retry_interval")
                .max(Duration::from_secs(1)),
            feed_lifetime: s.duration("feed_lifetime"),
        })
    }

    /// Whether a client at `ip` may read without logging in.
    pub fn open_to(&self, ip: std::net::IpAddr) -> bool {
        self.open_networks.iter().any(|n| n.contains(ip))
    }

    /// Whether account `user` (logged in) may post.
    pub fn may_post_as(&self, user: &str) -> bool {
        self.post_users.is_empty() || self.post_users.iter().any(|u| u == user)
    }

    /// How long `group`'s articles are kept, in seconds (None: for ever).
    pub fn lifetime_of(&self, group: &str) -> Option<u64> {
        debug_assert!(valid_group_name(group));
        peers::lifetime_for(&self.expire_rules, group, self.article_lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::invocation::load_options;

    fn cfg(opts: &[&str]) -> Result<Config, ConfigError> {
        load_options(&crate::nntp::SERVICE, opts).map(|s| s.daemon::<Config>().clone())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.spool_dir, PathBuf::from("/var/spool/news"));
        assert!(c.posting);
        assert!(c.peers.is_empty());
        assert_eq!(c.max_article_size, 1_000_000);
        assert!(c.open_to("192.0.2.1".parse().unwrap()));
        assert!(c.open_to("2001:db8::1".parse().unwrap()));
        assert_eq!(c.mail_relay, ("127.0.0.1".into(), 25));
        assert_eq!(c.article_lifetime, Some(2_592_000));
        assert!(c.may_post_as("anyone"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (opt, key) in [
            ("spool_dir=relative", "spool_dir"),
            ("path_identity=a!b", "path_identity"),
            ("peers_file=/nonexistent/peers", "peers_file"),
            ("mail_relay=nowhere", "mail_relay"),
            ("max_article_size=10", "max_article_size"),
            ("control_peers=ghost", "control_peers"),
            ("open_networks=10.0.0.0/33", "open_networks"),
        ] {
            assert_eq!(cfg(&[opt]).unwrap_err().key, key, "{opt}");
        }
    }

    #[test]
    fn files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("nntp-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let peers = dir.join("peers");
        std::fs::write(&peers, "up 127.0.0.1:1119 *\n").unwrap();
        let bad = dir.join("bad");
        std::fs::write(&bad, "up nowhere\n").unwrap();
        let p = format!("peers_file={}", peers.display());
        let c = cfg(&[&p, "control_peers=up"]).unwrap();
        assert_eq!(c.peers.len(), 1);
        let e = cfg(&[&format!("peers_file={}", bad.display())]).unwrap_err();
        assert!(e.message.contains("line 1"), "{}", e.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
