//! The monitor's login requests: passwords (directly or as a terminal
//! conversation relayed to the pre-login process), host trust, anonymous
//! logins, and the verdict each ends in, with `login_attempts` and the
//! failure delay enforced here, whatever the unprivileged side says.

use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::MonitorState;
use crate::auth::{self, AuthError, Login};
use crate::runtime::session::ipc::{Channel, Request, Response};
use crate::runtime::session::login_deadline;

impl MonitorState<'_> {
    /// At most `login_attempts` password checks per connection, whatever
    /// the other side says (it may be lying about its count).
    pub(super) fn attempts_left(&self) -> bool {
        self.failures < u64::from(self.ctx.settings.common().login_attempts.max(1))
    }

    pub(super) fn password(&mut self, user: &str, password: &str) -> Response {
        if self.granted.is_some() || !self.attempts_left() {
            std::thread::sleep(auth::FAILURE_DELAY);
            return Response::Denied;
        }
        let peer = self.peer.ip().to_string();
        let started = Instant::now();
        let result = self.auth.authenticate(user, password, &peer);
        self.verdict(result, started)
    }

    /// A login at a terminal: the conversation is relayed on `chan` to the
    /// pre-login process, which shows the prompts and returns the answers.
    pub(super) fn converse(&mut self, user: &str, chan: &Rc<Channel>) -> Response {
        if self.granted.is_some() || !self.attempts_left() {
            std::thread::sleep(auth::FAILURE_DELAY);
            return Response::Denied;
        }
        let peer = self.peer.ip().to_string();
        let started = Instant::now();
        let relay = Box::new(Relayed {
            chan: chan.clone(),
            deadline: login_deadline(&self.ctx.settings, true),
        });
        let user = (!user.is_empty()).then_some(user);
        let result = self.auth.converse(user, &peer, relay);
        self.verdict(result, started)
    }

    /// The client's forward-confirmed name (looked up once), else its
    /// numeric address.
    pub(super) fn peer_name(&mut self) -> String {
        let addr = auth::trust::canonical(self.peer.ip());
        self.peer_name
            .get_or_insert_with(|| auth::confirmed_name(addr))
            .clone()
            .unwrap_or_else(|| addr.to_string())
    }

    /// A login by host trust, decided here as root from what the monitor
    /// knows itself (the peer's address and confirmed name) and the two
    /// names, the .rhosts read as its account. Once per connection; a
    /// refusal is no failed password (none was tried) and takes no delay.
    pub(super) fn trust(&mut self, ruser: &str, luser: &str) -> Response {
        let peer = self.peer;
        let Some(trust) = self.proto.trust(&self.ctx.settings) else {
            return Response::Failed("no host trust for this service".into());
        };
        if self.granted.is_some() || self.trust_asked {
            return Response::Denied;
        }
        self.trust_asked = true;
        // What the kernel says of the peer, whatever the other side does.
        if trust.require_privileged_port && !auth::RESERVED_PORTS.contains(&peer.port()) {
            log::warn!("trust: {peer}: refused, the source port is not reserved (512-1023)");
            return Response::Denied;
        }
        let mode = trust.mode;
        self.peer_name();
        let host = self.peer_name.clone().flatten();
        let started = Instant::now();
        let (result, why) = self
            .auth
            .trusted(luser, ruser, peer.ip(), host.as_deref(), &mode);
        log::debug!("trust decided in {:?}", started.elapsed());
        let (ruser_shown, luser_shown) = (auth::printable(ruser), auth::printable(luser));
        let from = match &host {
            Some(h) => format!("{h} ({})", peer.ip()),
            None => peer.ip().to_string(),
        };
        match result {
            Ok(login) => {
                let account = login.account.clone();
                match self.proto.admit(&self.ctx.settings, &account) {
                    Ok(plan) => {
                        log::info!("trust: {ruser_shown}@{from} as {luser_shown}: {why}");
                        self.proven = Some(account.name.clone());
                        let name = account.name.clone();
                        self.granted = Some((account, plan, Some(login), false));
                        Response::Granted { user: name }
                    }
                    Err(refused) => {
                        log::warn!(
                            "trust: {ruser_shown}@{from} as {luser_shown}: {why}, but refused: {refused}"
                        );
                        Response::Denied
                    }
                }
            }
            Err(AuthError::Denied) => {
                log::warn!("trust: {ruser_shown}@{from} as {luser_shown}: {why}");
                Response::Denied
            }
            Err(AuthError::Unavailable(e)) => {
                log::error!("trust: {ruser_shown}@{from} as {luser_shown}: {e}");
                Response::Unavailable
            }
        }
    }

    /// The answer to a login: admitted by the service, or denied.
    pub(super) fn verdict(
        &mut self,
        result: Result<Login, AuthError>,
        started: Instant,
    ) -> Response {
        let peer = self.peer.ip();
        let login = match result {
            Ok(l) => l,
            Err(AuthError::Denied) => {
                self.failures += 1;
                return Response::Denied;
            }
            Err(AuthError::Unavailable(_)) => return Response::Unavailable,
        };
        let account = login.account.clone();
        match self.proto.admit(&self.ctx.settings, &account) {
            Ok(plan) => {
                self.proven = Some(account.name.clone());
                let name = account.name.clone();
                self.granted = Some((account, plan, Some(login), false));
                Response::Granted { user: name }
            }
            Err(why) => {
                log::warn!("login refused: user {} from {peer}: {why}", account.name);
                self.failures += 1;
                // As slow as a wrong password.
                if let Some(rest) = auth::FAILURE_DELAY.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
                Response::Denied
            }
        }
    }

    pub(super) fn anonymous(&mut self, ident: &str) -> Response {
        if self.granted.is_some() {
            return Response::Denied;
        }
        match self.proto.anonymous(&self.ctx.settings) {
            Some(Ok((account, plan))) => {
                log::info!(
                    "anonymous login from {}, ident {}",
                    self.peer.ip(),
                    auth::printable(ident)
                );
                let name = account.name.clone();
                self.granted = Some((account, plan, None, true));
                Response::Granted { user: name }
            }
            Some(Err(why)) => {
                log::error!("anonymous login: {why}");
                Response::Unavailable
            }
            None => {
                std::thread::sleep(auth::FAILURE_DELAY);
                Response::Denied
            }
        }
    }
}

/// The monitor's side of a login conversation: each prompt goes to the
/// pre-login process, which asks the person; the answer must come before
/// the login deadline.
struct Relayed {
    chan: Rc<Channel>,
    deadline: Option<Instant>,
}

impl auth::Converse for Relayed {
    fn prompt(&mut self, text: &str, echo: bool) -> Option<String> {
        let text = text.to_string();
        self.chan
            .send(&Response::Prompt { text, echo }.encode(), &[])
            .ok()?;
        let left = match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(600),
        };
        let mut fds = [PollFd::new(self.chan.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(left.as_millis().min(600_000) as i32).ok()?;
        if !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
            return None;
        }
        let (msg, _) = self.chan.recv().ok()??;
        match Request::decode(&msg) {
            Ok(Request::Answer(a)) => a,
            _ => None,
        }
    }

    fn show(&mut self, text: &str, error: bool) {
        let text = text.to_string();
        let _ = self
            .chan
            .send(&Response::Message { text, error }.encode(), &[]);
    }
}
