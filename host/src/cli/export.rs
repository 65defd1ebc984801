//! `tapedeck export ID [-o FILE]`: a tape in the JSONL interchange format.
//!
//! Frames stream from the provider page by page into the writer, so a tape
//! of any size exports in bounded memory. With `-o`, the file appears only
//! when complete (written to a temporary file in the same directory, then
//! renamed).

use super::{Context, output, read_frames, resolve_id, tape_error};
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapedeck::jsonl::JsonlWriter;
use tapedeck::sandbox::WasmProvider;
use tapedeck::store::TapeStore;
use tapedeck::types::{TapeInfo, TapeState, TapeSummary};

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tape's id, or `latest` for the newest tape.
    id: String,
    /// Write to FILE instead of stdout (`-` is stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(ctx: &mut Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let id = resolve_id(&store, &args.id).await?;
    let info = store
        .get(&id)
        .await
        .map_err(|e| tape_error(e, &store, &id))?;
    if info.state == TapeState::Recording {
        bail!(
            "tape {:?} is still recording: an export records how a tape ended (finished, aborted or crashed), so wait until its recording ends",
            id
        );
    }
    match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        None => drop(write(&store, &info, std::io::stdout().lock()).await?),
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
            let tmp = write(&store, &info, tmp).await?;
            tmp.as_file()
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            tmp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if ctx.json {
                output::print_json(&serde_json::json!({
                    "id": info.header.id,
                    "file": path,
                    "frames": info.frame_count,
                    "bytes": info.byte_count,
                    "state": info.state.as_str(),
                }))?;
            } else {
                eprintln!(
                    "exported tape {} ({} frames, {}, {}) to {}",
                    info.header.id,
                    info.frame_count,
                    output::size(info.byte_count),
                    info.state.as_str(),
                    path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams `info`'s tape into `out` as JSONL and returns `out`.
async fn write<W: Write>(store: &WasmProvider, info: &TapeInfo, out: W) -> anyhow::Result<W> {
    let id = &info.header.id;
    let mut writer = JsonlWriter::new(std::io::BufWriter::new(out), &info.header)?;
    let mut bytes = 0u64;
    let frames = read_frames(store, id, Some(info.frame_count), |page| {
        for f in page {
            bytes += f.payload.len() as u64;
            writer.frame(f)?;
        }
        Ok(())
    })
    .await?;
    if frames != info.frame_count || bytes != info.byte_count {
        bail!(
            "provider {} returned {frames} frames ({bytes} bytes) for tape {id:?}, which has {} frames ({} bytes); the export is incomplete",
            store.name(),
            info.frame_count,
            info.byte_count
        );
    }
    let summary = TapeSummary {
        frame_count: info.frame_count,
        byte_count: info.byte_count,
        ended_at_us: info.ended_at_us.unwrap_or(info.header.created_at_us),
        digest: info.digest.clone(),
    };
    writer
        .finish(info.state, &summary)?
        .into_inner()
        .map_err(|e| anyhow!("cannot write the export: {}", e.error()))
}
