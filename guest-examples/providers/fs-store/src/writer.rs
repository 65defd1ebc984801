//! [`FsWriter`]: appends frames to one tape through an open file handle.

use crate::catalog::Live;
use crate::clock::now_us;
use crate::errors::{IoContext, io_error};
use crate::indexlog::LogEntry;
use crate::inner::Inner;
use crate::search;
use crate::seek::{self, SeekWriter};
use crate::store::{FsStore, check_payload};
use crate::tapefile::{self, EndBody, EndInfo, ScanStart};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tapedeck_types::{EndReason, Frame, StorageError, TapeInfo, TapeState, TapeSummary};

/// Streams frames into one tape. Obtained from [`FsStore::create`] or
/// [`FsStore::resume`].
///
/// Each `append` is one write of the whole batch at the end of the file
/// (plus one small write to the seek index every 64 frames), so appending
/// costs O(batch), whatever the tape's size. Dropping a writer leaves the
/// tape `recording`.
pub struct FsWriter {
    store: FsStore,
    id: String,
    nonce: u64,
    path: PathBuf,
    file: File,
    seek: SeekWriter,
    /// End of the valid data: where the next record goes.
    pos: u64,
    next_seq: u64,
    bytes: u64,
    last_method: u64,
    methods: HashSet<String>,
    ended: Option<EndInfo>,
    /// Set when a failed write could not be undone; the writer refuses to
    /// write any more (`resume` on a fresh writer repairs the tape).
    broken: Option<String>,
}

