//! `tapedeck replay` with the official MCP SDKs' clients (`tests/mcp-sdk/`):
//! a session against a real SDK server is recorded through `tapedeck
//! record`, then the same client script runs against `tapedeck replay` (no
//! server process is started) and reports the same results: every answer,
//! a 5 MB one included, the same protocol version and as many messages each
//! way; with the Python client in the `initialize` era also progress notifications, an elicitation
//! the server makes of the client mid-call (answered by the client, then the
//! call's result), and an identical call made twice. With other arguments
//! the client gets a JSON-RPC error, and
//! tapedeck's stderr names the nearest recorded request and where it
//! differs.

use serde_json::Value;
use std::time::Duration;
use tapedeck_tests::mcp_sdk::{self, Sdk, ServerOptions, Workspace};

use crate::cache_dir;

const BIG: usize = 5_000_000;

/// The client's arguments; `mode` is the Python SDK's connect mode (the
/// TypeScript client knows one era and takes none).
fn client_args(calls: usize, mode: Option<&str>, command: &[String]) -> Vec<String> {
    let mut args = vec![
        "--sessions".into(),
        "1".into(),
        "--calls".into(),
        calls.to_string(),
        "--big".into(),
        BIG.to_string(),
        "--command".into(),
        serde_json::to_string(command).unwrap(),
    ];
    if let Some(mode) = mode {
        args.extend(["--mode".into(), mode.into()]);
    }
    if mode == Some("legacy") {
        // The Python client's extras: progress notifications, an
        // elicitation it answers, an identical call made twice. (In the
        // stateless era the SDK's server cannot elicit: it has no
        // back-channel for server-initiated requests.)
        args.push("--extras".into());
    }
    args
}

/// What a client run reports that a replay must reproduce.
fn results(summary: &Value) -> Value {
    let s = &summary["per_session"][0];
    serde_json::json!({
        "ok": s["ok"],
        "error": s["error"],
        "calls": s["calls"],
        "protocol_version": s["protocol_version"],
        "sent": s["sent"],
        "received": s["received"],
        "extras": s["extras"],
    })
}

