//! Where remote mail goes next: `relay_host`, a `transport_file` entry, or
//! the domain's MX hosts.

use crate::smtp::{Config, HostPort};

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
            && best.is_none_or(|b| b.0.len() < e.0.len())
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

/// Next hops for many domains with the transport file read once.
pub struct Router {
    transport: Result<Vec<(String, String)>, String>,
    relay: Option<HostPort>,
}

impl Router {
    pub fn new(cfg: &Config) -> Router {
        let transport = match &cfg.transport_file {
            None => Ok(Vec::new()),
            Some(path) => std::fs::read_to_string(path)
                .map(|t| parse_transport(&t))
                .map_err(|e| format!("transport_file {}: {e}", path.display())),
        };
        Router {
            transport,
            relay: cfg.relay_host.clone(),
        }
    }

    /// The next hop for a domain: transport_file, relay_host, else MX.
    /// Errors are configuration problems: the mail is deferred.
    pub fn next_hop(&self, domain: &str) -> Result<NextHop, String> {
        let table = self.transport.as_ref().map_err(|e| e.clone())?;
        if let Some(h) = transport_lookup(table, domain) {
            let HostPort { host, port } = HostPort::parse(h)
                .ok_or_else(|| format!("transport_file: bad next hop {h:?} for {domain}"))?;
            return Ok(NextHop::Fixed { host, port });
        }
        match &self.relay {
            Some(HostPort { host, port }) => Ok(NextHop::Fixed {
                host: host.clone(),
                port: *port,
            }),
            None => Ok(NextHop::Mx(domain.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
