//! The background task of one recording: batches frames, appends them to the
//! tape's writer, retries failed appends, and ends the tape.
//!
//! One task per recording, no thread. It owns the writer; the [`Recording`]
//! handle only holds the sending side of an unbounded channel, so recording a
//! frame never waits on storage.
//!
//! Batching: a batch is sent when it holds `batch_frames` frames or
//! `batch_bytes` payload bytes, or when its oldest frame has waited
//! `flush_interval`, or at the end. Frames stay queued until an `append` that
//! contains them succeeds; a failed append is retried after an exponential
//! backoff (10 ms doubling up to 1 s) with the same frames, which is
//! idempotent because the contract skips frames below `next-seq`. Errors
//! that retrying cannot fix (the tape is gone or refuses the frames, the
//! provider was shut down) stop appending: later frames are counted, not
//! kept. Once the recording is ending, the last appends (and `finish` or
//! `abort`) get up to 6 consecutive attempts. Either way the count of frames
//! not stored is reported when the recording ends.
//!
//! Memory: an idle recording is its handle, this task (about 1 KiB: the
//! provider calls run boxed, allocated only while they run) and its channel
//! (one block of 32 slots), about 3 KiB in all. Queued frames come on top
//! until they are stored; a queue that grew in a burst is freed once empty.
//! The queue is unbounded by design (forwarding never waits), so a provider
//! that stays unavailable makes it grow with the session.
//!
//! [`Recording`]: super::Recording

use super::RecorderOptions;
use super::digest::DigestChain;
use super::error::RecordError;
use super::recording::{RecordingOutcome, WriteStats};
use crate::error::ProviderError;
use crate::store::{TapeStore, TapeWriter};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeState, TapeSummary};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;

/// First delay before retrying a failed call.
const INITIAL_BACKOFF: Duration = Duration::from_millis(10);
/// Longest delay between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Consecutive failed attempts tolerated once the recording is ending (for
/// the last appends, and for `finish` / `abort`), before giving up.
const END_ATTEMPTS: u32 = 6;
/// Queue capacity (frames) an idle recording may keep allocated.
const IDLE_QUEUE_CAPACITY: usize = 32;

/// What the [`Recording`](super::Recording) handle sends to its task.
pub(crate) enum Msg {
    /// The next frame, in sequence order.
    Frame(Frame),
    /// No more frames: store the rest and end the tape.
    End(End),
}

/// How to end the tape.
pub(crate) enum End {
    /// Finish it (reason `completed`).
    Finish,
    /// Abort it with this reason.
    Abort(String),
}

/// How the task ended.
pub(crate) enum Ended {
    /// The tape was finished.
    Finished(Box<RecordingOutcome>),
    /// The tape was aborted.
    Aborted,
    /// The handle was dropped without ending the tape: the queued frames were
    /// stored (as far as possible) and the tape left `recording`.
    Dropped,
}

/// Delays between retries: 10 ms, doubling, at most 1 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: INITIAL_BACKOFF,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        d
    }
}

/// A failed append waiting to be retried.
struct Retry {
    at: Instant,
    backoff: Backoff,
}

/// True if retrying `error` cannot help.
fn is_permanent(error: &ProviderError) -> bool {
    match error {
        ProviderError::Closed { .. } => true,
        ProviderError::Storage { error, .. } => matches!(
            error.kind,
            ErrorKind::InvalidInput
                | ErrorKind::NotFound
                | ErrorKind::AlreadyExists
                | ErrorKind::Unsupported
        ),
        _ => false,
    }
}

/// The state of one recording's task.
pub(crate) struct Batcher<S: TapeStore> {
    store: Arc<S>,
    writer: S::Writer,
    max_frames: usize,
    max_bytes: u64,
    interval: Duration,
    /// Frames received but not yet acknowledged by the provider, in order.
    pending: VecDeque<Frame>,
    pending_bytes: u64,
    /// When the oldest frame of the current batch window arrived.
    window_start: Option<Instant>,
    /// Set after an append failed; cleared by the next success.
    retry: Option<Retry>,
    /// The last append error.
    last_error: Option<ProviderError>,
    /// Set when appending stopped for good; frames are only counted after.
    gave_up: bool,
    /// Consecutive failed appends since the end was requested.
    end_failures: u32,
    /// Frames received.
    recorded: u64,
    /// Payload bytes received.
    bytes: u64,
    /// Frames acknowledged by the provider (`next-seq`).
    stored: u64,
    digest: DigestChain,
    stats: WriteStats,
}

