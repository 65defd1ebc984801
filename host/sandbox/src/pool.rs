//! A provider's instances: a fixed number of slots, each holding at most one
//! live instance (a `Store` plus its bindings), created lazily from the
//! `ProviderPre` and thrown away after any trap, limit, timeout, contract
//! violation or cancelled call. Calls on one slot are serialised by its mutex;
//! calls on different slots run in parallel.

use super::bindings::{Provider, wit};
use super::convert;
use super::deadline::{self, Elapsed};
use super::engine::{SandboxEngine, ticks_for};
use super::faults::FaultPlan;
use super::grants::Grants;
use super::limits::Limits;
use super::load::LoadedComponent;
use super::log::ProviderLog;
use super::protection::{Protection, ProtectionCounters};
use super::random::RandomLimitExceeded;
use super::secrets::Secrets;
use super::state::HostState;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tapedeck_store::ProviderError;
use tapedeck_store::text;
use tapedeck_types::ProviderInfo;
use tapedeck_types::units::ByteSize;
use tokio::sync::{Mutex, MutexGuard};
use wasmtime::component::{ResourceAny, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline};

/// A live instance.
pub(crate) struct Live {
    pub store: Store<HostState>,
    pub bindings: Provider,
}

#[derive(Default)]
pub(crate) struct Slot {
    live: Option<Live>,
    /// Incremented for every new instance; resource handles remember it.
    generation: u64,
    /// A call was entered and not settled: it was cancelled mid-flight, so
    /// the instance is in an unknown state.
    in_call: bool,
}

/// Marker error: the host found the provider's answer in breach of the
/// contract after the call returned.
#[derive(Debug)]
pub(crate) struct ContractViolation(pub String);

impl fmt::Display for ContractViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContractViolation {}

/// Counters for diagnostics.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Instances created.
    pub instantiations: AtomicU64,
    /// Instances discarded after a failure.
    pub recycles: AtomicU64,
    /// What the host enforced on this provider, by protection.
    pub protections: ProtectionCounters,
}

/// All instances of one provider.
pub(crate) struct Pool {
    pub name: Arc<str>,
    engine: SandboxEngine,
    loaded: LoadedComponent,
    config_json: String,
    /// Secret values of the configuration, scrubbed from every error.
    secrets: Secrets,
    grants: Grants,
    pub limits: Limits,
    slots: Vec<Mutex<Slot>>,
    /// Writer handles dropped by the host, to be released in their instance.
    orphans: Vec<std::sync::Mutex<Vec<(u64, ResourceAny)>>>,
    next: AtomicUsize,
    pub counters: PoolCounters,
    /// Faults to inject into the instances' file writes (disarmed).
    pub faults: Arc<FaultPlan>,
    /// `init`'s rejection of the configuration is returned as the
    /// provider's storage error (a configuration probe), not as the
    /// provider being unavailable.
    init_rejection_as_error: bool,
}

impl Pool {
    /// A `storage-error` the provider reported (as the answer to a call or
    /// to one entry of `append-many`), escaped, bounded and scrubbed of
    /// secrets.
    pub fn storage_error(&self, e: wit::StorageError) -> ProviderError {
        self.secrets.scrub_error(ProviderError::Storage {
            provider: self.name.to_string(),
            error: convert::error_from_wit(e),
        })
    }

    pub fn new(
        name: &str,
        engine: SandboxEngine,
        loaded: LoadedComponent,
        config_json: String,
        secrets: Secrets,
        grants: Grants,
        limits: Limits,
    ) -> Self {
        let n = limits.instances.max(1) as usize;
        Pool {
            name: name.into(),
            engine,
            loaded,
            config_json,
            secrets,
            grants,
            limits,
            slots: (0..n).map(|_| Mutex::new(Slot::default())).collect(),
            orphans: (0..n).map(|_| Default::default()).collect(),
            next: AtomicUsize::new(0),
            counters: PoolCounters::default(),
            faults: Arc::default(),
            init_rejection_as_error: false,
        }
    }

    /// The slot for the next call (round robin).
    pub fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    /// A pool of the same component, grants and limits with another
    /// configuration (not started), whose `init` rejecting it is the
    /// provider's storage error.
    pub fn with_config(&self, config_json: String) -> Pool {
        let mut pool = Pool::new(
            &self.name,
            self.engine.clone(),
            self.loaded.clone(),
            config_json,
            self.secrets.clone(),
            self.grants.clone(),
            self.limits.clone(),
        );
        pool.init_rejection_as_error = true;
        pool
    }

