//! Configuration: the TOML file (`tapedeck.toml`), its defaults and
//! `TAPEDECK_*` environment overrides.
//!
//! ```toml
//! provider = "archive"                  # which provider to use (default "fs")
//! trusted-keys = ["ed25519:…"]           # if set, component files must be signed by one
//!
//! [providers.archive]
//! component = "providers/archive.wasm"  # relative to this file, or "embedded:fs"
//! sha256 = "…"                          # optional: refuse other bytes
//! signature = "providers/archive.wasm.sig"  # default: the component path + ".sig"
//! config = { root = "/data" }           # given to the provider's `init`, as JSON
//! # config = { password = { env = "PGPASSWORD" } }  # a secret: see `secrets`
//! grants.dirs = [
//!   { host = "archive", guest = "/data", mode = "read-write", create = true },
//! ]
//! grants.network = ["tcp://127.0.0.1:5432"]  # see `sandbox::network`; none by default
//! limits = { memory = "128MiB" }        # see `sandbox::Limits`
//! compress = true                       # default; see `encryption`
//! encrypt = true                        # default: once tape keys exist
//!
//! [recorder]                            # see `recorder::RecorderOptions`
//! batch-frames = 256
//!
//! [redaction]                           # see `redaction`
//! keys = ["x-tenant-secret"]            # besides the default preset
//!
//! [encryption]                          # see `encryption`
//! keys-file = "tape-keys"               # default $XDG_DATA_HOME/tapedeck/tape-keys
//!
//! [seals]                               # see `seals`
//! key-file = "host-key"                 # default $XDG_DATA_HOME/tapedeck/host-key
//! trusted-hosts = ["ed25519:…"]          # other hosts whose seals count
//! require = false
//! ```
//!
//! Every table refuses keys it does not know, and the error names the key,
//! the file and the line. The embedded filesystem provider is always
//! available as `fs` (granted `tapes/` next to the configuration file, or in
//! the working directory when there is no file), unless the file defines a
//! provider called `fs` itself. `tapedeck.example.toml` at the top of the
//! repository documents every key.
//!
//! Discovery ([`Config::discover`]): an explicit path (`--config`,
//! `TAPEDECK_CONFIG`) must exist; otherwise `./tapedeck.toml` is used if it
//! exists; otherwise the embedded default. [`ENV_PROVIDER`] and
//! [`ENV_TAPES_DIR`] are applied by the caller (the CLI maps them to
//! options).

mod error;
mod secrets;

pub use error::ConfigError;

use crate::embedded;
use crate::encryption::EncryptionSettings;
use crate::recorder::RecorderOptions;
use crate::redaction::RedactionSettings;
use crate::sandbox::{ComponentSource, Grants, Limits, ProviderSpec};
use crate::seals::SealSettings;
use crate::signing::{PublicKey, SignatureFile};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tapedeck_store::codec::{CodecSettings, TapeKeys};

/// The file looked for in the working directory when no path is given.
pub const DEFAULT_FILE: &str = "tapedeck.toml";
/// Prefix of a `component` naming a provider built into tapedeck
/// (`"embedded:fs"`).
pub const EMBEDDED_PREFIX: &str = "embedded:";
/// Environment variable: path of the configuration file (like `--config`).
pub const ENV_CONFIG: &str = "TAPEDECK_CONFIG";
/// Environment variable: which configured provider to use (like
/// `--provider`).
pub const ENV_PROVIDER: &str = "TAPEDECK_PROVIDER";
/// Environment variable: host directory granted to the implicit embedded
/// `fs` provider instead of `tapes/`.
pub const ENV_TAPES_DIR: &str = "TAPEDECK_TAPES_DIR";

/// A loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Which provider to use when none is named. Default `"fs"`.
    pub provider: String,
    /// The providers by name (always includes `fs`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// How the recorder batches frames (`[recorder]`).
    pub recorder: RecorderOptions,
    /// The host's seal (`[seals]`).
    pub seals: SealSettings,
    /// What is taken out of recorded messages (`[redaction]`).
    pub redaction: RedactionSettings,
    /// Where the tape keys are (`[encryption]`).
    pub encryption: EncryptionSettings,
    /// Keys whose signature a component file must carry (`trusted-keys`);
    /// empty: signatures are not required. The embedded provider is exempt.
    pub trusted_keys: Vec<PublicKey>,
    /// The file this was read from; `None` for the embedded default.
    pub path: Option<PathBuf>,
    /// Directory that relative paths (components, granted directories) are
    /// resolved against: the file's directory, or `.` for the default.
    pub base_dir: PathBuf,
    /// True while `fs` is the implicit embedded provider (not defined in the
    /// file), so that [`Config::set_tapes_dir`] may move its directory.
    implicit_fs: bool,
}

