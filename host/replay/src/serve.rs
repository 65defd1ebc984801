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
}

impl OnMiss {
    /// Parses `error` or `fail`.
    pub fn parse(s: &str) -> Result<OnMiss, String> {
        match s {
            "error" => Ok(OnMiss::Error),
            "fail" => Ok(OnMiss::Fail),
            _ => Err(format!("unknown --on-miss `{s}` (known: error, fail)")),
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
