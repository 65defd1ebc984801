//! `tapedeck migrate` end to end, with the binary: tapes imported into one
//! embedded fs provider are migrated to another directory and back, equal
//! in every byte of their exports (header, frames, end state, end time,
//! digest); an interrupted migration (an injected `append` failure at the
//! destination) resumes where it stopped; a conflicting tape is reported
//! and left alone; a source that lies about a tape (the `faulty` provider's
//! tampering) is caught and its copy not finished; live tapes are skipped
//! unless asked for, then continued; `--json` gives one object per tape.
//! And the same tapes from the fs provider to PostgreSQL (a throwaway
//! server, see `tapedeck_tests::postgres`) and back.

use serde_json::Value;
use std::path::Path;
use tapedeck::embedded::fs_provider_spec;
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::codec::CodecSettings;
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::{Direction, EndReason, Frame, TapeHeader, TapeState};
use tapedeck_tests::artifacts;
use tapedeck_tests::block_on;
use tapedeck_tests::cli::{error_lines, provider_table, text};
use tapedeck_tests::postgres::{self, PgServer};
use tapedeck_tests::tape::{T0, Tape};

use crate::{cache_dir, tapedeck_in};

/// A working directory whose `tapedeck.toml` configures providers `a`, `b`
/// and `c` (the embedded fs provider in `./a`, `./b`, `./c`) and `extra`.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(extra: &str) -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = String::new();
        for p in ["a", "b", "c"] {
            config.push_str(&provider_table(p, "embedded:fs", p, ""));
        }
        config.push_str(extra);
        std::fs::write(tmp.path().join("tapedeck.toml"), config).unwrap();
        Dir { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs, expects exit `code`; returns stdout and stderr.
    fn expect(&self, args: &[&str], code: i32) -> (String, String) {
        let out = tapedeck_in(self.path()).expect(args, code);
        (text(&out.stdout), text(&out.stderr))
    }

    /// Runs, expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.expect(args, 0).0
    }

    /// `export ID` from `provider`: the whole tape, verified.
    fn export(&self, provider: &str, id: &str) -> String {
        self.ok(&["--provider", provider, "export", id])
    }

    /// Imports `tapes` into `provider`.
    fn import(&self, provider: &str, tapes: &[Tape]) {
        tapedeck_in(self.path()).import(&["--provider", provider], tapes);
    }

    /// The fs provider over `./DIR`, behind the seal of the binary's host
    /// key here, for writing what the CLI cannot (a tape left recording).
    async fn store(&self, dir: &str) -> tapedeck::Store {
        let sandbox = Sandbox::builder()
            .cache(Some(ComponentCache::at(cache_dir())))
            .build()
            .unwrap();
        let provider = WasmProvider::start(
            &sandbox,
            &fs_provider_spec(self.path().join(dir)),
            Path::new("."),
        )
        .await
        .unwrap();
        let seals = tapedeck::SealSettings {
            key_file: Some(self.path().join("data/tapedeck/host-key")),
            ..Default::default()
        };
        seals
            .load()
            .unwrap()
            .store(provider, CodecSettings::default())
    }
}

