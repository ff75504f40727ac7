//! The selected folder as the client knows it: the UIDs it has been told
//! about, by sequence number, and the changes (new mail, expunges, flag
//! changes by other sessions) not yet announced. A message expunged by
//! someone else stays in the client's numbering until an EXPUNGE (or
//! VANISHED) may be sent, which is never during FETCH, STORE or SEARCH
//! (RFC 9051 section 7.5.1).

use std::collections::{BTreeSet, HashMap};
use std::io;

use super::syntax::{compress, SeqSet};
use crate::mail::store::{Flag, FlagChange, Flags, Folder, Keywords, Message};

pub struct Selected {
    pub folder: Folder,
    /// The stored name.
    pub name: String,
    pub read_only: bool,
    /// UIDs known to the client, ascending; a sequence number is an index
    /// here plus one.
    view: Vec<u32>,
    /// UIDs whose flags changed elsewhere, to announce.
    flag_changes: BTreeSet<u32>,
    /// The keywords the client was last told of (FLAGS).
    announced: Keywords,
    /// Messages gone from the folder whose EXPUNGE the client has not had
    /// yet: still numbered, with their last flags.
    ghosts: HashMap<u32, Message>,
}

/// How the client wants to hear of changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// VANISHED instead of EXPUNGE (QRESYNC enabled).
    pub qresync: bool,
    /// MODSEQ in unsolicited FETCH (CONDSTORE in use).
    pub condstore: bool,
    /// IMAP4rev2: no RECENT.
    pub rev2: bool,
}

