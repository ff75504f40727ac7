//! The feeding side of NNTP (RFC 3977 IHAVE, RFC 4644 CHECK/TAKETHIS), as
//! pure decisions: what each reply means for the article it answers, and
//! how far a peer's queue position may move after a batch. The sender
//! (`sender.rs`) does the I/O.

/// What became of one queued article at the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The peer took it (235, 239).
    Sent,
    /// The peer does not want it: it has it, or refused it for good
    /// (435, 437, 438, 439).
    Declined,
    /// The article is gone here (expired, cancelled): nothing to send.
    Gone,
    /// Not now (431, 436): offered again later.
    Later,
}

impl Fate {
    /// Final: the queue position may move past it.
    pub fn is_final(self) -> bool {
        self != Fate::Later
    }
}

/// A reply's code, or None when the line is not a reply.
pub fn code(line: &[u8]) -> Option<u16> {
    let c = std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()?;
    (100..600).contains(&c).then_some(c)
}

/// The answer to CHECK: send it (238), or its fate without sending.
pub fn check(code: u16) -> Result<Option<Fate>, String> {
    match code {
        238 => Ok(None),
        438 => Ok(Some(Fate::Declined)),
        431 => Ok(Some(Fate::Later)),
        c => Err(format!("unexpected reply {c} to CHECK")),
    }
}

/// The answer to TAKETHIS.
pub fn takethis(code: u16) -> Result<Fate, String> {
    match code {
        239 => Ok(Fate::Sent),
        439 => Ok(Fate::Declined),
        // Not in RFC 4644, but some servers say it (INN on a throttled
        // server): try again later.
        431 | 436 => Ok(Fate::Later),
        c => Err(format!("unexpected reply {c} to TAKETHIS")),
    }
}

/// The first answer to IHAVE: send it (335), or its fate.
pub fn ihave_offer(code: u16) -> Result<Option<Fate>, String> {
    match code {
        335 => Ok(None),
        435 => Ok(Some(Fate::Declined)),
        436 => Ok(Some(Fate::Later)),
        c => Err(format!("unexpected reply {c} to IHAVE")),
    }
}

/// The answer after an article sent for IHAVE.
pub fn ihave_done(code: u16) -> Result<Fate, String> {
    match code {
        235 => Ok(Fate::Sent),
        437 => Ok(Fate::Declined),
        436 => Ok(Fate::Later),
        c => Err(format!("unexpected reply {c} after IHAVE")),
    }
}

/// Where the queue position may move: past every entry (given with the
/// offset just after it) up to the first that is not final.
pub fn advance(pos: u64, fates: &[(u64, Fate)]) -> u64 {
    let mut p = pos;
    for (end, fate) in fates {
        if !fate.is_final() {
            break;
        }
        p = *end;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(code(b"238 <a@b>"), Some(238));
        assert_eq!(code(b"23"), None);
        assert_eq!(code(b"abc"), None);
        assert_eq!(code(b"999 x"), None);
        assert_eq!(check(238), Ok(None));
        assert_eq!(check(438), Ok(Some(Fate::Declined)));
        assert_eq!(check(431), Ok(Some(Fate::Later)));
        assert!(check(500).is_err());
        assert_eq!(takethis(239), Ok(Fate::Sent));
        assert_eq!(takethis(439), Ok(Fate::Declined));
        assert!(takethis(400).is_err());
        assert_eq!(ihave_offer(335), Ok(None));
        assert_eq!(ihave_offer(435), Ok(Some(Fate::Declined)));
        assert_eq!(ihave_offer(436), Ok(Some(Fate::Later)));
        assert!(ihave_offer(480).is_err());
        assert_eq!(ihave_done(235), Ok(Fate::Sent));
        assert_eq!(ihave_done(437), Ok(Fate::Declined));
        assert_eq!(ihave_done(436), Ok(Fate::Later));
    }

    #[test]
    fn the_position_stops_at_the_first_later() {
        let f = [
            (10, Fate::Sent),
            (20, Fate::Gone),
            (30, Fate::Later),
            (40, Fate::Sent),
        ];
        assert_eq!(advance(0, &f), 20);
        assert_eq!(advance(5, &[]), 5);
        assert_eq!(advance(0, &f[..2]), 20);
    }
}
