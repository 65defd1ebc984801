//! The conformance suite against providers loaded through the sandbox: the
//! embedded fs provider passes all of it; a provider that breaks the contract
//! fails it with readable reasons.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tapedeck::conformance::{self, CaseStatus, SuiteOptions, SuiteReport};
use tapedeck::embedded;
use tapedeck::harness::SandboxHarness;
use tapedeck::sandbox::{ComponentSource, Limits, ProviderSpec, Sandbox, WasmProvider};
use tapedeck_tests::artifacts;

async fn run(spec: &ProviderSpec, options: &SuiteOptions) -> SuiteReport {
    // Pooled, as `tapedeck provider test` runs it.
    let sandbox = Sandbox::builder()
        .pooling_for([&spec.limits])
        .build()
        .unwrap();
    let provider = WasmProvider::start(&sandbox, spec, Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // With the sandbox's harness, as `tapedeck provider test` gives it.
    let mut options = options.clone();
    options.harness = Some(Arc::new(SandboxHarness::new(
        provider.clone(),
        spec.config.clone(),
    )));
    conformance::run(Arc::new(provider), &options, |case| {
        println!("{:<45} {:>9.1?} {}", case.name, case.duration, case.status);
    })
    .await
}

fn status<'r>(report: &'r SuiteReport, name: &str) -> &'r CaseStatus {
    &report
        .outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_fs_provider_passes_the_whole_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = embedded::fs_provider_spec(tmp.path());
    let report = run(&spec, &SuiteOptions::default()).await;
    let failed: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.status.is_failed())
        .map(|o| format!("{}: {}", o.name, o.status))
        .collect();
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
    // Only the cases for undeclared capabilities are skipped: the fs provider
    // declares them all, and the large cases ran.
    for o in report.outcomes.iter().filter(|o| o.status.is_skipped()) {
        assert!(
            o.name.starts_with("errors/undeclared-"),
            "{} skipped: {}",
            o.name,
            o.status
        );
    }
    assert!(report.passed() >= 60, "{} cases passed", report.passed());
    // The large tape really was written into the granted directory.
    let stored: u64 = walk_size(tmp.path());
    assert!(stored > 0);
}

fn walk_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_breaks_the_contract_fails_with_readable_reasons() {
    let spec = ProviderSpec::new(
        "misbehaving",
        ComponentSource::File(artifacts::MISBEHAVING_PROVIDER.into()),
    )
    .with_limits(Limits {
        // One instance, so its in-memory tapes persist between calls and
        // the failures are the ones it was written to have.
        instances: 1,
        ..Limits::default()
    });
    let options = SuiteOptions {
        large: false,
        case_timeout: Duration::from_secs(30),
        ..SuiteOptions::default()
    };
    let report = run(&spec, &options).await;
    assert!(!report.is_success());

    // It stores redelivered frames twice: the host sees the wrong next-seq.
    match status(&report, "write/append-idempotent") {
        CaseStatus::Failed(why) => assert!(
            why.contains("broke the contract in `append`") && why.contains("expected 5"),
            "{why}"
        ),
        other => panic!("append-idempotent: {other}"),
    }
    // It accepts ids that name paths.
    match status(&report, "errors/invalid-ids") {
        CaseStatus::Failed(why) => assert!(why.contains("invalid-input"), "{why}"),
        other => panic!("invalid-ids: {other}"),
    }
    // It ignores the name filter: the host notices tapes that do not match.
    match status(&report, "list/filter-name") {
        CaseStatus::Failed(why) => assert!(why.contains("does not match the filter"), "{why}"),
        other => panic!("filter-name: {other}"),
    }
    // Capabilities it does not declare are skipped, and the cases checking
    // that it answers `unsupported` for them pass.
    assert!(status(&report, "search/method").is_skipped());
    assert!(status(&report, "delete/missing").is_skipped());
    assert!(status(&report, "errors/undeclared-delete").is_passed());
}