/// One object per line.
fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A tape to import: `n` frames, JSON, plain text and binary payloads in
/// turn, ended (in `state`) a minute after it was created.
fn tape(id: &str, state: TapeState, n: u64, created: u64) -> Tape {
    let frames = (0..n)
        .map(|seq| {
            let (payload, not_json) = match seq % 3 {
                0 => (
                    format!(r#"{{"jsonrpc":"2.0","id":{seq}}}"#).into_bytes(),
                    false,
                ),
                1 => (format!("line {seq} of {id}").into_bytes(), true),
                _ => (vec![0xff, 0xfe, seq as u8], true),
            };
            Frame {
                seq,
                timestamp_us: created + 100 * seq,
                direction: if seq % 2 == 0 {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                },
                // What the recorder (and import) give a JSON frame.
                terms: if not_json {
                    Vec::new()
                } else {
                    tapedeck::types::terms::payload_terms(&payload)
                },
                payload,
                not_json,
                attributes: Vec::new(),
            }
        })
        .collect();
    let header = TapeHeader {
        id: id.into(),
        session_id: format!("session of {id}"),
        name: format!("tape {id}"),
        tags: vec![("env".into(), "ci".into()), ("env".into(), "eu".into())],
        created_at_us: created,
        envelope: None,
    };
    Tape {
        state,
        ..Tape::new(header, frames, 60_000_000)
    }
}

/// A tape in every end state, an empty one, and one of three pages (the
/// migration reads and appends 1,000 frames at a time).
fn tapes() -> Vec<Tape> {
    vec![
        tape("t-fin", TapeState::Finished, 5, T0),
        tape("t-crash", TapeState::Crashed, 3, T0 + 1),
        tape("t-abort", TapeState::Aborted, 2, T0 + 2),
        tape("t-empty", TapeState::Finished, 0, T0 + 3),
        tape("t-big", TapeState::Finished, 2500, T0 + 4),
    ]
}

const IDS: [&str; 5] = ["t-fin", "t-crash", "t-abort", "t-empty", "t-big"];

#[test]
fn tapes_migrate_both_ways_unchanged_and_a_second_run_skips_them() {
    let dir = Dir::new("");
    dir.import("a", &tapes());

    let out = dir.ok(&["migrate", "--from", "a", "--to", "b"]);
    for id in IDS {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("migrated tape {id} (")))
            .unwrap_or_else(|| panic!("no line for {id}:\n{out}"));
        assert!(
            line.contains("): source verified (sealed by ed25519:")
                && line.ends_with(", copy read back and matched"),
            "{line}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("migrated tape t-abort (2 frames, ")
                && l.contains(", aborted): ")),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("a → b: 5 migrated, 0 skipped, 0 conflicts, 0 failed")
    );
    for id in IDS {
        assert_eq!(dir.export("b", id), dir.export("a", id), "tape {id} in b");
    }

    // Back, into a fresh provider.
    dir.ok(&["migrate", "--from", "b", "--to", "c"]);
    for id in IDS {
        assert_eq!(dir.export("c", id), dir.export("a", id), "tape {id} in c");
    }

    // Again: every tape is there already.
    let out = dir.ok(&["migrate", "--from", "a", "--to", "b", "--json"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), IDS.len() + 1, "{out}");
    for v in &lines[..IDS.len()] {
        assert_eq!(v["status"], "skipped", "{v}");
        assert_eq!(v["reason"], "already-migrated", "{v}");
        assert_eq!((&v["from"], &v["to"]), (&"a".into(), &"b".into()));
    }
    assert_eq!(
        lines[IDS.len()],
        serde_json::json!({"summary": {"from": "a", "to": "b", "migrated": 0,
            "skipped": 5, "conflicts": 0, "failed": 0}})
    );
}

#[test]
fn tapes_migrate_to_postgresql_and_back() {
    let pg = PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let table = format!(
        "[providers.pg]\ncomponent = {:?}\ngrants.network = [{:?}]\nconfig = {{ host = \"127.0.0.1\", \
         port = {}, database = \"postgres\", user = {:?}, password = {:?}, schema = \"migrate\" }}\n",
        artifacts::POSTGRES_PROVIDER,
        pg.grant(),
        pg.port(),
        postgres::USER,
        pg.password()
    );
    let dir = Dir::new(&table);
    dir.import("a", &tapes());
    let out = dir.ok(&["migrate", "--from", "a", "--to", "pg"]);
    assert_eq!(
        out.lines().last(),
        Some("a → pg: 5 migrated, 0 skipped, 0 conflicts, 0 failed")
    );
    // Contract 0.2: `finish` with reason `aborted` keeps the summary, so
    // the aborted tape arrives whole (end time and digest), without a note.
    let aborted = out
        .lines()
        .find(|l| l.starts_with("migrated tape t-abort "))
        .unwrap();
    assert!(!aborted.contains("(note:"), "{aborted}");
    dir.ok(&["migrate", "--from", "pg", "--to", "c"]);
    for id in IDS {
        let original = dir.export("a", id);
        assert_eq!(dir.export("pg", id), original, "tape {id} in pg");
        assert_eq!(dir.export("c", id), original, "tape {id} back in c");
    }
    let out = dir.ok(&["migrate", "--from", "a", "--to", "pg"]);
    assert_eq!(
        out.lines().last(),
        Some("a → pg: 0 migrated, 5 skipped, 0 conflicts, 0 failed")
    );
}

