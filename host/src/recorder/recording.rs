//! [`Recording`]: the handle of one tape being recorded.

use super::RecorderOptions;
use super::batcher::{Batcher, End, Ended, Msg, Setup};
use super::error::RecordError;
use super::line::{is_json, now_us};
use crate::spool::SpoolFile;
use crate::store::TapeStore;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tapedeck_types::{Direction, Frame, TapeInfo, TapeSummary};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

/// What a recording's task did with the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// `append` calls made (including failed ones).
    pub appends: u64,
    /// `append` calls that failed (and were retried or given up).
    pub failed_appends: u64,
    /// Frames delivered again because the provider lost them after
    /// acknowledging them (read back from the spool).
    pub redelivered: u64,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingOutcome {
    /// The tape as the provider reported it after `finish`.
    pub tape: TapeInfo,
    /// The summary the tape was finished with (counts, end time, digest).
    pub summary: TapeSummary,
    /// How the frames got to the provider.
    pub stats: WriteStats,
}

/// What [`Recording::record`] updates under its lock.
struct Sequencer {
    next_seq: u64,
    last_ts: u64,
    tx: UnboundedSender<Msg>,
    /// Where each frame is written before it is queued.
    spool: Option<Arc<SpoolFile>>,
}

/// One tape being recorded.
///
/// [`record`](Recording::record) queues a frame and returns at once; a
/// background task (one per recording, on the current tokio runtime) batches
/// the frames to the provider. End the tape with [`finish`](Recording::finish)
/// or [`abort`](Recording::abort). Dropping a `Recording` without either
/// stores the frames already recorded (as far as the provider allows) and
/// leaves the tape `recording`, and its spool file (if any) for recovery
/// ([`crate::spool::recover_all`]), which ends it `crashed`.
///
/// `Recording` is `Send + Sync`: several tasks may record into the same tape;
/// frames are numbered in the order their `record` calls took the handle's
/// lock.
pub struct Recording {
    id: String,
    spool_path: Option<PathBuf>,
    seq: Mutex<Sequencer>,
    task: JoinHandle<Result<Ended, RecordError>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("id", &self.id)
            .field("frames", &self.frames_recorded())
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Starts the background task for a tape whose writer was just created.
    pub(crate) fn spawn<S: TapeStore + 'static>(
        setup: Setup<S>,
        options: &RecorderOptions,
    ) -> Recording {
        let id = setup.header.id.clone();
        let spool = setup.spool.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let batcher = Batcher::new(setup, options);
        let task = tokio::spawn(batcher.run(rx));
        Recording {
            id,
            spool_path: spool.as_ref().map(|s| s.path().to_path_buf()),
            seq: Mutex::new(Sequencer {
                next_seq: 0,
                last_ts: 0,
                tx,
                spool,
            }),
            task,
        }
    }

    /// The tape's spool file, if the recorder has a spool.
    pub fn spool_path(&self) -> Option<&std::path::Path> {
        self.spool_path.as_deref()
    }

    /// The tape's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Frames recorded so far (the next frame's sequence number).
    pub fn frames_recorded(&self) -> u64 {
        self.seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_seq
    }

    /// Records one line that crossed the session, stamped now. Never waits
    /// for the provider: the frame is written to the spool file (one
    /// `write`, not synced; see [`crate::spool`]) and queued for the
    /// background task. Call it *before* forwarding the line, so a frame the
    /// other side saw is always in the spool.
    ///
    /// `line` is the message without its line terminator, verbatim; a line
    /// that is not valid JSON is recorded all the same, flagged `not_json`.
    pub fn record(&self, direction: Direction, line: Vec<u8>) {
        self.record_at(direction, line, now_us());
    }

    /// Like [`record`](Recording::record), with the time the line was read
    /// (µs since the Unix epoch). Timestamps never go backwards within a
    /// tape: one earlier than the previous frame's is raised to it.
    pub fn record_at(&self, direction: Direction, line: Vec<u8>, timestamp_us: u64) {
        let not_json = !is_json(&line);
        let mut s = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        let timestamp_us = timestamp_us.max(s.last_ts);
        let frame = Frame {
            seq: s.next_seq,
            timestamp_us,
            direction,
            payload: line,
            not_json,
        };
        if let Some(spool) = &s.spool
            && let Err(e) = spool.write_frame(&frame)
        {
            // Forwarding goes on; the frame still reaches the provider from
            // memory, but is no longer protected against a crash.
            tracing::error!(
                target: "tapedeck::recorder",
                tape = %self.id,
                "spool: {e}; from frame {} on, a crash of tapedeck would lose the frames not yet delivered",
                frame.seq
            );
        }
        // The send fails only if the task is gone (it panicked); `finish`
        // reports that, with the count of frames recorded.
        let _ = s.tx.send(Msg::Frame(frame));
        s.next_seq += 1;
        s.last_ts = timestamp_us;
    }

    /// Stores every frame recorded and finishes the tape (reason
    /// `completed`) with a summary whose digest is the
    /// [`DigestChain`](super::DigestChain) of its frames.
    ///
    /// Waits for the queued frames to be appended. Fails with
    /// [`RecordError::NotStored`] when frames could not be stored (the tape
    /// is then marked aborted, best effort), with [`RecordError::Finish`]
    /// when the provider refused `finish`.
    pub async fn finish(self) -> Result<RecordingOutcome, RecordError> {
        match self.end(End::Finish).await? {
            Ended::Finished(outcome) => Ok(*outcome),
            _ => unreachable!("the task answers Finish with Finished"),
        }
    }

    /// Stores every frame recorded and aborts the tape with `reason`: it
    /// becomes `aborted`, keeping its frames.
    pub async fn abort(self, reason: &str) -> Result<(), RecordError> {
        self.end(End::Abort(reason.to_string())).await.map(|_| ())
    }

    async fn end(self, end: End) -> Result<Ended, RecordError> {
        let Recording { id, seq, task, .. } = self;
        let recorded = {
            let s = seq.into_inner().unwrap_or_else(PoisonError::into_inner);
            let _ = s.tx.send(Msg::End(end));
            s.next_seq
            // `s.tx` drops here: the task sees the end of the channel after
            // the end request.
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(RecordError::Task {
                id,
                recorded,
                detail: if e.is_panic() {
                    "it panicked".to_string()
                } else {
                    e.to_string()
                },
            }),
        }
    }
}
