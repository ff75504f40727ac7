//! The relay's bounded buffers. Their capacity is fixed when the relay
//! starts and never grows: a side that cannot take more simply stops being
//! read (back-pressure), so a flood costs no memory and loses nothing.

use std::collections::VecDeque;

/// A bounded FIFO of bytes, filled at the end and consumed from the front.
/// Linear rather than a ring: a read fills one contiguous slice, and the
/// bytes still waiting are moved to the front first (a short copy, since
/// the buffer is usually drained before the next read).
///
/// Its memory is made usable as it is needed, doubling up to the
/// capacity: a session that stays idle (most terminal sessions, most of
/// the time) never touches more than the first few KiB of its buffers,
/// while one that floods gets the whole capacity after a few reads.
pub(super) struct Bytes {
    buf: Vec<u8>,
    capacity: usize,
    start: usize,
    end: usize,
    peak: usize,
}

/// What a buffer starts with, and the least free space a read is offered.
const STEP: usize = 4096;

impl Bytes {
    pub(super) fn new(capacity: usize) -> Bytes {
        Bytes {
            buf: vec![0; capacity.min(STEP)],
            capacity,
            start: 0,
            end: 0,
            peak: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// How many more bytes fit.
    pub(super) fn room(&self) -> usize {
        self.capacity - self.len()
    }

    /// The most this buffer ever held.
    pub(super) fn peak(&self) -> usize {
        self.peak
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drop `n` bytes from the front.
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The waiting bytes to the front, and at least `want` bytes (within
    /// the capacity) usable after them.
    fn make_room(&mut self, want: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = (self.end + want).min(self.capacity);
        if self.buf.len() < need {
            let grown = (self.buf.len() * 2).max(need).min(self.capacity);
            self.buf.resize(grown, 0);
        }
    }

    /// Free space as one slice, to read into (at least 4 KiB when the
    /// room allows; all of it once the buffer has grown); `commit` then
    /// says how much was filled.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        self.make_room(STEP);
        &mut self.buf[self.end..]
    }

    pub(super) fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end = (self.end + n).min(self.buf.len());
        self.peak = self.peak.max(self.len());
    }

    /// Append all of `bytes`, or nothing when they do not fit.
    pub(super) fn push(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.room() {
            return false;
        }
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
        true
    }
}

/// What a stretch of outbound bytes is, which decides how it is sent and
/// whether "discard output" (TELNET AO) may drop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The terminal's output, mapped to the wire: discardable.
    Data,
    /// Protocol bytes (option replies, commands): never discarded.
    Protocol,
    /// One byte sent as TCP urgent data (MSG_OOB), at its place in order.
    Urgent,
}

/// The next thing to put on the wire.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next<'a> {
    /// Ordinary bytes, written as they are.
    Stream(&'a [u8]),
    /// One byte to send with MSG_OOB.
    Urgent(u8),
}

/// The bytes waiting for the network, in the order they were produced,
/// with the kind of each stretch ("run") remembered.
pub(super) struct Outbound {
    bytes: Bytes,
    runs: VecDeque<(Kind, usize)>,
    /// Part of the first run is already on the wire: it must be finished
    /// whole (half an `IAC IAC` would corrupt the stream), so discarding
    /// spares it.
    head_started: bool,
}

impl Outbound {
    pub(super) fn new(capacity: usize) -> Outbound {
        Outbound {
            bytes: Bytes::new(capacity),
            runs: VecDeque::new(),
            head_started: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn room(&self) -> usize {
        self.bytes.room()
    }

    pub(super) fn peak(&self) -> usize {
        self.bytes.peak()
    }

    /// Append all of `bytes` as `kind`, or nothing when they do not fit.
    /// An urgent run is a single byte.
    pub(super) fn push(&mut self, kind: Kind, bytes: &[u8]) -> bool {
        debug_assert!(kind != Kind::Urgent || bytes.len() == 1);
        if bytes.is_empty() {
            return true;
        }
        if !self.bytes.push(bytes) {
            return false;
        }
        match self.runs.back_mut() {
            Some((last, len)) if *last == kind && kind != Kind::Urgent => *len += bytes.len(),
            _ => self.runs.push_back((kind, bytes.len())),
        }
        true
    }

    /// What to send next: either one urgent byte, or the bytes up to the
    /// next urgent one (data and protocol runs go out together).
    pub(super) fn next(&self) -> Option<Next<'_>> {
        let &(kind, _) = self.runs.front()?;
        let data = self.bytes.data();
        if kind == Kind::Urgent {
            return Some(Next::Urgent(data[0]));
        }
        let upto: usize = self
            .runs
            .iter()
            .take_while(|(k, _)| *k != Kind::Urgent)
            .map(|(_, n)| n)
            .sum();
        Some(Next::Stream(&data[..upto]))
    }

    /// `n` bytes from the front are on the wire.
    pub(super) fn sent(&mut self, mut n: usize) {
        self.bytes.consume(n);
        while n > 0 {
            let Some((_, len)) = self.runs.front_mut() else {
                break;
            };
            if n >= *len {
                n -= *len;
                self.runs.pop_front();
                self.head_started = false;
            } else {
                *len -= n;
                n = 0;
                self.head_started = true;
            }
        }
    }

    /// Drop the terminal output not yet sent (TELNET AO), keeping protocol
    /// and urgent bytes in order, and the rest of a run already started.
    /// Returns how many bytes were dropped.
    pub(super) fn discard_data(&mut self) -> usize {
        let data = self.bytes.data().to_vec();
        let mut kept = Vec::with_capacity(data.len());
        let mut runs = VecDeque::with_capacity(self.runs.len());
        let mut at = 0;
        for (i, &(kind, len)) in self.runs.iter().enumerate() {
            let keep = kind != Kind::Data || (i == 0 && self.head_started);
            if keep {
                kept.extend_from_slice(&data[at..at + len]);
                match runs.back_mut() {
                    Some((last, n)) if *last == kind && kind != Kind::Urgent => *n += len,
                    _ => runs.push_back((kind, len)),
                }
            }
            at += len;
        }
        let dropped = data.len() - kept.len();
        self.bytes.clear();
        let fits = self.bytes.push(&kept);
        debug_assert!(fits);
        // A started head is always kept, so head_started stays right.
        self.runs = runs;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_bounded_and_all_or_nothing() {
        let mut b = Bytes::new(8);
        assert!(b.push(b"hello"));
        assert!(!b.push(b"world"), "does not fit: nothing taken");
        assert_eq!(b.data(), b"hello");
        assert!(b.push(b"abc"));
        assert_eq!(b.room(), 0);
        b.consume(5);
        assert_eq!(b.data(), b"abc");
        assert_eq!(b.room(), 5);
        // The waiting bytes move to the front: the whole room is one slice.
        assert_eq!(b.spare().len(), 5);
        b.spare()[..2].copy_from_slice(b"de");
        b.commit(2);
        assert_eq!(b.data(), b"abcde");
        assert_eq!(b.peak(), 8);
    }

    #[test]
    fn memory_is_used_as_it_is_needed() {
        let mut b = Bytes::new(64 * 1024);
        assert_eq!(b.buf.len(), STEP);
        assert_eq!(b.room(), 64 * 1024);
        assert!(b.push(&[1; 100]));
        assert_eq!(b.buf.len(), STEP);
        // Reads keep finding at least a step free; a flood grows it.
        for _ in 0..20 {
            let n = b.spare().len();
            assert!(n >= STEP.min(b.room()));
            b.commit(n.min(b.room()));
        }
        assert_eq!(b.len(), 64 * 1024);
        assert_eq!(b.buf.len(), 64 * 1024);
        assert!(!b.push(&[1]));
        // All or nothing still, whatever was grown.
        let mut b = Bytes::new(10_000);
        assert!(b.push(&[2; 9_000]));
        assert!(!b.push(&[2; 1_001]));
        assert!(b.push(&[2; 1_000]));
        assert_eq!(b.room(), 0);
    }

    #[test]
    fn outbound_sends_urgent_bytes_alone_and_in_order() {
        let mut o = Outbound::new(64);
        assert!(o.push(Kind::Data, b"ab"));
        assert!(o.push(Kind::Protocol, b"\xff\xfb\x01"));
        assert!(o.push(Kind::Urgent, b"!"));
        assert!(o.push(Kind::Data, b"cd"));
        assert_eq!(o.next(), Some(Next::Stream(b"ab\xff\xfb\x01")));
        o.sent(3);
        assert_eq!(o.next(), Some(Next::Stream(b"\xfb\x01")));
        o.sent(2);
        assert_eq!(o.next(), Some(Next::Urgent(b'!')));
        o.sent(1);
        assert_eq!(o.next(), Some(Next::Stream(b"cd")));
        o.sent(2);
        assert_eq!(o.next(), None);
        assert!(o.is_empty());
    }

    #[test]
    fn discard_keeps_protocol_urgent_and_a_started_run() {
        let mut o = Outbound::new(64);
        assert!(o.push(Kind::Data, b"\xff\xffxyz"));
        assert!(o.push(Kind::Protocol, b"P1"));
        assert!(o.push(Kind::Data, b"lost"));
        assert!(o.push(Kind::Urgent, b"!"));
        assert!(o.push(Kind::Data, b"gone"));
        assert!(o.push(Kind::Protocol, b"P2"));
        // Half of the first run (one IAC of a doubled pair) is out already.
        o.sent(1);
        assert_eq!(o.discard_data(), 8);
        let mut wire = Vec::new();
        while let Some(next) = o.next() {
            let (urgent, bytes) = match next {
                Next::Stream(b) => (false, b.to_vec()),
                Next::Urgent(b) => (true, vec![b]),
            };
            o.sent(bytes.len());
            wire.push((urgent, bytes));
        }
        assert_eq!(
            wire,
            vec![
                (false, b"\xffxyzP1".to_vec()),
                (true, b"!".to_vec()),
                (false, b"P2".to_vec()),
            ]
        );
    }

    #[test]
    fn discard_drops_an_unstarted_head() {
        let mut o = Outbound::new(16);
        assert!(o.push(Kind::Data, b"abc"));
        assert!(o.push(Kind::Protocol, b"P"));
        assert_eq!(o.discard_data(), 3);
        assert_eq!(o.next(), Some(Next::Stream(b"P")));
        assert_eq!(o.room(), 15);
    }
}
