//! Command-line interface: argument parsing, the shared [`Context`]
//! (configuration and provider, loaded on first use) and dispatch.
//!
//! Errors end up in `main`, which prints `error: …` and exits with 1; clap
//! exits with 2 on usage errors.

mod delete;
mod diff;
mod export;
mod import;
mod inspect;
mod keys;
mod list;
mod migrate;
mod output;
mod provider_new;
mod provider_test;
mod record;
mod recover;
mod replay;
mod scan;
mod search;
mod show;
mod sign;
mod spool;
mod stats;
mod time;
mod verify;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tapedeck::config::{Config, ENV_CONFIG, ENV_PROVIDER, ENV_TAPES_DIR};
use tapedeck::error::ProviderError;
use tapedeck::read::{ReadError, TapeReader, Verification};
use tapedeck::sandbox::{ProviderSpec, ProviderStartError, Sandbox, WasmProvider};
use tapedeck::spool::{ENV_SPOOL_DIR, Spool};
use tapedeck::store::codec::{CodecSettings, TapeKeys};
use tapedeck::store::{TapePages, TapeStore};
use tapedeck::types::{ErrorKind, Frame, TapeFilter, TapeInfo, validate_tape_id};
use tapedeck::{HostSeal, Store};

const AFTER_HELP: &str = "\
Configuration: --config FILE, else ./tapedeck.toml if it exists, else the embedded
default (the built-in fs provider, granted ./tapes read-write at /tapes). See
tapedeck.example.toml for every key.

Environment:
  TAPEDECK_CONFIG=FILE     same as --config FILE
  TAPEDECK_PROVIDER=NAME   same as --provider NAME
  TAPEDECK_TAPES_DIR=DIR   same as --tapes-dir DIR
  TAPEDECK_SPOOL_DIR=DIR   same as --spool-dir DIR
  TAPEDECK_HOST_KEY=FILE   the host key that seals tapes [default: [seals]
                           key-file, else $XDG_DATA_HOME/tapedeck/host-key]
  TAPEDECK_CACHE_DIR=DIR   cache of compiled components [default:
                           $XDG_CACHE_HOME/tapedeck/components, else
                           ~/.cache/tapedeck/components]
  RUST_LOG=FILTER          log filter (overrides -v), e.g. tapedeck=debug";

/// Record MCP / JSON-RPC sessions into sandboxed WebAssembly storage providers.
#[derive(Debug, Parser)]
#[command(name = "tapedeck", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file [default: ./tapedeck.toml if it exists, else the
    /// embedded default].
    #[arg(long, global = true, value_name = "FILE", env = ENV_CONFIG)]
    config: Option<PathBuf>,
    /// Which configured provider to use [default: the file's `provider`, or
    /// "fs"].
    #[arg(long, global = true, value_name = "NAME", env = ENV_PROVIDER)]
    provider: Option<String>,
    /// Host directory granted to the embedded default provider instead of
    /// ./tapes (ignored when the configuration defines `fs` itself).
    #[arg(long, global = true, value_name = "DIR", env = ENV_TAPES_DIR)]
    tapes_dir: Option<PathBuf>,
    /// The host's spool directory, where every recorded frame is kept until
    /// its provider has the tape [default: [recorder] spool-dir, else
    /// $XDG_STATE_HOME/tapedeck/spool, else ~/.local/state/tapedeck/spool].
    #[arg(long, global = true, value_name = "DIR", env = ENV_SPOOL_DIR)]
    spool_dir: Option<PathBuf>,
    /// Machine-readable output: JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an MCP stdio server (after `--`) and record the session as a tape.
    Record(record::RecordArgs),
    /// Serve a tape as a mock MCP server on stdio: each client message gets
    /// the recorded answers (ids rewritten), server notifications and
    /// requests where they came; a request that matches nothing gets a
    /// JSON-RPC error and, on stderr, the nearest recorded request and a
    /// diff. Exit 1 unless the replay was clean.
    Replay(replay::ReplayArgs),
    /// Check a tape against a live server (after `--`): its client messages
    /// are sent again and the answers compared with the recorded ones,
    /// structurally (`--ignore` for members that change run to run). Exit 1
    /// on drift, with a diff.
    Verify(verify::VerifyArgs),
    /// Compare two tapes request by request: what only one asked, which
    /// answers changed and where, which tools changed. Exit 1 when they
    /// differ.
    Diff(diff::DiffArgs),
    /// List tapes, newest first.
    List(list::ListArgs),
    /// Show one tape: header, state, totals, digest, whether its frames
    /// verify against the digest; --frames for its frames.
    Show(show::ShowArgs),
    /// Find tapes by session, tag, time, JSON-RPC method, tool, resource,
    /// prompt, index term or text.
    Search(search::SearchArgs),
    /// Write a tape as JSONL (stdout, or a file with -o), verified against
    /// its digest.
    Export(export::ExportArgs),
    /// Report token-shaped strings and secret-named values in stored tapes
    /// or JSONL files, with the redaction rules; exit 1 if any (a CI lint).
    Scan(scan::ScanArgs),
    /// Store a tape from a JSONL export, checked against its digest.
    Import(import::ImportArgs),
    /// Delete a tape (needs a provider with the `delete` capability).
    Delete(delete::DeleteArgs),
    /// Copy tapes from one configured provider to another: streamed,
    /// verified against their digests, resumable after an interruption.
    Migrate(migrate::MigrateArgs),
    /// Totals over all tapes of the provider.
    Stats,
    /// Deliver spooled recordings whose recorder is gone (it crashed or was
    /// killed) to their providers and end their tapes. Any command does this
    /// for the provider it uses; this does it for every configured provider.
    Recover,
    /// The host's spool: what waits to be delivered.
    #[command(subcommand)]
    Spool(SpoolCommand),
    /// The host key that seals this host's tapes, whose seals count, and
    /// the tape keys that encrypt them.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with provider components.
    #[command(subcommand)]
    Provider(ProviderCommand),
}

