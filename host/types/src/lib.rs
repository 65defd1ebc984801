//! The tape data model of tapedeck, shared by the host and by Rust storage providers.
//!
//! These are plain Rust mirrors of the records in `wit/tape-storage.wit`
//! (package `tapedeck:storage`). The host converts between them and the
//! component-model types at the sandbox boundary; a Rust provider can use them
//! for its storage logic so that the same logic also runs natively (the native
//! baseline of the benchmarks).
//!
//! Nothing here does I/O.

#![deny(missing_docs)]

pub mod digest;
mod error;
mod filter;
mod id;
mod method;
mod tape;
pub mod terms;
pub mod units;

pub use digest::{DigestChain, DigestMismatch};
pub use error::{ErrorKind, StorageError};
pub use filter::{SearchQuery, TapeFilter};
pub use id::{MAX_TAPE_ID_LEN, validate_tape_id};
pub use method::json_rpc_method;
pub use tape::{
    Capabilities, Direction, EndReason, Frame, ProviderInfo, StorageStats, TapeAppend, TapeHeader,
    TapeInfo, TapePage, TapeState, TapeSummary,
};
