//! The feed runner: the companion process of the standalone master, and
//! `nntpd --feed`. It runs as the spool's owner, holds `feed.lock`, and
//! for each peer with articles waiting and due starts a sender process
//! (through the supervisor), reads its report, and works out the next
//! attempt: at once when it finished, after a backoff when the peer was
//! down or said "later", never again for articles older than
//! `feed_lifetime` (dropped from that peer's queue, with a log line).
//! Every rescan also replays what a crashed spool writer left.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::queue as feedq;
use super::sender::{self, Report};
use crate::nntp::peers::Peer;
use crate::nntp::spool::{store::Store, Spool};
use crate::nntp::Config;
use crate::queue::{self, Backoff, Class, Decision, Doorbell, Kick};
use crate::runtime::config::Settings;
use crate::runtime::supervise::{self, Kind};

/// A rescan (and journal check) at least this often.
const RESCAN: Duration = Duration::from_secs(10);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A peer as the scheduler holds it.
struct PeerState {
    peer: Peer,
    pending: bool,
    next_attempt: u64,
    attempts: u32,
    /// When the current run of failures began (the backoff's "arrival").
    failing_since: Option<u64>,
}

impl queue::Entry for PeerState {
    fn next_attempt(&self) -> u64 {
        self.next_attempt
    }

    fn has_pending(&self) -> bool {
        self.pending
    }
}

/// One sender run.
struct Task;

impl queue::Task for Task {
    fn batches_with(&self, _: &Self) -> bool {
        false
    }
}

struct Worker {
    pid: Pid,
    pipe: File,
    buf: Vec<u8>,
    job: queue::JobId,
    peer: String,
}

struct Runner {
    cfg: Config,
    spool: Spool,
    sched: queue::Scheduler<String, PeerState, Task>,
    workers: Vec<Worker>,
    bell: Option<Doorbell>,
    term: Arc<AtomicBool>,
    wake: Option<UnixStream>,
    last_scan: Option<Instant>,
    /// --feed: every peer once, then stop.
    once: bool,
}

fn classes() -> Vec<Class> {
    vec![Class {
        name: "feeds",
        workers: 16,
        max_batch: 1,
        spread: false,
        time_limit: Duration::from_secs(6 * 3600),
    }]
}

