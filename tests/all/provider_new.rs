//! `tapedeck provider new` as a provider author meets it: in an empty
//! directory, with the `tapedeck` binary on `PATH` and the language's own
//! toolchain, `provider new` → the one build command the skeleton documents
//! → `provider test` passes, for Rust, Python, JavaScript and C.
//!
//! The toolchains are the ones `scripts/guest-toolchains.sh` installs,
//! handed over as an author would have them: componentize-py through
//! `COMPONENTIZE_PY` (which the Python skeleton's `build.sh` honours), jco
//! as an installed `node_modules` (the skeleton's `npm run build` installs
//! it itself first; here that step is skipped with `--ignore-scripts`, so
//! the test does not download 300 MB each run), Rust's cargo with a target
//! directory kept under `target/` between runs. A missing toolchain fails
//! with its install step, never a skip.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use tapedeck_tests::cli;

/// One author's session: a fresh directory with `bin/tapedeck`, then
/// `provider new NAME --lang LANG` in it.
struct Author {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    path: OsString,
    cache: PathBuf,
}

impl Author {
    fn new() -> Author {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().to_path_buf();
        let bin = work.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(cli::binary(), bin.join("tapedeck")).unwrap();
        let mut dirs = vec![bin];
        dirs.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        Author {
            _tmp: tmp,
            work,
            path: std::env::join_paths(dirs).unwrap(),
            cache: crate::cache_dir(),
        }
    }

    /// `tapedeck ARGS` in the author's directory (found on `PATH`).
    fn tapedeck(&self, args: &[&str], dir: &Path) -> std::process::Output {
        let t = cli::tapedeck(dir, &self.cache).env("PATH", &self.path);
        let mut cmd = t.command();
        cmd.args(args);
        cmd.output().unwrap()
    }

    /// `provider new` and what it said: (project directory, its JSON).
    fn new_provider(&self, name: &str, lang: &str) -> (PathBuf, serde_json::Value) {
        let out = self.tapedeck(
            &["--json", "provider", "new", name, "--lang", lang],
            &self.work,
        );
        let out = cli::exited("provider new", out, 0);
        let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let dir = self.work.join(name);
        assert!(
            dir.join("README.md").is_file(),
            "{lang}: no README in {}",
            dir.display()
        );
        (dir, said)
    }

    /// Runs the skeleton's build command (`sh -c`) in `dir`.
    fn build(&self, dir: &Path, command: &str, env: &[(&str, OsString)]) {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .env("PATH", &self.path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "`{command}` failed in {}:\n{}{}",
            dir.display(),
            cli::text(&out.stdout),
            cli::text(&out.stderr)
        );
    }

    /// `provider test COMPONENT` passes (every case, or a skip for a large
    /// case with `--quick`).
    fn passes_the_suite(&self, component: &Path, quick: bool) {
        let component = component.to_str().unwrap();
        let mut args = vec!["provider", "test", component];
        if quick {
            args.push("--quick");
        }
        let out = self.tapedeck(&args, &self.work);
        let stdout = cli::text(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(" 0 failed"),
            "provider test {component}:\n{stdout}{}",
            cli::text(&out.stderr)
        );
    }
}

fn the_build_command(said: &serde_json::Value) -> String {
    said["build"].as_str().unwrap().to_string()
}

fn root() -> PathBuf {
    tapedeck_guest_build::workspace_root()
}

#[test]
fn a_rust_skeleton_builds_and_passes_the_suite() {
    let author = Author::new();
    let (dir, said) = author.new_provider("acme-store", "rust");
    assert_eq!(the_build_command(&said), "cargo build --release");
    // Kept between runs: the dependencies compile once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skeleton-rust-target");
    author.build(
        &dir,
        "cargo build --release --locked",
        &[("CARGO_TARGET_DIR", target.clone().into())],
    );
    let component = target.join("wasm32-wasip2/release/acme_store.wasm");
    assert_eq!(
        said["component"].as_str().unwrap(),
        "acme-store/target/wasm32-wasip2/release/acme_store.wasm"
    );
    author.passes_the_suite(&component, false);
}

#[test]
fn a_python_skeleton_builds_and_passes_the_suite() {
    let tool = root().join("target/guest-tools/python/bin/componentize-py");
    assert!(
        tool.is_file(),
        "componentize-py is not installed: run `./scripts/guest-toolchains.sh`"
    );
    let author = Author::new();
    let (dir, said) = author.new_provider("acme-store", "python");
    let build = the_build_command(&said);
    assert_eq!(build, "./build.sh");
    author.build(&dir, &build, &[("COMPONENTIZE_PY", tool.into())]);
    author.passes_the_suite(&dir.join("acme-store.wasm"), true);
}

#[test]
fn a_javascript_skeleton_builds_and_passes_the_suite() {
    let installed = root().join("guest-examples/templates/js/node_modules");
    assert!(
        installed.join(".bin/jco").is_file(),
        "jco is not installed: run `./scripts/guest-toolchains.sh`"
    );
    let author = Author::new();
    let (dir, said) = author.new_provider("acme-store", "js");
    let build = the_build_command(&said);
    assert_eq!(build, "npm run build");
    // The same pinned jco (the skeleton's lock is the template's).
    let lock = |p: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("package-lock.json")).unwrap()).unwrap();
        v["packages"]["node_modules/@bytecodealliance/jco"]["version"].clone()
    };
    assert_eq!(lock(&dir), lock(installed.parent().unwrap()));
    std::os::unix::fs::symlink(&installed, dir.join("node_modules")).unwrap();
    author.build(&dir, &format!("{build} --ignore-scripts"), &[]);
    author.passes_the_suite(&dir.join("acme-store.wasm"), true);
}

#[test]
fn a_c_skeleton_builds_and_passes_the_suite() {
    let author = Author::new();
    let (dir, said) = author.new_provider("acme-store", "c");
    let build = the_build_command(&said);
    assert_eq!(build, "make");
    // `make` finds `tapedeck` on PATH for its last step.
    author.build(&dir, &build, &[]);
    author.passes_the_suite(&dir.join("acme-store.wasm"), false);
}

#[test]
fn provider_new_refuses_a_bad_name_and_a_used_directory() {
    let author = Author::new();
    let out = author.tapedeck(&["provider", "new", "My_Store"], &author.work);
    let err = cli::text(&cli::exited("provider new My_Store", out, 1).stderr);
    assert!(err.contains("invalid provider name \"My_Store\""), "{err}");
    std::fs::create_dir(author.work.join("taken")).unwrap();
    std::fs::write(author.work.join("taken/file"), "x").unwrap();
    let out = author.tapedeck(&["provider", "new", "taken"], &author.work);
    let err = cli::text(&cli::exited("provider new taken", out, 1).stderr);
    assert!(err.contains("exists and is not empty"), "{err}");
    let out = author.tapedeck(&["provider", "new", "x", "--lang", "cobol"], &author.work);
    let err = cli::text(&cli::exited("provider new --lang cobol", out, 2).stderr);
    assert!(
        err.contains("unknown language `cobol` (known: rust, python, js, c)"),
        "{err}"
    );
}
