//! `tapedeck record` between real MCP clients and servers: the official
//! Python (`mcp`) and TypeScript (`@modelcontextprotocol/sdk`) SDKs' clients
//! and servers in `tests/mcp-sdk/` (pinned; installed by
//! `./scripts/guest-toolchains.sh`, which runs `scripts/mcp-sdks.sh`), and a
//! client that mimics their shutdown (close stdin, 2 s, `SIGTERM`, 2 s,
//! `SIGKILL`), with servers that take 5 s to exit and with 20 MiB tapes, in
//! whatever build the test runs (the debug build in CI). Over 50 sessions in
//! all; each one must end with its tape `finished` holding every message both
//! ways (each request with its response), no server or tapedeck process
//! left, and tapedeck exiting by itself before the client's `SIGKILL`
//! (within 2 s of a `SIGTERM`).
//!
//! A missing SDK fails the test, naming the install command.

use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tapedeck_tests::mcp_sdk::{
    self, Ended, Mimic, OnSigterm, Sdk, ServerOptions, SignalTarget, TapeFrames, Workspace,
};

/// The tests of this file take turns: each runs its sessions concurrently,
/// and two such batches at once on a small CI machine would measure the
/// machine rather than tapedeck.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// Compiled components, shared with the other tests of the target.
use crate::cache_dir;

/// Needles for [`mcp_sdk::alive`]: a test server's and tapedeck's command lines.
const SERVER_NEEDLE: &str = "mcp-sdk/server.";
const TAPEDECK_NEEDLE: &str = "tapedeck";

/// What one session's tape must hold.
struct Expected {
    name: String,
    sent: usize,
    received: usize,
    /// The least number of bytes of the tape.
    min_bytes: u64,
}

/// Checks every expected tape (exactly one per name, `finished`, verified,
/// every message) and that the workspace holds no other tape. `list` and
/// `show` are the first tapedeck commands after the sessions: a tape a
/// session left in the spool is delivered (and ended) by them.
fn check_tapes(ws: &Workspace, expected: &[Expected], problems: &mut Vec<String>) {
    let tapes = ws.list();
    let by_name = mcp_sdk::tapes_by_name(&tapes);
    if tapes.len() != expected.len() {
        problems.push(format!(
            "{} tapes for {} sessions: {:?}",
            tapes.len(),
            expected.len(),
            by_name.keys().collect::<Vec<_>>()
        ));
    }
    for e in expected {
        let name = &e.name;
        let Some(found) = by_name.get(name) else {
            problems.push(format!("{name}: no tape"));
            continue;
        };
        if found.len() != 1 {
            problems.push(format!("{name}: {} tapes", found.len()));
        }
        let tape = &found[0];
        let state = tape["state"].as_str().unwrap_or("?");
        if state != "finished" {
            problems.push(format!(
                "{name}: tape is `{state}`, not `finished` ({} frames, {} bytes)",
                tape["frames"], tape["bytes"]
            ));
        }
        let bytes = tape["bytes"].as_u64().unwrap_or(0);
        if bytes < e.min_bytes {
            problems.push(format!(
                "{name}: tape has {bytes} bytes, expected at least {}",
                e.min_bytes
            ));
        }
        let id = tape["id"].as_str().expect("tape id");
        let show = ws.show(id);
        if show["integrity"]["verified"] != json!(true) {
            problems.push(format!("{name}: integrity {}", show["integrity"]));
        }
        let frames = TapeFrames::of(&show);
        for p in frames.problems(e.sent, e.received) {
            problems.push(format!("{name}: {p} (events: {})", events_summary(&frames)));
        }
    }
}

/// The host events of a tape, shortened, for messages.
fn events_summary(frames: &TapeFrames) -> String {
    let events: Vec<String> = frames.events.iter().map(mcp_sdk::short).collect();
    format!("[{}]", events.join(", "))
}

