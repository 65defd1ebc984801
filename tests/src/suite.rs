//! Running the whole conformance suite against a provider and judging the
//! report the same way everywhere.

use std::sync::Arc;
use tapedeck::conformance::{self, SuiteOptions};
use tapedeck::harness::SandboxHarness;
use tapedeck::sandbox::WasmProvider;

/// Runs every case (large ones included) against `provider` (started with
/// `config`), with the sandbox's harness as `provider test` gives it,
/// printing each outcome, and fails on any failed case or any skip other
/// than an undeclared capability's.
pub async fn assert_passes_whole_suite(
    name: &str,
    provider: WasmProvider,
    config: serde_json::Value,
) {
    let options = SuiteOptions {
        harness: Some(Arc::new(SandboxHarness::new(provider.clone(), config))),
        ..SuiteOptions::default()
    };
    let report = conformance::run(Arc::new(provider), &options, |case| {
        println!(
            "{name}: {:<45} {:>9.1?} {}",
            case.name, case.duration, case.status
        );
    })
    .await;
    let bad: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| {
            o.status.is_failed()
                || (o.status.is_skipped() && !o.name.starts_with("errors/undeclared-"))
        })
        .map(|o| format!("{}: {}", o.name, o.status))
        .collect();
    assert!(bad.is_empty(), "{name} provider:\n{}", bad.join("\n"));
    assert!(report.passed() >= 70, "{} cases passed", report.passed());
}
