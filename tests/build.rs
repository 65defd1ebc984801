//! Builds the test providers from source and writes `artifacts.rs`: one
//! constant per component path (like wasmtime's test-programs artifacts).

use std::fmt::Write;

/// Test guests: (package, sources to watch).
const GUESTS: &[(&str, &str)] = &[
    (
        "misbehaving-provider",
        "guest-examples/test-providers/misbehaving",
    ),
    (
        "wrong-version-provider",
        "guest-examples/test-providers/wrong-version",
    ),
    (
        "wrong-shape-provider",
        "guest-examples/test-providers/wrong-shape",
    ),
];

fn main() {
    let packages: Vec<&str> = GUESTS.iter().map(|(p, _)| *p).collect();
    let watch: Vec<&str> = GUESTS.iter().map(|(_, w)| *w).collect();
    let built = tapedeck_guest_build::build(&packages, &watch);
    let mut out = String::new();
    for (name, path) in &built {
        let konst = name.to_uppercase().replace('-', "_");
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
        writeln!(
            out,
            "    ({name:?}, {}),",
            name.to_uppercase().replace('-', "_")
        )
        .unwrap();
    }
    writeln!(out, "];").unwrap();
    let dest = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("artifacts.rs");
    std::fs::write(dest, out).unwrap();
}
