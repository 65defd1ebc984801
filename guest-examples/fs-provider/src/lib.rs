//! tapedeck's default storage provider, `fs`: tapes as append-only files in
//! a directory, as a `wasm32-wasip2` component.
//!
//! This crate is only the component boundary: it converts the generated
//! component-model types to and from `tapedeck-types` (see `convert.rs`) and
//! delegates every call to [`fs_store::FsStore`], which holds all the storage
//! logic (and is tested natively).
//!
//! Configuration (the provider's `config` table): `root`, the directory the
//! operator granted (default `/tapes`), and `fsync` (default `true`).

use std::cell::RefCell;

mod convert;

wit_bindgen::generate!({ path: "../../wit", world: "provider" });

use exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, Guest, GuestTapeWriter, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary, TapeWriter,
};
use fs_store::{FsConfig, FsStore, FsWriter};
use tapedeck::storage::log::{Level, emit};

thread_local! {
    /// The store opened by `init` (a component instance is single-threaded).
    static STORE: RefCell<Option<FsStore>> = const { RefCell::new(None) };
}

/// The store, or an error if `init` has not succeeded.
fn store() -> Result<FsStore, StorageError> {
    STORE.with_borrow(|s| s.clone()).ok_or_else(|| {
        StorageError::Internal("the fs provider was called before a successful init".into())
    })
}

/// Converts a `tapedeck-types` result to its component-model form.
fn wit<T, U: From<T>>(r: Result<T, tapedeck_types::StorageError>) -> Result<U, StorageError> {
    r.map(U::from).map_err(StorageError::from)
}

/// The exported `tape-storage` interface.
// Only exported in the wasm build: natively, symbol names like
// `tapedeck:storage/tape-storage@0.1.0#get` break the linker's version script
// for a cdylib (rust-lang/rust#141310), and nothing native loads this library.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct FsProvider;

impl Guest for FsProvider {
    type TapeWriter = Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        let config = FsConfig::from_json(&config)?;
        let root = config.root.display().to_string();
        let fsync = config.fsync;
        let store = FsStore::open(config)?;
        STORE.with_borrow_mut(|s| *s = Some(store));
        emit(
            Level::Debug,
            &format!(
                "fs store opened at {root} (fsync {})",
                if fsync { "on" } else { "off" }
            ),
        );
        Ok(ProviderInfo {
            name: "fs".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: FsStore::capabilities().into(),
        })
    }

    fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
        let writer = store()?.create(header.into())?;
        Ok(TapeWriter::new(Writer::new(writer)))
    }

    fn resume(id: String) -> Result<TapeWriter, StorageError> {
        let writer = store()?.resume(&id)?;
        Ok(TapeWriter::new(Writer::new(writer)))
    }

    fn save(
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let frames: Vec<tapedeck_types::Frame> = frames.into_iter().map(Into::into).collect();
        wit(store()?.save(header.into(), &frames, &summary.into(), reason.into()))
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        wit(store()?.get(&id))
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        let frames = store()?.read_frames(&id, from_seq, max_frames, max_bytes)?;
        Ok(frames.into_iter().map(Into::into).collect())
    }

    fn delete(id: String) -> Result<(), StorageError> {
        Ok(store()?.delete(&id)?)
    }

    fn list(
        filter: TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        wit(store()?.list(&filter.into(), cursor.as_deref(), limit))
    }

    fn search(
        query: SearchQuery,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        wit(store()?.search(&query.into(), cursor.as_deref(), limit))
    }

    fn stats() -> Result<StorageStats, StorageError> {
        wit(store()?.stats())
    }
}

/// The `tape-writer` resource: an [`FsWriter`] behind a `RefCell`, since
/// resource methods take `&self`.
struct Writer {
    inner: RefCell<FsWriter>,
}

impl Writer {
    fn new(writer: FsWriter) -> Self {
        Writer {
            inner: RefCell::new(writer),
        }
    }
}

impl GuestTapeWriter for Writer {
    fn next_seq(&self) -> u64 {
        self.inner.borrow().next_seq()
    }

    fn append(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        let frames: Vec<tapedeck_types::Frame> = frames.into_iter().map(Into::into).collect();
        Ok(self.inner.borrow_mut().append(&frames)?)
    }

    fn finish(&self, summary: TapeSummary, reason: EndReason) -> Result<TapeInfo, StorageError> {
        wit(self
            .inner
            .borrow_mut()
            .finish(&summary.into(), reason.into()))
    }

    fn abort(&self, reason: String) -> Result<(), StorageError> {
        Ok(self.inner.borrow_mut().abort(&reason)?)
    }
}

#[cfg(target_arch = "wasm32")]
export!(FsProvider);
