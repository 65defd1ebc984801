//! Fault injection: the `faulty` provider fails on chosen calls (an error, a
//! trap, a spin, a hang, a delay, a lost acknowledgement, a wrong answer),
//! and the recorder must still deliver every frame, in order, exactly once —
//! within the session, or through the spool and recovery — and the read
//! calls must fail with a typed error and work again afterwards.
//!
//! Every recording case prints `sent N, recovered N` and asserts they are
//! equal, in order, without a duplicate. The tampering cases prove that a
//! provider returning something other than what was recorded is caught by
//! the digest, at the end of the recording, in recovery and on load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tapedeck::HostSeal;
use tapedeck::error::ProviderError;
use tapedeck::read::{ReadError, load_tape};
use tapedeck::recorder::{RecordError, Recorder, RecorderOptions, TapeMeta};
use tapedeck::sandbox::{
    ComponentSource, DirGrant, Grants, Limits, ProviderSpec, Sandbox, WasmProvider,
};
use tapedeck::spool::{ProviderKey, Spool, SpoolStatus, recover_all};
use tapedeck::store::TapeStore;
use tapedeck::store::keys::SecretKey;
use tapedeck::store::seal::TrustedHosts;
use tapedeck::types::{Direction, SearchQuery, TapeFilter, TapeState};
use tapedeck::units::{ByteSize, Millis};
use tapedeck_tests::artifacts;

/// Frames recorded per case.
const FRAMES: u64 = 60;

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    sandbox: Sandbox,
    spool: Spool,
    /// The host's seal, as a deck would put it around the provider.
    seal: HostSeal,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Env {
            sandbox: Sandbox::new().unwrap(),
            spool: Spool::open(root.join("spool")).unwrap(),
            seal: HostSeal::new(SecretKey::generate().unwrap(), TrustedHosts::default()),
            root,
            _tmp: tmp,
        }
    }

    /// The faulty provider over `tapes/`, configured with `config`.
    fn spec(&self, config: serde_json::Value) -> ProviderSpec {
        ProviderSpec::new(
            "faulty",
            ComponentSource::File(artifacts::FAULTY_PROVIDER.into()),
        )
        .with_config(config)
        .with_grants(Grants {
            dirs: vec![DirGrant::read_write(self.root.join("tapes"), "/tapes")],
            ..Grants::default()
        })
        .with_limits(Limits {
            cpu_per_call: Millis(300),
            timeout_per_call: Millis(600),
            ..Limits::default()
        })
    }

    async fn start(&self, config: serde_json::Value) -> (WasmProvider, ProviderKey) {
        let spec = self.spec(config);
        let store = WasmProvider::start(&self.sandbox, &spec, &self.root)
            .await
            .unwrap_or_else(|e| panic!("start faulty: {e}"));
        (store, tapedeck::spool::provider_key(&spec, &self.root))
    }

    /// The provider without faults over the same storage: what recovery
    /// and the checks use. (Its key differs, as faults are part of the
    /// config; recovery is given the recording's key.)
    async fn healthy(&self) -> (WasmProvider, ProviderKey) {
        self.start(serde_json::json!({})).await
    }
}

fn options() -> RecorderOptions {
    RecorderOptions {
        batch_frames: 8,
        batch_bytes: ByteSize(64 * 1024),
        flush_interval: Millis(2),
        spool_sync: Millis(2),
        end_timeout: Millis(4000),
        ..RecorderOptions::default()
    }
}

fn payload(k: u64) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{k},"method":"tools/call","params":{{"n":{k}}}}}"#)
        .into_bytes()
}

