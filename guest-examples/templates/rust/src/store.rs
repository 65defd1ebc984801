//! The storage logic: the same design as tapedeck's Python and JavaScript
//! providers.
//!
//! ```text
//! <root>/tapes/<id>/header.json   the header and a creation stamp, written once
//! <root>/tapes/<id>/frames        append-only frame records
//! <root>/tapes/<id>/terms         the tape's index terms, one JSON line each
//! <root>/tapes/<id>/seek          (seq, offset) of every 1024th frame, 16 bytes each
//! <root>/tapes/<id>/end.json      how the tape ended, written once, atomically
//! <root>/trash/                   tapes being created, saved or deleted
//! ```
//!
//! A frame record is a 28-byte header (u32 body length, u32 CRC-32 of the
//! rest, u64 seq, u64 timestamp, u8 direction, u8 flags, 2 bytes padding,
//! little endian) and the body. Flag bit 0 is `not-json`; without flag bit 1
//! the body is the payload, with it the body is the payload's length (u32),
//! the payload, and the frame's terms and attributes (a u32 count, then each
//! string as a u32 length and its bytes; an attribute is two strings). A
//! frame without terms and attributes is written the first way, which is
//! also how the previous format wrote every frame. A torn record at the end
//! is ignored by readers and cut off by `resume`.
//!
//! The provider never parses a payload: search matches the host's terms,
//! kept per tape in `terms` (a tape matches a term that any of its frames
//! carries). Each line of `terms` is `["<term>",<seq>]`, the seq of the
//! first frame that has the term. A line is written *before* its frame and
//! counts only once that frame is stored (seq below the frame count), so an
//! interrupted append never makes a tape match a term it does not hold, nor
//! leaves a stored frame's term out; `resume` (and a writer whose append
//! failed) drops lines whose frame is not stored. Tapes written by the previous format have a `methods` file
//! instead (JSON-RPC methods the provider found itself); its lines count as
//! the terms `method:<m>`, the host's term for a method. Creation and `save` build the directory
//! in `trash/` and rename it into place (a rename never replaces a non-empty
//! directory, so one of two racing instances wins); the end is an atomic
//! rename of `end.json`; deletion a rename into `trash/`. Every fact is in a
//! file, so every instance sees what any other acknowledged.

use crate::exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, StorageError, StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeSummary,
};
use crate::tapedeck::storage::types::{Direction, FrameFlags, TapeState};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

const HEADER: usize = 28;
const SEEK_EVERY: u64 = 1024;
const MAX_LIMIT: u32 = 1000;

type Result<T> = std::result::Result<T, StorageError>;

fn invalid(msg: impl Into<String>) -> StorageError {
    StorageError::InvalidInput(msg.into())
}

fn io_err(what: &str, e: io::Error) -> StorageError {
    StorageError::Io(format!("{what}: {e}"))
}

fn not_found(id: &str) -> StorageError {
    StorageError::NotFound(format!("no tape {id:?}"))
}

/// A name no other instance picks at the same moment (instances race): the
/// time and 64 random bits (std's hasher keys come from `wasi:random`).
fn unique() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{}-{random:016x}", now_ns())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Refuses anything that is not a valid tape id, before it names a path.
pub fn check_id(id: &str) -> Result<()> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !id.starts_with('.')
        && !id.contains("..");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid tape id {id:?}: 1 to 128 of A-Z a-z 0-9 - _ ., not starting with '.' and without '..'"
        )))
    }
}

/// Flag bit: the record's body carries terms and attributes after the payload.
const EXTENDED: u8 = 2;

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn encode(f: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    let extended = !f.terms.is_empty() || !f.attributes.is_empty();
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.timestamp.to_le_bytes());
    out.push(match f.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    });
    let not_json = u8::from(f.flags.contains(FrameFlags::NOT_JSON));
    out.push(if extended {
        not_json | EXTENDED
    } else {
        not_json
    });
    out.extend_from_slice(&[0; 2]);
    if extended {
        put_u32(out, f.payload.len());
        out.extend_from_slice(&f.payload);
        put_u32(out, f.terms.len());
        for t in &f.terms {
            put_str(out, t);
        }
        put_u32(out, f.attributes.len());
        for (k, v) in &f.attributes {
            put_str(out, k);
            put_str(out, v);
        }
    } else {
        out.extend_from_slice(&f.payload);
    }
    let body = (out.len() - start - HEADER) as u32;
    out[start..start + 4].copy_from_slice(&body.to_le_bytes());
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the extended body's fields in order.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        let b = self.0.get(4..4 + n)?;
        self.0 = &self.0[4 + n..];
        Some(b)
    }

    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn count(&mut self) -> Option<usize> {
        let n = u32::from_le_bytes(self.0.get(..4)?.try_into().ok()?) as usize;
        self.0 = &self.0[4..];
        Some(n)
    }
}

/// The payload, terms and attributes of a record's body.
type Body = (Vec<u8>, Vec<String>, Vec<(String, String)>);

fn decode_body(body: &[u8], extended: bool) -> Option<Body> {
    if !extended {
        return Some((body.to_vec(), Vec::new(), Vec::new()));
    }
    let mut c = Cursor(body);
    let payload = c.bytes()?.to_vec();
    let terms = (0..c.count()?)
        .map(|_| c.string())
        .collect::<Option<Vec<_>>>()?;
    let attributes = (0..c.count()?)
        .map(|_| Some((c.string()?, c.string()?)))
        .collect::<Option<Vec<_>>>()?;
    c.0.is_empty().then_some((payload, terms, attributes))
}

