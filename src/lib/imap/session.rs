//! The imapd glue, in the two processes of the privilege split:
//!
//! - pre-login (unprivileged, confined): greeting, CAPABILITY, STARTTLS,
//!   LOGIN and AUTHENTICATE; credentials go to the monitor, and a granted
//!   login starts the account's session with the connection and the tag
//!   of the login command;
//! - the account's process: opens the account's folders as the account
//!   and answers the login, then the authenticated and selected states.
//!
//! Both run on the shared line driver (`net::dialogue`); a command with
//! literals is gathered by `reader::Assembler` within one `line` call.

use std::io::{self, Read};
use std::time::Duration;

use super::command::Command;
use super::idle::{self, Wake};
use super::mailbox::{Mailboxes, Sink};
use super::reader::{Assembler, Step};
use super::state::{Action, Config, Machine};
use crate::auth;
use crate::mail::store::Tree;

/// The mbox folders other than INBOX: this directory in the home.
const MBOX_FOLDERS: &str = "mail";
use crate::mail::Mailbox;
use crate::net::dialogue::{self, Dialogue, Flow, LineProtocol, Silence};
use crate::net::{Ending, Line};
use crate::runtime::config::Settings;
use crate::runtime::session::{ipc, LoggedIn, Monitor, PreLogin, TcpProtocol, Verdict};
use crate::runtime::ListenKind;

/// imapd in the privilege split.
pub struct Imap;

pub static IMAP: Imap = Imap;

fn config(s: &Settings, tls_available: bool, tls_active: bool, local: bool) -> Config {
    Config {
        tls_available,
        tls_active,
        local,
        login_attempts: s.common().login_attempts,
        append_limit: s.daemon::<super::Config>().max_message_size,
    }
}

fn message_max(s: &Settings) -> usize {
    s.daemon::<super::Config>().max_message_size as usize
}

impl TcpProtocol for Imap {
    fn prelogin(&self, s: PreLogin) {
        let local = s.conn.peer.ip().is_loopback();
        let cfg = config(
            &s.settings,
            s.tls.is_some(),
            s.kind == ListenKind::Tls,
            local,
        );
        let banner = s.banner("imapd");
        let m = Machine::new(cfg);
        let mut d = Dialogue::new(s.conn, s.tls, super::reader::LINE_MAX);
        d.reply(&m.greeting(&banner));
        let mut p = NotAuthenticated {
            d,
            m,
            monitor: s.monitor,
            message_max: message_max(&s.settings),
        };
        dialogue::run(&mut p);
    }

    fn session(&self, s: LoggedIn) {
        let Some(h) = Handover::decode(&s.handover) else {
            log::error!("user {}: bad hand-over", s.account.name);
            return;
        };
        let local = s.conn.peer.ip().is_loopback();
        let cfg = config(&s.settings, s.tls.is_some(), h.tls_active, local);
        let location = &s.settings.daemon::<super::Config>().mail_location;
        let mut d = Dialogue::new(s.conn, None, super::reader::LINE_MAX);
        let m = Machine::logged_in(cfg);
        let tree = match location.mailbox_for(&s.account) {
            Ok(Mailbox::Maildir(p)) => Tree::new(&p),
            // mbox: the other folders in ~/mail, as UW IMAP and Dovecot.
            Ok(Mailbox::Mbox(p)) if s.account.home.is_absolute() => {
                Tree::new_mbox(&p, &s.account.home.join(MBOX_FOLDERS))
            }
            Ok(Mailbox::Mbox(_)) => {
                log::error!("user {}: no home for the mbox folders", s.account.name);
                d.reply(
                    format!("{} NO [UNAVAILABLE] Cannot open the mailbox\r\n", h.tag).as_bytes(),
                );
                let _ = d.flush();
                return;
            }
            Err(e) => {
                log::error!("user {}: {e}", s.account.name);
                d.reply(
                    format!("{} NO [UNAVAILABLE] Cannot open the mailbox\r\n", h.tag).as_bytes(),
                );
                let _ = d.flush();
                return;
            }
        };
        if let Err(e) = tree.prepare() {
            log::error!("user {}: {}: {e}", s.account.name, tree.root().display());
            d.reply(format!("{} NO [UNAVAILABLE] Cannot open the mailbox\r\n", h.tag).as_bytes());
            let _ = d.flush();
            return;
        }
        log::info!(
            "user {}: logged in, folders in {}",
            s.account.name,
            tree.root().display()
        );
        d.reply(
            format!(
                "{} OK [CAPABILITY {}] Logged in\r\n",
                h.tag,
                m.capabilities()
            )
            .as_bytes(),
        );
        let idle_limit = s.settings.common().idle_timeout;
        let mut p = Authenticated {
            d,
            m,
            boxes: Mailboxes {
                tree,
                selected: None,
                append_limit: s.settings.daemon::<super::Config>().max_message_size,
                user: s.account.name.clone(),
            },
            message_max: message_max(&s.settings),
            idle_limit: if idle_limit.is_zero() {
                Duration::from_secs(1800)
            } else {
                idle_limit
            },
        };
        dialogue::run(&mut p);
        log::info!("user {}: session ended", p.boxes.user);
    }
}

