//! `tapedeck-store`: the host's view of a storage provider, with no
//! sandbox in it.
//!
//! - [`TapeStore`] / [`TapeWriter`]: the operations of the WIT contract as
//!   async Rust. Everything above the sandbox (the recorder, the CLI, the
//!   conformance suite, programs embedding tapedeck) talks to storage
//!   through them; `tapedeck`'s `WasmProvider` implements them by calling
//!   into a sandboxed component, the benchmarks natively over the same
//!   storage logic.
//! - [`ProviderError`] (`error`): what a provider reported versus what the
//!   host did to it, with [`ProviderError::is_permanent`].
//! - [`DigestChain`] (`digest`): the SHA-256 chain over a tape's frames.
//! - [`read`]: reading a tape verified against its digest ([`TapeReader`],
//!   [`FrameStream`]), page by page in bounded memory.
//! - [`TapePages`] (`paging`): walks the pages of a `list` or `search` in
//!   bounded memory and ends a walk whose cursors repeat or make no
//!   progress; every caller that follows cursors uses it.
//! - [`Starting`]: a store still being started, usable at once.
//! - [`Layer`] / [`WriterLayer`]: a store or writer over another that
//!   forwards every call except those it changes.
//! - [`keys`] / [`seal`] / [`envelope`]: ed25519 host keys, the seal the
//!   host puts on a tape (which a provider can neither make nor check) and
//!   the host's envelope on a header (which says the tape is sealed).
//! - [`codec`]: tapes stored compressed and encrypted, with blind index
//!   terms, by a layer below the seal ([`codec::Codec`]), and the host's
//!   tape keys ([`codec::TapeKeys`]).
//! - [`reserved`]: host-only directories (the spool) no provider may be
//!   granted, checked wherever a provider starts or a spool opens.
//! - [`text`]: provider text made safe to show on a terminal (escaped,
//!   bounded).
//! - `testing` (feature `testing`): an in-memory store for tests.

pub mod codec;
pub mod envelope;
pub mod error;
pub mod keys;
mod layer;
pub mod paging;
pub mod read;
pub mod reserved;
pub mod seal;
mod starting;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;

pub use error::ProviderError;
pub use layer::{Layer, WriterLayer};
pub use paging::{PageLimits, TapePages};
pub use read::{FrameStream, TapeReader};
pub use starting::Starting;
/// The tape digest (defined in `tapedeck-types`, so that Rust guests
/// share it): a SHA-256 hash chain over every frame.
pub use tapedeck_types::digest;
pub use tapedeck_types::digest::{DigestChain, DigestMismatch};

use std::future::Future;
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeAppend, TapeFilter, TapeHeader,
    TapeInfo, TapePage, TapeSummary,
};

/// Result of a provider call.
pub type ProviderResult<T> = Result<T, ProviderError>;

/// A tape store: the operations of the `tape-storage` WIT interface, as async
/// Rust. See `wit/tape-storage.wit` for the contract of every operation.
pub trait TapeStore: Send + Sync {
    /// A writer streaming frames into one tape.
    type Writer: TapeWriter + 'static;

    /// What the provider said about itself at `init`.
    fn provider_info(&self) -> &ProviderInfo;

    /// Start a new tape in state `recording`.
    fn create(
        &self,
        header: TapeHeader,
    ) -> impl Future<Output = ProviderResult<Self::Writer>> + Send;

    /// Continue a tape that is still `recording`.
    fn resume(&self, id: &str) -> impl Future<Output = ProviderResult<Self::Writer>> + Send;

    /// Store a whole tape at once, atomically.
    fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send;

    /// Header, state and totals of one tape.
    fn get(&self, id: &str) -> impl Future<Output = ProviderResult<TapeInfo>> + Send;

    /// Frames from `from_seq` on, bounded by `max_frames` and `max_bytes`.
    fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> impl Future<Output = ProviderResult<Vec<Frame>>> + Send;

    /// Remove a tape (capability `delete`).
    fn delete(&self, id: &str) -> impl Future<Output = ProviderResult<()>> + Send;

    /// One page of the tapes matching `filter`, newest first.
    fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send;

    /// One page of the tapes matching `query` (capability `search`).
    fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send;

    /// Totals over all tapes.
    fn stats(&self) -> impl Future<Output = ProviderResult<StorageStats>> + Send;

    /// Append frames to several tapes that are recording, in one call (the
    /// recorder batches many recordings): for each entry, what `resume` then
    /// `append` would do, one result per entry in the order given (see
    /// `append-many` in the WIT contract). The outer error is for the call
    /// as a whole (the provider trapped, timed out, broke the contract).
    fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> impl Future<Output = ProviderResult<Vec<ProviderResult<u64>>>> + Send;

    /// The host keys whose seals readers of this store check tapes
    /// against ([`read`]), when the store seals ([`seal::Sealing`]).
    /// Default: none (a reader then verifies digests only and reports no
    /// tape as verified).
    fn trusted_hosts(&self) -> Option<&seal::TrustedHosts> {
        None
    }

    /// True while the store is still being started ([`Starting`]): calls
    /// would wait for it. A caller with other work to keep doing meanwhile
    /// (the recorder syncs its spool) checks this and waits on
    /// [`until_started`](TapeStore::until_started) beside that work.
    /// Default: false.
    fn starting(&self) -> bool {
        false
    }

    /// Resolves once [`starting`](TapeStore::starting) is false (the start
    /// succeeded or failed). Default: at once.
    fn until_started(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Streams frames into one tape; see `resource tape-writer` in the WIT contract.
pub trait TapeWriter: Send {
    /// The tape's id.
    fn id(&self) -> &str;

    /// The sequence number the next frame must carry (frames stored so far).
    fn next_seq(&self) -> u64;

    /// Append consecutive frames; frames below `next_seq` are skipped as
    /// already stored. Returns the new `next_seq`.
    fn append(&mut self, frames: &[Frame]) -> impl Future<Output = ProviderResult<u64>> + Send;

    /// Make every frame durable and end the tape.
    fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send;

    /// Give up the recording; the tape becomes `aborted`.
    fn abort(&mut self, reason: &str) -> impl Future<Output = ProviderResult<()>> + Send;
}
