//! The one wasmtime [`Engine`] of a tapedeck process and its epoch ticker.

use super::limits::Limits;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

/// How often the epoch advances. CPU budgets are counted in these ticks and a
/// running provider yields to the async scheduler once per tick.
///
/// 10 ms keeps the cost of epoch checks negligible while bounding how long one
/// provider can hold a worker thread before others get a turn.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The sizes of a pooling allocator, derived from the limits of the providers
/// an engine will run ([`PoolingPlan::for_limits`]).
///
/// The pooling allocator reserves, when the engine is created, a slot for
/// every instance, memory, table and fiber stack it may ever hold at once,
/// and reuses them: instantiating is then a matter of resetting a slot
/// (copy-on-write memory images, no `mmap` per instance). Its limits are
/// fixed up front, so they are computed from configuration with headroom:
/// running out makes instantiation fail with a clear error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolingPlan {
    /// Component instances alive at once: every provider's `instances`,
    /// twice over (a replacement may be made while a trapped instance is
    /// still being dropped), plus two.
    pub component_instances: u32,
    /// The largest `memory` limit of any provider: the size of a memory slot.
    pub max_memory: u64,
    /// The largest `table-elements` limit: the size of a table slot.
    pub table_elements: u64,
    /// The largest `core-instances` limit: core instances, memories and
    /// tables one component may have.
    pub per_component: u32,
    /// Memory slots, and table slots, per component instance on average
    /// (the pool holds `component_instances` times this many of each):
    /// [`POOL_SHARE_PER_COMPONENT`], or fewer when the address space is
    /// limited ([`EnginePlan::new`]).
    pub share: u32,
}

/// Core instances, memories and tables reserved per component instance on
/// average. Rust and C components use one to three core instances and one
/// memory; a Python component about ten core instances. A component that
/// needs more than this share can still run as long as the total lasts.
pub const POOL_SHARE_PER_COMPONENT: u32 = 16;

/// The smallest share of memory and table slots per component instance the
/// pool is shrunk to under a limited address space. A Rust component has one
/// memory and two tables, an interpreter several; below this a pool could run
/// out where allocating on demand has no total to run out of.
pub const POOL_MIN_SHARE: u32 = 4;

/// The part of a limited address space (`ulimit -v`) the engine's
/// reservations may take: one quarter. The rest is the host's: the binary,
/// thread stacks, the allocator's arenas, buffers, compiled code.
pub const WASM_SHARE_OF_ADDRESS_SPACE: u64 = 4;

/// Address space one compiler thread may take (a glibc malloc arena of
/// 64 MiB plus its 2 MiB stack). Under a limited address space, Cranelift
/// compiles on one thread per CPU only if that many such threads fit in the
/// engine's share; otherwise on the calling thread.
pub const COMPILER_THREAD_BYTES: u64 = 66 << 20;

/// wasmtime's default size of a fiber stack (`Config::async_stack_size`),
/// which tapedeck does not change: one per instance in a call.
const ASYNC_STACK_SIZE: u64 = 2 << 20;

/// Granule of the estimates: the wasm page, and the largest host page.
const WASM_PAGE: u64 = 64 << 10;

/// Size in bytes of a table element as the pooling allocator reserves it.
const TABLE_ELEMENT_BYTES: u64 = 8;

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to).saturating_mul(to)
}

