//! The state behind an [`crate::FsStore`]'s mutex and its basic operations:
//! tailing the catalog log, and keeping recording tapes' counts current.

use crate::catalog::{Catalog, Entry, Live, TermIndex};
use crate::clock::new_nonce;
use crate::config::FsConfig;
use crate::errors::{check_id, io_error};
use crate::indexlog::{IndexLog, LogEntry};
use crate::seek;
use crate::tapefile::{self, OpenError, ScanStart, TapeFile};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use tapedeck_types::{StorageError, TapeInfo};

/// Where things live under the root.
pub(crate) struct Paths {
    /// The root directory.
    pub root: PathBuf,
    /// `tapes/`: tape files and their seek indexes.
    pub tapes: PathBuf,
    /// `tmp/`: files being written before they are published.
    pub tmp: PathBuf,
    /// `index.log`: the catalog log.
    pub log: PathBuf,
}

impl Paths {
    pub(crate) fn new(root: &Path) -> Paths {
        Paths {
            root: root.to_path_buf(),
            tapes: root.join("tapes"),
            tmp: root.join("tmp"),
            log: root.join("index.log"),
        }
    }

    /// The tape file of `id` (a validated id).
    pub(crate) fn tape(&self, id: &str) -> PathBuf {
        self.tapes.join(format!("{id}.tape"))
    }

    /// The seek index of `id` (a validated id).
    pub(crate) fn seek(&self, id: &str) -> PathBuf {
        self.tapes.join(format!("{id}.seek"))
    }

    pub(crate) fn temp(&self, id: &str, what: &str) -> PathBuf {
        self.tmp.join(format!("{id}.{:016x}.{what}", new_nonce()))
    }
}

/// The state behind the store's mutex.
pub(crate) struct Inner {
    pub(crate) config: FsConfig,
    pub(crate) paths: Paths,
    pub(crate) log: IndexLog,
    pub(crate) catalog: Catalog,
}

pub(crate) fn not_found(id: &str) -> StorageError {
    StorageError::not_found(format!("tape {id:?} not found"))
}

impl Inner {
    /// Picks up catalog entries appended by anyone since the last call.
    pub(crate) fn refresh(&mut self) -> Result<(), StorageError> {
        let paths = &self.paths;
        let catalog = &mut self.catalog;
        self.log.read_new(|pos, entry| {
            if let Some(entry) = complete_slim(paths, entry) {
                catalog.apply(pos, entry);
            }
        })
    }

    /// Appends a catalog entry and replays it (with anything before it).
    pub(crate) fn log_append(&mut self, entry: &LogEntry, sync: bool) -> Result<(), StorageError> {
        self.log.append(entry, sync)?;
        self.refresh()
    }

    /// The catalog entry of `id`, or `not-found`.
    pub(crate) fn current(&self, id: &str) -> Result<&Entry, StorageError> {
        self.catalog.get(id).ok_or_else(|| not_found(id))
    }

