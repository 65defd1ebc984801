//! The tape file: one append-only file of records per tape.
//!
//! ```text
//! header  (once, first)    JSON {format, nonce, header}
//! method  (0..)            prev-method-offset u64 | method name (UTF-8)
//! frame   (0..)            seq u64 | timestamp u64 | direction u8 | flags u8 | payload
//! end     (at most once)   JSON {end: EndInfo, note}
//! ```
//!
//! A `method` record is written immediately before the first frame whose
//! JSON-RPC method it names, in the same write. Each points back to the
//! previous one, so the set of methods of a tape can be collected by walking
//! the chain from the last one (O(distinct methods), not O(tape)). A method
//! record not followed by a valid frame is part of a torn tail and does not
//! count.
//!
//! The frame record has a constant overhead ([`FRAME_OVERHEAD`]), so the byte
//! offset of frame `s` determines the payload bytes before it; see
//! `seek.rs`.

use crate::errors::{IoContext, io_error};
use crate::record::{self, Next, RecordReader};
use crate::search;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;
use tapedeck_types::{Direction, Frame, StorageError, TapeHeader, TapeState};

/// Record kind: the tape header.
pub(crate) const KIND_HEADER: u8 = 0x10;
/// Record kind: one frame.
pub(crate) const KIND_FRAME: u8 = 0x11;
/// Record kind: a JSON-RPC method first seen in the next frame.
pub(crate) const KIND_METHOD: u8 = 0x12;
/// Record kind: the end of the tape.
pub(crate) const KIND_END: u8 = 0x13;

/// Format version written in every header.
pub(crate) const FORMAT: u32 = 1;
/// Largest payload accepted in one frame.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
/// Bytes of a frame body before the payload.
const FRAME_FIXED: usize = 18;
/// Largest record body in a tape file.
pub(crate) const MAX_BODY: u32 = (MAX_PAYLOAD + FRAME_FIXED) as u32;
/// Bytes a frame record takes besides its payload.
pub(crate) const FRAME_OVERHEAD: u64 = (record::HEADER_LEN + FRAME_FIXED) as u64;
/// Buffer size for streaming reads.
const READ_BUF: usize = 64 << 10;

/// Body of the header record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeaderBody {
    /// [`FORMAT`].
    pub format: u32,
    /// The tape incarnation's token.
    pub nonce: u64,
    /// The header as given.
    pub header: TapeHeader,
}

/// How and when a tape ended: the body of the end record, and what the
/// catalog keeps about an ended tape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EndInfo {
    /// Finished, aborted or crashed.
    pub state: TapeState,
    /// Frames stored.
    pub frame_count: u64,
    /// Payload bytes stored.
    pub byte_count: u64,
    /// When the tape ended.
    pub ended_at_us: u64,
    /// The host's digest, verbatim.
    pub digest: Option<String>,
    /// Distinct JSON-RPC methods of the tape's frames, sorted.
    pub methods: Vec<String>,
}

/// Body of the end record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndBody {
    /// The end.
    pub end: EndInfo,
    /// The reason given to `abort`, if any (kept only in the tape file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Appends a header record.
pub(crate) fn encode_header(body: &HeaderBody, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(body).expect("headers serialize");
    record::encode(KIND_HEADER, &json, out);
}

/// Appends an end record.
pub(crate) fn encode_end(body: &EndBody, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(body).expect("ends serialize");
    record::encode(KIND_END, &json, out);
}

/// Appends a method record.
pub(crate) fn encode_method(prev: u64, name: &str, out: &mut Vec<u8>) {
    record::encode_parts(KIND_METHOD, &[&prev.to_le_bytes(), name.as_bytes()], out);
}

/// Appends a frame record.
pub(crate) fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let mut head = [0u8; FRAME_FIXED];
    head[0..8].copy_from_slice(&frame.seq.to_le_bytes());
    head[8..16].copy_from_slice(&frame.timestamp_us.to_le_bytes());
    head[16] = match frame.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    };
    head[17] = u8::from(frame.not_json);
    record::encode_parts(KIND_FRAME, &[&head, &frame.payload], out);
}

/// The sequence number in a frame body, if the body is well formed.
pub(crate) fn frame_seq(body: &[u8]) -> Option<u64> {
    if body.len() < FRAME_FIXED || body[16] > 1 || body[17] > 1 {
        return None;
    }
    Some(u64::from_le_bytes(body[0..8].try_into().expect("8 bytes")))
}

/// The payload in a frame body (call after [`frame_seq`] succeeded).
pub(crate) fn frame_payload(body: &[u8]) -> &[u8] {
    &body[FRAME_FIXED..]
}

/// Decodes a frame body.
pub(crate) fn decode_frame(body: &[u8]) -> Option<Frame> {
    let seq = frame_seq(body)?;
    Some(Frame {
        seq,
        timestamp_us: u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")),
        direction: if body[16] == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        },
        payload: body[FRAME_FIXED..].to_vec(),
        not_json: body[17] == 1,
        terms: Vec::new(),
        attributes: Vec::new(),
    })
}

