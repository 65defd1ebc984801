//! The host's view of a storage provider: the [`TapeStore`] trait.
//!
//! Everything above the sandbox (the recorder, the CLI, the conformance suite)
//! talks to storage through this trait. [`crate::sandbox::WasmProvider`]
//! implements it by calling into a sandboxed component; the benchmarks
//! implement it natively over the same storage logic to measure the cost of the
//! sandbox alone.

use crate::error::ProviderError;
use std::future::Future;
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeSummary,
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

/// Pieces for the unit tests' fake stores.
#[cfg(test)]
pub(crate) mod fake {
    use super::{ProviderResult, TapeWriter};
    use crate::error::ProviderError;
    use tapedeck_types::{EndReason, Frame, StorageError, TapeInfo, TapeSummary};

    /// The `unsupported` storage error of a fake provider called `fake`.
    pub(crate) fn unsupported<T>() -> ProviderResult<T> {
        Err(ProviderError::Storage {
            provider: "fake".into(),
            error: StorageError::unsupported("fake"),
        })
    }

    /// A writer that refuses everything, for fakes that never write.
    pub(crate) struct NoWriter;

    impl TapeWriter for NoWriter {
        fn id(&self) -> &str {
            "fake"
        }
        fn next_seq(&self) -> u64 {
            0
        }
        async fn append(&mut self, _: &[Frame]) -> ProviderResult<u64> {
            unsupported()
        }
        async fn finish(&mut self, _: TapeSummary, _: EndReason) -> ProviderResult<TapeInfo> {
            unsupported()
        }
        async fn abort(&mut self, _: &str) -> ProviderResult<()> {
            unsupported()
        }
    }
}
