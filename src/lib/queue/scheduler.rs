//! The pure half of a queue runner: entries (mail messages, articles) with
//! units to deliver (recipients, peers), rounds of attempts, and jobs for a
//! bounded number of worker processes per class.
//!
//! A round: [`Scheduler::start_due`] picks the entries whose next attempt
//! has come; the caller turns each pending unit into a task and
//! [`Scheduler::enqueue`]s it in a class (or settles it at once, say when
//! no route is known). [`Scheduler::dispatch`] batches waiting tasks into
//! [`Job`]s for the free workers of each class; the caller starts a worker
//! per job. Each result the caller reads is [`Scheduler::report`]ed; when
//! a worker ends, [`Scheduler::finished`] returns what it still owed. An
//! entry's round is over when nothing of it is in flight
//! ([`Tracked::round_over`]); the caller records the outcome (the next
//! attempt, see [`super::retry`]) and calls [`Tracked::end_round`].
//!
//! Nothing here forks, reads a clock or touches a file: time comes in as
//! arguments, decisions go out as values.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// What the scheduler needs to know of an entry it holds.
pub trait Entry {
    /// When the next attempt is due, in seconds since the epoch (0: now).
    fn next_attempt(&self) -> u64;
    /// Whether some unit of the entry is still to be delivered.
    fn has_pending(&self) -> bool;
}

/// A unit of work as the caller describes it to its worker.
pub trait Task {
    /// Whether `other` may go to the same worker as `self` (the same
    /// account, or the same message and next hop, or the same peer).
    fn batches_with(&self, other: &Self) -> bool;
}

/// A kind of worker, and how many of them may run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    pub name: &'static str,
    /// Workers of this class running at once.
    pub workers: usize,
    /// Most tasks one worker takes (at least 1).
    pub max_batch: usize,
    /// Share the waiting tasks out over the free workers (batches of
    /// waiting / free, at least one task) so that they run in parallel,
    /// rather than fill each batch first.
    pub spread: bool,
    /// A worker running longer than this is overdue.
    pub time_limit: Duration,
}

/// A class, by its index in the list the scheduler was made with.
pub type ClassId = usize;

/// One unit (recipient, peer) of one entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unit<K> {
    pub entry: K,
    pub unit: usize,
}

/// Names one job while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

/// Tasks for one worker, all of one class and batching together.
#[derive(Debug)]
pub struct Job<K, T> {
    pub id: JobId,
    pub class: ClassId,
    pub tasks: Vec<(Unit<K>, T)>,
}

/// An entry, with the state of its round.
#[derive(Debug)]
pub struct Tracked<E> {
    pub data: E,
    active: bool,
    in_flight: BTreeSet<usize>,
}

impl<E> Tracked<E> {
    /// A round is under way.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Units given to workers (or waiting for one) and not reported yet.
    pub fn in_flight(&self) -> &BTreeSet<usize> {
        &self.in_flight
    }

    /// Every unit of the round has been reported.
    pub fn round_over(&self) -> bool {
        self.active && self.in_flight.is_empty()
    }

    /// The caller has recorded the round: the entry may be due again.
    pub fn end_round(&mut self) {
        self.active = false;
    }
}

#[derive(Debug)]
struct Running<K> {
    class: ClassId,
    /// Units not reported yet.
    open: Vec<Unit<K>>,
    started: Instant,
    overdue: bool,
}

/// Entries keyed by `K` holding `E`, delivered by tasks `T`.
pub struct Scheduler<K, E, T> {
    classes: Vec<Class>,
    entries: BTreeMap<K, Tracked<E>>,
    /// Per class, in arrival order.
    waiting: Vec<VecDeque<(Unit<K>, T)>>,
    running: BTreeMap<JobId, Running<K>>,
    next_job: u64,
    /// A one-shot run gives each entry one round: those already given.
    once: Option<BTreeSet<K>>,
}

impl<K: Ord + Clone, E: Entry, T: Task> Scheduler<K, E, T> {
    /// `once`: each entry gets one round only (a one-shot run, a flush).
    pub fn new(classes: Vec<Class>, once: bool) -> Self {
        assert!(classes.iter().all(|c| c.max_batch >= 1));
        Scheduler {
            waiting: classes.iter().map(|_| VecDeque::new()).collect(),
            classes,
            entries: BTreeMap::new(),
            running: BTreeMap::new(),
            next_job: 0,
            once: once.then(BTreeSet::new),
        }
    }

    // ---- entries ----

    /// Hold a new entry; one already held is kept as it is (false).
    pub fn insert(&mut self, key: K, data: E) -> bool {
        if self.entries.contains_key(&key) {
            return false;
        }
        self.entries.insert(
            key,
            Tracked {
                data,
                active: false,
                in_flight: BTreeSet::new(),
            },
        );
        true
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub fn get(&self, key: &K) -> Option<&Tracked<E>> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut Tracked<E>> {
        self.entries.get_mut(key)
    }

    /// Take an entry out (to settle it while the scheduler is used for
    /// something else); `put_back` returns it, or it is gone for good.
    pub fn take(&mut self, key: &K) -> Option<Tracked<E>> {
        self.entries.remove(key)
    }

    pub fn put_back(&mut self, key: K, entry: Tracked<E>) {
        self.entries.insert(key, entry);
    }

    /// Keep only the entries for which `keep` says so.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &Tracked<E>) -> bool) {
        self.entries.retain(|k, t| keep(k, t));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &Tracked<E>)> {
        self.entries.iter()
    }

    pub fn data_mut(&mut self) -> impl Iterator<Item = &mut E> {
        self.entries.values_mut().map(|t| &mut t.data)
    }

