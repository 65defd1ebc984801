//! `tapedeck record`: run an MCP stdio server between this process's stdin /
//! stdout and the server, recording the session as a tape.
//!
//! The session starts at once: signals are caught first, then the spool is
//! opened and checked, and the provider is started in the background
//! ([`Starting`]), so a provider that is slow to start (a component compiled
//! on first use) or cannot start delays nothing; frames wait in the spool.

use super::{Context, output, parse_tag, recover, start_provider};
use anyhow::Context as _;
use clap::Args;
use std::ffi::OsString;
use std::io::{self, Read};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Poll, ready};
use tapedeck::recorder::{Proxy, Recorder, Signals, Stored, TapeMeta};
use tapedeck::replay::ReplayOptions;
use tapedeck::store::Starting;
use tapedeck::store::TapePages;
use tapedeck::store::codec::Codec;
use tapedeck::types::{TapeFilter, TapeState};
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
    /// Record the messages as they are: do not apply the redaction rules
    /// (`[redaction]`, by default the preset for tokens, keys and
    /// passwords) to the recorded copy. The forwarded messages are never
    /// changed either way.
    #[arg(long)]
    pub no_redact: bool,
    /// VCR's record modes, for tests: `all` records every time (the
    /// default); `once` replays the newest finished tape called --name if
    /// there is one (the server is not started) and records it otherwise;
    /// `none` only replays, and fails when there is no such tape (the CI
    /// mode: the server never runs); `new-episodes` replays what the tape
    /// matches, has the live server answer the rest, and records the
    /// session as a new tape of that name (which then supersedes the old).
    #[arg(long, value_name = "MODE", default_value = "all", value_parser = RecordMode::parse)]
    pub mode: RecordMode,
    /// With --mode once or none: a tape older than this (`30d`, `12h`,
    /// `90m`) is expired, and --on-expired says what then.
    #[arg(long, value_name = "AGE", value_parser = super::time::parse_age)]
    pub max_age: Option<u64>,
    /// What an expired tape gets: `warn` (replay it, with a warning on
    /// stderr), `error` (exit 1 without replaying), `record` (record it
    /// anew; with --mode none, an error).
    #[arg(long, value_name = "WHAT", default_value = "warn", value_parser = OnExpired::parse)]
    pub on_expired: OnExpired,
    /// The MCP server to run, after `--`: the program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `record --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// Record every time.
    All,
    /// Replay the named tape if it exists, else record it.
    Once,
    /// Only replay; no tape is an error.
    None,
    /// Replay what matches, the live server answers the rest, the session
    /// recorded as a new tape.
    NewEpisodes,
}

impl RecordMode {
    fn parse(s: &str) -> Result<RecordMode, String> {
        match s {
            "all" => Ok(RecordMode::All),
            "once" => Ok(RecordMode::Once),
            "none" => Ok(RecordMode::None),
            "new-episodes" => Ok(RecordMode::NewEpisodes),
            _ => Err(format!(
                "unknown record mode `{s}` (known: all, once, none, new-episodes)"
            )),
        }
    }
}

/// `record --on-expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpired {
    /// Replay it anyway, warning.
    Warn,
    /// Fail.
    Error,
    /// Record it anew.
    Record,
}

impl OnExpired {
    fn parse(s: &str) -> Result<OnExpired, String> {
        match s {
            "warn" => Ok(OnExpired::Warn),
            "error" => Ok(OnExpired::Error),
            "record" => Ok(OnExpired::Record),
            _ => Err(format!(
                "unknown --on-expired `{s}` (known: warn, error, record)"
            )),
        }
    }
}

