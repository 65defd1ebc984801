//! `tapedeck list`: tapes newest first, walked page by page through the
//! provider's cursors ([`TapePages`]) and printed as they come. Also the
//! filter options and the printing shared with `search`.

use super::{Context, output, parse_tag, time};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::store::TapeStore;
use tapedeck::store::paging::{MAX_PAGE, TapePages};
use tapedeck::types::{TapeFilter, TapeInfo, TapeState};

/// Conditions on the tape header and state (`list` and `search`).
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only tapes of this MCP session id.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Only tapes whose name contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,
    /// Only tapes with this tag; repeat to require several.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Only tapes created at or after T: RFC 3339 (2026-11-24T10:00:00Z), a
    /// date (2026-11-24) or a duration ago (30m, 2h, 7d).
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    since: Option<u64>,
    /// Only tapes created before T (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_time_arg)]
    until: Option<u64>,
    /// Only tapes in this state: recording, finished, aborted or crashed.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    state: Option<TapeState>,
}

impl FilterArgs {
    /// The provider-side filter.
    pub fn filter(&self) -> TapeFilter {
        TapeFilter {
            session_id: self.session.clone(),
            name_contains: self.name.clone(),
            tags: self.tags.clone(),
            created_since_us: self.since,
            created_until_us: self.until,
            state: self.state,
        }
    }
}

/// How many tapes to fetch (`list` and `search`).
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Show at most N tapes.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
    /// Show every matching tape (pages through all of them).
    #[arg(long, conflicts_with = "limit")]
    all: bool,
}

impl PageArgs {
    /// The most tapes to show (`None`: all).
    pub fn most(&self) -> Option<u64> {
        (!self.all).then_some(self.limit)
    }
}

fn parse_time_arg(s: &str) -> Result<u64, String> {
    time::parse_time(s, time::now_us())
}

fn parse_state(s: &str) -> Result<TapeState, String> {
    TapeState::parse(s)
        .ok_or_else(|| format!("{s:?} is not a state (recording, finished, aborted, crashed)"))
}

/// Prints the tapes `pages` hands out, page by page as they come, up to
/// what `args` asks for: a table (columns aligned within each page of the
/// provider's, the header once) or, with `--json`, one JSON array written
/// element by element (the same line as a whole array would be). Memory
/// holds one page. A failure midway is returned after what was printed
/// (with `--json`, an array left unclosed, so it does not parse).
pub async fn print_pages<S: TapeStore>(
    ctx: &Context,
    pages: &mut TapePages<'_, S>,
    args: &PageArgs,
) -> anyhow::Result<()> {
    let most = args.most();
    let mut printer = TapePrinter::new(ctx.json);
    loop {
        let want = most.map_or(MAX_PAGE, |m| {
            (m - printer.printed).min(u64::from(MAX_PAGE)) as u32
        });
        let Some(page) = pages.next_page_max(want).await? else {
            break;
        };
        printer.page(&page)?;
        if most.is_some_and(|m| printer.printed >= m) {
            break;
        }
    }
    printer.finish()?;
    if !ctx.json && most.is_some() && pages.has_more() {
        eprintln!("(more tapes match: use --limit N or --all)");
    }
    Ok(())
}

/// Writes tapes to stdout as they come (see [`print_pages`]).
pub struct TapePrinter {
    json: bool,
    /// Tapes printed so far.
    printed: u64,
}

impl TapePrinter {
    /// A printer of a table, or with `json` of one JSON array.
    pub fn new(json: bool) -> Self {
        TapePrinter { json, printed: 0 }
    }

    /// Tapes printed so far.
    pub fn printed(&self) -> u64 {
        self.printed
    }

    /// Prints `tapes`.
    pub fn page(&mut self, tapes: &[TapeInfo]) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            for t in tapes {
                out.write_all(if self.printed == 0 { b"[" } else { b"," })?;
                serde_json::to_writer(&mut out, &output::tape_json(t))?;
                self.printed += 1;
            }
        } else if !tapes.is_empty() {
            let table = output::tape_table(tapes);
            let text = if self.printed == 0 {
                table.as_str()
            } else {
                // The header once, at the top.
                table.split_once('\n').map_or("", |(_, rows)| rows)
            };
            out.write_all(text.as_bytes())?;
            self.printed += tapes.len() as u64;
        }
        out.flush()?;
        Ok(())
    }

    /// Ends the output (closes the JSON array, or says there were none).
    pub fn finish(self) -> anyhow::Result<()> {
        let end: &[u8] = match (self.json, self.printed) {
            (true, 0) => b"[]\n",
            (true, _) => b"]\n",
            (false, 0) => b"no tapes\n",
            (false, _) => b"",
        };
        let mut out = std::io::stdout().lock();
        out.write_all(end)?;
        out.flush()?;
        Ok(())
    }
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    pages: PageArgs,
}

pub async fn run(ctx: &mut Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let mut pages = TapePages::list(&store, args.filter.filter()).provider_name(store.name());
    print_pages(ctx, &mut pages, &args.pages).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(parse_state("crashed"), Ok(TapeState::Crashed));
        assert!(parse_state("done").unwrap_err().contains("finished"));
    }
}
