//! Core module → component: for languages whose toolchain targets WASI
//! preview 1 (Debian's clang with wasi-libc, for one).

use crate::ScaffoldError;

/// Makes `core`, a core module built with `-mexec-model=reactor` and linked
/// with the component type of the `provider` world (wit-bindgen's
/// `provider_component_type.o` for C), a component, adapting its WASI
/// preview 1 imports to WASI 0.2 with wasmtime's reactor adapter.
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, ScaffoldError> {
    use wasi_preview1_component_adapter_provider as adapter;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(core)
        .and_then(|e| {
            e.adapter(
                adapter::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                adapter::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|e| e.encode())
        .map_err(|e| ScaffoldError::Componentize(format!("{e:#}")))
}
