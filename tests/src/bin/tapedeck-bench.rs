//! `tapedeck-bench`: the cost of the sandbox, measured against the same
//! storage logic run natively, in the same run.
//!
//! ```sh
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench            # every figure
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --quick # smaller sizes
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --json  # machine-readable
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --plot bench.png
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --runs 3  # median of 3 runs
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --languages  # providers per language
//! cargo run --release -p tapedeck-tests --bin tapedeck-bench -- --profile read [--native]
//! ```
//!
//! The same `fs-store` code runs natively behind [`NativeFsStore`] and as the
//! embedded fs provider component in the sandbox ([`WasmProvider`]); each
//! figure is printed for both with the ratio wasm ÷ native. Both use
//! `fsync = false`, so the disk's sync latency does not hide the sandbox's
//! cost. The figures are listed in BENCHMARKS.md. `--profile OP` runs one
//! operation in a loop for a profiler instead.
//!
//! [`NativeFsStore`]: tapedeck_tests::native::NativeFsStore

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck::recorder::{Recorder, RecorderOptions, TapeMeta, run_proxy};
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{ComponentSource, Limits, Sandbox, WasmProvider};
use tapedeck::spool::Spool;
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::{Direction, Frame};
use tapedeck::units::Millis;
use tapedeck_tests::timed::TimedStore;
use tapedeck_tests::workload::{self, SMALL_OPS, fill, frames, native, small_op, wasm};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One measured figure.
struct Row {
    name: String,
    unit: &'static str,
    /// The baseline: the native store, the on-demand allocator, or the
    /// server run directly.
    native: f64,
    wasm: f64,
    /// The goal the issue sets, as printed.
    goal: &'static str,
}

impl Row {
    fn new(name: impl Into<String>, unit: &'static str, native: f64, wasm: f64) -> Row {
        Row {
            name: name.into(),
            unit,
            native,
            wasm,
            goal: "",
        }
    }

    fn goal(mut self, goal: &'static str) -> Row {
        self.goal = goal;
        self
    }

    /// wasm ÷ native of the figure itself: a throughput ratio below 1 and a
    /// time ratio above 1 both mean the sandbox costs.
    fn ratio(&self) -> f64 {
        self.wasm / self.native
    }
}

/// Provider starts measured for the warm-start median.
const START_SAMPLES: usize = 9;
/// Instantiations measured for the instantiation median.
const INSTANTIATIONS: usize = 200;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The `q` quantile (0..=1) of sorted `times`, in µs.
fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

struct Sizes {
    append_frames: u64,
    small_ops: usize,
    export_bytes: u64,
    search_tapes: u64,
    recordings: usize,
    frames_per_recording: usize,
    round_trips: usize,
    /// The recorder's `batch-recordings` (`--no-batch-recordings`: off).
    batch_recordings: bool,
}

const FULL: Sizes = Sizes {
    append_frames: 50_000,
    small_ops: 2_000,
    export_bytes: 10 << 20,
    search_tapes: 100_000,
    recordings: 1_000,
    frames_per_recording: 100,
    round_trips: 5_000,
    batch_recordings: true,
};

const QUICK: Sizes = Sizes {
    append_frames: 5_000,
    small_ops: 200,
    export_bytes: 2 << 20,
    search_tapes: 10_000,
    recordings: 1_000,
    frames_per_recording: 10,
    round_trips: 500,
    batch_recordings: true,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg_after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    if args.first().map(String::as_str) == Some("--serve-echo") {
        return serve_echo();
    }
    if args.iter().any(|a| a == "--languages") {
        return languages();
    }
    if args.iter().any(|a| a == "--profile") {
        let op = arg_after("--profile").unwrap_or_else(|| "read".into());
        return profile(&op, args.iter().any(|a| a == "--native"));
    }
    let mut sizes = if args.iter().any(|a| a == "--quick") {
        QUICK
    } else {
        FULL
    };
    sizes.batch_recordings = !args.iter().any(|a| a == "--no-batch-recordings");
    let runs: usize = arg_after("--runs")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    tapedeck::rlimit::raise_open_files();
    let rt = runtime();
    let mut all = Vec::new();
    for i in 0..runs {
        if runs > 1 {
            eprintln!("run {} of {runs}", i + 1);
        }
        all.push(rt.block_on(run(&sizes)));
    }
    let rows = medians(all);
    if args.iter().any(|a| a == "--json") {
        print_json(&rows);
    } else {
        print_table(&rows);
    }
    if let Some(png) = arg_after("--plot") {
        match plot(&rows, Path::new(&png)) {
            Ok(()) => eprintln!("plot written to {png}"),
            Err(e) => eprintln!("no plot: {e}"),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<46} {:>12} {:>12} {:>9}  {:<9} goal",
        "figure", "native", "wasm", "wasm/nat", "unit"
    );
    for r in rows {
        println!(
            "{:<46} {:>12.1} {:>12.1} {:>9.2}  {:<9} {}",
            r.name,
            r.native,
            r.wasm,
            r.ratio(),
            r.unit,
            r.goal
        );
    }
}

