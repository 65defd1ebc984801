//! The recorder: turns lines crossing an MCP stdio session into frames and
//! streams them, in batches, to a [`crate::store::TapeStore`] without ever
//! making the forwarding wait on storage.
//!
//! - [`Recorder`] starts recordings on one store; any number may run at once
//!   in one process (each is a [`Recording`] handle plus one small tokio task,
//!   no thread).
//! - [`Recording::record`] numbers, stamps and queues a frame and returns at
//!   once; the task (`batcher.rs`) batches frames to the provider and retries
//!   failed appends; [`Recording::finish`] stores the rest and finishes the
//!   tape with its [`DigestChain`] digest.
//! - [`proxy::run_proxy`] runs an MCP server over stdio, forwarding and
//!   recording every line both ways.

mod batcher;
pub mod digest;
mod error;
mod line;
mod meta;
pub mod proxy;
mod recording;

pub use digest::{DigestChain, DigestMismatch};
pub use error::RecordError;
pub use meta::TapeMeta;
pub use proxy::{ProxyError, ProxyOutcome, run_proxy};
pub use recording::{Recording, RecordingOutcome, WriteStats};

use crate::error::ProviderError;
use crate::store::TapeStore;
use crate::units::{ByteSize, Millis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tapedeck_types::TapeHeader;

/// How the recorder batches frames to its provider (`[recorder]` in the
/// configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecorderOptions {
    /// Most frames in one `append` call. Default 256.
    pub batch_frames: u64,
    /// Most payload bytes in one `append` call (a single larger frame is
    /// sent alone). Default 1 MiB.
    pub batch_bytes: ByteSize,
    /// Longest a recorded frame waits before its batch is sent. Default 20 ms.
    pub flush_interval: Millis,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            batch_frames: 256,
            batch_bytes: ByteSize(1 << 20),
            flush_interval: Millis(20),
        }
    }
}

/// Starts recordings on one store.
///
/// Cheap to clone (the store is shared). Recordings run on the tokio runtime
/// [`start`](Recorder::start) is called on.
pub struct Recorder<S: TapeStore + 'static> {
    store: Arc<S>,
    options: RecorderOptions,
}

impl<S: TapeStore + 'static> Clone for Recorder<S> {
    fn clone(&self) -> Self {
        Recorder {
            store: self.store.clone(),
            options: self.options.clone(),
        }
    }
}

impl<S: TapeStore + 'static> Recorder<S> {
    /// A recorder writing to `store`, batching as `options` say.
    pub fn new(store: Arc<S>, options: RecorderOptions) -> Self {
        Recorder { store, options }
    }

    /// The store tapes are written to.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The batching options.
    pub fn options(&self) -> &RecorderOptions {
        &self.options
    }

    /// Creates a tape (id: a new UUIDv7; created now) in state `recording`
    /// and returns its handle. Fails if the provider refuses `create`.
    pub async fn start(&self, meta: TapeMeta) -> Result<Recording, ProviderError> {
        let header = TapeHeader {
            id: uuid::Uuid::now_v7().to_string(),
            session_id: meta.session_id,
            name: meta.name,
            tags: meta.tags,
            created_at_us: line::now_us(),
        };
        let id = header.id.clone();
        let writer = self.store.create(header).await?;
        Ok(Recording::spawn(
            id,
            self.store.clone(),
            writer,
            &self.options,
        ))
    }
}
