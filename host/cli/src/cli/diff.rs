//! `tapedeck diff A B`: two tapes compared request by request (see
//! [`tapedeck::replay::compare`]): what only one asked, which answers
//! changed and where, which tools changed. Exit 0 when nothing differs, 1
//! otherwise (as diff(1)).

use super::{Context, output, resolve_tape};
use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::replay::{self, ReplayOptions, json::Difference, json::JsonPath};

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first tape (id, `latest`, a unique id prefix or a name).
    #[arg(value_name = "A")]
    a: String,
    /// The second tape.
    #[arg(value_name = "B")]
    b: String,
    /// A member left out of the comparison (JSON pointer or dotted; `*`
    /// matches any member or item); repeatable. `_meta` is always left out.
    #[arg(long, value_name = "PATH", value_parser = JsonPath::parse)]
    ignore: Vec<JsonPath>,
}

fn differences_json(ds: &[Difference]) -> serde_json::Value {
    ds.iter()
        .map(|d| serde_json::json!({ "path": d.path, "a": d.recorded, "b": d.got }))
        .collect()
}

pub async fn run(ctx: &mut Context, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let a = resolve_tape(&store, &args.a).await?.header.id;
    let b = resolve_tape(&store, &args.b).await?.header.id;
    let options = ReplayOptions {
        ignore: args.ignore,
        ..ReplayOptions::default()
    };
    let d = replay::diff(&store, &a, &b, &options)
        .await
        .with_context(|| format!("cannot compare tapes {a} and {b}"))?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let line = serde_json::json!({
            "a": a, "b": b, "same": d.same,
            "removed": d.removed.iter().map(|(s, w)| serde_json::json!({"seq": s, "request": w})).collect::<Vec<_>>(),
            "added": d.added.iter().map(|(s, w)| serde_json::json!({"seq": s, "request": w})).collect::<Vec<_>>(),
            "changed": d.changed.iter().map(|c| serde_json::json!({
                "request": c.what, "seq_a": c.seqs.0, "seq_b": c.seqs.1,
                "differences": differences_json(&c.differences),
            })).collect::<Vec<_>>(),
            "tools_added": d.tools_added, "tools_removed": d.tools_removed,
            "tools_changed": d.tools_changed.iter().map(|t| serde_json::json!({
                "name": t.name, "differences": differences_json(&t.differences),
            })).collect::<Vec<_>>(),
            "notifications": d.notifications.iter().map(|(m, x, y)| serde_json::json!({"method": m, "a": x, "b": y})).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    } else {
        // Everything below is tape content, stored by providers: escaped.
        let p = |s: &str| output::printable(s).into_owned();
        for (seq, what) in &d.removed {
            writeln!(out, "- only in A (frame {seq}): {}", p(what))?;
        }
        for (seq, what) in &d.added {
            writeln!(out, "+ only in B (frame {seq}): {}", p(what))?;
        }
        for c in &d.changed {
            writeln!(
                out,
                "~ answered differently (frames {} / {}): {}",
                c.seqs.0,
                c.seqs.1,
                p(&c.what)
            )?;
            for x in &c.differences {
                writeln!(
                    out,
                    "    {}",
                    p(&x.to_string()
                        .replacen("recorded", "A", 1)
                        .replacen(", got", ", B", 1))
                )?;
            }
        }
        for t in &d.tools_removed {
            writeln!(out, "- tool only in A: {}", p(t))?;
        }
        for t in &d.tools_added {
            writeln!(out, "+ tool only in B: {}", p(t))?;
        }
        for t in &d.tools_changed {
            writeln!(out, "~ tool changed: {}", p(&t.name))?;
            for x in &t.differences {
                writeln!(
                    out,
                    "    {}",
                    p(&x.to_string()
                        .replacen("recorded", "A", 1)
                        .replacen(", got", ", B", 1))
                )?;
            }
        }
        for (m, x, y) in &d.notifications {
            writeln!(out, "~ `{}` notifications: {x} in A, {y} in B", p(m))?;
        }
        writeln!(
            out,
            "tapes {a} (A) and {b} (B): {} request(s) alike, {} changed, {} only in A, {} only in B",
            d.same,
            d.changed.len(),
            d.removed.len(),
            d.added.len()
        )?;
    }
    Ok(if d.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
