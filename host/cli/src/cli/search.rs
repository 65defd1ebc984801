//! `tapedeck search`: tapes matching header conditions and frame contents,
//! walked and printed page by page as `list` does.
//!
//! Conditions on frames go to the provider as index terms (contract 0.2):
//! `--method`, `--tool`, `--resource` and `--prompt` become the terms the
//! host gives the frames it records (`tapedeck_types::terms`), `--term` is
//! taken as it is. A tape matches when every term is on some frame of it.

use super::list::{FilterArgs, PageArgs, TapePrinter, print_pages};
use super::{Context, read_tape, require_capability};
use clap::Args;
use std::process::ExitCode;
use tapedeck::Store;
use tapedeck::store::{TapePages, TapeStore};
use tapedeck::types::SearchQuery;
use tapedeck::types::terms::{method_term, prompt_term, resource_term, tool_term};

/// Arguments of `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only tapes with a JSON-RPC request or notification of this method
    /// (e.g. tools/call). Repeatable: every one must be found. Needs the
    /// provider capability `search`.
    #[arg(long, value_name = "M")]
    method: Vec<String>,
    /// Only tapes with a `tools/call` of the tool NAME. Repeatable. Needs
    /// the provider capability `search`.
    #[arg(long, value_name = "NAME")]
    tool: Vec<String>,
    /// Only tapes with a `resources/read` (or subscribe, unsubscribe) of
    /// URI. Repeatable. Needs the provider capability `search`.
    #[arg(long, value_name = "URI")]
    resource: Vec<String>,
    /// Only tapes with a `prompts/get` of the prompt NAME. Repeatable.
    /// Needs the provider capability `search`.
    #[arg(long, value_name = "NAME")]
    prompt: Vec<String>,
    /// Only tapes with a frame carrying the index term RAW, exactly as
    /// stored (e.g. `method:tools/call`). Repeatable. Needs the provider
    /// capability `search`.
    #[arg(long, value_name = "RAW")]
    term: Vec<String>,
    /// Only tapes with a frame whose raw payload contains STR
    /// (case-sensitive). Needs the provider capability `text-search`.
    #[arg(long, value_name = "STR")]
    text: Option<String>,
    #[command(flatten)]
    pages: PageArgs,
}

impl SearchArgs {
    /// The terms every matching tape must carry, in the order of the
    /// options: methods, tools, resources, prompts, raw terms; without
    /// repeats.
    fn terms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = (self.method.iter().map(|m| method_term(m)))
            .chain(self.tool.iter().map(|t| tool_term(t)))
            .chain(self.resource.iter().map(|r| resource_term(r)))
            .chain(self.prompt.iter().map(|p| prompt_term(p)))
            .chain(self.term.iter().cloned());
        for t in all {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

pub async fn run(ctx: &mut Context, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let query = SearchQuery {
        filter: args.filter.filter(),
        terms: args.terms(),
        text: args.text,
    };
    let caps = store.provider_info().capabilities;
    let frame_conditions = !query.terms.is_empty() || query.text.is_some();
    if !query.terms.is_empty() {
        require_capability(
            &store,
            caps.search,
            "search",
            "search by --method, --tool, --resource, --prompt or --term",
        )?;
    }
    if query.text.is_some() && store.codec().settings().encodes() {
        return host_text_search(ctx, &store, query, &args.pages).await;
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

/// `--text` over a provider whose tapes this host stores compressed (and
/// encrypted): the provider cannot match text it cannot read, so this host
/// walks the tapes that match the other conditions, reads each (decoded,
/// as recorded) and keeps those with a frame whose payload contains the
/// text. Slower than a provider's index, and says so.
async fn host_text_search(
    ctx: &Context,
    store: &Store,
    mut query: SearchQuery,
    args: &PageArgs,
) -> anyhow::Result<ExitCode> {
    let text = query.text.take().expect("a text search").into_bytes();
    if !ctx.json {
        eprintln!(
            "tapedeck: provider {} holds its tapes compressed{}, so this host reads each candidate tape to search its text",
            store.name(),
            if store.codec().settings().encrypt_with.is_some() {
                " and encrypted"
            } else {
                ""
            }
        );
    }
    let mut pages = if query.terms.is_empty() {
        TapePages::list(store, query.filter)
    } else {
        TapePages::search(store, query)
    }
    .provider_name(store.name());
    let most = args.most();
    let mut printer = TapePrinter::new(ctx.json);
    'pages: while let Some(page) = pages.next_page().await? {
        let mut hits = Vec::new();
        for info in page {
            let mut found = false;
            read_tape(store, &info, false, |frames| {
                found = found
                    || frames.iter().any(|f| {
                        !text.is_empty() && f.payload.windows(text.len()).any(|w| w == text)
                    });
                Ok(())
            })
            .await?;
            if found {
                hits.push(info);
                if most.is_some_and(|m| printer.printed() + hits.len() as u64 >= m) {
                    printer.page(&hits)?;
                    break 'pages;
                }
            }
        }
        printer.page(&hits)?;
    }
    printer.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SearchArgs,
    }

    fn terms(argv: &[&str]) -> Vec<String> {
        let argv = std::iter::once("search").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap().args.terms()
    }

    #[test]
    fn every_option_becomes_a_term() {
        assert!(terms(&[]).is_empty());
        assert_eq!(terms(&["--method", "tools/call"]), ["method:tools/call"]);
        assert_eq!(
            terms(&[
                "--term",
                "kh:00ff",
                "--prompt",
                "p",
                "--resource",
                "file:///a",
                "--tool",
                "transfer",
                "--method",
                "tools/call",
                "--tool",
                "other",
                "--term",
                "method:tools/call",
            ]),
            [
                "method:tools/call",
                "tool:transfer",
                "tool:other",
                "resource:file:///a",
                "prompt:p",
                "kh:00ff",
            ]
        );
        // The same terms the host gives recorded frames, long values too.
        let long = "x".repeat(400);
        assert_eq!(terms(&["--tool", &long]), [tool_term(&long)]);
        assert_eq!(
            tapedeck::types::terms::payload_terms(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer"}}"#
            ),
            terms(&["--method", "tools/call", "--tool", "transfer"])
        );
    }
}
