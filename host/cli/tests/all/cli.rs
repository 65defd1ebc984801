//! The `tapedeck` binary end to end: every command in a fresh working
//! directory, with the `TAPEDECK_*` environment cleared and the user's data
//! directory inside it (so the embedded default provider stores there, or
//! into `./tapes` where a test creates that). Tapes are put in place by importing
//! JSONL written with the library's own `JsonlWriter`
//! ([`tapedeck_tests::tape`]).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tapedeck::recorder::DigestChain;
use tapedeck::store::codec::CodecSettings;
use tapedeck::types::{Direction, Frame, TapeHeader, TapeState, TapeSummary};
use tapedeck_tests::cli::{self, Tapedeck};
use tapedeck_tests::tape::{T0, Tape, unsealed};

use crate::{cache_dir, tapedeck_in};

/// A working directory to run the binary in.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The binary in this directory, isolated.
    fn tapedeck(&self) -> Tapedeck {
        tapedeck_in(self.path())
    }

    /// `tapedeck ARGS` to run in this directory, isolated.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.tapedeck().command();
        cmd.args(args);
        cmd
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.tapedeck().envs(env.iter().copied()).output(args)
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.tapedeck().ok(args)
    }

    fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        self.tapedeck().envs(env.iter().copied()).ok(args)
    }

    /// Runs and expects exit code `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        cli::text(&self.tapedeck().expect(args, code).stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

const HOUR: u64 = 3_600_000_000;

/// A tape to import: `payloads` from `created` on, a millisecond apart,
/// alternately client→server and server→client, finished half an hour
/// after it was created.
fn tape(id: &str, session: &str, tags: &[(&str, &str)], created: u64, payloads: &[&[u8]]) -> Tape {
    let header = TapeHeader {
        id: id.into(),
        session_id: session.into(),
        name: format!("tape {id}"),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at_us: created,
        envelope: None,
    };
    let frames = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| Frame {
            seq: i as u64,
            timestamp_us: created + 1000 * i as u64,
            direction: if i % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            payload: p.to_vec(),
            not_json: serde_json::from_slice::<Value>(p).is_err(),
            // What the recorder (and import) give a JSON frame.
            terms: if serde_json::from_slice::<Value>(p).is_ok() {
                tapedeck::types::terms::payload_terms(p)
            } else {
                Vec::new()
            },
            attributes: Vec::new(),
        })
        .collect();
    Tape::new(header, frames, HOUR / 2)
}

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"weather"}}"#;
const RESULT: &[u8] = br#"{"jsonrpc":"2.0","id":2,"result":{"content":"sunny"}}"#;

/// The oldest tape of [`populated`].
fn tape_a() -> Tape {
    tape(
        "a",
        "s1",
        &[("env", "ci")],
        T0,
        &[INIT, b"plain text", b"\xff\xfe binary"],
    )
}

/// Three tapes an hour apart: `a` (oldest), `b`, `c` (newest), imported
/// with one command.
fn populated() -> Dir {
    let dir = Dir::new();
    let mut c = tape(
        "c",
        "s2",
        &[("env", "ci"), ("team", "x")],
        T0 + 2 * HOUR,
        &[CALL],
    );
    c.state = TapeState::Aborted;
    let tapes = [
        tape_a(),
        tape(
            "b",
            "s1",
            &[("env", "prod")],
            T0 + HOUR,
            &[INIT, CALL, RESULT],
        ),
        c,
    ];
    let out = dir.tapedeck().import(&["--json"], &tapes);
    let reports: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 3, "{out}");
    assert_eq!(reports[2]["state"], "aborted");
    dir
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

