//! [`Proxy`]: run an MCP server over stdio between a client and the
//! recorder.
//!
//! The MCP stdio transport is newline-delimited JSON-RPC: each message is one
//! line. The proxy reads raw bytes line by line (`\n`-terminated; a final line
//! without `\n` counts too) from each side, records the line without its
//! `\n` (a `\r` before it stays in the payload), stamped with the time it
//! was read, then writes exactly the bytes read to the other side and
//! flushes (`pump.rs`). Recording writes the frame to the spool file and
//! queues it, so forwarding never waits on the provider, from the first
//! byte: with a spool, the tape is created at the provider by the
//! recording's task ([`Recorder::start_spooled`]), so a provider that is
//! still starting (compiling its component) or down holds nothing up.
//!
//! # The server process
//!
//! The server runs in a process group of its own (`child.rs`); its stdin and
//! stdout are the session, its stderr is passed through live to tapedeck's
//! stderr and kept, bounded, in the tape (`stderr.rs`).
//!
//! # How a session ends
//!
//! - The client closes its side: the server's stdin is closed, and the proxy
//!   forwards the server's output until it closes its stdout and exits.
//! - The server closes its stdout or exits: the proxy stops reading the
//!   client and closes the server's stdin; what the server wrote before
//!   exiting is still forwarded (for up to [`ProxyOptions::drain`] while
//!   other processes hold its stdout open).
//! - A termination signal ([`Signals`]: `SIGTERM`, `SIGINT`, `SIGHUP`) is
//!   passed on to the server's process group; the proxy stops reading the
//!   client, keeps forwarding what the server still writes, and kills the
//!   group if it has not exited within `exit-grace`. A second signal kills
//!   it at once.
//!
//! Whatever the end, nothing of the server's group is left running once the
//! proxy returns (what the server left behind gets `SIGTERM`, then
//! `SIGKILL`). The tape then gets [`HostEvent`]s saying what happened: the
//! server's stderr, a signal, a kill, lines a side could no longer take,
//! and a final `session-end` (why, and how the server exited).
//!
//! The end of the tape is written to the spool (durable) before the proxy
//! waits on the provider; after a signal it waits at most
//! [`ProxyOptions::finish_after_signal`], so tapedeck exits within the grace
//! MCP clients give it: the tape is then finished — `finished`, as the
//! session really ended — by the next `tapedeck` command's recovery
//! ([`Stored::Spooled`]). A server that exits with a failure before writing
//! anything did not start: its tape is aborted ([`ProxyOutcome::failed_to_start`]).

mod child;
mod pump;
mod signals;
mod stderr;

pub use signals::{SignalSender, Signals};

use super::event::{EndCause, HostEvent, ServerExit, signal_name};
use super::{RecordError, Recorder, TapeMeta};
use child::ServerProcess;
use pump::{PumpState, pump};
use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use stderr::{StderrMsg, StderrTask};
use tapedeck_store::TapeStore;
use tapedeck_types::{Direction, TapeInfo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// How a [`Proxy`] runs (the recorder's `exit-grace` and `stderr-capture`
/// come from its [`RecorderOptions`](super::RecorderOptions)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// After the server exited, how long its stdout and stderr are still
    /// read while other processes hold them open. Default 200 ms.
    pub drain: Duration,
    /// After a signal, how long the end of the tape may wait on the provider
    /// before the proxy returns with the tape in the spool. Default 300 ms.
    pub finish_after_signal: Duration,
    /// Write the server's stderr through to this process's stderr. Default
    /// true.
    pub stderr_passthrough: bool,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            drain: Duration::from_millis(200),
            finish_after_signal: Duration::from_millis(300),
            stderr_passthrough: true,
        }
    }
}

/// Where the tape of a proxied session is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The provider has it, ended: finished (or aborted, when the server
    /// failed to start), as a fresh `get` reported it.
    Ended(TapeInfo),
    /// Every frame and the end are in the spool file; the next `tapedeck`
    /// command using the provider (or `tapedeck recover`) delivers them and
    /// ends the tape as recorded.
    Spooled {
        /// The spool file.
        spool: PathBuf,
        /// Why the provider does not have it yet.
        reason: String,
    },
}

