//! The conformance suite's [`Harness`] over a sandboxed provider: what
//! `tapedeck provider test` (and a program embedding the library) hands the
//! suite so that it can also check configuration checks, resource use over
//! a long run and recovery from torn writes.

use crate::conformance::{Harness, HarnessFuture, TornWrite, Usage};
use crate::error::ProviderError;
use crate::sandbox::WasmProvider;

/// A [`Harness`] over `provider`, started with `config`.
#[derive(Clone)]
pub struct SandboxHarness {
    provider: WasmProvider,
    config: serde_json::Value,
}

impl SandboxHarness {
    /// The harness of `provider`, whose configuration is `config` (the
    /// spec's `config`, the base of the configuration checks).
    pub fn new(provider: WasmProvider, config: serde_json::Value) -> Self {
        SandboxHarness { provider, config }
    }
}

impl Harness for SandboxHarness {
    fn init_with<'a>(
        &'a self,
        config: &'a serde_json::Value,
    ) -> HarnessFuture<'a, Option<Result<(), ProviderError>>> {
        Box::pin(async move { Some(self.provider.try_config(config).await.map(|_| ())) })
    }

    fn config(&self) -> Option<serde_json::Value> {
        Some(self.config.clone())
    }

    fn usage(&self) -> Option<Usage> {
        let (instances, resources, memory) = self.provider.usage();
        Some(Usage {
            instances,
            resources,
            memory,
        })
    }

    fn arm(&self, fault: TornWrite) -> bool {
        self.provider.arm_torn_write(fault.nth);
        true
    }

    fn fired(&self) -> bool {
        self.provider.torn_write_fired()
    }
}
