//! [`Starting`]: a store that is still being started, usable at once.
//!
//! Starting a sandboxed provider can take seconds (the first use of a
//! component compiles it). A recording must not wait for that: frames go to
//! the spool from the first byte. `Starting` wraps the start in a background
//! task and is a [`TapeStore`] right away: each call waits until the store
//! is up and then runs on it; if the start failed, every call fails with
//! [`ProviderError::NotStarted`], which the recorder does not retry (the
//! frames stay in the spool for the next process that can start it).

use super::{ProviderResult, TapeStore};
use crate::error::ProviderError;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tapedeck_types::{
    Capabilities, EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeAppend,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary,
};
use tokio::sync::Notify;

/// A store being started in the background (see the module docs). Cheap to
/// clone: clones share the start.
pub struct Starting<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Starting<S> {
    fn clone(&self) -> Self {
        Starting {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    /// What `provider_info` says until the store is up.
    placeholder: ProviderInfo,
    started: OnceLock<Result<Arc<S>, ProviderError>>,
    notify: Notify,
}

impl<S: TapeStore + 'static> Starting<S> {
    /// Starts the store `start` makes, on a task of the current tokio
    /// runtime; `provider` names it in errors until it is up.
    pub fn spawn<F>(provider: &str, start: F) -> Self
    where
        F: Future<Output = Result<S, String>> + Send + 'static,
    {
        let starting = Starting {
            inner: Arc::new(Inner {
                placeholder: ProviderInfo {
                    name: provider.to_string(),
                    version: String::new(),
                    capabilities: Capabilities::default(),
                },
                started: OnceLock::new(),
                notify: Notify::new(),
            }),
        };
        let inner = starting.inner.clone();
        let name = provider.to_string();
        tokio::spawn(async move {
            let result = start
                .await
                .map(Arc::new)
                .map_err(|detail| ProviderError::NotStarted {
                    provider: name,
                    detail,
                });
            let _ = inner.started.set(result);
            inner.notify.notify_waiters();
        });
        starting
    }

    /// A store that is already up.
    pub fn ready(store: S) -> Self {
        let started = OnceLock::new();
        let _ = started.set(Ok(Arc::new(store)));
        Starting {
            inner: Arc::new(Inner {
                placeholder: ProviderInfo {
                    name: String::new(),
                    version: String::new(),
                    capabilities: Capabilities::default(),
                },
                started,
                notify: Notify::new(),
            }),
        }
    }

    /// Waits until the store is up (or its start failed).
    pub async fn started(&self) -> Result<Arc<S>, ProviderError> {
        loop {
            // Created before the check, so a start that completes between
            // the check and the wait still wakes it.
            let notified = self.inner.notify.notified();
            if let Some(r) = self.inner.started.get() {
                return r.clone();
            }
            notified.await;
        }
    }

    /// The store, if it is up already.
    pub fn get(&self) -> Option<&Arc<S>> {
        self.inner.started.get().and_then(|r| r.as_ref().ok())
    }
}

impl<S: TapeStore + 'static> TapeStore for Starting<S> {
    type Writer = S::Writer;

    fn provider_info(&self) -> &ProviderInfo {
        match self.get() {
            Some(s) => s.provider_info(),
            None => &self.inner.placeholder,
        }
    }

    async fn create(&self, header: TapeHeader) -> ProviderResult<S::Writer> {
        self.started().await?.create(header).await
    }

    async fn resume(&self, id: &str) -> ProviderResult<S::Writer> {
        self.started().await?.resume(id).await
    }

    async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        self.started()
            .await?
            .save(header, frames, summary, reason)
            .await
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        self.started().await?.get(id).await
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        self.started()
            .await?
            .read_frames(id, from_seq, max_frames, max_bytes)
            .await
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        self.started().await?.delete(id).await
    }

    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.started().await?.list(filter, cursor, limit).await
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.started().await?.search(query, cursor, limit).await
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        self.started().await?.stats().await
    }

    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        self.started().await?.append_many(appends).await
    }

    fn trusted_hosts(&self) -> Option<&crate::seal::TrustedHosts> {
        self.get().and_then(|s| s.trusted_hosts())
    }

    fn starting(&self) -> bool {
        self.inner.started.get().is_none()
    }

    async fn until_started(&self) {
        let _ = self.started().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;
    use std::time::Duration;
    use tapedeck_types::TapeFilter;

    #[tokio::test]
    async fn calls_wait_for_the_start_then_run_on_the_store() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let starting = Starting::spawn("mem", async move {
            let _ = rx.await;
            Ok(MemStore::new("mem"))
        });
        assert_eq!(starting.provider_info().name, "mem");
        assert!(starting.get().is_none());
        let list = {
            let s = starting.clone();
            tokio::spawn(async move { s.list(&TapeFilter::default(), None, 10).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!list.is_finished(), "a call waits while the store starts");
        assert!(starting.starting());
        tx.send(()).unwrap();
        starting.until_started().await;
        assert!(!starting.starting());
        let page = list.await.unwrap().unwrap();
        assert!(page.tapes.is_empty());
        assert!(starting.get().is_some());
    }

    #[tokio::test]
    async fn a_failed_start_fails_every_call_for_good() {
        let starting: Starting<MemStore> = Starting::spawn("mem", async {
            Err("cannot create /x: Permission denied".into())
        });
        let e = starting.stats().await.unwrap_err();
        assert!(matches!(e, ProviderError::NotStarted { .. }), "{e:?}");
        assert!(e.to_string().contains("Permission denied"), "{e}");
        assert!(e.is_permanent());
    }
}
