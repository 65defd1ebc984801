//! `tapedeck-pg-bench`: appends per second into one PostgreSQL database from
//! several concurrent recorder processes, each running the sandboxed
//! PostgreSQL provider, against the same run with one process (the
//! baseline) and against the embedded fs provider on local disk.
//!
//! ```sh
//! cargo run --release -p tapedeck-tests --bin tapedeck-pg-bench            # 1, 2, 4 processes
//! cargo run --release -p tapedeck-tests --bin tapedeck-pg-bench -- --quick
//! cargo run --release -p tapedeck-tests --bin tapedeck-pg-bench -- --json
//! ```
//!
//! It starts its own PostgreSQL (127.0.0.1, a temporary directory, like the
//! tests; `fsync=off`, so the figures are the provider's and the server's
//! CPU, not this machine's disk). Each process records `sessions`
//! concurrent tapes of `frames` 1 KiB frames in batches of 32 (what the
//! recorder sends at a few hundred frames per second per session). The
//! processes start together once all are ready; the figure is all frames
//! over the wall time from start to the last process done.
//!
//! Children are this binary, run as `--writer <port> <password> <sessions>
//! <frames>`: they print `ready`, wait for a line on stdin, record, and
//! print a JSON result.

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{ComponentSource, Grants, Limits, ProviderSpec, Sandbox, WasmProvider};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::EndReason;
use tapedeck_tests::postgres::PgServer;
use tapedeck_tests::workload::{frames, header, summary};

/// Frames per append: a recorder's batch at a few hundred frames/s.
const BATCH: usize = 32;
/// Payload bytes per frame.
const FRAME_BYTES: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--writer") {
        return writer(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let (sessions, frames_per) = if quick { (4, 320) } else { (8, 1_600) };
    let pg = PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    // Compile the component into the cache once, outside the timing.
    let cache = std::env::temp_dir().join("tapedeck-pg-bench-cache");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        provider(&pg.provider_config("warmup"), &pg.grant(), &cache, 1).await;
    });
    let fs = rt.block_on(fs_figure(sessions, frames_per, &cache));
    let mut rows = Vec::new();
    for processes in [1usize, 2, 4] {
        let r = run(&pg, processes, sessions, frames_per, &cache);
        rows.push((processes, r));
    }
    let base = rows[0].1.frames_per_s;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(p, r)| {
                serde_json::json!({
                    "processes": p, "sessions": p * sessions, "frames_per_s": r.frames_per_s,
                    "mib_per_s": r.frames_per_s * FRAME_BYTES as f64 / (1 << 20) as f64,
                    "appends_per_s": r.frames_per_s / BATCH as f64,
                    "append_p50_us": r.p50_us, "append_p99_us": r.p99_us,
                    "vs_one_process": r.frames_per_s / base, "vs_fs": r.frames_per_s / fs,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "fs_frames_per_s": fs, "postgres": out })
        );
        return;
    }
    println!(
        "{sessions} sessions per process, {frames_per} frames of {FRAME_BYTES} B per session, batches of {BATCH}"
    );
    println!("fs provider, 1 process (reference): {fs:.0} frames/s");
    println!(
        "{:>9} {:>9} {:>11} {:>9} {:>10} {:>10} {:>10} {:>9} {:>7}",
        "processes",
        "sessions",
        "frames/s",
        "MiB/s",
        "appends/s",
        "p50 µs",
        "p99 µs",
        "vs 1 proc",
        "vs fs"
    );
    for (p, r) in &rows {
        println!(
            "{:>9} {:>9} {:>11.0} {:>9.1} {:>10.0} {:>10.0} {:>10.0} {:>9.2} {:>7.2}",
            p,
            p * sessions,
            r.frames_per_s,
            r.frames_per_s * FRAME_BYTES as f64 / (1 << 20) as f64,
            r.frames_per_s / BATCH as f64,
            r.p50_us,
            r.p99_us,
            r.frames_per_s / base,
            r.frames_per_s / fs
        );
    }
}