/// Become the spool's owner for good (the runner needs nothing else).
fn become_owner(spool: &Spool) -> io::Result<()> {
    if !crate::auth::running_as_root() {
        return Ok(());
    }
    let (uid, gid) = spool.owner()?;
    if uid == 0 {
        return Ok(());
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    crate::auth::drop_privileges(&crate::auth::Account {
        name,
        uid,
        gid,
        home: spool.dir.clone(),
        shell: "/bin/false".into(),
        virtual_user: true,
        groups: vec![gid],
    })
}

impl Runner {
    fn new(cfg: Config, once: bool) -> Runner {
        let spool = Spool::new(&cfg.spool_dir);
        let mut sched = queue::Scheduler::new(classes(), once);
        for p in &cfg.peers {
            sched.insert(
                p.name.clone(),
                PeerState {
                    peer: p.clone(),
                    pending: false,
                    next_attempt: 0,
                    attempts: 0,
                    failing_since: None,
                },
            );
        }
        Runner {
            cfg,
            spool,
            sched,
            workers: Vec::new(),
            bell: None,
            term: Arc::new(AtomicBool::new(false)),
            wake: None,
            last_scan: None,
            once,
        }
    }

    fn install_signals(&mut self) {
        let Ok((wake, notify)) = UnixStream::pair() else {
            return;
        };
        let _ = wake.set_nonblocking(true);
        let _ = notify.set_nonblocking(true);
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            let _ = signal_hook::flag::register(sig, self.term.clone());
            if let Ok(n) = notify.try_clone() {
                let _ = signal_hook::low_level::pipe::register(sig, n);
            }
        }
        self.wake = Some(wake);
    }

    /// Which peers have articles waiting; and what crashed writers left.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        if let Err(e) = Store::open(self.spool.clone(), self.cfg.clone()) {
            log::error!("feeds: checking the spool's journal: {e}");
        }
        let names: Vec<String> = self.sched.iter().map(|(k, _)| k.clone()).collect();
        for name in names {
            let pending = feedq::pending(&self.spool, &name);
            if let Some(t) = self.sched.get_mut(&name) {
                t.data.pending = pending;
            }
        }
    }

    fn read_kicks(&mut self) -> bool {
        let kicks = self.bell.as_mut().map(Doorbell::drain).unwrap_or_default();
        let mut any = false;
        for k in kicks {
            any = true;
            match k {
                Kick::Entry(peer) => {
                    if let Some(t) = self.sched.get_mut(&peer) {
                        t.data.pending = true;
                    }
                }
                Kick::Flush => {
                    for p in self.sched.data_mut() {
                        p.next_attempt = 0;
                    }
                    self.last_scan = None;
                }
                Kick::Scan => self.last_scan = None,
            }
        }
        any
    }

    fn start(&mut self) {
        if self.term.load(Ordering::SeqCst) {
            return;
        }
        for peer in self.sched.start_due(now(), self.once) {
            self.sched.enqueue(0, peer, 0, Task);
        }
        for job in self.sched.dispatch(Instant::now()) {
            let Some((unit, _)) = job.tasks.into_iter().next() else {
                self.sched.finished(job.id);
                continue;
            };
            let name = unit.entry;
            let Some(peer) = self.sched.get(&name).map(|t| t.data.peer.clone()) else {
                self.sched.finished(job.id);
                continue;
            };
            match self.spawn(&peer) {
                Ok((pid, pipe)) => self.workers.push(Worker {
                    pid,
                    pipe,
                    buf: Vec::new(),
                    job: job.id,
                    peer: name,
                }),
                Err(e) => {
                    log::error!("feeds: cannot start the sender for {name}: {e}");
                    self.sched.finished(job.id);
                    self.settle(
                        &name,
                        Report {
                            deferred: Some(e.to_string()),
                            ..Report::default()
                        },
                    );
                }
            }
        }
    }

    fn spawn(&self, peer: &Peer) -> io::Result<(Pid, File)> {
        let (r, w) = nix::unistd::pipe()?;
        let spool = self.spool.clone();
        let peer = peer.clone();
        let keep = [w.as_raw_fd()];
        let pid = supervise::spawn(Kind::Worker, &keep, move || {
            crate::sys::die_with_parent(Signal::SIGTERM);
            let report = sender::feed_peer(&spool, &peer);
            let line = match &report.deferred {
                Some(why) => format!(
                    "{} {} defer {}\n",
                    report.sent,
                    report.declined,
                    why.replace('\n', " ")
                ),
                None => format!("{} {} done\n", report.sent, report.declined),
            };
            let mut f = File::from(w);
            let _ = f.write_all(line.as_bytes());
            0
        })?;
        let r = File::from(r);
        let _ = nix::fcntl::fcntl(
            r.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Ok((pid, r))
    }

    /// A sender's report: the peer's next attempt.
    fn settle(&mut self, name: &str, report: Report) {
        let t = now();
        let _ = self.sched.report(None, &name.to_string(), 0);
        let Some(mut tracked) = self.sched.take(&name.to_string()) else {
            return;
        };
        let p = &mut tracked.data;
        if report.sent + report.declined > 0 {
            log::info!(
                "feed {name}: {} sent, {} declined",
                report.sent,
                report.declined
            );
        }
        match report.deferred {
            None => {
                p.attempts = 0;
                p.failing_since = None;
                p.next_attempt = 0;
                p.pending = feedq::pending(&self.spool, name);
            }
            Some(why) => {
                p.attempts += 1;
                let since = *p.failing_since.get_or_insert(t);
                let backoff = Backoff {
                    interval: self.cfg.feed_retry_interval.as_secs(),
                    lifetime: self.cfg.feed_lifetime.as_secs(),
                };
                match backoff.after_failure(since, p.attempts, t) {
                    Decision::RetryAt(at) => {
                        log::info!(
                            "feed {name}: {why}; next attempt in {} s",
                            at.saturating_sub(t)
                        );
                        p.next_attempt = at;
                    }
                    Decision::GiveUp => {
                        log::warn!(
                            "feed {name}: {why}; down for longer than feed_lifetime: its queued articles are dropped"
                        );
                        let end = std::fs::metadata(feedq::queue_path(&self.spool, name))
                            .map(|m| m.len())
                            .unwrap_or(0);
                        if let Err(e) = feedq::done_up_to(&self.spool, name, end) {
                            log::error!("feed {name}: {e}");
                        }
                        p.attempts = 0;
                        p.failing_since = None;
                        p.next_attempt = 0;
                        p.pending = false;
                    }
                }
            }
        }
        tracked.end_round();
        self.sched.put_back(name.to_string(), tracked);
    }

    fn read_workers(&mut self) {
        let mut finished = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            let mut b = [0u8; 4096];
            loop {
                match w.pipe.read(&mut b) {
                    Ok(0) => {
                        finished.push(i);
                        break;
                    }
                    Ok(n) => {
                        if w.buf.len() < 64 * 1024 {
                            w.buf.extend_from_slice(&b[..n]);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        finished.push(i);
                        break;
                    }
                }
            }
        }
        for i in finished.into_iter().rev() {
            let w = self.workers.remove(i);
            let _ = nix::sys::wait::waitpid(w.pid, None);
            self.sched.finished(w.job);
            let report = parse_report(&w.buf);
            self.settle(&w.peer, report);
        }
    }

    fn wait(&mut self, timeout: Duration) {
        let mut fds: Vec<PollFd> = Vec::new();
        if let Some(b) = &self.bell {
            fds.push(PollFd::new(b.as_fd(), PollFlags::POLLIN));
        }
        if let Some(w) = &self.wake {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        for w in &self.workers {
            fds.push(PollFd::new(w.pipe.as_fd(), PollFlags::POLLIN));
        }
        let ms = timeout.as_millis().min(60_000) as u16;
        let _ = poll(&mut fds, PollTimeout::from(ms));
        drop(fds);
        if let Some(w) = &mut self.wake {
            let mut b = [0u8; 64];
            while matches!(w.read(&mut b), Ok(n) if n > 0) {}
        }
    }

    fn run(&mut self) {
        self.scan();
        loop {
            self.start();
            let term = self.term.load(Ordering::SeqCst);
            if term && self.workers.is_empty() {
                break;
            }
            if self.once && self.workers.is_empty() && !self.sched.any_active() {
                break;
            }
            let mut timeout = RESCAN;
            if let Some(next) = self.sched.next_due() {
                timeout = timeout.min(Duration::from_secs(next.saturating_sub(now()).max(1)));
            }
            if term {
                timeout = Duration::from_millis(200);
            }
            self.wait(timeout);
            self.read_kicks();
            self.read_workers();
            if self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN) && !self.once {
                self.scan();
            }
        }
    }
}

