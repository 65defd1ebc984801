//! `tapedeck-bench`: the cost of the sandbox, measured against the same
//! storage logic run natively, in the same run.
//!
//! ```sh
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench            # every figure
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --quick # smaller sizes
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --json  # machine-readable
//! ```
//!
//! The same `fs-store` code runs twice: natively behind
//! [`NativeFsStore`], and as the embedded fs provider component in the
//! sandbox ([`WasmProvider`]); each figure is printed for both with the
//! ratio. Both use `fsync = false`, so the disk's sync latency does not hide
//! the sandbox's cost. Figures:
//!
//! * append throughput: 1 KiB frames in batches of 256 (as the recorder
//!   batches them);
//! * latency of small operations: read a 10-frame tape, list 100 tapes,
//!   search by session (median and p99 of many calls);
//! * export of a 10 MiB tape, verified against its digest (MiB/s);
//! * search over many tapes (100,000; 10,000 with `--quick`);
//! * provider start: cold (compiling, no cache) and warm (from the cache).
//!
//! Not yet here (see BENCHMARKS.md once written): 1,000 concurrent
//! recordings, the recorder proxy round trip, instantiation alone, the plot.

use std::path::Path;
use std::time::{Duration, Instant};
use tapedeck::integrity::TapeReader;
use tapedeck::recorder::DigestChain;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::{
    Direction, EndReason, Frame, SearchQuery, TapeFilter, TapeHeader, TapeSummary,
};
use tapedeck_tests::native::NativeFsStore;

/// One measured figure, for both runs.
struct Row {
    name: String,
    unit: &'static str,
    native: f64,
    wasm: f64,
    /// True when bigger is better (throughput); false for times.
    higher_is_better: bool,
}

impl Row {
    /// wasm ÷ native of the figure itself: a throughput ratio below 1 and a
    /// time ratio above 1 both mean the sandbox costs.
    fn ratio(&self) -> f64 {
        self.wasm / self.native
    }
}

/// Provider starts measured for the warm-start median.
const START_SAMPLES: usize = 9;

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

struct Sizes {
    append_frames: u64,
    small_ops: usize,
    export_bytes: u64,
    search_tapes: u64,
}

fn header(id: &str, session: &str) -> TapeHeader {
    TapeHeader {
        id: id.to_string(),
        session_id: session.to_string(),
        name: format!("bench {id}"),
        tags: vec![("bench".into(), "yes".into())],
        created_at_us: 1_700_000_000_000_000,
    }
}

fn frames(n: u64, size: usize) -> Vec<Frame> {
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
                payload,
                not_json: false,
            }
        })
        .collect()
}

fn summary(frames: &[Frame]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 1_700_000_000_000_000 + frames.len() as u64,
        digest: Some(DigestChain::over(frames).hex()),
    }
}

/// Frames per second appending `n` 1 KiB frames in batches of 256.
async fn append_throughput<S: TapeStore>(store: &S, n: u64) -> f64 {
    let all = frames(n, 1024);
    let mut w = store.create(header("append", "s")).await.unwrap();
    let start = Instant::now();
    for batch in all.chunks(256) {
        w.append(batch).await.unwrap();
    }
    let took = start.elapsed();
    w.finish(summary(&all), EndReason::Completed).await.unwrap();
    n as f64 / took.as_secs_f64()
}

/// Median and p99 of `iters` runs of `op`, in µs.
async fn latency<F, Fut>(iters: usize, mut op: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // Warm up.
    for _ in 0..iters.min(20) {
        op().await;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        op().await;
        times.push(t.elapsed());
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
    )
}

/// Fills a store with `tapes` ten-frame tapes over 100 sessions.
async fn fill<S: TapeStore>(store: &S, tapes: u64) {
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

/// The small operations, by the name `--profile` knows them and the name
/// the table prints.
const SMALL_OPS: [(&str, &str); 3] = [
    ("read", "read a 10-frame tape"),
    ("list", "list 100 tapes"),
    ("search", "search by session"),
];

/// One small operation on a store of 200 ten-frame tapes, checked.
async fn small_op<S: TapeStore>(store: &S, op: &str) {
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
        other => panic!("unknown operation {other:?}: read, list, search or append"),
    }
}

