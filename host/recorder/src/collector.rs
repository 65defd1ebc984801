//! Host-level batching: the batches of many recordings in one
//! `append-many` call (contract 0.2), so that a provider does one database
//! transaction or one file-system pass for all of them.
//!
//! One collector per [`Recorder`](crate::Recorder) (made on its first
//! batch). A recording's task hands it a batch and awaits that batch's own
//! result, exactly as it would await `append`. The collector sends a call
//! as soon as a slot is free (at most [`MAX_CALLS`] at once) with every
//! batch that queued meanwhile, up to [`MAX_ENTRIES`] entries and
//! [`MAX_BYTES`] payload bytes (each of the calls in flight grows an
//! instance's linear memory to hold it, for good): nothing waits for a batch to fill, and
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
pub const MAX_BYTES: u64 = 2 << 20;

/// What a recording gets back: its frames (the collector borrows them, so
/// that nothing is copied) and its entry's result, `None` if the collector
/// stopped before answering.
type Reply = (Vec<Frame>, Option<Result<u64, ProviderError>>);

/// One batch waiting for its call. Dropped unanswered (the collector
/// stopped, or its call panicked), it still hands its frames back.
struct Request {
    append: TapeAppend,
    reply: Option<oneshot::Sender<Reply>>,
}

impl Request {
    fn answer(mut self, result: Result<u64, ProviderError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send((std::mem::take(&mut self.append.frames), Some(result)));
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send((std::mem::take(&mut self.append.frames), None));
        }
    }
}

/// The batches of one call: their frames are lent to the call's entries
/// and put back into their requests however the call ends.
struct Call {
    requests: Vec<Request>,
    appends: Option<Vec<TapeAppend>>,
}

impl Call {
    fn new(mut requests: Vec<Request>) -> Call {
        let appends = requests
            .iter_mut()
            .map(|r| TapeAppend {
                id: r.append.id.clone(),
                frames: std::mem::take(&mut r.append.frames),
            })
            .collect();
        Call {
            requests,
            appends: Some(appends),
        }
    }

    fn appends(&self) -> &[TapeAppend] {
        self.appends.as_deref().unwrap_or_default()
    }

    /// Gives every request its frames back and its result.
    fn answer(mut self, mut result: impl FnMut(usize) -> Result<u64, ProviderError>) {
        self.give_back();
        for (i, request) in std::mem::take(&mut self.requests).into_iter().enumerate() {
            request.answer(result(i));
        }
    }

    fn give_back(&mut self) {
        if let Some(appends) = self.appends.take() {
            for (request, append) in self.requests.iter_mut().zip(appends) {
                request.append.frames = append.frames;
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.give_back();
    }
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
    /// `append` would: the new `next-seq`, or why not. The frames come
    /// back whatever the outcome (the caller keeps them until they are
    /// acknowledged).
    pub(crate) async fn append(
        &self,
        id: &str,
        frames: Vec<Frame>,
    ) -> (Vec<Frame>, Result<u64, ProviderError>) {
        let closed = || ProviderError::Closed {
            provider: self.provider.clone(),
        };
        let (reply, answer) = oneshot::channel();
        let request = Request {
            append: TapeAppend {
                id: id.to_string(),
                frames,
            },
            reply: Some(reply),
        };
        if let Err(mpsc::error::SendError(mut request)) = self.tx.send(request) {
            request.reply = None;
            return (std::mem::take(&mut request.append.frames), Err(closed()));
        }
        match answer.await {
            Ok((frames, Some(result))) => (frames, result),
            Ok((frames, None)) => (frames, Err(closed())),
            // Unreachable: a request always replies, even when dropped.
            Err(_) => (Vec::new(), Err(closed())),
        }
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
            let call = Call::new(batch);
            let answer = store.append_many(call.appends()).await;
            drop(slot);
            let entries = call.requests.len();
            match answer {
                Ok(mut results) if results.len() == entries => {
                    let mut results = results.drain(..);
                    call.answer(|_| results.next().expect("one result per entry"));
                }
                Ok(results) => {
                    let error = ProviderError::Contract {
                        provider: store.provider_info().name.clone(),
                        call: "append-many",
                        detail: format!("answered {} results for {entries} entries", results.len()),
                    };
                    call.answer(|_| Err(error.clone()));
                }
                Err(error) => call.answer(|_| Err(error.clone())),
            }
        });
    }
}

fn payload_bytes(append: &TapeAppend) -> u64 {
    append.frames.iter().map(|f| f.payload.len() as u64).sum()
}