/// Checks that none of the servers that wrote a pid into the workspace, nor
/// any of `tapedeck_pids`, is still running; kills any that is (after
/// noting it), so a failed test leaves nothing behind.
fn check_survivors(ws: &Workspace, tapedeck_pids: &[u32], problems: &mut Vec<String>) {
    let servers = ws.server_pids();
    let left = mcp_sdk::survivors(&servers, SERVER_NEEDLE, Duration::from_secs(1));
    if !left.is_empty() {
        problems.push(format!(
            "{} of {} servers still running after their session: {left:?}",
            left.len(),
            servers.len()
        ));
        mcp_sdk::kill_survivors(&left, SERVER_NEEDLE);
    }
    let left = mcp_sdk::survivors(tapedeck_pids, TAPEDECK_NEEDLE, Duration::from_secs(1));
    if !left.is_empty() {
        problems.push(format!(
            "{} tapedeck processes still running after their session: {left:?}",
            left.len()
        ));
        mcp_sdk::kill_survivors(&left, TAPEDECK_NEEDLE);
    }
}

fn fail_on(problems: &[String], context: &str) {
    assert!(
        problems.is_empty(),
        "{} problems:\n  {}\n\n{context}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// Checks an SDK client's summary: every session ok, the negotiated version
/// `expect_version` says, tapedeck not ended by a signal (the SDK's SIGKILL);
/// returns the tapes the sessions must have left, and tapedeck's pids.
fn check_client_sessions(
    run: &mcp_sdk::ClientRun,
    name_prefix: &str,
    expect_version: impl Fn(&Value) -> &'static str,
    min_bytes: u64,
    problems: &mut Vec<String>,
) -> (Vec<Expected>, Vec<u32>) {
    let sessions = run.summary["per_session"].as_array().expect("per_session");
    let mut expected = Vec::new();
    let mut pids = Vec::new();
    let mut escalated = 0;
    let mut max_close = 0f64;
    for s in sessions {
        let index = s["index"].as_u64().expect("index");
        let name = format!("{name_prefix}-{index}");
        if s["ok"] != json!(true) {
            problems.push(format!("{name}: session failed: {}", s["error"]));
        }
        let want = expect_version(s);
        if s["protocol_version"] != json!(want) {
            problems.push(format!(
                "{name}: negotiated {}, expected {want}",
                s["protocol_version"]
            ));
        }
        if s["signalled"] == json!(true) {
            // Python reports a returncode (-N: signal N), TypeScript a signal name.
            let how = match (s["returncode"].as_i64(), s["exit_signal"].as_str()) {
                (Some(rc), _) if rc < 0 => format!("signal {}", -rc),
                (_, Some(sig)) => sig.to_string(),
                _ => "a signal".to_string(),
            };
            let sequence = if s["escalated"] == json!(true) {
                " (still running 2 s after its stdin closed, it got SIGTERM from the SDK, then SIGKILL 2 s later)"
            } else {
                ""
            };
            problems.push(format!(
                "{name}: tapedeck was killed by {how}, {} s after its stdin closed{sequence}",
                s["close_seconds"]
            ));
        }
        if s["escalated"] == json!(true) {
            escalated += 1;
        }
        max_close = max_close.max(s["close_seconds"].as_f64().unwrap_or(0.0));
        if let Some(pid) = s["pid"].as_u64() {
            pids.push(u32::try_from(pid).expect("pid"));
        }
        expected.push(Expected {
            name,
            sent: s["sent"].as_u64().unwrap_or(0) as usize,
            received: s["received"].as_u64().unwrap_or(0) as usize,
            min_bytes,
        });
    }
    println!(
        "{} SDK {}: {} sessions in {:?}, {} ok; tapedeck still running 2 s after stdin closed (SDK sent SIGTERM) in {escalated}; longest close {max_close:.3} s",
        run.summary["sdk"],
        run.summary["sdk_version"],
        sessions.len(),
        run.elapsed,
        run.summary["ok"],
    );
    (expected, pids)
}

/// Sessions per SDK client run.
const SDK_SESSIONS: usize = 24;
/// `echo` calls per SDK session (then one `big`).
const SDK_CALLS: usize = 3;
/// Bytes of each SDK session's `big` answer.
const SDK_BIG: u64 = 200 * 1024;

/// The Python SDK's client: session i uses mode i % 4 with command i % 4,
/// covering the handshake era, the 2026-07-28 era, `auto` negotiating
/// 2026-07-28 with the Python server and `auto` falling back to the handshake
/// with the TypeScript one.
fn python_sdk_sessions(ws: &Workspace, sessions: usize) {
    let server = |sdk: Sdk| {
        serde_json::to_string(&ws.record_argv("py-{i}", &sdk.server(ServerOptions::default())))
            .unwrap()
    };
    let combos = [
        ("legacy", Sdk::Python, "2025-11-25"),
        ("2026-07-28", Sdk::Python, "2026-07-28"),
        ("auto", Sdk::Python, "2026-07-28"),
        ("auto", Sdk::TypeScript, "2025-11-25"),
    ];
    let mut args = vec![
        "--sessions".to_string(),
        sessions.to_string(),
        "--calls".into(),
        SDK_CALLS.to_string(),
        "--big".into(),
        SDK_BIG.to_string(),
    ];
    for (mode, sdk, _) in combos {
        args.extend([
            "--mode".into(),
            mode.into(),
            "--command".into(),
            server(sdk),
        ]);
    }
    let run = mcp_sdk::run_client(Sdk::Python, ws, &args, Duration::from_secs(180));
    let mut problems = Vec::new();
    let (expected, pids) = check_client_sessions(
        &run,
        "py",
        |s| combos[s["index"].as_u64().unwrap() as usize % combos.len()].2,
        SDK_BIG,
        &mut problems,
    );
    check_survivors(ws, &pids, &mut problems);
    check_tapes(ws, &expected, &mut problems);
    fail_on(
        &problems,
        &format!("client stderr (tail):\n{}", tail(&run.stderr, 6000)),
    );
    assert!(run.status.success(), "client: {}", run.status);
}

#[test]
fn python_sdk_client_sessions_end_finished() {
    let _node = mcp_sdk::node(); // the TypeScript server, for `auto` against a handshake-only server
    let _python = mcp_sdk::python();
    let _serial = serial();
    let ws = Workspace::new(&cache_dir());
    ws.warm_up();
    python_sdk_sessions(&ws, SDK_SESSIONS);
}

/// First use: no compiled provider in the cache, so every session's
/// tapedeck compiles it while the session runs, and may still be compiling
/// when the client ends the session.
#[test]
fn python_sdk_client_sessions_with_a_cold_component_cache_end_finished() {
    let _node = mcp_sdk::node();
    let _python = mcp_sdk::python();
    let _serial = serial();
    let ws = Workspace::with_cold_cache();
    python_sdk_sessions(&ws, 4);
}

#[test]
fn typescript_sdk_client_sessions_end_finished() {
    let _node = mcp_sdk::node();
    let _python = mcp_sdk::python(); // the Python server, every other session
    let _serial = serial();
    let ws = Workspace::new(&cache_dir());
    ws.warm_up();
    let mut args = vec![
        "--sessions".to_string(),
        SDK_SESSIONS.to_string(),
        "--calls".into(),
        SDK_CALLS.to_string(),
        "--big".into(),
        SDK_BIG.to_string(),
    ];
    for sdk in [Sdk::TypeScript, Sdk::Python] {
        let argv = ws.record_argv("ts-{i}", &sdk.server(ServerOptions::default()));
        args.extend(["--command".into(), serde_json::to_string(&argv).unwrap()]);
    }
    let run = mcp_sdk::run_client(Sdk::TypeScript, &ws, &args, Duration::from_secs(180));
    let mut problems = Vec::new();
    // This SDK knows the handshake era only, and offers 2025-11-25.
    let (expected, pids) =
        check_client_sessions(&run, "ts", |_| "2025-11-25", SDK_BIG, &mut problems);
    check_survivors(&ws, &pids, &mut problems);
    check_tapes(&ws, &expected, &mut problems);
    fail_on(
        &problems,
        &format!("client stderr (tail):\n{}", tail(&run.stderr, 6000)),
    );
    assert!(run.status.success(), "client: {}", run.status);
}

/// One mimic session's end, its tape's expectation and tapedeck's pid.
struct MimicRun {
    name: String,
    ended: Ended,
    pid: u32,
    min_bytes: u64,
}

/// A mimic session to run: `tapedeck record --name NAME -- SERVER…`,
/// `talk`, then the SDKs' shutdown with signals to `target`.
struct MimicSession<F> {
    name: String,
    server: Vec<String>,
    target: SignalTarget,
    /// The least number of bytes of its tape.
    min_bytes: u64,
    talk: F,
}

/// What a mimic session does before its shutdown, when sessions differ.
type Talk = Box<dyn FnOnce(&mut Mimic) + Send>;

/// Runs `sessions` concurrently, each in a thread: `talk`, then the SDKs'
/// shutdown; returns how each ended.
fn run_mimics<F>(ws: &Workspace, sessions: Vec<MimicSession<F>>) -> Vec<MimicRun>
where
    F: FnOnce(&mut Mimic) + Send,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .map(|session| {
                let MimicSession {
                    name,
                    server,
                    target,
                    min_bytes,
                    talk,
                } = session;
                scope.spawn(move || {
                    let argv = ws.record_argv(&name, &server);
                    let mut mimic = Mimic::spawn(ws, &name, &argv, target);
                    let pid = mimic.pid();
                    talk(&mut mimic);
                    let ended = mimic.shutdown();
                    MimicRun {
                        name,
                        ended,
                        pid,
                        min_bytes,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Checks how the mimic sessions ended, their tapes and survivors.
fn check_mimics(ws: &Workspace, runs: &[MimicRun]) {
    let mut problems = Vec::new();
    let mut context = String::new();
    for r in runs {
        let e = &r.ended;
        println!(
            "{}: {}; exited {:?} after stdin closed{}; {} lines sent, {} received",
            r.name,
            e.status,
            e.close_to_exit,
            match (e.sigterm_to_exit, e.killed) {
                (_, true) => " (SIGKILLed)".to_string(),
                (Some(t), false) => format!(" ({t:?} after SIGTERM)"),
                (None, false) => " (before SIGTERM)".to_string(),
            },
            e.sent,
            e.received
        );
        for p in e.problems() {
            problems.push(format!("{}: {p}", r.name));
        }
        context.push_str(&format!(
            "--- {} stderr (tail) ---\n{}\n",
            r.name,
            tail(&e.stderr, 3000)
        ));
    }
    let pids: Vec<u32> = runs.iter().map(|r| r.pid).collect();
    check_survivors(ws, &pids, &mut problems);
    let expected: Vec<Expected> = runs
        .iter()
        .map(|r| Expected {
            name: r.name.clone(),
            sent: r.ended.sent,
            received: r.ended.received,
            min_bytes: r.min_bytes,
        })
        .collect();
    check_tapes(ws, &expected, &mut problems);
    fail_on(&problems, &context);
}

/// A short session: the handshake, the tool list, three `echo` calls.
fn short_session(mimic: &mut Mimic) {
    mimic.handshake();
    let tools = mimic.request("tools/list", json!({}));
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{tools}"
    );
    for k in 0..3 {
        let text = format!("call {k}");
        assert_eq!(mimic.call_tool("echo", json!({"text": text})), text);
    }
}

#[test]
fn mimic_client_with_servers_that_take_5_s_to_exit() {
    let _node = mcp_sdk::node();
    let _python = mcp_sdk::python();
    let _serial = serial();
    let ws = Workspace::new(&cache_dir());
    ws.warm_up();
    // Each server takes 5 s to exit once its stdin closed; on SIGTERM it
    // dies, ignores it, or exits 1 s later. The client's SIGTERM goes to
    // tapedeck's pid (TypeScript SDK) or to its process group (Python SDK).
    let variants = [
        (Sdk::Python, OnSigterm::Default, SignalTarget::Process),
        (Sdk::Python, OnSigterm::Ignore, SignalTarget::Group),
        (
            Sdk::Python,
            OnSigterm::ExitAfter(1.0),
            SignalTarget::Process,
        ),
        (Sdk::TypeScript, OnSigterm::Default, SignalTarget::Group),
        (Sdk::TypeScript, OnSigterm::Ignore, SignalTarget::Process),
        (
            Sdk::TypeScript,
            OnSigterm::ExitAfter(1.0),
            SignalTarget::Group,
        ),
    ];
    let sessions = variants
        .iter()
        .map(|&(sdk, on_sigterm, target)| {
            let name = format!(
                "slow-{}-{}-{}",
                sdk.name(),
                match on_sigterm {
                    OnSigterm::Default => "dies".to_string(),
                    OnSigterm::Ignore => "ignores".to_string(),
                    OnSigterm::ExitAfter(s) => format!("exits-after-{s}s"),
                },
                match target {
                    SignalTarget::Process => "pid",
                    SignalTarget::Group => "group",
                }
            );
            let server = sdk.server(ServerOptions {
                exit_delay: 5.0,
                on_sigterm,
            });
            MimicSession {
                name,
                server,
                target,
                min_bytes: 0,
                talk: short_session as fn(&mut Mimic),
            }
        })
        .collect();
    let started = Instant::now();
    let runs = run_mimics(&ws, sessions);
    println!("{} sessions in {:?}", runs.len(), started.elapsed());
    check_mimics(&ws, &runs);
}

/// 20 MiB.
const TAPE_BYTES: u64 = 20 * 1024 * 1024;

#[test]
fn mimic_client_with_20_mib_tapes() {
    let _node = mcp_sdk::node();
    let _python = mcp_sdk::python();
    let _serial = serial();
    let ws = Workspace::new(&cache_dir());
    ws.warm_up();
    // Big frames: ten 1 MiB + 64 KiB texts echoed by the Python server
    // (over 20 MiB in 26 frames).
    let big_frames = |mimic: &mut Mimic| {
        mimic.handshake();
        for k in 0..10u8 {
            let text: String =
                std::iter::repeat_n(char::from(b'a' + k), (1 << 20) + (64 << 10)).collect();
            let got = mimic.call_tool("echo", json!({"text": text}));
            assert!(got == text, "echo {k}: {} bytes back", got.len());
        }
    };
    // Many frames: 5,000 echo calls of 2,100 bytes, pipelined, by the
    // TypeScript server (over 20 MiB in 10,003 frames).
    let many_frames = |mimic: &mut Mimic| {
        mimic.handshake();
        let text = "x".repeat(2100);
        let requests = (0..5000)
            .map(|_| {
                (
                    "tools/call".to_string(),
                    json!({"name": "echo", "arguments": {"text": text}}),
                )
            })
            .collect();
        for answer in mimic.pipeline(requests) {
            assert_eq!(mcp_sdk::text_of(&answer).len(), 2100);
        }
    };
    let sessions: Vec<MimicSession<Talk>> = vec![
        MimicSession {
            name: "big-frames".into(),
            server: Sdk::Python.server(ServerOptions::default()),
            target: SignalTarget::Group,
            min_bytes: TAPE_BYTES,
            talk: Box::new(big_frames),
        },
        MimicSession {
            name: "many-frames".into(),
            server: Sdk::TypeScript.server(ServerOptions::default()),
            target: SignalTarget::Process,
            min_bytes: TAPE_BYTES,
            talk: Box::new(many_frames),
        },
    ];
    let started = Instant::now();
    let runs = run_mimics(&ws, sessions);
    println!("{} sessions in {:?}", runs.len(), started.elapsed());
    check_mimics(&ws, &runs);
}