/// What the pre-login side hands to the account's process.
struct Handover {
    tls_active: bool,
    /// The tag of the login command, answered by the account's process.
    tag: String,
}

impl Handover {
    fn encode(&self) -> Vec<u8> {
        ipc::Writer::new(1)
            .u8(u8::from(self.tls_active))
            .str(&self.tag)
            .finish()
    }

    fn decode(b: &[u8]) -> Option<Handover> {
        let (tag, mut r) = ipc::Reader::new(b).ok()?;
        let tls_active = r.bool().ok()?;
        let t = r.str(64).ok()?.to_string();
        r.end().ok()?;
        (tag == 1 && !t.is_empty()).then_some(Handover { tls_active, tag: t })
    }
}

/// What the debug log shows of a client line.
fn masked(line: &[u8], sasl: bool) -> String {
    if sasl {
        return "****".into();
    }
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.splitn(4, ' ').collect();
    match words.as_slice() {
        [tag, cmd, user, _] if cmd.eq_ignore_ascii_case("LOGIN") => {
            format!(
                "{} LOGIN {} ****",
                auth::printable(tag),
                auth::printable(user)
            )
        }
        [tag, cmd, mech, _] if cmd.eq_ignore_ascii_case("AUTHENTICATE") => {
            format!(
                "{} AUTHENTICATE {} ****",
                auth::printable(tag),
                auth::printable(mech)
            )
        }
        [tag, cmd, _] if cmd.eq_ignore_ascii_case("LOGIN") => {
            format!("{} LOGIN ****", auth::printable(tag))
        }
        _ => auth::printable(&text.chars().take(200).collect::<String>()),
    }
}

/// A command, gathered.
enum Gathered {
    Command(Vec<u8>),
    /// Refused before it was whole (the reply is queued).
    Refused,
    Close,
}

/// Read the rest of a command that began with `first`: its literals and
/// the lines after them.
fn gather(d: &mut Dialogue, first: &[u8], message_max: usize) -> Gathered {
    let mut a = Assembler::new(message_max);
    let mut step = a.line(first);
    loop {
        match step {
            Step::Done(c) => return Gathered::Command(c),
            Step::Refuse(r) => {
                d.reply(&r);
                return Gathered::Refused;
            }
            Step::Close(r) => {
                d.reply(&r);
                return Gathered::Close;
            }
            Step::Literal { size, sync } => {
                if sync {
                    d.reply(b"+ Ready for literal data\r\n");
                    if d.flush().is_err() {
                        return Gathered::Close;
                    }
                }
                let mut buf = vec![0u8; size];
                if d.conn.read_exact(&mut buf).is_err() {
                    return Gathered::Close;
                }
                a.literal(&buf);
                drop(buf);
                step = match d.read_line() {
                    Ok(Line::Complete(l, _)) => a.line(&l),
                    Ok(Line::TooLong) => {
                        d.reply(b"* BAD Line too long\r\n");
                        return Gathered::Refused;
                    }
                    _ => return Gathered::Close,
                };
            }
        }
    }
}

