//! Durable writes: a file is written aside (under a temporary name on the
//! same file system), fsynced, renamed into place, and the directory that
//! holds it is fsynced. A crash at any moment leaves the old file or the
//! new one, whole (at worst a stray temporary file, which nothing reads);
//! once the call returns, the new one survives a crash. Whatever a daemon
//! acknowledges (a delivered message, a queued one, an accepted article)
//! goes through here before the acknowledgement.
//!
//! The temporary file is created exclusively and without following a
//! symbolic link (O_CREAT|O_EXCL|O_NOFOLLOW), with the mode asked for, so a
//! link planted in a shared directory is never written through. It is
//! removed if the [`AsideFile`] is dropped before it is put in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// fsync a directory, after creating, renaming or unlinking in it: until
/// then the change may be lost in a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether this platform has [`rename_noreplace`] (and so
/// [`AsideFile::reuse`]).
pub const RENAME_NOREPLACE: bool = cfg!(target_os = "linux");

/// Rename `from` to `to` unless `to` exists (`AlreadyExists` then).
#[cfg(target_os = "linux")]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub fn rename_noreplace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The directory holding `path` ("." for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new file being written under a temporary name, to be put in place
/// whole by [`AsideFile::commit`] (or [`AsideFile::install`]).
#[derive(Debug)]
pub struct AsideFile {
    file: File,
    temp: PathBuf,
    /// Renamed into place, or deliberately left behind: not ours to remove.
    let_go: bool,
    /// An earlier file taken over ([`AsideFile::reuse`]): what is left of
    /// its old contents past the new end is cut by [`AsideFile::trim`].
    reused: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl AsideFile {
    /// Create `temp` (exclusively, not through a link) with `mode` (less
    /// the umask). `AlreadyExists` when the name is taken: the caller picks
    /// the name, and another one then (Maildir's tmp/, the mail queue's).
    pub fn create(temp: impl Into<PathBuf>, mode: u32) -> io::Result<AsideFile> {
        let temp = temp.into();
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        Ok(AsideFile {
            file,
            temp,
            let_go: false,
            reused: false,
        })
    }

    /// Take over `spare`, a finished file of this process's user kept for
    /// reuse, as the temporary file `temp` (never replacing a file there:
    /// `AlreadyExists`). Written from its start over its old blocks, it
    /// costs no inode allocation now and no freeing later (on ext4 without
    /// a journal each allocation scans past every inode freed in the last
    /// minute). Anything but a regular file of ours, private, with one
    /// link is removed and refused; so is every platform without an atomic
    /// no-replace rename (the caller creates a file then).
    pub fn reuse(spare: &Path, temp: impl Into<PathBuf>) -> io::Result<AsideFile> {
        use std::os::unix::fs::MetadataExt;
        let temp = temp.into();
        rename_noreplace(spare, &temp)?;
        // O_NONBLOCK: a FIFO planted there must not hang the open.
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&temp);
        let mut aside = AsideFile {
            file: match opened {
                Ok(f) => f,
                Err(e) => {
                    let _ = fs::remove_file(&temp);
                    return Err(e);
                }
            },
            temp,
            let_go: false,
            reused: true,
        };
        let m = aside.file.metadata()?;
        let private = m.mode() & 0o077 == 0;
        if !m.is_file() || !private || m.nlink() != 1 || m.uid() != nix::unistd::geteuid().as_raw()
        {
            // Dropping `aside` removes it.
            aside.reused = false;
            return Err(io::Error::other("spare file is not a lone file of ours"));
        }
        Ok(aside)
    }

    /// Cut a reused file at the current write position (the end of what
    /// was written to it): nothing of its earlier contents stays behind.
    pub fn trim(&mut self) -> io::Result<()> {
        if self.reused {
            use std::io::Seek;
            let end = self.file.stream_position()?;
            self.file.set_len(end)?;
        }
        Ok(())
    }