impl PoolingPlan {
    /// The plan for providers with these limits (`None` for no providers).
    pub fn for_limits<'a>(limits: impl IntoIterator<Item = &'a Limits>) -> Option<PoolingPlan> {
        let mut plan: Option<PoolingPlan> = None;
        for l in limits {
            let p = plan.get_or_insert(PoolingPlan {
                component_instances: 2,
                max_memory: 0,
                table_elements: 0,
                per_component: 0,
                share: POOL_SHARE_PER_COMPONENT,
            });
            let instances = u32::try_from(l.instances).unwrap_or(u32::MAX);
            p.component_instances = p
                .component_instances
                .saturating_add(instances.saturating_mul(2));
            p.max_memory = p.max_memory.max(l.memory.0);
            p.table_elements = p.table_elements.max(l.table_elements);
            p.per_component = p
                .per_component
                .max(u32::try_from(l.core_instances).unwrap_or(u32::MAX));
        }
        plan
    }

    /// Memory slots (and table slots) in the pool.
    pub fn total_memories(&self) -> u32 {
        self.component_instances.saturating_mul(self.share)
    }

    /// The address space this pool reserves when the engine is created, with
    /// linear memories laid out as `layout` says: the memory slots (each the
    /// reservation or the largest memory, whichever is larger, plus its
    /// guard, and one guard before the first), the table slots and the fiber
    /// stacks (each with a guard page). An upper bound: sizes are rounded up
    /// to 64 KiB.
    pub fn reserved_bytes(&self, layout: &MemoryLayout) -> u64 {
        let slots = u64::from(self.total_memories());
        let slot = layout
            .reservation
            .max(round_up(self.max_memory, WASM_PAGE))
            .saturating_add(layout.guard);
        let memories = slots.saturating_mul(slot).saturating_add(layout.guard);
        let table = round_up(
            self.table_elements.saturating_mul(TABLE_ELEMENT_BYTES),
            WASM_PAGE,
        );
        let tables = slots.saturating_mul(table);
        let stacks =
            u64::from(self.component_instances).saturating_mul(ASYNC_STACK_SIZE + WASM_PAGE);
        memories.saturating_add(tables).saturating_add(stacks)
    }

    /// This plan with the largest share, from [`POOL_SHARE_PER_COMPONENT`]
    /// halving down to [`POOL_MIN_SHARE`], whose reservation fits in
    /// `budget` bytes; `None` if even the smallest does not fit.
    fn fitted(&self, budget: u64, layout: &MemoryLayout) -> Option<PoolingPlan> {
        let mut share = POOL_SHARE_PER_COMPONENT;
        while share >= POOL_MIN_SHARE {
            let p = PoolingPlan {
                share,
                ..self.clone()
            };
            if p.reserved_bytes(layout) <= budget {
                return Some(p);
            }
            share /= 2;
        }
        None
    }

    fn config(&self, layout: Option<&MemoryLayout>) -> PoolingAllocationConfig {
        let n = self.component_instances;
        let core = n.saturating_mul(POOL_SHARE_PER_COMPONENT);
        let slots = self.total_memories();
        // A memory slot is the memory reservation; the largest memory must
        // fit in it (wasmtime refuses the pool otherwise).
        let max_memory = match layout {
            Some(l) => self.max_memory.min(l.reservation),
            None => self.max_memory,
        };
        let mut c = PoolingAllocationConfig::new();
        c.total_component_instances(n)
            // Core instances cost no address space: always the full share.
            .total_core_instances(core)
            .total_memories(slots)
            .total_tables(slots)
            // One call at a time per instance, each on its own fiber.
            .total_stacks(n)
            .max_core_instances_per_component(self.per_component)
            .max_memories_per_component(self.per_component)
            .max_tables_per_component(self.per_component)
            .max_memories_per_module(2)
            .max_tables_per_module(8)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            .table_elements(usize::try_from(self.table_elements).unwrap_or(usize::MAX))
            // Instance metadata grows with the number of functions, globals
            // and tables a module declares; interpreters declare thousands.
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20);
        c
    }
}

/// Where linear memories go in the address space: wasmtime's
/// `memory_reservation`, `memory_guard_size` and
/// `memory_reservation_for_growth`.
///
/// wasmtime's defaults on 64-bit hosts ([`MemoryLayout::WASMTIME_DEFAULT`])
/// reserve 4 GiB plus 32 MiB guards on each side for every linear memory, so
/// that compiled code needs no bounds checks: the fastest layout, used
/// whenever the address space is unlimited. Under `ulimit -v` that would
/// make a handful of memories exhaust it, so the engine reserves only what
/// the providers' `memory` limits allow, with 64 KiB guards, and compiled
/// code checks bounds ([`EnginePlan::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// Bytes reserved for each linear memory; it grows in place up to this.
    pub reservation: u64,
    /// Inaccessible bytes after each memory, and before it.
    pub guard: u64,
    /// Extra bytes reserved when a memory outgrows its reservation and is
    /// moved (allocating on demand only; a pooled memory never moves).
    pub growth: u64,
}