/// A proxied session that ended and was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOutcome {
    /// The tape's id.
    pub tape_id: String,
    /// Frames recorded, host events included.
    pub frames: u64,
    /// The exit code to pass on: the server's, or 128 + the signal that
    /// ended it.
    pub exit_code: i32,
    /// How the server ended.
    pub server: ServerExit,
    /// Why the session ended.
    pub cause: EndCause,
    /// The server exited with a failure before writing anything on stdout:
    /// it did not start. Its tape is aborted.
    pub failed_to_start: bool,
    /// The server's last stderr lines (at most 10), for a message about a
    /// server that failed.
    pub stderr_tail: Vec<String>,
    /// Where the tape is.
    pub stored: Stored,
}

impl ProxyOutcome {
    /// The tape as the provider reported it, if it has it already.
    pub fn tape(&self) -> Option<&TapeInfo> {
        match &self.stored {
            Stored::Ended(t) => Some(t),
            Stored::Spooled { .. } => None,
        }
    }
}

/// Why a proxied session could not be run or recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No command was given.
    #[error("no command given to run")]
    NoCommand,
    /// The command could not be started. No tape was created.
    #[error("cannot run `{command}`: {error}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the operating system said.
        error: io::Error,
    },
    /// The tape could not be created; the command was killed before it got
    /// any input.
    #[error("cannot create a tape for `{command}`: {error}")]
    Start {
        /// The command line.
        command: String,
        /// What went wrong.
        error: super::StartError,
    },
    /// The session ran, but the tape could not be stored completely.
    #[error("`{command}` exited with code {exit_code}, but its tape is not complete: {error}")]
    Record {
        /// The command line.
        command: String,
        /// The server's exit code.
        exit_code: i32,
        /// What went wrong with the tape.
        error: RecordError,
    },
}

/// Runs `command` (program and arguments) as an MCP stdio server between
/// `client_in` / `client_out` and records the session as a new tape described
/// by `meta`, with default [`ProxyOptions`] and no signals (see [`Proxy`]).
pub async fn run_proxy<S: TapeStore + 'static>(
    recorder: &Recorder<S>,
    command: &[OsString],
    meta: TapeMeta,
    client_in: impl AsyncRead,
    client_out: impl AsyncWrite,
) -> Result<ProxyOutcome, ProxyError> {
    Proxy::new(recorder, command, meta)
        .run(client_in, client_out)
        .await
}

/// One proxied session (see the module docs): the server command, the
/// tape's metadata, options and the signals it obeys.
pub struct Proxy<'a, S: TapeStore + 'static> {
    recorder: &'a Recorder<S>,
    command: &'a [OsString],
    meta: TapeMeta,
    options: ProxyOptions,
    signals: Signals,
}

