//! `tapedeck-recorder`: turns lines crossing an MCP stdio session into frames and
//! streams them, in batches, to a [`tapedeck_store::TapeStore`] without ever
//! making the forwarding wait on storage.
//!
//! - [`Recorder`] starts recordings on one store; any number may run at once
//!   in one process (each is a [`Recording`] handle plus one small tokio task,
//!   no thread).
//! - [`Recording::record`] numbers and stamps a frame, writes it to the
//!   tape's spool file (with [`Recorder::with_spool`]; see [`crate::spool`]
//!   for the durability guarantee) and queues it, and returns at once; the
//!   task (`batcher.rs`) batches frames to the provider, retries failed calls
//!   with jittered backoff behind a shared [`CircuitBreaker`], and redelivers
//!   frames a provider lost; [`Recording::finish`] stores the rest, finishes
//!   the tape with its [`DigestChain`] digest, checks it and releases the
//!   spool file.
//! - [`proxy::run_proxy`] runs an MCP server over stdio, forwarding and
//!   recording every line both ways.
//! - [`spool`]: the host's spool (every frame on the host's disk before it
//!   is forwarded) and recovery.
//!
//! It works over any [`tapedeck_store::TapeStore`] and knows nothing of the
//! sandbox; `tapedeck` runs it over its sandboxed providers.

mod backoff;
mod batcher;
mod breaker;
mod collector;
mod error;
pub mod event;
mod line;
mod meta;
pub mod proxy;
mod recording;
pub mod spool;

pub use breaker::{BreakerState, CircuitBreaker};
pub use error::RecordError;
pub use event::{EndCause, HostEvent, ServerExit};
pub use meta::TapeMeta;
pub use proxy::{
    Proxy, ProxyError, ProxyOptions, ProxyOutcome, SignalSender, Signals, Stored, run_proxy,
};
pub use recording::{Finishing, Recording, RecordingOutcome, WriteStats};
pub use tapedeck_store::digest;
pub use tapedeck_store::digest::{DigestChain, DigestMismatch};

use crate::spool::{ProviderKey, Spool, SpoolError};
use collector::Collector;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tapedeck_redact::Redactor;
use tapedeck_store::TapeStore;
use tapedeck_store::error::ProviderError;
use tapedeck_types::TapeHeader;
use tapedeck_types::units::{ByteSize, Millis};

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
    /// The host's spool directory (see [`crate::spool`]); relative to the
    /// configuration file's directory. Default: [`Spool::default_dir`]; the
    /// `TAPEDECK_SPOOL_DIR` environment variable overrides both.
    pub spool_dir: Option<PathBuf>,
    /// Longest a frame written to the spool waits to be synced to disk: what
    /// a power loss can cost. Frames are delivered to the provider only once
    /// synced. Default 20 ms.
    pub spool_sync: Millis,
    /// Once a recording ends, how long delivery and `finish` may go without
    /// a successful call before the rest is left to recovery (in the spool).
    /// Default 10 s.
    pub end_timeout: Millis,
    /// After `finish`, read the tape back and check it against its digest
    /// before the spool lets go of it, so a provider that stores something
    /// else than it was given is caught while the frames still exist.
    /// Default true.
    pub verify_on_finish: bool,
    /// `tapedeck record`: once tapedeck has passed a termination signal
    /// (`SIGTERM`, `SIGINT`, `SIGHUP`) on to the server, how long the server
    /// has to exit before its process group is killed. MCP clients send
    /// `SIGKILL` 2 s after `SIGTERM`, so tapedeck must be done before that.
    /// Default 1 s.
    pub exit_grace: Millis,
    /// `tapedeck record`: most bytes of the server's stderr kept in the tape
    /// (as host events); the rest is only passed through. Default 64 KiB.
    pub stderr_capture: ByteSize,
    /// Send the batches of all of this recorder's recordings together, in
    /// shared `append-many` calls (one transaction or file-system pass for
    /// many recordings; see `collector`), instead of one `append` per
    /// recording. Default true.
    pub batch_recordings: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            batch_frames: 256,
            batch_bytes: ByteSize(1 << 20),
            flush_interval: Millis(20),
            spool_dir: None,
            spool_sync: Millis(20),
            end_timeout: Millis(10_000),
            verify_on_finish: true,
            exit_grace: Millis(1000),
            stderr_capture: ByteSize(64 << 10),
            batch_recordings: true,
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
    breaker: Arc<CircuitBreaker>,
    spool: Option<(Spool, ProviderKey)>,
    /// Made on the first recording (on its runtime) when
    /// `batch_recordings` is on.
    collector: Arc<OnceLock<Arc<Collector>>>,
    /// Applied to every line before it is spooled or stored.
    redactor: Option<Arc<Redactor>>,
}