#[derive(Debug, Subcommand)]
enum SpoolCommand {
    /// What the spool holds, per tape and per provider: frames spooled and
    /// not yet acknowledged, and whether a live recorder holds each file.
    Status,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print the host's public key (made on first use), its file, the
    /// trusted hosts, whether unsealed tapes are refused, and the tape keys
    /// (their ids, never the keys).
    Show,
    /// Make the tape key ring (mode 0600): from then on every new tape is
    /// stored encrypted (unless its provider says `encrypt = false`).
    Init,
    /// Add a new tape key and make it current; the old ones stay, to read
    /// the tapes they encrypted.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum ProviderCommand {
    /// Start a provider: write a minimal project (a simple store of one
    /// directory per tape that passes `provider test`) in Rust, Python,
    /// JavaScript or C, with the contract, pinned toolchain versions and one
    /// build command.
    New(provider_new::NewArgs),
    /// Make a WASI preview 1 core module (C with wasi-libc, …) a provider
    /// component: the build step `provider new --lang c` uses.
    Componentize(provider_new::ComponentizeArgs),
    /// Show what a component imports and exports, which world and WIT
    /// version it implements, and whether this tapedeck accepts it. Nothing
    /// is run.
    Inspect(inspect::InspectArgs),
    /// Run the conformance suite against a provider: one line per case,
    /// then which sandbox protections the provider tripped; non-zero exit on
    /// any failure.
    Test(provider_test::TestArgs),
    /// Make a new ed25519 key pair for signing components.
    Keygen(sign::KeygenArgs),
    /// Sign a component: writes a detached signature (FILE.sig).
    Sign(sign::SignArgs),
    /// Check a component's signature against trusted keys.
    Verify(sign::VerifyArgs),
}

/// Sets up `tracing` output on stderr.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// What every command may need: the global options, the configuration
/// (loaded on first use) and the provider (started on first use).
pub struct Context {
    /// `--json` was given.
    pub json: bool,
    config_path: Option<PathBuf>,
    provider: Option<String>,
    tapes_dir: Option<PathBuf>,
    spool_dir: Option<PathBuf>,
    config: Option<Config>,
    seal: Option<HostSeal>,
    tape_keys: Option<Option<Arc<TapeKeys>>>,
}

impl Context {
    fn new(cli: &Cli) -> Self {
        Context {
            json: cli.json,
            config_path: cli.config.clone(),
            provider: cli.provider.clone(),
            tapes_dir: cli.tapes_dir.clone(),
            spool_dir: cli.spool_dir.clone(),
            config: None,
            seal: None,
            tape_keys: None,
        }
    }

