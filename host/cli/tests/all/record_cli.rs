//! `tapedeck record` end to end: the binary proxies a real stdio JSON-RPC
//! server (`tests/fixtures/echo_server.py`) for a client writing requests,
//! and the tape it leaves in `./tapes` (read back through the embedded fs
//! provider) holds every line byte-exact, in order, with its direction.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tapedeck::embedded;
use tapedeck::recorder::{DigestChain, EndCause, HostEvent, ServerExit};
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::TapeStore;
use tapedeck::store::codec::{Codec, CodecSettings};
use tapedeck::types::{Direction, Frame, TapeFilter, TapeInfo, TapeState};
use tapedeck_tests::recording;

use crate::tapedeck_in;

fn fixture() -> PathBuf {
    tapedeck_tests::fixture("echo_server.py")
}

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `tapedeck record ARGS` in `dir`, writes `input` to its stdin, closes
/// it, and collects everything.
fn record(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    // `./tapes` exists: the default provider stores there.
    std::fs::create_dir_all(dir.join("tapes")).unwrap();
    record_env(dir, args, input, &[])
}

/// [`record`] with `env` set, and without creating `./tapes`.
fn record_env(dir: &Path, args: &[&str], input: &[u8], env: &[(&str, &Path)]) -> Run {
    let args = [&["record"], args].concat();
    let out = tapedeck_in(dir)
        .envs(env.iter().copied())
        .output_with_input(&args, input);
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The tape id from `tapedeck: recorded tape <id> (...)`.
fn tape_id(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tapedeck: recorded tape "))
        .unwrap_or_else(|| panic!("no summary line on stderr:\n{stderr}"));
    line["tapedeck: recorded tape ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The tape store in `dir/tapes`, through the sandboxed embedded provider
/// and the host's codec (tapes are stored compressed).
async fn open_tapes(dir: &Path) -> Codec<WasmProvider> {
    let sandbox = Sandbox::new().unwrap();
    let provider = WasmProvider::start(
        &sandbox,
        &embedded::fs_provider_spec(dir.join("tapes")),
        dir,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    Codec::new(provider, CodecSettings::default())
}

async fn read_tape(store: &Codec<WasmProvider>, id: &str) -> (TapeInfo, Vec<Frame>) {
    let info = store.get(id).await.unwrap();
    (info, recording::read_all(store, id).await)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Splits a byte stream into lines without their `\n`.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        out.pop();
    }
    out
}

fn request(id: u64, method: &str, params: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .unwrap()
}

fn echo_call(id: u64, text: &str) -> Vec<u8> {
    request(
        id,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": text}}),
    )
}

fn echo_result(id: u64, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}], "isError": false}})
}

