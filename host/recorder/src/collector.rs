//! Host-level batching: the batches of many recordings in one
//! `append-many` call (contract 0.2), so that a provider does one database
//! transaction or one file-system pass for all of them.
//!
//! One collector per [`Recorder`](crate::Recorder) (made on its first
//! batch). A recording's task hands it a batch and awaits that batch's own
//! result, exactly as it would await `append`. The collector sends a call
//! as soon as a slot is free (at most [`MAX_CALLS`] at once) with every
//! batch that queued meanwhile, up to [`MAX_ENTRIES`] entries and
//! [`MAX_BYTES`] payload bytes: nothing waits for a batch to fill, and
//! under load, while the calls in flight run, the next one gathers the
//! batches of every recording that became ready.
//!
//! A failure of the call as a whole (a trap, a timeout, a contract
//! violation) is every entry's result: each task retries as it would a
//! failed `append`.

use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_store::error::ProviderError;
use tapedeck_types::{Frame, TapeAppend};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most `append-many` calls in flight at once per recorder.
pub const MAX_CALLS: usize = 4;
/// Most entries (recordings' batches) in one call.
pub const MAX_ENTRIES: usize = 256;
/// About the most payload bytes in one call (a single larger batch goes
/// alone).
pub const MAX_BYTES: u64 = 8 << 20;

/// One batch waiting for its call.
struct Request {
    append: TapeAppend,
    reply: oneshot::Sender<Result<u64, ProviderError>>,
}

/// Sends the batches of many recordings in shared `append-many` calls
/// (see the module docs). Cheap to share.
pub(crate) struct Collector {
    tx: mpsc::UnboundedSender<Request>,
    provider: String,
}

impl Collector {
    /// A collector over `store`; its task runs on the current runtime and
    /// ends when the collector is dropped.
    pub(crate) fn spawn<S: TapeStore + 'static>(store: Arc<S>) -> Collector {
        let provider = store.provider_info().name.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Collector { tx, provider }
    }

    /// Appends `frames` to tape `id` in the next call, as `resume` then
    /// `append` would: the new `next-seq`, or why not.
    pub(crate) async fn append(&self, id: &str, frames: Vec<Frame>) -> Result<u64, ProviderError> {
        let closed = || ProviderError::Closed {
            provider: self.provider.clone(),
        };
        let (reply, answer) = oneshot::channel();
        let append = TapeAppend {
            id: id.to_string(),
            frames,
        };
        self.tx
            .send(Request { append, reply })
            .map_err(|_| closed())?;
        answer.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// The collector's task: one call per free slot, with what queued.
async fn run<S: TapeStore + 'static>(store: Arc<S>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let slots = Arc::new(Semaphore::new(MAX_CALLS));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // What queued while every slot was busy goes in this call.
        let mut bytes = payload_bytes(&first.append);
        let mut batch = vec![first];
        while batch.len() < MAX_ENTRIES && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += payload_bytes(&r.append);
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let (appends, replies): (Vec<TapeAppend>, Vec<_>) =
                batch.into_iter().map(|r| (r.append, r.reply)).unzip();
            let answer = store.append_many(&appends).await;
            drop(slot);
            match answer {
                Ok(results) if results.len() == replies.len() => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Ok(results) => {
                    let error = ProviderError::Contract {
                        provider: store.provider_info().name.clone(),
                        call: "append-many",
                        detail: format!(
                            "answered {} results for {} entries",
                            results.len(),
                            replies.len()
                        ),
                    };
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                Err(error) => {
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        });
    }
}

fn payload_bytes(append: &TapeAppend) -> u64 {
    append.frames.iter().map(|f| f.payload.len() as u64).sum()
}