struct Figure {
    frames_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// `processes` writer processes at once; frames/s over the wall time.
fn run(
    pg: &PgServer,
    processes: usize,
    sessions: usize,
    frames_per: usize,
    cache: &Path,
) -> Figure {
    let schema = format!("bench{processes}");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args(["--writer", &pg.port().to_string(), pg.password(), &schema])
                .arg(sessions.to_string())
                .arg(frames_per.to_string())
                .env("TAPEDECK_PG_BENCH_CACHE", cache)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a writer")
        })
        .collect();
    let mut readers: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for r in &mut readers {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "a writer failed to start");
    }
    let start = Instant::now();
    for c in &mut children {
        writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut latencies = Vec::new();
    let mut total = 0u64;
    for r in &mut readers {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("a writer failed: {e}: {line:?}"));
        total += v["frames"].as_u64().unwrap();
        latencies.extend(
            v["latencies_us"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap()),
        );
    }
    let wall = start.elapsed();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    latencies.sort_by(f64::total_cmp);
    let q = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Figure {
        frames_per_s: total as f64 / wall.as_secs_f64(),
        p50_us: q(0.5),
        p99_us: q(0.99),
    }
}

async fn provider(
    config: &serde_json::Value,
    grant: &str,
    cache: &Path,
    instances: u64,
) -> WasmProvider {
    let spec = ProviderSpec::new(
        "postgres",
        ComponentSource::File(tapedeck_tests::artifacts::POSTGRES_PROVIDER.into()),
    )
    .with_config(config.clone())
    .with_grants(Grants {
        network: vec![grant.into()],
        ..Grants::default()
    })
    .with_limits(Limits {
        instances,
        ..Limits::default()
    });
    let sandbox = Sandbox::builder()
        .cache(Some(ComponentCache::at(cache.to_path_buf())))
        .build()
        .unwrap();
    WasmProvider::start(&sandbox, &spec, Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Records `sessions` tapes at once into `store`; returns the append
/// latencies in µs.
async fn record<S: TapeStore + 'static>(
    store: Arc<S>,
    sessions: usize,
    frames_per: usize,
    tag: &str,
) -> Vec<f64> {
    let all = Arc::new(frames(frames_per as u64, FRAME_BYTES));
    let tasks: Vec<_> = (0..sessions)
        .map(|s| {
            let (store, all) = (store.clone(), all.clone());
            let id = format!("{tag}-{s}");
            tokio::spawn(async move {
                let mut w = store.create(header(&id, &id)).await.unwrap();
                let mut lat = Vec::new();
                for batch in all.chunks(BATCH) {
                    let t = Instant::now();
                    w.append(batch).await.unwrap();
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                w.finish(summary(&all), EndReason::Completed).await.unwrap();
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    lat
}

/// The same workload, one process, into the embedded fs provider.
async fn fs_figure(sessions: usize, frames_per: usize, cache: &Path) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let spec = tapedeck::embedded::fs_provider_spec(dir.path().join("tapes"))
        .with_config(serde_json::json!({ "root": "/tapes", "fsync": false }));
    let sandbox = Sandbox::builder()
        .cache(Some(ComponentCache::at(cache.to_path_buf())))
        .build()
        .unwrap();
    let store = Arc::new(
        WasmProvider::start(&sandbox, &spec, dir.path())
            .await
            .unwrap(),
    );
    let start = Instant::now();
    record(store, sessions, frames_per, "fs").await;
    (sessions * frames_per) as f64 / start.elapsed().as_secs_f64()
}

/// A child: `<port> <password> <schema> <sessions> <frames>`.
fn writer(args: &[String]) {
    let [port, password, schema, sessions, frames_per] = args else {
        panic!("usage: --writer <port> <password> <schema> <sessions> <frames>");
    };
    let (sessions, frames_per): (usize, usize) =
        (sessions.parse().unwrap(), frames_per.parse().unwrap());
    let cache = std::env::var_os("TAPEDECK_PG_BENCH_CACHE").expect("cache dir");
    let config = serde_json::json!({
        "host": "127.0.0.1", "port": port.parse::<u16>().unwrap(), "database": "postgres",
        "user": tapedeck_tests::postgres::USER, "password": password, "schema": schema,
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(provider(
        &config,
        &format!("tcp://127.0.0.1:{port}"),
        Path::new(&cache),
        sessions as u64,
    ));
    let store = Arc::new(store);
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let tag = format!("p{}", std::process::id());
    let start = Instant::now();
    let lat = rt.block_on(record(store, sessions, frames_per, &tag));
    let took: Duration = start.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "frames": sessions * frames_per,
            "seconds": took.as_secs_f64(),
            "latencies_us": lat,
        })
    );
}
