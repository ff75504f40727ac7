//! The real world of `trust::decide`, for the monitor: trust files read
//! without following links (a .rhosts with its account's identity, as
//! ruserok does, so that a home on NFS with root squashed still reads and a
//! file the account cannot read is not read), names through the resolver,
//! netgroups through innetgr(3).

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::trust::{self, FileKind, TrustFile, World, MAX_TRUST_FILE};
use super::{act_as, Account};
use crate::sys;

/// Reads and lookups for one decision about `account`.
pub struct SystemWorld<'a> {
    pub account: &'a Account,
}

impl World for SystemWorld<'_> {
    fn read(&mut self, path: &Path, as_uid: Option<u32>) -> TrustFile {
        match as_uid {
            // The account's own file, with its identity (and only its).
            Some(uid) if uid == self.account.uid => match act_as(self.account) {
                Ok(_guard) => read_trust_file(path),
                Err(e) => TrustFile::Unreadable(format!("cannot read as the account: {e}")),
            },
            Some(_) => TrustFile::Unreadable("not the account's file".into()),
            None => read_trust_file(path),
        }
    }

    fn addresses(&mut self, host: &str) -> Vec<IpAddr> {
        addresses(host)
    }

    fn innetgr(&mut self, group: &str, host: Option<&str>, user: Option<&str>) -> bool {
        sys::in_netgroup(group, host, user)
    }
}

/// The addresses a name resolves to (getaddrinfo).
pub fn addresses(host: &str) -> Vec<IpAddr> {
    if !trust::plausible_host(host) {
        return Vec::new();
    }
    match (host, 0u16).to_socket_addrs() {
        Ok(it) => it.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The forward-confirmed name of a client address, if it has one.
pub fn confirmed_name(addr: IpAddr) -> Option<String> {
    trust::confirmed_name(addr, sys::name_of, addresses)
}

/// lstat, then open without following a link (and without blocking on a
/// FIFO), then fstat the file actually opened: what is judged is what is
/// read, whatever is swapped in between.
pub fn read_trust_file(path: &Path) -> TrustFile {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return TrustFile::Missing,
        Err(e) => return TrustFile::Unreadable(e.to_string()),
    };
    let found = |kind, m: &std::fs::Metadata, content| TrustFile::Found {
        kind,
        uid: m.uid(),
        mode: m.mode() & 0o7777,
        nlink: m.nlink(),
        content,
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return found(FileKind::Symlink, &meta, None);
    }
    if !ft.is_file() || ft.is_fifo() {
        return found(FileKind::Other, &meta, None);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let mut file: File = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return found(FileKind::Symlink, &meta, None)
        }
        Err(e) => return TrustFile::Unreadable(format!("cannot open: {e}")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return TrustFile::Unreadable(e.to_string()),
    };
    if !meta.file_type().is_file() {
        return found(FileKind::Other, &meta, None);
    }
    let mut content = Vec::new();
    match (&mut file)
        .take(MAX_TRUST_FILE as u64 + 1)
        .read_to_end(&mut content)
    {
        Ok(n) if n > MAX_TRUST_FILE => found(FileKind::Regular, &meta, None),
        Ok(_) => found(FileKind::Regular, &meta, Some(content)),
        Err(e) => TrustFile::Unreadable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_read_as_they_are() {
        let dir = std::env::temp_dir().join(format!("classicd-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("rhosts");
        std::fs::write(&f, b"+ +\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        match read_trust_file(&f) {
            TrustFile::Found {
                kind: FileKind::Regular,
                mode: 0o640,
                nlink: 1,
                content: Some(c),
                ..
            } => assert_eq!(c, b"+ +\n"),
            other => panic!("{other:?}"),
        }
        let link = dir.join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            read_trust_file(&link),
            TrustFile::Found {
                kind: FileKind::Symlink,
                content: None,
                ..
            }
        ));
        let hard = dir.join("hard");
        std::fs::hard_link(&f, &hard).unwrap();
        assert!(matches!(
            read_trust_file(&hard),
            TrustFile::Found { nlink: 2, .. }
        ));
        assert!(matches!(
            read_trust_file(&dir),
            TrustFile::Found {
                kind: FileKind::Other,
                ..
            }
        ));
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_trust_file(&fifo),
            TrustFile::Found {
                kind: FileKind::Other,
                ..
            }
        ));
        let big = dir.join("big");
        std::fs::write(&big, vec![b'#'; MAX_TRUST_FILE + 1]).unwrap();
        assert!(matches!(
            read_trust_file(&big),
            TrustFile::Found { content: None, .. }
        ));
        assert_eq!(read_trust_file(&dir.join("none")), TrustFile::Missing);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn localhost_resolves() {
        let a = addresses("localhost");
        assert!(a.contains(&"127.0.0.1".parse().unwrap()), "{a:?}");
        assert!(addresses("a b").is_empty());
    }
}
