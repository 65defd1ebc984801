//! The `tapedeck` binary end to end, in one test binary (`cargo test -p
//! tapedeck-cli --test all`; each test binary links wasmtime): one module
//! per suite. The binary under test is the one cargo built for these tests
//! ([`BIN`]), always run isolated through `tapedeck_tests::cli::Tapedeck`.
//!
//! The suites share this process: a test may change what is process-wide
//! (environment, resource limits, signal handlers, working directory) only
//! in the child processes it starts, as `address_space` lowers the address
//! space of the `tapedeck` it runs, never its own.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod address_space;
mod cli;
mod crash;
mod record_cli;
mod redaction_cli;

use std::path::{Path, PathBuf};
use tapedeck_tests::cli::{Tapedeck, shared_cache};

/// The `tapedeck` binary cargo built for these tests.
const BIN: &str = env!("CARGO_BIN_EXE_tapedeck");

/// Compiled components are cached under the target directory, shared by
/// the tests, instead of in the user's cache.
fn cache_dir() -> PathBuf {
    shared_cache(env!("CARGO_TARGET_TMPDIR"))
}

/// [`BIN`] run in `dir`, isolated, caching components in [`cache_dir`].
fn tapedeck_in(dir: &Path) -> Tapedeck {
    Tapedeck::new(BIN, dir, cache_dir())
}
