//! Builds the default provider (`guest-examples/providers/fs`) from source so
//! that it can be embedded in the `tapedeck` binary.

fn main() {
    let built = tapedeck_guest_build::build(
        &["fs-provider"],
        &[
            "guest-examples/providers/fs",
            "guest-examples/providers/fs-store",
            "guest-examples/sdk",
        ],
    );
    let (_, path) = &built[0];
    println!(
        "cargo:rustc-env=TAPEDECK_FS_PROVIDER_WASM={}",
        path.display()
    );
}
