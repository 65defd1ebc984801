//! The sandbox refuses what is not a provider and survives providers that
//! trap, loop, sleep or exhaust memory: each gets a typed error, the instance
//! is recycled, and the next call works.

use std::path::Path;
use std::time::{Duration, Instant};
use tapedeck::error::ProviderError;
use tapedeck::sandbox::{
    ComponentError, ComponentSource, Limits, ProviderSpec, ProviderStartError, Sandbox,
    WasmProvider,
};
use tapedeck::store::TapeStore;
use tapedeck::units::{ByteSize, Millis};
use tapedeck_tests::artifacts;

fn spec(path: &str, limits: Limits) -> ProviderSpec {
    ProviderSpec::new("bad", ComponentSource::File(path.into())).with_limits(limits)
}

async fn start(path: &str, limits: Limits) -> WasmProvider {
    let sandbox = Sandbox::new().unwrap();
    WasmProvider::start(&sandbox, &spec(path, limits), Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("start {path}: {e}"))
}

fn load_err(bytes: &[u8]) -> ComponentError {
    let sandbox = Sandbox::new().unwrap();
    match sandbox.load("test.wasm", bytes) {
        Err(e) => e,
        Ok(_) => panic!("loaded"),
    }
}

/// After a failed call, the provider still answers.
async fn still_works(p: &WasmProvider) {
    let stats = p
        .stats()
        .await
        .expect("the next call works on a fresh instance");
    assert_eq!(
        stats.tape_count, 0,
        "a fresh instance (state was in memory)"
    );
}

