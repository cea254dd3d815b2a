//! A token bucket: the rate limit every per-source and per-community pace in the protocol core uses
//! (handshakes under load, new edges joining a community). Time is passed in.

use std::time::Instant;

/// Tokens that refill at a rate up to a burst; one is taken per event allowed.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at `now`.
    pub fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            at: now,
        }
    }

    /// Refills at `rate` a second up to `burst`, then takes a token if there is one: whether the event
    /// at `now` is allowed.
    pub fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When it was last used.
    pub fn last_used(&self) -> Instant {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3.0, t0);
        assert_eq!((0..10).filter(|_| b.take(t0, 10.0, 3.0)).count(), 3);
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!((0..10).filter(|_| b.take(t1, 10.0, 3.0)).count(), 2);
        // Never more than the burst, however long it rested.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take(t2, 10.0, 3.0)).count(), 3);
        assert_eq!(b.last_used(), t2);
    }
}
