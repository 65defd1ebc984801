//! The host's seal on its tapes: which key seals, which hosts' seals are
//! trusted, whether unsealed tapes are refused (`[seals]` in the
//! configuration), and the store every command and embedding program
//! reads and writes through ([`Store`]: a provider behind
//! [`Sealing`](crate::store::seal::Sealing)).
//!
//! ```toml
//! [seals]
//! key-file = "keys/host-key"      # default: $XDG_DATA_HOME/tapedeck/host-key
//! trusted-hosts = ["ed25519:…"]   # other hosts whose seals count (yours always does)
//! require = false                 # true: an ended tape without a seal is an error
//! ```
//!
//! The key file is made on first use (mode 0600 in a 0700 directory); give
//! the public key (`tapedeck keys show`) to the hosts that should trust
//! this one's tapes. [`ENV_HOST_KEY`] names another key file (for one
//! command, a CI job, a test).
//!
//! What a seal proves and what it does not is in `SECURITY.md`; how a
//! reader checks it is in [`crate::read`].

use crate::sandbox::WasmProvider;
use crate::store::TapeStore;
use crate::store::codec::{Codec, CodecSettings};
use crate::store::keys::{KeyError, PublicKey, SecretKey};
use crate::store::seal::{Sealing, TrustedHosts};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable: the host key file (instead of `[seals] key-file`
/// and the default).
pub const ENV_HOST_KEY: &str = "TAPEDECK_HOST_KEY";

/// The domain of the redaction key derived from the host key.
const REDACTION_DOMAIN: &[u8] = b"tapedeck-redaction-key-v1\0";

/// The file name of the host key in the user's data directory.
pub const HOST_KEY_FILE: &str = "host-key";

/// A provider behind the host's seal and codec: what [`crate::Deck`] and
/// the `tapedeck` command use. Reads through it check seals
/// ([`crate::read`]), tapes ended through it are sealed ([`Sealing`]), and
/// the provider holds them compressed and, with tape keys, encrypted
/// ([`Codec`], [`crate::encryption`]). A [`TapeStore`] like any other.
pub struct Store(Sealing<Codec<WasmProvider>>);

impl Store {
    /// The provider's configured name (as `WasmProvider::name`).
    pub fn name(&self) -> &str {
        self.provider().name()
    }

    /// The provider behind the seal and the codec (calls to it are neither
    /// sealed, checked nor encoded).
    pub fn provider(&self) -> &WasmProvider {
        self.0.get_ref().get_ref()
    }

    /// The codec layer: how this store encodes new tapes.
    pub fn codec(&self) -> &Codec<WasmProvider> {
        self.0.get_ref()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("provider", &self.name())
            .field("trusted", &self.0.trusted().to_string())
            .finish()
    }
}

impl crate::store::Layer for Store {
    type Inner = Sealing<Codec<WasmProvider>>;
    type Writer = <Sealing<Codec<WasmProvider>> as TapeStore>::Writer;

    fn inner(&self) -> &Self::Inner {
        &self.0
    }

    fn wrap_writer(&self, writer: Self::Writer) -> Self::Writer {
        writer
    }
}

/// `[seals]`: which key seals, whose seals count, and whether unsealed
/// tapes are refused. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SealSettings {
    /// The host key file (`key-file`, relative to the configuration file);
    /// `None`: [`ENV_HOST_KEY`], else [`default_key_file`].
    pub key_file: Option<PathBuf>,
    /// The other hosts whose seals are trusted (`trusted-hosts`).
    pub trusted_hosts: Vec<PublicKey>,
    /// Refuse ended tapes without a seal (`require`; default false: they
    /// are read, reported unsealed, never verified).
    pub require: bool,
}

impl SealSettings {
    /// The key file used: [`ENV_HOST_KEY`] if set, else `key-file`, else
    /// [`default_key_file`].
    pub fn key_path(&self) -> PathBuf {
        if let Some(p) = std::env::var_os(ENV_HOST_KEY).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        self.key_file.clone().unwrap_or_else(default_key_file)
    }

    /// Loads the host key (making it on first use) and the trusted keys.
    pub fn load(&self) -> Result<HostSeal, HostKeyError> {
        let path = self.key_path();
        let key = SecretKey::load_or_create(&path).map_err(|error| HostKeyError {
            path: path.clone(),
            error,
        })?;
        let trusted =
            TrustedHosts::new(self.trusted_hosts.iter().copied()).require_seals(self.require);
        Ok(HostSeal {
            path,
            ..HostSeal::new(key, trusted)
        })
    }
}

/// `$XDG_DATA_HOME/tapedeck/host-key`, else
/// `~/.local/share/tapedeck/host-key`, else `.tapedeck-host-key` (no home).
pub fn default_key_file() -> PathBuf {
    crate::embedded::user_data_dir().map_or_else(
        || PathBuf::from(".tapedeck-host-key"),
        |d| d.join("tapedeck").join(HOST_KEY_FILE),
    )
}

/// The host key could not be read or made.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use the host key {} ({error}); set `[seals] key-file` or {ENV_HOST_KEY} to a file this user may create and read",
    path.display()
)]
pub struct HostKeyError {
    /// The key file.
    pub path: PathBuf,
    /// Why.
    pub error: KeyError,
}

/// The loaded host key and the keys it trusts: seals stores.
#[derive(Debug, Clone)]
pub struct HostSeal {
    key: Arc<SecretKey>,
    trusted: TrustedHosts,
    path: PathBuf,
}

impl HostSeal {
    /// A seal with `key`, trusting `trusted` besides it (for tests and
    /// programs that manage keys themselves).
    pub fn new(key: SecretKey, trusted: TrustedHosts) -> HostSeal {
        let trusted = trusted.including(key.public());
        HostSeal {
            key: Arc::new(key),
            trusted,
            path: PathBuf::new(),
        }
    }

    /// This host's public key (what other hosts list in `trusted-hosts`).
    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// The key that makes redaction placeholders ([`crate::redaction`]),
    /// derived from the host key: the same secret gets the same
    /// placeholder in every tape of this host, and only this host can
    /// make them.
    pub fn redaction_key(&self) -> [u8; 32] {
        self.key.derive(REDACTION_DOMAIN)
    }

    /// The key file (empty for [`HostSeal::new`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys whose seals count: this host's and `trusted-hosts`.
    pub fn trusted(&self) -> &TrustedHosts {
        &self.trusted
    }

    /// `store` behind this host's seal.
    pub fn seal<S: TapeStore>(&self, store: S) -> Sealing<S> {
        Sealing::new(store, self.key.clone(), self.trusted.clone())
    }

    /// A started provider behind this host's seal, its tapes stored as
    /// `codec` says ([`crate::Config::codec_settings`]).
    pub fn store(&self, provider: WasmProvider, codec: CodecSettings) -> Store {
        Store(self.seal(Codec::new(provider, codec)))
    }
}
