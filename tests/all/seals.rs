//! Sealed tapes against a provider that forges them, end to end: tapes
//! imported into the embedded fs provider in `./a` are sealed by the host;
//! the `faulty` provider over the same directory then lies about them in
//! the ways a provider with the storage could — a frame rewritten with the
//! digest chain and the stored digest recomputed (`rechain`), two tapes'
//! contents swapped (`swap`), a header edited (`header`), the seal dropped
//! (`unseal`) — and `show`, `export`, `migrate` and the library's
//! `load_tape` each refuse the tape, naming it, the provider and what
//! disagrees. A tape that never had a seal is shown as unsealed, never as
//! verified; `migrate` copies it only when asked; `[seals] require`
//! refuses it. A sealed export imported on another host keeps its seal
//! there when that host trusts the sealing one.

use serde_json::Value;
use std::path::{Path, PathBuf};
use tapedeck::SealSettings;
use tapedeck::config::Config;
use tapedeck::read::{Mismatch, ReadError, load_tape};
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::TapeStore;
use tapedeck::store::codec::CodecSettings;
use tapedeck::store::seal::SealError;
use tapedeck::types::{Direction, EndReason, Frame, TapeHeader};
use tapedeck_tests::artifacts;
use tapedeck_tests::block_on;
use tapedeck_tests::cli::{error_lines, provider_table, text};
use tapedeck_tests::tape::{T0, Tape};

use crate::{cache_dir, tapedeck_in};

