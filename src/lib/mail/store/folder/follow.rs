//! Following other sessions through the modseq log instead of reading a
//! Maildir folder's directories again after each of their changes.
//!
//! Every change imapd or pop3d makes to new/ and cur/ is a batch under
//! the log's lock that ends with the directories' stamps before and after
//! it (modlog.rs). A view exact at stamps A stays exact by applying the
//! batches logged since, when they lead from A, one to the next, to the
//! stamps the directories have now. Anything else that moved them (a
//! delivery, a mail reader working on the files) breaks that chain, and
//! the directories are read.
//!
//! A directory's mtime moves in clock ticks, so a change made by another
//! program within the tick of a batch's last one can leave the stamps as
//! the batch logged them. Such a view is *unverified*: it is followed for
//! a second at most before the directories are read again (while the
//! folder is busy, once a second, as Dovecot does with its "dirty"
//! directories), and once its stamps are settled (two seconds old, or a
//! tenth of a second on a file system with sub-second times) a reading
//! makes it verified for as long as they do not move.

use std::collections::HashSet;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Changes, Folder, Message};
use crate::mail::store::flags::FileName;
use crate::mail::store::modlog::{DirStamps, Event, Stamp};

/// How long an unverified view is followed before the directories are
/// read again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Whether both stamps are old enough that no change can still fall
/// within their tick: two seconds, or a tenth of one where the file system
/// keeps sub-second times (a stamp with nanoseconds; those file systems
/// take the time from the kernel's clock tick, 10 ms at most).
pub fn settled(s: &DirStamps) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let old_enough = |(_, secs, nanos): &Stamp| {
        let at = i128::from(*secs) * 1_000_000_000 + i128::from(*nanos);
        let settle: i128 = if *nanos != 0 {
            100_000_000
        } else {
            2_000_000_000
        };
        now - at >= settle
    };
    old_enough(&s.0) && old_enough(&s.1)
}

/// Where the batches among `events` lead from `from`: None when one does
/// not start where the one before it ended (something else moved the
/// directories between them).
pub(super) fn chain_end<'a>(
    from: DirStamps,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<DirStamps> {
    let mut at = from;
    for e in events {
        if let Event::Stamps(before, after) = e {
            if *before != at {
                return None;
            }
            at = *after;
        }
    }
    Some(at)
}

impl Folder {
    /// Whether the view can be brought to `now` by applying `events`
    /// (taken from the log with those stamps) without reading the
    /// directories.
    pub(super) fn follows(&mut self, now: DirStamps, events: &[Event]) -> bool {
        let Some(from) = self.view_at else {
            return false;
        };
        if chain_end(from, events) != Some(now) {
            return false;
        }
        if now != from && self.verified {
            // Taken from the log, not from a reading.
            self.verified = false;
            self.unverified_since = Some(Instant::now());
        }
        if self.verified {
            return true;
        }
        let young = self.unverified_since.is_some_and(|t| t.elapsed() < RECHECK);
        young && !settled(&now)
    }

    /// When an IDLE wait should look at the folder again although nothing
    /// woke it: an unverified view must be read once its stamps settle.
    pub fn look_again_in(&self) -> Option<Duration> {
        if self.mbox.is_some() || self.verified || self.view_at.is_none() {
            return None;
        }
        Some(RECHECK + Duration::from_millis(100))
    }

    /// Apply what the log says other sessions (and this one) did.
    pub(super) fn apply_events(
        &mut self,
        events: &[Event],
        changes: &mut Changes,
        take_recent: bool,
    ) -> io::Result<()> {
        let mut removed: HashSet<u32> = HashSet::new();
        let mut touched: Vec<u32> = Vec::new();
        let last_shown = self.messages.last().map_or(0, |m| m.uid);
        for e in events {
            match e {
                Event::Flags(uid, letters) => {
                    if let Some(i) = self.index_of_uid(*uid) {
                        if self.take_letters(i, letters) {
                            changes.flags.push(*uid);
                        }
                        touched.push(*uid);
                    }
                }
                Event::Removed(uid) => {
                    removed.insert(*uid);
                }
                Event::Added { uid, in_new, name } => {
                    // UIDs are given under the log's lock: they rise
                    // through it. One already shown was read from the
                    // directories first.
                    if self.messages.last().is_some_and(|m| m.uid >= *uid) {
                        continue;
                    }
                    self.uidnext = self.uidnext.max(uid.saturating_add(1));
                    let parsed = FileName::parse(name);
                    let (flags, other) = parsed.flags();
                    self.messages.push(Message {
                        uid: *uid,
                        base: parsed.base.to_string(),
                        name: name.clone(),
                        in_new: *in_new,
                        flags,
                        other,
                        recent: false,
                        modseq: self.modlog.modseq(*uid),
                        size: parsed.sizes().0,
                    });
                }
                // Another program removed it: only a reading says so.
                Event::Vanished(_) | Event::Stamps(..) => {}
            }
        }
        if !removed.is_empty() {
            let mut kept = Vec::with_capacity(self.messages.len());
            for m in std::mem::take(&mut self.messages) {
                if !removed.contains(&m.uid) {
                    kept.push(m);
                    continue;
                }
                // One added by these same events was never shown.
                if m.uid <= last_shown {
                    changes.expunged.push(m.uid);
                }
                self.gone.push(m);
            }
            self.messages = kept;
        }
        let first_new = self.messages.partition_point(|m| m.uid <= last_shown);
        changes.added = self.messages.len() - first_new;
        if changes.added > 0 {
            self.mark_recent(first_new, take_recent && !self.read_only)?;
        }
        // Modseqs of the messages the log spoke of (never going down).
        touched.sort_unstable();
        touched.dedup();
        for uid in touched {
            let Some(i) = self.index_of_uid(uid) else {
                continue;
            };
            let seq = self.modlog.modseq(uid);
            let m = &mut self.messages[i];
            if seq > m.modseq {
                m.modseq = seq;
                if !changes.flags.contains(&uid) {
                    changes.flags.push(uid);
                }
            }
        }
        Ok(())
    }

    /// Give message `i` the file name its logged letters say (another
    /// session renamed it); its flag change is news.
    fn take_letters(&mut self, i: usize, letters: &str) -> bool {
        let m = &mut self.messages[i];
        let now = if m.in_new {
            // A message in new/ has no letters; logged without any, it
            // was not renamed.
            letters.is_empty().then_some(letters)
        } else {
            Some(FileName::parse(&m.name).letters.unwrap_or(""))
        };
        if now == Some(letters) {
            return false;
        }
        m.name = format!("{}:2,{letters}", m.base);
        m.in_new = false;
        let (flags, other) = FileName::parse(&m.name).flags();
        let changed = flags != m.flags;
        m.flags = flags;
        m.other = other;
        changed
    }

    /// A message's file was not where the view said: try the name its
    /// logged letters give (renamed by another session since the last
    /// sync) before reading the directories. True when the name changed.
    pub(super) fn follow_log_name(&mut self, i: usize) -> bool {
        if self.modlog.refresh().is_err() {
            return false;
        }
        let uid = self.messages[i].uid;
        let Some(letters) = self.modlog.letters(uid).map(str::to_string) else {
            return false;
        };
        let old = self.messages[i].name.clone();
        if self.take_letters(i, &letters) {
            self.relocated.push(uid);
        }
        self.messages[i].name != old
    }
}
