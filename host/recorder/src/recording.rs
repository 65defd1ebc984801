//! [`Recording`]: the handle of one tape being recorded.

use super::RecorderOptions;
use super::batcher::{Batcher, End, Ended, Msg, Setup};
use super::error::RecordError;
use super::event::HostEvent;
use super::line::{is_json, now_us};
use crate::spool::{EndRecord, SpoolFile};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tapedeck_redact::Redactor;
use tapedeck_store::TapeStore;
use tapedeck_types::terms::payload_terms;
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
    redactor: Option<Arc<Redactor>>,
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
        redactor: Option<Arc<Redactor>>,
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
            redactor,
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
    /// A JSON line's frame carries the index terms the host derives from it
    /// ([`payload_terms`]: its method, the tool, resource or prompt named).
    pub fn record(&self, direction: Direction, line: Vec<u8>) {
        self.record_at(direction, line, now_us());
    }

    /// Like [`record`](Recording::record), with the time the line was read
    /// (µs since the Unix epoch). Timestamps never go backwards within a
    /// tape: one earlier than the previous frame's is raised to it.
    /// Returns the frame's sequence number.
    pub fn record_at(&self, direction: Direction, line: Vec<u8>, timestamp_us: u64) -> u64 {
        // Secrets never reach the spool or the store (the recorder's
        // redactor, when it has one).
        let line = match &self.redactor {
            Some(r) => match r.redact(&line).payload {
                std::borrow::Cow::Borrowed(_) => line,
                std::borrow::Cow::Owned(redacted) => redacted,
            },
            None => line,
        };
        let not_json = !is_json(&line);
        // The host derives the index terms; providers only store them.
        let terms = if not_json {
            Vec::new()
        } else {
            payload_terms(&line)
        };
        let mut s = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        let timestamp_us = timestamp_us.max(s.last_ts);
        let frame = Frame {
            seq: s.next_seq,
            timestamp_us,
            direction,
            payload: line,
            not_json,
            terms,
            attributes: Vec::new(),
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
        let seq = frame.seq;
        let _ = s.tx.send(Msg::Frame(frame));
        s.next_seq += 1;
        s.last_ts = timestamp_us;
        seq
    }

    /// Records what the host itself observed (see [`HostEvent`]) as a frame,
    /// stamped now; returns its sequence number.
    pub fn record_event(&self, event: &HostEvent) -> u64 {
        self.record_at(event.direction(), event.to_payload(), now_us())
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
        self.finish_in_background().await
    }

    /// Stores every frame recorded and aborts the tape with `reason`: it
    /// becomes `aborted`, keeping its frames.
    pub async fn abort(self, reason: &str) -> Result<(), RecordError> {
        self.abort_in_background(reason).await.map(drop)
    }

    /// Ends the recording now and lets the tape be finished in the
    /// background: returns once the end is durable in the spool (with a
    /// spool; recovery then finishes the tape `finished` even if this
    /// process stops before the provider has it), with a [`Finishing`]
    /// to await the provider's answer. Dropping the `Finishing` does not
    /// stop the task (it runs as long as the runtime does).
    pub fn finish_in_background(self) -> Finishing {
        self.end(End::Finish)
    }

    /// Like [`finish_in_background`](Recording::finish_in_background), but
    /// the tape is aborted with `reason`.
    pub fn abort_in_background(self, reason: &str) -> Finishing {
        self.end(End::Abort(reason.to_string()))
    }

    fn end(self, end: End) -> Finishing {
        let Recording {
            id,
            seq,
            task,
            spool_path,
            redactor: _,
        } = self;
        let ended_at_us = now_us();
        let s = seq.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some(spool) = &s.spool {
            // Durable before anything else: recovery ends the tape this way.
            let record = EndRecord {
                reason: end.reason(),
                ended_at_us,
            };
            if let Err(e) = spool.write_end(&record) {
                tracing::error!(target: "tapedeck::recorder", tape = %id, "spool: {e}");
            }
        }
        let _ = s.tx.send(Msg::End(end, ended_at_us));
        // `s.tx` drops here: the task sees the end of the channel after the
        // end request.
        Finishing {
            id,
            recorded: s.next_seq,
            spool_path,
            task,
        }
    }
}

/// A recording whose end is recorded, its tape being finished by its task
/// ([`Recording::finish_in_background`]). Await it for the outcome.
pub struct Finishing {
    id: String,
    recorded: u64,
    spool_path: Option<PathBuf>,
    task: JoinHandle<Result<Ended, RecordError>>,
}

impl std::fmt::Debug for Finishing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finishing")
            .field("id", &self.id)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl Finishing {
    /// The tape's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Frames recorded in all.
    pub fn frames_recorded(&self) -> u64 {
        self.recorded
    }

    /// The tape's spool file (where its frames and end wait), if the
    /// recorder has a spool.
    pub fn spool_path(&self) -> Option<&std::path::Path> {
        self.spool_path.as_deref()
    }
}

