//! `tapedeck verify TAPE -- SERVER…`: the drift check. The tape's client
//! messages go to a live server, one request at a time, and its answers are
//! compared with the recorded ones (see [`tapedeck::replay::verify`]).
//! Exit 0 without drift, 1 with a readable diff on stdout.

use super::{Context, output, resolve_tape};
use anyhow::Context as _;
use clap::Args;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::replay::{self, ReplayOptions, json::JsonPath};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The tape: its id, `latest` for the newest tape, a unique prefix of
    /// its id, or its name (the newest tape of that name).
    #[arg(value_name = "TAPE")]
    id: String,
    /// A member to leave out of the comparison of answers, as a JSON pointer
    /// (`/result/serverInfo/version`) or dotted; `*` matches any member or
    /// item. Repeatable. `_meta` is always left out.
    #[arg(long, value_name = "PATH", value_parser = JsonPath::parse)]
    ignore: Vec<JsonPath>,
    /// How long to wait for each answer, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// The live MCP server, after `--`: the program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

pub async fn run(ctx: &mut Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let info = resolve_tape(&store, &args.id).await?;
    let id = info.header.id.clone();
    let options = ReplayOptions {
        ignore: args.ignore,
        ..ReplayOptions::default()
    };
    let patience = std::time::Duration::from_secs(args.timeout);
    let (report, _verification) = replay::verify(&store, &id, &options, &args.command, patience)
        .await
        .with_context(|| format!("cannot check tape {id} against the live server"))?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let drifts: Vec<_> = report
            .drifts
            .iter()
            .map(|d| {
                serde_json::json!({
                    "seq": d.seq,
                    "what": d.what,
                    "missing": d.missing,
                    "differences": d.differences.iter().map(|x| serde_json::json!({
                        "path": x.path, "recorded": x.recorded, "got": x.got,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let line = serde_json::json!({ "tape": id, "compared": report.compared, "drifts": drifts });
        writeln!(out, "{line}")?;
    } else {
        for d in &report.drifts {
            // Recorded text came from the provider, live text from the
            // server: both escaped.
            writeln!(out, "drift: {}", output::printable(&d.to_string()))?;
        }
        writeln!(
            out,
            "tape {id}: {} answer(s) compared, {} drifted",
            report.compared,
            report.drifts.len()
        )?;
    }
    Ok(if report.drifts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
