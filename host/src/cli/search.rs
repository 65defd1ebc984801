//! `tapedeck search`: tapes matching header conditions and frame contents.

use super::list::{FilterArgs, PageArgs, collect, print_tapes};
use super::{Context, require_capability};
use clap::Args;
use std::process::ExitCode;
use tapedeck::store::TapeStore;
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
    let (tapes, more) = collect(&args.pages, |cursor, limit| {
        let (store, query) = (&store, &query);
        async move {
            if frame_conditions {
                store.search(query, cursor.as_deref(), limit).await
            } else {
                // Header conditions only: `list` answers that, on any provider.
                store.list(&query.filter, cursor.as_deref(), limit).await
            }
        }
    })
    .await?;
    print_tapes(ctx, &tapes, more)?;
    Ok(ExitCode::SUCCESS)
}
