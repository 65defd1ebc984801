//! What the suite can do beyond the store's own calls, when whoever runs
//! it can ([`Harness`]): start the provider again with another
//! configuration, see what an instance holds, tear a write. `tapedeck
//! provider test` gives a harness over the sandbox; a library caller
//! testing a native store may give none, and the cases that need one are
//! skipped, saying so.

use std::future::Future;
use std::pin::Pin;
use tapedeck_store::ProviderError;

/// A boxed future of a [`Harness`] method.
pub type HarnessFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the instances of the provider under test hold, between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Live instances counted.
    pub instances: u64,
    /// Resources (descriptors, streams, sockets…) in their tables, summed.
    pub resources: u64,
    /// Linear memory, summed, in bytes.
    pub memory: u64,
}

/// A fault to inject into the next call's file writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornWrite {
    /// Which write of the call (1 for the first) is torn: it stores only
    /// the first half of its bytes, then the instance traps, as if the
    /// process died between the write and its acknowledgement.
    pub nth: u32,
}

/// Optional powers over the provider under test; every method defaults to
/// "cannot".
pub trait Harness: Send + Sync {
    /// Starts a new instance of the provider with `config` (a JSON object)
    /// and returns what its `init` answered; `None`: this harness cannot.
    fn init_with<'a>(
        &'a self,
        config: &'a serde_json::Value,
    ) -> HarnessFuture<'a, Option<Result<(), ProviderError>>> {
        let _ = config;
        Box::pin(async { None })
    }

    /// The provider's configuration as the suite's store was started with
    /// (the base for [`init_with`](Self::init_with)).
    fn config(&self) -> Option<serde_json::Value> {
        None
    }

    /// What the live instances hold now; `None`: unknown.
    fn usage(&self) -> Option<Usage> {
        None
    }

    /// Arms `fault` for the next call that writes a file; false: this
    /// harness cannot.
    fn arm(&self, fault: TornWrite) -> bool {
        let _ = fault;
        false
    }

    /// Whether the armed fault fired (and disarms it): false when the call
    /// wrote fewer files than [`TornWrite::nth`].
    fn fired(&self) -> bool {
        false
    }
}
