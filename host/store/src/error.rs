//! Typed errors at the library boundary.
//!
//! [`ProviderError`] separates what a provider *reported* (a [`StorageError`],
//! the instance is fine) from what the host *did to* it (trap, CPU deadline,
//! timeout, memory limit, contract violation: the instance was discarded and
//! the next call gets a fresh one).

use std::time::Duration;
use tapedeck_types::{ErrorKind, StorageError};

/// Why a call to a provider failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider reported an ordinary failure; the instance is healthy.
    #[error("provider `{provider}`: {error}")]
    Storage {
        /// Provider name.
        provider: String,
        /// What the provider reported.
        error: StorageError,
    },
    /// The provider trapped (panic, unreachable, stack overflow, ...). The
    /// instance was discarded.
    #[error("provider `{provider}` trapped in `{call}`: {detail}")]
    Trap {
        /// Provider name.
        provider: String,
        /// The contract function being called.
        call: &'static str,
        /// The trap and its backtrace, as wasmtime reported it.
        detail: String,
    },
    /// The provider ran longer than its per-call CPU budget. The instance was
    /// discarded.
    #[error("provider `{provider}` exceeded its CPU budget of {limit:?} in `{call}`")]
    CpuLimit {
        /// Provider name.
        provider: String,
        /// The contract function being called.
        call: &'static str,
        /// The configured budget.
        limit: Duration,
    },
    /// The call did not complete within the wall-clock timeout (this covers
    /// host I/O done for the provider). The instance was discarded.
    #[error("provider `{provider}` did not complete `{call}` within {limit:?}")]
    Timeout {
        /// Provider name.
        provider: String,
        /// The contract function being called.
        call: &'static str,
        /// The configured timeout.
        limit: Duration,
    },
    /// The provider tried to grow its memory or tables beyond its limit (the
    /// instance was discarded), or a listing went past the bound of one walk
    /// ([`crate::paging`]; no instance is discarded).
    #[error("provider `{provider}` hit its resource limit in `{call}`: {detail}")]
    ResourceLimit {
        /// Provider name.
        provider: String,
        /// The contract function being called.
        call: &'static str,
        /// Which limit.
        detail: String,
    },
    /// The provider returned something the contract forbids (too much data,
    /// frames out of order, a tape it was not asked for, ...). The instance was
    /// discarded, unless the violation spans the pages of a listing (a
    /// repeated cursor, [`crate::paging`]) with no single answer wrong.
    #[error("provider `{provider}` broke the contract in `{call}`: {detail}")]
    Contract {
        /// Provider name.
        provider: String,
        /// The contract function being called.
        call: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A fresh instance could not be created or initialised.
    #[error("provider `{provider}` could not be started: {detail}")]
    Unavailable {
        /// Provider name.
        provider: String,
        /// Why.
        detail: String,
    },
    /// The provider could not be started at all in this process (its
    /// configuration, component or grants); retrying cannot help. What was
    /// recorded for it waits in the spool.
    #[error("provider `{provider}` did not start: {detail}")]
    NotStarted {
        /// Provider name.
        provider: String,
        /// Why.
        detail: String,
    },
    /// The host's codec ([`crate::codec`]) cannot encode or decode a tape
    /// for this provider (a missing tape key, a tape a newer tapedeck
    /// wrote), or refuses a call it cannot answer (a text search over
    /// encrypted payloads). Nothing was asked of the provider.
    #[error("provider `{provider}`: {detail}")]
    Codec {
        /// The provider.
        provider: String,
        /// What the codec could not do, and what to do about it.
        detail: String,
    },
    /// The provider was shut down.
    #[error("provider `{provider}` is shut down")]
    Closed {
        /// Provider name.
        provider: String,
    },
}

impl ProviderError {
    /// The kind of storage error, if the provider reported one.
    pub fn storage_kind(&self) -> Option<ErrorKind> {
        match self {
            ProviderError::Storage { error, .. } => Some(error.kind),
            _ => None,
        }
    }

    /// True if retrying the call cannot help: the provider refused it for
    /// good (invalid input, not found, already exists, unsupported), was
    /// shut down, or could not be started at all. Anything else (an I/O
    /// error, a trap, a timeout, a quota) may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            ProviderError::Closed { .. }
            | ProviderError::NotStarted { .. }
            | ProviderError::Codec { .. } => true,
            ProviderError::Storage { error, .. } => matches!(
                error.kind,
                ErrorKind::InvalidInput
                    | ErrorKind::NotFound
                    | ErrorKind::AlreadyExists
                    | ErrorKind::Unsupported
            ),
            _ => false,
        }
    }

    /// True if the provider said the tape (or cursor) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.storage_kind() == Some(ErrorKind::NotFound)
    }

    /// True if the host discarded the instance because of this error (trap,
    /// limit, timeout, contract violation).
    pub fn recycled_instance(&self) -> bool {
        matches!(
            self,
            ProviderError::Trap { .. }
                | ProviderError::CpuLimit { .. }
                | ProviderError::Timeout { .. }
                | ProviderError::ResourceLimit { .. }
                | ProviderError::Contract { .. }
        )
    }

    /// Short machine-readable name of the error's variant (for `--json`).
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Storage { error, .. } => error.kind.as_str(),
            ProviderError::Trap { .. } => "trap",
            ProviderError::CpuLimit { .. } => "cpu-limit",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::ResourceLimit { .. } => "resource-limit",
            ProviderError::Contract { .. } => "contract-violation",
            ProviderError::Unavailable { .. } => "unavailable",
            ProviderError::NotStarted { .. } => "not-started",
            ProviderError::Closed { .. } => "closed",
            ProviderError::Codec { .. } => "codec",
        }
    }
}
