//! [`TimedStore`]: any [`TapeStore`], with the duration of every writer
//! `append` recorded, so a benchmark can report append latency under load
//! (the 1,000-recordings figure) without instrumenting the recorder.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapedeck::store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeSummary,
};

/// Append durations, shared by a store and its writers.
pub type Samples = Arc<Mutex<Vec<Duration>>>;

/// A [`TapeStore`] that times its writers' appends.
pub struct TimedStore<S> {
    inner: S,
    samples: Samples,
}

impl<S> TimedStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        TimedStore {
            inner,
            samples: Samples::default(),
        }
    }

    /// The append durations so far, taken out (the store keeps counting).
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// A writer whose appends are timed.
pub struct TimedWriter<W> {
    inner: W,
    samples: Samples,
}

impl<W: TapeWriter> TapeWriter for TimedWriter<W> {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let start = Instant::now();
        let r = self.inner.append(frames).await;
        self.samples.lock().unwrap().push(start.elapsed());
        r
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        self.inner.finish(summary, reason).await
    }

    async fn abort(&mut self, reason: &str) -> ProviderResult<()> {
        self.inner.abort(reason).await
    }
}

impl<S: TapeStore> TapeStore for TimedStore<S> {
    type Writer = TimedWriter<S::Writer>;

    fn provider_info(&self) -> &ProviderInfo {
        self.inner.provider_info()
    }

    async fn create(&self, header: TapeHeader) -> ProviderResult<Self::Writer> {
        let inner = self.inner.create(header).await?;
        Ok(TimedWriter {
            inner,
            samples: self.samples.clone(),
        })
    }

    async fn resume(&self, id: &str) -> ProviderResult<Self::Writer> {
        let inner = self.inner.resume(id).await?;
        Ok(TimedWriter {
            inner,
            samples: self.samples.clone(),
        })
    }

    async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        self.inner.save(header, frames, summary, reason).await
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        self.inner.get(id).await
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        self.inner
            .read_frames(id, from_seq, max_frames, max_bytes)
            .await
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        self.inner.delete(id).await
    }

    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.inner.list(filter, cursor, limit).await
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.inner.search(query, cursor, limit).await
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        self.inner.stats().await
    }
}