impl MemoryLayout {
    /// wasmtime's defaults on 64-bit hosts.
    pub const WASMTIME_DEFAULT: MemoryLayout = MemoryLayout {
        reservation: 4 << 30,
        guard: 32 << 20,
        growth: 2 << 30,
    };

    /// The guard of a compact layout: one wasm page.
    pub const COMPACT_GUARD: u64 = WASM_PAGE;

    /// Growth of a memory whose reservation is smaller than the largest
    /// `memory` limit, each time it has to move.
    pub const COMPACT_GROWTH: u64 = 16 << 20;

    /// The smallest reservation of a compact layout.
    pub const MIN_RESERVATION: u64 = 1 << 20;

    /// A compact layout for memories of up to `max_memory` bytes: reserved
    /// whole (so they never move), with small guards.
    pub fn compact(max_memory: u64) -> MemoryLayout {
        MemoryLayout {
            reservation: round_up(max_memory, WASM_PAGE).max(Self::MIN_RESERVATION),
            guard: Self::COMPACT_GUARD,
            growth: 0,
        }
    }

    /// A compact layout in which `memories` memories fit in `budget` bytes:
    /// reserved whole if they fit; otherwise each reserves its share of the
    /// budget, rounded down to a power of two (at least
    /// [`MemoryLayout::MIN_RESERVATION`]), and is moved,
    /// [`MemoryLayout::COMPACT_GROWTH`] at a time, if it grows past it.
    ///
    /// The layout is part of the engine's compatibility hash, so every
    /// distinct layout compiles components anew; powers of two keep the
    /// number of layouts (and cache entries) small across limits.
    pub fn compact_within(max_memory: u64, memories: u32, budget: u64) -> MemoryLayout {
        let whole = Self::compact(max_memory);
        let each = budget / u64::from(memories.max(1));
        if whole.bytes_per_memory() <= each {
            return whole;
        }
        let room = each.saturating_sub(2 * Self::COMPACT_GUARD);
        let reservation = match room.checked_ilog2() {
            Some(bits) => 1u64 << bits,
            None => 0,
        }
        .max(Self::MIN_RESERVATION);
        MemoryLayout {
            reservation,
            guard: Self::COMPACT_GUARD,
            growth: Self::COMPACT_GROWTH,
        }
    }

    /// Address space one memory takes up front (guard, reservation, guard).
    pub fn bytes_per_memory(&self) -> u64 {
        self.reservation.saturating_add(2 * self.guard)
    }

    fn apply(&self, config: &mut Config) {
        config
            .memory_reservation(self.reservation)
            .memory_guard_size(self.guard)
            .memory_reservation_for_growth(self.growth);
    }
}

/// How an engine allocates instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front and reused, sized by the plan.
    Pooling(PoolingPlan),
    /// Memory mapped per instance.
    OnDemand {
        /// Why not pooling: none asked for, the address space is too
        /// limited for the pool, or why the pool could not be reserved.
        reason: String,
    },
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocator::Pooling(p) => write!(
                f,
                "pooling ({} instances, memories up to {})",
                p.component_instances,
                tapedeck_types::units::ByteSize(p.max_memory)
            ),
            Allocator::OnDemand { reason } => write!(f, "on demand ({reason})"),
        }
    }
}

/// A size for messages: whole units when exact, else a tenth of a GiB or a
/// whole MiB (rounded up).
fn approx(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB {
        format!("{} MiB", bytes.div_ceil(MIB))
    } else {
        format!("{} KiB", bytes.div_ceil(1 << 10))
    }
}