impl<S: TapeStore + 'static> Batcher<S> {
    pub(crate) fn new(store: Arc<S>, writer: S::Writer, options: &RecorderOptions) -> Self {
        let stored = writer.next_seq();
        Batcher {
            store,
            writer,
            max_frames: usize::try_from(options.batch_frames)
                .unwrap_or(usize::MAX)
                .max(1),
            max_bytes: options.batch_bytes.0.max(1),
            interval: options.flush_interval.as_duration(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            window_start: None,
            retry: None,
            last_error: None,
            gave_up: false,
            end_failures: 0,
            recorded: 0,
            bytes: 0,
            stored,
            digest: DigestChain::new(),
            stats: WriteStats::default(),
        }
    }

    /// Runs until the tape is ended (or the handle is dropped).
    pub(crate) async fn run(
        mut self,
        mut rx: UnboundedReceiver<Msg>,
    ) -> Result<Ended, RecordError> {
        let end = self.collect(&mut rx).await;
        drop(rx);
        match end {
            // The ending and each append run boxed: their futures (the
            // provider call's state) are allocated only while they run, so an
            // idle recording stays small.
            Some(End::Finish) => Box::pin(self.finish())
                .await
                .map(|o| Ended::Finished(Box::new(o))),
            Some(End::Abort(reason)) => {
                Box::pin(self.abort(&reason)).await.map(|()| Ended::Aborted)
            }
            None => {
                if self.gave_up {
                    tracing::warn!(
                        target: "tapedeck::recorder",
                        tape = %self.writer.id(),
                        "recording dropped; {} of {} frames were not stored",
                        self.recorded - self.stored,
                        self.recorded
                    );
                }
                Ok(Ended::Dropped)
            }
        }
    }

    /// Receives and appends frames until the end is requested (or the
    /// channel closes), then stores the rest. Returns the end request.
    async fn collect(&mut self, rx: &mut UnboundedReceiver<Msg>) -> Option<End> {
        let mut end = None;
        let mut open = true;
        loop {
            // Take what is already queued, bounded so a flood cannot starve
            // the appends.
            let mut taken = 0;
            while open && taken < self.max_frames {
                match rx.try_recv() {
                    Ok(Msg::Frame(f)) => self.push(f),
                    Ok(Msg::End(e)) => {
                        end = Some(e);
                        open = false;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
                taken += 1;
            }
            if !open && self.pending.is_empty() {
                return end;
            }
            let due = self.due(open);
            if due.is_some_and(|at| at <= Instant::now()) {
                self.append_one(open).await;
                continue;
            }
            if open {
                tokio::select! {
                    biased;
                    msg = rx.recv() => match msg {
                        Some(Msg::Frame(f)) => self.push(f),
                        Some(Msg::End(e)) => {
                            end = Some(e);
                            open = false;
                        }
                        None => open = false,
                    },
                    () = sleep_until_opt(due) => {}
                }
            } else if let Some(at) = due {
                tokio::time::sleep_until(at).await;
            }
        }
    }

    /// Takes one frame from the handle.
    fn push(&mut self, frame: Frame) {
        debug_assert_eq!(frame.seq, self.recorded, "frames arrive in sequence");
        self.digest.push(&frame);
        self.recorded += 1;
        let len = frame.payload.len() as u64;
        self.bytes += len;
        if self.gave_up {
            return;
        }
        if self.pending.is_empty() {
            self.window_start = Some(Instant::now());
        }
        self.pending_bytes += len;
        self.pending.push_back(frame);
    }

    /// When the next append should happen; `None` if nothing is queued.
    fn due(&self, open: bool) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        let now = Instant::now();
        let full = self.pending.len() >= self.max_frames || self.pending_bytes >= self.max_bytes;
        let ready = if !open || full {
            now
        } else {
            self.window_start.map_or(now, |t| t + self.interval)
        };
        Some(match &self.retry {
            Some(r) => ready.max(r.at),
            None => ready,
        })
    }

    /// How many queued frames go into the next append.
    fn batch_len(&self) -> usize {
        let mut n = 0;
        let mut bytes = 0u64;
        for f in &self.pending {
            if n == self.max_frames || (n > 0 && bytes + f.payload.len() as u64 > self.max_bytes) {
                break;
            }
            bytes += f.payload.len() as u64;
            n += 1;
        }
        n
    }

    /// Appends one batch from the head of the queue.
    async fn append_one(&mut self, open: bool) {
        let n = self.batch_len();
        let batch = &self.pending.make_contiguous()[..n];
        self.stats.appends += 1;
        match Box::pin(self.writer.append(batch)).await {
            Ok(next) => {
                while self.pending.front().is_some_and(|f| f.seq < next) {
                    let f = self.pending.pop_front().expect("front exists");
                    self.pending_bytes -= f.payload.len() as u64;
                }
                self.stored = self.stored.max(next);
                self.retry = None;
                self.end_failures = 0;
                if self.pending.is_empty() {
                    self.window_start = None;
                    if self.pending.capacity() > IDLE_QUEUE_CAPACITY {
                        // Keep an idle recording small: give a burst's
                        // queue memory back.
                        self.pending = VecDeque::new();
                    }
                }
            }
            Err(error) => {
                self.stats.failed_appends += 1;
                if !open {
                    self.end_failures += 1;
                }
                let permanent = is_permanent(&error);
                tracing::warn!(
                    target: "tapedeck::recorder",
                    tape = %self.writer.id(),
                    "append of {n} frames failed ({}): {error}",
                    if permanent { "giving up" } else { "will retry" }
                );
                self.last_error = Some(error);
                if permanent || self.end_failures >= END_ATTEMPTS {
                    self.give_up();
                } else {
                    let mut backoff = self.retry.take().map_or_else(Backoff::new, |r| r.backoff);
                    let at = Instant::now() + backoff.next_delay();
                    self.retry = Some(Retry { at, backoff });
                }
            }
        }
    }

    /// Stops appending: queued and later frames are only counted.
    fn give_up(&mut self) {
        self.gave_up = true;
        self.retry = None;
        self.pending = VecDeque::new();
        self.pending_bytes = 0;
        self.window_start = None;
    }

    fn id(&self) -> String {
        self.writer.id().to_string()
    }

    /// The error for frames that were not stored, if any.
    fn not_stored(&self) -> Option<RecordError> {
        (self.stored < self.recorded).then(|| RecordError::NotStored {
            id: self.id(),
            recorded: self.recorded,
            stored: self.stored,
            not_stored: self.recorded - self.stored,
            error: self
                .last_error
                .clone()
                .unwrap_or_else(|| ProviderError::Closed {
                    provider: self.store.provider_info().name.clone(),
                }),
        })
    }

    /// After a failure to store every frame: mark the tape aborted (best
    /// effort) and return the error.
    async fn abort_incomplete(&mut self, err: RecordError) -> RecordError {
        let reason = format!("recorder: {err}");
        if let Err(e) = self.writer.abort(&reason).await {
            tracing::warn!(
                target: "tapedeck::recorder",
                tape = %self.writer.id(),
                "could not mark the incomplete tape aborted: {e}"
            );
        }
        err
    }

    /// Finishes the tape, retrying transient failures (`finish` is
    /// idempotent for the same summary).
    async fn finish(mut self) -> Result<RecordingOutcome, RecordError> {
        if let Some(err) = self.not_stored() {
            return Err(self.abort_incomplete(err).await);
        }
        let summary = TapeSummary {
            frame_count: self.recorded,
            byte_count: self.bytes,
            ended_at_us: super::line::now_us(),
            digest: Some(self.digest.hex()),
        };
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        let error = loop {
            attempt += 1;
            match self
                .writer
                .finish(summary.clone(), EndReason::Completed)
                .await
            {
                Ok(tape) => {
                    return Ok(RecordingOutcome {
                        tape,
                        summary,
                        stats: self.stats,
                    });
                }
                Err(e) if is_permanent(&e) || attempt >= END_ATTEMPTS => break e,
                Err(e) => {
                    tracing::warn!(
                        target: "tapedeck::recorder",
                        tape = %self.writer.id(),
                        "finish failed (will retry): {e}"
                    );
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        };
        // An earlier attempt may have finished the tape before its answer
        // was lost (a timeout); then the retry is refused. Check.
        if let Ok(tape) = self.store.get(self.writer.id()).await
            && tape.state == TapeState::Finished
            && tape.frame_count == summary.frame_count
            && tape.byte_count == summary.byte_count
            && tape.digest == summary.digest
        {
            return Ok(RecordingOutcome {
                tape,
                summary,
                stats: self.stats,
            });
        }
        Err(RecordError::Finish {
            id: self.id(),
            frames: self.recorded,
            error,
        })
    }

    /// Aborts the tape, keeping the frames stored.
    async fn abort(mut self, reason: &str) -> Result<(), RecordError> {
        if let Some(err) = self.not_stored() {
            return Err(self.abort_incomplete(err).await);
        }
        let mut backoff = Backoff::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.writer.abort(reason).await {
                Ok(()) => return Ok(()),
                Err(e) if is_permanent(&e) || attempt >= END_ATTEMPTS => {
                    return Err(RecordError::Abort {
                        id: self.id(),
                        error: e,
                    });
                }
                Err(_) => tokio::time::sleep(backoff.next_delay()).await,
            }
        }
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::StorageError;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(delays[0], INITIAL_BACKOFF);
        assert_eq!(delays[1], INITIAL_BACKOFF * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
    }

    #[test]
    fn only_unfixable_errors_are_permanent() {
        let storage = |error| ProviderError::Storage {
            provider: "p".into(),
            error,
        };
        assert!(is_permanent(&storage(StorageError::invalid_input("gap"))));
        assert!(is_permanent(&storage(StorageError::not_found("x"))));
        assert!(is_permanent(&ProviderError::Closed {
            provider: "p".into()
        }));
        assert!(!is_permanent(&storage(StorageError::io("disk"))));
        assert!(!is_permanent(&storage(StorageError::quota_exceeded(
            "full"
        ))));
        assert!(!is_permanent(&ProviderError::Trap {
            provider: "p".into(),
            call: "append",
            detail: "boom".into()
        }));
        assert!(!is_permanent(&ProviderError::Timeout {
            provider: "p".into(),
            call: "append",
            limit: Duration::from_secs(1)
        }));
    }
}
