//! The queue runner: one scheduler process that keeps the spool in memory,
//! hands deliveries to short-lived worker processes (local batches per
//! account, one SMTP transaction per message and next hop), records every
//! result durably, queues DSNs and schedules retries.
//!
//! Which messages are due, how tasks are batched into jobs, how many
//! workers run, and what each still owes are decided by the shared, pure
//! [`crate::queue::Scheduler`]; the retry times by [`crate::queue::Backoff`].
//! What is mail's stays here: the spool, routes, DSNs, and the processes.
//!
//! Wake-ups arrive as lines on the FIFO `queue_dir/kick`: `M<id>` (a new
//! message), `S` (rescan the spool), `F` (flush: retry everything now). The
//! runner holds an exclusive flock on `queue_dir/lock`; one-shot deliveries
//! without a runner (inetd mode) hold it shared, `--flush` exclusively.
//!
//! Workers die with the runner (PR_SET_PDEATHSIG), so a restarted runner
//! never races an orphan; a delivery cut short is simply tried again.

use std::collections::HashSet;
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
use super::lmtp_deliver::lmtp_address;
use super::local::{At, LocalTask};
use super::route::{self, NextHop};
use super::spool::{self, RcptStatus, State, StoredEnvelope};
use super::worker::{self, Job, LmtpTask, Res};
use super::{Envelope, Notify, Queue, Recipient, Ret, Route};
use crate::auth::Authenticator;
use crate::queue::{self, Backoff, Class, ClassId, Decision, Doorbell, Entry, JobId, Kick, Unit};
use crate::runtime::config::Settings;
use crate::runtime::supervise::{self, Kind};
use crate::smtp::Config;

pub use super::kick::{kick_flush, kick_id, kick_scan, KICK};
pub const LOCK: &str = "lock";

const LOCAL: ClassId = 0;
const REMOTE: ClassId = 1;
const LMTP: ClassId = 2;

/// The workers, in the order they are handed work.
fn classes() -> Vec<Class> {
    vec![
        Class {
            name: "local",
            // Their fsyncs are grouped by the file system's journal.
            workers: 8,
            // Messages one local worker takes; the waiting ones are
            // spread over the free workers first.
            max_batch: 64,
            spread: true,
            time_limit: Duration::from_secs(600),
        },
        Class {
            name: "remote",
            workers: 16,
            // One SMTP transaction: every recipient of the message that
            // goes to the same next hop.
            max_batch: usize::MAX,
            spread: false,
            time_limit: Duration::from_secs(3600),
        },
        Class {
            name: "lmtp",
            // Connections to the LMTP server of mail_location (Postfix
            // opens up to 20 to one destination).
            workers: 12,
            // Messages one connection carries before its worker ends.
            max_batch: 500,
            spread: true,
            time_limit: Duration::from_secs(1800),
        },
    ]
}

/// A full rescan of the spool at least this often (a lost kick costs no
/// more than this).
const RESCAN: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// The companion: runs until SIGTERM.
    Daemon,
    /// `--flush`: everything once, then exit.
    Flush,
    /// One-shot delivery of these messages (inetd mode).
    Only(Vec<String>),
}

/// A queued message as the runner holds it; its recipients are the units
/// the scheduler tracks.
struct Item {
    se: StoredEnvelope,
    st: State,
    has_state_file: bool,
    /// Results of this round not yet settled.
    fresh: Vec<Res>,
    /// Deferrals of this round.
    deferred: Vec<Res>,
}

impl Item {
    fn pending(&self) -> Vec<usize> {
        (0..self.se.env.recipients.len())
            .filter(|i| self.st.status(*i) == RcptStatus::Pending)
            .collect()
    }
}

impl Entry for Item {
    fn next_attempt(&self) -> u64 {
        self.st.next_attempt
    }

    fn has_pending(&self) -> bool {
        let n = self.se.env.recipients.len();
        self.st.done.iter().filter(|(i, _)| *i < n).count() < n
    }
}

/// One recipient's delivery, as it waits for a worker.
enum Delivery {
    Local(LocalTask),
    Lmtp(LmtpTask),
    Remote { id: String, hop: NextHop },
}