    /// True when the user chose a configuration file or a provider (on the
    /// command line or in the environment).
    pub fn chose_provider(&self) -> bool {
        self.config_path.is_some() || self.provider.is_some()
    }

    /// The configuration, discovered and loaded on first use.
    pub fn config(&mut self) -> anyhow::Result<&Config> {
        if self.config.is_none() {
            let mut config = Config::discover(self.config_path.as_deref())?;
            tracing::debug!("configuration: {}", config.source_name());
            // Relative to the working directory, like any path given on
            // the command line (not to the configuration file's directory).
            let tapes_dir = match &self.tapes_dir {
                Some(d) => Some(std::path::absolute(d).with_context(|| {
                    format!("--tapes-dir / {ENV_TAPES_DIR}: bad path {}", d.display())
                })?),
                None => None,
            };
            if let Some(dir) = &tapes_dir
                && !config.set_tapes_dir(dir)
            {
                tracing::warn!(
                    "--tapes-dir / {ENV_TAPES_DIR} is ignored: {} defines the `fs` provider itself",
                    config.source_name()
                );
            }
            self.config = Some(config);
        }
        Ok(self.config.as_ref().expect("loaded above"))
    }

    /// The spec of the chosen provider and the directory its relative paths
    /// are resolved against.
    pub fn provider_spec(&mut self) -> anyhow::Result<(ProviderSpec, PathBuf)> {
        let name = self.provider.clone();
        Ok(self.config()?.provider_spec(name.as_deref())?)
    }

    /// The spool: `--spool-dir`, else `[recorder] spool-dir` (relative to
    /// the configuration file), else [`Spool::default_dir`].
    pub fn spool(&mut self) -> anyhow::Result<Spool> {
        let dir = match &self.spool_dir {
            Some(d) => d.clone(),
            None => {
                let config = self.config()?;
                match &config.recorder.spool_dir {
                    Some(d) => config.base_dir.join(d),
                    None => Spool::default_dir(),
                }
            }
        };
        Spool::open(&dir).map_err(|e| {
            anyhow!(e).context(format!(
                "cannot use the spool directory {} (set --spool-dir or {ENV_SPOOL_DIR})",
                dir.display()
            ))
        })
    }

    /// Makes this process's spool directory off-limits to every provider it
    /// starts from now on ([`tapedeck::sandbox::reserved`]): opening the
    /// spool reserves it, even when it cannot be created. Call before
    /// starting any provider; a failure to open is reported later, by
    /// whatever needs the spool.
    pub fn reserve_spool(&mut self) {
        if let Err(e) = self.spool() {
            tracing::debug!("{e:#}");
        }
    }

    /// The host key and the keys it trusts (`[seals]`), loaded (the key
    /// made) on first use.
    pub fn host_seal(&mut self) -> anyhow::Result<HostSeal> {
        if self.seal.is_none() {
            self.seal = Some(self.config()?.seals.load()?);
        }
        Ok(self.seal.clone().expect("loaded above"))
    }

    /// The host's tape keys (`[encryption]`), loaded on first use; `None`
    /// when there are none yet.
    pub fn tape_keys(&mut self) -> anyhow::Result<Option<Arc<TapeKeys>>> {
        if self.tape_keys.is_none() {
            self.tape_keys = Some(self.config()?.encryption.load()?);
        }
        Ok(self.tape_keys.clone().expect("loaded above"))
    }

    /// How provider `name` (default: the chosen one) stores new tapes.
    pub fn codec_settings(&mut self, name: Option<&str>) -> anyhow::Result<CodecSettings> {
        let keys = self.tape_keys()?;
        let chosen = self.provider.clone();
        let name = name.or(chosen.as_deref());
        Ok(self.config()?.codec_settings(name, keys)?)
    }

    /// Starts the chosen provider behind the host's seal, and first
    /// delivers what the spool holds for it from recordings whose recorder
    /// is gone.
    pub async fn store(&mut self) -> anyhow::Result<Store> {
        let (spec, base_dir) = self.provider_spec()?;
        let seal = self.host_seal()?;
        self.reserve_spool();
        let codec = self.codec_settings(None)?;
        let store = seal.store(start_provider(&spec, &base_dir).await?, codec);
        self.recover_quietly(&spec, &base_dir, &store).await;
        Ok(store)
    }

