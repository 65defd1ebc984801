//! [`FsWriter`]: appends frames to one tape through an open file handle;
//! [`Tail`], the state of an open tape's end, which `append_many` shares
//! with the tape's writer.

use crate::batch;
use crate::catalog::Live;
use crate::clock::now_us;
use crate::errors::{IoContext, io_error};
use crate::indexlog::LogEntry;
use crate::inner::Inner;
use crate::seek::SeekWriter;
use crate::store::FsStore;
use crate::tapefile::{self, EndBody, EndInfo};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tapedeck_types::{EndReason, Frame, StorageError, TapeInfo, TapeState, TapeSummary};

/// The end of a tape open for appending: the file, its seek index, and the
/// totals up to the end of the valid data.
#[derive(Debug)]
pub(crate) struct Tail {
    path: PathBuf,
    file: File,
    seek: SeekWriter,
    /// End of the valid data: where the next record goes.
    pos: u64,
    next_seq: u64,
    bytes: u64,
    /// Offset of the last index record (0 = none).
    last_index: u64,
    /// Set when a failed write could not be undone, or the file changed
    /// under this tail; it refuses to write any more (`resume` on a fresh
    /// writer repairs the tape).
    broken: Option<String>,
}

/// Locks a shared [`Tail`].
pub(crate) fn lock(tail: &Mutex<Tail>) -> Result<MutexGuard<'_, Tail>, StorageError> {
    tail.lock()
        .map_err(|_| StorageError::internal("fs writer state was poisoned by an earlier panic"))
}

impl Tail {
    /// A tail at the end `live` describes (`valid_end`), in `file`.
    pub(crate) fn new(path: PathBuf, file: File, seek: SeekWriter, live: Live) -> Tail {
        Tail {
            path,
            file,
            seek,
            pos: live.valid_end,
            next_seq: live.next_seq,
            bytes: live.bytes,
            last_index: live.last_index,
            broken: None,
        }
    }

    fn live(&self) -> Live {
        Live {
            file_len: self.pos,
            valid_end: self.pos,
            next_seq: self.next_seq,
            bytes: self.bytes,
            last_index: self.last_index,
        }
    }

    /// Can this tail still write: not broken, and the file ends where it
    /// last wrote (nobody else wrote to it since)?
    pub(crate) fn is_current(&self) -> bool {
        self.broken.is_none() && self.file.metadata().is_ok_and(|m| m.len() == self.pos)
    }

    /// Appends consecutive frames to tape `id` (incarnation `nonce`) and
    /// returns the new `next_seq`: see [`FsWriter::append`].
    pub(crate) fn append(
        &mut self,
        inner: &mut Inner,
        id: &str,
        nonce: u64,
        frames: &[Frame],
    ) -> Result<u64, StorageError> {
        let new = batch::new_frames(id, frames, self.next_seq)?;
        if new.is_empty() {
            return Ok(self.next_seq);
        }
        self.check(inner, id, nonce)?;
        let before = self.last_index;
        let known = inner.terms_at(id, nonce, before)?;
        // One buffer for the whole batch: terms records and frame records.
        let (buf, enc) = batch::encode(new, self.pos, known, before, self.bytes);
        let batch::Encoder {
            fresh,
            last_index,
            bytes,
            checkpoints,
            ..
        } = enc;
        self.write_at_end(&buf)?;
        self.pos += buf.len() as u64;
        self.next_seq += new.len() as u64;
        self.bytes = bytes;
        self.last_index = last_index;
        self.seek.append(&checkpoints);
        inner.commit_terms(id, nonce, before, last_index, fresh);
        inner.catalog.set_live(id, nonce, self.live());
        Ok(self.next_seq)
    }

    /// Refuses to write when the tape was deleted, ended, changed under
    /// this tail, or a write could not be undone.
    fn check(&mut self, inner: &Inner, id: &str, nonce: u64) -> Result<(), StorageError> {
        if let Some(why) = &self.broken {
            return Err(StorageError::io(why.clone()));
        }
        let entry = inner.catalog.get(id).filter(|e| e.nonce == nonce);
        let Some(entry) = entry else {
            return Err(StorageError::not_found(format!("tape {id:?} was deleted")));
        };
        if let Some(end) = &entry.end {
            return Err(StorageError::invalid_input(format!(
                "tape {id:?} is {}; frames can no longer be written",
                end.end.state.as_str()
            )));
        }
        let len = self.file.metadata().ctx("inspect", &self.path)?.len();
        if len != self.pos {
            let why = format!(
                "tape file {} is {len} bytes but this writer wrote {}; another writer changed it (resume the tape to continue)",
                self.path.display(),
                self.pos
            );
            self.broken = Some(why.clone());
            return Err(StorageError::io(why));
        }
        Ok(())
    }