impl queue::Task for Delivery {
    /// A local worker delivers for one account; a remote one makes one
    /// transaction: one message, one next hop.
    fn batches_with(&self, other: &Self) -> bool {
        match (self, other) {
            (Delivery::Local(a), Delivery::Local(b)) => a.account == b.account,
            // Any messages for the LMTP server share its connection.
            (Delivery::Lmtp(_), Delivery::Lmtp(_)) => true,
            (Delivery::Remote { id, hop }, Delivery::Remote { id: i2, hop: h2 }) => {
                id == i2 && hop == h2
            }
            _ => false,
        }
    }
}

/// The worker's job for a batch (never empty; all of one class).
fn worker_job(tasks: Vec<(Unit<String>, Delivery)>) -> Option<Job> {
    let mut tasks = tasks.into_iter();
    match tasks.next()? {
        (_, Delivery::Local(first)) => {
            let account = first.account.clone();
            let mut local = vec![first];
            local.extend(tasks.filter_map(|(_, d)| match d {
                Delivery::Local(t) => Some(t),
                _ => None,
            }));
            Some(Job::Local {
                account,
                tasks: local,
            })
        }
        (_, Delivery::Lmtp(first)) => {
            let mut lmtp = vec![first];
            lmtp.extend(tasks.filter_map(|(_, d)| match d {
                Delivery::Lmtp(t) => Some(t),
                _ => None,
            }));
            Some(Job::Lmtp { tasks: lmtp })
        }
        (unit, Delivery::Remote { id, hop }) => {
            let mut rcpts = vec![unit.unit];
            rcpts.extend(tasks.map(|(u, _)| u.unit));
            Some(Job::Remote { id, hop, rcpts })
        }
    }
}

struct Worker {
    pid: Pid,
    pipe: File,
    buf: Vec<u8>,
    job: JobId,
}

