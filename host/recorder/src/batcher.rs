//! The background task of one recording: syncs the spool, batches frames to
//! the provider, retries, and ends the tape.
//!
//! One task per recording, no thread. It owns the writer; the [`Recording`]
//! handle writes each frame to the spool file and sends it here over an
//! unbounded channel, so recording a frame never waits on the provider.
//!
//! Spool: when the recording has a [`SpoolFile`], a frame is delivered only
//! once the file is synced past it; the file is synced at most `spool-sync`
//! after a write (earlier when the recording ends), so one `fdatasync`
//! covers every frame written meanwhile. The file is deleted once the
//! provider has finished the tape and its answer checks out; until then it
//! is what recovery delivers from.
//!
//! Batching: a batch is sent when it holds `batch_frames` frames or
//! `batch_bytes` payload bytes, or when its oldest frame has waited
//! `flush_interval`, or at the end. Frames stay queued until an `append` that
//! contains them succeeds. With `batch-recordings` (the default) a batch
//! goes to the recorder's collector (`collector.rs`), which sends it with
//! other recordings' in one `append-many` call; its entry's result is
//! handled as `append`'s would be, and the tape is ended through a fresh
//! writer (`resume`), since the one from `create` did not see those
//! frames.
//!
//! Failures: a failed call is retried after an exponential backoff with
//! jitter (`backoff.rs`), through the recorder's shared [`CircuitBreaker`].
//! Redelivery is safe: the contract skips frames below `next-seq`. When an
//! append is refused as leaving a gap, the task asks the provider what it
//! holds (a fresh `resume`); if it lost frames it had acknowledged, they
//! are read back from the spool and delivered again. A tape whose `create`
//! failed transiently is created later, by this task. Errors that retrying
//! cannot fix stop delivery. Once the recording is ending, delivery and
//! `finish` are tried until `end-timeout`; what is left then stays in the
//! spool for recovery ([`RecordError::Spooled`]); without a spool it is
//! reported as lost ([`RecordError::NotStored`]), never silently.
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
use super::backoff::Backoff;
use super::breaker::CircuitBreaker;
use super::collector::Collector;
use super::digest::DigestChain;
use super::error::RecordError;
use super::recording::{RecordingOutcome, WriteStats};
use crate::spool::SpoolFile;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tapedeck_store::error::ProviderError;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeHeader, TapeInfo, TapeSummary};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;

/// Queue capacity (frames) an idle recording may keep allocated.
const IDLE_QUEUE_CAPACITY: usize = 32;

/// What the [`Recording`](super::Recording) handle sends to its task.
pub(crate) enum Msg {
    /// The next frame, in sequence order.
    Frame(Frame),
    /// No more frames: store the rest and end the tape (the end is already
    /// in the spool, written by the handle, at this time: µs since the
    /// Unix epoch).
    End(End, u64),
}

/// How to end the tape.
pub(crate) enum End {
    /// Finish it (reason `completed`).
    Finish,
    /// Abort it with this reason.
    Abort(String),
}

impl End {
    pub(crate) fn reason(&self) -> EndReason {
        match self {
            End::Finish => EndReason::Completed,
            End::Abort(_) => EndReason::Aborted,
        }
    }
}

/// How the task ended.
pub(crate) enum Ended {
    /// The tape was finished.
    Finished(Box<RecordingOutcome>),
    /// The tape was aborted.
    Aborted(Box<RecordingOutcome>),
    /// The handle was dropped without ending the tape: the queued frames were
    /// stored (as far as possible) and the tape left `recording` (and its
    /// spool file for recovery).
    Dropped,
}

/// What [`Batcher::rewind`] found.
enum Rewind {
    /// The provider had lost acknowledged frames; they are queued again.
    Done,
    /// The provider holds what it acknowledged: the refusal stands.
    Stands,
    /// The provider's state could not be told; try again later.
    Unsure,
}

/// When the next attempt may be made after a failure.
struct Retry {
    at: Instant,
    backoff: Backoff,
}

/// True if retrying `error` cannot help ([`ProviderError::is_permanent`]).
pub(crate) fn is_permanent(error: &ProviderError) -> bool {
    error.is_permanent()
}

