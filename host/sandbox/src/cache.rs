//! tapedeck's own cache of compiled components (`.cwasm`).
//!
//! Compiling a component with Cranelift takes from a second (a small Rust
//! provider in a debug build) to minutes (an interpreter); loading the
//! compiled form takes milliseconds. Compiled code is native code that
//! wasmtime loads without verification, so it is only ever read from this
//! cache, which only tapedeck writes:
//!
//! * the file name is the SHA-256 of the component's bytes *and* of the
//!   engine's compatibility hash (wasmtime version, compiler settings, CPU
//!   features), so a different component or engine never matches;
//! * entries are written to a temporary file and renamed into place, so a
//!   reader sees a whole entry or none;
//! * the directory is created private to the user (mode 0700 on Unix);
//! * an entry that fails to load is deleted and the component recompiled.
//!
//! Location: `$TAPEDECK_CACHE_DIR`, else `$XDG_CACHE_HOME/tapedeck/components`,
//! else `~/.cache/tapedeck/components`.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is used")
    }
}

impl ComponentCache {
    /// The cache at the default location, if one can be determined.
    pub fn from_env() -> Option<ComponentCache> {
        let dir = if let Some(d) = std::env::var_os("TAPEDECK_CACHE_DIR") {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(d).join("tapedeck/components")
        } else {
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/tapedeck/components")
        };
        Some(ComponentCache { dir })
    }

    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> ComponentCache {
        ComponentCache { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry name for `bytes` compiled by `engine`.
    pub fn key(engine: &Engine, bytes: &[u8]) -> String {
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.update(Sha256::digest(bytes));
        format!("{}.cwasm", hex::encode(h.0.finalize()))
    }

    /// The compiled component for `bytes`: from the cache if present and
    /// loadable, else compiled with `compile` and stored (best effort: a
    /// cache that cannot be written only costs time).
    #[allow(
        unsafe_code,
        reason = "deserializing compiled code is unsafe; only this cache's own files are loaded (see SAFETY below)"
    )]
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        let path = self.dir.join(Self::key(engine, bytes));
        if path.is_file() {
            // SAFETY: the file is in tapedeck's private cache, named by the
            // hash of the source bytes and of this engine's compatibility
            // hash, and was written whole (temp file + rename) by
            // `Component::serialize` of this same engine configuration.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(
                        target: "tapedeck::sandbox",
                        "discarding unusable cache entry {}: {e}",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = compile()?;
        if let Err(e) = self.store(&path, &component) {
            tracing::debug!(
                target: "tapedeck::sandbox",
                "cannot write compiled component to {}: {e}",
                path.display()
            );
        }
        Ok(component)
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        let bytes = component.serialize()?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(tmp.path(), &bytes)?;
        tmp.persist(path)?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_bytes_and_engine() {
        let a = Engine::default();
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        let b = Engine::new(&cfg).unwrap();
        assert_eq!(ComponentCache::key(&a, b"x"), ComponentCache::key(&a, b"x"));
        assert_ne!(ComponentCache::key(&a, b"x"), ComponentCache::key(&a, b"y"));
        assert_ne!(ComponentCache::key(&a, b"x"), ComponentCache::key(&b, b"x"));
    }
}
