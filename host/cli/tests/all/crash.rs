//! The crash test: a real `tapedeck record` is killed with SIGKILL at a
//! random point of a session, over many runs; the next `tapedeck` command
//! recovers the tape from the spool, and every frame the client saw
//! forwarded must be in it, in order, once.
//!
//! "Saw forwarded": every response the client received (a server→client
//! frame), and every request it sent whose response it received (a
//! client→server frame the server got). The tape may hold more (a request
//! forwarded whose response never arrived); it must hold these.
//!
//! The random points come from a seed printed at the start; set
//! `TAPEDECK_CRASH_SEED` to replay a run.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapedeck_tests::cli::Tapedeck;

use crate::tapedeck_in;
/// Sessions killed.
const RUNS: u64 = 24;
/// Latest kill, after the session starts.
const MAX_KILL_MS: u64 = 600;

fn echo_server() -> PathBuf {
    tapedeck_tests::fixture("echo_server.py")
}

/// `tapedeck` in `dir`, with its own spool, storing into `dir/tapes` (the
/// default when it exists; the user's data directory is `dir/data`).
fn tapedeck(dir: &Path) -> Tapedeck {
    std::fs::create_dir_all(dir.join("tapes")).unwrap();
    tapedeck_in(dir)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    tapedeck(dir).expect(args, 0)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn request(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"crash test {id}"}}}}}}"#
    )
}

/// What the client saw before the recorder died.
#[derive(Default)]
struct Seen {
    /// Ids whose responses arrived, in order.
    responses: Vec<u64>,
}

/// One session: start recording, talk, kill at `kill_after`; returns the
/// ids whose responses the client received.
fn killed_session(dir: &Path, name: &str, kill_after: Duration, pause_us: u64) -> Vec<u64> {
    let mut child = tapedeck(dir)
        .command()
        .args(["record", "--name", name, "--"])
        .arg("python3")
        .arg(echo_server())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let dead = Arc::new(AtomicBool::new(false));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON response");
                let id = v["id"].as_u64().expect("an id");
                seen.lock().unwrap().responses.push(id);
            }
        })
    };
    let writer = {
        let dead = dead.clone();
        std::thread::spawn(move || {
            for id in 1.. {
                if dead.load(Ordering::SeqCst)
                    || writeln!(stdin, "{}", request(id)).is_err()
                    || stdin.flush().is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_micros(pause_us));
            }
        })
    };
    let start = Instant::now();
    while start.elapsed() < kill_after {
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    dead.store(true, Ordering::SeqCst);
    child.wait().unwrap();
    writer.join().unwrap();
    reader.join().unwrap();
    std::mem::take(&mut seen.lock().unwrap().responses)
}

#[test]
fn sigkill_at_random_points_loses_no_frame_the_client_saw() {
    let seed = std::env::var("TAPEDECK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed {seed} (TAPEDECK_CRASH_SEED={seed} replays this run)");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Compile the provider once, so the runs start quickly.
    run(dir, &["stats"]);

    let (mut total_seen, mut total_in_tapes) = (0usize, 0usize);
    for n in 0..RUNS {
        let name = format!("crash-{n}");
        // Early kills too: before, during and just after the tape exists.
        let kill_ms = if n % 4 == 0 {
            rng.below(60)
        } else {
            rng.below(MAX_KILL_MS)
        };
        let pause_us = 200 + rng.below(3000);
        let seen = killed_session(dir, &name, Duration::from_millis(kill_ms), pause_us);

        // The spool shows the orphaned recording, waiting, with at least
        // every frame the client saw.
        let status = json(&run(dir, &["spool", "status", "--json"]));
        let waiting = status["tapes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .cloned();
        match &waiting {
            Some(t) => {
                assert_eq!(t["state"], "waiting", "run {n}: {t}");
                assert!(
                    t["frames"].as_u64().unwrap() >= 2 * seen.len() as u64,
                    "run {n}: spool status {t} but the client saw {} responses",
                    seen.len()
                );
            }
            None => assert!(seen.is_empty(), "run {n}: nothing in the spool: {status}"),
        }

        // The next command recovers the tape; then read it.
        let recovered = json(&run(dir, &["recover", "--json"]));
        assert!(
            recovered["failed"].as_array().unwrap().is_empty(),
            "run {n}: {recovered}"
        );
        let list = json(&run(dir, &["list", "--json"]));
        let tape = list["tapes"]
            .as_array()
            .or_else(|| list.as_array())
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .cloned();
        let Some(tape) = tape else {
            assert!(
                seen.is_empty(),
                "run {n}: the client saw {} responses but there is no tape",
                seen.len()
            );
            println!(
                "run {n:>2}: killed after {kill_ms:>3} ms, before the tape existed; the client saw nothing"
            );
            continue;
        };
        let id = tape["id"].as_str().unwrap();
        assert_ne!(
            tape["state"], "recording",
            "run {n}: the tape was not ended"
        );
        let shown = json(&run(dir, &["show", id, "--frames", "--json"]));
        assert_eq!(shown["integrity"]["verified"], true, "run {n}: {shown}");
        let frames = shown["frame_list"].as_array().unwrap();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f["seq"].as_u64(), Some(i as u64), "run {n}: seq");
        }
        let ids = |dir: &str| -> Vec<u64> {
            frames
                .iter()
                .filter(|f| f["dir"] == dir)
                .map(|f| f["msg"]["id"].as_u64().expect("an id"))
                .collect()
        };
        let requests = ids("c2s");
        let responses = ids("s2c");
        // No duplicate, in order: requests are 1, 2, 3, …
        let expected: Vec<u64> = (1..=requests.len() as u64).collect();
        assert_eq!(
            requests, expected,
            "run {n}: requests out of order or duplicated"
        );
        // Every response the client saw is in the tape, in the order seen,
        // and its request came before it.
        assert!(
            responses.len() >= seen.len() && responses[..seen.len()] == seen[..],
            "run {n}: the client saw responses {seen:?}, the tape holds {responses:?}"
        );
        for (pos, f) in frames.iter().enumerate() {
            if f["dir"] == "s2c" {
                let rid = f["msg"]["id"].as_u64().unwrap();
                let req_pos = frames
                    .iter()
                    .position(|g| g["dir"] == "c2s" && g["msg"]["id"].as_u64() == Some(rid));
                assert!(
                    req_pos.is_some_and(|p| p < pos),
                    "run {n}: response {rid} without its request before it"
                );
            }
        }
        let seen_frames = seen.len() * 2;
        total_seen += seen_frames;
        total_in_tapes += frames.len();
        println!(
            "run {n:>2}: killed after {kill_ms:>3} ms; client saw {seen_frames:>4} frames forwarded; \
             tape {} has {:>4} frames, all {seen_frames} present in order, no duplicate",
            tape["state"].as_str().unwrap(),
            frames.len()
        );
    }
    println!(
        "{RUNS} runs: frames the client saw forwarded {total_seen}, frames in the recovered tapes {total_in_tapes}; none lost"
    );
    // Nothing left behind.
    let status = json(&run(dir, &["spool", "status", "--json"]));
    assert!(
        status["tapes"].as_array().unwrap().is_empty(),
        "spool not empty: {status}"
    );
}
