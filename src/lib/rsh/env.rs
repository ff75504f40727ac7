//! The environment and argv of a program started for an account (rshd's
//! command, rlogind's shell), built from allow-lists: the account's own
//! facts, a fixed PATH, the terminal type a validated handshake gave, and
//! what the PAM stack set. Nothing the client sent becomes a variable or
//! an option.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::auth::Account;

/// PATH for accounts and for root.
pub const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
pub const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The account's shell, /bin/sh when it has none.
pub fn shell_of(account: &Account) -> PathBuf {
    if account.shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        account.shell.clone()
    }
}

/// argv[0] for a shell: its base name, with a leading '-' for a login
/// shell (as login(1) does).
pub fn shell_argv0(shell: &Path, login: bool) -> String {
    let base = shell
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sh".into());
    if login {
        format!("-{base}")
    } else {
        base
    }
}

/// A variable name PAM may set: [A-Za-z_][A-Za-z0-9_]*.
fn good_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The whole environment: HOME, SHELL, USER, LOGNAME, PATH, TERM when
/// given, then PAM's variables (which may set PATH or LANG, as pam_env is
/// configured to), each `NAME=value` once.
pub fn environment(
    account: &Account,
    term: Option<&str>,
    pam: &[(String, String)],
) -> Vec<CString> {
    environment_pairs(account, term, pam)
        .into_iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect()
}

/// `environment`, as names and values (for `Command::envs`); values with
/// a NUL are left out.
pub fn environment_pairs(
    account: &Account,
    term: Option<&str>,
    pam: &[(String, String)],
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = vec![
        ("HOME".into(), account.home.to_string_lossy().into_owned()),
        (
            "SHELL".into(),
            shell_of(account).to_string_lossy().into_owned(),
        ),
        ("USER".into(), account.name.clone()),
        ("LOGNAME".into(), account.name.clone()),
        (
            "PATH".into(),
            if account.uid == 0 {
                ROOT_PATH
            } else {
                USER_PATH
            }
            .into(),
        ),
    ];
    if let Some(t) = term {
        vars.push(("TERM".into(), t.into()));
    }
    for (k, v) in pam {
        if !good_name(k) {
            continue;
        }
        match vars.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.clone(),
            None => vars.push((k.clone(), v.clone())),
        }
    }
    vars.retain(|(_, v)| !v.contains('\0'));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(uid: u32, shell: &str) -> Account {
        Account {
            name: "alice".into(),
            uid,
            gid: uid,
            home: PathBuf::from("/home/alice"),
            shell: PathBuf::from(shell),
            virtual_user: false,
            groups: vec![],
        }
    }

    fn text(env: &[CString]) -> Vec<String> {
        env.iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn environment_from_allow_lists() {
        let env = text(&environment(
            &account(1000, "/bin/bash"),
            Some("xterm"),
            &[],
        ));
        assert_eq!(
            env,
            [
                "HOME=/home/alice",
                "SHELL=/bin/bash",
                "USER=alice",
                "LOGNAME=alice",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "TERM=xterm"
            ]
        );
        let env = text(&environment(&account(0, ""), None, &[]));
        assert!(env.contains(&"SHELL=/bin/sh".to_string()));
        assert!(env.contains(&format!("PATH={ROOT_PATH}")));
        assert!(!env.iter().any(|v| v.starts_with("TERM=")));
    }

    #[test]
    fn pam_variables_are_screened() {
        let pam = [
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("PATH".to_string(), "/opt/bin:/usr/bin".to_string()),
            ("BAD NAME".to_string(), "x".to_string()),
            ("1X".to_string(), "x".to_string()),
            ("NUL".to_string(), "a\0b".to_string()),
        ];
        let env = text(&environment(&account(1000, "/bin/sh"), None, &pam));
        assert!(env.contains(&"LANG=C.UTF-8".to_string()));
        assert!(env.contains(&"PATH=/opt/bin:/usr/bin".to_string()));
        assert_eq!(env.iter().filter(|v| v.starts_with("PATH=")).count(), 1);
        assert!(!env
            .iter()
            .any(|v| v.starts_with("BAD") || v.starts_with("1X") || v.starts_with("NUL")));
    }

    #[test]
    fn shell_names() {
        assert_eq!(shell_argv0(Path::new("/bin/bash"), false), "bash");
        assert_eq!(shell_argv0(Path::new("/bin/bash"), true), "-bash");
        assert_eq!(shell_of(&account(1, "")), PathBuf::from("/bin/sh"));
    }
}
