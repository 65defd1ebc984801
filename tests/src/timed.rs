//! [`TimedStore`]: any [`TapeStore`], with the duration of every writer
//! `append` (and of every `append_many` call, one sample per call)
//! recorded, so a benchmark can report append latency under load (the
//! 1,000-recordings figure) without instrumenting the recorder. A
//! [`Layer`]: only `append` and `append_many` are its own, everything else
//! is forwarded.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tapedeck::store::{Layer, ProviderResult, TapeStore, TapeWriter, WriterLayer};
use tapedeck_types::{Frame, TapeAppend};

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
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A writer whose appends are timed.
pub struct TimedWriter<W> {
    inner: W,
    samples: Samples,
}

impl<W: TapeWriter> WriterLayer for TimedWriter<W> {
    type Inner = W;

    fn inner(&self) -> &W {
        &self.inner
    }

    fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let start = Instant::now();
        let r = self.inner.append(frames).await;
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(start.elapsed());
        r
    }
}

impl<S: TapeStore> Layer for TimedStore<S> {
    type Inner = S;
    type Writer = TimedWriter<S::Writer>;

    fn inner(&self) -> &S {
        &self.inner
    }

    fn wrap_writer(&self, inner: S::Writer) -> Self::Writer {
        TimedWriter {
            inner,
            samples: self.samples.clone(),
        }
    }

    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        let start = Instant::now();
        let r = self.inner.append_many(appends).await;
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(start.elapsed());
        r
    }
}
