//! What `append`, `append_many` and `save` share: checking frames against
//! the contract (sequence numbers, bounds) and encoding them with their
//! terms records and seek checkpoints. Payloads are copied, never looked
//! into.

use crate::seek;
use crate::tapefile::{self, ScanStart};
use std::collections::HashSet;
use tapedeck_types::terms::{MAX_ENVELOPE, MAX_SEAL, check_frame_fields};
use tapedeck_types::{Frame, StorageError, TapeHeader, TapeSummary};

/// Rejects a frame the store cannot or must not take: a payload too large
/// for one record, or terms and attributes outside the contract's bounds.
pub(crate) fn check_frame(id: &str, f: &Frame) -> Result<(), StorageError> {
    if f.payload.len() > tapefile::MAX_PAYLOAD {
        return Err(StorageError::invalid_input(format!(
            "tape {id:?}: frame {} has a {}-byte payload; the fs provider stores at most {} bytes per frame",
            f.seq,
            f.payload.len(),
            tapefile::MAX_PAYLOAD
        )));
    }
    check_frame_fields(&f.terms, &f.attributes).map_err(|why| {
        StorageError::invalid_input(format!("tape {id:?}: frame {} has {why}", f.seq))
    })
}

/// Rejects a header whose envelope is larger than the contract allows.
pub(crate) fn check_header(header: &TapeHeader) -> Result<(), StorageError> {
    match &header.envelope {
        Some(e) if e.len() > MAX_ENVELOPE => Err(StorageError::invalid_input(format!(
            "tape {:?}: the envelope has {} bytes (at most {MAX_ENVELOPE})",
            header.id,
            e.len()
        ))),
        _ => Ok(()),
    }
}

/// Rejects a summary whose seal is larger than the contract allows.
pub(crate) fn check_summary(id: &str, summary: &TapeSummary) -> Result<(), StorageError> {
    match &summary.seal {
        Some(s) if s.len() > MAX_SEAL => Err(StorageError::invalid_input(format!(
            "tape {id:?}: the seal has {} bytes (at most {MAX_SEAL})",
            s.len()
        ))),
        _ => Ok(()),
    }
}

/// The frames of a batch that are new for a tape whose next sequence
/// number is `next_seq`, checked: the batch must be consecutive and leave
/// no gap; frames below `next_seq` are skipped (stored already). An error
/// means nothing of the batch may be stored.
pub(crate) fn new_frames<'a>(
    id: &str,
    frames: &'a [Frame],
    next_seq: u64,
) -> Result<&'a [Frame], StorageError> {
    for pair in frames.windows(2) {
        if pair[1].seq != pair[0].seq.wrapping_add(1) {
            return Err(StorageError::invalid_input(format!(
                "append to tape {id:?}: frames are not consecutive (seq {} follows {})",
                pair[1].seq, pair[0].seq
            )));
        }
    }
    let Some(first) = frames.first() else {
        return Ok(&[]);
    };
    if first.seq > next_seq {
        return Err(StorageError::invalid_input(format!(
            "append to tape {id:?}: frame seq {} leaves a gap; the next seq is {next_seq}",
            first.seq
        )));
    }
    let skip = usize::try_from(next_seq - first.seq).unwrap_or(usize::MAX);
    let new = frames.get(skip..).unwrap_or_default();
    for f in new {
        check_frame(id, f)?;
    }
    Ok(new)
}

/// Encodes frames one after the other: before each frame, a terms record
/// with the terms no earlier frame of the tape had; at every
/// [`seek::INTERVAL`]th frame, a checkpoint for the seek index.
pub(crate) struct Encoder<'a> {
    /// Terms the tape had before this batch.
    known: &'a HashSet<String>,
    /// Terms this batch added.
    pub fresh: HashSet<String>,
    /// Offset of the last index record.
    pub last_index: u64,
    /// Payload bytes of the tape so far.
    pub bytes: u64,
    /// Seek index entries for the frames encoded.
    pub checkpoints: Vec<ScanStart>,
}

impl<'a> Encoder<'a> {
    /// An encoder continuing a tape with `known` terms, whose last index
    /// record is at `last_index` and whose payloads total `bytes`.
    pub(crate) fn new(known: &'a HashSet<String>, last_index: u64, bytes: u64) -> Self {
        Encoder {
            known,
            fresh: HashSet::new(),
            last_index,
            bytes,
            checkpoints: Vec::new(),
        }
    }

    /// Appends `f` (and its terms record, if any) to `out`, whose first byte
    /// goes at file offset `base`.
    pub(crate) fn push(&mut self, f: &Frame, base: u64, out: &mut Vec<u8>) {
        let mut new: Vec<&str> = Vec::new();
        for t in &f.terms {
            if !self.known.contains(t) && !self.fresh.contains(t) {
                self.fresh.insert(t.clone());
                new.push(t);
            }
        }
        if !new.is_empty() {
            let at = base + out.len() as u64;
            tapefile::encode_terms(self.last_index, &new, out);
            self.last_index = at;
        }
        if f.seq.is_multiple_of(seek::INTERVAL) {
            self.checkpoints.push(ScanStart {
                offset: base + out.len() as u64,
                next_seq: f.seq,
                bytes: self.bytes,
                last_index: self.last_index,
            });
        }
        tapefile::encode_frame(f, out);
        self.bytes += f.payload.len() as u64;
    }
}

/// The bytes of frames `new` appended at file offset `at`: the buffer to
/// write, and the encoder's state after them.
pub(crate) fn encode<'a>(
    new: &[Frame],
    at: u64,
    known: &'a HashSet<String>,
    last_index: u64,
    bytes: u64,
) -> (Vec<u8>, Encoder<'a>) {
    let mut buf = Vec::with_capacity(
        new.iter()
            .map(|f| f.payload.len() + tapefile::FRAME_OVERHEAD as usize)
            .sum(),
    );
    let mut enc = Encoder::new(known, last_index, bytes);
    for f in new {
        enc.push(f, at, &mut buf);
    }
    (buf, enc)
}
