//! A large Maildir folder's view saved for the next session
//! (`classicd-view`): the UIDs and file names a reading of the
//! directories found, with the stamps of new/ and cur/ and the place in
//! the modseq log it was exact for. A session opening the folder starts
//! from it and follows the log from there (follow.rs) instead of reading
//! 10,000 names and the whole uidlist, as Dovecot starts from its index.
//!
//! Only a verified view is saved (its stamps two seconds old when it was
//! read: no change can hide in their tick), by a session that can write
//! the folder. It is a cache: written aside and renamed, never fsynced;
//! one that does not read whole (its count line), names another
//! UIDVALIDITY, or a log since compacted, is passed over and the
//! directories are read.
//!
//! ```text
//! classicd-view 1 V1700000000 N10001 L1234.5678 S12.1700000000.5,13.1700000000.6 C10000
//! 1 n 1700000000.M1P2.host,S=2136,W=2173
//! 2 c 1700000001.M2P2.host,S=2136,W=2173:2,S
//! E 10000
//! ```

use std::fs;
use std::io::{self, Write};

use super::{follow, Folder, Message};
use crate::mail::store::flags::FileName;
use crate::mail::store::modlog::{parse_stamps, render_stamps, DirStamps};

pub const FILE: &str = "classicd-view";

/// Smaller folders are read in less time than the view takes to load.
pub const MIN_MESSAGES: usize = if cfg!(test) { 3 } else { 1000 };

/// A view saved: what the header line says, and the messages.
struct Saved {
    uidvalidity: u32,
    uidnext: u32,
    log: (u64, u64),
    stamps: DirStamps,
    messages: Vec<(u32, bool, String)>,
}

/// A name that stays inside new/ or cur/.
fn plausible_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// The header line: everything but the messages (and their count).
fn parse_header(line: &str) -> Option<(Saved, usize)> {
    let mut head = line.split(' ');
    if head.next()? != "classicd-view" || head.next()? != "1" {
        return None;
    }
    let mut field = |letter: char| head.next()?.strip_prefix(letter).map(str::to_string);
    let uidvalidity: u32 = field('V')?.parse().ok()?;
    let uidnext: u32 = field('N')?.parse().ok()?;
    let log = field('L')?;
    let (inode, offset) = log.split_once('.')?;
    let log = (inode.parse().ok()?, offset.parse().ok()?);
    let stamps = parse_stamps(&field('S')?)?;
    let count: usize = field('C')?.parse().ok()?;
    if uidvalidity == 0 {
        return None;
    }
    let saved = Saved {
        uidvalidity,
        uidnext,
        log,
        stamps,
        messages: Vec::new(),
    };
    Some((saved, count))
}

/// The message lines after the header, and the end line.
fn parse_body(text: &str, saved: &mut Saved, count: usize) -> Option<()> {
    let mut lines = text.split('\n');
    let mut messages = Vec::with_capacity(count.min(1 << 20));
    let mut last = 0;
    for line in lines.by_ref().take(count) {
        let mut it = line.splitn(3, ' ');
        let uid: u32 = it.next()?.parse().ok()?;
        let in_new = match it.next()? {
            "n" => true,
            "c" => false,
            _ => return None,
        };
        let name = it.next()?;
        if uid <= last || uid >= saved.uidnext || !plausible_name(name) {
            return None;
        }
        last = uid;
        messages.push((uid, in_new, name.to_string()));
    }
    if messages.len() != count || lines.next()? != format!("E {count}") {
        return None;
    }
    saved.messages = messages;
    Some(())
}

fn parse(text: &str) -> Option<Saved> {
    let (head, body) = text.split_once('\n')?;
    let (mut saved, count) = parse_header(head)?;
    parse_body(body, &mut saved, count)?;
    Some(saved)
}

/// UIDVALIDITY and next UID from the first line of the folder's
/// dovecot-uidlist (`3 V1700000000 N43 G...`, or version 1's `1 V N`).
fn uidlist_header(dir: &std::path::Path) -> Option<(u32, u32)> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = fs::File::open(dir.join(super::UIDLIST)).ok()?;
    let n = f.read(&mut head).ok()?;
    let text = std::str::from_utf8(&head[..n]).ok()?;
    let line = text.split('\n').next()?;
    let mut fields = line.split(' ');
    match fields.next()? {
        "1" => Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?)),
        "3" => {
            let (mut v, mut next) = (None, None);
            for f in fields {
                if let Some(x) = f.strip_prefix('V') {
                    v = x.parse().ok();
                } else if let Some(x) = f.strip_prefix('N') {
                    next = x.parse().ok();
                }
            }
            Some((v?, next?))
        }
        _ => None,
    }
}

