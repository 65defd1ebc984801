//! Repairs after interrupted operations: adopting tape files whose catalog
//! entry was lost, logging ends found only in a tape file, removing the files
//! of deleted tapes and stale temp files.

use crate::errors::{IoContext, check_id};
use crate::indexlog::LogEntry;
use crate::inner::Inner;
use crate::seek;
use crate::tapefile::{self, OpenError, TapeFile};
use std::fs;
use std::time::{Duration, SystemTime};
use tapedeck_types::StorageError;

/// Temp files older than this are left over from a crash and removed at open.
const STALE_TEMP: Duration = Duration::from_secs(3600);

impl Inner {
    /// Adopts the tape file of `id` if one exists but the catalog does not
    /// know it (its `created` entry was lost to a crash, or is about to be
    /// appended by a concurrent `create`: the duplicate is harmless). A file
    /// of a deleted incarnation is removed instead. Returns whether `id` is
    /// now in the catalog.
    pub(crate) fn adopt(&mut self, id: &str) -> Result<bool, StorageError> {
        let path = self.paths.tape(id);
        let mut tape = match TapeFile::open(&path, None, false) {
            Ok(t) => t,
            Err(OpenError::Storage(e)) => return Err(e),
            Err(_) => return Ok(false),
        };
        let nonce = tape.header.nonce;
        if tape.header.header.id != id {
            return Ok(false);
        }
        if self.catalog.is_tombstoned(id, nonce) {
            self.remove_zombie(id, nonce);
            return Ok(false);
        }
        let seek_path = self.paths.seek(id);
        let (start, _) = seek::last_start(&seek_path, &mut tape, &path);
        let p = tapefile::scan(&mut tape, start, 0, &path)?;
        let end = p.end.map(|e| e.end);
        let entry = LogEntry::Created {
            id: id.to_string(),
            nonce,
            header: Some(tape.header.header.clone()),
            ended: end.is_some(),
            end,
            stored_bytes: tape.len + seek::file_len(&seek_path),
        };
        self.log_append(&entry, false)?;
        Ok(self.catalog.get(id).is_some_and(|e| e.nonce == nonce))
    }

    /// Removes the files of incarnation `nonce` of `id` (deleted). The tape
    /// file is first renamed away and checked, so that a new incarnation
    /// created concurrently under the same id is never removed by mistake.
    pub(crate) fn remove_zombie(&mut self, id: &str, nonce: u64) {
        let path = self.paths.tape(id);
        let aside = self.paths.temp(id, "deleted");
        if fs::rename(&path, &aside).is_err() {
            return;
        }
        let theirs = match TapeFile::open(&aside, None, false) {
            Ok(t) => t.header.nonce != nonce,
            Err(_) => false,
        };
        if theirs {
            // Raced with a new incarnation: put it back.
            let _ = fs::hard_link(&aside, &path);
        } else if !path.exists() {
            let _ = fs::remove_file(self.paths.seek(id));
        }
        let _ = fs::remove_file(&aside);
    }

    /// Makes the catalog agree with the files (see [`crate::FsStore::open`]).
    ///
    /// Best effort, file by file: a tape that cannot be read or repaired now
    /// is left as it is (and is tried again by the next open, or adopted by
    /// a `get` of its id); it must not make the whole store unusable.
    pub(crate) fn reconcile(&mut self) -> Result<(), StorageError> {
        let dir = self.paths.tapes.clone();
        let entries = fs::read_dir(&dir).ctx("list", &dir)?;
        for dirent in entries.flatten() {
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".tape") {
                if check_id(id).is_err() {
                    continue;
                }
                match self.catalog.get(id) {
                    None => {
                        let _ = self.adopt(id);
                    }
                    Some(e) if e.end.is_none() => {
                        let nonce = e.nonce;
                        if self.refresh_live(id).unwrap_or(false) {
                            let _ = self.log_unlogged_end(id, nonce);
                        }
                    }
                    Some(_) => {}
                }
            } else if let Some(id) = name.strip_suffix(".seek")
                && check_id(id).is_ok()
                && !self.paths.tape(id).exists()
            {
                let _ = fs::remove_file(self.paths.seek(id));
            }
        }
        self.remove_stale_temps();
        Ok(())
    }

    /// Logs an end that was found only in the tape file.
    pub(crate) fn log_unlogged_end(&mut self, id: &str, nonce: u64) -> Result<(), StorageError> {
        let Some(entry) = self.catalog.get(id) else {
            return Ok(());
        };
        let Some(ended) = entry.end.as_ref().filter(|e| !e.logged) else {
            return Ok(());
        };
        let mut end = ended.end.clone();
        end.terms = self.catalog.term_names(ended);
        let stored_bytes = ended.stored_bytes;
        self.log_append(
            &LogEntry::Ended {
                id: id.to_string(),
                nonce,
                end: Some(end),
                stored_bytes,
            },
            false,
        )
    }

    pub(crate) fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.paths.tmp) else {
            return;
        };
        let now = SystemTime::now();
        for dirent in entries.flatten() {
            let stale = dirent
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = fs::remove_file(dirent.path());
            }
        }
    }
}
