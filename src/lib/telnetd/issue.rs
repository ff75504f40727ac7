//! `issue_file` (issue.net(5)): shown before the login prompt, with the
//! escapes of the BSD and netkit servers expanded. The monitor reads the
//! file (the pre-login process sees no file system) and expands it from
//! facts about this host only: nothing the client sent.

/// At most this much of the file is shown.
pub const MAX_ISSUE: usize = 16 * 1024;

/// What the escapes stand for.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// %h: the host's name.
    pub host: String,
    /// %D: the domain (the part of the fully qualified name after the
    /// first dot).
    pub domain: String,
    /// %d: the date and time.
    pub date: String,
    /// %s, %m, %r, %v: uname's system name, machine, release, version.
    pub sysname: String,
    pub machine: String,
    pub release: String,
    pub version: String,
}

/// Expand `%h %D %d %s %m %r %v %%` in `text`; `%t` (the terminal, not
/// open yet) expands to nothing; any other `%x` stays as it is.
pub fn expand(text: &[u8], facts: &Facts) -> Vec<u8> {
    let text = &text[..text.len().min(MAX_ISSUE)];
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'%' || i + 1 == text.len() {
            out.push(text[i]);
            i += 1;
            continue;
        }
        let value = match text[i + 1] {
            b'h' => Some(facts.host.as_str()),
            b'D' => Some(facts.domain.as_str()),
            b'd' => Some(facts.date.as_str()),
            b's' => Some(facts.sysname.as_str()),
            b'm' => Some(facts.machine.as_str()),
            b'r' => Some(facts.release.as_str()),
            b'v' => Some(facts.version.as_str()),
            b't' => Some(""),
            b'%' => Some("%"),
            _ => None,
        };
        match value {
            Some(v) => {
                out.extend_from_slice(v.as_bytes());
                i += 2;
            }
            None => {
                out.push(b'%');
                i += 1;
            }
        }
    }
    out
}

/// The facts of this host now.
pub fn facts() -> Facts {
    let fqdn = crate::host::fqdn();
    let domain = fqdn
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let (sysname, machine, release, version) = match nix::sys::utsname::uname() {
        Ok(u) => (
            u.sysname().to_string_lossy().into_owned(),
            u.machine().to_string_lossy().into_owned(),
            u.release().to_string_lossy().into_owned(),
            u.version().to_string_lossy().into_owned(),
        ),
        Err(_) => Default::default(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Facts {
        host: fqdn,
        domain,
        date: crate::calendar::asctime(now),
        sysname,
        machine,
        release,
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let f = Facts {
            host: "box.example".into(),
            domain: "example".into(),
            date: "today".into(),
            sysname: "Linux".into(),
            machine: "x86_64".into(),
            release: "6.1".into(),
            version: "#1".into(),
        };
        assert_eq!(
            expand(b"%s %r %m (%h, %D) %d [%t] 100%% %x %", &f),
            b"Linux 6.1 x86_64 (box.example, example) today [] 100% %x %"
        );
        assert_eq!(expand(&vec![b'a'; 20_000], &f).len(), MAX_ISSUE);
    }

    #[test]
    fn facts_of_this_host() {
        let f = facts();
        assert!(!f.host.is_empty() && !f.sysname.is_empty() && !f.date.is_empty());
    }
}
