//! [`Deck`]: the one entry point for programs that embed tapedeck.
//!
//! A deck is a configured provider, started in its sandbox, with the host's
//! spool in front of it. Opening one does, in this order, what every
//! recording needs and what must never be skipped:
//!
//! 1. the configuration is found ([`Config::discover`]: `./tapedeck.toml`,
//!    else the embedded default provider) unless one is given;
//! 2. the spool is opened, which reserves it: no provider of this process
//!    may be granted it ([`crate::sandbox::reserved`]);
//! 3. the host key is loaded (made on first use; [`crate::seals`]);
//! 4. the provider is started in a sandbox sized for its limits, refused if
//!    any of its grants meets the spool, and put behind the host's seal
//!    ([`Store`]): every tape ended through the deck is sealed, every read
//!    checks seals;
//! 5. the tape keys are loaded (`[encryption]`): new tapes are stored
//!    compressed and, once keys exist, encrypted ([`crate::encryption`]);
//! 6. the redaction rules (`[redaction]`, the default preset unless
//!    switched off) are applied to every recorded message before it
//!    reaches the spool ([`crate::redaction`]);
//! 7. what earlier sessions left in the spool for this storage (a crash, a
//!    `SIGTERM` before the provider had the tape) is delivered and ended
//!    ([`recover_all`]).
//!
//! Then [`Deck::recorder`] records tapes through the spool, and
//! [`Deck::record`] runs an MCP stdio server and records its session.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::ffi::OsString;
//! use tapedeck::{Deck, recorder::TapeMeta};
//!
//! let deck = Deck::builder().tapes_dir("tapes").open().await?;
//! let server: Vec<OsString> = ["python3", "server.py"].map(Into::into).into();
//! let outcome = deck
//!     .record(&server, TapeMeta::named("demo"), tokio::io::stdin(), tokio::io::stdout())
//!     .await?;
//! println!("tape {} ({} frames)", outcome.tape_id, outcome.frames);
//! # Ok(()) }
//! ```

