//! The catalog log `index.log`: append-only, shared by every instance.
//!
//! Each entry is one record (kind [`KIND_ENTRY`], JSON body) written with a
//! single `write` on a file opened for appending, so entries from concurrent
//! instances never interleave (on a local filesystem, and through WASI, whose
//! streams pass writes of up to 4 KiB whole; see [`MAX_INLINE_BODY`]).
//!
//! Readers remember how far they replayed and read only the new tail. A record
//! that is still being written (its length runs past the end of the file) is
//! left for the next read. Bytes that are not a valid record (a write torn by
//! a crash) are skipped up to the next valid record, so one torn entry never
//! hides later ones. The kind byte (`0x01`) and the zero bytes of small
//! lengths are control characters that `serde_json` always escapes, so no
//! entry body can contain something that looks like a record.

use crate::errors::IoContext;
use crate::record::{self, MAGIC, Parsed};
use crate::stored::StoredHeader;
use crate::tapefile::EndInfo;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tapedeck_types::StorageError;

/// Record kind of a log entry.
pub(crate) const KIND_ENTRY: u8 = 0x01;
/// Entries whose body would be larger are written in their slim form (see
/// [`LogEntry::slim`]) so that every write stays below 4 KiB.
pub(crate) const MAX_INLINE_BODY: usize = 3500;
/// Anything larger is not a log entry.
const MAX_ENTRY_BODY: u32 = 64 << 10;
/// Read size when replaying.
const CHUNK: usize = 1 << 20;

/// One catalog change.
///
/// The slim forms (`header: None`, or `ended` without `end`) tell a reader to
/// take the header or the end from the tape file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub(crate) enum LogEntry {
    /// A tape file was published (by `create`, `save`, or adoption of a file
    /// whose entry was lost).
    Created {
        /// Tape id.
        id: String,
        /// Incarnation token.
        nonce: u64,
        /// The header; `None` in the slim form.
        #[serde(default)]
        header: Option<StoredHeader>,
        /// The tape had already ended (`save`, adoption).
        #[serde(default)]
        ended: bool,
        /// How it ended; `None` when not ended or in the slim form.
        #[serde(default)]
        end: Option<EndInfo>,
        /// Bytes of the tape and seek files, when ended.
        #[serde(default)]
        stored_bytes: u64,
    },
    /// A tape ended (its end record is in the tape file).
    Ended {
        /// Tape id.
        id: String,
        /// Incarnation token.
        nonce: u64,
        /// How it ended; `None` in the slim form.
        #[serde(default)]
        end: Option<EndInfo>,
        /// Bytes of the tape and seek files.
        #[serde(default)]
        stored_bytes: u64,
    },
    /// A tape was deleted (logged before its files are removed).
    Deleted {
        /// Tape id.
        id: String,
        /// Incarnation token.
        nonce: u64,
    },
}

impl LogEntry {
    /// The same entry without the parts a reader can take from the tape file.
    pub(crate) fn slim(&self) -> LogEntry {
        match self.clone() {
            LogEntry::Created {
                id,
                nonce,
                ended,
                stored_bytes,
                ..
            } => LogEntry::Created {
                id,
                nonce,
                header: None,
                ended,
                end: None,
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
                end: None,
                stored_bytes,
            },
            deleted @ LogEntry::Deleted { .. } => deleted,
        }
    }

    /// Encodes the entry as one record, slimmed if needed.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec(self).expect("log entries serialize");
        if body.len() > MAX_INLINE_BODY {
            body = serde_json::to_vec(&self.slim()).expect("log entries serialize");
        }
        let mut out = Vec::with_capacity(record::HEADER_LEN + body.len());
        record::encode(KIND_ENTRY, &body, &mut out);
        out
    }
}

/// The open log: one handle for appending, one for reading the tail.
pub(crate) struct IndexLog {
    path: PathBuf,
    append: File,
    read: File,
    /// Offset up to which entries were replayed.
    offset: u64,
}

impl IndexLog {
    /// Opens (creating if missing) the log at `path`; nothing is replayed yet.
    pub(crate) fn open(path: &Path) -> Result<IndexLog, StorageError> {
        let append = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .ctx("open the catalog log", path)?;
        let read = File::open(path).ctx("open the catalog log", path)?;
        Ok(IndexLog {
            path: path.to_path_buf(),
            append,
            read,
            offset: 0,
        })
    }

    /// Offset up to which entries were replayed: every entry before it has
    /// been seen. Used as the snapshot of a listing.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Current size of the log file.
    pub(crate) fn len(&self) -> u64 {
        self.read.metadata().map(|m| m.len()).unwrap_or(0)
    }

    /// Appends one entry with a single `write`; with `sync`, makes it durable.
    pub(crate) fn append(&mut self, entry: &LogEntry, sync: bool) -> Result<(), StorageError> {
        let buf = entry.encode();
        let written = self
            .append
            .write(&buf)
            .ctx("append to the catalog log", &self.path)?;
        if written < buf.len() {
            // A short write on a regular file (disk nearly full). Finish it;
            // if that fails too, readers skip the torn entry.
            self.append
                .write_all(&buf[written..])
                .ctx("append to the catalog log", &self.path)?;
        }
        if sync {
            self.append
                .sync_data()
                .ctx("fsync the catalog log", &self.path)?;
        }
        Ok(())
    }

