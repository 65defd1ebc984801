//! The tape file: one append-only file of records per tape.
//!
//! Format 2 (written by this version):
//!
//! ```text
//! header  (once, first)    JSON {format, nonce, header}
//! terms   (0..)            prev-index-offset u64 | (len u16 | term)*
//! frame2  (0..)            seq u64 | timestamp u64 | direction u8 | flags u8
//!                          | term-count u8 | attribute-count u8 | extras-len u32
//!                          | extras | payload
//!                          extras: (len u16 | term)* (key-len u16 | key | value-len u16 | value)*
//! end     (at most once)   JSON {end: EndInfo, note}
//! ```
//!
//! Terms and attributes are stored verbatim and in order in their frame.
//! A `terms` record lists the terms a frame carries that no earlier frame
//! of the tape carried, and is written immediately before that frame, in
//! the same write. Each points back to the previous one, so the set of
//! terms of a tape (what `search` matches) is collected by walking the chain
//! from the last one: O(distinct terms), not O(tape). A `terms` record not
//! followed by a valid frame is part of a torn tail and does not count.
//! Nothing here looks inside a payload.
//!
//! Format 1 (written by earlier versions, still read) had `frame` records
//! (the frame2 layout without the term and attribute counts, the extras
//! length and the extras), `method` index records (prev-offset u64 | a
//! JSON-RPC method the provider had parsed out of the next frame), headers
//! without an envelope and ends without a seal or terms. Its frames read as
//! having no terms and no attributes, its tapes as having no terms; its
//! `method` records are skipped (the chain walk stops at the first one). A
//! format-1 tape still recording when this version resumes it gets format-2
//! records appended; its header keeps saying format 1 (the format the file
//! was created in).
//!
//! The frame record layout's fixed part is constant ([`FRAME_OVERHEAD`]
//! for a frame without terms or attributes); see `seek.rs` for how seek
//! entries are checked.

use crate::errors::{IoContext, io_error};
use crate::record::{self, Next, RecordReader};
use crate::stored::{StoredHeader, hex_opt};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;
use tapedeck_types::{Direction, Frame, StorageError, TapeState};

/// Record kind: the tape header.
pub(crate) const KIND_HEADER: u8 = 0x10;
/// Record kind: one frame, format 1 (no terms, no attributes). Read only.
pub(crate) const KIND_FRAME: u8 = 0x11;
/// Record kind: a JSON-RPC method first seen in the next frame, format 1.
/// Read only (skipped).
pub(crate) const KIND_METHOD: u8 = 0x12;
/// Record kind: the end of the tape.
pub(crate) const KIND_END: u8 = 0x13;
/// Record kind: one frame with its terms and attributes.
pub(crate) const KIND_FRAME2: u8 = 0x14;
/// Record kind: the terms first seen in the next frame.
pub(crate) const KIND_TERMS: u8 = 0x15;

/// Format version written in the header of new tape files.
pub(crate) const FORMAT: u32 = 2;
/// Largest payload accepted in one frame.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
/// Bytes of a format-1 frame body before the payload.
const FRAME1_FIXED: usize = 18;
/// Bytes of a frame2 body before the extras.
const FRAME2_FIXED: usize = 24;
/// Room for the extras of one frame (terms and attributes within the
/// contract's bounds take about 140 KiB).
const MAX_EXTRAS: usize = 1 << 20;
/// Largest record body in a tape file.
pub(crate) const MAX_BODY: u32 = (MAX_PAYLOAD + FRAME2_FIXED + MAX_EXTRAS) as u32;
/// Bytes a frame record without terms or attributes takes besides its
/// payload.
pub(crate) const FRAME_OVERHEAD: u64 = (record::HEADER_LEN + FRAME2_FIXED) as u64;
/// Buffer size for streaming reads.
const READ_BUF: usize = 64 << 10;

/// Body of the header record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeaderBody {
    /// The format the file was created in: 1 or [`FORMAT`].
    pub format: u32,
    /// The tape incarnation's token.
    pub nonce: u64,
    /// The header as given.
    pub header: StoredHeader,
}

/// How and when a tape ended: the body of the end record, and what the
/// catalog keeps about an ended tape.
///
/// Format 1 had a `methods` field instead of `terms` and no `seal`; it is
/// ignored, so such a tape has no terms.
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
    /// The host's seal, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub seal: Option<Vec<u8>>,
    /// Distinct terms of the tape's frames, sorted.
    #[serde(default)]
    pub terms: Vec<String>,
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

/// A length that the contract's bounds (checked before anything is
/// encoded, see `batch::check_frame`) keep below 64 KiB.
fn len16(s: &str) -> [u8; 2] {
    u16::try_from(s.len())
        .expect("terms, keys and values are checked to be shorter than 64 KiB")
        .to_le_bytes()
}

