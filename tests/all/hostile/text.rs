//! Attacks through provider text: terminal control sequences and sheer
//! size in what `init` says (name, version), in a tape's digest, in error
//! messages, in a trap's stderr and in answers the host quotes, and an
//! argument to a host call larger than `max-return`
//! (`tests/programs/hostile/src/text.rs`).
//!
//! The library's tests assert the typed error and that its message is safe
//! to print: no control character (ESC, BEL, CR, C1 CSI/OSC) reaches it
//! raw, and it is bounded. The CLI's tests run the `tapedeck` binary
//! (`cargo build -p tapedeck-cli` first, or `cargo test --workspace`) against
//! the hostile provider and assert the same of everything it prints.

use super::{Env, alongside, hostile_env, tapedeck_in};
use std::path::Path;
use std::process::Output;
use tapedeck::error::ProviderError;
use tapedeck::sandbox::{Limits, Protection, ProviderStartError, WasmProvider};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::units::ByteSize;
use tapedeck_tests::artifacts;
use tapedeck_types::{EndReason, ErrorKind, TapeFilter, TapeHeader, TapeSummary};

/// What the guest's escape sequences look like once escaped by the host.
const ESCAPED_ESC: &str = "\\u{1b}";

/// The first character a terminal could act on in `s`, if any: C0 controls
/// but newline and tab, DEL, and the C1 controls (CSI U+009B, OSC U+009D).
fn terminal_control(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
}

/// `msg` can go to a terminal: no control character (not even a newline:
/// a provider message is one line) and at most `max` bytes.
fn assert_safe(msg: &str, max: usize) {
    let bad = msg.chars().find(|c| c.is_control());
    assert!(
        bad.is_none(),
        "raw control character {bad:?} in {:?}",
        &msg[..msg.len().min(600)]
    );
    assert!(
        msg.len() <= max,
        "{} bytes, over {max}: {}…",
        msg.len(),
        &msg[..600.min(msg.len())]
    );
}

/// A header for tape `id`.
fn header(id: &str) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: String::new(),
        name: String::new(),
        tags: Vec::new(),
        created_at_us: 1,
        envelope: None,
    }
}

/// The terminal attack the guest puts in its digests and messages.
fn hostile_digest() -> String {
    "\u{1b}[2J\u{1b}]0;pwned\u{7}\rintegrity verified".to_string()
}

// ---------------------------------------------------------------------------
// The library

// Protection: `check_info` (`sandbox/pool.rs`) on what `init` returns: the
// name lowercase with hyphens, the version semver-like, both at most 64
// bytes; anything else refuses to start the provider, quoting it escaped
// and cut.
#[tokio::test(flavor = "current_thread")]
async fn a_provider_name_or_version_out_of_shape_is_refused_at_start() {
    let env = Env::new().await;
    for (attack, what) in [
        ("escape-name", "provider name"),
        ("huge-name", "provider name"),
        ("bad-name", "provider name"),
        ("escape-version", "version"),
        ("huge-version", "version"),
    ] {
        let spec = env
            .hostile_spec(Limits::default())
            .with_config(serde_json::json!({ "info-attack": attack }));
        let before = env.snapshot();
        let started = alongside(
            &env.healthy,
            WasmProvider::start(&env.sandbox, &spec, &env.root),
        )
        .await;
        env.assert_host_unchanged(&before);
        let e = match started {
            Ok(p) => panic!(
                "{attack}: started, as {:?} {:?}",
                p.provider_info().name,
                p.provider_info().version
            ),
            Err(e) => e,
        };
        assert!(
            matches!(
                e,
                ProviderStartError::Init(ProviderError::Contract { call: "init", .. })
            ),
            "{attack}: {e}"
        );
        let msg = e.to_string();
        assert_safe(&msg, 1024);
        assert!(
            msg.contains(&format!("init returned the {what} `")),
            "{msg}"
        );
        if attack.starts_with("escape") {
            assert!(msg.contains(ESCAPED_ESC), "{attack}: {msg}");
        } else if attack.starts_with("huge") {
            assert!(msg.contains("(1048576 bytes)"), "{attack}: {msg}");
            assert!(msg.contains(" bytes cut)"), "{attack}: {msg}");
        }
    }
    // The same provider saying who it is in the contract's shape starts.
    let p = env.hostile(Limits::default()).await;
    assert_eq!(p.provider_info().name, "hostile");
}