    /// Writes `buf` at the end of the valid data. On failure, cuts the file
    /// back so that nothing of `buf` remains.
    fn write_at_end(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        let result = self
            .file
            .seek(SeekFrom::Start(self.pos))
            .and_then(|_| self.file.write_all(buf));
        if let Err(e) = result {
            self.undo_write();
            return Err(io_error("append to", &self.path, &e));
        }
        Ok(())
    }

    /// Cuts the file back to `pos` after a failed or undone write.
    fn undo_write(&mut self) {
        if self.file.set_len(self.pos).is_err() {
            self.broken = Some(format!(
                "a write to tape file {} failed and could not be undone; resume the tape to repair it",
                self.path.display()
            ));
        }
    }

    /// The end of the tape as it stands, in `state`.
    fn end_info(
        &self,
        inner: &mut Inner,
        id: &str,
        nonce: u64,
        state: TapeState,
        ended_at_us: u64,
    ) -> Result<EndInfo, StorageError> {
        let mut terms: Vec<String> = inner
            .terms_at(id, nonce, self.last_index)?
            .iter()
            .cloned()
            .collect();
        terms.sort();
        Ok(EndInfo {
            state,
            frame_count: self.next_seq,
            byte_count: self.bytes,
            ended_at_us,
            digest: None,
            seal: None,
            terms,
        })
    }

    /// Writes the end record between two fsyncs and logs the end.
    fn write_end(
        &mut self,
        inner: &mut Inner,
        id: &str,
        nonce: u64,
        end: EndInfo,
        note: Option<String>,
    ) -> Result<(), StorageError> {
        let fsync = inner.config.fsync;
        if fsync {
            self.file.sync_data().ctx("fsync", &self.path)?;
        }
        let mut buf = Vec::new();
        tapefile::encode_end(
            &EndBody {
                end: end.clone(),
                note,
            },
            &mut buf,
        );
        self.write_at_end(&buf)?;
        if fsync && let Err(e) = self.file.sync_data() {
            self.undo_write();
            return Err(io_error("fsync", &self.path, &e));
        }
        self.pos += buf.len() as u64;
        let stored_bytes = self.pos + self.seek.len();
        inner
            .catalog
            .set_end(id, nonce, end.clone(), stored_bytes, false);
        // The end is durable in the tape file; if logging it fails, every
        // instance still finds it there, and the next open logs it.
        let _ = inner.log_append(
            &LogEntry::Ended {
                id: id.to_string(),
                nonce,
                end: Some(end),
                stored_bytes,
            },
            fsync,
        );
        Ok(())
    }
}

/// Streams frames into one tape. Obtained from [`FsStore::create`] or
/// [`FsStore::resume`].
///
/// Each `append` is one write of the whole batch at the end of the file
/// (plus one small write to the seek index every 64 frames), so appending
/// costs O(batch), whatever the tape's size. Dropping a writer leaves the
/// tape `recording`.
///
/// [`FsStore::append_many`] on the same store appends through the tape's
/// newest writer, so that writer stays current (its `next_seq` counts those
/// frames too) and can go on appending or finish. A writer made before a
/// later `resume` of its tape, or whose tape another store (another
/// instance) wrote to, is superseded: it refuses to write.
pub struct FsWriter {
    store: FsStore,
    id: String,
    nonce: u64,
    tail: Arc<Mutex<Tail>>,
    /// How this writer ended the tape, once it did.
    ended: Option<EndInfo>,
}

impl std::fmt::Debug for FsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsWriter")
            .field("id", &self.id)
            .field("next_seq", &self.tail.try_lock().ok().map(|t| t.next_seq))
            .finish_non_exhaustive()
    }
}

impl FsWriter {
    pub(crate) fn new(store: FsStore, id: String, nonce: u64, tail: Arc<Mutex<Tail>>) -> FsWriter {
        FsWriter {
            store,
            id,
            nonce,
            tail,
            ended: None,
        }
    }