/// With --mode once or none: replays the newest finished tape named
/// `--name` when there is one (`Some(exit code)`), or says to record.
async fn replay_instead(ctx: &mut Context, args: &RecordArgs) -> anyhow::Result<Option<ExitCode>> {
    let mode = args.mode;
    let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) else {
        anyhow::bail!(
            "--mode {} needs --name NAME: the tape to replay, or to record under that name",
            if mode == RecordMode::Once {
                "once"
            } else {
                "none"
            }
        );
    };
    let store = ctx.store().await?;
    let filter = TapeFilter {
        name_contains: Some(name.to_string()),
        state: Some(TapeState::Finished),
        ..TapeFilter::default()
    };
    let mut pages = TapePages::list(&store, filter).provider_name(store.name());
    let mut found = None;
    while found.is_none() {
        let Some(page) = pages.next_page().await? else {
            break;
        };
        found = page.into_iter().find(|t| t.header.name == name);
    }
    let Some(tape) = found else {
        if mode == RecordMode::None {
            anyhow::bail!(
                "no finished tape named `{}` to replay (--mode none never starts the server: record it first, with --mode once or all)",
                output::printable(name)
            );
        }
        return Ok(None);
    };
    if let Some(max_age_us) = args.max_age {
        let age_us = super::time::now_us().saturating_sub(tape.header.created_at_us);
        if age_us > max_age_us {
            let what = format!(
                "tape {} (`{}`) is {} old, older than --max-age",
                tape.header.id,
                output::printable(name),
                output::duration(age_us)
            );
            match (args.on_expired, mode) {
                (OnExpired::Warn, _) => eprintln!("tapedeck: warning: {what}; replaying it anyway"),
                (OnExpired::Record, RecordMode::Once | RecordMode::NewEpisodes) => {
                    eprintln!("tapedeck: {what}: recording it anew");
                    return Ok(None);
                }
                _ => anyhow::bail!("{what} (--on-expired record records it anew with --mode once)"),
            }
        }
    }
    if mode == RecordMode::NewEpisodes {
        return new_episode(ctx, args, store, &tape).await.map(Some);
    }
    let how = super::replay::How::default();
    let code =
        super::replay::replay_tape(ctx, &store, &tape.header.id, ReplayOptions::default(), how)
            .await?;
    Ok(Some(code))
}

