//! The recorder library: many concurrent recordings against the sandboxed fs
//! provider, each read back frame by frame; retries after failed appends;
//! `record` never waiting on a stalled store. The proxy over real child
//! processes is in `proxy.rs`.
//!
//! No timing thresholds: every assertion is about order and completion.

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use tapedeck::embedded;
use tapedeck::error::ProviderError;
use tapedeck::recorder::{DigestChain, RecordError, Recorder, RecorderOptions, TapeMeta};
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::spool::Spool;
use tapedeck::store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck::units::{ByteSize, Millis};
use tapedeck_tests::native::{NativeFsStore, NativeFsWriter, unsynced as native_store};
use tapedeck_tests::recording::{self, read_all};
use tapedeck_types::{Direction, ErrorKind, Frame, StorageError, TapeFilter, TapeState};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------
// Helpers

/// What a test expects of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    direction: Direction,
    payload: Vec<u8>,
    not_json: bool,
}

/// Checks tape `id` in `store` holds exactly `expected`, in order, finished,
/// with a digest that verifies.
async fn assert_tape<S: TapeStore>(store: &S, id: &str, expected: &[Expected]) -> Vec<Frame> {
    let info = store.get(id).await.unwrap();
    assert_eq!(info.state, TapeState::Finished, "tape {id}");
    assert_eq!(info.frame_count, expected.len() as u64, "tape {id}");
    let frames = read_all(store, id).await;
    assert_eq!(frames.len(), expected.len(), "tape {id}");
    for (i, (f, e)) in frames.iter().zip(expected).enumerate() {
        assert_eq!(f.seq, i as u64, "tape {id} frame {i}");
        assert_eq!(f.direction, e.direction, "tape {id} frame {i}");
        assert_eq!(
            f.payload,
            e.payload,
            "tape {id} frame {i}: {:?}",
            String::from_utf8_lossy(&f.payload)
        );
        assert_eq!(f.not_json, e.not_json, "tape {id} frame {i}");
    }
    assert!(
        frames
            .windows(2)
            .all(|w| w[0].timestamp_us <= w[1].timestamp_us),
        "tape {id}: timestamps go backwards"
    );
    let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
    assert_eq!(info.byte_count, bytes, "tape {id}");
    let digest = info
        .digest
        .as_deref()
        .expect("a finished tape has a digest");
    DigestChain::verify(&frames, digest).unwrap_or_else(|e| panic!("tape {id}: {e}"));
    frames
}