fn print_json(rows: &[Row]) {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name, "unit": r.unit, "native": r.native,
                "wasm": r.wasm, "ratio": r.ratio(), "goal": r.goal,
            })
        })
        .collect();
    println!("{}", serde_json::Value::Array(rows));
}

/// Each figure's median over the runs (all runs list the same figures in
/// the same order).
fn medians(mut runs: Vec<Vec<Row>>) -> Vec<Row> {
    let mut rows = runs.pop().expect("at least one run");
    for (i, row) in rows.iter_mut().enumerate() {
        let mut natives: Vec<f64> = runs.iter().map(|r| r[i].native).collect();
        let mut wasms: Vec<f64> = runs.iter().map(|r| r[i].wasm).collect();
        natives.push(row.native);
        wasms.push(row.wasm);
        natives.sort_by(f64::total_cmp);
        wasms.sort_by(f64::total_cmp);
        row.native = natives[natives.len() / 2];
        row.wasm = wasms[wasms.len() / 2];
    }
    rows
}

async fn run(sizes: &Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    // The cold start must compile: a private, empty component cache.
    let cache = ComponentCache::at(tmp.path().join("cache"));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // The allocator `tapedeck` itself uses: pooling, sized for the provider.
    let pooled = Sandbox::builder()
        .cache(Some(cache.clone()))
        .pooling_for([&Limits::default()])
        .build()
        .unwrap();
    let on_demand = Sandbox::builder().cache(Some(cache)).build().unwrap();
    eprintln!("allocator: {}", pooled.engine().allocator());

    // Start: cold (compiles, fills the cache), then warm (from the cache).
    // Native: opening the store.
    let t = Instant::now();
    drop(wasm(&pooled, &tmp.path().join("start-cold")).await);
    let cold = t.elapsed();
    let mut warm = Vec::new();
    let mut native_open = Vec::new();
    for i in 0..START_SAMPLES {
        let t = Instant::now();
        drop(wasm(&pooled, &tmp.path().join(format!("start-warm-{i}"))).await);
        warm.push(t.elapsed());
        let t = Instant::now();
        drop(native(&tmp.path().join(format!("start-native-{i}"))));
        native_open.push(t.elapsed());
    }
    let native_open = median(native_open);
    rows.push(Row::new(
        "provider start, cold (compile)",
        "ms",
        ms(native_open),
        ms(cold),
    ));
    rows.push(
        Row::new(
            "provider start, warm (cache)",
            "ms",
            ms(native_open),
            ms(median(warm)),
        )
        .goal("< 10 ms"),
    );
    // A native store has no instance to create: the baseline of the pooling
    // allocator is the on-demand one.
    let mut inst = Vec::new();
    for (name, sandbox) in [("pooling", &pooled), ("on demand", &on_demand)] {
        let p = wasm(sandbox, &tmp.path().join(format!("inst-{name}"))).await;
        let mut times = Vec::new();
        for _ in 0..INSTANTIATIONS {
            times.push(p.time_instantiation().await.unwrap());
        }
        inst.push(us(median(times)));
    }
    rows.push(
        Row::new(
            "instantiation, pooling (native: on demand)",
            "µs",
            inst[1],
            inst[0],
        )
        .goal("< 100 µs"),
    );

    let n = native(&tmp.path().join("native"));
    let w = wasm(&pooled, &tmp.path().join("wasm")).await;

    let all = frames(sizes.append_frames, 1024);
    let per_s = |d: Duration| sizes.append_frames as f64 / d.as_secs_f64();
    rows.push(
        Row::new(
            format!("append, 1 KiB frames x{}", sizes.append_frames),
            "frames/s",
            per_s(workload::append_tape(&n, "append", &all).await),
            per_s(workload::append_tape(&w, "append", &all).await),
        )
        .goal("ratio ≥ 0.75"),
    );

    fill(&n, 200).await;
    fill(&w, 200).await;
    for (op, name) in SMALL_OPS {
        let (n50, n99) = latency(sizes.small_ops, || small_op(&n, op)).await;
        let (w50, w99) = latency(sizes.small_ops, || small_op(&w, op)).await;
        rows.push(Row::new(format!("{name}, p50"), "µs", n50, w50).goal("ratio ≤ 1.3"));
        rows.push(Row::new(format!("{name}, p99"), "µs", n99, w99));
    }

    let all = frames(sizes.export_bytes / 1024, 1024);
    workload::append_tape(&n, "export", &all).await;
    workload::append_tape(&w, "export", &all).await;
    rows.push(Row::new(
        format!("export {} MiB, verified", sizes.export_bytes >> 20),
        "MiB/s",
        export_rate(&n).await,
        export_rate(&w).await,
    ));
    drop((n, w));

    let n_big = native(&tmp.path().join("native-many"));
    let w_big = wasm(&pooled, &tmp.path().join("wasm-many")).await;
    fill(&n_big, sizes.search_tapes).await;
    fill(&w_big, sizes.search_tapes).await;
    rows.push(
        Row::new(
            format!("search by session over {} tapes", sizes.search_tapes),
            "µs",
            search_p50(&n_big).await,
            search_p50(&w_big).await,
        )
        .goal("< 10 ms"),
    );
    drop((n_big, w_big));

    let nat = recordings(
        native(&tmp.path().join("rec-native")),
        &tmp.path().join("rec-native"),
        sizes,
    )
    .await;
    let was = recordings(
        wasm(&pooled, &tmp.path().join("rec-wasm")).await,
        &tmp.path().join("rec-wasm"),
        sizes,
    )
    .await;
    let label = format!("{} concurrent recordings", sizes.recordings);
    rows.push(Row::new(
        format!("{label}: throughput"),
        "frames/s",
        nat.throughput,
        was.throughput,
    ));
    rows.push(Row::new(
        format!("{label}: append p50"),
        "µs",
        nat.p50,
        was.p50,
    ));
    rows.push(Row::new(
        format!("{label}: append p99"),
        "µs",
        nat.p99,
        was.p99,
    ));
    rows.push(
        Row::new(
            format!("{label}: host RSS per recording"),
            "KiB",
            nat.rss_kib,
            was.rss_kib,
        )
        .goal("< 64 KiB"),
    );

    let (direct, proxied) = round_trips(&pooled, sizes.round_trips, tmp.path()).await;
    for (i, q) in ["p50", "p95", "p99"].into_iter().enumerate() {
        let mut row = Row::new(
            format!("proxy round trip {q} (native: direct)"),
            "µs",
            direct[i],
            proxied[i],
        );
        if q == "p95" {
            row = row.goal("adds < 1%");
        }
        rows.push(row);
    }
    rows
}

