//! The writer's end: its journal segment retired, not synced at once, and
//! what later writers do with retired segments.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;

/// 2026-12-01 10:00:10 UTC, ten seconds after the articles' Date.
const NOW: i64 = 1_796_119_210;

fn scratch(tag: &str) -> (Spool, Config) {
    let dir = std::env::temp_dir().join(format!("nntp-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spool = Spool::new(&dir);
    spool.create().unwrap();
    assert!(spool
        .new_group("lab.test", Flag::Yes, None, "me", 5)
        .unwrap());
    let cfg = Config {
        spool_dir: dir,
        path_identity: "here.example".into(),
        posting: false,
        peers: Vec::new(),
        moderators: Vec::new(),
        max_article_size: 1 << 20,
        open_networks: Vec::new(),
        post_users: Vec::new(),
        control_peers: Vec::new(),
        mail_relay: ("localhost".into(), 25),
        article_lifetime: None,
        expire_rules: Vec::new(),
        history_lifetime: Duration::from_secs(30 * 86_400),
        feed_retry_interval: Duration::from_secs(60),
        feed_lifetime: Duration::from_secs(86_400),
    };
    (spool, cfg)
}

fn offer(i: u32) -> Offer {
    let id = format!("<{i}@there.example>");
    let text = format!(
        "Path: there.example!not-for-mail\r\nFrom: a@there.example\r\n\
         Newsgroups: lab.test\r\nSubject: s{i}\r\n\
         Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: {id}\r\n\r\nbody\r\n"
    );
    Offer {
        origin: Origin::Peer {
            name: "there".into(),
            offered: id,
        },
        text: text.into_bytes(),
    }
}

/// Store `ids` as one batch, commit, and end the writer.
fn feed(spool: &Spool, cfg: &Config, ids: &[u32]) {
    let mut store = Store::open(spool.clone(), cfg.clone()).unwrap();
    let outcomes = store.store(ids.iter().map(|i| offer(*i)).collect(), NOW);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Accepted { .. })),
        "{outcomes:?}"
    );
    store.commit().unwrap();
}

fn journal_names(spool: &Spool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool.journal_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn age(path: &Path, by: Duration) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

#[test]
fn a_writer_retires_its_segment_and_a_later_one_removes_it_once_settled() {
    let Some(boot) = this_boot() else {
        return;
    };
    let (spool, cfg) = scratch("retire");
    feed(&spool, &cfg, &[1, 2]);
    let names = journal_names(&spool);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(&format!("done-{boot}-")), "{names:?}");
    assert!(spool.article("lab.test", 2).is_file());
    // A young one stays (the kernel has not written it back yet).
    drop(Store::open(spool.clone(), cfg.clone()).unwrap());
    assert_eq!(journal_names(&spool), names);
    // A settled one goes.
    age(&spool.journal_dir().join(&names[0]), journal::SETTLE * 2);
    drop(Store::open(spool.clone(), cfg.clone()).unwrap());
    assert!(journal_names(&spool).is_empty());
    std::fs::remove_dir_all(&spool.dir).unwrap();
}

#[test]
fn a_checkpoint_removes_the_retired_segments_it_covers() {
    if this_boot().is_none() {
        return;
    }
    let (spool, cfg) = scratch("checkpoint");
    feed(&spool, &cfg, &[1]);
    assert_eq!(journal_names(&spool).len(), 1);
    let mut store = Store::open(spool.clone(), cfg.clone()).unwrap();
    store.store(vec![offer(2)], NOW);
    store.commit().unwrap();
    store.checkpoint().unwrap();
    // Only the writer's own segment, emptied, is left.
    let names = journal_names(&spool);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(!names[0].starts_with("done-"));
    drop(store);
    std::fs::remove_dir_all(&spool.dir).unwrap();
}

#[test]
fn a_retired_segment_of_another_boot_is_replayed() {
    let Some(boot) = this_boot() else {
        return;
    };
    let (spool, cfg) = scratch("otherboot");
    feed(&spool, &cfg, &[1, 2]);
    let name = journal_names(&spool).remove(0);
    let other = name.replacen(boot, "0123456789abcdef", 1);
    std::fs::rename(
        spool.journal_dir().join(&name),
        spool.journal_dir().join(&other),
    )
    .unwrap();
    // As if the crash lost the file the page cache held.
    std::fs::remove_file(spool.article("lab.test", 2)).unwrap();
    drop(Store::open(spool.clone(), cfg.clone()).unwrap());
    assert!(spool.article("lab.test", 2).is_file());
    assert!(journal_names(&spool).is_empty());
    std::fs::remove_dir_all(&spool.dir).unwrap();
}

#[test]
fn a_writer_that_wrote_nothing_leaves_nothing() {
    let (spool, cfg) = scratch("nothing");
    drop(Store::open(spool.clone(), cfg.clone()).unwrap());
    assert!(journal_names(&spool).is_empty());
    std::fs::remove_dir_all(&spool.dir).unwrap();
}