/// Payload `k` of tape `t`: a mix of JSON requests and responses, unicode,
/// `\r`, empty lines, plain text, non-UTF-8 bytes and the odd large line.
fn payload(t: usize, k: usize) -> Expected {
    let direction = if (t + k).is_multiple_of(3) {
        Direction::ServerToClient
    } else {
        Direction::ClientToServer
    };
    let (payload, not_json): (Vec<u8>, bool) = match k % 9 {
        0 => (
            format!(
                r#"{{"jsonrpc":"2.0","id":{k},"method":"tools/call","params":{{"tape":{t}}}}}"#
            )
            .into_bytes(),
            false,
        ),
        1 => (
            format!(r#"{{"jsonrpc":"2.0","id":{k},"result":{{"text":"h\u00e9llo {t} 😀 日本"}}}}"#)
                .into_bytes(),
            false,
        ),
        2 => (vec![0xff, 0xfe, t as u8, k as u8, 0, b'\n', 0x80], true),
        3 => (format!("plain text {t}/{k}").into_bytes(), true),
        4 => (Vec::new(), true),
        5 => (
            format!(r#"{{"jsonrpc":"2.0","method":"n/{t}"}}"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\r")
                .collect(),
            false,
        ),
        6 => (format!(r#"{{"broken": {t}"#).into_bytes(), true),
        7 => (
            serde_json::to_vec(&serde_json::json!({"blob": "x".repeat(5000 + t * 10 + k)}))
                .unwrap(),
            false,
        ),
        _ => (format!("[{t},{k}]").into_bytes(), false),
    };
    Expected {
        direction,
        payload,
        not_json,
    }
}

fn meta(name: &str) -> TapeMeta {
    recording::meta("recorder", name)
}

// ---------------------------------------------------------------------------
// A store wrapper that fails or stalls appends on request

/// Gate that holds appends until released.
#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    notify: Notify,
}

impl Gate {
    async fn pass(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.closed.load(SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn open(&self) {
        self.closed.store(false, SeqCst);
        self.notify.notify_waiters();
    }
}

/// What the wrapper does to appends (shared by all its writers).
#[derive(Default)]
struct Hook {
    /// Fail this many appends with an `io` error, storing nothing.
    fail_next: AtomicU64,
    /// Store this many appends, then report an `io` error (a lost answer).
    lose_answer_next: AtomicU64,
    /// Fail every append with this kind.
    always_fail: Mutex<Option<ErrorKind>>,
    /// Appends wait here.
    gate: Gate,
    /// Appends entered / completed successfully.
    entered: AtomicU64,
    succeeded: AtomicU64,
}

fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn io_error(what: &str) -> ProviderError {
    ProviderError::Storage {
        provider: "hooked".into(),
        error: StorageError::io(what),
    }
}

struct Hooked {
    inner: NativeFsStore,
    hook: Arc<Hook>,
}

struct HookedWriter {
    inner: NativeFsWriter,
    hook: Arc<Hook>,
}

// Only `create` / `resume` (to hook the writer) and the writer's `append`
// are the wrapper's own: everything else is forwarded (`Layer`).
impl tapedeck::store::Layer for Hooked {
    type Inner = NativeFsStore;
    type Writer = HookedWriter;

    fn inner(&self) -> &NativeFsStore {
        &self.inner
    }

    fn wrap_writer(&self, inner: NativeFsWriter) -> HookedWriter {
        HookedWriter {
            inner,
            hook: self.hook.clone(),
        }
    }
}

impl tapedeck::store::WriterLayer for HookedWriter {
    type Inner = NativeFsWriter;

    fn inner(&self) -> &NativeFsWriter {
        &self.inner
    }

    fn inner_mut(&mut self) -> &mut NativeFsWriter {
        &mut self.inner
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        self.hook.entered.fetch_add(1, SeqCst);
        self.hook.gate.pass().await;
        let always = *self.hook.always_fail.lock().unwrap();
        if let Some(kind) = always {
            return Err(ProviderError::Storage {
                provider: "hooked".into(),
                error: StorageError::new(kind, "append refused by the test"),
            });
        }
        if take_one(&self.hook.fail_next) {
            return Err(io_error("append failed by the test"));
        }
        let next = self.inner.append(frames).await?;
        if take_one(&self.hook.lose_answer_next) {
            return Err(io_error("stored, but the answer was lost"));
        }
        self.hook.succeeded.fetch_add(1, SeqCst);
        Ok(next)
    }
}

fn hooked(dir: &Path, hook: Hook) -> (Arc<Hooked>, Arc<Hook>) {
    let hook = Arc::new(hook);
    let store = Arc::new(Hooked {
        inner: native_store(dir),
        hook: hook.clone(),
    });
    (store, hook)
}

/// Default batching, but each recording's own `append` (the hooks sit on
/// the writer's `append`).
fn per_recording() -> RecorderOptions {
    RecorderOptions {
        batch_recordings: false,
        ..RecorderOptions::default()
    }
}

/// Small batches, each recording's own `append` (the hooks sit on the
/// writer's `append`; `append-many` is tested on its own).
fn small_batches() -> RecorderOptions {
    RecorderOptions {
        batch_recordings: false,
        batch_frames: 16,
        batch_bytes: ByteSize(8 * 1024),
        flush_interval: Millis(2),
        // Give up on a store that keeps failing quickly: these tests have
        // no spool, so what is left is reported as not stored.
        end_timeout: Millis(500),
        ..RecorderOptions::default()
    }
}

// ---------------------------------------------------------------------------
// Many recordings at once, in the sandbox

/// One process, two worker threads (this machine's cores), 1,000
/// recordings open at once through the sandboxed fs provider, each with its
/// spool file: every frame delivered, in order, once. Correctness only; the
/// benchmarks measure the speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_recordings_keep_every_frame_in_order() {
    const TAPES: usize = 1000;
    const FRAMES: usize = 24;
    tapedeck::rlimit::raise_open_files();
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new().unwrap();
    // The tapes beside the spool, not around it: a provider is never
    // granted the spool.
    let spec = embedded::fs_provider_spec(tmp.path().join("tapes"));
    let provider = WasmProvider::start(&sandbox, &spec, Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let spool = Spool::open(tmp.path().join("spool")).unwrap();
    // A recording waits its turn behind hundreds of others: give the end
    // room (the deadline counts time without progress of that recording).
    let options = RecorderOptions {
        end_timeout: Millis(120_000),
        // Through the shared `append-many` calls (the default).
        batch_recordings: true,
        ..small_batches()
    };
    let recorder = Recorder::new(Arc::new(provider), options).with_spool(
        spool.clone(),
        tapedeck::spool::provider_key(&spec, Path::new(".")),
    );

    // Start them all first, so they are all open at the same time.
    let mut recordings = Vec::new();
    for t in 0..TAPES {
        let recording = recorder.start(meta(&format!("tape-{t}"))).await.unwrap();
        recordings.push(recording);
    }
    let mut tasks = Vec::new();
    for (t, recording) in recordings.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for k in 0..FRAMES {
                let e = payload(t, k);
                recording.record(e.direction, e.payload);
                match (t + k) % 7 {
                    0 => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                    1 | 2 => tokio::task::yield_now().await,
                    _ => {}
                }
            }
            let id = recording.id().to_string();
            let outcome = recording.finish().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(outcome.tape.header.id, id);
            assert_eq!(outcome.summary.frame_count, FRAMES as u64);
            (t, outcome)
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(outcomes.len(), TAPES);

    let store = recorder.store();
    for (t, outcome) in &outcomes {
        let expected: Vec<Expected> = (0..FRAMES).map(|k| payload(*t, k)).collect();
        let id = &outcome.tape.header.id;
        assert_tape(store.as_ref(), id, &expected).await;
        let info = store.get(id).await.unwrap();
        assert_eq!(info.header.name, format!("tape-{t}"));
        assert_eq!(info.header.session_id, "session-1");
        assert_eq!(info.digest, outcome.summary.digest);
        // Batched: fewer appends than frames.
        assert!(outcome.stats.appends < FRAMES as u64, "{:?}", outcome.stats);
        assert_eq!(outcome.stats.failed_appends, 0);
    }
    let all = store
        .list(
            &TapeFilter {
                state: Some(TapeState::Recording),
                ..TapeFilter::default()
            },
            None,
            1000,
        )
        .await
        .unwrap();
    assert!(all.tapes.is_empty(), "tapes left recording");
    assert!(spool.files().unwrap().is_empty(), "spool files left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_time_ordered_uuids_and_the_header_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), per_recording());
    let a = recorder.start(meta("a")).await.unwrap();
    let b = recorder.start(meta("b")).await.unwrap();
    assert_eq!(a.id().len(), 36);
    assert_eq!(&a.id()[14..15], "7", "UUID version 7: {}", a.id());
    assert!(a.id() < b.id(), "{} < {}", a.id(), b.id());
    let a_id = a.id().to_string();
    let outcome = a.finish().await.unwrap();
    assert_eq!(outcome.tape.frame_count, 0);
    assert_eq!(outcome.summary.digest, Some(DigestChain::new().hex()));
    let info = store.get(&a_id).await.unwrap();
    assert_eq!(
        info.header.tags,
        vec![("suite".to_string(), "recorder".to_string())]
    );
    assert!(info.header.created_at_us > 0);
    b.abort("test").await.unwrap();
}

// ---------------------------------------------------------------------------
// Failures and stalls

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_appends_are_retried_until_every_frame_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, hook) = hooked(
        tmp.path(),
        Hook {
            fail_next: AtomicU64::new(4),
            lose_answer_next: AtomicU64::new(0),
            ..Hook::default()
        },
    );
    let recorder = Recorder::new(store.clone(), small_batches());
    let recording = recorder.start(meta("retry")).await.unwrap();
    let expected: Vec<Expected> = (0..200).map(|k| payload(1, k)).collect();
    for e in &expected {
        recording.record(e.direction, e.payload.clone());
    }
    let id = recording.id().to_string();
    let outcome = recording.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.stats.failed_appends, 4);
    assert_eq!(hook.fail_next.load(SeqCst), 0);
    assert_tape(store.as_ref(), &id, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stored_before_its_answer_was_lost_is_not_stored_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _hook) = hooked(
        tmp.path(),
        Hook {
            lose_answer_next: AtomicU64::new(3),
            ..Hook::default()
        },
    );
    let recorder = Recorder::new(store.clone(), small_batches());
    let recording = recorder.start(meta("lost-answer")).await.unwrap();
    let expected: Vec<Expected> = (0..100).map(|k| payload(2, k)).collect();
    for e in &expected {
        recording.record(e.direction, e.payload.clone());
    }
    let id = recording.id().to_string();
    let outcome = recording.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.stats.failed_appends, 3);
    assert_tape(store.as_ref(), &id, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_that_keep_failing_are_reported_with_the_count_of_frames_not_stored() {
    for kind in [ErrorKind::Io, ErrorKind::InvalidInput] {
        let tmp = tempfile::tempdir().unwrap();
        let (store, hook) = hooked(tmp.path(), Hook::default());
        let recorder = Recorder::new(store.clone(), small_batches());
        let recording = recorder.start(meta("failing")).await.unwrap();
        for k in 0..20 {
            let e = payload(3, k);
            recording.record(e.direction, e.payload);
        }
        // Let the first frames in, then break the store.
        while hook.succeeded.load(SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        *hook.always_fail.lock().unwrap() = Some(kind);
        for k in 20..50 {
            let e = payload(3, k);
            recording.record(e.direction, e.payload);
        }
        let id = recording.id().to_string();
        let err = recording.finish().await.unwrap_err();
        match &err {
            RecordError::NotStored {
                id: err_id,
                recorded,
                stored,
                not_stored,
                error,
            } => {
                assert_eq!(err_id, &id);
                assert_eq!(*recorded, 50);
                assert!(*stored >= 1 && *stored <= 20, "{err}");
                assert_eq!(*stored + *not_stored, 50);
                assert_eq!(error.storage_kind(), Some(kind));
            }
            other => panic!("{kind}: expected NotStored, got {other}"),
        }
        assert!(err.to_string().contains("were not stored"), "{err}");
        // What was stored is intact, and the tape is marked incomplete.
        let info = store.get(&id).await.unwrap();
        assert_eq!(info.state, TapeState::Aborted, "{kind}");
        let frames = read_all(store.as_ref(), &id).await;
        assert_eq!(frames.len() as u64, 50 - err.frames_not_stored());
        for (k, f) in frames.iter().enumerate() {
            assert_eq!(f.payload, payload(3, k).payload);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_never_waits_for_a_stalled_store() {
    const FRAMES: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let (store, hook) = hooked(tmp.path(), Hook::default());
    hook.gate.closed.store(true, SeqCst);
    let recorder = Recorder::new(store.clone(), per_recording());
    let recording = recorder.start(meta("stalled")).await.unwrap();
    let expected: Vec<Expected> = (0..FRAMES).map(|k| payload(4, k)).collect();
    for (k, e) in expected.iter().enumerate() {
        recording.record(e.direction, e.payload.clone());
        if k == 0 {
            // Make sure the background task is inside a (blocked) append.
            while hook.entered.load(SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    // Every record() returned while the store still holds its first append.
    assert_eq!(recording.frames_recorded(), FRAMES as u64);
    assert_eq!(hook.entered.load(SeqCst), 1);
    assert_eq!(hook.succeeded.load(SeqCst), 0);
    assert!(hook.gate.closed.load(SeqCst));

    hook.gate.open();
    let id = recording.id().to_string();
    let outcome = recording.finish().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.tape.frame_count, FRAMES as u64);
    assert_tape(store.as_ref(), &id, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_recording_stores_its_frames_and_stays_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, hook) = hooked(tmp.path(), Hook::default());
    let recorder = Recorder::new(store.clone(), per_recording());
    let recording = recorder.start(meta("dropped")).await.unwrap();
    let id = recording.id().to_string();
    for k in 0..30 {
        let e = payload(5, k);
        recording.record(e.direction, e.payload);
    }
    drop(recording);
    // The task stores what was recorded, then lets the writer go.
    loop {
        let info = store.get(&id).await.unwrap();
        if info.frame_count == 30 {
            assert_eq!(info.state, TapeState::Recording);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(hook.succeeded.load(SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_tasks_may_record_into_one_tape() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), small_batches());
    let recording = Arc::new(recorder.start(meta("shared")).await.unwrap());
    let mut tasks = Vec::new();
    for w in 0..4u8 {
        let r = recording.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..250u32 {
                r.record(Direction::ClientToServer, format!("[{w},{k}]").into_bytes());
                if k.is_multiple_of(10) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let recording = Arc::into_inner(recording).unwrap();
    let id = recording.id().to_string();
    recording.finish().await.unwrap();
    let frames = read_all(store.as_ref(), &id).await;
    assert_eq!(frames.len(), 1000);
    // Each writer's frames are in its own order.
    for w in 0..4u8 {
        let mine: Vec<u32> = frames
            .iter()
            .filter_map(|f| {
                let v: Vec<u32> = serde_json::from_slice(&f.payload).unwrap();
                (v[0] == u32::from(w)).then_some(v[1])
            })
            .collect();
        assert_eq!(mine, (0..250).collect::<Vec<_>>());
    }
}

/// A store whose `append-many` takes a while, counting calls and entries.
struct SlowMany {
    inner: NativeFsStore,
    calls: AtomicU64,
    entries: AtomicU64,
}

impl tapedeck::store::Layer for SlowMany {
    type Inner = NativeFsStore;
    type Writer = NativeFsWriter;

    fn inner(&self) -> &NativeFsStore {
        &self.inner
    }

    fn wrap_writer(&self, inner: NativeFsWriter) -> NativeFsWriter {
        inner
    }

    async fn append_many(
        &self,
        appends: &[tapedeck_types::TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        self.calls.fetch_add(1, SeqCst);
        self.entries.fetch_add(appends.len() as u64, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        self.inner.append_many(appends).await
    }
}

/// Host-level batching: the batches of many recordings share
/// `append-many` calls (a few in flight at once), every frame still
/// stored once, in order; the tapes end as usual. Without it, no
/// `append-many` call is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batches_of_many_recordings_share_append_many_calls() {
    const TAPES: usize = 100;
    const FRAMES: usize = 40;
    for batch_recordings in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(SlowMany {
            inner: native_store(tmp.path()),
            calls: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        });
        let options = RecorderOptions {
            batch_recordings,
            ..small_batches()
        };
        let recorder = Recorder::new(store.clone(), options);
        let mut tasks = Vec::new();
        for t in 0..TAPES {
            let recording = recorder.start(meta(&format!("tape-{t}"))).await.unwrap();
            tasks.push(tokio::spawn(async move {
                for k in 0..FRAMES {
                    let e = payload(t, k);
                    recording.record(e.direction, e.payload);
                    if k % 10 == 9 {
                        tokio::task::yield_now().await;
                    }
                }
                (
                    t,
                    recording.finish().await.unwrap_or_else(|e| panic!("{e}")),
                )
            }));
        }
        let mut batches = 0;
        for task in tasks {
            let (t, outcome) = task.await.unwrap();
            assert_eq!(outcome.tape.state, TapeState::Finished);
            assert_eq!(outcome.summary.frame_count, FRAMES as u64);
            let expected: Vec<Expected> = (0..FRAMES).map(|k| payload(t, k)).collect();
            assert_tape(store.as_ref(), &outcome.tape.header.id, &expected).await;
            batches += outcome.stats.appends;
        }
        let (calls, entries) = (store.calls.load(SeqCst), store.entries.load(SeqCst));
        if batch_recordings {
            assert_eq!(entries, batches, "one entry per batch");
            assert!(
                calls * 4 <= entries,
                "{calls} calls for {entries} batches: recordings were not batched together"
            );
        } else {
            assert_eq!((calls, entries), (0, 0));
        }
    }
}
