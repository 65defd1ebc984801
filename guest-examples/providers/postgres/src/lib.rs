//! A tapedeck storage provider that keeps tapes in PostgreSQL, as a
//! `wasm32-wasip2` component. It speaks the PostgreSQL wire protocol itself
//! over `wasi:sockets` TCP, so the operator grants it exactly one endpoint
//! (`grants.network = ["tcp://db.example:5432"]`) and nothing else.
//!
//! - `config.rs`: settings (host, port, database, user, password, schema).
//! - `wire.rs`: the client (login, pipelines of prepared statements).
//! - `schema.rs`: tables, indexes and functions, versioned migrations.
//! - `store.rs`: the operations in SQL, with reconnect-and-retry.
//! - this file: the store as a [`tapedeck_guest_sdk::TapeStorage`], which
//!   makes the exports and the conversions.
//!
//! Many recorder processes, each with its own instances, write to one
//! database at once: every acknowledged change is committed, appends lock
//! only their own tape's row, and `(tape_id, seq)` is the frames' key.
//!
//! Payloads are stored and searched as bytes and never parsed: `search`
//! matches the index terms the host gives with each frame.

mod config;
#[cfg(test)]
mod live_tests;
mod schema;
mod store;
mod wire;

use store::{PgStore, WriterState};
use tapedeck_guest_sdk::{
    Capabilities, EndReason, Frame, ProviderInfo, SearchQuery, StorageError, StorageStats,
    TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeStorage, TapeSummary, TapeWriter,
    log,
};

/// The store `init` opened: [`PgStore`] holds the connection, and writers
/// work through it.
struct Postgres(PgStore);

impl TapeStorage for Postgres {
    type Writer = WriterState;

    fn init(config: &str) -> Result<Self, StorageError> {
        let config = config::Config::from_json(config)?;
        let summary = format!(
            "postgres store: {} database {:?} schema {:?} as {:?} (schema version {})",
            config.endpoint(),
            config.database,
            config.schema,
            config.user,
            schema::LATEST
        );
        let store = PgStore::open(config)?;
        log::debug(&summary);
        Ok(Postgres(store))
    }

    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "postgres".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities {
                delete: true,
                search: true,
                text_search: true,
            },
        }
    }

    fn create(&mut self, header: TapeHeader) -> Result<WriterState, StorageError> {
        self.0.create(&header)
    }

    fn resume(&mut self, id: &str) -> Result<WriterState, StorageError> {
        self.0.resume(id)
    }

    fn save(
        &mut self,
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        self.0.save(&header, &frames, &summary, reason)
    }

    fn get(&mut self, id: &str) -> Result<TapeInfo, StorageError> {
        self.0.get(id)
    }

    /// All entries in one transaction (see [`PgStore::append_many`]).
    fn append_many(&mut self, appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        self.0.append_many(&appends)
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

/// The `tape-writer` resource: the tape's id and count, written through the
/// store's connection.
impl TapeWriter<Postgres> for WriterState {
    fn next_seq(&mut self, _: &mut Postgres) -> u64 {
        WriterState::next_seq(self)
    }

    fn append(&mut self, store: &mut Postgres, frames: Vec<Frame>) -> Result<u64, StorageError> {
        store.0.append(self, &frames)
    }

    fn finish(
        &mut self,
        store: &mut Postgres,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        store.0.finish(self, &summary, reason)
    }

    fn abort(&mut self, store: &mut Postgres, _reason: &str) -> Result<(), StorageError> {
        store.0.abort(self)
    }
}

tapedeck_guest_sdk::export_provider!(Postgres);
