//! Host bindings generated from `wit/tape-storage.wit`.
//!
//! Generated code is not documented item by item; the WIT file is the
//! documentation.
//!
//! Exports are called asynchronously (so epoch yields and wall-clock timeouts
//! work); the `log` import is synchronous and cheap.

#![allow(
    missing_docs,
    reason = "generated from the WIT, which is the documentation"
)]

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "provider",
    imports: { default: trappable },
    exports: { default: async },
});

pub use self::tapedeck::storage::log;
pub use self::tapedeck::storage::types as wit;
