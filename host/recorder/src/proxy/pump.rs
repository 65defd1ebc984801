//! One direction of the session: read lines, record each, then forward it.

use super::super::Recording;
use super::super::event::HostEvent;
use super::super::line::now_us;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tapedeck_types::Direction;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Read buffer per direction.
const READ_BUFFER: usize = 64 * 1024;

/// What the pumps tell the proxy while they run.
#[derive(Debug, Default)]
pub(super) struct PumpState {
    /// Lines read from the server's stdout.
    pub(super) server_lines: AtomicU64,
    /// Writing to the client failed: it went away.
    pub(super) client_gone: AtomicBool,
    /// Writing to the server failed: it no longer takes input.
    pub(super) server_gone: AtomicBool,
}

/// Forwards lines from `from` to `to` and records them, until `from` ends
/// (or, toward the server, until the server stops taking lines).
///
/// Each line is recorded (written to the spool) before it is forwarded, so a
/// line the other side saw is always in the spool and nothing the other side
/// sends in reaction can be recorded before it (both directions run on one
/// task). When writing fails, the line is still recorded, an
/// [`HostEvent::Undelivered`] marks it and what follows in that direction,
/// and: toward the server, reading the client stops; toward the client,
/// server lines keep being read and recorded, so the server never blocks on
/// a full pipe while it shuts down.
pub(super) async fn pump(
    from: impl AsyncRead,
    to: impl AsyncWrite,
    direction: Direction,
    recording: &Recording,
    state: &PumpState,
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
        if direction == Direction::ServerToClient {
            state.server_lines.fetch_add(1, Ordering::Relaxed);
        }
        let payload = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
        let seq = recording.record_at(direction, payload, read_at);
        if forwarding {
            let flushed = match to.write_all(&line).await {
                Ok(()) => to.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = flushed {
                let side = target_side(direction);
                tracing::warn!(
                    target: "tapedeck::recorder",
                    tape = %recording.id(),
                    "the {side} side went away ({e}); lines are no longer forwarded to it"
                );
                recording.record_event(&HostEvent::Undelivered {
                    to: side.to_string(),
                    from_seq: seq,
                    error: e.to_string(),
                });
                match direction {
                    Direction::ClientToServer => state.server_gone.store(true, Ordering::Relaxed),
                    Direction::ServerToClient => state.client_gone.store(true, Ordering::Relaxed),
                }
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
