//! The default provider, compiled from `guest-examples/providers/fs` by the
//! build script and embedded in the binary, and the configuration tapedeck
//! uses when the operator gives none.

use crate::sandbox::{ComponentSource, DirGrant, Grants, ProviderSpec};
use std::sync::Arc;

/// The filesystem provider component.
pub static FS_PROVIDER_WASM: &[u8] = include_bytes!(env!("TAPEDECK_FS_PROVIDER_WASM"));

/// Name of the embedded provider in configuration and messages.
pub const DEFAULT_PROVIDER: &str = "fs";

/// Host directory the default provider is granted when it exists (relative
/// to the working directory, or to the configuration file's directory),
/// read-write; see [`default_tapes_dir`].
pub const DEFAULT_TAPES_DIR: &str = "tapes";

/// Where the default provider keeps tapes when nothing says otherwise
/// (`--tapes-dir`, `TAPEDECK_TAPES_DIR` or an `fs` provider in the
/// configuration do):
///
/// 1. `tapes` under `base` (the working directory, or the configuration
///    file's directory), if that directory exists: a project's own tapes;
/// 2. else the user's data directory, `$XDG_DATA_HOME/tapedeck/tapes`, else
///    `~/.local/share/tapedeck/tapes` (created on first use): the same place
///    whichever directory an MCP client starts tapedeck in;
/// 3. else (no `HOME`) `tapes` under `base`.
pub fn default_tapes_dir(base: &std::path::Path) -> std::path::PathBuf {
    let local = base.join(DEFAULT_TAPES_DIR);
    if local.is_dir() {
        return std::path::PathBuf::from(DEFAULT_TAPES_DIR);
    }
    user_data_dir().map_or_else(
        || std::path::PathBuf::from(DEFAULT_TAPES_DIR),
        |d| d.join("tapedeck").join(DEFAULT_TAPES_DIR),
    )
}

/// `$XDG_DATA_HOME` (if absolute), else `~/.local/share`.
pub(crate) fn user_data_dir() -> Option<std::path::PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_absolute());
    xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| std::path::PathBuf::from(h).join(".local/share"))
    })
}

/// Guest path of that directory.
pub const DEFAULT_GUEST_DIR: &str = "/tapes";

/// The source of the embedded provider.
pub fn fs_provider_source() -> ComponentSource {
    ComponentSource::Bytes {
        label: "embedded fs provider".into(),
        bytes: Arc::from(FS_PROVIDER_WASM),
    }
}

/// The embedded fs provider granted `host_dir` (read-write, created if
/// missing) at `/tapes` and nothing else, with default limits.
pub fn fs_provider_spec(host_dir: impl Into<std::path::PathBuf>) -> ProviderSpec {
    ProviderSpec::new(DEFAULT_PROVIDER, fs_provider_source())
        .with_config(serde_json::json!({ "root": DEFAULT_GUEST_DIR }))
        .with_grants(Grants {
            dirs: vec![DirGrant::read_write(host_dir, DEFAULT_GUEST_DIR)],
            ..Grants::default()
        })
}
