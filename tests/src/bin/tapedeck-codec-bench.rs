//! The host's codec over real MCP traffic: stored bytes as a fraction of
//! payload bytes, with compression alone and with compression and
//! encryption, and append throughput with each as a ratio of plain, all
//! measured in this run.
//!
//! The traffic is recorded first: the official Python SDK client runs
//! sessions against the Python and TypeScript SDK servers through
//! `tapedeck record` (both protocol eras, as the test suite's
//! `mcp_clients` does, with 20 `echo` calls per session and a 1 KiB `big`
//! answer instead of the suite's 200 KiB, whose repeated pattern would
//! flatter any compressor). Its tapes are exported and their frames stored
//! again, natively (the fs store without fsync), plain and through the
//! codec.
//!
//! `cargo run --release -p tapedeck-tests --bin tapedeck-codec-bench`
//! (needs `./scripts/guest-toolchains.sh`; `--runs N`, default 5).

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark fails loudly on what it did not expect"
)]

use std::time::{Duration, Instant};
use tapedeck::jsonl::JsonlReader;
use tapedeck::store::codec::{Codec, CodecSettings, TapeKeys};
use tapedeck::store::{DigestChain, TapeStore, TapeWriter};
use tapedeck::types::{EndReason, Frame, TapeHeader, TapeSummary};
use tapedeck_tests::mcp_sdk::{self, Sdk, ServerOptions, Workspace};
use tapedeck_tests::native::unsynced;

const SESSIONS: usize = 8;
const CALLS: usize = 20;
const BIG: usize = 1024;
const BATCH: usize = 64;

/// One recorded tape: its header and frames.
struct Recorded {
    header: TapeHeader,
    frames: Vec<Frame>,
}

fn record() -> Vec<Recorded> {
    let cache = std::env::temp_dir().join("tapedeck-codec-bench-cache");
    let ws = Workspace::new(&cache);
    ws.warm_up();
    let server = |sdk: Sdk| {
        serde_json::to_string(&ws.record_argv("sdk-{i}", &sdk.server(ServerOptions::default())))
            .unwrap()
    };
    let mut args = vec![
        "--sessions".to_string(),
        SESSIONS.to_string(),
        "--calls".into(),
        CALLS.to_string(),
        "--big".into(),
        BIG.to_string(),
    ];
    for (mode, sdk) in [
        ("legacy", Sdk::Python),
        ("2026-07-28", Sdk::Python),
        ("auto", Sdk::Python),
        ("auto", Sdk::TypeScript),
    ] {
        args.extend([
            "--mode".into(),
            mode.into(),
            "--command".into(),
            server(sdk),
        ]);
    }
    let run = mcp_sdk::run_client(Sdk::Python, &ws, &args, Duration::from_secs(300));
    assert!(
        run.status.success(),
        "the SDK client failed:\n{}",
        run.stderr
    );
    ws.list()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap();
            let jsonl = ws.run(&["export", id]);
            let mut reader = JsonlReader::new(jsonl.as_bytes()).unwrap();
            let mut frames = Vec::new();
            while let Some(f) = reader.next_frame().unwrap() {
                frames.push(f);
            }
            Recorded {
                header: reader.header.clone(),
                frames,
            }
        })
        .collect()
}

fn summary(frames: &[Frame]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: frames.last().map_or(0, |f| f.timestamp_us),
        digest: Some(DigestChain::over(frames).hex()),
        seal: None,
    }
}

/// Stores every tape in `store` by `create`, `append` in batches and
/// `finish`, under ids with `prefix`; returns the time taken.
async fn store_all<S: TapeStore>(store: &S, tapes: &[Recorded], prefix: &str) -> Duration {
    let start = Instant::now();
    for (i, t) in tapes.iter().enumerate() {
        let mut header = t.header.clone();
        header.id = format!("{prefix}-{i}");
        let mut w = store.create(header).await.unwrap();
        for batch in t.frames.chunks(BATCH) {
            w.append(batch).await.unwrap();
        }
        w.finish(summary(&t.frames), EndReason::Completed)
            .await
            .unwrap();
    }
    start.elapsed()
}

/// The payload bytes `store`'s provider holds for the tapes stored under
/// `prefix`.
async fn stored_bytes<S: TapeStore>(store: &S, count: usize, prefix: &str) -> u64 {
    let mut total = 0;
    for i in 0..count {
        total += store
            .get(&format!("{prefix}-{i}"))
            .await
            .unwrap()
            .byte_count;
    }
    total
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .map_or(5, |n| n.parse().expect("--runs N"));
    eprintln!("recording {SESSIONS} SDK sessions through tapedeck record…");
    let tapes = record();
    let frames: usize = tapes.iter().map(|t| t.frames.len()).sum();
    let payload: u64 = tapes
        .iter()
        .flat_map(|t| &t.frames)
        .map(|f| f.payload.len() as u64)
        .sum();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = std::sync::Arc::new(TapeKeys::generate().unwrap());
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let plain = unsynced(&dir.path().join("plain"));
        let compressed = Codec::new(unsynced(&dir.path().join("zstd")), CodecSettings::default());
        let encrypted = Codec::new(
            unsynced(&dir.path().join("aead")),
            CodecSettings::encrypted(keys),
        );
        let mut best = [Duration::MAX; 3];
        for run in 0..runs {
            let p = format!("r{run}");
            best[0] = best[0].min(store_all(&plain, &tapes, &p).await);
            best[1] = best[1].min(store_all(&compressed, &tapes, &p).await);
            best[2] = best[2].min(store_all(&encrypted, &tapes, &p).await);
        }
        let zstd = stored_bytes(compressed.get_ref(), tapes.len(), "r0").await;
        let aead = stored_bytes(encrypted.get_ref(), tapes.len(), "r0").await;
        let rate = |d: Duration| frames as f64 / d.as_secs_f64();
        println!(
            "{} tapes, {frames} frames, {payload} payload bytes (best of {runs} runs)",
            tapes.len()
        );
        println!("| | stored / payload | append throughput | ratio to plain |");
        println!("| --- | --- | --- | --- |");
        println!("| plain | 100% | {:.0} frames/s | 1.00 |", rate(best[0]));
        for (name, stored, d) in [
            ("compressed", zstd, best[1]),
            ("compressed + encrypted", aead, best[2]),
        ] {
            println!(
                "| {name} | {:.1}% | {:.0} frames/s | {:.2} |",
                100.0 * stored as f64 / payload as f64,
                rate(d),
                rate(d) / rate(best[0])
            );
        }
    });
}
