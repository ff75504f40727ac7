//! The privileged port helper: forked as root just before a session drops
//! its privileges, it does one thing only: bind a TCP socket to the
//! control connection's local address and the data port (20, or the
//! control port minus one) and hand it back over a socketpair with
//! SCM_RIGHTS. It takes no other request and no argument: any byte asks
//! for one socket. It ends when the session closes its end.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::runtime::supervise;
use crate::sys;

/// The port active-mode data connections come from.
pub fn data_port(control: SocketAddr) -> u16 {
    if control.port() == 21 {
        20
    } else {
        control.port().saturating_sub(1).max(1)
    }
}

/// Fork the helper; the session keeps the returned end.
pub fn spawn(control_local: SocketAddr) -> io::Result<UnixStream> {
    let (mine, theirs) = UnixStream::pair()?;
    // The helper holds nothing but its channel.
    let keep = [theirs.as_raw_fd()];
    supervise::spawn(supervise::Kind::Helper, &keep, move || {
        serve(theirs, control_local);
        0
    })?;
    Ok(mine)
}

fn bind_data_port(local: SocketAddr) -> io::Result<Socket> {
    let addr = SocketAddr::new(local.ip(), data_port(local));
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_cloexec(true)?;
    s.bind(&SockAddr::from(addr))?;
    Ok(s)
}

fn serve(mut chan: UnixStream, local: SocketAddr) {
    let mut req = [0u8; 1];
    loop {
        match chan.read(&mut req) {
            Ok(1) => {}
            _ => return,
        }
        match bind_data_port(local) {
            Ok(sock) => {
                let fds = [sock.as_raw_fd()];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                let iov = [io::IoSlice::new(b"k")];
                if sendmsg::<()>(chan.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).is_err() {
                    return;
                }
            }
            Err(e) => {
                log::warn!("port helper: cannot bind data port: {e}");
                if chan.write_all(b"e").is_err() {
                    return;
                }
            }
        }
    }
}

/// Ask the helper for a socket bound to the data port.
pub fn request(chan: &mut UnixStream) -> io::Result<Socket> {
    chan.write_all(b"b")?;
    let (byte, fd) = sys::recv_fd(chan.as_fd())?;
    match (byte, fd) {
        (b'k', Some(fd)) => Ok(Socket::from(fd)),
        _ => Err(io::Error::other(
            "the port helper could not bind the data port",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_port_is_20_or_control_minus_one() {
        assert_eq!(data_port("0.0.0.0:21".parse().unwrap()), 20);
        assert_eq!(data_port("[::1]:21".parse().unwrap()), 20);
        assert_eq!(data_port("127.0.0.1:2121".parse().unwrap()), 2120);
        assert_eq!(data_port("127.0.0.1:1".parse().unwrap()), 1);
    }
}