impl Selected {
    pub fn new(folder: Folder, name: String, read_only: bool) -> Selected {
        let view = folder.messages.iter().map(|m| m.uid).collect();
        let announced = folder.keywords.clone();
        Selected {
            folder,
            name,
            read_only,
            view,
            flag_changes: BTreeSet::new(),
            announced,
            ghosts: HashMap::new(),
        }
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` for the folder's keywords.
    pub fn flags_lines(&self) -> Vec<u8> {
        let mut kw: Vec<String> = Flag::ALL.iter().map(|f| f.name().to_string()).collect();
        kw.extend(self.folder.keywords.iter().map(|(_, k)| k.to_string()));
        let mut out = format!("* FLAGS ({})\r\n", kw.join(" ")).into_bytes();
        if self.read_only {
            out.extend(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        } else {
            out.extend(
                format!(
                    "* OK [PERMANENTFLAGS ({} \\*)] Flags permitted\r\n",
                    kw.join(" ")
                )
                .as_bytes(),
            );
        }
        out
    }

    /// New FLAGS when keywords were added since the client last heard.
    pub fn keyword_news(&mut self) -> Vec<u8> {
        if self.folder.keywords == self.announced {
            return Vec::new();
        }
        self.announced = self.folder.keywords.clone();
        self.flags_lines()
    }

    /// Messages the client knows of.
    pub fn exists(&self) -> usize {
        self.view.len()
    }

    pub fn uids(&self) -> &[u32] {
        &self.view
    }

    /// The folder index of the message with sequence number `seq` (None
    /// when it is gone already).
    pub fn index_of_seq(&self, seq: usize) -> Option<usize> {
        let uid = *self.view.get(seq.checked_sub(1)?)?;
        self.folder.index_of_uid(uid)
    }

    pub fn seq_of_uid(&self, uid: u32) -> Option<usize> {
        self.view.binary_search(&uid).ok().map(|i| i + 1)
    }

    /// The messages a set names, as (sequence number, folder index), in
    /// order; messages gone meanwhile are left out.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        if self.view.is_empty() {
            return out;
        }
        if uid {
            let largest = *self.view.last().expect("not empty");
            for (a, b) in set.resolve(largest) {
                let start = self.view.partition_point(|&u| u < a);
                for (i, &u) in self.view.iter().enumerate().skip(start) {
                    if u > b {
                        break;
                    }
                    if let Some(ix) = self.folder.index_of_uid(u) {
                        out.push((i + 1, ix));
                    }
                }
            }
        } else {
            let n = self.view.len() as u32;
            for (a, b) in set.resolve(n) {
                for seq in a..=b.min(n) {
                    if let Some(ix) = self.index_of_seq(seq as usize) {
                        out.push((seq as usize, ix));
                    }
                }
            }
        }
        out
    }

    /// Whether a set names a message that no longer exists (for the NO
    /// of a FETCH on an expunged message).
    pub fn names_expunged(&self, set: &SeqSet, uid: bool) -> bool {
        let largest = if uid {
            self.view.last().copied().unwrap_or(0)
        } else {
            self.view.len() as u32
        };
        for (a, b) in set.resolve(largest) {
            if uid {
                let start = self.view.partition_point(|&u| u < a);
                if self.view[start..]
                    .iter()
                    .take_while(|&&u| u <= b)
                    .any(|&u| self.folder.index_of_uid(u).is_none())
                {
                    return true;
                }
            } else {
                for seq in a..=b.min(self.view.len() as u32) {
                    if seq > 0 && self.index_of_seq(seq as usize).is_none() {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Read the folder again; remember flag changes to announce.
    pub fn sync(&mut self) -> io::Result<()> {
        let c = self.folder.sync(!self.read_only)?;
        self.flag_changes.extend(c.flags);
        self.take_ghosts();
        Ok(())
    }

    /// Keep what the folder dropped until its EXPUNGE is sent.
    pub fn take_ghosts(&mut self) {
        for m in std::mem::take(&mut self.folder.gone) {
            if self.view.binary_search(&m.uid).is_ok() {
                self.ghosts.insert(m.uid, m);
            }
        }
    }

    /// Sequence numbers and UIDs a set names among messages already gone
    /// (for STORE's answer about them).
    pub fn resolve_ghosts(&self, set: &SeqSet, uid: bool) -> Vec<(usize, u32)> {
        let largest = if uid {
            self.view.last().copied().unwrap_or(0)
        } else {
            self.view.len() as u32
        };
        let mut out = Vec::new();
        for (i, &u) in self.view.iter().enumerate() {
            if self.ghosts.contains_key(&u)
                && set.contains(if uid { u } else { i as u32 + 1 }, largest)
            {
                out.push((i + 1, u));
            }
        }
        out
    }

    /// `(\Seen ...)` of a message gone from the folder.
    pub fn ghost_flags(&self, uid: u32, rev2: bool) -> Option<String> {
        let m = self.ghosts.get(&uid)?;
        Some(self.render_flags(m.flags, m.recent, rev2))
    }

    /// Apply a STORE to a message gone from the folder, in this view only.
    pub fn change_ghost_flags(&mut self, uid: u32, change: FlagChange) {
        if let Some(m) = self.ghosts.get_mut(&uid) {
            m.flags = change.apply(m.flags);
        }
    }

    /// `(\Seen ...)` of a message as `change` would leave it.
    pub fn flags_changed(&self, index: usize, change: FlagChange, rev2: bool) -> String {
        let m = &self.folder.messages[index];
        self.render_flags(change.apply(m.flags), m.recent, rev2)
    }

    /// Our own change of flags (already answered with FETCH): nothing to
    /// announce later.
    pub fn forget_flag_change(&mut self, uid: u32) {
        self.flag_changes.remove(&uid);
    }

    /// `(\Seen $Keyword \Recent)` of a message.
    pub fn flags_of(&self, index: usize, rev2: bool) -> String {
        let m = &self.folder.messages[index];
        self.render_flags(m.flags, m.recent, rev2)
    }

    fn render_flags(&self, flags: Flags, recent: bool, rev2: bool) -> String {
        let mut v: Vec<String> = Flag::ALL
            .into_iter()
            .filter(|f| flags.has(*f))
            .map(|f| f.name().to_string())
            .collect();
        for (i, k) in self.folder.keywords.iter() {
            if flags.has_keyword(i) {
                v.push(k.to_string());
            }
        }
        if recent && !rev2 {
            v.push("\\Recent".into());
        }
        format!("({})", v.join(" "))
    }

    /// The untagged responses that bring the client up to date: expunges
    /// (when allowed), new messages, flag changes.
    pub fn updates(&mut self, allow_expunge: bool, style: Style) -> Vec<u8> {
        let mut out = self.keyword_news();
        self.take_ghosts();
        // Every message of the view the folder no longer has is a ghost
        // (taken from the folder's `gone`): none, nothing to look for.
        if allow_expunge && !self.ghosts.is_empty() {
            let gone: Vec<usize> = self
                .view
                .iter()
                .enumerate()
                .filter(|(_, &u)| self.folder.index_of_uid(u).is_none())
                .map(|(i, _)| i)
                .collect();
            if !gone.is_empty() {
                if style.qresync {
                    let uids: Vec<u32> = gone.iter().map(|&i| self.view[i]).collect();
                    out.extend(format!("* VANISHED {}\r\n", compress(&uids)).as_bytes());
                } else {
                    // Highest first: each number is right when it is read.
                    for &i in gone.iter().rev() {
                        out.extend(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                    }
                }
                for &i in &gone {
                    self.ghosts.remove(&self.view[i]);
                }
                let gone: BTreeSet<usize> = gone.into_iter().collect();
                let mut i = 0;
                self.view.retain(|_| {
                    let keep = !gone.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        let last = self.view.last().copied().unwrap_or(0);
        // The folder's messages are in UID order: the new ones are a tail.
        let start = self.folder.messages.partition_point(|m| m.uid <= last);
        let fresh: Vec<u32> = self.folder.messages[start..]
            .iter()
            .map(|m| m.uid)
            .collect();
        if !fresh.is_empty() {
            self.view.extend(fresh);
            out.extend(format!("* {} EXISTS\r\n", self.view.len()).as_bytes());
            if !style.rev2 {
                let recent = self.folder.messages.iter().filter(|m| m.recent).count();
                out.extend(format!("* {recent} RECENT\r\n").as_bytes());
            }
        }
        let changed: Vec<u32> = std::mem::take(&mut self.flag_changes).into_iter().collect();
        for uid in changed {
            let (Some(seq), Some(ix)) = (self.seq_of_uid(uid), self.folder.index_of_uid(uid))
            else {
                continue;
            };
            let mut line = format!(
                "* {seq} FETCH (UID {uid} FLAGS {}",
                self.flags_of(ix, style.rev2)
            );
            if style.condstore {
                line.push_str(&format!(" MODSEQ ({})", self.folder.messages[ix].modseq));
            }
            line.push_str(")\r\n");
            out.extend(line.as_bytes());
        }
        out
    }
}
