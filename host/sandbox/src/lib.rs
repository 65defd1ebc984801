//! `tapedeck-sandbox`: loading provider components and calling them under
//! grants and limits.
//!
//! One [`Sandbox`] per process holds the wasmtime engine and the linker (WASI
//! plus the `log` import). Each provider becomes a [`WasmProvider`]: its
//! component is compiled and checked once, and instances are created from its
//! `ProviderPre`, one `Store` each, built only from the provider's grants.

#![deny(missing_docs)]

mod bindings;
pub mod cache;
mod convert;
mod deadline;
mod engine;
mod faults;
mod file_streams;
mod grants;
mod limits;
pub mod load;
mod log;
pub mod network;
mod pool;
mod protection;
mod provider;
mod random;
pub mod rlimit;
mod secrets;
mod spec;
mod special_files;
mod state;

pub use cache::ComponentCache;
pub use engine::{Allocator, EPOCH_TICK, EnginePlan, MemoryLayout, PoolingPlan, SandboxEngine};
pub use grants::{DirGrant, DirMode, Grants};
pub use limits::Limits;
pub use load::{ComponentError, LoadedComponent};
pub use protection::{Protection, ProtectionReport};
pub use provider::{ProviderStartError, WasmProvider, WasmWriter};
pub use secrets::Secrets;
pub use spec::{ComponentSource, ProviderSpec};
/// Host-only directories (`tapedeck_store::reserved`).
pub use tapedeck_store::reserved;
pub use tapedeck_store::reserved::ReservedError;

use state::HostState;
use wasmtime::component::{HasSelf, Linker};

/// The engine and linker shared by every provider of a process.
#[derive(Clone)]
pub struct Sandbox {
    engine: SandboxEngine,
    linker: std::sync::Arc<Linker<HostState>>,
    cache: Option<cache::ComponentCache>,
}

impl Sandbox {
    /// Creates the engine (with its epoch ticker) and the linker, with the
    /// compiled-component cache at its default location
    /// ([`cache::ComponentCache::from_env`]).
    pub fn new() -> Result<Sandbox, wasmtime::Error> {
        Sandbox::builder().build()
    }

    /// Like [`Sandbox::new`] with the given cache (`None`: compile every time).
    pub fn with_cache(cache: Option<cache::ComponentCache>) -> Result<Sandbox, wasmtime::Error> {
        Sandbox::builder().cache(cache).build()
    }

    /// A builder: the default cache and the on-demand allocator unless told
    /// otherwise.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            cache: cache::ComponentCache::from_env(),
            pooling: None,
        }
    }

    fn build(
        cache: Option<cache::ComponentCache>,
        pooling: Option<PoolingPlan>,
    ) -> Result<Sandbox, wasmtime::Error> {
        let engine = SandboxEngine::with_pooling(pooling)?;
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Random bytes are charged to a per-request and a per-call budget.
        random::add_to_linker(&mut linker)?;
        // Opening a FIFO, socket or device node (which could block the
        // runtime thread past every timeout) is refused.
        special_files::add_to_linker(&mut linker)?;
        // File output streams write in place rather than on tokio's
        // blocking pool (a thread hand-off per write).
        file_streams::add_to_linker(&mut linker)?;
        // Name lookups ask the network grants; outgoing HTTP goes through
        // the grants' send-request hook. Both refuse everything ungranted.
        network::lookup::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::Provider::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        Ok(Sandbox {
            engine,
            linker: std::sync::Arc::new(linker),
            cache,
        })
    }

    /// The engine (and, through it, which allocator is in use).
    pub fn engine(&self) -> &SandboxEngine {
        &self.engine
    }

    /// Compiles and checks a component (see [`load::load_component`]).
    pub fn load(&self, what: &str, bytes: &[u8]) -> Result<LoadedComponent, ComponentError> {
        load::load_component(&self.engine, &self.linker, self.cache.as_ref(), what, bytes)
    }
}

/// Configuration of a [`Sandbox`] (`Sandbox::builder()`).
pub struct SandboxBuilder {
    cache: Option<cache::ComponentCache>,
    pooling: Option<PoolingPlan>,
}

impl SandboxBuilder {
    /// The compiled-component cache (`None`: compile every time).
    pub fn cache(mut self, cache: Option<cache::ComponentCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Use the pooling allocator sized for providers with these limits
    /// ([`PoolingPlan::for_limits`]), shrunk or replaced by on-demand
    /// allocation to fit a limited address space (`ulimit -v`,
    /// [`EnginePlan::new`]), and falling back to on-demand allocation if the
    /// machine refuses the reservation.
    pub fn pooling_for<'a>(mut self, limits: impl IntoIterator<Item = &'a Limits>) -> Self {
        self.pooling = PoolingPlan::for_limits(limits);
        self
    }

    /// Creates the engine (with its epoch ticker) and the linker.
    pub fn build(self) -> Result<Sandbox, wasmtime::Error> {
        Sandbox::build(self.cache, self.pooling)
    }
}