/// `--mode new-episodes` with a tape to replay: the tape answers what it
/// matches, the live server (which sees the whole session) the rest, and
/// every line the client sent and got is recorded as a new tape of the
/// same name.
async fn new_episode(
    ctx: &mut Context,
    args: &RecordArgs,
    store: tapedeck::Store,
    old: &tapedeck::types::TapeInfo,
) -> anyhow::Result<ExitCode> {
    let seal = ctx.host_seal()?;
    let redactor = if args.no_redact {
        None
    } else {
        ctx.config()?.redaction.redactor(&seal)?
    };
    let options = ctx.config()?.recorder.clone();
    let store = Arc::new(store);
    let mut recorder = Recorder::new(store.clone(), options);
    if let Some(r) = redactor {
        recorder = recorder.with_redactor(r);
    }
    let meta = TapeMeta {
        session_id: args
            .session
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: old.header.name.clone(),
        tags: args.tags.clone(),
    };
    let recording = Arc::new(
        recorder
            .start(meta)
            .await
            .context("cannot start recording")?,
    );
    let tap: tapedeck::replay::Tap = {
        let recording = recording.clone();
        Arc::new(move |direction, line: &[u8]| recording.record(direction, line.to_vec()))
    };
    let how = super::replay::How {
        on_miss: tapedeck::replay::OnMiss::Passthrough,
        live: args.command.clone(),
        tap: Some(tap),
        ..super::replay::How::default()
    };
    super::replay::replay_tape(ctx, &store, &old.header.id, ReplayOptions::default(), how).await?;
    let recording = Arc::try_unwrap(recording)
        .map_err(|_| anyhow::anyhow!("the new episode's recording is still in use"))?;
    let outcome = recording
        .finish()
        .await
        .context("cannot finish the new episode's tape")?;
    eprintln!(
        "tapedeck: recorded tape {} ({} frames), which supersedes tape {} as `{}`",
        outcome.tape.header.id,
        outcome.tape.frame_count,
        old.header.id,
        output::printable(&old.header.name)
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the server given after `--`, forwarding this process's stdin and
/// stdout to it line by line and recording every line through the spool
/// into the chosen provider. Prints one summary line to stderr and exits
/// with the server's exit code.
pub async fn run(ctx: &mut Context, args: RecordArgs) -> anyhow::Result<ExitCode> {
    if args.mode != RecordMode::All
        && let Some(code) = replay_instead(ctx, &args).await?
    {
        return Ok(code);
    }
    // First, so that a SIGTERM from the client while anything below runs
    // ends the session cleanly instead of killing tapedeck.
    let signals = Signals::listen().context("cannot catch termination signals")?;
    let options = ctx.config()?.recorder.clone();
    let (spec, base_dir) = ctx.provider_spec()?;
    let spool = ctx.spool()?;
    tapedeck::spool::check_not_granted(&spool, &spec, &base_dir)?;
    let key = tapedeck::spool::provider_key(&spec, &base_dir);
    let provider = spec.name.clone();
    let seal = ctx.host_seal()?;
    let codec = ctx.codec_settings(None)?;
    let redactor = if args.no_redact {
        None
    } else {
        ctx.config()?.redaction.redactor(&seal)?
    };

    let starting = Starting::spawn(&provider, async move {
        start_provider(&spec, &base_dir)
            .await
            .map_err(|e| format!("{e:#}"))
    });
    // Behind the host's seal and codec: every tape this session (or the
    // recovery below) ends is sealed, and stored compressed and, with tape
    // keys, encrypted.
    let store = Arc::new(seal.seal(Codec::new(starting.clone(), codec)));
    // Once the provider is up, deliver what earlier sessions left in the
    // spool (this session's own file is locked, so left alone); if it
    // cannot start, say so now: the session goes on into the spool.
    tokio::spawn({
        let store = store.clone();
        let spool = spool.clone();
        let key = key.clone();
        let provider = provider.clone();
        async move {
            match starting.started().await {
                Ok(_) => recover::quietly(&spool, &*store, &provider, &key).await,
                Err(e) => eprintln!(
                    "tapedeck: warning: {}; the session is recorded into the spool ({}) and delivered by the next tapedeck command that can start it",
                    output::printable(&e.to_string()),
                    spool.dir().display()
                ),
            }
        }
    });

    let mut recorder = Recorder::new(store, options).with_spool(spool, key);
    if let Some(r) = redactor {
        recorder = recorder.with_redactor(r);
    }
    let meta = TapeMeta {
        session_id: args
            .session
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: args.name.unwrap_or_default(),
        tags: args.tags,
    };
    let stdin = ThreadStdin::spawn().context("cannot read stdin")?;
    let outcome = Proxy::new(&recorder, &args.command, meta)
        .signals(signals)
        .run(stdin, tokio::io::stdout())
        .await?;
    let id = &outcome.tape_id;
    if outcome.failed_to_start {
        let mut msg = format!(
            "tapedeck: error: the server `{}` {} before writing anything: it did not start",
            output::printable(&display_command(&args.command)),
            outcome.server
        );
        if !outcome.stderr_tail.is_empty() {
            msg.push_str("; its last stderr lines:");
            for line in &outcome.stderr_tail {
                msg.push_str("\n  ");
                msg.push_str(&output::printable(line));
            }
        }
        msg.push_str(&format!(
            "\ntapedeck: the tape {id} keeps what was sent and is marked aborted"
        ));
        eprintln!("{msg}");
        return Ok(exit_code(outcome.exit_code));
    }
    match &outcome.stored {
        Stored::Ended(tape) => eprintln!(
            "tapedeck: recorded tape {id} ({} frames, {} bytes) in {provider}",
            tape.frame_count, tape.byte_count
        ),
        Stored::Spooled { spool, reason } => eprintln!(
            "tapedeck: recorded tape {id} ({} frames) into the spool ({}); {provider} does not have it yet ({}): the next tapedeck command using {provider}, or `tapedeck recover`, delivers and ends it",
            outcome.frames,
            spool.display(),
            output::printable(reason)
        ),
    }
    Ok(exit_code(outcome.exit_code))
}

/// The command line, for messages.
fn display_command(command: &[OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
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
