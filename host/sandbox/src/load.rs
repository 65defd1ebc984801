//! Loading a provider component: checks that come before any code runs.
//!
//! In order: the bytes are not a precompiled artifact (those are only ever
//! read from tapedeck's own cache), they are WebAssembly, they are a
//! *component* (not a core module), they compile, the component exports
//! `tapedeck:storage/tape-storage` at a version this host speaks, and every
//! import it needs is one the host provides. Each failure is a [`ComponentError`]
//! that names what was wrong.

use super::bindings::ProviderPre;
use super::cache::ComponentCache;
use super::engine::SandboxEngine;
use super::state::HostState;
use wasmtime::component::{Component, Linker};

/// The interface a provider must export, without version.
pub const EXPORT_INTERFACE: &str = "tapedeck:storage/tape-storage";
/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.2.0";

/// Why a component could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// The file could not be read.
    #[error("cannot read provider component {path}: {detail}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// The bytes are not WebAssembly at all.
    #[error("{what} is not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm {
        /// What was loaded (path or name).
        what: String,
    },
    /// A core module instead of a component.
    #[error(
        "{what} is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule {
        /// What was loaded.
        what: String,
    },
    /// A precompiled `.cwasm` was offered.
    #[error(
        "{what} is precompiled native code (.cwasm); tapedeck only loads precompiled code from its own cache, give it the .wasm component instead"
    )]
    Precompiled {
        /// What was loaded.
        what: String,
    },
    /// The component failed validation or compilation.
    #[error("{what} is not a valid component: {detail}")]
    Invalid {
        /// What was loaded.
        what: String,
        /// wasmtime's explanation.
        detail: String,
    },
    /// The component does not export the storage interface.
    #[error(
        "{what} does not export `{EXPORT_INTERFACE}@{WIT_VERSION}`, so it is not a tapedeck storage provider (its exports: {exports})"
    )]
    MissingExport {
        /// What was loaded.
        what: String,
        /// What it exports instead.
        exports: String,
    },
    /// The component was built against an incompatible WIT version.
    #[error(
        "{what} exports `{EXPORT_INTERFACE}@{found}`, but this tapedeck speaks version {WIT_VERSION}; {}",
        version_advice(found)
    )]
    WrongVersion {
        /// What was loaded.
        what: String,
        /// The version the component exports.
        found: String,
    },
    /// The component exports the interface with different function types.
    #[error(
        "{what} exports `{EXPORT_INTERFACE}` with a shape that does not match the contract: {detail}"
    )]
    WrongShape {
        /// What was loaded.
        what: String,
        /// wasmtime's explanation (which function or type differs).
        detail: String,
    },
    /// The component imports something tapedeck does not provide.
    #[error("{what} imports something tapedeck does not provide: {detail}")]
    UnsatisfiedImport {
        /// What was loaded.
        what: String,
        /// wasmtime's explanation (names the import).
        detail: String,
    },
}

/// What a provider author whose component speaks `found` should do.
fn version_advice(found: &str) -> String {
    const GUIDE: &str = "see docs/writing-a-provider.md";
    match semver(found) {
        Some((0, 1, _)) => format!(
            "version 0.2 changed the contract: the host gives each frame its index `terms` \
             and `search` matches those terms instead of parsing payloads for a method \
             (a provider must no longer parse payloads), frames carry `attributes`, the \
             header an `envelope` and the summary a `seal` (all stored verbatim), the new \
             `append-many` appends to several tapes in one call, and `finish` with reason \
             `aborted` keeps the summary; rebuild the provider against tapedeck's \
             wit/tape-storage.wit ({GUIDE})"
        ),
        _ => format!(
            "rebuild the provider against tapedeck's wit/tape-storage.wit (incompatible \
             version; {GUIDE})"
        ),
    }
}

/// Checks the first bytes: WebAssembly, component layer, not precompiled.
pub fn check_header(what: &str, bytes: &[u8]) -> Result<(), ComponentError> {
    let what = what.to_string();
    if wasmtime::Engine::detect_precompiled(bytes).is_some() {
        return Err(ComponentError::Precompiled { what });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ComponentError::NotWasm { what });
    }
    // Bytes 4..8: version (u16) and layer (u16). Layer 1 = component.
    if bytes[6..8] != [1, 0] {
        return Err(ComponentError::CoreModule { what });
    }
    Ok(())
}

/// Parses `"0.1.0"` into (major, minor, patch).
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// True if a component built against `found` can be served by this host
/// (semver: same major, or for 0.x the same minor).
pub fn version_compatible(found: &str) -> bool {
    match (semver(found), semver(WIT_VERSION)) {
        (Some((fa, fb, _)), Some((ha, hb, _))) => fa == ha && (ha != 0 || fb == hb),
        _ => false,
    }
}

/// A compiled provider component, type-checked against the contract and
/// linked against the host: instances are created from its [`ProviderPre`].
#[derive(Clone)]
pub struct LoadedComponent {
    /// The compiled component.
    pub component: Component,
    /// The pre-instantiated form; one `Store` + instance per use.
    pub pre: ProviderPre<HostState>,
}