/// Replies into the dialogue, sent in pieces when they grow large: a
/// small first piece, so that the client starts reading (and parsing: a
/// FETCH of 10,000 envelopes is most of its time in the client) at once,
/// then ever larger ones, for fewer writes.
struct Out<'a> {
    d: &'a mut Dialogue,
    queued: usize,
    flush_at: usize,
}

impl<'a> Out<'a> {
    const FIRST_PIECE: usize = 16 * 1024;
    const LARGEST_PIECE: usize = 256 * 1024;

    fn new(d: &'a mut Dialogue) -> Out<'a> {
        Out {
            d,
            queued: 0,
            flush_at: Self::FIRST_PIECE,
        }
    }
}

impl Sink for Out<'_> {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.d.reply(bytes);
        self.queued += bytes.len();
        if self.queued >= self.flush_at {
            self.queued = 0;
            self.flush_at = (self.flush_at * 2).min(Self::LARGEST_PIECE);
            self.d.flush()?;
        }
        Ok(())
    }
}

/// The not-authenticated state, in the unprivileged pre-login process.
struct NotAuthenticated {
    d: Dialogue,
    m: Machine,
    monitor: Monitor,
    message_max: usize,
}

impl NotAuthenticated {
    fn apply(&mut self, a: Action) -> Flow {
        match a {
            Action::Reply(b) | Action::Continue(b) => {
                self.d.reply(&b);
                Flow::Continue
            }
            Action::Close(b) => {
                self.d.reply(&b);
                Flow::Close
            }
            Action::StartTls(b) => {
                self.d.reply(&b);
                Flow::StartTls
            }
            Action::Login { tag, user, pass } => {
                let next = self.login(&tag, &user, &pass);
                self.apply(next)
            }
            Action::Mailbox(_) => Flow::Close,
        }
    }

    fn login(&mut self, tag: &str, user: &str, pass: &str) -> Action {
        match self.monitor.password(user, pass) {
            Verdict::Denied => self.m.login_failed(tag, false),
            Verdict::Unavailable => self.m.login_failed(tag, true),
            Verdict::Granted(_) => {
                if self.d.flush().is_err() {
                    return Action::Close(Vec::new());
                }
                let h = Handover {
                    tls_active: self.d.conn.is_tls(),
                    tag: tag.to_string(),
                };
                let e = self.monitor.start_session(&mut self.d.conn, &h.encode());
                log::error!("user {user}: cannot start the session: {e}");
                Action::Close(
                    format!("{tag} NO [UNAVAILABLE] Cannot start the session\r\n").into_bytes(),
                )
            }
        }
    }
}

impl LineProtocol for NotAuthenticated {
    fn redact(&self, line: &[u8]) -> String {
        masked(line, self.m.expects_sasl_response())
    }

    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        if self.m.expects_sasl_response() {
            let a = self.m.handle(line);
            return self.apply(a);
        }
        match gather(&mut self.d, line, self.message_max) {
            Gathered::Command(c) => {
                let a = self.m.handle(&c);
                self.apply(a)
            }
            Gathered::Refused => Flow::Continue,
            Gathered::Close => Flow::Close,
        }
    }

    fn too_long(&mut self) -> Flow {
        let a = self.m.too_long();
        self.apply(a)
    }

    fn silent(&mut self, why: Silence) {
        let text = match why {
            Silence::Idle => "* BYE Autologout; idle for too long\r\n",
            Silence::Deadline => "* BYE Login timed out\r\n",
        };
        self.d.reply(text.as_bytes());
    }

    fn tls_started(&mut self) {
        self.m.tls_started();
    }
}

/// The authenticated and selected states, in the account's process.
struct Authenticated {
    d: Dialogue,
    m: Machine,
    boxes: Mailboxes,
    message_max: usize,
    idle_limit: Duration,
}