#[test]
fn list_json_on_an_empty_and_a_populated_store() {
    let empty = Dir::new();
    assert_eq!(empty.json(&["list", "--json"]), serde_json::json!([]));
    assert!(empty.ok(&["list"]).contains("no tapes"));

    let dir = populated();
    let all = dir.json(&["list", "--json"]);
    assert_eq!(ids(&all), ["c", "b", "a"], "newest first");
    let a = &all[2];
    for key in [
        "id",
        "name",
        "session",
        "created",
        "created_us",
        "frames",
        "bytes",
        "state",
        "tags",
        "ended",
    ] {
        assert!(a.get(key).is_some(), "missing {key}: {a}");
    }
    assert_eq!(a["name"], "tape a");
    assert_eq!(a["session"], "s1");
    assert_eq!(a["created"], "2026-11-24T10:00:00Z");
    assert_eq!(a["created_us"], T0);
    assert_eq!(a["frames"], 3);
    assert_eq!(a["bytes"], INIT.len() + 10 + 9);
    assert_eq!(a["state"], "finished");
    assert_eq!(a["tags"], serde_json::json!([["env", "ci"]]));
    assert_eq!(a["ended"], "2026-11-24T10:30:00Z");
    assert_eq!(all[0]["state"], "aborted");

    let filtered = dir.json(&["list", "--json", "--tag", "env=ci", "--state", "finished"]);
    assert_eq!(ids(&filtered), ["a"]);
    assert_eq!(
        ids(&dir.json(&["list", "--json", "--limit", "2"])),
        ["c", "b"]
    );

    let table = dir.ok(&["list", "--session", "s1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("b ") && lines[1].contains("2026-11-24 11:00:00 UTC"),
        "{table}"
    );
    assert!(
        lines[2].contains("tape a") && lines[2].contains("finished"),
        "{table}"
    );
}

#[test]
fn show_prints_header_totals_digest_and_frames() {
    let dir = populated();
    let out = dir.ok(&["show", "a"]);
    let digest = tape_a().summary().digest.unwrap();
    for want in [
        "tape      a\n",
        "session   s1\n",
        "state     finished\n",
        "frames    3\n",
        &format!("digest    {digest}\n"),
        "2026-11-24 10:00:00 UTC",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let verified = dir.tapedeck().verified(3);
    assert!(out.ends_with(&format!("\nintegrity {verified}\n")), "{out}");
    let out = dir.ok(&["show", "a", "--frames"]);
    assert!(
        out.contains(r#"→  {"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
        "{out}"
    );
    assert!(out.contains("←  [not json] plain text"), "{out}");
    assert!(out.contains("→  [not json] <9 bytes binary>"), "{out}");
    assert!(
        out.ends_with(&format!(" <9 bytes binary>\n\nintegrity {verified}\n")),
        "{out}"
    );

    let v = dir.json(&["show", "a", "--json", "--frames"]);
    assert_eq!(v["id"], "a");
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(
        v["integrity"],
        serde_json::json!({
            "verified": true,
            "status": "verified",
            "sealed_by": dir.tapedeck().host_key(),
            "detail": verified,
        })
    );
    let frames = v["frame_list"].as_array().unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0]["msg"]["method"], "initialize");
    assert_eq!(frames[0]["dir"], "c2s");
    assert_eq!(frames[1]["text"], "plain text");
    assert_eq!(frames[1]["not_json"], true);
    assert!(frames[2]["b64"].is_string());

    let err = dir.fails(&["show", "nope"], 1);
    assert!(
        err.contains(r#"error: no tape "nope" in provider fs"#),
        "{err}"
    );
    let err = dir.fails(&["show", "../etc"], 1);
    assert!(err.contains("tape id"), "{err}");
}

#[test]
fn search_by_method_tag_text_and_time() {
    let dir = populated();
    let s = |args: &[&str]| {
        let mut all = vec!["search", "--json"];
        all.extend_from_slice(args);
        dir.json(&all)
    };
    assert_eq!(ids(&s(&["--method", "tools/call"])), ["c", "b"]);
    assert_eq!(
        ids(&s(&["--method", "initialize", "--tag", "env=ci"])),
        ["a"]
    );
    assert_eq!(ids(&s(&["--tag", "env=ci", "--tag", "team=x"])), ["c"]);
    assert_eq!(ids(&s(&["--text", "sunny"])), ["b"]);
    assert_eq!(ids(&s(&["--since", "2026-11-24T10:30:00Z"])), ["c", "b"]);
    assert_eq!(
        ids(&s(&[
            "--since",
            "2026-11-24",
            "--until",
            "2026-11-24T11:00:00Z"
        ])),
        ["a"]
    );
    assert_eq!(
        ids(&s(&["--session", "s1", "--method", "tools/call"])),
        ["b"]
    );
    // Relative: everything was created in 2026-11 (the past or the future
    // depending on the clock), so "1d" ago either includes all or none.
    let recent = s(&["--since", "1d"]);
    assert!(matches!(ids(&recent).len(), 0 | 3), "{recent}");
    assert!(
        dir.ok(&["search", "--method", "nothing"])
            .contains("no tapes")
    );
    let err = dir.fails(&["search", "--since", "last tuesday"], 2);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn export_then_import_gives_an_identical_tape() {
    let dir = Dir::new();
    let mut t = tape(
        "orig",
        "s9",
        &[("k", "v"), ("k", "w")],
        T0,
        &[
            INIT,
            br#"{ "spaced" : [1, 2.50, 1e3] }"#,
            "unicode ✓ 🎉".as_bytes(),
            b"\x00\x01\xff binary",
            b"",
            b"  {\"lead\":1}",
        ],
    );
    t.state = TapeState::Crashed;
    let original = t.jsonl();
    dir.write("orig.jsonl", &original);
    dir.ok(&["import", "orig.jsonl"]);

    // Export to stdout is byte-identical to what was imported, plus the
    // host's envelope and seal.
    let exported = dir.ok(&["export", "orig"]);
    assert_eq!(unsealed(exported.as_bytes()), original);
    assert!(exported.contains(r#","seal":""#), "{exported}");
    dir.ok(&["export", "orig", "-o", "out.jsonl"]);
    assert_eq!(
        std::fs::read(dir.path().join("out.jsonl")).unwrap(),
        exported.as_bytes()
    );

    let err = dir.fails(&["import", "out.jsonl"], 1);
    assert!(
        err.contains("already exists") && err.contains("--new-id"),
        "{err}"
    );
    let imported = dir.json(&["import", "out.jsonl", "--new-id", "--json"]);
    let new_id = imported["id"].as_str().unwrap();
    assert_ne!(new_id, "orig");
    assert_eq!(imported["source_id"], "orig");

    // Under a new id, the seal (which signs the id) is this host's anew.
    let again = String::from_utf8(unsealed(dir.ok(&["export", new_id]).as_bytes())).unwrap();
    let original = String::from_utf8(original).unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (original.lines().collect(), again.lines().collect());
    assert_eq!(a.len(), b.len());
    assert_eq!(
        a[0].replace("\"orig\"", &format!("{new_id:?}")),
        b[0],
        "header"
    );
    assert_eq!(a[1..], b[1..], "frames and end line");
}

#[test]
fn import_of_a_broken_file_names_the_line() {
    let dir = Dir::new();
    let text = String::from_utf8(tape("t", "s", &[], T0, &[INIT, CALL, RESULT]).jsonl()).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Cut after the third frame: the end line (line 5) is missing.
    dir.write("cut.jsonl", lines[..4].join("\n").as_bytes());
    let err = dir.fails(&["import", "cut.jsonl"], 1);
    assert!(
        err.contains("cut.jsonl") && err.contains("line 5") && err.contains("without an end line"),
        "{err}"
    );

    // Cut in the middle of line 3.
    let mid = format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..20]);
    dir.write("mid.jsonl", mid.as_bytes());
    let err = dir.fails(&["import", "mid.jsonl"], 1);
    assert!(err.contains("line 3:"), "{err}");

    let err = dir.fails(&["import", "missing.jsonl"], 1);
    assert!(err.contains("cannot open missing.jsonl"), "{err}");
    // Nothing was stored.
    assert_eq!(dir.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn large_tapes_stream_through_import_and_export() {
    let dir = Dir::new();
    let payloads: Vec<Vec<u8>> = (0..10_050)
        .map(|i| {
            format!(r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"n":{i}}}}}"#)
                .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let mut t = tape("big", "s", &[], T0, &refs);
    t.state = TapeState::Aborted;
    let original = t.jsonl();
    dir.write("big.jsonl", &original);
    let out = dir.ok(&["import", "big.jsonl"]);
    assert!(
        out.contains("10050 frames") && out.contains("aborted"),
        "{out}"
    );
    assert_eq!(unsealed(dir.ok(&["export", "big"]).as_bytes()), original);
}

#[test]
fn delete_and_stats() {
    let dir = populated();
    let stats = dir.json(&["stats", "--json"]);
    assert_eq!(stats["tapes"], 3);
    assert_eq!(stats["recording"], 0);
    assert_eq!(stats["frames"], 7);
    assert_eq!(stats["provider"], "fs");
    assert!(stats["stored_bytes"].as_u64().unwrap() > 0);
    assert!(
        stats["capabilities"]
            .as_array()
            .unwrap()
            .contains(&Value::from("delete"))
    );

    assert!(dir.ok(&["delete", "b"]).contains("deleted tape b"));
    let err = dir.fails(&["delete", "b"], 1);
    assert!(err.contains(r#"no tape "b" in provider fs"#), "{err}");
    assert_eq!(ids(&dir.json(&["list", "--json"])), ["c", "a"]);
    assert_eq!(dir.json(&["stats", "--json"])["tapes"], 2);
}

#[test]
fn a_recording_tape_cannot_be_exported() {
    use tapedeck::store::TapeStore;
    let dir = Dir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cache = tapedeck::sandbox::cache::ComponentCache::at(cache_dir());
        let sandbox = tapedeck::sandbox::Sandbox::with_cache(Some(cache)).unwrap();
        let spec = tapedeck::embedded::fs_provider_spec(dir.path().join("tapes"));
        let store = tapedeck::sandbox::WasmProvider::start(&sandbox, &spec, dir.path())
            .await
            .unwrap();
        let t = tape("live", "s", &[], T0, &[INIT]);
        let mut w = store.create(t.header.clone()).await.unwrap();
        tapedeck::store::TapeWriter::append(&mut w, &t.frames)
            .await
            .unwrap();
    });
    let live = dir.json(&["list", "--json", "--state", "recording"]);
    assert_eq!(ids(&live), ["live"]);
    assert_eq!(live[0]["ended"], Value::Null);
    let err = dir.fails(&["export", "live"], 1);
    assert!(err.contains("still recording"), "{err}");
    // It can be shown, but not verified yet.
    let out = dir.ok(&["show", "live", "--frames"]);
    assert!(
        out.ends_with("\nintegrity not verified: still recording\n"),
        "{out}"
    );
    let v = dir.json(&["show", "live", "--json"]);
    assert_eq!(v["integrity"]["verified"], false);
    assert_eq!(v["integrity"]["status"], "still-recording");
}

#[test]
fn show_and_export_verify_imported_tapes() {
    let dir = Dir::new();
    // With the digest the recorder writes, and without one (import
    // computes it).
    let with = tape("with", "s", &[], T0, &[INIT, CALL, RESULT]);
    let without = tape("without", "s", &[], T0, &[INIT, CALL]);
    dir.write("with.jsonl", &with.jsonl());
    dir.write(
        "without.jsonl",
        &without.jsonl_with(&TapeSummary {
            digest: None,
            ..without.summary()
        }),
    );
    dir.ok(&["import", "with.jsonl", "without.jsonl"]);
    for (id, frames) in [("with", 3), ("without", 2)] {
        let out = dir.ok(&["show", id]);
        let want = format!("\nintegrity {}\n", dir.tapedeck().verified(frames));
        assert!(out.ends_with(&want), "{out}");
    }
    let shown = dir.json(&["show", "without", "--json"]);
    assert_eq!(shown["digest"], DigestChain::over(&without.frames).hex());

    // --no-verify: shown and exported as stored, and said to be unchecked.
    let out = dir.ok(&["show", "with", "--frames", "--no-verify"]);
    assert!(
        out.ends_with("\n\nintegrity not verified: check skipped\n"),
        "{out}"
    );
    let shown = dir.json(&["show", "with", "--json", "--no-verify"]);
    assert_eq!(shown["integrity"]["status"], "skipped");
    assert_eq!(shown["integrity"]["verified"], false);
    assert_eq!(
        unsealed(dir.ok(&["export", "with", "--no-verify"]).as_bytes()),
        with.jsonl()
    );

    // export -o reports the verification.
    let v = dir.json(&["export", "with", "-o", "with-out.jsonl", "--json"]);
    assert_eq!(v["integrity"]["verified"], true, "{v}");
    assert_eq!(v["frames"], 3);
    let out = dir.run_env(&["export", "with", "-o", "with-out.jsonl"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && stderr.trim_end().ends_with(&format!(
                "to with-out.jsonl: {}",
                dir.tapedeck().verified(3)
            )),
        "{stderr}"
    );
}

#[test]
fn a_tape_that_fails_verification_is_reported_and_not_exported() {
    use tapedeck::store::TapeStore;
    let dir = Dir::new();
    // Stored (through the library) with the digest of other frames, as if
    // the frames had changed since the tape was finished.
    let t = tape("bad", "s", &[], T0, &[INIT, CALL, RESULT]);
    let wrong = DigestChain::over(&t.frames[..2]).hex();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cache = tapedeck::sandbox::cache::ComponentCache::at(cache_dir());
        let sandbox = tapedeck::sandbox::Sandbox::with_cache(Some(cache)).unwrap();
        let spec = tapedeck::embedded::fs_provider_spec(dir.path().join("tapes"));
        let store = tapedeck::sandbox::WasmProvider::start(&sandbox, &spec, dir.path())
            .await
            .unwrap();
        let summary = TapeSummary {
            digest: Some(wrong.clone()),
            ..t.summary()
        };
        store
            .save(
                t.header.clone(),
                &t.frames,
                summary,
                tapedeck::types::EndReason::Completed,
            )
            .await
            .unwrap();
    });
    let computed = DigestChain::over(&t.frames).hex();
    let want = format!(
        "error: tape bad: integrity check failed: the frames provider fs returned do not match \
         the digest recorded when the tape was finished (expected {wrong}, computed {computed} \
         over 3 frames): a frame was altered, reordered, added or removed"
    );

    // show: the frames printed stay printed, the error goes to stderr.
    let out = dir.run_env(&["show", "bad", "--frames"], &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stdout.contains(r#"{"content":"sunny"}"#), "{stdout}");
    assert!(!stdout.contains("integrity"), "{stdout}");
    // --json: the document is complete and says what failed.
    let out = dir.run_env(&["show", "bad", "--json", "--frames"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frame_list"].as_array().unwrap().len(), 3);
    assert_eq!(v["integrity"]["verified"], false);
    assert_eq!(v["integrity"]["status"], "failed");
    assert_eq!(
        v["integrity"]["detail"].as_str(),
        want.strip_prefix("error: ")
    );

    // export -o: no file; to stdout: no end line, and the error.
    let err = dir.fails(&["export", "bad", "-o", "bad.jsonl"], 1);
    assert!(err.contains(&want), "{err}");
    assert!(!dir.path().join("bad.jsonl").exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().starts_with(".tapedeck-export-")),
        "{names:?}"
    );
    let out = dir.run_env(&["export", "bad"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&want));
    let partial = String::from_utf8(out.stdout).unwrap();
    assert!(!partial.contains(r#""type":"end""#), "{partial}");

    // --no-verify rescues the frames; the export keeps the recorded digest,
    // so importing it is refused in turn.
    dir.ok(&["export", "bad", "--no-verify", "-o", "rescued.jsonl"]);
    assert_eq!(
        std::fs::read(dir.path().join("rescued.jsonl")).unwrap(),
        t.jsonl_with(&TapeSummary {
            digest: Some(wrong),
            ..t.summary()
        })
    );
    let err = dir.fails(&["import", "--new-id", "rescued.jsonl"], 1);
    assert!(err.contains("do not match the digest"), "{err}");
    assert!(
        dir.ok(&["show", "bad", "--no-verify"])
            .ends_with("integrity not verified: check skipped\n")
    );
}

#[test]
fn import_refuses_frames_that_do_not_match_their_digest() {
    let dir = Dir::new();
    // A payload altered to one of the same length: the totals still agree.
    let t = tape("t", "s", &[], T0, &[INIT, CALL, RESULT]);
    let altered = String::from_utf8(t.jsonl())
        .unwrap()
        .replace("sunny", "rainy");
    dir.write("altered.jsonl", altered.as_bytes());
    let err = dir.fails(&["import", "altered.jsonl"], 1);
    assert!(
        err.contains(
            "error: cannot import altered.jsonl: its frames do not match the digest of its end line (expected "
        ) && err.contains(" over 3 frames): a frame was altered, reordered, added or removed"),
        "{err}"
    );

    // A tape large enough to be streamed: refused before it is finished,
    // and the partial tape deleted.
    let payloads: Vec<Vec<u8>> = (0..10_001)
        .map(|i| format!(r#"{{"n":{i:05}}}"#).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let big = tape("big", "s", &[], T0, &refs);
    let altered = String::from_utf8(big.jsonl())
        .unwrap()
        .replace(r#"{"n":10000}"#, r#"{"n":99999}"#);
    dir.write("big.jsonl", altered.as_bytes());
    let err = dir.fails(&["import", "big.jsonl"], 1);
    assert!(
        err.contains("cannot import big.jsonl: its frames do not match the digest")
            && err.contains("over 10001 frames")
            && err.contains("the partial tape was deleted"),
        "{err}"
    );
    assert_eq!(dir.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn provider_inspect_describes_components_and_refuses_others() {
    let dir = Dir::new();
    dir.write("fs.wasm", tapedeck::embedded::FS_PROVIDER_WASM);
    let out = dir.ok(&["provider", "inspect", "fs.wasm"]);
    for want in [
        "world      tapedeck:storage/provider@0.2.0",
        "verdict    accepted",
        "tapedeck:storage/tape-storage@0.2.0",
        "wasi:filesystem",
        "read-frames",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let v = dir.json(&["provider", "inspect", "fs.wasm", "--json"]);
    assert_eq!(v["accepted"], true);
    assert_eq!(v["wit_version"], "0.2.0");
    let packages: Vec<&str> = v["import_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["package"].as_str().unwrap())
        .collect();
    assert!(
        packages.contains(&"tapedeck:storage") && packages.contains(&"wasi:filesystem"),
        "{packages:?}"
    );

    dir.write("text.wasm", b"definitely not wasm");
    let err = dir.fails(&["provider", "inspect", "text.wasm"], 1);
    assert!(err.contains("text.wasm is not a WebAssembly file"), "{err}");
    dir.write("core.wasm", b"\0asm\x01\0\0\0");
    let err = dir.fails(&["provider", "inspect", "core.wasm"], 1);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );
}

#[test]
fn provider_test_passes_on_the_embedded_provider() {
    let dir = Dir::new();
    let out = dir.ok(&["provider", "test", "--quick"]);
    assert!(
        out.lines().any(|l| l.starts_with("PASS write/round-trip")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("0 failed"), "{out}");
    assert!(out.contains("\nprotections tripped: none\n"), "{out}");
    // It ran in a scratch directory, not in ./tapes.
    assert!(!dir.path().join("tapes").exists());
}

#[test]
fn provider_test_repeats_cases_and_keeps_its_scratch_directory() {
    let dir = Dir::new();
    let out = dir
        .command(&[
            "--json",
            "provider",
            "test",
            "--quick",
            "--filter",
            "concurrency/create-same-id",
            "--repeat",
            "3",
            "--keep",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let case: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(case["case"], "concurrency/create-same-id");
    assert_eq!(case["status"], "passed");
    assert_eq!(case["runs"], 3);
    assert!(
        case["rule"].as_str().unwrap().contains("already-exists"),
        "{case}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kept the scratch directory "))
        .and_then(|l| l.strip_suffix(" (remove it when done)"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let kept = std::path::Path::new(kept);
    // The tapes the three runs raced to create are still there.
    assert!(
        std::fs::read_dir(kept).unwrap().count() > 0,
        "{}",
        kept.display()
    );
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn config_errors_name_the_key_and_line() {
    let dir = Dir::new();
    dir.write(
        "tapedeck.toml",
        b"provider = \"fs\"\n\n[recorder]\nbatch-frames = 10\nflush-every = \"1s\"\n",
    );
    let err = dir.fails(&["list"], 1);
    assert!(
        err.contains("tapedeck.toml") && err.contains("line 5") && err.contains("flush-every"),
        "{err}"
    );
    let err = dir.fails(&["--config", "other.toml", "list"], 1);
    assert!(err.contains("other.toml does not exist"), "{err}");
}

#[test]
fn a_configured_provider_is_used_and_selected_by_env() {
    let dir = Dir::new();
    dir.write("p.wasm", tapedeck::embedded::FS_PROVIDER_WASM);
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    dir.write(
        "custom.toml",
        b"provider = \"custom\"\n\n[providers.custom]\ncomponent = \"p.wasm\"\nconfig = { root = \"/data\" }\n\
          grants.dirs = [{ host = \"tmp\", guest = \"/data\", mode = \"read-write\" }]\n",
    );
    let tape = tape("in-custom", "s", &[], T0, &[INIT]);
    dir.write("t.jsonl", &tape.jsonl());
    let cfg = [("TAPEDECK_CONFIG", "custom.toml")];
    let out = dir.ok_env(&["import", "t.jsonl"], &cfg);
    assert!(out.contains("into provider custom"), "{out}");
    assert!(
        dir.path().join("tmp").read_dir().unwrap().next().is_some(),
        "stored under ./tmp"
    );
    assert!(!dir.path().join("tapes").exists());

    let listed: Value =
        serde_json::from_str(&dir.ok(&["--config", "custom.toml", "list", "--json"])).unwrap();
    assert_eq!(ids(&listed), ["in-custom"]);
    // TAPEDECK_PROVIDER picks the implicit embedded `fs` instead: empty.
    let fs = dir.ok_env(
        &["list", "--json"],
        &[
            ("TAPEDECK_CONFIG", "custom.toml"),
            ("TAPEDECK_PROVIDER", "fs"),
        ],
    );
    assert_eq!(fs.trim(), "[]");
    // ... and back to the custom one by name.
    let custom = dir.ok_env(
        &["list"],
        &[
            ("TAPEDECK_CONFIG", "custom.toml"),
            ("TAPEDECK_PROVIDER", "custom"),
        ],
    );
    assert!(custom.contains("in-custom"), "{custom}");

    let out = dir.run_env(
        &["--config", "custom.toml", "--provider", "s3", "list"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no provider named `s3`") && err.contains("custom, fs"),
        "{err}"
    );
}

#[test]
fn the_tapes_dir_override_moves_the_default_store() {
    let dir = Dir::new();
    dir.write("t.jsonl", &tape("t", "s", &[], T0, &[INIT]).jsonl());
    dir.ok_env(
        &["import", "t.jsonl"],
        &[("TAPEDECK_TAPES_DIR", "elsewhere")],
    );
    assert!(dir.path().join("elsewhere").is_dir());
    assert_eq!(dir.json(&["list", "--json"]), serde_json::json!([]));
    let out = dir.ok(&["--tapes-dir", "elsewhere", "list"]);
    assert!(out.contains("tape t"), "{out}");
}

#[test]
fn a_component_with_another_sha256_is_refused_before_loading() {
    let dir = Dir::new();
    dir.write("p.wasm", tapedeck::embedded::FS_PROVIDER_WASM);
    let wrong = "0".repeat(64);
    dir.write(
        "tapedeck.toml",
        format!("provider = \"p\"\n[providers.p]\ncomponent = \"p.wasm\"\nsha256 = \"{wrong}\"\n")
            .as_bytes(),
    );
    let err = dir.fails(&["list"], 1);
    assert!(
        err.contains("provider `p`") && err.contains(&wrong) && err.contains("SHA-256"),
        "{err}"
    );
}

#[test]
fn signed_components_are_required_once_keys_are_trusted() {
    let dir = Dir::new();
    dir.write("p.wasm", tapedeck::embedded::FS_PROVIDER_WASM);
    let out = dir.ok(&["provider", "keygen", "-o", "alice.key"]);
    let alice = out
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    dir.ok(&["provider", "keygen", "-o", "mallory.key"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("alice.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is private");
    }
    let config = format!(
        "provider = \"p\"\ntrusted-keys = [\"{alice}\"]\n[providers.p]\ncomponent = \"p.wasm\"\n[[providers.p.grants.dirs]]\nhost = \"t\"\nguest = \"/tapes\"\nmode = \"rw\"\ncreate = true\n[providers.p.config]\nroot = \"/tapes\"\n"
    );
    dir.write("tapedeck.toml", config.as_bytes());

    // Unsigned: refused before anything is compiled.
    let err = dir.fails(&["list"], 1);
    assert!(
        err.contains("p.wasm.sig") && err.contains("must be signed"),
        "{err}"
    );

    // Signed by a key that is not trusted: refused, naming the key.
    dir.ok(&["provider", "sign", "p.wasm", "--key", "mallory.key"]);
    let err = dir.fails(&["list"], 1);
    assert!(err.contains("not a trusted key"), "{err}");

    // Signed by the trusted key: accepted, and `verify` agrees.
    std::fs::remove_file(dir.path().join("p.wasm.sig")).unwrap();
    dir.ok(&["provider", "sign", "p.wasm", "--key", "alice.key"]);
    dir.ok(&["list"]);
    let out = dir.ok(&["provider", "verify", "p.wasm"]);
    assert!(out.contains(&format!("good signature by {alice}")), "{out}");

    // The component changes after signing: refused by both.
    let mut tampered = tapedeck::embedded::FS_PROVIDER_WASM.to_vec();
    tampered.extend_from_slice(b"\0");
    dir.write("p.wasm", &tampered);
    let err = dir.fails(&["list"], 1);
    assert!(
        err.contains("signature is for a component with SHA-256"),
        "{err}"
    );
    let err = dir.fails(
        &["provider", "verify", "p.wasm", "--trusted-key", &alice],
        1,
    );
    assert!(err.contains("SHA-256"), "{err}");
}

/// The store in `dir/tapes`, through the sandboxed embedded provider (as
/// the binary opens it).
/// The embedded provider over `dir`'s tapes, behind the seal of the host
/// key the binary uses there (its data directory).
async fn open_store(dir: &Dir) -> tapedeck::Store {
    let cache = tapedeck::sandbox::cache::ComponentCache::at(cache_dir());
    let sandbox = tapedeck::sandbox::Sandbox::with_cache(Some(cache)).unwrap();
    let spec = tapedeck::embedded::fs_provider_spec(dir.path().join("tapes"));
    let provider = tapedeck::sandbox::WasmProvider::start(&sandbox, &spec, dir.path())
        .await
        .unwrap();
    let seals = tapedeck::SealSettings {
        key_file: Some(dir.path().join("data/tapedeck/host-key")),
        ..Default::default()
    };
    seals
        .load()
        .unwrap()
        .store(provider, CodecSettings::default())
}

/// Imports `tapes` (one file each).
fn import(dir: &Dir, tapes: &[Tape]) {
    dir.tapedeck().import(&[], tapes);
}

#[test]
fn every_command_takes_latest_unique_id_prefixes_and_names() {
    let dir = Dir::new();
    import(
        &dir,
        &[
            tape("ab", "s", &[], T0, &[INIT]),
            tape("abc-1", "s", &[], T0 + HOUR, &[INIT, CALL]),
            tape("abc-2", "s", &[], T0 + 2 * HOUR, &[INIT]),
            tape("xyz", "s", &[], T0 + 3 * HOUR, &[CALL, RESULT]),
        ],
    );
    let shown_id = |args: &[&str]| dir.json(args)["id"].as_str().unwrap().to_string();
    // An exact id wins over being the prefix of others.
    assert_eq!(shown_id(&["show", "ab", "--json"]), "ab");
    // A unique prefix.
    assert_eq!(shown_id(&["show", "x", "--json"]), "xyz");
    assert_eq!(shown_id(&["show", "abc-1", "--json"]), "abc-1");
    assert_eq!(shown_id(&["show", "latest", "--json"]), "xyz");
    // Ambiguous: names the candidates (newest first) and what to do.
    let err = dir.fails(&["show", "abc"], 1);
    assert!(
        err.contains(
            r#"error: tape id prefix "abc" matches several tapes in provider fs (abc-2, abc-1): give more characters of the id"#
        ),
        "{err}"
    );
    let err = dir.fails(&["export", "a"], 1);
    assert!(err.contains("(abc-2, abc-1, ab)"), "{err}");
    let err = dir.fails(&["delete", "abc"], 1);
    assert!(err.contains("matches several tapes"), "{err}");
    // No match.
    let err = dir.fails(&["show", "q"], 1);
    assert!(
        err.contains(r#"error: no tape "q" in provider fs"#),
        "{err}"
    );
    // Validated as what could be part of an id.
    let err = dir.fails(&["delete", "ab/"], 1);
    assert!(err.contains("tape id \"ab/\" contains '/'"), "{err}");
    // A name (exactly): the newest tape of that name.
    assert_eq!(shown_id(&["show", "tape abc-1", "--json"]), "abc-1");
    let err = dir.fails(&["show", "tape nope"], 1);
    assert!(
        err.contains(r#"no tape is named "tape nope" either"#),
        "{err}"
    );

    // export by prefix writes that tape.
    let exported = dir.ok(&["export", "xy"]);
    assert!(
        exported.starts_with(r#"{"type":"header""#) && exported.contains(r#""id":"xyz""#),
        "{exported}"
    );

    // delete: latest, then a prefix; each says which tape went.
    assert!(dir.ok(&["delete", "latest"]).contains("deleted tape xyz"));
    assert!(dir.ok(&["delete", "abc-2"]).contains("deleted tape abc-2"));
    let v = dir.json(&["delete", "abc", "--json"]);
    assert_eq!(v["deleted"], "abc-1");
    assert_eq!(ids(&dir.json(&["list", "--json"])), ["ab"]);
    assert!(dir.ok(&["delete", "latest"]).contains("deleted tape ab"));
    let err = dir.fails(&["delete", "latest"], 1);
    assert!(err.contains("no tapes yet in provider fs"), "{err}");
}

#[test]
fn record_without_dashes_hints_where_they_go() {
    let dir = Dir::new();
    let err = dir.fails(&["record", "python3", "srv.py"], 2);
    assert!(err.contains("unexpected argument 'python3'"), "{err}");
    assert!(
        err.contains(
            "hint: put the server command after --: tapedeck record [OPTIONS] -- python3 srv.py"
        ),
        "{err}"
    );
    let err = dir.fails(
        &["record", "--name", "n", "node", "server.js", "--port", "3"],
        2,
    );
    assert!(
        err.contains("tapedeck record [OPTIONS] -- node server.js --port 3"),
        "{err}"
    );
    // Other usage errors: clap's message alone.
    let err = dir.fails(&["record", "--nmae", "n", "--", "x"], 2);
    assert!(!err.contains("hint:"), "{err}");
}

#[test]
fn provider_inspect_takes_the_embedded_provider() {
    let dir = Dir::new();
    let out = dir.ok(&["provider", "inspect", "embedded:fs"]);
    for want in [
        "component  embedded:fs (",
        "world      tapedeck:storage/provider@0.2.0",
        "verdict    accepted",
        "imports (declared) vs grants of the embedded default (./tapes read-write at /tapes)",
        "/tapes (rw)",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let v = dir.json(&["provider", "inspect", "embedded:fs", "--json"]);
    assert_eq!(v["accepted"], true);
    assert_eq!(v["file"], "embedded:fs");
    assert_eq!(v["bytes"], tapedeck::embedded::FS_PROVIDER_WASM.len());
    let err = dir.fails(&["provider", "inspect", "embedded:s3"], 1);
    assert!(
        err.contains(r#"there is no embedded provider "s3" (available: "embedded:fs""#),
        "{err}"
    );
}

/// The sequence numbers of the frame lines `show --frames` printed.
fn shown_seqs(out: &str) -> Vec<u64> {
    out.lines()
        .filter_map(|l| {
            let (seq, rest) = l.trim_start().split_once("  ")?;
            (rest.starts_with("20") && !l.starts_with(seq)).then(|| seq.parse().ok())?
        })
        .collect()
}

/// A session with answers in the right direction: initialize, a tool call
/// with a progress notification before its result, and a long log line.
fn session() -> Tape {
    let long = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"data":"{}"}}}}"#,
        "x".repeat(500)
    );
    let payloads: Vec<Vec<u8>> = vec![
        INIT.to_vec(),
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec(),
        CALL.to_vec(),
        br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#.to_vec(),
        RESULT.to_vec(),
        long.into_bytes(),
    ];
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let mut t = tape("sess", "s", &[], T0, &refs);
    for (f, d) in t
        .frames
        .iter_mut()
        .zip(["c2s", "s2c", "c2s", "s2c", "s2c", "s2c"])
    {
        f.direction = Direction::from_short(d).unwrap();
    }
    t
}

#[test]
fn show_filters_frames_and_still_verifies_the_whole_tape() {
    let dir = Dir::new();
    import(&dir, &[session()]);
    let verified = format!("\nintegrity {}\n", dir.tapedeck().verified(6));
    let verified = verified.as_str();
    let show = |extra: &[&str]| {
        let mut args = vec!["show", "sess"];
        args.extend_from_slice(extra);
        let out = dir.ok(&args);
        assert!(out.ends_with(verified), "{args:?}:\n{out}");
        out
    };
    let out = show(&["--frames"]);
    assert_eq!(shown_seqs(&out), [0, 1, 2, 3, 4, 5], "{out}");
    // Filters imply --frames; a response goes with its request.
    assert_eq!(shown_seqs(&show(&["--method", "tools/call"])), [2, 4]);
    assert_eq!(shown_seqs(&show(&["--method", "initialize"])), [0, 1]);
    assert_eq!(shown_seqs(&show(&["--dir", "c2s"])), [0, 2]);
    assert_eq!(
        shown_seqs(&show(&["--dir", "s2c", "--from", "2"])),
        [3, 4, 5]
    );
    assert_eq!(shown_seqs(&show(&["--from", "1", "--limit", "2"])), [1, 2]);
    let out = show(&["--method", "resources/read"]);
    assert!(out.contains("\n(no frames match)\n"), "{out}");

    // Not a terminal: payloads whole, with or without --full.
    let long = String::from_utf8(session().frames[5].payload.clone()).unwrap();
    for extra in [&["--from", "5"][..], &["--from", "5", "--full"]] {
        let out = show(extra);
        assert!(out.contains(&long), "{out}");
        assert!(!out.contains("… ("), "{out}");
    }

    // --json: only the matching frames, whole, and the verification.
    let v = dir.json(&["show", "sess", "--json", "--method", "tools/call"]);
    let frames = v["frame_list"].as_array().unwrap();
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 4]);
    assert_eq!(v["frames"], 6);
    assert_eq!(v["integrity"]["verified"], true);

    let err = dir.fails(&["show", "sess", "--dir", "up"], 2);
    assert!(err.contains("c2s (client to server)"), "{err}");
}

/// Reads `child`'s stdout line by line on a thread.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines from `rx` until one satisfies `done` (which is returned last).
fn until(rx: &std::sync::mpsc::Receiver<String>, done: impl Fn(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) => {
                let stop = done(&line);
                got.push(line);
                if stop {
                    return got;
                }
            }
            Err(e) => panic!("{e} after:\n{}", got.join("\n")),
        }
    }
}

#[test]
fn show_follow_prints_frames_as_they_arrive_until_the_tape_ends() {
    use std::process::Stdio;
    use tapedeck::store::{TapeStore, TapeWriter};
    let dir = Dir::new();
    let t = session();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(open_store(&dir));
    let mut writer = rt.block_on(store.create(t.header.clone())).unwrap();
    rt.block_on(writer.append(&t.frames[..2])).unwrap();

    let follow = |extra: &[&str]| {
        let mut args = vec!["show", "sess", "--follow"];
        args.extend_from_slice(extra);
        let mut child = dir
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = lines_of(&mut child);
        (child, rx)
    };
    let (mut text, text_rx) = follow(&[]);
    let (mut json, json_rx) = follow(&["--json", "--dir", "s2c"]);
    let (stopped, stopped_rx) = follow(&[]);

    // The frames so far, while the tape is recording.
    let before = until(&text_rx, |l| l.trim_start().starts_with("1  "));
    assert!(
        before.contains(&"state     recording".to_string()),
        "{before:?}"
    );
    let first = until(&json_rx, |l| l.contains(r#""type":"frame""#));
    let head: Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(head["type"], "tape");
    assert_eq!(head["state"], "recording");
    let frame: Value = serde_json::from_str(first.last().unwrap()).unwrap();
    assert_eq!(frame["seq"], 1);

    // Ctrl-C stops following, the tape still recording.
    until(&stopped_rx, |l| l.trim_start().starts_with("1  "));
    let pid = stopped.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = stopped.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped following tape sess"), "{stderr}");

    // More frames arrive, then the tape ends.
    rt.block_on(writer.append(&t.frames[2..])).unwrap();
    let after = until(&text_rx, |l| l.trim_start().starts_with("5  "));
    assert_eq!(shown_seqs(&after.join("\n")), [2, 3, 4, 5]);
    let summary = t.summary();
    rt.block_on(writer.finish(summary.clone(), tapedeck::types::EndReason::Completed))
        .unwrap();

    let rest = until(&text_rx, |l| l.starts_with("integrity"));
    let rest = rest.join("\n");
    assert!(rest.contains("state     finished\nframes    6\n"), "{rest}");
    let verified = dir.tapedeck().verified(6);
    assert!(rest.ends_with(&format!("integrity {verified}")), "{rest}");
    assert!(text.wait().unwrap().success());

    let rest = until(&json_rx, |l| l.contains(r#""integrity""#));
    let frames: Vec<u64> = rest[..rest.len() - 1]
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(frames, [3, 4, 5], "s2c only");
    let end: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(end["type"], "tape");
    assert_eq!(end["state"], "finished");
    assert_eq!(end["digest"], summary.digest.unwrap().as_str());
    assert_eq!(end["integrity"]["verified"], true);
    assert!(json.wait().unwrap().success());

    // A tape that already ended: shown whole, at once.
    let out = dir.ok(&["show", "sess", "--follow", "--limit", "1"]);
    assert_eq!(shown_seqs(&out), [0]);
    assert!(out.ends_with(&format!("integrity {verified}\n")), "{out}");
    let out = dir.ok(&["show", "sess", "--follow", "--json"]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "tape", "frame", "frame", "frame", "frame", "frame", "frame", "tape"
        ]
    );
    assert_eq!(lines[0]["state"], "finished");
    assert_eq!(lines[7]["integrity"]["verified"], true);
}

/// Records a session of one request through `tapedeck record` and kills
/// the recorder (SIGKILL) once the answer came back: its frames stay in the
/// spool, for the next command to recover.
fn killed_recording(dir: &Dir, name: &str) {
    use std::io::{BufRead, Write};
    use std::process::Stdio;
    let server = tapedeck_tests::fixture("echo_server.py");
    let mut record = dir
        .command(&["record", "--name", name, "--", "python3"])
        .arg(&server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = record.stdin.take().unwrap();
    writeln!(stdin, "{}", std::str::from_utf8(INIT).unwrap()).unwrap();
    stdin.flush().unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(record.stdout.take().unwrap())
        .read_line(&mut answer)
        .unwrap();
    assert!(answer.contains(r#""id":1"#), "{answer}");
    record.kill().unwrap();
    record.wait().unwrap();
}

#[test]
fn recovery_before_a_command_is_logged_not_printed() {
    let dir = Dir::new();
    killed_recording(&dir, "killed");
    let out = dir.run_env(&["list", "--json"], &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("recovered"), "{stderr}");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "killed");
    assert_eq!(listed[0]["state"], "crashed");
    assert!(listed[0]["frames"].as_u64().unwrap() >= 2, "{listed}");

    // With -v, it is said.
    killed_recording(&dir, "killed again");
    let out = dir.run_env(&["-v", "list"], &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered tape") && stderr.contains("into fs"),
        "{stderr}"
    );
}