    /// What the live instances not in a call hold: (instances, resources,
    /// memory bytes).
    pub fn usage(&self) -> (u64, u64, u64) {
        let mut usage = (0, 0, 0);
        for slot in &self.slots {
            let Ok(mut slot) = slot.try_lock() else {
                continue;
            };
            if let Some(live) = slot.live.as_mut() {
                let state = live.store.data_mut();
                usage.0 += 1;
                usage.1 += state.resource_count() as u64;
                usage.2 += state.limiter.memory_bytes as u64;
            }
        }
        usage
    }

    /// Queues a writer handle for release in its instance.
    pub fn orphan(&self, slot: usize, generation: u64, handle: ResourceAny) {
        self.orphans[slot]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((generation, handle));
    }

    /// A fresh store for one instance: its WASI context from the grants, the
    /// limiter, return-size fuel, handle cap and CPU meter.
    fn new_store(&self) -> Result<Store<HostState>, String> {
        let log = ProviderLog::new(
            &self.name,
            self.limits.log_line.0 as usize,
            self.limits.log_lines_per_call,
        )
        .with_secrets(self.secrets.clone());
        let state = HostState::new(&self.grants, &self.limits, log, self.faults.clone())?;
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(self.limits.max_return.0 as usize);
        // Component handles: the guest's view of its WASI resources plus the
        // resources it creates itself, so twice the host's table capacity.
        store.set_max_component_handles(self.limits.max_resources.saturating_mul(2) as usize);
        store.epoch_deadline_callback(|mut ctx| {
            let s = ctx.data_mut();
            s.ticks_used += 1;
            if s.ticks_used >= s.tick_budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Instantiates the component from its `InstancePre` in a fresh store,
    /// under the call limits, without calling `init`.
    async fn instantiate_bare(&self) -> Result<(Store<HostState>, Provider), ProviderError> {
        let unavailable = |detail: String| ProviderError::Unavailable {
            provider: self.name.to_string(),
            detail,
        };
        let mut store = self.new_store().map_err(unavailable)?;
        begin(&mut store, &self.limits);
        self.counters.instantiations.fetch_add(1, Ordering::Relaxed);
        let timeout = self.limits.timeout();
        let bindings =
            match deadline::timeout(timeout, self.loaded.pre.instantiate_async(&mut store)).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    let err = self.classify("instantiate", &mut store, e);
                    return Err(unavailable(format!("instantiation failed: {err}")));
                }
                Err(_) => {
                    self.record(Protection::Timeout, 1);
                    return Err(unavailable(format!(
                        "instantiation did not complete within {timeout:?}"
                    )));
                }
            };
        Ok((store, bindings))
    }

    /// Times instantiations from the `InstancePre` alone (a fresh store and
    /// the component's start functions, no `init`), each instance dropped
    /// right away: what a replacement instance costs before its provider
    /// code runs.
    pub async fn time_instantiation(&self) -> Result<std::time::Duration, ProviderError> {
        let start = std::time::Instant::now();
        let instance = self.instantiate_bare().await?;
        let took = start.elapsed();
        drop(instance);
        Ok(took)
    }

    /// Creates and initialises a fresh instance, returning it and what `init`
    /// said; errors carry no secret of the configuration.
    async fn instantiate(&self) -> Result<(Live, ProviderInfo), ProviderError> {
        self.instantiate_and_init()
            .await
            .map_err(|e| self.secrets.scrub_error(e))
    }

    async fn instantiate_and_init(&self) -> Result<(Live, ProviderInfo), ProviderError> {
        let unavailable = |detail: String| ProviderError::Unavailable {
            provider: self.name.to_string(),
            detail,
        };
        let (mut store, bindings) = self.instantiate_bare().await?;
        let timeout = self.limits.timeout();
        begin(&mut store, &self.limits);
        let init = deadline::timeout(
            timeout,
            bindings
                .tapedeck_storage_tape_storage()
                .call_init(&mut store, &self.config_json),
        )
        .await;
        let dropped = store.data().log.end_call("init");
        self.record(Protection::LogLinesDropped, dropped);
        let info = match init {
            Ok(Ok(Ok(info))) => convert::info_to_model(info),
            Ok(Ok(Err(e))) if self.init_rejection_as_error => return Err(self.storage_error(e)),
            Ok(Ok(Err(e))) => {
                return Err(unavailable(format!(
                    "init rejected the configuration: {}",
                    convert::error_from_wit(e)
                )));
            }
            Ok(Err(e)) => {
                let err = self.classify("init", &mut store, e);
                return Err(unavailable(format!("init failed: {err}")));
            }
            Err(_) => {
                self.record(Protection::Timeout, 1);
                return Err(unavailable(format!(
                    "init did not complete within {timeout:?}"
                )));
            }
        };
        // What `init` says is printed (`stats`, `provider test`) and logged:
        // a provider that does not say it in the contract's shape is not
        // started.
        if let Err(detail) = check_info(&info) {
            self.record(Protection::ContractViolation, 1);
            return Err(ProviderError::Contract {
                provider: self.name.to_string(),
                call: "init",
                detail,
            });
        }
        Ok((Live { store, bindings }, info))
    }

    /// Starts the first instance (so configuration errors surface at start)
    /// and returns what the provider said about itself.
    pub async fn start(&self) -> Result<ProviderInfo, ProviderError> {
        let (live, info) = self.instantiate().await?;
        let mut slot = self.slots[0].lock().await;
        slot.generation += 1;
        slot.live = Some(live);
        Ok(info)
    }

    /// Enters `call` on slot `idx`: waits for the slot, makes sure it has a
    /// healthy instance, and resets the per-call budgets.
    pub async fn enter(
        &self,
        idx: usize,
        call: &'static str,
    ) -> Result<SlotGuard<'_>, ProviderError> {
        let mut slot = self.slots[idx].lock().await;
        if slot.in_call {
            // The previous call on this slot was cancelled mid-flight.
            slot.in_call = false;
            self.discard(&mut slot);
        }
        if slot.live.is_none() {
            let (live, _) = self.instantiate().await?;
            slot.generation += 1;
            slot.live = Some(live);
        }
        let orphans: Vec<_> =
            std::mem::take(&mut *self.orphans[idx].lock().unwrap_or_else(|p| p.into_inner()));
        let generation = slot.generation;
        let live = slot.live.as_mut().expect("instance present");
        for (g, handle) in orphans {
            if g == generation {
                begin(&mut live.store, &self.limits);
                // Best effort: a failure here surfaces on the next real call.
                let _ = deadline::timeout(
                    self.limits.timeout(),
                    handle.resource_drop_async(&mut live.store),
                )
                .await;
            }
        }
        Ok(SlotGuard {
            pool: self,
            slot,
            call,
        })
    }

