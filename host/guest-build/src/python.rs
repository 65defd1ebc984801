//! Python guests: componentized with `componentize-py` (PyPI), pinned in the
//! guest's `requirements.txt` and installed by `scripts/guest-toolchains.sh`
//! into `target/guest-tools/python`.
//!
//! A missing toolchain is not a build failure: the result is an error
//! message naming the install step, which the tests turn into a failure of
//! their own (never a silent skip), while everything else still builds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The script that installs every guest toolchain, idempotently.
pub const INSTALL: &str = "./scripts/guest-toolchains.sh";

/// `componentize-py`: `$TAPEDECK_COMPONENTIZE_PY`, else the one the install
/// script puts under `target/guest-tools`, else the first on `PATH`.
fn componentize_py(root: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("TAPEDECK_COMPONENTIZE_PY") {
        return PathBuf::from(p);
    }
    let local = root.join("target/guest-tools/python/bin/componentize-py");
    if local.is_file() {
        return local;
    }
    PathBuf::from("componentize-py")
}

/// A digest of every file under `dir` (names and contents, sorted), to tell
/// whether a component must be built again.
fn digest_tree(dir: &Path, h: &mut u64) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if name
            .as_deref()
            .is_some_and(|n| n == "__pycache__" || n.starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            digest_tree(&p, h);
        } else if let Ok(bytes) = std::fs::read(&p) {
            fnv(h, p.to_string_lossy().as_bytes());
            fnv(h, &bytes);
        }
    }
}

/// FNV-1a: enough to notice a change (this is a build stamp, not security).
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

/// Builds the Python provider in `src` (workspace-relative; module `app`)
/// against `wit/`'s `provider` world into `out`. Returns the component's
/// path, or why it could not be built (naming the install step).
///
/// The component is rebuilt only when the sources, the WIT contract or the
/// tool changed (a stamp next to `out`): componentize-py takes seconds.
pub fn build(src: &str, out: &Path) -> Result<PathBuf, String> {
    let root = crate::workspace_root();
    let src = root.join(src);
    let wit = root.join("wit");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=TAPEDECK_COMPONENTIZE_PY");
    let tool = componentize_py(&root);
    let version = Command::new(&tool)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok_or_else(|| {
            format!(
                "componentize-py is not installed (looked for {}): run `{INSTALL}`, which \
                 installs the version pinned in {}/requirements.txt",
                tool.display(),
                src.display()
            )
        })?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    digest_tree(&src, &mut h);
    digest_tree(&wit, &mut h);
    fnv(&mut h, version.as_bytes());
    let stamp_path = out.with_extension("stamp");
    let stamp = format!("{h:016x}");
    if out.is_file() && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp) {
        return Ok(out.to_path_buf());
    }
    // Run from the source directory: componentize-py packs every module on
    // its search path, so nothing else may be there.
    let output = Command::new(&tool)
        .current_dir(&src)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "provider", "componentize", "-p", ".", "app", "-o"])
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{version} failed to build {}:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::write(&stamp_path, stamp).map_err(|e| format!("{}: {e}", stamp_path.display()))?;
    Ok(out.to_path_buf())
}
