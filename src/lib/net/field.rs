//! NUL-terminated fields, as the BSD r-services send them (rshd's and
//! rlogind's handshakes): read one of at most `max` bytes, before a
//! deadline, and never a byte past its NUL, so that whatever follows (a
//! command's input, typed-ahead keys) stays in the socket for whoever
//! reads next. MSG_PEEK shows what has arrived; only the field is taken.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Instant;

/// The outcome of reading one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// The field, without its NUL.
    Complete(Vec<u8>),
    /// More than `max` bytes came without a NUL.
    TooLong,
    /// The client closed first.
    Eof,
    /// The deadline passed first.
    TimedOut,
}

/// Read one field from `tcp` (blocking, with read timeouts up to
/// `deadline`; the socket's read timeout is left as it was found).
pub fn read_field(tcp: &TcpStream, max: usize, deadline: Instant) -> io::Result<Field> {
    let before = tcp.read_timeout()?;
    let result = read(tcp, max, deadline);
    tcp.set_read_timeout(before)?;
    result
}

fn read(mut tcp: &TcpStream, max: usize, deadline: Instant) -> io::Result<Field> {
    let mut field = Vec::new();
    let mut buf = vec![0u8; max.min(64 * 1024) + 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Field::TimedOut);
        }
        tcp.set_read_timeout(Some(left))?;
        let room = (max + 1 - field.len()).min(buf.len());
        let n = match tcp.peek(&mut buf[..room]) {
            Ok(0) => return Ok(Field::Eof),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Field::TimedOut)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // Take the bytes up to and with the NUL, or all of them when they
        // are still inside the field.
        let end = buf[..n].iter().position(|&b| b == 0);
        let take = end.map_or(n, |i| i + 1);
        tcp.read_exact(&mut buf[..take])?;
        match end {
            Some(i) => {
                field.extend_from_slice(&buf[..i]);
                return Ok(if field.len() > max {
                    Field::TooLong
                } else {
                    Field::Complete(field)
                });
            }
            None => {
                field.extend_from_slice(&buf[..take]);
                if field.len() > max {
                    return Ok(Field::TooLong);
                }
            }
        }
    }
}

/// Close after a refusal without losing it: stop sending, then read and
/// drop what the client had sent beyond what was read (up to 64 KiB, for
/// at most a second), so that the kernel ends with a FIN, not a reset that
/// would throw the refusal away at the client.
pub fn close_gently(mut tcp: &TcpStream) {
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + std::time::Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Fuzz-free by design (it reads a socket); its tests drive a real one.
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn fields_and_nothing_past_them() {
        let (mut c, s) = pair();
        c.write_all(b"514\0bob\0alice\0ls -l\0typed ahead").unwrap();
        assert_eq!(
            read_field(&s, 5, soon()).unwrap(),
            Field::Complete(b"514".to_vec())
        );
        assert_eq!(
            read_field(&s, 32, soon()).unwrap(),
            Field::Complete(b"bob".to_vec())
        );
        assert_eq!(
            read_field(&s, 32, soon()).unwrap(),
            Field::Complete(b"alice".to_vec())
        );
        assert_eq!(
            read_field(&s, 99, soon()).unwrap(),
            Field::Complete(b"ls -l".to_vec())
        );
        let mut rest = [0u8; 11];
        (&s).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"typed ahead");
    }

    #[test]
    fn a_field_in_pieces_and_an_empty_one() {
        let (mut c, s) = pair();
        let t = std::thread::spawn(move || {
            for piece in [&b"ab"[..], b"cd", b"e\0\0"] {
                c.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_millis(30));
            }
            c
        });
        assert_eq!(
            read_field(&s, 5, soon()).unwrap(),
            Field::Complete(b"abcde".to_vec())
        );
        assert_eq!(read_field(&s, 5, soon()).unwrap(), Field::Complete(vec![]));
        drop(t.join().unwrap());
        assert_eq!(read_field(&s, 5, soon()).unwrap(), Field::Eof);
    }

    #[test]
    fn bounds_and_deadlines() {
        let (mut c, s) = pair();
        c.write_all(b"123456\0").unwrap();
        assert_eq!(read_field(&s, 5, soon()).unwrap(), Field::TooLong);
        let (mut c, s) = pair();
        c.write_all(b"12345").unwrap();
        let quick = Instant::now() + Duration::from_millis(200);
        assert_eq!(read_field(&s, 5, quick).unwrap(), Field::TimedOut);
        assert_eq!(s.read_timeout().unwrap(), None);
    }
}
