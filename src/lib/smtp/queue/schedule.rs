//! When to try a deferred message again, and when to give up: time in,
//! decision out.

/// What to do after a temporary failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time (seconds since the epoch).
    RetryAt(u64),
    /// The message is older than queue_lifetime: bounce it.
    GiveUp,
}

/// The longest wait between two attempts, in retry intervals.
pub const MAX_BACKOFF_FACTOR: u64 = 16;

/// After the `attempts`-th failed attempt (1 = the first) at `now` of a
/// message that arrived at `created`: the wait doubles from
/// `retry_interval` up to 16 times it, and the last attempt happens at the
/// end of the lifetime, after which the message is bounced.
pub fn after_failure(
    created: u64,
    attempts: u32,
    now: u64,
    retry_interval: u64,
    lifetime: u64,
) -> Decision {
    let expires = created.saturating_add(lifetime);
    if now >= expires {
        return Decision::GiveUp;
    }
    let shift = attempts.saturating_sub(1).min(10);
    let wait = retry_interval
        .max(1)
        .saturating_mul(1u64 << shift)
        .min(retry_interval.max(1).saturating_mul(MAX_BACKOFF_FACTOR));
    Decision::RetryAt(now.saturating_add(wait).min(expires))
}

/// When a "delayed" DSN is due (NOTIFY=DELAY): once, after this long in the
/// queue, unless the lifetime is shorter.
pub fn delay_warning_due(created: u64, now: u64, lifetime: u64, already: bool) -> bool {
    const WARN_AFTER: u64 = 4 * 3600;
    !already && lifetime > WARN_AFTER && now >= created.saturating_add(WARN_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(
            after_failure(0, 1, 10, 300, 100_000),
            Decision::RetryAt(310)
        );
        assert_eq!(
            after_failure(0, 2, 10, 300, 100_000),
            Decision::RetryAt(610)
        );
        assert_eq!(
            after_failure(0, 3, 10, 300, 100_000),
            Decision::RetryAt(1210)
        );
        assert_eq!(
            after_failure(0, 30, 10, 300, 100_000),
            Decision::RetryAt(10 + 4800)
        );
    }

    #[test]
    fn last_try_at_expiry_then_give_up() {
        assert_eq!(after_failure(0, 5, 950, 300, 1000), Decision::RetryAt(1000));
        assert_eq!(after_failure(0, 6, 1000, 300, 1000), Decision::GiveUp);
        assert_eq!(after_failure(0, 1, 5, 300, 0), Decision::GiveUp);
    }

    #[test]
    fn delay_warning_once() {
        assert!(!delay_warning_due(0, 100, 432000, false));
        assert!(delay_warning_due(0, 4 * 3600, 432000, false));
        assert!(!delay_warning_due(0, 4 * 3600, 432000, true));
        assert!(!delay_warning_due(0, 5 * 3600, 3600, false));
    }
}