fn error_result(id: u64, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// What the client expects back for one line.
enum Reply {
    Json(Value),
    Bytes(Vec<u8>),
    Nothing,
}

/// The session: (line the client writes, with its terminator; reply).
fn session() -> Vec<(Vec<u8>, Reply)> {
    let mut s: Vec<(Vec<u8>, Reply)> = Vec::new();
    let mut line = |bytes: Vec<u8>, terminator: &[u8], reply: Reply| {
        let mut b = bytes;
        b.extend_from_slice(terminator);
        s.push((b, reply));
    };
    line(
        request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}),
        ),
        b"\n",
        Reply::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "echo-server", "version": "1.0.0"}
        }})),
    );
    line(
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec(),
        b"\n",
        Reply::Nothing,
    );
    line(
        request(2, "tools/list", json!({})),
        b"\n",
        Reply::Json(json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{
            "name": "echo",
            "description": "Returns its text argument.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }]}})),
    );
    line(
        echo_call(3, "hello"),
        b"\n",
        Reply::Json(echo_result(3, "hello")),
    );
    line(
        b"this line is not JSON".to_vec(),
        b"\n",
        Reply::Bytes(b"this line is not JSON".to_vec()),
    );
    let unicode = "h\u{e9}llo w\u{f6}rld \u{1f600} \u{65e5}\u{672c}\u{8a9e} \u{202e}rtl";
    line(
        echo_call(4, unicode),
        b"\n",
        Reply::Json(echo_result(4, unicode)),
    );
    line(
        echo_call(5, "crlf"),
        b"\r\n",
        Reply::Json(echo_result(5, "crlf")),
    );
    line(
        request(6, "resources/list", json!({})),
        b"\n",
        Reply::Json(error_result(6, -32601, "method not found: resources/list")),
    );
    line(
        request(7, "tools/call", json!({"name": "nope", "arguments": {}})),
        b"\n",
        Reply::Json(error_result(7, -32602, "unknown tool: nope")),
    );
    line(
        b"\xff\xfe not UTF-8 \x00".to_vec(),
        b"\n",
        Reply::Bytes(b"\xff\xfe not UTF-8 \x00".to_vec()),
    );
    line(
        br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#.to_vec(),
        b"\n",
        Reply::Nothing,
    );
    for id in 8..=18 {
        let text = format!("message {id} {}", "x".repeat(id as usize * 100));
        line(
            echo_call(id, &text),
            b"\n",
            Reply::Json(echo_result(id, &text)),
        );
    }
    s
}

#[test]
fn a_recorded_session_holds_every_message_byte_exact_in_order_with_its_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let script = fixture();
    let session = session();
    assert!(session.len() >= 20);
    let input: Vec<u8> = session.iter().flat_map(|(l, _)| l.clone()).collect();
    let run = record(
        tmp.path(),
        &[
            "--name",
            "demo",
            "--tag",
            "env=test",
            "--",
            "python3",
            script.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);

    // The client got the expected replies, in order.
    let received = lines(&run.stdout);
    let expected: Vec<&Reply> = session
        .iter()
        .map(|(_, r)| r)
        .filter(|r| !matches!(r, Reply::Nothing))
        .collect();
    assert_eq!(
        received.len(),
        expected.len(),
        "{:?}",
        String::from_utf8_lossy(&run.stdout)
    );
    for (i, (got, want)) in received.iter().zip(&expected).enumerate() {
        match want {
            Reply::Json(v) => {
                let got: Value = serde_json::from_slice(got)
                    .unwrap_or_else(|e| panic!("reply {i} is not JSON ({e}): {got:?}"));
                assert_eq!(&got, v, "reply {i}");
            }
            Reply::Bytes(b) => assert_eq!(got, b, "reply {i}"),
            Reply::Nothing => unreachable!(),
        }
    }

    // The summary line names the tape, its size and the provider.
    let id = tape_id(&run.stderr);
    let sent = lines(&input);
    let sent_bytes: usize = sent.iter().map(Vec::len).sum();
    let received_bytes: usize = received.iter().map(Vec::len).sum();
    // Every line both ways, and the host's `session-end` event.
    let end_event = HostEvent::SessionEnd {
        cause: EndCause::ClientClosed,
        server: ServerExit::Code(0),
        failed_to_start: false,
        stderr_dropped: 0,
    };
    assert!(
        run.stderr.contains(&format!(
            "tapedeck: recorded tape {id} ({} frames, {} bytes) in fs",
            sent.len() + received.len() + 1,
            sent_bytes + received_bytes + end_event.to_payload().len()
        )),
        "{}",
        run.stderr
    );

    // The tape, read back through the sandboxed provider.
    runtime().block_on(async {
        let store = open_tapes(tmp.path()).await;
        let (info, frames) = read_tape(&store, &id).await;
        assert_eq!(info.state, TapeState::Finished);
        assert_eq!(info.header.name, "demo");
        assert_eq!(
            info.header.tags,
            vec![("env".to_string(), "test".to_string())]
        );
        assert_eq!(info.header.session_id.len(), 36, "a generated UUID");
        assert_eq!(info.frame_count, frames.len() as u64);
        DigestChain::verify(&frames, info.digest.as_deref().unwrap()).unwrap();

        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.seq, i as u64);
        }
        assert!(
            frames
                .windows(2)
                .all(|w| w[0].timestamp_us <= w[1].timestamp_us)
        );
        assert_eq!(frames.last().and_then(HostEvent::of), Some(end_event));
        let of = |d: Direction| -> Vec<&Frame> {
            frames
                .iter()
                .filter(|f| f.direction == d && HostEvent::of(f).is_none())
                .collect()
        };
        let c2s = of(Direction::ClientToServer);
        let s2c = of(Direction::ServerToClient);
        // Byte-exact, in order, per direction: what the client wrote (a `\r`
        // stays in the payload) and what it received.
        assert_eq!(
            c2s.iter().map(|f| f.payload.clone()).collect::<Vec<_>>(),
            sent
        );
        assert_eq!(
            s2c.iter().map(|f| f.payload.clone()).collect::<Vec<_>>(),
            received
        );
        assert!(sent.iter().any(|l| l.ends_with(b"\r")));
        // Non-JSON lines are flagged, JSON lines (even with `\r`) are not.
        for f in &frames {
            let is_json = std::str::from_utf8(&f.payload).is_ok()
                && serde_json::from_slice::<Value>(&f.payload).is_ok();
            assert_eq!(
                f.not_json,
                !is_json,
                "frame {} {:?}",
                f.seq,
                String::from_utf8_lossy(&f.payload)
            );
        }
        // Four lines that were not JSON, and the session-end event.
        assert_eq!(frames.iter().filter(|f| f.not_json).count(), 5);
        // Every reply is recorded after the request it answers.
        let mut replies = s2c.iter();
        for (line_no, (_, reply)) in session.iter().enumerate() {
            if matches!(reply, Reply::Nothing) {
                continue;
            }
            let answer = replies.next().unwrap();
            assert!(
                c2s[line_no].seq < answer.seq,
                "reply to line {line_no} recorded before the line"
            );
        }
    });
}

