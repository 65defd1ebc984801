//! `tapedeck show ID [--frames] [--no-verify]`: one tape's header, state,
//! totals and digest, optionally its frames, and whether the frames the
//! provider returns are intact (see [`tapedeck::integrity`]; a mismatch is
//! an error, exit 1).

use super::{Context, output, read_tape, resolve_id, tape_error};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::integrity::IntegrityError;
use tapedeck::jsonl::EncodedFrame;
use tapedeck::store::TapeStore;
use tapedeck::types::{Direction, Frame, TapeInfo};

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The tape's id, or `latest` for the newest tape.
    id: String,
    /// Also print the frames: sequence number, time, direction (→ client to
    /// server, ← server to client) and payload. With --json, the object gets
    /// a "frame_list" array of frames encoded as in the JSONL export.
    #[arg(long)]
    frames: bool,
    /// Do not check the frames against the tape's totals and digest: show
    /// whatever the provider returns, to rescue data from a damaged tape.
    #[arg(long)]
    no_verify: bool,
}

pub async fn run(ctx: &mut Context, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let id = resolve_id(&store, &args.id).await?;
    let info = store
        .get(&id)
        .await
        .map_err(|e| tape_error(e, &store, &id))?;
    let verify = !args.no_verify;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if ctx.json {
        let serde_json::Value::Object(fields) = output::tape_json(&info) else {
            unreachable!("tape_json builds an object")
        };
        // Written field by field so the frames can stream after them.
        out.write_all(b"{")?;
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut out, key)?;
            out.write_all(b":")?;
            serde_json::to_writer(&mut out, value)?;
        }
        let result = if args.frames {
            out.write_all(b",\"frame_list\":[")?;
            let mut first = true;
            let result = read_tape(&store, &info, verify, |page| {
                for f in &page {
                    if !std::mem::take(&mut first) {
                        out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut out, &EncodedFrame::new(f))?;
                }
                Ok(())
            })
            .await;
            out.write_all(b"]")?;
            result
        } else {
            read_tape(&store, &info, verify, |_| Ok(())).await
        };
        // A failed check still ends the document, saying what failed.
        let integrity = match &result {
            Ok(v) => output::integrity_json(Ok(v)),
            Err(e) => match e.downcast_ref::<IntegrityError>() {
                Some(e) => output::integrity_json(Err(e)),
                // The provider failed: nothing to conclude.
                None => return Err(result.unwrap_err()),
            },
        };
        out.write_all(b",\"integrity\":")?;
        serde_json::to_writer(&mut out, &integrity)?;
        out.write_all(b"}\n")?;
        out.flush()?;
        result?;
    } else {
        out.write_all(header(&info).as_bytes())?;
        let result = if args.frames {
            writeln!(out)?;
            let result = read_tape(&store, &info, verify, |page| {
                for f in &page {
                    writeln!(out, "{}", frame_line(f))?;
                }
                Ok(())
            })
            .await;
            if let Ok(v) = &result {
                if v.frames() == 0 {
                    writeln!(out, "(no frames)")?;
                }
                writeln!(out)?;
            }
            result
        } else {
            read_tape(&store, &info, verify, |_| Ok(())).await
        };
        // What was printed stays printed; an error goes to stderr.
        out.flush()?;
        let verification = result?;
        writeln!(out, "{}", line("integrity", &verification.to_string()))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The header block: one `key  value` line per fact.
fn header(t: &TapeInfo) -> String {
    let h = &t.header;
    let mut lines = vec![
        ("tape", h.id.clone()),
        ("name", output::printable(&h.name).into_owned()),
        ("session", output::printable(&h.session_id).into_owned()),
        ("tags", output::tags(&h.tags)),
        ("created", output::time(h.created_at_us)),
    ];
    if let Some(end) = t.ended_at_us {
        lines.push((
            "ended",
            format!(
                "{} (after {})",
                output::time(end),
                output::duration(end.saturating_sub(h.created_at_us))
            ),
        ));
    }
    lines.extend([
        ("state", t.state.as_str().to_string()),
        ("frames", t.frame_count.to_string()),
        (
            "bytes",
            format!("{} ({} bytes)", output::size(t.byte_count), t.byte_count),
        ),
        ("digest", t.digest.clone().unwrap_or_else(|| "none".into())),
    ]);
    lines.into_iter().map(|(k, v)| line(k, &v) + "\n").collect()
}

/// One `key  value` line of the header block (without the newline).
fn line(key: &str, value: &str) -> String {
    format!("{key:<9} {value}")
}

/// `     3  2026-11-24 10:03:12.123  →  {"jsonrpc":…}`; a payload that is
/// not UTF-8 shows as `<N bytes binary>`, and `[not json]` marks lines that
/// were not JSON.
fn frame_line(f: &Frame) -> String {
    let arrow = match f.direction {
        Direction::ClientToServer => "→",
        Direction::ServerToClient => "←",
    };
    let payload = match std::str::from_utf8(&f.payload) {
        Ok("") => "<empty>".to_string(),
        Ok(s) => output::printable(s).into_owned(),
        Err(_) => format!("<{} bytes binary>", f.payload.len()),
    };
    let flag = if f.not_json { "[not json] " } else { "" };
    format!(
        "{:>6}  {}  {arrow}  {flag}{payload}",
        f.seq,
        output::time_ms(f.timestamp_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck::types::{TapeHeader, TapeState};

    fn frame(payload: &[u8], direction: Direction, not_json: bool) -> Frame {
        Frame {
            seq: 7,
            timestamp_us: 1_795_514_592_123_000,
            direction,
            payload: payload.to_vec(),
            not_json,
        }
    }

    #[test]
    fn frame_lines() {
        assert_eq!(
            frame_line(&frame(
                br#"{"method":"ping"}"#,
                Direction::ClientToServer,
                false
            )),
            r#"     7  2026-11-24 10:03:12.123  →  {"method":"ping"}"#
        );
        assert_eq!(
            frame_line(&frame(b"oops\n", Direction::ServerToClient, true)),
            r"     7  2026-11-24 10:03:12.123  ←  [not json] oops\n"
        );
        assert_eq!(
            frame_line(&frame(b"\xff\x00\x01", Direction::ServerToClient, true)),
            "     7  2026-11-24 10:03:12.123  ←  [not json] <3 bytes binary>"
        );
    }

    #[test]
    fn header_block() {
        let info = TapeInfo {
            header: TapeHeader {
                id: "t1".into(),
                session_id: "s1".into(),
                name: "demo".into(),
                tags: vec![("env".into(), "ci".into())],
                created_at_us: 1_795_514_592_000_000,
            },
            state: TapeState::Finished,
            frame_count: 3,
            byte_count: 2048,
            ended_at_us: Some(1_795_514_700_000_000),
            digest: None,
        };
        assert_eq!(
            header(&info),
            "tape      t1\nname      demo\nsession   s1\ntags      env=ci\n\
             created   2026-11-24 10:03:12 UTC\nended     2026-11-24 10:05:00 UTC (after 1m 48s)\n\
             state     finished\nframes    3\nbytes     2.0 KiB (2048 bytes)\ndigest    none\n"
        );
    }
}