    /// Starts the configured providers `names` (whatever `--provider`
    /// says) in one sandbox, and first delivers what the spool holds for
    /// each, as [`store`](Self::store) does.
    pub async fn named_stores(&mut self, names: &[&str]) -> anyhow::Result<Vec<Store>> {
        let seal = self.host_seal()?;
        let config = self.config()?;
        let specs = names
            .iter()
            .map(|name| config.provider_spec(Some(name)))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<_> = specs.iter().map(|(s, b)| (s, b.as_path())).collect();
        let codecs = names
            .iter()
            .map(|name| self.codec_settings(Some(name)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.reserve_spool();
        let stores: Vec<Store> = start_providers(&refs)
            .await?
            .into_iter()
            .zip(codecs)
            .map(|(p, codec)| seal.store(p, codec))
            .collect();
        for ((spec, base_dir), store) in specs.iter().zip(&stores) {
            self.recover_quietly(spec, base_dir, store).await;
        }
        Ok(stores)
    }

    /// Delivers what the spool holds for `spec`'s provider, reporting on
    /// stderr and never failing ([`recover::quietly`]).
    async fn recover_quietly(
        &mut self,
        spec: &ProviderSpec,
        base_dir: &std::path::Path,
        store: &Store,
    ) {
        let key = tapedeck::spool::provider_key(spec, base_dir);
        match self.spool() {
            Ok(spool) => recover::quietly(&spool, store, store.name(), &key).await,
            Err(e) => tracing::warn!("{e:#}"),
        }
    }
}

/// Creates the sandbox and starts `spec`'s provider.
pub async fn start_provider(
    spec: &ProviderSpec,
    base_dir: &std::path::Path,
) -> anyhow::Result<WasmProvider> {
    let mut started = start_providers(&[(spec, base_dir)]).await?;
    Ok(started.pop().expect("one provider started"))
}

/// Creates one sandbox (its allocator sized for all of them) and starts
/// each `(spec, base_dir)`'s provider in it.
pub async fn start_providers(
    specs: &[(&ProviderSpec, &std::path::Path)],
) -> anyhow::Result<Vec<WasmProvider>> {
    let sandbox = Sandbox::builder()
        .pooling_for(specs.iter().map(|(spec, _)| &spec.limits))
        .build()
        .map_err(|e| anyhow!("cannot create the sandbox: {e:#}"))?;
    let mut started = Vec::with_capacity(specs.len());
    for (spec, base_dir) in specs {
        tracing::debug!(
            "provider `{}`: instances allocated {}",
            spec.name,
            sandbox.engine().allocator()
        );
        let store = WasmProvider::start(&sandbox, spec, base_dir)
            .await
            .map_err(|e| match e {
                // Already names the provider.
                ProviderStartError::Config { .. } => anyhow!(e),
                e => anyhow!(e).context(format!("cannot start provider `{}`", spec.name)),
            })?;
        started.push(store);
    }
    Ok(started)
}

/// A provider error about tape `id`: `not-found` becomes
/// `no tape "abc" in provider fs`.
pub fn tape_error(e: ProviderError, store: &Store, id: &str) -> anyhow::Error {
    match e.storage_kind() {
        Some(ErrorKind::NotFound) => anyhow!("no tape {id:?} in provider {}", store.name()),
        _ => anyhow!(e),
    }
}

/// Refuses a tape id that no provider could hold, before asking one.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    validate_tape_id(id).map_err(|e| anyhow!("{e}"))
}

/// The word that names the newest tape where a command takes an id.
pub const LATEST: &str = "latest";

/// How many tapes one `list` call asks for while looking for an id prefix.
const PREFIX_PAGE: u32 = 200;

/// How many candidates an ambiguous prefix's error names at most.
const PREFIX_CANDIDATES: usize = 5;

/// The tape that `id`, as typed on the command line, names: every command
/// that takes a tape resolves it here. In order:
///
/// 1. a tape with exactly that id;
/// 2. for [`LATEST`], the newest tape;
/// 3. the one tape whose id starts with `id` (a unique prefix). The listing
///    is walked with [`TapePages`] ([`PREFIX_PAGE`] tapes a call, within its
///    bounds) and stops at the page where a second match appears; an
///    ambiguous prefix is an error naming a few candidates;
/// 4. the newest tape whose name is exactly `id` (`--name` of `record`),
///    the provider filtering the listing by name.
///
/// A prefix is a fragment of an id ([`check_id`]); anything else typed is
/// looked up as a name only. No match is `no tape "abc" in provider fs`.
/// No tape has the id, or an id starting with it.
#[derive(Debug, thiserror::Error)]
#[error("no tape {id:?} in provider {provider}")]
pub struct NoSuchTape {
    /// What was typed.
    pub id: String,
    /// The provider asked.
    pub provider: String,
}

pub async fn resolve_tape(store: &Store, id: &str) -> anyhow::Result<TapeInfo> {
    if let Err(not_an_id) = check_id(id) {
        return by_name(store, id)
            .await
            .map_err(|e| match e.downcast_ref::<NoSuchTape>() {
                Some(_) => anyhow!("{not_an_id}; no tape is named {id:?} either"),
                None => e,
            });
    }
    match store.get(id).await {
        Ok(info) => return Ok(info),
        Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => {}
        Err(e) => return Err(tape_error(e, store, id)),
    }
    if id == LATEST {
        let page = store.list(&TapeFilter::default(), None, 1).await?;
        return match page.tapes.into_iter().next() {
            Some(t) => Ok(t),
            None => Err(anyhow!("no tapes yet in provider {}", store.name())),
        };
    }
    let mut matches: Vec<TapeInfo> = Vec::new();
    let mut pages = TapePages::list(store, TapeFilter::default())
        .provider_name(store.name())
        .page_size(PREFIX_PAGE);
    while matches.len() < 2 {
        let Some(page) = pages
            .next_page()
            .await
            .with_context(|| format!("cannot list the tapes of provider {}", store.name()))?
        else {
            break;
        };
        matches.extend(page.into_iter().filter(|t| t.header.id.starts_with(id)));
    }
    match matches.len() {
        0 => by_name(store, id).await,
        1 => Ok(matches.pop().expect("one match")),
        n => {
            let shown: Vec<&str> = matches
                .iter()
                .take(PREFIX_CANDIDATES)
                .map(|t| t.header.id.as_str())
                .collect();
            let more = if n > shown.len() || pages.has_more() {
                ", …"
            } else {
                ""
            };
            Err(anyhow!(
                "tape id prefix {id:?} matches several tapes in provider {} ({}{more}): give more characters of the id",
                store.name(),
                shown.join(", ")
            ))
        }
    }
}

/// The id of the tape `id` names, resolved as [`resolve_tape`] does.
pub async fn resolve_id(store: &Store, id: &str) -> anyhow::Result<String> {
    Ok(resolve_tape(store, id).await?.header.id)
}

/// Parses a `KEY=VALUE` tag argument.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        Some(_) => Err(format!("invalid tag {s:?}: the key before `=` is empty")),
        None => Err(format!("invalid tag {s:?}: expected KEY=VALUE")),
    }
}

