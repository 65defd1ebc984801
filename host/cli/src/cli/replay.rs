//! `tapedeck replay TAPE`: the tape answers an MCP client on stdio, as its
//! server did (see [`tapedeck::replay`]). Stdout carries only the protocol;
//! misses (with their nearest recorded candidates and a diff) and the final
//! report go to stderr. Exit 0 when the replay was clean, 1 otherwise.

use super::{Context, output, resolve_tape};
use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use tapedeck::Store;
use tapedeck::replay::{self, Matching, OnMiss, Repeat, ReplayOptions, Timing, json::JsonPath};

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The tape: its id, `latest` for the newest tape, a unique prefix of
    /// its id, or its name (the newest tape of that name).
    #[arg(value_name = "TAPE")]
    id: String,
    /// How a client message finds its recording: `method+params` (the
    /// method and params compared structurally, ignoring `_meta`,
    /// `params.clientInfo` and --ignore paths), `sequential` (the next
    /// recorded message, whatever it holds) or `strict` (byte for byte but
    /// the id).
    #[arg(long = "match", value_name = "MODE", default_value = "method+params", value_parser = Matching::parse)]
    matching: Matching,
    /// A member to leave out of the comparison, as a JSON pointer
    /// (`/params/arguments/now`) or dotted (`params.arguments.now`); `*`
    /// matches any member or item. Repeatable.
    #[arg(long, value_name = "PATH", value_parser = JsonPath::parse)]
    ignore: Vec<JsonPath>,
    /// What a request asked again gets: `once` (each recording answers
    /// once, in recorded order; one more is a miss), `in-order` (as once,
    /// and requests must come in the recorded order), `cycle`, `last`.
    #[arg(long, value_name = "MODE", default_value = "once", value_parser = Repeat::parse)]
    repeat: Repeat,
    /// When answers are sent: `instant`, `recorded` (the recorded delays),
    /// or `xN` (N times as fast as recorded: x2, x0.5).
    #[arg(long, value_name = "T", default_value = "instant", value_parser = Timing::parse)]
    timing: Timing,
    /// After a request that matches nothing: `error` answers it with a
    /// JSON-RPC error and goes on, `fail` does so and ends the replay,
    /// `passthrough` has the live server given after `--` answer it (that
    /// server sees the whole session).
    #[arg(long, value_name = "WHAT", default_value = "error", value_parser = OnMiss::parse)]
    on_miss: OnMiss,
    /// Exit 1 when a recorded request was never asked.
    #[arg(long)]
    require_all: bool,
    /// Match requests as they are, without first applying the redaction
    /// rules the tapes are recorded with.
    #[arg(long)]
    no_redact: bool,
    /// Put a real value back into the answers where the recording has a
    /// redaction placeholder: KIND=env:VAR or KIND=file:PATH, KIND being
    /// the placeholder's kind (`[REDACTED:KIND:…]`, e.g. `bearer`) or a
    /// whole placeholder. Repeatable. The value is never printed.
    #[arg(long, value_name = "KIND=SOURCE", value_parser = parse_secret)]
    secret: Vec<(String, SecretSource)>,
    /// With --on-miss passthrough: the live MCP server, after `--`.
    #[arg(last = true, value_name = "SERVER")]
    server: Vec<std::ffi::OsString>,
}

/// Where a `--secret` value comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (one trailing newline dropped).
    File(std::path::PathBuf),
}

