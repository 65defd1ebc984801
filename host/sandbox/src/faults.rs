//! Faults the host injects into a provider's file writes, on request, to
//! see whether the provider survives them (`tapedeck provider test`'s
//! torn-write cases): the *n*-th file write of the next calls stores only
//! the first half of its bytes, then the instance traps, as when the
//! process dies between a write and its acknowledgement. The instance is
//! then discarded like after any trap; what it left on disk is what a
//! crash would have left.
//!
//! Nothing is armed unless asked for ([`crate::WasmProvider::arm_torn_write`]);
//! disarmed, a write pays one atomic load.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// One provider's armed fault (shared by all its instances).
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// File writes to go until the torn one (1: the next); 0: disarmed.
    countdown: AtomicU32,
    /// The armed fault fired.
    fired: AtomicBool,
}

impl FaultPlan {
    /// Arms a torn write: the `nth` file write from now (1 for the next).
    pub fn arm(&self, nth: u32) {
        self.fired.store(false, Ordering::SeqCst);
        self.countdown.store(nth.max(1), Ordering::SeqCst);
    }

    /// Whether the armed fault fired since [`arm`](Self::arm); disarms.
    pub fn take_fired(&self) -> bool {
        self.countdown.store(0, Ordering::SeqCst);
        self.fired.swap(false, Ordering::SeqCst)
    }

    /// Whether the armed fault fired, without disarming (a trap it caused
    /// is not counted as a protection).
    pub(crate) fn has_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Called before every file write of `len` bytes: `Some(keep)` when
    /// this write is the torn one (write `keep` bytes, then trap).
    pub(crate) fn on_write(&self, len: usize) -> Option<usize> {
        let mut left = self.countdown.load(Ordering::Relaxed);
        loop {
            if left == 0 {
                return None;
            }
            match self.countdown.compare_exchange(
                left,
                left - 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) if left == 1 => {
                    self.fired.store(true, Ordering::SeqCst);
                    return Some(len / 2);
                }
                Ok(_) => return None,
                Err(now) => left = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_write_is_torn_once() {
        let plan = FaultPlan::default();
        assert_eq!(plan.on_write(10), None, "disarmed");
        plan.arm(3);
        assert_eq!(plan.on_write(10), None);
        assert_eq!(plan.on_write(10), None);
        assert_eq!(plan.on_write(10), Some(5));
        assert_eq!(plan.on_write(10), None, "once");
        assert!(plan.take_fired());
        assert!(!plan.take_fired());
        plan.arm(2);
        assert_eq!(plan.on_write(1), None);
        assert!(!plan.take_fired(), "not reached");
        assert_eq!(plan.on_write(1), None, "disarmed by take_fired");
    }
}
