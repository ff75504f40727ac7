//! `nntpd --expire`: remove articles older than their group's lifetime
//! (`expire_file`, else `article_lifetime`), rewrite each group's overview
//! without them and raise its low-water mark, then drop history lines
//! whose article is gone and which are older than `history_lifetime` (a
//! message-id is remembered longer than its article is kept, so that a
//! late copy from a peer is still refused). Each group is done under the
//! spool lock, so the server keeps taking articles meanwhile.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::active::ActiveFile;
use super::history::{self, History};
use super::{overview, store, Spool};
use crate::nntp::Config;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub groups: u64,
    pub removed: u64,
    pub kept: u64,
    pub history_dropped: u64,
}

/// Whether article file `path` is older than `cutoff` (or missing).
fn expired(path: &std::path::Path, cutoff: i64) -> Option<bool> {
    match std::fs::metadata(path) {
        Ok(m) => Some(m.mtime() < cutoff),
        Err(_) => None,
    }
}

fn expire_group(
    spool: &Spool,
    active: &mut ActiveFile,
    group: &str,
    cutoff: Option<i64>,
    report: &mut Report,
) -> io::Result<()> {
    let _lock = spool.lock(true)?;
    let Some(entry) = active.get(group)? else {
        return Ok(());
    };
    let ov = spool.overview(group);
    let data = match std::fs::read(&ov) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut kept_numbers = HashSet::new();
    let mut changed = false;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let Some(n) = overview::number_of(line).filter(|_| line.ends_with(b"\n")) else {
            changed = true;
            continue;
        };
        let path = spool.article(group, n);
        match (expired(&path, cutoff.unwrap_or(i64::MIN)), cutoff) {
            // Gone (cancelled, or removed by hand): the line goes.
            (None, _) => changed = true,
            (Some(true), Some(_)) => {
                let _ = std::fs::remove_file(&path);
                report.removed += 1;
                changed = true;
            }
            _ => {
                kept.push(line);
                kept_numbers.insert(n);
                report.kept += 1;
            }
        }
    }
    // Files no overview line names (a crash between the two): old ones go.
    if let Some(c) = cutoff {
        for b in 0..super::BUCKETS {
            let Ok(dir) = std::fs::read_dir(spool.group_dir(group).join(b.to_string())) else {
                continue;
            };
            for e in dir.flatten() {
                let name = e.file_name();
                let Some(n) = name.to_str().and_then(|s| s.parse::<u64>().ok()) else {
                    continue;
                };
                if !kept_numbers.contains(&n) && expired(&e.path(), c) == Some(true) {
                    let _ = std::fs::remove_file(e.path());
                    report.removed += 1;
                }
            }
        }
    }
    if changed {
        crate::fs::durable::write_file(&ov, 0o644, &kept.concat())?;
    }
    let low = kept
        .first()
        .and_then(|l| overview::number_of(l))
        .unwrap_or(entry.high + 1);
    if low != entry.low {
        active.set_marks(group, entry.high, low)?;
    }
    report.groups += 1;
    Ok(())
}

/// Expire the whole spool at `now` (seconds since the epoch).
pub fn run(cfg: &Config, now: i64) -> io::Result<Report> {
    let spool = Spool::new(&cfg.spool_dir);
    // What a crashed writer left is put back first.
    drop(store::Store::open(spool.clone(), cfg.clone())?);
    let mut report = Report::default();
    let mut active = ActiveFile::new(&spool.active());
    for group in active.names()? {
        let cutoff = cfg
            .lifetime_of(&group)
            .map(|l| now.saturating_sub(l.min(i64::MAX as u64) as i64));
        expire_group(&spool, &mut active, &group, cutoff, &mut report)?;
    }
    let _lock = spool.lock(true)?;
    let mut hist = History::open(&spool.dir)?;
    let keep_ids_until = now.saturating_sub(cfg.history_lifetime.as_secs() as i64);
    let mut lines = Vec::new();
    let mut changed = false;
    hist.each(|_, mut line: history::Line| {
        let present: Vec<(String, u64)> = line
            .xref
            .iter()
            .filter(|(g, n)| spool.article(g, *n).exists())
            .cloned()
            .collect();
        if present.is_empty() && (line.arrived as i64) < keep_ids_until {
            report.history_dropped += 1;
            changed = true;
            return;
        }
        if present.len() != line.xref.len() {
            line.xref = present;
            changed = true;
        }
        lines.push(line);
    })?;
    if changed {
        hist.rewrite(&lines)?;
    }
    active.sync()?;
    drop(_lock);
    store::sync_spool(&spool)?;
    Ok(report)
}
