//! tapedeck's end-to-end tests, in one test binary (`cargo test -p
//! tapedeck-tests --test all`): every suite links wasmtime, so one binary
//! with a module per suite links it once (as wasmtime's and ripgrep's own
//! test suites do). `cargo test -p tapedeck-tests --test all hostile::`
//! runs one suite.
//!
//! The suites share the process, so none may change what is process-wide:
//! no `std::env::set_var`, no global `tracing` subscriber (capture logs per
//! test with `tapedeck_tests::log_capture`, on a current-thread runtime), no
//! signal handler, no change of the working directory, no lowered resource
//! limit (a child process may lower its own, as `tapedeck-cli`'s
//! address-space test does). A suite that needs one of these is a binary of
//! its own in `tests/Cargo.toml`, saying why.

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]

mod c_bindings;
mod cli_migrate;
mod cli_providers;
mod conformance_languages;
mod conformance_mutants;
mod conformance_native;
mod conformance_wasm;
mod faults;
mod hostile;
mod mcp_clients;
mod network;
mod postgres;
mod private_tapes;
mod provider_new;
mod proxy;
mod recorder;
mod replay;
mod sandbox;
mod seals;
mod template_mutants;

use std::path::{Path, PathBuf};
use tapedeck_tests::cli::{self, Tapedeck};

/// The component cache of this target's tests, shared by every suite (and
/// by `tapedeck-cli`'s), so each component compiles once.
fn cache_dir() -> PathBuf {
    cli::shared_cache(env!("CARGO_TARGET_TMPDIR"))
}

/// The `tapedeck` binary in `dir`, isolated, its compiled components
/// cached in [`cache_dir`].
fn tapedeck_in(dir: &Path) -> Tapedeck {
    cli::tapedeck(dir, &cache_dir())
}
