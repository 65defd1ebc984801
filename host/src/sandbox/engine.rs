//! The one wasmtime [`Engine`] of a tapedeck process and its epoch ticker.

use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, Strategy};

/// How often the epoch advances. CPU budgets are counted in these ticks and a
/// running provider yields to the async scheduler once per tick.
///
/// 10 ms keeps the cost of epoch checks negligible while bounding how long one
/// provider can hold a worker thread before others get a turn.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine: Cranelift (never Winch: untrusted code), the component
/// model, epoch interruption, and a ticker thread that stops when the engine
/// is dropped.
#[derive(Clone)]
pub struct SandboxEngine {
    engine: Engine,
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
    /// Creates the engine and starts its ticker.
    pub fn new() -> Result<Self, wasmtime::Error> {
        let mut config = Config::new();
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
