//! [`Backoff`]: exponential delays with full jitter between retries.
//!
//! The ceiling doubles from 10 ms up to 1 s; each delay is drawn uniformly
//! between half the ceiling and the ceiling, so recordings that failed
//! together (one provider outage) do not retry in lockstep, yet each still
//! waits long enough to back off.

use std::time::Duration;

/// First ceiling.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(10);
/// Largest ceiling.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Delays between retries of one operation.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            ceiling: INITIAL_BACKOFF,
        }
    }

    /// The next delay: in `[ceiling/2, ceiling]`, then the ceiling doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let c = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(MAX_BACKOFF);
        let half = c / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A random number in `[0, 1)` (the OS's generator; a fixed midpoint if it
/// is unavailable, which only loses the jitter).
fn unit_random() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= INITIAL_BACKOFF / 2 && delays[0] <= INITIAL_BACKOFF);
        assert!(delays[1] >= INITIAL_BACKOFF && delays[1] <= INITIAL_BACKOFF * 2);
        let last = *delays.last().unwrap();
        assert!(last >= MAX_BACKOFF / 2 && last <= MAX_BACKOFF, "{last:?}");
        // Jitter: two sequences almost never agree on every delay.
        let mut b2 = Backoff::new();
        let other: Vec<_> = (0..12).map(|_| b2.next_delay()).collect();
        assert_ne!(delays, other);
    }
}
