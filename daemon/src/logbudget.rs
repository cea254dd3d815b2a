//! A budget for log lines that a stranger can cause at will.
//!
//! A supernode logs each refused registration at warn level, because a refusal is what an operator needs
//! to see when an edge is misconfigured. But a refusal costs an attacker one spoofed datagram: a flood of
//! 20,000 bad registrations a second wrote 121 MB of log in 20 s. Such lines go through a [`LogBudget`]:
//! at most `per_window` lines per window are logged, the rest are counted, and once the window is over
//! the count is reported in one line. The first lines of a burst (the ones that name the misconfigured
//! edge) are always there; what a flood adds is one line per window.
//!
//! The time is passed in, so the budget is tested without sleeping.

use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct LogBudget {
    per_window: u32,
    window: Duration,
    /// When the current window began; None before the first line.
    start: Option<Instant>,
    /// Lines logged in the current window.
    logged: u32,
    /// Lines held back in the current window.
    held_back: u64,
    /// Lines held back in windows that are over, not reported yet.
    unreported: u64,
}

impl LogBudget {
    /// At most `per_window` lines in each `window`.
    pub const fn new(per_window: u32, window: Duration) -> LogBudget {
        LogBudget {
            per_window,
            window,
            start: None,
            logged: 0,
            held_back: 0,
            unreported: 0,
        }
    }

    /// The length of a window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether a line that wants to be logged at `now` may be; if not, it is counted.
    #[must_use]
    pub fn admit(&mut self, now: Instant) -> bool {
        self.roll(now);
        if self.logged < self.per_window {
            self.logged += 1;
            true
        } else {
            self.held_back += 1;
            false
        }
    }

    /// How many lines were held back in windows that are over at `now`, once: the caller logs one line
    /// saying so. None when there is nothing to report.
    #[must_use]
    pub fn take_report(&mut self, now: Instant) -> Option<u64> {
        self.roll(now);
        match std::mem::take(&mut self.unreported) {
            0 => None,
            n => Some(n),
        }
    }

    /// Starts a new window when the current one is over.
    fn roll(&mut self, now: Instant) {
        let over = self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= self.window);
        if over {
            self.unreported += std::mem::take(&mut self.held_back);
            self.logged = 0;
            self.start = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn a_flood_logs_the_first_lines_of_each_window_and_one_count() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(3, WINDOW);
        let admitted = (0..20_000)
            .filter(|i| b.admit(t0 + Duration::from_micros(*i)))
            .count();
        assert_eq!(admitted, 3);
        // Nothing to report while the window lasts: the count is only known at its end.
        assert_eq!(b.take_report(t0 + Duration::from_secs(9)), None);
        assert_eq!(b.take_report(t0 + WINDOW), Some(19_997));
        assert_eq!(b.take_report(t0 + WINDOW), None, "reported once");
        // The next window starts afresh.
        assert!(b.admit(t0 + WINDOW + Duration::from_secs(1)));
    }

    #[test]
    fn a_quiet_source_is_never_held_back() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(3, WINDOW);
        for i in 0..100 {
            assert!(b.admit(t0 + Duration::from_secs(4 * i)), "line {i}");
        }
        assert_eq!(b.take_report(t0 + Duration::from_secs(1000)), None);
    }

    #[test]
    fn lines_held_back_before_a_new_window_are_still_reported() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(1, WINDOW);
        assert!(b.admit(t0));
        assert!(!b.admit(t0));
        assert!(!b.admit(t0));
        // The next line comes in a new window before anyone asked for the report.
        assert!(b.admit(t0 + WINDOW));
        assert!(!b.admit(t0 + WINDOW));
        assert_eq!(b.take_report(t0 + WINDOW), Some(2));
        assert_eq!(b.take_report(t0 + WINDOW * 2), Some(1));
    }
}
