//! The conformance suite against the fs provider's storage logic, run
//! natively ([`NativeFsStore`]) on a temporary directory that already holds
//! other tapes. Every case must pass; only the cases that check undeclared
//! capabilities may be skipped (the fs store declares all of them).
//!
//! `TAPEDECK_CONFORMANCE_FILTER=list/` runs only the cases whose name
//! contains that text.

use fs_store::FsConfig;
use std::sync::Arc;
use tapedeck::conformance::{self, CaseStatus, SuiteOptions};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck_tests::native::NativeFsStore;
use tapedeck_types::{Direction, EndReason, Frame, TapeHeader, TapeSummary};

fn frame(seq: u64, payload: &str) -> Frame {
    Frame {
        seq,
        timestamp_us: 1_700_000_000_000_000 + seq,
        direction: Direction::ClientToServer,
        payload: payload.as_bytes().to_vec(),
        not_json: false,
        terms: Vec::new(),
        attributes: Vec::new(),
    }
}

fn header(id: &str) -> TapeHeader {
    TapeHeader {
        id: id.to_string(),
        session_id: "foreign-session".to_string(),
        name: "a tape that is not the suite's".to_string(),
        tags: vec![("owner".to_string(), "someone else".to_string())],
        created_at_us: 1_700_000_000_000_000,
        envelope: None,
    }
}

/// Tapes the suite did not make, in several states, that it must cope with.
async fn seed_foreign_tapes(store: &NativeFsStore) {
    let frames = vec![
        frame(
            0,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
        ),
        frame(1, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
    ];
    let summary = TapeSummary {
        frame_count: 2,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 1_700_000_000_100_000,
        digest: None,
        seal: None,
    };
    let mut w = store.create(header("foreign-finished")).await.unwrap();
    w.append(&frames).await.unwrap();
    w.finish(summary.clone(), EndReason::Completed)
        .await
        .unwrap();
    let mut w = store.create(header("foreign-recording")).await.unwrap();
    w.append(&frames[..1]).await.unwrap();
    drop(w);
    store
        .save(
            header("foreign-crashed"),
            &frames,
            summary,
            EndReason::Crashed,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_native_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = NativeFsStore::open(FsConfig {
        root: dir.path().join("store"),
        fsync: true,
    })
    .unwrap();
    seed_foreign_tapes(&store).await;
    let store = Arc::new(store);

    let options = SuiteOptions {
        filter: std::env::var("TAPEDECK_CONFORMANCE_FILTER").ok(),
        ..SuiteOptions::default()
    };
    let report = conformance::run(store.clone(), &options, |case| {
        println!("{:<45} {:>9.3?}  {}", case.name, case.duration, case.status);
    })
    .await;
    println!(
        "conformance suite on fs-native: {} cases passed, {} failed, {} skipped",
        report.passed(),
        report.failed(),
        report.skipped()
    );

    let failures: Vec<String> = report
        .failures()
        .map(|o| format!("{}: {}", o.name, o.status))
        .collect();
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
    for o in &report.outcomes {
        if let CaseStatus::Skipped(why) = &o.status {
            // No harness natively: nothing to restart or tear (the
            // sandboxed fs provider runs those cases).
            assert!(
                o.name.starts_with("errors/undeclared-") || why.starts_with("needs a harness"),
                "{} was skipped: {why}",
                o.name
            );
        }
    }
    if options.filter.is_none() {
        assert_eq!(report.outcomes.len(), conformance::case_names().len());
        // The suite cleaned up after itself (the fs store can delete): only
        // the foreign tapes are left.
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.tape_count, 3, "{stats:?}");
    }
}
