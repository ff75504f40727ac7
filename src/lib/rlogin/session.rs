//! The rlogind glue, in the two processes of the privilege split:
//!
//! - pre-login (unprivileged, confined): the handshake (bounded fields, 30
//!   seconds), the trust question (answered by the monitor), the one-byte
//!   answer and the window request; without trust the builtin login
//!   (prompts relayed from the monitor's conversation, echoed and edited
//!   here); then the account's session;
//! - the account's process: `terminal::run`, the shell on a pty and the
//!   relay.

use std::io::Read;
use std::net::TcpStream;

use super::command::{self, Bad, NAME_MAX, TERM_MAX};
use super::config::{Config, Login};
use super::login::{crlf, Edit, LineEditor};
use crate::auth::{printable, HostTrust, RESERVED_PORTS};
use crate::net::field::{close_gently, read_field, Field};
use crate::net::Conn;
use crate::pty::WindowSize;
use crate::rsh::session::handshake_deadline;
use crate::runtime::config::Settings;
use crate::runtime::session::{ipc, LoggedIn, PreLogin, TcpProtocol, Verdict};

/// rlogind in the privilege split.
pub struct Rlogin;

pub static RLOGIN: Rlogin = Rlogin;

/// Most typed-ahead bytes carried to the shell.
pub const TYPEAHEAD_MAX: usize = 4096;

/// What the handshake said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub ruser: String,
    pub luser: String,
    pub term: String,
    pub speed: Option<u32>,
}

/// BSD rlogind's error answer: 0x01, then the message.
fn fatal(conn: &mut Conn, message: &str) {
    let _ = conn.send(format!("\x01rlogind: {message}.\r\n").as_bytes());
    if let Some(t) = conn.tcp() {
        close_gently(t);
    }
}

/// Read and check the four fields; Err: what to tell the client.
fn read_handshake(tcp: &TcpStream, settings: &Settings) -> Result<Handshake, String> {
    let deadline = handshake_deadline(settings);
    let field = |max: usize, what: &str| match read_field(tcp, max, deadline) {
        Ok(Field::Complete(f)) => Ok(f),
        Ok(Field::TooLong) => Err(format!("{what} too long")),
        Ok(Field::TimedOut) => Err("handshake timed out".to_string()),
        Ok(Field::Eof) | Err(_) => Err(String::new()),
    };
    // The leading NUL: an empty field.
    match read_field(tcp, 0, deadline) {
        Ok(Field::Complete(_)) => {}
        Ok(Field::TooLong) => return Err("protocol error".into()),
        Ok(Field::TimedOut) => return Err("handshake timed out".into()),
        Ok(Field::Eof) | Err(_) => return Err(String::new()),
    }
    let name = |f: Vec<u8>, what: &str| match command::parse_name(&f) {
        Ok(n) => Ok(n),
        Err(Bad::TooLong) => Err(format!("{what} too long")),
        Err(_) => Err("Permission denied".to_string()),
    };
    let ruser = name(field(NAME_MAX, "remote user name")?, "remote user name")?;
    let luser = name(field(NAME_MAX, "local user name")?, "local user name")?;
    let (term, speed) = command::parse_terminal(&field(TERM_MAX, "terminal type")?);
    Ok(Handshake {
        ruser,
        luser,
        term,
        speed,
    })
}