#[test]
fn refuses_files_that_are_not_components() {
    let e = load_err(b"this is a text file, not wasm");
    assert!(matches!(e, ComponentError::NotWasm { .. }), "{e}");
    assert!(e.to_string().contains("not a WebAssembly file"), "{e}");

    // The smallest valid core module: a module, not a component.
    let e = load_err(b"\0asm\x01\0\0\0");
    assert!(matches!(e, ComponentError::CoreModule { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("core WebAssembly module, not a component"),
        "{e}"
    );

    // A truncated component.
    let bytes = std::fs::read(artifacts::MISBEHAVING_PROVIDER).unwrap();
    let e = load_err(&bytes[..bytes.len() / 2]);
    assert!(matches!(e, ComponentError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("not a valid component"), "{e}");
}

#[test]
fn refuses_precompiled_code_from_outside_its_cache() {
    let sandbox = Sandbox::new().unwrap();
    let bytes = std::fs::read(artifacts::MISBEHAVING_PROVIDER).unwrap();
    let cwasm = sandbox
        .engine()
        .engine()
        .precompile_component(&bytes)
        .unwrap();
    let e = load_err(&cwasm);
    assert!(matches!(e, ComponentError::Precompiled { .. }), "{e}");
    assert!(e.to_string().contains(".cwasm"), "{e}");
}

#[test]
fn refuses_another_major_version_naming_it() {
    let bytes = std::fs::read(artifacts::WRONG_VERSION_PROVIDER).unwrap();
    let e = load_err(&bytes);
    assert!(matches!(e, ComponentError::WrongVersion { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("tapedeck:storage/tape-storage@1.0.0"), "{msg}");
    assert!(msg.contains("speaks version 0.2.0"), "{msg}");
}

#[test]
fn refuses_a_component_that_does_not_export_the_contract() {
    // The smallest valid component: a header and nothing else.
    let e = load_err(b"\0asm\x0d\0\x01\0");
    assert!(matches!(e, ComponentError::MissingExport { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("does not export `tapedeck:storage/tape-storage@0.2.0`"),
        "{msg}"
    );
    assert!(msg.contains("its exports: none"), "{msg}");
}

#[test]
fn refuses_a_component_with_the_wrong_functions_naming_them() {
    let bytes = std::fs::read(artifacts::WRONG_SHAPE_PROVIDER).unwrap();
    let e = load_err(&bytes);
    assert!(matches!(e, ComponentError::WrongShape { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("does not match the contract"), "{msg}");
    assert!(
        msg.contains("does not have export `[method]tape-writer."),
        "names what is missing: {msg}"
    );
}

#[tokio::test]
async fn start_reports_load_errors_with_the_path() {
    let sandbox = Sandbox::new().unwrap();
    let missing = spec("/nonexistent/provider.wasm", Limits::default());
    let e = WasmProvider::start(&sandbox, &missing, Path::new("."))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(e, ProviderStartError::Load(ComponentError::Io { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("/nonexistent/provider.wasm"), "{e}");
}

#[tokio::test]
async fn a_trap_is_a_typed_error_and_the_next_call_works() {
    let p = start(artifacts::MISBEHAVING_PROVIDER, Limits::default()).await;
    let e = p.get("trap").await.unwrap_err();
    assert!(matches!(e, ProviderError::Trap { call: "get", .. }), "{e}");
    assert!(
        e.to_string()
            .contains("wasm trap: wasm `unreachable` instruction executed"),
        "{e}"
    );
    assert!(
        e.to_string().contains("asked to trap"),
        "the panic message from stderr: {e}"
    );
    assert!(e.recycled_instance());
    still_works(&p).await;
    assert_eq!(p.instance_counts().1, 1, "one instance was discarded");
}

#[tokio::test]
async fn an_infinite_loop_hits_the_cpu_budget_and_the_next_call_works() {
    let limits = Limits {
        cpu_per_call: Millis(300),
        ..Limits::default()
    };
    let p = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    let t = Instant::now();
    let e = p.get("loop").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::CpuLimit { call: "get", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("CPU budget of 300ms"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "stopped, not run to the timeout"
    );
    still_works(&p).await;
}

#[tokio::test]
async fn a_call_blocked_in_the_host_hits_the_wall_clock_timeout() {
    let limits = Limits {
        timeout_per_call: Millis(500),
        ..Limits::default()
    };
    let p = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    let e = p.get("sleep").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Timeout { call: "get", .. }),
        "{e}"
    );
    still_works(&p).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit_and_the_next_call_works() {
    let limits = Limits {
        memory: ByteSize(32 << 20),
        ..Limits::default()
    };
    let p = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    let e = p.get("oom").await.unwrap_err();
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "get", .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("over the limit of 33554432 bytes"),
        "{e}"
    );
    still_works(&p).await;
}

#[tokio::test]
async fn a_stack_overflow_traps_and_the_next_call_works() {
    let p = start(artifacts::MISBEHAVING_PROVIDER, Limits::default()).await;
    let e = p.get("deep").await.unwrap_err();
    assert!(matches!(e, ProviderError::Trap { .. }), "{e}");
    // Rust guests keep a shadow stack in linear memory: overflowing it is an
    // out-of-bounds access before the wasm call stack is exhausted.
    let msg = e.to_string();
    assert!(
        msg.contains("call stack exhausted") || msg.contains("out of bounds memory access"),
        "{msg}"
    );
    still_works(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_provider_does_not_stall_another() {
    let limits = Limits {
        cpu_per_call: Millis(5_000),
        ..Limits::default()
    };
    let looping = start(artifacts::MISBEHAVING_PROVIDER, limits.clone()).await;
    let healthy = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    let spin = tokio::spawn(async move { looping.get("loop").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While the other provider spins, this one answers many calls.
    for _ in 0..20 {
        healthy.stats().await.unwrap();
    }
    assert!(
        !spin.is_finished(),
        "all 20 calls were answered while the other provider was still spinning"
    );
    let e = spin.await.unwrap().unwrap_err();
    assert!(matches!(e, ProviderError::CpuLimit { .. }), "{e}");
}

#[tokio::test]
async fn a_provider_sees_nothing_it_was_not_granted() {
    // The host's environment (cargo gives a test its `CARGO_*` variables,
    // and there is `PATH`) must not reach the provider. No `set_var` of a
    // secret of our own: this binary's other tests run in the same process.
    assert!(
        std::env::vars_os().next().is_some(),
        "the test process has no environment to leak"
    );
    let p = start(artifacts::MISBEHAVING_PROVIDER, Limits::default()).await;
    let seen = p.get("probe").await.unwrap().header.name;
    let seen: serde_json::Value = serde_json::from_str(&seen).expect(&seen);
    assert_eq!(seen["env"], serde_json::json!([]), "no environment: {seen}");
    assert_eq!(seen["args"], serde_json::json!([]), "no arguments: {seen}");
    let passwd = seen["passwd"].as_str().unwrap();
    assert!(passwd.starts_with("error:"), "no /etc/passwd: {passwd}");
    let tcp = seen["tcp"].as_str().unwrap();
    assert!(tcp.starts_with("error:"), "no sockets: {tcp}");
    let data = seen["data"].as_str().unwrap();
    assert!(data.starts_with("error:"), "no directory: {data}");
}

#[tokio::test]
async fn a_provider_sees_exactly_its_granted_directories() {
    use tapedeck::sandbox::{DirGrant, Grants};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("visible.txt"), "x").unwrap();
    let sandbox = Sandbox::new().unwrap();
    let spec = spec(artifacts::MISBEHAVING_PROVIDER, Limits::default()).with_grants(Grants {
        dirs: vec![DirGrant::read_only(tmp.path(), "/data")],
        ..Grants::default()
    });
    let p = WasmProvider::start(&sandbox, &spec, Path::new("."))
        .await
        .unwrap();
    let seen = p.get("probe").await.unwrap().header.name;
    let seen: serde_json::Value = serde_json::from_str(&seen).expect(&seen);
    assert_eq!(seen["data"], "ok: visible.txt", "{seen}");
    assert!(
        seen["passwd"].as_str().unwrap().starts_with("error:"),
        "{seen}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn guest_output_goes_to_the_host_log_tagged_and_capped() {
    let captured = tapedeck_tests::log_capture::CapturedLog::start();
    let limits = Limits {
        log_lines_per_call: 50,
        ..Limits::default()
    };
    let p = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    let e = p.get("noisy").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(tapedeck::types::ErrorKind::NotFound));
    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    let tagged = |text: &str| {
        lines
            .iter()
            .any(|l| l.contains(text) && l.contains("provider=\"bad\""))
    };
    assert!(tagged("hello from stdout"), "{log}");
    assert!(tagged("hello from stderr"), "{log}");
    assert!(tagged("log line 0"), "{log}");
    let kept = lines.iter().filter(|l| l.contains(": log line ")).count();
    assert_eq!(
        kept, 48,
        "50 lines per call, stdout and stderr included\n{log}"
    );
    assert!(
        tagged("dropped 952 log lines over the per-call limit during `get`"),
        "{log}"
    );
}

#[tokio::test]
async fn a_call_cancelled_by_its_caller_discards_the_instance() {
    let limits = Limits {
        instances: 1,
        ..Limits::default()
    };
    let p = start(artifacts::MISBEHAVING_PROVIDER, limits).await;
    // The caller gives up while the guest spins: the instance is mid-call.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), p.get("loop")).await;
    assert!(gave_up.is_err(), "the loop was still running");
    still_works(&p).await;
    assert_eq!(
        p.instance_counts().1,
        1,
        "the interrupted instance was discarded"
    );
}

#[test]
fn compiled_components_are_cached_and_a_bad_entry_is_replaced() {
    use tapedeck::sandbox::cache::ComponentCache;
    let dir = tempfile::tempdir().unwrap();
    let cache = ComponentCache::at(dir.path());
    let bytes = std::fs::read(artifacts::MISBEHAVING_PROVIDER).unwrap();
    let sandbox = Sandbox::with_cache(Some(cache.clone())).unwrap();
    sandbox.load("p.wasm", &bytes).unwrap();
    let entry = dir
        .path()
        .join(ComponentCache::key(sandbox.engine().engine(), &bytes));
    assert!(entry.is_file(), "compiled once and stored");
    let stored = std::fs::read(&entry).unwrap();

    // A damaged entry is discarded and rebuilt, never trusted.
    std::fs::write(&entry, b"garbage").unwrap();
    sandbox.load("p.wasm", &bytes).unwrap();
    assert_eq!(std::fs::read(&entry).unwrap().len(), stored.len());

    // Another component, or another engine configuration, has another key.
    assert_ne!(
        ComponentCache::key(sandbox.engine().engine(), b"other bytes"),
        ComponentCache::key(sandbox.engine().engine(), &bytes)
    );
}