/// Says which capability a command needs when the provider lacks it.
pub fn require_capability(
    store: &Store,
    has: bool,
    capability: &str,
    what: &str,
) -> anyhow::Result<()> {
    if has {
        return Ok(());
    }
    let info = store.provider_info();
    Err(anyhow!(
        "provider {} ({} {}) cannot {what}: it does not declare the `{capability}` capability (it declares: {})",
        store.name(),
        info.name,
        info.version,
        output::capabilities(&info.capabilities)
    ))
}

/// Reads the frames of the tape `info` describes in pages, from the first,
/// handing each page to `each`. With `verify`, checks them as
/// [`TapeReader::read_verified`] does (the digest only after the last page,
/// so commit output only on `Ok`; a mismatch is an
/// [`IntegrityError`](tapedeck::read::IntegrityError) in
/// the error); without, passes on whatever the provider returns
/// ([`TapeReader::read_unverified`], to rescue a damaged tape).
pub async fn read_tape(
    store: &Store,
    info: &TapeInfo,
    verify: bool,
    each: impl FnMut(Vec<Frame>) -> anyhow::Result<()>,
) -> anyhow::Result<Verification> {
    let reader = TapeReader::new(store).provider_name(store.name());
    let id = &info.header.id;
    let result = if verify {
        reader.read_verified(info, each).await
    } else {
        reader.read_unverified(id, each).await
    };
    result.map_err(|e| match e {
        ReadError::Provider(e) => tape_error(e, store, id),
        ReadError::Integrity(e) => anyhow::Error::new(e),
        ReadError::Page(e) => e,
    })
}

