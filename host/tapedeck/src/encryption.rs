//! How tapes are stored: compressed, and encrypted once the host has tape
//! keys (`[encryption]` and each provider's `compress` / `encrypt`), by
//! the codec layer below the seal ([`crate::store::codec`]).
//!
//! ```toml
//! [encryption]
//! keys-file = "tape-keys"   # default $XDG_DATA_HOME/tapedeck/tape-keys
//!
//! [providers.archive]
//! component = "archive.wasm"
//! compress = true           # default
//! encrypt = true            # default: encrypted whenever tape keys exist
//! ```
//!
//! `tapedeck keys init` makes the key ring (mode 0600); from then on every
//! new tape of every provider is encrypted unless that provider says
//! `encrypt = false`. [`ENV_TAPE_KEYS`] holds a ring's text instead of a
//! file (a CI secret); [`ENV_TAPE_KEYS_FILE`] names another file. Losing the
//! ring loses every tape it encrypted: keep a copy where the host key is
//! kept.

use crate::store::codec::{CodecError, CodecSettings, TapeKeys};
use std::path::PathBuf;
use std::sync::Arc;

/// Environment variable: a key ring's text (instead of the file).
pub const ENV_TAPE_KEYS: &str = "TAPEDECK_TAPE_KEYS";
/// Environment variable: the key ring file (instead of `[encryption]
/// keys-file` and the default).
pub const ENV_TAPE_KEYS_FILE: &str = "TAPEDECK_TAPE_KEYS_FILE";
/// The file name of the key ring in the user's data directory.
pub const TAPE_KEYS_FILE: &str = "tape-keys";

/// `[encryption]`: where the tape keys are. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncryptionSettings {
    /// The key ring file (`keys-file`, relative to the configuration
    /// file); `None`: [`ENV_TAPE_KEYS_FILE`], else [`default_keys_file`].
    pub keys_file: Option<PathBuf>,
}

/// Where a key ring came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysSource {
    /// The file at this path.
    File(PathBuf),
    /// [`ENV_TAPE_KEYS`].
    Environment,
}

impl std::fmt::Display for KeysSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeysSource::File(p) => write!(f, "{}", p.display()),
            KeysSource::Environment => write!(f, "${ENV_TAPE_KEYS}"),
        }
    }
}

/// The tape keys could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the tape keys in {source_name}: {error}")]
pub struct TapeKeysError {
    /// Where they were read from.
    pub source_name: KeysSource,
    /// Why.
    pub error: CodecError,
}

impl EncryptionSettings {
    /// The key ring file: [`ENV_TAPE_KEYS_FILE`] if set, else `keys-file`,
    /// else [`default_keys_file`].
    pub fn keys_path(&self) -> PathBuf {
        if let Some(p) = std::env::var_os(ENV_TAPE_KEYS_FILE).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        self.keys_file.clone().unwrap_or_else(default_keys_file)
    }

    /// Where the keys are read from: [`ENV_TAPE_KEYS`] when it is set,
    /// else [`keys_path`](Self::keys_path).
    pub fn source(&self) -> KeysSource {
        match std::env::var_os(ENV_TAPE_KEYS) {
            Some(v) if !v.is_empty() => KeysSource::Environment,
            _ => KeysSource::File(self.keys_path()),
        }
    }

    /// The host's tape keys, `None` when there are none yet (no file, no
    /// [`ENV_TAPE_KEYS`]).
    pub fn load(&self) -> Result<Option<Arc<TapeKeys>>, TapeKeysError> {
        let source = self.source();
        let loaded = match &source {
            KeysSource::Environment => {
                let text = std::env::var(ENV_TAPE_KEYS).unwrap_or_default();
                TapeKeys::parse(&text).map(Some)
            }
            KeysSource::File(path) => TapeKeys::load(path),
        };
        loaded
            .map(|k| k.map(Arc::new))
            .map_err(|error| TapeKeysError {
                source_name: source,
                error,
            })
    }
}

/// `$XDG_DATA_HOME/tapedeck/tape-keys`, else
/// `~/.local/share/tapedeck/tape-keys`, else `.tapedeck-tape-keys`.
pub fn default_keys_file() -> PathBuf {
    crate::embedded::user_data_dir().map_or_else(
        || PathBuf::from(".tapedeck-tape-keys"),
        |d| d.join("tapedeck").join(TAPE_KEYS_FILE),
    )
}

/// How a provider configured with `compress` and `encrypt` stores new
/// tapes, given the host's `keys`: encrypted when keys exist and `encrypt`
/// is on; encrypted tapes are read with `keys` whatever the settings.
pub fn codec_settings(compress: bool, encrypt: bool, keys: Option<Arc<TapeKeys>>) -> CodecSettings {
    CodecSettings {
        compress,
        encrypt_with: keys.clone().filter(|_| encrypt),
        read_keys: keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_file_and_encrypt_only_where_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let settings = EncryptionSettings {
            keys_file: Some(dir.path().join("ring")),
        };
        assert_eq!(settings.source(), KeysSource::File(dir.path().join("ring")));
        assert!(settings.load().unwrap().is_none());
        let ring = TapeKeys::generate().unwrap();
        ring.store(&dir.path().join("ring"), false).unwrap();
        let keys = settings.load().unwrap().unwrap();
        assert_eq!(keys.current_id(), ring.current_id());
        let on = codec_settings(true, true, Some(keys.clone()));
        assert!(on.encrypt_with.is_some() && on.compress);
        let off = codec_settings(false, false, Some(keys));
        assert!(off.encrypt_with.is_none() && off.read_keys.is_some());
        std::fs::write(dir.path().join("ring"), "kek x y\n").unwrap();
        let e = settings.load().unwrap_err().to_string();
        assert!(e.contains("ring") && e.contains("line 1"), "{e}");
    }
}