#[test]
fn an_interrupted_migration_resumes_and_a_conflict_is_left_alone() {
    // `b2` is `./b` behind the faulty provider: its second `append` fails
    // (once: the counters persist in `./b/.faults`).
    let faults = r#", faults = [{ call = "append", fault = "error", after = 1 }]"#;
    let dir = Dir::new(&provider_table(
        "b2",
        artifacts::FAULTY_PROVIDER,
        "b",
        faults,
    ));
    dir.import("a", &tapes());
    // A different tape under the id of t-fin, already in b.
    let mut other = tape("t-fin", TapeState::Finished, 4, T0);
    other.header.name = "another tape".into();
    dir.import("b", std::slice::from_ref(&other));
    let other_export = dir.export("b", "t-fin");

    // Interrupted after the first page of t-big.
    let (out, err) = dir.expect(
        &["migrate", "--from", "a", "--to", "b2", "--tape", "t-big"],
        1,
    );
    let err = error_lines(&err);
    assert!(
        err.starts_with(
            "error: tape t-big: `append` on provider b2 (the destination) failed: \
             provider `b2`: io: injected fault: append #2"
        ) && err.contains(
            "; the copy in provider b2 is left recording, not finished: run the migration \
             again to resume it, or delete it"
        ),
        "{err}"
    );
    assert_eq!(
        out.lines().last(),
        Some("a → b2: 0 migrated, 0 skipped, 0 conflicts, 1 failed")
    );
    let listed = dir.ok(&["--provider", "b", "list", "--json", "--state", "recording"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["id"], "t-big");
    assert_eq!(listed[0]["frames"], 1000);

    // Everything: t-big resumes, t-fin conflicts, the rest are copied.
    let (out, err) = dir.expect(&["migrate", "--from", "a", "--to", "b", "--json"], 1);
    let lines = json_lines(&out);
    let by_id = |id: &str| {
        lines
            .iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}:\n{out}"))
    };
    let big = by_id("t-big");
    assert_eq!(big["status"], "migrated", "{big}");
    assert_eq!(big["resumed_from"], 1000);
    assert_eq!(big["frames_sent"], 1500);
    assert_eq!(big["frames"], 2500);
    assert_eq!(big["state"], "finished");
    assert_eq!(big["read_back"], true);
    assert_eq!(big["integrity"]["status"], "verified");
    let fin = by_id("t-fin");
    assert_eq!(fin["status"], "conflict", "{fin}");
    assert_eq!(fin["copy"], "untouched");
    let msg = fin["error"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "tape t-fin: provider b already has a different tape with this id: name \
             \"another tape\" (source: \"tape t-fin\"); frames 4 (source: 5); "
        ) && msg.ends_with("; left untouched"),
        "{msg}"
    );
    assert_eq!(
        error_lines(&err),
        "",
        "with --json, errors are in the JSON only"
    );
    for id in ["t-crash", "t-abort", "t-empty"] {
        assert_eq!(by_id(id)["status"], "migrated");
    }
    assert_eq!(
        lines.last().unwrap()["summary"],
        serde_json::json!({"from": "a", "to": "b", "migrated": 4, "skipped": 0,
            "conflicts": 1, "failed": 0})
    );
    assert_eq!(
        dir.export("b", "t-fin"),
        other_export,
        "the conflict is untouched"
    );
    for id in ["t-big", "t-crash", "t-abort", "t-empty"] {
        assert_eq!(dir.export("b", id), dir.export("a", id), "tape {id} in b");
    }
}

