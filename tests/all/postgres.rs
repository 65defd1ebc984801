//! The PostgreSQL provider against a real PostgreSQL server that this test
//! starts (on 127.0.0.1, a free port, a temporary data directory) and stops:
//! the whole conformance suite; the network grant as its only way out;
//! several `tapedeck record` processes writing into one database at once;
//! and a server restart in the middle of a recording losing no frame.
//!
//! PostgreSQL comes from Debian's `postgresql` package, which
//! `scripts/guest-toolchains.sh` installs; without it these tests fail
//! naming that step.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tapedeck::HostSeal;
use tapedeck::read::load_tape;
use tapedeck::recorder::{Recorder, RecorderOptions, TapeMeta};
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{ComponentSource, Grants, ProviderSpec, Sandbox, WasmProvider};
use tapedeck::spool::{Spool, SpoolStatus};
use tapedeck::store::TapeStore;
use tapedeck::store::codec::CodecSettings;
use tapedeck::store::keys::SecretKey;
use tapedeck::store::seal::TrustedHosts;
use tapedeck::types::{Direction, TapeFilter, TapeState};
use tapedeck::units::{ByteSize, Millis};
use tapedeck_tests::artifacts;
use tapedeck_tests::postgres::PgServer;

fn server() -> PgServer {
    PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))
}

use crate::cache_dir;

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .cache(Some(ComponentCache::at(cache_dir())))
        .build()
        .unwrap()
}

/// The provider over `schema`, granted `grant`.
fn spec(config: serde_json::Value, grant: String) -> ProviderSpec {
    ProviderSpec::new(
        "postgres",
        ComponentSource::File(artifacts::POSTGRES_PROVIDER.into()),
    )
    .with_config(config)
    .with_grants(Grants {
        network: vec![grant],
        ..Grants::default()
    })
}

