//! `tapedeck record`: run an MCP stdio server between this process's stdin /
//! stdout and the server, recording the session as a tape.

use super::parse_tag;
use anyhow::Context as _;
use clap::Args;
use std::ffi::OsString;
use std::io::{self, Read};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Poll, ready};
use tapedeck::recorder::{ProxyError, RecordError, Recorder, RecorderOptions, TapeMeta, run_proxy};
use tapedeck::sandbox::WasmProvider;
use tapedeck::spool::{ProviderKey, Spool};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Arguments of `record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// A name for the tape.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A tag for the tape, KEY=VALUE (repeatable; the key must not be empty).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// The MCP session id the tape belongs to [default: a new UUID].
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// The MCP server to run, after `--`: the program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs the server given after `--`, forwarding this process's stdin and
/// stdout to it line by line and recording every line into `store` through
/// `spool`. Prints one summary line to stderr and exits with the server's
/// exit code (also when the provider could not take the whole tape in time:
/// then the summary says where the frames wait).
pub async fn run(
    args: RecordArgs,
    store: WasmProvider,
    spool: Spool,
    key: ProviderKey,
    options: RecorderOptions,
) -> anyhow::Result<ExitCode> {
    let provider = store.name().to_string();
    let recorder = Recorder::new(Arc::new(store), options).with_spool(spool, key);
    let meta = TapeMeta {
        session_id: args
            .session
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: args.name.unwrap_or_default(),
        tags: args.tags,
    };
    // Ctrl-C reaches the server too (same process group); let it decide to
    // exit, then finish the tape, instead of dying with the tape open.
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("interrupt: waiting for the server to exit");
        }
    });
    let stdin = ThreadStdin::spawn().context("cannot read stdin")?;
    let outcome = match run_proxy(&recorder, &args.command, meta, stdin, tokio::io::stdout()).await
    {
        Ok(outcome) => outcome,
        Err(ProxyError::Record {
            exit_code: code,
            error: error @ RecordError::Spooled { .. },
            ..
        }) => {
            // Nothing is lost: say where the frames wait, and pass the
            // server's exit code through.
            eprintln!("tapedeck: warning: {error}");
            return Ok(exit_code(code));
        }
        Err(e) => return Err(e.into()),
    };
    let tape = &outcome.tape;
    eprintln!(
        "tapedeck: recorded tape {} ({} frames, {} bytes) in {provider}",
        tape.header.id, tape.frame_count, tape.byte_count
    );
    Ok(exit_code(outcome.exit_code))
}

/// The process exit code for a child's exit code (0..=255 on Unix).
fn exit_code(code: i32) -> ExitCode {
    match u8::try_from(code) {
        Ok(c) => ExitCode::from(c),
        Err(_) => ExitCode::FAILURE,
    }
}

/// Chunks read from stdin in flight between the reader thread and the proxy.
const STDIN_CHUNKS: usize = 4;
/// Most bytes per chunk.
const STDIN_CHUNK: usize = 64 * 1024;

/// This process's stdin, read by a dedicated thread.
///
/// tokio's own stdin reads on the blocking pool, and a read still pending
/// when the session ends (the server exited while the client keeps its end
/// open) would hold up the runtime's shutdown, so tapedeck would not exit. A
/// detached thread does not keep the process alive.
struct ThreadStdin {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ThreadStdin {
    fn spawn() -> io::Result<ThreadStdin> {
        let (tx, rx) = mpsc::channel(STDIN_CHUNKS);
        std::thread::Builder::new()
            .name("tapedeck-stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin().lock();
                let mut buf = vec![0u8; STDIN_CHUNK];
                loop {
                    let msg = match stdin.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => Ok(buf[..n].to_vec()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = msg.is_err();
                    if tx.blocking_send(msg).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(ThreadStdin {
            rx,
            chunk: Vec::new(),
            pos: 0,
        })
    }
}

impl AsyncRead for ThreadStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.pos < this.chunk.len() {
                let n = buf.remaining().min(this.chunk.len() - this.pos);
                buf.put_slice(&this.chunk[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            match ready!(this.rx.poll_recv(cx)) {
                Some(Ok(chunk)) => {
                    this.chunk = chunk;
                    this.pos = 0;
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                // The thread ended: end of input.
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        assert_eq!(exit_code(0), ExitCode::SUCCESS);
        assert_eq!(exit_code(3), ExitCode::from(3));
        assert_eq!(exit_code(130), ExitCode::from(130));
        assert_eq!(exit_code(-1), ExitCode::FAILURE);
        assert_eq!(exit_code(256), ExitCode::FAILURE);
    }
}
