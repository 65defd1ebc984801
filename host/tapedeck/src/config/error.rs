//! [`ConfigError`]: everything that can be wrong with a configuration.

use std::path::PathBuf;

/// Why a configuration could not be loaded, or a provider could not be taken
/// from it. Every message names the file, the provider or the key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--config` (or `TAPEDECK_CONFIG`) names a file that does not exist.
    #[error("configuration file {} does not exist", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not match the schema (an unknown
    /// key, a wrong type, a bad size or duration).
    #[error(
        "invalid configuration file {}{}: {message}{}",
        path.display(),
        position(*line, *column),
        indented(snippet)
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column of the problem, when known.
        column: Option<usize>,
        /// What is wrong (e.g. ``unknown field `bogus`, expected one of ...``).
        message: String,
        /// The offending line with a caret under the key (empty when the
        /// position is unknown).
        snippet: String,
    },
    /// The file parsed but a value is unusable (a limit out of range, a
    /// malformed `sha256`, a default provider that is not defined, ...).
    #[error("invalid configuration file {}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the provider and key.
        message: String,
    },
    /// A provider name that the configuration does not define.
    #[error("no provider named `{name}` in {source_name} (configured: {known})")]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// Where the configuration came from.
        source_name: String,
        /// The configured names, comma-separated.
        known: String,
    },
    /// The provider's component file could not be read (to check its hash).
    #[error("provider `{provider}`: cannot read component {}: {source}", path.display())]
    Component {
        /// Provider name.
        provider: String,
        /// The component path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `trusted-keys` is set and the component's signature is missing,
    /// malformed, made by an untrusted key, or does not match its bytes.
    #[error("provider `{provider}`: signature {}: {detail}; refusing to load the component", path.display())]
    Signature {
        /// Provider name.
        provider: String,
        /// The signature file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The component's bytes do not have the configured SHA-256.
    #[error(
        "provider `{provider}`: component {component} has SHA-256 {actual}, but the configuration expects {expected}; refusing to load it"
    )]
    Sha256Mismatch {
        /// Provider name.
        provider: String,
        /// The component (path or label).
        component: String,
        /// The configured hash.
        expected: String,
        /// The hash of the bytes found.
        actual: String,
    },
    /// A secret of a provider's configuration (`{ env = "…" }`,
    /// `{ file = "…" }`) could not be read. The message never holds the
    /// secret itself.
    #[error("provider `{provider}`: `config.{key}`: {detail}")]
    Secret {
        /// Provider name.
        provider: String,
        /// Where in `config` (e.g. `password`, `auth.token`).
        key: String,
        /// What went wrong and what to do.
        detail: String,
    },
}

/// `", line 3, column 1"`, or nothing when the position is unknown.
fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c}"),
        (Some(l), None) => format!(", line {l}"),
        _ => String::new(),
    }
}

/// The snippet on its own lines, or nothing.
fn indented(snippet: &str) -> String {
    if snippet.is_empty() {
        String::new()
    } else {
        format!("\n{snippet}")
    }
}