async fn start(pg: &PgServer, schema: &str) -> WasmProvider {
    WasmProvider::start(
        &sandbox(),
        &spec(pg.provider_config(schema), pg.grant()),
        Path::new("."),
    )
    .await
    .unwrap_or_else(|e| panic!("start the postgres provider: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_provider_passes_the_whole_suite() {
    let pg = server();
    let provider = start(&pg, "conformance").await;
    tapedeck_tests::suite::assert_passes_whole_suite(
        "postgres",
        provider,
        pg.provider_config("conformance"),
    )
    .await;
    // The schema is versioned, and the password is nowhere in the log.
    let versions = pg
        .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM conformance.schema_migrations")
        .unwrap();
    assert_eq!(versions, "1,2,3");
    // A second deployment in another schema of the same database works
    // (the text index's extension is shared by the database).
    let other = start(&pg, "second").await;
    assert_eq!(other.stats().await.unwrap().tape_count, 0);
    let log = std::fs::read_to_string(pg.dir().join("server.log")).unwrap_or_default();
    assert!(
        !log.contains(pg.password()),
        "the password leaked into the server log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_grant_is_the_only_way_out() {
    let pg = server();
    let sandbox = sandbox();
    // Granted another port than the server's: refused, naming the grant.
    let other = format!("tcp://127.0.0.1:{}", pg.port().wrapping_add(1).max(1));
    let e = WasmProvider::start(
        &sandbox,
        &spec(pg.provider_config("refused"), other),
        Path::new("."),
    )
    .await
    .err()
    .expect("a provider granted another port must not reach the server");
    let msg = e.to_string();
    assert!(msg.contains("network grant"), "{msg}");
    println!("granted another port: {msg}");

    // Pointed at another endpoint (a listener of ours) while granted the
    // server: refused, and the listener never sees a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut config = pg.provider_config("elsewhere");
    config["port"] = listener.local_addr().unwrap().port().into();
    let e = WasmProvider::start(&sandbox, &spec(config, pg.grant()), Path::new("."))
        .await
        .err()
        .expect("a provider must not reach an endpoint it was not granted");
    let msg = e.to_string();
    assert!(msg.contains("network grant"), "{msg}");
    assert!(
        listener.accept().is_err(),
        "the ungranted listener received a connection"
    );
    println!("pointed elsewhere: {msg}");

    // A name not in the grant does not even resolve.
    let mut config = pg.provider_config("byname");
    config["host"] = "localhost".into();
    let e = WasmProvider::start(&sandbox, &spec(config, pg.grant()), Path::new("."))
        .await
        .err()
        .expect("a name outside the grant must not resolve");
    println!("by an ungranted name: {e}");

    // Granted exactly the server: works.
    let ok = start(&pg, "granted").await;
    assert_eq!(ok.stats().await.unwrap().tape_count, 0);
}

/// The session one recorder process plays: `n` tool calls, a notification
/// and a line that is not JSON.
fn session(n: usize, tag: usize) -> String {
    let mut s = String::from("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
    for k in 0..n {
        s.push_str(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{k},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"process {tag} call {k}\"}}}}}}\n"
        ));
    }
    s.push_str("not JSON, recorded all the same\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_recorder_processes_write_one_database() {
    const PROCESSES: usize = 4;
    const CALLS: usize = 150;
    let pg = server();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "provider = \"pg\"\n[providers.pg]\ncomponent = {:?}\nconfig = {}\ngrants.network = [{:?}]\n",
        artifacts::POSTGRES_PROVIDER,
        toml_inline(&pg.provider_config("shared")),
        pg.grant()
    );
    std::fs::write(dir.path().join("tapedeck.toml"), config).unwrap();
    let echo = tapedeck_tests::fixture("echo_server.py");
    // Compile the component once before the processes race for the cache.
    let warm = tapedeck_tests::cli::command(dir.path(), &cache_dir())
        .args(["stats"])
        .output()
        .unwrap();
    assert!(
        warm.status.success(),
        "{}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let input = dir.path().join(format!("session-{p}.jsonl"));
            std::fs::write(&input, session(CALLS, p)).unwrap();
            tapedeck_tests::cli::command(dir.path(), &cache_dir())
                .args(["record", "--name", &format!("process-{p}"), "--", "python3"])
                .arg(&echo)
                .stdin(std::fs::File::open(&input).unwrap())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a recorder failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every tape is complete, readable by any instance, and verified
    // against the seal of the processes' host key (one data directory).
    let seals = tapedeck::SealSettings {
        key_file: Some(dir.path().join("data/tapedeck/host-key")),
        ..Default::default()
    };
    let provider = seals
        .load()
        .unwrap()
        .store(start(&pg, "shared").await, CodecSettings::default());
    let page = provider
        .list(&TapeFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.tapes.len(), PROCESSES, "{:?}", page.tapes);
    for info in &page.tapes {
        assert_eq!(info.state, TapeState::Finished, "{}", info.header.name);
        // Each call and its answer, the notification, the line that is not
        // JSON with its echo, and the host's `session-end` event.
        assert_eq!(
            info.frame_count,
            (CALLS * 2 + 3 + 1) as u64,
            "{}",
            info.header.name
        );
        let tape = load_tape(&provider, &info.header.id).await.unwrap();
        assert!(tape.verification.is_verified(), "{}", tape.verification);
        let p: usize = info.header.name["process-".len()..].parse().unwrap();
        let script = session(CALLS, p);
        let sent: Vec<&str> = script.lines().collect();
        let got: Vec<String> = tape
            .frames
            .iter()
            .filter(|f| f.direction == Direction::ClientToServer)
            .map(|f| String::from_utf8_lossy(&f.payload).into_owned())
            .collect();
        assert_eq!(got, sent, "{}: client frames differ", info.header.name);
    }
    let stats = provider.stats().await.unwrap();
    assert_eq!(stats.tape_count, PROCESSES as u64);
    assert_eq!(stats.recording_count, 0);
}

/// A TOML inline table of a flat JSON object.
fn toml_inline(v: &serde_json::Value) -> String {
    let fields: Vec<String> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_recording_loses_no_frame() {
    const FRAMES: u64 = 400;
    let pg = server();
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(pg.provider_config("restart"), pg.grant());
    let provider = WasmProvider::start(&sandbox(), &spec, Path::new("."))
        .await
        .unwrap();
    let spool = Spool::open(tmp.path().join("spool")).unwrap();
    // Behind the host's seal, as a deck records.
    let seal = HostSeal::new(SecretKey::generate().unwrap(), TrustedHosts::default());
    let recorder = Recorder::new(
        Arc::new(seal.store(provider, CodecSettings::default())),
        RecorderOptions {
            batch_frames: 16,
            batch_bytes: ByteSize(64 * 1024),
            flush_interval: Millis(2),
            spool_sync: Millis(2),
            end_timeout: Millis(30_000),
            ..RecorderOptions::default()
        },
    )
    .with_spool(
        spool.clone(),
        tapedeck::spool::provider_key(&spec, Path::new(".")),
    );
    let recording = recorder
        .start(TapeMeta {
            name: "restart".into(),
            ..TapeMeta::default()
        })
        .await
        .unwrap();
    let id = recording.id().to_string();
    let payload = |k: u64| {
        format!(r#"{{"jsonrpc":"2.0","id":{k},"method":"tools/call","params":{{"n":{k}}}}}"#)
            .into_bytes()
    };
    for k in 0..FRAMES {
        recording.record(Direction::ClientToServer, payload(k));
        if k == FRAMES / 2 {
            // Crash-like stop (no checkpoint), then start: committed
            // appends come back from the WAL, the provider reconnects.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let pg = &pg;
            tokio::task::block_in_place(|| pg.restart("immediate")).unwrap();
        }
        if k % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let outcome = recording.finish().await.expect("the recording finishes");
    assert_eq!(outcome.summary.frame_count, FRAMES);
    let reader = seal.store(start(&pg, "restart").await, CodecSettings::default());
    let tape = load_tape(&reader, &id).await.unwrap();
    assert!(tape.verification.is_verified(), "{}", tape.verification);
    let got: Vec<Vec<u8>> = tape.frames.iter().map(|f| f.payload.clone()).collect();
    let sent: Vec<Vec<u8>> = (0..FRAMES).map(payload).collect();
    assert_eq!(got, sent, "frames lost or reordered across the restart");
    assert_eq!(tape.info.state, TapeState::Finished);
    let status = SpoolStatus::read(&spool).unwrap();
    assert!(status.entries.is_empty(), "spool not empty: {status:?}");
}
