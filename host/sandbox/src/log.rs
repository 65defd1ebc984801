//! Provider log lines (the `log` import, stdout and stderr) into the host's
//! `tracing` log, tagged with the provider's name, capped per call and
//! escaped ([`tapedeck_store::text::printable`]).

use super::bindings::log::Level;
use super::secrets::Secrets;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `tapedeck:storage/log` import.
    Log,
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Log => "log",
            Source::Stdout => "stdout",
            Source::Stderr => "stderr",
        }
    }
}

#[derive(Debug)]
struct Budget {
    line_cap: usize,
    lines_per_call: u64,
    lines: u64,
    dropped: u64,
    /// The last few stderr lines of the current call (a panic message, usually).
    stderr_tail: Vec<String>,
}

/// How many stderr lines of a call are kept to explain a trap.
const STDERR_TAIL: usize = 3;

/// Bytes past the line cap read to find a secret straddling the cut.
const SECRET_SLACK: usize = 1024;

/// The log of one provider instance: shared by its `log` import and its
/// stdout/stderr streams, with a per-call line budget.
#[derive(Debug, Clone)]
pub struct ProviderLog {
    provider: Arc<str>,
    secrets: Secrets,
    budget: Arc<Mutex<Budget>>,
}

impl ProviderLog {
    /// A log for `provider` keeping lines up to `line_cap` bytes and at most
    /// `lines_per_call` lines per call.
    pub fn new(provider: &str, line_cap: usize, lines_per_call: u64) -> Self {
        ProviderLog {
            provider: provider.into(),
            secrets: Secrets::default(),
            budget: Arc::new(Mutex::new(Budget {
                line_cap,
                lines_per_call,
                lines: 0,
                dropped: 0,
                stderr_tail: Vec::new(),
            })),
        }
    }

    /// Replaces every secret of the provider's configuration in the lines
    /// it logs by `<secret>` ([`Secrets::scrub`]).
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Starts a new call: resets the line budget.
    pub fn begin_call(&self) {
        let mut b = self.lock();
        b.lines = 0;
        b.dropped = 0;
        b.stderr_tail.clear();
    }

    /// The last stderr lines of the current call, joined (e.g. a panic message).
    pub fn stderr_tail(&self) -> Option<String> {
        let b = self.lock();
        (!b.stderr_tail.is_empty()).then(|| b.stderr_tail.join(" | "))
    }

    /// Ends a call: reports dropped lines, if any, and returns their number.
    pub fn end_call(&self, call: &str) -> u64 {
        let dropped = std::mem::take(&mut self.lock().dropped);
        if dropped > 0 {
            tracing::warn!(
                target: "tapedeck::provider",
                provider = &*self.provider,
                "dropped {dropped} log lines over the per-call limit during `{call}`"
            );
        }
        dropped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.budget.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Emits one line at `level`, subject to the caps.
    pub fn emit(&self, source: Source, level: Level, line: &[u8]) {
        let cap = self.lock().line_cap;
        // Secrets are scrubbed before the line is cut, so that none is cut
        // in half and shown in part.
        let slack = cap.saturating_add(SECRET_SLACK);
        let head = String::from_utf8_lossy(&line[..line.len().min(slack)]);
        let head = self.secrets.scrub(&head);
        let mut end = head.len().min(cap);
        while !head.is_char_boundary(end) {
            end -= 1;
        }
        let text = &head[..end];
        {
            let mut b = self.lock();
            if source == Source::Stderr {
                if b.stderr_tail.len() == STDERR_TAIL {
                    b.stderr_tail.remove(0);
                }
                b.stderr_tail.push(text.to_string());
            }
            if b.lines >= b.lines_per_call {
                b.dropped += 1;
                return;
            }
            b.lines += 1;
        }
        // One line, escaped here whatever the subscriber does: `tracing`'s
        // formatter escapes ESC but lets CR and LF through, with which a
        // provider could overwrite a line or forge one.
        let text = tapedeck_store::text::printable(text);
        let ellipsis = if line.len() > cap { "…" } else { "" };
        let provider = &*self.provider;
        let source = source.as_str();
        macro_rules! ev {
            ($lvl:ident) => {
                tracing::$lvl!(target: "tapedeck::provider", provider, source, "{text}{ellipsis}")
            };
        }
        match level {
            Level::Trace => ev!(trace),
            Level::Debug => ev!(debug),
            Level::Info => ev!(info),
            Level::Warn => ev!(warn),
            Level::Error => ev!(error),
        }
    }

    /// A stdout/stderr stream for the guest that feeds this log line by line.
    pub fn stream(&self, source: Source) -> CapturedOutput {
        CapturedOutput {
            log: self.clone(),
            source,
        }
    }
}

/// The guest's stdout or stderr: complete lines go to the log at `info`
/// (stdout) or `warn` (stderr); writes always succeed, so a guest is never
/// broken by a full log.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    log: ProviderLog,
    source: Source,
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            out: self.clone(),
            pending: Vec::new(),
        })
    }
}

struct LineWriter {
    out: CapturedOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn level(&self) -> Level {
        if self.out.source == Source::Stderr {
            Level::Warn
        } else {
            Level::Info
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.out.log.emit(self.out.source, self.level(), &line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let cap = self.out.log.lock().line_cap;
        for &b in buf {
            if b == b'\n' {
                self.flush_pending();
            } else if self.pending.len() <= cap {
                // Bytes past the cap are discarded; the line is marked truncated.
                self.pending.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_drops_and_counts_lines_over_the_cap() {
        let log = ProviderLog::new("p", 8, 3);
        log.begin_call();
        for _ in 0..10 {
            log.emit(Source::Log, Level::Info, b"hello");
        }
        assert_eq!(log.end_call("list"), 7);
        log.begin_call();
        log.emit(Source::Log, Level::Info, b"again");
        assert_eq!(log.end_call("list"), 0);
    }

    #[tokio::test]
    async fn stdout_is_split_into_lines_and_never_fails() {
        use tokio::io::AsyncWriteExt;
        let log = ProviderLog::new("p", 4, 2);
        log.begin_call();
        let mut w = Box::into_pin(log.stream(Source::Stdout).async_stream());
        let n = w.write(b"line one\nline two\nthree\nfour\n").await.unwrap();
        assert_eq!(n, 29);
        drop(w);
        assert_eq!(
            log.end_call("get"),
            2,
            "lines three and four are over budget"
        );
    }
}
