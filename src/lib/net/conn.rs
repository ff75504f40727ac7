//! A client connection: a plain or TLS stream plus a bounded line buffer.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::line::{Line, LineBuf, LineRef};

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
    /// The watchdog: the process ends when nothing crosses the connection
    /// for this long, whatever it is waiting on (see `set_watchdog`).
    watchdog: Option<u32>,
    /// When alarm(2) was last set for the watchdog.
    watchdog_set: Cell<Option<Instant>>,
}

impl Conn {
    /// Wrap an accepted TCP stream; `line_capacity` bounds the line length.
    pub fn new(tcp: TcpStream, line_capacity: usize) -> io::Result<Conn> {
        let (peer, local) = super::addresses(&tcp)?;
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
            watchdog: None,
            watchdog_set: Cell::new(None),
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
            watchdog: None,
            watchdog_set: Cell::new(None),
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

    /// End this process (SIGALRM) when nothing has crossed the connection
    /// for `t` (or up to a second more), whatever the process is waiting
    /// on: a mail file on a hung file system, a lock never released. The
    /// idle timer handles a quiet client first; this is for everything
    /// else. One per process (it is alarm(2)); None disarms it.
    pub fn set_watchdog(&mut self, t: Option<Duration>) {
        self.watchdog = t.map(|d| d.as_secs().clamp(1, u32::MAX as u64 - 1) as u32);
        self.watchdog_set.set(None);
        self.progress();
    }

    /// Something crossed the connection: the watchdog starts over. It is
    /// set a second longer and at most once a second, rather than with two
    /// system calls for every command of a busy session (a RETR loop).
    fn progress(&self) {
        match self.watchdog {
            Some(secs) => {
                let now = Instant::now();
                let due = self
                    .watchdog_set
                    .get()
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
                if due {
                    nix::unistd::alarm::set(secs + 1);
                    self.watchdog_set.set(Some(now));
                }
            }
            None => {
                nix::unistd::alarm::cancel();
            }
        }
    }

    /// Read one line of at most `max` bytes.
    pub fn read_line(&mut self, max: usize) -> io::Result<Line> {
        Ok(self.read_line_ref(max)?.into_line())
    }

    /// `read_line` without a copy: the line is valid until the next read.
    pub fn read_line_ref(&mut self, max: usize) -> io::Result<LineRef<'_>> {
        let span = match self.deadline {
            None => self.lines.read_span(&mut self.stream, max),
            Some(deadline) => {
                let mut r = Deadline {
                    stream: &mut self.stream,
                    idle: self.idle,
                    deadline,
                };
                self.lines.read_span(&mut r, max)
            }
        };
        // After the read, whatever came of it: the watchdog then covers
        // the work the line starts.
        if self.watchdog.is_some() {
            self.progress();
        }
        Ok(self.lines.line_at(span?))
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
        self.stream.flush()?;
        if self.watchdog.is_some() {
            self.progress();
        }
        Ok(())
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
        let n = self.stream.write(buf)?;
        if self.watchdog.is_some() {
            self.progress();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The watchdog ends a process that waits on something other than the
    /// client (here: a sleep) past its time; traffic keeps it alive.
    #[test]
    fn watchdog_ends_a_process_stuck_elsewhere() {
        const CHILD: &str = "CLASSICD_WATCHDOG_CHILD";
        if let Ok(what) = std::env::var(CHILD) {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let mut conn = Conn::new(c, 64).unwrap();
            conn.set_watchdog(Some(Duration::from_secs(1)));
            if what == "busy" {
                // Progress every half second: never fires.
                for _ in 0..6 {
                    std::thread::sleep(Duration::from_millis(500));
                    conn.send(b"x").unwrap();
                }
                conn.set_watchdog(None);
                return;
            }
            std::thread::sleep(Duration::from_secs(5));
            return;
        }
        let run = |what: &str| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "net::conn::tests::watchdog_ends_a_process_stuck_elsewhere",
                    "--test-threads=1",
                ])
                .env(CHILD, what)
                .status()
                .unwrap()
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(run("stuck").signal(), Some(libc::SIGALRM));
        assert!(run("busy").success());
    }
}
