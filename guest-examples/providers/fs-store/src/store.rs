//! [`FsStore`]: the operations of the `tape-storage` interface over a root
//! directory.

use crate::batch::{self, Encoder};
use crate::catalog::{Catalog, Live};
use crate::clock::new_nonce;
use crate::config::FsConfig;
use crate::errors::{IoContext, check_id};
use crate::indexlog::{IndexLog, LogEntry};
use crate::inner::{Inner, Paths};
use crate::seek::{self, SeekWriter};
use crate::tapefile::{self, EndBody, EndInfo, Flow, HeaderBody};
use crate::writer::{self, FsWriter, Tail};
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use tapedeck_types::{
    Capabilities, EndReason, Frame, SearchQuery, StorageError, StorageStats, TapeAppend,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeState, TapeSummary,
};

/// A filesystem tape store rooted at one directory.
///
/// Cheap to clone (all clones share one catalog). Several stores, in one or
/// several processes or WebAssembly instances, may use the same root at once:
/// each picks up the others' catalog changes at the start of every operation.
/// At most one writer per tape is assumed (the host guarantees it).
#[derive(Clone)]
pub struct FsStore {
    pub(crate) inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsStore").finish_non_exhaustive()
    }
}

impl FsStore {
    /// Opens the store at `config.root`, creating the directory if missing,
    /// replays the catalog log, and reconciles it with the tape files (adopts
    /// a tape file whose `created` entry was lost, records ends found only in
    /// a tape file, finishes interrupted deletes, removes stale temp files).
    pub fn open(config: FsConfig) -> Result<FsStore, StorageError> {
        let paths = Paths::new(&config.root);
        for dir in [&paths.root, &paths.tapes, &paths.tmp] {
            fs::create_dir_all(dir).ctx("create directory", dir)?;
        }
        let log = IndexLog::open(&paths.log)?;
        let mut inner = Inner {
            config,
            paths,
            log,
            catalog: Catalog::default(),
        };
        inner.refresh()?;
        inner.reconcile()?;
        Ok(FsStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// What this store implements: `delete`, `search` and `text-search`.
    pub fn capabilities() -> Capabilities {
        Capabilities {
            delete: true,
            search: true,
            text_search: true,
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>, StorageError> {
        self.inner
            .lock()
            .map_err(|_| StorageError::internal("fs store state was poisoned by an earlier panic"))
    }

    /// Starts a new tape in state `recording` with no frames.
    /// `already-exists` if a tape with that id exists, in any state.
    pub fn create(&self, header: TapeHeader) -> Result<FsWriter, StorageError> {
        check_id(&header.id)?;
        batch::check_header(&header)?;
        let id = header.id.clone();
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_absent(&id)?;
        let nonce = new_nonce();
        let body = HeaderBody {
            format: tapefile::FORMAT,
            nonce,
            header: header.into(),
        };
        let mut bytes = Vec::new();
        tapefile::encode_header(&body, &mut bytes);
        inner.publish(&id, |w| w.write_all(&bytes))?;
        let seek = SeekWriter::create(&inner.paths.seek(&id), nonce);
        let created = LogEntry::Created {
            id: id.clone(),
            nonce,
            header: Some(body.header),
            ended: false,
            end: None,
            stored_bytes: 0,
        };
        if let Err(e) = inner.log_append(&created, false) {
            inner.unpublish(&id);
            return Err(e);
        }
        let path = inner.paths.tape(&id);
        let tape = inner.open_tape(&id, nonce, true)?;
        let live = Live {
            file_len: tape.len,
            valid_end: tape.header_end,
            next_seq: 0,
            bytes: 0,
            last_index: 0,
        };
        inner.catalog.set_live(&id, nonce, live);
        inner.set_terms(&id, nonce, 0, HashSet::new());
        let tail = Arc::new(Mutex::new(Tail::new(path, tape.file, seek, live)));
        inner
            .catalog
            .set_writer(&id, nonce, Some(Arc::downgrade(&tail)));
        drop(inner);
        Ok(FsWriter::new(self.clone(), id, nonce, tail))
    }

    /// Continues a tape that is still `recording`. Drops a torn tail left by
    /// an interrupted append, and repairs the seek index. `not-found` if
    /// there is no such tape, `invalid-input` if it is not recording. A
    /// writer of the tape made earlier is superseded.
    pub fn resume(&self, id: &str) -> Result<FsWriter, StorageError> {
        check_id(id)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        let (nonce, tail) = inner.reopen(id)?;
        let tail = Arc::new(Mutex::new(tail));
        inner
            .catalog
            .set_writer(id, nonce, Some(Arc::downgrade(&tail)));
        drop(inner);
        Ok(FsWriter::new(self.clone(), id.to_string(), nonce, tail))
    }

    /// Appends frames to several recording tapes in one pass: for each
    /// entry, what [`FsStore::resume`] and then [`FsWriter::append`] would
    /// do, with one result per entry, in order. Entries are independent:
    /// one failing stores nothing of its own and changes nothing for the
    /// others. An id given twice is `invalid-input` for its later entries.
    ///
    /// Unlike `resume`, it does not supersede the tape's writer: it appends
    /// through the newest writer this store made for the tape (if that
    /// writer is alive and nobody else wrote to the tape since), which then
    /// goes on from there. Otherwise it appends after the tape's valid data
    /// as the catalog knows it, and only opens the tape like `resume` (cut a
    /// torn tail, repair the seek index) when the file has one. Like
    /// `append`, it does not fsync (`finish` does).
    pub fn append_many(&self, appends: &[TapeAppend]) -> Vec<Result<u64, StorageError>> {
        let mut inner = match self.lock().and_then(|mut inner| {
            inner.refresh()?;
            Ok(inner)
        }) {
            Ok(inner) => inner,
            Err(e) => return appends.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut seen = HashSet::new();
        appends
            .iter()
            .map(|a| {
                if !seen.insert(a.id.as_str()) {
                    return Err(StorageError::invalid_input(format!(
                        "tape {:?} appears more than once in one append-many call; \
                         only its first entry is taken",
                        a.id
                    )));
                }
                inner.append_one(&a.id, &a.frames)
            })
            .collect()
    }

    /// Stores a whole tape at once. Atomic: the tape file is written under
    /// `tmp/`, made durable, and then linked into place, so it appears
    /// complete or not at all; then the catalog entry is appended.
    pub fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        check_id(&header.id)?;
        batch::check_header(&header)?;
        let id = header.id.clone();
        check_saved_frames(&id, frames, summary)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_absent(&id)?;
        let nonce = new_nonce();
        let header = HeaderBody {
            format: tapefile::FORMAT,
            nonce,
            header: header.into(),
        };
        let mut checkpoints = Vec::new();
        let mut end = EndInfo {
            state: reason.end_state(),
            frame_count: summary.frame_count,
            byte_count: summary.byte_count,
            ended_at_us: summary.ended_at_us,
            digest: summary.digest.clone(),
            seal: summary.seal.clone(),
            terms: Vec::new(),
        };
        let mut file_len = 0u64;
        inner.publish(&id, |w| {
            // `flushed + buf.len()` is the file offset of the next record.
            let mut flushed = 0u64;
            let mut buf = Vec::new();
            tapefile::encode_header(&header, &mut buf);
            let none = HashSet::new();
            let mut enc = Encoder::new(&none, 0, 0);
            for f in frames {
                enc.push(f, flushed, &mut buf);
                if buf.len() >= 1 << 20 {
                    w.write_all(&buf)?;
                    flushed += buf.len() as u64;
                    buf.clear();
                }
            }
            let mut terms: Vec<String> = enc.fresh.into_iter().collect();
            terms.sort();
            end.terms = terms;
            checkpoints = enc.checkpoints;
            tapefile::encode_end(
                &EndBody {
                    end: end.clone(),
                    note: None,
                },
                &mut buf,
            );
            file_len = flushed + buf.len() as u64;
            w.write_all(&buf)
        })?;
        let seek_path = inner.paths.seek(&id);
        // The index is an accelerator: a failure here only slows reads.
        let _ = seek::write_all(&seek_path, nonce, &checkpoints);
        let stored = file_len + seek::file_len(&seek_path);
        let fsync = inner.config.fsync;
        let created = LogEntry::Created {
            id: id.clone(),
            nonce,
            header: Some(header.header),
            ended: true,
            end: Some(end),
            stored_bytes: stored,
        };
        if let Err(e) = inner.log_append(&created, fsync) {
            inner.unpublish(&id);
            return Err(e);
        }
        inner.info(&id)
    }

    /// Header, state and totals of one tape.
    pub fn get(&self, id: &str) -> Result<TapeInfo, StorageError> {
        check_id(id)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_known(id)?;
        inner.info(id)
    }

    /// Frames with `seq >= from_seq`, in order: at most `max_frames`, and no
    /// more once their payloads would exceed `max_bytes` in total, but at
    /// least one if any remain. Starts from the seek index entry at or below
    /// `from_seq`, so the cost does not depend on where in the tape it reads.
    pub fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        check_id(id)?;
        if max_frames == 0 {
            return Err(StorageError::invalid_input(format!(
                "read of tape {id:?}: max-frames must be at least 1"
            )));
        }
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_known(id)?;
        let info = inner.info(id)?;
        let ended = info.ended_at_us.is_some();
        if from_seq >= info.frame_count && ended {
            return Ok(Vec::new());
        }
        let nonce = inner.current(id)?.nonce;
        let path = inner.paths.tape(id);
        let mut tape = inner.open_tape(id, nonce, false)?;
        let start = seek::start_for(&inner.paths.seek(id), &mut tape, &path, from_seq);
        let mut out = Vec::new();
        let mut total = 0u64;
        let bad = tapefile::for_each_frame(&mut tape, start, &path, |frame| {
            if frame.seq < from_seq {
                return Flow::Continue;
            }
            let len = frame.payload.len() as u64;
            if !out.is_empty() && total.saturating_add(len) > max_bytes {
                return Flow::Stop;
            }
            total += len;
            out.push(tapefile::decode_frame(frame));
            if out.len() >= max_frames as usize {
                Flow::Stop
            } else {
                Flow::Continue
            }
        })?;
        let last = out.last().map_or(from_seq, |f| f.seq + 1);
        if bad && ended && last < info.frame_count && out.len() < max_frames as usize {
            return Err(StorageError::io(format!(
                "tape file {} is corrupt: frame {last} cannot be read although the tape has {} frames",
                path.display(),
                info.frame_count
            )));
        }
        Ok(out)
    }

    /// Removes a tape and its files, in any state. The `deleted` entry is
    /// logged (and made durable) before the files are removed, so an
    /// interrupted delete leaves a file that the next open recognises as a
    /// leftover and removes.
    pub fn delete(&self, id: &str) -> Result<(), StorageError> {
        check_id(id)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_known(id)?;
        let nonce = inner.current(id)?.nonce;
        let fsync = inner.config.fsync;
        inner.log_append(
            &LogEntry::Deleted {
                id: id.to_string(),
                nonce,
            },
            fsync,
        )?;
        inner.remove_zombie(id, nonce);
        Ok(())
    }

    /// Tapes matching `filter`, newest first (`created_at` descending, then
    /// id descending), at most `limit` (1..=1000). Runs on the in-memory
    /// catalog; only recording tapes are looked at on disk (a `stat`, and a
    /// read of what was appended since).
    pub fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.lock()?.page(filter, &[], None, cursor, limit)
    }

    /// Like [`FsStore::list`], with conditions on the frames: every one of
    /// `terms` among the terms of the tape's frames (exact equality), from
    /// the per-tape term sets kept in the catalog (ended tapes) or the
    /// tape's chain of terms records (recording tapes); `text` by streaming
    /// the frames of the tapes that pass every other condition.
    pub fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.lock()?.page(
            &query.filter,
            &query.terms,
            query.text.as_deref().map(str::as_bytes),
            cursor,
            limit,
        )
    }

    /// Totals over all tapes. `stored_bytes` counts tape files, seek indexes
    /// and the catalog log.
    pub fn stats(&self) -> Result<StorageStats, StorageError> {
        let mut inner = self.lock()?;
        inner.refresh()?;
        let mut s = StorageStats::default();
        for id in inner.catalog.ids() {
            if !inner.refresh_live(&id)? {
                continue;
            }
            let entry = inner.catalog.get(&id).expect("refreshed");
            let info = &entry.info;
            s.tape_count += 1;
            s.frame_count += info.frame_count;
            s.byte_count += info.byte_count;
            match (&entry.end, &entry.live) {
                (Some(end), _) => s.stored_bytes += end.stored_bytes,
                (None, live) => {
                    s.recording_count += 1;
                    s.stored_bytes +=
                        live.map_or(0, |l| l.file_len) + seek::file_len(&inner.paths.seek(&id));
                }
            }
        }
        s.stored_bytes += inner.log.len();
        Ok(s)
    }
}

fn check_saved_frames(
    id: &str,
    frames: &[Frame],
    summary: &TapeSummary,
) -> Result<(), StorageError> {
    batch::check_summary(id, summary)?;
    let mut bytes = 0u64;
    for (i, f) in frames.iter().enumerate() {
        if f.seq != i as u64 {
            return Err(StorageError::invalid_input(format!(
                "save of tape {id:?}: frame {i} has seq {}; frames must be numbered 0.. without gaps",
                f.seq
            )));
        }
        batch::check_frame(id, f)?;
        bytes += f.payload.len() as u64;
    }
    if summary.frame_count != frames.len() as u64 {
        return Err(StorageError::invalid_input(format!(
            "save of tape {id:?}: summary frame-count is {} but {} frames were given",
            summary.frame_count,
            frames.len()
        )));
    }
    if summary.byte_count != bytes {
        return Err(StorageError::invalid_input(format!(
            "save of tape {id:?}: summary byte-count is {} but the payloads total {bytes} bytes",
            summary.byte_count
        )));
    }
    Ok(())
}

impl Inner {
    /// Opens recording tape `id` for appending, as `resume` does: finds the
    /// end of its valid data (from the last trusted seek entry), cuts a torn
    /// tail, repairs the seek index, and reads its terms. Returns the
    /// incarnation and the tail. `not-found` if there is no such tape,
    /// `invalid-input` if it is not recording.
    pub(crate) fn reopen(&mut self, id: &str) -> Result<(u64, Tail), StorageError> {
        self.ensure_known(id)?;
        let nonce = self.current(id)?.nonce;
        let not_recording = |state: TapeState| {
            StorageError::invalid_input(format!(
                "tape {id:?} is {}; only recording tapes can be resumed",
                state.as_str()
            ))
        };
        let state = self.info(id)?.state;
        if state != TapeState::Recording {
            return Err(not_recording(state));
        }
        let path = self.paths.tape(id);
        let seek_path = self.paths.seek(id);
        let mut tape = self.open_tape(id, nonce, true)?;
        let (start, keep) = seek::last_start(&seek_path, &mut tape, &path);
        let p = tapefile::scan(&mut tape, start, seek::INTERVAL, &path)?;
        if let Some(end) = p.end {
            let stored = tape.len + seek::file_len(&seek_path);
            let state = end.end.state;
            self.catalog.set_end(id, nonce, end.end, stored, false);
            return Err(not_recording(state));
        }
        // The index first, so it never points into a dropped tail.
        let seek = SeekWriter::resume(&seek_path, nonce, keep, &p.checkpoints);
        if tape.len > p.valid_end {
            tape.file
                .set_len(p.valid_end)
                .ctx("truncate the torn tail of", &path)?;
        }
        let terms = tape.terms_from_chain(p.last_index, &path)?;
        let live = Live {
            file_len: p.valid_end,
            valid_end: p.valid_end,
            next_seq: p.next_seq,
            bytes: p.bytes,
            last_index: p.last_index,
        };
        self.catalog.set_live(id, nonce, live);
        self.set_terms(id, nonce, p.last_index, terms);
        Ok((nonce, Tail::new(path, tape.file, seek, live)))
    }

