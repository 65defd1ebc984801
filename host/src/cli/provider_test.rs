//! `tapedeck provider test`: the conformance suite against any provider.

use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tapedeck::conformance::{self, CaseStatus, SuiteOptions};
use tapedeck::embedded;
use tapedeck::sandbox::{ComponentSource, DirGrant, Grants, ProviderSpec, Sandbox, WasmProvider};
use tapedeck::store::TapeStore;

/// Arguments of `provider test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The provider component (.wasm). Default: the embedded fs provider.
    file: Option<PathBuf>,
    /// The provider's `config`, as a JSON object. Default: {"root": "/tapes"}.
    #[arg(long, value_name = "JSON")]
    config_json: Option<String>,
    /// Skip the large cases (100,000 frames, 10 MiB).
    #[arg(long)]
    quick: bool,
    /// Run only cases whose name contains this.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// One JSON object per case on stdout instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let component = match &args.file {
        Some(p) => ComponentSource::File(p.clone()),
        None => embedded::fs_provider_source(),
    };
    let config = match &args.config_json {
        Some(s) => serde_json::from_str(s).context("--config-json is not valid JSON")?,
        None => serde_json::json!({ "root": embedded::DEFAULT_GUEST_DIR }),
    };
    let spec = ProviderSpec::new("under-test", component)
        .with_config(config)
        .with_grants(Grants {
            dirs: vec![DirGrant::read_write(
                scratch.path(),
                embedded::DEFAULT_GUEST_DIR,
            )],
        });
    let sandbox = Sandbox::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let provider = WasmProvider::start(&sandbox, &spec, scratch.path()).await?;
    let info = provider.provider_info().clone();
    if !args.json {
        println!(
            "provider {} {} (capabilities: {})",
            info.name,
            info.version,
            match info.capabilities.names() {
                n if n.is_empty() => "none".to_string(),
                n => n.join(", "),
            }
        );
    }
    let options = SuiteOptions {
        large: !args.quick,
        filter: args.filter.clone(),
        ..SuiteOptions::default()
    };
    let json = args.json;
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
                CaseStatus::Failed(r) | CaseStatus::Skipped(r) => format!("  {r}"),
            };
            let _ = writeln!(
                out,
                "{tag} {:<40} {:>7.1?}{reason}",
                case.name, case.duration
            );
        }
    })
    .await;
    if !json {
        println!(
            "{} passed, {} failed, {} skipped",
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
