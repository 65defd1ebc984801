//! A tapedeck storage provider that keeps tapes in PostgreSQL, as a
//! `wasm32-wasip2` component. It speaks the PostgreSQL wire protocol itself
//! over `wasi:sockets` TCP, so the operator grants it exactly one endpoint
//! (`grants.network = ["tcp://db.example:5432"]`) and nothing else.
//!
//! - `config.rs`: settings (host, port, database, user, password, schema).
//! - `wire.rs`: the client (login, pipelines of prepared statements).
//! - `schema.rs`: tables, indexes and functions, versioned migrations.
//! - `store.rs`: the operations in SQL, with reconnect-and-retry.
//!
//! Many recorder processes, each with its own instances, write to one
//! database at once: every acknowledged change is committed, appends lock
//! only their own tape's row, and `(tape_id, seq)` is the frames' key.

use std::cell::RefCell;

mod config;
#[path = "../../fs-provider/src/convert.rs"]
mod convert;
mod schema;
mod store;
mod wire;

wit_bindgen::generate!({ path: "../../wit", world: "provider" });

use exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, Guest, GuestTapeWriter, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary, TapeWriter,
};
use store::{PgStore, WriterState};
use tapedeck::storage::log::{Level, emit};

thread_local! {
    /// The store opened by `init` (a component instance is single-threaded).
    static STORE: RefCell<Option<PgStore>> = const { RefCell::new(None) };
}

/// Logs a warning to the host.
pub(crate) fn log_warn(message: &str) {
    emit(Level::Warn, message);
}

/// Runs `f` on the store, converting its result to the component types.
fn with_store<T, U: From<T>>(
    f: impl FnOnce(&mut PgStore) -> Result<T, tapedeck_types::StorageError>,
) -> Result<U, StorageError> {
    STORE.with_borrow_mut(|s| match s.as_mut() {
        Some(store) => f(store).map(U::from).map_err(StorageError::from),
        None => Err(StorageError::Internal(
            "the postgres provider was called before a successful init".into(),
        )),
    })
}

/// The exported `tape-storage` interface.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct PgProvider;

impl Guest for PgProvider {
    type TapeWriter = Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        let config = config::Config::from_json(&config)?;
        let summary = format!(
            "postgres store: {} database {:?} schema {:?} as {:?} (schema version {})",
            config.endpoint(),
            config.database,
            config.schema,
            config.user,
            schema::LATEST
        );
        let store = PgStore::open(config)?;
        STORE.with_borrow_mut(|s| *s = Some(store));
        emit(Level::Debug, &summary);
        Ok(ProviderInfo {
            name: "postgres".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: tapedeck_types::Capabilities {
                delete: true,
                search: true,
                text_search: true,
            }
            .into(),
        })
    }

    fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
        let header: tapedeck_types::TapeHeader = header.into();
        let w: WriterState = with_store(|s| s.create(&header))?;
        Ok(TapeWriter::new(Writer(RefCell::new(w))))
    }

    fn resume(id: String) -> Result<TapeWriter, StorageError> {
        let w: WriterState = with_store(|s| s.resume(&id))?;
        Ok(TapeWriter::new(Writer(RefCell::new(w))))
    }

    fn save(
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let frames: Vec<tapedeck_types::Frame> = frames.into_iter().map(Into::into).collect();
        with_store(|s| s.save(&header.into(), &frames, &summary.into(), reason.into()))
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        with_store(|s| s.get(&id))
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        let frames: Vec<tapedeck_types::Frame> =
            with_store(|s| s.read_frames(&id, from_seq, max_frames, max_bytes))?;
        Ok(frames.into_iter().map(Into::into).collect())
    }

    fn delete(id: String) -> Result<(), StorageError> {
        with_store(|s| s.delete(&id))
    }

    fn list(
        filter: TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        with_store(|s| s.list(&filter.into(), cursor.as_deref(), limit))
    }

    fn search(
        query: SearchQuery,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        with_store(|s| s.search(&query.into(), cursor.as_deref(), limit))
    }

    fn stats() -> Result<StorageStats, StorageError> {
        with_store(|s| s.stats())
    }
}

/// The `tape-writer` resource.
struct Writer(RefCell<WriterState>);

impl GuestTapeWriter for Writer {
    fn next_seq(&self) -> u64 {
        self.0.borrow().next_seq()
    }

    fn append(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        let frames: Vec<tapedeck_types::Frame> = frames.into_iter().map(Into::into).collect();
        with_store(|s| s.append(&mut self.0.borrow_mut(), &frames))
    }

    fn finish(&self, summary: TapeSummary, reason: EndReason) -> Result<TapeInfo, StorageError> {
        with_store(|s| s.finish(&self.0.borrow(), &summary.into(), reason.into()))
    }

    fn abort(&self, _reason: String) -> Result<(), StorageError> {
        with_store(|s| s.abort(&self.0.borrow()))
    }
}

#[cfg(target_arch = "wasm32")]
export!(PgProvider);