fn parse_secret(s: &str) -> Result<(String, SecretSource), String> {
    let (kind, source) = s
        .split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{s}` is not KIND=env:VAR or KIND=file:PATH"))?;
    let source = if let Some(var) = source.strip_prefix("env:") {
        SecretSource::Env(var.to_string())
    } else if let Some(path) = source.strip_prefix("file:") {
        SecretSource::File(path.into())
    } else {
        return Err(format!(
            "--secret {kind}=…: the value comes from env:VAR or file:PATH, never the command line"
        ));
    };
    Ok((kind.to_string(), source))
}

/// The values of `--secret`s.
fn secrets(list: &[(String, SecretSource)]) -> anyhow::Result<Vec<replay::Secret>> {
    list.iter()
        .map(|(kind, source)| {
            let value = match source {
                SecretSource::Env(var) => std::env::var(var).with_context(|| {
                    format!("--secret {kind}: environment variable {var} is not set")
                })?,
                SecretSource::File(path) => {
                    let mut v = std::fs::read_to_string(path).with_context(|| {
                        format!("--secret {kind}: cannot read {}", path.display())
                    })?;
                    if v.ends_with('\n') {
                        v.pop();
                    }
                    v
                }
            };
            Ok(replay::Secret {
                placeholder: kind.clone(),
                value,
            })
        })
        .collect()
}

pub async fn run(ctx: &mut Context, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let info = resolve_tape(&store, &args.id).await?;
    let options = ReplayOptions {
        matching: args.matching,
        repeat: args.repeat,
        timing: args.timing,
        ignore: args.ignore,
    };
    match (args.on_miss == OnMiss::Passthrough, args.server.is_empty()) {
        (true, true) => anyhow::bail!("--on-miss passthrough needs the live server after `--`"),
        (false, false) => anyhow::bail!(
            "a server after `--` is used only with --on-miss passthrough (replay answers without one)"
        ),
        _ => {}
    }
    let how = How {
        on_miss: args.on_miss,
        require_all: args.require_all,
        redact: !args.no_redact,
        secrets: secrets(&args.secret)?,
        live: args.server,
        tap: None,
    };
    replay_tape(ctx, &store, &info.header.id, options, how).await
}

/// What a replay does besides matching.
pub struct How {
    /// After a miss.
    pub on_miss: OnMiss,
    /// Exit 1 when a recorded request was never asked.
    pub require_all: bool,
    /// Redact requests with the configured rules before matching.
    pub redact: bool,
    /// Real values put back into answers.
    pub secrets: Vec<replay::Secret>,
    /// The live server for `--on-miss passthrough`.
    pub live: Vec<std::ffi::OsString>,
    /// Sees every line of the session (with a live server only).
    pub tap: Option<replay::Tap>,
}

impl Default for How {
    fn default() -> Self {
        How {
            on_miss: OnMiss::Error,
            require_all: false,
            redact: true,
            secrets: Vec::new(),
            live: Vec::new(),
            tap: None,
        }
    }
}

/// Serves tape `id` of `store` on stdio; reports on stderr; exit 0 when the
/// replay was clean (`record --mode once|none` replays with this too).
pub async fn replay_tape(
    ctx: &mut Context,
    store: &Store,
    id: &str,
    options: ReplayOptions,
    how: How,
) -> anyhow::Result<ExitCode> {
    let redactor = if how.redact {
        let seal = ctx.host_seal()?;
        ctx.config()?.redaction.redactor(&seal)?
    } else {
        None
    };
    let loaded = replay::load(store, id, options)
        .await
        .with_context(|| format!("cannot replay tape {id}"))?;
    if !loaded.verification.is_verified() {
        eprintln!(
            "tapedeck replay: note: tape {id} is not verified ({})",
            output::printable(&loaded.verification.to_string())
        );
    }
    let mut replayer = loaded.with_incoming(redactor);
    if !how.secrets.is_empty() {
        replayer = replayer.with_outgoing(replay::fill_secrets(how.secrets));
    }
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    // The recorded text came from the provider: escaped.
    let on_miss = |miss: &str| eprintln!("tapedeck replay: {}", output::printable(miss));
    let report = match how.live.split_first() {
        Some(_) => {
            let mut live = replay::LiveServer::start(&how.live).with_context(|| {
                format!(
                    "cannot start the live server {}",
                    how.live[0].to_string_lossy()
                )
            })?;
            let (live_in, live_out) = live.pipes()?;
            let report = replay::serve_with_live(
                &mut replayer,
                stdin,
                tokio::io::stdout(),
                live_out,
                live_in,
                how.tap.clone(),
                on_miss,
            )
            .await?;
            live.stop().await;
            report
        }
        None => {
            replay::serve(
                &mut replayer,
                stdin,
                tokio::io::stdout(),
                how.on_miss,
                on_miss,
            )
            .await?
        }
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "tapedeck replay: tape {id}: {} request(s) answered, {} miss(es), {} recorded request(s) never asked",
        report.answered,
        report.misses.len(),
        report.unused.len()
    );
    for (seq, what) in report.unused.iter().take(20) {
        let _ = writeln!(
            err,
            "  never asked: frame {seq}, {}",
            output::printable(what)
        );
    }
    Ok(if report.clean(how.require_all) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