fn record_then_replay(client: Sdk, server: Sdk, mode: Option<&str>) {
    let _python = mcp_sdk::python();
    let _node = mcp_sdk::node();
    let ws = Workspace::new(&cache_dir());
    ws.warm_up();
    let name = format!("replay-{}-{}", client.name(), mode.unwrap_or("default"));
    let record = ws.record_argv(&name, &server.server(ServerOptions::default()));
    let recorded = mcp_sdk::run_client(
        client,
        &ws,
        &client_args(3, mode, &record),
        Duration::from_secs(180),
    );
    assert_eq!(
        recorded.summary["ok"], 1,
        "the recorded session failed: {}\n{}",
        recorded.summary, recorded.stderr
    );
    let tapes = ws.list();
    let id = tapes
        .iter()
        .find(|t| t["name"] == name.as_str())
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no tape {name}: {tapes:?}"))
        .to_string();
    let servers_before = ws.server_pids();

    let replay = vec![
        mcp_sdk::binary().display().to_string(),
        "replay".into(),
        id.clone(),
        "--require-all".into(),
    ];
    let replayed = mcp_sdk::run_client(
        client,
        &ws,
        &client_args(3, mode, &replay),
        Duration::from_secs(180),
    );
    assert_eq!(
        results(&replayed.summary),
        results(&recorded.summary),
        "the replay's results differ from the recording's:\n{}",
        replayed.stderr
    );
    assert_eq!(ws.server_pids(), servers_before, "replay started a server");
    assert!(
        replayed
            .stderr
            .contains("0 miss(es), 0 recorded request(s) never asked"),
        "{}",
        replayed.stderr
    );

    // One call more than recorded: a miss, with the nearest candidate.
    let missed = mcp_sdk::run_client(
        client,
        &ws,
        &client_args(4, mode, &replay),
        Duration::from_secs(180),
    );
    assert_eq!(missed.summary["ok"], 0, "{}", missed.summary);
    // The client saw the JSON-RPC error (the Python SDK raises it inside a
    // task group: its message is in the trace).
    let session = &missed.summary["per_session"][0];
    let error = format!("{}\n{}", session["error"], session["trace"]);
    assert!(
        error.contains("no match for `tools/call` request"),
        "{error}"
    );
    let stderr = &missed.stderr;
    assert!(stderr.contains("nearest: frame"), "{stderr}");
    assert!(
        stderr.contains(r#"/params/arguments/text: recorded "session 0 call"#)
            && stderr.contains(r#"got "session 0 call 3""#),
        "{stderr}"
    );
}

#[test]
fn a_python_sdk_session_replays_with_the_same_results() {
    record_then_replay(Sdk::Python, Sdk::Python, Some("legacy"));
}

#[test]
fn a_stateless_python_sdk_session_replays_with_the_same_results() {
    record_then_replay(Sdk::Python, Sdk::Python, Some("2026-07-28"));
}

#[test]
fn a_typescript_sdk_session_replays_with_the_same_results() {
    record_then_replay(Sdk::TypeScript, Sdk::TypeScript, None);
}

/// `record --mode once` records on the first run and replays on the second
/// without starting the server; `none` fails cleanly when there is no
/// tape; an expired tape is refused with `--on-expired error`;
/// `new-episodes` records what the tape lacked into a new tape.
#[test]
fn record_modes_once_and_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = tapedeck_tests::cli::tapedeck(dir, &cache_dir());
    let fixtures = mcp_sdk::repo_root().join("tests/fixtures");
    let session = std::fs::read(fixtures.join("demo-session.jsonl")).unwrap();
    let starts = dir.join("server-starts");
    // The server notes each start, so the test sees whether it ran.
    let server = format!(
        "echo started >> '{}' && exec python3 '{}'",
        starts.display(),
        fixtures.join("echo_server.py").display()
    );
    let record = |mode: &str, name: &str, extra: &[&str]| {
        let mut args = vec!["record", "--mode", mode, "--name", name];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", &server]);
        t.output_with_input(&args, &session)
    };
    // `--name fixture` with another session.
    let record_with = |mode: &str, input: &[u8]| {
        let args = [
            "record", "--mode", mode, "--name", "fixture", "--", "sh", "-c", &server,
        ];
        t.output_with_input(&args, input)
    };
    let started = || {
        std::fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let first = record("once", "fixture", &[]);
    assert!(
        first.status.success(),
        "{}",
        tapedeck_tests::cli::text(&first.stderr)
    );
    assert_eq!(started(), 1);
    let second = record("once", "fixture", &[]);
    let stderr = tapedeck_tests::cli::text(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert_eq!(
        started(),
        1,
        "--mode once started the server although the tape exists"
    );
    assert_eq!(
        tapedeck_tests::cli::text(&second.stdout),
        tapedeck_tests::cli::text(&first.stdout),
        "the replay answered differently: {stderr}"
    );
    assert!(stderr.contains("0 miss(es)"), "{stderr}");
    // `none` replays too.
    let none = record("none", "fixture", &[]);
    assert!(none.status.success());
    assert_eq!(none.stdout, first.stdout);

    let missing = record("none", "never-recorded", &[]);
    assert_eq!(missing.status.code(), Some(1));
    let err = tapedeck_tests::cli::text(&missing.stderr);
    assert!(
        err.contains("no finished tape named `never-recorded` to replay"),
        "{err}"
    );
    let expired = record(
        "once",
        "fixture",
        &["--max-age", "0s", "--on-expired", "error"],
    );
    assert_eq!(expired.status.code(), Some(1));
    assert!(tapedeck_tests::cli::text(&expired.stderr).contains("older than --max-age"));
    assert_eq!(started(), 1, "the server never ran again");
    // `record` anew when expired.
    let renewed = record(
        "once",
        "fixture",
        &["--max-age", "0s", "--on-expired", "record"],
    );
    assert!(renewed.status.success());
    assert_eq!(started(), 2);

    // `new-episodes`: a session with one call the tape lacks. The tape
    // answers what it has, the live server the new call, and the whole
    // session becomes the newest tape `fixture`, which `none` then replays
    // without a miss and without the server.
    let mut longer = session.clone();
    longer.extend_from_slice(
        br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a new episode"}}}"#,
    );
    longer.push(b'\n');
    let episode = record_with("new-episodes", &longer);
    let stderr = tapedeck_tests::cli::text(&episode.stderr);
    assert!(episode.status.success(), "{stderr}");
    assert_eq!(started(), 3, "the live server answers the new call");
    let stdout = tapedeck_tests::cli::text(&episode.stdout);
    assert!(
        stdout.starts_with(&tapedeck_tests::cli::text(&first.stdout)),
        "{stdout}"
    );
    assert!(stdout.contains("a new episode"), "{stdout}");
    assert!(stderr.contains("which supersedes tape"), "{stderr}");
    let again = record_with("none", &longer);
    let stderr = tapedeck_tests::cli::text(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("0 miss(es)"), "{stderr}");
    assert_eq!(again.stdout, episode.stdout);
    assert_eq!(started(), 3);
}

/// `verify` finds no drift against the server a tape was recorded from,
/// and a readable diff (exit 1) against a changed one.
#[test]
fn verify_reports_drift_only_against_a_changed_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t = tapedeck_tests::cli::tapedeck(dir, &cache_dir());
    let fixtures = mcp_sdk::repo_root().join("tests/fixtures");
    let session = std::fs::read(fixtures.join("demo-session.jsonl")).unwrap();
    let server = fixtures.join("echo_server.py");
    let server = server.to_str().unwrap();
    let out = t.output_with_input(
        &["record", "--name", "drift", "--", "python3", server],
        &session,
    );
    assert!(
        out.status.success(),
        "{}",
        tapedeck_tests::cli::text(&out.stderr)
    );

    let same = t.output(&["verify", "latest", "--", "python3", server]);
    let shown = tapedeck_tests::cli::text(&same.stdout);
    assert!(
        same.status.success(),
        "{shown}{}",
        tapedeck_tests::cli::text(&same.stderr)
    );
    assert!(shown.contains("4 answer(s) compared, 0 drifted"), "{shown}");

    // The same server, changed: its echo shouts, and a tool is described
    // differently.
    let changed = dir.join("changed_server.py");
    let source = std::fs::read_to_string(fixtures.join("echo_server.py")).unwrap();
    let source = source
        .replace(r#""text": text}"#, r#""text": text.upper()}"#)
        .replace("Returns its text argument.", "Echoes.");
    std::fs::write(&changed, source).unwrap();
    let drifted = t.output(&[
        "verify",
        "latest",
        "--",
        "python3",
        changed.to_str().unwrap(),
    ]);
    let shown = tapedeck_tests::cli::text(&drifted.stdout);
    assert_eq!(drifted.status.code(), Some(1), "{shown}");
    assert!(shown.contains("2 drifted"), "{shown}");
    assert!(
        shown.contains(r#"/result/content/0/text: recorded "hello, tape ✓", got "HELLO, TAPE ✓""#),
        "{shown}"
    );
    assert!(
        shown.contains(
            r#"/result/tools/0/description: recorded "Returns its text argument.", got "Echoes.""#
        ),
        "{shown}"
    );
    // A second recording, from the changed server: `diff` shows the same.
    let out = t.output_with_input(
        &[
            "record",
            "--name",
            "drift-2",
            "--",
            "python3",
            changed.to_str().unwrap(),
        ],
        &session,
    );
    assert!(out.status.success());
    let list: Value = serde_json::from_str(&t.ok(&["--json", "list"])).unwrap();
    let id_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (id_of("drift"), id_of("drift-2"));
    let compared = t.output(&["diff", &a, &b]);
    let shown = tapedeck_tests::cli::text(&compared.stdout);
    assert_eq!(compared.status.code(), Some(1), "{shown}");
    assert!(shown.contains("~ tool changed: echo"), "{shown}");
    assert!(
        shown.contains(r#"/description: A "Returns its text argument.", B "Echoes.""#),
        "{shown}"
    );
    assert!(
        shown.contains(r#"/result/content/0/text: A "hello, tape ✓", B "HELLO, TAPE ✓""#),
        "{shown}"
    );
    assert!(
        shown.contains("2 request(s) alike, 2 changed, 0 only in A, 0 only in B"),
        "{shown}"
    );
    let itself = t.output(&["diff", &a, &a]);
    assert!(
        itself.status.success(),
        "{}",
        tapedeck_tests::cli::text(&itself.stdout)
    );

    // Ignoring what changed, no drift is left.
    let ignoring = t.output(&[
        "verify",
        "latest",
        "--ignore",
        "/result/content",
        "--ignore",
        "result.tools.*.description",
        "--",
        "python3",
        changed.to_str().unwrap(),
    ]);
    assert!(
        ignoring.status.success(),
        "{}",
        tapedeck_tests::cli::text(&ignoring.stdout)
    );
}

/// A secret in a request and its answer: the tape holds placeholders, yet
/// the request with the real token matches (it is redacted the same way
/// before matching), and `--secret` puts the real value back into the
/// answer.
#[test]
fn replay_matches_redacted_requests_and_puts_secrets_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let token = format!("ghp_{}", "a1B2".repeat(9));
    let t = tapedeck_tests::cli::tapedeck(dir, &cache_dir()).env("REPLAY_TOKEN", &token);
    let fixtures = mcp_sdk::repo_root().join("tests/fixtures");
    let server = fixtures.join("echo_server.py");
    let session = format!(
        "{}\n{}\n",
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
        format_args!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"token {token}"}}}}}}"#
        )
    );
    let recorded = t.output_with_input(
        &[
            "record",
            "--name",
            "secret",
            "--",
            "python3",
            server.to_str().unwrap(),
        ],
        session.as_bytes(),
    );
    assert!(recorded.status.success());
    let shown = t.ok(&["show", "latest", "--frames", "--json"]);
    assert!(!shown.contains(&token), "the tape holds the token");
    assert!(shown.contains("[REDACTED:github-token:"), "{shown}");

    let replayed = t.output_with_input(
        &[
            "replay",
            "latest",
            "--secret",
            "github-token=env:REPLAY_TOKEN",
        ],
        session.as_bytes(),
    );
    let stderr = tapedeck_tests::cli::text(&replayed.stderr);
    assert!(replayed.status.success(), "{stderr}");
    assert_eq!(replayed.stdout, recorded.stdout, "{stderr}");
    assert!(!stderr.contains(&token));
    // Without --secret the answer keeps the placeholder.
    let plain = t.output_with_input(&["replay", "latest"], session.as_bytes());
    assert!(plain.status.success());
    assert!(tapedeck_tests::cli::text(&plain.stdout).contains("[REDACTED:github-token:"));
}