impl Folder {
    /// Start a view from the saved one, when there is one that the log
    /// can bring up to date: true when the view was taken from it.
    pub(super) fn load_view(&mut self, take_recent: bool) -> io::Result<bool> {
        use std::io::{BufRead, Read};
        let Ok(file) = fs::File::open(self.dir.join(FILE)) else {
            return Ok(false);
        };
        let mut file = io::BufReader::new(file);
        let mut head = String::new();
        if file.read_line(&mut head).is_err() {
            return Ok(false);
        }
        let Some((mut saved, count)) = parse_header(head.trim_end_matches('\n')) else {
            return Ok(false);
        };
        // The uidlist must still be the one the view was numbered from.
        let Some((validity, next_uid)) = uidlist_header(&self.dir) else {
            return Ok(false);
        };
        if validity != saved.uidvalidity {
            return Ok(false);
        }
        let (inode, offset) = self.modlog.position();
        // The log compacted (another file) or cut since: its events
        // cannot be followed from that point.
        if saved.log.1 > offset || (saved.log.1 > 0 && saved.log.0 != inode) {
            return Ok(false);
        }
        // Taken only when the log leads from it to the directories as
        // they are (a busy folder's view is soon behind: reading the
        // directories is then the cheaper way).
        self.modlog.drop_events_before(saved.log.1);
        let now = crate::mail::store::modlog::dir_stamps(&self.dir)?;
        if follow::chain_end(saved.stamps, self.modlog.pending_events()) != Some(now) {
            return Ok(false);
        }
        let mut body = String::new();
        if file.read_to_string(&mut body).is_err() || parse_body(&body, &mut saved, count).is_none()
        {
            return Ok(false);
        }
        self.uidvalidity = saved.uidvalidity;
        self.uidnext = saved.uidnext.max(next_uid);
        self.messages = saved
            .messages
            .into_iter()
            .map(|(uid, in_new, name)| {
                let parsed = FileName::parse(&name);
                let (flags, other) = parsed.flags();
                Message {
                    uid,
                    base: parsed.base.to_string(),
                    size: parsed.sizes().0,
                    in_new,
                    flags,
                    other,
                    recent: false,
                    modseq: self.modlog.modseq(uid),
                    name,
                }
            })
            .collect();
        self.view_at = Some(saved.stamps);
        self.verified = true;
        self.unverified_since = None;
        self.view_loaded = true;
        self.mark_recent(0, take_recent && !self.read_only)?;
        Ok(true)
    }

    /// Save the view a reading of the directories made, exact at `stamps`
    /// and log position `log`, for the next session. Failures only cost
    /// the cache.
    pub(super) fn save_view(&self, stamps: DirStamps, log: (u64, u64)) {
        if self.read_only || self.uidvalidity == 0 {
            return;
        }
        if self.messages.len() < MIN_MESSAGES {
            // Grown small: a view saved when it was large only costs.
            let _ = fs::remove_file(self.dir.join(FILE));
            return;
        }
        let mut out = String::with_capacity(self.messages.len() * 64);
        out.push_str(&format!(
            "classicd-view 1 V{} N{} L{}.{} S{} C{}\n",
            self.uidvalidity,
            self.uidnext,
            log.0,
            log.1,
            render_stamps(&stamps),
            self.messages.len()
        ));
        for m in &self.messages {
            let sub = if m.in_new { 'n' } else { 'c' };
            out.push_str(&format!("{} {sub} {}\n", m.uid, m.name));
        }
        out.push_str(&format!("E {}\n", self.messages.len()));
        let target = self.dir.join(FILE);
        let Ok(mut f) = crate::fs::AsideFile::beside(&target, 0o600) else {
            return;
        };
        if f.write_all(out.as_bytes()).is_ok() {
            let _ = f.place(&target);
        }
    }
}

/// Fuzzing entry point: any text is read without a panic; a view that
/// reads names only files inside new/ or cur/, with rising UIDs below its
/// UIDNEXT, and written back reads the same.
pub fn fuzz_viewcache(data: &[u8]) {
    let Some(v) = parse(&String::from_utf8_lossy(data)) else {
        return;
    };
    let mut last = 0;
    for (uid, _, name) in &v.messages {
        assert!(*uid > last && *uid < v.uidnext && plausible_name(name));
        last = *uid;
    }
    let mut text = format!(
        "classicd-view 1 V{} N{} L{}.{} S{} C{}\n",
        v.uidvalidity,
        v.uidnext,
        v.log.0,
        v.log.1,
        render_stamps(&v.stamps),
        v.messages.len()
    );
    for (uid, in_new, name) in &v.messages {
        text.push_str(&format!(
            "{uid} {} {name}\n",
            if *in_new { 'n' } else { 'c' }
        ));
    }
    text.push_str(&format!("E {}\n", v.messages.len()));
    let again = parse(&text).expect("written back, reads");
    assert_eq!(again.messages, v.messages);
    assert_eq!(
        (again.uidvalidity, again.uidnext, again.log, again.stamps),
        (v.uidvalidity, v.uidnext, v.log, v.stamps)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_odd_view_is_passed_over() {
        let good = "classicd-view 1 V7 N4 L5.10 S1.2.3,4.5.6 C2\n1 n a\n3 c b:2,S\nE 2\n";
        let s = parse(good).expect("reads");
        assert_eq!(s.messages.len(), 2);
        assert_eq!(s.log, (5, 10));
        assert_eq!(s.stamps, ((1, 2, 3), (4, 5, 6)));
        // Cut short, names leaving the directory, UIDs out of order or
        // past UIDNEXT: none is taken.
        for bad in [
            &good[..good.len() - 4],
            "classicd-view 1 V7 N4 L5.10 S1.2.3,4.5.6 C1\n1 n ../x\nE 1\n",
            "classicd-view 1 V7 N4 L5.10 S1.2.3,4.5.6 C1\n1 n .hidden\nE 1\n",
            "classicd-view 1 V7 N4 L5.10 S1.2.3,4.5.6 C2\n3 n a\n1 n b\nE 2\n",
            "classicd-view 1 V7 N4 L5.10 S1.2.3,4.5.6 C1\n9 n a\nE 1\n",
            "classicd-view 1 V0 N4 L5.10 S1.2.3,4.5.6 C0\nE 0\n",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
