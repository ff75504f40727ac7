//! The queue runner: one scheduler process that keeps the spool in memory,
//! hands deliveries to short-lived worker processes (local batches per
//! account, one SMTP transaction per message and next hop), records every
//! result durably, queues DSNs and schedules retries.
//!
//! Wake-ups arrive as lines on the FIFO `queue_dir/kick`: `M<id>` (a new
//! message), `S` (rescan the spool), `F` (flush: retry everything now). The
//! runner holds an exclusive flock on `queue_dir/lock`; one-shot deliveries
//! without a runner (inetd mode) hold it shared, `--flush` exclusively.
//!
//! Workers die with the runner (PR_SET_PDEATHSIG), so a restarted runner
//! never races an orphan; a delivery cut short is simply tried again.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::bounce::{self, DsnAction, DsnRcpt};
use super::client::Outcome;
use super::local::{At, LocalTask};
use super::route::{self, NextHop};
use super::schedule::{self, Decision};
use super::spool::{self, RcptStatus, State, StoredEnvelope};
use super::worker::{self, Job, Res};
use super::{Envelope, Notify, Queue, Recipient, Ret, Route};
use crate::auth::Authenticator;
use crate::runtime::config::Settings;
use crate::smtp::Config;
use crate::sys::{self, Forked};

pub use super::kick::{kick_flush, kick_id, kick_scan, KICK};
pub const LOCK: &str = "lock";

/// Concurrent local delivery workers (their fsyncs are grouped by the
/// file system's journal).
const LOCAL_WORKERS: usize = 8;
const REMOTE_WORKERS: usize = 16;
/// Most messages one local worker takes.
const LOCAL_BATCH: usize = 64;
/// A full rescan of the spool at least this often (a lost kick costs no
/// more than this).
const RESCAN: Duration = Duration::from_secs(60);
const LOCAL_WORKER_LIMIT: Duration = Duration::from_secs(600);
const REMOTE_WORKER_LIMIT: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// The companion: runs until SIGTERM.
    Daemon,
    /// `--flush`: everything once, then exit.
    Flush,
    /// One-shot delivery of these messages (inetd mode).
    Only(Vec<String>),
}

struct Item {
    se: StoredEnvelope,
    st: State,
    has_state_file: bool,
    /// A delivery round is under way.
    active: bool,
    /// Recipients handed to workers or waiting for one.
    in_flight: HashSet<usize>,
    /// Results of this round not yet settled.
    fresh: Vec<Res>,
    /// Deferrals of this round.
    deferred: Vec<Res>,
}

impl Item {
    fn has_pending(&self) -> bool {
        let n = self.se.env.recipients.len();
        self.st.done.iter().filter(|(i, _)| *i < n).count() < n
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.se.env.recipients.len())
            .filter(|i| self.st.status(*i) == RcptStatus::Pending)
            .collect()
    }
}

struct Worker {
    pid: Pid,
    pipe: File,
    buf: Vec<u8>,
    /// (id, rcpt) not yet reported.
    open: Vec<(String, usize)>,
    started: Instant,
    local: bool,
    killed: bool,
}

struct Runner {
    cfg: Config,
    auth: Authenticator,
    dir: PathBuf,
    mode: Mode,
    items: BTreeMap<String, Item>,
    waiting_local: VecDeque<LocalTask>,
    /// account of each waiting local task, by (id, rcpt).
    waiting_remote: VecDeque<Job>,
    workers: Vec<Worker>,
    /// The wake-up FIFO, open for reading (and writing, so never EOF).
    sock: Option<File>,
    lock: Option<Flock<File>>,
    me: Pid,
    last_scan: Instant,
    scan_wanted: bool,
    flush_wanted: bool,
    /// Messages removed since the last fsync of q/; their state files.
    removed: Vec<(String, bool)>,
    term: Arc<AtomicBool>,
    wake: Option<UnixStream>,
    term_since: Option<Instant>,
    /// Messages already tried by a one-shot run (each gets one attempt).
    attempted: HashSet<String>,
    /// Workers that closed their pipe and are not reaped yet.
    exiting: Vec<Pid>,
}

