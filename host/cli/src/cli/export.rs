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
//!
//! `--redact` applies the redaction rules (`[redaction]`, by default the
//! preset) to every frame as it is written, with this host's placeholders:
//! to share a tape recorded without redaction, or before a rule existed.
//! The tape is verified as it is read; the file then describes the
//! redacted frames (their totals, a digest over them, fresh index terms)
//! and carries neither the original's seal nor its envelope, which vouch
//! for other bytes.

use super::{Context, output, read_tape, resolve_tape};
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapedeck::jsonl::JsonlWriter;
use tapedeck::read::Verification;
use tapedeck::recorder::DigestChain;
use tapedeck::redact::Redactor;
use tapedeck::types::terms::payload_terms;
use tapedeck::types::{TapeInfo, TapeState, TapeSummary};
use tapedeck::{RedactionSettings, Store};

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The tape: its id, `latest` for the newest tape, a unique prefix of
    /// its id, or its name (the newest tape of that name).
    #[arg(value_name = "TAPE")]
    id: String,
    /// Write to FILE instead of stdout (`-` is stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Do not check the frames against the tape's totals and digest: export
    /// whatever the provider returns, to rescue data from a damaged tape.
    #[arg(long)]
    no_verify: bool,
    /// Take secrets out of the exported frames with the redaction rules
    /// (`[redaction]`, by default the preset), even where redaction is
    /// switched off for recording.
    #[arg(long)]
    redact: bool,
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
    let redactor = if args.redact {
        let settings = RedactionSettings {
            enabled: true,
            ..ctx.config()?.redaction.clone()
        };
        let seal = ctx.host_seal()?;
        Some(settings.redactor(&seal)?.ok_or_else(|| {
            anyhow!("--redact: there are no redaction rules (`[redaction]` has `preset = false` and no keys, pointers or patterns)")
        })?)
    } else {
        None
    };
    let redactor = redactor.as_deref();
    match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        None => drop(write(&store, &info, verify, redactor, std::io::stdout().lock()).await?),
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
            let (tmp, summary, verification) = write(&store, &info, verify, redactor, tmp).await?;
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
/// is false and redacting it with `redactor`, and returns `out`, the
/// summary written and the verification. On an error the end line is not
/// written.
async fn write<W: Write>(
    store: &Store,
    info: &TapeInfo,
    verify: bool,
    redactor: Option<&Redactor>,
    out: W,
) -> anyhow::Result<(W, TapeSummary, Verification)> {
    let mut header = info.header.clone();
    if redactor.is_some() {
        header.envelope = None;
    }
    let mut writer = JsonlWriter::new(std::io::BufWriter::new(out), &header)?;
    let mut bytes = 0u64;
    let mut chain = DigestChain::new();
    let verification = read_tape(store, info, verify, |page| {
        for mut f in page {
            if let Some(r) = redactor
                && let Cow::Owned(p) = r.redact(&f.payload).payload
            {
                f.payload = p;
                if !f.not_json {
                    f.terms = payload_terms(&f.payload);
                }
            }
            bytes += f.payload.len() as u64;
            chain.push(&f);
            writer.frame(&f)?;
        }
        Ok(())
    })
    .await?;
    // Verified, these are the tape's totals; unverified, those of the
    // frames written, so that the file is consistent. Redacted, the digest
    // is the one over the frames written, and the seal is left out.
    let (digest, seal) = match redactor {
        Some(_) => (Some(chain.hex()), None),
        None => (info.digest.clone(), info.seal.clone()),
    };
    let summary = TapeSummary {
        frame_count: verification.frames(),
        byte_count: bytes,
        ended_at_us: info.ended_at_us.unwrap_or(info.header.created_at_us),
        digest,
        seal,
    };
    let out = writer
        .finish(info.state, &summary)?
        .into_inner()
        .map_err(|e| anyhow!("cannot write the export: {}", e.error()))?;
    Ok((out, summary, verification))
}
