//! Builds the test providers from source and writes `artifacts.rs`: one
//! constant per component path (like wasmtime's test-programs artifacts).
//!
//! Rust guests are compiled for `wasm32-wasip2`. The table-growth bomb is
//! WebAssembly text (Rust cannot emit `table.grow`): it is parsed, given the
//! `provider` world's metadata and encoded as a component here.

#![allow(
    clippy::unwrap_used,
    reason = "test code fails loudly on what it did not expect"
)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Test guests: (package, sources to watch).
const GUESTS: &[(&str, &str)] = &[
    ("misbehaving-provider", "tests/programs/misbehaving"),
    ("wrong-version-provider", "tests/programs/wrong-version"),
    ("wrong-shape-provider", "tests/programs/wrong-shape"),
    ("hostile-provider", "tests/programs/hostile"),
    ("net-attacker-provider", "tests/programs/net-attacker"),
    ("faulty-provider", "tests/programs/faulty"),
    // The Rust template of docs/writing-a-provider.md: must pass the suite.
    ("rust-template-provider", "guest-examples/templates/rust"),
    // The PostgreSQL provider (its tests start a real server).
    ("postgres-provider", "guest-examples/providers/postgres"),
];

/// Test guests written in WebAssembly text: (package name, `.wat` core module).
const WAT_GUESTS: &[(&str, &str)] = &[(
    "table-bomb-provider",
    "tests/programs/table-bomb/table-bomb.wat",
)];

/// Turns the core module in `wat` (text) into a component of the `provider`
/// world of `wit/`, written to `out`.
fn build_wat(root: &Path, wat: &str, out: &Path) {
    let src = root.join(wat);
    println!("cargo:rerun-if-changed={}", src.display());
    let mut module = wat::parse_file(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(root.join("wit"))
        .unwrap_or_else(|e| panic!("wit/: {e:#}"));
    let world = resolve
        .select_world(&[pkg], Some("provider"))
        .expect("world `provider` in wit/");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embedding the world");
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| e.encode())
        .unwrap_or_else(|e| panic!("{}: not a valid provider: {e:#}", src.display()));
    std::fs::write(out, component).unwrap();
}

/// Providers in other languages: (package name, source directory). Each is
/// built by its toolchain; when that is missing, its constant holds the
/// error naming the install step, and the tests that use it fail with it.
#[allow(
    clippy::type_complexity,
    reason = "a table of (name, directory, builder) is clearest inline"
)]
const LANGUAGE_GUESTS: &[(&str, &str, fn(&str, &Path) -> Result<PathBuf, String>)] = &[
    (
        "python-provider",
        "guest-examples/templates/python",
        tapedeck_guest_build::languages::python,
    ),
    (
        "js-provider",
        "guest-examples/templates/js",
        tapedeck_guest_build::languages::javascript,
    ),
    (
        "c-provider",
        "guest-examples/templates/c",
        tapedeck_guest_build::languages::c,
    ),
];

/// Sources some guests compile in besides their own: the fs store (used by
/// the faulty provider) and the guest SDK (the faulty and postgres providers).
const SHARED_SOURCES: &[&str] = &["guest-examples/providers/fs-store", "guest-examples/sdk"];

/// The artifact constant of package `name`: `c-provider` -> `C_PROVIDER`.
fn const_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn main() {
    let packages: Vec<&str> = GUESTS.iter().map(|(p, _)| *p).collect();
    let watch: Vec<&str> = GUESTS
        .iter()
        .map(|(_, w)| *w)
        .chain(SHARED_SOURCES.iter().copied())
        .collect();
    let mut built = tapedeck_guest_build::build(&packages, &watch);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let root = tapedeck_guest_build::workspace_root();
    for (name, wat) in WAT_GUESTS {
        let out = out_dir.join(format!("{}.wasm", name.replace('-', "_")));
        build_wat(&root, wat, &out);
        built.push((name.to_string(), out));
    }
    let mut out = String::new();
    for (name, src, build) in LANGUAGE_GUESTS {
        let file = out_dir.join(format!("{}.wasm", name.replace('-', "_")));
        let konst = const_name(name);
        let value = match build(src, &file) {
            Ok(path) => format!("Ok({:?})", path.display().to_string()),
            Err(e) => format!("Err({e:?})"),
        };
        writeln!(
            out,
            "/// Path of the `{name}` component, built from `{src}`, or why it \
             could not be built (the toolchain's install step)."
        )
        .unwrap();
        writeln!(out, "pub const {konst}: Result<&str, &str> = {value};").unwrap();
    }
    writeln!(
        out,
        "/// Every provider in another language: (package, built component or why not)."
    )
    .unwrap();
    writeln!(
        out,
        "pub const OTHER_LANGUAGES: &[(&str, Result<&str, &str>)] = &["
    )
    .unwrap();
    for (name, _, _) in LANGUAGE_GUESTS {
        writeln!(out, "    ({name:?}, {}),", const_name(name)).unwrap();
    }
    writeln!(out, "];").unwrap();
    for (name, path) in &built {
        let konst = const_name(name);
        writeln!(
            out,
            "/// Path of the `{name}` component, built from source."
        )
        .unwrap();
        writeln!(
            out,
            "pub const {konst}: &str = {:?};",
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(out, "/// Every test component: (package, path).").unwrap();
    writeln!(out, "pub const ALL: &[(&str, &str)] = &[").unwrap();
    for (name, _) in &built {
        writeln!(out, "    ({name:?}, {}),", const_name(name)).unwrap();
    }
    writeln!(out, "];").unwrap();
    let dest = out_dir.join("artifacts.rs");
    std::fs::write(dest, out).unwrap();
}
