//! `init`: the provider's configuration is checked, not guessed at. Needs
//! a [`Harness`](crate::Harness) that can start the provider again.

use super::check::ensure;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::ErrorKind;

/// The setting no provider knows.
const UNKNOWN: &str = "tapedeck-conformance-unknown-setting";

/// A configuration with a setting the provider does not know is refused by
/// `init` with `invalid-input` naming it (a typo must not be ignored).
pub(crate) async fn unknown_setting<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let harness = cx.options.harness.clone().ok_or("no harness")?;
    let mut config = harness.config().unwrap_or_else(|| serde_json::json!({}));
    let Some(table) = config.as_object_mut() else {
        return Err(format!(
            "the provider's configuration is not a JSON object: {config}"
        ));
    };
    table.insert(UNKNOWN.into(), serde_json::Value::Bool(true));
    let call = format!("init with the provider's configuration plus `{UNKNOWN}`");
    match harness.init_with(&config).await {
        None => Err("the harness cannot start the provider again".into()),
        Some(Ok(())) => Err(format!("{call} succeeded, expected `invalid-input`")),
        Some(Err(e)) => {
            ensure!(
                e.storage_kind() == Some(ErrorKind::InvalidInput),
                "{call} failed with `{}`, expected `invalid-input` ({e})",
                e.code()
            );
            ensure!(
                e.to_string().contains(UNKNOWN),
                "{call} failed with `invalid-input` but does not name the setting: {e}"
            );
            Ok(())
        }
    }
}