/// Median and p99 of `iters` runs of `op`, in µs, after a warm-up.
async fn latency<F, Fut>(iters: usize, mut op: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
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
    (quantile_us(&times, 0.5), quantile_us(&times, 0.99))
}

/// Median µs of a search by session (20 runs).
async fn search_p50<S: TapeStore>(store: &S) -> f64 {
    let (p50, _) = latency(20, || async {
        store
            .search(&workload::by_session(), None, 10)
            .await
            .unwrap();
    })
    .await;
    p50
}

/// MiB/s reading (and verifying) the tape `export`.
async fn export_rate<S: TapeStore>(store: &S) -> f64 {
    let start = Instant::now();
    let read = workload::export(store, "export").await;
    read as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

/// The 1,000-recordings figures for one store.
struct Recordings {
    throughput: f64,
    p50: f64,
    p99: f64,
    rss_kib: f64,
}

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

/// `sizes.recordings` recordings through one [`Recorder`] with its spool, all
/// open at once, each recording `sizes.frames_per_recording` 1 KiB frames.
async fn recordings<S: TapeStore + 'static>(store: S, dir: &Path, sizes: &Sizes) -> Recordings {
    let timed = Arc::new(TimedStore::new(store));
    // Beside the provider's directory, never in it (a provider is never
    // granted the spool).
    let mut spool_dir = dir.as_os_str().to_owned();
    spool_dir.push("-spool");
    let spool = Spool::open(std::path::PathBuf::from(spool_dir)).unwrap();
    let key = tapedeck::spool::provider_key(&tapedeck::embedded::fs_provider_spec(dir), dir);
    let options = RecorderOptions {
        // Hundreds of recordings share two threads: the end waits its turn.
        end_timeout: Millis(600_000),
        batch_recordings: sizes.batch_recordings,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::new(timed.clone(), options).with_spool(spool, key);
    let payload = frames(1, 1024).remove(0).payload;
    let before = rss();
    let start = Instant::now();
    let mut open = Vec::new();
    for t in 0..sizes.recordings {
        let meta = TapeMeta {
            session_id: format!("session-{t}"),
            name: format!("load {t}"),
            tags: Vec::new(),
        };
        open.push(recorder.start(meta).await.unwrap());
    }
    // Everyone records; RSS is read with all of them open and busy.
    let mut peak = 0;
    for k in 0..sizes.frames_per_recording {
        for (t, r) in open.iter().enumerate() {
            let d = if (t + k) % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            r.record(d, payload.clone());
        }
        tokio::task::yield_now().await;
        if k == sizes.frames_per_recording / 2 {
            peak = rss();
        }
    }
    let mut tasks = Vec::new();
    for r in open {
        tasks.push(tokio::spawn(async move { r.finish().await.unwrap() }));
    }
    for t in tasks {
        let outcome = t.await.unwrap();
        assert_eq!(
            outcome.summary.frame_count,
            sizes.frames_per_recording as u64
        );
    }
    let took = start.elapsed();
    let mut appends = timed.take();
    appends.sort();
    Recordings {
        throughput: (sizes.recordings * sizes.frames_per_recording) as f64 / took.as_secs_f64(),
        p50: quantile_us(&appends, 0.5),
        p99: quantile_us(&appends, 0.99),
        rss_kib: peak.saturating_sub(before) as f64 / 1024.0 / sizes.recordings as f64,
    }
}

/// Round trips measured per block; the two sides alternate block by block.
const ROUND_TRIP_BLOCK: usize = 50;

/// p50, p95 and p99 (µs) of `n` JSON-RPC round trips with the echo server,
/// directly and through the recorder proxy that `tapedeck record` runs
/// (recording into the sandboxed fs provider with its spool). Both sessions
/// are open at once and take turns in blocks, so a noisy neighbour or a
/// frequency change hits both alike.
async fn round_trips(sandbox: &Sandbox, n: usize, dir: &Path) -> ([f64; 3], [f64; 3]) {
    let exe = std::env::current_exe().unwrap();
    let command: Vec<OsString> = vec![exe.into(), "--serve-echo".into()];

    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut direct_to = child.stdin.take().unwrap();
    let mut direct_from = BufReader::new(child.stdout.take().unwrap());

    let store_dir: PathBuf = dir.join("proxy");
    let provider = wasm(sandbox, &store_dir).await;
    let spool = Spool::open(dir.join("proxy-spool")).unwrap();
    let key = tapedeck::spool::provider_key(&tapedeck::embedded::fs_provider_spec(&store_dir), dir);
    let recorder =
        Recorder::new(Arc::new(provider), RecorderOptions::default()).with_spool(spool, key);
    let (mut proxy_to, proxy_in) = tokio::io::duplex(1 << 16);
    let (proxy_out, proxy_from) = tokio::io::duplex(1 << 16);
    let meta = TapeMeta {
        session_id: "bench".into(),
        name: "proxy round trips".into(),
        tags: Vec::new(),
    };
    let proxy =
        tokio::spawn(
            async move { run_proxy(&recorder, &command, meta, proxy_in, proxy_out).await },
        );
    let mut proxy_from = BufReader::new(proxy_from);

    // Warm up both, then alternate.
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    exchange(&mut direct_to, &mut direct_from, 0..50, &mut Vec::new()).await;
    exchange(&mut proxy_to, &mut proxy_from, 0..50, &mut Vec::new()).await;
    let mut next = 50;
    while direct.len() < n {
        let ids = next..next + ROUND_TRIP_BLOCK;
        exchange(&mut direct_to, &mut direct_from, ids.clone(), &mut direct).await;
        exchange(&mut proxy_to, &mut proxy_from, ids, &mut proxied).await;
        next += ROUND_TRIP_BLOCK;
    }
    drop((direct_to, proxy_to));
    child.wait().await.unwrap();
    proxy.await.unwrap().unwrap();
    let quantiles = |mut times: Vec<Duration>| {
        times.sort();
        [0.5, 0.95, 0.99].map(|q| quantile_us(&times, q))
    };
    (quantiles(direct), quantiles(proxied))
}

/// Sends one request per id, one at a time, and times each answer.
async fn exchange(
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    from: &mut (impl tokio::io::AsyncBufRead + Unpin),
    ids: std::ops::Range<usize>,
    times: &mut Vec<Duration>,
) {
    let mut line = String::new();
    for i in ids {
        let req = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"hello\"}}}}}}\n"
        );
        let t = Instant::now();
        to.write_all(req.as_bytes()).await.unwrap();
        to.flush().await.unwrap();
        line.clear();
        from.read_line(&mut line).await.unwrap();
        times.push(t.elapsed());
        assert!(line.contains(&format!("\"id\":{i},")), "{line}");
    }
}

