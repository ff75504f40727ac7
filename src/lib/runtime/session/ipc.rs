//! The channel between a session's root monitor and its unprivileged
//! processes: a SOCK_SEQPACKET socket pair (one message per send, message
//! boundaries kept, descriptors passed with SCM_RIGHTS), and the closed set
//! of messages they exchange, with a bounded codec.
//!
//! The monitor trusts nothing the other side says: every message is decoded
//! with length checks against what is left, every string is checked for
//! UTF-8 and size, and a message that does not decode ends the session.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::sys;

/// Largest message either side sends: a service request carries at most a
/// 64 KiB chunk of message data plus its framing.
pub const MAX_MESSAGE: usize = 80 * 1024;

thread_local! {
    /// The receive buffer of every channel of this thread. A message may be
    /// up to MAX_MESSAGE long; the buffer is made (zeroed) once per
    /// process tree, not for each round trip (which cost smtpd a tenth of
    /// its time) nor for each new channel: a fresh pre-login or account
    /// process inherits its parent's and copies only the pages its
    /// messages fill, instead of writing twenty pages before its first.
    /// Per thread, so that no thread's blocking receive holds another's.
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One end of a monitor channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair: one end for each process.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel::from(a), Channel::from(b)))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A second handle on the same end.
    pub fn try_clone(&self) -> io::Result<Channel> {
        Ok(Channel::from(self.fd.try_clone()?))
    }

    /// Send one message with descriptors attached.
    pub fn send(&self, msg: &[u8], fds: &[RawFd]) -> io::Result<()> {
        if msg.len() > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "monitor message too long",
            ));
        }
        sys::send_with_fds(self.fd.as_fd(), msg, fds)
    }

    /// Receive one message. None: the other side is gone.
    pub fn recv(&self) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        RECV_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            if buf.is_empty() {
                *buf = vec![0; MAX_MESSAGE];
            }
            let (n, fds) = sys::recv_with_fds(self.fd.as_fd(), &mut buf)?;
            if n == 0 && fds.is_empty() {
                return Ok(None);
            }
            Ok(Some((buf[..n].to_vec(), fds)))
        })
    }
}

impl From<OwnedFd> for Channel {
    fn from(fd: OwnedFd) -> Channel {
        Channel { fd }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A message that does not decode.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl From<Malformed> for io::Error {
    fn from(_: Malformed) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, "malformed monitor message")
    }
}

/// Builds a message: a tag, then fields.
#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn new(tag: u8) -> Writer {
        Writer(vec![tag])
    }

    /// A writer for a message of about `size` bytes (one allocation
    /// instead of one at each doubling: an article's message grows to
    /// kilobytes).
    pub fn with_capacity(tag: u8, size: usize) -> Writer {
        let mut v = Vec::with_capacity(size + 1);
        v.push(tag);
        Writer(v)
    }

    pub fn u8(mut self, v: u8) -> Writer {
        self.0.push(v);
        self
    }

    pub fn u16(mut self, v: u16) -> Writer {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Writer {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Writer {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(mut self, v: &[u8]) -> Writer {
        self.0
            .extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(v);
        self
    }

    pub fn str(self, v: &str) -> Writer {
        self.bytes(v.as_bytes())
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a message's fields in order, each bounded by what is left.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The tag and a reader for the fields.
    pub fn new(msg: &'a [u8]) -> Result<(u8, Reader<'a>), Malformed> {
        let (&tag, rest) = msg.split_first().ok_or(Malformed)?;
        Ok((tag, Reader { rest }))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.rest.len() {
            return Err(Malformed);
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], Malformed> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Malformed);
        }
        self.take(n)
    }

    /// A UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.bytes(max)?).map_err(|_| Malformed)
    }

    pub fn bool(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Malformed),
        }
    }

    /// Every field was read: trailing bytes are an error.
    pub fn end(self) -> Result<(), Malformed> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

/// Longest account name, password or other credential field.
pub const MAX_CREDENTIAL: usize = 1024;
/// Longest hand-over (a protocol's state at login) and unread input.
pub const MAX_HANDOVER: usize = 16 * 1024;

