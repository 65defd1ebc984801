//! `tapedeck scan [TAPE|FILE…]`: report token-shaped strings and values
//! under secret-looking names in stored tapes or JSONL files, with the
//! configured redaction rules (`[redaction]`, the preset by default). A CI
//! lint: exit 1 when anything is found.
//!
//! An argument that names an existing file (or `-`, stdin) is read as a
//! JSONL export; any other is a tape reference (id, unique prefix,
//! `latest`). Without arguments, every tape of the provider is scanned.
//! Findings show where (tape or file, frame, JSON pointer), which rule,
//! and a preview of the secret's first characters and length, never the
//! secret.

use super::{Context, output, read_tape, resolve_tape};
use anyhow::{Context as _, anyhow};
use clap::Args;
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use tapedeck::jsonl::JsonlReader;
use tapedeck::redact::Redactor;
use tapedeck::store::paging::TapePages;
use tapedeck::types::{Frame, TapeFilter};

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Tapes (id, unique prefix, `latest`) or JSONL files (a path that
    /// exists, `-` for stdin). Default: every tape of the provider.
    #[arg(value_name = "TAPE|FILE")]
    targets: Vec<String>,
}

/// One secret found.
struct Found {
    source: String,
    seq: u64,
    direction: &'static str,
    pointer: Option<String>,
    rule: String,
    preview: String,
}

/// What a scan found, and how much it looked at.
#[derive(Default)]
struct Report {
    found: Vec<Found>,
    sources: u64,
    frames: u64,
}

impl Report {
    fn frame(&mut self, scanner: &Redactor, source: &str, f: &Frame) {
        self.frames += 1;
        for finding in scanner.scan(&f.payload) {
            self.found.push(Found {
                source: source.to_string(),
                seq: f.seq,
                direction: f.direction.as_short(),
                pointer: finding.pointer,
                rule: finding.rule,
                preview: finding.preview,
            });
        }
    }
}

pub async fn run(ctx: &mut Context, args: ScanArgs) -> anyhow::Result<ExitCode> {
    let scanner = ctx.config()?.redaction.scanner()?;
    let mut report = Report::default();
    let (files, tapes): (Vec<&String>, Vec<&String>) = args
        .targets
        .iter()
        .partition(|t| t.as_str() == "-" || Path::new(t.as_str()).is_file());
    for file in files {
        scan_file(&scanner, file, &mut report)?;
    }
    if !tapes.is_empty() || args.targets.is_empty() {
        let store = ctx.store().await?;
        let mut infos = Vec::new();
        if args.targets.is_empty() {
            let mut pages =
                TapePages::list(&store, TapeFilter::default()).provider_name(store.name());
            while let Some(page) = pages.next_page().await? {
                infos.extend(page);
            }
        } else {
            for t in tapes {
                infos.push(resolve_tape(&store, t).await?);
            }
        }
        for info in infos {
            let source = format!("tape {}", info.header.id);
            report.sources += 1;
            read_tape(&store, &info, true, |page| {
                for f in &page {
                    report.frame(&scanner, &source, f);
                }
                Ok(())
            })
            .await
            .with_context(|| format!("cannot scan {source}"))?;
        }
    }
    print(ctx.json, &report)?;
    Ok(if report.found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Scans one JSONL file (`-`: stdin).
fn scan_file(scanner: &Redactor, path: &str, report: &mut Report) -> anyhow::Result<()> {
    let (name, input): (String, Box<dyn BufRead>) = if path == "-" {
        ("stdin".into(), Box::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        (path.to_string(), Box::new(std::io::BufReader::new(file)))
    };
    let mut reader = JsonlReader::new(input).map_err(|e| anyhow!("{name}: {e}"))?;
    report.sources += 1;
    while let Some(f) = reader.next_frame().map_err(|e| anyhow!("{name}: {e}"))? {
        report.frame(scanner, &name, &f);
    }
    Ok(())
}

fn print(json: bool, report: &Report) -> anyhow::Result<()> {
    if json {
        let found: Vec<serde_json::Value> = report
            .found
            .iter()
            .map(|f| {
                serde_json::json!({
                    "source": f.source,
                    "seq": f.seq,
                    "direction": f.direction,
                    "pointer": f.pointer,
                    "rule": f.rule,
                    "preview": f.preview,
                })
            })
            .collect();
        return output::print_json(&serde_json::json!({
            "scanned": { "sources": report.sources, "frames": report.frames },
            "findings": found,
        }));
    }
    for f in &report.found {
        let at = f
            .pointer
            .as_deref()
            .map_or(String::new(), |p| format!(" {p}"));
        println!(
            "{}: frame {} ({}){}: {} {}",
            output::printable(&f.source),
            f.seq,
            f.direction,
            output::printable(&at),
            output::printable(&f.rule),
            output::printable(&f.preview)
        );
    }
    let scanned = format!(
        "{} frames in {} {}",
        report.frames,
        report.sources,
        if report.sources == 1 {
            "source"
        } else {
            "sources"
        }
    );
    if report.found.is_empty() {
        eprintln!("tapedeck: no secrets found ({scanned})");
    } else {
        eprintln!(
            "tapedeck: {} possible {} found ({scanned}); redact them with `tapedeck export --redact`, and rotate any that are real",
            report.found.len(),
            if report.found.len() == 1 {
                "secret"
            } else {
                "secrets"
            }
        );
    }
    Ok(())
}