impl TcpProtocol for Rlogin {
    fn prelogin(&self, mut s: PreLogin) {
        let cfg = s.settings.daemon::<Config>().clone();
        let peer = s.conn.peer;
        if cfg.trust.require_privileged_port && !RESERVED_PORTS.contains(&peer.port()) {
            log::warn!("{peer}: refused: source port is not reserved (512-1023)");
            fatal(&mut s.conn, "Permission denied");
            return;
        }
        let Some(tcp) = s.conn.tcp().and_then(|t| t.try_clone().ok()) else {
            return;
        };
        let h = match read_handshake(&tcp, &s.settings) {
            Ok(h) => h,
            Err(why) if why.is_empty() => {
                log::info!("{peer}: the client closed during the handshake");
                return;
            }
            Err(why) => {
                log::warn!("{peer}: refused: {why}");
                fatal(&mut s.conn, &why);
                return;
            }
        };
        let trusted = matches!(s.monitor.trust(&h.ruser, &h.luser), Verdict::Granted(_));
        let host = s
            .monitor
            .peer_name()
            .unwrap_or_else(|_| peer.ip().to_string());
        // The one-byte answer, then the window request, as 4.3BSD's
        // rlogind sends them before any prompt.
        if s.conn.send(b"\0").is_err() || send_urgent(&tcp, super::filter::WINDOW_REQUEST).is_err()
        {
            return;
        }
        let mut input = ClientInput::default();
        let mut luser = h.luser.clone();
        if !trusted {
            match &cfg.login {
                Login::Builtin => match builtin_login(&mut s, &cfg, &h, &mut input) {
                    Some(name) => luser = name,
                    None => return,
                },
                Login::Program(_) => {}
            }
        }
        if let Login::Program(_) = &cfg.login {
            // The login program does the rest, on a terminal the monitor
            // starts as root; this process only relays.
            log::info!(
                "{}@{host} as {}: {} login through the login program, terminal {}",
                h.ruser,
                h.luser,
                if trusted { "trusted" } else { "password" },
                h.term
            );
            let w = input.window.unwrap_or(WindowSize::new(24, 80));
            match s.monitor.terminal(&h.luser, &h.term, w.rows, w.cols) {
                Ok(master) => {
                    let _ = crate::pty::set_window_size(std::os::fd::AsFd::as_fd(&master), w);
                    super::terminal::relay_program(
                        tcp,
                        master,
                        input.window.is_none(),
                        &input.data,
                    );
                }
                Err(e) => {
                    log::error!("{peer}: cannot start the login program: {e}");
                    let _ = s.conn.send(b"rlogind: cannot start the login program.\r\n");
                }
            }
            return;
        }
        log::info!(
            "{}@{host} as {luser}: {} login, terminal {}",
            h.ruser,
            if trusted { "trusted" } else { "password" },
            h.term
        );
        let handover = Handover {
            ruser: h.ruser,
            luser,
            host,
            term: h.term,
            speed: h.speed.unwrap_or(0),
            window: input.window,
            typeahead: input.data,
        };
        let e = s.monitor.start_session(&mut s.conn, &handover.encode());
        log::error!("{peer}: cannot start the session: {e}");
        let _ = s.conn.send(b"rlogind: cannot start the session.\r\n");
    }

    fn session(&self, s: LoggedIn) {
        let Some(h) = Handover::decode(&s.handover) else {
            log::error!("user {}: bad hand-over", s.account.name);
            return;
        };
        super::terminal::run(s, h);
    }

    fn trust(&self, settings: &Settings) -> Option<HostTrust> {
        Some(settings.daemon::<Config>().trust.clone())
    }

    fn login_program(
        &self,
        settings: &Settings,
        user: &str,
        term: &str,
        host: &str,
        trusted: bool,
    ) -> Option<crate::pty::Program> {
        match &settings.daemon::<Config>().login {
            Login::Program(words) => Some(login_program(words, user, term, host, trusted)),
            Login::Builtin => None,
        }
    }

    fn byte_stream(&self) -> bool {
        true
    }
}

/// The login program's argv from the `login` key's words: `%h` the
/// client's host (the monitor's name for it), `%u` the user; the user
/// goes last when the words do not place it, after `-f` when trusted
/// (login(1) then asks no password) or after `--` otherwise, so that it
/// can never be read as an option. The environment is TERM alone.
pub fn login_program(
    words: &[String],
    user: &str,
    term: &str,
    host: &str,
    trusted: bool,
) -> crate::pty::Program {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let mut argv: Vec<CString> = Vec::new();
    let mut placed_user = false;
    for (i, w) in words.iter().enumerate() {
        let w = if i == 0 {
            std::path::Path::new(w)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| w.clone())
        } else {
            w.clone()
        };
        placed_user |= w.contains("%u");
        argv.push(c(&w.replace("%h", host).replace("%u", user)));
    }
    if !placed_user {
        argv.push(c(if trusted { "-f" } else { "--" }));
        argv.push(c(user));
    }
    crate::pty::Program {
        path: c(&words[0]),
        argv,
        env: vec![c(&format!("TERM={term}"))],
        dir: Some(std::path::PathBuf::from("/")),
    }
}

