//! Helpers shared by the fs-store integration tests.
#![allow(dead_code, reason = "each test binary uses some of the helpers")]

use fs_store::{FsConfig, FsStore, FsWriter};
use std::path::{Path, PathBuf};
use tapedeck_types::terms::{method_term, payload_terms};
use tapedeck_types::{
    Direction, EndReason, ErrorKind, Frame, SearchQuery, StorageError, TapeHeader, TapeSummary,
};

/// A store on a fresh temp dir (fsync off to keep tests fast).
pub fn store() -> (tempfile::TempDir, FsStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    (dir, s)
}

/// Another store instance on `root`.
pub fn open(root: &Path) -> FsStore {
    FsStore::open(FsConfig {
        root: root.to_path_buf(),
        fsync: false,
    })
    .unwrap()
}

pub fn header(id: &str, created_at: u64) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: format!("session-{id}"),
        name: format!("Tape {id}"),
        tags: vec![("env".into(), "test".into())],
        created_at_us: created_at,
        envelope: None,
    }
}

pub fn frame(seq: u64, payload: &[u8]) -> Frame {
    Frame {
        seq,
        timestamp_us: 1_000 + seq,
        direction: if seq.is_multiple_of(2) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        },
        payload: payload.to_vec(),
        not_json: serde_json::from_slice::<serde_json::Value>(payload).is_err(),
        // What the host derives (the store itself never parses payloads).
        terms: payload_terms(payload),
        attributes: Vec::new(),
    }
}

/// A search for tapes with every one of these terms.
pub fn terms_query(terms: &[&str]) -> SearchQuery {
    SearchQuery {
        terms: terms.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

/// A search for tapes with a frame of JSON-RPC method `m`.
pub fn method_query(m: &str) -> SearchQuery {
    SearchQuery {
        terms: vec![method_term(m)],
        ..Default::default()
    }
}

/// A JSON-RPC request with `method`.
pub fn request(seq: u64, method: &str) -> Frame {
    frame(
        seq,
        format!(r#"{{"jsonrpc":"2.0","id":{seq},"method":"{method}","params":{{}}}}"#).as_bytes(),
    )
}

/// A JSON-RPC response.
pub fn response(seq: u64, text: &str) -> Frame {
    frame(
        seq,
        format!(r#"{{"jsonrpc":"2.0","id":{seq},"result":{{"text":"{text}"}}}}"#).as_bytes(),
    )
}

/// Frames `from..to` with small JSON payloads.
pub fn frames(from: u64, to: u64) -> Vec<Frame> {
    (from..to)
        .map(|s| response(s, &format!("frame {s}")))
        .collect()
}

pub fn summary(frames: &[Frame], ended_at: u64) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: ended_at,
        digest: Some("ab".repeat(32)),
        seal: None,
    }
}

/// Records `frames` into a new tape and ends it with `reason`.
pub fn record(s: &FsStore, h: TapeHeader, frames: &[Frame], reason: EndReason) {
    let mut w = s.create(h).unwrap();
    w.append(frames).unwrap();
    w.finish(&summary(frames, 9_999), reason).unwrap();
}

/// Starts a tape and appends `frames`, leaving it recording.
pub fn start(s: &FsStore, h: TapeHeader, frames: &[Frame]) -> FsWriter {
    let mut w = s.create(h).unwrap();
    w.append(frames).unwrap();
    w
}

/// Every frame of a tape, read in pages of `page`.
pub fn read_all(s: &FsStore, id: &str, page: u32) -> Vec<Frame> {
    let mut out = Vec::new();
    loop {
        let got = s.read_frames(id, out.len() as u64, page, u64::MAX).unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

pub fn tape_path(root: &Path, id: &str) -> PathBuf {
    root.join("tapes").join(format!("{id}.tape"))
}

pub fn assert_kind<T: std::fmt::Debug>(r: Result<T, StorageError>, kind: ErrorKind, needle: &str) {
    match r {
        Ok(v) => panic!("expected {kind} containing {needle:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{e}");
            assert!(e.message.contains(needle), "{e} should mention {needle:?}");
        }
    }
}
