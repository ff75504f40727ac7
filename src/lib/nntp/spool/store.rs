//! Taking articles into the spool, in batches (POST is a batch of one;
//! TAKETHIS streams make larger ones): the writer that runs in the
//! monitor, as the spool's owner.
//!
//! For each article, outside the lock: check it and build its header
//! (`inject`), stuff it for storage. Under the spool lock, briefly: refuse
//! it if the history has its message-id, take its numbers, and gather its
//! journal record, overview lines, history line and feed lines with the
//! batch's. Then, still under the lock, the batch is written, a write a
//! file: the journal records first, then the high-water marks, the
//! overviews, the history and the feeds. After the lock: write each
//! article's file, linked into each further group. Then `commit`
//! fdatasyncs the journal, and only then may the caller acknowledge (235,
//! 239, 240).
//!
//! A crash at any point leaves either nothing of a batch (its numbers
//! were written nowhere, so handing them out again is safe), or its
//! journal records, from which `replay` puts back whatever is missing
//! (marks, overview and history lines, files, feed lines). A checkpoint
//! (when the journal has grown, and when the writer is done) syncs the
//! file system and empties the journal.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::active::{ActiveFile, Flag};
use super::history::{self, History};
use super::journal::{self, Record, Segment};
use super::{overview, Spool};
use crate::nntp::article::Control;
use crate::nntp::command::valid_group_name;
use crate::nntp::inject::{self, Origin, Prepared};
use crate::nntp::Config;

/// The journal is checkpointed when it grows past this.
const CHECKPOINT_AT: u64 = 64 << 20;

/// What became of one article.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (filed in `groups`, possibly none: a control message with no
    /// control group is only remembered).
    Accepted {
        message_id: String,
        groups: Vec<(String, u64)>,
    },
    /// Already seen.
    Duplicate(String),
    /// Not taken, never will be (437, 439, 441).
    Refused(String),
    /// Not taken now; may be offered again (436, 431, 441).
    Failed(String),
    /// A posting to a moderated group: to be mailed to that group's
    /// moderator instead.
    Moderate {
        group: String,
        message_id: String,
        mail: Vec<u8>,
    },
}

/// An article offered for storage.
pub struct Offer {
    pub origin: Origin,
    /// The canonical text (CRLF, not stuffed).
    pub text: Vec<u8>,
}

/// A control action to carry out after the batch (it takes the lock
/// itself).
enum GroupAction {
    New(String, bool),
    Remove(String),
}

/// The spool writer of one process.
pub struct Store {
    spool: Spool,
    cfg: Config,
    active: ActiveFile,
    history: History,
    overviews: HashMap<String, File>,
    outgoing: HashMap<String, File>,
    segment: Option<Segment>,
    /// Peers that got new articles since the last call of `kicked`.
    fed: Vec<String>,
    /// What the batch being taken writes at its end.
    batch: Batch,
}

/// The writes of a batch, gathered under the lock and written at its end
/// (journal first), a write a file instead of several an article.
#[derive(Default)]
struct Batch {
    journal: Vec<u8>,
    overviews: Vec<(String, Vec<u8>)>,
    outgoing: Vec<(String, Vec<u8>)>,
}

