//! `tapedeck migrate --from A --to B [--tape ID]...`: copy tapes between two
//! configured providers, over [`tapedeck::migrate`] (streaming, verified,
//! resumable; the module docs there say how and what a failure leaves).
//!
//! Without `--tape`, every tape of A, newest first, walked through `list`
//! with [`TapePages`] and copied page by page as the listing comes (memory
//! holds one page; a listing that breaks the contract stops the migration
//! after the tapes copied so far). Each tape is reported as it is done (a line on stdout; with `--json`,
//! one JSON object per line), failures and conflicts on stderr, then a
//! summary line (with `--json`, a last object `{"summary": …}`). The exit
//! code is 1 when any tape failed or conflicted, or the listing failed. On a
//! terminal, stderr shows a progress bar for all tapes listed so far (payload
//! bytes) and one for the current tape (frames).

use super::{Context, NoSuchTape, check_id, output, resolve_id};
use anyhow::{anyhow, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tapedeck::Store;
use tapedeck::migrate::{
    MigrateError, MigrateOptions, Migrated, Migration, Outcome, Phase, Progress, Skip,
};
use tapedeck::store::{TapePages, TapeStore};
use tapedeck::types::{TapeFilter, TapeInfo, TapeState};

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The configured provider to copy from.
    #[arg(long, value_name = "NAME")]
    from: String,
    /// The configured provider to copy to.
    #[arg(long, value_name = "NAME")]
    to: String,
    /// Copy only this tape (`latest`: the source's newest; a unique prefix
    /// of an id works too); repeat for several [default: every tape of the
    /// source].
    #[arg(long = "tape", value_name = "ID")]
    tapes: Vec<String>,
    /// Also copy tapes still recording at the source (live): the frames so
    /// far, leaving the copy recording; a later migrate continues it and
    /// ends it once the source has ended. Without this they are skipped.
    #[arg(long)]
    include_recording: bool,
    /// Do not read each copy back and compare it with the source before
    /// finishing it (faster; the totals and digest the destination reports
    /// are still compared).
    #[arg(long)]
    no_read_back: bool,
    /// Also copy ended tapes that carry no seal (recorded before seals).
    /// Copied as stored, they stay unsealed; with --reencode this host
    /// seals the copies, vouching for frames nothing vouched for. Without
    /// this they are refused.
    #[arg(long)]
    allow_unsealed: bool,
    /// Re-encode each tape as the destination's configuration says
    /// (compression; encryption with this host's current tape key),
    /// sealing the copy with this host's key. Without this, tapes are
    /// copied as stored: envelope, compressed or encrypted frames, digest
    /// and seal unchanged (still verified on the way, which needs the key
    /// of an encrypted tape).
    #[arg(long)]
    reencode: bool,
}

pub async fn run(ctx: &mut Context, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    if args.from == args.to {
        bail!(
            "--from and --to both name provider {}: a migration copies between two providers",
            args.from
        );
    }
    for id in &args.tapes {
        check_id(id)?;
    }
    let stores = ctx.named_stores(&[&args.from, &args.to]).await?;
    let (from, to) = (&stores[0], &stores[1]);
    let options = MigrateOptions {
        include_recording: args.include_recording,
        read_back: !args.no_read_back,
        allow_unsealed: args.allow_unsealed,
        ..MigrateOptions::default()
    };
    if args.reencode {
        let migration = Migration::new(from, to)
            .provider_names(from.name(), to.name())
            .options(options);
        migrate(ctx.json, &args, from, &migration).await
    } else {
        let migration = Migration::new(from.provider(), to.provider())
            .as_stored(from.codec(), from.trusted_hosts().cloned())
            .provider_names(from.name(), to.name())
            .options(options);
        migrate(ctx.json, &args, from, &migration).await
    }
}

