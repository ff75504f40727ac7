//! The programs telnetd starts on a terminal, spelled out whole: argv built
//! element by element, the environment from an allow-list. Nothing a
//! client sent becomes an option: the only client strings that get here
//! are a terminal type, a DISPLAY and a login name, each already checked
//! against a strict alphabet (`terminal`), and checked again here.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::config::Arg;
use super::terminal::{self, TerminalInfo};
use crate::auth::Account;
use crate::pty::Program;

/// PATH for a login shell (Debian's login.defs).
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstring(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

/// The login program of `login = PROGRAM ARGS`, run as root on the
/// terminal: argv[0] its base name, the configured arguments each
/// expanded on its own (`%h`), then `--` and the login name when the
/// client gave a valid one, so that no client string is ever read as an
/// option. The environment holds TERM and, when valid, DISPLAY: nothing
/// else (login -p keeps it).
pub fn login_program(
    path: &Path,
    args: &[Arg],
    host: &str,
    info: &TerminalInfo,
    term: &str,
) -> Option<Program> {
    let name = path.file_name()?.to_str()?;
    let mut argv = vec![cstring(name)?];
    for a in args {
        argv.push(cstring(&a.expand(host))?);
    }
    if let Some(user) = info
        .user
        .as_deref()
        .and_then(|u| terminal::login_name(u.as_bytes()))
    {
        argv.push(cstring("--")?);
        argv.push(cstring(&user)?);
    }
    let mut env = vec![cstring(&format!("TERM={}", checked_term(term)))?];
    if let Some(d) = info
        .display
        .as_deref()
        .and_then(|d| terminal::display(d.as_bytes()))
    {
        env.push(cstring(&format!("DISPLAY={d}"))?);
    }
    Some(Program {
        path: CString::new(path.as_os_str().as_encoded_bytes()).ok()?,
        argv,
        env,
        dir: Some(PathBuf::from("/")),
    })
}

/// The account's shell as a login shell (argv[0] "-sh"), in a clean
/// environment: HOME, SHELL, USER, LOGNAME, PATH, TERM, MAIL, DISPLAY
/// when the client gave a valid one, and what the PAM session set
/// (pam_env: the administrator's locale and the like), whose names must
/// look like variable names and never override ours.
pub fn shell_program(
    account: &Account,
    term: &str,
    display: Option<&str>,
    pam_env: &[(String, String)],
    home: &Path,
) -> Option<Program> {
    let shell = if account.shell.as_os_str().is_empty() {
        PathBuf::from("/bin/sh")
    } else {
        account.shell.clone()
    };
    let base = shell.file_name()?.to_str()?;
    let argv = vec![cstring(&format!("-{base}"))?];
    let path = if account.uid == 0 {
        ROOT_PATH
    } else {
        USER_PATH
    };
    let ours = [
        ("HOME", home.to_str()?.to_string()),
        ("SHELL", shell.to_str()?.to_string()),
        ("USER", account.name.clone()),
        ("LOGNAME", account.name.clone()),
        ("PATH", path.to_string()),
        ("TERM", checked_term(term).to_string()),
        ("MAIL", format!("/var/mail/{}", account.name)),
    ];
    let mut env = Vec::new();
    for (k, v) in pam_env {
        if variable_name(k) && !ours.iter().any(|(o, _)| o == k) && k != "DISPLAY" {
            env.push(cstring(&format!("{k}={v}"))?);
        }
    }
    for (k, v) in &ours {
        env.push(cstring(&format!("{k}={v}"))?);
    }
    if let Some(d) = display.and_then(|d| terminal::display(d.as_bytes())) {
        env.push(cstring(&format!("DISPLAY={d}"))?);
    }
    Some(Program {
        path: CString::new(shell.as_os_str().as_encoded_bytes()).ok()?,
        argv,
        env,
        dir: Some(home.to_path_buf()),
    })
}

fn checked_term(term: &str) -> &str {
    match terminal::terminal_type(term.as_bytes()) {
        Some(t) if t == term => term,
        _ => "dumb",
    }
}

fn variable_name(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnetd::config::{parse_login, Login};

    fn strings(v: &[CString]) -> Vec<String> {
        v.iter().map(|c| c.to_string_lossy().into_owned()).collect()
    }

    fn login(user: Option<&str>, display: Option<&str>) -> Program {
        let Login::Program { path, args } = parse_login("/bin/login -p -h %h").unwrap() else {
            panic!()
        };
        let info = TerminalInfo {
            user: user.map(String::from),
            display: display.map(String::from),
            ..TerminalInfo::default()
        };
        login_program(&path, &args, "client.example", &info, "xterm").unwrap()
    }

    #[test]
    fn login_argv_is_built_word_by_word() {
        let p = login(None, None);
        assert_eq!(strings(&p.argv), ["login", "-p", "-h", "client.example"]);
        assert_eq!(strings(&p.env), ["TERM=xterm"]);
        let p = login(Some("demo"), Some("h:0"));
        assert_eq!(
            strings(&p.argv),
            ["login", "-p", "-h", "client.example", "--", "demo"]
        );
        assert_eq!(strings(&p.env), ["TERM=xterm", "DISPLAY=h:0"]);
    }

    #[test]
    fn client_strings_never_become_options() {
        // Even if something upstream let them through.
        for bad in ["-f root", "-froot", "-f", "root -f", "--"] {
            let p = login(Some(bad), Some("-x:0"));
            assert_eq!(
                strings(&p.argv),
                ["login", "-p", "-h", "client.example"],
                "{bad}"
            );
            assert_eq!(strings(&p.env), ["TERM=xterm"]);
        }
        let Login::Program { path, args } = parse_login("/bin/login -h %h").unwrap() else {
            panic!()
        };
        let p = login_program(&path, &args, "x", &TerminalInfo::default(), "../../etc/x").unwrap();
        assert_eq!(strings(&p.env), ["TERM=dumb"]);
    }

    #[test]
    fn shell_environment_is_an_allow_list() {
        let account = Account {
            name: "demo".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/demo".into(),
            shell: "/bin/bash".into(),
            virtual_user: false,
            groups: vec![],
        };
        let pam = [
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("PATH".to_string(), "/evil".to_string()),
            ("BAD NAME".to_string(), "x".to_string()),
        ];
        let p = shell_program(
            &account,
            "xterm",
            Some("h:0"),
            &pam,
            Path::new("/home/demo"),
        )
        .unwrap();
        assert_eq!(strings(&p.argv), ["-bash"]);
        assert_eq!(
            strings(&p.env),
            [
                "LANG=C.UTF-8",
                "HOME=/home/demo",
                "SHELL=/bin/bash",
                "USER=demo",
                "LOGNAME=demo",
                "PATH=/usr/local/bin:/usr/bin:/bin:/usr/games",
                "TERM=xterm",
                "MAIL=/var/mail/demo",
                "DISPLAY=h:0"
            ]
        );
        assert_eq!(p.dir.as_deref(), Some(Path::new("/home/demo")));
        let root = Account {
            uid: 0,
            shell: "".into(),
            ..account
        };
        let p = shell_program(&root, "xterm", None, &[], Path::new("/")).unwrap();
        assert_eq!(strings(&p.argv), ["-sh"]);
        assert!(strings(&p.env).contains(&format!("PATH={ROOT_PATH}")));
    }
}
