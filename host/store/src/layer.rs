//! [`Layer`] and [`WriterLayer`]: a store (or writer) that wraps another and
//! forwards every call to it except the ones it changes (the idea of
//! OpenDAL's layers). A feature or a test that instruments or alters one
//! call writes that call, not fourteen forwarders.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use tapedeck_store::{Layer, ProviderResult, TapeStore};
//! use tapedeck_types::TapeInfo;
//!
//! /// Counts `get` calls; everything else goes straight through.
//! struct CountGets<S> {
//!     inner: S,
//!     gets: AtomicU64,
//! }
//!
//! impl<S: TapeStore> Layer for CountGets<S> {
//!     type Inner = S;
//!     type Writer = S::Writer;
//!     fn inner(&self) -> &S {
//!         &self.inner
//!     }
//!     fn wrap_writer(&self, writer: S::Writer) -> S::Writer {
//!         writer
//!     }
//!     async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
//!         self.gets.fetch_add(1, Ordering::Relaxed);
//!         self.inner.get(id).await
//!     }
//! }
//! ```

use crate::{ProviderResult, TapeStore, TapeWriter};
use std::future::Future;
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeAppend, TapeFilter, TapeHeader,
    TapeInfo, TapePage, TapeSummary,
};

/// A store over [`Layer::Inner`]: every [`TapeStore`] operation, forwarded
/// by default; override the ones the layer changes. Every `Layer` is a
/// [`TapeStore`].
pub trait Layer: Send + Sync {
    /// The store wrapped.
    type Inner: TapeStore;
    /// The layer's writers (the inner writer itself, or a [`WriterLayer`]
    /// over it).
    type Writer: TapeWriter + 'static;

    /// The store wrapped.
    fn inner(&self) -> &Self::Inner;

    /// Wraps a writer the inner store made (for `create` and `resume`).
    fn wrap_writer(&self, writer: <Self::Inner as TapeStore>::Writer) -> Self::Writer;

    /// See [`TapeStore::provider_info`].
    fn provider_info(&self) -> &ProviderInfo {
        self.inner().provider_info()
    }

    /// See [`TapeStore::create`].
    fn create(
        &self,
        header: TapeHeader,
    ) -> impl Future<Output = ProviderResult<Self::Writer>> + Send {
        async move { Ok(self.wrap_writer(self.inner().create(header).await?)) }
    }

    /// See [`TapeStore::resume`].
    fn resume(&self, id: &str) -> impl Future<Output = ProviderResult<Self::Writer>> + Send {
        async move { Ok(self.wrap_writer(self.inner().resume(id).await?)) }
    }

    /// See [`TapeStore::save`].
    fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        self.inner().save(header, frames, summary, reason)
    }

    /// See [`TapeStore::get`].
    fn get(&self, id: &str) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        self.inner().get(id)
    }

    /// See [`TapeStore::read_frames`].
    fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> impl Future<Output = ProviderResult<Vec<Frame>>> + Send {
        self.inner()
            .read_frames(id, from_seq, max_frames, max_bytes)
    }

    /// See [`TapeStore::delete`].
    fn delete(&self, id: &str) -> impl Future<Output = ProviderResult<()>> + Send {
        self.inner().delete(id)
    }

    /// See [`TapeStore::list`].
    fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send {
        self.inner().list(filter, cursor, limit)
    }

    /// See [`TapeStore::search`].
    fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send {
        self.inner().search(query, cursor, limit)
    }

    /// See [`TapeStore::stats`].
    fn stats(&self) -> impl Future<Output = ProviderResult<StorageStats>> + Send {
        self.inner().stats()
    }

    /// See [`TapeStore::append_many`].
    fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> impl Future<Output = ProviderResult<Vec<ProviderResult<u64>>>> + Send {
        self.inner().append_many(appends)
    }

    /// See [`TapeStore::trusted_hosts`].
    fn trusted_hosts(&self) -> Option<&crate::seal::TrustedHosts> {
        self.inner().trusted_hosts()
    }

    /// See [`TapeStore::starting`].
    fn starting(&self) -> bool {
        self.inner().starting()
    }

    /// See [`TapeStore::until_started`].
    fn until_started(&self) -> impl Future<Output = ()> + Send {
        self.inner().until_started()
    }
}

impl<L: Layer> TapeStore for L {
    type Writer = L::Writer;