/// What the recording's task is given.
pub(crate) struct Setup<S: TapeStore> {
    pub(crate) store: Arc<S>,
    pub(crate) header: TapeHeader,
    /// `None` when `create` failed transiently: the task creates the tape.
    pub(crate) writer: Option<S::Writer>,
    pub(crate) spool: Option<Arc<SpoolFile>>,
    pub(crate) breaker: Arc<CircuitBreaker>,
    /// Batches go through this shared `append-many` collector, when set.
    pub(crate) collector: Option<Arc<Collector>>,
}

/// The state of one recording's task.
pub(crate) struct Batcher<S: TapeStore> {
    store: Arc<S>,
    header: TapeHeader,
    writer: Option<S::Writer>,
    spool: Option<Arc<SpoolFile>>,
    breaker: Arc<CircuitBreaker>,
    collector: Option<Arc<Collector>>,
    /// The tape exists at the provider (a writer for it, if needed, comes
    /// from `resume`).
    exists: bool,
    /// Frames reached the tape through the collector, past the writer:
    /// its own idea of `next-seq` is stale, so the tape is ended through a
    /// fresh one.
    appended_many: bool,
    max_frames: usize,
    max_bytes: u64,
    interval: Duration,
    sync_interval: Duration,
    end_timeout: Duration,
    verify_on_finish: bool,
    /// Frames `stored..` received but not yet acknowledged, in order.
    pending: VecDeque<Frame>,
    pending_bytes: u64,
    /// When the oldest frame of the current batch window arrived.
    window_start: Option<Instant>,
    /// Set after a call failed; cleared by the next success.
    retry: Option<Retry>,
    /// The last provider error.
    last_error: Option<ProviderError>,
    /// Set when delivery stopped for good; frames are only counted after
    /// (they stay in the spool, if there is one).
    gave_up: bool,
    /// Set once the end was requested: the last moment to keep trying,
    /// moved on by every successful call (`end-timeout` bounds the time
    /// without progress, not a busy provider's queue).
    deadline: Option<Instant>,
    /// When the end was requested (µs since the Unix epoch).
    ended_at_us: Option<u64>,
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
    pub(crate) fn new(setup: Setup<S>, options: &RecorderOptions) -> Self {
        let stored = setup.writer.as_ref().map_or(0, TapeWriter::next_seq);
        Batcher {
            store: setup.store,
            header: setup.header,
            writer: setup.writer,
            spool: setup.spool,
            breaker: setup.breaker,
            collector: setup.collector,
            exists: false,
            appended_many: false,
            max_frames: usize::try_from(options.batch_frames)
                .unwrap_or(usize::MAX)
                .max(1),
            max_bytes: options.batch_bytes.0.max(1),
            interval: options.flush_interval.as_duration(),
            sync_interval: options.spool_sync.as_duration(),
            end_timeout: options.end_timeout.as_duration(),
            verify_on_finish: options.verify_on_finish,
            pending: VecDeque::new(),
            pending_bytes: 0,
            window_start: None,
            retry: None,
            last_error: None,
            gave_up: false,
            deadline: None,
            ended_at_us: None,
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
            // The ending and each call run boxed: their futures (the
            // provider call's state) are allocated only while they run, so an
            // idle recording stays small.
            Some(End::Finish) => Box::pin(self.end(EndReason::Completed))
                .await
                .map(|o| Ended::Finished(Box::new(o))),
            Some(End::Abort(reason)) => {
                tracing::debug!(target: "tapedeck::recorder", tape = %self.header.id, "aborting the recording: {reason}");
                Box::pin(self.end(EndReason::Aborted))
                    .await
                    .map(|o| Ended::Aborted(Box::new(o)))
            }
            None => {
                // Leave the spool file to recovery; sync it first.
                if let Some(spool) = &self.spool {
                    let _ = sync(spool).await;
                }
                if self.stored < self.recorded {
                    tracing::warn!(
                        target: "tapedeck::recorder",
                        tape = %self.header.id,
                        "recording dropped; {} of {} frames were not delivered{}",
                        self.recorded - self.stored,
                        self.recorded,
                        self.spool.as_ref().map_or(String::new(), |s| format!(
                            " (they are in the spool file {})",
                            s.path().display()
                        ))
                    );
                }
                Ok(Ended::Dropped)
            }
        }
    }

    /// True while frames can be read back from the spool.
    fn spool_usable(&self) -> Option<&Arc<SpoolFile>> {
        self.spool.as_ref().filter(|s| s.failure().is_none())
    }

