#![forbid(unsafe_code)]
//! The network side of a session: a bounded line reader, plain or TLS
//! streams, and the connection type that protocol drivers talk through.

mod conn;
mod deadline;
pub mod dialogue;
pub mod field;
mod line;
pub mod tls;

pub use conn::{Conn, Stream};
pub use deadline::{Deadline, ReadTimeout};
pub use line::{Ending, Line, LineBuf, LineRef};

/// The address a connection from a Unix-domain socket listener is given,
/// as its peer and local address: it has no IP address. Such a connection
/// travels through the runtime as the same stream type as TCP: every call
/// the sessions make on it (read, write, shutdown, timeouts, passing the
/// descriptor) is the same for both.
pub const UNIX_PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Whether `addr` is `UNIX_PEER`: the client came through a Unix socket,
/// from this host.
pub fn is_unix_peer(addr: &std::net::SocketAddr) -> bool {
    *addr == UNIX_PEER
}

/// The peer and local addresses of an accepted connection; `UNIX_PEER`
/// for both when it came through a Unix-domain socket.
pub fn addresses(
    s: &std::net::TcpStream,
) -> std::io::Result<(std::net::SocketAddr, std::net::SocketAddr)> {
    use nix::sys::socket::{getsockname, AddressFamily, SockaddrLike, SockaddrStorage};
    use std::os::fd::AsRawFd;
    match (s.peer_addr(), s.local_addr()) {
        (Ok(p), Ok(l)) => Ok((p, l)),
        (Err(e), _) | (_, Err(e)) => {
            match getsockname::<SockaddrStorage>(s.as_raw_fd()).map(|a| a.family()) {
                Ok(Some(AddressFamily::Unix)) => Ok((UNIX_PEER, UNIX_PEER)),
                _ => Err(e),
            }
        }
    }
}

/// Whether an I/O error is a read or write timeout (the idle timer).
pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
