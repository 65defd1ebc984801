//! `tapedeck recover`: deliver spooled recordings whose recorder is gone, for
//! every configured provider; and [`quietly`], the same for one provider,
//! run by every command before it uses the provider.

use super::{Context, output, start_provider};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use tapedeck::spool::{ProviderKey, Recovered, RecoveryReport, Spool, recover_all};
use tapedeck::store::TapeStore;

/// One line about a recovered tape.
fn describe(r: &Recovered, provider: &str) -> String {
    let mut s = if r.already_ended {
        format!(
            "tape {} was already {} in {provider} with all {} spooled frames; removed it from the spool",
            r.tape.header.id,
            r.tape.state.as_str(),
            r.spooled
        )
    } else {
        format!(
            "recovered tape {} into {provider}: {} frames ({} delivered now), ended {}",
            r.tape.header.id,
            r.tape.frame_count,
            r.delivered,
            r.tape.state.as_str()
        )
    };
    if let Some(d) = &r.damage {
        s.push_str(&format!(
            " (the spool file ended in a torn write, ignored: {d})"
        ));
    }
    s
}

/// Recovers `key`'s spooled recordings into `store`; never fails the command
/// that called it. A tape recovered is logged at `info` (shown with `-v`):
/// the command's own output is what the user asked for. What could not be
/// recovered is a warning on stderr (so `--json` output stays clean).
pub async fn quietly<S: TapeStore>(spool: &Spool, store: &S, name: &str, key: &ProviderKey) {
    let report = match recover_all(spool, store, key).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("spool: {e}");
            return;
        }
    };
    for r in &report.recovered {
        tracing::info!("{}", describe(r, name));
    }
    for e in &report.failed {
        eprintln!("tapedeck: warning: {e} (kept in the spool; `tapedeck recover` tries again)");
    }
}

/// `tapedeck recover`.
pub async fn run(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let spool = ctx.spool()?;
    let config = ctx.config()?.clone();
    let mut handled = BTreeSet::new();
    let mut results: Vec<(String, RecoveryReport)> = Vec::new();
    for name in config.provider_names() {
        let (spec, base_dir) = config.provider_spec(Some(name))?;
        let key = tapedeck::spool::provider_key(&spec, &base_dir);
        let files = spool.files_of(&key)?;
        if files.is_empty() {
            continue;
        }
        handled.extend(files);
        let codec = ctx.codec_settings(Some(name))?;
        let store = ctx
            .host_seal()?
            .store(start_provider(&spec, &base_dir).await?, codec);
        let report = recover_all(&spool, &store, &key).await?;
        results.push((name.to_string(), report));
    }
    let other: Vec<PathBuf> = spool
        .files()?
        .into_iter()
        .filter(|f| !handled.contains(f))
        .collect();
    let failed = results.iter().any(|(_, r)| !r.failed.is_empty());
    if ctx.json {
        let recovered: Vec<_> = results
            .iter()
            .flat_map(|(p, r)| r.recovered.iter().map(move |t| (p, t)))
            .map(|(p, t)| {
                serde_json::json!({
                    "id": t.tape.header.id,
                    "provider": p,
                    "state": t.tape.state.as_str(),
                    "frames": t.tape.frame_count,
                    "spooled": t.spooled,
                    "delivered": t.delivered,
                    "already_ended": t.already_ended,
                    "damage": t.damage,
                })
            })
            .collect();
        let errors: Vec<_> = results
            .iter()
            .flat_map(|(p, r)| r.failed.iter().map(move |e| (p, e)))
            .map(|(p, e)| serde_json::json!({"provider": p, "error": e.to_string()}))
            .collect();
        output::print_json(&serde_json::json!({
            "recovered": recovered,
            "failed": errors,
            "live": results.iter().map(|(_, r)| r.live).sum::<usize>(),
            "other_providers": other.len(),
        }))?;
    } else {
        let mut any = false;
        for (provider, report) in &results {
            for r in &report.recovered {
                println!("{}", describe(r, provider));
                any = true;
            }
            for e in &report.failed {
                println!("could not recover: {e}");
                any = true;
            }
            if report.live > 0 {
                println!(
                    "{} spool file(s) of {provider} belong to recordings still running",
                    report.live
                );
                any = true;
            }
        }
        if !other.is_empty() {
            println!(
                "{} spool file(s) belong to providers not in {} (see `tapedeck spool status`)",
                other.len(),
                config.source_name()
            );
            any = true;
        }
        if !any {
            println!("nothing to recover");
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
