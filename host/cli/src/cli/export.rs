//! `tapedeck export TAPE [-o FILE]`: a tape in the JSONL interchange format.
//!
//! Frames stream from the provider page by page into the writer, so a tape
//! of any size exports in bounded memory. With `-o`, the file appears only
//! when complete (written to a temporary file in the same directory, then
//! renamed).
//!
//! The frames are verified as they stream (see [`tapedeck::read`]):
//! with `-o`, a tape that fails leaves no file; on stdout, the output stops
//! without its end line and the error is reported (exit 1). `--no-verify`
//! exports whatever the provider returns, to rescue a damaged tape: the end
//! line then has the totals of the frames written, and the digest recorded
//! with the tape (an import checks it, so a damaged tape cannot pass as
//! intact).

use super::{Context, output, read_tape, resolve_tape};
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapedeck::Store;
use tapedeck::jsonl::JsonlWriter;
use tapedeck::read::Verification;
use tapedeck::types::{TapeInfo, TapeState, TapeSummary};

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tape: its id, `latest` for the newest tape, or a unique prefix
    /// of its id.
    #[arg(value_name = "TAPE")]
    id: String,
    /// Write to FILE instead of stdout (`-` is stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Do not check the frames against the tape's totals and digest: export
    /// whatever the provider returns, to rescue data from a damaged tape.
    #[arg(long)]
    no_verify: bool,
}

pub async fn run(ctx: &mut Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let info = resolve_tape(&store, &args.id).await?;
    if info.state == TapeState::Recording {
        bail!(
            "tape {:?} is still recording: an export records how a tape ended (finished, aborted or crashed), so wait until its recording ends (`tapedeck show {} --follow` shows it as it grows)",
            info.header.id,
            info.header.id
        );
    }
    let verify = !args.no_verify;
    match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        None => drop(write(&store, &info, verify, std::io::stdout().lock()).await?),
        Some(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                bail!(
                    "cannot write {}: there is no directory {}",
                    path.display(),
                    dir.display()
                );
            }
            let mut builder = tempfile::Builder::new();
            builder.prefix(".tapedeck-export-");
            // An ordinary file (the umask applies), not a private temporary.
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
            let tmp = builder
                .tempfile_in(dir)
                .with_context(|| format!("cannot create a file in {}", dir.display()))?;
            // Dropped, so removed, if the tape fails verification.
            let (tmp, summary, verification) = write(&store, &info, verify, tmp).await?;
            tmp.as_file()
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            tmp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if ctx.json {
                output::print_json(&serde_json::json!({
                    "id": info.header.id,
                    "file": path,
                    "frames": summary.frame_count,
                    "bytes": summary.byte_count,
                    "state": info.state.as_str(),
                    "integrity": output::integrity_json(Ok(&verification)),
                }))?;
            } else {
                eprintln!(
                    "exported tape {} ({} frames, {}, {}) to {}: {verification}",
                    info.header.id,
                    summary.frame_count,
                    output::size(summary.byte_count),
                    info.state.as_str(),
                    path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams `info`'s tape into `out` as JSONL, verifying it unless `verify`
/// is false, and returns `out`, the summary written and the verification.
/// On an error the end line is not written.
async fn write<W: Write>(
    store: &Store,
    info: &TapeInfo,
    verify: bool,
    out: W,
) -> anyhow::Result<(W, TapeSummary, Verification)> {
    let mut writer = JsonlWriter::new(std::io::BufWriter::new(out), &info.header)?;
    let mut bytes = 0u64;
    let verification = read_tape(store, info, verify, |page| {
        for f in &page {
            bytes += f.payload.len() as u64;
            writer.frame(f)?;
        }
        Ok(())
    })
    .await?;
    // Verified, these are the tape's totals; unverified, those of the
    // frames written, so that the file is consistent.
    let summary = TapeSummary {
        frame_count: verification.frames(),
        byte_count: bytes,
        ended_at_us: info.ended_at_us.unwrap_or(info.header.created_at_us),
        digest: info.digest.clone(),
        seal: info.seal.clone(),
    };
    let out = writer
        .finish(info.state, &summary)?
        .into_inner()
        .map_err(|e| anyhow!("cannot write the export: {}", e.error()))?;
    Ok((out, summary, verification))
}