fn lock_file(dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK))
}

impl Runner {
    fn new(cfg: Config, auth: Authenticator, mode: Mode) -> Runner {
        Runner {
            dir: cfg.queue_dir.clone(),
            cfg,
            auth,
            mode,
            items: BTreeMap::new(),
            waiting_local: VecDeque::new(),
            waiting_remote: VecDeque::new(),
            workers: Vec::new(),
            sock: None,
            lock: None,
            me: nix::unistd::getpid(),
            last_scan: Instant::now(),
            scan_wanted: true,
            flush_wanted: false,
            removed: Vec::new(),
            term: Arc::new(AtomicBool::new(false)),
            wake: None,
            term_since: None,
            attempted: HashSet::new(),
            exiting: Vec::new(),
        }
    }

    /// Take the spool lock: exclusive for a runner or flush (waiting for
    /// it), shared and without waiting for a one-shot.
    fn take_lock(&mut self) -> io::Result<bool> {
        let mut f = lock_file(&self.dir)?;
        let arg = match self.mode {
            Mode::Only(_) => FlockArg::LockSharedNonblock,
            _ => FlockArg::LockExclusiveNonblock,
        };
        // The runner waits for one-shots and flushes to finish; a flush
        // waits a while for one-shots, but not for a runner that cannot
        // be woken (it would hold the lock for ever).
        let patience = match self.mode {
            Mode::Daemon => None,
            Mode::Flush => Some(Duration::from_secs(30)),
            Mode::Only(_) => Some(Duration::ZERO),
        };
        let started = Instant::now();
        let mut said = false;
        loop {
            match Flock::lock(f, arg) {
                Ok(l) => {
                    self.lock = Some(l);
                    return Ok(true);
                }
                Err((back, _)) => {
                    if patience.is_some_and(|p| started.elapsed() >= p) {
                        return Ok(false);
                    }
                    if !said {
                        log::info!("queue: waiting for another queue process to finish");
                        said = true;
                    }
                    f = back;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    fn bind_kick(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(KICK);
        let _ = std::fs::remove_file(&path);
        let made = nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(io::Error::from)
            .and_then(|_| {
                // Read-write: the FIFO never reports end-of-file to us.
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
                    .open(&path)
            });
        match made {
            Ok(f) => self.sock = Some(f),
            Err(e) => log::warn!(
                "queue: cannot create {}: {e}; new mail is found by rescanning every second",
                path.display()
            ),
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

    // ---- loading ----

    fn load(&mut self, id: &str) {
        if self.items.contains_key(id) || !spool::valid_id(id) {
            return;
        }
        let se = match spool::open_message(&self.dir, id) {
            Ok((_, se)) => se,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                log::error!("{id}: unreadable queue file moved to corrupt/: {e}");
                spool::quarantine(&self.dir, id);
                return;
            }
        };
        let has_state_file = spool::state_path(&self.dir, id).exists();
        let st = if has_state_file {
            spool::read_state(&self.dir, id)
        } else {
            State::default()
        };
        self.items.insert(
            id.to_string(),
            Item {
                se,
                st,
                has_state_file,
                active: false,
                in_flight: HashSet::new(),
                fresh: Vec::new(),
                deferred: Vec::new(),
            },
        );
    }

    fn scan(&mut self) {
        self.last_scan = Instant::now();
        self.scan_wanted = false;
        match spool::list_ids(&self.dir) {
            Ok(ids) => {
                let present: HashSet<&String> = ids.iter().collect();
                self.items
                    .retain(|id, it| it.active || present.contains(id));
                for id in &ids {
                    self.load(id);
                }
            }
            Err(e) => log::error!("queue: cannot read {}: {e}", self.dir.display()),
        }
    }

    fn read_kicks(&mut self) {
        let mut ids = Vec::new();
        let mut total = 0;
        if let Some(f) = &self.sock {
            let mut buf = vec![0u8; 64 * 1024];
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let n = match (&*f).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                total += n;
                carry.extend_from_slice(&buf[..n]);
                while let Some(p) = carry.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = carry.drain(..=p).collect();
                    match line.first() {
                        Some(b'M') => {
                            if let Ok(id) = std::str::from_utf8(&line[1..line.len() - 1]) {
                                ids.push(id.to_string());
                            }
                        }
                        Some(b'F') => {
                            self.flush_wanted = true;
                            self.scan_wanted = true;
                        }
                        _ => self.scan_wanted = true,
                    }
                }
                if carry.len() > 4096 {
                    carry.clear();
                    self.scan_wanted = true;
                }
            }
        }
        // A nearly full pipe may have refused some wake-ups.
        if total >= 48 * 1024 {
            self.scan_wanted = true;
        }
        for id in ids {
            self.load(&id);
        }
        if self.flush_wanted {
            self.flush_wanted = false;
            self.scan();
            for it in self.items.values_mut() {
                it.st.next_attempt = 0;
            }
            log::info!("queue: flush requested");
        }
    }

    // ---- scheduling ----

    fn start_rounds(&mut self, now: u64) {
        if self.term.load(Ordering::SeqCst) {
            return;
        }
        let flush = self.mode == Mode::Flush;
        let mut router: Option<route::Router> = None;
        for (id, it) in self.items.iter_mut() {
            if it.active || (!flush && it.st.next_attempt > now) {
                continue;
            }
            if self.mode != Mode::Daemon && self.attempted.contains(id) {
                continue;
            }
            if !it.has_pending() {
                continue;
            }
            let pending = it.pending();
            it.active = true;
            if self.mode != Mode::Daemon {
                self.attempted.insert(id.clone());
            }
            let env = &it.se.env;
            let mut remote: Vec<(NextHop, Vec<usize>)> = Vec::new();
            for i in pending {
                let r = &env.recipients[i];
                match &r.route {
                    Route::Local {
                        account,
                        mailbox_spec,
                    } => {
                        it.in_flight.insert(i);
                        self.waiting_local.push_back(LocalTask {
                            id: id.clone(),
                            rcpt: i,
                            account: account.clone(),
                            mailbox_spec: mailbox_spec.clone(),
                            return_path: env.sender.clone(),
                            size: it.se.size,
                        });
                    }
                    Route::Remote => {
                        let router = router.get_or_insert_with(|| route::Router::new(&self.cfg));
                        match router.next_hop(&route::domain_of(&r.address)) {
                            Ok(hop) => {
                                it.in_flight.insert(i);
                                match remote.iter_mut().find(|(h, _)| *h == hop) {
                                    Some((_, v)) => v.push(i),
                                    None => remote.push((hop, vec![i])),
                                }
                            }
                            Err(why) => it.deferred.push(Res {
                                rcpt: i,
                                outcome: Outcome::Deferred,
                                text: format!("4.3.5 {why}"),
                                relay: "none".into(),
                                remote_dsn: false,
                            }),
                        }
                    }
                }
            }
            for (hop, rcpts) in remote {
                self.waiting_remote.push_back(Job::Remote {
                    id: id.clone(),
                    hop,
                    rcpts,
                });
            }
        }
    }

    fn dispatch(&mut self) {
        let locals = self.workers.iter().filter(|w| w.local).count();
        let mut free = LOCAL_WORKERS.saturating_sub(locals);
        while free > 0 && !self.waiting_local.is_empty() {
            let batch = (self.waiting_local.len() / free).clamp(1, LOCAL_BATCH);
            let first = self.waiting_local.pop_front().expect("not empty");
            let account = first.account.clone();
            let mut tasks = vec![first];
            let mut i = 0;
            while tasks.len() < batch && i < self.waiting_local.len() {
                if self.waiting_local[i].account == account {
                    tasks.extend(self.waiting_local.remove(i));
                } else {
                    i += 1;
                }
            }
            self.spawn(Job::Local { account, tasks });
            free -= 1;
        }
        let remotes = self.workers.iter().filter(|w| !w.local).count();
        let mut free = REMOTE_WORKERS.saturating_sub(remotes);
        while free > 0 {
            let Some(job) = self.waiting_remote.pop_front() else {
                break;
            };
            self.spawn(job);
            free -= 1;
        }
    }

    fn spawn(&mut self, job: Job) {
        let open: Vec<(String, usize)> = match &job {
            Job::Local { tasks, .. } => tasks.iter().map(|t| (t.id.clone(), t.rcpt)).collect(),
            Job::Remote { id, rcpts, .. } => rcpts.iter().map(|r| (id.clone(), *r)).collect(),
        };
        let local = matches!(job, Job::Local { .. });
        let (r, w) = match nix::unistd::pipe() {
            Ok(p) => p,
            Err(e) => {
                log::error!("queue: pipe: {e}");
                self.worker_lost(open, &format!("4.3.0 cannot start a delivery process: {e}"));
                return;
            }
        };
        match sys::fork() {
            Ok(Forked::Parent(pid)) => {
                drop(w);
                let pipe = File::from(r);
                let _ = nix::fcntl::fcntl(
                    pipe.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                self.workers.push(Worker {
                    pid,
                    pipe,
                    buf: Vec::new(),
                    open,
                    started: Instant::now(),
                    local,
                    killed: false,
                });
            }
            Ok(Forked::Child) => {
                drop(r);
                self.become_worker();
                worker::run_worker(&self.cfg, &self.auth, self.me, job, w);
                std::process::exit(0);
            }
            Err(e) => {
                log::error!("queue: fork: {e}");
                self.worker_lost(open, &format!("4.3.0 cannot start a delivery process: {e}"));
            }
        }
    }

    /// In a fresh worker: let go of the runner's descriptors, but never
    /// unlock the spool lock (it is the runner's).
    fn become_worker(&mut self) {
        if let Some(l) = self.lock.take() {
            std::mem::forget(l);
        }
        self.sock = None;
        self.wake = None;
        self.workers.clear();
        for sig in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGCHLD,
        ] {
            sys::default_signal(sig);
        }
    }

    /// Tasks whose worker could not run or vanished: deferred.
    fn worker_lost(&mut self, open: Vec<(String, usize)>, why: &str) {
        for (id, rcpt) in open {
            self.result(
                &id,
                Res {
                    rcpt,
                    outcome: Outcome::Deferred,
                    text: why.to_string(),
                    relay: "none".into(),
                    remote_dsn: false,
                },
            );
        }
    }

    // ---- results ----

    fn result(&mut self, id: &str, r: Res) {
        let Some(it) = self.items.get_mut(id) else {
            return;
        };
        if !it.in_flight.remove(&r.rcpt) {
            return;
        }
        let rcpt = &it.se.env.recipients[r.rcpt].address;
        let status = match r.outcome {
            Outcome::Sent => "sent",
            Outcome::Deferred => "deferred",
            Outcome::Failed => "bounced",
        };
        log::info!(
            "{id}: to=<{rcpt}>, relay={}, status={status} ({})",
            r.relay,
            r.text
        );
        match r.outcome {
            Outcome::Deferred => it.deferred.push(r),
            _ => it.fresh.push(r),
        }
    }

    fn read_workers(&mut self) {
        let mut finished = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for (wi, w) in self.workers.iter_mut().enumerate() {
            let mut buf = [0u8; 8192];
            loop {
                match w.pipe.read(&mut buf) {
                    Ok(0) => {
                        finished.push(wi);
                        break;
                    }
                    Ok(n) => w.buf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        finished.push(wi);
                        break;
                    }
                }
            }
            while let Some(p) = w.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = w.buf.drain(..=p).collect();
                let line = String::from_utf8_lossy(&line[..p]).into_owned();
                if let Some((id, rcpt)) = worker::parse_result_key(&line) {
                    w.open.retain(|(i, r)| !(*i == id && *r == rcpt));
                }
                lines.push(line);
            }
            let limit = if w.local {
                LOCAL_WORKER_LIMIT
            } else {
                REMOTE_WORKER_LIMIT
            };
            if !w.killed && w.started.elapsed() > limit {
                log::error!("queue: delivery process {} took too long; killed", w.pid);
                let _ = nix::sys::signal::kill(w.pid, Signal::SIGKILL);
                w.killed = true;
            }
        }
        for line in lines {
            match worker::parse_result(&line) {
                Some((id, r)) => self.result(&id, r),
                None => log::error!("queue: bad line from a delivery process: {line:?}"),
            }
        }
        for wi in finished.into_iter().rev() {
            let w = self.workers.swap_remove(wi);
            // It is exiting; reap it without waiting for that.
            self.exiting.push(w.pid);
            if !w.open.is_empty() {
                self.worker_lost(w.open, "4.3.0 the delivery process ended unexpectedly");
            }
        }
    }

    fn reap(&mut self) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        self.exiting.retain(|pid| {
            matches!(
                waitpid(*pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::StillAlive)
            )
        });
    }

