//! `tapedeck` under a limited address space (`ulimit -v`): the engine sizes
//! its reservations to the limit (see `sandbox::engine::EnginePlan`), so
//! `record` and `list` work at 4 GiB and 8 GiB, where the pooling
//! allocator's default reservation (hundreds of GiB) and even on-demand
//! memories of 4 GiB each would not fit. Each run is the built binary in a
//! fresh working directory, started by `sh` after `ulimit -v`.

use serde_json::Value;
use std::path::Path;
use std::process::Output;
use tapedeck_tests::cli;

use crate::tapedeck_in;

const GIB_IN_KIB: u64 = 1 << 20;

/// `tapedeck ARGS` in `dir` with its address space limited to `limit_kib`
/// KiB, `input` on stdin. Compiled components are cached under the target
/// directory, shared by the tests (an engine sized for a limit has its own
/// entries).
fn run_limited(dir: &Path, limit_kib: u64, args: &[&str], input: &[u8]) -> Output {
    let ulimit = format!("ulimit -v {limit_kib} && exec \"$0\" \"$@\"");
    tapedeck_in(dir)
        .env("TAPEDECK_TAPES_DIR", dir.join("tapes"))
        .launcher("sh", &["-c", &ulimit])
        .output_with_input(args, input)
}

fn ok(out: Output, what: &str) -> Output {
    cli::exited(what, out, 0)
}

/// Records the demo session through the echo server and lists it, all
/// under `limit_kib`.
fn record_and_list(limit_kib: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = tapedeck_tests::fixture("echo_server.py");
    let session = std::fs::read(tapedeck_tests::fixture("demo-session.jsonl")).unwrap();
    let recorded = ok(
        run_limited(
            dir,
            limit_kib,
            &[
                "record",
                "--name",
                "x",
                "--",
                "python3",
                server.to_str().unwrap(),
            ],
            &session,
        ),
        "tapedeck record",
    );
    let sent = session
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let answered = recorded
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(answered > 0, "the server answered through the proxy");

    let listed = ok(
        run_limited(dir, limit_kib, &["list", "--json"], b""),
        "tapedeck list",
    );
    let tapes: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let tapes = tapes.as_array().unwrap();
    assert_eq!(tapes.len(), 1, "{tapes:?}");
    assert_eq!(tapes[0]["name"], "x");
    assert_eq!(tapes[0]["state"], "finished", "{:?}", tapes[0]);
    // Every line each way (the recorder may add frames of its own, such as
    // the end of the session), read back verified, still under the limit.
    let frames = tapes[0]["frames"].as_u64().unwrap();
    assert!(frames >= (sent + answered) as u64, "{:?}", tapes[0]);
    let exported = ok(
        run_limited(dir, limit_kib, &["export", "latest"], b""),
        "tapedeck export",
    );
    let lines: Vec<Value> = exported
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let count = |dir: &str| {
        lines
            .iter()
            .filter(|l| l["type"] == "frame" && l["dir"] == dir)
            .count()
    };
    assert_eq!(count("c2s"), sent);
    assert!(count("s2c") >= answered);
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "frame").count() as u64,
        frames
    );

    // The engine says why it allocates as it does.
    let verbose = ok(
        run_limited(dir, limit_kib, &["-v", "list"], b""),
        "tapedeck -v list",
    );
    let log = String::from_utf8_lossy(&verbose.stderr);
    let gib = limit_kib / GIB_IN_KIB;
    assert!(
        log.contains(&format!("address space limited to {gib} GiB (ulimit -v)")),
        "{log}"
    );
}

#[test]
fn record_and_list_work_under_4_gib() {
    record_and_list(4 * GIB_IN_KIB);
}

#[test]
fn record_and_list_work_under_8_gib() {
    record_and_list(8 * GIB_IN_KIB);
}