    /// A fresh temporary file in `target`'s directory: a hidden name made
    /// of the target's, the process id and a counter.
    pub fn beside(target: &Path, mode: u32) -> io::Result<AsideFile> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = parent_of(target);
        let mut tries = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match AsideFile::create(temp, mode) {
                // A name left by an earlier process of the same pid, or
                // squatted: take the next.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                other => return other,
            }
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// fsync the file and rename it to `target`, replacing what was there.
    /// The directory is not synced: the caller does it, once for several
    /// files when it can, and only then may it acknowledge them. On error
    /// before the rename, the temporary file is removed.
    pub fn install(mut self, target: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.temp, target)?;
        self.let_go = true;
        Ok(())
    }

    /// Rename the file to `target` without an fsync: the caller synced
    /// it already, and syncs the
    /// directory.
    pub fn place(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.temp, target)?;
        self.let_go = true;
        Ok(())
    }

    /// fsync the file, rename it to `target`, fsync `target`'s directory:
    /// durable on return. An error after the rename leaves the new file in
    /// place (whole, but perhaps not on disk yet).
    pub fn commit(self, target: &Path) -> io::Result<()> {
        self.install(target)?;
        sync_dir(parent_of(target))
    }

    /// Leave the temporary file as it is, as a crash would (tests of crash
    /// recovery).
    pub fn abandon(mut self) {
        self.let_go = true;
    }
}

impl Write for AsideFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AsideFile {
    fn drop(&mut self) {
        if !self.let_go {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Replace `target` by a file holding `contents`, durably (see the module
/// documentation); a new file gets `mode`.
pub fn write_file(target: &Path, mode: u32, contents: &[u8]) -> io::Result<()> {
    let mut f = AsideFile::beside(target, mode)?;
    f.write_all(contents)?;
    f.commit(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("classicd-durable-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn write_file_replaces_whole_and_leaves_nothing_else() {
        let d = TempDir::new("write");
        let target = d.0.join("state");
        write_file(&target, 0o600, b"one").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o600, 0, "mode {mode:o}");
        write_file(&target, 0o600, b"two, longer").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two, longer");
        assert_eq!(d.names(), vec!["state"]);
    }

    #[test]
    fn dropped_before_commit_leaves_the_target_alone() {
        let d = TempDir::new("drop");
        let target = d.0.join("mbox");
        fs::write(&target, b"old").unwrap();
        let mut f = AsideFile::beside(&target, 0o600).unwrap();
        f.write_all(b"half").unwrap();
        assert!(f.temp_path().exists());
        drop(f);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(d.names(), vec!["mbox"]);
        // Abandoned (a crash): the temporary file stays, the target too.
        let f = AsideFile::beside(&target, 0o600).unwrap();
        let temp = f.temp_path().to_path_buf();
        f.abandon();
        assert!(temp.exists());
        assert_eq!(fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn a_link_or_a_taken_name_is_never_written_through() {
        let d = TempDir::new("link");
        let victim = d.0.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let temp = d.0.join("tmp-name");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let e = AsideFile::create(&temp, 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        // A planted link is left alone, not removed.
        assert!(fs::symlink_metadata(&temp).is_ok());
    }

    #[test]
    fn install_and_commit_move_across_directories() {
        let d = TempDir::new("maildir");
        fs::create_dir_all(d.0.join("tmp")).unwrap();
        fs::create_dir_all(d.0.join("new")).unwrap();
        let mut f = AsideFile::create(d.0.join("tmp/m1"), 0o600).unwrap();
        f.write_all(b"message").unwrap();
        f.commit(&d.0.join("new/m1,S=7")).unwrap();
        assert_eq!(fs::read(d.0.join("new/m1,S=7")).unwrap(), b"message");
        assert!(!d.0.join("tmp/m1").exists());
        // install: in place, the directory is the caller's to sync.
        let f = AsideFile::create(d.0.join("tmp/m2"), 0o600).unwrap();
        f.install(&d.0.join("new/m2")).unwrap();
        sync_dir(&d.0.join("new")).unwrap();
        assert!(d.0.join("new/m2").exists());
        // A failed rename (no such directory) removes the temporary file.
        let f = AsideFile::create(d.0.join("tmp/m3"), 0o600).unwrap();
        assert!(f.commit(&d.0.join("gone/m3")).is_err());
        assert!(!d.0.join("tmp/m3").exists());
    }
}
