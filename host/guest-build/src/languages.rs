//! Guests in other languages, each built by its own pinned toolchain that
//! `scripts/guest-toolchains.sh` installs under `target/guest-tools` (Python)
//! or into the guest's `node_modules` (JavaScript):
//!
//! * Python: `componentize-py`, pinned in the guest's `requirements.txt`;
//! * JavaScript: `jco componentize` (StarlingMonkey), pinned in the guest's
//!   `package.json` and `package-lock.json`;
//! * C: Debian's `clang-19` and `wasi-libc` packages, driven by the guest's
//!   `Makefile`, then made a component here ([`crate::c_guest`]).
//!
//! A missing toolchain is not a build failure: the result is an error
//! message naming the install step, which the tests turn into a failure of
//! their own (never a silent skip), while everything else still builds. A
//! component is rebuilt only when its sources, the WIT contract or the tool
//! changed (a stamp next to it): these tools take seconds to tens of seconds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The script that installs every guest toolchain, idempotently.
pub const INSTALL: &str = "./scripts/guest-toolchains.sh";

/// Builds the Python provider in `src` (workspace-relative; module `app`)
/// against `wit/`'s `provider` world into `out`.
pub fn python(src: &str, out: &Path) -> Result<PathBuf, String> {
    let root = crate::workspace_root();
    let tool = std::env::var_os("TAPEDECK_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/guest-tools/python/bin/componentize-py"));
    println!("cargo:rerun-if-env-changed=TAPEDECK_COMPONENTIZE_PY");
    let wit = root.join("wit");
    // componentize-py packs every module on its search path, so it runs in
    // the source directory with nothing else there.
    build(src, out, &tool, "requirements.txt", |cmd| {
        cmd.arg("-d")
            .arg(&wit)
            .args(["-w", "provider", "componentize", "-p", ".", "app", "-o"])
            .arg(out);
    })
}

/// Builds the JavaScript provider in `src` (workspace-relative; `provider.js`
/// and its `wit/` world `js-provider`) into `out`, with the `jco` of its
/// `node_modules`.
pub fn javascript(src: &str, out: &Path) -> Result<PathBuf, String> {
    let root = crate::workspace_root();
    let tool = root.join(src).join("node_modules/.bin/jco");
    build(src, out, &tool, "package-lock.json", |cmd| {
        cmd.args(["componentize", "provider.js", "--wit", "wit"])
            .args(["--world-name", "js-provider"])
            // StarlingMonkey imports `wasi:http` unless told not to.
            .args(["-d", "http", "fetch-event", "-o"])
            .arg(out);
    })
}

/// The C compiler C guests are built with (`TAPEDECK_CLANG` overrides it).
const CLANG: &str = "clang-19";

/// Builds the C provider in `src` (workspace-relative; its `Makefile` builds
/// the core module `$(CORE)` with clang from its sources and the committed
/// bindings in `gen/`) into the component `out`.
pub fn c(src: &str, out: &Path) -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed=TAPEDECK_CLANG");
    let clang = std::env::var("TAPEDECK_CLANG").unwrap_or_else(|_| CLANG.into());
    let installed = Command::new(&clang)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err(format!(
            "{clang} is not installed: run `{INSTALL}`, which installs Debian's clang-19, \
             lld-19, wasi-libc and libclang-rt-19-dev-wasm32"
        ));
    }
    let core = out.with_extension("core.wasm");
    build(src, &core, Path::new("make"), "Makefile", |cmd| {
        cmd.arg("-s")
            .arg("-B")
            .arg(format!("CLANG={clang}"))
            .arg(format!("CORE={}", core.display()))
            .arg(&core);
    })?;
    let module = std::fs::read(&core).map_err(|e| format!("{}: {e}", core.display()))?;
    let component = crate::c_guest::componentize(&module)?;
    std::fs::write(out, component).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out.to_path_buf())
}

/// Runs `tool` (configured by `args`) in `src` to produce `out`, unless the
/// stamp says nothing changed. `pin` names the file that pins the tool.
fn build(
    src: &str,
    out: &Path,
    tool: &Path,
    pin: &str,
    args: impl FnOnce(&mut Command),
) -> Result<PathBuf, String> {
    let root = crate::workspace_root();
    let dir = root.join(src);
    println!("cargo:rerun-if-changed={}", dir.join(pin).display());
    let version = Command::new(tool)
        .arg("--version")
        .current_dir(&dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok_or_else(|| {
            format!(
                "{} is not installed: run `{INSTALL}`, which installs the version pinned in {}",
                tool.display(),
                dir.join(pin).display()
            )
        })?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    digest_tree(&dir, &mut h);
    digest_tree(&root.join("wit"), &mut h);
    fnv(&mut h, version.as_bytes());
    let stamp_path = out.with_extension("stamp");
    let stamp = format!("{h:016x}");
    if out.is_file() && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp) {
        return Ok(out.to_path_buf());
    }
    let mut cmd = Command::new(tool);
    cmd.current_dir(&dir);
    args(&mut cmd);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if !output.status.success() || !out.is_file() {
        return Err(format!(
            "{} ({version}) failed to build {} (if a tool or library is missing, run \
             `{INSTALL}`):\n{}{}",
            tool.display(),
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(&stamp_path, stamp).map_err(|e| format!("{}: {e}", stamp_path.display()))?;
    Ok(out.to_path_buf())
}

/// A digest of every source file under `dir` (paths and contents, sorted),
/// skipping installed dependencies, caches and build outputs; emits
/// `rerun-if-changed` for each.
fn digest_tree(dir: &Path, h: &mut u64) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "node_modules" || name == "__pycache__" || name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            // Symlinked directories (the JavaScript world's link to `wit/`)
            // are covered by the digest of `wit/` itself.
            if !p.is_symlink() {
                digest_tree(&p, h);
            }
        } else if !name.ends_with(".wasm") {
            println!("cargo:rerun-if-changed={}", p.display());
            if let Ok(bytes) = std::fs::read(&p) {
                fnv(h, p.to_string_lossy().as_bytes());
                fnv(h, &bytes);
            }
        }
    }
}

/// FNV-1a: enough to notice a change (a build stamp, not security).
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}