    /// Record what the last results decided: DSNs first, then the state,
    /// then removal of finished messages.
    fn settle(&mut self, now: u64) {
        let ids: Vec<String> = self
            .items
            .iter()
            .filter(|(_, it)| !it.fresh.is_empty() || (it.active && it.in_flight.is_empty()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.settle_one(&id, now);
        }
        if !self.removed.is_empty() {
            if let Err(e) = spool::sync_dir(&self.dir.join(spool::QUEUE)) {
                log::error!("queue: fsync of the spool directory: {e}");
            }
            for (id, had_state) in self.removed.drain(..) {
                if had_state {
                    let _ = std::fs::remove_file(spool::state_path(&self.dir, &id));
                }
            }
        }
    }

    fn settle_one(&mut self, id: &str, now: u64) {
        let Some(mut it) = self.items.remove(id) else {
            return;
        };
        let round_over = it.active && it.in_flight.is_empty();
        let mut finals: Vec<Res> = std::mem::take(&mut it.fresh);
        if round_over {
            let deferred = std::mem::take(&mut it.deferred);
            if !deferred.is_empty() {
                it.st.attempts += 1;
                it.st.last_attempt = now;
                it.st.last_error = Some(deferred[0].text.clone());
                match schedule::after_failure(
                    it.se.created,
                    it.st.attempts,
                    now,
                    self.cfg.retry_interval.as_secs(),
                    self.cfg.queue_lifetime.as_secs(),
                ) {
                    Decision::GiveUp => {
                        let days = self.cfg.queue_lifetime.as_secs_f64() / 86400.0;
                        for mut d in deferred {
                            d.outcome = Outcome::Failed;
                            d.text = format!(
                                "4.4.7 message expired after {days:.1} days in the queue; last error: {}",
                                d.text
                            );
                            log::info!(
                                "{id}: to=<{}>, relay={}, status=bounced ({})",
                                it.se.env.recipients[d.rcpt].address,
                                d.relay,
                                d.text
                            );
                            finals.push(d);
                        }
                    }
                    Decision::RetryAt(t) => {
                        it.st.next_attempt = t;
                        if schedule::delay_warning_due(
                            it.se.created,
                            now,
                            self.cfg.queue_lifetime.as_secs(),
                            it.st.delay_warned,
                        ) {
                            it.st.delay_warned = true;
                            self.queue_dsn(id, &it, &deferred, DsnAction::Delayed, now);
                        }
                    }
                }
            }
            it.active = false;
        }
        let mut changed = round_over;
        if !finals.is_empty() {
            let failed: Vec<Res> = finals
                .iter()
                .filter(|r| r.outcome == Outcome::Failed)
                .cloned()
                .collect();
            let sent: Vec<Res> = finals
                .iter()
                .filter(|r| r.outcome == Outcome::Sent)
                .cloned()
                .collect();
            self.queue_dsn(id, &it, &failed, DsnAction::Failed, now);
            self.queue_dsn(id, &it, &sent, DsnAction::Delivered, now);
            for r in &finals {
                let s = if r.outcome == Outcome::Sent {
                    RcptStatus::Sent
                } else {
                    RcptStatus::Failed
                };
                it.st.set(r.rcpt, s);
            }
            changed = true;
        }
        if it.pending().is_empty() && it.in_flight.is_empty() {
            if let Err(e) = std::fs::remove_file(spool::queue_path(&self.dir, id)) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::error!("{id}: cannot remove from the queue: {e}");
                }
            }
            log::info!("{id}: removed");
            self.removed.push((id.to_string(), it.has_state_file));
            return;
        }
        if changed {
            match spool::write_state(&self.dir, id, &it.st) {
                Ok(()) => it.has_state_file = true,
                Err(e) => log::error!("{id}: cannot record delivery state: {e}"),
            }
        }
        self.items.insert(id.to_string(), it);
    }

    /// Queue a DSN about `results` to the sender, if anyone wants one.
    fn queue_dsn(&mut self, id: &str, it: &Item, results: &[Res], action: DsnAction, now: u64) {
        let env = &it.se.env;
        if env.sender.is_empty() {
            if action == DsnAction::Failed && !results.is_empty() {
                log::info!("{id}: undeliverable bounce discarded (null sender)");
            }
            return;
        }
        let wanted = |n: &Notify| {
            !n.never
                && match action {
                    DsnAction::Failed => n.failure,
                    DsnAction::Delayed => n.delay,
                    DsnAction::Delivered | DsnAction::Relayed => n.success,
                }
        };
        let rcpts: Vec<DsnRcpt> = results
            .iter()
            .filter(|r| wanted(&env.recipients[r.rcpt].notify))
            .filter(|r| !(action == DsnAction::Delivered && r.remote_dsn))
            .map(|r| {
                let rc = &env.recipients[r.rcpt];
                let local = matches!(rc.route, Route::Local { .. });
                DsnRcpt {
                    address: rc.address.clone(),
                    orcpt: rc.orcpt.clone(),
                    action: if action == DsnAction::Delivered && !local {
                        DsnAction::Relayed
                    } else {
                        action
                    },
                    diagnostic: r.text.clone(),
                    remote_mta: (!local && r.relay != "none").then(|| r.relay.clone()),
                    last_attempt: now,
                }
            })
            .collect();
        if rcpts.is_empty() {
            return;
        }
        let full = match env.ret {
            Some(Ret::Full) => true,
            Some(Ret::Hdrs) => false,
            None => action == DsnAction::Failed,
        };
        let original = match read_original(&self.dir, id, it.se.size, full) {
            Ok(o) => o,
            Err(e) => {
                log::error!("{id}: cannot read the message for a DSN: {e}");
                Vec::new()
            }
        };
        let unique = spool::new_id();
        let msg = bounce::compose(&bounce::DsnInput {
            reporting_mta: &self.cfg.hostname,
            to: &env.sender,
            queue_id: id,
            envid: env.envid.as_deref(),
            arrival: it.se.created,
            received_from: &env.received_from,
            rcpts: &rcpts,
            original: &original,
            full,
            now,
            unique: &unique,
        });
        let targets = super::dsn_route::dsn_recipients(
            &self.cfg,
            &self.auth,
            self.cfg.aliases_file.as_deref(),
            &env.sender,
        );
        if targets.is_empty() {
            log::info!(
                "{id}: the DSN to {} goes nowhere (alias to /dev/null)",
                env.sender
            );
            return;
        }
        let dsn_env = Envelope {
            sender: String::new(),
            recipients: targets
                .into_iter()
                .map(|(address, route)| Recipient {
                    address,
                    route,
                    notify: Notify {
                        never: true,
                        success: false,
                        failure: false,
                        delay: false,
                    },
                    orcpt: None,
                })
                .collect(),
            ret: None,
            envid: None,
            smtputf8: env.smtputf8,
            body_8bit: env.body_8bit || env.smtputf8,
            received_from: "localhost (the queue runner)".into(),
        };
        let queued = Queue::open(&self.dir).and_then(|q| {
            let mut inc = q.begin()?;
            inc.write_all(&msg)?;
            inc.commit(&dsn_env)
        });
        match queued {
            Ok(dsn_id) => {
                log::info!(
                    "{id}: sender {} notified ({}): {dsn_id}",
                    env.sender,
                    match action {
                        DsnAction::Failed => "failure",
                        DsnAction::Delayed => "delay",
                        _ => "success",
                    }
                );
                self.load(&dsn_id);
            }
            Err(e) => log::error!("{id}: cannot queue a DSN: {e}"),
        }
    }

    // ---- the loop ----

    fn next_due(&self) -> Option<u64> {
        self.items
            .values()
            .filter(|it| !it.active && it.has_pending())
            .map(|it| it.st.next_attempt)
            .min()
    }

    fn wait(&mut self, timeout: Duration) {
        let ms = timeout.as_millis().min(60_000) as u16;
        let mut fds: Vec<PollFd> = Vec::new();
        if let Some(s) = &self.sock {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(w) = &self.wake {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
        }
        for w in &self.workers {
            fds.push(PollFd::new(w.pipe.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(ms));
        drop(fds);
        if let Some(w) = &mut self.wake {
            let mut b = [0u8; 64];
            while matches!(w.read(&mut b), Ok(n) if n > 0) {}
        }
    }

    fn run(&mut self) {
        match self.mode.clone() {
            Mode::Only(ids) => {
                for id in ids {
                    self.load(&id);
                }
            }
            _ => self.scan(),
        }
        loop {
            let now = spool::now();
            self.start_rounds(now);
            self.dispatch();
            let terminating = self.term.load(Ordering::SeqCst);
            if terminating {
                let since = *self.term_since.get_or_insert_with(Instant::now);
                if self.workers.is_empty() {
                    break;
                }
                if since.elapsed() > Duration::from_secs(5) {
                    for w in &self.workers {
                        let _ = nix::sys::signal::kill(w.pid, Signal::SIGKILL);
                    }
                }
            }
            let idle = self.workers.is_empty()
                && self.waiting_local.is_empty()
                && self.waiting_remote.is_empty();
            if self.mode != Mode::Daemon && idle && !self.items.values().any(|i| i.active) {
                break;
            }
            let mut timeout = Duration::from_secs(60);
            if let Some(t) = self.next_due() {
                timeout = timeout.min(Duration::from_secs(t.saturating_sub(now)));
                if t <= now {
                    timeout = Duration::from_millis(200);
                }
            }
            if self.sock.is_none() || self.scan_wanted {
                timeout = timeout.min(Duration::from_secs(1));
            }
            if terminating {
                timeout = timeout.min(Duration::from_millis(200));
            }
            if self.mode == Mode::Daemon || !idle {
                self.wait(timeout);
            }
            if terminating && self.mode == Mode::Daemon {
                // Stop taking new work; finish what runs.
                self.waiting_local.clear();
                self.waiting_remote.clear();
            }
            self.read_kicks();
            self.read_workers();
            self.reap();
            self.settle(spool::now());
            let rescan = if self.sock.is_none() || self.scan_wanted {
                Duration::from_secs(1)
            } else {
                RESCAN
            };
            let quiet = self.workers.is_empty() && self.waiting_local.is_empty();
            if self.mode == Mode::Daemon
                && (self.last_scan.elapsed() >= rescan || (self.scan_wanted && quiet))
            {
                self.scan();
            }
        }
    }
}

/// The original message (or its headers) for a DSN.
fn read_original(dir: &Path, id: &str, size: u64, full: bool) -> io::Result<Vec<u8>> {
    let f = File::open(spool::queue_path(dir, id))?;
    let limit = if full {
        size.min(bounce::MAX_RETURNED as u64 + 1)
    } else {
        size.min(1024 * 1024)
    };
    let mut out = Vec::with_capacity(limit as usize);
    At {
        file: &f,
        pos: 0,
        end: limit,
    }
    .read_to_end(&mut out)?;
    Ok(out)
}

// ---- entry points ----

/// The companion process: runs until SIGTERM.
pub fn run_queue(settings: Arc<Settings>) {
    let cfg = settings.daemon::<Config>().clone();
    if let Err(e) = spool::create_dirs(&cfg.queue_dir) {
        log::error!("queue: cannot create {}: {e}", cfg.queue_dir.display());
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    let mut r = Runner::new(cfg, settings.common().authenticator(), Mode::Daemon);
    r.install_signals();
    // Stop (gracefully) when the master goes, even by kill -9: an orphan
    // runner would hold the spool against the next master's.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
    if nix::unistd::getppid().as_raw() == 1 {
        return;
    }
    match r.take_lock() {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            log::error!("queue: cannot lock the spool: {e}");
            std::thread::sleep(Duration::from_secs(5));
            return;
        }
    }
    spool::clean(&r.dir);
    r.bind_kick();
    log::info!("queue runner started on {}", r.dir.display());
    r.run();
    if r.sock.take().is_some() {
        let _ = std::fs::remove_file(r.dir.join(KICK));
    }
    log::info!("queue runner stopped");
}

/// Run the queue once in this process (`--flush`); returns when every
/// message has had its attempt.
pub fn flush_once(settings: &Settings) -> io::Result<()> {
    let cfg = settings.daemon::<Config>().clone();
    spool::create_dirs(&cfg.queue_dir)?;
    let mut r = Runner::new(cfg, settings.common().authenticator(), Mode::Flush);
    if !r.take_lock()? {
        return Err(io::Error::other(
            "another queue runner holds the spool and does not answer",
        ));
    }
    spool::clean(&r.dir);
    r.run();
    Ok(())
}

/// Make sure message `id` gets a delivery attempt now: wake the runner, or
/// when there is none (inetd mode), fork a detached one-shot delivery.
/// Returns at once either way.
pub fn deliver_now(settings: &Settings, id: &str) {
    let cfg = settings.daemon::<Config>().clone();
    if kick_id(&cfg.queue_dir, id) {
        return;
    }
    let auth = settings.common().authenticator();
    match sys::fork() {
        Err(e) => log::error!("{id}: cannot fork a delivery: {e}; it stays queued"),
        Ok(Forked::Parent(pid)) => {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        Ok(Forked::Child) => {
            let _ = nix::unistd::setsid();
            match sys::fork() {
                Ok(Forked::Child) => {}
                _ => std::process::exit(0),
            }
            close_network_fds();
            crate::runtime::log::reopen();
            for sig in [
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGCHLD,
            ] {
                sys::default_signal(sig);
            }
            let mut r = Runner::new(cfg, auth, Mode::Only(vec![id.to_string()]));
            match r.take_lock() {
                Ok(true) => r.run(),
                // A runner or flush holds the spool: it will see the mail.
                _ => {
                    kick_scan(&r.dir);
                }
            }
            std::process::exit(0);
        }
    }
}

/// In a detached delivery: close inherited TCP sockets (the client's
/// connection must end when the session does).
fn close_network_fds() {
    use nix::sys::socket::SockaddrLike;
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        let inet = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd)
            .ok()
            .and_then(|a| a.family())
            .is_some_and(|f| {
                matches!(
                    f,
                    nix::sys::socket::AddressFamily::Inet | nix::sys::socket::AddressFamily::Inet6
                )
            });
        if inet {
            let _ = nix::unistd::close(fd);
        }
    }
}
