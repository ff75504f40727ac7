//! The privilege split end to end, in processes of its own: a test service
//! on a loopback connection, its pre-login process talking to the monitor.
//! The split forks, so each test runs alone (`test_alone`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use super::*;
use crate::auth::Converse;
use crate::net::Line;
use crate::runtime::invocation::load_options;
use crate::runtime::{Handler, Service};

/// A line-at-a-time terminal over the connection.
struct LineTerminal<'a> {
    conn: &'a mut crate::net::Conn,
}

impl Converse for LineTerminal<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String> {
        let tag = if echo { "ASK" } else { "SECRET" };
        self.conn.send(format!("{tag} {text}\n").as_bytes()).ok()?;
        match self.conn.read_line(256).ok()? {
            Line::Complete(l, _) => String::from_utf8(l).ok(),
            _ => None,
        }
    }

    fn show(&mut self, text: &str, _error: bool) {
        let _ = self.conn.send(format!("SAY {text}\n").as_bytes());
    }
}

/// Logs in through the conversation and says how it went; the account's
/// process says who it runs as.
struct Terminal;

impl TcpProtocol for Terminal {
    fn prelogin(&self, mut s: PreLogin) {
        let verdict = s
            .monitor
            .converse(None, &mut LineTerminal { conn: &mut s.conn });
        match verdict {
            Verdict::Granted(user) => {
                let _ = s.conn.send(format!("GRANTED {user}\n").as_bytes());
                let e = s.monitor.start_session(&mut s.conn, b"");
                let _ = s.conn.send(format!("FAILED {e}\n").as_bytes());
            }
            v => {
                let _ = s.conn.send(format!("VERDICT {v:?}\n").as_bytes());
            }
        }
    }

    fn session(&self, mut s: LoggedIn) {
        let uid = nix::unistd::getuid();
        let _ = s
            .conn
            .send(format!("SESSION {} {uid}\n", s.account.name).as_bytes());
    }
}

static TERMINAL: Terminal = Terminal;

static SERVICE: Service = Service {
    name: "testd",
    port: 1,
    pam_service: "login",
    log_facility: "daemon",
    idle_timeout: 60,
    keys: &[],
    extra_listeners: &[],
    line_max: 256,
    busy_reply: b"busy\r\n",
    handler: Handler::Split(&TERMINAL),
    config: crate::runtime::config::no_daemon_config,
    extra_modes: &[],
    companion: None,
    max_use: 1,
};

/// Serve one connection through the split in a child process; the test
/// plays the client on the other end.
fn serve_one(passwd: &std::path::Path, client: impl FnOnce(TcpStream)) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = load_options(&SERVICE, &[&format!("passwd_file={}", passwd.display())]).unwrap();
    let ctx = Context {
        settings: Arc::new(settings),
        tls: None,
        hostname: "test".into(),
        inetd: true,
        debug: false,
        line_max: 256,
        extra_listeners: &[],
        nopriv: None,
    };
    let server = crate::runtime::supervise::spawn(
        crate::runtime::supervise::Kind::Session,
        &[listener.as_raw_fd()],
        move || {
            let (tcp, _) = listener.accept().unwrap();
            serve(&TERMINAL, tcp, ListenKind::Plain, &ctx)
        },
    )
    .unwrap();
    client(TcpStream::connect(addr).unwrap());
    let status = nix::sys::wait::waitpid(server, None).unwrap();
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(server, 0));
}

fn passwd_file(dir: &std::path::Path) -> std::path::PathBuf {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let hash = crate::sys::crypt_hash("wonder", "$6$saltsalt$").unwrap();
    let path = dir.join("passwd");
    std::fs::write(
        &path,
        format!("alice:{hash}:{uid}:{gid}:Alice:{}:/bin/sh\n", dir.display()),
    )
    .unwrap();
    path
}

fn expect(r: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with(prefix), "expected {prefix}, got {line:?}");
    line.trim_end().to_string()
}

use std::os::fd::AsRawFd;

#[test]
fn a_terminal_login_is_a_conversation_relayed_by_the_monitor() {
    if !crate::test_alone::in_child(
        "runtime::session::tests::a_terminal_login_is_a_conversation_relayed_by_the_monitor",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("classicd-converse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let passwd = passwd_file(&dir);
    // The name, then the password with echo off; then the account's
    // process takes over the same connection.
    serve_one(&passwd, |tcp| {
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let mut w = tcp;
        assert_eq!(expect(&mut r, "ASK"), "ASK login:");
        w.write_all(b"alice\n").unwrap();
        assert_eq!(expect(&mut r, "SECRET"), "SECRET Password:");
        w.write_all(b"wonder\n").unwrap();
        assert_eq!(expect(&mut r, "GRANTED"), "GRANTED alice");
        expect(&mut r, "SESSION alice");
    });
    // A wrong password is denied (after the usual delay).
    serve_one(&passwd, |tcp| {
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        let mut w = tcp;
        expect(&mut r, "ASK");
        w.write_all(b"alice\n").unwrap();
        expect(&mut r, "SECRET");
        w.write_all(b"wrong\n").unwrap();
        assert_eq!(expect(&mut r, "VERDICT"), "VERDICT Denied");
    });
    // A person who goes away in the middle gets nothing.
    serve_one(&passwd, |tcp| {
        let mut r = BufReader::new(tcp.try_clone().unwrap());
        expect(&mut r, "ASK");
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = String::new();
        let _ = r.read_line(&mut rest);
        assert!(!rest.starts_with("GRANTED"), "{rest}");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