#[test]
fn tapedeck_exits_with_the_servers_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let script = fixture();
    let input = [echo_call(1, "bye"), b"\n".to_vec()].concat();
    let run = record(
        tmp.path(),
        &[
            "--",
            "python3",
            script.to_str().unwrap(),
            "--exit-code",
            "3",
        ],
        &input,
    );
    assert_eq!(run.code, Some(3), "stderr:\n{}", run.stderr);
    let got: Value = serde_json::from_slice(lines(&run.stdout)[0].as_slice()).unwrap();
    assert_eq!(got, echo_result(1, "bye"));
    // The call, its answer and the session's end.
    assert!(run.stderr.contains("(3 frames, "), "{}", run.stderr);
    tape_id(&run.stderr);
}

/// `show --json` gives each host event as an object beside its payload.
#[test]
fn show_json_gives_host_events_as_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let script = fixture();
    let input = [echo_call(1, "hi"), b"\n".to_vec()].concat();
    let run = record(
        tmp.path(),
        &["--", "python3", script.to_str().unwrap()],
        &input,
    );
    let id = tape_id(&run.stderr);
    let shown: Value =
        serde_json::from_slice(&tapedeck(tmp.path(), &["show", &id, "--frames", "--json"]))
            .unwrap();
    let frames = shown["frame_list"].as_array().unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last["event"]["event"], "session-end", "{last}");
    assert_eq!(last["event"]["cause"], "client-closed", "{last}");
    assert_eq!(last["event"]["server"]["code"], 0, "{last}");
    assert!(frames[0].get("event").is_none(), "traffic is not an event");
}

