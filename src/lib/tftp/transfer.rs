//! Block bookkeeping for a sending transfer: 16-bit block numbers on the
//! wire, 64-bit counts inside, so files past 65535 blocks wrap correctly.

/// The sender's window: blocks 1..=sent have gone out, 1..=acked are
/// acknowledged; at most `size` may be outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub size: u64,
    pub sent: u64,
    pub acked: u64,
}

impl Window {
    pub fn new(size: u64) -> Window {
        Window {
            size: size.max(1),
            sent: 0,
            acked: 0,
        }
    }

    pub fn can_send(&self) -> bool {
        self.sent - self.acked < self.size
    }

    /// Number the next block to send.
    pub fn next_block(&mut self) -> u64 {
        self.sent += 1;
        self.sent
    }
}

/// The acknowledged count an ACK for wire number `ack` means, if it
/// acknowledges something new among the blocks in flight (acked, sent].
pub fn advance(acked: u64, sent: u64, ack: u16) -> Option<u64> {
    let in_flight = sent - acked;
    let step = ack.wrapping_sub(acked as u16) as u64;
    (step >= 1 && step <= in_flight).then_some(acked + step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_outstanding_blocks() {
        let mut w = Window::new(3);
        assert_eq!((w.next_block(), w.next_block(), w.next_block()), (1, 2, 3));
        assert!(!w.can_send());
        w.acked = 2;
        assert!(w.can_send());
    }

    #[test]
    fn acks_advance_only_over_blocks_in_flight() {
        assert_eq!(advance(0, 1, 1), Some(1));
        assert_eq!(advance(0, 4, 3), Some(3));
        assert_eq!(advance(3, 4, 3), None); // duplicate
        assert_eq!(advance(3, 4, 2), None); // old
        assert_eq!(advance(3, 4, 9), None); // never sent
    }

    #[test]
    fn block_numbers_wrap_past_65535() {
        assert_eq!(advance(65535, 65536, 0), Some(65536));
        assert_eq!(advance(65534, 65538, 1), Some(65537));
        assert_eq!(advance(131071, 131072, 0), Some(131072));
    }
}
