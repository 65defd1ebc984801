//! `tapedeck list`: tapes newest first, paged through the provider's cursors.
//! Also the filter options and paging shared with `search`.

use super::{Context, output, parse_tag, time};
use clap::Args;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::store::{ProviderResult, TapeStore};
use tapedeck::types::{TapeFilter, TapeInfo, TapePage, TapeState};

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
    /// Every matching tape, as `--all` asks.
    pub fn every() -> Self {
        PageArgs {
            limit: 1,
            all: true,
        }
    }
}

fn parse_time_arg(s: &str) -> Result<u64, String> {
    time::parse_time(s, time::now_us())
}

fn parse_state(s: &str) -> Result<TapeState, String> {
    TapeState::parse(s)
        .ok_or_else(|| format!("{s:?} is not a state (recording, finished, aborted, crashed)"))
}

/// The tapes of up to `limit` tapes (all with `None`) fetched page by page
/// with `fetch(cursor, page_size)`, and whether more remained.
pub async fn collect<F, Fut>(
    pages: &PageArgs,
    mut fetch: F,
) -> ProviderResult<(Vec<TapeInfo>, bool)>
where
    F: FnMut(Option<String>, u32) -> Fut,
    Fut: Future<Output = ProviderResult<TapePage>>,
{
    /// The contract's largest page.
    const MAX_PAGE: u64 = 1000;
    let limit = (!pages.all).then_some(pages.limit);
    let mut out: Vec<TapeInfo> = Vec::new();
    let mut cursor = None;
    loop {
        let want = limit.map_or(MAX_PAGE, |l| (l - out.len() as u64).min(MAX_PAGE));
        let page = fetch(cursor, want as u32).await?;
        out.extend(page.tapes);
        cursor = page.next_cursor;
        let full = limit.is_some_and(|l| out.len() as u64 >= l);
        if cursor.is_none() || full {
            return Ok((out, cursor.is_some()));
        }
    }
}

/// Prints tapes as a table (or `[]`-style JSON with `--json`).
pub fn print_tapes(ctx: &Context, tapes: &[TapeInfo], more: bool) -> anyhow::Result<()> {
    if ctx.json {
        let list: Vec<serde_json::Value> = tapes.iter().map(output::tape_json).collect();
        return output::print_json(&list);
    }
    let text = if tapes.is_empty() {
        "no tapes\n".to_string()
    } else {
        output::tape_table(tapes)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if more {
        eprintln!("(more tapes match: use --limit N or --all)");
    }
    Ok(())
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
    let filter = args.filter.filter();
    let (tapes, more) = collect(&args.pages, |cursor, limit| {
        let (store, filter) = (&store, &filter);
        async move { store.list(filter, cursor.as_deref(), limit).await }
    })
    .await?;
    print_tapes(ctx, &tapes, more)?;
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
