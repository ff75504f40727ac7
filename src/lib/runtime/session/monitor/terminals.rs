//! The monitor's terminal requests: a pseudo-terminal for the account's
//! session, the service's login program on one (as root, as login(1) must
//! start), and the utmp/wtmp record of the account's line.

use std::os::fd::OwnedFd;

use nix::unistd::Pid;

use super::MonitorState;
use crate::auth;
use crate::runtime::session::terminal::Held;
use crate::runtime::supervise::Kind;

impl MonitorState<'_> {
    /// A terminal for the session of the account granted, asked by its
    /// process (`from`): one per connection.
    pub(super) fn open_terminal(
        &mut self,
        rows: u16,
        cols: u16,
        from: Pid,
    ) -> Result<(String, Vec<OwnedFd>), String> {
        let Some((account, ..)) = self.granted.as_ref() else {
            return Err("no login was granted".into());
        };
        if self.held.is_some() {
            return Err("a terminal is already open".into());
        }
        let host = crate::host::peer_host(self.peer.ip());
        let (held, master, slave) =
            Held::for_account(account, rows, cols, &host, from).map_err(|e| e.to_string())?;
        let line = held.line().to_string();
        self.held = Some(held);
        Ok((line, vec![master, slave]))
    }

    /// The service's login program on a new terminal, for a client that
    /// has not logged in.
    pub(super) fn start_program(
        &mut self,
        rows: u16,
        cols: u16,
        request: &[u8],
    ) -> Result<(String, u32, OwnedFd), String> {
        if self.held.is_some() || self.granted.is_some() {
            return Err("not now".into());
        }
        let host = crate::host::peer_host(self.peer.ip());
        let program = self
            .proto
            .terminal_program(&self.ctx.settings, &host, request)?;
        let (held, master, pid) =
            Held::for_program(&program, rows, cols).map_err(|e| e.to_string())?;
        let line = held.line().to_string();
        self.held = Some(held);
        Ok((line, pid.as_raw() as u32, master))
    }

    /// Start the service's login program on a new terminal, as root (the
    /// program authenticates and changes identity itself, as login(1)
    /// does); once per connection. The trust it is told of is the
    /// monitor's own verdict for that very user, never the other side's.
    pub(super) fn terminal(
        &mut self,
        user: &str,
        term: &str,
        rows: u16,
        cols: u16,
    ) -> Result<OwnedFd, String> {
        if self.record.is_some() || self.terminal_started {
            return Err("a terminal was already started".into());
        }
        if !auth::plausible_name(user) {
            return Err("not a user name".into());
        }
        let term_ok = !term.is_empty()
            && term.len() <= 32
            && term.as_bytes()[0].is_ascii_alphanumeric()
            && term
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
        let term = if term_ok { term } else { "network" };
        let trusted = self
            .granted
            .as_ref()
            .is_some_and(|(account, ..)| account.name == user)
            && self.trust_asked;
        let host = self.peer_name();
        let Some(program) =
            self.proto
                .login_program(&self.ctx.settings, user, term, &host, trusted)
        else {
            return Err("no login program for this service".into());
        };
        let (rows, cols) = (rows.clamp(1, 1000), cols.clamp(1, 1000));
        let session = crate::pty::spawn(&program, rows, cols, None, || Ok(()))
            .map_err(|e| format!("{}: {e}", program.path.to_string_lossy()))?;
        self.terminal_started = true;
        log::info!(
            "{}: {} started for {user} on {}{}",
            self.peer,
            program.path.to_string_lossy(),
            session.line,
            if trusted { " (trusted)" } else { "" }
        );
        self.children.insert(session.child, Kind::Program, ());
        let master = session.master.try_clone().map_err(|e| e.to_string())?;
        // The monitor keeps no master: the terminal hangs up when the
        // relay lets go of it.
        drop(session);
        Ok(OwnedFd::from(master))
    }

    /// Write the utmp/wtmp login record of the account's terminal: the
    /// line must be a pseudo-terminal the account owns, the name and host
    /// are the monitor's own; once per connection.
    pub(super) fn login_record(&mut self, line: &str, pid: i32) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let Some(user) = self.proven.clone() else {
            return Err("no login".into());
        };
        let Some((account, ..)) = self.granted.as_ref() else {
            return Err("no login".into());
        };
        let uid = account.uid;
        if self.record.is_some() {
            return Err("already recorded".into());
        }
        let good = line.strip_prefix("pts/").is_some_and(|n| {
            !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit())
        });
        if !good || pid <= 1 {
            return Err(format!("not a terminal line: {}", auth::printable(line)));
        }
        match std::fs::metadata(format!("/dev/{line}")) {
            Ok(m) if m.uid() == uid => {}
            _ => return Err(format!("/dev/{line} is not the account's")),
        }
        let host = self.peer_name();
        crate::sys::write_utmp(
            &crate::sys::LoginRecord {
                user: &user,
                line,
                host: &host,
                pid,
            },
            true,
        );
        self.record = Some((line.to_string(), pid));
        Ok(())
    }
}