    /// `not-found` unless `id` is in the catalog, after trying to adopt a
    /// tape file whose `created` entry was lost.
    pub(crate) fn ensure_known(&mut self, id: &str) -> Result<(), StorageError> {
        if self.catalog.get(id).is_none() && !self.adopt(id)? {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// `already-exists` if `id` is taken (in the catalog, or by a tape file).
    pub(crate) fn ensure_absent(&mut self, id: &str) -> Result<(), StorageError> {
        if self.catalog.get(id).is_some() || self.adopt(id)? {
            return Err(StorageError::already_exists(format!(
                "tape {id:?} already exists"
            )));
        }
        Ok(())
    }

    /// Opens the tape file of incarnation `nonce` of `id`.
    pub(crate) fn open_tape(
        &self,
        id: &str,
        nonce: u64,
        write: bool,
    ) -> Result<TapeFile, StorageError> {
        let path = self.paths.tape(id);
        match TapeFile::open(&path, Some(nonce), write) {
            Ok(t) => Ok(t),
            Err(OpenError::Storage(e)) => Err(e),
            Err(OpenError::Missing | OpenError::OtherNonce) => Err(not_found(id)),
            Err(OpenError::NoHeader) => Err(StorageError::io(format!(
                "tape file {} has no valid header",
                path.display()
            ))),
        }
    }

    /// The distinct terms of recording tape `id` (incarnation `nonce`) up
    /// to its index record at `at` (0 = none): kept in the catalog entry,
    /// and read from the tape file's chain of terms records when what is
    /// kept is for another record.
    pub(crate) fn terms_at(
        &mut self,
        id: &str,
        nonce: u64,
        at: u64,
    ) -> Result<&HashSet<String>, StorageError> {
        let entry = self
            .catalog
            .get(id)
            .filter(|e| e.nonce == nonce)
            .ok_or_else(|| not_found(id))?;
        if entry.index.as_ref().is_none_or(|i| i.at != at) {
            let path = self.paths.tape(id);
            let mut tape = self.open_tape(id, nonce, false)?;
            let terms = tape.terms_from_chain(at, &path)?;
            self.set_terms(id, nonce, at, terms);
        }
        self.catalog
            .get(id)
            .and_then(|e| e.index.as_ref())
            .map(|i| &i.terms)
            .ok_or_else(|| not_found(id))
    }

    /// Keeps `terms` as the terms of tape `id` up to its index record `at`.
    pub(crate) fn set_terms(&mut self, id: &str, nonce: u64, at: u64, terms: HashSet<String>) {
        if let Some(e) = self.catalog.get_mut(id)
            && e.nonce == nonce
            && e.end.is_none()
        {
            e.index = Some(TermIndex { at, terms });
        }
    }

    /// After an append that moved tape `id`'s last index record from `from`
    /// to `to`, adding `fresh` terms: updates the kept terms (or drops them
    /// if they were for another record).
    pub(crate) fn commit_terms(
        &mut self,
        id: &str,
        nonce: u64,
        from: u64,
        to: u64,
        fresh: HashSet<String>,
    ) {
        let Some(e) = self.catalog.get_mut(id).filter(|e| e.nonce == nonce) else {
            return;
        };
        match &mut e.index {
            Some(index) if index.at == from => {
                index.at = to;
                index.terms.extend(fresh);
            }
            _ => e.index = None,
        }
    }

    /// The tape's info, reading what a recording tape gained since last time.
    pub(crate) fn info(&mut self, id: &str) -> Result<TapeInfo, StorageError> {
        if !self.refresh_live(id)? {
            return Err(not_found(id));
        }
        Ok(self.current(id)?.info.clone())
    }

    /// Brings the counts of a recording tape up to date from its file: a
    /// `stat`, and if it grew, a read of the new records only (or, the first
    /// time, from the last seek index entry). Notices an end record written
    /// by an instance that stopped before logging it. Returns `false` if the
    /// tape's file is gone (deleted concurrently).
    pub(crate) fn refresh_live(&mut self, id: &str) -> Result<bool, StorageError> {
        let Some(entry) = self.catalog.get(id) else {
            return Ok(false);
        };
        if entry.end.is_some() {
            return Ok(true);
        }
        let nonce = entry.nonce;
        let cached = entry.live;
        let path = self.paths.tape(id);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error("inspect", &path, &e)),
        };
        if cached.is_some_and(|l| l.file_len == len) {
            return Ok(true);
        }
        let mut tape = match TapeFile::open(&path, Some(nonce), false) {
            Ok(t) => t,
            Err(OpenError::Storage(e)) => return Err(e),
            Err(_) => return Ok(false),
        };
        let seek_path = self.paths.seek(id);
        let start = match cached {
            Some(l) if l.valid_end <= tape.len && l.valid_end >= tape.header_end => ScanStart {
                offset: l.valid_end,
                next_seq: l.next_seq,
                bytes: l.bytes,
                last_index: l.last_index,
            },
            _ => seek::last_start(&seek_path, &mut tape, &path).0,
        };
        let p = tapefile::scan(&mut tape, start, 0, &path)?;
        match p.end {
            Some(end) => {
                let stored = tape.len + seek::file_len(&seek_path);
                self.catalog.set_end(id, nonce, end.end, stored, false);
            }
            None => self.catalog.set_live(
                id,
                nonce,
                Live {
                    file_len: tape.len,
                    valid_end: p.valid_end,
                    next_seq: p.next_seq,
                    bytes: p.bytes,
                    last_index: p.last_index,
                },
            ),
        }
        Ok(true)
    }
}

/// Completes a slim log entry from the tape file; `None` if that is not
/// possible (the file is gone, e.g. deleted later in the log).
fn complete_slim(paths: &Paths, entry: LogEntry) -> Option<LogEntry> {
    let needs_file = match &entry {
        LogEntry::Created {
            header, ended, end, ..
        } => header.is_none() || (*ended && end.is_none()),
        LogEntry::Ended { end, .. } => end.is_none(),
        LogEntry::Deleted { .. } => false,
    };
    if !needs_file {
        return Some(entry);
    }
    let (id, nonce) = match &entry {
        LogEntry::Created { id, nonce, .. } | LogEntry::Ended { id, nonce, .. } => {
            (id.clone(), *nonce)
        }
        LogEntry::Deleted { .. } => unreachable!("deleted entries are never slim"),
    };
    check_id(&id).ok()?;
    let path = paths.tape(&id);
    let mut tape = TapeFile::open(&path, Some(nonce), false).ok()?;
    let wants_end = matches!(
        &entry,
        LogEntry::Created { ended: true, .. } | LogEntry::Ended { .. }
    );
    let found_end = if wants_end {
        let (start, _) = seek::last_start(&paths.seek(&id), &mut tape, &path);
        tapefile::scan(&mut tape, start, 0, &path)
            .ok()?
            .end
            .map(|e| e.end)
    } else {
        None
    };
    Some(match entry {
        LogEntry::Created {
            id,
            nonce,
            ended,
            stored_bytes,
            ..
        } => LogEntry::Created {
            id,
            nonce,
            header: Some(tape.header.header.clone()),
            ended,
            end: if ended { Some(found_end?) } else { None },
            stored_bytes,
        },
        LogEntry::Ended {
            id,
            nonce,
            stored_bytes,
            ..
        } => LogEntry::Ended {
            id,
            nonce,
            end: Some(found_end?),
            stored_bytes,
        },
        deleted @ LogEntry::Deleted { .. } => deleted,
    })
}
