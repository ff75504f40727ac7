//! ftpd's keys (CONTRACT.md) and their typed form, built once at load.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

/// The ftpd keys of CONTRACT.md.
pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "anonymous",
        Kind::Bool,
        "no",
        "allow anonymous/ftp logins",
    ),
    KeySpec::new(
        "anon_root",
        Kind::Path,
        "/srv/ftp",
        "directory anonymous sessions are confined to (read-only)",
    ),
    KeySpec::new(
        "anon_upload_dir",
        Kind::Text,
        "",
        "directory under anon_root (relative to it, or absolute inside it) where anonymous users may upload but not list or read",
    ),
    KeySpec::new(
        "anon_user",
        Kind::Text,
        "",
        "account anonymous sessions run as (empty: ftp, else nobody)",
    ),
    KeySpec::new(
        "chroot_users",
        Kind::Bool,
        "no",
        "confine logged-in users to their home directory",
    ),
    KeySpec::new(
        "ftpusers_file",
        Kind::Path,
        "/etc/ftpusers",
        "accounts listed there may not log in",
    ),
    KeySpec::new(
        "check_shell",
        Kind::Bool,
        "yes",
        "refuse accounts whose shell is not in /etc/shells",
    ),
    KeySpec::new(
        "pasv_ports",
        Kind::PortRange,
        "",
        "LOW-HIGH range for passive listeners (empty: the kernel's choice)",
    ),
    KeySpec::new(
        "pasv_address",
        Kind::Text,
        "",
        "IPv4 address announced in 227 replies (empty: the control connection's local address)",
    ),
    KeySpec::new(
        "port_enable",
        Kind::Bool,
        "yes",
        "allow active mode (PORT, EPRT)",
    ),
    KeySpec::new("umask", Kind::Umask, "022", "umask for created files"),
];

/// ftpd's configuration, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub anonymous: bool,
    /// Where anonymous sessions are confined (`anon_root`; empty means the
    /// default, /srv/ftp).
    pub anon_root: PathBuf,
    /// `anon_upload_dir` as a path inside anon_root (`/incoming`); None:
    /// anonymous users may not upload.
    pub anon_upload_dir: Option<String>,
    /// None: `ftp`, else `nobody` (looked up at login).
    pub anon_user: Option<String>,
    pub chroot_users: bool,
    pub ftpusers_file: Option<PathBuf>,
    pub check_shell: bool,
    /// Passive listeners' ports, LOW..=HIGH; None: the kernel's choice.
    pub pasv_ports: Option<(u16, u16)>,
    /// Announced in 227 replies instead of the control connection's address.
    pub pasv_address: Option<Ipv4Addr>,
    pub port_enable: bool,
    pub umask: u32,
}

/// `Service::config` of ftpd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| s.error(key, message);
        let pasv_address = match s.opt_text("pasv_address") {
            None => None,
            Some(a) => Some(
                a.parse::<Ipv4Addr>()
                    .map_err(|_| err("pasv_address", format!("'{a}' is not an IPv4 address")))?,
            ),
        };
        let anon_root = s.path("anon_root").unwrap_or_else(|| "/srv/ftp".into());
        let anon_upload_dir = match s.opt_text("anon_upload_dir") {
            None => None,
            Some(u) => Some(
                anon_upload_virtual(u, &anon_root.to_string_lossy()).ok_or_else(|| {
                    err("anon_upload_dir", format!("'{u}' is not inside anon_root"))
                })?,
            ),
        };
        Ok(Config {
            anonymous: s.bool("anonymous"),
            anon_root,
            anon_upload_dir,
            anon_user: s.opt_text("anon_user").map(String::from),
            chroot_users: s.bool("chroot_users"),
            ftpusers_file: s.path("ftpusers_file"),
            check_shell: s.bool("check_shell"),
            pasv_ports: s.port_range("pasv_ports"),
            pasv_address,
            port_enable: s.bool("port_enable"),
            // Kind::Umask allows at most 0o777.
            umask: s.uint("umask") as u32,
        })
    }
}

/// The anonymous upload directory as a path inside the anonymous root:
/// `incoming` and `/incoming` name anon_root/incoming, and so does the
/// absolute `/srv/ftp/incoming` when anon_root is /srv/ftp.
fn anon_upload_virtual(value: &str, anon_root: &str) -> Option<String> {
    let root = anon_root.trim_end_matches('/');
    let rel = match value.strip_prefix(root) {
        Some(rest) if !root.is_empty() && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => value,
    };
    let v = crate::fs::normalize("/", rel);
    if v == "/" || rel.split('/').any(|c| c == "..") {
        return None;
    }
    Some(v)
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
        assert!(!c.anonymous && !c.chroot_users && c.check_shell && c.port_enable);
        assert_eq!(c.anon_root, PathBuf::from("/srv/ftp"));
        assert_eq!(c.anon_upload_dir, None);
        assert_eq!(c.anon_user, None);
        assert_eq!(c.ftpusers_file, Some(PathBuf::from("/etc/ftpusers")));
        assert_eq!((c.pasv_ports, c.pasv_address), (None, None));
        assert_eq!(c.umask, 0o022);
    }

    #[test]
    fn values_are_parsed_once() {
        let c = config(&[
            "anonymous=yes",
            "anon_root=/srv/pub",
            "anon_upload_dir=/srv/pub/incoming",
            "anon_user=ftpanon",
            "ftpusers_file=",
            "pasv_ports=30000-30100",
            "pasv_address=192.0.2.7",
            "umask=077",
        ])
        .unwrap();
        assert!(c.anonymous);
        assert_eq!(c.anon_upload_dir.as_deref(), Some("/incoming"));
        assert_eq!(c.anon_user.as_deref(), Some("ftpanon"));
        assert_eq!(c.ftpusers_file, None);
        assert_eq!(c.pasv_ports, Some((30000, 30100)));
        assert_eq!(c.pasv_address, Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(c.umask, 0o077);
        assert_eq!(
            config(&["anon_root=", "anon_upload_dir=up"])
                .unwrap()
                .anon_root,
            PathBuf::from("/srv/ftp")
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (option, key) in [
            ("pasv_address=not-an-ip", "pasv_address"),
            ("pasv_address=::1", "pasv_address"),
            ("anon_upload_dir=../etc", "anon_upload_dir"),
            ("anon_upload_dir=/srv/ftp", "anon_upload_dir"),
        ] {
            let e = config(&[option]).unwrap_err();
            assert_eq!(e.key, key, "{option}");
            assert!(e.to_string().starts_with("-o: key '"), "{e}");
        }
    }

    #[test]
    fn upload_dir_forms() {
        assert_eq!(
            anon_upload_virtual("incoming", "/srv/ftp").as_deref(),
            Some("/incoming")
        );
        assert_eq!(
            anon_upload_virtual("/incoming", "/srv/ftp").as_deref(),
            Some("/incoming")
        );
        assert_eq!(
            anon_upload_virtual("/srv/ftp/up/new", "/srv/ftp").as_deref(),
            Some("/up/new")
        );
        assert_eq!(anon_upload_virtual("/srv/ftp", "/srv/ftp"), None);
        assert_eq!(anon_upload_virtual("../x", "/srv/ftp"), None);
        assert_eq!(anon_upload_virtual("/", "/srv/ftp"), None);
    }
}
