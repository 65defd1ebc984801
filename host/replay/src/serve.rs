//! Serving a [`Replayer`] over a byte stream (stdio for `tapedeck replay`):
//! one JSON-RPC message per line in, the recorded answers out.

use crate::engine::{Outgoing, ReplayError, Replayer, Report};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// What to do after a client request matched nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMiss {
    /// Answer it with a JSON-RPC error and go on. The default.
    #[default]
    Error,
    /// Answer it with a JSON-RPC error and end the replay.
    Fail,
    /// Forward it to a live server ([`serve_with_live`]), which sees the
    /// whole session, and relay that server's answer.
    Passthrough,
}

impl OnMiss {
    /// Parses `error` or `fail`.
    pub fn parse(s: &str) -> Result<OnMiss, String> {
        match s {
            "error" => Ok(OnMiss::Error),
            "fail" => Ok(OnMiss::Fail),
            "passthrough" => Ok(OnMiss::Passthrough),
            _ => Err(format!(
                "unknown --on-miss `{s}` (known: error, fail, passthrough)"
            )),
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(
    out: &mut W,
    messages: Vec<Outgoing>,
) -> Result<(), ReplayError> {
    for m in messages {
        if !m.delay.is_zero() {
            tokio::time::sleep(m.delay).await;
        }
        out.write_all(&m.bytes).await?;
        out.write_all(b"\n").await?;
        out.flush().await?;
    }
    Ok(())
}

/// Answers the client on `input` / `output` until it closes its side (or,
/// with [`OnMiss::Fail`], until a request matches nothing). `on_miss_text`
/// gets each miss, described with its nearest candidates (for stderr).
pub async fn serve<R, W>(
    replayer: &mut Replayer,
    input: R,
    mut output: W,
    on_miss: OnMiss,
    mut on_miss_text: impl FnMut(&str),
) -> Result<Report, ReplayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    write_all(&mut output, replayer.opening()).await?;
    let mut lines = input.split(b'\n');
    while let Some(mut line) = lines.next_segment().await? {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let misses = replayer.report().misses.len();
        let answer = replayer.handle(&line);
        write_all(&mut output, answer).await?;
        let report = replayer.report();
        if let Some(miss) = report.misses.get(misses) {
            on_miss_text(&miss.to_string());
            if on_miss == OnMiss::Fail {
                break;
            }
        }
    }
    Ok(replayer.report())
}

/// Sees every line of a session as it crosses (`record --mode
/// new-episodes` records them): the client's, and what the client got.
pub type Tap = std::sync::Arc<dyn Fn(tapedeck_types::Direction, &[u8]) + Send + Sync>;

/// [`serve`] with a live server beside the tape ([`OnMiss::Passthrough`]):
/// every client message also goes to the live server (so its session state
/// follows the client's), the tape answers what it matches, and a request
/// it does not match is answered by the live server instead (its answer
/// relayed; the miss still counts in the report). Other live traffic is
/// dropped.
pub async fn serve_with_live<R, W, LR, LW>(
    replayer: &mut Replayer,
    input: R,
    output: W,
    live_out: LR,
    mut live_in: LW,
    tap: Option<Tap>,
    mut on_miss_text: impl FnMut(&str),
) -> Result<Report, ReplayError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    LR: AsyncBufRead + Unpin + Send + 'static,
    LW: AsyncWrite + Unpin,
{
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Outgoing>>();
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(batch) = rx.recv().await {
            write_all(&mut output, batch).await?;
        }
        Ok::<(), ReplayError>(())
    });
    // What the client gets is tapped where it is decided (below, and in
    // the relay), in the order it is sent.
    let tap_out = |tap: &Option<Tap>, batch: &[Outgoing]| {
        if let Some(tap) = tap {
            for m in batch {
                tap(tapedeck_types::Direction::ServerToClient, &m.bytes);
            }
        }
    };
    // Ids of the client requests the live server answers.
    let forwarded: Arc<Mutex<HashSet<String>>> = Arc::default();
    let relay = {
        let forwarded = forwarded.clone();
        let tx = tx.clone();
        let tap = tap.clone();
        tokio::spawn(async move {
            let mut lines = live_out.split(b'\n');
            while let Ok(Some(line)) = lines.next_segment().await {
                let id = serde_json::from_slice::<serde_json::Value>(&line)
                    .ok()
                    .filter(|v| v.get("method").is_none())
                    .and_then(|v| v.get("id").map(|i| i.to_string()));
                let ours = id
                    .is_some_and(|id| forwarded.lock().map(|mut f| f.remove(&id)).unwrap_or(false));
                if ours {
                    let out = Outgoing {
                        bytes: line,
                        delay: std::time::Duration::ZERO,
                        seq: 0,
                    };
                    if let Some(tap) = &tap {
                        tap(tapedeck_types::Direction::ServerToClient, &out.bytes);
                    }
                    if tx.send(vec![out]).is_err() {
                        break;
                    }
                }
            }
        })
    };
    let opening = replayer.opening();
    tap_out(&tap, &opening);
    let _ = tx.send(opening);
    let mut lines = input.split(b'\n');
    while let Some(mut line) = lines.next_segment().await? {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(tap) = &tap {
            tap(tapedeck_types::Direction::ClientToServer, &line);
        }
        let misses = replayer.report().misses.len();
        let answer = replayer.handle(&line);
        let missed = replayer.report().misses.get(misses).cloned();
        let id = serde_json::from_slice::<serde_json::Value>(&line)
            .ok()
            .filter(|v| v.get("method").is_some())
            .and_then(|v| v.get("id").map(|i| i.to_string()));
        match (&missed, id) {
            (Some(miss), Some(id)) => {
                if let Ok(mut f) = forwarded.lock() {
                    f.insert(id);
                }
                on_miss_text(&format!("{miss}\n  (forwarded to the live server)"));
            }
            (Some(miss), None) => {
                on_miss_text(&miss.to_string());
                tap_out(&tap, &answer);
                let _ = tx.send(answer);
            }
            (None, _) => {
                tap_out(&tap, &answer);
                let _ = tx.send(answer);
            }
        }
        // The live server sees the whole session.
        live_in.write_all(&line).await?;
        live_in.write_all(b"\n").await?;
        live_in.flush().await?;
    }
    drop(live_in);
    // Answers to forwarded requests may still be on their way.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while forwarded.lock().map(|f| !f.is_empty()).unwrap_or(false)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    relay.abort();
    drop(tx);
    writer
        .await
        .map_err(|e| ReplayError::Io(std::io::Error::other(e)))??;
    Ok(replayer.report())
}
