//! [`run_proxy`]: run an MCP server over stdio between a client and the
//! recorder.
//!
//! The MCP stdio transport is newline-delimited JSON-RPC: each message is one
//! line. The proxy reads raw bytes line by line (`\n`-terminated; a final line
//! without `\n` counts too) from each side, records the line without its
//! `\n` (a `\r` before it stays in the payload), stamped with the time it
//! was read, then writes exactly the bytes read to the other side and
//! flushes. Recording writes the frame to the spool file and queues it, so
//! forwarding never waits on the provider, a line the other side saw is
//! always in the spool (a crash cannot lose it), and a reaction of the other
//! side is always recorded after the line it reacts to. Lines that are not
//! JSON are forwarded and recorded (flagged), never dropped. The server's
//! stderr is not touched: it is inherited.
//!
//! Ends: when the client closes its side, the server's stdin is closed and the
//! proxy keeps forwarding the server's output until the server closes its
//! stdout; when the server closes its stdout (or exits), the proxy stops
//! reading the client and closes the server's stdin. Then it waits for the
//! server and finishes the tape. The outcome carries the server's exit code
//! (128 + signal number when a signal killed it).
//!
//! If writing to one side fails (it went away), the line that was read is
//! still recorded: client lines stop being read, as the server cannot take
//! them any more; server lines keep being read and recorded, unforwarded, so
//! the server never blocks on a full pipe while it shuts down.

use super::line::now_us;
use super::{RecordError, Recorder, Recording, TapeMeta};
use crate::store::TapeStore;
use std::ffi::OsString;
use std::io;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use tapedeck_types::{Direction, TapeInfo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Read buffer per direction.
const READ_BUFFER: usize = 64 * 1024;

/// A proxied session that ended and was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOutcome {
    /// The server's exit code; 128 + the signal number if a signal ended it.
    pub exit_code: i32,
    /// The finished tape, as the provider reported it.
    pub tape: TapeInfo,
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
    /// Waiting for the command failed (the tape was finished all the same).
    #[error("cannot wait for `{command}`: {error}")]
    Wait {
        /// The command line.
        command: String,
        /// What the operating system said.
        error: io::Error,
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
/// by `meta` (see the module docs for the forwarding rules).
///
/// The server's stdin and stdout are pipes; its stderr is inherited. The
/// server is killed if the returned future is dropped before it ends.
pub async fn run_proxy<S: TapeStore + 'static>(
    recorder: &Recorder<S>,
    command: &[OsString],
    meta: TapeMeta,
    client_in: impl AsyncRead,
    client_out: impl AsyncWrite,
) -> Result<ProxyOutcome, ProxyError> {
    let (program, args) = command.split_first().ok_or(ProxyError::NoCommand)?;
    let command_line = display_command(command);
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| ProxyError::Spawn {
            command: command_line.clone(),
            error,
        })?;
    let (Some(child_in), Some(child_out)) = (child.stdin.take(), child.stdout.take()) else {
        unreachable!("stdin and stdout were configured as pipes");
    };

    let recording = match recorder.start(meta).await {
        Ok(r) => r,
        Err(error) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(ProxyError::Start {
                command: command_line,
                error,
            });
        }
    };

    {
        let to_server = pin!(pump(
            client_in,
            child_in,
            Direction::ClientToServer,
            &recording,
        ));
        let mut to_client = pin!(pump(
            child_out,
            client_out,
            Direction::ServerToClient,
            &recording,
        ));
        tokio::select! {
            // The client is done (the server's stdin is closed): forward the
            // server's remaining output.
            () = to_server => to_client.await,
            // The server closed its stdout: stop reading the client; leaving
            // this block closes the server's stdin.
            () = &mut to_client => {}
        }
    }

    let status = child.wait().await;
    let exit_code = status.as_ref().map_or(1, |s| exit_code(*s));
    let finished = recording.finish().await;
    let status = status.map_err(|error| ProxyError::Wait {
        command: command_line.clone(),
        error,
    });
    match (status, finished) {
        (Ok(_), Ok(outcome)) => Ok(ProxyOutcome {
            exit_code,
            tape: outcome.tape,
        }),
        (Err(e), _) => Err(e),
        (Ok(_), Err(error)) => Err(ProxyError::Record {
            command: command_line,
            exit_code,
            error,
        }),
    }
}

/// Forwards lines from `from` to `to` and records them, until `from` ends.
async fn pump(
    from: impl AsyncRead,
    to: impl AsyncWrite,
    direction: Direction,
    recording: &Recording,
) {
    let from = pin!(from);
    let mut reader = BufReader::with_capacity(READ_BUFFER, from);
    let mut to = pin!(to);
    let mut forwarding = true;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(
                    target: "tapedeck::recorder",
                    tape = %recording.id(),
                    "reading the {} side failed: {e}; treating it as closed",
                    source_side(direction)
                );
                return;
            }
        }
        let read_at = now_us();
        // Recorded (written to the spool) before it is forwarded: a line the
        // other side saw is always in the spool, and nothing the other side
        // sends in reaction can be recorded before it (both directions run
        // on this task).
        let payload = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
        recording.record_at(direction, payload, read_at);
        if forwarding {
            let flushed = match to.write_all(&line).await {
                Ok(()) => to.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = flushed {
                tracing::warn!(
                    target: "tapedeck::recorder",
                    tape = %recording.id(),
                    "the {} side went away ({e}); lines are no longer forwarded to it",
                    target_side(direction)
                );
                forwarding = false;
            }
        }
        if !forwarding && direction == Direction::ClientToServer {
            // The server no longer takes input; stop reading the client.
            return;
        }
    }
}

/// The side lines in `direction` are read from.
fn source_side(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

/// The side lines in `direction` are written to.
fn target_side(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "server",
        Direction::ServerToClient => "client",
    }
}

/// The exit code of a process: its code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

/// The command line, for messages.
fn display_command(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
