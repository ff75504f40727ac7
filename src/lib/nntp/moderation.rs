//! Postings to a moderated group go to its moderator by mail (RFC 5537
//! 3.5.1), through the SMTP server of `mail_relay` (the suite's smtpd):
//! one short SMTP transaction, every reply read with a bound and a timeout.
//! The reply parsing is pure ([`Replies`]); [`send`] does the I/O.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest reply line, and most lines in one reply.
const MAX_REPLY_LINE: usize = 1024;
const MAX_REPLY_LINES: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(60);

/// One SMTP reply: its code and last line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// Read one (possibly multi-line) reply.
pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let mut lines = 0;
    loop {
        let mut line = Vec::new();
        let n = io::Read::take(&mut *r, MAX_REPLY_LINE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the mail server closed the connection",
            ));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let code = text
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| {
                io::Error::other(format!("bad SMTP reply: {}", crate::auth::printable(&text)))
            })?;
        lines += 1;
        if text.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply { code, text });
        }
        if lines >= MAX_REPLY_LINES {
            return Err(io::Error::other("SMTP reply too long"));
        }
    }
}

fn expect(r: &mut impl BufRead, ok: u16) -> io::Result<()> {
    let reply = read_reply(r)?;
    if reply.code / 100 != ok / 100 {
        return Err(io::Error::other(format!(
            "the mail server said: {}",
            crate::auth::printable(&reply.text)
        )));
    }
    Ok(())
}

/// Mail `article` (canonical text, its header first) to `to`, through
/// `relay`, from `from`, with a To: line added in front.
pub fn send(
    relay: &(String, u16),
    helo: &str,
    from: &str,
    to: &str,
    article: &[u8],
) -> io::Result<()> {
    let addr = (relay.0.as_str(), relay.1)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("the mail relay has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let mut w = tcp.try_clone()?;
    let mut r = BufReader::new(tcp);
    expect(&mut r, 220)?;
    w.write_all(format!("EHLO {helo}\r\n").as_bytes())?;
    expect(&mut r, 250)?;
    w.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())?;
    expect(&mut r, 250)?;
    w.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())?;
    expect(&mut r, 250)?;
    w.write_all(b"DATA\r\n")?;
    expect(&mut r, 354)?;
    let mut msg = format!("To: {to}\r\n").into_bytes();
    let mut s = crate::wire::DotStuffer::new();
    s.push(article, &mut msg);
    s.finish(&mut msg);
    w.write_all(&msg)?;
    expect(&mut r, 250)?;
    let _ = w.write_all(b"QUIT\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let mut r = io::Cursor::new(b"250-a\r\n250-b\r\n250 c\r\n".to_vec());
        assert_eq!(
            read_reply(&mut r).unwrap(),
            Reply {
                code: 250,
                text: "250 c".into()
            }
        );
        let mut r = io::Cursor::new(b"xyz\r\n".to_vec());
        assert!(read_reply(&mut r).is_err());
        let mut r = io::Cursor::new(b"".to_vec());
        assert!(read_reply(&mut r).is_err());
        let many = "250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        let mut r = io::Cursor::new(many.into_bytes());
        assert!(read_reply(&mut r).is_err());
    }
}
