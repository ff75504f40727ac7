//! Becoming the account: groups, gid, uid, in that order, checked to be
//! irreversible; and confinement to a directory with chroot.

use std::io;
use std::path::Path;

use nix::unistd::{self, Gid, Uid};

use super::Account;

pub fn running_as_root() -> bool {
    unistd::geteuid().is_root()
}

/// Switch the whole process to the account for good. Without root this
/// succeeds only when we already are that account (an unprivileged lab).
pub fn drop_privileges(account: &Account) -> io::Result<()> {
    let uid = Uid::from_raw(account.uid);
    let gid = Gid::from_raw(account.gid);
    if !running_as_root() {
        if unistd::geteuid() == uid {
            return Ok(());
        }
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot become {} (uid {}): not running as root",
                account.name, account.uid
            ),
        ));
    }
    let mut groups: Vec<Gid> = account.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    set_groups(&groups)?;
    unistd::setresgid(gid, gid, gid)?;
    unistd::setresuid(uid, uid, uid)?;
    // The way back must be closed.
    if account.uid != 0
        && (unistd::setuid(Uid::from_raw(0)).is_ok() || unistd::seteuid(Uid::from_raw(0)).is_ok())
    {
        return Err(io::Error::other(
            "privileges could be regained after the drop",
        ));
    }
    if unistd::getuid() != uid || unistd::geteuid() != uid || unistd::getegid() != gid {
        return Err(io::Error::other("privilege drop did not take"));
    }
    Ok(())
}

/// The account's groups from NSS (primary included). Call it before any
/// chroot: NSS must read the real /etc and load its modules from there.
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub(super) fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(cname) = std::ffi::CString::new(name) else {
        return vec![gid];
    };
    unistd::getgrouplist(&cname, Gid::from_raw(gid))
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![gid])
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
pub(super) fn group_list(_name: &str, gid: u32) -> Vec<u32> {
    vec![gid]
}

#[cfg(not(target_os = "macos"))]
fn set_groups(groups: &[Gid]) -> io::Result<()> {
    unistd::setgroups(groups).map_err(io::Error::from)
}

#[cfg(target_os = "macos")]
fn set_groups(_groups: &[Gid]) -> io::Result<()> {
    Ok(())
}

/// Confine the process to `dir` (needs root; do it before dropping
/// privileges). Afterwards "/" is `dir`.
pub fn enter_chroot(dir: &Path) -> io::Result<()> {
    unistd::chroot(dir)?;
    unistd::chdir("/")?;
    Ok(())
}