/// `--serve-echo`: a minimal JSON-RPC server on stdio answering each request
/// line with a result carrying its id, for the proxy round trip.
fn serve_echo() {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.unwrap();
        let id = line
            .split("\"id\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("null");
        writeln!(
            out,
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"hello\"}}]}}}}"
        )
        .unwrap();
        out.flush().unwrap();
    }
}

/// `--profile OP [--native]`: runs one operation in a loop for about ten
/// seconds, on one side only, so a profiler (`perf record`, `valgrind
/// --tool=callgrind`) sees nothing else. OP is `read`, `list`, `search` or
/// `append`; `TAPEDECK_PROFILE_ITERS` sets the number of iterations.
fn profile(op: &str, native_side: bool) {
    let iters: usize = std::env::var("TAPEDECK_PROFILE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    runtime().block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        if native_side {
            profile_on(&native(&tmp.path().join("native")), op, iters).await;
        } else {
            let sandbox = Sandbox::builder()
                .pooling_for([&Limits::default()])
                .build()
                .unwrap();
            profile_on(&wasm(&sandbox, &tmp.path().join("wasm")).await, op, iters).await;
        }
    });
}

async fn profile_on<S: TapeStore>(store: &S, op: &str, iters: usize) {
    fill(store, 200).await;
    let start = Instant::now();
    if op == "append" {
        let all = frames(256, 1024);
        let mut w = store.create(workload::header("append", "s")).await.unwrap();
        let mut seq = 0;
        for _ in 0..iters / 10 {
            let batch: Vec<Frame> = all
                .iter()
                .map(|f| {
                    let f = Frame { seq, ..f.clone() };
                    seq += 1;
                    f
                })
                .collect();
            w.append(&batch).await.unwrap();
        }
    } else {
        for _ in 0..iters {
            small_op(store, op).await;
        }
    }
    eprintln!("{op}: {iters} iterations in {:?}", start.elapsed());
}

