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
pub mod postgres;
pub mod recording;
pub mod suite;
pub mod timed;
pub mod workload;
