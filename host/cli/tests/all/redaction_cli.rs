//! Redaction end to end: `tapedeck record` keeps the default preset's
//! secrets (a bearer JWT, an `api_key` argument, a GitHub token) out of
//! everything the provider stores, with one placeholder per secret, while
//! the client gets the server's answers untouched; `--no-redact` records
//! them, `scan` finds them (exit 1) in tapes and JSONL files, and
//! `export --redact` / `import` take them out of an existing tape.

use serde_json::{Value, json};
use std::path::Path;

use crate::tapedeck_in;
use tapedeck_tests::all_bytes;

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YXBlZGVjayJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
const GITHUB: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
const API_KEY: &str = "k3y-that-is-only-a-value";

fn call(id: u64, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "echo", "arguments": arguments}})
    .to_string()
}

/// A session whose arguments and answers carry the three secrets, the
/// GitHub token twice.
fn session() -> String {
    [
        call(
            1,
            json!({"text": format!("token {GITHUB}"), "api_key": API_KEY}),
        ),
        call(
            2,
            json!({"text": format!("Authorization: Bearer {JWT}"), "note": GITHUB}),
        ),
    ]
    .map(|l| l + "\n")
    .concat()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn record(dir: &Path, extra: &[&str]) -> std::process::Output {
    let fixture = tapedeck_tests::fixture("echo_server.py");
    let fixture = fixture.to_str().unwrap();
    let args = [&["record"], extra, &["--", "python3", fixture]].concat();
    let out = tapedeck_in(dir).output_with_input(&args, session().as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_preset_keeps_secrets_out_of_storage_and_scan_export_import_find_and_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Stored uncompressed, so that grepping the provider's files shows what
    // redaction alone keeps out (private_tapes.rs covers compression and
    // encryption).
    let table = tapedeck_tests::cli::provider_table("fs", "embedded:fs", "tapes", "").replacen(
        "\n[[providers",
        "\ncompress = false\n[[providers",
        1,
    );
    std::fs::write(dir.join("tapedeck.toml"), table).unwrap();
    let td = tapedeck_in(dir);

    // Redacted by default; the client still gets the real answers.
    let out = record(dir, &[]);
    let client = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(client.contains(GITHUB) && client.contains(JWT), "{client}");
    let stored = all_bytes(&dir.join("tapes"));
    for secret in [JWT, GITHUB, API_KEY] {
        assert!(!contains(&stored, secret), "{secret} reached the provider");
    }
    let frames: Vec<Value> = td
        .ok(&["--json", "show", "latest", "--frames"])
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let text = serde_json::to_string(&frames).unwrap();
    let placeholders: Vec<&str> = text
        .match_indices("[REDACTED:")
        .map(|(i, _)| {
            let rest = &text[i..];
            &rest[..rest.find(']').unwrap() + 1]
        })
        .collect();
    let github: Vec<&&str> = placeholders
        .iter()
        .filter(|p| p.starts_with("[REDACTED:github-token:"))
        .collect();
    // Twice in the requests, once echoed back: one placeholder.
    assert_eq!(github.len(), 3, "{placeholders:?}");
    assert!(github.iter().all(|p| p == &github[0]), "{placeholders:?}");
    assert!(
        placeholders.iter().any(|p| p.starts_with("[REDACTED:jwt:")),
        "{placeholders:?}"
    );
    assert!(
        placeholders
            .iter()
            .any(|p| p.starts_with("[REDACTED:secret:")),
        "{placeholders:?}"
    );
    let clean = td.expect(&["scan", "latest"], 0);
    assert!(
        String::from_utf8_lossy(&clean.stderr).contains("no secrets found"),
        "{clean:?}"
    );

    // Without redaction the secrets are stored, and scan finds them.
    record(dir, &["--no-redact"]);
    assert!(contains(&all_bytes(&dir.join("tapes")), GITHUB));
    let found = td.expect(&["scan", "latest"], 1);
    let listing = String::from_utf8_lossy(&found.stdout).into_owned();
    assert!(
        listing.contains("github-token") && listing.contains("jwt"),
        "{listing}"
    );
    assert!(
        !listing.contains(GITHUB) && !listing.contains(JWT),
        "a finding shows the secret: {listing}"
    );
    let json: Value =
        serde_json::from_slice(&td.expect(&["--json", "scan", "latest"], 1).stdout).unwrap();
    assert!(json["findings"].as_array().unwrap().len() >= 4, "{json}");
    // Every tape at once: the redacted one is clean, the other is not.
    td.expect(&["scan"], 1);

    // The raw export has them; the redacted export has none, verifies on
    // import and scans clean.
    let raw = dir.join("raw.jsonl");
    let redacted = dir.join("redacted.jsonl");
    td.ok(&["export", "latest", "-o", raw.to_str().unwrap()]);
    td.ok(&[
        "export",
        "latest",
        "--redact",
        "-o",
        redacted.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&redacted).unwrap();
    for secret in [JWT, GITHUB, API_KEY] {
        assert!(contains(&std::fs::read(&raw).unwrap(), secret));
        assert!(!contains(&bytes, secret), "{secret} in the redacted export");
    }
    td.expect(&["scan", raw.to_str().unwrap()], 1);
    td.expect(&["scan", redacted.to_str().unwrap()], 0);
    let imported = td.ok(&["import", "--new-id", redacted.to_str().unwrap()]);
    assert!(!imported.contains("redacted"), "{imported}");
    let id = imported.split_whitespace().nth(2).unwrap().to_string();
    let show = td.ok(&["show", &id]);
    assert!(show.contains("verified"), "{show}");

    // Importing the raw export redacts it on the way in.
    let imported = td.ok(&["import", "--new-id", raw.to_str().unwrap()]);
    assert!(imported.contains("secrets redacted"), "{imported}");
    let id = imported.split_whitespace().nth(2).unwrap().to_string();
    assert!(td.ok(&["show", &id]).contains("verified"));
    td.expect(&["scan", &id], 0);
}