/// One provider (`[providers.<name>]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The component: a `.wasm` path relative to the configuration file's
    /// directory, or `"embedded:fs"` for the built-in filesystem provider.
    pub component: String,
    /// Expected SHA-256 of the component (lowercase or uppercase hex). When
    /// set, other bytes are refused before they are compiled.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The detached signature file, relative to the configuration file's
    /// directory. Default: the component path with `.sig` appended. Only
    /// read when `trusted-keys` is set.
    #[serde(default)]
    pub signature: Option<String>,
    /// The provider's own settings, passed to its `init` as a JSON object.
    #[serde(default = "empty_object", deserialize_with = "table_to_json")]
    pub config: serde_json::Value,
    /// What it may access (`grants.dirs`: host directory, guest path, mode;
    /// `grants.network`: allow-list entries such as `"tcp://127.0.0.1:5432"`).
    #[serde(default)]
    pub grants: Grants,
    /// How much it may use; every limit is optional.
    #[serde(default)]
    pub limits: Limits,
    /// Compress payloads on the host before they reach the provider
    /// (default true; see [`crate::encryption`]).
    #[serde(default = "yes")]
    pub compress: bool,
    /// Encrypt new tapes once the host has tape keys (default true; see
    /// [`crate::encryption`]).
    #[serde(default = "yes")]
    pub encrypt: bool,
}

fn yes() -> bool {
    true
}

/// The file as written; [`Config`] adds the implicit `fs` provider.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    provider: Option<toml::Spanned<String>>,
    #[serde(default)]
    trusted_keys: Vec<toml::Spanned<String>>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    recorder: RecorderOptions,
    #[serde(default)]
    seals: RawSeals,
    #[serde(default)]
    redaction: RedactionSettings,
    #[serde(default)]
    encryption: RawEncryption,
}

/// `[encryption]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEncryption {
    #[serde(default)]
    keys_file: Option<String>,
}

/// `[seals]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSeals {
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    trusted_hosts: Vec<toml::Spanned<String>>,
    #[serde(default)]
    require: bool,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn table_to_json<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    let table = toml::Table::deserialize(d)?;
    toml_to_json(toml::Value::Table(table)).map_err(serde::de::Error::custom)
}

