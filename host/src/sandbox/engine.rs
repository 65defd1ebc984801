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
}

/// Core instances, memories and tables reserved per component instance on
/// average. Rust and C components use one to three core instances and one
/// memory; a Python component about ten core instances. A component that
/// needs more than this share can still run as long as the total lasts.
const POOL_SHARE_PER_COMPONENT: u32 = 16;

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

    fn config(&self) -> PoolingAllocationConfig {
        let n = self.component_instances;
        let share = n.saturating_mul(POOL_SHARE_PER_COMPONENT);
        let mut c = PoolingAllocationConfig::new();
        c.total_component_instances(n)
            .total_core_instances(share)
            .total_memories(share)
            .total_tables(share)
            // One call at a time per instance, each on its own fiber.
            .total_stacks(n)
            .max_core_instances_per_component(self.per_component)
            .max_memories_per_component(self.per_component)
            .max_tables_per_component(self.per_component)
            .max_memories_per_module(2)
            .max_tables_per_module(8)
            .max_memory_size(usize::try_from(self.max_memory).unwrap_or(usize::MAX))
            .table_elements(usize::try_from(self.table_elements).unwrap_or(usize::MAX))
            // Instance metadata grows with the number of functions, globals
            // and tables a module declares; interpreters declare thousands.
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20);
        c
    }
}

/// How an engine allocates instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocator {
    /// Slots reserved up front and reused, sized by the plan.
    Pooling(PoolingPlan),
    /// Memory mapped per instance.
    OnDemand {
        /// Why not pooling: none asked for, or why the probe failed.
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
                crate::units::ByteSize(p.max_memory)
            ),
            Allocator::OnDemand { reason } => write!(f, "on demand ({reason})"),
        }
    }
}

/// The shared engine: Cranelift (never Winch: untrusted code), the component
/// model, epoch interruption, and a ticker thread that stops when the engine
/// is dropped.
#[derive(Clone)]
pub struct SandboxEngine {
    engine: Engine,
    allocator: Allocator,
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

    /// Creates the engine and starts its ticker. With a plan, the pooling
    /// allocator is tried first; if the machine refuses its reservation
    /// (address space limited by `ulimit -v`, a 32-bit host, …) the engine
    /// falls back to allocating on demand and says why
    /// ([`SandboxEngine::allocator`]). Compiled code is the same either way,
    /// so the component cache serves both.
    pub fn with_pooling(plan: Option<PoolingPlan>) -> Result<Self, wasmtime::Error> {
        let Some(plan) = plan else {
            let reason = "no pooling plan".to_string();
            return Self::build(Allocator::OnDemand { reason });
        };
        match Self::build(Allocator::Pooling(plan)) {
            Ok(e) => Ok(e),
            Err(e) => {
                let reason = format!("the pooling allocator could not reserve its slots: {e:#}");
                tracing::debug!(target: "tapedeck::sandbox", "{reason}; allocating on demand");
                Self::build(Allocator::OnDemand { reason })
            }
        }
    }

    /// The allocator this engine uses.
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    fn build(allocator: Allocator) -> Result<Self, wasmtime::Error> {
        let mut config = Config::new();
        if let Allocator::Pooling(plan) = &allocator {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(plan.config()));
        }
        config
            .strategy(Strategy::Cranelift)
            .wasm_component_model(true)
            // Components built by jco's QuickJS backend use async intrinsics.
            .wasm_component_model_async(true)
            .epoch_interruption(true)
            // Stack overflow in a guest traps cleanly at this depth.
            .max_wasm_stack(1 << 20);
        let engine = Engine::new(&config)?;
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
            allocator,
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
            memory: crate::units::ByteSize(64 << 20),
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
        let e = SandboxEngine::with_pooling(plan.clone()).unwrap();
        // Either pooling as planned, or on demand with the probe's reason.
        match e.allocator() {
            Allocator::Pooling(p) => assert_eq!(Some(p), plan.as_ref()),
            Allocator::OnDemand { reason } => assert!(reason.contains("pooling"), "{reason}"),
        }
        let e = SandboxEngine::new().unwrap();
        assert!(matches!(e.allocator(), Allocator::OnDemand { .. }));
    }
}