/// Everything about an engine that depends on the address space it may
/// use: the allocator, the layout of linear memories and whether Cranelift
/// compiles on several threads. [`EnginePlan::new`] computes it from the
/// providers' pooling plan and the process's address-space limit, without
/// side effects; [`SandboxEngine::with_plan`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnginePlan {
    /// Pooling (sized to fit) or on demand, and why.
    pub allocator: Allocator,
    /// `None`: wasmtime's defaults ([`MemoryLayout::WASMTIME_DEFAULT`]),
    /// left untouched.
    pub memory: Option<MemoryLayout>,
    /// Compile a component's functions on one thread per CPU.
    pub parallel_compilation: bool,
    /// The address-space limit the plan was made for (`None`: unlimited).
    pub address_space: Option<u64>,
}

impl EnginePlan {
    /// The plan for providers sized by `pooling` (`None`: no pooling asked
    /// for), in a process whose address space is limited to `address_space`
    /// bytes (`None`: unlimited), on `cpus` CPUs.
    ///
    /// * Unlimited: wasmtime's default memory layout (no bounds checks) and
    ///   the pool exactly as planned, as fast as tapedeck goes.
    /// * Limited: everything the engine reserves must fit in a quarter of
    ///   the limit ([`WASM_SHARE_OF_ADDRESS_SPACE`]). Memories reserve the
    ///   largest `memory` limit with 64 KiB guards
    ///   ([`MemoryLayout::compact`]); the pool keeps the largest share of
    ///   slots per instance that fits ([`POOL_SHARE_PER_COMPONENT`] down to
    ///   [`POOL_MIN_SHARE`]), or gives way to allocating on demand, with
    ///   memories sized so that every planned instance fits
    ///   ([`MemoryLayout::compact_within`]); Cranelift compiles in parallel
    ///   only if a thread per CPU fits too ([`COMPILER_THREAD_BYTES`]).
    pub fn new(pooling: Option<PoolingPlan>, address_space: Option<u64>, cpus: usize) -> Self {
        let Some(limit) = address_space else {
            let allocator = match pooling {
                Some(plan) => Allocator::Pooling(plan),
                None => Allocator::OnDemand {
                    reason: "no pooling plan".into(),
                },
            };
            return EnginePlan {
                allocator,
                memory: None,
                parallel_compilation: true,
                address_space: None,
            };
        };
        let budget = limit / WASM_SHARE_OF_ADDRESS_SPACE;
        let parallel_compilation = u64::try_from(cpus)
            .unwrap_or(u64::MAX)
            .saturating_mul(COMPILER_THREAD_BYTES)
            <= budget;
        let limited = |reason: String, sizing: &PoolingPlan| EnginePlan {
            allocator: Allocator::OnDemand { reason },
            memory: Some(MemoryLayout::compact_within(
                sizing.max_memory,
                sizing.component_instances,
                budget,
            )),
            parallel_compilation,
            address_space: Some(limit),
        };
        let Some(plan) = pooling else {
            // Sized for one provider with the default limits.
            let sizing = PoolingPlan::for_limits([&Limits::default()]).expect("one provider");
            return limited("no pooling plan".into(), &sizing);
        };
        let layout = MemoryLayout::compact(plan.max_memory);
        match plan.fitted(budget, &layout) {
            Some(fitted) => EnginePlan {
                allocator: Allocator::Pooling(fitted),
                memory: Some(layout),
                parallel_compilation,
                address_space: Some(limit),
            },
            None => {
                let smallest = PoolingPlan {
                    share: POOL_MIN_SHARE,
                    ..plan.clone()
                };
                let reason = format!(
                    "address space limited to {} (ulimit -v); the pool would reserve {}, \
                     more than a quarter of it",
                    approx(limit),
                    approx(smallest.reserved_bytes(&layout)),
                );
                limited(reason, &plan)
            }
        }
    }

