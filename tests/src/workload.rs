//! The benchmark workloads, shared by `tapedeck-bench` and the criterion
//! benches so both measure exactly the same operations on any [`TapeStore`].

use std::path::Path;
use std::time::{Duration, Instant};
use tapedeck::read::TapeReader;
use tapedeck::recorder::DigestChain;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck_types::{
    Direction, EndReason, Frame, SearchQuery, TapeFilter, TapeHeader, TapeSummary,
};

/// The native store of the workloads: in a directory, without fsync.
pub use crate::native::unsynced as native;

/// Frames per append: the recorder's default batch.
pub const BATCH: usize = 256;

/// A tape header for the benchmarks.
pub fn header(id: &str, session: &str) -> TapeHeader {
    TapeHeader {
        id: id.to_string(),
        session_id: session.to_string(),
        name: format!("bench {id}"),
        tags: vec![("bench".into(), "yes".into())],
        created_at_us: 1_700_000_000_000_000,
        envelope: None,
    }
}

/// `n` JSON-RPC frames of `size` bytes, numbered from 0, alternating
/// directions, with the index terms the recorder gives them.
pub fn frames(n: u64, size: usize) -> Vec<Frame> {
    (0..n)
        .map(|seq| {
            let mut payload =
                format!(r#"{{"jsonrpc":"2.0","id":{seq},"method":"tools/call","params":{{"pad":""#)
                    .into_bytes();
            payload.resize(size.saturating_sub(3), b'x');
            payload.extend_from_slice(b"\"}}");
            Frame {
                seq,
                timestamp_us: 1_700_000_000_000_000 + seq,
                direction: if seq % 2 == 0 {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                },
                terms: tapedeck_types::terms::payload_terms(&payload),
                payload,
                not_json: false,
                attributes: Vec::new(),
            }
        })
        .collect()
}

/// The summary that ends a tape of `frames`.
pub fn summary(frames: &[Frame]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 1_700_000_000_000_000 + frames.len() as u64,
        digest: Some(DigestChain::over(frames).hex()),
        seal: None,
    }
}

/// Appends `frames` to a new tape `id` in batches of [`BATCH`] and finishes
/// it; returns the time the appends took.
pub async fn append_tape<S: TapeStore>(store: &S, id: &str, frames: &[Frame]) -> Duration {
    let mut w = store.create(header(id, "s")).await.unwrap();
    let start = Instant::now();
    for batch in frames.chunks(BATCH) {
        w.append(batch).await.unwrap();
    }
    let took = start.elapsed();
    w.finish(summary(frames), EndReason::Completed)
        .await
        .unwrap();
    took
}

/// Fills a store with `tapes` ten-frame tapes over 100 sessions.
pub async fn fill<S: TapeStore>(store: &S, tapes: u64) {
    let ten = frames(10, 200);
    let s = summary(&ten);
    for t in 0..tapes {
        store
            .save(
                header(&format!("t{t:07}"), &format!("session-{}", t % 100)),
                &ten,
                s.clone(),
                EndReason::Completed,
            )
            .await
            .unwrap();
    }
}

/// The small operations: the name `--profile` and criterion use, and the
/// name the table prints.
pub const SMALL_OPS: [(&str, &str); 3] = [
    ("read", "read a 10-frame tape"),
    ("list", "list 100 tapes"),
    ("search", "search by session"),
];

/// One small operation on a store [`fill`]ed with 200 tapes, checked.
pub async fn small_op<S: TapeStore>(store: &S, op: &str) {
    match op {
        "read" => {
            let f = store
                .read_frames("t0000007", 0, 10, u64::MAX)
                .await
                .unwrap();
            assert_eq!(f.len(), 10);
        }
        "list" => {
            let page = store.list(&TapeFilter::default(), None, 100).await.unwrap();
            assert_eq!(page.tapes.len(), 100);
        }
        "search" => {
            let page = store.search(&by_session(), None, 100).await.unwrap();
            assert_eq!(page.tapes.len(), 2);
        }
        other => panic!("unknown operation {other:?}: read, list or search"),
    }
}

/// A search for one session's tapes.
pub fn by_session() -> SearchQuery {
    SearchQuery {
        filter: TapeFilter {
            session_id: Some("session-42".into()),
            ..TapeFilter::default()
        },
        ..SearchQuery::default()
    }
}

/// Reads tape `id` page by page, verified against its digest as `tapedeck
/// export` does; returns the payload bytes read.
pub async fn export<S: TapeStore>(store: &S, id: &str) -> u64 {
    let info = store.get(id).await.unwrap();
    let mut read = 0u64;
    TapeReader::new(store)
        .read_verified(&info, |page| {
            read += page.iter().map(|f| f.payload.len() as u64).sum::<u64>();
            Ok::<(), std::convert::Infallible>(())
        })
        .await
        .unwrap();
    read
}

/// The embedded fs provider in the sandbox, storing in `dir`, without fsync.
pub async fn wasm(sandbox: &Sandbox, dir: &Path) -> WasmProvider {
    let spec = tapedeck::embedded::fs_provider_spec(dir)
        .with_config(serde_json::json!({ "root": "/tapes", "fsync": false }));
    WasmProvider::start(sandbox, &spec, Path::new("."))
        .await
        .unwrap()
}