#[test]
fn a_source_that_lies_about_a_tape_is_caught_and_the_copy_not_finished() {
    // `a2` is `./a` behind the faulty provider, altering frame 1 of every
    // ended tape it reads (same length: only the digest can tell).
    let tamper = r#", tamper = { mode = "alter", frame = 1 }"#;
    let dir = Dir::new(&provider_table(
        "a2",
        artifacts::FAULTY_PROVIDER,
        "a",
        tamper,
    ));
    dir.import("a", &tapes()[..1]);
    let (_, err) = dir.expect(&["migrate", "--from", "a2", "--to", "b"], 1);
    let err = error_lines(&err);
    assert!(
        err.starts_with(
            "error: tape t-fin: integrity check failed: the frames provider a2 returned do \
             not match the digest recorded when the tape was finished"
        ) && err.ends_with(
            "; the copy in provider b is left recording, not finished, with the frames as \
             read: delete it\n"
        ),
        "{err}"
    );
    let copy: Value =
        serde_json::from_str(&dir.ok(&["--provider", "b", "list", "--json"])).unwrap();
    assert_eq!(copy[0]["state"], "recording");

    // From the intact source, that copy (with the altered frame) is a
    // conflict; once it is deleted, the tape migrates.
    let (_, err) = dir.expect(&["migrate", "--from", "a", "--to", "b"], 1);
    assert_eq!(
        err,
        "error: tape t-fin: provider b already has a different tape with this id: it is \
         recording, and its 5 frames are not the source's first 5; left untouched\n"
    );
    dir.ok(&["--provider", "b", "delete", "t-fin"]);
    dir.ok(&["migrate", "--from", "a", "--to", "b"]);
    assert_eq!(dir.export("b", "t-fin"), dir.export("a", "t-fin"));
}

#[test]
fn live_tapes_are_skipped_unless_asked_then_continued() {
    let dir = Dir::new("");
    let live = tape("t-live", TapeState::Finished, 5, T0);
    block_on(async {
        let a = dir.store("a").await;
        let mut w = a.create(live.header.clone()).await.unwrap();
        w.append(&live.frames[..3]).await.unwrap();
        // Dropped without finish: the tape stays recording.
    });

    let out = dir.ok(&["migrate", "--from", "a", "--to", "b"]);
    assert!(
        out.starts_with(
            "skipped tape t-live: still recording at the source (--include-recording copies \
             its frames so far)"
        ),
        "{out}"
    );
    let out = dir.ok(&["migrate", "--from", "a", "--to", "b", "--include-recording"]);
    assert!(
        out.starts_with("copied tape t-live so far (3 frames, "),
        "{out}"
    );

    block_on(async {
        let a = dir.store("a").await;
        let mut w = a.resume("t-live").await.unwrap();
        w.append(&live.frames[3..]).await.unwrap();
        w.finish(live.summary(), EndReason::Completed)
            .await
            .unwrap();
    });
    let out = dir.ok(&["migrate", "--from", "a", "--to", "b", "--tape", "latest"]);
    assert!(
        out.starts_with("migrated tape t-live (5 frames, ")
            && out.contains("(resumed at frame 3: 2 frames sent)"),
        "{out}"
    );
    assert_eq!(dir.export("b", "t-live"), dir.export("a", "t-live"));
}

#[test]
fn bad_arguments_name_the_problem() {
    let dir = Dir::new("");
    let (_, err) = dir.expect(&["migrate", "--from", "a", "--to", "a"], 1);
    assert!(
        err.contains("--from and --to both name provider a"),
        "{err}"
    );
    let (_, err) = dir.expect(&["migrate", "--from", "a", "--to", "zz"], 1);
    assert!(err.contains("zz") && err.contains("a, b, c, fs"), "{err}");
    let (_, err) = dir.expect(
        &["migrate", "--from", "a", "--to", "b", "--tape", "../x"],
        1,
    );
    assert!(err.contains("../x"), "{err}");
    let (out, err) = dir.expect(
        &["migrate", "--from", "a", "--to", "b", "--tape", "nope"],
        1,
    );
    assert_eq!(
        err,
        "error: tape nope: no such tape in provider a (the source)\n"
    );
    assert_eq!(out, "a → b: 0 migrated, 0 skipped, 0 conflicts, 1 failed\n");
}
