//! Sliding replay window over 64-bit packet counters (the bitmap scheme of RFC 6479, as WireGuard uses).
//!
//! The window remembers the last [`WINDOW`] counters below the highest seen. UDP reorders, so anything
//! inside the window that was not seen yet is accepted; anything older, or seen before, is a replay.
//! Checking and recording are separate steps: a packet is checked before decryption (cheap rejection) and
//! recorded only after it authenticated, so forged packets cannot move the window.

/// How many counters behind the newest one are still accepted.
pub const WINDOW: u64 = 2048 - 64;

const BLOCKS: usize = 2048 / 64;

/// The window state of one session's receive direction.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest counter recorded plus one (0 = nothing yet).
    next: u64,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            next: 0,
            bitmap: [0; BLOCKS],
        }
    }
}

impl ReplayWindow {
    /// Would `counter` be accepted?
    pub fn check(&self, counter: u64) -> bool {
        if counter >= self.next {
            return true;
        }
        if self.next - counter > WINDOW {
            return false;
        }
        let block = (counter / 64) as usize % BLOCKS;
        self.bitmap[block] & (1 << (counter % 64)) == 0
    }

    /// Records `counter` as seen; returns false (and changes nothing) if it would not pass [`check`].
    ///
    /// [`check`]: ReplayWindow::check
    pub fn record(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if counter >= self.next {
            // Clear the blocks the window slides over.
            let cur_block = if self.next == 0 {
                None
            } else {
                Some((self.next - 1) / 64)
            };
            let new_block = counter / 64;
            match cur_block {
                Some(cb) if new_block - cb < BLOCKS as u64 => {
                    for b in cb + 1..=new_block {
                        self.bitmap[b as usize % BLOCKS] = 0;
                    }
                }
                Some(_) => self.bitmap = [0; BLOCKS],
                None => {}
            }
            self.next = counter + 1;
        }
        let block = (counter / 64) as usize % BLOCKS;
        self.bitmap[block] |= 1 << (counter % 64);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_duplicates_and_old() {
        let mut w = ReplayWindow::default();
        for c in 0..5000 {
            assert!(w.record(c));
            assert!(!w.record(c), "duplicate {c}");
        }
        assert!(!w.check(4999 - WINDOW - 1));
        assert!(!w.check(0));
    }

    #[test]
    fn reordering_within_window_is_accepted_once() {
        let mut w = ReplayWindow::default();
        assert!(w.record(3000));
        // The oldest accepted counter is WINDOW - 1 below the newest.
        assert!(w.record(3000 - WINDOW + 1));
        assert!(!w.record(3000 - WINDOW + 1));
        assert!(!w.check(3000 - WINDOW));
        assert!(w.record(2999));
        assert!(w.record(1500));
        assert!(!w.record(1500));
    }

    #[test]
    fn large_jump_forgets_everything_old() {
        let mut w = ReplayWindow::default();
        assert!(w.record(1));
        assert!(w.record(1_000_000));
        assert!(!w.check(1));
        assert!(w.check(1_000_000 - 5));
        assert!(w.record(u64::MAX - 1));
        assert!(!w.record(u64::MAX - 1));
        assert!(w.record(u64::MAX - 2));
    }

    #[test]
    fn window_is_at_least_1024() {
        let mut w = ReplayWindow::default();
        assert!(w.record(10_000));
        assert!(w.record(10_000 - 1024));
    }

    proptest! {
        /// Against a model (a set of seen counters and the maximum): the window accepts exactly the
        /// counters that are new and not older than WINDOW below the maximum.
        #[test]
        fn matches_model(ops in proptest::collection::vec(0u64..6000, 1..400)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::HashSet::new();
            let mut max: Option<u64> = None;
            for c in ops {
                let too_old = max.is_some_and(|m| c < m && m - c >= WINDOW);
                let expect = !seen.contains(&c) && !too_old;
                prop_assert_eq!(w.record(c), expect, "counter {}", c);
                if expect {
                    seen.insert(c);
                    max = Some(max.map_or(c, |m| m.max(c)));
                }
            }
        }
    }
}