/// "SENT DECLINED done" or "SENT DECLINED defer WHY".
fn parse_report(buf: &[u8]) -> Report {
    let text = String::from_utf8_lossy(buf);
    let mut w = text.trim_end().splitn(4, ' ');
    let sent = w.next().and_then(|s| s.parse().ok());
    let declined = w.next().and_then(|s| s.parse().ok());
    match (sent, declined, w.next(), w.next()) {
        (Some(sent), Some(declined), Some("done"), _) => Report {
            sent,
            declined,
            deferred: None,
        },
        (Some(sent), Some(declined), Some("defer"), why) => Report {
            sent,
            declined,
            deferred: Some(why.unwrap_or("deferred").to_string()),
        },
        _ => Report {
            deferred: Some("the sender ended without a report".into()),
            ..Report::default()
        },
    }
}

fn lock(spool: &Spool, wait: bool) -> io::Result<Option<Flock<File>>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(spool.dir.join(super::LOCK))?;
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    match Flock::lock(f, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// The companion: runs until SIGTERM.
pub fn run_feeds(settings: Arc<Settings>) {
    let cfg = settings.daemon::<Config>().clone();
    let spool = Spool::new(&cfg.spool_dir);
    if let Err(e) = spool.create() {
        log::error!("feeds: cannot create {}: {e}", spool.dir.display());
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    if let Err(e) = become_owner(&spool) {
        log::error!("feeds: cannot become the spool's owner: {e}");
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    crate::sys::die_with_parent(Signal::SIGTERM);
    if nix::unistd::getppid().as_raw() == 1 {
        return;
    }
    let mut r = Runner::new(cfg, false);
    r.install_signals();
    let _lock = match lock(&spool, true) {
        Ok(l) => l,
        Err(e) => {
            log::error!("feeds: cannot lock {}: {e}", super::LOCK);
            std::thread::sleep(Duration::from_secs(5));
            return;
        }
    };
    match Doorbell::bind(&spool.dir.join(super::KICK)) {
        Ok(b) => r.bell = Some(b),
        Err(e) => log::warn!("feeds: no wake-up FIFO ({e}); rescanning every 10 s"),
    }
    log::info!(
        "feed runner started for {} peer(s) on {}",
        r.cfg.peers.len(),
        spool.dir.display()
    );
    r.run();
    if r.bell.take().is_some() {
        let _ = std::fs::remove_file(spool.dir.join(super::KICK));
    }
    log::info!("feed runner stopped");
}

/// `nntpd --feed`: every peer's queue once (under inetd, from cron).
pub fn feed_mode(settings: &Settings, _args: &[String]) -> i32 {
    let cfg = settings.daemon::<Config>().clone();
    let spool = Spool::new(&cfg.spool_dir);
    if let Err(e) = spool.create().and_then(|()| become_owner(&spool)) {
        eprintln!("nntpd: {}: {e}", spool.dir.display());
        return 1;
    }
    let held = match lock(&spool, false) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nntpd: {e}");
            return 1;
        }
    };
    let Some(_lock) = held else {
        // The runner has it: ask it to try every peer now.
        crate::queue::kick::send(&spool.dir.join(super::KICK), &Kick::Flush);
        println!("the feed runner is running; it was asked to feed every peer now");
        return 0;
    };
    let mut r = Runner::new(cfg, true);
    r.run();
    let mut failed = 0;
    for (name, t) in r.sched.iter() {
        if t.data.pending && t.data.attempts > 0 {
            println!("{name}: not fed (will be tried again)");
            failed += 1;
        }
    }
    i32::from(failed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(
            parse_report(b"3 1 done\n"),
            Report {
                sent: 3,
                declined: 1,
                deferred: None
            }
        );
        assert_eq!(
            parse_report(b"0 0 defer cannot connect: refused\n")
                .deferred
                .as_deref(),
            Some("cannot connect: refused")
        );
        assert!(parse_report(b"").deferred.is_some());
        assert!(parse_report(b"x y z").deferred.is_some());
    }
}