/// One byte as TCP urgent data (MSG_OOB).
pub fn send_urgent(tcp: &TcpStream, byte: u8) -> std::io::Result<()> {
    socket2::SockRef::from(tcp)
        .send_out_of_band(&[byte])
        .map(|_| ())
}

/// Client input read during the login: the data (window-size escapes taken
/// out), the last window size, and an escape cut by the read's end.
#[derive(Default)]
pub struct ClientInput {
    pub data: Vec<u8>,
    pub window: Option<WindowSize>,
    raw: Vec<u8>,
    /// The last answer ended with CR: a LF or NUL right after is its end.
    after_cr: bool,
}

impl ClientInput {
    /// Take newly read bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        let mut windows = Vec::new();
        let n = command::split_input(&self.raw, &mut self.data, &mut windows);
        self.raw.drain(..n);
        if let Some(w) = windows.pop() {
            self.window = Some(w);
        }
    }

    /// The next typed byte, if any.
    pub fn next_byte(&mut self) -> Option<u8> {
        loop {
            if self.data.is_empty() {
                return None;
            }
            let b = self.data.remove(0);
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            if LineEditor::swallows(after_cr, b) {
                continue;
            }
            return Some(b);
        }
    }
}

/// The person at the client's terminal, for the monitor's conversation.
struct Terminal<'a> {
    conn: &'a mut Conn,
    input: &'a mut ClientInput,
    /// The person gave up (^C) or left.
    gone: bool,
}

impl crate::auth::Converse for Terminal<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String> {
        if self.gone || self.conn.send(&crlf(text)).is_err() {
            return None;
        }
        let mut editor = LineEditor::new(echo);
        let mut buf = [0u8; 512];
        loop {
            while let Some(b) = self.input.next_byte() {
                match editor.feed(b) {
                    Edit::Nothing => {}
                    Edit::Echo(e) => {
                        let _ = self.conn.send(&e);
                    }
                    Edit::Done(line, e) => {
                        self.input.after_cr = b == b'\r';
                        let _ = self.conn.send(&e);
                        return Some(line);
                    }
                    Edit::Abandon => {
                        self.gone = true;
                        let _ = self.conn.send(b"\r\n");
                        return None;
                    }
                }
            }
            if self.input.data.len() + self.input.raw.len() > TYPEAHEAD_MAX {
                self.gone = true;
                return None;
            }
            // Raw reads keep the login deadline.
            match self.conn.read(&mut buf) {
                Ok(0) | Err(_) => {
                    self.gone = true;
                    return None;
                }
                Ok(n) => self.input.push(&buf[..n]),
            }
        }
    }

    fn show(&mut self, text: &str, _error: bool) {
        let mut t = crlf(text);
        if !t.ends_with(b"\n") {
            t.extend_from_slice(b"\r\n");
        }
        let _ = self.conn.send(&t);
    }
}

/// The builtin login: the issue file, then the monitor's conversation
/// (the password for the name the handshake gave; after a failure, the
/// name is asked for again, as login(1) does), at most `login_attempts`
/// times. The account granted, or None.
fn builtin_login(
    s: &mut PreLogin,
    cfg: &Config,
    h: &Handshake,
    input: &mut ClientInput,
) -> Option<String> {
    if let Some(issue) = &cfg.issue {
        let _ = s.conn.send(&crlf(&String::from_utf8_lossy(issue)));
    }
    let attempts = s.settings.common().login_attempts.max(1);
    let mut user = Some(h.luser.clone());
    for _ in 0..attempts {
        let mut t = Terminal {
            conn: &mut s.conn,
            input,
            gone: false,
        };
        match s.monitor.converse(user.as_deref(), &mut t) {
            Verdict::Granted(name) => return Some(name),
            Verdict::Denied if t.gone => return None,
            Verdict::Denied => {
                let _ = t.conn.send(b"Login incorrect\r\n");
                user = None;
            }
            Verdict::Unavailable => {
                let _ = t
                    .conn
                    .send(b"rlogind: logins are unavailable; try again later.\r\n");
                return None;
            }
        }
    }
    log::warn!(
        "{}: {} failed logins for {}",
        s.conn.peer,
        attempts,
        printable(&h.luser)
    );
    None
}