impl std::fmt::Debug for FsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsWriter")
            .field("id", &self.id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl FsWriter {
    #[allow(
        clippy::too_many_arguments,
        reason = "the writer's whole state, given once by `FsStore::create`"
    )]
    pub(crate) fn new(
        store: FsStore,
        id: String,
        nonce: u64,
        file: File,
        seek: SeekWriter,
        live: Live,
        methods: HashSet<String>,
        path: &Path,
    ) -> FsWriter {
        FsWriter {
            store,
            id,
            nonce,
            path: path.to_path_buf(),
            file,
            seek,
            pos: live.valid_end,
            next_seq: live.next_seq,
            bytes: live.bytes,
            last_method: live.last_method,
            methods,
            ended: None,
            broken: None,
        }
    }

    /// The tape's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sequence number the next frame must carry: the frames stored.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends consecutive frames and returns the new `next_seq`. Frames
    /// below `next_seq` are skipped as already stored; a batch that is not
    /// consecutive or leaves a gap fails with `invalid-input` and stores
    /// nothing. On any error nothing of the batch is stored.
    pub fn append(&mut self, frames: &[Frame]) -> Result<u64, StorageError> {
        for pair in frames.windows(2) {
            if pair[1].seq != pair[0].seq.wrapping_add(1) {
                return Err(StorageError::invalid_input(format!(
                    "append to tape {:?}: frames are not consecutive (seq {} follows {})",
                    self.id, pair[1].seq, pair[0].seq
                )));
            }
        }
        let Some(first) = frames.first() else {
            return Ok(self.next_seq);
        };
        if first.seq > self.next_seq {
            return Err(StorageError::invalid_input(format!(
                "append to tape {:?}: frame seq {} leaves a gap; the next seq is {}",
                self.id, first.seq, self.next_seq
            )));
        }
        let skip = usize::try_from(self.next_seq - first.seq).unwrap_or(usize::MAX);
        let new = frames.get(skip..).unwrap_or_default();
        if new.is_empty() {
            return Ok(self.next_seq);
        }
        for f in new {
            check_payload(&self.id, f)?;
        }
        let store = self.store.clone();
        let mut inner = store.lock()?;
        inner.refresh()?;
        self.check_writable(&inner)?;

        // One buffer for the whole batch: method records, frame records.
        let mut buf = Vec::with_capacity(
            new.iter()
                .map(|f| f.payload.len() + tapefile::FRAME_OVERHEAD as usize)
                .sum(),
        );
        let mut last_method = self.last_method;
        let mut bytes = self.bytes;
        let mut new_methods: Vec<String> = Vec::new();
        let mut checkpoints = Vec::new();
        for f in new {
            if let Some(m) = search::frame_method(&f.payload)
                && !self.methods.contains(&m)
                && !new_methods.contains(&m)
            {
                let at = self.pos + buf.len() as u64;
                tapefile::encode_method(last_method, &m, &mut buf);
                last_method = at;
                new_methods.push(m);
            }
            if f.seq.is_multiple_of(seek::INTERVAL) {
                checkpoints.push(ScanStart {
                    offset: self.pos + buf.len() as u64,
                    next_seq: f.seq,
                    bytes,
                    last_method,
                });
            }
            tapefile::encode_frame(f, &mut buf);
            bytes += f.payload.len() as u64;
        }
        self.write_at_end(&buf)?;

        self.pos += buf.len() as u64;
        self.next_seq += new.len() as u64;
        self.bytes = bytes;
        self.last_method = last_method;
        self.methods.extend(new_methods);
        self.seek.append(&checkpoints);
        inner.catalog.set_live(&self.id, self.nonce, self.live());
        Ok(self.next_seq)
    }

    /// Ends the recording: makes every frame durable (fsync), writes the end
    /// record (fsync again), then logs the end in the catalog. The state is
    /// `finished` (reason `completed`), `crashed` or `aborted`.
    ///
    /// `invalid-input`, changing nothing, when the summary's `frame_count` or
    /// `byte_count` differ from what is stored. Finishing an ended tape again
    /// with the same summary and reason returns its info.
    pub fn finish(
        &mut self,
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let store = self.store.clone();
        let mut inner = store.lock()?;
        inner.refresh()?;
        let state = reason.end_state();
        if let Some(end) = &self.ended {
            let same = end.state == state
                && end.frame_count == summary.frame_count
                && end.byte_count == summary.byte_count
                && end.ended_at_us == summary.ended_at_us
                && end.digest == summary.digest;
            if !same {
                return Err(StorageError::invalid_input(format!(
                    "tape {:?} already ended ({}) with a different summary",
                    self.id,
                    end.state.as_str()
                )));
            }
            return inner.info(&self.id);
        }
        self.check_writable(&inner)?;
        if summary.frame_count != self.next_seq {
            return Err(StorageError::invalid_input(format!(
                "finish of tape {:?}: summary frame-count is {} but {} frames are stored",
                self.id, summary.frame_count, self.next_seq
            )));
        }
        if summary.byte_count != self.bytes {
            return Err(StorageError::invalid_input(format!(
                "finish of tape {:?}: summary byte-count is {} but {} payload bytes are stored",
                self.id, summary.byte_count, self.bytes
            )));
        }
        let end = self.end_info(state, summary.ended_at_us, summary.digest.clone());
        self.write_end(&mut inner, end, None)?;
        inner.info(&self.id)
    }

    /// Gives up the recording: the tape becomes `aborted`, keeping the frames
    /// stored so far; `reason` is kept in the tape file. Idempotent; an error
    /// if the tape already ended otherwise.
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
        self.check_writable(&inner)?;
        let end = self.end_info(TapeState::Aborted, now_us(), None);
        self.write_end(&mut inner, end, Some(reason.to_string()))
    }

    fn live(&self) -> Live {
        Live {
            file_len: self.pos,
            valid_end: self.pos,
            next_seq: self.next_seq,
            bytes: self.bytes,
            last_method: self.last_method,
        }
    }

    fn end_info(&self, state: TapeState, ended_at_us: u64, digest: Option<String>) -> EndInfo {
        let mut methods: Vec<String> = self.methods.iter().cloned().collect();
        methods.sort();
        EndInfo {
            state,
            frame_count: self.next_seq,
            byte_count: self.bytes,
            ended_at_us,
            digest,
            methods,
        }
    }

    /// Refuses to write when the tape was deleted, ended by someone else,
    /// changed under this writer, or a write could not be undone.
    fn check_writable(&mut self, inner: &Inner) -> Result<(), StorageError> {
        if let Some(why) = &self.broken {
            return Err(StorageError::io(why.clone()));
        }
        let entry = inner
            .catalog
            .get(&self.id)
            .filter(|e| e.nonce == self.nonce);
        let Some(entry) = entry else {
            return Err(StorageError::not_found(format!(
                "tape {:?} was deleted",
                self.id
            )));
        };
        if let Some(end) = &entry.end {
            return Err(StorageError::invalid_input(format!(
                "tape {:?} is {}; frames can no longer be written",
                self.id,
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

    /// Writes the end record between two fsyncs and logs the end.
    fn write_end(
        &mut self,
        inner: &mut Inner,
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
        self.ended = Some(end.clone());
        let stored_bytes = self.pos + self.seek.len();
        inner
            .catalog
            .set_end(&self.id, self.nonce, end.clone(), stored_bytes, false);
        // The end is durable in the tape file; if logging it fails, every
        // instance still finds it there, and the next open logs it.
        let _ = inner.log_append(
            &LogEntry::Ended {
                id: self.id.clone(),
                nonce: self.nonce,
                end: Some(end),
                stored_bytes,
            },
            fsync,
        );
        Ok(())
    }
}