    /// The plan to fall back to when the pooling allocator of this plan
    /// could not be created (`error` says why): on demand, with a compact
    /// layout sized as for a limited address space (an unlimited one
    /// counts as plenty), since a refused reservation is what makes the
    /// pool fail.
    pub fn on_demand_after(&self, error: &str) -> EnginePlan {
        let reason = format!("the pooling allocator could not reserve its slots: {error}");
        let sizing = match &self.allocator {
            Allocator::Pooling(p) => p.clone(),
            Allocator::OnDemand { .. } => {
                PoolingPlan::for_limits([&Limits::default()]).expect("one provider")
            }
        };
        let budget = self
            .address_space
            .map_or(u64::MAX, |l| l / WASM_SHARE_OF_ADDRESS_SPACE);
        EnginePlan {
            allocator: Allocator::OnDemand { reason },
            memory: Some(MemoryLayout::compact_within(
                sizing.max_memory,
                sizing.component_instances,
                budget,
            )),
            parallel_compilation: self.parallel_compilation,
            address_space: self.address_space,
        }
    }
}

/// The shared engine: Cranelift (never Winch: untrusted code), the component
/// model, epoch interruption, and a ticker thread that stops when the engine
/// is dropped.
#[derive(Clone)]
pub struct SandboxEngine {
    engine: Engine,
    plan: EnginePlan,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl SandboxEngine {
    /// Creates the engine with the on-demand allocator and starts its ticker.
    pub fn new() -> Result<Self, wasmtime::Error> {
        Self::with_pooling(None)
    }

    /// Creates the engine and starts its ticker, planned for this process's
    /// address-space limit ([`EnginePlan::new`] with
    /// [`crate::rlimit::address_space_limit`]). With a plan, the pooling
    /// allocator is used if it fits; if the machine still refuses its
    /// reservation, the engine falls back to allocating on demand
    /// ([`EnginePlan::on_demand_after`]) and says why
    /// ([`SandboxEngine::allocator`]).
    pub fn with_pooling(plan: Option<PoolingPlan>) -> Result<Self, wasmtime::Error> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let limit = crate::rlimit::address_space_limit();
        Self::with_plan(EnginePlan::new(plan, limit, cpus))
    }

    /// Creates the engine as `plan` says, falling back to allocating on
    /// demand if a pooling allocator cannot be created.
    pub fn with_plan(plan: EnginePlan) -> Result<Self, wasmtime::Error> {
        if !matches!(plan.allocator, Allocator::Pooling(_)) {
            return Self::build(plan);
        }
        match Self::build(plan.clone()) {
            Ok(e) => Ok(e),
            Err(e) => {
                let fallback = plan.on_demand_after(&format!("{e:#}"));
                tracing::debug!(
                    target: "tapedeck::sandbox",
                    "{}; allocating on demand",
                    fallback.allocator
                );
                Self::build(fallback)
            }
        }
    }

    /// The allocator this engine uses.
    pub fn allocator(&self) -> &Allocator {
        &self.plan.allocator
    }

    /// The plan this engine was built from (allocator, memory layout,
    /// compilation threads).
    pub fn plan(&self) -> &EnginePlan {
        &self.plan
    }

