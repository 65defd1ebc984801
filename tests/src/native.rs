//! [`NativeFsStore`]: the fs provider's storage logic ([`fs_store::FsStore`])
//! behind the host's [`TapeStore`] trait, run natively instead of in the
//! sandbox.
//!
//! It is the reference the conformance suite runs against in `cargo test`,
//! and the native baseline of the benchmarks, so it adds nothing but the
//! trait plumbing: when its future is first polled, every call runs the
//! synchronous `FsStore` method on the calling task (blocking that task for
//! the duration of its file I/O, so use a multi-thread runtime), and a
//! [`StorageError`] becomes [`ProviderError::Storage`] naming `fs-native`.

use fs_store::{FsConfig, FsStore, FsWriter};
use std::path::Path;
use tapedeck::error::ProviderError;
use tapedeck::store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageError, StorageStats, TapeAppend,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary,
};

/// The provider name [`NativeFsStore`] reports, and puts in its errors.
pub const PROVIDER: &str = "fs-native";

fn storage(error: StorageError) -> ProviderError {
    ProviderError::Storage {
        provider: PROVIDER.to_string(),
        error,
    }
}

/// An [`FsStore`] as a [`TapeStore`].
#[derive(Debug, Clone)]
pub struct NativeFsStore {
    store: FsStore,
    info: ProviderInfo,
}

impl NativeFsStore {
    /// Opens an fs store (see [`FsStore::open`]).
    pub fn open(config: FsConfig) -> Result<Self, StorageError> {
        FsStore::open(config).map(Self::new)
    }

    /// Wraps an open store.
    pub fn new(store: FsStore) -> Self {
        NativeFsStore {
            store,
            info: ProviderInfo {
                name: PROVIDER.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                capabilities: FsStore::capabilities(),
            },
        }
    }

    /// The wrapped store.
    pub fn fs(&self) -> &FsStore {
        &self.store
    }
}

/// The native fs store in `dir`, without fsync: for tests, and as the
/// benchmarks' baseline (so the disk's sync latency does not hide the
/// sandbox's cost).
pub fn unsynced(dir: &Path) -> NativeFsStore {
    NativeFsStore::open(FsConfig {
        root: dir.to_path_buf(),
        fsync: false,
    })
    .unwrap()
}

/// An [`FsWriter`] as a [`TapeWriter`].
#[derive(Debug)]
pub struct NativeFsWriter(FsWriter);

impl NativeFsWriter {
    /// The wrapped writer.
    pub fn fs(&self) -> &FsWriter {
        &self.0
    }
}

impl TapeStore for NativeFsStore {
    type Writer = NativeFsWriter;

    fn provider_info(&self) -> &ProviderInfo {
        &self.info
    }

    async fn create(&self, header: TapeHeader) -> ProviderResult<NativeFsWriter> {
        self.store
            .create(header)
            .map(NativeFsWriter)
            .map_err(storage)
    }

    async fn resume(&self, id: &str) -> ProviderResult<NativeFsWriter> {
        self.store.resume(id).map(NativeFsWriter).map_err(storage)
    }

    async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        self.store
            .save(header, frames, &summary, reason)
            .map_err(storage)
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        self.store.get(id).map_err(storage)
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        self.store
            .read_frames(id, from_seq, max_frames, max_bytes)
            .map_err(storage)
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        self.store.delete(id).map_err(storage)
    }

    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.store.list(filter, cursor, limit).map_err(storage)
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.store.search(query, cursor, limit).map_err(storage)
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        self.store.stats().map_err(storage)
    }

    /// fs-store's own `append_many` (one pass over all entries); each
    /// entry's error becomes a [`ProviderError::Storage`].
    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        Ok(self
            .store
            .append_many(appends)
            .into_iter()
            .map(|r| r.map_err(storage))
            .collect())
    }
}

impl TapeWriter for NativeFsWriter {
    fn id(&self) -> &str {
        self.0.id()
    }

    fn next_seq(&self) -> u64 {
        self.0.next_seq()
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        self.0.append(frames).map_err(storage)
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        self.0.finish(&summary, reason).map_err(storage)
    }

    async fn abort(&mut self, reason: &str) -> ProviderResult<()> {
        self.0.abort(reason).map_err(storage)
    }
}
