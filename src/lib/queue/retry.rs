//! When to try an entry again after a temporary failure, and when to give
//! up on it: time in, decision out. The same rule serves a mail message
//! (given up on: bounced) and an article offered to a down peer (given up
//! on: dropped from that peer's feed).

/// What to do after a temporary failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time (seconds since the epoch).
    RetryAt(u64),
    /// The entry has outlived its lifetime: stop trying.
    GiveUp,
}

/// The longest wait between two attempts, in retry intervals.
pub const MAX_BACKOFF_FACTOR: u64 = 16;

/// Exponential backoff within a lifetime, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; it doubles after each further
    /// one, up to [`MAX_BACKOFF_FACTOR`] times this.
    pub interval: u64,
    /// How long after its arrival an entry is still tried; the last
    /// attempt happens at the end of it.
    pub lifetime: u64,
}

impl Backoff {
    /// After the `attempts`-th failed attempt (1 = the first) at `now` of
    /// an entry that arrived at `arrived`.
    pub fn after_failure(&self, arrived: u64, attempts: u32, now: u64) -> Decision {
        let expires = arrived.saturating_add(self.lifetime);
        if now >= expires {
            return Decision::GiveUp;
        }
        let interval = self.interval.max(1);
        let shift = attempts.saturating_sub(1).min(10);
        let wait = interval
            .saturating_mul(1u64 << shift)
            .min(interval.saturating_mul(MAX_BACKOFF_FACTOR));
        Decision::RetryAt(now.saturating_add(wait).min(expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(interval: u64, lifetime: u64) -> Backoff {
        Backoff { interval, lifetime }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = backoff(300, 100_000);
        assert_eq!(b.after_failure(0, 1, 10), Decision::RetryAt(310));
        assert_eq!(b.after_failure(0, 2, 10), Decision::RetryAt(610));
        assert_eq!(b.after_failure(0, 3, 10), Decision::RetryAt(1210));
        assert_eq!(b.after_failure(0, 30, 10), Decision::RetryAt(10 + 4800));
        // A zero interval still waits a second.
        assert_eq!(
            backoff(0, 100).after_failure(0, 1, 10),
            Decision::RetryAt(11)
        );
    }

    #[test]
    fn last_try_at_expiry_then_give_up() {
        let b = backoff(300, 1000);
        assert_eq!(b.after_failure(0, 5, 950), Decision::RetryAt(1000));
        assert_eq!(b.after_failure(0, 6, 1000), Decision::GiveUp);
        assert_eq!(backoff(300, 0).after_failure(0, 1, 5), Decision::GiveUp);
    }

    #[test]
    fn huge_values_saturate() {
        let b = backoff(u64::MAX, u64::MAX);
        assert_eq!(
            b.after_failure(5, u32::MAX, 10),
            Decision::RetryAt(u64::MAX)
        );
    }
}
