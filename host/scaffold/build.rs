//! Embeds the skeletons `provider new` writes: for each language, the files
//! of `guest-examples/skeletons/<lang>` plus what they share with the rest
//! of the repository (the WIT contract; the guest SDK and the tape model for
//! Rust; the C bindings for C; the WASI packages for JavaScript), as a table
//! of (path in the skeleton, contents, executable).

#![allow(
    clippy::unwrap_used,
    reason = "a build script fails loudly on what it did not expect"
)]

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Per language: (constant, sources as (repository directory or file, where
/// it goes in the skeleton)).
const SKELETONS: &[(&str, &[(&str, &str)])] = &[
    (
        "RUST",
        &[
            ("guest-examples/skeletons/rust", ""),
            ("wit/tape-storage.wit", "wit/tape-storage.wit"),
            ("guest-examples/sdk/src", "vendor/tapedeck-guest-sdk/src"),
            ("host/types/src", "vendor/tapedeck-types/src"),
        ],
    ),
    (
        "PYTHON",
        &[
            ("guest-examples/skeletons/python", ""),
            ("wit/tape-storage.wit", "wit/tape-storage.wit"),
        ],
    ),
    (
        "JAVASCRIPT",
        &[
            ("guest-examples/skeletons/js", ""),
            (
                "wit/tape-storage.wit",
                "wit/deps/tapedeck-storage/tape-storage.wit",
            ),
            (
                "guest-examples/templates/js/wit/deps/wasi-clocks",
                "wit/deps/wasi-clocks",
            ),
            (
                "guest-examples/templates/js/wit/deps/wasi-filesystem",
                "wit/deps/wasi-filesystem",
            ),
            (
                "guest-examples/templates/js/wit/deps/wasi-io",
                "wit/deps/wasi-io",
            ),
        ],
    ),
    (
        "C",
        &[
            ("guest-examples/skeletons/c", ""),
            ("wit/tape-storage.wit", "wit/tape-storage.wit"),
            ("guest-examples/templates/c/gen", "gen"),
        ],
    ),
];

/// Build outputs and installed tools, never part of a skeleton.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "target" | "node_modules" | "__pycache__" | ".venv" | "package-lock.json.tmp"
    ) || name.ends_with(".wasm")
}

fn collect(src: &Path, dest: &str, out: &mut Vec<(String, PathBuf, bool)>) {
    println!("cargo:rerun-if-changed={}", src.display());
    if src.is_file() {
        let exec = std::fs::metadata(src).unwrap().permissions().mode() & 0o111 != 0;
        out.push((dest.to_string(), src.to_path_buf(), exec));
        return;
    }
    let mut entries: Vec<_> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let dest = if dest.is_empty() {
            name
        } else {
            format!("{dest}/{name}")
        };
        collect(&path, &dest, out);
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    let mut code = String::new();
    for (konst, sources) in SKELETONS {
        let mut files = Vec::new();
        for (src, dest) in *sources {
            collect(&root.join(src), dest, &mut files);
        }
        writeln!(code, "pub(crate) const {konst}: &[SkeletonFile] = &[").unwrap();
        for (dest, src, exec) in files {
            writeln!(
                code,
                "    SkeletonFile {{ path: {dest:?}, contents: include_bytes!({:?}), executable: {exec} }},",
                src.display().to_string()
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("skeletons.rs");
    std::fs::write(out, code).unwrap();
}