fn decode_method(body: &[u8]) -> Option<(u64, String)> {
    if body.len() < 8 {
        return None;
    }
    let prev = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let name = String::from_utf8(body[8..].to_vec()).ok()?;
    Some((prev, name))
}

/// An open tape file whose header has been checked.
pub(crate) struct TapeFile {
    /// The open file (positioned anywhere).
    pub file: File,
    /// The header record.
    pub header: HeaderBody,
    /// Offset just after the header record: where frame 0 starts.
    pub header_end: u64,
    /// File length when opened.
    pub len: u64,
}

/// Why a tape file could not be opened for reading.
pub(crate) enum OpenError {
    /// No such file.
    Missing,
    /// The file has no valid header (a torn creation or foreign file).
    NoHeader,
    /// The file belongs to another incarnation of the id.
    OtherNonce,
    /// Any other failure.
    Storage(StorageError),
}

impl TapeFile {
    /// Opens `path` and checks its header; with `nonce`, also that the file is
    /// that incarnation of the tape.
    pub(crate) fn open(path: &Path, nonce: Option<u64>, write: bool) -> Result<Self, OpenError> {
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OpenError::Missing),
            Err(e) => {
                return Err(OpenError::Storage(io_error("open", path, &e)));
            }
        };
        let len = file
            .metadata()
            .ctx("inspect", path)
            .map_err(OpenError::Storage)?
            .len();
        let mut reader =
            RecordReader::new(BufReader::with_capacity(4096, &mut file), 0, len, MAX_BODY);
        let next = reader
            .next()
            .ctx("read the header of", path)
            .map_err(OpenError::Storage)?;
        if next != Next::Record(KIND_HEADER) {
            return Err(OpenError::NoHeader);
        }
        let header: HeaderBody =
            serde_json::from_slice(reader.body()).map_err(|_| OpenError::NoHeader)?;
        if header.format != FORMAT {
            return Err(OpenError::Storage(StorageError::io(format!(
                "tape file {} has format {}; this fs provider reads format {FORMAT}",
                path.display(),
                header.format
            ))));
        }
        if let Some(n) = nonce
            && n != header.nonce
        {
            return Err(OpenError::OtherNonce);
        }
        let header_end = reader.pos();
        Ok(TapeFile {
            file,
            header,
            header_end,
            len,
        })
    }

    /// A record reader from `pos` to the length seen at open.
    pub(crate) fn reader_at(
        &mut self,
        pos: u64,
        path: &Path,
    ) -> Result<RecordReader<BufReader<&mut File>>, StorageError> {
        self.file.seek(SeekFrom::Start(pos)).ctx("seek in", path)?;
        Ok(RecordReader::new(
            BufReader::with_capacity(READ_BUF, &mut self.file),
            pos,
            self.len,
            MAX_BODY,
        ))
    }

    /// Checks that the record at `offset` is frame `seq` (used to trust a
    /// seek entry).
    pub(crate) fn frame_at(&mut self, offset: u64, seq: u64, path: &Path) -> bool {
        if offset < self.header_end || offset >= self.len {
            return false;
        }
        let Ok(mut r) = self.reader_at(offset, path) else {
            return false;
        };
        matches!(r.next(), Ok(Next::Record(KIND_FRAME))) && frame_seq(r.body()) == Some(seq)
    }

    /// Collects the method names by walking the method chain back from
    /// `last` (0 = none).
    pub(crate) fn methods_from_chain(
        &mut self,
        mut last: u64,
        path: &Path,
    ) -> Result<HashSet<String>, StorageError> {
        let mut out = HashSet::new();
        while last != 0 {
            let corrupt = || {
                StorageError::io(format!(
                    "tape file {} has a broken method record at offset {last}",
                    path.display()
                ))
            };
            if last < self.header_end || last >= self.len {
                return Err(corrupt());
            }
            self.file.seek(SeekFrom::Start(last)).ctx("seek in", path)?;
            let mut r = RecordReader::new(&mut self.file, last, self.len, MAX_BODY);
            if r.next().ctx("read", path)? != Next::Record(KIND_METHOD) {
                return Err(corrupt());
            }
            let (prev, name) = decode_method(r.body()).ok_or_else(corrupt)?;
            if prev >= last {
                return Err(corrupt());
            }
            out.insert(name);
            last = prev;
        }
        Ok(out)
    }
}

/// Where a scan starts: a frame boundary and the totals before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanStart {
    /// Offset of the record where scanning starts.
    pub offset: u64,
    /// Sequence number of the next frame.
    pub next_seq: u64,
    /// Payload bytes before `offset`.
    pub bytes: u64,
    /// Offset of the last method record before `offset` (0 = none).
    pub last_method: u64,
}

/// What a scan found.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// End of the last frame (or header, or end) record that counts: where
    /// the next append goes. Anything after it is a torn tail.
    pub valid_end: u64,
    /// Frames stored.
    pub next_seq: u64,
    /// Payload bytes stored.
    pub bytes: u64,
    /// Offset of the last method record that counts (0 = none).
    pub last_method: u64,
    /// The end record, if the tape has ended.
    pub end: Option<EndBody>,
    /// Frame offsets seen at seek-index positions: `(seq, offset, bytes
    /// before, last method before)`.
    pub checkpoints: Vec<ScanStart>,
    /// The scan stopped at an invalid or incomplete record (not at the clean
    /// end of the file or at the end record).
    pub torn: bool,
}