/// `--on-miss passthrough -- SERVER`: what the tape does not cover is
/// answered by a live server that saw the whole session.
#[test]
fn misses_pass_through_to_a_live_server() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tapedeck_tests::cli::tapedeck(tmp.path(), &cache_dir());
    let server = mcp_sdk::repo_root().join("tests/fixtures/echo_server.py");
    let server = server.to_str().unwrap();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
    let call = |id: u32, text: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        )
    };
    let recorded = format!("{init}\n{}\n", call(2, "recorded"));
    let out = t.output_with_input(
        &["record", "--name", "partial", "--", "python3", server],
        recorded.as_bytes(),
    );
    assert!(out.status.success());
    let session = format!(
        "{init}\n{}\n{}\n",
        call(2, "recorded"),
        call(3, "never recorded")
    );
    let replayed = t.output_with_input(
        &[
            "replay",
            "latest",
            "--on-miss",
            "passthrough",
            "--",
            "python3",
            server,
        ],
        session.as_bytes(),
    );
    let stdout = tapedeck_tests::cli::text(&replayed.stdout);
    let stderr = tapedeck_tests::cli::text(&replayed.stderr);
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "{stdout}{stderr}");
    assert_eq!(answers[1]["result"]["content"][0]["text"], "recorded");
    assert_eq!(answers[2]["id"], 3);
    assert_eq!(
        answers[2]["result"]["content"][0]["text"], "never recorded",
        "{stderr}"
    );
    assert!(stderr.contains("forwarded to the live server"), "{stderr}");
    // The tape did not cover everything: not a clean replay.
    assert_eq!(replayed.status.code(), Some(1));
    // A server after `--` only with passthrough, and passthrough only with one.
    let out = t.output_with_input(&["replay", "latest", "--on-miss", "passthrough"], b"");
    assert!(tapedeck_tests::cli::text(&out.stderr).contains("needs the live server after `--`"));
}
