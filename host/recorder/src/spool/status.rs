//! [`SpoolStatus`]: what the spool holds, per tape and per provider (for
//! `tapedeck spool status`).

use super::entry::SpoolEntry;
use super::{Spool, SpoolError};
use std::collections::BTreeMap;
use std::fs::File;

/// Whether a spool file belongs to a live recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// A running process holds it: it is being recorded (or delivered).
    Live,
    /// No process holds it: the recorder is gone, and the next `tapedeck`
    /// command using its provider (or `tapedeck recover`) delivers it.
    Waiting,
}

impl EntryState {
    /// `live` or `waiting`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Live => "live",
            EntryState::Waiting => "waiting",
        }
    }
}

/// One spool file.
#[derive(Debug, Clone)]
pub struct StatusEntry {
    /// What the file holds.
    pub entry: SpoolEntry,
    /// Whether a process holds it.
    pub state: EntryState,
}

/// Every spool file, or why one could not be read.
#[derive(Debug, Default)]
pub struct SpoolStatus {
    /// Readable files, oldest tape first.
    pub entries: Vec<StatusEntry>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<SpoolError>,
}

impl SpoolStatus {
    /// Reads every spool file in `spool` (without changing anything).
    pub fn read(spool: &Spool) -> Result<SpoolStatus, SpoolError> {
        let mut status = SpoolStatus::default();
        for path in spool.files()? {
            let state = match File::open(&path).map(|f| f.try_lock()) {
                // Gone meanwhile: it was delivered.
                Err(_) => continue,
                Ok(Ok(())) => EntryState::Waiting,
                Ok(Err(_)) => EntryState::Live,
            };
            match SpoolEntry::read(&path) {
                Ok(entry) => status.entries.push(StatusEntry { entry, state }),
                Err(SpoolError::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => status.unreadable.push(e),
            }
        }
        status
            .entries
            .sort_by(|a, b| a.entry.tape_id().cmp(b.entry.tape_id()));
        Ok(status)
    }

    /// Totals per provider (name and key), sorted by name then key.
    pub fn per_provider(&self) -> Vec<ProviderTotals> {
        let mut totals: BTreeMap<(&str, &str), ProviderTotals> = BTreeMap::new();
        for e in &self.entries {
            let b = &e.entry.begin;
            let t = totals
                .entry((&b.provider, &b.provider_key))
                .or_insert_with(|| ProviderTotals {
                    provider: b.provider.clone(),
                    provider_key: b.provider_key.clone(),
                    ..ProviderTotals::default()
                });
            t.tapes += 1;
            t.live += u64::from(e.state == EntryState::Live);
            t.frames += e.entry.frames;
            t.pending += e.entry.pending();
            t.file_bytes += e.entry.file_bytes;
        }
        totals.into_values().collect()
    }
}

/// What the spool holds for one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderTotals {
    /// The provider's configured name.
    pub provider: String,
    /// Its [`ProviderKey`](super::ProviderKey), hex.
    pub provider_key: String,
    /// Spool files.
    pub tapes: u64,
    /// Of which live.
    pub live: u64,
    /// Frames spooled.
    pub frames: u64,
    /// Frames not known to be taken by the provider.
    pub pending: u64,
    /// Bytes on disk.
    pub file_bytes: u64,
}
