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
}