/// A search for one session's tapes.
fn by_session() -> SearchQuery {
    SearchQuery {
        filter: TapeFilter {
            session_id: Some("session-42".into()),
            ..TapeFilter::default()
        },
        ..SearchQuery::default()
    }
}

/// Small operations on a store of 200 ten-frame tapes: (name, p50, p99).
async fn small_ops<S: TapeStore>(store: &S, iters: usize) -> Vec<(&'static str, f64, f64)> {
    let mut out = Vec::new();
    for (op, name) in SMALL_OPS {
        let (p50, p99) = latency(iters, || small_op(store, op)).await;
        out.push((name, p50, p99));
    }
    out
}

/// MiB/s reading (and verifying) a tape of `bytes` in 1 KiB frames.
async fn export<S: TapeStore>(store: &S, bytes: u64) -> f64 {
    let all = frames(bytes / 1024, 1024);
    let mut w = store.create(header("export", "s")).await.unwrap();
    for batch in all.chunks(256) {
        w.append(batch).await.unwrap();
    }
    let info = w.finish(summary(&all), EndReason::Completed).await.unwrap();
    let start = Instant::now();
    let mut read = 0u64;
    TapeReader::new(store)
        .read_verified(&info, |page| {
            read += page.iter().map(|f| f.payload.len() as u64).sum::<u64>();
            Ok::<(), std::convert::Infallible>(())
        })
        .await
        .unwrap();
    read as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

/// µs for one search by session over a store of many tapes (median of 20).
async fn search_many<S: TapeStore>(store: &S) -> f64 {
    let (p50, _) = latency(20, || async {
        store.search(&by_session(), None, 10).await.unwrap();
    })
    .await;
    p50
}

fn native(dir: &Path) -> NativeFsStore {
    NativeFsStore::open(fs_store::FsConfig {
        root: dir.to_path_buf(),
        fsync: false,
    })
    .unwrap()
}

async fn wasm(sandbox: &Sandbox, dir: &Path) -> WasmProvider {
    let spec = tapedeck::embedded::fs_provider_spec(dir)
        .with_config(serde_json::json!({ "root": "/tapes", "fsync": false }));
    WasmProvider::start(sandbox, &spec, Path::new("."))
        .await
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let op = args.get(i + 1).map(String::as_str).unwrap_or("read");
        let native = args.iter().any(|a| a == "--native");
        return profile(op, native);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let sizes = if quick {
        Sizes {
            append_frames: 5_000,
            small_ops: 200,
            export_bytes: 2 << 20,
            search_tapes: 10_000,
        }
    } else {
        Sizes {
            append_frames: 50_000,
            small_ops: 2_000,
            export_bytes: 10 << 20,
            search_tapes: 100_000,
        }
    };
    // The cold start must compile: a private, empty component cache.
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("TAPEDECK_CACHE_DIR", cache.path()) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(run(&sizes));
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "unit": r.unit, "native": r.native,
                    "wasm": r.wasm, "ratio": r.ratio(),
                    "higher_is_better": r.higher_is_better,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<40} {:>14} {:>14} {:>10}  unit",
        "figure", "native", "wasm", "wasm/nat"
    );
    for r in &rows {
        println!(
            "{:<40} {:>14.1} {:>14.1} {:>10.2}  {}",
            r.name,
            r.native,
            r.wasm,
            r.ratio(),
            r.unit
        );
    }
}