impl Future for Finishing {
    type Output = Result<RecordingOutcome, RecordError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let joined = std::task::ready!(Pin::new(&mut this.task).poll(cx));
        Poll::Ready(match joined {
            Ok(Ok(Ended::Finished(outcome) | Ended::Aborted(outcome))) => Ok(*outcome),
            Ok(Ok(Ended::Dropped)) => unreachable!("the task was asked to end the tape"),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(RecordError::Task {
                id: this.id.clone(),
                recorded: this.recorded,
                detail: if e.is_panic() {
                    "it panicked".to_string()
                } else {
                    e.to_string()
                },
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::spool::{ProviderKey, Spool, SpoolEntry};
    use crate::{HostEvent, Recorder, RecorderOptions, TapeMeta};
    use std::sync::Arc;
    use tapedeck_store::TapeStore;
    use tapedeck_store::testing::MemStore;
    use tapedeck_types::Direction;

    #[tokio::test]
    async fn recorded_frames_carry_the_terms_the_host_derives() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new("mem"));
        let recorder = Recorder::new(store.clone(), RecorderOptions::default()).with_spool(
            Spool::open(dir.path()).unwrap(),
            ProviderKey::from_parts("mem", "00"),
        );
        let rec = recorder.start(TapeMeta::named("t")).await.unwrap();
        let lines: [&[u8]; 4] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
            br#"{"method":"tools/call","params":{"name":"x"}"#,
            br#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"p"}}]"#,
        ];
        for (i, line) in lines.iter().enumerate() {
            let dir = if i % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            rec.record(dir, line.to_vec());
        }
        rec.record_event(&HostEvent::Stderr {
            text: "boom".into(),
        });
        let want: [&[&str]; 5] = [
            &["method:tools/call", "tool:transfer"],
            &[],
            &[],
            &["method:a", "method:prompts/get", "prompt:p"],
            &[],
        ];
        // In the spool from the start (as the frames were written).
        let entry = SpoolEntry::read(rec.spool_path().unwrap()).unwrap();
        let spooled = entry
            .frame_reader()
            .unwrap()
            .next_batch(10, u64::MAX)
            .unwrap();
        assert_eq!(spooled.len(), 5);
        for (f, want) in spooled.iter().zip(want) {
            assert_eq!(f.terms, want, "frame {}", f.seq);
        }
        // And at the provider.
        let id = rec.id().to_string();
        rec.finish().await.unwrap();
        let stored = store.read_frames(&id, 0, 10, u64::MAX).await.unwrap();
        assert_eq!(stored, spooled);
        assert!(stored[2].not_json && stored[4].not_json);
        assert_eq!(
            HostEvent::of(&stored[4]),
            Some(HostEvent::Stderr {
                text: "boom".into()
            })
        );
        assert!(stored.iter().all(|f| f.attributes.is_empty()));
    }

    #[tokio::test]
    async fn a_redactor_keeps_secrets_out_of_the_spool_and_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemStore::new("mem"));
        let redactor = Arc::new(tapedeck_redact::Redactor::new(
            tapedeck_redact::Rules::preset(),
            [3; 32],
        ));
        let recorder = Recorder::new(store.clone(), RecorderOptions::default())
            .with_spool(
                Spool::open(dir.path()).unwrap(),
                ProviderKey::from_parts("mem", "00"),
            )
            .with_redactor(redactor.clone());
        let rec = recorder.start(TapeMeta::named("t")).await.unwrap();
        let secret = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"login","arguments":{{"password":"pa55word!","note":"{secret}"}}}}}}"#
        );
        rec.record(Direction::ClientToServer, line.into_bytes());
        rec.record_event(&HostEvent::Stderr {
            text: format!("using {secret}"),
        });
        let spool_file = rec.spool_path().unwrap().to_path_buf();
        let spooled = std::fs::read(&spool_file).unwrap();
        for s in [secret.as_bytes(), b"pa55word!"] {
            assert!(
                !spooled.windows(s.len()).any(|w| w == s),
                "spooled in clear"
            );
        }
        let id = rec.id().to_string();
        rec.finish().await.unwrap();
        let stored = store.read_frames(&id, 0, 10, u64::MAX).await.unwrap();
        let placeholder = redactor.placeholder("github-token", secret.as_bytes());
        let first = String::from_utf8(stored[0].payload.clone()).unwrap();
        assert!(
            first.contains(&placeholder) && !first.contains("pa55word!"),
            "{first}"
        );
        // Still JSON, still indexed by method and tool.
        assert!(!stored[0].not_json);
        assert_eq!(stored[0].terms, ["method:tools/call", "tool:login"]);
        assert_eq!(
            HostEvent::of(&stored[1]),
            Some(HostEvent::Stderr {
                text: format!("using {placeholder}")
            })
        );
    }
}
