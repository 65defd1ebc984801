//! The sparse seek index: a side file `<id>.seek` next to each tape file.
//!
//! Entry `k` (48 bytes at offset `48 * k`) describes frame `k * INTERVAL`:
//!
//! ```text
//! magic u32 | crc u32 | nonce u64 | seq u64 | offset u64 | bytes-before u64 | last-index u64
//! ```
//!
//! The CRC covers everything after it. Entries are appended after the frames
//! they describe are written, so the index may lag behind the tape (after a
//! crash) but is never needed for correctness: every entry is checked (CRC,
//! nonce, `seq == k * INTERVAL`, and a frame with that seq at that offset)
//! before it is trusted, and a reader that finds no usable entry scans from
//! the header. `resume` truncates the file to its trusted prefix and re-adds
//! the missing entries, so it is rebuildable from the tape alone.
//!
//! `last-index` is the offset of the last index record (terms, or format
//! 1's method) before the frame. An entry is bound to the tape's
//! incarnation and to a frame that is there, and the records before a valid
//! frame are never rewritten (only a torn tail after the valid data is ever
//! cut), so an entry that points at the right frame also has the right
//! `bytes-before` and `last-index` (barring a power loss that kept an entry
//! but lost the frames before it, and other frames appended in their place
//! since; `finish` still checks the totals against the host's).

use crate::errors::IoContext;
use crate::tapefile::{ScanStart, TapeFile};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use tapedeck_types::StorageError;

/// Frames between two seek entries.
pub(crate) const INTERVAL: u64 = 64;
/// Size of one entry.
pub(crate) const ENTRY_LEN: u64 = 48;
const MAGIC: u32 = u32::from_le_bytes(*b"TDSK");
/// How many entries a reader tries before falling back to a scan.
const TRIES: u64 = 3;

/// Encodes the entry for `start` (whose `next_seq` must be a multiple of
/// [`INTERVAL`]).
pub(crate) fn encode(nonce: u64, start: &ScanStart, out: &mut Vec<u8>) {
    let mut tail = [0u8; 40];
    tail[0..8].copy_from_slice(&nonce.to_le_bytes());
    tail[8..16].copy_from_slice(&start.next_seq.to_le_bytes());
    tail[16..24].copy_from_slice(&start.offset.to_le_bytes());
    tail[24..32].copy_from_slice(&start.bytes.to_le_bytes());
    tail[32..40].copy_from_slice(&start.last_index.to_le_bytes());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&tail).to_le_bytes());
    out.extend_from_slice(&tail);
}

fn decode(buf: &[u8], nonce: u64, k: u64) -> Option<ScanStart> {
    let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
    if buf.len() != ENTRY_LEN as usize
        || u32_at(0) != MAGIC
        || u32_at(4) != crc32fast::hash(&buf[8..])
        || u64_at(8) != nonce
        || u64_at(16) != k * INTERVAL
    {
        return None;
    }
    Some(ScanStart {
        next_seq: u64_at(16),
        offset: u64_at(24),
        bytes: u64_at(32),
        last_index: u64_at(40),
    })
}

/// Where frame 0 starts: right after the header.
pub(crate) fn header_start(tape: &TapeFile) -> ScanStart {
    ScanStart {
        offset: tape.header_end,
        next_seq: 0,
        bytes: 0,
        last_index: 0,
    }
}

fn entry_count(seek: &File) -> u64 {
    seek.metadata().map(|m| m.len() / ENTRY_LEN).unwrap_or(0)
}

fn read_entry(seek: &mut File, k: u64, nonce: u64) -> Option<ScanStart> {
    let mut buf = [0u8; ENTRY_LEN as usize];
    seek.seek(SeekFrom::Start(k * ENTRY_LEN)).ok()?;
    seek.read_exact(&mut buf).ok()?;
    decode(&buf, nonce, k)
}

/// Tries entries `k`, `k - 1`, ... (a few) and returns the first one that
/// checks out against the tape, with its index.
fn trusted_at_or_below(
    seek: &mut File,
    k: u64,
    tape: &mut TapeFile,
    tape_path: &Path,
) -> Option<(u64, ScanStart)> {
    let nonce = tape.header.nonce;
    (k.saturating_sub(TRIES - 1)..=k).rev().find_map(|i| {
        read_entry(seek, i, nonce)
            .filter(|s| tape.frame_at(s.offset, s.next_seq, tape_path))
            .map(|s| (i, s))
    })
}

