//! The `tapedeck` library's integration tests, in one test binary (`cargo
//! test -p tapedeck --test all`; `-- deck::` runs one suite): each suite
//! links wasmtime, so one binary links it once. A new suite is a module
//! here; what may not share a process (see `tests/all/main.rs` of the
//! `tapedeck-tests` crate) is a binary of its own.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod deck;
mod provider;