impl<S: TapeStore + 'static> Clone for Recorder<S> {
    fn clone(&self) -> Self {
        Recorder {
            store: self.store.clone(),
            options: self.options.clone(),
            breaker: self.breaker.clone(),
            spool: self.spool.clone(),
            collector: self.collector.clone(),
            redactor: self.redactor.clone(),
        }
    }
}

impl<S: TapeStore + 'static> Recorder<S> {
    /// A recorder writing to `store`, batching as `options` say, without a
    /// spool: frames wait for the provider in memory only, so a crash of
    /// this process loses those not yet stored. See
    /// [`with_spool`](Recorder::with_spool).
    pub fn new(store: Arc<S>, options: RecorderOptions) -> Self {
        Recorder {
            store,
            options,
            breaker: Arc::new(CircuitBreaker::default()),
            spool: None,
            collector: Arc::new(OnceLock::new()),
            redactor: None,
        }
    }

    /// Redacts every recorded line with `redactor` before it reaches the
    /// spool or the store (the forwarded line is untouched): see
    /// [`tapedeck_redact`]. Without it, lines are recorded as they are.
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// The redactor applied to recorded lines, if any.
    pub fn redactor(&self) -> Option<&Arc<Redactor>> {
        self.redactor.as_ref()
    }

    /// Spools every frame in `spool` before it is forwarded (see
    /// [`crate::spool`] for the guarantee); `key` identifies the store's
    /// storage, so recovery delivers to the same place.
    pub fn with_spool(mut self, spool: Spool, key: ProviderKey) -> Self {
        self.spool = Some((spool, key));
        self
    }

    /// The circuit breaker shared by this recorder's recordings.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The store tapes are written to.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The shared `append-many` collector, when recordings are batched
    /// together (made here, on the caller's runtime, the first time).
    fn collector(&self) -> Option<Arc<Collector>> {
        self.options.batch_recordings.then(|| {
            self.collector
                .get_or_init(|| Arc::new(Collector::spawn(self.store.clone())))
                .clone()
        })
    }

    /// The batching options.
    pub fn options(&self) -> &RecorderOptions {
        &self.options
    }

    /// Starts a recording without waiting for the provider, when the
    /// recorder has a spool: the spool file is created (and synced) and the
    /// recording's task creates the tape at the provider, retrying until it
    /// can (a provider still starting, or down, costs no time here).
    /// Without a spool this is [`start`](Recorder::start).
    pub async fn start_spooled(&self, meta: TapeMeta) -> Result<Recording, StartError> {
        let Some((spool, key)) = &self.spool else {
            return self.start(meta).await;
        };
        let header = new_header(meta);
        let spool = Arc::new(spool.create_file(key, &header)?);
        Ok(Recording::spawn(
            batcher::Setup {
                store: self.store.clone(),
                header,
                writer: None,
                spool: Some(spool),
                breaker: self.breaker.clone(),
                collector: self.collector(),
            },
            &self.options,
            self.redactor.clone(),
        ))
    }

    /// Creates a tape (id: a new UUIDv7; created now) in state `recording`
    /// and returns its handle.
    ///
    /// With a spool, the tape's spool file is created (and synced) first;
    /// if the provider then fails `create` in a way a retry may fix, the
    /// recording starts all the same and its task creates the tape later.
    /// Fails if the spool file cannot be created, or the provider refuses
    /// `create` for good (or fails it, without a spool).
    pub async fn start(&self, meta: TapeMeta) -> Result<Recording, StartError> {
        let header = new_header(meta);
        let spool = match &self.spool {
            Some((spool, key)) => Some(Arc::new(spool.create_file(key, &header)?)),
            None => None,
        };
        let writer = match self.store.create(header.clone()).await {
            Ok(w) => Some(w),
            Err(e) if spool.is_some() && !batcher::is_permanent(&e) => {
                tracing::warn!(
                    target: "tapedeck::recorder",
                    tape = %header.id,
                    "creating the tape failed ({e}); recording into the spool, the tape will be created when the provider recovers"
                );
                None
            }
            Err(e) => {
                if let Some(spool) = spool.and_then(|s| Arc::try_unwrap(s).ok()) {
                    let _ = spool.release();
                }
                return Err(StartError::Provider(e));
            }
        };
        Ok(Recording::spawn(
            batcher::Setup {
                store: self.store.clone(),
                header,
                writer,
                spool,
                breaker: self.breaker.clone(),
                collector: self.collector(),
            },
            &self.options,
            self.redactor.clone(),
        ))
    }
}

/// The header of a new tape: a fresh UUIDv7, created now.
fn new_header(meta: TapeMeta) -> TapeHeader {
    TapeHeader {
        id: uuid::Uuid::now_v7().to_string(),
        session_id: meta.session_id,
        name: meta.name,
        tags: meta.tags,
        created_at_us: line::now_us(),
        envelope: None,
    }
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The provider refused or failed `create`.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The tape's spool file could not be created.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}