impl Authenticated {
    fn apply(&mut self, a: Action) -> Flow {
        match a {
            Action::Reply(b) | Action::Continue(b) => {
                self.d.reply(&b);
                Flow::Continue
            }
            Action::Close(b) => {
                self.d.reply(&b);
                Flow::Close
            }
            // No TLS and no second login after login.
            Action::StartTls(_) | Action::Login { .. } => Flow::Close,
            Action::Mailbox(t) if t.command == Command::Idle => self.idle(&t.tag),
            Action::Mailbox(t) => {
                let mut out = Out::new(&mut self.d);
                match self.boxes.execute(t, &mut self.m.enabled, &mut out) {
                    Ok(()) => Flow::Continue,
                    Err(e) => {
                        log::warn!("user {}: {e}", self.boxes.user);
                        self.d.reply(b"* BYE Internal error\r\n");
                        Flow::Close
                    }
                }
            }
        }
    }

    /// IDLE until DONE: changes to the selected folder pushed as they come.
    fn idle(&mut self, tag: &str) -> Flow {
        self.d.reply(b"+ idling\r\n");
        let watch = idle::Watch::new(self.boxes.selected.as_ref().map(|s| &s.folder));
        let started = std::time::Instant::now();
        loop {
            if let Ok(u) = self.boxes.updates(true, self.m.enabled) {
                self.d.reply(&u);
            }
            if self.d.flush().is_err() {
                return Flow::Close;
            }
            let left = self.idle_limit.saturating_sub(started.elapsed());
            let look_again = self
                .boxes
                .selected
                .as_ref()
                .and_then(|s| s.folder.look_again_in());
            let wake = if self.d.has_input() {
                Wake::Client
            } else {
                idle::wait(&self.d.conn.fd(), &watch, left, look_again)
            };
            match wake {
                Wake::Folder => continue,
                Wake::Timeout => {
                    self.d.reply(b"* BYE Autologout; idle for too long\r\n");
                    return Flow::Close;
                }
                Wake::Client => match self.d.read_line() {
                    Ok(Line::Complete(l, _)) if l.eq_ignore_ascii_case(b"DONE") => {
                        self.d
                            .reply(format!("{tag} OK IDLE completed\r\n").as_bytes());
                        return Flow::Continue;
                    }
                    Ok(Line::Complete(_, _)) | Ok(Line::TooLong) => {
                        self.d
                            .reply(format!("{tag} BAD Expected DONE\r\n").as_bytes());
                        return Flow::Continue;
                    }
                    Err(e) if crate::net::is_timeout(&e) => continue,
                    _ => return Flow::Close,
                },
            }
        }
    }
}

impl LineProtocol for Authenticated {
    fn redact(&self, line: &[u8]) -> String {
        masked(line, false)
    }

    fn dialogue(&mut self) -> &mut Dialogue {
        &mut self.d
    }

    fn line(&mut self, line: &[u8], _: Ending) -> Flow {
        match gather(&mut self.d, line, self.message_max) {
            Gathered::Command(c) => {
                let a = self.m.handle(&c);
                self.apply(a)
            }
            Gathered::Refused => Flow::Continue,
            Gathered::Close => Flow::Close,
        }
    }

    fn too_long(&mut self) -> Flow {
        let a = self.m.too_long();
        self.apply(a)
    }

    fn silent(&mut self, _: Silence) {
        log::info!("user {}: autologout, idle for too long", self.boxes.user);
        self.d.reply(b"* BYE Autologout; idle for too long\r\n");
    }

    fn tls_started(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::{masked, Handover};

    #[test]
    fn secrets_are_masked() {
        assert_eq!(masked(b"a LOGIN demo secret", false), "a LOGIN demo ****");
        assert_eq!(masked(b"a login demo {6}", false), "a LOGIN demo ****");
        assert_eq!(
            masked(b"a AUTHENTICATE PLAIN AGRlbW8AZGVtbw==", false),
            "a AUTHENTICATE PLAIN ****"
        );
        assert_eq!(masked(b"AGRlbW8AZGVtbw==", true), "****");
        assert_eq!(masked(b"a SELECT INBOX", false), "a SELECT INBOX");
    }

    #[test]
    fn handover_round_trips_and_refuses_garbage() {
        let h = Handover {
            tls_active: true,
            tag: "a1".into(),
        }
        .encode();
        let d = Handover::decode(&h).unwrap();
        assert!(d.tls_active && d.tag == "a1");
        assert!(Handover::decode(&[1, 2]).is_none());
        assert!(Handover::decode(&[2, 0]).is_none());
    }
}
