//! tapedeck's default storage provider, `fs`: tapes as append-only files in
//! a directory, as a `wasm32-wasip2` component.
//!
//! This crate is only the component boundary: [`tapedeck_guest_sdk`] makes
//! the exports and the type conversions, and every call is delegated to
//! [`fs_store::FsStore`], which holds all the storage logic (and is tested
//! natively), `append-many` included. It parses no payload: `search`
//! matches the terms the host gives with each frame.
//!
//! Configuration (the provider's `config` table): `root`, the directory the
//! operator granted (default `/tapes`), and `fsync` (default `true`).

use fs_store::{FsConfig, FsStore, FsWriter};
use tapedeck_guest_sdk::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageError, StorageStats, TapeAppend,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeStorage, TapeSummary, TapeWriter, log,
};

/// The store `init` opened.
struct Fs(FsStore);

impl TapeStorage for Fs {
    type Writer = FsWriter;

    fn init(config: &str) -> Result<Self, StorageError> {
        let config = FsConfig::from_json(config)?;
        let root = config.root.display().to_string();
        let fsync = config.fsync;
        let store = FsStore::open(config)?;
        log::debug(&format!(
            "fs store opened at {root} (fsync {})",
            if fsync { "on" } else { "off" }
        ));
        Ok(Fs(store))
    }

    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "fs".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: FsStore::capabilities(),
        }
    }

    fn create(&mut self, header: TapeHeader) -> Result<FsWriter, StorageError> {
        self.0.create(header)
    }

    fn resume(&mut self, id: &str) -> Result<FsWriter, StorageError> {
        self.0.resume(id)
    }

    fn save(
        &mut self,
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        self.0.save(header, &frames, &summary, reason)
    }

    fn get(&mut self, id: &str) -> Result<TapeInfo, StorageError> {
        self.0.get(id)
    }

    fn read_frames(
        &mut self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        self.0.read_frames(id, from_seq, max_frames, max_bytes)
    }

    fn delete(&mut self, id: &str) -> Result<(), StorageError> {
        self.0.delete(id)
    }

    fn list(
        &mut self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.0.list(filter, cursor, limit)
    }

    fn search(
        &mut self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.0.search(query, cursor, limit)
    }

    fn stats(&mut self) -> Result<StorageStats, StorageError> {
        self.0.stats()
    }

    /// fs-store's own: one lock and one catalog refresh for all entries,
    /// each appended through the tape's writer in this instance if there is
    /// one (see [`FsStore::append_many`]).
    fn append_many(&mut self, appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        self.0.append_many(&appends)
    }
}

/// The `tape-writer` resource: an [`FsWriter`] needs nothing from the store.
impl TapeWriter<Fs> for FsWriter {
    fn next_seq(&mut self, _: &mut Fs) -> u64 {
        FsWriter::next_seq(self)
    }

    fn append(&mut self, _: &mut Fs, frames: Vec<Frame>) -> Result<u64, StorageError> {
        FsWriter::append(self, &frames)
    }

    fn finish(
        &mut self,
        _: &mut Fs,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        FsWriter::finish(self, &summary, reason)
    }

    fn abort(&mut self, _: &mut Fs, reason: &str) -> Result<(), StorageError> {
        FsWriter::abort(self, reason)
    }
}

tapedeck_guest_sdk::export_provider!(Fs);