    /// Counts `n` trips of protection `p`.
    pub fn record(&self, p: Protection, n: u64) {
        self.counters.protections.record(p, n);
    }

    /// Classifies a wasm error (see [`classify`]) and counts the protection.
    fn classify(
        &self,
        call: &'static str,
        store: &mut Store<HostState>,
        e: wasmtime::Error,
    ) -> ProviderError {
        let (err, p) = classify(&self.name, call, &self.limits, store, e);
        // A trap the host injected (a torn write for `provider test`) is
        // not the provider's doing.
        if !(p == Protection::Trap && self.faults.has_fired()) {
            self.record(p, 1);
        }
        err
    }

    fn discard(&self, slot: &mut Slot) {
        if slot.live.take().is_some() {
            self.counters.recycles.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "tapedeck::sandbox",
                provider = %self.name,
                "instance discarded; the next call gets a fresh one"
            );
        }
    }
}

/// The longest provider name `init` may return, in bytes.
pub(crate) const MAX_PROVIDER_NAME: usize = 64;

/// The longest provider version `init` may return, in bytes.
pub(crate) const MAX_PROVIDER_VERSION: usize = 64;

/// Checks what `init` said against the contract's shape: the name
/// lowercase letters, digits and hyphens (`fs`, `rust-template`), the
/// version semver-like (`0-9A-Za-z.+-`, `1.2.0-rc.1+build`), both
/// non-empty and at most [`MAX_PROVIDER_NAME`] / [`MAX_PROVIDER_VERSION`]
/// bytes. The error quotes the offending value escaped and cut.
pub(crate) fn check_info(info: &ProviderInfo) -> Result<(), String> {
    let name = &info.name;
    let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty()
        || name.len() > MAX_PROVIDER_NAME
        || !name.chars().all(name_ok)
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(format!(
            "init returned the provider name `{}` ({} bytes): a name is 1 to \
             {MAX_PROVIDER_NAME} lowercase letters, digits and inner hyphens (e.g. `fs`)",
            text::quote(name),
            name.len()
        ));
    }
    let version = &info.version;
    let version_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+');
    if version.is_empty()
        || version.len() > MAX_PROVIDER_VERSION
        || !version.chars().all(version_ok)
    {
        return Err(format!(
            "init returned the version `{}` ({} bytes): a version is 1 to \
             {MAX_PROVIDER_VERSION} of the characters 0-9 A-Z a-z . + - (semver, e.g. `1.2.0`)",
            text::quote(version),
            version.len()
        ));
    }
    Ok(())
}