impl<'a, S: TapeStore + 'static> Proxy<'a, S> {
    /// A session running `command` (program and arguments), recorded by
    /// `recorder` as a tape described by `meta`; default options, no
    /// signals.
    pub fn new(recorder: &'a Recorder<S>, command: &'a [OsString], meta: TapeMeta) -> Self {
        Proxy {
            recorder,
            command,
            meta,
            options: ProxyOptions::default(),
            signals: Signals::none(),
        }
    }

    /// Sets the options.
    pub fn options(mut self, options: ProxyOptions) -> Self {
        self.options = options;
        self
    }

    /// Ends the session on these signals ([`Signals::listen`] for the
    /// process's own).
    pub fn signals(mut self, signals: Signals) -> Self {
        self.signals = signals;
        self
    }

    /// Runs the session to its end and returns how it ended and where the
    /// tape is. If the returned future is dropped, the server's process
    /// group is killed and the tape is left to recovery.
    pub async fn run(
        mut self,
        client_in: impl AsyncRead,
        client_out: impl AsyncWrite,
    ) -> Result<ProxyOutcome, ProxyError> {
        let (program, args) = self.command.split_first().ok_or(ProxyError::NoCommand)?;
        let command_line = display_command(self.command);
        let exit_grace = self.recorder.options().exit_grace.as_duration();
        let (mut server, pipes) =
            ServerProcess::spawn(program, args).map_err(|error| ProxyError::Spawn {
                command: command_line.clone(),
                error,
            })?;
        let recording = match self.recorder.start_spooled(self.meta.clone()).await {
            Ok(r) => r,
            Err(error) => {
                server.end_group(exit_grace).await;
                return Err(ProxyError::Start {
                    command: command_line,
                    error,
                });
            }
        };
        let mut stderr = StderrTask::spawn(
            pipes.stderr,
            self.options.stderr_passthrough,
            self.recorder.options().stderr_capture.0,
        );
        let mut stderr_tail = Tail::default();
        let state = PumpState::default();
        let mut to_server = Some(Box::pin(pump(
            client_in,
            pipes.stdin,
            Direction::ClientToServer,
            &recording,
            &state,
        )));
        let mut to_client = Some(Box::pin(pump(
            pipes.stdout,
            client_out,
            Direction::ServerToClient,
            &recording,
            &state,
        )));
        let mut cause: Option<EndCause> = None;
        let mut signalled: Option<String> = None;
        let mut kill_at: Option<Instant> = None;
        let mut drain_until: Option<Instant> = None;
        let mut stderr_open = true;
        let capture_limit = self.recorder.options().stderr_capture.0;
        let record_stderr = |msg: StderrMsg, tail: &mut Tail| match msg {
            StderrMsg::Line(text) => {
                tail.push(&text);
                recording.record_event(&HostEvent::Stderr { text });
            }
            StderrMsg::Truncated => {
                recording.record_event(&HostEvent::StderrTruncated {
                    limit: capture_limit,
                });
            }
        };
        loop {
            if server.exit().is_some() && to_client.is_none() {
                break;
            }
            tokio::select! {
                () = run_opt(&mut to_server) => {
                    to_server = None;
                    cause.get_or_insert(if state.server_gone.load(Ordering::Relaxed) {
                        EndCause::ServerExited
                    } else {
                        EndCause::ClientClosed
                    });
                }
                () = run_opt(&mut to_client) => {
                    to_client = None;
                    if to_server.take().is_some() {
                        // The server closed its stdout first: stop reading
                        // the client (this closes the server's stdin).
                        cause.get_or_insert(EndCause::ServerExited);
                    }
                }
                _ = server.wait(), if server.exit().is_none() => {
                    drain_until = Some(Instant::now() + self.options.drain);
                }
                msg = stderr.lines.recv(), if stderr_open => match msg {
                    Some(msg) => record_stderr(msg, &mut stderr_tail),
                    None => stderr_open = false,
                },
                sig = self.signals.recv() => {
                    let name = signal_name(sig);
                    recording.record_event(&HostEvent::Signal { signal: name.clone() });
                    if signalled.is_none() {
                        cause.get_or_insert(EndCause::Signal(name.clone()));
                        signalled = Some(name);
                        // The session is over: close the server's stdin too.
                        to_server = None;
                        server.signal_group(sig);
                        kill_at = Some(Instant::now() + exit_grace);
                    } else {
                        kill_at = Some(Instant::now());
                    }
                }
                () = sleep_until_opt(kill_at) => {
                    kill_at = None;
                    if server.exit().is_none() && server.signal_group(9) {
                        recording.record_event(&HostEvent::Killed {
                            reason: format!(
                                "it had not exited {} ms after {}",
                                exit_grace.as_millis(),
                                signalled.as_deref().unwrap_or("the signal")
                            ),
                        });
                    }
                }
                () = sleep_until_opt(drain_until) => {
                    // The server exited, but processes it started still hold
                    // its stdout: stop reading it.
                    drain_until = None;
                    to_client = None;
                    to_server = None;
                }
            }
        }
        drop(to_server);
        drop(to_client);

        // Nothing of the server may outlive the session.
        if server.end_group(exit_grace).await {
            recording.record_event(&HostEvent::Killed {
                reason: "processes the server started were still running after it exited".into(),
            });
        }
        stderr.finish(self.options.drain).await;
        while let Ok(msg) = stderr.lines.try_recv() {
            record_stderr(msg, &mut stderr_tail);
        }
        let exit = server.exit().cloned().unwrap_or(ServerExit::Unknown);
        let failed = match &exit {
            ServerExit::Code(c) => *c != 0,
            ServerExit::Signal(_) => signalled.is_none(),
            ServerExit::Unknown => false,
        };
        let failed_to_start = failed && state.server_lines.load(Ordering::Relaxed) == 0;
        let cause = cause.unwrap_or(if state.client_gone.load(Ordering::Relaxed) {
            EndCause::ClientGone
        } else {
            EndCause::ServerExited
        });
        let end = HostEvent::SessionEnd {
            cause: cause.clone(),
            server: exit.clone(),
            failed_to_start,
            stderr_dropped: stderr.dropped.load(Ordering::Relaxed),
        };
        recording.record_event(&end);
        let tape_id = recording.id().to_string();
        let finishing = if failed_to_start {
            recording.abort_in_background(&format!(
                "the server `{command_line}` {exit} before writing anything: it did not start"
            ))
        } else {
            recording.finish_in_background()
        };
        let frames = finishing.frames_recorded();
        let spool = finishing.spool_path().map(PathBuf::from);

        // The end is durable in the spool (if there is one): wait on the
        // provider only as long as nobody asks tapedeck to stop.
        let finished = wait_unless_signalled(
            finishing,
            &mut self.signals,
            signalled.clone(),
            self.options.finish_after_signal,
            spool.is_some(),
        )
        .await;
        let stored = match finished {
            Waited::Done(Ok(outcome)) => Stored::Ended(outcome.tape),
            Waited::Done(Err(RecordError::Spooled { spool, error, .. })) => Stored::Spooled {
                spool,
                reason: error.to_string(),
            },
            Waited::Done(Err(error)) => {
                return Err(ProxyError::Record {
                    command: command_line,
                    exit_code: exit.exit_code(),
                    error,
                });
            }
            Waited::Stopped(signal) => Stored::Spooled {
                spool: spool.expect("only a spooled recording stops waiting"),
                reason: format!(
                    "tapedeck received {signal} before the provider had stored the tape"
                ),
            },
        };
        Ok(ProxyOutcome {
            tape_id,
            frames,
            exit_code: exit.exit_code(),
            server: exit,
            cause,
            failed_to_start,
            stderr_tail: stderr_tail.lines,
            stored,
        })
    }
}

