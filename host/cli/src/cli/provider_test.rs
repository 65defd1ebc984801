//! `tapedeck provider test`: the conformance suite against any provider.

use super::{Context, output, start_provider};
use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tapedeck::conformance::{self, CaseStatus, SuiteOptions};
use tapedeck::embedded;
use tapedeck::harness::SandboxHarness;
use tapedeck::sandbox::{ComponentSource, DirGrant, Grants, ProviderSpec};
use tapedeck::store::TapeStore;

const WHICH_PROVIDER: &str = "\
Which provider is tested:
  * with --config FILE and/or --provider NAME (or TAPEDECK_CONFIG /
    TAPEDECK_PROVIDER): that configured provider, with its own config, grants
    and limits, so it runs against the storage it is configured with (the
    suite only touches tapes it creates); a FILE argument replaces its
    component;
  * otherwise FILE (default: the embedded fs provider) in a fresh scratch
    directory granted read-write at /tapes, configured with --config-json.";

/// Arguments of `provider test`.
#[derive(Debug, Args)]
#[command(after_help = WHICH_PROVIDER)]
pub struct TestArgs {
    /// The provider component (.wasm). Default: the embedded fs provider, or
    /// the configured provider's component.
    file: Option<PathBuf>,
    /// The provider's `config`, as a JSON object. Default: {"root": "/tapes"}
    /// in a scratch directory, or the configured provider's `config` table.
    #[arg(long, value_name = "JSON")]
    config_json: Option<String>,
    /// Skip the large cases (100,000 frames, 10 MiB).
    #[arg(long)]
    quick: bool,
    /// Run only cases whose name contains this.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Run each case N times; it passes only if every run does (to catch
    /// races that show once in a while, e.g. with --filter concurrency/).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Leave the scratch directory and the tapes the cases made, to look at
    /// them (its path is printed).
    #[arg(long)]
    keep: bool,
}

pub async fn run(ctx: &mut Context, args: TestArgs) -> anyhow::Result<ExitCode> {
    let config_json = match &args.config_json {
        Some(s) => Some(
            serde_json::from_str::<serde_json::Value>(s)
                .context("--config-json is not valid JSON")?,
        ),
        None => None,
    };
    // Kept until the end: the scratch directory is removed when dropped.
    let mut scratch = None;
    let (mut spec, base_dir, place) = if ctx.chose_provider() {
        let (mut spec, base_dir) = ctx.provider_spec()?;
        if let Some(file) = &args.file {
            spec.component = ComponentSource::File(file.clone());
        }
        let place = format!("configured in {}", ctx.config()?.source_name());
        (spec, base_dir, place)
    } else {
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let component = match &args.file {
            Some(p) => ComponentSource::File(p.clone()),
            None => embedded::fs_provider_source(),
        };
        let spec = ProviderSpec::new("under-test", component)
            .with_config(serde_json::json!({ "root": embedded::DEFAULT_GUEST_DIR }))
            .with_grants(Grants {
                dirs: vec![DirGrant::read_write(
                    dir.path(),
                    embedded::DEFAULT_GUEST_DIR,
                )],
                ..Grants::default()
            });
        let base_dir = dir.path().to_path_buf();
        let place = format!(
            "in scratch directory {} (at {})",
            dir.path().display(),
            embedded::DEFAULT_GUEST_DIR
        );
        scratch = Some(dir);
        (spec, base_dir, place)
    };
    if let Some(config) = config_json {
        spec.config = config;
    }
    // The spool stays off-limits to the provider under test too.
    ctx.reserve_spool();
    let provider = start_provider(&spec, &base_dir).await?;
    let info = provider.provider_info().clone();
    if !ctx.json {
        // Write errors (a closed pipe) must not hide the suite's verdict in
        // the exit code, so they are ignored here as in the case lines.
        let _ = writeln!(
            std::io::stdout(),
            "provider {} {} (capabilities: {}) from {}, {place}",
            info.name,
            info.version,
            output::capabilities(&info.capabilities),
            spec.component.label(),
        );
    }
    let options = SuiteOptions {
        large: !args.quick,
        filter: args.filter.clone(),
        repeat: args.repeat,
        keep: args.keep,
        harness: Some(Arc::new(SandboxHarness::new(
            provider.clone(),
            spec.config.clone(),
        ))),
        ..SuiteOptions::default()
    };
    let json = ctx.json;
    // A clone shares the provider's counters: read after the suite.
    let counters = provider.clone();
    let report = conformance::run(Arc::new(provider), &options, |case| {
        let mut out = std::io::stdout().lock();
        if json {
            let (status, reason) = match &case.status {
                CaseStatus::Passed => ("passed", None),
                CaseStatus::Failed(r) => ("failed", Some(r.as_str())),
                CaseStatus::Skipped(r) => ("skipped", Some(r.as_str())),
            };
            let line = serde_json::json!({
                "case": case.name,
                "status": status,
                "reason": reason,
                "rule": case.rule,
                "runs": case.run,
                "ms": case.duration.as_millis() as u64,
            });
            let _ = writeln!(out, "{line}");
        } else {
            let tag = match &case.status {
                CaseStatus::Passed => "PASS",
                CaseStatus::Failed(_) => "FAIL",
                CaseStatus::Skipped(_) => "SKIP",
            };
            let reason = match &case.status {
                CaseStatus::Passed => String::new(),
                // A reason may quote what the provider answered.
                CaseStatus::Failed(r) | CaseStatus::Skipped(r) => {
                    format!("  {}", output::printable(r))
                }
            };
            let _ = writeln!(
                out,
                "{tag} {:<40} {:>7.1?}{reason}",
                case.name, case.duration
            );
            if case.status.is_failed() {
                let _ = writeln!(out, "     rule: {}", case.rule);
            }
        }
    })
    .await;
    match scratch {
        Some(dir) if args.keep => {
            let kept = dir.keep();
            let _ = writeln!(
                std::io::stderr(),
                "kept the scratch directory {} (remove it when done)",
                kept.display()
            );
        }
        _ => drop(scratch),
    }
    // What the host had to enforce while the suite ran (traps, limits,
    // timeouts, contract violations, dropped log lines).
    let protections = counters.protection_report();
    if json {
        let line = serde_json::json!({
            "summary": {
                "passed": report.passed(),
                "failed": report.failed(),
                "skipped": report.skipped(),
            },
            "protections": protections.to_json(),
        });
        let _ = writeln!(std::io::stdout(), "{line}");
    } else {
        let _ = writeln!(
            std::io::stdout(),
            "{} passed, {} failed, {} skipped\nprotections tripped: {protections}",
            report.passed(),
            report.failed(),
            report.skipped()
        );
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
