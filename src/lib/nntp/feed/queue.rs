//! A peer's feed queue: `outgoing/PEER`, lines `<message-id> group/number`
//! appended by the spool writers under the spool lock as articles arrive,
//! and `outgoing/PEER.pos`, how far the peer's sender got (a byte offset,
//! written durably after each batch). An article is offered once: the
//! position only moves past articles the peer took, refused or already
//! had, and a sender cut short starts again from there (CHECK finds what
//! the peer already has). When the sender has read everything, the queue
//! is emptied under the spool lock.

use std::io;
use std::path::{Path, PathBuf};

use crate::nntp::command::{valid_group_name, valid_message_id};
use crate::nntp::spool::Spool;

/// One queued article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub message_id: String,
    pub group: String,
    pub number: u64,
    /// Offset just past this entry's line.
    pub end: u64,
}

/// The queued entries of `data` (the queue from `start`); lines that do
/// not parse are skipped, a partial last line is left for later.
pub fn parse(data: &[u8], start: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = start;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        at += line.len() as u64;
        let Ok(text) = std::str::from_utf8(&line[..line.len() - 1]) else {
            continue;
        };
        let mut w = text.split(' ');
        let (Some(id), Some(token), None) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let Some((group, n)) = token.rsplit_once('/') else {
            continue;
        };
        let Ok(number) = n.parse() else {
            continue;
        };
        if !valid_message_id(id) || !valid_group_name(group) {
            continue;
        }
        out.push(Entry {
            message_id: id.to_string(),
            group: group.to_string(),
            number,
            end: at,
        });
    }
    out
}

pub fn queue_path(spool: &Spool, peer: &str) -> PathBuf {
    spool.outgoing_dir().join(peer)
}

fn pos_path(spool: &Spool, peer: &str) -> PathBuf {
    spool.outgoing_dir().join(format!("{peer}.pos"))
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// How far the sender got (0 when unknown or past the end: the queue was
/// emptied after the position was written).
pub fn position(spool: &Spool, peer: &str) -> u64 {
    let pos = std::fs::read_to_string(pos_path(spool, peer))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if pos > len(&queue_path(spool, peer)) {
        0
    } else {
        pos
    }
}

pub fn set_position(spool: &Spool, peer: &str, pos: u64) -> io::Result<()> {
    crate::fs::durable::write_file(&pos_path(spool, peer), 0o644, format!("{pos}\n").as_bytes())
}

/// Whether the peer has articles waiting.
pub fn pending(spool: &Spool, peer: &str) -> bool {
    len(&queue_path(spool, peer)) > position(spool, peer)
}

/// The entries from the position, at most `max_bytes` of the queue.
pub fn read_from(spool: &Spool, peer: &str, pos: u64, max_bytes: u64) -> io::Result<Vec<Entry>> {
    use std::io::{Read, Seek};
    let mut f = match std::fs::File::open(queue_path(spool, peer)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    f.seek(io::SeekFrom::Start(pos))?;
    let mut data = Vec::new();
    f.take(max_bytes).read_to_end(&mut data)?;
    Ok(parse(&data, pos))
}

/// Everything up to `pos` was handled: when that is the whole queue,
/// empty it (under the spool lock, so no writer appends meanwhile).
/// Returns the position to go on from.
pub fn done_up_to(spool: &Spool, peer: &str, pos: u64) -> io::Result<u64> {
    let q = queue_path(spool, peer);
    if len(&q) == pos && pos > 0 {
        let _lock = spool.lock(true)?;
        if len(&q) == pos {
            // Emptied first: a crash before the position is written
            // leaves a position past the end, which reads as 0.
            std::fs::OpenOptions::new()
                .write(true)
                .open(&q)?
                .set_len(0)?;
            set_position(spool, peer, 0)?;
            return Ok(0);
        }
    }
    set_position(spool, peer, pos)?;
    Ok(pos)
}

/// Fuzzing entry point: any bytes as a feed queue.
pub fn fuzz_queue(data: &[u8]) {
    let entries = parse(data, 0);
    let mut last = 0;
    for e in entries {
        assert!(e.end > last && e.end <= data.len() as u64);
        last = e.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let data = b"<a@b> lab.test/3\nbad line\n<c@d> x/../y/1\n<e@f> lab.test/4\n<g@h> lab.t";
        let e = parse(data, 10);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].message_id, "<a@b>");
        assert_eq!(e[0].group, "lab.test");
        assert_eq!(e[0].number, 3);
        assert_eq!(e[0].end, 10 + 17);
        assert_eq!(e[1].number, 4);
        assert_eq!(e[1].end, 10 + 58);
    }

    #[test]
    fn positions_and_emptying() {
        let dir = std::env::temp_dir().join(format!("nntp-feedq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spool = Spool::new(&dir);
        spool.create().unwrap();
        assert!(!pending(&spool, "up"));
        std::fs::write(queue_path(&spool, "up"), b"<a@b> g/1\n<c@d> g/2\n").unwrap();
        assert!(pending(&spool, "up"));
        let e = read_from(&spool, "up", 0, 1 << 20).unwrap();
        assert_eq!(e.len(), 2);
        done_up_to(&spool, "up", e[0].end).unwrap();
        assert_eq!(position(&spool, "up"), e[0].end);
        let rest = read_from(&spool, "up", e[0].end, 1 << 20).unwrap();
        assert_eq!(rest.len(), 1);
        done_up_to(&spool, "up", rest[0].end).unwrap();
        assert_eq!(
            std::fs::metadata(queue_path(&spool, "up")).unwrap().len(),
            0
        );
        assert_eq!(position(&spool, "up"), 0);
        assert!(!pending(&spool, "up"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_queue(b"<a@b> g/1\n\xff\n<a@b> g/x\n");
    }
}
