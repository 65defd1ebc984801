//! A provider for a contract version this host does not speak (1.0.0). The
//! host must refuse it at load, naming the version.

wit_bindgen::generate!({ path: "wit", world: "provider" });

struct Provider;

impl exports::tapedeck::storage::tape_storage::Guest for Provider {
    fn init(_config: String) -> Result<String, String> {
        Ok("from the future".into())
    }
}

// Exported only in wasm: natively, symbol names like `tapedeck:storage/…`
// do not link as a cdylib (rust-lang/rust#141310).
#[cfg(target_arch = "wasm32")]
export!(Provider);