/// Appends a terms record: `terms` (new to the tape), after the index
/// record at `prev` (0 = none).
pub(crate) fn encode_terms(prev: u64, terms: &[&str], out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(8 + terms.iter().map(|t| t.len() + 2).sum::<usize>());
    body.extend_from_slice(&prev.to_le_bytes());
    for t in terms {
        body.extend_from_slice(&len16(t));
        body.extend_from_slice(t.as_bytes());
    }
    record::encode(KIND_TERMS, &body, out);
}

/// Appends a frame record (kind frame2).
pub(crate) fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let mut extras = Vec::new();
    for t in &frame.terms {
        extras.extend_from_slice(&len16(t));
        extras.extend_from_slice(t.as_bytes());
    }
    for (k, v) in &frame.attributes {
        extras.extend_from_slice(&len16(k));
        extras.extend_from_slice(k.as_bytes());
        extras.extend_from_slice(&len16(v));
        extras.extend_from_slice(v.as_bytes());
    }
    let mut head = [0u8; FRAME2_FIXED];
    head[0..8].copy_from_slice(&frame.seq.to_le_bytes());
    head[8..16].copy_from_slice(&frame.timestamp_us.to_le_bytes());
    head[16] = match frame.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    };
    head[17] = u8::from(frame.not_json);
    head[18] = u8::try_from(frame.terms.len()).expect("at most 32 terms (checked)");
    head[19] = u8::try_from(frame.attributes.len()).expect("at most 32 attributes (checked)");
    head[20..24].copy_from_slice(
        &u32::try_from(extras.len())
            .expect("extras are bounded (checked)")
            .to_le_bytes(),
    );
    record::encode_parts(KIND_FRAME2, &[&head, &extras, &frame.payload], out);
}

/// A frame record's body, checked and split (nothing copied).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameView<'a> {
    /// Sequence number.
    pub seq: u64,
    timestamp_us: u64,
    direction: Direction,
    not_json: bool,
    term_count: u8,
    attribute_count: u8,
    extras: &'a [u8],
    /// The payload bytes.
    pub payload: &'a [u8],
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Reads a `len u16 | UTF-8 bytes` string at the start of `*rest`.
fn take_str<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let (len, tail) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    let bytes = tail.get(..len)?;
    *rest = &tail[len..];
    std::str::from_utf8(bytes).ok()
}

/// Walks the extras of a frame2 body: `term` for each term, `attribute`
/// for each pair, in order. `None` if they are malformed or longer or
/// shorter than the counts say.
fn walk_extras<'a>(
    mut extras: &'a [u8],
    term_count: u8,
    attribute_count: u8,
    mut term: impl FnMut(&'a str),
    mut attribute: impl FnMut(&'a str, &'a str),
) -> Option<()> {
    for _ in 0..term_count {
        term(take_str(&mut extras)?);
    }
    for _ in 0..attribute_count {
        let k = take_str(&mut extras)?;
        let v = take_str(&mut extras)?;
        attribute(k, v);
    }
    extras.is_empty().then_some(())
}

/// Checks and splits the body of a frame record of `kind` (format 1 or 2);
/// `None` if it is not a well-formed frame.
pub(crate) fn parse_frame(kind: u8, body: &[u8]) -> Option<FrameView<'_>> {
    let fixed = match kind {
        KIND_FRAME => FRAME1_FIXED,
        KIND_FRAME2 => FRAME2_FIXED,
        _ => return None,
    };
    if body.len() < fixed || body[16] > 1 || body[17] > 1 {
        return None;
    }
    let mut view = FrameView {
        seq: u64_at(body, 0),
        timestamp_us: u64_at(body, 8),
        direction: if body[16] == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        },
        not_json: body[17] == 1,
        term_count: 0,
        attribute_count: 0,
        extras: &[],
        payload: &body[fixed..],
    };
    if kind == KIND_FRAME2 {
        let extras_len = usize::try_from(u32::from_le_bytes(
            body[20..24].try_into().expect("4 bytes"),
        ))
        .ok()?;
        let rest = &body[FRAME2_FIXED..];
        if extras_len > rest.len() {
            return None;
        }
        view.term_count = body[18];
        view.attribute_count = body[19];
        view.extras = &rest[..extras_len];
        view.payload = &rest[extras_len..];
        walk_extras(
            view.extras,
            view.term_count,
            view.attribute_count,
            |_| {},
            |_, _| {},
        )?;
    }
    Some(view)
}

