//! `tapedeck import FILE`: store a tape from a JSONL export.
//!
//! A tape of up to [`SAVE_MAX_FRAMES`] frames and [`SAVE_MAX_BYTES`] is
//! stored with one atomic `save`. A larger one is streamed: `create`, then
//! `append` in batches as the file is read, then `finish` with the end
//! line's summary and reason, so memory stays bounded; if the file turns out
//! to be broken half-way, the partial tape is deleted (or, without the
//! `delete` capability, left `aborted`).
//!
//! The frames are checked against the digest of the end line before the
//! tape is stored (saved, or finished when streaming; a streamed tape that
//! fails is cleaned up as above): a file whose frames were altered is
//! refused. A file whose end line has no digest gets one computed from its
//! frames, so the stored tape can be verified from then on.
//!
//! The redaction rules (`[redaction]`, by default the preset) apply to the
//! frames as they are stored, as when recording (`--no-redact` stores them
//! as they are). When that changes a frame, the stored tape's totals and
//! digest are those of the redacted frames, and a seal the file carried
//! (which vouches for the original bytes) is replaced by this host's.

use super::{Context, output};
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tapedeck::Store;
use tapedeck::jsonl::{JsonlError, JsonlReader};
use tapedeck::recorder::DigestChain;
use tapedeck::redact::Redactor;
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::terms::payload_terms;
use tapedeck::types::{EndReason, ErrorKind, Frame, TapeHeader, TapeInfo, TapeSummary};

/// Largest tape (in frames) stored with one `save`.
const SAVE_MAX_FRAMES: usize = 10_000;
/// Largest tape (in payload bytes) stored with one `save`: well below the
/// default 256 MiB memory limit of a provider, which receives it whole.
const SAVE_MAX_BYTES: u64 = 16 << 20;
/// Most frames in one `append` when streaming.
const APPEND_FRAMES: usize = 1000;
/// Most payload bytes in one `append` when streaming.
const APPEND_BYTES: u64 = 4 << 20;

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSONL files (as written by `export`), imported in order; `-` reads
    /// stdin. With --json, one JSON object per imported tape, one per line.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Store the tape under a fresh id instead of the id in the file (to
    /// import a copy next to the original).
    #[arg(long)]
    new_id: bool,
    /// Store the frames as they are in the file: do not apply the
    /// redaction rules.
    #[arg(long)]
    no_redact: bool,
}

/// The JSONL input, its name in messages, the digest chain over the
/// frames read so far, and the redaction applied to them (with the chain
/// and size of the frames as they are stored).
struct Input {
    name: String,
    reader: JsonlReader<Box<dyn BufRead>>,
    chain: DigestChain,
    redactor: Option<Arc<Redactor>>,
    stored_chain: DigestChain,
    stored_bytes: u64,
    redacted: usize,
}

impl Input {
    fn open(path: &Path, redactor: Option<Arc<Redactor>>) -> anyhow::Result<Input> {
        let (name, raw): (String, Box<dyn BufRead>) = if path.as_os_str() == "-" {
            ("stdin".into(), Box::new(std::io::stdin().lock()))
        } else {
            let name = path.display().to_string();
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
            (name, Box::new(std::io::BufReader::new(file)))
        };
        let reader = JsonlReader::new(raw).map_err(|e| read_error(&name, 1, e))?;
        Ok(Input {
            name,
            reader,
            chain: DigestChain::new(),
            redactor,
            stored_chain: DigestChain::new(),
            stored_bytes: 0,
            redacted: 0,
        })
    }

    fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        let frame = self
            .reader
            .next_frame()
            .map_err(|e| read_error(&self.name, self.reader.line_number(), e))?;
        let Some(mut f) = frame else { return Ok(None) };
        self.chain.push(&f);
        if let Some(r) = &self.redactor {
            let out = r.redact(&f.payload);
            if let Cow::Owned(p) = out.payload {
                self.redacted += out.replaced;
                f.payload = p;
                if !f.not_json {
                    f.terms = payload_terms(&f.payload);
                }
            }
        }
        self.stored_chain.push(&f);
        self.stored_bytes += f.payload.len() as u64;
        Ok(Some(f))
    }

    /// Once every frame is read: the reason the tape ended and its summary,
    /// whose digest the frames read must reproduce; the summary carries the
    /// digest computed over the frames (the same, in the host's form).
    fn end(&self) -> anyhow::Result<(EndReason, TapeSummary)> {
        let end = self.reader.end().expect("read to the end");
        let reason = EndReason::for_state(end.state)
            .ok_or_else(|| anyhow!("a tape cannot be imported in state {}", end.state.as_str()))?;
        let mut summary = end.summary.clone();
        if let Some(digest) = &summary.digest {
            self.chain.check(digest).map_err(|m| {
                anyhow!(
                    "cannot import {}: its frames do not match the digest of its end line \
                     (expected {}, computed {} over {} frames): a frame was altered, \
                     reordered, added or removed",
                    self.name,
                    tapedeck::text::quote(&m.expected),
                    m.computed,
                    m.frames
                )
            })?;
        }
        // Stored in the host's own form (lowercase hex), whatever case or
        // spacing the file used: the sandbox holds providers to that form.
        summary.digest = Some(self.chain.hex());
        if self.redacted > 0 {
            summary.digest = Some(self.stored_chain.hex());
            summary.byte_count = self.stored_bytes;
            summary.seal = None;
        }
        Ok((reason, summary))
    }
}