/// Converts a TOML value to JSON: datetimes become RFC 3339 strings; NaN and
/// infinities are refused (JSON cannot hold them).
fn toml_to_json(v: toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(f)
                .map(J::Number)
                .ok_or_else(|| {
                    format!("{f} cannot be passed to a provider (not representable in JSON)")
                })?
        }
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => {
            J::Array(a.into_iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => J::Object(
            t.into_iter()
                .map(|(k, v)| Ok((k, toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line `line` of `text` with carets under `len` characters from `column`
/// (both 1-based), as compilers show it.
fn snippet(text: &str, line: usize, column: usize, len: usize) -> String {
    let content = text.lines().nth(line - 1).unwrap_or("");
    let width = content.chars().count();
    let carets = len.clamp(1, (width + 1).saturating_sub(column).max(1));
    let gutter = " ".repeat(line.to_string().len());
    format!(
        "{gutter} |\n{line} | {content}\n{gutter} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(carets)
    )
}

/// The embedded fs provider granted `host_dir` at `/tapes`, as configuration.
fn embedded_fs(host_dir: PathBuf) -> ProviderConfig {
    let spec = embedded::fs_provider_spec(host_dir);
    ProviderConfig {
        component: format!("{EMBEDDED_PREFIX}{}", embedded::DEFAULT_PROVIDER),
        sha256: None,
        signature: None,
        config: spec.config,
        grants: spec.grants,
        limits: spec.limits,
        compress: true,
        encrypt: true,
    }
}

impl Config {
    /// The configuration used when there is no file: the embedded fs
    /// provider, granted read-write at `/tapes` the directory
    /// [`embedded::default_tapes_dir`] picks (`./tapes` if it exists, else
    /// the user's data directory).
    pub fn embedded_default() -> Config {
        let mut providers = BTreeMap::new();
        providers.insert(
            embedded::DEFAULT_PROVIDER.to_string(),
            embedded_fs(embedded::default_tapes_dir(Path::new("."))),
        );
        Config {
            provider: embedded::DEFAULT_PROVIDER.to_string(),
            providers,
            recorder: RecorderOptions::default(),
            seals: SealSettings::default(),
            redaction: RedactionSettings::default(),
            encryption: EncryptionSettings::default(),
            trusted_keys: Vec::new(),
            path: None,
            base_dir: PathBuf::from("."),
            implicit_fs: true,
        }
    }

    /// Finds the configuration: `explicit` (which must exist) if given, else
    /// `./tapedeck.toml` if it exists, else [`Config::embedded_default`].
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            if !path.exists() {
                return Err(ConfigError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            return Config::load(path);
        }
        let default = Path::new(DEFAULT_FILE);
        if default.exists() {
            return Config::load(default);
        }
        Ok(Config::embedded_default())
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses configuration `text`, as if read from `path` (used in messages
    /// and as the base of relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column, snippet) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c), snippet(text, l, c, span.len()))
                }
                None => (None, None, String::new()),
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim_end().to_string(),
                snippet,
            }
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut providers = raw.providers;
        for (name, p) in &providers {
            p.check()
                .map_err(|e| invalid(format!("provider `{name}`: {e}")))?;
        }
        let implicit_fs = !providers.contains_key(embedded::DEFAULT_PROVIDER);
        if implicit_fs {
            providers.insert(
                embedded::DEFAULT_PROVIDER.to_string(),
                embedded_fs(embedded::default_tapes_dir(&base_dir)),
            );
        }
        let provider = match raw.provider {
            None => embedded::DEFAULT_PROVIDER.to_string(),
            Some(spanned) => {
                let (line, _) = line_col(text, spanned.span().start);
                let name = spanned.into_inner();
                if !providers.contains_key(&name) {
                    return Err(invalid(format!(
                        "line {line}: `provider = {name:?}` names no configured provider (configured: {})",
                        providers.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                name
            }
        };
        let mut trusted_keys = Vec::with_capacity(raw.trusted_keys.len());
        for k in raw.trusted_keys {
            let (line, _) = line_col(text, k.span().start);
            trusted_keys.push(
                PublicKey::parse(k.get_ref())
                    .map_err(|e| invalid(format!("line {line}: `trusted-keys`: {e}")))?,
            );
        }
        let mut trusted_hosts = Vec::with_capacity(raw.seals.trusted_hosts.len());
        for k in raw.seals.trusted_hosts {
            let (line, _) = line_col(text, k.span().start);
            trusted_hosts.push(PublicKey::parse(k.get_ref()).map_err(|e| {
                invalid(format!(
                    "line {line}: `[seals] trusted-hosts`: {e} (give another host's key as `tapedeck keys show` prints it there)"
                ))
            })?);
        }
        let seals = SealSettings {
            key_file: raw.seals.key_file.map(|f| base_dir.join(f)),
            trusted_hosts,
            require: raw.seals.require,
        };
        raw.redaction
            .rules()
            .map_err(|e| invalid(format!("[redaction]: {e}")))?;
        Ok(Config {
            provider,
            providers,
            recorder: raw.recorder,
            seals,
            redaction: raw.redaction,
            encryption: EncryptionSettings {
                keys_file: raw.encryption.keys_file.map(|f| base_dir.join(f)),
            },
            trusted_keys,
            path: Some(path.to_path_buf()),
            base_dir,
            implicit_fs,
        })
    }

    /// Where this configuration came from, for messages.
    pub fn source_name(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the embedded default configuration".to_string(),
        }
    }

    /// Grants the implicit embedded `fs` provider `dir` (read-write, at
    /// `/tapes`) instead of `tapes/` ([`ENV_TAPES_DIR`]). Returns false, and
    /// changes nothing, when the file defines `fs` itself.
    pub fn set_tapes_dir(&mut self, dir: &Path) -> bool {
        if !self.implicit_fs {
            return false;
        }
        self.providers.insert(
            embedded::DEFAULT_PROVIDER.to_string(),
            embedded_fs(dir.to_path_buf()),
        );
        true
    }

    /// How provider `name` (default: [`Config::provider`]) stores new
    /// tapes, given the host's tape `keys` ([`crate::encryption`]).
    pub fn codec_settings(
        &self,
        name: Option<&str>,
        keys: Option<Arc<TapeKeys>>,
    ) -> Result<CodecSettings, ConfigError> {
        let (_, p) = self.provider_config(name)?;
        Ok(crate::encryption::codec_settings(
            p.compress, p.encrypt, keys,
        ))
    }

    /// Provider `name` (default: [`Config::provider`]) and its table.
    fn provider_config<'a>(
        &'a self,
        name: Option<&'a str>,
    ) -> Result<(&'a str, &'a ProviderConfig), ConfigError> {
        let name = name.unwrap_or(&self.provider);
        let p = self
            .providers
            .get(name)
            .ok_or_else(|| ConfigError::UnknownProvider {
                name: name.to_string(),
                source_name: self.source_name(),
                known: self.provider_names().join(", "),
            })?;
        Ok((name, p))
    }

    /// The configured provider names, sorted.
    pub fn provider_names(&self) -> Vec<&str> {
        self.providers.keys().map(String::as_str).collect()
    }

    /// The spec of provider `name` (default: [`Config::provider`]) and the
    /// directory its relative grant paths are resolved against. When the
    /// provider has a `sha256`, the component is read and checked here, and
    /// the spec carries the checked bytes.
    pub fn provider_spec(
        &self,
        name: Option<&str>,
    ) -> Result<(ProviderSpec, PathBuf), ConfigError> {
        let (name, p) = self.provider_config(name)?;
        let mut component = match p.component.strip_prefix(EMBEDDED_PREFIX) {
            // `check` accepted the name.
            Some(_) => embedded::fs_provider_source(),
            None => ComponentSource::File(self.base_dir.join(&p.component)),
        };
        let must_sign =
            !self.trusted_keys.is_empty() && matches!(component, ComponentSource::File(_));
        if p.sha256.is_some() || must_sign {
            // Read once; check the pin and the signature on these bytes, and
            // hand exactly these bytes to the sandbox.
            let bytes: Arc<[u8]> = match &component {
                ComponentSource::Bytes { bytes, .. } => bytes.clone(),
                ComponentSource::File(path) => std::fs::read(path)
                    .map_err(|source| ConfigError::Component {
                        provider: name.to_string(),
                        path: path.clone(),
                        source,
                    })?
                    .into(),
            };
            if must_sign {
                self.check_signature(name, p, &bytes)?;
            }
            component = ComponentSource::Bytes {
                label: component.label(),
                bytes,
            };
        }
        if let (Some(expected), ComponentSource::Bytes { bytes, .. }) = (&p.sha256, &component) {
            let actual = hex::encode(Sha256::digest(bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(ConfigError::Sha256Mismatch {
                    provider: name.to_string(),
                    component: component.label(),
                    expected: expected.to_ascii_lowercase(),
                    actual,
                });
            }
        }
        let (config, secrets) =
            secrets::resolve(&p.config, &self.base_dir).map_err(|(key, detail)| {
                ConfigError::Secret {
                    provider: name.to_string(),
                    key,
                    detail,
                }
            })?;
        let spec = ProviderSpec::new(name, component)
            .with_config(config)
            .with_secrets(secrets)
            .with_grants(p.grants.clone())
            .with_limits(p.limits.clone());
        Ok((spec, self.base_dir.clone()))
    }
}

impl Config {
    /// Verifies the detached signature of provider `name`'s component
    /// `bytes` against the trusted keys.
    fn check_signature(
        &self,
        name: &str,
        p: &ProviderConfig,
        bytes: &[u8],
    ) -> Result<(), ConfigError> {
        let path = self.base_dir.join(match &p.signature {
            Some(sig) => sig.clone(),
            None => format!("{}.sig", p.component),
        });
        let failed = |detail: String| ConfigError::Signature {
            provider: name.to_string(),
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            failed(format!(
                "cannot read it ({e}); `trusted-keys` is set, so every component file must be signed (`tapedeck provider sign`)"
            ))
        })?;
        SignatureFile::parse(&text)
            .and_then(|sig| sig.verify(bytes, &self.trusted_keys))
            .map(|_| ())
            .map_err(|e| failed(e.to_string()))
    }
}

impl ProviderConfig {
    /// Checks what the schema cannot: the component names something, an
    /// embedded component exists, `sha256` is 64 hex digits, limits are in
    /// range, grants name absolute guest paths.
    fn check(&self) -> Result<(), String> {
        if self.component.trim().is_empty() {
            return Err("`component` is empty".into());
        }
        if let Some(name) = self.component.strip_prefix(EMBEDDED_PREFIX)
            && name != embedded::DEFAULT_PROVIDER
        {
            return Err(format!(
                "`component = {:?}`: there is no embedded provider {name:?} (available: \"{EMBEDDED_PREFIX}{}\")",
                self.component,
                embedded::DEFAULT_PROVIDER
            ));
        }
        if let Some(h) = &self.sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "`sha256 = {h:?}` is not a SHA-256 (64 hexadecimal digits)"
            ));
        }
        if let Some(g) = self.grants.dirs.iter().find(|g| !g.guest.starts_with('/')) {
            return Err(format!(
                "grant of {}: guest path {:?} must be absolute (e.g. \"/data\")",
                g.host.display(),
                g.guest
            ));
        }
        self.grants
            .network_policy()
            .map_err(|e| format!("`grants.network`: {e}"))?;
        secrets::check(&self.config)
            .map_err(|(key, detail)| format!("`config.{key}`: {detail}"))?;
        self.limits.validate()
    }
}

#[cfg(test)]
mod tests;