    /// Some entry is in a round.
    pub fn any_active(&self) -> bool {
        self.entries.values().any(|t| t.active)
    }

    // ---- rounds ----

    /// Start a round for each entry with pending units that is due at
    /// `now` (every one of them when `everything`), not in a round already
    /// and, in a one-shot scheduler, not given one before. Returns their
    /// keys, in key order.
    pub fn start_due(&mut self, now: u64, everything: bool) -> Vec<K> {
        let mut due = Vec::new();
        for (key, t) in self.entries.iter_mut() {
            if t.active || (!everything && t.data.next_attempt() > now) {
                continue;
            }
            if self.once.as_ref().is_some_and(|done| done.contains(key)) {
                continue;
            }
            if !t.data.has_pending() {
                continue;
            }
            t.active = true;
            if let Some(done) = self.once.as_mut() {
                done.insert(key.clone());
            }
            due.push(key.clone());
        }
        due
    }

    /// The earliest next attempt of an entry waiting for a round.
    pub fn next_due(&self) -> Option<u64> {
        self.entries
            .values()
            .filter(|t| !t.active && t.data.has_pending())
            .map(|t| t.data.next_attempt())
            .min()
    }

    /// Hand `unit` of `entry` (in its round) to a worker of `class`: it is
    /// in flight from now until reported.
    pub fn enqueue(&mut self, class: ClassId, entry: K, unit: usize, task: T) {
        if let Some(t) = self.entries.get_mut(&entry) {
            t.in_flight.insert(unit);
        }
        self.waiting[class].push_back((Unit { entry, unit }, task));
    }

    // ---- workers ----

    /// Jobs for every free worker, class by class in the order given at
    /// `new`. Each job counts as running from `now` until `finished`, even
    /// if its worker cannot be started (then finish it at once).
    pub fn dispatch(&mut self, now: Instant) -> Vec<Job<K, T>> {
        let mut jobs = Vec::new();
        for (class, spec) in self.classes.iter().enumerate() {
            let running = self.running.values().filter(|r| r.class == class).count();
            let mut free = spec.workers.saturating_sub(running);
            let queue = &mut self.waiting[class];
            while free > 0 && !queue.is_empty() {
                // Spread over every worker of the class, not only the
                // free ones: a lone free worker that took all that waits
                // would carry it alone while the others, freed a moment
                // later, find nothing (LMTP into Dovecot: one connection
                // doing hundreds of fsynced deliveries in a row).
                let size = if spec.spread {
                    queue
                        .len()
                        .div_ceil(spec.workers.max(1))
                        .clamp(1, spec.max_batch)
                } else {
                    spec.max_batch
                };
                let tasks = take_batch(queue, size);
                let id = JobId(self.next_job);
                self.next_job += 1;
                self.running.insert(
                    id,
                    Running {
                        class,
                        open: tasks.iter().map(|(u, _)| u.clone()).collect(),
                        started: now,
                        overdue: false,
                    },
                );
                jobs.push(Job { id, class, tasks });
                free -= 1;
            }
        }
        jobs
    }

    /// A result came for `unit` of `entry`, from the worker of `job` (None:
    /// decided without one, e.g. the worker could not start). True when
    /// the unit was in flight: the caller records the result. False: a
    /// duplicate, or for an entry no longer held; ignore it.
    pub fn report(&mut self, job: Option<JobId>, entry: &K, unit: usize) -> bool {
        if let Some(r) = job.and_then(|j| self.running.get_mut(&j)) {
            r.open.retain(|u| !(u.unit == unit && u.entry == *entry));
        }
        self.entries
            .get_mut(entry)
            .is_some_and(|t| t.in_flight.remove(&unit))
    }

    /// The worker of `job` is gone (or never started). Returns the units it
    /// never reported; the caller reports them (as deferred: a delivery cut
    /// short is tried again).
    pub fn finished(&mut self, job: JobId) -> Vec<Unit<K>> {
        self.running
            .remove(&job)
            .map(|r| r.open)
            .unwrap_or_default()
    }

    /// Jobs running past their class's time limit at `now`, each returned
    /// once (the caller kills the worker; `finished` follows as usual).
    pub fn overdue(&mut self, now: Instant) -> Vec<JobId> {
        let mut late = Vec::new();
        for (id, r) in self.running.iter_mut() {
            let limit = self.classes[r.class].time_limit;
            if !r.overdue && now.saturating_duration_since(r.started) > limit {
                r.overdue = true;
                late.push(*id);
            }
        }
        late
    }

    /// Jobs running (of every class).
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Tasks of `class` waiting for a worker.
    pub fn waiting(&self, class: ClassId) -> usize {
        self.waiting[class].len()
    }

    /// Nothing running, nothing waiting.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.iter().all(|q| q.is_empty())
    }

    /// Hand out no more work (the runner is stopping): waiting tasks are
    /// dropped. Their entries stay in their round, in flight: nothing is
    /// recorded about them, and the next runner tries them again.
    pub fn drop_waiting(&mut self) {
        for q in &mut self.waiting {
            q.clear();
        }
    }
}

/// The first waiting task and up to `size - 1` more that batch with it, in
/// order; the others keep theirs. One pass over the queue.
fn take_batch<K, T: Task>(queue: &mut VecDeque<(Unit<K>, T)>, size: usize) -> Vec<(Unit<K>, T)> {
    let Some(first) = queue.pop_front() else {
        return Vec::new();
    };
    let mut batch = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(t) = queue.pop_front() {
        if batch.len() < size && batch[0].1.batches_with(&t.1) {
            batch.push(t);
        } else if batch.len() >= size {
            rest.push_back(t);
            rest.append(queue);
        } else {
            rest.push_back(t);
        }
    }
    *queue = rest;
    batch
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
