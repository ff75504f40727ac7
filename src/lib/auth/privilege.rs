//! Becoming the account: groups, gid, uid, in that order, checked to be
//! irreversible; acting as an account for a while (effective ids only);
//! and confinement to a directory with chroot.

use std::io;
use std::marker::PhantomData;
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
        return already(account, "become");
    }
    set_groups(&all_groups(account))?;
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

/// The account's supplementary groups, its primary group included.
fn all_groups(account: &Account) -> Vec<Gid> {
    let gid = Gid::from_raw(account.gid);
    let mut groups: Vec<Gid> = account.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if !groups.contains(&gid) {
        groups.push(gid);
    }
    groups
}

/// Without root: fine if we already are the account, else PermissionDenied.
fn already(account: &Account, what: &str) -> io::Result<()> {
    if unistd::geteuid().as_raw() == account.uid {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "cannot {what} {} (uid {}): not running as root",
            account.name, account.uid
        ),
    ))
}

/// The process's identity as it was before [`act_as`].
struct Saved {
    uid: unistd::ResUid,
    gid: unistd::ResGid,
    groups: Vec<Gid>,
}

/// Acting as an account: while this lives the effective uid, gid and groups
/// are the account's, so files are created and permissions checked as if it
/// did the work (its mail, written into directories it controls). Dropping
/// it returns to root, or aborts the process if that fails: going on with
/// the wrong identity is never an option.
///
/// The ids are per process, so this is for single-threaded processes only
/// (an smtpd session): another thread would run as the account meanwhile.
/// The guard is neither Send nor Sync for that reason.
#[must_use = "the identity is restored when the guard is dropped"]
pub struct ActingAs {
    saved: Option<Saved>,
    _one_thread: PhantomData<*const ()>,
}

/// Act as `account` until the guard is dropped. As root: supplementary
/// groups, then the effective gid, then the effective uid, with the real
/// and saved ids kept (root), which is what lets the guard switch back and
/// keeps the account's own processes from signalling or tracing us. Without
/// root this succeeds, changing nothing, only when we already are that uid.
pub fn act_as(account: &Account) -> io::Result<ActingAs> {
    let uid = Uid::from_raw(account.uid);
    let gid = Gid::from_raw(account.gid);
    if !running_as_root() {
        return already(account, "act as").map(|()| ActingAs {
            saved: None,
            _one_thread: PhantomData,
        });
    }
    let saved = Saved {
        uid: unistd::getresuid()?,
        gid: unistd::getresgid()?,
        groups: get_groups()?,
    };
    let (ruid, suid) = (saved.uid.real, saved.uid.saved);
    let (rgid, sgid) = (saved.gid.real, saved.gid.saved);
    // From here on, an early return drops the guard, which undoes any
    // step already taken.
    let guard = ActingAs {
        saved: Some(saved),
        _one_thread: PhantomData,
    };
    set_groups(&all_groups(account))?;
    unistd::setresgid(rgid, gid, sgid)?;
    unistd::setresuid(ruid, uid, suid)?;
    if unistd::geteuid() != uid || unistd::getegid() != gid {
        return Err(io::Error::other("identity switch did not take"));
    }
    Ok(guard)
}

impl Drop for ActingAs {
    fn drop(&mut self) {
        let Some(s) = self.saved.take() else {
            return;
        };
        // uid first: setting gid and groups needs root again.
        let r = unistd::setresuid(s.uid.real, s.uid.effective, s.uid.saved)
            .and_then(|_| unistd::setresgid(s.gid.real, s.gid.effective, s.gid.saved))
            .map_err(io::Error::from)
            .and_then(|_| set_groups(&s.groups));
        let back = unistd::geteuid() == s.uid.effective && unistd::getegid() == s.gid.effective;
        if r.is_err() || !back {
            log::error!(
                "cannot return to uid {} after acting as another account ({r:?}); aborting",
                s.uid.effective
            );
            std::process::abort();
        }
    }
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

#[cfg(not(target_os = "macos"))]
fn get_groups() -> io::Result<Vec<Gid>> {
    unistd::getgroups().map_err(io::Error::from)
}

#[cfg(target_os = "macos")]
fn get_groups() -> io::Result<Vec<Gid>> {
    Ok(Vec::new())
}

/// Confine the process to `dir` (needs root; do it before dropping
/// privileges). Afterwards "/" is `dir`.
pub fn enter_chroot(dir: &Path) -> io::Result<()> {
    unistd::chroot(dir)?;
    unistd::chdir("/")?;
    Ok(())
}

/// Become the unprivileged pre-login process that reads the network before
/// anyone has logged in: as root, confined to `empty` (an empty directory
/// nobody can write) and switched for good to `nopriv` (the `nopriv_user`);
/// in every case no new privileges (no set-id program can raise it again)
/// and no children of its own (it never forks). (No file-size limit: its
/// log may be a file on stderr, and the empty root leaves nothing to write.)
pub fn enter_prelogin(nopriv: &Account, empty: &Path) -> io::Result<()> {
    if running_as_root() {
        enter_chroot(empty)?;
        drop_privileges(nopriv)?;
    }
    forbid_new_privileges()?;
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_NPROC, 0, 0)?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn forbid_new_privileges() -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)
}