/// Draws the ratio of every figure as a bar from 1 (as fast
/// as native) on a log scale, for BENCHMARKS.md: right of 1 the sandbox
/// costs, left of it the sandbox does better.
fn plot(rows: &[Row], png: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    use plotters::style::{FontStyle, register_font};
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT)
        .map_err(|e| format!("cannot read {FONT} ({e}); apt-get install fonts-dejavu-core"))?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "the font could not be loaded".to_string())?;
    // Every ratio as "times slower" (> 1 means the sandbox costs), whichever
    // direction the figure runs.
    let bars: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            let q = r.ratio();
            let slower = if r.unit.ends_with("/s") { 1.0 / q } else { q };
            (r.name.clone(), slower)
        })
        .collect();
    let height = 120 + 28 * bars.len() as u32;
    let root = BitMapBackend::new(png, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = bars.iter().map(|b| b.1).fold(2.0f64, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "tapedeck: sandbox cost (wasm ÷ native, 1 = native speed)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(380)
        .build_cartesian_2d(
            (0.1f64..max).log_scale(),
            (0..bars.len() as i32).into_segmented(),
        )
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("times slower than native (log scale)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let i = i as i32;
            let color = if *v <= 1.3 {
                GREEN.mix(0.7)
            } else {
                RED.mix(0.6)
            };
            Rectangle::new(
                [
                    (1.0, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![
                (1.0, SegmentValue::Exact(0)),
                (1.0, SegmentValue::Exact(bars.len() as i32)),
            ],
            BLACK.stroke_width(2),
        )))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// `--languages`: the same operations on the provider of each language, in
/// the sandbox, against the Rust fs provider: component size, cold start
/// (compiling, empty cache), warm start, append throughput and the latency
/// of reading a 10-frame tape.
fn languages() {
    tapedeck::rlimit::raise_open_files();
    let mut sources: Vec<(String, ComponentSource)> =
        vec![("rust (fs)".into(), tapedeck::embedded::fs_provider_source())];
    for (name, artifact) in tapedeck_tests::artifacts::OTHER_LANGUAGES {
        match artifact {
            Ok(path) => sources.push((
                name.trim_end_matches("-provider").into(),
                ComponentSource::File(path.into()),
            )),
            Err(why) => eprintln!("{name} is missing: {why}"),
        }
    }
    println!(
        "{:<12} {:>9} {:>10} {:>9} {:>12} {:>8} {:>10} {:>8}",
        "language", "size MB", "cold ms", "warm ms", "append f/s", "vs rust", "read µs", "vs rust"
    );
    let rt = runtime();
    let mut base: Option<(f64, f64)> = None;
    for (name, source) in sources {
        let size = match &source {
            ComponentSource::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            ComponentSource::Bytes { bytes, .. } => bytes.len() as u64,
        };
        let (cold, warm, append, read) = rt.block_on(language_figures(source));
        let (a0, r0) = *base.get_or_insert((append, read));
        println!(
            "{:<12} {:>9.1} {:>10.0} {:>9.1} {:>12.0} {:>8.2} {:>10.1} {:>8.2}",
            name,
            size as f64 / 1e6,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            append,
            append / a0,
            read,
            read / r0
        );
    }
}

/// Cold start, warm start, append frames/s (5,000 1 KiB frames) and the
/// median µs of reading a 10-frame tape (200 reads) for one component.
async fn language_figures(source: ComponentSource) -> (Duration, Duration, f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let cache = ComponentCache::at(tmp.path().join("cache"));
    let sandbox = Sandbox::builder()
        .cache(Some(cache))
        .pooling_for([&Limits::default()])
        .build()
        .unwrap();
    let start = |dir: &str| {
        let mut spec = tapedeck::embedded::fs_provider_spec(tmp.path().join(dir))
            .with_config(serde_json::json!({ "root": "/tapes", "fsync": false }));
        spec.component = source.clone();
        let sandbox = sandbox.clone();
        async move {
            let t = Instant::now();
            let p = WasmProvider::start(&sandbox, &spec, Path::new("."))
                .await
                .unwrap();
            (p, t.elapsed())
        }
    };
    let (_, cold) = start("cold").await;
    let mut warm = Vec::new();
    for i in 0..5 {
        warm.push(start(&format!("warm-{i}")).await.1);
    }
    let (p, _) = start("work").await;
    let all = frames(5_000, 1024);
    let took = workload::append_tape(&p, "append", &all).await;
    fill(&p, 200).await;
    let (read, _) = latency(200, || small_op(&p, "read")).await;
    (
        cold,
        median(warm),
        all.len() as f64 / took.as_secs_f64(),
        read,
    )
}