    /// Receives and delivers frames until the end is requested (or the
    /// channel closes) and everything is delivered, or delivery stopped.
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
                    Ok(Msg::End(e, at)) => {
                        self.ending(at);
                        end = Some(e);
                        open = false;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
                taken += 1;
            }
            if !open && (self.pending.is_empty() || self.gave_up || self.past_deadline()) {
                return end;
            }
            let now = Instant::now();
            if self.sync_due(open).is_some_and(|at| at <= now) {
                self.sync_spool().await;
                continue;
            }
            // A store still starting would hold a delivery (and so the
            // spool's syncs) until it is up: wait for it beside the rest.
            let starting = self.store.starting();
            let due = if starting { None } else { self.due(open, now) };
            if due.is_some_and(|at| at <= now) {
                self.deliver_one().await;
                continue;
            }
            let wake = [due, self.sync_due(open), self.deadline]
                .into_iter()
                .flatten()
                .min();
            let store = starting.then(|| self.store.clone());
            let started = async {
                if let Some(s) = &store {
                    s.until_started().await;
                }
            };
            if open {
                tokio::select! {
                    biased;
                    msg = rx.recv() => match msg {
                        Some(Msg::Frame(f)) => self.push(f),
                        Some(Msg::End(e, at)) => {
                            self.ending(at);
                            end = Some(e);
                            open = false;
                        }
                        None => open = false,
                    },
                    () = started, if starting => {}
                    () = sleep_until_opt(wake) => {}
                }
            } else {
                tokio::select! {
                    () = started, if starting => {}
                    () = sleep_until_opt(wake) => {}
                }
            }
        }
    }

    /// The end was requested (the handle already wrote it to the spool, so
    /// recovery ends the tape the same way): start the end deadline.
    fn ending(&mut self, ended_at_us: u64) {
        self.deadline = Some(Instant::now() + self.end_timeout);
        self.ended_at_us = Some(ended_at_us);
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| d <= Instant::now())
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

    /// Frames `0..n` may be delivered: they are durable in the spool (or
    /// there is no usable spool).
    fn deliverable(&self) -> u64 {
        match self.spool_usable() {
            Some(s) => s.frames_synced(),
            None => u64::MAX,
        }
    }

    /// When the spool should be synced next; `None` if nothing is unsynced.
    fn sync_due(&self, open: bool) -> Option<Instant> {
        let since = self.spool_usable()?.dirty_since()?;
        Some(if open {
            since + self.sync_interval
        } else {
            since
        })
    }

    async fn sync_spool(&mut self) {
        let Some(spool) = self.spool_usable().cloned() else {
            return;
        };
        if let Err(e) = sync(&spool).await {
            tracing::error!(
                target: "tapedeck::recorder",
                tape = %self.header.id,
                "spool: cannot sync {}: {e}; will retry",
                spool.path().display()
            );
            // Do not spin on a failing disk.
            tokio::time::sleep(self.sync_interval.max(Duration::from_millis(10))).await;
        }
    }

    /// When the next delivery should happen (`now` if it should happen
    /// now); `None` if nothing is queued or nothing queued is synced yet.
    fn due(&self, open: bool, now: Instant) -> Option<Instant> {
        let front = self.pending.front()?;
        if self.gave_up || front.seq >= self.deliverable() {
            // Wait for the sync (which `sync_due` schedules).
            return None;
        }
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
        let limit = self.deliverable();
        let mut n = 0;
        let mut bytes = 0u64;
        for f in &self.pending {
            if f.seq >= limit
                || n == self.max_frames
                || (n > 0 && bytes + f.payload.len() as u64 > self.max_bytes)
            {
                break;
            }
            bytes += f.payload.len() as u64;
            n += 1;
        }
        n
    }

    /// Notes a failed call: retry later, or give up if retrying cannot help.
    fn failed(&mut self, what: &str, error: ProviderError) {
        let permanent = is_permanent(&error);
        tracing::warn!(
            target: "tapedeck::recorder",
            tape = %self.header.id,
            "{what} failed ({}): {error}",
            if permanent { "giving up" } else { "will retry" }
        );
        self.last_error = Some(error);
        if permanent {
            self.give_up();
        } else {
            self.schedule_retry(None);
        }
    }

    /// Waits before the next attempt: the backoff's delay, or `at least`.
    fn schedule_retry(&mut self, at_least: Option<Instant>) {
        let mut backoff = self.retry.take().map_or_else(Backoff::new, |r| r.backoff);
        let mut at = Instant::now() + backoff.next_delay();
        if let Some(t) = at_least {
            at = at.max(t);
        }
        self.retry = Some(Retry { at, backoff });
    }

    /// Makes sure the tape exists at the provider (its `create` may have
    /// failed when the recording started). True when there is a writer.
    async fn ensure_writer(&mut self) -> bool {
        if self.writer.is_some() {
            return true;
        }
        let breaker = self.breaker.clone();
        let permit = match breaker.try_permit() {
            Ok(p) => p,
            Err(until) => {
                self.schedule_retry(Some(until));
                return false;
            }
        };
        let created = if self.exists {
            Box::pin(self.store.resume(&self.header.id)).await
        } else {
            match Box::pin(self.store.create(self.header.clone())).await {
                Err(e) if e.storage_kind() == Some(ErrorKind::AlreadyExists) => {
                    // An earlier `create` took effect but its answer was lost.
                    Box::pin(self.store.resume(&self.header.id)).await
                }
                r => r,
            }
        };
        match created {
            Ok(w) => {
                permit.success();
                self.stored = w.next_seq();
                self.writer = Some(w);
                self.exists = true;
                self.retry = None;
                tracing::info!(target: "tapedeck::recorder", tape = %self.header.id, "created the tape");
                true
            }
            Err(e) => {
                if is_permanent(&e) {
                    permit.success();
                } else {
                    permit.failure();
                }
                self.failed("create", e);
                false
            }
        }
    }

    /// Appends one batch from the head of the queue.
    async fn deliver_one(&mut self) {
        if !self.ensure_writer().await {
            return;
        }
        let n = self.batch_len();
        if n == 0 {
            return;
        }
        let breaker = self.breaker.clone();
        let permit = match breaker.try_permit() {
            Ok(p) => p,
            Err(until) => {
                self.schedule_retry(Some(until));
                return;
            }
        };
        self.stats.appends += 1;
        // Host-level batching: the collector sends this batch with other
        // recordings' in one `append-many`; its result is this entry's.
        // The frames are lent to it, not copied, and come back to the
        // head of the queue whatever the outcome.
        let result = match &self.collector {
            Some(collector) => {
                self.appended_many = true;
                let batch: Vec<Frame> = self.pending.drain(..n).collect();
                let (lent, result) = Box::pin(collector.append(&self.header.id, batch)).await;
                for frame in lent.into_iter().rev() {
                    self.pending.push_front(frame);
                }
                result
            }
            None => {
                let batch = &self.pending.make_contiguous()[..n];
                let writer = self.writer.as_mut().expect("ensured above");
                Box::pin(writer.append(batch)).await
            }
        };
        match result {
            Ok(next) => {
                permit.success();
                self.acknowledged(next);
            }
            Err(error) => {
                self.stats.failed_appends += 1;
                let gap = error.storage_kind() == Some(ErrorKind::InvalidInput);
                if gap {
                    // Says nothing about the provider's health.
                    permit.success();
                    match Box::pin(self.rewind(&error)).await {
                        Rewind::Done => return,
                        Rewind::Stands => {}
                        Rewind::Unsure => {
                            // Ask again later rather than give up on an
                            // answer we could not check.
                            self.last_error = Some(error);
                            self.schedule_retry(None);
                            return;
                        }
                    }
                } else if is_permanent(&error) {
                    permit.success();
                } else {
                    permit.failure();
                }
                self.failed(&format!("append of {n} frames"), error);
            }
        }
    }

    /// The provider holds frames `0..next`.
    fn acknowledged(&mut self, next: u64) {
        if let Some(d) = &mut self.deadline {
            // Progress: the end deadline counts from the last success.
            *d = Instant::now() + self.end_timeout;
        }
        while self.pending.front().is_some_and(|f| f.seq < next) {
            let f = self.pending.pop_front().expect("front exists");
            self.pending_bytes -= f.payload.len() as u64;
        }
        self.stored = self.stored.max(next);
        self.retry = None;
        if let Some(spool) = self.spool_usable() {
            spool.write_ack(self.stored);
        }
        if self.pending.is_empty() {
            self.window_start = None;
            if self.pending.capacity() > IDLE_QUEUE_CAPACITY {
                // Keep an idle recording small: give a burst's queue memory
                // back.
                self.pending = VecDeque::new();
            }
        }
    }

    /// After an append was refused as invalid: if the provider lost frames
    /// it had acknowledged, queue them again from the spool.
    async fn rewind(&mut self, error: &ProviderError) -> Rewind {
        let Some(spool) = self.spool_usable().cloned() else {
            return Rewind::Stands;
        };
        let fresh = match Box::pin(self.store.resume(&self.header.id)).await {
            Ok(w) => w,
            Err(_) => return Rewind::Unsure,
        };
        let has = fresh.next_seq();
        if has == self.stored {
            return Rewind::Stands;
        }
        if has > self.stored {
            // More than it acknowledged: an answer not to act on.
            return Rewind::Unsure;
        }
        tracing::warn!(
            target: "tapedeck::recorder",
            tape = %self.header.id,
            "the provider lost frames {has}..{} it had acknowledged (append said: {error}); delivering them again from the spool",
            self.stored
        );
        let missing = self.stored - has;
        let path = spool.path().to_path_buf();
        let read = tokio::task::spawn_blocking(move || {
            spool.read_frames(
                has,
                usize::try_from(missing).unwrap_or(usize::MAX),
                u64::MAX,
            )
        })
        .await;
        let frames = match read {
            Ok(Ok(f)) if f.len() as u64 == missing => f,
            Ok(Ok(f)) => {
                tracing::error!(target: "tapedeck::recorder", "spool: {} holds only {} of the {missing} frames to deliver again", path.display(), f.len());
                return Rewind::Stands;
            }
            Ok(Err(e)) => {
                tracing::error!(target: "tapedeck::recorder", "spool: cannot read {}: {e}", path.display());
                return Rewind::Stands;
            }
            Err(_) => return Rewind::Stands,
        };
        for f in frames.into_iter().rev() {
            self.pending_bytes += f.payload.len() as u64;
            self.pending.push_front(f);
        }
        self.window_start.get_or_insert_with(Instant::now);
        self.stats.redelivered += missing;
        self.stored = has;
        self.writer = Some(fresh);
        self.retry = None;
        Rewind::Done
    }

    /// Stops delivering: queued and later frames are only counted (and
    /// kept in the spool, if there is one).
    fn give_up(&mut self) {
        self.gave_up = true;
        self.retry = None;
        self.pending = VecDeque::new();
        self.pending_bytes = 0;
        self.window_start = None;
    }

    fn last_error(&self) -> ProviderError {
        self.last_error
            .clone()
            .unwrap_or_else(|| ProviderError::Unavailable {
                provider: self.store.provider_info().name.clone(),
                detail: format!(
                    "no progress within the recorder's end-timeout of {} ms",
                    self.end_timeout.as_millis()
                ),
            })
    }

    /// What to report when the tape could not be ended at the provider.
    fn incomplete(&self, error: ProviderError) -> RecordError {
        match &self.spool {
            Some(spool) if spool.failure().is_none() => RecordError::Spooled {
                id: self.header.id.clone(),
                recorded: self.recorded,
                delivered: self.stored,
                spool: spool.path().to_path_buf(),
                error,
            },
            _ if self.stored < self.recorded => RecordError::NotStored {
                id: self.header.id.clone(),
                recorded: self.recorded,
                stored: self.stored,
                not_stored: self.recorded - self.stored,
                error,
            },
            _ => RecordError::Finish {
                id: self.header.id.clone(),
                frames: self.recorded,
                error,
            },
        }
    }

    /// Ends the tape: `finish` with reason `completed` or `aborted` (the
    /// summary kept either way), retried until the deadline; checks the
    /// answer (and, with `verify_on_finish`, reads the tape back against
    /// its digest); releases the spool file.
    async fn end(mut self, reason: EndReason) -> Result<RecordingOutcome, RecordError> {
        // A fresh deadline for the ending calls: the last delivery was a
        // success (or there was nothing left to deliver).
        let deadline = Instant::now() + self.end_timeout;
        if self.stored < self.recorded {
            let err = self.incomplete(self.last_error());
            if matches!(err, RecordError::NotStored { .. })
                && let Some(w) = self.writer.as_mut()
            {
                // Without a spool the frames are gone: mark the tape.
                if let Err(e) = w.abort(&format!("recorder: {err}")).await {
                    tracing::warn!(target: "tapedeck::recorder", tape = %self.header.id, "could not mark the incomplete tape aborted: {e}");
                }
            }
            return Err(err);
        }
        if self.appended_many {
            // End through a writer that knows what the tape holds.
            self.writer = None;
        }
        let summary = TapeSummary {
            frame_count: self.recorded,
            byte_count: self.bytes,
            ended_at_us: self.ended_at_us.unwrap_or_else(super::line::now_us),
            digest: Some(self.digest.hex()),
            seal: None,
        };
        let mut backoff = Backoff::new();
        let result = loop {
            if !self.ensure_writer().await {
                // `ensure_writer` scheduled a retry.
            } else {
                let breaker = self.breaker.clone();
                if let Ok(permit) = breaker.try_permit() {
                    let w = self.writer.as_mut().expect("ensured above");
                    // An aborted recording ends with `finish` too (reason
                    // `aborted`): the tape keeps its totals, end time and
                    // digest, and a sealing store seals it.
                    let r = Box::pin(w.finish(summary.clone(), reason)).await;
                    match r {
                        Ok(info) => {
                            permit.success();
                            break Ok(info);
                        }
                        Err(e) if is_permanent(&e) => {
                            permit.success();
                            break Err(e);
                        }
                        Err(e) => {
                            permit.failure();
                            tracing::warn!(target: "tapedeck::recorder", tape = %self.header.id, "ending the tape failed (will retry): {e}");
                            self.last_error = Some(e);
                        }
                    }
                }
            }
            let wait = Instant::now() + backoff.next_delay();
            if wait >= deadline {
                break Err(self.last_error());
            }
            tokio::time::sleep_until(wait).await;
        };
        let answered = match result {
            Ok(info) => info,
            Err(error) => {
                // An earlier attempt may have ended the tape before its
                // answer was lost (a timeout); then the retry is refused.
                match self.store.get(&self.header.id).await {
                    Ok(tape) if self.check_end(&tape, &summary, reason).is_ok() => tape,
                    _ => return Err(self.incomplete(error)),
                }
            }
        };
        // Trust what a fresh `get` says, not the answer to `finish` (a
        // provider may claim an end it did not store).
        let tape = match self.store.get(&self.header.id).await {
            Ok(tape) => tape,
            Err(error) => return Err(self.incomplete(error)),
        };
        let checked = self
            .check_end(&answered, &summary, reason)
            .and_then(|()| self.check_end(&tape, &summary, reason));
        if let Err(why) = checked {
            let error = ProviderError::Contract {
                provider: self.store.provider_info().name.clone(),
                call: "finish",
                detail: why,
            };
            return Err(self.incomplete(error));
        }
        if self.verify_on_finish
            && let Err(e) = tapedeck_store::read::TapeReader::new(&*self.store)
                .read_verified(&tape, |_| Ok::<(), std::convert::Infallible>(()))
                .await
        {
            let error = ProviderError::Contract {
                provider: self.store.provider_info().name.clone(),
                call: "read-frames",
                detail: format!("reading the finished tape back: {e}"),
            };
            return Err(self.incomplete(error));
        }
        if let Some(spool) = self.spool.take()
            && let Ok(spool) = Arc::try_unwrap(spool)
            && let Err(e) = spool.release()
        {
            tracing::warn!(target: "tapedeck::recorder", tape = %self.header.id, "spool: cannot delete the delivered spool file: {e}");
        }
        Ok(RecordingOutcome {
            tape,
            summary,
            stats: self.stats,
        })
    }

    /// Checks what the provider says about the tape it just ended.
    fn check_end(
        &self,
        tape: &TapeInfo,
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<(), String> {
        let expected = reason.end_state();
        if tape.state != expected
            || tape.frame_count != summary.frame_count
            || tape.byte_count != summary.byte_count
            || (reason != EndReason::Aborted && tape.digest != summary.digest)
        {
            return Err(format!(
                "after ending tape {} the provider reports it {} with {} frames, {} bytes, digest {}; expected {} with {} frames, {} bytes, digest {}",
                self.header.id,
                tape.state.as_str(),
                tape.frame_count,
                tape.byte_count,
                tape.digest.as_deref().unwrap_or("none"),
                expected.as_str(),
                summary.frame_count,
                summary.byte_count,
                summary.digest.as_deref().unwrap_or("none"),
            ));
        }
        Ok(())
    }
}

/// Syncs `spool` on the blocking pool.
async fn sync(spool: &Arc<SpoolFile>) -> std::io::Result<()> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || spool.sync())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
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
