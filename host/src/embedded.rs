//! The default provider, compiled from `guest-examples/fs-provider` by the
//! build script and embedded in the binary, and the configuration tapedeck
//! uses when the operator gives none.

use crate::sandbox::{ComponentSource, DirGrant, Grants, ProviderSpec};
use std::sync::Arc;

/// The filesystem provider component.
pub static FS_PROVIDER_WASM: &[u8] = include_bytes!(env!("TAPEDECK_FS_PROVIDER_WASM"));

/// Name of the embedded provider in configuration and messages.
pub const DEFAULT_PROVIDER: &str = "fs";

/// Host directory the default provider is granted (relative to the working
/// directory), read-write.
pub const DEFAULT_TAPES_DIR: &str = "tapes";

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