/// Copies the tapes `args` name (default: every tape `migration`'s source
/// lists), `from` resolving the names.
async fn migrate<A: TapeStore, B: TapeStore>(
    json: bool,
    args: &MigrateArgs,
    from: &Store,
    migration: &Migration<'_, A, B>,
) -> anyhow::Result<ExitCode> {
    let mut report = Report::new(json, &args.from, &args.to);
    let mut bars = Bars::new(&format!("{} → {}", args.from, args.to), 0, 0);
    let mut listing_failed = None;
    if args.tapes.is_empty() {
        // Every tape of the source, each page copied before the next is
        // asked for.
        let mut pages =
            TapePages::list(migration.source(), TapeFilter::default()).provider_name(from.name());
        loop {
            let page = match pages.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => {
                    listing_failed = Some(
                        anyhow!(e)
                            .context(format!("cannot list the tapes of provider {}", from.name())),
                    );
                    break;
                }
            };
            let bytes = page.iter().map(|t| t.byte_count).sum();
            bars.listed(page.len(), bytes, pages.has_more());
            for info in page {
                copy(migration, &mut bars, &mut report, Ok(info)).await?;
            }
        }
    } else {
        // The tapes named (each once).
        let mut tapes: Vec<Result<TapeInfo, MigrateError>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in &args.tapes {
            // A tape the source lacks is reported with the others, as one
            // that failed.
            let id = match resolve_id(from, id).await {
                Ok(id) => id,
                Err(e) if e.downcast_ref::<NoSuchTape>().is_some() => id.clone(),
                Err(e) => return Err(e),
            };
            if seen.insert(id.clone()) {
                tapes.push(migration.source_info(&id).await);
            }
        }
        let bytes = tapes.iter().flatten().map(|t| t.byte_count).sum();
        bars.listed(tapes.len(), bytes, false);
        for tape in tapes {
            copy(migration, &mut bars, &mut report, tape).await?;
        }
    }
    bars.finish();
    report.summary()?;
    if let Some(e) = listing_failed {
        return Err(e);
    }
    Ok(if report.failed + report.conflicts > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Copies one tape (`tape`: what the source reported, or why it could not
/// be read) and reports it.
async fn copy<A: TapeStore, B: TapeStore>(
    migration: &Migration<'_, A, B>,
    bars: &mut Bars,
    report: &mut Report,
    tape: Result<TapeInfo, MigrateError>,
) -> anyhow::Result<()> {
    let (source, result) = match tape {
        Ok(info) => {
            let mut progress = bars.start(&info);
            let result = migration.tape(&info, &mut progress).await;
            bars.done(&info, progress);
            (Some(info), result)
        }
        Err(e) => {
            bars.done_without_work();
            (None, Err(e))
        }
    };
    bars.suspend(|| report.tape(source.as_ref(), result))
}

/// The counts so far, and how each tape is reported.
struct Report {
    json: bool,
    from: String,
    to: String,
    migrated: u64,
    skipped: u64,
    conflicts: u64,
    failed: u64,
}

impl Report {
    fn new(json: bool, from: &str, to: &str) -> Report {
        Report {
            json,
            from: from.to_string(),
            to: to.to_string(),
            migrated: 0,
            skipped: 0,
            conflicts: 0,
            failed: 0,
        }
    }

    /// Counts and reports one tape (`source`: what the source reported,
    /// unless that failed).
    fn tape(
        &mut self,
        source: Option<&TapeInfo>,
        result: Result<Outcome, MigrateError>,
    ) -> anyhow::Result<()> {
        match &result {
            Ok(Outcome::Migrated(_)) => self.migrated += 1,
            Ok(Outcome::Skipped(_)) => self.skipped += 1,
            Err(e) if e.is_conflict() => self.conflicts += 1,
            Err(_) => self.failed += 1,
        }
        if self.json {
            return output::print_json(&self.tape_json(source, &result));
        }
        let id = match (&result, source) {
            (_, Some(info)) => info.header.id.as_str(),
            (Err(e), None) => e.tape.as_str(),
            (Ok(_), None) => unreachable!("an outcome comes from a source tape"),
        };
        let line = match &result {
            Ok(Outcome::Migrated(m)) => migrated_line(id, m),
            Ok(Outcome::Skipped(Skip::SourceRecording)) => format!(
                "skipped tape {id}: {} (--include-recording copies its frames so far)",
                Skip::SourceRecording
            ),
            Ok(Outcome::Skipped(skip)) => format!("skipped tape {id}: {skip}"),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(());
            }
        };
        writeln!(std::io::stdout(), "{line}")?;
        Ok(())
    }

    /// One tape as JSON: `id`, `status` (`migrated`, `skipped`, `conflict`,
    /// `failed`), `from`, `to`, then per status: the copy's `state`,
    /// `frames`, `bytes`, `resumed_from`, `frames_sent`, `read_back`,
    /// `integrity` (of the source) and `note`; the skip `reason`; the
    /// `error` and what was left as the `copy`.
    fn tape_json(
        &self,
        source: Option<&TapeInfo>,
        result: &Result<Outcome, MigrateError>,
    ) -> serde_json::Value {
        let id = match (result, source) {
            (_, Some(info)) => info.header.id.clone(),
            (Err(e), None) => e.tape.clone(),
            (Ok(_), None) => unreachable!("an outcome comes from a source tape"),
        };
        let mut v = serde_json::json!({"id": id, "from": self.from, "to": self.to});
        let fields = match result {
            Ok(Outcome::Migrated(m)) => serde_json::json!({
                "status": "migrated",
                "state": m.info.state.as_str(),
                "frames": m.info.frame_count,
                "bytes": m.info.byte_count,
                "digest": m.info.digest,
                "resumed_from": m.resumed_from,
                "frames_sent": m.frames_sent,
                "read_back": m.read_back,
                "stored_as_is": m.stored_as_is,
                "integrity": output::integrity_json(Ok(&m.source)),
                "note": m.note,
            }),
            Ok(Outcome::Skipped(skip)) => serde_json::json!({
                "status": "skipped",
                "reason": skip.as_str(),
                "state": source.map(|s| s.state.as_str()),
            }),
            Err(e) => serde_json::json!({
                "status": if e.is_conflict() { "conflict" } else { "failed" },
                "error": e.to_string(),
                "copy": e.copy.as_str(),
            }),
        };
        if let (Some(v), serde_json::Value::Object(fields)) = (v.as_object_mut(), fields) {
            v.extend(fields);
        }
        v
    }

    /// `fs → pg: 3 migrated, 1 skipped, 0 conflicts, 0 failed`; with
    /// `--json`, `{"summary": {"from", "to", "migrated", "skipped",
    /// "conflicts", "failed"}}`.
    fn summary(&self) -> anyhow::Result<()> {
        if self.json {
            return output::print_json(&serde_json::json!({"summary": {
                "from": self.from,
                "to": self.to,
                "migrated": self.migrated,
                "skipped": self.skipped,
                "conflicts": self.conflicts,
                "failed": self.failed,
            }}));
        }
        let plural = |n: u64, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        writeln!(
            std::io::stdout(),
            "{} → {}: {} migrated, {} skipped, {}, {} failed",
            self.from,
            self.to,
            self.migrated,
            self.skipped,
            plural(self.conflicts, "conflict"),
            self.failed
        )?;
        Ok(())
    }
}

/// `migrated tape ID (12 frames, 1.2 KiB, finished): source verified (…),
/// read back`, and how it was resumed; for a live tape, what was copied.
fn migrated_line(id: &str, m: &Migrated) -> String {
    let info = &m.info;
    let totals = format!(
        "{} frames, {}",
        info.frame_count,
        output::size(info.byte_count)
    );
    let mut line = if info.state == TapeState::Recording {
        format!(
            "copied tape {id} so far ({totals}): it is still recording at the source, so the \
             copy stays recording; migrate again once it has ended"
        )
    } else {
        let mut line = format!(
            "migrated tape {id} ({totals}, {}): source {}",
            info.state.as_str(),
            m.source
        );
        if m.stored_as_is {
            line.push_str(", copied as stored");
        }
        if m.read_back {
            line.push_str(", copy read back and matched");
        }
        line
    };
    if let Some(from) = m.resumed_from {
        line.push_str(&format!(
            " (resumed at frame {from}: {} frames sent)",
            m.frames_sent
        ));
    }
    if let Some(note) = &m.note {
        line.push_str(&format!(" (note: {note})"));
    }
    line
}

/// The progress bars on stderr (drawn only on a terminal): payload bytes
/// over all tapes listed so far, and frames of the current tape.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Tapes listed so far.
    tapes: usize,
    /// The listing goes on.
    more: bool,
    done_tapes: usize,
    done_bytes: u64,
}

