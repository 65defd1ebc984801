//! The guide's commands, run as written: for each language, the block of
//! `docs/writing-a-provider.md` marked `<!-- guide-test: LANG -->`
//! (`provider new` → `cd` → the skeleton's one build command → `provider
//! test`) runs in an empty directory, with the `tapedeck` binary on `PATH`
//! and the language's own toolchain, and the suite passes; the README's
//! minimal provider configuration then records through the Rust build as
//! written. So neither document can rot.
//!
//! The toolchains are the ones `scripts/guest-toolchains.sh` installs,
//! handed over as an author would have them: componentize-py through
//! `COMPONENTIZE_PY` (which the Python skeleton's `build.sh` honours), jco
//! as an installed `node_modules` (the skeleton's `npm run build` installs
//! it itself first; here that step is skipped, so the test does not
//! download 300 MB each run), cargo with the project's `target` linked to a
//! directory kept under `target/` between runs. Python and JavaScript run
//! the suite without its two large cases (the skeleton's simple store scans
//! a tape per read: minutes in an interpreter); Rust and C run all of it. A
//! missing toolchain fails with its install step, never a skip.

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
}

fn root() -> PathBuf {
    tapedeck_guest_build::workspace_root()
}

/// The `sh` block of `docs/writing-a-provider.md` marked
/// `<!-- guide-test: LANG -->`: its command lines.
fn guide_commands(lang: &str) -> Vec<String> {
    marked_block(
        &root().join("docs/writing-a-provider.md"),
        &format!("<!-- guide-test: {lang} -->"),
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The fenced block right after the line `marker` in the file.
fn marked_block(file: &Path, marker: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let after = text
        .split_once(&format!("{marker}\n"))
        .unwrap_or_else(|| panic!("{} has no {marker}", file.display()))
        .1;
    let body = after.split_once('\n').unwrap().1;
    body.split_once("```").unwrap().0.to_string()
}

/// Runs the guide's commands for `lang` in an empty directory, as one
/// shell script, with `extra` lines after the `cd` (what the test hands
/// over of the toolchain) and `env`; `quick` runs the suite without its
/// two large cases. Returns the author and the project directory.
fn follow_the_guide(
    lang: &str,
    extra: &[String],
    env: &[(&str, OsString)],
    quick: bool,
) -> (Author, PathBuf) {
    let commands = guide_commands(lang);
    let language = tapedeck::scaffold::Language::parse(lang).unwrap();
    assert_eq!(commands.len(), 4, "{lang}: {commands:?}");
    assert_eq!(
        commands[0],
        format!("tapedeck provider new my-store --lang {lang}")
    );
    assert_eq!(commands[1], "cd my-store");
    assert_eq!(
        commands[2],
        language.build_command(),
        "{lang}: the skeleton's build command"
    );
    assert!(
        commands[3].starts_with("tapedeck provider test "),
        "{commands:?}"
    );
    let mut script = vec![
        "set -e".to_string(),
        commands[0].clone(),
        commands[1].clone(),
    ];
    script.extend(extra.iter().cloned());
    script.push(commands[2].clone());
    script.push(if quick {
        commands[3].replacen("provider test ", "provider test --quick ", 1)
    } else {
        commands[3].clone()
    });
    let author = Author::new();
    // `tapedeck` isolated as everywhere in these tests (its spool, cache
    // and data under the scratch directory).
    let t = cli::tapedeck(&author.work, &author.cache);
    let mut cmd = Command::new("sh");
    t.isolate(&mut cmd);
    cmd.arg("-c")
        .arg(script.join("\n"))
        .env("PATH", &author.path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = cli::text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "the guide's {lang} commands failed:\n{}\n---\n{stdout}{}",
        script.join("\n"),
        cli::text(&out.stderr)
    );
    let dir = author.work.join("my-store");
    (author, dir)
}

/// Kept between runs: the Rust dependencies compile once.
fn rust_target() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skeleton-rust-target");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_guides_rust_commands_work_and_the_readme_config_runs_as_written() {
    let link = format!("ln -s '{}' target", rust_target().display());
    let (author, dir) = follow_the_guide("rust", &[link], &[], false);
    // The README's minimal provider configuration, in the project, as is.
    let config = marked_block(
        &root().join("README.md"),
        "<!-- readme-test: provider-config -->",
    );
    std::fs::write(dir.join("tapedeck.toml"), config).unwrap();
    let fixtures = root().join("tests/fixtures");
    let session = std::fs::read(fixtures.join("demo-session.jsonl")).unwrap();
    let server = fixtures.join("echo_server.py");
    let t = cli::tapedeck(&dir, &author.cache).env("PATH", &author.path);
    let out = t.output_with_input(
        &[
            "record",
            "--name",
            "first",
            "--",
            "python3",
            server.to_str().unwrap(),
        ],
        &session,
    );
    cli::exited("record through the README's config", out, 0);
    let listed = t.ok(&["--json", "list"]);
    assert!(listed.contains("\"first\""), "{listed}");
    assert!(
        dir.join("tapes").is_dir(),
        "the granted directory was created"
    );
}

#[test]
fn the_guides_python_commands_work() {
    let tool = root().join("target/guest-tools/python/bin/componentize-py");
    assert!(
        tool.is_file(),
        "componentize-py is not installed: run `./scripts/guest-toolchains.sh`"
    );
    follow_the_guide("python", &[], &[("COMPONENTIZE_PY", tool.into())], true);
}

#[test]
fn the_guides_javascript_commands_work() {
    let installed = root().join("guest-examples/templates/js/node_modules");
    assert!(
        installed.join(".bin/jco").is_file(),
        "jco is not installed: run `./scripts/guest-toolchains.sh`"
    );
    // The jco the template installed from the same lock (checked below), in
    // place of `npm run build`'s own install step.
    let link = format!("ln -s '{}' node_modules", installed.display());
    let skip_install = ("npm_config_ignore_scripts", OsString::from("true"));
    let (_author, dir) = follow_the_guide("js", &[link], &[skip_install], true);
    let jco = |p: &Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("package-lock.json")).unwrap()).unwrap();
        v["packages"]["node_modules/@bytecodealliance/jco"]["version"].clone()
    };
    assert_eq!(jco(&dir), jco(installed.parent().unwrap()));
}