/// The newest tape named exactly `name`, or [`NoSuchTape`].
async fn by_name(store: &Store, name: &str) -> anyhow::Result<TapeInfo> {
    let filter = TapeFilter {
        name_contains: Some(name.to_string()),
        ..TapeFilter::default()
    };
    let mut pages = TapePages::list(store, filter)
        .provider_name(store.name())
        .page_size(PREFIX_PAGE);
    while let Some(page) = pages
        .next_page()
        .await
        .with_context(|| format!("cannot list the tapes of provider {}", store.name()))?
    {
        // Newest first: the first exact match is the newest.
        if let Some(t) = page.into_iter().find(|t| t.header.name == name) {
            return Ok(t);
        }
    }
    Err(NoSuchTape {
        id: name.to_string(),
        provider: store.name().to_string(),
    }
    .into())
}

/// True if `e` comes from writing to a closed pipe (`tapedeck list | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |k: std::io::ErrorKind| k == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| broken(io.kind()))
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(broken)
    })
}

/// Runs the parsed command. A reader that stops reading the output early
/// (`| head`) is not an error.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match dispatch(cli).await {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        result => result,
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut ctx = Context::new(&cli);
    match cli.command {
        Command::Record(args) => record::run(&mut ctx, args).await,
        Command::List(args) => list::run(&mut ctx, args).await,
        Command::Show(args) => show::run(&mut ctx, args).await,
        Command::Search(args) => search::run(&mut ctx, args).await,
        Command::Export(args) => export::run(&mut ctx, args).await,
        Command::Scan(args) => scan::run(&mut ctx, args).await,
        Command::Import(args) => import::run(&mut ctx, args).await,
        Command::Delete(args) => delete::run(&mut ctx, args).await,
        Command::Migrate(args) => migrate::run(&mut ctx, args).await,
        Command::Stats => stats::run(&mut ctx).await,
        Command::Recover => recover::run(&mut ctx).await,
        Command::Replay(args) => replay::run(&mut ctx, args).await,
        Command::Verify(args) => verify::run(&mut ctx, args).await,
        Command::Diff(args) => diff::run(&mut ctx, args).await,
        Command::Spool(SpoolCommand::Status) => spool::status(&mut ctx),
        Command::Keys(KeysCommand::Show) => keys::show(&mut ctx),
        Command::Keys(KeysCommand::Init) => keys::init(&mut ctx),
        Command::Keys(KeysCommand::Rotate) => keys::rotate(&mut ctx),
        Command::Provider(ProviderCommand::New(args)) => provider_new::new(&ctx, args),
        Command::Provider(ProviderCommand::Componentize(args)) => {
            provider_new::componentize(&ctx, args)
        }
        Command::Provider(ProviderCommand::Inspect(args)) => inspect::run(&mut ctx, args),
        Command::Provider(ProviderCommand::Test(args)) => provider_test::run(&mut ctx, args).await,
        Command::Provider(ProviderCommand::Keygen(args)) => sign::keygen(&ctx, args),
        Command::Provider(ProviderCommand::Sign(args)) => sign::sign(&ctx, args),
        Command::Provider(ProviderCommand::Verify(args)) => sign::verify(&mut ctx, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_equals_value() {
        assert_eq!(parse_tag("env=ci"), Ok(("env".into(), "ci".into())));
        assert_eq!(parse_tag("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert_eq!(parse_tag("k="), Ok(("k".into(), String::new())));
        assert!(parse_tag("=v").unwrap_err().contains("key"));
        assert!(parse_tag("novalue").unwrap_err().contains("KEY=VALUE"));
    }
}