/// The buffer of `key` in a short list of them (one or a few groups or
/// peers a batch).
fn buffer_of<'a>(list: &'a mut Vec<(String, Vec<u8>)>, key: &str) -> &'a mut Vec<u8> {
    let at = match list.iter().position(|(k, _)| k == key) {
        Some(at) => at,
        None => {
            list.push((key.to_string(), Vec::new()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// A file to write once the lock is let go.
struct FileWrite {
    paths: Vec<PathBuf>,
    bytes: Vec<u8>,
    message_id: String,
    index: usize,
}

fn append_open(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
}

/// The running boot's id, read once.
fn this_boot() -> Option<&'static str> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(crate::sys::boot_id).as_deref()
}

/// Sync the file system the spool is on (after which nothing the journal
/// holds is needed).
pub fn sync_spool(spool: &Spool) -> io::Result<()> {
    let dir = File::open(&spool.dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        nix::unistd::syncfs(dir.as_raw_fd())?;
    }
    #[cfg(not(target_os = "linux"))]
    {
        nix::unistd::sync();
        dir.sync_all()?;
    }
    Ok(())
}

impl Store {
    /// Open the spool for writing; replays what a dead writer left.
    pub fn open(spool: Spool, cfg: Config) -> io::Result<Store> {
        spool.create()?;
        let history = History::open(&spool.dir)?;
        let mut s = Store {
            active: ActiveFile::new(&spool.active()),
            history,
            spool,
            cfg,
            overviews: HashMap::new(),
            outgoing: HashMap::new(),
            segment: None,
            fed: Vec::new(),
            batch: Batch::default(),
        };
        s.recover()?;
        Ok(s)
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Replay the journal segments no living writer holds (and retired
    /// ones from another boot); sync and remove the retired segments of
    /// this boot that have settled.
    pub fn recover(&mut self) -> io::Result<()> {
        let dir = self.spool.journal_dir();
        let mut orphans = journal::orphans(&dir)?;
        let mut settled = Vec::new();
        for r in journal::retired(&dir)? {
            if Some(r.boot.as_str()) != this_boot() {
                orphans.push((r.path, r.file));
            } else if r.age >= journal::SETTLE {
                settled.push(r);
            }
        }
        if orphans.is_empty() && settled.is_empty() {
            return Ok(());
        }
        let mut replayed = 0;
        if !orphans.is_empty() {
            let lock = self.spool.lock(true)?;
            for (path, f) in &orphans {
                let records = journal::read_segment(f)?;
                replayed += records.len();
                self.replay(&records)?;
                log::info!(
                    "journal {}: {} article(s) checked after an unclean end",
                    path.display(),
                    records.len()
                );
            }
            self.history.rebuild(0)?;
            drop(lock);
        }
        sync_spool(&self.spool)?;
        for (path, _) in orphans {
            let _ = std::fs::remove_file(&path);
        }
        for r in settled {
            let _ = std::fs::remove_file(&r.path);
        }
        if replayed > 0 {
            log::info!("journal: replay done ({replayed} records)");
        }
        Ok(())
    }

    /// Put back what is missing of each record's article (under the lock).
    fn replay(&mut self, records: &[Record]) -> io::Result<()> {
        let mut overview_fixes: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for r in records {
            for (g, n) in &r.xref {
                if !valid_group_name(g) {
                    continue;
                }
                let Some(e) = self.active.get(g)? else {
                    continue;
                };
                if e.high < *n {
                    self.active.set_marks(g, *n, e.low)?;
                }
                let path = self.spool.article(g, *n);
                let whole =
                    std::fs::metadata(&path).is_ok_and(|m| m.len() == r.stored.len() as u64);
                if !whole {
                    std::fs::create_dir_all(self.spool.group_dir(g))?;
                    crate::fs::durable::write_file(&path, 0o644, &r.stored)?;
                }
                let ov = self.spool.overview(g);
                let has = match File::open(&ov) {
                    Ok(f) => overview::line_of(&f, *n)?.is_some(),
                    Err(_) => false,
                };
                if !has {
                    let mut line = n.to_string().into_bytes();
                    line.extend_from_slice(&r.overview);
                    overview_fixes.entry(g.clone()).or_default().push(line);
                }
            }
            if self.history.lookup(&r.message_id)?.is_none() {
                self.history.append(&history::Line {
                    message_id: r.message_id.clone(),
                    arrived: r.arrived,
                    xref: r.xref.clone(),
                })?;
            }
            for peer in &r.peers {
                if !crate::nntp::peers::valid_peer_name(peer) {
                    continue;
                }
                let path = self.spool.outgoing_dir().join(peer);
                let queued = std::fs::read(&path).unwrap_or_default();
                let id = r.message_id.as_bytes();
                let present = queued
                    .split(|&b| b == b'\n')
                    .any(|l| l.split(|&b| b == b' ').next() == Some(id));
                if !present {
                    if let Some((g, n)) = r.xref.first() {
                        append_open(&path)?
                            .write_all(format!("{} {g}/{n}\n", r.message_id).as_bytes())?;
                    }
                }
            }
        }
        for (g, lines) in overview_fixes {
            self.overviews.remove(&g);
            let ov = self.spool.overview(&g);
            let mut all: Vec<Vec<u8>> = std::fs::read(&ov)
                .unwrap_or_default()
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| overview::number_of(l).is_some() && l.ends_with(b"\n"))
                .map(|l| l.to_vec())
                .collect();
            all.extend(lines);
            all.sort_by_key(|l| overview::number_of(l));
            all.dedup_by_key(|l| overview::number_of(l));
            crate::fs::durable::write_file(&ov, 0o644, &all.concat())?;
        }
        Ok(())
    }

    /// A unique part for a Message-ID we make: the time, this process and
    /// a count kept for the whole process (a reused monitor opens a new
    /// store for each connection it serves: a count per store would give
    /// two postings of one second the same id).
    fn unique(&mut self, now: i64) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{now:x}.{:x}.{n}", std::process::id())
    }

    /// Which groups an article goes to, or why it goes nowhere.
    fn targets(
        &mut self,
        p: &Prepared,
        origin: &Origin,
    ) -> io::Result<Result<Vec<String>, Outcome>> {
        if let Some(c) = &p.control {
            // Control messages are filed in control.VERB or control, as
            // INN does, never in the groups they name.
            for g in [format!("control.{}", c.verb()), "control".to_string()] {
                if valid_group_name(&g) && self.active.get(&g)?.is_some() {
                    return Ok(Ok(vec![g]));
                }
            }
            return Ok(Ok(Vec::new()));
        }
        let mut out = Vec::new();
        for g in &p.newsgroups {
            let entry = self.active.get(g)?;
            match (origin, entry) {
                (Origin::Post { .. }, None) => {
                    return Ok(Err(Outcome::Refused(format!("no such newsgroup {g}"))))
                }
                (Origin::Post { user, .. }, Some(e)) => match e.flag {
                    Flag::Yes => out.push(g.clone()),
                    Flag::Moderated if p.approved && user.is_some() => out.push(g.clone()),
                    Flag::Moderated if p.approved => {
                        return Ok(Err(Outcome::Refused(
                            "Approved is only taken from a poster who logged in".into(),
                        )))
                    }
                    Flag::Moderated => {
                        return Ok(Err(Outcome::Moderate {
                            group: g.clone(),
                            message_id: p.message_id.clone(),
                            mail: Vec::new(),
                        }))
                    }
                    _ => {
                        return Ok(Err(Outcome::Refused(format!(
                            "posting to {g} is not allowed"
                        ))))
                    }
                },
                (Origin::Peer { .. }, None) => {}
                (Origin::Peer { .. }, Some(e)) => match e.flag {
                    Flag::Yes | Flag::No => out.push(g.clone()),
                    Flag::Moderated if p.approved => out.push(g.clone()),
                    Flag::Moderated => {
                        return Ok(Err(Outcome::Refused(format!(
                            "unapproved article in moderated group {g}"
                        ))))
                    }
                    Flag::Other(_) => {}
                },
            }
        }
        if out.is_empty() {
            return Ok(Err(Outcome::Refused("no newsgroup carried here".into())));
        }
        Ok(Ok(out))
    }

    fn overview_file(&mut self, group: &str) -> io::Result<&File> {
        if !self.overviews.contains_key(group) {
            let f = append_open(&self.spool.overview(group))?;
            self.overviews.insert(group.to_string(), f);
        }
        Ok(&self.overviews[group])
    }

    fn outgoing_file(&mut self, peer: &str) -> io::Result<&File> {
        if !self.outgoing.contains_key(peer) {
            std::fs::create_dir_all(self.spool.outgoing_dir())?;
            let f = append_open(&self.spool.outgoing_dir().join(peer))?;
            self.outgoing.insert(peer.to_string(), f);
        }
        Ok(&self.outgoing[peer])
    }

    fn segment(&mut self) -> io::Result<&mut Segment> {
        if self.segment.is_none() {
            std::fs::create_dir_all(self.spool.journal_dir())?;
            self.segment = Some(Segment::create(&self.spool.journal_dir())?);
        }
        Ok(self.segment.as_mut().expect("just made"))
    }

    /// Peers whose feed an article joins: its groups match their pattern
    /// and they are not on its path (nor where it came from).
    fn peers_for(&self, p: &Prepared, origin: &Origin) -> Vec<String> {
        self.cfg
            .peers
            .iter()
            .filter(|peer| !matches!(origin, Origin::Peer { name, .. } if *name == peer.name))
            .filter(|peer| !crate::nntp::article::path_has(&p.path, &peer.name))
            .filter(|peer| p.newsgroups.iter().any(|g| peer.pattern.matches(g)))
            .map(|peer| peer.name.clone())
            .collect()
    }

    /// Take a batch of articles; `commit` before acknowledging any.
    pub fn store(&mut self, offers: Vec<Offer>, now: i64) -> Vec<Outcome> {
        match self.store_inner(offers, now) {
            Ok(o) => o,
            Err((n, e)) => {
                log::error!("spool {}: {e}", self.spool.dir.display());
                (0..n)
                    .map(|_| Outcome::Failed(format!("spool error: {e}")))
                    .collect()
            }
        }
    }

    fn store_inner(
        &mut self,
        offers: Vec<Offer>,
        now: i64,
    ) -> Result<Vec<Outcome>, (usize, io::Error)> {
        let n = offers.len();
        let fail = |e: io::Error| (n, e);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
        let mut ready: Vec<(usize, Prepared, Origin)> = Vec::new();
        for (i, offer) in offers.into_iter().enumerate() {
            // Only a posting can lack a Message-ID and need one made.
            let unique = match offer.origin {
                Origin::Post { .. } => self.unique(now),
                Origin::Peer { .. } => String::new(),
            };
            let cx = inject::Context {
                path_identity: &self.cfg.path_identity,
                now,
                max_size: self.cfg.max_article_size,
                history_lifetime: self.cfg.history_lifetime.as_secs() as i64,
                unique: &unique,
            };
            match inject::prepare(offer.text, &offer.origin, &cx) {
                Ok(p) => ready.push((i, p, offer.origin)),
                Err(r) => {
                    // A refused article from a peer is remembered, so that
                    // it is not offered again (INN's remembertrash).
                    if let Origin::Peer { offered, .. } = &offer.origin {
                        let _ = self.remember(offered, now);
                    }
                    outcomes[i] = Some(Outcome::Refused(r.0));
                }
            }
        }
        let mut files = Vec::new();
        let mut actions = Vec::new();
        {
            let _lock = self.spool.lock(true).map_err(fail)?;
            self.history.pin().map_err(fail)?;
            self.active.pin().map_err(fail)?;
            let mut result = Ok(());
            // Outcomes of articles whose writes are gathered, not written.
            let mut unwritten = Vec::new();
            for (i, p, origin) in ready {
                // A control message acts on the files (a cancel edits
                // overviews): what comes before it is written first.
                if p.control.is_some() && !unwritten.is_empty() {
                    result = self.write_batch(true);
                    if result.is_err() {
                        break;
                    }
                    unwritten.clear();
                }
                match self.store_one(i, p, &origin, now, &mut files, &mut actions) {
                    Ok(o) => {
                        outcomes[i] = Some(o);
                        unwritten.push(i);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if result.is_ok() {
                result = self.write_batch(false);
            }
            if let Err(e) = result {
                // What was written is in (its files follow); the others
                // are not, and nothing of them was written.
                self.discard_batch();
                log::error!("spool {}: {e}", self.spool.dir.display());
                for i in unwritten {
                    outcomes[i] = None;
                }
                files.retain(|f| outcomes[f.index].is_some());
                for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(Outcome::Failed(format!("spool error: {e}")));
                }
            }
        }
        for f in files {
            if let Err(e) = write_article(&f) {
                log::error!("cannot write {}: {e}", f.paths[0].display());
                let _ = self.undo(&f);
                outcomes[f.index] = Some(Outcome::Failed(format!("cannot write the article: {e}")));
            }
        }
        for a in actions {
            let result = match &a {
                GroupAction::New(g, m) => {
                    let flag = if *m { Flag::Moderated } else { Flag::Yes };
                    self.spool
                        .new_group(g, flag, None, "control", now.max(0) as u64)
                        .map(|_| ())
                }
                GroupAction::Remove(g) => self.spool.remove_group(g).map(|_| ()),
            };
            if let Err(e) = result {
                log::error!("control message: {e}");
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Failed("not handled".into())))
            .collect())
    }

    /// Write the batch gathered under the lock (still under it): the
    /// journal first, so that a crash after any other write finds the
    /// records to put the rest back from, then the marks, the overviews,
    /// the history and the feed lines. The history and the marks are let
    /// go, or pinned again when more of the batch follows.
    fn write_batch(&mut self, more: bool) -> io::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        if !batch.journal.is_empty() {
            self.segment()?.append(&batch.journal)?;
        }
        self.active.unpin()?;
        for (g, lines) in &batch.overviews {
            self.overview_file(g)?.write_all(lines)?;
        }
        self.history.unpin()?;
        for (peer, lines) in &batch.outgoing {
            self.outgoing_file(peer)?.write_all(lines)?;
        }
        if more {
            self.history.pin()?;
            self.active.pin()?;
        }
        Ok(())
    }

    /// Drop what the batch gathered and did not write.
    fn discard_batch(&mut self) {
        self.batch = Batch::default();
        self.history.discard();
        self.active.discard();
    }

    /// Remember a message-id that was refused (under the lock).
    fn remember(&mut self, message_id: &str, now: i64) -> io::Result<()> {
        let _lock = self.spool.lock(true)?;
        if self.history.lookup(message_id)?.is_some() {
            return Ok(());
        }
        self.history.append(&history::Line {
            message_id: message_id.to_string(),
            arrived: now.max(0) as u64,
            xref: Vec::new(),
        })
    }

    fn store_one(
        &mut self,
        index: usize,
        p: Prepared,
        origin: &Origin,
        now: i64,
        files: &mut Vec<FileWrite>,
        actions: &mut Vec<GroupAction>,
    ) -> io::Result<Outcome> {
        if self.history.lookup(&p.message_id)?.is_some() {
            return Ok(Outcome::Duplicate(p.message_id));
        }
        let arrived = now.max(0) as u64;
        let groups = match self.targets(&p, origin)? {
            Ok(g) => g,
            Err(Outcome::Moderate {
                group, message_id, ..
            }) => {
                let mut mail = p.header.clone();
                mail.extend_from_slice(b"\r\n");
                mail.extend_from_slice(p.body());
                return Ok(Outcome::Moderate {
                    group,
                    message_id,
                    mail,
                });
            }
            Err(refusal) => {
                if matches!(origin, Origin::Peer { .. }) {
                    self.history.append(&history::Line {
                        message_id: p.message_id.clone(),
                        arrived,
                        xref: Vec::new(),
                    })?;
                }
                return Ok(refusal);
            }
        };
        // The numbers first: once written, never handed out again.
        let mut xref = Vec::with_capacity(groups.len());
        for g in &groups {
            let Some(e) = self.active.get(g)? else {
                continue;
            };
            let n = e.high.max(e.low.saturating_sub(1)) + 1;
            self.active.set_marks(g, n, e.low.min(n))?;
            xref.push((g.clone(), n));
        }
        let xref_value = {
            let mut v = self.cfg.path_identity.clone();
            for (g, n) in &xref {
                v.push_str(&format!(" {g}:{n}"));
            }
            v
        };
        let (stored, size, lines) = if xref.is_empty() {
            (Vec::new(), 0, 0)
        } else {
            inject::stored_form(&p, Some(&xref_value))
        };
        let fields = [
            p.overview[0].clone(),
            p.overview[1].clone(),
            p.overview[2].clone(),
            p.overview[3].clone(),
            p.overview[4].clone(),
            size.to_string(),
            lines.to_string(),
        ];
        let mut record_overview = Vec::new();
        for (g, n) in &xref {
            let line = overview::format_line(*n, &fields, &xref_value);
            if record_overview.is_empty() {
                let tab = line.iter().position(|&b| b == b'\t').unwrap_or(0);
                record_overview = line[tab..].to_vec();
            }
            buffer_of(&mut self.batch.overviews, g).extend_from_slice(&line);
        }
        self.history.append(&history::Line {
            message_id: p.message_id.clone(),
            arrived,
            xref: xref.clone(),
        })?;
        let peers = if xref.is_empty() {
            Vec::new()
        } else {
            self.peers_for(&p, origin)
        };
        if let Some((g, n)) = xref.first() {
            let line = format!("{} {g}/{n}\n", p.message_id);
            for peer in &peers {
                buffer_of(&mut self.batch.outgoing, peer).extend_from_slice(line.as_bytes());
                if !self.fed.contains(peer) {
                    self.fed.push(peer.clone());
                }
            }
        }
        let record = Record {
            message_id: p.message_id.clone(),
            arrived,
            xref: xref.clone(),
            peers,
            overview: record_overview,
            stored,
        };
        record.encode_into(&mut self.batch.journal);
        if !xref.is_empty() {
            files.push(FileWrite {
                paths: xref
                    .iter()
                    .map(|(g, n)| self.spool.article(g, *n))
                    .collect(),
                bytes: record.stored,
                message_id: p.message_id.clone(),
                index,
            });
        }
        if let Some(c) = &p.control {
            self.control(c, origin, &p.message_id, arrived, actions)?;
        }
        Ok(Outcome::Accepted {
            message_id: p.message_id,
            groups: xref,
        })
    }

    /// Carry out a control message if its sender may send them; else log
    /// it (the article itself is kept as any other).
    fn control(
        &mut self,
        c: &Control,
        origin: &Origin,
        id: &str,
        now: u64,
        actions: &mut Vec<GroupAction>,
    ) -> io::Result<()> {
        let allowed = match origin {
            Origin::Peer { name, .. } => self.cfg.control_peers.iter().any(|p| p == name),
            Origin::Post { .. } => false,
        };
        let from = match origin {
            Origin::Peer { name, .. } => format!("peer {name}"),
            Origin::Post { host, user } => {
                format!("poster {}@{host}", user.as_deref().unwrap_or("-"))
            }
        };
        if !allowed {
            log::info!(
                "control message {id} ({} ...) from {from} ignored: not a peer allowed to send them",
                c.verb()
            );
            return Ok(());
        }
        match c {
            Control::Cancel(target) => self.cancel(target, now, &from)?,
            Control::NewGroup { name, moderated } => {
                log::info!("control message {id}: newgroup {name} from {from}");
                actions.push(GroupAction::New(name.clone(), *moderated));
            }
            Control::RmGroup(name) => {
                log::info!("control message {id}: rmgroup {name} from {from}");
                actions.push(GroupAction::Remove(name.clone()));
            }
            Control::Other(v) => log::info!("control message {id}: {v} from {from} not acted on"),
        }
        Ok(())
    }

    /// Remove an article everywhere (under the lock); a cancel that
    /// arrives first is remembered so the article is refused later.
    fn cancel(&mut self, target: &str, now: u64, from: &str) -> io::Result<()> {
        match self.history.lookup(target)? {
            Some(line) => {
                for (g, n) in &line.xref {
                    let _ = std::fs::remove_file(self.spool.article(g, *n));
                    self.drop_overview_line(g, *n)?;
                }
                log::info!("cancelled {target} (from {from})");
            }
            None => {
                self.history.append(&history::Line {
                    message_id: target.to_string(),
                    arrived: now,
                    xref: Vec::new(),
                })?;
                log::info!("cancel of {target} (from {from}) before the article: remembered");
            }
        }
        Ok(())
    }

    fn drop_overview_line(&mut self, group: &str, n: u64) -> io::Result<()> {
        self.overviews.remove(group);
        let ov = self.spool.overview(group);
        let data = match std::fs::read(&ov) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let kept: Vec<u8> = data
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| overview::number_of(l) != Some(n))
            .flatten()
            .copied()
            .collect();
        if kept.len() != data.len() {
            crate::fs::durable::write_file(&ov, 0o644, &kept)?;
        }
        Ok(())
    }

    /// The article's file could not be written: take it out again, so
    /// that it can be offered again.
    fn undo(&mut self, f: &FileWrite) -> io::Result<()> {
        let _lock = self.spool.lock(true)?;
        self.history.forget(&f.message_id)?;
        for p in &f.paths {
            let _ = std::fs::remove_file(p);
            if let (Some(g), Some(n)) = (
                p.parent()
                    .and_then(|d| d.file_name())
                    .and_then(|g| g.to_str()),
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse().ok()),
            ) {
                let g = g.to_string();
                self.drop_overview_line(&g, n)?;
            }
        }
        Ok(())
    }

    /// Make the batch durable: after this the articles may be acknowledged.
    pub fn commit(&mut self) -> io::Result<()> {
        let Some(seg) = &mut self.segment else {
            return Ok(());
        };
        seg.sync()?;
        if seg.len > CHECKPOINT_AT {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Sync the spool's file system and empty the journal (and remove the
    /// retired segments of this boot: the same sync covers them).
    pub fn checkpoint(&mut self) -> io::Result<()> {
        if self.segment.as_ref().is_none_or(|seg| seg.len == 0) {
            return Ok(());
        }
        let retired: Vec<_> = journal::retired(&self.spool.journal_dir())?
            .into_iter()
            .filter(|r| Some(r.boot.as_str()) == this_boot())
            .collect();
        self.active.sync()?;
        sync_spool(&self.spool)?;
        for r in retired {
            let _ = std::fs::remove_file(&r.path);
        }
        match &mut self.segment {
            Some(seg) => seg.truncate(),
            None => Ok(()),
        }
    }

    /// At the writer's end: retire its segment, every record synced,
    /// instead of syncing the file system now (see `journal`). False when
    /// it cannot, and the caller checkpoints.
    fn retire_segment(&mut self) -> bool {
        let Some(seg) = &self.segment else {
            return false;
        };
        let Some(boot) = this_boot() else {
            return false;
        };
        if seg.len == 0
            || !seg.is_synced()
            || journal::retired_count(&self.spool.journal_dir()) >= journal::MAX_RETIRED
        {
            return false;
        }
        match seg.retire(boot) {
            Ok(()) => {
                self.segment = None;
                true
            }
            Err(e) => {
                log::warn!("journal {}: cannot retire it: {e}", seg.path.display());
                false
            }
        }
    }

    /// The peers that got new articles since the last call.
    pub fn fed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.fed)
    }

    /// A history lookup (CHECK, IHAVE's first answer).
    pub fn seen(&mut self, message_id: &str) -> io::Result<bool> {
        Ok(self.history.lookup(message_id)?.is_some())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.retire_segment() {
            return;
        }
        if let Err(e) = self.checkpoint() {
            log::error!("spool checkpoint: {e}; the journal stays for the next writer");
            return;
        }
        if let Some(seg) = self.segment.take() {
            let path = seg.path.clone();
            drop(seg);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Write an article's file and its links (new names: O_EXCL).
fn write_article(f: &FileWrite) -> io::Result<()> {
    let first = &f.paths[0];
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(first)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(d) = first.parent() {
                std::fs::create_dir_all(d)?;
            }
            open()?
        }
        other => other?,
    };
    file.write_all(&f.bytes)?;
    drop(file);
    for p in &f.paths[1..] {
        let linked = match std::fs::hard_link(first, p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d)?;
                }
                std::fs::hard_link(first, p)
            }
            other => other,
        };
        linked?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
