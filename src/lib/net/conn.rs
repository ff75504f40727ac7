//! A client connection: a plain or TLS stream plus a bounded line buffer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::line::{Line, LineBuf};

/// A TCP stream, in the clear or under TLS; or, after a login under TLS,
/// the account's end of the relay that the unprivileged pre-login process
/// runs for the TLS connection (the client's bytes, decrypted).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Relayed(UnixStream),
}

impl Stream {
    /// Run a server-side TLS handshake over `tcp` (bounded by its timeouts).
    pub fn accept_tls(tcp: TcpStream, cfg: &Arc<ServerConfig>) -> io::Result<Stream> {
        let conn = ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Stream::Tls(Box::new(s)))
    }

    /// The socket under the stream (for poll, timeouts, socket options).
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Plain(t) => t.as_fd(),
            Stream::Tls(s) => s.sock.as_fd(),
            Stream::Relayed(u) => u.as_fd(),
        }
    }

    /// The TCP socket, when this process holds it.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(t) => Some(t),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Relayed(_) => None,
        }
    }

    /// Whether what crosses this stream is protected by TLS (here or in
    /// the relay).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::Relayed(_))
    }

    /// Close cleanly: a TLS close_notify, then a shutdown of our side.
    pub fn close(&mut self) {
        match self {
            Stream::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
                let _ = s.sock.shutdown(Shutdown::Write);
            }
            Stream::Plain(t) => {
                let _ = t.shutdown(Shutdown::Write);
            }
            Stream::Relayed(u) => {
                let _ = u.shutdown(Shutdown::Write);
            }
        }
    }

    /// Set the read and write timeouts of the socket underneath.
    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        let fd = self.fd();
        let sock = socket2::SockRef::from(&fd);
        sock.set_read_timeout(read)?;
        sock.set_write_timeout(write)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without close_notify is treated as EOF:
                // the protocols frame their own data, so no truncation
                // goes unnoticed.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
            Stream::Relayed(u) => u.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Relayed(u) => u.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Relayed(u) => u.flush(),
        }
    }
}

/// A control connection with a client.
pub struct Conn {
    stream: Stream,
    lines: LineBuf,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The idle timer (None: none).
    idle: Option<Duration>,
    /// A time by which the client must be done (the login deadline):
    /// reads fail with a timeout past it, however the bytes trickle.
    deadline: Option<Instant>,
}

impl Conn {
    /// Wrap an accepted TCP stream; `line_capacity` bounds the line length.
    pub fn new(tcp: TcpStream, line_capacity: usize) -> io::Result<Conn> {
        let peer = tcp.peer_addr()?;
        let local = tcp.local_addr()?;
        // Replies are written whole, so small segments go out at once
        // instead of waiting for the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            stream: Stream::Plain(tcp),
            lines: LineBuf::new(line_capacity),
            peer,
            local,
            idle: None,
            deadline: None,
        })
    }

    /// A connection taken over from another process: its stream, the
    /// addresses of the TCP connection, and what the other process had
    /// read from the client but not used (`unread`, served first).
    pub fn resume(
        stream: Stream,
        peer: SocketAddr,
        local: SocketAddr,
        line_capacity: usize,
        unread: &[u8],
    ) -> io::Result<Conn> {
        let mut lines = LineBuf::new(line_capacity.max(unread.len() + 2));
        lines.preload(unread);
        Ok(Conn {
            stream,
            lines,
            peer,
            local,
            idle: None,
            deadline: None,
        })
    }

    /// The stream and what was read ahead of the last line (to hand the
    /// connection to another process).
    pub fn into_parts(self) -> (Stream, Vec<u8>) {
        let unread = self.lines.buffered().to_vec();
        (self.stream, unread)
    }

    /// Upgrade to TLS (STARTTLS, AUTH TLS, STLS, or an implicit-TLS port).
    /// Anything the client sent ahead of the handshake is discarded.
    pub fn start_tls(&mut self, cfg: &Arc<ServerConfig>) -> io::Result<()> {
        if self.is_tls() {
            return Err(io::Error::other("TLS is already active"));
        }
        self.lines.clear();
        let Some(tcp) = self.stream.tcp() else {
            return Err(io::Error::other("TLS is already active"));
        };
        let placeholder = Stream::Plain(tcp.try_clone()?);
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, placeholder) else {
            return Err(io::Error::other("TLS is already active"));
        };
        self.stream = Stream::accept_tls(tcp, cfg)?;
        Ok(())
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The TCP socket, when this process holds it (not after a TLS login,
    /// where the pre-login process relays).
    pub fn tcp(&self) -> Option<&TcpStream> {
        self.stream.tcp()
    }

    /// The socket under the connection, for poll(2).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.fd()
    }

    /// The idle timer: a read that waits longer fails with a timeout error.
    pub fn set_idle_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.idle = t.filter(|d| !d.is_zero());
        self.stream
            .set_timeouts(self.idle, self.idle.map(|d| d.max(Duration::from_secs(60))))
    }

    /// A deadline for the whole dialogue (None: none): reads past it fail
    /// with a timeout error.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        if deadline.is_none() {
            let _ = self.set_idle_timeout(self.idle);
        }
    }

    /// Whether the deadline, if any, has passed.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Read one line of at most `max` bytes.
    pub fn read_line(&mut self, max: usize) -> io::Result<Line> {
        match self.deadline {
            None => self.lines.read_line(&mut self.stream, max),
            Some(deadline) => {
                let mut r = Deadline {
                    stream: &mut self.stream,
                    idle: self.idle,
                    deadline,
                };
                self.lines.read_line(&mut r, max)
            }
        }
    }

    /// What the client sent that has been read but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        self.lines.buffered()
    }

    /// Whether the client has already sent more than we have consumed
    /// (pipelining, or commands sent ahead of a TLS handshake).
    pub fn has_buffered_input(&self) -> bool {
        !self.lines.buffered().is_empty()
    }

    /// Write a whole reply and push it out.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Close cleanly.
    pub fn close(&mut self) {
        self.stream.close();
    }

    /// The underlying stream, for drivers that need raw access.
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

/// Reads that end at a deadline: before each read of the socket the read
/// timeout becomes what is left (or the idle timer, if shorter), so a client
/// that sends one byte a minute still runs out of time.
struct Deadline<'a> {
    stream: &'a mut Stream,
    idle: Option<Duration>,
    deadline: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        let wait = match self.idle {
            Some(idle) => idle.min(left),
            None => left,
        };
        socket2::SockRef::from(&self.stream.fd()).set_read_timeout(Some(wait))?;
        self.stream.read(buf)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.deadline {
            None => self.lines.read_raw(&mut self.stream, buf),
            Some(deadline) => {
                let mut r = Deadline {
                    stream: &mut self.stream,
                    idle: self.idle,
                    deadline,
                };
                self.lines.read_raw(&mut r, buf)
            }
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
