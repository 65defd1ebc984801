//! `tapedeck spool status`: what the host's spool holds, per tape and per
//! provider. Reads the spool only: no provider is started.

use super::Context;
use super::output::{self, Align, Table};
use std::process::ExitCode;
use tapedeck::spool::SpoolStatus;

/// `tapedeck spool status`.
pub fn status(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let spool = ctx.spool()?;
    let status = SpoolStatus::read(&spool)?;
    let providers = status.per_provider();
    if ctx.json {
        let tapes: Vec<_> = status
            .entries
            .iter()
            .map(|e| {
                let b = &e.entry.begin;
                serde_json::json!({
                    "id": b.header.id,
                    "name": b.header.name,
                    "provider": b.provider,
                    "provider_key": b.provider_key,
                    "state": e.state.as_str(),
                    "pid": b.pid,
                    "frames": e.entry.frames,
                    "acknowledged": e.entry.acked,
                    "pending": e.entry.pending(),
                    "bytes": e.entry.bytes,
                    "file": e.entry.path,
                    "file_bytes": e.entry.file_bytes,
                    "ended": e.entry.end.map(|x| x.reason),
                    "damage": e.entry.damage,
                })
            })
            .collect();
        let per_provider: Vec<_> = providers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "provider": p.provider,
                    "provider_key": p.provider_key,
                    "tapes": p.tapes,
                    "live": p.live,
                    "frames": p.frames,
                    "pending": p.pending,
                    "file_bytes": p.file_bytes,
                })
            })
            .collect();
        let unreadable: Vec<_> = status.unreadable.iter().map(|e| e.to_string()).collect();
        output::print_json(&serde_json::json!({
            "spool_dir": spool.dir(),
            "tapes": tapes,
            "providers": per_provider,
            "unreadable": unreadable,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("spool {}", spool.dir().display());
    if status.entries.is_empty() && status.unreadable.is_empty() {
        println!("empty: every recorded frame has reached its provider");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("TAPE", Align::Left),
        ("PROVIDER", Align::Left),
        ("STATE", Align::Left),
        ("FRAMES", Align::Right),
        ("ACKED", Align::Right),
        ("PENDING", Align::Right),
        ("SIZE", Align::Right),
        ("NOTE", Align::Left),
    ]);
    for e in &status.entries {
        let b = &e.entry.begin;
        let mut note = Vec::new();
        if e.state == tapedeck::spool::EntryState::Live {
            note.push(format!("recording (pid {})", b.pid));
        } else {
            note.push("recorder gone: `tapedeck recover` delivers it".to_string());
        }
        if let Some(end) = e.entry.end {
            note.push(format!("ended {}", end.reason.end_state().as_str()));
        }
        if let Some(d) = &e.entry.damage {
            note.push(format!("torn tail ignored: {d}"));
        }
        table.row(vec![
            b.header.id.clone(),
            b.provider.clone(),
            e.state.as_str().to_string(),
            e.entry.frames.to_string(),
            e.entry.acked.to_string(),
            e.entry.pending().to_string(),
            output::size(e.entry.file_bytes),
            note.join("; "),
        ]);
    }
    print!("{}", table.render());
    println!();
    let mut totals = Table::new(&[
        ("PROVIDER", Align::Left),
        ("KEY", Align::Left),
        ("TAPES", Align::Right),
        ("LIVE", Align::Right),
        ("PENDING", Align::Right),
        ("SIZE", Align::Right),
    ]);
    for p in &providers {
        totals.row(vec![
            p.provider.clone(),
            p.provider_key[..16.min(p.provider_key.len())].to_string(),
            p.tapes.to_string(),
            p.live.to_string(),
            p.pending.to_string(),
            output::size(p.file_bytes),
        ]);
    }
    print!("{}", totals.render());
    for e in &status.unreadable {
        println!("unreadable: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