    fn provider_info(&self) -> &ProviderInfo {
        Layer::provider_info(self)
    }
    fn create(
        &self,
        header: TapeHeader,
    ) -> impl Future<Output = ProviderResult<Self::Writer>> + Send {
        Layer::create(self, header)
    }
    fn resume(&self, id: &str) -> impl Future<Output = ProviderResult<Self::Writer>> + Send {
        Layer::resume(self, id)
    }
    fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        Layer::save(self, header, frames, summary, reason)
    }
    fn get(&self, id: &str) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        Layer::get(self, id)
    }
    fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> impl Future<Output = ProviderResult<Vec<Frame>>> + Send {
        Layer::read_frames(self, id, from_seq, max_frames, max_bytes)
    }
    fn delete(&self, id: &str) -> impl Future<Output = ProviderResult<()>> + Send {
        Layer::delete(self, id)
    }
    fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send {
        Layer::list(self, filter, cursor, limit)
    }
    fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = ProviderResult<TapePage>> + Send {
        Layer::search(self, query, cursor, limit)
    }
    fn stats(&self) -> impl Future<Output = ProviderResult<StorageStats>> + Send {
        Layer::stats(self)
    }
    fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> impl Future<Output = ProviderResult<Vec<ProviderResult<u64>>>> + Send {
        Layer::append_many(self, appends)
    }
    fn trusted_hosts(&self) -> Option<&crate::seal::TrustedHosts> {
        Layer::trusted_hosts(self)
    }
    fn starting(&self) -> bool {
        Layer::starting(self)
    }
    fn until_started(&self) -> impl Future<Output = ()> + Send {
        Layer::until_started(self)
    }
}

/// A writer over [`WriterLayer::Inner`]: every [`TapeWriter`] operation,
/// forwarded by default. Every `WriterLayer` is a [`TapeWriter`].
pub trait WriterLayer: Send {
    /// The writer wrapped.
    type Inner: TapeWriter;

    /// The writer wrapped.
    fn inner(&self) -> &Self::Inner;

    /// The writer wrapped, to call it.
    fn inner_mut(&mut self) -> &mut Self::Inner;

    /// See [`TapeWriter::id`].
    fn id(&self) -> &str {
        self.inner().id()
    }

    /// See [`TapeWriter::next_seq`].
    fn next_seq(&self) -> u64 {
        self.inner().next_seq()
    }

    /// See [`TapeWriter::append`].
    fn append(&mut self, frames: &[Frame]) -> impl Future<Output = ProviderResult<u64>> + Send {
        self.inner_mut().append(frames)
    }

    /// See [`TapeWriter::finish`].
    fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        self.inner_mut().finish(summary, reason)
    }

    /// See [`TapeWriter::abort`].
    fn abort(&mut self, reason: &str) -> impl Future<Output = ProviderResult<()>> + Send {
        self.inner_mut().abort(reason)
    }
}

impl<W: WriterLayer> TapeWriter for W {
    fn id(&self) -> &str {
        WriterLayer::id(self)
    }
    fn next_seq(&self) -> u64 {
        WriterLayer::next_seq(self)
    }
    fn append(&mut self, frames: &[Frame]) -> impl Future<Output = ProviderResult<u64>> + Send {
        WriterLayer::append(self, frames)
    }
    fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> impl Future<Output = ProviderResult<TapeInfo>> + Send {
        WriterLayer::finish(self, summary, reason)
    }
    fn abort(&mut self, reason: &str) -> impl Future<Output = ProviderResult<()>> + Send {
        WriterLayer::abort(self, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemStore, sample_frames};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts appends; changes nothing else.
    struct Counting {
        inner: MemStore,
        appends: std::sync::Arc<AtomicU64>,
    }

    struct CountingWriter<W> {
        inner: W,
        appends: std::sync::Arc<AtomicU64>,
    }

    impl Layer for Counting {
        type Inner = MemStore;
        type Writer = CountingWriter<<MemStore as TapeStore>::Writer>;
        fn inner(&self) -> &MemStore {
            &self.inner
        }
        fn wrap_writer(&self, inner: <MemStore as TapeStore>::Writer) -> Self::Writer {
            CountingWriter {
                inner,
                appends: self.appends.clone(),
            }
        }
    }

    impl<W: TapeWriter> WriterLayer for CountingWriter<W> {
        type Inner = W;
        fn inner(&self) -> &W {
            &self.inner
        }
        fn inner_mut(&mut self) -> &mut W {
            &mut self.inner
        }
        async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
            self.appends.fetch_add(1, Ordering::Relaxed);
            self.inner.append(frames).await
        }
    }

    #[tokio::test]
    async fn a_layer_changes_what_it_overrides_and_forwards_the_rest() {
        let store = Counting {
            inner: MemStore::new("mem"),
            appends: Default::default(),
        };
        let header = TapeHeader {
            id: "t".into(),
            session_id: "s".into(),
            name: "n".into(),
            tags: Vec::new(),
            created_at_us: 1,
            envelope: None,
        };
        let mut w = TapeStore::create(&store, header).await.unwrap();
        let frames = sample_frames(3, |s| format!("[{s}]").into_bytes());
        assert_eq!(TapeWriter::append(&mut w, &frames[..2]).await.unwrap(), 2);
        assert_eq!(TapeWriter::append(&mut w, &frames[2..]).await.unwrap(), 3);
        assert_eq!(store.appends.load(Ordering::Relaxed), 2);
        assert_eq!(TapeWriter::next_seq(&w), 3);
        let info = TapeStore::get(&store, "t").await.unwrap();
        assert_eq!(info.frame_count, 3);
        assert_eq!(TapeStore::provider_info(&store).name, "mem");
        let read = TapeStore::read_frames(&store, "t", 0, 10, 1 << 20)
            .await
            .unwrap();
        assert_eq!(read, frames);
    }
}
