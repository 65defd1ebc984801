//! [`CircuitBreaker`]: stops every recording of a provider from hammering it
//! while it keeps failing.
//!
//! Shared by all recordings of one [`Recorder`](super::Recorder). Closed, it
//! lets calls through and counts consecutive failures (of any recording);
//! after `threshold` of them it opens: no call goes through until a
//! cool-down passes (1 s, doubling on every failed probe up to 30 s). Then one
//! caller is let through as a probe (half-open) while the others keep
//! waiting; its success closes the breaker, its failure opens it again.
//! Frames keep arriving and waiting in memory and in the spool meanwhile.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Consecutive failures that open the breaker.
pub(crate) const THRESHOLD: u32 = 5;
/// First cool-down.
const INITIAL_COOLDOWN: Duration = Duration::from_secs(1);
/// Longest cool-down.
const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// How soon a caller asks again while another caller's probe is in flight.
const PROBE_POLL: Duration = Duration::from_millis(50);

/// The breaker's state, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// No call goes through until the cool-down ends.
    Open,
    /// One probe call is in flight.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
    cooldown: Duration,
    opened: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Mutex<Inner>,
    threshold: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(THRESHOLD)
    }
}

/// Permission to make one call; report how it went.
#[derive(Debug)]
#[must_use = "report the call's outcome with success() or failure()"]
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures.
    pub fn new(threshold: u32) -> Self {
        CircuitBreaker {
            inner: Mutex::new(Inner {
                failures: 0,
                open_until: None,
                probing: false,
                cooldown: INITIAL_COOLDOWN,
                opened: 0,
            }),
            threshold: threshold.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let s = self.lock();
        match s.open_until {
            None => BreakerState::Closed,
            Some(_) if s.probing => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// How many times the breaker opened.
    pub fn times_opened(&self) -> u64 {
        self.lock().opened
    }

    /// A permit to call now, or the time to ask again (the breaker is open,
    /// or another caller's probe is in flight).
    pub(crate) fn try_permit(&self) -> Result<Permit<'_>, Instant> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(Permit {
                breaker: self,
                probe: false,
                done: false,
            }),
            Some(t) if !s.probing && t <= Instant::now() => {
                s.probing = true;
                Ok(Permit {
                    breaker: self,
                    probe: true,
                    done: false,
                })
            }
            Some(_) if s.probing => Err(Instant::now() + PROBE_POLL),
            Some(t) => Err(t),
        }
    }

    fn report(&self, ok: bool, probe: bool) {
        let mut s = self.lock();
        if probe {
            s.probing = false;
        }
        if ok {
            s.failures = 0;
            s.open_until = None;
            s.cooldown = INITIAL_COOLDOWN;
        } else {
            s.failures = s.failures.saturating_add(1);
            if probe {
                s.cooldown = (s.cooldown * 2).min(MAX_COOLDOWN);
                s.open_until = Some(Instant::now() + s.cooldown);
                s.opened += 1;
            } else if s.failures >= self.threshold && s.open_until.is_none() {
                s.open_until = Some(Instant::now() + s.cooldown);
                s.opened += 1;
                tracing::warn!(
                    target: "tapedeck::recorder",
                    "the provider failed {} times in a row: pausing calls to it for {:?}",
                    s.failures,
                    s.cooldown
                );
            }
        }
    }
}

impl Permit<'_> {
    /// The call succeeded (or failed in a way that says nothing about the
    /// provider's health, such as a refused argument).
    pub(crate) fn success(mut self) {
        self.done = true;
        self.breaker.report(true, self.probe);
    }

    /// The call failed in a way that says the provider is unwell.
    pub(crate) fn failure(mut self) {
        self.done = true;
        self.breaker.report(false, self.probe);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // A call cancelled mid-flight: free the probe slot, learn nothing.
        if !self.done && self.probe {
            self.breaker.lock().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_then_probes_once() {
        let b = CircuitBreaker::new(3);
        for _ in 0..3 {
            b.try_permit().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.times_opened(), 1);
        // No permit before the cool-down ends.
        let until = b.try_permit().unwrap_err();
        assert!(until >= Instant::now() + INITIAL_COOLDOWN - Duration::from_millis(1));
        tokio::time::sleep_until(until).await;
        let probe = b.try_permit().unwrap();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        // Another caller waits while the probe is out.
        assert!(b.try_permit().is_err());
        // A failed probe doubles the cool-down.
        probe.failure();
        assert_eq!(b.state(), BreakerState::Open);
        let until = b.try_permit().unwrap_err();
        assert!(until >= Instant::now() + INITIAL_COOLDOWN * 2 - Duration::from_millis(1));
        tokio::time::sleep_until(until).await;
        b.try_permit().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_permit().unwrap().success();
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreaker::new(3);
        b.try_permit().unwrap().failure();
        b.try_permit().unwrap().failure();
        b.try_permit().unwrap().success();
        b.try_permit().unwrap().failure();
        b.try_permit().unwrap().failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_the_slot() {
        let b = CircuitBreaker::new(1);
        b.try_permit().unwrap().failure();
        tokio::time::sleep(INITIAL_COOLDOWN).await;
        let probe = b.try_permit().unwrap();
        drop(probe);
        b.try_permit().unwrap().success();
    }
}
