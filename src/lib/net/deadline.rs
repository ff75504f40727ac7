//! A reader that fails once a deadline has passed, however slowly the peer
//! dribbles bytes: each read waits at most for the time left. The clients
//! of the mail queue (SMTP relay, LMTP) read their replies through it.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// A stream whose reads can be given a timeout (a socket, or a TLS stream
/// over one).
pub trait ReadTimeout {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

pub struct Deadline<'a, S> {
    pub s: &'a mut S,
    pub until: Instant,
}

impl<S: Read + ReadTimeout> Read for Deadline<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self
            .until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?;
        self.s.set_read_timeout(Some(left))?;
        self.s.read(buf)
    }
}