/// What crosses to the account's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    pub ruser: String,
    pub luser: String,
    pub host: String,
    pub term: String,
    /// 0: none given.
    pub speed: u32,
    /// The window size the client sent during the login, if it did.
    pub window: Option<WindowSize>,
    pub typeahead: Vec<u8>,
}

impl Handover {
    pub fn encode(&self) -> Vec<u8> {
        let w = self.window.unwrap_or_default();
        let mut typeahead = self.typeahead.clone();
        typeahead.truncate(TYPEAHEAD_MAX);
        ipc::Writer::new(1)
            .str(&self.ruser)
            .str(&self.luser)
            .str(&self.host)
            .str(&self.term)
            .u32(self.speed)
            .u8(u8::from(self.window.is_some()))
            .u16(w.rows)
            .u16(w.cols)
            .u16(w.xpixel)
            .u16(w.ypixel)
            .bytes(&typeahead)
            .finish()
    }

    pub fn decode(b: &[u8]) -> Option<Handover> {
        let (tag, mut r) = ipc::Reader::new(b).ok()?;
        let ruser = r.str(NAME_MAX).ok()?.to_string();
        let luser = r.str(ipc::MAX_CREDENTIAL).ok()?.to_string();
        let host = r.str(ipc::MAX_CREDENTIAL).ok()?.to_string();
        let term = r.str(TERM_MAX).ok()?.to_string();
        let speed = r.u32().ok()?;
        let has_window = r.bool().ok()?;
        let w = WindowSize {
            rows: r.u16().ok()?,
            cols: r.u16().ok()?,
            xpixel: r.u16().ok()?,
            ypixel: r.u16().ok()?,
        };
        let typeahead = r.bytes(TYPEAHEAD_MAX).ok()?.to_vec();
        r.end().ok()?;
        (tag == 1).then_some(Handover {
            ruser,
            luser,
            host,
            term,
            speed,
            window: has_window.then_some(w),
            typeahead,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_round_trip() {
        let h = Handover {
            ruser: "bob".into(),
            luser: "alice".into(),
            host: "client.example".into(),
            term: "xterm".into(),
            speed: 38400,
            window: Some(WindowSize::new(50, 132)),
            typeahead: b"ls\r".to_vec(),
        };
        assert_eq!(Handover::decode(&h.encode()), Some(h.clone()));
        let h2 = Handover { window: None, ..h };
        assert_eq!(Handover::decode(&h2.encode()), Some(h2));
        assert_eq!(Handover::decode(b"\x01"), None);
    }

    #[test]
    fn login_program_argv() {
        let words: Vec<String> = ["/bin/login", "-p", "-h", "%h"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let text = |p: &crate::pty::Program| -> Vec<String> {
            p.argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let p = login_program(&words, "alice", "xterm", "client.example", true);
        assert_eq!(p.path.to_str().unwrap(), "/bin/login");
        assert_eq!(
            text(&p),
            ["login", "-p", "-h", "client.example", "-f", "alice"]
        );
        assert_eq!(p.env.len(), 1);
        let p = login_program(&words, "alice", "xterm", "192.0.2.7", false);
        assert_eq!(text(&p), ["login", "-p", "-h", "192.0.2.7", "--", "alice"]);
        let words: Vec<String> = ["/usr/sbin/mylogin", "%u@%h"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = login_program(&words, "bob", "vt100", "h", true);
        assert_eq!(text(&p), ["mylogin", "bob@h"]);
    }

    #[test]
    fn client_input_during_login() {
        let mut i = ClientInput::default();
        let mut e = vec![0xff, 0xff, b's', b's', 0, 40, 0, 100, 0, 0];
        i.push(b"pw");
        i.push(&e[..6]);
        assert_eq!(i.window, None);
        e.extend([0, 0]);
        i.push(&e[6..]);
        assert_eq!(i.window, Some(WindowSize::new(40, 100)));
        i.push(b"\r\nls\r");
        let mut got = Vec::new();
        while let Some(b) = i.next_byte() {
            got.push(b);
            if b == b'\r' {
                i.after_cr = true;
            }
        }
        assert_eq!(got, b"pw\rls\r");
    }
}
