//! my-provider: a tapedeck storage provider, made by `tapedeck provider new`.
//!
//! The guest SDK (`vendor/tapedeck-guest-sdk`) does the component-model
//! part: the bindings of `wit/tape-storage.wit`, the conversions and the 15
//! exports. This crate implements its two traits over [`store`], a simple
//! store of one directory per tape ([`records`] has the file formats).
//!
//! The contract's rules are in `wit/tape-storage.wit`; `tapedeck provider
//! test` checks them, naming the rule a failure breaks.

mod records;
mod store;

use tapedeck_guest_sdk::{
    Capabilities, EndReason, Frame, ProviderInfo, SearchQuery, StorageError, StorageStats,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeStorage, TapeSummary, TapeWriter,
};

/// The provider: its store, for the life of the instance.
pub struct Provider(store::Store);

impl TapeStorage for Provider {
    type Writer = store::Writer;

    fn init(config: &str) -> Result<Self, StorageError> {
        store::Store::open(config).map(Provider)
    }

    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "my-provider".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                delete: true,
                search: true,
                text_search: true,
            },
        }
    }

    fn create(&mut self, header: TapeHeader) -> Result<Self::Writer, StorageError> {
        self.0.create(header)
    }

    fn resume(&mut self, id: &str) -> Result<Self::Writer, StorageError> {
        self.0.resume(id)
    }

    fn save(
        &mut self,
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        self.0.save(header, frames, summary, reason)
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
}

impl TapeWriter<Provider> for store::Writer {
    fn next_seq(&mut self, _: &mut Provider) -> u64 {
        store::Writer::next_seq(self)
    }

    fn append(&mut self, _: &mut Provider, frames: Vec<Frame>) -> Result<u64, StorageError> {
        store::Writer::append(self, frames)
    }

    fn finish(
        &mut self,
        provider: &mut Provider,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        store::Writer::finish(self, &provider.0, summary, reason)
    }

    fn abort(&mut self, _: &mut Provider, _reason: &str) -> Result<(), StorageError> {
        store::Writer::abort(self)
    }
}

tapedeck_guest_sdk::export_provider!(Provider);