    /// One entry of [`FsStore::append_many`].
    fn append_one(&mut self, id: &str, frames: &[Frame]) -> Result<u64, StorageError> {
        check_id(id)?;
        self.ensure_known(id)?;
        let nonce = self.current(id)?.nonce;
        let state = self.info(id)?.state;
        if state != TapeState::Recording {
            return Err(StorageError::invalid_input(format!(
                "tape {id:?} is {}; only recording tapes can be appended to",
                state.as_str()
            )));
        }
        // Through the tape's writer in this instance, if it is current.
        let writer = self
            .current(id)?
            .writer
            .as_ref()
            .and_then(std::sync::Weak::upgrade);
        if let Some(shared) = writer {
            let mut tail = writer::lock(&shared)?;
            if tail.is_current() {
                return tail.append(self, id, nonce, frames);
            }
            // Someone else wrote to the tape: as `resume` would, take over
            // from that writer.
            drop(tail);
            self.catalog.set_writer(id, nonce, None);
        }
        let live = self.current(id)?.live.ok_or_else(|| {
            StorageError::internal(format!(
                "tape {id:?} is recording but its counts were not read"
            ))
        })?;
        // A batch of frames stored already (or a bad one) needs no file.
        if batch::new_frames(id, frames, live.next_seq)?.is_empty() {
            return Ok(live.next_seq);
        }
        let mut tail = if live.file_len == live.valid_end {
            let path = self.paths.tape(id);
            let tape = self.open_tape(id, nonce, true)?;
            let seek = SeekWriter::open(&self.paths.seek(id), nonce);
            Tail::new(path, tape.file, seek, live)
        } else {
            // A torn tail: cut it first, as `resume` does.
            self.reopen(id)?.1
        };
        tail.append(self, id, nonce, frames)
    }
}
