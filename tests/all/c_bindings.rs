//! The C provider's committed bindings (`guest-examples/templates/c/gen/`)
//! must be what wit-bindgen's C generator makes of `wit/` now, so a change of
//! the contract cannot leave the C template behind.
//! `guest-examples/templates/c/regen-bindings.sh` rewrites them (it runs this
//! test with `TAPEDECK_REGENERATE_C_BINDINGS=1`).

use std::path::Path;
use tapedeck_guest_build::c_guest;

#[test]
fn c_bindings_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root
        .join("guest-examples/templates/c")
        .join(c_guest::BINDINGS_DIR);
    let files = c_guest::bindings(&root.join("wit")).expect("generating the bindings");
    assert_eq!(files.len(), 3, "provider.h, provider.c and the type object");
    let regenerate = std::env::var_os("TAPEDECK_REGENERATE_C_BINDINGS").is_some();
    let mut stale = Vec::new();
    for (name, bytes) in &files {
        let path = dir.join(name);
        if regenerate {
            std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "the C bindings are out of date with wit/: {stale:?}; run \
         guest-examples/templates/c/regen-bindings.sh and commit the result"
    );
}
