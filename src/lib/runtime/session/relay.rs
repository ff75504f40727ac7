//! The TLS relay: after a login under TLS, the unprivileged pre-login
//! process keeps the TLS connection and moves the decrypted bytes to and
//! from the account's process over a socket pair, so that the account's
//! process never holds the client's TLS state (and the monitor never runs
//! TLS at all). Both sides are non-blocking and polled; each direction
//! holds at most a bounded amount, and a side is read only when the other
//! side has taken what was read before.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustls::ServerConnection;

use crate::net::{Conn, Stream};

/// Plaintext from the client waiting for the account's process, at most.
const LIMIT: usize = 64 * 1024;
/// A relay with no traffic either way for this long ends.
const QUIET: Duration = Duration::from_secs(3600);

/// Relay until the account's process closes its side (the TLS connection
/// is then closed properly) or the client goes away.
pub fn run(conn: &mut Conn, session: UnixStream) {
    let unread = conn.buffered().to_vec();
    let Stream::Tls(tls) = conn.stream_mut() else {
        return;
    };
    let tls = &mut **tls;
    if let Err(e) = relay(&mut tls.conn, &tls.sock, session, unread) {
        log::debug!("relay ended: {e}");
    }
}

fn relay(
    server: &mut ServerConnection,
    mut tcp: &TcpStream,
    mut session: UnixStream,
    unread: Vec<u8>,
) -> io::Result<()> {
    tcp.set_nonblocking(true)?;
    session.set_nonblocking(true)?;
    let mut to_session = unread;
    let mut buf = vec![0u8; 16 * 1024];
    let mut client_done = false;
    let mut session_done = false;
    let mut session_shut = false;
    loop {
        // Decrypted bytes from the client, as far as there is room.
        while !client_done && to_session.len() < LIMIT {
            match server.reader().read(&mut buf) {
                Ok(0) => client_done = true,
                Ok(n) => to_session.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => client_done = true,
            }
        }
        if !to_session.is_empty() {
            match session.write(&to_session) {
                Ok(n) => {
                    to_session.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The account's process is gone.
                Err(_) => return Ok(()),
            }
        }
        if client_done && to_session.is_empty() && !session_shut {
            let _ = session.shutdown(Shutdown::Write);
            session_shut = true;
        }
        while server.wants_write() {
            match server.write_tls(&mut tcp) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if session_done && !server.wants_write() {
            let _ = tcp.shutdown(Shutdown::Write);
            return Ok(());
        }
        if client_done && session_done {
            return Ok(());
        }
        let mut tcp_events = PollFlags::empty();
        if !client_done && to_session.len() < LIMIT {
            tcp_events |= PollFlags::POLLIN;
        }
        if server.wants_write() {
            tcp_events |= PollFlags::POLLOUT;
        }
        let mut session_events = PollFlags::empty();
        // The account's output is taken only once the last of it is on its
        // way: that is the back-pressure toward a client that does not read.
        if !session_done && !server.wants_write() {
            session_events |= PollFlags::POLLIN;
        }
        if !to_session.is_empty() {
            session_events |= PollFlags::POLLOUT;
        }
        let (tcp_ready, session_ready) = {
            let mut fds = [
                PollFd::new(tcp.as_fd(), tcp_events),
                PollFd::new(session.as_fd(), session_events),
            ];
            let timeout =
                PollTimeout::try_from(QUIET.as_millis() as i32).unwrap_or(PollTimeout::NONE);
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, "quiet")),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let got = |f: &PollFd| f.revents().unwrap_or(PollFlags::empty());
            (got(&fds[0]), got(&fds[1]))
        };
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if tcp_ready.intersects(readable) && tcp_events.contains(PollFlags::POLLIN) {
            match server.read_tls(&mut tcp) {
                Ok(0) => client_done = true,
                Ok(_) => {
                    if let Err(e) = server.process_new_packets() {
                        // Send the alert, then stop.
                        let _ = server.write_tls(&mut tcp);
                        return Err(io::Error::other(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => client_done = true,
            }
        }
        if session_ready.intersects(readable) && session_events.contains(PollFlags::POLLIN) {
            match session.read(&mut buf) {
                Ok(n) if n > 0 => server.writer().write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(_) | Err(_) => {
                    session_done = true;
                    server.send_close_notify();
                }
            }
        }
    }
}
