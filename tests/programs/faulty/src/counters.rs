//! Call counters that survive instances: the host discards an instance after
//! a trap or timeout and starts a new one, so "the third append" must be
//! counted in the store's directory, not in memory.
//!
//! Layout, under `<root>/.faults/` (fs-store only looks at `index.log`,
//! `tapes/` and `tmp/` under its root, so it never sees these):
//!
//! ```text
//! <root>/.faults/<rule>.count   the last call number taken (decimal; a hint)
//! <root>/.faults/<rule>/<n>     one empty ticket per call counted: call n
//! ```
//!
//! A call takes the first number `n` above the hint whose ticket it can
//! create with `create_new`, which is atomic, so concurrent instances never
//! take the same number (a plain read-increment-write of the count could
//! lose an increment and fire a rule twice). The ticket and then the count
//! are written *before* the fault fires, so a trap or a hang cannot make the
//! same call fire again in the next instance. Once a rule with a finite
//! `times` is spent, calls are no longer counted (no more tickets).

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

/// The counters of one store root.
#[derive(Debug, Clone)]
pub struct Counters {
    dir: PathBuf,
}

impl Counters {
    /// Counters kept in `<root>/.faults` (created on first use).
    pub fn new(root: &Path) -> Counters {
        Counters {
            dir: root.join(".faults"),
        }
    }

    /// The directory holding the counters.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn hint_path(&self, rule: usize) -> PathBuf {
        self.dir.join(format!("{rule}.count"))
    }

    /// The count recorded for rule `rule` (0 when none yet). A hint: it may
    /// lag behind the tickets, never run ahead of them.
    pub fn hint(&self, rule: usize) -> u64 {
        fs::read_to_string(self.hint_path(rule))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Counts one call for rule `rule` and returns its number (1-based),
    /// or `None` without counting when `spent(count)` says the rule can no
    /// longer fire.
    pub fn take(&self, rule: usize, spent: impl Fn(u64) -> bool) -> io::Result<Option<u64>> {
        let hint = self.hint(rule);
        if spent(hint) {
            return Ok(None);
        }
        let tickets = self.dir.join(rule.to_string());
        fs::create_dir_all(&tickets)?;
        let mut n = hint + 1;
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tickets.join(n.to_string()))
            {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
        fs::write(self.hint_path(rule), format!("{n}\n"))?;
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_one_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::new(dir.path());
        assert_eq!(c.hint(0), 0);
        let never = |_| false;
        assert_eq!(c.take(0, never).unwrap(), Some(1));
        assert_eq!(c.take(0, never).unwrap(), Some(2));
        assert_eq!(c.take(1, never).unwrap(), Some(1));
        // A new instance (a new `Counters`) continues where the last stopped.
        let again = Counters::new(dir.path());
        assert_eq!(again.take(0, never).unwrap(), Some(3));
        assert_eq!(
            fs::read_to_string(dir.path().join(".faults/0.count")).unwrap(),
            "3\n"
        );
    }

    #[test]
    fn a_lagging_or_lost_hint_never_repeats_a_number() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::new(dir.path());
        for _ in 0..3 {
            c.take(0, |_| false).unwrap();
        }
        fs::write(dir.path().join(".faults/0.count"), "1\n").unwrap();
        assert_eq!(c.take(0, |_| false).unwrap(), Some(4));
        fs::remove_file(dir.path().join(".faults/0.count")).unwrap();
        assert_eq!(c.take(0, |_| false).unwrap(), Some(5));
    }

    #[test]
    fn a_spent_rule_stops_counting() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::new(dir.path());
        let spent = |n| n >= 2;
        assert_eq!(c.take(0, spent).unwrap(), Some(1));
        assert_eq!(c.take(0, spent).unwrap(), Some(2));
        assert_eq!(c.take(0, spent).unwrap(), None);
        assert_eq!(c.hint(0), 2);
        assert!(!dir.path().join(".faults/0/3").exists());
    }

    #[test]
    fn concurrent_takers_get_distinct_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = Counters::new(&root);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| c.take(0, |_| false).unwrap().unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=100).collect::<Vec<u64>>());
    }
}