/// The frame a checked record holds.
pub(crate) fn decode_frame(view: &FrameView<'_>) -> Frame {
    let mut terms = Vec::with_capacity(usize::from(view.term_count));
    let mut attributes = Vec::with_capacity(usize::from(view.attribute_count));
    // Checked by `parse_frame`, so the walk completes.
    let _ = walk_extras(
        view.extras,
        view.term_count,
        view.attribute_count,
        |t| terms.push(t.to_string()),
        |k, v| attributes.push((k.to_string(), v.to_string())),
    );
    Frame {
        seq: view.seq,
        timestamp_us: view.timestamp_us,
        direction: view.direction,
        payload: view.payload.to_vec(),
        not_json: view.not_json,
        terms,
        attributes,
    }
}

/// The previous index record and the terms of a terms record body.
fn decode_terms(body: &[u8]) -> Option<(u64, Vec<String>)> {
    let (prev, mut rest) = body.split_first_chunk::<8>()?;
    let mut terms = Vec::new();
    while !rest.is_empty() {
        terms.push(take_str(&mut rest)?.to_string());
    }
    Some((u64::from_le_bytes(*prev), terms))
}

/// Collects the terms of a tape by walking the chain of terms records back
/// from the one at `last` (0 = none), in `file` whose frames start at
/// `header_end` and whose valid data ends before `limit`. The walk stops at
/// a format-1 `method` record: everything before it is format 1, which had
/// no terms.
pub(crate) fn chain_terms(
    file: &mut File,
    header_end: u64,
    limit: u64,
    mut last: u64,
    path: &Path,
) -> Result<HashSet<String>, StorageError> {
    let mut out = HashSet::new();
    while last != 0 {
        let corrupt = || {
            StorageError::io(format!(
                "tape file {} has a broken terms record at offset {last}",
                path.display()
            ))
        };
        if last < header_end || last >= limit {
            return Err(corrupt());
        }
        file.seek(SeekFrom::Start(last)).ctx("seek in", path)?;
        let mut r = RecordReader::new(
            BufReader::with_capacity(4096, &mut *file),
            last,
            limit,
            MAX_BODY,
        );
        match r.next().ctx("read", path)? {
            Next::Record(KIND_TERMS) => {
                let (prev, terms) = decode_terms(r.body()).ok_or_else(corrupt)?;
                if prev >= last {
                    return Err(corrupt());
                }
                out.extend(terms);
                last = prev;
            }
            Next::Record(KIND_METHOD) => break,
            _ => return Err(corrupt()),
        }
    }
    Ok(out)
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
        if !(1..=FORMAT).contains(&header.format) {
            return Err(OpenError::Storage(StorageError::io(format!(
                "tape file {} has format {}; this fs provider reads formats 1 to {FORMAT}",
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
        match r.next() {
            Ok(Next::Record(kind)) => parse_frame(kind, r.body()).is_some_and(|f| f.seq == seq),
            _ => false,
        }
    }

    /// The terms of the tape, walking the chain back from the terms record
    /// at `last` (0 = none); see [`chain_terms`].
    pub(crate) fn terms_from_chain(
        &mut self,
        last: u64,
        path: &Path,
    ) -> Result<HashSet<String>, StorageError> {
        chain_terms(&mut self.file, self.header_end, self.len, last, path)
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
    /// Offset of the last index record (terms, or format 1's method) before
    /// `offset` (0 = none).
    pub last_index: u64,
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
    /// Offset of the last index record that counts (0 = none).
    pub last_index: u64,
    /// The end record, if the tape has ended.
    pub end: Option<EndBody>,
    /// Frame offsets seen at seek-index positions: `(seq, offset, bytes
    /// before, last index record before)`.
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
        last_index: start.last_index,
        end: None,
        checkpoints: Vec::new(),
        torn: false,
    };
    let mut pending_index = None;
    let mut r = tape.reader_at(start.offset, path)?;
    loop {
        let at = r.pos();
        match r.next().ctx("read", path)? {
            Next::Record(KIND_TERMS | KIND_METHOD) => {
                pending_index = Some(at);
            }
            Next::Record(kind @ (KIND_FRAME | KIND_FRAME2)) => {
                let Some(frame) = parse_frame(kind, r.body()) else {
                    p.torn = true;
                    break;
                };
                if frame.seq != p.next_seq {
                    p.torn = true;
                    break;
                }
                if let Some(m) = pending_index.take() {
                    p.last_index = m;
                }
                if every > 0 && frame.seq.is_multiple_of(every) {
                    p.checkpoints.push(ScanStart {
                        offset: at,
                        next_seq: frame.seq,
                        bytes: p.bytes,
                        last_index: p.last_index,
                    });
                }
                p.next_seq += 1;
                p.bytes += frame.payload.len() as u64;
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
                // An index record right before the end has no frame yet.
                p.torn = pending_index.is_some();
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

/// Calls `f(frame)` for every frame from `start` on, in order, streaming.
/// Stops at the end record, at the end of the valid data, or when `f` says
/// so. Returns `true` if it stopped at bad data (not at the end of the file,
/// the end record, or by `f`).
pub(crate) fn for_each_frame(
    tape: &mut TapeFile,
    start: ScanStart,
    path: &Path,
    mut f: impl FnMut(&FrameView<'_>) -> Flow,
) -> Result<bool, StorageError> {
    let mut r = tape.reader_at(start.offset, path)?;
    let mut expect = start.next_seq;
    loop {
        match r.next().ctx("read", path)? {
            Next::Record(KIND_TERMS | KIND_METHOD) => {}
            Next::Record(kind @ (KIND_FRAME | KIND_FRAME2)) => {
                let Some(frame) = parse_frame(kind, r.body()).filter(|v| v.seq == expect) else {
                    return Ok(true);
                };
                expect += 1;
                if let Flow::Stop = f(&frame) {
                    return Ok(false);
                }
            }
            Next::Record(KIND_END) | Next::Eof => return Ok(false),
            Next::Record(_) | Next::Incomplete | Next::Invalid => return Ok(true),
        }
    }
}

/// Does any frame from `start` on have a payload containing `text`?
/// Streams the frames; stops at the first match.
pub(crate) fn any_payload_contains(
    tape: &mut TapeFile,
    start: ScanStart,
    text: &[u8],
    path: &Path,
) -> Result<bool, StorageError> {
    let mut found = false;
    for_each_frame(tape, start, path, |frame| {
        if crate::search::contains(frame.payload, text) {
            found = true;
            Flow::Stop
        } else {
            Flow::Continue
        }
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(out: &[u8]) -> (u8, &[u8]) {
        let crate::record::Parsed::Record { kind, body, .. } = record::parse(out, MAX_BODY) else {
            panic!("not a record")
        };
        (kind, body)
    }

    #[test]
    fn frames_round_trip_with_constant_overhead() {
        for payload in [&b""[..], b"{\"x\":1}", &[0xff, 0x00, 0x80]] {
            let f = Frame::new(42, 7, Direction::ServerToClient, payload.to_vec(), true);
            let mut out = Vec::new();
            encode_frame(&f, &mut out);
            assert_eq!(out.len() as u64, FRAME_OVERHEAD + payload.len() as u64);
            let (kind, body) = parse_one(&out);
            assert_eq!(kind, KIND_FRAME2);
            assert_eq!(decode_frame(&parse_frame(kind, body).unwrap()), f);
        }
    }

    #[test]
    fn terms_and_attributes_round_trip_verbatim_and_in_order() {
        let mut f = Frame::new(
            3,
            9,
            Direction::ClientToServer,
            b"\x00ciphertext".to_vec(),
            true,
        );
        f.terms = vec![
            "method:tools/call".into(),
            "tool:Ünïcode".into(),
            "method:tools/call".into(),
            "x".repeat(256),
        ];
        f.attributes = vec![
            ("z".into(), String::new()),
            ("a".into(), "v".repeat(4096)),
            ("z".into(), "again".into()),
        ];
        let mut out = Vec::new();
        encode_frame(&f, &mut out);
        let (kind, body) = parse_one(&out);
        let view = parse_frame(kind, body).unwrap();
        assert_eq!(view.payload, b"\x00ciphertext");
        assert_eq!(decode_frame(&view), f);
        // A body whose counts disagree with its extras is not a frame.
        let mut bad = body.to_vec();
        bad[18] += 1;
        assert!(parse_frame(KIND_FRAME2, &bad).is_none());
        let mut bad = body.to_vec();
        bad[19] -= 1;
        assert!(parse_frame(KIND_FRAME2, &bad).is_none());
    }

    #[test]
    fn format_1_frames_read_without_terms() {
        let mut body = Vec::new();
        body.extend_from_slice(&5u64.to_le_bytes());
        body.extend_from_slice(&6u64.to_le_bytes());
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(b"{}");
        let view = parse_frame(KIND_FRAME, &body).unwrap();
        assert_eq!(
            decode_frame(&view),
            Frame::new(5, 6, Direction::ServerToClient, b"{}".to_vec(), false)
        );
        assert!(parse_frame(KIND_END, &body).is_none());
    }

    #[test]
    fn terms_records_round_trip() {
        let mut out = Vec::new();
        encode_terms(77, &["a", "", "méthode"], &mut out);
        let (kind, body) = parse_one(&out);
        assert_eq!(kind, KIND_TERMS);
        assert_eq!(
            decode_terms(body),
            Some((77, vec!["a".into(), String::new(), "méthode".into()]))
        );
        assert_eq!(decode_terms(&body[..body.len() - 1]), None);
    }
}
