//! [`FsStore`]: the operations of the `tape-storage` interface over a root
//! directory.

use crate::catalog::{Catalog, Live};
use crate::clock::new_nonce;
use crate::config::FsConfig;
use crate::cursor::Cursor;
use crate::errors::{IoContext, check_id, io_error};
use crate::indexlog::{IndexLog, LogEntry};
use crate::search;
use crate::seek::{self, SeekWriter};
use crate::tapefile::{self, EndBody, EndInfo, Flow, HeaderBody, OpenError, ScanStart, TapeFile};
use crate::writer::FsWriter;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tapedeck_types::{
    Capabilities, EndReason, Frame, SearchQuery, StorageError, StorageStats, TapeFilter,
    TapeHeader, TapeInfo, TapePage, TapeState, TapeSummary,
};

/// Largest page of `list` and `search`.
const MAX_LIMIT: u32 = 1000;
/// Temp files older than this are left over from a crash and removed at open.
const STALE_TEMP: Duration = Duration::from_secs(3600);

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
    fn new(root: &Path) -> Paths {
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

    fn temp(&self, id: &str, what: &str) -> PathBuf {
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

fn not_found(id: &str) -> StorageError {
    StorageError::not_found(format!("tape {id:?} not found"))
}

/// Best-effort fsync of a directory, so a new entry in it survives power
/// loss (natively; WASI may not allow opening a directory as a file).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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
    pub(crate) fn current(&self, id: &str) -> Result<&crate::catalog::Entry, StorageError> {
        self.catalog.get(id).ok_or_else(|| not_found(id))
    }

    /// `not-found` unless `id` is in the catalog, after trying to adopt a
    /// tape file whose `created` entry was lost.
    fn ensure_known(&mut self, id: &str) -> Result<(), StorageError> {
        if self.catalog.get(id).is_none() && !self.adopt(id)? {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// `already-exists` if `id` is taken (in the catalog, or by a tape file).
    fn ensure_absent(&mut self, id: &str) -> Result<(), StorageError> {
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
                last_method: l.last_method,
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
                    last_method: p.last_method,
                },
            ),
        }
        Ok(true)
    }

    /// Adopts the tape file of `id` if one exists but the catalog does not
    /// know it (its `created` entry was lost to a crash, or is about to be
    /// appended by a concurrent `create`: the duplicate is harmless). A file
    /// of a deleted incarnation is removed instead. Returns whether `id` is
    /// now in the catalog.
    fn adopt(&mut self, id: &str) -> Result<bool, StorageError> {
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
    fn remove_zombie(&mut self, id: &str, nonce: u64) {
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

    /// Writes a new tape file under `tmp/` with `write`, makes it durable,
    /// and links it into `tapes/` unless the id is taken.
    fn publish(
        &mut self,
        id: &str,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        let tmp = self.paths.temp(id, "new");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create temp file", &tmp)?;
        let fsync = self.config.fsync;
        let written = (|| {
            let mut w = BufWriter::with_capacity(1 << 16, file);
            write(&mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            if fsync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("write temp file", &tmp, &e));
        }
        let result = self.link_new(id, &tmp);
        let _ = fs::remove_file(&tmp);
        result?;
        if fsync {
            sync_dir(&self.paths.tapes);
        }
        Ok(())
    }

    /// Links `tmp` to the tape path of `id`, failing with `already-exists`
    /// if that path exists (after clearing a leftover of a deleted tape).
    fn link_new(&mut self, id: &str, tmp: &Path) -> Result<(), StorageError> {
        let dst = self.paths.tape(id);
        let taken = || StorageError::already_exists(format!("tape {id:?} already exists"));
        for attempt in 0..2 {
            match fs::hard_link(tmp, &dst) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if attempt == 0
                        && let Ok(t) = TapeFile::open(&dst, None, false)
                        && self.catalog.is_tombstoned(id, t.header.nonce)
                    {
                        self.remove_zombie(id, t.header.nonce);
                        continue;
                    }
                    return Err(taken());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(io_error("link", tmp, &e));
                }
                Err(_) => {
                    // No hard links here (some filesystems, some sandboxes):
                    // fall back to check-then-rename, which is exclusive
                    // except against a concurrent create of the same id.
                    if dst.exists() {
                        return Err(taken());
                    }
                    return fs::rename(tmp, &dst).ctx("publish", &dst);
                }
            }
        }
        Err(taken())
    }

    /// Undoes [`Inner::publish`] after the catalog entry could not be written.
    fn unpublish(&mut self, id: &str) {
        let _ = fs::remove_file(self.paths.tape(id));
        let _ = fs::remove_file(self.paths.seek(id));
    }

    /// Makes the catalog agree with the files (see [`FsStore::open`]).
    fn reconcile(&mut self) -> Result<(), StorageError> {
        let dir = self.paths.tapes.clone();
        let entries = fs::read_dir(&dir).ctx("list", &dir)?;
        for dirent in entries {
            let name = dirent.ctx("list", &dir)?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".tape") {
                if check_id(id).is_err() {
                    continue;
                }
                match self.catalog.get(id) {
                    None => {
                        self.adopt(id)?;
                    }
                    Some(e) if e.end.is_none() => {
                        let nonce = e.nonce;
                        self.refresh_live(id)?;
                        self.log_unlogged_end(id, nonce)?;
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
    fn log_unlogged_end(&mut self, id: &str, nonce: u64) -> Result<(), StorageError> {
        let Some(entry) = self.catalog.get(id) else {
            return Ok(());
        };
        let Some(ended) = entry.end.as_ref().filter(|e| !e.logged) else {
            return Ok(());
        };
        let mut end = ended.end.clone();
        end.methods = self.catalog.method_names(ended);
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

    fn remove_stale_temps(&self) {
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

    /// One page of `list` or `search`.
    fn page(
        &mut self,
        filter: &TapeFilter,
        method: Option<&str>,
        text: Option<&[u8]>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(StorageError::invalid_input(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let cursor = cursor.map(Cursor::parse).transpose()?;
        self.refresh()?;
        let snapshot = cursor.as_ref().map_or(self.log.offset(), |c| c.snapshot);
        let header_filter = TapeFilter {
            state: None,
            ..filter.clone()
        };
        let mut key = cursor.map(|c| (c.created_at, c.id));
        let mut tapes = Vec::new();
        let mut more = false;
        while let Some(k) = self.catalog.next_in_order(key.as_ref()) {
            key = Some(k);
            let id = &key.as_ref().expect("just set").1;
            let entry = self.catalog.get(id).expect("ordered tapes exist");
            if entry.log_pos >= snapshot || !header_filter.matches(&entry.info) {
                continue;
            }
            let id = id.clone();
            if !self.refresh_live(&id)? {
                continue;
            }
            if !filter.matches(&self.current(&id)?.info) || !self.frames_match(&id, method, text)? {
                continue;
            }
            if tapes.len() == limit as usize {
                more = true;
                break;
            }
            tapes.push(self.current(&id)?.info.clone());
        }
        let next_cursor = match (more, tapes.last()) {
            (true, Some(last)) => Some(
                Cursor {
                    snapshot,
                    created_at: last.header.created_at_us,
                    id: last.header.id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(TapePage { tapes, next_cursor })
    }

    /// The frame conditions of a search, for one tape.
    fn frames_match(
        &mut self,
        id: &str,
        method: Option<&str>,
        text: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        if method.is_none() && text.is_none() {
            return Ok(true);
        }
        let entry = self.current(id)?;
        let mut method = method;
        if let (Some(m), Some(end)) = (method, &entry.end) {
            match self.catalog.method_id(m) {
                Some(mid) if end.method_ids.binary_search(&mid).is_ok() => method = None,
                _ => return Ok(false),
            }
            if text.is_none() {
                return Ok(true);
            }
        }
        let nonce = entry.nonce;
        let path = self.paths.tape(id);
        let mut tape = match self.open_tape(id, nonce, false) {
            Ok(t) => t,
            Err(e) if e.kind == tapedeck_types::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let start = seek::header_start(&tape);
        tapefile::any_frame_matches(&mut tape, start, method, text, &path)
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
