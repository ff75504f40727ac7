//! System accounts through NSS and PAM, and the privilege drop, with a real
//! account. Needs root (it creates the account and a PAM service file);
//! without root it says so and passes.

use std::process::Command;
use std::time::{Duration, Instant};

use classicd::auth::{self, AuthError, Authenticator};
use classicd::runtime::supervise;

const USER: &str = "classicdtest";
const PASSWORD: &str = "Corr3ct-horse";
const SERVICE: &str = "classicd-test";

fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn ensure_account() {
    if auth::system_account(USER).is_none() {
        let ok = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-U", USER])
            .status()
            .expect("useradd");
        assert!(ok.success());
    }
    let mut p = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd");
    use std::io::Write;
    writeln!(p.stdin.take().unwrap(), "{USER}:{PASSWORD}").unwrap();
    assert!(p.wait().unwrap().success());
    std::fs::write(
        format!("/etc/pam.d/{SERVICE}"),
        "@include common-auth\n@include common-account\n@include common-session-noninteractive\n",
    )
    .unwrap();
}

#[test]
fn pam_login_and_privilege_drop() {
    if !as_root() {
        eprintln!("skipped: needs root to create a system account");
        return;
    }
    ensure_account();
    let auth = Authenticator::new(None, SERVICE);

    let login = auth
        .authenticate(USER, PASSWORD, "127.0.0.1")
        .expect("right password through PAM");
    let account = login.account.clone();
    assert_eq!(account.name, USER);
    assert!(!account.virtual_user);
    assert_ne!(account.uid, 0);

    // Unknown user and bad password: the same answer, after the same delay.
    for (user, pass) in [(USER, "wrong"), ("nosuchuser-classicd", PASSWORD)] {
        let t = Instant::now();
        assert!(matches!(
            auth.authenticate(user, pass, "127.0.0.1"),
            Err(AuthError::Denied)
        ));
        assert!(t.elapsed() >= Duration::from_millis(950), "{user}");
    }
    drop(login);

    // The drop, in a child process so the test process stays root.
    let pid = supervise::spawn(supervise::Kind::Account, &[], || {
        let ok = auth::drop_privileges(&account).is_ok()
            && nix::unistd::getuid().as_raw() == account.uid
            && nix::unistd::getgid().as_raw() == account.gid
            && nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).is_err()
            && std::fs::read("/etc/shadow").is_err();
        if ok {
            0
        } else {
            1
        }
    })
    .unwrap();
    let status = nix::sys::wait::waitpid(pid, None).unwrap();
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
}

#[test]
fn nss_lookup_without_password() {
    let auth = Authenticator::new(None, "login");
    let root = auth.lookup("root").unwrap().expect("root exists");
    assert_eq!(root.uid, 0);
    assert!(auth.lookup("no-such-user-classicd").unwrap().is_none());
    assert!(auth.lookup("../etc").unwrap().is_none());
}

/// A scripted person at a terminal: answers prompts in order, keeps what
/// it was shown.
struct Script {
    answers: std::collections::VecDeque<(String, bool, String)>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl auth::Converse for Script {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("prompt {echo} {text}"));
        let (want, want_echo, answer) = self.answers.pop_front()?;
        assert!(text.contains(&want), "asked {text:?}, expected {want:?}");
        assert_eq!(echo, want_echo, "{text}");
        Some(answer)
    }

    fn show(&mut self, text: &str, error: bool) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("show {error} {text}"));
    }
}

#[test]
fn pam_conversation_with_an_expired_password() {
    if !as_root() {
        eprintln!("skipped: needs root to create a system account");
        return;
    }
    const USER2: &str = "classicdtest2";
    const NEW: &str = "N3w-Battery-staple";
    ensure_account();
    if auth::system_account(USER2).is_none() {
        assert!(Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", "-U", USER2])
            .status()
            .unwrap()
            .success());
    }
    let set = |pw: &str| {
        let mut p = Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(p.stdin.take().unwrap(), "{USER2}:{pw}").unwrap();
        assert!(p.wait().unwrap().success());
    };
    set(PASSWORD);
    let auth = Authenticator::new(None, SERVICE);
    // The name asked for, the password hidden.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = Script {
        answers: [
            ("login", true, USER2.to_string()),
            ("assword", false, PASSWORD.to_string()),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b, c))
        .collect(),
        seen: seen.clone(),
    };
    let login = auth
        .converse(None, "127.0.0.1", Box::new(script))
        .expect("the conversation logs in");
    assert_eq!(login.account.name, USER2);
    drop(login);
    // Expired: the stack says so and asks for a new password, which then
    // works.
    assert!(Command::new("chage")
        .args(["-d", "0", USER2])
        .status()
        .unwrap()
        .success());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = Script {
        answers: [
            ("assword", false, PASSWORD.to_string()),
            ("urrent", false, PASSWORD.to_string()),
            ("ew", false, NEW.to_string()),
            ("ew", false, NEW.to_string()),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b, c))
        .collect(),
        seen: seen.clone(),
    };
    let login = auth.converse(Some(USER2), "127.0.0.1", Box::new(script));
    let shown = seen.lock().unwrap().join("\n");
    let login = login.unwrap_or_else(|e| panic!("{e:?}\n{shown}"));
    assert!(
        shown.to_lowercase().contains("expired") || shown.contains("change"),
        "{shown}"
    );
    drop(login);
    assert!(auth.authenticate(USER2, NEW, "127.0.0.1").is_ok());
    set(PASSWORD);
}
