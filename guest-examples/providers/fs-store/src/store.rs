//! [`FsStore`]: the operations of the `tape-storage` interface over a root
//! directory.

use crate::catalog::Catalog;
use crate::catalog::Live;
use crate::clock::new_nonce;
use crate::config::FsConfig;
use crate::errors::{IoContext, check_id};
use crate::indexlog::{IndexLog, LogEntry};
use crate::inner::{Inner, Paths};
use crate::search;
use crate::seek::{self, SeekWriter};
use crate::tapefile::{self, EndBody, EndInfo, Flow, HeaderBody, ScanStart};
use crate::writer::FsWriter;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use tapedeck_types::{
    Capabilities, EndReason, Frame, SearchQuery, StorageError, StorageStats, TapeFilter,
    TapeHeader, TapeInfo, TapePage, TapeState, TapeSummary,
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
        let id = header.id.clone();
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_absent(&id)?;
        let nonce = new_nonce();
        let body = HeaderBody {
            format: tapefile::FORMAT,
            nonce,
            header: header.clone(),
        };
        let mut bytes = Vec::new();
        tapefile::encode_header(&body, &mut bytes);
        inner.publish(&id, |w| w.write_all(&bytes))?;
        let seek = SeekWriter::create(&inner.paths.seek(&id), nonce);
        let created = LogEntry::Created {
            id: id.clone(),
            nonce,
            header: Some(header),
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
            last_method: 0,
        };
        inner.catalog.set_live(&id, nonce, live);
        drop(inner);
        Ok(FsWriter::new(
            self.clone(),
            id,
            nonce,
            tape.file,
            seek,
            live,
            HashSet::new(),
            &path,
        ))
    }

    /// Continues a tape that is still `recording`. Drops a torn tail left by
    /// an interrupted append, and repairs the seek index. `not-found` if
    /// there is no such tape, `invalid-input` if it is not recording.
    pub fn resume(&self, id: &str) -> Result<FsWriter, StorageError> {
        check_id(id)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_known(id)?;
        let nonce = inner.current(id)?.nonce;
        let state = inner.info(id)?.state;
        if state != TapeState::Recording {
            return Err(StorageError::invalid_input(format!(
                "tape {id:?} is {}; only recording tapes can be resumed",
                state.as_str()
            )));
        }
        let path = inner.paths.tape(id);
        let seek_path = inner.paths.seek(id);
        let mut tape = inner.open_tape(id, nonce, true)?;
        let (start, keep) = seek::last_start(&seek_path, &mut tape, &path);
        let p = tapefile::scan(&mut tape, start, seek::INTERVAL, &path)?;
        if let Some(end) = p.end {
            let stored = tape.len + seek::file_len(&seek_path);
            let state = end.end.state;
            inner.catalog.set_end(id, nonce, end.end, stored, false);
            return Err(StorageError::invalid_input(format!(
                "tape {id:?} is {}; only recording tapes can be resumed",
                state.as_str()
            )));
        }
        // The index first, so it never points into a dropped tail.
        let seek = SeekWriter::resume(&seek_path, nonce, keep, &p.checkpoints);
        if tape.len > p.valid_end {
            tape.file
                .set_len(p.valid_end)
                .ctx("truncate the torn tail of", &path)?;
        }
        let methods = tape.methods_from_chain(p.last_method, &path)?;
        let live = Live {
            file_len: p.valid_end,
            valid_end: p.valid_end,
            next_seq: p.next_seq,
            bytes: p.bytes,
            last_method: p.last_method,
        };
        inner.catalog.set_live(id, nonce, live);
        drop(inner);
        Ok(FsWriter::new(
            self.clone(),
            id.to_string(),
            nonce,
            tape.file,
            seek,
            live,
            methods,
            &path,
        ))
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
        let id = header.id.clone();
        check_saved_frames(&id, frames, summary)?;
        let mut inner = self.lock()?;
        inner.refresh()?;
        inner.ensure_absent(&id)?;
        let nonce = new_nonce();
        let mut checkpoints = Vec::new();
        let mut methods = HashSet::new();
        let mut end = EndInfo {
            state: reason.end_state(),
            frame_count: summary.frame_count,
            byte_count: summary.byte_count,
            ended_at_us: summary.ended_at_us,
            digest: summary.digest.clone(),
            methods: Vec::new(),
        };
        let mut file_len = 0u64;
        inner.publish(&id, |w| {
            // `flushed + buf.len()` is the file offset of the next record.
            let mut flushed = 0u64;
            let mut buf = Vec::new();
            tapefile::encode_header(
                &HeaderBody {
                    format: tapefile::FORMAT,
                    nonce,
                    header: header.clone(),
                },
                &mut buf,
            );
            let mut bytes = 0u64;
            let mut last_method = 0u64;
            for f in frames {
                if let Some(m) = search::frame_method(&f.payload)
                    && !methods.contains(&m)
                {
                    let at = flushed + buf.len() as u64;
                    tapefile::encode_method(last_method, &m, &mut buf);
                    last_method = at;
                    methods.insert(m);
                }
                if f.seq.is_multiple_of(seek::INTERVAL) {
                    checkpoints.push(ScanStart {
                        offset: flushed + buf.len() as u64,
                        next_seq: f.seq,
                        bytes,
                        last_method,
                    });
                }
                tapefile::encode_frame(f, &mut buf);
                bytes += f.payload.len() as u64;
                if buf.len() >= 1 << 20 {
                    w.write_all(&buf)?;
                    flushed += buf.len() as u64;
                    buf.clear();
                }
            }
            let mut sorted: Vec<String> = methods.iter().cloned().collect();
            sorted.sort();
            end.methods = sorted;
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
            header: Some(header),
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
        let bad = tapefile::for_each_frame(&mut tape, start, &path, |seq, body| {
            if seq < from_seq {
                return Flow::Continue;
            }
            let len = tapefile::frame_payload(body).len() as u64;
            if !out.is_empty() && total.saturating_add(len) > max_bytes {
                return Flow::Stop;
            }
            total += len;
            out.push(tapefile::decode_frame(body).expect("checked by for_each_frame"));
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
        self.lock()?.page(filter, None, None, cursor, limit)
    }

    /// Like [`FsStore::list`], with conditions on the frames: `method` is
    /// answered from the per-tape method sets kept in the catalog (ended
    /// tapes), `text` by streaming the frames of the tapes that pass every
    /// other condition.
    pub fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.lock()?.page(
            &query.filter,
            query.method.as_deref(),
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
    let mut bytes = 0u64;
    for (i, f) in frames.iter().enumerate() {
        if f.seq != i as u64 {
            return Err(StorageError::invalid_input(format!(
                "save of tape {id:?}: frame {i} has seq {}; frames must be numbered 0.. without gaps",
                f.seq
            )));
        }
        check_payload(id, f)?;
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

/// Rejects a payload too large for one record.
pub(crate) fn check_payload(id: &str, f: &Frame) -> Result<(), StorageError> {
    if f.payload.len() > tapefile::MAX_PAYLOAD {
        return Err(StorageError::invalid_input(format!(
            "tape {id:?}: frame {} has a {}-byte payload; the fs provider stores at most {} bytes per frame",
            f.seq,
            f.payload.len(),
            tapefile::MAX_PAYLOAD
        )));
    }
    Ok(())
}