const OVERALL_STYLE: &str = "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})";
const TAPE_STYLE: &str = "  {prefix} [{bar:30}] {pos}/{len} frames, {msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("=> ")
}

impl Bars {
    fn new(prefix: &str, tapes: usize, total_bytes: u64) -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars::with_target(target, prefix, tapes, total_bytes)
    }

    fn with_target(
        target: ProgressDrawTarget,
        prefix: &str,
        tapes: usize,
        total_bytes: u64,
    ) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total_bytes));
        overall.set_style(style(OVERALL_STYLE));
        overall.set_prefix(prefix.to_string());
        let bars = Bars {
            multi,
            overall,
            tapes,
            more: false,
            done_tapes: 0,
            done_bytes: 0,
        };
        bars.overall.set_message(bars.tapes_message());
        bars
    }

    fn tapes_message(&self) -> String {
        let more = if self.more { "+" } else { "" };
        format!("{}/{}{more} tapes", self.done_tapes, self.tapes)
    }

    /// `tapes` more tapes holding `bytes` payload bytes were listed; `more`:
    /// the listing goes on.
    fn listed(&mut self, tapes: usize, bytes: u64, more: bool) {
        self.tapes += tapes;
        self.more = more;
        self.overall.inc_length(bytes);
        self.overall.set_message(self.tapes_message());
    }

    /// A bar for the tape `info` describes.
    fn start(&self, info: &TapeInfo) -> TapeProgress {
        let bar = self.multi.add(ProgressBar::new(info.frame_count));
        bar.set_style(style(TAPE_STYLE));
        bar.set_prefix(info.header.id.clone());
        bar.set_message("starting");
        TapeProgress {
            bar,
            overall: self.overall.clone(),
            base: self.done_bytes,
            total: info.byte_count,
            bytes: 0,
        }
    }

    /// The tape `info` describes is done (whatever came of it).
    fn done(&mut self, info: &TapeInfo, progress: TapeProgress) {
        progress.bar.finish_and_clear();
        self.multi.remove(&progress.bar);
        self.done_bytes += info.byte_count;
        self.done_without_work();
    }

    /// One more tape is done, without a bar (it could not be read).
    fn done_without_work(&mut self) {
        self.done_tapes += 1;
        self.overall.set_position(self.done_bytes);
        self.overall.set_message(self.tapes_message());
    }

    /// Runs `f` (which prints) with the bars out of the way.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

