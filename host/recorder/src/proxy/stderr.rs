//! The server's stderr: passed through live to tapedeck's own stderr, and
//! captured, bounded, for the tape.
//!
//! A task of its own reads it, so a slow reader of tapedeck's stderr never
//! holds up the session's traffic. Lines (split at `\n`; a longer line is
//! cut at [`MAX_LINE`] bytes) go to the proxy over a channel, which records
//! each as a [`HostEvent::Stderr`](super::super::event::HostEvent); past
//! the capture limit, one `StderrTruncated` and then only a count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Longest stderr line kept in one event; longer lines are split.
pub(super) const MAX_LINE: usize = 8 * 1024;

/// What the stderr task sends to the proxy.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StderrMsg {
    /// One line (without its `\n`), invalid UTF-8 replaced.
    Line(String),
    /// The capture limit was reached; nothing more is captured.
    Truncated,
}

/// The running stderr task.
pub(super) struct StderrTask {
    pub(super) lines: mpsc::UnboundedReceiver<StderrMsg>,
    /// Bytes not captured (over the limit).
    pub(super) dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl StderrTask {
    /// Starts reading `stderr`: written through to this process's stderr
    /// when `passthrough`, captured up to `limit` bytes.
    pub(super) fn spawn(
        stderr: impl AsyncRead + Send + Unpin + 'static,
        passthrough: bool,
        limit: u64,
    ) -> StderrTask {
        let (tx, lines) = mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(stderr, passthrough, limit, tx, dropped.clone()));
        StderrTask {
            lines,
            dropped,
            task,
        }
    }

    /// Waits up to `wait` for the server's stderr to reach its end (the
    /// processes that hold it may be gone already), then stops reading.
    pub(super) async fn finish(&mut self, wait: std::time::Duration) {
        if tokio::time::timeout(wait, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

async fn run(
    mut stderr: impl AsyncRead + Unpin,
    passthrough: bool,
    limit: u64,
    tx: mpsc::UnboundedSender<StderrMsg>,
    dropped: Arc<AtomicU64>,
) {
    let mut out = passthrough.then(tokio::io::stderr);
    let mut capture = Capture::new(limit);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(o) = &mut out
            && (o.write_all(&buf[..n]).await.is_err() || o.flush().await.is_err())
        {
            // tapedeck's own stderr is gone; keep capturing.
            out = None;
        }
        for msg in capture.push(&buf[..n]) {
            let _ = tx.send(msg);
        }
        dropped.store(capture.dropped, Ordering::Relaxed);
    }
    if let Some(msg) = capture.flush() {
        let _ = tx.send(msg);
    }
    dropped.store(capture.dropped, Ordering::Relaxed);
}

/// Splits stderr into lines and enforces the capture limit.
struct Capture {
    limit: u64,
    kept: u64,
    dropped: u64,
    partial: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn new(limit: u64) -> Self {
        Capture {
            limit,
            kept: 0,
            dropped: 0,
            partial: Vec::new(),
            truncated: false,
        }
    }

    /// Takes a chunk; returns the messages it completes.
    fn push(&mut self, mut chunk: &[u8]) -> Vec<StderrMsg> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            let room = MAX_LINE - self.partial.len();
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) if i <= room => {
                    self.partial.extend_from_slice(&chunk[..i]);
                    chunk = &chunk[i + 1..];
                    self.emit(&mut out, 1);
                }
                _ if chunk.len() < room => {
                    self.partial.extend_from_slice(chunk);
                    chunk = &[];
                }
                _ => {
                    self.partial.extend_from_slice(&chunk[..room]);
                    chunk = &chunk[room..];
                    self.emit(&mut out, 0);
                }
            }
        }
        out
    }

    /// The last line, if stderr ended without a newline.
    fn flush(&mut self) -> Option<StderrMsg> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            self.emit(&mut out, 0);
        }
        out.pop()
    }

    /// Captures the partial line (`extra` bytes of terminator) or counts it
    /// as dropped.
    fn emit(&mut self, out: &mut Vec<StderrMsg>, extra: u64) {
        let line = std::mem::take(&mut self.partial);
        let len = line.len() as u64 + extra;
        if self.kept + len > self.limit {
            self.dropped += len;
            if !self.truncated {
                self.truncated = true;
                out.push(StderrMsg::Truncated);
            }
            return;
        }
        self.kept += len;
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned();
        out.push(StderrMsg::Line(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(msgs: Vec<StderrMsg>) -> Vec<String> {
        msgs.into_iter()
            .map(|m| match m {
                StderrMsg::Line(l) => l,
                StderrMsg::Truncated => "<truncated>".into(),
            })
            .collect()
    }

    #[test]
    fn lines_are_split_across_chunks_and_long_lines_are_cut() {
        let mut c = Capture::new(1 << 20);
        assert_eq!(lines(c.push(b"one\ntw")), ["one"]);
        assert_eq!(lines(c.push(b"o\r\nthree")), ["two"]);
        assert_eq!(c.flush(), Some(StderrMsg::Line("three".into())));
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let got = lines(c.push(&long));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(c.flush(), Some(StderrMsg::Line("xxxxx".into())));
        assert_eq!(c.flush(), None);
    }

    #[test]
    fn capture_stops_at_the_limit_and_counts_the_rest() {
        let mut c = Capture::new(11);
        assert_eq!(lines(c.push(b"12345\n1234\n")), ["12345", "1234"]);
        assert_eq!(lines(c.push(b"more\nand more\n")), ["<truncated>"]);
        assert_eq!(c.dropped, 14);
        assert_eq!(c.kept, 11);
    }
}