/// What an unprivileged process may ask of its monitor: the closed set.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Check a name and password.
    Password { user: String, password: String },
    /// An anonymous login (ftpd), if the service offers one.
    Anonymous { ident: String },
    /// A login at a terminal (telnetd, rlogind): the monitor runs the
    /// conversation (PAM's, or "login:" and "Password:" for a passwd_file),
    /// sending `Prompt`s and `Message`s until its verdict; `user` is the
    /// name already known ("" when it must be asked for).
    Converse { user: String },
    /// The answer to a `Prompt` (None: the person gave none).
    Answer(Option<String>),
    /// A login by host trust (rlogind, rshd): may `ruser`, at the client's
    /// own address (which the monitor knows, the network does not say),
    /// be the local account `luser` without a password? Answered like
    /// `Password`; decided by the service's `TcpProtocol::trust` (the
    /// .rhosts read as the account), once per connection.
    Trust { ruser: String, luser: String },
    /// The client's host name, forward-confirmed by the monitor (its
    /// numeric address when it has none): for login records, `login -h`
    /// and logs.
    PeerName,
    /// The account's process started a login on the terminal `line`
    /// ("pts/3", which must be the account's) for process `pid`: the
    /// monitor writes the utmp and wtmp records (root's files), with the
    /// account's name and the client's host as it knows them, and the
    /// logout record when the connection ends.
    LoginRecord { line: String, pid: i32 },
    /// A terminal login run by the service's login program (rlogind's
    /// `login = /bin/login ...`): the monitor starts it as root on a new
    /// pseudo-terminal for `user` (`-f` only when the monitor itself
    /// granted trust in this connection), TERM `term`, and sends back the
    /// master (with `Socket`); the unprivileged side relays.
    Terminal {
        user: String,
        term: String,
        rows: u16,
        cols: u16,
    },
    /// Start the session of the account just granted: `handover` is the
    /// protocol's state for the account's process, `unread` what the client
    /// sent after the login line; `tls`: the pre-login process holds a TLS
    /// connection and will relay it.
    Start {
        handover: Vec<u8>,
        unread: Vec<u8>,
        tls: bool,
    },
    /// A connection from the service's reserved port to the client's
    /// address at `port` (ftpd's active data connections from port 20).
    ReservedPort { port: u16 },
    /// A request of the service's own narrow privileged path (smtpd's
    /// recipient lookups and deliveries), decoded by the service.
    Service(Vec<u8>),
    /// A reusable pre-login process is done with its connection and ready
    /// for another (answered with `Connection`, or the channel closes).
    Done,
    /// A `Service` request that wants no answer (message data streamed to
    /// smtpd's queue): its failure shows in a later answer. Each round trip
    /// costs two process switches, which add up per message.
    Tell(Vec<u8>),
    /// A pseudo-terminal for the session of the account that logged in
    /// (telnetd): the monitor opens it, gives the slave to the account
    /// (group tty, mode 0620), writes the login record, and keeps its own
    /// master to give the terminal back at the end. Answered with
    /// `Terminal`, the master and the slave attached.
    OpenTerminal { rows: u16, cols: u16 },
    /// Start the service's login program (`TcpProtocol::terminal_program`
    /// builds it, as root, from the configuration and `request`: telnetd's
    /// `login = /bin/login ...`) on a new pseudo-terminal, for a client
    /// that has not logged in: the program authenticates by itself
    /// (login(1)). Answered with `Terminal` and the master attached; the
    /// monitor keeps its own master, as for `OpenTerminal`.
    Program {
        rows: u16,
        cols: u16,
        request: Vec<u8>,
    },
    /// The terminal session is over: logout record, the terminal back to
    /// root with mode 0600, the monitor's master closed (the session gets
    /// SIGHUP), a login program reaped. Answered with `Released`.
    HangUp,
}