// Protection: `check_digest` (`sandbox/provider.rs`) on every answer that
// carries a tape: a digest is lowercase hex, as the host gave it. Escape
// sequences for `show` to print, non-hex and a mebibyte of hex are each a
// contract violation, quoted escaped and cut.
#[tokio::test(flavor = "current_thread")]
async fn a_digest_that_is_not_lowercase_hex_is_a_contract_violation() {
    let (env, p) = hostile_env().await;
    for id in ["digest-escape", "digest-not-hex", "digest-huge"] {
        let e = env
            .stopped(&p, Protection::ContractViolation, p.get(id))
            .await;
        assert!(
            matches!(e, ProviderError::Contract { call: "get", .. }),
            "{id}: {e}"
        );
        let msg = e.to_string();
        assert_safe(&msg, 1024);
        assert!(
            msg.contains(&format!("returned tape `{id}` with the digest `")),
            "{msg}"
        );
        assert!(msg.contains("which is not lowercase hex"), "{msg}");
    }
}

// Protection: `check_digest` on `list` (each tape of the page) and on
// `finish`'s answer.
#[tokio::test(flavor = "current_thread")]
async fn a_digest_out_of_shape_in_list_or_finish_is_a_contract_violation() {
    let env = Env::new().await;
    // One instance: the tape planted by `get` is still there for `list`.
    let p = env
        .hostile(Limits {
            instances: 1,
            ..Limits::default()
        })
        .await;
    env.run(&p, p.get("plant-digest")).await.unwrap();
    let e = env
        .stopped(
            &p,
            Protection::ContractViolation,
            p.list(&TapeFilter::default(), None, 100),
        )
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "list", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert_safe(&msg, 1024);
    assert!(
        msg.contains("returned tape `planted` with the digest `\\u{1b}[2J"),
        "{msg}"
    );

    // `finish` answers with the digest it was given; one out of shape
    // (here from a careless caller) is refused all the same.
    let e = env
        .stopped(&p, Protection::ContractViolation, async {
            let mut w = p.create(header("finished")).await?;
            let summary = TapeSummary {
                frame_count: 0,
                byte_count: 0,
                ended_at_us: 2,
                digest: Some(hostile_digest()),
                seal: None,
            };
            w.finish(summary, EndReason::Completed).await
        })
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "finish", .. }),
        "{e}"
    );
    assert_safe(&e.to_string(), 1024);
}

// Protection: `error_from_wit` (`sandbox/convert.rs`) escapes a provider's
// error message where it enters the host. A storage error is not a
// violation: the instance is kept.
#[tokio::test(flavor = "current_thread")]
async fn control_characters_in_error_messages_are_escaped() {
    let (env, p) = hostile_env().await;
    let (_, recycled) = p.instance_counts();
    let e = env.run(&p, p.get("error-escape")).await.unwrap_err();
    let ProviderError::Storage { error, .. } = &e else {
        panic!("a storage error: {e}");
    };
    assert_eq!(error.kind, ErrorKind::Io);
    assert_safe(&error.message, 4096);
    assert!(
        error
            .message
            .starts_with("disk on fire\\u{1b}[2J\\u{1b}[H\\u{1b}]0;pwned\\u{7}"),
        "{}",
        error.message
    );
    assert!(error.message.contains("\\u{9b}31m"), "{}", error.message);
    assert_safe(&e.to_string(), 4096 + 100);
    assert_eq!(p.instance_counts().1, recycled, "the instance is kept");
}

