//! Waking a queue runner: one short line written to a FIFO in its spool,
//! `M<id>` (a new entry), `S` (rescan the spool), `F` (flush: retry
//! everything now). A missing runner is noticed because nobody holds the
//! FIFO open for reading. The lines are parsed purely ([`Kick`]); the FIFO
//! is at the edge ([`send`], [`Doorbell`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// One wake-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kick {
    /// A new entry to load.
    Entry(String),
    /// Rescan the spool.
    Scan,
    /// Retry everything now.
    Flush,
}

impl Kick {
    /// The line for the FIFO, with its LF.
    pub fn encode(&self) -> Vec<u8> {
        let mut line = match self {
            Kick::Entry(id) => format!("M{id}").into_bytes(),
            Kick::Scan => b"S".to_vec(),
            Kick::Flush => b"F".to_vec(),
        };
        line.push(b'\n');
        line
    }

    /// A line from the FIFO, without its LF. Anything unknown asks for a
    /// rescan (nothing is missed that way); an entry name that is not
    /// UTF-8 is ignored (None).
    pub fn parse(line: &[u8]) -> Option<Kick> {
        match line.split_first() {
            Some((b'M', id)) => std::str::from_utf8(id)
                .ok()
                .map(|id| Kick::Entry(id.to_string())),
            Some((b'F', _)) => Some(Kick::Flush),
            _ => Some(Kick::Scan),
        }
    }
}

/// Write one wake-up to the FIFO at `path`. Opening a FIFO for writing
/// without blocking fails (ENXIO) when nobody holds it for reading: that is
/// how a missing runner is noticed (false). The pipe buffer holds thousands
/// of wake-ups; when it is full the runner is alive and will rescan.
pub fn send(path: &Path, kick: &Kick) -> bool {
    let f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return false,
    };
    if !f.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        return false;
    }
    let line = kick.encode();
    // Below PIPE_BUF a write is all or nothing.
    match (&f).write(&line) {
        Ok(n) => n == line.len(),
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// The runner's end of the FIFO, open for reading and writing so that it
/// never reports end-of-file, and non-blocking: poll its fd, then `drain`.
pub struct Doorbell {
    fifo: File,
}

/// Reads that fill this much of the pipe may have had wake-ups refused.
const NEARLY_FULL: usize = 48 * 1024;
/// No wake-up line is longer; a longer one is garbage.
const MAX_LINE: usize = 4096;

impl Doorbell {
    /// Make a fresh FIFO at `path` (mode 0600; whatever was there goes).
    pub fn bind(path: &Path) -> io::Result<Doorbell> {
        let _ = std::fs::remove_file(path);
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
        let fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Doorbell { fifo })
    }

    /// Every wake-up waiting, in order. When some may have been lost (a
    /// nearly full pipe, garbage) a `Scan` is among them.
    pub fn drain(&mut self) -> Vec<Kick> {
        let mut kicks = Vec::new();
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = match (&self.fifo).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            total += n;
            carry.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(p) = carry[start..].iter().position(|&b| b == b'\n') {
                kicks.extend(Kick::parse(&carry[start..start + p]));
                start += p + 1;
            }
            carry.drain(..start);
            if carry.len() > MAX_LINE {
                carry.clear();
                kicks.push(Kick::Scan);
            }
        }
        if total >= NEARLY_FULL {
            kicks.push(Kick::Scan);
        }
        kicks
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fifo.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for k in [Kick::Entry("ABC123".into()), Kick::Scan, Kick::Flush] {
            let line = k.encode();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(Kick::parse(&line[..line.len() - 1]), Some(k));
        }
        assert_eq!(Kick::parse(b""), Some(Kick::Scan));
        assert_eq!(Kick::parse(b"?"), Some(Kick::Scan));
        assert_eq!(Kick::parse(b"M\xff"), None);
    }

    #[test]
    fn a_doorbell_hears_what_is_sent_and_nobody_else_does() {
        let dir = std::env::temp_dir().join(format!("classicd-kick-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kick");
        assert!(!send(&path, &Kick::Scan), "nobody listens yet");
        std::fs::write(&path, b"").unwrap();
        assert!(!send(&path, &Kick::Scan), "not a FIFO");
        let mut bell = Doorbell::bind(&path).unwrap();
        assert!(bell.drain().is_empty());
        assert!(send(&path, &Kick::Entry("A1".into())));
        assert!(send(&path, &Kick::Flush));
        assert_eq!(bell.drain(), vec![Kick::Entry("A1".into()), Kick::Flush]);
        drop(bell);
        assert!(!send(&path, &Kick::Scan), "the runner is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
