//! Wall-clock time and unique tokens (both work natively and through WASI).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A random non-zero 64-bit token naming one incarnation of a tape (so that a
/// tape deleted and created again under the same id is never confused with
/// the old one) and making temp file names unique.
///
/// `RandomState` is seeded from the OS (WASI `random` in a component); the
/// time and a counter are mixed in as well.
pub(crate) fn new_nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(now_us());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish().max(1)
}