struct Runner {
    cfg: Config,
    auth: Authenticator,
    dir: PathBuf,
    mode: Mode,
    /// The messages, their rounds, the waiting tasks and running jobs.
    sched: queue::Scheduler<String, Item, Delivery>,
    workers: Vec<Worker>,
    /// The wake-up FIFO.
    sock: Option<Doorbell>,
    lock: Option<Flock<File>>,
    me: Pid,
    last_scan: Instant,
    scan_wanted: bool,
    flush_wanted: bool,
    /// Messages removed since the last fsync of q/; their state files.
    removed: Vec<(String, bool)>,
    /// Which spare the next finished message file becomes (spool::retire).
    spare_slot: u32,
    term: Arc<AtomicBool>,
    wake: Option<UnixStream>,
    term_since: Option<Instant>,
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
            // Flushes and one-shots give each message one attempt.
            sched: queue::Scheduler::new(classes(), mode != Mode::Daemon),
            mode,
            workers: Vec::new(),
            sock: None,
            lock: None,
            me: nix::unistd::getpid(),
            last_scan: Instant::now(),
            scan_wanted: true,
            flush_wanted: false,
            removed: Vec::new(),
            spare_slot: 0,
            term: Arc::new(AtomicBool::new(false)),
            wake: None,
            term_since: None,
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
        let path = self.dir.join(KICK);
        match Doorbell::bind(&path) {
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
        if self.sched.contains(&id.to_string()) || !spool::valid_id(id) {
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
        self.sched.insert(
            id.to_string(),
            Item {
                se,
                st,
                has_state_file,
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
                self.sched
                    .retain(|id, it| it.is_active() || present.contains(id));
                for id in &ids {
                    self.load(id);
                }
            }
            Err(e) => log::error!("queue: cannot read {}: {e}", self.dir.display()),
        }
    }

    fn read_kicks(&mut self) {
        let kicks = self.sock.as_mut().map(Doorbell::drain).unwrap_or_default();
        for kick in kicks {
            match kick {
                Kick::Entry(id) => self.load(&id),
                Kick::Flush => {
                    self.flush_wanted = true;
                    self.scan_wanted = true;
                }
                Kick::Scan => self.scan_wanted = true,
            }
        }
        if self.flush_wanted {
            self.flush_wanted = false;
            self.scan();
            for it in self.sched.data_mut() {
                it.st.next_attempt = 0;
            }
            log::info!("queue: flush requested");
        }
    }

    // ---- scheduling ----

    /// Start a round for each message due: its pending recipients become
    /// tasks for the workers; a remote one without a next hop is deferred
    /// at once.
    fn start_rounds(&mut self, now: u64) {
        if self.term.load(Ordering::SeqCst) {
            return;
        }
        let mut router: Option<route::Router> = None;
        for id in self.sched.start_due(now, self.mode == Mode::Flush) {
            let Some(it) = self.sched.get(&id).map(|t| &t.data) else {
                continue;
            };
            let env = &it.se.env;
            let mut tasks: Vec<(ClassId, usize, Delivery)> = Vec::new();
            let mut unrouted: Vec<Res> = Vec::new();
            for i in it.pending() {
                let r = &env.recipients[i];
                match &r.route {
                    // mail_location = lmtp:...: the account's mailbox is
                    // on the LMTP server (a ~/.forward naming a mailbox
                    // file is still written here).
                    Route::Local {
                        account,
                        mailbox_spec: None,
                    } if self.cfg.lmtp.is_some() => tasks.push((
                        LMTP,
                        i,
                        Delivery::Lmtp(LmtpTask {
                            id: id.clone(),
                            rcpt: i,
                            address: lmtp_address(account, &r.address, &self.cfg.local_domains),
                        }),
                    )),
                    Route::Local {
                        account,
                        mailbox_spec,
                    } => tasks.push((
                        LOCAL,
                        i,
                        Delivery::Local(LocalTask {
                            id: id.clone(),
                            rcpt: i,
                            account: account.clone(),
                            mailbox_spec: mailbox_spec.clone(),
                            return_path: env.sender.clone(),
                            size: it.se.size,
                        }),
                    )),
                    Route::Remote => {
                        let router = router.get_or_insert_with(|| route::Router::new(&self.cfg));
                        match router.next_hop(&route::domain_of(&r.address)) {
                            Ok(hop) => tasks.push((
                                REMOTE,
                                i,
                                Delivery::Remote {
                                    id: id.clone(),
                                    hop,
                                },
                            )),
                            Err(why) => unrouted.push(Res {
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
            for (class, rcpt, task) in tasks {
                self.sched.enqueue(class, id.clone(), rcpt, task);
            }
            if let Some(t) = self.sched.get_mut(&id) {
                t.data.deferred.extend(unrouted);
            }
        }
    }

    fn dispatch(&mut self) {
        for job in self.sched.dispatch(Instant::now()) {
            self.spawn(job);
        }
    }

    fn spawn(&mut self, batch: queue::Job<String, Delivery>) {
        let job_id = batch.id;
        let Some(job) = worker_job(batch.tasks) else {
            self.sched.finished(job_id);
            return;
        };
        let (r, w) = match nix::unistd::pipe() {
            Ok(p) => p,
            Err(e) => {
                log::error!("queue: pipe: {e}");
                let open = self.sched.finished(job_id);
                self.worker_lost(open, &format!("4.3.0 cannot start a delivery process: {e}"));
                return;
            }
        };
        let keep = [w.as_raw_fd()];
        let (cfg, auth, me) = (&self.cfg, &self.auth, self.me);
        // The worker keeps only its result pipe: not the runner's spool
        // lock, its wake-up sockets or the other workers' pipes.
        match supervise::spawn(Kind::Worker, &keep, move || {
            worker::run_worker(cfg, auth, me, job, w);
            0
        }) {
            Ok(pid) => {
                let pipe = File::from(r);
                let _ = nix::fcntl::fcntl(
                    pipe.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                self.workers.push(Worker {
                    pid,
                    pipe,
                    buf: Vec::new(),
                    job: job_id,
                });
            }
            Err(e) => {
                log::error!("queue: fork: {e}");
                let open = self.sched.finished(job_id);
                self.worker_lost(open, &format!("4.3.0 cannot start a delivery process: {e}"));
            }
        }
    }

    /// Tasks whose worker could not run or vanished: deferred.
    fn worker_lost(&mut self, open: Vec<Unit<String>>, why: &str) {
        for Unit {
            entry: id,
            unit: rcpt,
        } in open
        {
            self.result(
                None,
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

    /// A result for a recipient in flight (from the worker of `job`, or
    /// decided here); anything else is late and ignored.
    fn result(&mut self, job: Option<JobId>, id: &str, r: Res) {
        let id = id.to_string();
        if !self.sched.report(job, &id, r.rcpt) {
            return;
        }
        let Some(it) = self.sched.get_mut(&id).map(|t| &mut t.data) else {
            return;
        };
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
        let mut lines: Vec<(JobId, String)> = Vec::new();
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
                lines.push((w.job, line));
            }
        }
        for job in self.sched.overdue(Instant::now()) {
            if let Some(w) = self.workers.iter().find(|w| w.job == job) {
                log::error!("queue: delivery process {} took too long; killed", w.pid);
                let _ = nix::sys::signal::kill(w.pid, Signal::SIGKILL);
            }
        }
        for (job, line) in lines {
            match worker::parse_result(&line) {
                Some((id, r)) => self.result(Some(job), &id, r),
                None => log::error!("queue: bad line from a delivery process: {line:?}"),
            }
        }
        for wi in finished.into_iter().rev() {
            let w = self.workers.swap_remove(wi);
            // It is exiting; reap it without waiting for that.
            self.exiting.push(w.pid);
            let open = self.sched.finished(w.job);
            if !open.is_empty() {
                self.worker_lost(open, "4.3.0 the delivery process ended unexpectedly");
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
            .sched
            .iter()
            .filter(|(_, t)| !t.data.fresh.is_empty() || t.round_over())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.settle_one(&id, now);
        }
        if !self.removed.is_empty() {
            if let Err(e) = crate::fs::sync_dir(&self.dir.join(spool::QUEUE)) {
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
        let Some(mut tracked) = self.sched.take(&id.to_string()) else {
            return;
        };
        let round_over = tracked.round_over();
        if round_over {
            tracked.end_round();
        }
        let nothing_in_flight = tracked.in_flight().is_empty();
        let it = &mut tracked.data;
        let mut finals: Vec<Res> = std::mem::take(&mut it.fresh);
        if round_over {
            let deferred = std::mem::take(&mut it.deferred);
            if !deferred.is_empty() {
                it.st.attempts += 1;
                it.st.last_attempt = now;
                it.st.last_error = Some(deferred[0].text.clone());
                let backoff = Backoff {
                    interval: self.cfg.retry_interval.as_secs(),
                    lifetime: self.cfg.queue_lifetime.as_secs(),
                };
                match backoff.after_failure(it.se.created, it.st.attempts, now) {
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
                        if bounce::delay_warning_due(
                            it.se.created,
                            now,
                            self.cfg.queue_lifetime.as_secs(),
                            it.st.delay_warned,
                        ) {
                            it.st.delay_warned = true;
                            self.queue_dsn(id, it, &deferred, DsnAction::Delayed, now);
                        }
                    }
                }
            }
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
            self.queue_dsn(id, it, &failed, DsnAction::Failed, now);
            self.queue_dsn(id, it, &sent, DsnAction::Delivered, now);
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
        if it.pending().is_empty() && nothing_in_flight {
            if let Err(e) = spool::retire(&self.dir, id, &mut self.spare_slot) {
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
        self.sched.put_back(id.to_string(), tracked);
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
            let idle = self.sched.is_idle();
            if self.mode != Mode::Daemon && idle && !self.sched.any_active() {
                break;
            }
            let mut timeout = Duration::from_secs(60);
            if let Some(t) = self.sched.next_due() {
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
                self.sched.drop_waiting();
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
            let quiet = self.workers.is_empty() && self.sched.waiting(LOCAL) == 0;
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
    crate::sys::die_with_parent(Signal::SIGTERM);
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
    let id = id.to_string();
    // A child that starts a grandchild and exits at once: the delivery is
    // not ours to wait for (the session may end first), and it keeps none
    // of the session's descriptors, so the client's connection ends with
    // the session.
    let detached = supervise::spawn(Kind::Delivery, &[], move || {
        let _ = nix::unistd::setsid();
        let delivery = supervise::spawn(Kind::Delivery, &[], move || {
            let mut r = Runner::new(cfg, auth, Mode::Only(vec![id.clone()]));
            match r.take_lock() {
                Ok(true) => r.run(),
                // A runner or flush holds the spool: it will see the mail.
                _ => {
                    kick_scan(&r.dir);
                }
            }
            0
        });
        i32::from(delivery.is_err())
    });
    match detached {
        Err(e) => log::error!("cannot fork a delivery: {e}; it stays queued"),
        Ok(pid) => {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}