/// Scans records from `start` to the end of `tape` (as seen at open),
/// counting frames and finding the end record. Never fails on bad data: it
/// stops there and reports `torn`. With `every` > 0, records frame positions
/// whose seq is a multiple of it.
pub(crate) fn scan(
    tape: &mut TapeFile,
    start: ScanStart,
    every: u64,
    path: &Path,
) -> Result<Progress, StorageError> {
    let mut p = Progress {
        valid_end: start.offset,
        next_seq: start.next_seq,
        bytes: start.bytes,
        last_method: start.last_method,
        end: None,
        checkpoints: Vec::new(),
        torn: false,
    };
    let mut pending_method = None;
    let mut r = tape.reader_at(start.offset, path)?;
    loop {
        let at = r.pos();
        match r.next().ctx("read", path)? {
            Next::Record(KIND_METHOD) => {
                pending_method = Some(at);
            }
            Next::Record(KIND_FRAME) => {
                let Some(seq) = frame_seq(r.body()) else {
                    p.torn = true;
                    break;
                };
                if seq != p.next_seq {
                    p.torn = true;
                    break;
                }
                if let Some(m) = pending_method.take() {
                    p.last_method = m;
                }
                if every > 0 && seq.is_multiple_of(every) {
                    p.checkpoints.push(ScanStart {
                        offset: at,
                        next_seq: seq,
                        bytes: p.bytes,
                        last_method: p.last_method,
                    });
                }
                p.next_seq += 1;
                p.bytes += frame_payload(r.body()).len() as u64;
                p.valid_end = r.pos();
            }
            Next::Record(KIND_END) => {
                match serde_json::from_slice::<EndBody>(r.body()) {
                    Ok(end) => {
                        p.end = Some(end);
                        p.valid_end = r.pos();
                    }
                    Err(_) => p.torn = true,
                }
                break;
            }
            Next::Eof => {
                // A method record right before the end has no frame yet.
                p.torn = pending_method.is_some();
                break;
            }
            Next::Record(_) | Next::Incomplete | Next::Invalid => {
                p.torn = true;
                break;
            }
        }
    }
    Ok(p)
}

/// What [`for_each_frame`] is told about the frame it is given.
pub(crate) enum Flow {
    /// Keep going.
    Continue,
    /// Stop.
    Stop,
}

/// Calls `f(seq, frame body)` for every frame from `start` on, in order,
/// streaming. Stops at the end record, at the end of the valid data, or when
/// `f` says so. Returns `true` if it stopped at bad data (not at the end of
/// the file, the end record, or by `f`).
pub(crate) fn for_each_frame(
    tape: &mut TapeFile,
    start: ScanStart,
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> Flow,
) -> Result<bool, StorageError> {
    let mut r = tape.reader_at(start.offset, path)?;
    let mut expect = start.next_seq;
    loop {
        match r.next().ctx("read", path)? {
            Next::Record(KIND_METHOD) => {}
            Next::Record(KIND_FRAME) => {
                let body = r.body();
                if frame_seq(body) != Some(expect) {
                    return Ok(true);
                }
                expect += 1;
                if let Flow::Stop = f(expect - 1, body) {
                    return Ok(false);
                }
            }
            Next::Record(KIND_END) | Next::Eof => return Ok(false),
            Next::Record(_) | Next::Incomplete | Next::Invalid => return Ok(true),
        }
    }
}

/// Does any frame from `start` on satisfy the frame conditions of a search?
/// Streams the frames; stops at the first match.
pub(crate) fn any_frame_matches(
    tape: &mut TapeFile,
    start: ScanStart,
    method: Option<&str>,
    text: Option<&[u8]>,
    path: &Path,
) -> Result<bool, StorageError> {
    let mut method_found = method.is_none();
    let mut text_found = text.is_none();
    for_each_frame(tape, start, path, |_, body| {
        let payload = frame_payload(body);
        if !method_found && search::frame_method(payload).as_deref() == method {
            method_found = true;
        }
        if !text_found && search::contains(payload, text.unwrap_or_default()) {
            text_found = true;
        }
        if method_found && text_found {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })?;
    Ok(method_found && text_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_constant_overhead() {
        for payload in [&b""[..], b"{\"x\":1}", &[0xff, 0x00, 0x80]] {
            let f = Frame {
                seq: 42,
                timestamp_us: 7,
                direction: Direction::ServerToClient,
                payload: payload.to_vec(),
                not_json: true,
                terms: Vec::new(),
                attributes: Vec::new(),
            };
            let mut out = Vec::new();
            encode_frame(&f, &mut out);
            assert_eq!(out.len() as u64, FRAME_OVERHEAD + payload.len() as u64);
            let crate::record::Parsed::Record { kind, body, .. } = record::parse(&out, MAX_BODY)
            else {
                panic!("not a record")
            };
            assert_eq!(kind, KIND_FRAME);
            assert_eq!(decode_frame(body), Some(f));
        }
    }
}