/// Resets the per-call budgets of a store.
fn begin(store: &mut Store<HostState>, limits: &Limits) {
    let data = store.data_mut();
    data.ticks_used = 0;
    data.tick_budget = ticks_for(limits.cpu());
    data.limiter.hit = None;
    data.random.begin_call();
    data.log.begin_call();
    store.set_epoch_deadline(1);
}

/// Turns a wasmtime error into the matching [`ProviderError`], and names the
/// protection that stopped the call.
fn classify(
    provider: &str,
    call: &'static str,
    limits: &Limits,
    store: &mut Store<HostState>,
    e: wasmtime::Error,
) -> (ProviderError, Protection) {
    let provider = provider.to_string();
    let contract = |provider: String, detail: String| ProviderError::Contract {
        provider,
        call,
        detail,
    };
    let resource = |provider: String, detail: String| ProviderError::ResourceLimit {
        provider,
        call,
        detail,
    };
    if let Some(v) = e.downcast_ref::<ContractViolation>() {
        return (
            contract(provider, v.0.clone()),
            Protection::ContractViolation,
        );
    }
    let data = store.data_mut();
    if let Some(hit) = data.limiter.hit.take() {
        let p = match hit.limit {
            "memory" => Protection::MemoryLimit,
            _ => Protection::TableLimit,
        };
        return (resource(provider, hit.detail), p);
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) && data.ticks_used >= data.tick_budget {
        let err = ProviderError::CpuLimit {
            provider,
            call,
            limit: limits.cpu(),
        };
        return (err, Protection::CpuLimit);
    }
    if let Some(r) = e.downcast_ref::<RandomLimitExceeded>() {
        return (resource(provider, r.to_string()), Protection::RandomLimit);
    }
    // The whole error chain, for errors wasmtime reports only as text. The
    // limits named are read back from the store, as enforced.
    let chain = format!("{e:#}");
    if e.downcast_ref::<ResourceTableError>().is_some()
        || chain.contains("resource table has no free keys")
    {
        let detail = format!(
            "more than {} open WASI resources (limit `max-resources`)",
            data.resource_capacity()
        );
        return (resource(provider, detail), Protection::ResourceLimit);
    }
    if chain.contains("store handle limit exceeded") {
        let detail = format!(
            "more than {} component handles (limit `max-resources`)",
            store.max_component_handles()
        );
        return (resource(provider, detail), Protection::ResourceLimit);
    }
    if chain.contains("fuel allocated for hostcalls has been exhausted") {
        // The same fuel bounds an export's result and the arguments of a
        // host call (`log`, a file write, ...). A host call's arguments are
        // lifted while the guest is running, so the error unwinds through
        // its frames and carries a wasm backtrace (wasmtime's default,
        // which the engine keeps); a result is lifted after the guest
        // returned, with no guest frame left to trace.
        let limit = ByteSize(store.hostcall_fuel() as u64);
        let detail = if e.downcast_ref::<wasmtime::WasmBacktrace>().is_some() {
            format!(
                "passed more than {limit} of arguments to a host call (limit `max-return`, \
                 which bounds host-call arguments as well as results)"
            )
        } else {
            format!("returned more than {limit} to the host in one call (limit `max-return`)")
        };
        return (contract(provider, detail), Protection::MaxReturn);
    }
    if let Some(u) = e.downcast_ref::<std::str::Utf8Error>() {
        let detail = format!("returned a string that is not valid UTF-8 ({u})");
        return (contract(provider, detail), Protection::ContractViolation);
    }
    if chain.contains("resource limit exceeded:") && chain.contains("count too high") {
        let detail = format!(
            "creates more than {} core instances, tables or memories (limit `core-instances`)",
            limits.core_instances
        );
        return (resource(provider, detail), Protection::InstanceLimit);
    }
    let detail = describe(&e, &data.log);
    let err = ProviderError::Trap {
        provider,
        call,
        detail,
    };
    (err, Protection::Trap)
}

/// Whether the trap happened in a post-return function (wit-bindgen names
/// them `cabi_post_…` in Rust and `…_post_return` in C): the call itself
/// had succeeded, and freeing its result failed.
fn in_post_return(e: &wasmtime::Error) -> bool {
    e.downcast_ref::<wasmtime::WasmBacktrace>()
        .is_some_and(|bt| {
            bt.frames().iter().any(|f| {
                f.func_name()
                    .is_some_and(|n| n.contains("post_return") || n.starts_with("cabi_post_"))
            })
        })
}