#[test]
fn a_command_that_cannot_be_started_is_a_clear_error_and_leaves_no_tape() {
    let tmp = tempfile::tempdir().unwrap();
    let run = record(tmp.path(), &["--", "/nonexistent/cmd", "arg"], b"[1]\n");
    assert_ne!(run.code, Some(0));
    assert!(run.code.is_some(), "killed by a signal");
    assert!(run.stderr.contains("/nonexistent/cmd"), "{}", run.stderr);
    assert!(
        run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("recorded tape"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    runtime().block_on(async {
        let store = open_tapes(tmp.path()).await;
        let page = store.list(&TapeFilter::default(), None, 100).await.unwrap();
        assert!(page.tapes.is_empty(), "{:?}", page.tapes);
    });
}

#[test]
fn a_malformed_tag_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = record(tmp.path(), &["--tag", "novalue", "--", "cat"], b"");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("KEY=VALUE"), "{}", run.stderr);
    let run = record(tmp.path(), &["--tag", "=v", "--", "cat"], b"");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("key"), "{}", run.stderr);
    let run = record(tmp.path(), &[], b"");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let stored = std::fs::read_dir(tmp.path().join("tapes")).unwrap().count();
    assert_eq!(stored, 0, "nothing was stored");
}

/// Runs `tapedeck ARGS` (not `record`) in `dir` and returns its stdout,
/// failing on a non-zero exit.
fn tapedeck(dir: &Path, args: &[&str]) -> Vec<u8> {
    tapedeck_in(dir).expect(args, 0).stdout
}

/// Decodes a frame as `show --json` and the JSONL export write it.
fn decode_payload(f: &Value) -> Vec<u8> {
    use base64::Engine as _;
    if let Some(m) = f.get("msg") {
        // `msg` holds the message verbatim; re-serialising a parsed Value
        // would not be byte-exact, so compare via the raw export instead.
        return serde_json::to_vec(m).unwrap();
    }
    if let Some(t) = f.get("text") {
        return t.as_str().unwrap().as_bytes().to_vec();
    }
    let b = f.get("b64").expect("msg, text or b64").as_str().unwrap();
    base64::engine::general_purpose::STANDARD.decode(b).unwrap()
}

#[test]
fn show_json_export_and_import_hold_the_recorded_session_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let script = fixture();
    let input: Vec<u8> = session().iter().flat_map(|(l, _)| l.clone()).collect();
    let run = record(
        tmp.path(),
        &[
            "--name",
            "roundtrip",
            "--",
            "python3",
            script.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let id = tape_id(&run.stderr);
    let (info, frames) = runtime().block_on(async {
        let store = open_tapes(tmp.path()).await;
        read_tape(&store, &id).await
    });

    // `show --json --frames`: every frame, in order, with its direction and
    // its payload (JSON messages compared as JSON, the rest byte for byte).
    let shown: Value =
        serde_json::from_slice(&tapedeck(tmp.path(), &["show", "--json", "--frames", &id]))
            .unwrap();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["frames"], frames.len() as u64);
    assert_eq!(shown["digest"].as_str(), info.digest.as_deref());
    // A freshly recorded tape verifies against its digest.
    assert_eq!(
        shown["integrity"]["verified"], true,
        "{}",
        shown["integrity"]
    );
    assert_eq!(
        shown["integrity"]["detail"],
        tapedeck_in(tmp.path()).verified(frames.len() as u64)
    );
    let listed = shown["frame_list"].as_array().unwrap();
    assert_eq!(listed.len(), frames.len());
    for (f, j) in frames.iter().zip(listed) {
        assert_eq!(j["seq"], f.seq);
        assert_eq!(j["dir"], f.direction.as_short());
        let payload = decode_payload(j);
        if j.get("msg").is_some() {
            let a: Value = serde_json::from_slice(&f.payload).unwrap();
            let b: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(a, b, "frame {}", f.seq);
        } else {
            assert_eq!(payload, f.payload, "frame {}", f.seq);
        }
    }

    // `export`: the JSONL reader gives back exactly the stored frames.
    tapedeck(tmp.path(), &["export", &id, "-o", "tape.jsonl"]);
    let exported = std::fs::read(tmp.path().join("tape.jsonl")).unwrap();
    let mut reader = tapedeck::jsonl::JsonlReader::new(&exported[..]).unwrap();
    let mut from_export = Vec::new();
    while let Some(f) = reader.next_frame().unwrap() {
        from_export.push(f);
    }
    assert_eq!(from_export, frames, "export is byte-exact");
    assert_eq!(reader.end().unwrap().summary.digest, info.digest);

    // `import --new-id` of that export: an identical tape under a new id.
    let imported =
        String::from_utf8(tapedeck(tmp.path(), &["import", "--new-id", "tape.jsonl"])).unwrap();
    let new_id = imported
        .strip_prefix("imported tape ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("{imported}"))
        .to_string();
    assert_ne!(new_id, id);
    let (copy, copy_frames) = runtime().block_on(async {
        let store = open_tapes(tmp.path()).await;
        read_tape(&store, &new_id).await
    });
    assert_eq!(copy_frames, frames);
    assert_eq!(copy.state, info.state);
    assert_eq!(copy.digest, info.digest);
    assert_eq!(copy.header.name, info.header.name);
    assert_eq!(copy.header.session_id, info.header.session_id);
    assert_eq!(copy.header.created_at_us, info.header.created_at_us);
    assert_eq!(copy.ended_at_us, info.ended_at_us);
}

/// `tapedeck ARGS` in `dir` with `env`; returns stdout, failing on a
/// non-zero exit.
fn tapedeck_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
    tapedeck_in(dir)
        .envs(env.iter().copied())
        .expect(args, 0)
        .stdout
}