/// The record at `buf[at..]`: the frame and where it ends, or `None` if it is
/// torn or corrupt.
fn decode(buf: &[u8], at: usize) -> Option<(Frame, usize)> {
    let head = buf.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(head[0..4].try_into().ok()?) as usize;
    let end = at + HEADER + len;
    let body = buf.get(at + 8..end)?;
    if crc32fast::hash(body) != u32::from_le_bytes(head[4..8].try_into().ok()?) {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
    let (payload, terms, attributes) =
        decode_body(&buf[at + HEADER..end], head[25] & EXTENDED != 0)?;
    Some((
        Frame {
            seq: u64_at(8),
            timestamp: u64_at(16),
            direction: if head[24] == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            payload,
            flags: if head[25] & 1 == 1 {
                FrameFlags::NOT_JSON
            } else {
                FrameFlags::empty()
            },
            terms,
            attributes,
        },
        end,
    ))
}

fn read_opt(path: &PathBuf) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&format!("read {}", path.display()), e)),
    }
}

fn write_atomic(path: &PathBuf, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", unique()));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    if fsync {
        f.sync_data()?;
    }
    fs::rename(&tmp, path)
}

fn append_file(path: &PathBuf, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?
        .write_all(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An optional byte string of the provider's own files: hex, or absent
/// (`null`, or no field at all in files of the previous format).
fn opt_bytes(v: &Value) -> Option<Option<Vec<u8>>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => unhex(s).map(Some),
        _ => None,
    }
}

fn header_json(h: &TapeHeader) -> Value {
    json!({ "id": h.id, "session_id": h.session_id, "name": h.name,
            "tags": h.tags, "created_at": h.created_at,
            "envelope": h.envelope.as_deref().map(hex) })
}

fn header_from(v: &Value) -> Option<TapeHeader> {
    Some(TapeHeader {
        id: v["id"].as_str()?.into(),
        session_id: v["session_id"].as_str()?.into(),
        name: v["name"].as_str()?.into(),
        tags: serde_json::from_value(v["tags"].clone()).ok()?,
        created_at: v["created_at"].as_u64()?,
        envelope: opt_bytes(&v["envelope"])?,
    })
}

fn state_name(s: TapeState) -> &'static str {
    match s {
        TapeState::Recording => "recording",
        TapeState::Finished => "finished",
        TapeState::Aborted => "aborted",
        TapeState::Crashed => "crashed",
    }
}

fn state_from(s: &str) -> TapeState {
    match s {
        "finished" => TapeState::Finished,
        "aborted" => TapeState::Aborted,
        "crashed" => TapeState::Crashed,
        _ => TapeState::Recording,
    }
}

fn end_state(reason: EndReason) -> TapeState {
    match reason {
        EndReason::Completed => TapeState::Finished,
        EndReason::Crashed => TapeState::Crashed,
        EndReason::Aborted => TapeState::Aborted,
    }
}

fn end_json(
    state: TapeState,
    frames: u64,
    bytes: u64,
    ended_at: u64,
    digest: &Option<String>,
    seal: Option<&[u8]>,
) -> Vec<u8> {
    json!({ "state": state_name(state), "frame_count": frames, "byte_count": bytes,
            "ended_at": ended_at, "digest": digest, "seal": seal.map(hex) })
    .to_string()
    .into_bytes()
}

/// The end file of a tape that ended with `summary`.
fn summary_end(state: TapeState, s: &TapeSummary) -> Vec<u8> {
    end_json(
        state,
        s.frame_count,
        s.byte_count,
        s.ended_at,
        &s.digest,
        s.seal.as_deref(),
    )
}

fn check_consecutive(frames: &[Frame], first: u64) -> Result<()> {
    for (i, f) in frames.iter().enumerate() {
        if f.seq != first + i as u64 {
            return Err(invalid(format!(
                "frame {i} of the batch has seq {}, expected {} (sequence numbers must be consecutive)",
                f.seq,
                first + i as u64
            )));
        }
    }
    Ok(())
}

fn check_summary(s: &TapeSummary, frames: u64, bytes: u64, id: &str) -> Result<()> {
    if s.frame_count != frames || s.byte_count != bytes {
        return Err(invalid(format!(
            "summary of tape {id:?} says {} frames and {} bytes; stored are {frames} frames and {bytes} bytes",
            s.frame_count, s.byte_count
        )));
    }
    Ok(())
}

