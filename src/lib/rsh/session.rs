//! The rshd glue, in the two processes of the privilege split:
//!
//! - pre-login (unprivileged, confined): the handshake fields (read with
//!   `net::field`, never a byte past the command, which is the command's
//!   input), the stderr connection (made by the monitor from a reserved
//!   port to the client's own address), the trust question (answered by
//!   the monitor), then the account's session with both connections;
//! - the account's process: `exec::run`, the command and its stderr.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::state::{Action, Answer, Input, Machine, Request};
use super::Config;
use crate::auth::{printable, HostTrust};
use crate::net::field::{close_gently, read_field, Field};
use crate::runtime::config::Settings;
use crate::runtime::session::{ipc, LoggedIn, PreLogin, TcpProtocol, Verdict};

/// How long a client has for the whole handshake (BSD rlogind's 30 s),
/// or less when `login_timeout` says so.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// rshd in the privilege split.
pub struct Rsh;

pub static RSH: Rsh = Rsh;

/// The handshake's deadline.
pub fn handshake_deadline(settings: &Settings) -> Instant {
    let login = settings.common().login_timeout;
    let t = if login.is_zero() {
        HANDSHAKE_TIMEOUT
    } else {
        login.min(HANDSHAKE_TIMEOUT)
    };
    Instant::now() + t
}

impl TcpProtocol for Rsh {
    fn prelogin(&self, mut s: PreLogin) {
        let cfg = s.settings.daemon::<Config>();
        let peer = s.conn.peer;
        let deadline = handshake_deadline(&s.settings);
        let mut m = Machine::new(cfg.trust.require_privileged_port);
        let mut stderr = None;
        let mut action = m.start(peer.port());
        loop {
            action = match action {
                Action::ReadField { max } => {
                    let input = match s.conn.tcp().map(|t| read_field(t, max, deadline)) {
                        Some(Ok(Field::Complete(f))) => Input::Field(f),
                        Some(Ok(Field::TooLong)) => Input::TooLong,
                        Some(Ok(Field::TimedOut)) => Input::TimedOut,
                        Some(Ok(Field::Eof)) | Some(Err(_)) | None => Input::Eof,
                    };
                    m.handle(input)
                }
                Action::ConnectBack(port) => match s.monitor.reserved_port(port) {
                    Ok(sock) => {
                        stderr = Some(sock);
                        m.handle(Input::BackConnected(true))
                    }
                    Err(e) => {
                        log::warn!("{peer}: stderr connection to port {port}: {e}");
                        m.handle(Input::BackConnected(false))
                    }
                },
                Action::AskTrust { ruser, luser } => {
                    let answer = match s.monitor.trust(&ruser, &luser) {
                        Verdict::Granted(_) => Answer::Granted,
                        Verdict::Denied => Answer::Denied,
                        Verdict::Unavailable => Answer::Unavailable,
                    };
                    m.handle(Input::Trust(answer))
                }
                Action::Start(req) => {
                    let host = s
                        .monitor
                        .peer_name()
                        .unwrap_or_else(|_| peer.ip().to_string());
                    log::info!(
                        "{}@{host} as {}: {}",
                        req.ruser,
                        req.luser,
                        printable(&String::from_utf8_lossy(&req.command))
                    );
                    let handover = Handover { req, host }.encode();
                    let fds: Vec<_> = stderr.iter().map(|t| t.as_fd()).collect();
                    let e = s
                        .monitor
                        .start_session_passing(&mut s.conn, &handover, &fds);
                    log::error!("{peer}: cannot start the session: {e}");
                    let _ = s.conn.send(b"\x01rshd: cannot start the session.\n");
                    return;
                }
                Action::Refuse { message, log } => {
                    log::warn!("{peer}: refused: {log}");
                    let _ = s.conn.send(&message);
                    if let Some(t) = s.conn.tcp() {
                        close_gently(t);
                    }
                    return;
                }
                Action::Close { log } => {
                    log::info!("{peer}: {log}");
                    return;
                }
            };
        }
    }

    fn session(&self, s: LoggedIn) {
        let Some(h) = Handover::decode(&s.handover) else {
            log::error!("user {}: bad hand-over", s.account.name);
            return;
        };
        super::exec::run(s, h);
    }

    fn trust(&self, settings: &Settings) -> Option<HostTrust> {
        Some(settings.daemon::<Config>().trust.clone())
    }

    fn reserved_ports(
        &self,
        _local: std::net::SocketAddr,
    ) -> Option<std::ops::RangeInclusive<u16>> {
        Some(crate::auth::RESERVED_PORTS)
    }

    fn byte_stream(&self) -> bool {
        true
    }
}

/// What crosses to the account's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handover {
    pub req: Request,
    /// The client's confirmed name (or address), for the log.
    pub host: String,
}

impl Handover {
    pub fn encode(&self) -> Vec<u8> {
        ipc::Writer::new(1)
            .u16(self.req.stderr_port.unwrap_or(0))
            .str(&self.req.ruser)
            .str(&self.req.luser)
            .bytes(&self.req.command)
            .str(&self.host)
            .finish()
    }

    pub fn decode(b: &[u8]) -> Option<Handover> {
        let (tag, mut r) = ipc::Reader::new(b).ok()?;
        let port = r.u16().ok()?;
        let ruser = r.str(super::command::NAME_MAX).ok()?.to_string();
        let luser = r.str(super::command::NAME_MAX).ok()?.to_string();
        let command = r.bytes(super::command::COMMAND_MAX).ok()?.to_vec();
        let host = r.str(ipc::MAX_CREDENTIAL).ok()?.to_string();
        r.end().ok()?;
        (tag == 1).then_some(Handover {
            req: Request {
                stderr_port: (port != 0).then_some(port),
                ruser,
                luser,
                command,
            },
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_round_trip() {
        let h = Handover {
            req: Request {
                stderr_port: Some(1022),
                ruser: "bob".into(),
                luser: "alice".into(),
                command: b"echo \xff".to_vec(),
            },
            host: "client.example".into(),
        };
        assert_eq!(Handover::decode(&h.encode()), Some(h.clone()));
        let mut bad = h.encode();
        bad.push(0);
        assert_eq!(Handover::decode(&bad), None);
        assert_eq!(Handover::decode(&[]), None);
    }
}
