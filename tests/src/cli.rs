//! Running the `tapedeck` binary from end-to-end tests: the one cargo built
//! next to the test (`<target>/<profile>/tapedeck`; `cargo test --workspace`
//! builds it), isolated from the caller's environment.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `<target>/<profile>/tapedeck`, from the running test's own path
/// (`<target>/<profile>/deps/<test>`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps");
    let bin = profile_dir.join(format!("tapedeck{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the tapedeck binary is missing at {}: build it first (`cargo build -p tapedeck-cli`, or run `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// A `tapedeck` command run in `dir`: no configuration or provider from the
/// environment, the spool in `dir/spool`, the user's data directory in
/// `dir/data` (where the embedded provider stores unless `dir/tapes`
/// exists), and compiled components cached in `cache` (share one per test
/// target so each component compiles once).
pub fn command(dir: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("TAPEDECK_CONFIG")
        .env_remove("TAPEDECK_PROVIDER")
        .env_remove("TAPEDECK_TAPES_DIR")
        .env_remove("RUST_LOG")
        .env("TAPEDECK_SPOOL_DIR", dir.join("spool"))
        .env("TAPEDECK_CACHE_DIR", cache);
    cmd
}
