//! Which protections the host enforced on a provider, and how often.
//!
//! Every failure the pool classifies, every contract violation found in an
//! answer and every log line dropped over the cap is counted per provider
//! ([`crate::WasmProvider::protection_report`]), so an operator (and
//! `tapedeck provider test`) can see what a provider tripped, not only that
//! some call failed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One protection the host enforces on providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Protection {
    /// The guest trapped (panic, `unreachable`, stack overflow, an invalid
    /// answer the host could not read); the instance was discarded.
    Trap,
    /// A call spent its CPU budget (`cpu-per-call`).
    CpuLimit,
    /// A call hit its wall-clock timeout (`timeout-per-call`), or an instance
    /// did not start within it.
    Timeout,
    /// Linear memory would have grown past `memory`.
    MemoryLimit,
    /// A table would have grown past `table-elements`.
    TableLimit,
    /// The component would have created more than `core-instances` core
    /// instances, tables or memories.
    InstanceLimit,
    /// A call handed the host more than `max-return` bytes.
    MaxReturn,
    /// An instance held more than `max-resources` resources or handles.
    ResourceLimit,
    /// Random bytes over `max-random` (one request) or `random-per-call`.
    RandomLimit,
    /// An answer broke the contract (wrong tape, frames out of order, too
    /// many frames, a string that is not UTF-8, ...).
    ContractViolation,
    /// Log lines dropped over `log-lines-per-call` (counted per line).
    LogLinesDropped,
}

impl Protection {
    /// Every protection, in report order.
    pub const ALL: [Protection; 11] = [
        Protection::Trap,
        Protection::CpuLimit,
        Protection::Timeout,
        Protection::MemoryLimit,
        Protection::TableLimit,
        Protection::InstanceLimit,
        Protection::MaxReturn,
        Protection::ResourceLimit,
        Protection::RandomLimit,
        Protection::ContractViolation,
        Protection::LogLinesDropped,
    ];

    /// The protection's name in reports and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protection::Trap => "trap",
            Protection::CpuLimit => "cpu-limit",
            Protection::Timeout => "timeout",
            Protection::MemoryLimit => "memory-limit",
            Protection::TableLimit => "table-limit",
            Protection::InstanceLimit => "instance-limit",
            Protection::MaxReturn => "max-return",
            Protection::ResourceLimit => "resource-limit",
            Protection::RandomLimit => "random-limit",
            Protection::ContractViolation => "contract-violation",
            Protection::LogLinesDropped => "log-lines-dropped",
        }
    }

    fn index(self) -> usize {
        Protection::ALL
            .iter()
            .position(|p| *p == self)
            .expect("every protection is in ALL")
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live counters, one per protection (shared by a provider's instances).
#[derive(Debug, Default)]
pub struct ProtectionCounters {
    counts: [AtomicU64; Protection::ALL.len()],
}

impl ProtectionCounters {
    /// Counts `n` more trips of `p`.
    pub fn record(&self, p: Protection, n: u64) {
        if n > 0 {
            self.counts[p.index()].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn report(&self) -> ProtectionReport {
        ProtectionReport {
            counts: Protection::ALL
                .iter()
                .map(|p| (*p, self.counts[p.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// A snapshot of what a provider tripped: `cpu-limit ×1, trap ×2`, or `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectionReport {
    counts: Vec<(Protection, u64)>,
}

impl ProtectionReport {
    /// The protections tripped at least once, with their counts, in report order.
    pub fn tripped(&self) -> &[(Protection, u64)] {
        &self.counts
    }

    /// How often `p` was tripped.
    pub fn count(&self, p: Protection) -> u64 {
        self.counts
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(0, |(_, n)| *n)
    }

    /// True if nothing was tripped.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The report as a JSON object: `{"cpu-limit": 1, "trap": 2}` (`{}`: none).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.counts
                .iter()
                .map(|(p, n)| (p.as_str().to_string(), (*n).into()))
                .collect(),
        )
    }
}

impl fmt::Display for ProtectionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.counts.is_empty() {
            return f.write_str("none");
        }
        for (i, (p, n)) in self.counts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p} ×{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_what_was_tripped_in_order() {
        let c = ProtectionCounters::default();
        assert_eq!(c.report().to_string(), "none");
        assert_eq!(c.report().to_json(), serde_json::json!({}));
        c.record(Protection::LogLinesDropped, 7);
        c.record(Protection::CpuLimit, 1);
        c.record(Protection::Trap, 0);
        let r = c.report();
        assert_eq!(r.to_string(), "cpu-limit ×1, log-lines-dropped ×7");
        assert_eq!(
            r.to_json(),
            serde_json::json!({"cpu-limit": 1, "log-lines-dropped": 7})
        );
        assert_eq!(r.count(Protection::CpuLimit), 1);
        assert_eq!(r.count(Protection::Trap), 0);
    }
}
