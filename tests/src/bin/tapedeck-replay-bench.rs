//! Replay's cost: indexing a tape, and answering one request, for tapes of
//! 1,000 and 10,000 requests, against a baseline measured in this run:
//! parsing the same request with `serde_json` (the least any replay must do
//! per message). Answering stays within a small multiple of the parse and
//! does not grow with the tape (the tape is indexed once, not scanned per
//! request): the 10,000 / 1,000 ratio of the per-request time stays near 1.
//!
//! `cargo run --release -p tapedeck-tests --bin tapedeck-replay-bench`

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark fails loudly on what it did not expect"
)]

use std::time::{Duration, Instant};
use tapedeck::replay::{ReplayOptions, Replayer};
use tapedeck::types::{Direction, Frame};

fn request(i: usize, id: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"search","arguments":{{"query":"item {i}","limit":10}},"_meta":{{"progressToken":{id}}}}}}}"#
    )
}

fn tape(n: usize) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(2 * n);
    for i in 0..n {
        let answer = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"result":{{"content":[{{"type":"text","text":"result {i}: {}"}}]}}}}"#,
            "x".repeat(200)
        );
        frames.push(Frame::new(
            2 * i as u64,
            0,
            Direction::ClientToServer,
            request(i, i).into_bytes(),
            false,
        ));
        frames.push(Frame::new(
            2 * i as u64 + 1,
            0,
            Direction::ServerToClient,
            answer.into_bytes(),
            false,
        ));
    }
    frames
}

/// (index time, per-request time, per-request parse baseline).
fn measure(n: usize) -> (Duration, Duration, Duration) {
    let frames = tape(n);
    let asks: Vec<Vec<u8>> = (0..n)
        .rev()
        .map(|i| request(i, 1_000_000 + i).into_bytes())
        .collect();
    let started = Instant::now();
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    let index = started.elapsed();
    let started = Instant::now();
    for a in &asks {
        assert_eq!(r.handle(a).len(), 1);
    }
    let answer = started.elapsed() / n as u32;
    assert!(r.report().clean(true));
    let started = Instant::now();
    for a in &asks {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(a).unwrap());
    }
    let parse = started.elapsed() / n as u32;
    (index, answer, parse)
}

fn main() {
    let runs = 5;
    let mut per = Vec::new();
    for n in [1_000, 10_000] {
        let best = (0..runs).map(|_| measure(n)).min_by_key(|m| m.1).unwrap();
        println!(
            "{n:>6} requests: indexed in {:>8.2?}, {:>7.2?} per request = {:.1} x the parse of one request ({:.2?})",
            best.0,
            best.1,
            best.1.as_secs_f64() / best.2.as_secs_f64(),
            best.2
        );
        per.push(best.1);
    }
    println!(
        "per-request time, 10,000 / 1,000 requests: {:.2} (1 = independent of the tape's length)",
        per[1].as_secs_f64() / per[0].as_secs_f64()
    );
}