/// A one-line explanation of a wasm error: the trap (or error chain), where
/// it happened (the innermost frames), and what the guest last wrote to
/// stderr (a panic message, usually).
fn describe(e: &wasmtime::Error, log: &ProviderLog) -> String {
    let mut out = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        // A host error: wasmtime wraps it in a backtrace context, so the
        // innermost cause says what happened.
        None => e.root_cause().to_string(),
    };
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .take(3)
            .map(|f| match f.func_name() {
                Some(name) => name.to_string(),
                None => format!("wasm function {}", f.func_index()),
            })
            .collect();
        if !frames.is_empty() {
            out.push_str(&format!(" (in {})", frames.join(" < ")));
        }
    }
    if in_post_return(e) {
        out.push_str(
            "; it trapped after the call had returned, in the post-return function that frees \
             what the call returned: everything a call returns, error messages included, must \
             be memory the guest's allocator gave out (in C: malloc'ed, never a string literal \
             or a static buffer)",
        );
    }
    if let Some(tail) = log.stderr_tail() {
        out.push_str(&format!("; guest stderr: {tail}"));
    }
    // The guest's stderr (and any guest text in the error) is provider
    // text: escaped and bounded like every other.
    text::bounded(&out, 2048).into_owned()
}

/// Exclusive use of one slot's instance for one call.
pub(crate) struct SlotGuard<'p> {
    pool: &'p Pool,
    slot: MutexGuard<'p, Slot>,
    call: &'static str,
}

impl SlotGuard<'_> {
    /// The store and bindings of the instance.
    pub fn parts(&mut self) -> (&mut Store<HostState>, &Provider) {
        let live = self.slot.live.as_mut().expect("instance present");
        (&mut live.store, &live.bindings)
    }

    /// The instance's generation (changes when the instance is replaced).
    pub fn generation(&self) -> u64 {
        self.slot.generation
    }

    /// Prepares one guest call: fresh CPU, memory-hit and log budgets, and
    /// marks the call in flight (so a cancelled call discards the instance).
    /// Returns the call's wall-clock limit.
    pub fn arm(&mut self) -> Duration {
        let limits = &self.pool.limits;
        let live = self.slot.live.as_mut().expect("instance present");
        begin(&mut live.store, limits);
        self.slot.in_call = true;
        limits.timeout()
    }

    /// Settles a guest call: keeps the instance after success or an ordinary
    /// storage error, discards it after anything else.
    pub fn settle<T>(
        &mut self,
        r: Result<wasmtime::Result<Result<T, wit::StorageError>>, Elapsed>,
    ) -> Result<T, ProviderError> {
        let call = self.call;
        let pool = self.pool;
        if let Some(live) = self.slot.live.as_ref() {
            let dropped = live.store.data().log.end_call(call);
            pool.record(Protection::LogLinesDropped, dropped);
        }
        let out = match r {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(pool.storage_error(e)),
            Ok(Err(e)) => {
                let (store, _) = self.parts();
                let err = pool.classify(call, store, e);
                pool.discard(&mut self.slot);
                Err(err)
            }
            Err(_) => {
                pool.discard(&mut self.slot);
                pool.record(Protection::Timeout, 1);
                Err(ProviderError::Timeout {
                    provider: pool.name.to_string(),
                    call,
                    limit: pool.limits.timeout(),
                })
            }
        };
        self.slot.in_call = false;
        out.map_err(|e| pool.secrets.scrub_error(e))
    }

    /// Records a contract violation found in an answer: the instance is
    /// discarded and the error names what was wrong. The detail may quote
    /// the answer, so it is escaped and bounded here whatever the caller
    /// did ([`text::bounded`]).
    pub fn violation(&mut self, detail: String) -> ProviderError {
        self.pool.discard(&mut self.slot);
        self.pool.record(Protection::ContractViolation, 1);
        self.slot.in_call = false;
        let detail = match text::bounded(&detail, text::MAX_ERROR_MESSAGE) {
            std::borrow::Cow::Borrowed(_) => detail,
            std::borrow::Cow::Owned(safe) => safe,
        };
        self.pool.secrets.scrub_error(ProviderError::Contract {
            provider: self.pool.name.to_string(),
            call: self.call,
            detail,
        })
    }
}

/// Calls a `tape-storage` export on a slot under the call's limits:
/// `guest_call!(guard, |store, guest| guest.call_get(store, id))`.
macro_rules! guest_call {
    ($g:expr, |$store:ident, $guest:ident| $body:expr) => {{
        let limit = $g.arm();
        let r = {
            let ($store, bindings) = $g.parts();
            let $guest = bindings.tapedeck_storage_tape_storage();
            $crate::deadline::timeout(limit, $body).await
        };
        $g.settle(r)
    }};
}
pub(crate) use guest_call;