    /// Calls `f(offset, entry)` for every complete entry appended since the
    /// last call, in log order.
    pub(crate) fn read_new(
        &mut self,
        mut f: impl FnMut(u64, LogEntry),
    ) -> Result<(), StorageError> {
        let path = &self.path;
        let end = self.read.metadata().ctx("inspect", path)?.len();
        if end <= self.offset {
            return Ok(());
        }
        self.read
            .seek(SeekFrom::Start(self.offset))
            .ctx("seek in", path)?;
        let mut buf: Vec<u8> = Vec::new();
        let mut base = self.offset; // file offset of buf[0]
        let mut file_pos = self.offset; // file offset of the next byte to read
        let mut i = 0usize;
        loop {
            match record::parse(&buf[i..], MAX_ENTRY_BODY) {
                Parsed::Record { kind, body, size } => {
                    if kind == KIND_ENTRY {
                        // A valid record we cannot decode was written by a
                        // newer version; skipping it is all we can do.
                        if let Ok(entry) = serde_json::from_slice(body) {
                            f(base + i as u64, entry);
                        }
                    }
                    i += size;
                }
                Parsed::Invalid => {
                    i += 1;
                    i += buf[i..]
                        .iter()
                        .position(|&b| b == MAGIC)
                        .unwrap_or(buf.len() - i);
                }
                Parsed::Incomplete { needed } => {
                    if file_pos < end {
                        buf.drain(..i);
                        base += i as u64;
                        i = 0;
                        let want = needed.saturating_sub(buf.len()).max(CHUNK) as u64;
                        let n = want.min(end - file_pos) as usize;
                        let old = buf.len();
                        buf.resize(old + n, 0);
                        self.read
                            .read_exact(&mut buf[old..])
                            .ctx("read the catalog log", path)?;
                        file_pos += n as u64;
                        continue;
                    }
                    // Nothing more to read. A record still being written is
                    // left for next time, unless a valid record follows it:
                    // then these bytes are a torn write and are skipped.
                    match next_valid(&buf, i + 1) {
                        Some(j) => i = j,
                        None => break,
                    }
                }
            }
        }
        self.offset = base + i as u64;
        Ok(())
    }
}

/// The first offset at or after `from` where a complete valid record starts.
fn next_valid(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&j| {
        buf[j] == MAGIC
            && matches!(
                record::parse(&buf[j..], MAX_ENTRY_BODY),
                Parsed::Record { .. }
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::TapeHeader;

    fn deleted(id: &str) -> LogEntry {
        LogEntry::Deleted {
            id: id.into(),
            nonce: 1,
        }
    }

    fn replay(log: &mut IndexLog) -> Vec<(u64, LogEntry)> {
        let mut out = Vec::new();
        log.read_new(|pos, e| out.push((pos, e))).unwrap();
        out
    }

    #[test]
    fn big_entries_are_slimmed_below_4k() {
        let header = TapeHeader {
            id: "t".into(),
            session_id: String::new(),
            name: "n".repeat(10_000),
            tags: vec![],
            created_at_us: 1,
            envelope: None,
        };
        let e = LogEntry::Created {
            id: "t".into(),
            nonce: 9,
            header: Some(header.into()),
            ended: false,
            end: None,
            stored_bytes: 0,
        };
        let bytes = e.encode();
        assert!(bytes.len() < 4096);
        let Parsed::Record { body, .. } = record::parse(&bytes, MAX_ENTRY_BODY) else {
            panic!()
        };
        let back: LogEntry = serde_json::from_slice(body).unwrap();
        assert_eq!(back, e.slim());
    }

    #[test]
    fn tail_reads_skip_torn_entries_and_wait_for_partial_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.log");
        let mut log = IndexLog::open(&path).unwrap();
        log.append(&deleted("a"), false).unwrap();
        assert_eq!(replay(&mut log), vec![(0, deleted("a"))]);
        assert_eq!(replay(&mut log), vec![]);

        // A partial entry at the tail is not consumed...
        let b = deleted("b").encode();
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(&b[..b.len() - 3]).unwrap();
        let partial_at = log.offset();
        assert_eq!(replay(&mut log), vec![]);
        assert_eq!(log.offset(), partial_at);
        // ...but once a valid entry follows it, it is skipped as torn.
        log.append(&deleted("c"), false).unwrap();
        let got = replay(&mut log);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, deleted("c"));

        // Garbage in the middle is skipped too.
        raw.write_all(b"garbage \xa7\x01 more").unwrap();
        log.append(&deleted("d"), false).unwrap();
        assert_eq!(replay(&mut log).len(), 1);

        // A fresh reader sees the same entries.
        let mut fresh = IndexLog::open(&path).unwrap();
        let all: Vec<_> = replay(&mut fresh).into_iter().map(|(_, e)| e).collect();
        assert_eq!(all, vec![deleted("a"), deleted("c"), deleted("d")]);
    }
}
