//! A provider whose `tape-storage` export has the current name and version
//! but not the contract's functions. The host must refuse it at load and say
//! what does not match.

/// The raw bindings of the contract and their export glue (which needs
/// `unsafe`): this guest does without the SDK on purpose.
#[allow(unsafe_code, reason = "wit-bindgen's generated glue")]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "provider" });

    // Exported only in wasm: natively, symbol names like
    // `tapedeck:storage/…` do not link as a cdylib (rust-lang/rust#141310).
    #[cfg(target_arch = "wasm32")]
    use super::Provider;
    #[cfg(target_arch = "wasm32")]
    export!(Provider);
}
use bindings::*;

struct Provider;

impl exports::tapedeck::storage::tape_storage::Guest for Provider {
    fn init(config: u32) -> u32 {
        config
    }
}
