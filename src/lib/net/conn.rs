//! A client connection: a plain or TLS stream plus a bounded line buffer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::line::{Line, LineBuf};

/// A TCP stream, in the clear or under TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
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

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(t) => t,
            Stream::Tls(s) => &s.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Close cleanly: a TLS close_notify, then a TCP shutdown of our side.
    pub fn close(&mut self) {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
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
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A control connection with a client.
pub struct Conn {
    stream: Stream,
    lines: LineBuf,
    pub peer: SocketAddr,
    pub local: SocketAddr,
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
        })
    }

    /// Upgrade to TLS (STARTTLS, AUTH TLS, STLS, or an implicit-TLS port).
    /// Anything the client sent ahead of the handshake is discarded.
    pub fn start_tls(&mut self, cfg: &Arc<ServerConfig>) -> io::Result<()> {
        if self.is_tls() {
            return Err(io::Error::other("TLS is already active"));
        }
        self.lines.clear();
        let placeholder = Stream::Plain(self.stream.tcp().try_clone()?);
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, placeholder) else {
            return Err(io::Error::other("TLS is already active"));
        };
        self.stream = Stream::accept_tls(tcp, cfg)?;
        Ok(())
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// The idle timer: a read that waits longer fails with a timeout error.
    pub fn set_idle_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        let t = t.filter(|d| !d.is_zero());
        self.tcp().set_read_timeout(t)?;
        self.tcp()
            .set_write_timeout(t.map(|d| d.max(Duration::from_secs(60))))
    }

    /// Read one line of at most `max` bytes.
    pub fn read_line(&mut self, max: usize) -> io::Result<Line> {
        self.lines.read_line(&mut self.stream, max)
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

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lines.read_raw(&mut self.stream, buf)
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
