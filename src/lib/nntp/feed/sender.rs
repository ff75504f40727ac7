//! One peer's sender: a connection to the peer, its queue offered from the
//! saved position. With streaming (MODE STREAM answered 203) articles go
//! in batches: the CHECKs of a batch in one write, then a TAKETHIS with
//! the article for each the peer wants, then their answers; otherwise one
//! IHAVE at a time. The stored files are already in wire form, so an
//! article goes out as it lies on disk. The position is saved (durably)
//! after each batch, past every article with a final answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::client::{self, Fate};
use super::queue::{self, Entry};
use crate::nntp::peers::Peer;
use crate::nntp::spool::Spool;

/// Articles offered per batch.
const BATCH: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest reply line read.
const MAX_REPLY: u64 = 4096;

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: u64,
    pub declined: u64,
    /// Why the run stopped before the queue's end (the peer is down, said
    /// "later", or misbehaved): try again after a while.
    pub deferred: Option<String>,
}

struct Link {
    r: BufReader<TcpStream>,
    w: io::BufWriter<TcpStream>,
}

impl Link {
    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut l = Vec::new();
        let n = (&mut self.r).take(MAX_REPLY).read_until(b'\n', &mut l)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection",
            ));
        }
        while l.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            l.pop();
        }
        Ok(l)
    }

    fn code(&mut self) -> io::Result<u16> {
        let l = self.line()?;
        client::code(&l).ok_or_else(|| {
            io::Error::other(format!(
                "not a reply: {}",
                crate::auth::printable(&String::from_utf8_lossy(&l))
            ))
        })
    }

    fn command(&mut self, c: &str) -> io::Result<()> {
        self.w.write_all(c.as_bytes())?;
        self.w.write_all(b"\r\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

fn connect(peer: &Peer) -> io::Result<Link> {
    let mut last = io::Error::other("no address");
    for addr in (peer.host.as_str(), peer.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                let _ = s.set_nodelay(true);
                return Ok(Link {
                    r: BufReader::with_capacity(64 * 1024, s.try_clone()?),
                    w: io::BufWriter::with_capacity(256 * 1024, s),
                });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The stored article (wire form, ending ".\r\n"), or None when gone.
fn article(spool: &Spool, e: &Entry) -> Option<Vec<u8>> {
    // A writer queues its articles under the spool lock and writes their
    // files just after releasing it (so that writers run in parallel): an
    // entry another writer queued a moment ago may not have its file yet.
    // Give it that moment before taking the article as gone (cancelled,
    // expired, or its write failed). A file being written does not end
    // with its terminating line yet.
    let path = spool.article(&e.group, e.number);
    let complete = |r: &io::Result<Vec<u8>>| match r {
        Ok(d) => d.ends_with(b"\r\n.\r\n"),
        Err(err) => err.kind() != io::ErrorKind::NotFound,
    };
    let mut read = std::fs::read(&path);
    for _ in 0..ARTICLE_WAIT_STEPS {
        if complete(&read) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        read = std::fs::read(&path);
    }
    // Never a truncated article: one still short is taken as gone.
    read.ok().filter(|d| d.ends_with(b"\r\n.\r\n"))
}

/// How many times (20 ms apart) a missing article file is looked for
/// again: 2 s.
const ARTICLE_WAIT_STEPS: u32 = 100;

/// The fates of one batch, streaming.
fn stream_batch(link: &mut Link, spool: &Spool, batch: &[Entry]) -> io::Result<Vec<Fate>> {
    for e in batch {
        link.command(&format!("CHECK {}", e.message_id))?;
    }
    link.flush()?;
    let mut fates: Vec<Option<Fate>> = Vec::with_capacity(batch.len());
    for _ in batch {
        let c = link.code()?;
        fates.push(client::check(c).map_err(io::Error::other)?);
    }
    let mut sent = Vec::new();
    for (i, e) in batch.iter().enumerate() {
        if fates[i].is_some() {
            continue;
        }
        match article(spool, e) {
            Some(a) => {
                link.command(&format!("TAKETHIS {}", e.message_id))?;
                link.w.write_all(&a)?;
                sent.push(i);
            }
            None => fates[i] = Some(Fate::Gone),
        }
    }
    link.flush()?;
    for i in sent {
        let c = link.code()?;
        fates[i] = Some(client::takethis(c).map_err(io::Error::other)?);
    }
    Ok(fates
        .into_iter()
        .map(|f| f.unwrap_or(Fate::Later))
        .collect())
}

/// The fates of one batch, one IHAVE at a time (stopping at a "later").
fn ihave_batch(link: &mut Link, spool: &Spool, batch: &[Entry]) -> io::Result<Vec<Fate>> {
    let mut fates = Vec::with_capacity(batch.len());
    for e in batch {
        let Some(a) = article(spool, e) else {
            fates.push(Fate::Gone);
            continue;
        };
        link.command(&format!("IHAVE {}", e.message_id))?;
        link.flush()?;
        let c = link.code()?;
        let fate = match client::ihave_offer(c).map_err(io::Error::other)? {
            Some(f) => f,
            None => {
                link.w.write_all(&a)?;
                link.flush()?;
                let c = link.code()?;
                client::ihave_done(c).map_err(io::Error::other)?
            }
        };
        fates.push(fate);
        if fate == Fate::Later {
            break;
        }
    }
    Ok(fates)
}

/// Offer `peer` everything queued for it. Runs as the spool's owner.
pub fn feed_peer(spool: &Spool, peer: &Peer) -> Report {
    let mut report = Report::default();
    let mut pos = queue::position(spool, &peer.name);
    if !queue::pending(spool, &peer.name) {
        return report;
    }
    let mut link = match connect(peer) {
        Ok(l) => l,
        Err(e) => {
            report.deferred = Some(format!(
                "cannot connect to {}:{}: {e}",
                peer.host, peer.port
            ));
            return report;
        }
    };
    let result = (|| -> io::Result<Option<String>> {
        let c = link.code()?;
        if c != 200 && c != 201 {
            return Ok(Some(format!("greeted with {c}")));
        }
        link.command("MODE STREAM")?;
        link.flush()?;
        let streaming = link.code()? == 203;
        loop {
            let entries = queue::read_from(spool, &peer.name, pos, 4 << 20)?;
            if entries.is_empty() {
                return Ok(None);
            }
            let batch = &entries[..entries.len().min(BATCH)];
            let fates = if streaming {
                stream_batch(&mut link, spool, batch)?
            } else {
                ihave_batch(&mut link, spool, batch)?
            };
            for f in &fates {
                match f {
                    Fate::Sent => report.sent += 1,
                    Fate::Declined => report.declined += 1,
                    _ => {}
                }
            }
            let ends: Vec<(u64, Fate)> = batch
                .iter()
                .map(|e| e.end)
                .zip(fates.iter().copied())
                .collect();
            pos = queue::done_up_to(spool, &peer.name, client::advance(pos, &ends))?;
            if fates.contains(&Fate::Later) {
                return Ok(Some("the peer asked to try later".into()));
            }
        }
    })();
    report.deferred = match result {
        Ok(d) => d,
        Err(e) => Some(format!("{}:{}: {e}", peer.host, peer.port)),
    };
    let _ = link.command("QUIT");
    let _ = link.flush();
    report
}