/// The attacks: a provider name and its `tamper` setting.
const ATTACKS: [(&str, &str); 4] = [
    ("rechain", r#"{ mode = "rechain", frame = 2 }"#),
    ("swap", r#"{ mode = "swap", tapes = ["t-one", "t-two"] }"#),
    ("header", r#"{ mode = "header" }"#),
    ("unseal", r#"{ mode = "unseal" }"#),
];

/// A working directory whose `tapedeck.toml` configures `a` and `b` (the
/// embedded fs provider in `./a`, `./b`), one faulty provider per attack
/// over `./a`, and `extra`.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(extra: &str) -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = String::from(extra);
        config.push('\n');
        // Stored as recorded (`compress = false`): the tampering provider
        // rewrites plaintext, as a provider holding unencrypted tapes can.
        let plain =
            |table: String| table.replacen("\n[[providers", "\ncompress = false\n[[providers", 1);
        for p in ["a", "b", "c"] {
            config.push_str(&plain(provider_table(p, "embedded:fs", p, "")));
        }
        for (name, tamper) in ATTACKS {
            let tamper = format!(", tamper = {tamper}");
            config.push_str(&plain(provider_table(
                name,
                artifacts::FAULTY_PROVIDER,
                "a",
                &tamper,
            )));
        }
        std::fs::write(tmp.path().join("tapedeck.toml"), config).unwrap();
        Dir { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs, expects exit `code`; returns stdout and stderr.
    fn expect(&self, args: &[&str], code: i32) -> (String, String) {
        let out = tapedeck_in(self.path()).expect(args, code);
        (text(&out.stdout), text(&out.stderr))
    }

    fn ok(&self, args: &[&str]) -> String {
        self.expect(args, 0).0
    }

    /// The host key file the isolated binary uses (its data directory).
    fn key_file(&self) -> PathBuf {
        self.path().join("data/tapedeck/host-key")
    }

    /// `keys show --json`'s host key.
    fn host_key(&self) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["keys", "show", "--json"])).unwrap();
        assert_eq!(v["key_file"], self.key_file().display().to_string());
        v["host_key"].as_str().unwrap().to_string()
    }

    /// The configured provider `name`, started without the CLI.
    async fn provider(&self, name: &str) -> WasmProvider {
        let config = Config::load(&self.path().join("tapedeck.toml")).unwrap();
        let (spec, base) = config.provider_spec(Some(name)).unwrap();
        let sandbox = Sandbox::builder()
            .cache(Some(ComponentCache::at(cache_dir())))
            .build()
            .unwrap();
        WasmProvider::start(&sandbox, &spec, &base).await.unwrap()
    }
}

/// A finished tape of `n` JSON frames, "transfer 100" in each.
fn tape(id: &str, n: u64, created: u64) -> Tape {
    let frames = (0..n)
        .map(|seq| {
            let payload =
                format!(r#"{{"jsonrpc":"2.0","id":{seq},"method":"transfer","params":[100]}}"#);
            let dir = if seq % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            let mut f = Frame::new(seq, created + 100 * seq, dir, payload.into_bytes(), false);
            f.terms = tapedeck::types::terms::payload_terms(&f.payload);
            f
        })
        .collect();
    let header = TapeHeader {
        id: id.into(),
        session_id: format!("session of {id}"),
        name: format!("tape {id}"),
        tags: vec![("team".into(), "payments".into())],
        created_at_us: created,
        envelope: None,
    };
    Tape::new(header, frames, 60_000_000)
}

#[test]
fn every_forgery_is_caught_by_show_export_migrate_and_load_tape() {
    let dir = Dir::new("");
    tapedeck_in(dir.path()).import(
        &["--provider", "a"],
        &[tape("t-one", 5, T0), tape("t-two", 4, T0 + 1)],
    );
    let key = dir.host_key();
    for id in ["t-one", "t-two"] {
        let out = dir.ok(&["--provider", "a", "show", id]);
        assert!(
            out.contains(&format!("verified (sealed by {key}, sha256 chain over ")),
            "{out}"
        );
    }
    let show: Value =
        serde_json::from_str(&dir.ok(&["--provider", "a", "--json", "show", "t-one"])).unwrap();
    assert_eq!(show["integrity"]["status"], "verified");
    assert_eq!(show["integrity"]["sealed_by"], key.as_str());

    // What each attack breaks, in the words of the error.
    let expected = [
        ("rechain", "differ from what"),
        ("swap", "differ from what"),
        ("header", "differ from what"),
        ("unseal", "the seal was removed"),
    ];
    for (attack, says) in expected {
        let prefix = format!(
            "error: tape t-one: integrity check failed: the seal of the tape provider {attack} returned does not vouch for it: "
        );
        let (_, err) = dir.expect(&["--provider", attack, "show", "t-one"], 1);
        let err = error_lines(&err);
        assert!(
            err.starts_with(&prefix) && err.contains(says),
            "{attack}: {err}"
        );

        let (out, err) = dir.expect(&["--provider", attack, "export", "t-one"], 1);
        assert!(error_lines(&err).starts_with(&prefix), "{attack}: {err}");
        assert!(
            !out.contains(r#""seq":0"#),
            "{attack}: export wrote frames of a tape it refused: {out}"
        );
        let file = dir.path().join(format!("{attack}.jsonl"));
        let file_arg = file.to_str().unwrap();
        let (_, err) = dir.expect(
            &["--provider", attack, "export", "t-one", "-o", file_arg],
            1,
        );
        assert!(error_lines(&err).starts_with(&prefix), "{attack}: {err}");
        assert!(!file.exists(), "{attack}: the refused export was committed");

        let (_, err) = dir.expect(
            &["migrate", "--from", attack, "--to", "b", "--tape", "t-one"],
            1,
        );
        assert!(error_lines(&err).starts_with(&prefix), "{attack}: {err}");
        let listed: Value =
            serde_json::from_str(&dir.ok(&["--provider", "b", "list", "--json"])).unwrap();
        assert_eq!(listed, serde_json::json!([]), "{attack}: a copy was made");
    }

    // The library: `load_tape` through the host's seal.
    let seal = SealSettings {
        key_file: Some(dir.key_file()),
        ..SealSettings::default()
    }
    .load()
    .unwrap();
    assert_eq!(seal.public().to_string(), key);
    block_on(async {
        let honest = seal.store(dir.provider("a").await, CodecSettings::plain(None));
        let loaded = load_tape(&honest, "t-one").await.unwrap();
        assert!(
            loaded.verification.is_verified(),
            "{:?}",
            loaded.verification
        );
        for (attack, _) in ATTACKS {
            let store = seal.store(dir.provider(attack).await, CodecSettings::plain(None));
            for id in ["t-one", "t-two"] {
                match load_tape(&store, id).await {
                    Err(ReadError::Integrity(e)) => {
                        assert_eq!(e.tape, id);
                        // Named as it names itself at `init`.
                        assert_eq!(e.provider, "faulty");
                        let Mismatch::Seal(seal) = &e.mismatch else {
                            panic!("{attack}: {e}")
                        };
                        let removed = matches!(seal, SealError::Removed { .. });
                        assert_eq!(removed, attack == "unseal", "{attack}: {e}");
                    }
                    other => panic!("{attack} {id}: {other:?}"),
                }
            }
            // Without the seal layer, the rewritten tape passes the
            // digest check: the seal is what catches it.
            if attack == "rechain" {
                let raw = dir.provider(attack).await;
                let loaded = load_tape(&raw, "t-one").await.unwrap();
                assert!(!loaded.verification.is_verified());
                let original = &tape("t-one", 5, T0).frames[2];
                assert_ne!(loaded.frames[2].payload, original.payload);
                assert_eq!(loaded.frames[2].payload.len(), original.payload.len());
            }
        }
    });
}

#[test]
fn a_tape_without_a_seal_is_unsealed_never_verified() {
    let dir = Dir::new("");
    // Stored behind the host's back (as by a tapedeck before seals).
    let old = tape("t-old", 3, T0);
    block_on(async {
        let a = dir.provider("a").await;
        a.save(
            old.header.clone(),
            &old.frames,
            old.summary(),
            EndReason::Completed,
        )
        .await
        .unwrap();
    });
    let out = dir.ok(&["--provider", "a", "show", "t-old"]);
    assert!(out.contains("not verified: unsealed"), "{out}");
    let export: Value = serde_json::from_str(
        dir.ok(&[
            "--provider",
            "a",
            "--json",
            "export",
            "t-old",
            "-o",
            "old.jsonl",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(export["integrity"]["status"], "unsealed");
    assert_eq!(export["integrity"]["verified"], false);

    // Migrate refuses to copy it unless asked; copied as stored it stays
    // unsealed, re-encoded it is sealed by this host.
    let (_, err) = dir.expect(&["migrate", "--from", "a", "--to", "b"], 1);
    assert!(
        error_lines(&err).starts_with(
            "error: tape t-old: provider a holds it without a seal, so nothing vouches for its frames"
        ),
        "{err}"
    );
    dir.ok(&["migrate", "--from", "a", "--to", "b", "--allow-unsealed"]);
    let out = dir.ok(&["--provider", "b", "show", "t-old"]);
    assert!(out.contains("not verified: unsealed"), "{out}");
    dir.ok(&[
        "migrate",
        "--from",
        "a",
        "--to",
        "c",
        "--allow-unsealed",
        "--reencode",
    ]);
    let out = dir.ok(&["--provider", "c", "show", "t-old"]);
    assert!(
        out.contains(&format!("verified (sealed by {}", dir.host_key())),
        "{out}"
    );

    // Where seals are required, it is refused.
    let strict = Dir::new("[seals]\nrequire = true\n");
    std::fs::create_dir_all(strict.path().join("a")).unwrap();
    copy_dir(&dir.path().join("a"), &strict.path().join("a"));
    let (_, err) = strict.expect(&["--provider", "a", "show", "t-old"], 1);
    assert!(
        error_lines(&err).contains("the tape carries no seal, and this host requires one"),
        "{err}"
    );
}

#[test]
fn a_sealed_export_keeps_its_seal_on_a_host_that_trusts_the_sealer() {
    let first = Dir::new("");
    tapedeck_in(first.path()).import(&["--provider", "a"], &[tape("t-one", 3, T0)]);
    let first_key = first.host_key();
    first.ok(&["--provider", "a", "export", "t-one", "-o", "one.jsonl"]);
    let file = first.path().join("one.jsonl");
    let file = file.to_str().unwrap();

    let trusting = Dir::new(&format!("[seals]\ntrusted-hosts = [\"{first_key}\"]\n"));
    assert_ne!(trusting.host_key(), first_key);
    trusting.ok(&["--provider", "a", "import", file]);
    let out = trusting.ok(&["--provider", "a", "show", "t-one"]);
    assert!(
        out.contains(&format!("verified (sealed by {first_key}")),
        "{out}"
    );

    // A host that does not trust it seals the import itself.
    let other = Dir::new("");
    other.ok(&["--provider", "a", "import", file]);
    let out = other.ok(&["--provider", "a", "show", "t-one"]);
    assert!(
        out.contains(&format!("verified (sealed by {}", other.host_key())),
        "{out}"
    );
    // And sees the first host's tapes, read directly, as untrusted.
    copy_dir(&first.path().join("a"), &other.path().join("b"));
    let (_, err) = other.expect(&["--provider", "b", "show", "t-one"], 1);
    assert!(
        error_lines(&err).contains(&format!(
            "the tape is sealed by {first_key}, which is not a trusted host key"
        )),
        "{err}"
    );
}

/// Copies the files under `from` into `to` (created).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