// Protection: `error_from_wit` cuts a provider's error message at 4 KiB
// (`text::MAX_ERROR_MESSAGE`), saying how much was cut: 30 MiB, under the
// default `max-return`, used to reach the terminal whole.
#[tokio::test(flavor = "current_thread")]
async fn a_huge_error_message_is_cut_at_4_kib() {
    let (env, p) = hostile_env().await;
    let e = env.run(&p, p.get("error-huge")).await.unwrap_err();
    let ProviderError::Storage { error, .. } = &e else {
        panic!("a storage error: {e}");
    };
    assert_eq!(error.kind, ErrorKind::Internal);
    assert_safe(&error.message, 4096 + 32);
    // 4096 bytes of the message kept, the rest (over 30 MiB) counted.
    let (kept, marker) = error.message.split_once('…').expect("marked cut");
    assert_eq!(kept, "E".repeat(4096));
    let cut: usize = marker
        .strip_prefix(" (")
        .and_then(|m| m.strip_suffix(" bytes cut)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{marker}"));
    assert!(cut > 30 * (1 << 20) - 4096, "{marker}");
}

// Protection: `describe` (`sandbox/pool.rs`) escapes and bounds the guest's
// stderr it quotes to explain a trap; `ProviderLog::emit`
// (`sandbox/log.rs`) escapes every line the guest logs, CR and LF included
// (`tracing`'s formatter lets them through: a provider could overwrite a
// line or forge one).
#[tokio::test(flavor = "current_thread")]
async fn a_trap_explained_by_hostile_stderr_is_escaped() {
    let captured = tapedeck_tests::log_capture::CapturedLog::start();
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::Trap, p.get("panic-escape"))
        .await;
    assert!(matches!(e, ProviderError::Trap { call: "get", .. }), "{e}");
    let msg = e.to_string();
    assert_safe(&msg, 2048 + 100);
    assert!(msg.contains("guest stderr: "), "{msg}");
    assert!(msg.contains(ESCAPED_ESC), "{msg}");
    let log = captured.text();
    let from_guest: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("provider=\"hostile\" source=\"stderr\""))
        .collect();
    assert!(
        from_guest
            .iter()
            .any(|l| l.contains("\\r\\u{9b}31m\\rintegrity verified")),
        "{log}"
    );
    assert_eq!(terminal_control(&log), None, "{log}");
}

// Protection: `SlotGuard::violation` (`sandbox/pool.rs`) escapes and bounds
// every contract-violation message, which may quote the answer (here a tape
// id full of escape sequences).
#[tokio::test(flavor = "current_thread")]
async fn a_contract_violation_quoting_hostile_text_is_escaped() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::ContractViolation, p.get("wrong-id-escape"))
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert_safe(&msg, 1024);
    assert!(
        msg.contains("asked for tape `wrong-id-escape`, answered with tape `other\\u{1b}[2J"),
        "{msg}"
    );
}

// Protection: `max-return` (hostcall fuel) bounds what a provider passes to
// a host call as well as what it returns; `classify` (`sandbox/pool.rs`)
// says which: a 32 MiB `log` message under `max-return = 8MiB` is an
// argument too large, not a result.
#[tokio::test(flavor = "current_thread")]
async fn a_huge_host_call_argument_is_named_as_such() {
    let env = Env::new().await;
    let small = Limits {
        max_return: ByteSize(8 << 20),
        ..Limits::default()
    };
    let p = env.hostile(small).await;
    let e = env
        .stopped(&p, Protection::MaxReturn, p.get("log-huge"))
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(
            "passed more than 8MiB of arguments to a host call (limit `max-return`, \
             which bounds host-call arguments as well as results)"
        ),
        "{msg}"
    );
    assert!(!msg.contains("returned"), "{msg}");
}

// ---------------------------------------------------------------------------
// The command

/// A directory with `t.toml` configuring the hostile provider (`hostile`)
/// with `config`.
fn cli_dir(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.hostile]\ncomponent = {:?}\nconfig = {config}\nlimits = {{ instances = 1 }}\n",
        artifacts::HOSTILE_PROVIDER
    );
    std::fs::write(dir.path().join("t.toml"), toml).unwrap();
    dir
}

