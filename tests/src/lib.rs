//! Support code for tapedeck's shared test suites: the guest components built
//! from source, and a native adapter over the fs provider's storage logic.

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]
#![deny(missing_docs)]

pub mod artifacts;
pub mod cli;
pub mod log_capture;
pub mod mcp_sdk;
pub mod native;
pub use tapedeck_pg_server as postgres;
pub mod recording;
pub mod suite;
pub mod tape;
pub mod timed;
pub mod workload;

use std::path::{Path, PathBuf};

/// `tests/fixtures/NAME`: a file the end-to-end tests share (the echo
/// server, the demo session).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Every byte of every file under `dir`, concatenated: what a provider
/// stored there, for a test to grep.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Runs `f` to completion on a new current-thread runtime (for a
/// synchronous test that needs a few async calls).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}
