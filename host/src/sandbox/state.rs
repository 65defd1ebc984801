//! The data of one provider instance's `Store`: its WASI context, resource
//! table, limiter, log and CPU meter.

use super::bindings::log::{self as wit_log, Level};
use super::grants::{DirMode, Grants};
use super::limits::Limits;
use super::log::{ProviderLog, Source};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

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
}

impl HostState {
    /// Builds the store data for a new instance from its grants and limits:
    /// the granted directories and nothing else.
    pub fn new(grants: &Grants, limits: &Limits, log: ProviderLog) -> Result<Self, String> {
        let mut b = WasiCtxBuilder::new();
        // Run blocking file I/O on the calling thread: ~15x faster per call
        // than tokio's spawn_blocking. Must be set before `preopened_dir`.
        b.allow_blocking_current_thread(true);
        b.stdout(log.stream(Source::Stdout));
        b.stderr(log.stream(Source::Stderr));
        b.max_random_size(limits.max_random.0);
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
        })
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
    pub hit: Option<String>,
}

impl Limiter {
    fn new(limits: &Limits) -> Self {
        Limiter {
            memory: limits.memory.0 as usize,
            table_elements: limits.table_elements as usize,
            core_instances: limits.core_instances as usize,
            hit: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            let msg = format!(
                "linear memory would grow to {desired} bytes, over the limit of {} bytes",
                self.memory
            );
            self.hit = Some(msg.clone());
            return Err(wasmtime::Error::msg(msg));
        }
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
                "a table would grow to {desired} elements, over the limit of {}",
                self.table_elements
            );
            self.hit = Some(msg.clone());
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