/// Index lines for the terms of `frames` not yet in `known`, each with the
/// seq of the first frame that has it.
fn terms_of(frames: &[Frame], known: &mut HashSet<String>) -> Vec<u8> {
    let mut out = String::new();
    for f in frames {
        for t in &f.terms {
            if known.insert(t.clone()) {
                out.push_str(&json!([t, f.seq]).to_string());
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

/// The lines of `terms`: (term, seq of its first frame); torn lines are left
/// out.
fn term_lines(text: &[u8]) -> impl Iterator<Item = (&[u8], String, u64)> + '_ {
    text.split_inclusive(|b| *b == b'\n').filter_map(|l| {
        let (term, seq) = serde_json::from_slice(l.strip_suffix(b"\n")?).ok()?;
        Some((l, term, seq))
    })
}

/// The strings of an index file, one JSON string per line.
fn index_lines(text: &[u8]) -> impl Iterator<Item = String> + '_ {
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
}

fn seek_entries(frames: &[Frame], mut offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        if f.seq % SEEK_EVERY == 0 {
            out.extend_from_slice(&f.seq.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        offset += record_len(f);
    }
    out
}

/// The length of a frame's record.
fn record_len(f: &Frame) -> u64 {
    let mut n = HEADER + f.payload.len();
    if !f.terms.is_empty() || !f.attributes.is_empty() {
        n += 12 + f.terms.iter().map(|t| 4 + t.len()).sum::<usize>();
        n += f
            .attributes
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
    }
    n as u64
}

/// Does `info` pass every condition of `filter`?
pub fn matches(filter: &TapeFilter, info: &TapeInfo) -> bool {
    let h = &info.header;
    filter
        .session_id
        .as_ref()
        .is_none_or(|s| &h.session_id == s)
        && filter
            .name_contains
            .as_ref()
            .is_none_or(|n| h.name.to_lowercase().contains(&n.to_lowercase()))
        && filter.tags.iter().all(|t| h.tags.contains(t))
        && filter.created_since.is_none_or(|t| h.created_at >= t)
        && filter.created_until.is_none_or(|t| h.created_at < t)
        && filter.state.is_none_or(|s| info.state == s)
}

/// A tape as found on disk: its header, creation stamp and info.
struct Found {
    stamp: u128,
    info: TapeInfo,
}

/// The tapes under one root.
pub struct Store {
    tapes: PathBuf,
    trash: PathBuf,
    fsync: bool,
}

impl Store {
    /// Opens the store `config` (a JSON object) names, creating its folders.
    pub fn open(config: &str) -> Result<Store> {
        let config: Value = serde_json::from_str(if config.is_empty() { "{}" } else { config })
            .map_err(|e| invalid(format!("config is not JSON: {e}")))?;
        let obj = config
            .as_object()
            .ok_or_else(|| invalid("config must be a JSON object"))?;
        if let Some(k) = obj.keys().find(|k| *k != "root" && *k != "fsync") {
            return Err(invalid(format!(
                "unknown setting `{k}` (known: root, fsync)"
            )));
        }
        let root = match obj.get("root") {
            None => "/tapes",
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(invalid("setting `root` must be a non-empty string")),
        };
        let fsync = match obj.get("fsync") {
            None => true,
            Some(Value::Bool(b)) => *b,
            _ => return Err(invalid("setting `fsync` must be true or false")),
        };
        let root = PathBuf::from(root);
        let (tapes, trash) = (root.join("tapes"), root.join("trash"));
        for d in [&tapes, &trash] {
            fs::create_dir_all(d).map_err(|e| {
                io_err(
                    &format!(
                        "create {} (is {} granted read-write?)",
                        d.display(),
                        root.display()
                    ),
                    e,
                )
            })?;
        }
        Ok(Store {
            tapes,
            trash,
            fsync,
        })
    }

    fn file(&self, id: &str, name: &str) -> PathBuf {
        self.tapes.join(id).join(name)
    }

    /// The tape's header and stamp, or `None` if there is no such tape.
    fn header(&self, id: &str) -> Result<Option<(TapeHeader, u128)>> {
        let Some(bytes) = read_opt(&self.file(id, "header.json"))? else {
            return Ok(None);
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::Io(format!("header of tape {id:?}: {e}")))?;
        let stamp = v["stamp"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = header_from(&v["header"])
            .ok_or_else(|| StorageError::Io(format!("header of tape {id:?} is damaged")))?;
        Ok(Some((header, stamp)))
    }

    fn end(&self, id: &str) -> Result<Option<Value>> {
        read_opt(&self.file(id, "end.json"))?
            .map(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| StorageError::Io(format!("end of tape {id:?}: {e}")))
            })
            .transpose()
    }

    /// Intact frames of the tape's file: (count, bytes, valid length).
    fn scan(&self, id: &str) -> Result<(u64, u64, u64)> {
        let data = read_opt(&self.file(id, "frames"))?.ok_or_else(|| not_found(id))?;
        let (mut count, mut bytes, mut at) = (0, 0, 0);
        while let Some((f, end)) = decode(&data, at) {
            count += 1;
            bytes += f.payload.len() as u64;
            at = end;
        }
        Ok((count, bytes, at as u64))
    }

    fn found(&self, id: &str) -> Result<Option<Found>> {
        check_id(id)?;
        let Some((header, stamp)) = self.header(id)? else {
            return Ok(None);
        };
        let info = match self.end(id)? {
            Some(end) => TapeInfo {
                header,
                state: state_from(end["state"].as_str().unwrap_or("")),
                frame_count: end["frame_count"].as_u64().unwrap_or(0),
                byte_count: end["byte_count"].as_u64().unwrap_or(0),
                ended_at: end["ended_at"].as_u64(),
                digest: end["digest"].as_str().map(String::from),
                seal: opt_bytes(&end["seal"])
                    .ok_or_else(|| StorageError::Io(format!("end of tape {id:?} is damaged")))?,
            },
            None => {
                let (count, bytes, _) = self.scan(id)?;
                TapeInfo {
                    header,
                    state: TapeState::Recording,
                    frame_count: count,
                    byte_count: bytes,
                    ended_at: None,
                    digest: None,
                    seal: None,
                }
            }
        };
        Ok(Some(Found { stamp, info }))
    }

    /// Header, state and totals of a tape.
    pub fn info(&self, id: &str) -> Result<TapeInfo> {
        self.found(id)?.map(|f| f.info).ok_or_else(|| not_found(id))
    }

    /// Builds a tape directory in the trash with `fill`, then renames it into
    /// place; `already-exists` if the id was taken meanwhile.
    fn build(&self, id: &str, fill: impl FnOnce(&PathBuf) -> io::Result<()>) -> Result<u128> {
        check_id(id)?;
        if self.header(id)?.is_some() {
            return Err(StorageError::AlreadyExists(format!(
                "tape {id:?} exists already"
            )));
        }
        let stamp = now_ns();
        let staging = self.trash.join(format!("new-{id}-{}", unique()));
        let r = fs::create_dir(&staging)
            .and_then(|_| fill(&staging))
            .and_then(|_| fs::rename(&staging, self.tapes.join(id)));
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&staging);
            let taken = matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
            ) || self.header(id)?.is_some();
            return Err(if taken {
                StorageError::AlreadyExists(format!("tape {id:?} exists already"))
            } else {
                io_err(&format!("create tape {id:?}"), e)
            });
        }
        Ok(stamp)
    }

    fn header_file(header: &TapeHeader, stamp: u128) -> Vec<u8> {
        json!({ "format": 2, "header": header_json(header), "stamp": stamp.to_string() })
            .to_string()
            .into_bytes()
    }

    /// A new, empty recording tape.
    pub fn create(&self, header: TapeHeader) -> Result<Writer> {
        let id = header.id.clone();
        let fsync = self.fsync;
        let stamp = now_ns();
        self.build(&id, |dir| {
            for f in ["frames", "terms", "seek"] {
                File::create(dir.join(f))?;
            }
            write_atomic(
                &dir.join("header.json"),
                &Self::header_file(&header, stamp),
                fsync,
            )
        })?;
        Ok(Writer {
            id,
            count: 0,
            bytes: 0,
            len: 0,
            known: None,
            prune: false,
        })
    }

    /// Continues a recording tape, cutting off a torn record at its end.
    pub fn resume(&self, id: &str) -> Result<Writer> {
        check_id(id)?;
        if self.header(id)?.is_none() {
            return Err(not_found(id));
        }
        if self.end(id)?.is_some() {
            return Err(invalid(format!(
                "tape {id:?} has ended; only a recording tape can be resumed"
            )));
        }
        let (count, bytes, len) = self.scan(id)?;
        let path = self.file(id, "frames");
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&format!("open {}", path.display()), e))?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) > len {
            f.set_len(len)
                .map_err(|e| io_err(&format!("repair {}", path.display()), e))?;
        }
        self.prune_terms(id, count)?;
        Ok(Writer {
            id: id.into(),
            count,
            bytes,
            len,
            known: None,
            prune: false,
        })
    }

    /// Stores a whole tape at once: all of it or nothing.
    pub fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo> {
        let id = header.id.clone();
        check_id(&id)?;
        check_consecutive(frames, 0)?;
        let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
        check_summary(summary, frames.len() as u64, bytes, &id)?;
        let fsync = self.fsync;
        let stamp = now_ns();
        self.build(&id, |dir| {
            let mut data = Vec::new();
            for f in frames {
                encode(f, &mut data);
            }
            let mut file = File::create(dir.join("frames"))?;
            file.write_all(&data)?;
            if fsync {
                file.sync_data()?;
            }
            fs::write(dir.join("terms"), terms_of(frames, &mut HashSet::new()))?;
            fs::write(dir.join("seek"), seek_entries(frames, 0))?;
            let end = summary_end(end_state(reason), summary);
            write_atomic(&dir.join("end.json"), &end, fsync)?;
            write_atomic(
                &dir.join("header.json"),
                &Self::header_file(&header, stamp),
                fsync,
            )
        })?;
        self.info(&id)
    }

    /// Removes a tape: renamed into the trash first, so it vanishes at once.
    pub fn delete(&self, id: &str) -> Result<()> {
        check_id(id)?;
        if self.header(id)?.is_none() {
            return Err(not_found(id));
        }
        let gone = self.trash.join(format!("{id}-{}", unique()));
        fs::rename(self.tapes.join(id), &gone).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => not_found(id),
            _ => io_err(&format!("delete tape {id:?}"), e),
        })?;
        let _ = fs::remove_dir_all(gone);
        Ok(())
    }

    /// Frames from `from_seq` on, bounded by count and bytes.
    pub fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>> {
        if max_frames == 0 {
            return Err(invalid(format!(
                "read of tape {id:?}: max-frames must be at least 1"
            )));
        }
        check_id(id)?;
        if self.header(id)?.is_none() {
            return Err(not_found(id));
        }
        let path = self.file(id, "frames");
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found(id)),
            Err(e) => return Err(io_err(&format!("open {}", path.display()), e)),
        };
        let read_err = |e| io_err(&format!("read {}", path.display()), e);
        // Start at the last indexed frame at or before `from_seq`, then hop
        // over earlier frames by their headers without reading payloads.
        let mut offset = self.seek_start(id, from_seq)?;
        loop {
            let mut head = [0u8; HEADER];
            file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
            if read_full(&mut file, &mut head).map_err(read_err)? < HEADER {
                return Ok(Vec::new());
            }
            if u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")) >= from_seq {
                break;
            }
            offset += (HEADER
                + u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize)
                as u64;
        }
        file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
        let mut out = Vec::new();
        let mut total = 0u64;
        let mut buf = Vec::new();
        let mut at = 0;
        loop {
            match decode(&buf, at) {
                Some((f, end)) => {
                    at = end;
                    if !out.is_empty() && total + f.payload.len() as u64 > max_bytes {
                        break;
                    }
                    total += f.payload.len() as u64;
                    out.push(f);
                    if out.len() >= max_frames as usize || total >= max_bytes {
                        break;
                    }
                }
                None => {
                    buf.drain(..at);
                    at = 0;
                    let old = buf.len();
                    buf.resize(old + 256 * 1024, 0);
                    let n = read_full(&mut file, &mut buf[old..]).map_err(read_err)?;
                    buf.truncate(old + n);
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The offset of the last indexed frame at or before `from_seq`, if that
    /// record really is the frame; else 0.
    fn seek_start(&self, id: &str, from_seq: u64) -> Result<u64> {
        let Some(idx) = read_opt(&self.file(id, "seek"))? else {
            return Ok(0);
        };
        let best = idx
            .chunks_exact(16)
            .map(|e| {
                (
                    u64::from_le_bytes(e[0..8].try_into().expect("8 bytes")),
                    u64::from_le_bytes(e[8..16].try_into().expect("8 bytes")),
                )
            })
            .take_while(|(seq, _)| *seq <= from_seq)
            .last();
        let Some((seq, offset)) = best else {
            return Ok(0);
        };
        let ok = (|| -> io::Result<bool> {
            let mut f = File::open(self.file(id, "frames"))?;
            f.seek(SeekFrom::Start(offset))?;
            let mut head = [0u8; HEADER];
            Ok(read_full(&mut f, &mut head)? == HEADER
                && u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")) == seq)
        })();
        Ok(if ok.unwrap_or(false) { offset } else { 0 })
    }

    fn all(&self) -> Result<Vec<Found>> {
        let entries = fs::read_dir(&self.tapes).map_err(|e| io_err("list tapes", e))?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match self.found(&name) {
                Ok(Some(f)) => out.push(f),
                Ok(None) | Err(StorageError::NotFound(_)) | Err(StorageError::InvalidInput(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One page of matching tapes, newest first, stable across pages: the
    /// cursor carries the first page's time, and later tapes are left out.
    pub fn page(
        &self,
        matches: &dyn Fn(&TapeInfo) -> bool,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(format!(
                "limit {limit} is out of range 1..={MAX_LIMIT}"
            )));
        }
        let (snapshot, after) = match cursor {
            None => (now_ns(), None),
            Some(c) => parse_cursor(c)?,
        };
        let key = |i: &TapeInfo| (i.header.created_at, i.header.id.clone());
        let mut infos: Vec<TapeInfo> = self
            .all()?
            .into_iter()
            .filter(|f| f.stamp <= snapshot && matches(&f.info))
            .map(|f| f.info)
            .filter(|i| after.as_ref().is_none_or(|a| key(i) < *a))
            .collect();
        infos.sort_by_key(|i| std::cmp::Reverse(key(i)));
        let more = infos.len() > limit as usize;
        infos.truncate(limit as usize);
        let next_cursor = if more {
            infos
                .last()
                .map(|l| format!("rs1:{snapshot}:{}:{}", l.header.created_at, l.header.id))
        } else {
            None
        };
        Ok(TapePage {
            tapes: infos,
            next_cursor,
        })
    }

    /// The terms of a tape with `count` frames stored (its term index):
    /// those of `terms` whose frame is stored, and for a tape of the previous
    /// format `method:<m>` for each line of `methods` (the JSON-RPC methods
    /// that format found itself; `method:` is the host's term for a method).
    pub fn terms(&self, id: &str, count: u64) -> HashSet<String> {
        let read = |name| read_opt(&self.file(id, name)).ok().flatten();
        let mut terms: HashSet<String> = read("terms")
            .map(|t| {
                term_lines(&t)
                    .filter(|(_, _, seq)| *seq < count)
                    .map(|(_, term, _)| term)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(old) = read("methods") {
            terms.extend(index_lines(&old).map(|m| format!("method:{m}")));
        }
        terms
    }

    /// Does the tape, which has `count` frames, carry every one of `wanted`
    /// (on any of its frames)?
    pub fn has_terms(&self, id: &str, count: u64, wanted: &[String]) -> bool {
        if wanted.is_empty() {
            return true;
        }
        let terms = self.terms(id, count);
        wanted.iter().all(|t| terms.contains(t))
    }

    /// Drops the lines of `terms` whose frame is not stored (seq at or above
    /// `count`), left by an interrupted or failed append.
    fn prune_terms(&self, id: &str, count: u64) -> Result<()> {
        let path = self.file(id, "terms");
        let Some(text) = read_opt(&path)? else {
            return Ok(());
        };
        let mut kept = Vec::new();
        let mut all = 0;
        for (line, _, seq) in term_lines(&text) {
            all += line.len();
            if seq < count {
                kept.extend_from_slice(line);
            }
        }
        if kept.len() == text.len() && all == text.len() {
            return Ok(());
        }
        write_atomic(&path, &kept, self.fsync)
            .map_err(|e| io_err(&format!("repair {}", path.display()), e))
    }

    /// For each entry, what `resume` then `append` would do; an id seen
    /// earlier in the same call is `invalid-input`.
    pub fn append_many(&self, appends: &[TapeAppend]) -> Vec<Result<u64>> {
        let mut seen = HashSet::new();
        appends
            .iter()
            .map(|a| {
                if !seen.insert(a.id.as_str()) {
                    return Err(invalid(format!(
                        "tape {:?} appears more than once in one append-many",
                        a.id
                    )));
                }
                self.resume(&a.id)?.append(self, &a.frames)
            })
            .collect()
    }

    /// Does any payload of the tape contain `needle`?
    pub fn contains_text(&self, id: &str, needle: &[u8]) -> bool {
        let Ok(Some(data)) = read_opt(&self.file(id, "frames")) else {
            return false;
        };
        let mut at = 0;
        while let Some((f, end)) = decode(&data, at) {
            if needle.is_empty() || f.payload.windows(needle.len()).any(|w| w == needle) {
                return true;
            }
            at = end;
        }
        false
    }

    /// Totals over all tapes.
    pub fn stats(&self) -> Result<StorageStats> {
        let all = self.all()?;
        let mut stored = 0;
        if let Ok(dirs) = fs::read_dir(&self.tapes) {
            for d in dirs.flatten() {
                if let Ok(files) = fs::read_dir(d.path()) {
                    stored += files
                        .flatten()
                        .filter_map(|f| f.metadata().ok())
                        .map(|m| m.len())
                        .sum::<u64>();
                }
            }
        }
        Ok(StorageStats {
            tape_count: all.len() as u64,
            recording_count: all
                .iter()
                .filter(|f| f.info.state == TapeState::Recording)
                .count() as u64,
            frame_count: all.iter().map(|f| f.info.frame_count).sum(),
            byte_count: all.iter().map(|f| f.info.byte_count).sum(),
            stored_bytes: stored,
        })
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn parse_cursor(c: &str) -> Result<(u128, Option<(u64, String)>)> {
    let bad = || invalid(format!("cursor {c:?} was not issued by this provider"));
    let mut parts = c.splitn(4, ':');
    if parts.next() != Some("rs1") {
        return Err(bad());
    }
    let snapshot = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let created = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let id = parts.next().ok_or_else(bad)?;
    check_id(id).map_err(|_| bad())?;
    Ok((snapshot, Some((created, id.to_string()))))
}

/// An open recording: where its frame file ends.
pub struct Writer {
    id: String,
    /// Frames stored (the next seq).
    pub count: u64,
    bytes: u64,
    len: u64,
    known: Option<HashSet<String>>,
    /// An append failed after writing index lines: drop them first.
    prune: bool,
}

impl Writer {
    fn still_recording(&self, s: &Store) -> Result<Option<Value>> {
        if s.header(&self.id)?.is_none() {
            return Err(StorageError::NotFound(format!(
                "tape {:?} was deleted",
                self.id
            )));
        }
        s.end(&self.id)
    }

    /// Appends the frames at or after `count`, all or nothing.
    pub fn append(&mut self, s: &Store, frames: &[Frame]) -> Result<u64> {
        let Some(first) = frames.first() else {
            return Ok(self.count);
        };
        if self.still_recording(s)?.is_some() {
            return Err(invalid(format!(
                "tape {:?} has ended; nothing can be appended",
                self.id
            )));
        }
        check_consecutive(frames, first.seq)?;
        let fresh: Vec<Frame> = frames
            .iter()
            .filter(|f| f.seq >= self.count)
            .cloned()
            .collect();
        let Some(first) = fresh.first() else {
            return Ok(self.count);
        };
        if first.seq != self.count {
            return Err(invalid(format!(
                "append to tape {:?}: first new frame has seq {}, expected {} (a gap)",
                self.id, first.seq, self.count
            )));
        }
        if self.prune {
            s.prune_terms(&self.id, self.count)?;
            self.prune = false;
        }
        let mut data = Vec::new();
        for f in &fresh {
            encode(f, &mut data);
        }
        let known = match &mut self.known {
            Some(k) => k,
            None => self.known.insert(s.terms(&self.id, self.count)),
        };
        let terms = terms_of(&fresh, known);
        // The index lines first (they count only once their frames are
        // stored), then the frames, then the seek entries (checked before use).
        let path = s.file(&self.id, "frames");
        let written = append_file(&s.file(&self.id, "terms"), &terms)
            .and_then(|_| OpenOptions::new().write(true).open(&path))
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(self.len))?;
                f.write_all(&data)
            })
            .and_then(|_| append_file(&s.file(&self.id, "seek"), &seek_entries(&fresh, self.len)));
        if let Err(e) = written {
            // None of the batch is stored: the frames are cut off again
            // (readers ignore a torn tail anyway), and the writer forgets the
            // terms it thought indexed and drops their lines before its next
            // append.
            if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                let _ = f.set_len(self.len);
            }
            self.known = None;
            self.prune = !terms.is_empty();
            return Err(io_err(&format!("append to tape {:?}", self.id), e));
        }
        self.count += fresh.len() as u64;
        self.bytes += fresh.iter().map(|f| f.payload.len() as u64).sum::<u64>();
        self.len += data.len() as u64;
        Ok(self.count)
    }

    /// Ends the tape, checking the summary against what is stored.
    pub fn finish(
        &mut self,
        s: &Store,
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo> {
        if let Some(end) = self.still_recording(s)? {
            let same = state_from(end["state"].as_str().unwrap_or("")) == end_state(reason)
                && end["frame_count"].as_u64() == Some(summary.frame_count)
                && end["byte_count"].as_u64() == Some(summary.byte_count)
                && end["digest"].as_str().map(String::from) == summary.digest
                && opt_bytes(&end["seal"]) == Some(summary.seal.clone());
            return if same {
                s.info(&self.id)
            } else {
                Err(invalid(format!(
                    "tape {:?} has ended already, differently",
                    self.id
                )))
            };
        }
        check_summary(summary, self.count, self.bytes, &self.id)?;
        let end = summary_end(end_state(reason), summary);
        let r = (|| {
            if s.fsync {
                File::open(s.file(&self.id, "frames"))?.sync_data()?;
            }
            write_atomic(&s.file(&self.id, "end.json"), &end, s.fsync)
        })();
        r.map_err(|e| io_err(&format!("finish tape {:?}", self.id), e))?;
        s.info(&self.id)
    }

    /// Gives up the recording, keeping its frames. Idempotent.
    pub fn abort(&mut self, s: &Store) -> Result<()> {
        if self.still_recording(s)?.is_some() {
            return Ok(());
        }
        let ended_at = (now_ns() / 1000) as u64;
        let end = end_json(
            TapeState::Aborted,
            self.count,
            self.bytes,
            ended_at,
            &None,
            None,
        );
        write_atomic(&s.file(&self.id, "end.json"), &end, s.fsync)
            .map_err(|e| io_err(&format!("abort tape {:?}", self.id), e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// A store in a fresh directory under the system's temporary one.
    fn store() -> (Store, PathBuf) {
        let root = std::env::temp_dir().join(format!("rust-template-{}", unique()));
        let config = json!({ "root": root, "fsync": false }).to_string();
        (Store::open(&config).unwrap(), root)
    }

    fn header(id: &str, envelope: Option<Vec<u8>>) -> TapeHeader {
        TapeHeader {
            id: id.into(),
            session_id: "s".into(),
            name: "n".into(),
            tags: vec![("k".into(), "v".into())],
            created_at: 7,
            envelope,
        }
    }

    fn frame(seq: u64, terms: &[&str], attributes: &[(&str, &str)]) -> Frame {
        Frame {
            seq,
            timestamp: 100 + seq,
            direction: Direction::ServerToClient,
            payload: format!("\x00opaque {seq} \u{ff}").into_bytes(),
            flags: FrameFlags::NOT_JSON,
            terms: terms.iter().map(|t| t.to_string()).collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn summary(frames: &[Frame], seal: Option<Vec<u8>>) -> TapeSummary {
        TapeSummary {
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at: 99,
            digest: Some("ab".repeat(32)),
            seal,
        }
    }

    fn terms(v: &[&str]) -> Vec<String> {
        v.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn frames_header_and_summary_come_back_verbatim() {
        let (s, root) = store();
        let envelope = Some((0..=255).collect::<Vec<u8>>());
        let frames = vec![
            frame(
                0,
                &["method:initialize", "z", "a"],
                &[("t", "http"), ("t", "")],
            ),
            frame(1, &[], &[]),
            frame(2, &[], &[("end", "yes")]),
        ];
        let mut w = s.create(header("t1", envelope.clone())).unwrap();
        assert_eq!(w.append(&s, &frames[..2]).unwrap(), 2);
        assert_eq!(w.append(&s, &frames[1..]).unwrap(), 3);
        // A fresh writer (another instance) sees the same.
        assert_eq!(s.resume("t1").unwrap().count, 3);
        assert_eq!(s.read_frames("t1", 0, 10, u64::MAX).unwrap(), frames);
        assert_eq!(s.read_frames("t1", 1, 1, u64::MAX).unwrap(), frames[1..2]);
        let seal = Some(vec![1, 2, 0, 255]);
        let info = w.finish(&s, &summary(&frames, seal.clone()), EndReason::Completed);
        let info = info.unwrap();
        assert_eq!(info.header, header("t1", envelope.clone()));
        assert_eq!(
            (info.seal.clone(), info.state),
            (seal.clone(), TapeState::Finished)
        );
        assert_eq!(s.info("t1").unwrap(), info);
        // Finishing again with the same summary is idempotent; another seal is not the same.
        let again = w.finish(&s, &summary(&frames, seal.clone()), EndReason::Completed);
        assert_eq!(again.unwrap(), info);
        let other = w.finish(&s, &summary(&frames, None), EndReason::Completed);
        assert!(matches!(other, Err(StorageError::InvalidInput(_))));

        let saved = s
            .save(
                header("t2", None),
                &frames,
                &summary(&frames, seal.clone()),
                EndReason::Crashed,
            )
            .unwrap();
        assert_eq!((saved.header.envelope, saved.seal), (None, seal));
        assert_eq!(s.read_frames("t2", 0, 10, u64::MAX).unwrap(), frames);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn terms_match_by_exact_equality_all_of_them_on_any_frame() {
        let (s, root) = store();
        let mut w = s.create(header("a", None)).unwrap();
        let frames = [
            frame(0, &["method:tools/call", "tool:x"], &[]),
            frame(1, &["method:ping"], &[]),
        ];
        w.append(&s, &frames).unwrap();
        s.create(header("b", None)).unwrap();
        let count = s.info("a").unwrap().frame_count;
        let hit = |t: &[&str]| s.has_terms("a", count, &terms(t));
        assert!(hit(&[]));
        assert!(hit(&["method:tools/call", "method:ping"]));
        assert!(hit(&["tool:x", "method:ping", "tool:x"]));
        assert!(!hit(&["method:tools/call", "method:other"]));
        assert!(!hit(&["method:tools"]));
        assert!(!hit(&["METHOD:ping"]));
        assert!(!hit(&["method:ping "]));
        assert!(s.has_terms("b", 0, &[]));
        assert!(!s.has_terms("b", 0, &terms(&["method:ping"])));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn append_many_gives_one_independent_result_per_entry() {
        let (s, root) = store();
        s.create(header("a", None)).unwrap();
        let mut b = s.create(header("b", None)).unwrap();
        b.append(&s, &[frame(0, &[], &[])]).unwrap();
        let mut done = s.create(header("done", None)).unwrap();
        done.finish(&s, &summary(&[], None), EndReason::Completed)
            .unwrap();
        let entry = |id: &str, frames: Vec<Frame>| TapeAppend {
            id: id.into(),
            frames,
        };
        let results = s.append_many(&[
            entry("a", vec![frame(0, &["x"], &[]), frame(1, &[], &[])]),
            entry("b", vec![frame(5, &[], &[])]),
            entry("missing", vec![frame(0, &[], &[])]),
            entry("a", vec![frame(2, &[], &[])]),
            entry("done", vec![frame(0, &[], &[])]),
            entry("../x", vec![]),
            entry("b", vec![frame(0, &[], &[]), frame(1, &["y"], &[])]),
        ]);
        assert_eq!(results.len(), 7);
        assert_eq!(results[0], Ok(2));
        assert!(matches!(results[1], Err(StorageError::InvalidInput(_))));
        assert!(matches!(results[2], Err(StorageError::NotFound(_))));
        assert!(
            matches!(&results[3], Err(StorageError::InvalidInput(m)) if m.contains("more than once"))
        );
        assert!(matches!(results[4], Err(StorageError::InvalidInput(_))));
        assert!(matches!(results[5], Err(StorageError::InvalidInput(_))));
        assert!(matches!(results[6], Err(StorageError::InvalidInput(_))));
        assert_eq!(s.info("a").unwrap().frame_count, 2);
        assert_eq!(s.info("b").unwrap().frame_count, 1);
        assert!(s.has_terms("a", s.info("a").unwrap().frame_count, &terms(&["x"])));
        assert!(!s.has_terms("b", s.info("b").unwrap().frame_count, &terms(&["y"])));
        // A redelivery is skipped; an empty entry changes nothing.
        let again = s.append_many(&[entry("b", vec![frame(0, &[], &[]), frame(1, &[], &[])])]);
        assert_eq!(again, vec![Ok(2)]);
        assert_eq!(s.append_many(&[entry("a", vec![])]), vec![Ok(2)]);
        assert_eq!(s.append_many(&[]), vec![]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn finish_aborted_records_the_summary() {
        let (s, root) = store();
        let frames = [frame(0, &[], &[])];
        let mut w = s.create(header("t", None)).unwrap();
        w.append(&s, &frames).unwrap();
        let sum = summary(&frames, Some(vec![9; 64]));
        let bad = TapeSummary {
            frame_count: 2,
            ..sum.clone()
        };
        assert!(matches!(
            w.finish(&s, &bad, EndReason::Aborted),
            Err(StorageError::InvalidInput(_))
        ));
        let info = w.finish(&s, &sum, EndReason::Aborted).unwrap();
        assert_eq!(info.state, TapeState::Aborted);
        assert_eq!(info.ended_at, Some(sum.ended_at));
        assert_eq!((info.digest, info.seal), (sum.digest, sum.seal));
        // abort afterwards changes nothing.
        w.abort(&s).unwrap();
        assert_eq!(s.info("t").unwrap().seal, Some(vec![9; 64]));
        fs::remove_dir_all(root).unwrap();
    }

    /// A record of the previous format: 28-byte header, the payload as body.
    fn old_record(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(100 + seq).to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn tapes_of_the_previous_format_are_read_and_searched() {
        let (s, root) = store();
        let dir = root.join("tapes/old");
        fs::create_dir_all(&dir).unwrap();
        let header = r#"{"format":1,"header":{"id":"old","session_id":"s","name":"n","tags":[["k","v"]],"created_at":7},"stamp":"1"}"#;
        fs::write(dir.join("header.json"), header).unwrap();
        let payloads: [&[u8]; 2] = [br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, b"{}"];
        let mut data = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            old_record(i as u64, p, &mut data);
        }
        fs::write(dir.join("frames"), &data).unwrap();
        fs::write(dir.join("methods"), "\"tools/list\"\n").unwrap();
        fs::write(dir.join("seek"), [0u8; 16]).unwrap();
        let info = s.info("old").unwrap();
        let bytes: usize = payloads.iter().map(|p| p.len()).sum();
        assert_eq!((info.frame_count, info.byte_count), (2, bytes as u64));
        assert_eq!((info.header.envelope, info.seal), (None, None));
        let frames = s.read_frames("old", 0, 10, u64::MAX).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].payload, payloads[0]);
        assert!(frames[0].terms.is_empty() && frames[0].attributes.is_empty());
        assert!(s.has_terms(
            "old",
            s.info("old").unwrap().frame_count,
            &terms(&["method:tools/list"])
        ));
        assert!(!s.has_terms(
            "old",
            s.info("old").unwrap().frame_count,
            &terms(&["tools/list"])
        ));
        // It can be continued in the new format, and ended.
        let mut w = s.resume("old").unwrap();
        assert_eq!(w.append(&s, &[frame(2, &["method:ping"], &[])]).unwrap(), 3);
        assert!(s.has_terms(
            "old",
            s.info("old").unwrap().frame_count,
            &terms(&["method:tools/list", "method:ping"])
        ));
        let all = s.read_frames("old", 0, 10, u64::MAX).unwrap();
        let sum = summary(&all, None);
        w.finish(&s, &sum, EndReason::Completed).unwrap();
        // The end file of the previous format has no seal.
        fs::write(
            dir.join("end.json"),
            r#"{"state":"finished","frame_count":3,"byte_count":60,"ended_at":5,"digest":null}"#,
        )
        .unwrap();
        assert_eq!(s.info("old").unwrap().seal, None);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn index_lines_of_frames_not_stored_count_for_nothing_and_resume_drops_them() {
        let (s, root) = store();
        let mut w = s.create(header("t", None)).unwrap();
        w.append(&s, &[frame(0, &["kept"], &[])]).unwrap();
        // What an append interrupted between its index lines and its frames
        // leaves behind.
        append_file(&s.file("t", "terms"), b"[\"left\",1]\n[\"torn\",").unwrap();
        assert!(!s.has_terms("t", 1, &terms(&["left"])));
        assert!(s.has_terms("t", 1, &terms(&["kept"])));
        let mut w = s.resume("t").unwrap();
        let text = fs::read(s.file("t", "terms")).unwrap();
        assert_eq!(text, b"[\"kept\",0]\n");
        // Frame 1 arrives without the term: the tape still does not match it.
        assert_eq!(w.append(&s, &[frame(1, &[], &[])]).unwrap(), 2);
        assert!(!s.has_terms("t", 2, &terms(&["left"])));
        fs::remove_dir_all(root).unwrap();
    }
}
