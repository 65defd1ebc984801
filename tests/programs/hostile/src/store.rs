//! A correct, minimal in-memory store: what the provider does when it is not
//! attacking (so a slow but honest provider can be recorded into). Tapes live
//! in instance memory: they vanish when the host recycles the instance.

use crate::exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, StorageError, StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeSummary, TapeWriter,
};
use crate::tapedeck::storage::types::TapeState;
use std::cell::RefCell;
use std::collections::BTreeMap;

struct Tape {
    info: TapeInfo,
    frames: Vec<Frame>,
}

thread_local! {
    static TAPES: RefCell<BTreeMap<String, Tape>> = const { RefCell::new(BTreeMap::new()) };
}

fn with_tape<T>(
    id: &str,
    f: impl FnOnce(&mut Tape) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    TAPES.with_borrow_mut(|t| match t.get_mut(id) {
        Some(tape) => f(tape),
        None => Err(StorageError::NotFound(format!("no tape {id}"))),
    })
}

fn new_info(header: TapeHeader) -> TapeInfo {
    TapeInfo {
        header,
        state: TapeState::Recording,
        frame_count: 0,
        byte_count: 0,
        ended_at: None,
        digest: None,
        seal: None,
    }
}

fn end_state(reason: EndReason) -> TapeState {
    match reason {
        EndReason::Completed => TapeState::Finished,
        EndReason::Crashed => TapeState::Crashed,
        EndReason::Aborted => TapeState::Aborted,
    }
}

/// Starts a tape.
pub fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
    let id = header.id.clone();
    TAPES.with_borrow_mut(|t| {
        if t.contains_key(&id) {
            return Err(StorageError::AlreadyExists(id.clone()));
        }
        let tape = Tape {
            info: new_info(header),
            frames: Vec::new(),
        };
        t.insert(id.clone(), tape);
        Ok(())
    })?;
    Ok(TapeWriter::new(Writer { id }))
}

/// Continues a recording tape.
pub fn resume(id: String) -> Result<TapeWriter, StorageError> {
    with_tape(&id, |t| match t.info.state {
        TapeState::Recording => Ok(()),
        _ => Err(StorageError::InvalidInput(format!("tape {id} has ended"))),
    })?;
    Ok(TapeWriter::new(Writer { id }))
}

/// Stores a whole tape.
pub fn save(
    header: TapeHeader,
    frames: Vec<Frame>,
    summary: TapeSummary,
    reason: EndReason,
) -> Result<TapeInfo, StorageError> {
    let id = header.id.clone();
    let mut info = new_info(header);
    info.frame_count = frames.len() as u64;
    info.byte_count = frames.iter().map(|f| f.payload.len() as u64).sum();
    info.ended_at = Some(summary.ended_at);
    info.digest = summary.digest;
    info.seal = summary.seal;
    info.state = end_state(reason);
    TAPES.with_borrow_mut(|t| {
        if t.contains_key(&id) {
            return Err(StorageError::AlreadyExists(id.clone()));
        }
        let tape = Tape {
            info: info.clone(),
            frames,
        };
        t.insert(id, tape);
        Ok(info)
    })
}

/// Appends to several tapes: per entry what `resume` then `append` do; a
/// repeated id is `invalid-input` for that entry.
pub fn append_many(appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
    let mut seen = std::collections::BTreeSet::new();
    appends
        .into_iter()
        .map(|a| {
            if !seen.insert(a.id.clone()) {
                return Err(StorageError::InvalidInput(format!(
                    "tape {} appears more than once in one append-many",
                    a.id
                )));
            }
            with_tape(&a.id, |t| match t.info.state {
                TapeState::Recording => Ok(()),
                _ => Err(StorageError::InvalidInput(format!(
                    "tape {} has ended",
                    a.id
                ))),
            })?;
            Writer { id: a.id }.append_frames(a.frames)
        })
        .collect()
}

/// One tape's info.
pub fn get(id: &str) -> Result<TapeInfo, StorageError> {
    with_tape(id, |t| Ok(t.info.clone()))
}

/// A page of frames, as the contract says.
pub fn read_frames(
    id: &str,
    from_seq: u64,
    max_frames: u32,
    max_bytes: u64,
) -> Result<Vec<Frame>, StorageError> {
    if max_frames == 0 {
        return Err(StorageError::InvalidInput("max-frames is 0".into()));
    }
    with_tape(id, |t| {
        let mut out = Vec::new();
        let mut bytes = 0;
        for f in t.frames.iter().skip(from_seq as usize) {
            if out.len() == max_frames as usize || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            bytes += f.payload.len() as u64;
            out.push(f.clone());
        }
        Ok(out)
    })
}

/// Every tape, newest first, ignoring filters and paging beyond `limit`.
pub fn list(
    _filter: TapeFilter,
    _cursor: Option<String>,
    limit: u32,
) -> Result<TapePage, StorageError> {
    TAPES.with_borrow(|t| {
        let mut all: Vec<TapeInfo> = t.values().map(|t| t.info.clone()).collect();
        all.sort_by(|a, b| {
            (b.header.created_at, &b.header.id).cmp(&(a.header.created_at, &a.header.id))
        });
        all.truncate(limit as usize);
        Ok(TapePage {
            tapes: all,
            next_cursor: None,
        })
    })
}

/// Totals.
pub fn stats() -> StorageStats {
    TAPES.with_borrow(|t| StorageStats {
        tape_count: t.len() as u64,
        recording_count: t
            .values()
            .filter(|t| t.info.state == TapeState::Recording)
            .count() as u64,
        frame_count: t.values().map(|t| t.info.frame_count).sum(),
        byte_count: t.values().map(|t| t.info.byte_count).sum(),
        stored_bytes: 0,
    })
}

/// A writer on one tape.
pub struct Writer {
    id: String,
}

impl Writer {
    /// A writer with no tape behind it (for the handle-bomb attack).
    pub fn detached() -> Self {
        Writer { id: String::new() }
    }

    /// The next sequence number.
    pub fn next(&self) -> u64 {
        with_tape(&self.id, |t| Ok(t.frames.len() as u64)).unwrap_or(0)
    }

    /// Appends a batch, skipping frames already stored.
    pub fn append_frames(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        with_tape(&self.id, |t| {
            if t.info.state != TapeState::Recording {
                return Err(StorageError::InvalidInput("tape has ended".into()));
            }
            let mut next = t.frames.len() as u64;
            let new: Vec<Frame> = frames.into_iter().filter(|f| f.seq >= next).collect();
            for f in &new {
                if f.seq != next {
                    return Err(StorageError::InvalidInput(format!(
                        "frame {} where {next} was expected",
                        f.seq
                    )));
                }
                next += 1;
            }
            for f in new {
                t.info.byte_count += f.payload.len() as u64;
                t.frames.push(f);
            }
            t.info.frame_count = next;
            Ok(next)
        })
    }

    /// Finishes (with a summary) or aborts the tape.
    pub fn end(
        &self,
        summary: Option<TapeSummary>,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        with_tape(&self.id, |t| {
            if let Some(s) = summary {
                if s.frame_count != t.info.frame_count || s.byte_count != t.info.byte_count {
                    return Err(StorageError::InvalidInput("summary disagrees".into()));
                }
                t.info.ended_at = Some(s.ended_at);
                t.info.digest = s.digest;
                t.info.seal = s.seal;
            }
            t.info.state = end_state(reason);
            Ok(t.info.clone())
        })
    }
}
