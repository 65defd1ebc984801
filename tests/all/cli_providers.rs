//! The `tapedeck` binary against the test providers built from source:
//! `provider test` fails a provider that breaks the contract with readable
//! reasons, and components built against another major WIT version or with
//! the wrong shape are refused with a clear error.
//!
//! The binary is the one cargo built next to this test
//! (`<target>/<profile>/tapedeck`); `cargo test --workspace` builds it.

use std::path::Path;
use std::process::Output;
use tapedeck_tests::artifacts;
use tapedeck_tests::cli::text;

fn run(dir: &Path, args: &[&str]) -> Output {
    // Compiled components are cached under the target directory.
    crate::tapedeck_in(dir).output(args)
}

#[test]
fn provider_test_fails_a_provider_that_breaks_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    // One instance, so its in-memory tapes persist between calls and the
    // failures are the ones it was written to have.
    let config = format!(
        "[providers.bad]\ncomponent = {:?}\nlimits = {{ instances = 1 }}\n",
        artifacts::MISBEHAVING_PROVIDER
    );
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = run(
        dir.path(),
        &[
            "--config",
            "bad.toml",
            "--provider",
            "bad",
            "provider",
            "test",
            "--quick",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let line = |case: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(case))
            .unwrap_or_else(|| panic!("no line for {case}:\n{stdout}"))
            .to_string()
    };
    let idem = line("write/append-idempotent");
    assert!(
        idem.starts_with("FAIL") && idem.contains("broke the contract in `append`"),
        "{idem}"
    );
    // Under each failure, the rule it breaks, in one line.
    let rule = stdout
        .lines()
        .skip_while(|l| *l != idem)
        .nth(1)
        .unwrap_or_default();
    assert!(
        rule.starts_with("     rule: append: frames below next-seq are redelivered copies"),
        "{rule}"
    );
    let ids = line("errors/invalid-ids");
    assert!(
        ids.starts_with("FAIL") && ids.contains("invalid-input"),
        "{ids}"
    );
    let filter = line("list/filter-name");
    assert!(filter.contains("does not match the filter"), "{filter}");
    // Undeclared capabilities are skipped, not failed.
    assert!(line("search/method").starts_with("SKIP"));
    let summary = stdout.lines().find(|l| l.contains(" passed, ")).unwrap();
    assert!(
        summary.contains(" failed") && !summary.contains(" 0 failed"),
        "{summary}"
    );
    // The host's answer checks caught it lying.
    let tripped = stdout.lines().last().unwrap();
    assert!(
        tripped.starts_with("protections tripped: ") && tripped.contains("contract-violation ×"),
        "{tripped}"
    );
}

#[test]
fn provider_test_reports_the_protections_a_provider_tripped() {
    let dir = tempfile::tempdir().unwrap();
    // Every call panics.
    let out = run(
        dir.path(),
        &[
            "provider",
            "test",
            "--quick",
            artifacts::HOSTILE_PROVIDER,
            "--config-json",
            r#"{"always": "panic"}"#,
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let tripped = stdout.lines().last().unwrap();
    let traps = tripped
        .strip_prefix("protections tripped: trap ×")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(traps.parse::<u64>().unwrap() > 10, "{tripped}");

    // Every call allocates past a 4 MiB memory limit; in JSON, after the
    // cases.
    let config = format!(
        "[providers.bomb]\ncomponent = {:?}\nconfig = {{ always = \"memory-bomb\" }}\n\
         limits = {{ memory = \"4MiB\" }}\n",
        artifacts::HOSTILE_PROVIDER
    );
    std::fs::write(dir.path().join("bomb.toml"), config).unwrap();
    let out = run(
        dir.path(),
        &[
            "--config",
            "bomb.toml",
            "--provider",
            "bomb",
            "--json",
            "provider",
            "test",
            "--quick",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{}", text(&out.stderr)));
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert!(last["summary"]["failed"].as_u64().unwrap() > 0, "{last}");
    let protections = last["protections"].as_object().unwrap();
    assert_eq!(
        protections.keys().collect::<Vec<_>>(),
        ["memory-limit"],
        "{last}"
    );
    assert!(protections["memory-limit"].as_u64().unwrap() > 10, "{last}");
}

#[test]
fn a_component_of_another_major_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = artifacts::WRONG_VERSION_PROVIDER;

    let out = run(dir.path(), &["provider", "inspect", path]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("world      tapedeck:storage/provider@1.0.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("version 1.0.0 is not supported"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict    refused"), "{stdout}");

    let out = run(dir.path(), &["provider", "test", "--quick", path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tape-storage@1.0.0") && stderr.contains("speaks version 0.2.0"),
        "{stderr}"
    );
}

#[test]
fn a_component_with_the_wrong_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "provider",
            "inspect",
            "--json",
            artifacts::WRONG_SHAPE_PROVIDER,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accepted"], false);
    assert_eq!(v["version_supported"], true);
    let why = v["refused"].as_str().unwrap();
    assert!(why.contains("does not match the contract"), "{why}");
}

#[test]
fn commands_say_which_capability_a_provider_lacks() {
    let dir = tempfile::tempdir().unwrap();
    // Uncompressed: a text search is the provider's to answer (over
    // compressed tapes the host answers it, without the capability).
    let config = format!(
        "provider = \"bad\"\n[providers.bad]\ncomponent = {:?}\ncompress = false\n",
        artifacts::MISBEHAVING_PROVIDER
    );
    std::fs::write(dir.path().join("tapedeck.toml"), config).unwrap();
    for (args, capability) in [
        (&["delete", "some-tape"][..], "`delete`"),
        (&["search", "--method", "tools/call"][..], "`search`"),
        (&["search", "--text", "x"][..], "`text-search`"),
    ] {
        let out = run(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("does not declare the {capability} capability")),
            "{args:?}: {stderr}"
        );
    }
    // Header-only searches work without the capability (they are listings).
    let out = run(dir.path(), &["search", "--session", "s", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "[]");
}

/// `tapedeck provider test` passes the providers written in other languages
/// (quick mode: the library test runs the large cases), as a provider author
/// would check them.
#[test]
fn provider_test_passes_the_providers_in_other_languages() {
    for (name, artifact) in artifacts::OTHER_LANGUAGES {
        let path =
            artifact.unwrap_or_else(|why| panic!("the {name} provider was not built: {why}"));
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), &["provider", "test", path, "--quick"]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: provider test failed:\n{stdout}\n{}",
            text(&out.stderr)
        );
        assert!(stdout.contains(", 0 failed,"), "{name}:\n{stdout}");
        assert!(!stdout.contains("FAIL "), "{name}:\n{stdout}");
    }
}
