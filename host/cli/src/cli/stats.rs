//! `tapedeck stats`: totals over all tapes of the provider.

use super::{Context, output};
use std::io::Write;
use std::process::ExitCode;
use tapedeck::store::TapeStore;

pub async fn run(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let s = store.stats().await?;
    let info = store.provider_info();
    if ctx.json {
        output::print_json(&serde_json::json!({
            "provider": store.name(),
            "implementation": info.name,
            "version": info.version,
            "capabilities": info.capabilities.names(),
            "tapes": s.tape_count,
            "recording": s.recording_count,
            "frames": s.frame_count,
            "bytes": s.byte_count,
            "stored_bytes": s.stored_bytes,
        }))?;
    } else {
        let caps = output::capabilities(&info.capabilities);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "provider  {} ({} {}; capabilities: {caps})",
            store.name(),
            info.name,
            info.version
        )?;
        writeln!(
            out,
            "tapes     {} ({} recording)",
            s.tape_count, s.recording_count
        )?;
        writeln!(out, "frames    {}", s.frame_count)?;
        writeln!(
            out,
            "payload   {} ({} bytes)",
            output::size(s.byte_count),
            s.byte_count
        )?;
        writeln!(
            out,
            "stored    {} ({} bytes)",
            output::size(s.stored_bytes),
            s.stored_bytes
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
