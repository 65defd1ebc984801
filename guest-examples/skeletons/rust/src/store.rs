//! The storage logic: one directory per tape under the granted root.
//!
//! ```text
//! <root>/<id>/header   written once (the tape's directory is built under a
//!                      temporary name and renamed into place: atomic)
//! <root>/<id>/frames   frame records, one write per append
//! <root>/<id>/end      written by finish or abort (temporary file + rename)
//! ```
//!
//! Simple rather than fast: every read scans the tape's `frames` file and
//! every listing reads every tape. Replace what you need (an index, a
//! database) and keep `tapedeck provider test` passing.

use crate::records::{self, decode_end, decode_header, encode_end, encode_header};
use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tapedeck_guest_sdk::{
    EndReason, Frame, SearchQuery, StorageError, StorageStats, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeState, TapeSummary, validate_tape_id,
};

/// The store of one instance: where the tapes are.
pub struct Store {
    root: PathBuf,
}

/// What is known of one stored tape.
struct Tape {
    stamp: u64,
    header: TapeHeader,
    end: Option<(TapeState, Option<TapeSummary>)>,
    dir: PathBuf,
}

/// A tape being written (the `tape-writer` resource).
pub struct Writer {
    dir: PathBuf,
    next_seq: u64,
    /// Length of `frames` after the last whole append.
    committed: u64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::io(format!("{what} {}: {e}", path.display()))
}

fn check_id(id: &str) -> Result<(), StorageError> {
    validate_tape_id(id).map_err(StorageError::invalid_input)
}

/// Nanoseconds since the epoch: the stamp that keeps paging stable.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A name for a temporary directory or file no other instance picks.
fn scratch_name(prefix: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ns());
    format!(".{prefix}-{:016x}", h.finish())
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader sees all of it or nothing.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(scratch_name("tmp"));
    let mut f = fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io("writing", &tmp, e))?;
    f.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(|e| io("renaming", &path, e))
}

/// Frame sequence numbers must run on from `next` without a gap.
fn check_consecutive(frames: &[Frame], next: u64) -> Result<(), StorageError> {
    for (i, f) in frames.iter().enumerate() {
        if f.seq != next + i as u64 {
            return Err(StorageError::invalid_input(format!(
                "frame {} has seq {}, expected {} (frames must be consecutive, without gaps)",
                i,
                f.seq,
                next + i as u64
            )));
        }
    }
    Ok(())
}

/// The whole appends of a `frames` file: (record bodies, bytes they fill).
fn read_frames_file(dir: &Path) -> Result<(Vec<u8>, Vec<(usize, usize)>, usize), StorageError> {
    let path = dir.join("frames");
    let buf = fs::read(&path).map_err(|e| io("reading", &path, e))?;
    let (bodies, committed) = records::scan_frames(&buf);
    Ok((buf, bodies, committed))
}

