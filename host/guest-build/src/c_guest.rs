//! What a C guest needs besides its compiler: bindings for the `provider`
//! world from wit-bindgen's C generator, and the step that makes clang's
//! core module a component (Debian's wasi-libc targets WASI preview 1, so
//! the module is wrapped with wasmtime's preview1 → preview2 reactor
//! adapter).

use std::path::Path;

/// Where a C guest keeps its generated bindings, relative to its directory.
pub const BINDINGS_DIR: &str = "gen";

/// The C bindings of `wit/`'s `provider` world: (file name, contents) for
/// `provider.h`, `provider.c` and `provider_component_type.o`. They depend
/// only on the WIT, so every C provider can use the same files.
pub fn bindings(wit: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(wit)
        .map_err(|e| format!("{}: {e:#}", wit.display()))?;
    let world = resolve
        .select_world(&[pkg], Some("provider"))
        .map_err(|e| format!("world `provider` in {}: {e:#}", wit.display()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| format!("generating C bindings: {e:#}"))?;
    Ok(files
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
        .collect())
}

/// Makes the core module `core` (built by clang with `-mexec-model=reactor`
/// and linked with the bindings' `provider_component_type.o`) a component,
/// adapting its WASI preview1 imports (what `tapedeck provider
/// componentize` does).
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    tapedeck_scaffold::componentize(core)
        .map_err(|e| format!("making a component of the C core module: {e}"))
}
