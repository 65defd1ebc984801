//! Compiles guest components from source inside a build script, the way
//! wasmtime's `test-programs` artifacts crate does: a nested `cargo build
//! --target wasm32-wasip2` of workspace packages into a target directory of
//! its own, so nothing prebuilt is ever committed.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target guests are built for. Its output is already a component
/// (rustup's `wasm32-wasip2` links with `wasm-component-ld`).
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile used for guests (defined in the workspace `Cargo.toml`:
/// small, optimised, stripped).
pub const PROFILE: &str = "guest";

/// The workspace root, from the calling package's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|p| {
            std::fs::read_to_string(p.join("Cargo.toml"))
                .map(|s| s.contains("[workspace]"))
                .unwrap_or(false)
        })
        .expect("a workspace root above the manifest")
        .to_path_buf()
}

/// Where guests are built: `<target dir>/guests`, shared by every build
/// script so each guest is compiled once.
fn guest_target_dir() -> PathBuf {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR = <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out
    let target = out
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|b| b.parent())
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or(out);
    target.join("guests")
}

/// Builds the workspace packages `packages` for [`TARGET`] and returns, for
/// each, the path of its component (`<name>.wasm`, hyphens as underscores).
///
/// Emits `rerun-if-changed` for the WIT contract, the guest sources given in
/// `watch` (paths relative to the workspace root) and the lock file.
pub fn build(packages: &[&str], watch: &[&str]) -> Vec<(String, PathBuf)> {
    let root = workspace_root();
    for w in ["wit", "Cargo.lock", "Cargo.toml", "host/types"]
        .iter()
        .chain(watch)
    {
        println!("cargo:rerun-if-changed={}", root.join(w).display());
    }
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--profile")
        .arg(PROFILE)
        .arg("--locked");
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    // The outer cargo's settings (flags, wrappers such as clippy-driver, the
    // target dir, jobserver) must not leak into the guest build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_NET_OFFLINE")
            || k.starts_with("RUSTC_")
            || k == "RUSTFLAGS"
            || k == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for guests: {e}"));
    if !status.success() {
        panic!(
            "building guest components {packages:?} for {TARGET} failed (see the output above). \
             Is the target installed? Run `rustup target add {TARGET}`."
        );
    }
    packages
        .iter()
        .map(|p| {
            let file = target_dir
                .join(TARGET)
                .join(PROFILE)
                .join(format!("{}.wasm", p.replace('-', "_")));
            assert!(
                file.exists(),
                "guest {p} built but {} is missing",
                file.display()
            );
            (p.to_string(), file)
        })
        .collect()
}

pub mod c_guest;
pub mod languages;