/// Elsewhere the set-id bits cannot be switched off per process (FreeBSD 14
/// has procctl(PROC_NO_NEW_PRIVS_CTL), not wrapped here yet); the chroot
/// into an empty directory already leaves no program to run.
#[cfg(not(target_os = "linux"))]
fn forbid_new_privileges() -> io::Result<()> {
    Ok(())
}

/// The empty directory pre-login processes are confined to: /var/empty
/// where the system has one (the BSDs, OpenSSH's), else our own under
/// /run (or /var/run), made on first use. It must be root's, writable by
/// nobody else, and empty.
pub fn empty_dir() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let suitable = |p: &Path| -> bool {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0)
            && std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
    };
    let system = Path::new("/var/empty");
    if suitable(system) {
        return Ok(system.to_path_buf());
    }
    let base = if Path::new("/run").is_dir() {
        Path::new("/run/classicd")
    } else {
        Path::new("/var/run/classicd")
    };
    let ours = base.join("empty");
    if !suitable(&ours) {
        let mut b = std::fs::DirBuilder::new();
        b.mode(0o755);
        match b.create(base) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        b.mode(0o555);
        match b.create(&ours) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if !suitable(&ours) {
            return Err(io::Error::other(format!(
                "{} must be an empty directory owned by root and writable by nobody else",
                ours.display()
            )));
        }
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn account(uid: u32, gid: u32) -> Account {
        Account {
            name: "someone".into(),
            uid,
            gid,
            home: PathBuf::from("/nonexistent"),
            shell: PathBuf::from("/bin/sh"),
            virtual_user: true,
            groups: vec![],
        }
    }

    #[test]
    fn acting_as_ourselves_changes_nothing() {
        if running_as_root() {
            return;
        }
        let me = account(unistd::geteuid().as_raw(), unistd::getegid().as_raw());
        let g = act_as(&me).expect("we may act as ourselves");
        drop(g);
        let other = account(unistd::geteuid().as_raw() + 1, 0);
        assert_eq!(
            act_as(&other).err().map(|e| e.kind()),
            Some(io::ErrorKind::PermissionDenied)
        );
    }

    /// The ids belong to the whole process: the switch runs alone.
    #[test]
    fn acting_as_switches_and_restores_as_root() {
        if !running_as_root()
            || !crate::test_alone::in_child(
                "auth::privilege::tests::acting_as_switches_and_restores_as_root",
            )
        {
            return;
        }
        let dir = std::env::temp_dir().join(format!("classicd-act-as-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let secret = dir.join("root-only");
        std::fs::write(&secret, b"x").unwrap();
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let groups_before = unistd::getgroups().unwrap();
        let egid_before = unistd::getegid();
        let mut who = account(65534, 65534);
        who.groups = vec![65533];
        {
            let _g = act_as(&who).unwrap();
            assert_eq!(unistd::geteuid().as_raw(), 65534);
            assert_eq!(unistd::getegid().as_raw(), 65534);
            // The way back stays open: real and saved ids are root's.
            assert!(unistd::getuid().is_root());
            assert_eq!(unistd::getresuid().unwrap().saved.as_raw(), 0);
            let mut groups: Vec<u32> = unistd::getgroups()
                .unwrap()
                .iter()
                .map(|g| g.as_raw())
                .collect();
            groups.sort();
            assert_eq!(groups, vec![65533, 65534]);
            // Permissions are checked as the account...
            let denied = std::fs::read(&secret).unwrap_err();
            assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
            // ...and what it creates is its own.
            std::fs::write(dir.join("made"), b"y").unwrap();
        }
        let meta = std::fs::metadata(dir.join("made")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        assert!(unistd::geteuid().is_root());
        assert_eq!(unistd::getegid(), egid_before);
        assert_eq!(unistd::getgroups().unwrap(), groups_before);
        assert_eq!(std::fs::read(&secret).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
