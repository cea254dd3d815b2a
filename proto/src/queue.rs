//! An output queue of packets stored back to back in one reused buffer.
//!
//! The state machines produce a datagram (or a TAP frame) for nearly every packet they consume. Giving
//! each its own `Vec` cost one allocation and one free per packet, and a copy when the driver gathered a
//! run of datagrams into one buffer for a UDP GSO send. Here packets are written, and sealed, in place at
//! the end of one buffer that lives as long as the state machine: after warm-up the data path allocates
//! nothing, and consecutive datagrams to one destination already lie contiguous, as a GSO send wants them.
//!
//! The queue is bounded in packets and, through compaction, in bytes: a driver that stops draining it loses
//! the oldest packets, and memory does not grow.

use std::collections::VecDeque;
use std::ops::Range;

/// A bounded FIFO of packets, each with some metadata `M` (a destination, say).
#[derive(Debug)]
pub struct PacketQueue<M> {
    bytes: Vec<u8>,
    items: VecDeque<(M, Range<usize>)>,
    max_items: usize,
}

/// Compact when the dead bytes in front of the oldest packet exceed this (only a driver that does not drain
/// the queue completely gets there).
const COMPACT_AT: usize = 1 << 20;

impl<M> PacketQueue<M> {
    /// An empty queue holding at most `max_items` packets.
    pub fn new(max_items: usize) -> PacketQueue<M> {
        PacketQueue {
            bytes: Vec::new(),
            items: VecDeque::new(),
            max_items: max_items.max(1),
        }
    }

    /// Appends a packet that `write` builds by appending to the buffer it is given (whose existing content
    /// it must leave alone; it may read it). Returns the packet's length. When the queue is full the oldest
    /// packet is dropped first, and `true` is returned as the second value.
    pub fn push_with(&mut self, meta: M, write: impl FnOnce(&mut Vec<u8>)) -> (usize, bool) {
        let dropped = if self.items.len() >= self.max_items {
            self.items.pop_front();
            true
        } else {
            false
        };
        if self.items.is_empty() {
            self.bytes.clear();
        } else if self.items[0].1.start >= COMPACT_AT {
            self.compact();
        }
        let start = self.bytes.len();
        write(&mut self.bytes);
        let end = self.bytes.len();
        self.items.push_back((meta, start..end));
        (end - start, dropped)
    }

    /// Appends a copy of `packet`.
    pub fn push(&mut self, meta: M, packet: &[u8]) -> bool {
        self.push_with(meta, |b| b.extend_from_slice(packet)).1
    }

    /// Removes the newest packet (one that turned out not to be sendable after all).
    pub fn pop_back(&mut self) {
        if let Some((_, r)) = self.items.pop_back() {
            self.bytes.truncate(r.start);
        }
    }

    fn compact(&mut self) {
        let shift = self.items[0].1.start;
        self.bytes.drain(..shift);
        for (_, r) in self.items.iter_mut() {
            *r = r.start - shift..r.end - shift;
        }
    }

    /// Removes and returns the oldest packet as an owned copy (convenient for tests and simulators; the
    /// data path reads the queue in place with [`PacketQueue::iter`] and [`PacketQueue::clear`]).
    pub fn pop_front(&mut self) -> Option<(M, Vec<u8>)> {
        let (m, r) = self.items.pop_front()?;
        let v = self.bytes[r].to_vec();
        if self.items.is_empty() {
            self.bytes.clear();
        }
        Some((m, v))
    }

    /// The packets, oldest first, with their place in [`PacketQueue::bytes`].
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&M, Range<usize>)> + '_ {
        self.items.iter().map(|(m, r)| (m, r.clone()))
    }

    /// The buffer the packets live in (ranges from [`PacketQueue::iter`] index it).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Forgets every packet, keeping the buffer for reuse.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
    }

    /// How many packets are queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_come_out_in_order_and_contiguous() {
        let mut q = PacketQueue::new(8);
        q.push(1, b"abc");
        q.push_with(2, |b| {
            assert_eq!(
                b.as_slice(),
                b"abc",
                "earlier packets are visible, untouched"
            );
            b.extend_from_slice(b"de");
        });
        let got: Vec<_> = q.iter().map(|(m, r)| (*m, r)).collect();
        assert_eq!(got, vec![(1, 0..3), (2, 3..5)]);
        assert_eq!(q.bytes(), b"abcde");
        assert_eq!(q.pop_front(), Some((1, b"abc".to_vec())));
        assert_eq!(q.pop_front(), Some((2, b"de".to_vec())));
        assert_eq!(q.pop_front(), None);
        assert!(
            q.bytes().is_empty(),
            "an emptied queue starts its buffer over"
        );
    }

    #[test]
    fn full_queue_drops_the_oldest() {
        let mut q = PacketQueue::new(2);
        assert!(!q.push(1, b"a"));
        assert!(!q.push(2, b"b"));
        assert!(q.push(3, b"c"));
        let metas: Vec<i32> = q.iter().map(|(m, _)| *m).collect();
        assert_eq!(metas, vec![2, 3]);
        assert_eq!(q.pop_front(), Some((2, b"b".to_vec())));
    }

    #[test]
    fn pop_back_gives_the_bytes_back() {
        let mut q = PacketQueue::new(4);
        q.push(1, b"keep");
        q.push(2, b"drop");
        q.pop_back();
        assert_eq!(q.len(), 1);
        assert_eq!(q.bytes(), b"keep");
    }

    #[test]
    fn memory_stays_bounded_when_never_drained_fully() {
        // A driver that pops one packet per push forever: the dead prefix is compacted away.
        let mut q = PacketQueue::new(4);
        let big = vec![7u8; 60_000];
        for i in 0..200 {
            q.push(i, &big);
            if q.len() > 2 {
                q.pop_front();
            }
        }
        assert!(q.bytes().len() <= COMPACT_AT + 4 * big.len());
        let (_, r) = q.iter().last().unwrap();
        assert_eq!(&q.bytes()[r], big.as_slice());
    }
}
