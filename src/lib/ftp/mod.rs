#![forbid(unsafe_code)]
//! ftpd: the File Transfer Protocol (RFC 959) with the extensions clients
//! use today: EPRT/EPSV (RFC 2428), FEAT/OPTS (RFC 2389), SIZE, MDTM, REST
//! STREAM, MLST/MLSD (RFC 3659), AUTH TLS/PBSZ/PROT (RFC 4217).
//!
//! The master forks a session per client; inside a session every transfer
//! or listing runs in its own data process while the control connection
//! keeps answering ABOR, STAT and NOOP. Active-mode connections from port
//! 20 are made by the session's root monitor, to the client's address only.

pub mod command;
mod handover;
pub mod listing;
mod session;
pub mod state;
mod transfer;

use crate::runtime::config::{KeySpec, Kind};
use crate::runtime::{Handler, Service};

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

pub static SERVICE: Service = Service {
    name: "ftpd",
    port: 21,
    pam_service: "ftp",
    log_facility: "ftp",
    idle_timeout: 300,
    keys: KEYS,
    extra_listeners: &[],
    line_max: 4096,
    busy_reply: b"421 Too many connections, try again later.\r\n",
    handler: Handler::Split(&session::FTP),
    check,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};

fn check(s: &crate::runtime::config::Settings) -> Result<(), crate::runtime::config::ConfigError> {
    use crate::runtime::config::ConfigError;
    if let Some(a) = s.opt_text("pasv_address") {
        if a.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ConfigError {
                origin: s.origin("pasv_address"),
                key: "pasv_address".into(),
                message: format!("'{a}' is not an IPv4 address"),
            });
        }
    }
    if let Some(u) = s.opt_text("anon_upload_dir") {
        if anon_upload_virtual(u, s.text("anon_root")).is_none() {
            return Err(ConfigError {
                origin: s.origin("anon_upload_dir"),
                key: "anon_upload_dir".into(),
                message: format!("'{u}' is not inside anon_root"),
            });
        }
    }
    Ok(())
}

/// The port active-mode data connections come from: 20 for a server on
/// 21, else the control port minus one.
pub fn data_port(control: std::net::SocketAddr) -> u16 {
    if control.port() == 21 {
        20
    } else {
        control.port().saturating_sub(1).max(1)
    }
}

/// The anonymous upload directory as a path inside the anonymous root:
/// `incoming` and `/incoming` name anon_root/incoming, and so does the
/// absolute `/srv/ftp/incoming` when anon_root is /srv/ftp.
pub fn anon_upload_virtual(value: &str, anon_root: &str) -> Option<String> {
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

    #[test]
    fn data_port_is_20_or_control_minus_one() {
        assert_eq!(data_port("0.0.0.0:21".parse().unwrap()), 20);
        assert_eq!(data_port("[::1]:21".parse().unwrap()), 20);
        assert_eq!(data_port("127.0.0.1:2121".parse().unwrap()), 2120);
        assert_eq!(data_port("127.0.0.1:1".parse().unwrap()), 1);
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