/// A read error naming the file and the line.
fn read_error(file: &str, line: u64, e: JsonlError) -> anyhow::Error {
    match e {
        JsonlError::Line { line, message } => {
            anyhow!("cannot import {file}: line {line}: {message}")
        }
        JsonlError::Truncated(message) => anyhow!("cannot import {file}: line {line}: {message}"),
        JsonlError::Io(e) => anyhow!("cannot read {file}: {e}"),
    }
}

pub async fn run(ctx: &mut Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let redactor = if args.no_redact {
        None
    } else {
        let seal = ctx.host_seal()?;
        ctx.config()?.redaction.redactor(&seal)?
    };
    let mut store = None;
    for file in &args.files {
        import(ctx, &mut store, file, args.new_id, redactor.clone()).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports one file; starts the provider into `store` on first use.
async fn import(
    ctx: &mut Context,
    store: &mut Option<Store>,
    path: &Path,
    new_id: bool,
    redactor: Option<Arc<Redactor>>,
) -> anyhow::Result<()> {
    let mut input = Input::open(path, redactor)?;
    let mut header = input.reader.header.clone();
    let source_id = header.id.clone();
    if new_id {
        header.id = uuid::Uuid::now_v7().to_string();
    }
    // Buffer frames while the tape is small enough for one `save` (before
    // starting the provider: a broken file is reported at once).
    let mut frames = Vec::new();
    let mut bytes = 0u64;
    let mut small = None;
    loop {
        let Some(f) = input.next()? else {
            small = Some(input.end()?);
            break;
        };
        bytes += f.payload.len() as u64;
        frames.push(f);
        if frames.len() > SAVE_MAX_FRAMES || bytes > SAVE_MAX_BYTES {
            break;
        }
    }
    if store.is_none() {
        *store = Some(ctx.store().await?);
    }
    let store = store.as_ref().expect("started above");
    let exists = |store: &Store, id: &str| {
        anyhow!(
            "a tape with id {id:?} already exists in provider {}; use --new-id to import a copy under a fresh id",
            store.name()
        )
    };
    match store.get(&header.id).await {
        Ok(_) => return Err(exists(store, &header.id)),
        Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => {}
        Err(e) => return Err(e.into()),
    }

    let info = if let Some((reason, summary)) = small {
        store
            .save(header.clone(), &frames, summary, reason)
            .await
            .map_err(|e| match e.storage_kind() {
                Some(ErrorKind::AlreadyExists) => exists(store, &header.id),
                _ => e.into(),
            })?
    } else {
        stream(store, header.clone(), frames, &mut input)
            .await
            .map_err(
                |e| match e.downcast_ref::<tapedeck::error::ProviderError>() {
                    Some(p) if p.storage_kind() == Some(ErrorKind::AlreadyExists) => {
                        exists(store, &header.id)
                    }
                    _ => e,
                },
            )?
    };
    report(ctx, store, &info, &source_id, input.redacted)
}

/// Streams a large tape: `create`, `append` in batches, `finish`. Cleans up
/// the partial tape if anything fails after `create`.
async fn stream(
    store: &Store,
    header: TapeHeader,
    buffered: Vec<Frame>,
    input: &mut Input,
) -> anyhow::Result<TapeInfo> {
    let id = header.id.clone();
    let mut writer = store.create(header).await?;
    let result = async {
        let mut batch: Vec<Frame> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut buffered = buffered.into_iter();
        loop {
            let next = match buffered.next() {
                Some(f) => Some(f),
                None => input.next()?,
            };
            let last = next.is_none();
            if let Some(f) = next {
                batch_bytes += f.payload.len() as u64;
                batch.push(f);
            }
            let full = batch.len() >= APPEND_FRAMES || batch_bytes >= APPEND_BYTES;
            if (full || last) && !batch.is_empty() {
                writer.append(&batch).await?;
                batch.clear();
                batch_bytes = 0;
            }
            if last {
                break;
            }
        }
        // `finish` with reason `aborted` ends the tape as `abort` would, but
        // keeps the summary's end time and digest.
        let (reason, summary) = input.end()?;
        Ok::<_, anyhow::Error>(writer.finish(summary, reason).await?)
    }
    .await;
    let Err(e) = result else { return result };
    let cleanup = if store.provider_info().capabilities.delete {
        drop(writer);
        match store.delete(&id).await {
            Ok(()) => "the partial tape was deleted".to_string(),
            Err(d) => format!("the partial tape {id} could not be deleted: {d}"),
        }
    } else {
        match writer.abort("import failed").await {
            Ok(()) => format!("the partial tape {id} was left aborted"),
            Err(a) => format!("the partial tape {id} is left recording ({a})"),
        }
    };
    bail!("{e:#} ({cleanup})")
}

fn report(
    ctx: &Context,
    store: &Store,
    info: &TapeInfo,
    source_id: &str,
    redacted: usize,
) -> anyhow::Result<()> {
    let id = &info.header.id;
    if ctx.json {
        return output::print_json(&serde_json::json!({
            "id": id,
            "source_id": source_id,
            "provider": store.name(),
            "frames": info.frame_count,
            "bytes": info.byte_count,
            "state": info.state.as_str(),
            "redacted": redacted,
        }));
    }
    let copy = if id != source_id {
        format!(" (a copy of {source_id})")
    } else {
        String::new()
    };
    let redacted = match redacted {
        0 => String::new(),
        1 => "; 1 secret redacted".to_string(),
        n => format!("; {n} secrets redacted"),
    };
    writeln!(
        std::io::stdout(),
        "imported tape {id}{copy}: {} frames, {}, {}, into provider {}{redacted}",
        info.frame_count,
        output::size(info.byte_count),
        info.state.as_str(),
        store.name()
    )?;
    Ok(())
}