/// Without `./tapes`, tapes go to the user's data directory, whatever the
/// working directory an MCP client starts tapedeck in.
#[test]
fn without_a_local_tapes_dir_tapes_go_to_the_users_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let env = [("XDG_DATA_HOME", data.as_path())];
    let script = fixture();
    let input = [echo_call(1, "hi"), b"\n".to_vec()].concat();
    let run = record_env(
        &one,
        &["--", "python3", script.to_str().unwrap()],
        &input,
        &env,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let id = tape_id(&run.stderr);
    assert!(
        !one.join("tapes").exists(),
        "nothing in the working directory"
    );
    assert!(data.join("tapedeck/tapes").is_dir());
    // Another working directory sees the same tapes (spool shared too).
    let listed: Value = serde_json::from_slice(&tapedeck_env(
        &two,
        &[
            "list",
            "--json",
            "--spool-dir",
            one.join("spool").to_str().unwrap(),
        ],
        &env,
    ))
    .unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
}

/// Storage that cannot start (its directory cannot be created) does not
/// stop the session: every line is forwarded, the error names the
/// directory, the tape waits in the spool, and the first command that can
/// start the provider delivers it, ended as the session ended.
#[test]
fn a_provider_that_cannot_start_does_not_stop_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let tapes = blocker.join("tapes");
    let env = [("TAPEDECK_TAPES_DIR", tapes.as_path())];
    let script = fixture();
    let input = [
        echo_call(1, "a"),
        b"\n".to_vec(),
        echo_call(2, "b"),
        b"\n".to_vec(),
    ]
    .concat();
    let run = record_env(
        tmp.path(),
        &["--", "python3", script.to_str().unwrap()],
        &input,
        &env,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(lines(&run.stdout).len(), 2, "both calls answered");
    assert!(
        run.stderr.contains(&tapes.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("into the spool"), "{}", run.stderr);
    let status: Value = serde_json::from_slice(&tapedeck_env(
        tmp.path(),
        &["spool", "status", "--json"],
        &env,
    ))
    .unwrap();
    assert_eq!(status["tapes"].as_array().unwrap().len(), 1, "{status}");

    // The directory can be made now: the next command delivers the tape.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir_all(&tapes).unwrap();
    let listed: Value =
        serde_json::from_slice(&tapedeck_env(tmp.path(), &["list", "--json"], &env)).unwrap();
    let tape = &listed.as_array().unwrap()[0];
    assert_eq!(tape["state"], "finished", "{listed}");
    assert_eq!(
        tape["frames"], 5,
        "two calls, two answers, the end: {listed}"
    );
}
