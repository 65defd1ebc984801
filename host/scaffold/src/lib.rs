//! Starting points for provider authors.
//!
//! * [`new_provider`] writes a minimal provider project in Rust, Python,
//!   JavaScript or C (`tapedeck provider new`): a simple store of one
//!   directory per tape that passes the conformance suite, the contract
//!   (`wit/`), the pinned toolchain versions, the provider's name filled in
//!   and one build command. It builds outside tapedeck's repository with
//!   nothing but the language's toolchain (and, for C, the `tapedeck`
//!   binary, which does the last step).
//! * [`componentize`] makes a core module built against WASI preview 1 (C
//!   with wasi-libc, for one) a component of the `provider` world
//!   (`tapedeck provider componentize`).

#![deny(missing_docs)]

mod componentize;
mod skeleton;

pub use componentize::componentize;
pub use skeleton::{Created, Language, new_provider, validate_name};

/// Why a skeleton could not be written or a module made a component.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The provider name breaks the rule for `provider-info` names.
    #[error("invalid provider name {name:?}: {why}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The target directory exists and is not empty.
    #[error("{0} exists and is not empty: choose another directory (or remove it)")]
    NotEmpty(std::path::PathBuf),
    /// Writing the skeleton failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The core module cannot be made a provider component.
    #[error("not a WASI preview 1 core module of the provider world: {0}")]
    Componentize(String),
}

#[cfg(test)]
mod tests;