/// The best place to start reading frame `seq`: the trusted entry at or just
/// below it, or the header.
pub(crate) fn start_for(
    seek_path: &Path,
    tape: &mut TapeFile,
    tape_path: &Path,
    seq: u64,
) -> ScanStart {
    if seq >= INTERVAL
        && let Ok(mut seek) = File::open(seek_path)
    {
        let n = entry_count(&seek);
        if n > 0
            && let Some((_, s)) =
                trusted_at_or_below(&mut seek, (seq / INTERVAL).min(n - 1), tape, tape_path)
        {
            return s;
        }
    }
    header_start(tape)
}

/// The last trusted entry (or the header) and how many entries, from the
/// start of the file, may be kept: those up to and including it.
pub(crate) fn last_start(
    seek_path: &Path,
    tape: &mut TapeFile,
    tape_path: &Path,
) -> (ScanStart, u64) {
    if let Ok(mut seek) = File::open(seek_path) {
        let n = entry_count(&seek);
        if n > 0
            && let Some((k, s)) = trusted_at_or_below(&mut seek, n - 1, tape, tape_path)
        {
            return (s, k + 1);
        }
    }
    (header_start(tape), 0)
}

/// The seek file of a writer: appends entries, and stops using the file
/// after a write error (the index is an accelerator, never needed for
/// correctness).
#[derive(Debug)]
pub(crate) struct SeekWriter {
    file: Option<File>,
    nonce: u64,
    /// Entries in the file.
    count: u64,
}

impl SeekWriter {
    /// For a new tape: starts an empty index, dropping any stale file.
    pub(crate) fn create(path: &Path, nonce: u64) -> Self {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .ok();
        SeekWriter {
            file,
            nonce,
            count: 0,
        }
    }

    /// For a resumed tape: keeps the first `keep` entries and adds `missing`
    /// (entries for frames the index lagged behind on).
    pub(crate) fn resume(path: &Path, nonce: u64, keep: u64, missing: &[ScanStart]) -> Self {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .and_then(|f| f.set_len(keep * ENTRY_LEN).map(|()| f))
            .ok();
        let mut w = SeekWriter {
            file,
            nonce,
            count: keep,
        };
        let missing: Vec<ScanStart> = missing
            .iter()
            .filter(|s| s.next_seq >= keep * INTERVAL)
            .copied()
            .collect();
        w.append(&missing);
        w
    }

    /// For appending to the index as it is on disk (`append_many`, which
    /// has no writer): the entries in the file are taken as they are; an
    /// index that lags behind is left to the next `resume` to repair.
    pub(crate) fn open(path: &Path, nonce: u64) -> Self {
        let file = OpenOptions::new().write(true).open(path).ok();
        let count = file.as_ref().map_or(0, entry_count);
        SeekWriter { file, nonce, count }
    }

    /// Appends entries for consecutive multiples of [`INTERVAL`] (one write).
    pub(crate) fn append(&mut self, entries: &[ScanStart]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        if entries[0].next_seq != self.count * INTERVAL {
            // The index lags behind the tape (entries were lost, or another
            // instance's `append_many` could not write them): stop indexing
            // rather than write a wrong entry; `resume` repairs it.
            self.file = None;
            return;
        }
        let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN as usize);
        for e in entries {
            encode(self.nonce, e, &mut buf);
        }
        let at = self.count * ENTRY_LEN;
        let ok = file.seek(SeekFrom::Start(at)).is_ok() && file.write_all(&buf).is_ok();
        if ok {
            self.count += entries.len() as u64;
        } else if file.set_len(at).is_err() {
            self.file = None;
        }
    }

    /// Bytes used by the index file.
    pub(crate) fn len(&self) -> u64 {
        self.count * ENTRY_LEN
    }
}

/// Size of the seek file at `path` (0 if missing).
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Writes a complete index for a saved tape (best effort).
pub(crate) fn write_all(
    path: &Path,
    nonce: u64,
    entries: &[ScanStart],
) -> Result<(), StorageError> {
    let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN as usize);
    for e in entries {
        encode(nonce, e, &mut buf);
    }
    std::fs::write(path, &buf).ctx("write the seek index", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bind_to_nonce_and_position() {
        let s = ScanStart {
            offset: 1000,
            next_seq: 128,
            bytes: 5000,
            last_index: 900,
        };
        let mut buf = Vec::new();
        encode(7, &s, &mut buf);
        assert_eq!(buf.len() as u64, ENTRY_LEN);
        assert_eq!(decode(&buf, 7, 2), Some(s));
        assert_eq!(decode(&buf, 8, 2), None);
        assert_eq!(decode(&buf, 7, 3), None);
        buf[30] ^= 1;
        assert_eq!(decode(&buf, 7, 2), None);
    }
}
