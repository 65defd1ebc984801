//! tapedeck: record MCP / JSON-RPC sessions into sandboxed WebAssembly storage
//! providers.
//!
//! The library the `tapedeck` command is built on. Start from [`Deck`]: it
//! goes from a configuration to a running provider behind the host's spool,
//! with every invariant enforced inside (the spool is never granted to a
//! provider, what earlier sessions left in it is recovered first):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tapedeck::{Deck, recorder::TapeMeta, types::Direction};
//!
//! let deck = Deck::builder().tapes_dir("tapes").open().await?;
//! let recording = deck.recorder().start(TapeMeta::named("by hand")).await?;
//! recording.record(Direction::ClientToServer, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec());
//! recording.record(Direction::ServerToClient, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec());
//! let outcome = recording.finish().await?;
//! println!("{} frames in tape {}", outcome.tape.frame_count, outcome.tape.header.id);
//! # Ok(()) }
//! ```
//!
//! [`Deck::record`] runs an MCP stdio server and records its session
//! (`examples/record.rs`). The layers below, usable on their own:
//! [`store`] (crate `tapedeck-store`: the storage API, the tape digest,
//! verified reads), [`sandbox`] (running provider components),
//! [`recorder`] and [`spool`] (recording, durability, recovery),
//! [`conformance`] (the provider test suite), [`migrate`], [`jsonl`],
//! [`config`], [`signing`], [`redaction`], [`encryption`].

#![deny(missing_docs)]

pub mod config;
pub mod deck;
pub mod embedded;
pub mod encryption;
pub mod harness;
pub mod jsonl;
pub mod migrate;
pub mod redaction;
pub mod replay;
pub mod seals;
pub mod signing;
pub mod spool;

pub use deck::{Deck, DeckBuilder, DeckError};
pub use redaction::RedactionSettings;
pub use seals::{HostSeal, SealSettings, Store};
pub use tapedeck_types as types;
/// Sizes and durations in configuration (`tapedeck_types::units`).
pub use tapedeck_types::units;

/// The conformance suite (crate `tapedeck-conformance`).
pub use tapedeck_conformance as conformance;
/// Recording: the recorder, the proxy, host events (crate
/// `tapedeck-recorder`).
pub use tapedeck_recorder as recorder;
/// Taking secrets out of recorded messages (crate `tapedeck-redact`).
pub use tapedeck_redact as redact;
/// Running provider components under grants and limits (crate
/// `tapedeck-sandbox`).
pub use tapedeck_sandbox as sandbox;
/// Process resource limits tapedeck adapts to (`tapedeck_sandbox::rlimit`).
pub use tapedeck_sandbox::rlimit;
/// Starting points for provider authors: `provider new` skeletons and the
/// core module → component step (crate `tapedeck-scaffold`).
pub use tapedeck_scaffold as scaffold;
/// The storage API (crate `tapedeck-store`): [`store::TapeStore`],
/// [`store::Starting`], [`store::TapePages`] and the rest.
pub use tapedeck_store as store;
/// Provider errors (`tapedeck_store::error`).
pub use tapedeck_store::error;
/// Verified reads (`tapedeck_store::read`): a tape checked against its
/// digest as it streams.
pub use tapedeck_store::read;
/// Provider text made safe to show (`tapedeck_store::text`).
pub use tapedeck_store::text;
