#![forbid(unsafe_code)]
//! This host's names. Below the runtime and the mail store alike: both name
//! the host (greetings, Maildir unique names) and neither may import the
//! other for it.

/// This host's name as the system knows it (gethostname), `localhost` if
/// it has none.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This host's fully qualified name: gethostname, completed from /etc/hosts
/// when it has no dot (the usual Debian setup), else the short name.
pub fn fqdn() -> String {
    let short = hostname();
    if short.contains('.') {
        return short;
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    fqdn_in_hosts(&hosts, &short).unwrap_or(short)
}

/// The first dotted name on a hosts(5) line that also names `short`.
fn fqdn_in_hosts(hosts: &str, short: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if !names.contains(&short) {
            return None;
        }
        names
            .iter()
            .find(|n| n.contains('.'))
            .map(|n| n.to_string())
    })
}

/// The client's host as a login record and a login program name it: its
/// forward-confirmed name (the reverse lookup's name, whose forward
/// lookup gives the address back), else the numeric address. A name that
/// is not a plain host name is never used.
pub fn peer_host(ip: std::net::IpAddr) -> String {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    confirmed_name(ip).unwrap_or_else(|| ip.to_string())
}

/// The forward-confirmed name of `ip`, if it has one.
pub fn confirmed_name(ip: std::net::IpAddr) -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = crate::sys::name_of_address(ip)?;
    if !plain_host_name(&name) {
        return None;
    }
    let confirmed = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .any(|a| a.ip() == ip);
    confirmed.then_some(name)
}

/// Letters, digits, dots and dashes, not starting with a dash or a dot,
/// at most 253 bytes: what a host name is (RFC 1123), and nothing an
/// argument parser could take for an option.
pub fn plain_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_from_hosts_lines() {
        let hosts =
            "127.0.0.1 localhost\n# 10.0.0.2 box.example box\n10.0.0.1 box box.lan.example\n";
        assert_eq!(
            fqdn_in_hosts(hosts, "box").as_deref(),
            Some("box.lan.example")
        );
        assert_eq!(fqdn_in_hosts(hosts, "localhost"), None);
        assert_eq!(fqdn_in_hosts(hosts, "other"), None);
    }

    #[test]
    fn peer_host_names() {
        use std::net::IpAddr;
        assert!(plain_host_name("client.example.org"));
        for bad in ["", "-f", ".x", "a b", "a;b", "a_b"] {
            assert!(!plain_host_name(bad), "{bad}");
        }
        // 127.0.0.1 is localhost in every /etc/hosts, both ways.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let name = peer_host(lo);
        assert!(name == "localhost" || name == "127.0.0.1", "{name}");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(peer_host(mapped), name);
    }
}