/// `tapedeck --config t.toml --provider hostile ARGS` in `dir`.
fn tapedeck(dir: &Path, args: &[&str]) -> Output {
    let args = [&["--config", "t.toml", "--provider", "hostile"], args].concat();
    tapedeck_in(dir).output(&args)
}

/// Neither stdout nor stderr holds a character a terminal acts on, and
/// together they are at most `max` bytes. Returns stderr.
fn assert_terminal_safe(what: &str, out: &Output, max: usize) -> String {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        if let Some(c) = terminal_control(text) {
            panic!(
                "{what}: raw {c:?} on {name}: {:?}",
                &text[..text.len().min(600)]
            );
        }
    }
    let total = out.stdout.len() + out.stderr.len();
    assert!(
        total <= max,
        "{what}: {total} bytes of output, over {max}: {:?}…",
        &stderr[..stderr.len().min(300)]
    );
    stderr.into_owned()
}

// `stats` prints the provider's name and version: a provider whose `init`
// says something out of shape does not start, and the refusal is printed
// escaped and short (a 1 MiB name used to give 1 MiB of output).
#[test]
fn stats_prints_no_hostile_provider_name_or_version() {
    for attack in ["escape-name", "huge-name", "escape-version", "huge-version"] {
        let dir = cli_dir(&format!("{{ info-attack = {attack:?} }}"));
        let out = tapedeck(dir.path(), &["stats"]);
        let stderr = assert_terminal_safe(attack, &out, 2048);
        assert_eq!(out.status.code(), Some(1), "{attack}: {stderr}");
        assert!(
            stderr.contains("broke the contract in `init`: init returned the "),
            "{attack}: {stderr}"
        );
        let json = tapedeck(dir.path(), &["--json", "stats"]);
        assert_terminal_safe(attack, &json, 2048);
    }
}

// `show` prints the digest, and the integrity error repeats it: a digest
// that is not lowercase hex is refused before either.
#[test]
fn show_prints_no_hostile_digest() {
    let dir = cli_dir("{}");
    for id in ["digest-escape", "digest-huge"] {
        for args in [vec!["show", id], vec!["show", id, "--frames"]] {
            let out = tapedeck(dir.path(), &args);
            let stderr = assert_terminal_safe(id, &out, 2048);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("which is not lowercase hex"), "{stderr}");
        }
    }
}

// Every error a provider reports reaches the terminal escaped and cut at
// 4 KiB (30 MiB used to).
#[test]
fn provider_error_messages_reach_the_terminal_escaped_and_cut() {
    let dir = cli_dir("{}");
    let out = tapedeck(dir.path(), &["show", "error-escape"]);
    let stderr = assert_terminal_safe("error-escape", &out, 2048);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("io: disk on fire\\u{1b}[2J\\u{1b}[H\\u{1b}]0;pwned\\u{7}"),
        "{stderr}"
    );
    let out = tapedeck(dir.path(), &["show", "error-huge"]);
    let stderr = assert_terminal_safe("error-huge", &out, 4096 + 512);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(" bytes cut)"), "{stderr}");
    // A trap's explanation, from the guest's stderr.
    let out = tapedeck(dir.path(), &["show", "panic-escape"]);
    let stderr = assert_terminal_safe("panic-escape", &out, 4096);
    assert!(stderr.contains("trapped in `get`"), "{stderr}");
}

// `provider test` prints the name and version too.
#[test]
fn provider_test_prints_no_hostile_provider_info() {
    let dir = tempfile::tempdir().unwrap();
    let out = tapedeck_in(dir.path()).output(&[
        "provider",
        "test",
        "--quick",
        artifacts::HOSTILE_PROVIDER,
        "--config-json",
        r#"{"info-attack": "escape-version"}"#,
    ]);
    let stderr = assert_terminal_safe("provider test", &out, 2048);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("init returned the version `1.0.0\\u{1b}"),
        "{stderr}"
    );
}