    /// The tape's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sequence number the next frame must carry: the frames stored.
    pub fn next_seq(&self) -> u64 {
        match self.tail.lock() {
            Ok(t) => t.next_seq,
            Err(poisoned) => poisoned.into_inner().next_seq,
        }
    }

    /// Appends consecutive frames and returns the new `next_seq`. Frames
    /// below `next_seq` are skipped as already stored; a batch that is not
    /// consecutive or leaves a gap fails with `invalid-input` and stores
    /// nothing, as does a frame with terms or attributes outside the
    /// contract's bounds. On any error nothing of the batch is stored.
    pub fn append(&mut self, frames: &[Frame]) -> Result<u64, StorageError> {
        {
            let tail = lock(&self.tail)?;
            if batch::new_frames(&self.id, frames, tail.next_seq)?.is_empty() {
                return Ok(tail.next_seq);
            }
        }
        let store = self.store.clone();
        let mut inner = store.lock()?;
        inner.refresh()?;
        let mut tail = lock(&self.tail)?;
        tail.append(&mut inner, &self.id, self.nonce, frames)
    }

    /// Ends the recording: makes every frame durable (fsync), writes the end
    /// record with the summary's end time, digest and seal (fsync again),
    /// then logs the end in the catalog. The state is `finished` (reason
    /// `completed`), `crashed` or `aborted`.
    ///
    /// `invalid-input`, changing nothing, when the summary's `frame_count` or
    /// `byte_count` differ from what is stored, or its seal is larger than
    /// the contract allows. Finishing an ended tape again with the same
    /// summary and reason returns its info.
    pub fn finish(
        &mut self,
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        batch::check_summary(&self.id, summary)?;
        let store = self.store.clone();
        let mut inner = store.lock()?;
        inner.refresh()?;
        let state = reason.end_state();
        if let Some(end) = &self.ended {
            let same = end.state == state
                && end.frame_count == summary.frame_count
                && end.byte_count == summary.byte_count
                && end.ended_at_us == summary.ended_at_us
                && end.digest == summary.digest
                && end.seal == summary.seal;
            if !same {
                return Err(StorageError::invalid_input(format!(
                    "tape {:?} already ended ({}) with a different summary",
                    self.id,
                    end.state.as_str()
                )));
            }
            return inner.info(&self.id);
        }
        let mut tail = lock(&self.tail)?;
        tail.check(&inner, &self.id, self.nonce)?;
        if summary.frame_count != tail.next_seq {
            return Err(StorageError::invalid_input(format!(
                "finish of tape {:?}: summary frame-count is {} but {} frames are stored",
                self.id, summary.frame_count, tail.next_seq
            )));
        }
        if summary.byte_count != tail.bytes {
            return Err(StorageError::invalid_input(format!(
                "finish of tape {:?}: summary byte-count is {} but {} payload bytes are stored",
                self.id, summary.byte_count, tail.bytes
            )));
        }
        let mut end =
            tail.end_info(&mut inner, &self.id, self.nonce, state, summary.ended_at_us)?;
        end.digest = summary.digest.clone();
        end.seal = summary.seal.clone();
        tail.write_end(&mut inner, &self.id, self.nonce, end.clone(), None)?;
        end.terms = Vec::new();
        self.ended = Some(end);
        inner.info(&self.id)
    }

    /// Gives up the recording: the tape becomes `aborted`, keeping the frames
    /// stored so far (no digest, no seal); `reason` is kept in the tape file.
    /// Idempotent; an error if the tape already ended otherwise.
    pub fn abort(&mut self, reason: &str) -> Result<(), StorageError> {
        let store = self.store.clone();
        let mut inner = store.lock()?;
        inner.refresh()?;
        if let Some(end) = &self.ended {
            if end.state == TapeState::Aborted {
                return Ok(());
            }
            return Err(StorageError::invalid_input(format!(
                "tape {:?} is already {}; it cannot be aborted",
                self.id,
                end.state.as_str()
            )));
        }
        let mut tail = lock(&self.tail)?;
        tail.check(&inner, &self.id, self.nonce)?;
        let mut end = tail.end_info(
            &mut inner,
            &self.id,
            self.nonce,
            TapeState::Aborted,
            now_us(),
        )?;
        tail.write_end(
            &mut inner,
            &self.id,
            self.nonce,
            end.clone(),
            Some(reason.to_string()),
        )?;
        end.terms = Vec::new();
        self.ended = Some(end);
        Ok(())
    }
}