/// [`Progress`] of one tape onto the bars.
struct TapeProgress {
    bar: ProgressBar,
    overall: ProgressBar,
    /// The overall position when the tape started.
    base: u64,
    /// The tape's payload bytes, as listed.
    total: u64,
    /// Payload bytes processed so far.
    bytes: u64,
}

impl Progress for TapeProgress {
    fn phase(&mut self, phase: Phase) {
        self.bar.set_message(phase.as_str());
    }

    fn advanced(&mut self, frames: u64, bytes: u64) {
        self.bar.inc(frames);
        // A tape that grew while recording does not run past its share.
        self.bytes += bytes;
        self.overall
            .set_position(self.base + self.bytes.min(self.total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck::read::Verification;
    use tapedeck::types::TapeHeader;

    fn info(state: TapeState) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: "t1".into(),
                session_id: String::new(),
                name: String::new(),
                tags: Vec::new(),
                created_at_us: 0,
                envelope: None,
            },
            state,
            frame_count: 12,
            byte_count: 2048,
            ended_at_us: None,
            digest: None,
            seal: None,
        }
    }

    #[test]
    fn bars_take_a_whole_run_hidden() {
        let mut bars = Bars::with_target(ProgressDrawTarget::hidden(), "a → b", 2, 4096);
        let tape = info(TapeState::Finished);
        let mut p = bars.start(&tape);
        p.phase(Phase::Copying);
        p.advanced(12, 2048);
        assert_eq!(p.bar.position(), 12);
        assert_eq!(bars.overall.position(), 2048);
        bars.done(&tape, p);
        bars.done_without_work();
        assert_eq!(bars.tapes_message(), "2/2 tapes");
        bars.finish();
    }

    #[test]
    fn lines_say_what_was_done() {
        let key = tapedeck::store::keys::SecretKey::generate()
            .unwrap()
            .public();
        let mut m = Migrated {
            info: info(TapeState::Finished),
            resumed_from: Some(4),
            frames_sent: 8,
            source: Verification::Verified {
                digest: "ab".into(),
                frames: 12,
                sealed_by: key,
            },
            read_back: true,
            stored_as_is: true,
            note: None,
        };
        assert_eq!(
            migrated_line("t1", &m),
            format!(
                "migrated tape t1 (12 frames, 2.0 KiB, finished): source verified (sealed by \
                 {key}, sha256 chain over 12 frames), copied as stored, copy read back and \
                 matched (resumed at frame 4: 8 frames sent)"
            )
        );
        m.info.state = TapeState::Recording;
        m.resumed_from = None;
        assert!(
            migrated_line("t1", &m)
                .starts_with("copied tape t1 so far (12 frames, 2.0 KiB): it is still recording"),
        );
    }

    #[test]
    fn json_lines_carry_the_status() {
        let report = Report::new(true, "a", "b");
        let v = report.tape_json(
            Some(&info(TapeState::Recording)),
            &Ok(Outcome::Skipped(Skip::SourceRecording)),
        );
        assert_eq!(
            v,
            serde_json::json!({"id": "t1", "from": "a", "to": "b", "status": "skipped",
                "reason": "source-recording", "state": "recording"})
        );
    }
}