impl Store {
    /// Opens the store from the `config` JSON: `root`, the directory the
    /// operator granted (default `/tapes`).
    pub fn open(config: &str) -> Result<Store, StorageError> {
        let config: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| StorageError::invalid_input(format!("config is not JSON: {e}")))?;
        let Some(table) = config.as_object() else {
            return Err(StorageError::invalid_input("config must be a JSON object"));
        };
        let mut root = PathBuf::from("/tapes");
        for (key, value) in table {
            match (key.as_str(), value.as_str()) {
                ("root", Some(r)) => root = PathBuf::from(r),
                ("root", None) => {
                    return Err(StorageError::invalid_input(
                        "config `root` must be a string",
                    ));
                }
                _ => {
                    return Err(StorageError::invalid_input(format!(
                        "unknown config setting `{key}` (this provider knows `root`)"
                    )));
                }
            }
        }
        fs::create_dir_all(&root).map_err(|e| io("creating", &root, e))?;
        Ok(Store { root })
    }

    fn load(&self, id: &str) -> Result<Tape, StorageError> {
        check_id(id)?;
        let dir = self.root.join(id);
        let path = dir.join("header");
        let buf = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::not_found(format!("no tape `{id}`")));
            }
            Err(e) => return Err(io("reading", &path, e)),
        };
        let (stamp, header) = decode_header(&buf)?;
        let end = match fs::read(dir.join("end")) {
            Ok(b) => Some(decode_end(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("reading", &dir.join("end"), e)),
        };
        Ok(Tape {
            stamp,
            header,
            end,
            dir,
        })
    }

    fn info(&self, tape: &Tape) -> Result<TapeInfo, StorageError> {
        let summary = tape.end.as_ref().and_then(|(_, s)| s.clone());
        let (frame_count, byte_count) = match &summary {
            Some(s) => (s.frame_count, s.byte_count),
            None => {
                let (buf, bodies, _) = read_frames_file(&tape.dir)?;
                let mut bytes = 0;
                for (start, end) in &bodies {
                    bytes += records::payload_len(&buf[*start..*end])?;
                }
                (bodies.len() as u64, bytes)
            }
        };
        Ok(TapeInfo {
            header: tape.header.clone(),
            state: tape.end.as_ref().map_or(TapeState::Recording, |(s, _)| *s),
            frame_count,
            byte_count,
            ended_at_us: summary.as_ref().map(|s| s.ended_at_us),
            digest: summary.as_ref().and_then(|s| s.digest.clone()),
            seal: summary.and_then(|s| s.seal),
        })
    }

    /// Builds a tape's directory under a temporary name with `files` in it,
    /// then renames it to the tape's id: it appears whole or not at all.
    fn publish(&self, id: &str, files: &[(&str, &[u8])]) -> Result<(), StorageError> {
        let exists = || StorageError::already_exists(format!("tape `{id}` exists"));
        let dir = self.root.join(id);
        if dir.exists() {
            return Err(exists());
        }
        let tmp = self.root.join(scratch_name("new"));
        fs::create_dir(&tmp).map_err(|e| io("creating", &tmp, e))?;
        let built = files.iter().try_for_each(|(name, bytes)| {
            let path = tmp.join(name);
            let mut f = fs::File::create(&path).map_err(|e| io("creating", &path, e))?;
            f.write_all(bytes).map_err(|e| io("writing", &path, e))?;
            f.sync_all().map_err(|e| io("syncing", &path, e))
        });
        // A directory that exists, even an empty one, is never replaced.
        let result = built.and_then(|()| match dir.exists() {
            true => Err(exists()),
            false => fs::rename(&tmp, &dir).map_err(|_| exists()),
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    /// `create`: a new tape, `recording`, no frames.
    pub fn create(&self, header: TapeHeader) -> Result<Writer, StorageError> {
        check_id(&header.id)?;
        let head = encode_header(now_ns(), &header);
        self.publish(&header.id, &[("header", &head), ("frames", &[])])?;
        Ok(Writer {
            dir: self.root.join(&header.id),
            next_seq: 0,
            committed: 0,
        })
    }

    /// `resume`: continues a `recording` tape, cutting off a torn append.
    pub fn resume(&self, id: &str) -> Result<Writer, StorageError> {
        let tape = self.load(id)?;
        if let Some((state, _)) = tape.end {
            return Err(StorageError::invalid_input(format!(
                "tape `{id}` is {}, not recording",
                state.as_str()
            )));
        }
        let (buf, bodies, committed) = read_frames_file(&tape.dir)?;
        if committed < buf.len() {
            let path = tape.dir.join("frames");
            let f = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io("opening", &path, e))?;
            f.set_len(committed as u64)
                .map_err(|e| io("truncating", &path, e))?;
        }
        Ok(Writer {
            dir: tape.dir,
            next_seq: bodies.len() as u64,
            committed: committed as u64,
        })
    }

    /// `save`: a whole tape at once.
    pub fn save(
        &self,
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        check_id(&header.id)?;
        check_consecutive(&frames, 0)?;
        check_summary(
            &summary,
            frames.len() as u64,
            frames.iter().map(|f| f.payload.len() as u64).sum(),
        )?;
        let mut body = Vec::new();
        records::encode_frames(&frames, &mut body);
        let head = encode_header(now_ns(), &header);
        let end = encode_end(reason.end_state(), Some(&summary));
        self.publish(
            &header.id,
            &[("header", &head), ("frames", &body), ("end", &end)],
        )?;
        self.get(&header.id)
    }

    /// `get`.
    pub fn get(&self, id: &str) -> Result<TapeInfo, StorageError> {
        let tape = self.load(id)?;
        self.info(&tape)
    }

    /// `read-frames`.
    pub fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        if max_frames == 0 {
            return Err(StorageError::invalid_input("max-frames must be at least 1"));
        }
        let tape = self.load(id)?;
        let (buf, bodies, _) = read_frames_file(&tape.dir)?;
        let count = tape
            .end
            .as_ref()
            .and_then(|(_, s)| s.as_ref())
            .map_or(bodies.len() as u64, |s| {
                s.frame_count.min(bodies.len() as u64)
            });
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut seq = from_seq;
        while seq < count {
            let (start, end) = bodies[seq as usize];
            let frame = records::decode_frame(&buf[start..end])?;
            bytes += frame.payload.len() as u64;
            out.push(frame);
            seq += 1;
            if out.len() as u32 >= max_frames || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// `delete`: the directory is renamed away first, so the tape vanishes
    /// at once even if removing its files is interrupted.
    pub fn delete(&self, id: &str) -> Result<(), StorageError> {
        let tape = self.load(id)?;
        let gone = self.root.join(scratch_name("deleted"));
        fs::rename(&tape.dir, &gone).map_err(|e| io("renaming", &tape.dir, e))?;
        fs::remove_dir_all(&gone).map_err(|e| io("removing", &gone, e))
    }

    /// Every tape (not the temporary directories, which are not valid ids).
    fn all(&self) -> Result<Vec<Tape>, StorageError> {
        let entries = fs::read_dir(&self.root).map_err(|e| io("listing", &self.root, e))?;
        let mut tapes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("listing", &self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_tape_id(&name).is_err() {
                continue;
            }
            match self.load(&name) {
                Ok(t) => tapes.push(t),
                // Deleted meanwhile.
                Err(e) if e.kind == tapedeck_guest_sdk::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(tapes)
    }

    /// One page of the tapes `keep` accepts, newest first (created-at, then
    /// id, both descending). The cursor is `v1.<stamp>.<created-at>.<id>`:
    /// the first page's time (tapes stored later never appear on the next
    /// pages) and the last tape given.
    fn page(
        &self,
        mut keep: impl FnMut(&Tape, &TapeInfo) -> Result<bool, StorageError>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        if !(1..=1000).contains(&limit) {
            return Err(StorageError::invalid_input(format!(
                "limit {limit} is not within 1..=1000"
            )));
        }
        let (snapshot, after) = match cursor {
            None => (now_ns(), None),
            Some(c) => parse_cursor(c)?,
        };
        let mut tapes: Vec<Tape> = self
            .all()?
            .into_iter()
            .filter(|t| t.stamp <= snapshot)
            .filter(|t| match &after {
                Some((created, id)) => {
                    (t.header.created_at_us, t.header.id.as_str()) < (*created, id.as_str())
                }
                None => true,
            })
            .collect();
        tapes.sort_by(|a, b| {
            (b.header.created_at_us, &b.header.id).cmp(&(a.header.created_at_us, &a.header.id))
        });
        let mut page = Vec::new();
        let mut next_cursor = None;
        for tape in &tapes {
            let info = self.info(tape)?;
            if !keep(tape, &info)? {
                continue;
            }
            if page.len() == limit as usize {
                let last: &TapeInfo = &page[page.len() - 1];
                next_cursor = Some(format!(
                    "v1.{snapshot}.{}.{}",
                    last.header.created_at_us, last.header.id
                ));
                break;
            }
            page.push(info);
        }
        Ok(TapePage {
            tapes: page,
            next_cursor,
        })
    }

    /// `list`.
    pub fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.page(|_, info| Ok(filter.matches(info)), cursor, limit)
    }

    /// `search`: the filter, every query term among the terms of some frame,
    /// and the text (if any) in some payload.
    pub fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        let needle = query.text.as_deref().map(str::as_bytes);
        self.page(
            |tape, info| {
                if !query.filter.matches(info) {
                    return Ok(false);
                }
                let mut missing: HashSet<&str> = query.terms.iter().map(String::as_str).collect();
                let mut found_text = needle.is_none_or(<[u8]>::is_empty);
                let (buf, bodies, _) = read_frames_file(&tape.dir)?;
                for (start, end) in bodies.iter().take(info.frame_count as usize) {
                    let frame = records::decode_frame(&buf[*start..*end])?;
                    for t in &frame.terms {
                        missing.remove(t.as_str());
                    }
                    if let Some(n) = needle
                        && !found_text
                    {
                        found_text = frame.payload.windows(n.len()).any(|w| w == n);
                    }
                    if missing.is_empty() && found_text {
                        return Ok(true);
                    }
                }
                Ok(missing.is_empty() && found_text)
            },
            cursor,
            limit,
        )
    }

    /// `stats`.
    pub fn stats(&self) -> Result<StorageStats, StorageError> {
        let mut stats = StorageStats {
            tape_count: 0,
            recording_count: 0,
            frame_count: 0,
            byte_count: 0,
            stored_bytes: 0,
        };
        for tape in self.all()? {
            let info = self.info(&tape)?;
            stats.tape_count += 1;
            stats.recording_count += u64::from(info.state == TapeState::Recording);
            stats.frame_count += info.frame_count;
            stats.byte_count += info.byte_count;
            for name in ["header", "frames", "end"] {
                stats.stored_bytes += fs::metadata(tape.dir.join(name)).map_or(0, |m| m.len());
            }
        }
        Ok(stats)
    }
}

fn parse_cursor(c: &str) -> Result<(u64, Option<(u64, String)>), StorageError> {
    let bad =
        || StorageError::invalid_input(format!("cursor {c:?} was not issued by this provider"));
    let mut parts = c.splitn(4, '.');
    if parts.next() != Some("v1") {
        return Err(bad());
    }
    let snapshot = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let created = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let id = parts.next().ok_or_else(bad)?;
    validate_tape_id(id).map_err(|_| bad())?;
    Ok((snapshot, Some((created, id.to_string()))))
}

fn check_summary(summary: &TapeSummary, frames: u64, bytes: u64) -> Result<(), StorageError> {
    if summary.frame_count != frames || summary.byte_count != bytes {
        return Err(StorageError::invalid_input(format!(
            "the summary says {} frames and {} bytes, {frames} frames and {bytes} bytes are stored",
            summary.frame_count, summary.byte_count
        )));
    }
    Ok(())
}

impl Writer {
    /// `next-seq`.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn end(&self) -> Result<Option<(TapeState, Option<TapeSummary>)>, StorageError> {
        match fs::read(self.dir.join("end")) {
            Ok(b) => Ok(Some(decode_end(&b)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &self.dir.join("end"), e)),
        }
    }

    /// Catches up with appends made through another writer of this tape.
    fn refresh(&mut self) -> Result<(), StorageError> {
        let path = self.dir.join("frames");
        let len = fs::metadata(&path)
            .map_err(|e| io("reading", &path, e))?
            .len();
        if len != self.committed {
            let (_, bodies, committed) = read_frames_file(&self.dir)?;
            self.next_seq = bodies.len() as u64;
            self.committed = committed as u64;
        }
        Ok(())
    }

    /// `append`.
    pub fn append(&mut self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        if let Some((state, _)) = self.end()? {
            return Err(StorageError::invalid_input(format!(
                "the tape is {}, not recording",
                state.as_str()
            )));
        }
        self.refresh()?;
        let skip = frames.iter().take_while(|f| f.seq < self.next_seq).count();
        let new = &frames[skip..];
        check_consecutive(new, self.next_seq)?;
        if new.is_empty() {
            return Ok(self.next_seq);
        }
        let mut bytes = Vec::new();
        records::encode_frames(new, &mut bytes);
        let path = self.dir.join("frames");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        if let Err(e) = f.write_all(&bytes) {
            // Nothing of a failed append may stay.
            let _ = f.set_len(self.committed);
            return Err(io("writing", &path, e));
        }
        self.committed += bytes.len() as u64;
        self.next_seq += new.len() as u64;
        Ok(self.next_seq)
    }

    /// `finish`.
    pub fn finish(
        &mut self,
        store: &Store,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let state = reason.end_state();
        if let Some((ended, stored)) = self.end()? {
            if ended == state && stored.as_ref() == Some(&summary) {
                return store.info(&self.tape(store)?);
            }
            return Err(StorageError::invalid_input(format!(
                "the tape is {} already, with another summary",
                ended.as_str()
            )));
        }
        self.refresh()?;
        let (buf, bodies, _) = read_frames_file(&self.dir)?;
        let mut bytes = 0;
        for (start, end) in &bodies {
            bytes += records::payload_len(&buf[*start..*end])?;
        }
        check_summary(&summary, bodies.len() as u64, bytes)?;
        let path = self.dir.join("frames");
        fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("syncing", &path, e))?;
        write_atomic(&self.dir, "end", &encode_end(state, Some(&summary)))?;
        store.info(&self.tape(store)?)
    }

    /// `abort`: idempotent; a tape that already ended stays as it is.
    pub fn abort(&mut self) -> Result<(), StorageError> {
        if self.end()?.is_some() {
            return Ok(());
        }
        write_atomic(&self.dir, "end", &encode_end(TapeState::Aborted, None))
    }

    fn tape(&self, store: &Store) -> Result<Tape, StorageError> {
        let id = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        store.load(&id.unwrap_or_default())
    }
}
