//! rshd's handshake before login, as a state machine: the fields in,
//! actions out (read a field, connect back to the stderr port, ask the
//! monitor about trust, start the session, refuse). No sockets, no clock:
//! the session glue reads, connects, asks and times out.

use super::command::{self, Bad, COMMAND_MAX, NAME_MAX, PORT_MAX};
use crate::auth::RESERVED_PORTS;

/// What the handshake gathered, for the account's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub stderr_port: Option<u16>,
    pub ruser: String,
    pub luser: String,
    pub command: Vec<u8>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The next NUL-terminated field (without its NUL).
    Field(Vec<u8>),
    /// The field ran past the bound the last `ReadField` gave.
    TooLong,
    /// The client closed before the handshake was complete.
    Eof,
    /// The handshake took too long.
    TimedOut,
    /// The stderr connection was made (or not).
    BackConnected(bool),
    /// The monitor's answer about trust.
    Trust(Answer),
}

/// The monitor's answer about host trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Granted,
    Denied,
    Unavailable,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read one NUL-terminated field of at most `max` bytes, and no byte
    /// past its NUL (the command's input follows on the connection).
    ReadField { max: usize },
    /// Connect from a reserved port to the client's `port`.
    ConnectBack(u16),
    /// Ask the monitor whether `ruser` at the client may be `luser`.
    AskTrust { ruser: String, luser: String },
    /// Start the account's session with this.
    Start(Request),
    /// Send this (BSD's "\x01message\n") and close; `log` says why.
    Refuse { message: Vec<u8>, log: String },
    /// Close without a word (the client is gone).
    Close { log: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Port,
    ConnectingBack,
    ClientUser,
    ServerUser,
    Command,
    Trust,
    Done,
}

pub struct Machine {
    stage: Stage,
    require_privileged_port: bool,
    request: Request,
}

/// The one answer to anything about who may log in.
pub const PERMISSION_DENIED: &[u8] = b"\x01Permission denied.\n";

fn refuse(text: &str, log: impl Into<String>) -> Action {
    Action::Refuse {
        message: format!("\x01{text}\n").into_bytes(),
        log: log.into(),
    }
}

fn denied(log: impl Into<String>) -> Action {
    Action::Refuse {
        message: PERMISSION_DENIED.to_vec(),
        log: log.into(),
    }
}

impl Machine {
    pub fn new(require_privileged_port: bool) -> Machine {
        Machine {
            stage: Stage::Port,
            require_privileged_port,
            request: Request {
                stderr_port: None,
                ruser: String::new(),
                luser: String::new(),
                command: Vec::new(),
            },
        }
    }

    /// The connection came from `peer_port`: the first action.
    pub fn start(&mut self, peer_port: u16) -> Action {
        if self.require_privileged_port && !RESERVED_PORTS.contains(&peer_port) {
            self.stage = Stage::Done;
            return denied(format!(
                "source port {peer_port} is not reserved (512-1023)"
            ));
        }
        Action::ReadField { max: PORT_MAX }
    }

    pub fn handle(&mut self, input: Input) -> Action {
        let field = match input {
            Input::Eof => {
                self.stage = Stage::Done;
                return Action::Close {
                    log: "the client closed during the handshake".into(),
                };
            }
            Input::TimedOut => {
                self.stage = Stage::Done;
                return refuse("rshd: timed out.", "handshake not finished in time");
            }
            Input::TooLong => {
                let what = self.stage_name();
                self.stage = Stage::Done;
                return match what {
                    "stderr port" => refuse("rshd: bad stderr port.", "stderr port too long"),
                    what => refuse(
                        &format!("rshd: {what} too long."),
                        format!("{what} too long"),
                    ),
                };
            }
            Input::BackConnected(ok) => return self.connected_back(ok),
            Input::Trust(answer) => return self.trusted(answer),
            Input::Field(f) => f,
        };
        match self.stage {
            Stage::Port => match command::parse_port(&field) {
                Ok(port) => self.port(port),
                Err(_) => {
                    self.stage = Stage::Done;
                    refuse("rshd: bad stderr port.", "bad stderr port")
                }
            },
            Stage::ClientUser => match command::parse_name(&field) {
                Ok(name) => {
                    self.request.ruser = name;
                    self.stage = Stage::ServerUser;
                    Action::ReadField { max: NAME_MAX }
                }
                Err(e) => self.bad_name("client user", e),
            },
            Stage::ServerUser => match command::parse_name(&field) {
                Ok(name) => {
                    self.request.luser = name;
                    self.stage = Stage::Command;
                    Action::ReadField { max: COMMAND_MAX }
                }
                Err(e) => self.bad_name("server user", e),
            },
            Stage::Command => match command::parse_command(&field) {
                Ok(cmd) => {
                    self.request.command = cmd;
                    self.stage = Stage::Trust;
                    Action::AskTrust {
                        ruser: self.request.ruser.clone(),
                        luser: self.request.luser.clone(),
                    }
                }
                Err(_) => {
                    self.stage = Stage::Done;
                    refuse("rshd: command too long.", "command too long")
                }
            },
            Stage::ConnectingBack | Stage::Trust | Stage::Done => {
                self.stage = Stage::Done;
                Action::Close {
                    log: "input out of turn".into(),
                }
            }
        }
    }

    fn stage_name(&self) -> &'static str {
        match self.stage {
            Stage::Port => "stderr port",
            Stage::ClientUser => "client user",
            Stage::ServerUser => "server user",
            _ => "command",
        }
    }

    fn port(&mut self, port: Option<u16>) -> Action {
        self.request.stderr_port = port;
        match port {
            None => {
                self.stage = Stage::ClientUser;
                Action::ReadField { max: NAME_MAX }
            }
            Some(p) if self.require_privileged_port && !RESERVED_PORTS.contains(&p) => {
                self.stage = Stage::Done;
                refuse(
                    "rshd: the stderr port is not reserved.",
                    format!("stderr port {p} is not reserved (512-1023)"),
                )
            }
            Some(p) => {
                self.stage = Stage::ConnectingBack;
                Action::ConnectBack(p)
            }
        }
    }

    fn connected_back(&mut self, ok: bool) -> Action {
        if self.stage != Stage::ConnectingBack {
            self.stage = Stage::Done;
            return Action::Close {
                log: "connection result out of turn".into(),
            };
        }
        if !ok {
            self.stage = Stage::Done;
            return refuse(
                "rshd: cannot connect to the stderr port.",
                "cannot connect to the stderr port",
            );
        }
        self.stage = Stage::ClientUser;
        Action::ReadField { max: NAME_MAX }
    }

    fn bad_name(&mut self, what: &str, e: Bad) -> Action {
        self.stage = Stage::Done;
        match e {
            Bad::TooLong => refuse(
                &format!("rshd: {what} too long."),
                format!("{what} too long"),
            ),
            _ => denied(format!("{what} name refused")),
        }
    }

    fn trusted(&mut self, answer: Answer) -> Action {
        if self.stage != Stage::Trust {
            self.stage = Stage::Done;
            return Action::Close {
                log: "trust answer out of turn".into(),
            };
        }
        self.stage = Stage::Done;
        match answer {
            Answer::Granted => Action::Start(self.request.clone()),
            Answer::Denied => denied("not trusted"),
            Answer::Unavailable => refuse(
                "rshd: the account store is unavailable; try again later.",
                "account store unavailable",
            ),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