async fn run(sizes: &Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new().unwrap();

    // Start: cold (compiles, fills the cache), then warm (from the cache).
    // Native: opening the store.
    let t = Instant::now();
    drop(wasm(&sandbox, &tmp.path().join("start-cold")).await);
    let cold = t.elapsed();
    // Warm start and native open: the median of several, as one sample is
    // noisy.
    let mut warm = Vec::new();
    let mut native_open = Vec::new();
    for i in 0..START_SAMPLES {
        let t = Instant::now();
        drop(wasm(&sandbox, &tmp.path().join(format!("start-warm-{i}"))).await);
        warm.push(t.elapsed());
        let t = Instant::now();
        drop(native(&tmp.path().join(format!("start-native-{i}"))));
        native_open.push(t.elapsed());
    }
    let warm = median(warm);
    let native_open = median(native_open);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    rows.push(Row {
        name: "provider start, cold (compile)".into(),
        unit: "ms",
        native: ms(native_open),
        wasm: ms(cold),
        higher_is_better: false,
    });
    rows.push(Row {
        name: "provider start, warm (cache)".into(),
        unit: "ms",
        native: ms(native_open),
        wasm: ms(warm),
        higher_is_better: false,
    });

    let n = native(&tmp.path().join("native"));
    let w = wasm(&sandbox, &tmp.path().join("wasm")).await;

    rows.push(Row {
        name: format!("append, 1 KiB frames x{}", sizes.append_frames),
        unit: "frames/s",
        native: append_throughput(&n, sizes.append_frames).await,
        wasm: append_throughput(&w, sizes.append_frames).await,
        higher_is_better: true,
    });

    fill(&n, 200).await;
    fill(&w, 200).await;
    let ns = small_ops(&n, sizes.small_ops).await;
    let ws = small_ops(&w, sizes.small_ops).await;
    for ((name, n50, n99), (_, w50, w99)) in ns.into_iter().zip(ws) {
        rows.push(Row {
            name: format!("{name}, p50"),
            unit: "µs",
            native: n50,
            wasm: w50,
            higher_is_better: false,
        });
        rows.push(Row {
            name: format!("{name}, p99"),
            unit: "µs",
            native: n99,
            wasm: w99,
            higher_is_better: false,
        });
    }

    rows.push(Row {
        name: format!("export {} MiB, verified", sizes.export_bytes >> 20),
        unit: "MiB/s",
        native: export(&n, sizes.export_bytes).await,
        wasm: export(&w, sizes.export_bytes).await,
        higher_is_better: true,
    });

    let n_big = native(&tmp.path().join("native-many"));
    let w_big = wasm(&sandbox, &tmp.path().join("wasm-many")).await;
    fill(&n_big, sizes.search_tapes).await;
    fill(&w_big, sizes.search_tapes).await;
    rows.push(Row {
        name: format!("search by session over {} tapes", sizes.search_tapes),
        unit: "µs",
        native: search_many(&n_big).await,
        wasm: search_many(&w_big).await,
        higher_is_better: false,
    });
    rows
}

/// `--profile OP [--native]`: runs one operation in a loop for about ten
/// seconds, on one side only, so a profiler (`perf record`, `valgrind
/// --tool=callgrind`) sees nothing else. OP is `read`, `list`, `search` or
/// `append`.
fn profile(op: &str, native_side: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let iters: usize = std::env::var("TAPEDECK_PROFILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        if native_side {
            let n = native(&tmp.path().join("native"));
            profile_on(&n, op, iters).await;
        } else {
            let sandbox = Sandbox::new().unwrap();
            let w = wasm(&sandbox, &tmp.path().join("wasm")).await;
            profile_on(&w, op, iters).await;
        }
    });
}

async fn profile_on<S: TapeStore>(store: &S, op: &str, iters: usize) {
    fill(store, 200).await;
    let start = Instant::now();
    match op {
        "append" => {
            let all = frames(256, 1024);
            let mut w = store.create(header("append", "s")).await.unwrap();
            let mut seq = 0;
            for _ in 0..iters / 10 {
                let batch: Vec<Frame> = all
                    .iter()
                    .map(|f| {
                        let mut f = f.clone();
                        f.seq = seq;
                        seq += 1;
                        f
                    })
                    .collect();
                w.append(&batch).await.unwrap();
            }
        }
        _ => {
            for _ in 0..iters {
                small_op(store, op).await;
            }
        }
    }
    eprintln!("{op}: {iters} iterations in {:?}", start.elapsed());
}