fn direction(k: u64) -> Direction {
    if k.is_multiple_of(2) {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

/// How a recording through a faulty provider ended.
#[derive(Debug)]
enum Ending {
    /// Within the session.
    Finished,
    /// Left in the spool at the end, then recovered.
    Recovered,
}

/// Records `FRAMES` frames through the provider configured with `faults`,
/// in several batches; if the recording ends with frames in the spool,
/// recovers them with a healthy provider. Then checks the tape holds every
/// frame sent, in order, once, verified against its digest, and that the
/// spool is empty. Returns how it ended.
async fn record_through(label: &str, faults: serde_json::Value) -> Ending {
    let env = Env::new();
    let config = serde_json::json!({ "faults": faults });
    let (store, key) = env.start(config).await;
    // Faults on `append` strike recordings that send their own batches;
    // otherwise the recorder batches recordings together (`append-many`).
    let per_recording = faults
        .as_array()
        .is_some_and(|rules| rules.iter().any(|r| r["call"] == "append"));
    let options = RecorderOptions {
        batch_recordings: !per_recording,
        ..options()
    };
    let recorder = Recorder::new(Arc::new(env.seal.seal(store)), options)
        .with_spool(env.spool.clone(), key.clone());
    let recording = recorder
        .start(TapeMeta {
            name: label.into(),
            ..TapeMeta::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{label}: start: {e}"));
    let id = recording.id().to_string();
    for k in 0..FRAMES {
        recording.record(direction(k), payload(k));
        if k % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    let ending = match recording.finish().await {
        Ok(outcome) => {
            assert_eq!(outcome.summary.frame_count, FRAMES, "{label}");
            Ending::Finished
        }
        Err(RecordError::Spooled { recorded, .. }) => {
            assert_eq!(recorded, FRAMES, "{label}");
            // The faults are spent; a healthy instance over the same
            // storage delivers the rest.
            let healthy = env.seal.seal(env.healthy().await.0);
            let report = recover_all(&env.spool, &healthy, &key).await.unwrap();
            assert!(
                report.failed.is_empty(),
                "{label}: recovery failed: {:?}",
                report.failed
            );
            assert_eq!(report.recovered.len(), 1, "{label}: {report:?}");
            Ending::Recovered
        }
        Err(e) => panic!("{label}: {e}"),
    };
    let healthy = env.seal.seal(env.healthy().await.0);
    let tape = load_tape(&healthy, &id)
        .await
        .unwrap_or_else(|e| panic!("{label}: load: {e}"));
    assert!(
        tape.verification.is_verified(),
        "{label}: {}",
        tape.verification
    );
    let sent: Vec<_> = (0..FRAMES).map(payload).collect();
    let got: Vec<_> = tape.frames.iter().map(|f| f.payload.clone()).collect();
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    println!(
        "{label:<28} sent {FRAMES}, recovered {} ({} unique), {:?}, tape {}",
        got.len(),
        unique.len(),
        ending,
        tape.info.state.as_str()
    );
    assert_eq!(got, sent, "{label}: frames differ from those sent");
    assert_eq!(tape.info.state, TapeState::Finished, "{label}");
    let status = SpoolStatus::read(&env.spool).unwrap();
    assert!(
        status.entries.is_empty(),
        "{label}: spool not empty: {status:?}"
    );
    ending
}

/// One rule: `fault` on `call`, after `after` calls, `times` times.
fn rule(call: &str, fault: &str, after: u64, times: u64) -> serde_json::Value {
    let mut r = serde_json::json!({ "call": call, "fault": fault, "after": after, "times": times });
    if fault == "slow" {
        r["ms"] = 200.into();
    }
    r
}

const FAULTS: &[&str] = &[
    "error",
    "trap",
    "spin",
    "hang",
    "slow",
    "ack-then-lose",
    "garbage",
];

/// Every fault on every call a recording makes: `create`, `append` and
/// `append-many` (at the start and in the middle), `next-seq` and `resume` (made when an instance
/// is replaced), `finish`, `get` and `read-frames` (the checks after
/// `finish`), and `init` (a replacement instance failing to start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_write_call_site_loses_no_frame() {
    let mut recovered = 0;
    let mut total = 0;
    for call in [
        "create",
        "append",
        "append-many",
        "finish",
        "get",
        "read-frames",
    ] {
        for fault in FAULTS {
            let after = if call.starts_with("append") { 2 } else { 0 };
            let label = format!("{call}/{fault}");
            if matches!(
                record_through(&label, serde_json::json!([rule(call, fault, after, 1)])).await,
                Ending::Recovered
            ) {
                recovered += 1;
            }
            total += 1;
        }
    }
    // Faults that only strike when an instance is replaced: trap the first
    // append to force a new instance, then fail what it calls.
    for call in ["init", "resume", "next-seq"] {
        for fault in FAULTS {
            if call == "next-seq" && matches!(*fault, "error" | "ack-then-lose") {
                continue; // next-seq cannot return an error
            }
            let label = format!("{call}/{fault} (new instance)");
            let faults = serde_json::json!([
                rule("append", "trap", 1, 1),
                rule(call, fault, if call == "init" { 1 } else { 0 }, 1),
            ]);
            if matches!(record_through(&label, faults).await, Ending::Recovered) {
                recovered += 1;
            }
            total += 1;
        }
    }
    // A fault that lasts: appends fail 12 times in a row (the circuit
    // breaker opens), then the provider recovers within the session.
    for call in ["append", "append-many"] {
        record_through(
            &format!("{call}/error x12"),
            serde_json::json!([rule(call, "error", 1, 12)]),
        )
        .await;
    }
    println!(
        "{total} single-fault cases: every frame kept; {recovered} needed recovery from the spool"
    );
}

/// A provider that is down for the whole session: everything waits in the
/// spool and recovery delivers it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_for_the_whole_session_gets_every_frame_from_the_spool() {
    for call in ["append", "append-many"] {
        let ending = record_through(
            &format!("{call}/error forever"),
            serde_json::json!([rule(call, "error", 0, 0)]),
        )
        .await;
        assert!(matches!(ending, Ending::Recovered), "{call}");
    }
    let ending = record_through(
        "create/trap forever",
        serde_json::json!([rule("create", "trap", 0, 0)]),
    )
    .await;
    assert!(matches!(ending, Ending::Recovered));
}

/// Every read call with every fault: a typed error (or a correct answer,
/// for `slow`), the next call answers correctly, the tape is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_read_call_site_is_a_typed_error_then_works() {
    // One finished tape to read.
    let env = Env::new();
    let (healthy, key) = env.healthy().await;
    let recorder = Recorder::new(Arc::new(healthy), options()).with_spool(env.spool.clone(), key);
    let recording = recorder.start(TapeMeta::default()).await.unwrap();
    let id = recording.id().to_string();
    for k in 0..FRAMES {
        recording.record(direction(k), payload(k));
    }
    recording.finish().await.unwrap();

    for call in [
        "get",
        "read-frames",
        "list",
        "search",
        "stats",
        "delete",
        "save",
    ] {
        for fault in FAULTS {
            let (store, _) = env
                .start(serde_json::json!({ "faults": [rule(call, fault, 0, 1)] }))
                .await;
            // The counters live in the storage: reset them for this case.
            let _ = std::fs::remove_dir_all(env.root.join("tapes/.faults"));
            let first = read_call(&store, call, &id).await;
            match (*fault, &first) {
                ("slow", Ok(())) => {}
                ("slow", Err(e)) => panic!("{call}/slow: {e}"),
                // A wrong answer to `delete`/`save` is an error too (it acts
                // as `error`); to the others it must be caught.
                (_, Err(e)) => assert!(!e.to_string().is_empty()),
                (_, Ok(())) => panic!("{call}/{fault}: the fault went unnoticed"),
            }
            read_call(&store, call, &id)
                .await
                .unwrap_or_else(|e| panic!("{call}/{fault}: the next call failed: {e}"));
            let tape = load_tape(&store, &id).await.unwrap();
            assert_eq!(tape.frames.len() as u64, FRAMES, "{call}/{fault}");
            println!(
                "{call}/{fault}: {}",
                first.map_or_else(|e| e, |()| "ok (slow)".into())
            );
        }
    }
}

/// Makes one call of `call` and checks its answer; `delete` and `save` use
/// a scratch tape so the recorded one stays.
async fn read_call(store: &WasmProvider, call: &str, id: &str) -> Result<(), String> {
    let e = |e: ProviderError| e.to_string();
    match call {
        "get" => {
            let info = store.get(id).await.map_err(e)?;
            check(
                info.header.id == id && info.frame_count == FRAMES,
                "get answered wrong",
            )
        }
        "read-frames" => {
            let frames = store.read_frames(id, 0, 10, u64::MAX).await.map_err(e)?;
            check(
                frames.len() == 10 && frames.iter().enumerate().all(|(i, f)| f.seq == i as u64),
                "read-frames answered wrong",
            )
        }
        "list" => {
            let page = store
                .list(&TapeFilter::default(), None, 10)
                .await
                .map_err(e)?;
            check(
                page.tapes.iter().any(|t| t.header.id == id),
                "list answered wrong",
            )
        }
        "search" => {
            let q = SearchQuery {
                terms: vec![tapedeck::types::terms::method_term("tools/call")],
                ..SearchQuery::default()
            };
            let page = store.search(&q, None, 10).await.map_err(e)?;
            check(
                page.tapes.iter().any(|t| t.header.id == id),
                "search answered wrong",
            )
        }
        "stats" => {
            let s = store.stats().await.map_err(e)?;
            check(s.frame_count >= FRAMES, "stats answered wrong")
        }
        "save" | "delete" => {
            let scratch = format!("scratch-{}", uuid_like());
            let header = tapedeck::types::TapeHeader {
                id: scratch.clone(),
                session_id: String::new(),
                name: String::new(),
                tags: vec![],
                created_at_us: 1,
                envelope: None,
            };
            let summary = tapedeck::types::TapeSummary {
                frame_count: 0,
                byte_count: 0,
                ended_at_us: 2,
                digest: None,
                seal: None,
            };
            if call == "save" {
                store
                    .save(header, &[], summary, tapedeck::types::EndReason::Completed)
                    .await
                    .map_err(e)?;
                Ok(())
            } else {
                // Made without faults on `save`, deleted under test.
                let _ = store
                    .save(header, &[], summary, tapedeck::types::EndReason::Completed)
                    .await;
                store.delete(&scratch).await.map_err(e)
            }
        }
        other => unreachable!("{other}"),
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A tampering provider is caught: at the end of the recording (the tape
/// is read back before the spool lets go of it, so the frames are kept),
/// and on load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_returns_other_frames_is_caught_by_the_digest() {
    for mode in ["alter", "drop", "reorder", "add", "digest"] {
        let env = Env::new();
        let config = serde_json::json!({ "tamper": { "mode": mode, "frame": 7 } });
        let (store, key) = env.start(config).await;
        let store = Arc::new(store);
        let recorder =
            Recorder::new(store.clone(), options()).with_spool(env.spool.clone(), key.clone());
        let recording = recorder.start(TapeMeta::default()).await.unwrap();
        let id = recording.id().to_string();
        for k in 0..FRAMES {
            recording.record(direction(k), payload(k));
        }
        let err = recording.finish().await.unwrap_err();
        let RecordError::Spooled {
            spool, recorded, ..
        } = &err
        else {
            panic!("{mode}: expected the frames kept in the spool, got {err}");
        };
        assert_eq!(*recorded, FRAMES);
        assert!(
            spool.exists(),
            "{mode}: the spool let go of a tampered tape"
        );
        // Caught by the check after `finish` (a fresh `get` disagrees with
        // the summary) or by reading the tape back against its digest.
        let text = err.to_string();
        assert!(
            text.contains("reading the finished tape back") || text.contains("after ending tape"),
            "{mode}: {text}"
        );

        // On load: a clear error naming what is wrong.
        let loaded = load_tape(store.as_ref(), &id).await;
        let Err(ReadError::Integrity(e)) = loaded else {
            panic!("{mode}: load did not detect tampering: {loaded:?}");
        };
        let msg = e.to_string();
        assert!(msg.contains(&id) && msg.contains("faulty"), "{mode}: {msg}");
        println!("{mode}: caught at finish and on load: {msg}");

        // Recovery refuses to let go of the spool file either.
        let report = recover_all(&env.spool, store.as_ref(), &key).await.unwrap();
        assert!(report.recovered.is_empty(), "{mode}");
        assert_eq!(report.failed.len(), 1, "{mode}");
        assert!(spool.exists(), "{mode}");
    }
}

/// Spool files are created in the spool directory, which the provider is
/// never granted; the spool file is there while recording and gone after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_file_lives_until_the_provider_has_the_tape() {
    let env = Env::new();
    let (store, key) = env.healthy().await;
    let recorder = Recorder::new(Arc::new(store), options()).with_spool(env.spool.clone(), key);
    let recording = recorder.start(TapeMeta::default()).await.unwrap();
    let path = recording.spool_path().unwrap().to_path_buf();
    assert!(path.starts_with(env.spool.dir()));
    assert!(!path.starts_with(env.root.join("tapes")));
    recording.record(Direction::ClientToServer, payload(0));
    assert!(path.exists());
    let status = SpoolStatus::read(&env.spool).unwrap();
    assert_eq!(status.entries.len(), 1);
    recording.finish().await.unwrap();
    assert!(!path.exists());
    assert!(!Path::new(&path).exists());
}
