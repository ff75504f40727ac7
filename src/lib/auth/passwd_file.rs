//! Virtual accounts from a passwd(5)-format file whose second field is a
//! crypt(3) hash ($y$, $6$, $5$ and whatever else libcrypt knows).

use std::io;
use std::path::{Path, PathBuf};

use super::{Account, AuthError};
use crate::sys;

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub hash: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl PasswdEntry {
    pub fn account(&self) -> Account {
        Account {
            name: self.name.clone(),
            uid: self.uid,
            gid: self.gid,
            home: self.home.clone(),
            shell: self.shell.clone(),
            virtual_user: true,
            groups: vec![self.gid],
        }
    }
}

/// Parse `name:hash:uid:gid:gecos:home:shell`. Comments, blank and malformed
/// lines give None.
pub fn parse_line(line: &str) -> Option<PasswdEntry> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return None;
    }
    let f: Vec<&str> = line.split(':').collect();
    if f.len() != 7 || f[0].is_empty() {
        return None;
    }
    Some(PasswdEntry {
        name: f[0].to_string(),
        hash: f[1].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
        shell: PathBuf::from(if f[6].is_empty() { "/bin/sh" } else { f[6] }),
    })
}

/// Find `name` in the file (read anew at each login, so edits apply at once).
pub fn lookup(path: &Path, name: &str) -> io::Result<Option<PasswdEntry>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(parse_line).find(|e| e.name == name))
}

/// A hash of the same cost as a real one, used for unknown users so that
/// their failures take as long as a wrong password.
const DUMMY_SETTING: &str = "$6$rounds=5000$classicdnouser$";

/// Spend the time of one hash check.
pub fn burn_time(password: &str) {
    let _ = sys::crypt_hash(password, DUMMY_SETTING);
}

/// Whether `password` matches the crypt(3) `hash`. Locked (`*`, `!...`) and
/// empty hashes never match.
pub fn verify(password: &str, hash: &str) -> bool {
    if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
        burn_time(password);
        return false;
    }
    match sys::crypt_hash(password, hash) {
        Some(h) => constant_time_eq(h.as_bytes(), hash.as_bytes()),
        None => false,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn check(path: &Path, name: &str, password: &str) -> Result<Account, AuthError> {
    let entry = lookup(path, name)
        .map_err(|e| AuthError::Unavailable(format!("{}: {e}", path.display())))?;
    match entry {
        Some(e) if verify(password, &e.hash) => Ok(e.account()),
        Some(_) => Err(AuthError::Denied),
        None => {
            burn_time(password);
            Err(AuthError::Denied)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let e = parse_line("demo:$6$x$y:1000:100:Demo User:/home/demo:/bin/bash").unwrap();
        assert_eq!(e.name, "demo");
        assert_eq!(e.uid, 1000);
        assert_eq!(e.gid, 100);
        assert_eq!(e.home, PathBuf::from("/home/demo"));
        assert!(parse_line("# comment").is_none());
        assert!(parse_line("").is_none());
        assert!(parse_line("short:x:1").is_none());
        assert!(parse_line("bad:x:uid:1:g:/h:/s").is_none());
        assert_eq!(
            parse_line("n:x:1:1::/h:").unwrap().shell,
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn verifies_sha512_sha256_and_yescrypt() {
        for setting in ["$6$abcdefgh$", "$5$abcdefgh$", "$y$j9T$abcdefghijklmnop$"] {
            let Some(hash) = sys::crypt_hash("demo", setting) else {
                continue; // yescrypt only where libcrypt has it
            };
            assert!(verify("demo", &hash), "{setting}");
            assert!(!verify("Demo", &hash), "{setting}");
            assert!(!verify("", &hash), "{setting}");
        }
    }

    #[test]
    fn locked_and_empty_hashes_never_match() {
        assert!(!verify("", ""));
        assert!(!verify("x", "*"));
        assert!(!verify("x", "!$6$abc$def"));
    }

    #[test]
    fn check_against_a_file() {
        let dir = std::env::temp_dir().join(format!("classicd-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("passwd");
        let hash = sys::crypt_hash("secret", "$6$saltsalt$").unwrap();
        std::fs::write(
            &file,
            format!("# lab\nalice:{hash}:1001:1001::/home/alice:/bin/sh\n"),
        )
        .unwrap();
        assert_eq!(check(&file, "alice", "secret").unwrap().uid, 1001);
        assert!(matches!(
            check(&file, "alice", "nope"),
            Err(AuthError::Denied)
        ));
        assert!(matches!(
            check(&file, "bob", "secret"),
            Err(AuthError::Denied)
        ));
        assert!(matches!(
            check(&dir.join("missing"), "alice", "secret"),
            Err(AuthError::Unavailable(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
