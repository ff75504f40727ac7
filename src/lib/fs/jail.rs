//! Every path from the network is resolved inside the session's root and
//! refused if it escapes: lexically (`..`, absolute paths) and through
//! symbolic links (the real location is checked after resolution).

use std::io;
use std::path::{Component, Path, PathBuf};

/// Lexically normalise `path` (absolute, or relative to the virtual `cwd`)
/// into an absolute virtual path; `..` stops at "/".
pub fn normalize(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::from("/");
    out.push_str(&parts.join("/"));
    out
}

/// A root directory that client paths cannot leave.
#[derive(Clone, Debug)]
pub struct Jail {
    root: PathBuf,
}

fn escaped() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "path leads outside the root",
    )
}

impl Jail {
    /// A jail at `root` (resolved once, so a link to the root is fine).
    pub fn new(root: &Path) -> io::Result<Jail> {
        Ok(Jail {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of a normalised virtual path, after checking that no
    /// symbolic link on the way leads out. The last component may not exist
    /// yet (a file about to be created), but a dangling link is refused.
    pub fn real(&self, vpath: &str) -> io::Result<PathBuf> {
        let rel = vpath.trim_start_matches('/');
        if Path::new(rel)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(escaped());
        }
        let joined = self.root.join(rel);
        match joined.canonicalize() {
            Ok(real) => {
                if real.starts_with(&self.root) {
                    Ok(real)
                } else {
                    Err(escaped())
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if joined.symlink_metadata().is_ok() {
                    return Err(escaped()); // a dangling link
                }
                let (Some(parent), Some(name)) = (joined.parent(), joined.file_name()) else {
                    return Err(escaped());
                };
                let real_parent = parent.canonicalize()?;
                if !real_parent.starts_with(&self.root) {
                    return Err(escaped());
                }
                Ok(real_parent.join(name))
            }
            Err(e) => Err(e),
        }
    }

    /// Resolve a client path against the virtual cwd: (virtual, real).
    pub fn resolve(&self, cwd: &str, path: &str) -> io::Result<(String, PathBuf)> {
        let v = normalize(cwd, path);
        let r = self.real(&v)?;
        Ok((v, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn normalize_stays_under_root() {
        assert_eq!(normalize("/", "a/b"), "/a/b");
        assert_eq!(normalize("/a", "../../.."), "/");
        assert_eq!(normalize("/a/b", "../c/./d"), "/a/c/d");
        assert_eq!(normalize("/a", "/etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/", ""), "/");
        assert_eq!(normalize("/x", "..//..//y"), "/y");
    }

    fn tree() -> (PathBuf, Jail) {
        let base = std::env::temp_dir().join(format!(
            "classicd-jail-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("pub/sub")).unwrap();
        std::fs::write(base.join("secret"), "x").unwrap();
        std::fs::write(root.join("pub/file"), "y").unwrap();
        symlink(base.join("secret"), root.join("pub/out")).unwrap();
        symlink("/nonexistent-target", root.join("pub/dangling")).unwrap();
        symlink("sub", root.join("pub/in")).unwrap();
        symlink(&base, root.join("up")).unwrap();
        let jail = Jail::new(&root).unwrap();
        (base, jail)
    }

    #[test]
    fn resolves_inside_and_refuses_escapes() {
        let (base, jail) = tree();
        let root = jail.root().to_path_buf();
        assert_eq!(
            jail.resolve("/", "pub/file").unwrap().1,
            root.join("pub/file")
        );
        assert_eq!(jail.resolve("/pub", "in").unwrap().1, root.join("pub/sub"));
        assert_eq!(
            jail.resolve("/pub", "new.txt").unwrap().1,
            root.join("pub/new.txt")
        );
        assert_eq!(
            jail.resolve("/pub", "../../../secret").unwrap().0,
            "/secret"
        );
        // Climbing stops at the root: this names a new file inside it.
        assert_eq!(
            jail.resolve("/pub", "../../../secret").unwrap().1,
            root.join("secret")
        );
        for bad in [
            "out",
            "dangling",
            "/up/secret",
            "/up/root/../secret",
            "/up/new",
        ] {
            let e = jail.resolve("/pub", bad).unwrap_err();
            assert!(
                e.kind() == io::ErrorKind::PermissionDenied || e.kind() == io::ErrorKind::NotFound,
                "{bad}: {e}"
            );
            assert!(jail.resolve("/pub", bad).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(base).unwrap();
    }
}