use crate::config::{Config, ConfigError};
use crate::recorder::{Proxy, ProxyError, ProxyOutcome, Recorder, Signals, TapeMeta};
use crate::redaction::RedactionSettings;
use crate::sandbox::{ProviderStartError, Sandbox, WasmProvider};
use crate::seals::{HostKeyError, HostSeal, Store};
use crate::spool::{RecoveryReport, Spool, SpoolError, recover_all};
use crate::store::codec::TapeKeys;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why a deck could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeckError {
    /// The configuration could not be found, read or understood.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The spool could not be opened (or a running provider is granted it).
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The host key could not be read or made.
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
    /// The tape keys could not be read.
    #[error(transparent)]
    TapeKeys(#[from] crate::encryption::TapeKeysError),
    /// A redaction rule is invalid.
    #[error(transparent)]
    Redaction(#[from] crate::redact::RuleError),
    /// The sandbox (engine, linker) could not be created.
    #[error("cannot create the sandbox: {0}")]
    Sandbox(String),
    /// The provider was refused or did not start.
    #[error("cannot start provider `{provider}`: {error}")]
    Start {
        /// The provider.
        provider: String,
        /// Why.
        error: ProviderStartError,
    },
}

/// Builds a [`Deck`]; every setting has a default.
#[derive(Debug, Default)]
pub struct DeckBuilder {
    config: Option<Config>,
    config_file: Option<PathBuf>,
    provider: Option<String>,
    spool_dir: Option<PathBuf>,
    tapes_dir: Option<PathBuf>,
    seal: Option<HostSeal>,
    redaction: Option<RedactionSettings>,
    tape_keys: Option<Option<Arc<TapeKeys>>>,
    signals: bool,
}

impl DeckBuilder {
    /// Uses this configuration. Default: [`Config::discover`] (the file
    /// given to [`config_file`](Self::config_file), else `./tapedeck.toml`
    /// if it exists, else the embedded default provider).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads the configuration from this file.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Uses this configured provider. Default: the configuration's
    /// `provider` (`fs`, the embedded one, when it names none).
    pub fn provider(mut self, name: impl Into<String>) -> Self {
        self.provider = Some(name.into());
        self
    }

    /// Keeps the spool here. Default: the configuration's `[recorder]
    /// spool-dir`, else [`Spool::default_dir`].
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Grants the embedded default provider this directory (made absolute
    /// against the working directory) instead of its default
    /// ([`crate::embedded::default_tapes_dir`]). Ignored when the
    /// configuration defines the `fs` provider itself.
    pub fn tapes_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tapes_dir = Some(dir.into());
        self
    }

    /// Seals with this key and trusts these hosts. Default: the
    /// configuration's `[seals]` ([`crate::SealSettings::load`]).
    pub fn host_seal(mut self, seal: HostSeal) -> Self {
        self.seal = Some(seal);
        self
    }

    /// Redacts recorded messages with these settings
    /// ([`RedactionSettings::off`] to record them as they are). Default:
    /// the configuration's `[redaction]` (on, with the default preset).
    pub fn redaction(mut self, settings: RedactionSettings) -> Self {
        self.redaction = Some(settings);
        self
    }

    /// Uses these tape keys (`None`: none, tapes stored unencrypted).
    /// Default: the configuration's `[encryption]`
    /// ([`crate::encryption::EncryptionSettings::load`]).
    pub fn tape_keys(mut self, keys: Option<Arc<TapeKeys>>) -> Self {
        self.tape_keys = Some(keys);
        self
    }

    /// Makes [`Deck::record`] end its session on this process's `SIGTERM`,
    /// `SIGINT` and `SIGHUP` ([`Signals::listen`]). Default: off.
    pub fn catch_signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Opens the deck: the spool first, then the provider, then recovery
    /// (see the module docs). Call it on a tokio runtime.
    pub async fn open(self) -> Result<Deck, DeckError> {
        let mut config = match self.config {
            Some(c) => c,
            None => Config::discover(self.config_file.as_deref())?,
        };
        if let Some(dir) = &self.tapes_dir {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            config.set_tapes_dir(&dir);
        }
        let spool_dir = match self.spool_dir {
            Some(d) => d,
            None => match &config.recorder.spool_dir {
                Some(d) => config.base_dir.join(d),
                None => Spool::default_dir(),
            },
        };
        // Before any provider starts: the spool is reserved from here on.
        let spool = Spool::open(&spool_dir)?;
        let (spec, base_dir) = config.provider_spec(self.provider.as_deref())?;
        let seal = match self.seal {
            Some(s) => s,
            None => config.seals.load()?,
        };
        let sandbox = Sandbox::builder()
            .pooling_for([&spec.limits])
            .build()
            .map_err(|e| DeckError::Sandbox(format!("{e:#}")))?;
        let store = WasmProvider::start(&sandbox, &spec, &base_dir)
            .await
            .map_err(|error| DeckError::Start {
                provider: spec.name.clone(),
                error,
            })?;
        let redactor = self
            .redaction
            .as_ref()
            .unwrap_or(&config.redaction)
            .redactor(&seal)?;
        let keys = match self.tape_keys {
            Some(k) => k,
            None => config.encryption.load()?,
        };
        let codec = config.codec_settings(self.provider.as_deref(), keys)?;
        let store = seal.store(store, codec);
        let key = crate::spool::provider_key(&spec, &base_dir);
        let recovery = recover_all(&spool, &store, &key).await?;
        let mut recorder =
            Recorder::new(Arc::new(store), config.recorder.clone()).with_spool(spool, key);
        if let Some(r) = redactor {
            recorder = recorder.with_redactor(r);
        }
        Ok(Deck {
            recorder,
            recovery: Arc::new(recovery),
            signals: self.signals,
        })
    }
}

/// A provider started in its sandbox, behind the host's spool (see the
/// module docs). Cheap to clone.
#[derive(Clone)]
pub struct Deck {
    recorder: Recorder<Store>,
    recovery: Arc<RecoveryReport>,
    signals: bool,
}

impl std::fmt::Debug for Deck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deck")
            .field("provider", &self.store().name())
            .finish_non_exhaustive()
    }
}

impl Deck {
    /// A builder with every default.
    pub fn builder() -> DeckBuilder {
        DeckBuilder::default()
    }

    /// Opens the deck of the configuration tapedeck would find
    /// ([`DeckBuilder::open`] with every default).
    pub async fn open() -> Result<Deck, DeckError> {
        Self::builder().open().await
    }

    /// The running provider behind the host's seal: a
    /// [`crate::store::TapeStore`] for reading, listing and searching
    /// tapes (reads check seals: [`crate::read`]).
    pub fn store(&self) -> &Store {
        self.recorder.store().as_ref()
    }

    /// The recorder: every frame goes to the spool before anything else
    /// sees it, and from there to the provider.
    pub fn recorder(&self) -> &Recorder<Store> {
        &self.recorder
    }

    /// What opening the deck recovered from the spool.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Runs `command` as an MCP stdio server between `client_in` and
    /// `client_out` and records the session (see [`Proxy`]).
    pub async fn record(
        &self,
        command: &[OsString],
        meta: TapeMeta,
        client_in: impl AsyncRead,
        client_out: impl AsyncWrite,
    ) -> Result<ProxyOutcome, ProxyError> {
        let signals = if self.signals {
            Signals::listen().unwrap_or_else(|e| {
                tracing::warn!("cannot catch termination signals: {e}");
                Signals::none()
            })
        } else {
            Signals::none()
        };
        Proxy::new(&self.recorder, command, meta)
            .signals(signals)
            .run(client_in, client_out)
            .await
    }
}
