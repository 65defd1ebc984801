//! `tapedeck search`: tapes matching header conditions and frame contents,
//! walked and printed page by page as `list` does.

use super::list::{FilterArgs, PageArgs, print_pages};
use super::{Context, require_capability};
use clap::Args;
use std::process::ExitCode;
use tapedeck::store::{TapePages, TapeStore};
use tapedeck::types::SearchQuery;

/// Arguments of `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only tapes with a JSON-RPC request or notification of this method
    /// (e.g. tools/call). Needs the provider capability `search`.
    #[arg(long, value_name = "M")]
    method: Option<String>,
    /// Only tapes with a frame whose raw payload contains STR
    /// (case-sensitive). Needs the provider capability `text-search`.
    #[arg(long, value_name = "STR")]
    text: Option<String>,
    #[command(flatten)]
    pages: PageArgs,
}

pub async fn run(ctx: &mut Context, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let query = SearchQuery {
        filter: args.filter.filter(),
        method: args.method,
        text: args.text,
    };
    let caps = store.provider_info().capabilities;
    let frame_conditions = query.method.is_some() || query.text.is_some();
    if query.method.is_some() {
        require_capability(&store, caps.search, "search", "search by --method")?;
    }
    if query.text.is_some() {
        require_capability(
            &store,
            caps.search && caps.text_search,
            "text-search",
            "search by --text",
        )?;
    }
    let mut pages = if frame_conditions {
        TapePages::search(&store, query)
    } else {
        // Header conditions only: `list` answers that, on any provider.
        TapePages::list(&store, query.filter)
    }
    .provider_name(store.name());
    print_pages(ctx, &mut pages, &args.pages).await?;
    Ok(ExitCode::SUCCESS)
}