/// What [`wait_unless_signalled`] saw.
enum Waited<T> {
    /// The future completed.
    Done(T),
    /// A signal stopped the wait (its name).
    Stopped(String),
}

/// Awaits `fut`; when a signal arrived before (`signalled`: its name) or arrives
/// meanwhile, only for `grace` more, and not at all when the work cannot be
/// left to recovery (`can_stop` false: no spool).
async fn wait_unless_signalled<F: Future>(
    fut: F,
    signals: &mut Signals,
    signalled: Option<String>,
    grace: Duration,
    can_stop: bool,
) -> Waited<F::Output> {
    if !can_stop {
        return Waited::Done(fut.await);
    }
    let mut fut = std::pin::pin!(fut);
    let name = if let Some(name) = signalled {
        name
    } else {
        tokio::select! {
            out = &mut fut => return Waited::Done(out),
            sig = signals.recv() => signal_name(sig),
        }
    };
    match tokio::time::timeout(grace, fut).await {
        Ok(out) => Waited::Done(out),
        Err(_) => Waited::Stopped(name),
    }
}

/// The last stderr lines of the server.
#[derive(Default)]
struct Tail {
    lines: Vec<String>,
}

impl Tail {
    const KEEP: usize = 10;

    fn push(&mut self, line: &str) {
        if self.lines.len() == Self::KEEP {
            self.lines.remove(0);
        }
        self.lines.push(line.chars().take(500).collect());
    }
}

/// Runs the future in `slot` to its end; pending forever when there is none.
async fn run_opt<F: Future<Output = ()> + Unpin>(slot: &mut Option<F>) {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The command line, for messages.
fn display_command(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
