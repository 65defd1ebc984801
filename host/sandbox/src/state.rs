//! The data of one provider instance's `Store`: its WASI context, resource
//! table, limiter, log and CPU meter, and its network (sockets, name lookups
//! and `wasi:http`, all checked against the network grants).

use super::bindings::log::{self as wit_log, Level};
use super::faults::FaultPlan;
use super::grants::{DirMode, Grants};
use super::limits::Limits;
use super::log::{ProviderLog, Source};
use super::network::{self, InstanceNetwork, http::HttpHooks, lookup::LookupView};
use super::random::{BudgetedRandom, RandomBudget, RandomView};
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Store data of one instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and table limits; records which limit was hit.
    pub limiter: Limiter,
    /// The provider's log.
    pub log: ProviderLog,
    /// Epoch ticks spent in the current call.
    pub ticks_used: u64,
    /// Epoch ticks a call may spend.
    pub tick_budget: u64,
    /// Random bytes left for the current call.
    pub random: RandomBudget,
    /// The instance's network grants and lookups (`None`: no network).
    pub net: Option<Arc<InstanceNetwork>>,
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
    /// Faults to inject into file writes (shared by the provider's
    /// instances; disarmed unless a test asks).
    pub faults: Arc<FaultPlan>,
}

impl HostState {
    /// Resources in the instance's table now (descriptors, streams,
    /// sockets, pollables…).
    pub fn resource_count(&mut self) -> usize {
        self.table.iter_mut().count()
    }

    /// Builds the store data for a new instance from its grants and limits:
    /// the granted directories and nothing else.
    pub fn new(
        grants: &Grants,
        limits: &Limits,
        log: ProviderLog,
        faults: Arc<FaultPlan>,
    ) -> Result<Self, String> {
        let mut b = WasiCtxBuilder::new();
        // Run blocking file I/O on the calling thread: ~15x faster per call
        // than tokio's spawn_blocking. Must be set before `preopened_dir`.
        b.allow_blocking_current_thread(true);
        b.stdout(log.stream(Source::Stdout));
        b.stderr(log.stream(Source::Stderr));
        b.max_random_size(limits.max_random.0);
        let net = grants
            .network_policy()
            .map_err(|e| e.to_string())?
            .map(|p| Arc::new(InstanceNetwork::new(Arc::new(p), log.provider(), limits)));
        network::configure_sockets(&mut b, net.as_ref());
        for g in &grants.dirs {
            let perms = match g.mode {
                DirMode::ReadOnly => FsPerms::ReadOnly,
                DirMode::ReadWrite => FsPerms::ReadWrite,
            };
            b.preopened_dir(&g.host, &g.guest, perms).map_err(|e| {
                format!(
                    "cannot open granted directory {} for the provider: {e}",
                    g.host.display()
                )
            })?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources as usize);
        Ok(HostState {
            wasi: b.build(),
            table,
            limiter: Limiter::new(limits),
            log,
            ticks_used: 0,
            tick_budget: u64::MAX,
            random: RandomBudget::new(limits),
            http: WasiHttpCtx::new(),
            http_hooks: HttpHooks::new(net.clone()),
            net,
            faults,
        })
    }
}

impl HostState {
    /// How many WASI resources the instance may hold (`max-resources`).
    pub fn resource_capacity(&self) -> usize {
        self.table.max_capacity()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl LookupView for HostState {
    fn lookup_view(&mut self) -> (&mut ResourceTable, Option<&Arc<InstanceNetwork>>) {
        (&mut self.table, self.net.as_ref())
    }
}

impl RandomView for HostState {
    fn random_view(&mut self) -> BudgetedRandom<'_> {
        BudgetedRandom {
            ctx: self.wasi.random(),
            budget: &mut self.random,
        }
    }
}

impl super::bindings::wit::Host for HostState {}

impl wit_log::Host for HostState {
    fn emit(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log.emit(Source::Log, level, message.as_bytes());
        Ok(())
    }
}

/// Enforces memory, table and instance limits and remembers which one a
/// provider hit, so the error can name it.
pub struct Limiter {
    memory: usize,
    table_elements: usize,
    core_instances: usize,
    /// The limit hit during the current call, if any.
    pub hit: Option<LimitHit>,
    /// Linear memory granted so far, all memories of the instance.
    pub memory_bytes: usize,
}

/// A memory or table limit a provider hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// The limit's configuration key: `memory` or `table-elements`.
    pub limit: &'static str,
    /// What was asked for, and the limit.
    pub detail: String,
}

impl Limiter {
    fn new(limits: &Limits) -> Self {
        Limiter {
            memory: limits.memory.0 as usize,
            table_elements: limits.table_elements as usize,
            core_instances: limits.core_instances as usize,
            hit: None,
            memory_bytes: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            let msg = format!(
                "linear memory would grow to {desired} bytes, over the limit of {} bytes (limit `memory`)",
                self.memory
            );
            self.hit = Some(LimitHit {
                limit: "memory",
                detail: msg.clone(),
            });
            return Err(wasmtime::Error::msg(msg));
        }
        self.memory_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            let msg = format!(
                "a table would grow to {desired} elements, over the limit of {} (limit `table-elements`)",
                self.table_elements
            );
            self.hit = Some(LimitHit {
                limit: "table-elements",
                detail: msg.clone(),
            });
            return Err(wasmtime::Error::msg(msg));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.core_instances
    }

    fn tables(&self) -> usize {
        self.core_instances
    }

    fn memories(&self) -> usize {
        self.core_instances
    }
}