    fn build(plan: EnginePlan) -> Result<Self, wasmtime::Error> {
        let mut config = Config::new();
        if let Some(layout) = &plan.memory {
            layout.apply(&mut config);
        }
        if let Allocator::Pooling(pool) = &plan.allocator {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(
                pool.config(plan.memory.as_ref()),
            ));
        }
        config
            .strategy(Strategy::Cranelift)
            .parallel_compilation(plan.parallel_compilation)
            .wasm_component_model(true)
            // Components built by jco's QuickJS backend use async intrinsics.
            .wasm_component_model_async(true)
            .epoch_interruption(true)
            // Stack overflow in a guest traps cleanly at this depth.
            .max_wasm_stack(1 << 20);
        let engine = Engine::new(&config)?;
        tracing::debug!(
            target: "tapedeck::sandbox",
            "engine: instances allocated {}; linear memories {}",
            plan.allocator,
            match &plan.memory {
                None => "as wasmtime defaults (4 GiB reserved each)".to_string(),
                Some(l) => format!(
                    "reserve {} each, guards {}",
                    approx(l.reservation),
                    approx(l.guard)
                ),
            }
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("tapedeck-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| wasmtime::Error::msg(format!("cannot start epoch ticker: {e}")))?;
        Ok(SandboxEngine {
            engine,
            plan,
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Number of ticks that cover `d` (at least one).
pub fn ticks_for(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_every_provider_with_headroom() {
        let small = Limits {
            instances: 2,
            memory: tapedeck_types::units::ByteSize(64 << 20),
            ..Limits::default()
        };
        let big = Limits {
            instances: 4,
            core_instances: 20,
            ..Limits::default()
        };
        let plan = PoolingPlan::for_limits([&small, &big]).unwrap();
        assert_eq!(plan.component_instances, 2 + 2 * 2 + 2 * 4);
        assert_eq!(plan.max_memory, Limits::default().memory.0);
        assert_eq!(plan.per_component, 100, "the larger of 20 and the default");
        assert!(PoolingPlan::for_limits([]).is_none());
    }

    #[test]
    fn a_pooling_engine_says_which_allocator_it_uses() {
        let plan = PoolingPlan::for_limits([&Limits::default()]);
        let e = SandboxEngine::with_plan(EnginePlan::new(plan.clone(), None, 2)).unwrap();
        // Either pooling as planned, or on demand with the probe's reason.
        match e.allocator() {
            Allocator::Pooling(p) => assert_eq!(Some(p), plan.as_ref()),
            Allocator::OnDemand { reason } => assert!(reason.contains("pooling"), "{reason}"),
        }
        let e = SandboxEngine::with_plan(EnginePlan::new(None, None, 2)).unwrap();
        assert!(matches!(e.allocator(), Allocator::OnDemand { .. }));
    }

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn default_plan() -> PoolingPlan {
        PoolingPlan::for_limits([&Limits::default()]).unwrap()
    }

    #[test]
    fn unlimited_keeps_the_pool_and_wasmtime_defaults() {
        let plan = EnginePlan::new(Some(default_plan()), None, 64);
        assert_eq!(plan.allocator, Allocator::Pooling(default_plan()));
        assert_eq!(plan.memory, None, "wasmtime's defaults untouched");
        assert!(plan.parallel_compilation);
        let p = default_plan();
        assert_eq!(p.share, POOL_SHARE_PER_COMPONENT);
        assert_eq!(p.total_memories(), 160);
        // What the issue measured: ~647 GiB for an idle `record`.
        let reserved = p.reserved_bytes(&MemoryLayout::WASMTIME_DEFAULT);
        assert!((640 * GIB..650 * GIB).contains(&reserved), "{reserved}");
    }

    #[test]
    fn four_gib_allocates_on_demand_in_compact_memories() {
        let plan = EnginePlan::new(Some(default_plan()), Some(4 * GIB), 2);
        let Allocator::OnDemand { reason } = &plan.allocator else {
            panic!("{:?}", plan.allocator)
        };
        assert!(
            reason.starts_with("address space limited to 4 GiB (ulimit -v)"),
            "{reason}"
        );
        assert_eq!(
            plan.allocator.to_string(),
            format!("on demand ({reason})"),
            "Display names the reason"
        );
        let layout = plan.memory.unwrap();
        // 10 instances planned in a 1 GiB share: 102 MiB each, so memories
        // reserve 64 MiB and move if they grow past it.
        assert_eq!(
            layout,
            MemoryLayout {
                reservation: 64 * MIB,
                guard: 64 << 10,
                growth: MemoryLayout::COMPACT_GROWTH,
            }
        );
        assert!(10 * layout.bytes_per_memory() <= GIB);
        assert!(plan.parallel_compilation, "2 compiler threads fit");
    }

    #[test]
    fn sixteen_gib_reserves_each_memory_whole() {
        let plan = EnginePlan::new(Some(default_plan()), Some(16 * GIB), 2);
        assert!(matches!(plan.allocator, Allocator::OnDemand { .. }));
        assert_eq!(
            plan.memory.unwrap(),
            MemoryLayout {
                reservation: 256 * MIB,
                guard: 64 << 10,
                growth: 0
            }
        );
        // 8 GiB: 2 GiB for 10 instances, 204 MiB each: 128 MiB reserved.
        let plan = EnginePlan::new(Some(default_plan()), Some(8 * GIB), 2);
        assert_eq!(plan.memory.unwrap().reservation, 128 * MIB);
        // A slightly different limit, the same layout (and cache entries).
        let other = EnginePlan::new(Some(default_plan()), Some(9 * GIB), 2);
        assert_eq!(other.memory, plan.memory);
    }

    #[test]
    fn a_large_limit_shrinks_the_pool_to_fit_a_quarter() {
        // 10 instances × 16 slots × 256 MiB = 40 GiB: needs a 160+ GiB limit.
        let plan = EnginePlan::new(Some(default_plan()), Some(200 * GIB), 8);
        let Allocator::Pooling(p) = &plan.allocator else {
            panic!("{:?}", plan.allocator)
        };
        assert_eq!(p.share, 16);
        let layout = plan.memory.unwrap();
        assert_eq!(layout, MemoryLayout::compact(256 * MIB));
        assert!(p.reserved_bytes(&layout) <= 50 * GIB);
        // 64 GiB: a quarter is 16 GiB, share 4 (10 GiB of memories) fits.
        let plan = EnginePlan::new(Some(default_plan()), Some(64 * GIB), 8);
        let Allocator::Pooling(p) = &plan.allocator else {
            panic!("{:?}", plan.allocator)
        };
        assert_eq!(p.share, 4);
        assert!(p.reserved_bytes(&plan.memory.unwrap()) <= 16 * GIB);
        // 32 GiB: share 4 would need 10+ GiB of 8: on demand.
        let plan = EnginePlan::new(Some(default_plan()), Some(32 * GIB), 8);
        assert!(matches!(plan.allocator, Allocator::OnDemand { .. }));
        assert_eq!(plan.memory.unwrap(), MemoryLayout::compact(256 * MIB));
    }

    #[test]
    fn small_memories_pool_under_an_ordinary_limit() {
        let small = Limits {
            memory: tapedeck_types::units::ByteSize(16 * MIB),
            table_elements: 10_000,
            ..Limits::default()
        };
        let pooled = PoolingPlan::for_limits([&small]).unwrap();
        let plan = EnginePlan::new(Some(pooled.clone()), Some(4 * GIB), 2);
        let Allocator::Pooling(p) = &plan.allocator else {
            panic!("{:?}", plan.allocator)
        };
        // 160 slots of 16 MiB + 64 KiB: 2.5 GiB > 1 GiB; 40 slots fit.
        assert_eq!(p.share, 4);
        assert!(p.reserved_bytes(&plan.memory.unwrap()) <= GIB);
        // And such an engine really builds (the pool is reserved now).
        let e = SandboxEngine::with_plan(plan.clone()).unwrap();
        assert_eq!(e.plan(), &plan);
    }

    #[test]
    fn compiler_threads_are_counted_against_the_limit() {
        let plan = EnginePlan::new(Some(default_plan()), Some(4 * GIB), 64);
        assert!(!plan.parallel_compilation, "64 arenas do not fit in 1 GiB");
        let plan = EnginePlan::new(Some(default_plan()), Some(4 * GIB), 15);
        assert!(plan.parallel_compilation);
    }

    #[test]
    fn a_tiny_limit_still_gives_every_memory_something() {
        let plan = EnginePlan::new(Some(default_plan()), Some(32 * MIB), 1);
        let layout = plan.memory.unwrap();
        assert_eq!(layout.reservation, MemoryLayout::MIN_RESERVATION);
        assert!(matches!(plan.allocator, Allocator::OnDemand { .. }));
    }

    #[test]
    fn no_plan_under_a_limit_is_compact_on_demand() {
        let plan = EnginePlan::new(None, Some(16 * GIB), 2);
        assert_eq!(
            plan.allocator,
            Allocator::OnDemand {
                reason: "no pooling plan".into()
            }
        );
        assert_eq!(plan.memory, Some(MemoryLayout::compact(256 * MIB)));
        let plan = EnginePlan::new(None, None, 2);
        assert_eq!(plan.memory, None);
    }

    #[test]
    fn a_refused_pool_falls_back_to_compact_on_demand() {
        let plan = EnginePlan::new(Some(default_plan()), None, 2);
        let fallback = plan.on_demand_after("Cannot allocate memory (os error 12)");
        assert_eq!(
            fallback.allocator.to_string(),
            "on demand (the pooling allocator could not reserve its slots: \
             Cannot allocate memory (os error 12))"
        );
        assert_eq!(fallback.memory, Some(MemoryLayout::compact(256 * MIB)));
        // Such an engine builds, and the compact engine compiles for itself:
        // its compatibility hash (the cache key) differs from the default's.
        let compact = SandboxEngine::with_plan(fallback).unwrap();
        let default = SandboxEngine::with_plan(EnginePlan::new(None, None, 2)).unwrap();
        assert_ne!(
            crate::cache::ComponentCache::key(compact.engine(), b"x"),
            crate::cache::ComponentCache::key(default.engine(), b"x"),
        );
    }

    #[test]
    fn a_pool_wasmtime_refuses_falls_back_through_with_plan() {
        // A memory larger than the 4 GiB default reservation: wasmtime
        // refuses such a pool when the engine is created.
        let huge = Limits {
            memory: tapedeck_types::units::ByteSize(8 * GIB),
            ..Limits::default()
        };
        let plan = EnginePlan::new(PoolingPlan::for_limits([&huge]), None, 2);
        let e = SandboxEngine::with_plan(plan).unwrap();
        let Allocator::OnDemand { reason } = e.allocator() else {
            panic!("{}", e.allocator())
        };
        assert!(
            reason.starts_with("the pooling allocator could not"),
            "{reason}"
        );
        assert_eq!(e.plan().memory, Some(MemoryLayout::compact(8 * GIB)));
    }

    /// A core module with one memory of one page and two functions:
    /// `grow(pages) -> old pages` and `load(addr) -> byte`.
    const GROW_AND_LOAD: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
        0x03, 0x03, 0x02, 0x00, 0x00, // two functions of that type
        0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1 page, no max
        0x07, 0x15, 0x03, // three exports
        0x04, b'g', b'r', b'o', b'w', 0x00, 0x00, // func 0
        0x04, b'l', b'o', b'a', b'd', 0x00, 0x01, // func 1
        0x03, b'm', b'e', b'm', 0x02, 0x00, // memory 0
        0x0a, 0x10, 0x02, // code: two bodies
        0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // local.get 0; memory.grow
        0x07, 0x00, 0x20, 0x00, 0x2d, 0x00, 0x00, 0x0b, // local.get 0; i32.load8_u
    ];

    #[test]
    fn a_memory_that_outgrows_a_small_reservation_moves_intact() {
        let plan = EnginePlan {
            allocator: Allocator::OnDemand {
                reason: "test".into(),
            },
            memory: Some(MemoryLayout {
                reservation: MemoryLayout::MIN_RESERVATION,
                guard: MemoryLayout::COMPACT_GUARD,
                growth: MemoryLayout::COMPACT_GROWTH,
            }),
            parallel_compilation: false,
            address_space: Some(32 * MIB),
        };
        let e = SandboxEngine::with_plan(plan).unwrap();
        let module = wasmtime::Module::new(e.engine(), GROW_AND_LOAD).unwrap();
        let mut store = wasmtime::Store::new(e.engine(), ());
        store.set_epoch_deadline(1 << 40);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        let load = instance
            .get_typed_func::<i32, i32>(&mut store, "load")
            .unwrap();
        let memory = instance.get_memory(&mut store, "mem").unwrap();
        memory.data_mut(&mut store)[100] = 42;
        // 1 page to 41 (2.6 MiB): past the 1 MiB reservation; then to 341
        // (21 MiB): past the 16 MiB reserved for growth. It moves twice.
        assert_eq!(grow.call(&mut store, 40).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 300).unwrap(), 41);
        assert_eq!(load.call(&mut store, 100).unwrap(), 42, "contents moved");
        let end = 341 * 65536;
        assert_eq!(load.call(&mut store, end - 1).unwrap(), 0);
        assert!(load.call(&mut store, end).is_err(), "bounds still checked");
    }
}
