#![forbid(unsafe_code)]
//! Scheduling shared by the queues that deliver in the background: smtpd's
//! mail queue (local mailboxes, remote hosts) and, on the same pieces, news
//! feeds to peers. The formats, routes and notifications stay with each
//! protocol (`smtp::queue`); what is here knows entries, units and workers,
//! not mail.
//!
//! - [`retry`]: after a temporary failure, when to try again (exponential
//!   backoff) and when to give up (the entry's lifetime). Pure.
//! - [`scheduler`]: which entries are due, the tasks of their rounds
//!   batched into jobs for a bounded number of workers per class, the
//!   in-flight bookkeeping (what each worker still owes, when a round is
//!   over), overdue workers. Pure: the caller forks, reads results and
//!   reads the clock, and tells the scheduler.
//! - [`kick`]: waking a runner: one line on a FIFO (a new entry, rescan,
//!   flush), parsed purely; the FIFO itself at the edge.

pub mod kick;
pub mod retry;
pub mod scheduler;

pub use kick::{Doorbell, Kick};
pub use retry::{Backoff, Decision};
pub use scheduler::{Class, ClassId, Entry, Job, JobId, Scheduler, Task, Tracked, Unit};
