//! Replay: a recorded MCP / JSON-RPC session answers a client again,
//! without the server.
//!
//! [`Replayer::new`] indexes a tape's frames once; [`Replayer::handle`]
//! answers each client message in constant time with the recorded server
//! messages it releases, the JSON-RPC ids rewritten to the client's (the
//! rest of each message byte for byte), server-initiated traffic
//! (notifications, progress, sampling or elicitation requests) where it
//! came; a request that matches nothing gets a JSON-RPC error, and the miss
//! keeps its nearest recorded candidates with a structural diff.
//! [`serve`] runs that over a line-delimited stream (stdio). [`drift::check`]
//! sends a tape's client messages to a live server and compares its answers
//! with the recorded ones (`tapedeck verify`).
//!
//! ```
//! use tapedeck_replay::{ReplayOptions, Replayer};
//! use tapedeck_types::{Direction, Frame};
//!
//! let frames = vec![
//!     Frame::new(0, 0, Direction::ClientToServer, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec(), false),
//!     Frame::new(1, 5, Direction::ServerToClient, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec(), false),
//! ];
//! let mut replay = Replayer::new(&frames, ReplayOptions::default()).unwrap();
//! let answer = replay.handle(br#"{"jsonrpc":"2.0","id":"a7","method":"ping"}"#);
//! assert_eq!(answer[0].bytes, br#"{"jsonrpc":"2.0","id":"a7","result":{}}"#);
//! assert!(replay.report().clean(true));
//! ```
//!
//! Nothing here reads storage: the `tapedeck` crate reads a tape through
//! its verified path and hands the frames over.

#![deny(missing_docs)]

pub mod compare;
pub mod drift;
mod engine;
pub mod json;
mod options;
mod serve;

pub use engine::{Miss, Outgoing, ReplayError, Replayer, Report};
pub use options::{Matching, Repeat, ReplayOptions, Timing};
pub use serve::{OnMiss, Tap, serve, serve_with_live};

#[cfg(test)]
mod tests;