#[test]
fn the_guides_c_commands_work_and_inspect_warns_of_nothing() {
    // `make` finds `tapedeck` on PATH for its last step.
    let (author, dir) = follow_the_guide("c", &[], &[], false);
    let component = dir.join("my-store.wasm");
    let out = author.tapedeck(
        &["provider", "inspect", component.to_str().unwrap()],
        &author.work,
    );
    let shown = cli::text(&cli::exited("provider inspect", out, 0).stdout);
    assert!(
        shown.contains("verdict    accepted") && !shown.contains("warning"),
        "{shown}"
    );
}

#[test]
fn provider_new_says_how_to_build_in_json() {
    let author = Author::new();
    for (lang, build, component) in [
        (
            "rust",
            "cargo build --release",
            "acme/target/wasm32-wasip2/release/acme.wasm",
        ),
        ("python", "./build.sh", "acme/acme.wasm"),
        ("js", "npm run build", "acme/acme.wasm"),
        ("c", "make", "acme/acme.wasm"),
    ] {
        let dir = author.work.join(lang);
        std::fs::create_dir(&dir).unwrap();
        let out = author.tapedeck(&["--json", "provider", "new", "acme", "--lang", lang], &dir);
        let out = cli::exited("provider new --json", out, 0);
        let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(said["build"], build, "{lang}");
        assert_eq!(said["component"], component, "{lang}");
        assert!(
            said["files"].as_array().unwrap().len() > 3,
            "{lang}: {said}"
        );
        assert!(dir.join("acme/README.md").is_file(), "{lang}");
    }
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