/// The monitor's answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// The credentials are good: the account's name.
    Granted { user: String },
    /// Wrong name or password, or the account may not log in (one answer
    /// for all, after the same delay).
    Denied,
    /// The account store could not be consulted: try again later.
    Unavailable,
    /// The account's session runs; with TLS, the relay's end comes with
    /// this message.
    Started,
    /// A connected socket comes with this message.
    Socket,
    /// The request could not be carried out.
    Failed(String),
    /// The service's answer to a `Service` request.
    Service(Vec<u8>),
    /// The next connection comes with this message; `kind` names its
    /// listener (0 plain, 1 implicit TLS, 2 and up the service's extra
    /// listeners in order).
    Connection { kind: u8 },
    /// During `Converse`: ask the person this, echoing the answer or not.
    Prompt { text: String, echo: bool },
    /// During `Converse`: show the person this.
    Message { text: String, error: bool },
    /// The answer to `PeerName`.
    PeerName { name: String },
    /// The request was carried out.
    Done,
    /// A terminal is open (`line`, e.g. "pts/3"); `pid` is the login
    /// program's (0 when the requester starts its own).
    Terminal { line: String, pid: u32 },
    /// The terminal was given back.
    Released,
}

mod tag {
    pub const PASSWORD: u8 = 1;
    pub const ANONYMOUS: u8 = 2;
    pub const START: u8 = 3;
    pub const RESERVED_PORT: u8 = 4;
    pub const SERVICE: u8 = 5;
    pub const DONE: u8 = 6;
    pub const TELL: u8 = 7;
    pub const CONVERSE: u8 = 8;
    pub const ANSWER: u8 = 9;
    pub const TRUST: u8 = 10;
    pub const PEER_NAME: u8 = 11;
    pub const LOGIN_RECORD: u8 = 12;
    pub const TERMINAL: u8 = 13;
    pub const OPEN_TERMINAL: u8 = 14;
    pub const PROGRAM: u8 = 15;
    pub const HANG_UP: u8 = 16;

