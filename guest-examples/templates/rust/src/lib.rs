//! A template tapedeck storage provider in Rust.
//!
//! `wit_bindgen::generate!` turns `wit/` (tapedeck's contract) into Rust
//! traits; this file implements them by delegating to [`store`], which holds
//! the storage logic: per-tape directories under the granted root, frames as
//! CRC'd records in an append-only file, a sparse seek index and an index
//! of the host's terms. It never parses a payload (payloads may be
//! ciphertext); `serde_json` reads only the configuration and the
//! provider's own files. Configuration: `root` (default `/tapes`) and `fsync` (default
//! `true`).
//!
//! This template is stand-alone, to be copied out of the repository, so it
//! writes the 15 exports itself. The short way is the guest SDK,
//! `guest-examples/sdk` (crate `tapedeck-guest-sdk`): it has the bindings,
//! the conversions to `tapedeck-types` and the exports, and a provider on it
//! implements its `TapeStorage` trait and adds one line,
//! `tapedeck_guest_sdk::export_provider!(MyStore);` (as
//! `guest-examples/providers/fs` does).

use std::cell::RefCell;

mod store;

wit_bindgen::generate!({
    path: "wit",
    world: "provider",
    // For comparing what comes back with what went in (the tests).
    additional_derives: [PartialEq, Eq],
});

use exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, Guest, GuestTapeWriter, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary, TapeWriter,
};
use tapedeck::storage::types::Capabilities;

thread_local! {
    /// The store `init` opened (an instance is single-threaded).
    static STORE: RefCell<Option<store::Store>> = const { RefCell::new(None) };
}

fn with_store<T>(
    f: impl FnOnce(&store::Store) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    STORE.with_borrow(|s| match s {
        Some(s) => f(s),
        None => Err(StorageError::Internal(
            "called before a successful init".into(),
        )),
    })
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "exported only in wasm")
)]
struct Provider;

impl Guest for Provider {
    type TapeWriter = Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        let s = store::Store::open(&config)?;
        STORE.with_borrow_mut(|slot| *slot = Some(s));
        Ok(ProviderInfo {
            name: "rust-template".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::DELETE | Capabilities::SEARCH | Capabilities::TEXT_SEARCH,
        })
    }

    fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
        with_store(|s| s.create(header)).map(|w| TapeWriter::new(Writer(RefCell::new(w))))
    }

    fn resume(id: String) -> Result<TapeWriter, StorageError> {
        with_store(|s| s.resume(&id)).map(|w| TapeWriter::new(Writer(RefCell::new(w))))
    }

    fn save(
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        with_store(|s| s.save(header, &frames, &summary, reason))
    }

    fn append_many(appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        STORE.with_borrow(|s| match s {
            Some(s) => s.append_many(&appends),
            None => appends
                .iter()
                .map(|_| {
                    Err(StorageError::Internal(
                        "called before a successful init".into(),
                    ))
                })
                .collect(),
        })
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        with_store(|s| s.info(&id))
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        with_store(|s| s.read_frames(&id, from_seq, max_frames, max_bytes))
    }

    fn delete(id: String) -> Result<(), StorageError> {
        with_store(|s| s.delete(&id))
    }

    fn list(
        filter: TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        with_store(|s| s.page(&|i| store::matches(&filter, i), cursor.as_deref(), limit))
    }

    fn search(
        query: SearchQuery,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        with_store(|s| {
            let matches = |i: &TapeInfo| {
                store::matches(&query.filter, i)
                    && s.has_terms(&i.header.id, i.frame_count, &query.terms)
                    && query
                        .text
                        .as_ref()
                        .is_none_or(|t| s.contains_text(&i.header.id, t.as_bytes()))
            };
            s.page(&matches, cursor.as_deref(), limit)
        })
    }

    fn stats() -> Result<StorageStats, StorageError> {
        with_store(|s| s.stats())
    }
}

/// The `tape-writer` resource.
struct Writer(RefCell<store::Writer>);

impl GuestTapeWriter for Writer {
    fn next_seq(&self) -> u64 {
        self.0.borrow().count
    }

    fn append(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        with_store(|s| self.0.borrow_mut().append(s, &frames))
    }

    fn finish(&self, summary: TapeSummary, reason: EndReason) -> Result<TapeInfo, StorageError> {
        with_store(|s| self.0.borrow_mut().finish(s, &summary, reason))
    }

    fn abort(&self, _reason: String) -> Result<(), StorageError> {
        with_store(|s| self.0.borrow_mut().abort(s))
    }
}

#[cfg(target_arch = "wasm32")]
export!(Provider);
