//! The queue's view of the configuration, and where remote mail goes next:
//! `relay_host`, a `transport_file` entry, or the domain's MX hosts.

use std::path::PathBuf;

use crate::runtime::config::Settings;

/// The settings the queue uses, read once. Keys are read by their raw text
/// so that the queue does not depend on the kinds the schema gives them.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub queue_dir: PathBuf,
    pub hostname: String,
    pub local_domains: Vec<String>,
    pub relay_host: Option<String>,
    pub transport_file: Option<PathBuf>,
    pub retry_interval: u64,
    pub queue_lifetime: u64,
    pub mail_location: String,
    /// aliases(5) for DSNs to local senders; None when unset.
    pub aliases_file: Option<PathBuf>,
}

fn raw_or<'a>(s: &'a Settings, key: &str, default: &'a str) -> &'a str {
    let v = s.raw(key).trim();
    if v.is_empty() {
        default
    } else {
        v
    }
}

impl QueueConfig {
    pub fn from_settings(s: &Settings) -> QueueConfig {
        let hostname = match s.raw("hostname").trim() {
            "" => crate::runtime::hostname(),
            h => h.to_string(),
        };
        let mut local_domains: Vec<String> = s
            .raw("local_domains")
            .split(',')
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        if local_domains.is_empty() {
            local_domains.push(hostname.to_ascii_lowercase());
        }
        let num = |k: &str, d: u64| s.raw(k).trim().parse().unwrap_or(d);
        QueueConfig {
            queue_dir: PathBuf::from(raw_or(s, "queue_dir", "/var/spool/smtpd")),
            local_domains,
            relay_host: Some(s.raw("relay_host").trim().to_string()).filter(|v| !v.is_empty()),
            transport_file: Some(s.raw("transport_file").trim())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            retry_interval: num("retry_interval", 300).max(1),
            queue_lifetime: num("queue_lifetime", 432000),
            mail_location: raw_or(s, "mail_location", "maildir:~/Maildir").to_string(),
            aliases_file: Some(s.raw("aliases_file").trim())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            hostname,
        }
    }

    /// Whether mail for `domain` is delivered here.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        d == "localhost" || self.local_domains.contains(&d)
    }
}

/// The domain part of an address (after the last @), lower-cased.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// The local part of an address.
pub fn local_part(address: &str) -> &str {
    address.rsplit_once('@').map(|(l, _)| l).unwrap_or(address)
}

/// Where to connect for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// A fixed `HOST:PORT` (relay_host or transport_file): no MX lookup.
    Fixed { host: String, port: u16 },
    /// The domain's MX hosts (or its address records), port 25.
    Mx(String),
}

/// Parse `HOST:PORT`, `[IPv6]:PORT` or a bare `HOST` (port 25).
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if p.is_empty() => 25,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_string(), 25)),
        None => None,
    }
}

/// Parse a transport file: `DOMAIN HOST:PORT` lines, `#` comments. A
/// domain `.example.org` also matches its subdomains; `*` matches any.
pub fn parse_transport(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_ascii_lowercase(), w.next()?.to_string()))
        })
        .collect()
}

/// The transport entry for a domain: exact first, then the longest
/// `.parent` match, then `*`.
pub fn transport_lookup<'a>(table: &'a [(String, String)], domain: &str) -> Option<&'a str> {
    if let Some((_, h)) = table.iter().find(|(d, _)| d == domain) {
        return Some(h);
    }
    let mut best: Option<&(String, String)> = None;
    for e in table {
        if e.0.starts_with('.')
            && domain.ends_with(&e.0)
            && best.map_or(true, |b| b.0.len() < e.0.len())
        {
            best = Some(e);
        }
    }
    if let Some((_, h)) = best {
        return Some(h);
    }
    table
        .iter()
        .find(|(d, _)| d == "*")
        .map(|(_, h)| h.as_str())
}

/// Next hops for many domains with the configuration read once.
pub struct Router {
    transport: Result<Vec<(String, String)>, String>,
    relay: Option<Result<(String, u16), String>>,
}

impl Router {
    pub fn new(cfg: &QueueConfig) -> Router {
        let transport = match &cfg.transport_file {
            None => Ok(Vec::new()),
            Some(path) => std::fs::read_to_string(path)
                .map(|t| parse_transport(&t))
                .map_err(|e| format!("transport_file {}: {e}", path.display())),
        };
        let relay = cfg
            .relay_host
            .as_ref()
            .map(|r| parse_host_port(r).ok_or_else(|| format!("relay_host: bad value {r:?}")));
        Router { transport, relay }
    }

    /// The next hop for a domain: transport_file, relay_host, else MX.
    /// Errors are configuration problems: the mail is deferred.
    pub fn next_hop(&self, domain: &str) -> Result<NextHop, String> {
        let table = self.transport.as_ref().map_err(|e| e.clone())?;
        if let Some(h) = transport_lookup(table, domain) {
            let (host, port) = parse_host_port(h)
                .ok_or_else(|| format!("transport_file: bad next hop {h:?} for {domain}"))?;
            return Ok(NextHop::Fixed { host, port });
        }
        match &self.relay {
            Some(Ok((host, port))) => Ok(NextHop::Fixed {
                host: host.clone(),
                port: *port,
            }),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(NextHop::Mx(domain.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("mx.example:2525"),
            Some(("mx.example".into(), 2525))
        );
        assert_eq!(
            parse_host_port("127.0.0.1:25"),
            Some(("127.0.0.1".into(), 25))
        );
        assert_eq!(parse_host_port("[::1]:26"), Some(("::1".into(), 26)));
        assert_eq!(
            parse_host_port("mx.example"),
            Some(("mx.example".into(), 25))
        );
        assert_eq!(parse_host_port("mx:x"), None);
        assert_eq!(parse_host_port("::1:25"), None);
    }

    #[test]
    fn transport_matching() {
        let t = parse_transport(
            "# c\nexample.org 127.0.0.1:2525\n.example.org 127.0.0.2:25 # sub\n* 127.0.0.3:25\n",
        );
        assert_eq!(transport_lookup(&t, "example.org"), Some("127.0.0.1:2525"));
        assert_eq!(transport_lookup(&t, "a.example.org"), Some("127.0.0.2:25"));
        assert_eq!(transport_lookup(&t, "other.net"), Some("127.0.0.3:25"));
        assert_eq!(transport_lookup(&t[..2], "other.net"), None);
    }

    #[test]
    fn domains() {
        assert_eq!(domain_of("A@Example.ORG."), "example.org");
        assert_eq!(local_part("a@b@c"), "a@b");
        assert_eq!(domain_of("postmaster"), "");
    }
}