    pub const GRANTED: u8 = 101;
    pub const DENIED: u8 = 102;
    pub const UNAVAILABLE: u8 = 103;
    pub const STARTED: u8 = 104;
    pub const SOCKET: u8 = 105;
    pub const FAILED: u8 = 106;
    pub const SERVICE_REPLY: u8 = 107;
    pub const CONNECTION: u8 = 108;
    pub const PROMPT: u8 = 109;
    pub const MESSAGE: u8 = 110;
    pub const NAME: u8 = 111;
    pub const DONE_REPLY: u8 = 112;
    pub const TERMINAL_OPEN: u8 = 113;
    pub const RELEASED: u8 = 114;
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Password { user, password } => {
                Writer::new(tag::PASSWORD).str(user).str(password).finish()
            }
            Request::Anonymous { ident } => Writer::new(tag::ANONYMOUS).str(ident).finish(),
            Request::Start {
                handover,
                unread,
                tls,
            } => Writer::new(tag::START)
                .bytes(handover)
                .bytes(unread)
                .u8(u8::from(*tls))
                .finish(),
            Request::ReservedPort { port } => Writer::new(tag::RESERVED_PORT).u16(*port).finish(),
            Request::Service(b) => Writer::new(tag::SERVICE).bytes(b).finish(),
            Request::Done => Writer::new(tag::DONE).finish(),
            Request::Tell(b) => Writer::new(tag::TELL).bytes(b).finish(),
            Request::Converse { user } => Writer::new(tag::CONVERSE).str(user).finish(),
            Request::Answer(a) => match a {
                Some(text) => Writer::new(tag::ANSWER).u8(1).str(text).finish(),
                None => Writer::new(tag::ANSWER).u8(0).finish(),
            },
            Request::Trust { ruser, luser } => {
                Writer::new(tag::TRUST).str(ruser).str(luser).finish()
            }
            Request::PeerName => Writer::new(tag::PEER_NAME).finish(),
            Request::Terminal {
                user,
                term,
                rows,
                cols,
            } => Writer::new(tag::TERMINAL)
                .str(user)
                .str(term)
                .u16(*rows)
                .u16(*cols)
                .finish(),
            Request::LoginRecord { line, pid } => Writer::new(tag::LOGIN_RECORD)
                .str(line)
                .u32(*pid as u32)
                .finish(),
            Request::OpenTerminal { rows, cols } => Writer::new(tag::OPEN_TERMINAL)
                .u16(*rows)
                .u16(*cols)
                .finish(),
            Request::Program {
                rows,
                cols,
                request,
            } => Writer::new(tag::PROGRAM)
                .u16(*rows)
                .u16(*cols)
                .bytes(request)
                .finish(),
            Request::HangUp => Writer::new(tag::HANG_UP).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Request, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let req = match t {
            tag::PASSWORD => Request::Password {
                user: r.str(MAX_CREDENTIAL)?.to_string(),
                password: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::ANONYMOUS => Request::Anonymous {
                ident: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::START => Request::Start {
                handover: r.bytes(MAX_HANDOVER)?.to_vec(),
                unread: r.bytes(MAX_HANDOVER)?.to_vec(),
                tls: r.bool()?,
            },
            tag::RESERVED_PORT => Request::ReservedPort { port: r.u16()? },
            tag::SERVICE => Request::Service(r.bytes(MAX_MESSAGE)?.to_vec()),
            tag::DONE => Request::Done,
            tag::TELL => Request::Tell(r.bytes(MAX_MESSAGE)?.to_vec()),
            tag::CONVERSE => Request::Converse {
                user: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::ANSWER => Request::Answer(match r.u8()? {
                0 => None,
                1 => Some(r.str(MAX_CREDENTIAL)?.to_string()),
                _ => return Err(Malformed),
            }),
            tag::TRUST => Request::Trust {
                ruser: r.str(MAX_CREDENTIAL)?.to_string(),
                luser: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::PEER_NAME => Request::PeerName,
            tag::TERMINAL => Request::Terminal {
                user: r.str(MAX_CREDENTIAL)?.to_string(),
                term: r.str(64)?.to_string(),
                rows: r.u16()?,
                cols: r.u16()?,
            },
            tag::LOGIN_RECORD => Request::LoginRecord {
                line: r.str(32)?.to_string(),
                pid: r.u32()? as i32,
            },
            tag::OPEN_TERMINAL => Request::OpenTerminal {
                rows: r.u16()?,
                cols: r.u16()?,
            },
            tag::PROGRAM => Request::Program {
                rows: r.u16()?,
                cols: r.u16()?,
                request: r.bytes(MAX_HANDOVER)?.to_vec(),
            },
            tag::HANG_UP => Request::HangUp,
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::Granted { user } => Writer::new(tag::GRANTED).str(user).finish(),
            Response::Denied => Writer::new(tag::DENIED).finish(),
            Response::Unavailable => Writer::new(tag::UNAVAILABLE).finish(),
            Response::Started => Writer::new(tag::STARTED).finish(),
            Response::Socket => Writer::new(tag::SOCKET).finish(),
            Response::Failed(why) => Writer::new(tag::FAILED).str(why).finish(),
            Response::Service(b) => Writer::new(tag::SERVICE_REPLY).bytes(b).finish(),
            Response::Connection { kind } => Writer::new(tag::CONNECTION).u8(*kind).finish(),
            Response::Prompt { text, echo } => Writer::new(tag::PROMPT)
                .str(text)
                .u8(u8::from(*echo))
                .finish(),
            Response::Message { text, error } => Writer::new(tag::MESSAGE)
                .str(text)
                .u8(u8::from(*error))
                .finish(),
            Response::PeerName { name } => Writer::new(tag::NAME).str(name).finish(),
            Response::Done => Writer::new(tag::DONE_REPLY).finish(),
            Response::Terminal { line, pid } => {
                Writer::new(tag::TERMINAL_OPEN).str(line).u32(*pid).finish()
            }
            Response::Released => Writer::new(tag::RELEASED).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Response, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let resp = match t {
            tag::GRANTED => Response::Granted {
                user: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::DENIED => Response::Denied,
            tag::UNAVAILABLE => Response::Unavailable,
            tag::STARTED => Response::Started,
            tag::SOCKET => Response::Socket,
            tag::FAILED => Response::Failed(r.str(MAX_CREDENTIAL)?.to_string()),
            tag::SERVICE_REPLY => Response::Service(r.bytes(MAX_MESSAGE)?.to_vec()),
            tag::CONNECTION => Response::Connection { kind: r.u8()? },
            tag::PROMPT => Response::Prompt {
                text: r.str(MAX_CREDENTIAL)?.to_string(),
                echo: r.bool()?,
            },
            tag::MESSAGE => Response::Message {
                text: r.str(MAX_CREDENTIAL)?.to_string(),
                error: r.bool()?,
            },
            tag::DONE_REPLY => Response::Done,
            tag::NAME => Response::PeerName {
                name: r.str(MAX_CREDENTIAL)?.to_string(),
            },
            tag::TERMINAL_OPEN => Response::Terminal {
                line: r.str(64)?.to_string(),
                pid: r.u32()?,
            },
            tag::RELEASED => Response::Released,
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Password {
                user: "demo".into(),
                password: "pw \u{e9}".into(),
            },
            Request::Anonymous {
                ident: "a@b".into(),
            },
            Request::Start {
                handover: vec![1, 2, 3],
                unread: b"STAT\r\n".to_vec(),
                tls: true,
            },
            Request::ReservedPort { port: 20 },
            Request::Service(vec![9; 70_000]),
            Request::Done,
            Request::Tell(vec![1, 2]),
            Request::Converse { user: "".into() },
            Request::Answer(Some("secret".into())),
            Request::Answer(None),
            Request::Trust {
                ruser: "bob".into(),
                luser: "alice".into(),
            },
            Request::PeerName,
            Request::LoginRecord {
                line: "pts/3".into(),
                pid: 4242,
            },
            Request::Terminal {
                user: "alice".into(),
                term: "xterm".into(),
                rows: 24,
                cols: 80,
            },
            Request::OpenTerminal { rows: 24, cols: 80 },
            Request::Program {
                rows: 50,
                cols: 132,
                request: vec![7; 100],
            },
            Request::HangUp,
        ];
        for r in all {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn responses_round_trip() {
        let all = [
            Response::Granted {
                user: "demo".into(),
            },
            Response::Denied,
            Response::Unavailable,
            Response::Started,
            Response::Socket,
            Response::Failed("no".into()),
            Response::Service(vec![1]),
            Response::Connection { kind: 2 },
            Response::Prompt {
                text: "Password: ".into(),
                echo: false,
            },
            Response::Message {
                text: "Your password has expired".into(),
                error: true,
            },
            Response::PeerName {
                name: "client.example".into(),
            },
            Response::Done,
            Response::Terminal {
                line: "pts/3".into(),
                pid: 4242,
            },
            Response::Released,
        ];
        for r in all {
            assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(Request::decode(&[]), Err(Malformed));
        assert_eq!(Request::decode(&[99]), Err(Malformed));
        // A length past the end.
        assert_eq!(Request::decode(&[1, 0, 0, 0, 9, b'a']), Err(Malformed));
        // A length over the field's bound.
        let mut long = vec![1];
        long.extend_from_slice(&(MAX_CREDENTIAL as u32 + 1).to_be_bytes());
        long.extend(std::iter::repeat_n(b'a', MAX_CREDENTIAL + 1));
        assert_eq!(Request::decode(&long), Err(Malformed));
        // Trailing bytes.
        let mut extra = Request::ReservedPort { port: 20 }.encode();
        extra.push(0);
        assert_eq!(Request::decode(&extra), Err(Malformed));
        // Not UTF-8.
        assert_eq!(Request::decode(&[2, 0, 0, 0, 1, 0xff]), Err(Malformed));
        // A boolean that is neither 0 nor 1.
        let mut start = Request::Start {
            handover: vec![],
            unread: vec![],
            tls: false,
        }
        .encode();
        *start.last_mut().unwrap() = 2;
        assert_eq!(Request::decode(&start), Err(Malformed));
    }

    #[test]
    fn a_message_and_its_descriptor_cross_the_channel() {
        let (a, b) = Channel::pair().unwrap();
        let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
        a.send(&Response::Socket.encode(), &[x.as_raw_fd()])
            .unwrap();
        let (msg, fds) = b.recv().unwrap().unwrap();
        assert_eq!(Response::decode(&msg), Ok(Response::Socket));
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }
}
