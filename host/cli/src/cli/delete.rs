//! `tapedeck delete TAPE`: remove a tape (capability `delete`). The tape is
//! named as everywhere else: its id, `latest`, a unique prefix of its id or
//! its name
//! ([`resolve_id`]).

use super::{Context, check_id, output, require_capability, resolve_id, tape_error};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::store::TapeStore;

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The tape: its id, `latest` for the newest tape, a unique prefix of
    /// its id, or its name (the newest tape of that name).
    #[arg(value_name = "TAPE")]
    id: String,
}

/// `tapedeck delete`.
pub async fn run(ctx: &mut Context, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    // An id no provider could hold is refused before starting one.
    check_id(&args.id)?;
    let store = ctx.store().await?;
    let can = store.provider_info().capabilities.delete;
    require_capability(&store, can, "delete", "delete tapes")?;
    let id = resolve_id(&store, &args.id).await?;
    store
        .delete(&id)
        .await
        .map_err(|e| tape_error(e, &store, &id))?;
    if ctx.json {
        output::print_json(&serde_json::json!({ "deleted": id, "provider": store.name() }))?;
    } else {
        writeln!(
            std::io::stdout(),
            "deleted tape {id} from provider {}",
            store.name()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
