//! A provider whose `tape-storage` export has the current name and version
//! but not the contract's functions. The host must refuse it at load and say
//! what does not match.

wit_bindgen::generate!({ path: "wit", world: "provider" });

struct Provider;

impl exports::tapedeck::storage::tape_storage::Guest for Provider {
    fn init(config: u32) -> u32 {
        config
    }
}

// Exported only in wasm: natively, symbol names like `tapedeck:storage/…`
// do not link as a cdylib (rust-lang/rust#141310).
#[cfg(target_arch = "wasm32")]
export!(Provider);
