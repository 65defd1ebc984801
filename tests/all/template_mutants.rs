//! Bugs authors really made, injected into copies of the shipped templates
//! (one per language): each built with its own toolchain, then `tapedeck
//! provider test` must fail the case that guards the rule, and print the
//! rule under the failure.
//!
//! * JavaScript: descriptors never disposed (the template's `withFile`
//!   leaks every file it opens): `soak/one-instance`;
//! * Python: `init` ignores settings it does not know:
//!   `init/unknown-setting`;
//! * C: `read-frames` accepts `max-frames` 0: `read/max-frames-zero`;
//! * C: an error message that is a string literal, which the bindings'
//!   post-return code frees (the failure says so, whichever case hits it);
//! * Rust (the skeleton of `provider new`, whose appends go to the end of
//!   the file): `resume` keeps a torn append at the end of the frames file:
//!   `faults/torn-append-then-resume`.
//!
//! Each patch names the exact text it replaces, so a change to a template
//! that removes it fails here (update the patch) instead of testing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use tapedeck_tests::cli;

fn root() -> PathBuf {
    tapedeck_guest_build::workspace_root()
}

/// Copies `src` into `dst`, following symlinks (the templates link `wit/`),
/// without installed packages or build outputs.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if ["node_modules", "target", "__pycache__"].contains(&name.to_str().unwrap()) {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, &dst.join(name));
        } else {
            std::fs::copy(&path, dst.join(name)).unwrap();
        }
    }
}

/// A copy of template `lang` in a scratch directory, with `file`'s `from`
/// replaced by `to`.
fn mutant(lang: &str, file: &str, from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(lang);
    copy_tree(&root().join("guest-examples/templates").join(lang), &dir);
    patch(&dir, file, from, to);
    (tmp, dir)
}

/// Replaces `from` by `to` in `dir/file`, which must contain it.
fn patch(dir: &Path, file: &str, from: &str, to: &str) {
    let lang = dir.display();
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(from),
        "{lang}/{file} no longer contains the code this mutant changes ({from:?}): update the patch"
    );
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// `provider test COMPONENT --filter CASE`: the case fails, and the rule
/// line follows its failure.
fn fails_naming_the_rule(component: &Path, case: &str, rule: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let t = cli::tapedeck(tmp.path(), &crate::cache_dir());
    let out = t.output(&[
        "provider",
        "test",
        component.to_str().unwrap(),
        "--filter",
        case,
    ]);
    let stdout = cli::text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}:\n{stdout}{}",
        cli::text(&out.stderr)
    );
    let failure = stdout
        .lines()
        .skip_while(|l| !l.starts_with(&format!("FAIL {case}")))
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(failure.len(), 2, "{case} did not fail:\n{stdout}");
    assert!(
        failure[1].trim_start().starts_with("rule: ") && failure[1].contains(rule),
        "{case}: the rule line is missing or wrong:\n{stdout}"
    );
    stdout
}

#[test]
fn a_javascript_provider_leaking_descriptors_fails_the_soak() {
    let (tmp, dir) = mutant(
        "js",
        "provider.js",
        "    d[Symbol.dispose]?.();\n",
        "    // (the mutant never disposes the descriptor)\n",
    );
    let installed = root().join("guest-examples/templates/js/node_modules");
    std::os::unix::fs::symlink(&installed, dir.join("node_modules")).unwrap();
    let out = tmp.path().join("js.wasm");
    tapedeck_guest_build::languages::javascript(dir.to_str().unwrap(), &out)
        .unwrap_or_else(|e| panic!("{e}"));
    fails_naming_the_rule(&out, "soak/one-instance", "release what they open");
}

#[test]
fn a_python_provider_ignoring_unknown_settings_fails_init() {
    let (tmp, dir) = mutant(
        "python",
        "tapestore.py",
        "        if unknown:\n",
        "        if False:  # the mutant ignores settings it does not know\n",
    );
    let out = tmp.path().join("python.wasm");
    tapedeck_guest_build::languages::python(dir.to_str().unwrap(), &out)
        .unwrap_or_else(|e| panic!("{e}"));
    fails_naming_the_rule(&out, "init/unknown-setting", "naming the setting");
}

#[test]
fn a_c_provider_accepting_max_frames_zero_fails_the_read_case() {
    let (tmp, dir) = mutant(
        "c",
        "store.c",
        "  if (max_frames == 0)\n",
        "  if (max_frames == 0 && 0) /* the mutant reads anyway */\n",
    );
    let out = tmp.path().join("c.wasm");
    tapedeck_guest_build::languages::c(dir.to_str().unwrap(), &out)
        .unwrap_or_else(|e| panic!("{e}"));
    fails_naming_the_rule(&out, "read/max-frames-zero", "invalid-input");
}

#[test]
fn a_rust_provider_keeping_a_torn_tail_fails_the_fault_case() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("torn");
    tapedeck::scaffold::new_provider(&dir, "torn", tapedeck::scaffold::Language::Rust).unwrap();
    patch(
        &dir,
        "src/store.rs",
        "        if committed < buf.len() {\n",
        "        if false && committed < buf.len() {\n",
    );
    // The same target directory as the Rust skeleton's test: the
    // dependencies compile once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skeleton-rust-target");
    let build = Command::new("cargo")
        .args(["build", "--release", "--locked"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", cli::text(&build.stderr));
    let out = tmp.path().join("rust.wasm");
    std::fs::copy(target.join("wasm32-wasip2/release/torn.wasm"), &out).unwrap();
    fails_naming_the_rule(&out, "faults/torn-append-then-resume", "torn");
}

#[test]
fn a_c_provider_returning_a_string_literal_as_an_error_fails_naming_the_ownership_rule() {
    let (tmp, dir) = mutant(
        "c",
        "store.c",
        "static bool not_found(err_t *err, const char *id) {\n  return fail(err, E_NOT_FOUND, \"no tape \\\"%s\\\"\", id);\n}",
        "static bool not_found(err_t *err, const char *id) {\n  (void)id; /* the mutant returns a literal, which post-return frees */\n  err->tag = E_NOT_FOUND;\n  err->val.not_found.ptr = (uint8_t *)\"no such tape\";\n  err->val.not_found.len = 12;\n  return false;\n}",
    );
    let out = tmp.path().join("c.wasm");
    tapedeck_guest_build::languages::c(dir.to_str().unwrap(), &out)
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = fails_naming_the_rule(&out, "delete/missing", "not-found");
    assert!(
        shown.contains("in the post-return function that frees what the call returned")
            && shown.contains("in C: malloc'ed, never a string literal"),
        "the failure does not name the ownership rule:\n{shown}"
    );
}
