use super::*;

#[derive(Debug)]
struct Msg {
    next: u64,
    pending: bool,
}

impl Entry for Msg {
    fn next_attempt(&self) -> u64 {
        self.next
    }
    fn has_pending(&self) -> bool {
        self.pending
    }
}

/// A task that batches with those of the same key (an account, a peer).
#[derive(Clone, Debug, PartialEq, Eq)]
struct To(&'static str);

impl Task for To {
    fn batches_with(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

const LOCAL: ClassId = 0;
const REMOTE: ClassId = 1;

fn sched(once: bool) -> Scheduler<String, Msg, To> {
    Scheduler::new(
        vec![
            Class {
                name: "local",
                workers: 2,
                max_batch: 3,
                spread: true,
                time_limit: Duration::from_secs(10),
            },
            Class {
                name: "remote",
                workers: 1,
                max_batch: usize::MAX,
                spread: false,
                time_limit: Duration::from_secs(100),
            },
        ],
        once,
    )
}

fn msg(next: u64) -> Msg {
    Msg {
        next,
        pending: true,
    }
}

fn keys(jobs: &[Job<String, To>]) -> Vec<Vec<(String, usize, &'static str)>> {
    jobs.iter()
        .map(|j| {
            j.tasks
                .iter()
                .map(|(u, t)| (u.entry.clone(), u.unit, t.0))
                .collect()
        })
        .collect()
}

#[test]
fn due_entries_get_one_round_at_a_time() {
    let mut s = sched(false);
    assert!(s.insert("a".into(), msg(0)));
    assert!(
        !s.insert("a".into(), msg(99)),
        "an entry held stays as it is"
    );
    s.insert("b".into(), msg(100));
    s.insert(
        "c".into(),
        Msg {
            next: 0,
            pending: false,
        },
    );
    assert_eq!(s.start_due(50, false), vec!["a".to_string()]);
    assert_eq!(
        s.start_due(50, false),
        Vec::<String>::new(),
        "a is in its round"
    );
    assert!(s.any_active());
    assert_eq!(s.next_due(), Some(100));
    // Everything due (a flush): b too, though not due yet.
    assert_eq!(s.start_due(50, true), vec!["b".to_string()]);
    assert_eq!(s.next_due(), None);
    // No task was handed out: both rounds are over at once.
    assert!(s.get(&"a".into()).unwrap().round_over());
    s.get_mut(&"a".into()).unwrap().end_round();
    assert_eq!(s.start_due(50, false), vec!["a".to_string()]);
}

#[test]
fn a_one_shot_run_gives_each_entry_one_round() {
    let mut s = sched(true);
    s.insert("a".into(), msg(0));
    assert_eq!(s.start_due(0, false), vec!["a".to_string()]);
    s.get_mut(&"a".into()).unwrap().end_round();
    assert!(s.start_due(0, true).is_empty());
    assert!(!s.any_active());
}

#[test]
fn a_round_is_over_when_every_unit_is_reported_once() {
    let mut s = sched(false);
    s.insert("a".into(), msg(0));
    s.start_due(0, false);
    s.enqueue(LOCAL, "a".into(), 0, To("x"));
    s.enqueue(LOCAL, "a".into(), 2, To("x"));
    // Two tasks over two free workers: one each.
    let jobs = s.dispatch(Instant::now());
    assert_eq!(jobs.len(), 2);
    let a = "a".to_string();
    assert!(!s.get(&a).unwrap().round_over());
    assert!(s.report(Some(jobs[0].id), &a, 0));
    assert!(!s.report(Some(jobs[0].id), &a, 0), "a duplicate");
    assert!(!s.get(&a).unwrap().round_over());
    assert!(s.report(None, &a, 2));
    assert!(s.get(&a).unwrap().round_over());
    assert!(!s.report(None, &"gone".to_string(), 0));
}

#[test]
fn local_tasks_are_spread_over_the_workers_and_batched_by_key() {
    let mut s = sched(false);
    for (i, key) in ["x", "y", "x", "x", "y"].iter().enumerate() {
        s.enqueue(LOCAL, format!("m{i}"), 0, To(key));
    }
    // 5 waiting, 2 workers: a share of 3 (the x's batch together), then of
    // 1 of the 2 left: a worker takes its share of the class, never all
    // that waits, so that the others find work when they come free.
    let jobs = s.dispatch(Instant::now());
    assert_eq!(
        keys(&jobs),
        vec![
            vec![
                ("m0".into(), 0, "x"),
                ("m2".into(), 0, "x"),
                ("m3".into(), 0, "x")
            ],
            vec![("m1".into(), 0, "y")],
        ]
    );
    assert_eq!(s.waiting(LOCAL), 1);
    // Both workers busy: nothing more until one finishes.
    assert!(s.dispatch(Instant::now()).is_empty());
    assert_eq!(s.running(), 2);
    assert_eq!(s.finished(jobs[0].id).len(), 3, "nothing was reported");
    let more = s.dispatch(Instant::now());
    assert_eq!(keys(&more), vec![vec![("m4".into(), 0, "y")]]);
    assert_eq!(s.waiting(LOCAL), 0);
}

#[test]
fn a_lone_free_worker_takes_its_share_not_the_whole_queue() {
    let mut s = sched(false);
    // Both workers busy with one task each.
    s.enqueue(LOCAL, "a".into(), 0, To("a"));
    s.enqueue(LOCAL, "b".into(), 0, To("b"));
    let first = s.dispatch(Instant::now());
    assert_eq!(first.len(), 2);
    for i in 0..4 {
        s.enqueue(
            LOCAL,
            format!("m{i}"),
            0,
            To(if i % 2 == 0 { "p" } else { "q" }),
        );
    }
    s.finished(first[0].id);
    // One worker free, four waiting: it takes two (its share of two
    // workers), leaving two for the other when it comes free.
    let jobs = s.dispatch(Instant::now());
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].tasks.len(), 2);
    assert_eq!(s.waiting(LOCAL), 2);
}

#[test]
fn batches_never_exceed_max_batch() {
    let mut s = sched(false);
    for i in 0..10 {
        s.enqueue(LOCAL, format!("m{i}"), 0, To("x"));
    }
    let jobs = s.dispatch(Instant::now());
    assert_eq!(
        jobs.iter().map(|j| j.tasks.len()).collect::<Vec<_>>(),
        vec![3, 3]
    );
}

#[test]
fn remote_jobs_take_their_whole_group_one_worker_at_a_time() {
    let mut s = sched(false);
    s.enqueue(REMOTE, "m1".into(), 0, To("m1/hopA"));
    s.enqueue(REMOTE, "m1".into(), 1, To("m1/hopB"));
    s.enqueue(REMOTE, "m1".into(), 2, To("m1/hopA"));
    s.enqueue(LOCAL, "m2".into(), 0, To("acct"));
    let jobs = s.dispatch(Instant::now());
    // Classes in order: local first.
    assert_eq!(
        jobs.iter().map(|j| j.class).collect::<Vec<_>>(),
        [LOCAL, REMOTE]
    );
    assert_eq!(
        keys(&jobs)[1],
        vec![("m1".into(), 0, "m1/hopA"), ("m1".into(), 2, "m1/hopA")]
    );
    assert_eq!(s.waiting(REMOTE), 1);
    assert!(s.dispatch(Instant::now()).is_empty(), "one remote worker");
    let lost = s.finished(jobs[1].id);
    assert_eq!(lost.len(), 2);
    assert_eq!(
        keys(&s.dispatch(Instant::now())),
        vec![vec![("m1".into(), 1, "m1/hopB")]]
    );
}

#[test]
fn what_a_worker_never_reported_comes_back_when_it_ends() {
    let mut s = sched(false);
    let a = "a".to_string();
    s.insert(a.clone(), msg(0));
    s.start_due(0, false);
    s.enqueue(REMOTE, a.clone(), 0, To("a/hop"));
    s.enqueue(REMOTE, a.clone(), 1, To("a/hop"));
    let job = s.dispatch(Instant::now()).remove(0);
    assert!(s.report(Some(job.id), &a, 1));
    let lost = s.finished(job.id);
    assert_eq!(
        lost,
        vec![Unit {
            entry: a.clone(),
            unit: 0
        }]
    );
    assert!(s.finished(job.id).is_empty(), "finished once");
    assert!(!s.get(&a).unwrap().round_over());
    assert!(s.report(None, &a, 0));
    assert!(s.get(&a).unwrap().round_over());
    assert!(s.is_idle());
}

#[test]
fn overdue_jobs_are_named_once() {
    let mut s = sched(false);
    let t0 = Instant::now();
    s.enqueue(LOCAL, "a".into(), 0, To("x"));
    s.enqueue(REMOTE, "b".into(), 0, To("b"));
    let jobs = s.dispatch(t0);
    assert!(s.overdue(t0 + Duration::from_secs(10)).is_empty());
    assert_eq!(s.overdue(t0 + Duration::from_secs(11)), vec![jobs[0].id]);
    assert!(s.overdue(t0 + Duration::from_secs(12)).is_empty());
    assert_eq!(s.overdue(t0 + Duration::from_secs(101)), vec![jobs[1].id]);
}

#[test]
fn stopping_drops_waiting_work_but_not_the_rounds() {
    let mut s = sched(false);
    let a = "a".to_string();
    s.insert(a.clone(), msg(0));
    s.start_due(0, false);
    for u in 0..8 {
        s.enqueue(LOCAL, a.clone(), u, To("x"));
    }
    let jobs = s.dispatch(Instant::now());
    assert_eq!(jobs.len(), 2);
    assert_eq!(s.waiting(LOCAL), 2);
    s.drop_waiting();
    assert_eq!(s.waiting(LOCAL), 0);
    assert!(!s.is_idle(), "two workers still run");
    for j in jobs {
        s.finished(j.id);
    }
    assert!(s.is_idle());
    // Nothing was reported: the entry stays in its round.
    assert!(s.get(&a).unwrap().is_active());
    assert!(!s.get(&a).unwrap().round_over());
}

#[test]
fn entries_can_be_taken_out_and_put_back() {
    let mut s = sched(false);
    s.insert("a".into(), msg(7));
    s.insert("b".into(), msg(8));
    let t = s.take(&"a".into()).unwrap();
    assert!(!s.contains(&"a".into()));
    s.put_back("a".into(), t);
    s.retain(|k, _| k != "b");
    for d in s.data_mut() {
        d.next = 0;
    }
    assert_eq!(
        s.iter()
            .map(|(k, t)| (k.clone(), t.data.next))
            .collect::<Vec<_>>(),
        vec![("a".to_string(), 0)]
    );
}
