//! `wasi:random` under a per-request and a per-call budget.
//!
//! wasmtime-wasi caps a single request (`max_random_size`) but not how many
//! requests a call makes, so a provider asking for 1 MiB a thousand times
//! would keep the host generating randomness for as long as its wall-clock
//! timeout allows. Here `get-random-bytes`, `get-random-u64` and their
//! insecure twins are defined again over wasmtime-wasi's (shadowing just
//! these definitions, as `network::lookup` does for name lookups): each
//! request is charged to the instance's [`RandomBudget`] first, and a request
//! over `max-random`, or one that would take the call past
//! `random-per-call`, traps with a [`RandomLimitExceeded`] that the pool
//! reports as a resource limit. The bytes themselves still come from
//! wasmtime-wasi's generators (a CSPRNG for the secure interface).

use super::limits::Limits;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::p2::bindings::random::{insecure, random};
use wasmtime_wasi::random::WasiRandomCtx;

/// Which random limit a provider hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RandomLimitExceeded {
    /// One request asked for more than `max-random` bytes.
    #[error(
        "asked for {requested} random bytes in one request, over the limit of {limit} (limit `max-random`)"
    )]
    Request {
        /// Bytes requested.
        requested: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The call's requests together went over `random-per-call` bytes.
    #[error("asked for more than {limit} random bytes in one call (limit `random-per-call`)")]
    Call {
        /// The configured limit.
        limit: u64,
    },
}

/// Random bytes one instance may still get in the current call.
#[derive(Debug, Clone)]
pub struct RandomBudget {
    per_request: u64,
    per_call: u64,
    used: u64,
}

impl RandomBudget {
    /// A budget with the limits of `limits`.
    pub fn new(limits: &Limits) -> Self {
        RandomBudget {
            per_request: limits.max_random.0,
            per_call: limits.random_per_call.0,
            used: 0,
        }
    }

    /// Starts a new call: the whole per-call budget is available again.
    pub fn begin_call(&mut self) {
        self.used = 0;
    }

    /// Bytes handed out in the current call.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Charges a request of `len` bytes, or says which limit it breaks.
    pub fn charge(&mut self, len: u64) -> Result<(), RandomLimitExceeded> {
        if len > self.per_request {
            return Err(RandomLimitExceeded::Request {
                requested: len,
                limit: self.per_request,
            });
        }
        let used = self.used.saturating_add(len);
        if used > self.per_call {
            return Err(RandomLimitExceeded::Call {
                limit: self.per_call,
            });
        }
        self.used = used;
        Ok(())
    }
}

/// What the redefined functions work on: wasmtime-wasi's generators and the
/// instance's budget.
pub struct BudgetedRandom<'a> {
    /// wasmtime-wasi's random context (its generators).
    pub ctx: &'a mut WasiRandomCtx,
    /// The instance's budget.
    pub budget: &'a mut RandomBudget,
}

impl BudgetedRandom<'_> {
    fn charge(&mut self, len: u64) -> wasmtime::Result<()> {
        self.budget.charge(len).map_err(wasmtime::Error::new)
    }
}

impl random::Host for BudgetedRandom<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.charge(len)?;
        random::Host::get_random_bytes(self.ctx, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.charge(8)?;
        random::Host::get_random_u64(self.ctx)
    }
}

impl insecure::Host for BudgetedRandom<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.charge(len)?;
        insecure::Host::get_insecure_random_bytes(self.ctx, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.charge(8)?;
        insecure::Host::get_insecure_random_u64(self.ctx)
    }
}

/// A store's data that holds a random budget.
pub trait RandomView: Send {
    /// wasmtime-wasi's random context and the instance's budget.
    fn random_view(&mut self) -> BudgetedRandom<'_>;
}

struct Budgeted<T>(std::marker::PhantomData<T>);

impl<T: 'static> HasData for Budgeted<T> {
    type Data<'a> = BudgetedRandom<'a>;
}

/// Defines `wasi:random/random` and `wasi:random/insecure` over
/// wasmtime-wasi's (call after `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker<T: RandomView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = random::add_to_linker::<T, Budgeted<T>>(linker, |s| s.random_view())
        .and_then(|()| insecure::add_to_linker::<T, Budgeted<T>>(linker, |s| s.random_view()));
    linker.allow_shadowing(false);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::units::ByteSize;

    #[test]
    fn budget_refuses_a_big_request_and_a_call_over_its_total() {
        let limits = Limits {
            max_random: ByteSize(100),
            random_per_call: ByteSize(250),
            ..Limits::default()
        };
        let mut b = RandomBudget::new(&limits);
        assert_eq!(
            b.charge(101),
            Err(RandomLimitExceeded::Request {
                requested: 101,
                limit: 100
            })
        );
        b.charge(100).unwrap();
        b.charge(100).unwrap();
        let e = b.charge(100).unwrap_err();
        assert_eq!(e, RandomLimitExceeded::Call { limit: 250 });
        assert!(e.to_string().contains("`random-per-call`"), "{e}");
        assert_eq!(b.used(), 200);
        b.begin_call();
        b.charge(100).unwrap();
    }
}
