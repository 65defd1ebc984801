//! tapedeck: record MCP / JSON-RPC sessions into sandboxed WebAssembly storage
//! providers.

#![deny(missing_docs)]

pub mod config;
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod integrity;
pub mod jsonl;
pub mod migrate;
pub mod recorder;
pub mod rlimit;
pub mod signing;
pub mod spool;
pub mod store;
pub mod text;
pub mod units;

pub use tapedeck_types as types;
pub mod sandbox;
