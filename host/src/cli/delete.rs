//! `tapedeck delete ID`: remove a tape (capability `delete`).

use super::{Context, check_id, output, require_capability, tape_error};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::store::TapeStore;

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The tape's id.
    id: String,
}

pub async fn run(ctx: &mut Context, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    check_id(&args.id)?;
    let store = ctx.store().await?;
    let can = store.provider_info().capabilities.delete;
    require_capability(&store, can, "delete", "delete tapes")?;
    store
        .delete(&args.id)
        .await
        .map_err(|e| tape_error(e, &store, &args.id))?;
    if ctx.json {
        output::print_json(&serde_json::json!({ "deleted": args.id, "provider": store.name() }))?;
    } else {
        writeln!(
            std::io::stdout(),
            "deleted tape {} from provider {}",
            args.id,
            store.name()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