/// Compiles and checks `bytes` (named `what` in errors).
pub fn load_component(
    engine: &SandboxEngine,
    linker: &Linker<HostState>,
    cache: Option<&ComponentCache>,
    what: &str,
    bytes: &[u8],
) -> Result<LoadedComponent, ComponentError> {
    check_header(what, bytes)?;
    let compile = || Component::new(engine.engine(), bytes);
    let component = match cache {
        Some(cache) => cache.get_or_compile(engine.engine(), bytes, compile),
        None => compile(),
    }
    .map_err(|e| ComponentError::Invalid {
        what: what.to_string(),
        detail: format!("{e:#}"),
    })?;
    check_exports(engine, &component, what)?;
    let pre =
        linker
            .instantiate_pre(&component)
            .map_err(|e| ComponentError::UnsatisfiedImport {
                what: what.to_string(),
                detail: format!("{e:#}"),
            })?;
    let pre = ProviderPre::new(pre).map_err(|e| ComponentError::WrongShape {
        what: what.to_string(),
        detail: format!("{e:#}"),
    })?;
    Ok(LoadedComponent { component, pre })
}

/// Finds the storage export and checks its version.
fn check_exports(
    engine: &SandboxEngine,
    component: &Component,
    what: &str,
) -> Result<(), ComponentError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let prefix = format!("{EXPORT_INTERFACE}@");
    match exports.iter().find(|n| n.starts_with(&prefix)) {
        Some(name) => {
            let found = &name[prefix.len()..];
            if version_compatible(found) {
                Ok(())
            } else {
                Err(ComponentError::WrongVersion {
                    what: what.to_string(),
                    found: found.to_string(),
                })
            }
        }
        None => Err(ComponentError::MissingExport {
            what: what.to_string(),
            exports: if exports.is_empty() {
                "none".to_string()
            } else {
                exports
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert!(matches!(
            check_header("x", b"hello world"),
            Err(ComponentError::NotWasm { .. })
        ));
        assert!(matches!(
            check_header("x", b"\0asm\x01\0\0\0"),
            Err(ComponentError::CoreModule { .. })
        ));
        assert!(check_header("x", b"\0asm\x0d\0\x01\0").is_ok());
        assert!(matches!(
            check_header("x", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"),
            Err(ComponentError::NotWasm { .. }) | Err(ComponentError::Precompiled { .. })
        ));
    }

    #[test]
    fn versions() {
        assert!(version_compatible("0.2.0"));
        assert!(version_compatible("0.2.7"));
        assert!(!version_compatible("0.1.0"));
        assert!(!version_compatible("0.1.9"));
        assert!(!version_compatible("0.3.0"));
        assert!(!version_compatible("1.0.0"));
        assert!(!version_compatible("banana"));
    }

    /// A component that exports an empty instance as the storage
    /// interface at `version`, and nothing else:
    /// `(component (instance $i) (export "tapedeck:storage/tape-storage@<version>" (instance $i)))`.
    fn exporting(version: &str) -> Vec<u8> {
        let name = format!("{EXPORT_INTERFACE}@{version}");
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        // Instance section: one instance made of no exports.
        bytes.extend([5, 3, 1, 1, 0]);
        // Export section: one export, a plain name, of instance 0, no type.
        let mut export = vec![1, 0, name.len() as u8];
        export.extend(name.as_bytes());
        export.extend([5, 0, 0]);
        bytes.extend([11, export.len() as u8]);
        bytes.extend(export);
        bytes
    }

    fn load_err(bytes: &[u8]) -> ComponentError {
        match crate::Sandbox::new().expect("engine").load("p.wasm", bytes) {
            Ok(_) => panic!("loaded"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_0_1_provider_is_refused_with_what_changed() {
        let e = load_err(&exporting("0.1.0"));
        assert!(
            matches!(e, ComponentError::WrongVersion { ref found, .. } if found == "0.1.0"),
            "{e}"
        );
        let msg = e.to_string();
        for part in [
            "p.wasm exports `tapedeck:storage/tape-storage@0.1.0`",
            "speaks version 0.2.0",
            "terms",
            "instead of parsing payloads",
            "attributes",
            "envelope",
            "seal",
            "append-many",
            "docs/writing-a-provider.md",
        ] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
    }

    #[test]
    fn other_versions_are_refused_naming_them() {
        let e = load_err(&exporting("1.0.0"));
        let msg = e.to_string();
        assert!(matches!(e, ComponentError::WrongVersion { .. }), "{msg}");
        assert!(msg.contains("tape-storage@1.0.0"), "{msg}");
        assert!(msg.contains("docs/writing-a-provider.md"), "{msg}");
        assert!(!msg.contains("append-many"), "{msg}");
        // The right version passes the export check and fails further on
        // (the empty instance has none of the functions).
        let e = load_err(&exporting(WIT_VERSION));
        assert!(!matches!(e, ComponentError::WrongVersion { .. }), "{e}");
    }
}
