//! The spool is never granted to a provider: through every command that
//! starts a provider, and through the library entry point.
//!
//! The victim: a spool file another recording left (a secret token in its
//! spooled MCP request). The attacker: a provider granted the spool's
//! parent (read-only, as in the report), the spool itself, a symlink to the
//! parent, or a directory inside the spool. Every start is refused before
//! the provider runs, naming the spool; the victim's file is untouched.
//!
//! Protection: `sandbox::reserved` (checked by `WasmProvider::start`, and
//! by `Spool::open` for providers already running).

use std::path::{Path, PathBuf};
use std::process::Output;
use tapedeck::embedded;
use tapedeck::sandbox::{
    DirGrant, Grants, ProviderSpec, ProviderStartError, Sandbox, WasmProvider,
};
use tapedeck::spool::{ProviderKey, Spool};
use tapedeck::types::TapeHeader;

/// A victim spool file holding a secret, under `dir/state/spool`; returns
/// the spool directory and the file's path and bytes.
fn victim(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let spool_dir = dir.join("state/spool");
    let spool = Spool::open(&spool_dir).unwrap();
    let key = ProviderKey::from_parts("victim", "00".repeat(32));
    let header = TapeHeader {
        id: "victim-tape".into(),
        session_id: "s".into(),
        name: "Authorization: Bearer sk-secret-token".into(),
        tags: Vec::new(),
        created_at_us: 1,
        envelope: None,
    };
    let file = spool.create_file(&key, &header).unwrap();
    let path = file.path().to_path_buf();
    // Keep the file (not released), as a crashed recorder would.
    std::mem::forget(file);
    let bytes = std::fs::read(&path).unwrap();
    (spool_dir, path, bytes)
}

/// A configuration whose provider `evil` (the embedded fs provider) is
/// granted `host` read-only at `/evil` and its own tapes read-write.
fn evil_config(dir: &Path, host: &Path) -> PathBuf {
    let tapes = dir.join("evil-tapes");
    let config = format!(
        r#"provider = "evil"
[providers.evil]
component = "embedded:fs"
config = {{ root = "/tapes" }}
[[providers.evil.grants.dirs]]
host = {tapes:?}
guest = "/tapes"
mode = "read-write"
create = true
[[providers.evil.grants.dirs]]
host = {host:?}
guest = "/evil"
mode = "read-only"
[providers.good]
component = "embedded:fs"
config = {{ root = "/tapes" }}
[[providers.good.grants.dirs]]
host = {good:?}
guest = "/tapes"
mode = "read-write"
create = true
"#,
        good = dir.join("good-tapes"),
    );
    let path = dir.join("evil.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn run(dir: &Path, spool_dir: &Path, args: &[&str]) -> Output {
    super::tapedeck_in(dir)
        .env("TAPEDECK_SPOOL_DIR", spool_dir)
        .output(args)
}

/// Every command that starts a provider refuses the one granted (around)
/// the spool, before it runs.
#[test]
fn no_command_starts_a_provider_granted_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (spool_dir, victim_file, victim_bytes) = victim(dir);
    let link = dir.join("link-to-state");
    std::os::unix::fs::symlink(spool_dir.parent().unwrap(), &link).unwrap();
    let jsonl = dir.join("one.jsonl");
    let header = TapeHeader {
        id: "t1".into(),
        session_id: "s".into(),
        name: String::new(),
        tags: Vec::new(),
        created_at_us: 1,
        envelope: None,
    };
    let w = tapedeck::jsonl::JsonlWriter::new(Vec::new(), &header).unwrap();
    let summary = tapedeck::types::TapeSummary {
        frame_count: 0,
        byte_count: 0,
        ended_at_us: 2,
        digest: None,
        seal: None,
    };
    let bytes = w
        .finish(tapedeck::types::TapeState::Finished, &summary)
        .unwrap();
    std::fs::write(&jsonl, bytes).unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats"],
        vec!["list"],
        vec!["list", "--all"],
        vec!["show", "latest"],
        vec!["search", "--text", "x"],
        vec!["export", "latest"],
        vec!["import", jsonl.to_str().unwrap()],
        vec!["delete", "latest"],
        vec!["migrate", "--from", "evil", "--to", "good"],
        vec!["migrate", "--from", "good", "--to", "evil"],
        vec!["recover"],
        vec!["provider", "test", "--quick"],
        vec!["record", "--", "cat"],
    ];
    for grant in [
        spool_dir.parent().unwrap().to_path_buf(),
        spool_dir.clone(),
        link.clone(),
        spool_dir.join("inside"),
    ] {
        let config = evil_config(dir, &grant);
        for args in &commands {
            let mut all = vec!["--config", config.to_str().unwrap()];
            all.extend(args.iter().copied());
            let out = run(dir, &spool_dir, &all);
            let stderr = String::from_utf8_lossy(&out.stderr);
            // `recover` starts only providers with something to recover,
            // and the victim's key is nobody's: it has nothing to start.
            if args[0] == "recover" {
                assert!(
                    !stderr.contains("sk-secret-token"),
                    "{args:?} with {}: {stderr}",
                    grant.display()
                );
                continue;
            }
            assert!(
                !out.status.success(),
                "{args:?} started a provider granted {}:\n{stderr}",
                grant.display()
            );
            assert!(
                stderr.contains("spool directory") && stderr.contains("must never see it"),
                "{args:?} with {}: {stderr}",
                grant.display()
            );
        }
        assert_eq!(
            std::fs::read(&victim_file).unwrap(),
            victim_bytes,
            "the victim's spool file changed"
        );
        assert!(
            !dir.join("evil-tapes").exists(),
            "the provider was set up (its grant created)"
        );
    }
}

/// `recover` starts the providers that have spooled tapes: one granted the
/// spool is refused there too.
#[test]
fn recover_does_not_start_a_provider_granted_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spool_dir = dir.join("state/spool");
    let config = evil_config(dir, spool_dir.parent().unwrap());
    // A tape of `evil` waits in the spool: what `recover` would deliver.
    let c = tapedeck::config::Config::discover(Some(&config)).unwrap();
    let (spec, base) = c.provider_spec(Some("evil")).unwrap();
    let spool = Spool::open(&spool_dir).unwrap();
    let header = TapeHeader {
        id: "waiting".into(),
        session_id: "s".into(),
        name: String::new(),
        tags: Vec::new(),
        created_at_us: 1,
        envelope: None,
    };
    std::mem::forget(
        spool
            .create_file(&tapedeck::spool::provider_key(&spec, &base), &header)
            .unwrap(),
    );
    let out = run(
        dir,
        &spool_dir,
        &["--config", config.to_str().unwrap(), "recover"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("must never see it"), "{stderr}");
}

fn spec_granting(name: &str, host: &Path, tapes: &Path) -> ProviderSpec {
    ProviderSpec::new(name, embedded::fs_provider_source())
        .with_config(serde_json::json!({ "root": "/tapes" }))
        .with_grants(Grants {
            dirs: vec![
                DirGrant::read_write(tapes, "/tapes"),
                DirGrant::read_only(host, "/evil"),
            ],
            ..Grants::default()
        })
}

/// A program embedding the library cannot skip the rule: starting a
/// provider granted an open spool (or the default spool's parent) fails,
/// and opening a spool a running provider is granted fails.
#[tokio::test(flavor = "current_thread")]
async fn the_library_refuses_a_provider_granted_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sandbox = Sandbox::new().unwrap();
    let (spool_dir, victim_file, victim_bytes) = victim(dir);
    let tapes = dir.join("t");

    let e = WasmProvider::start(
        &sandbox,
        &spec_granting("evil", spool_dir.parent().unwrap(), &tapes),
        dir,
    )
    .await
    .err()
    .expect("refused");
    assert!(matches!(e, ProviderStartError::Reserved(_)), "{e:?}");
    assert!(e.to_string().contains("spool directory"), "{e}");

    // The default spool (another tapedeck's), whether or not this process
    // opened it.
    let default = Spool::default_dir();
    let e = WasmProvider::start(
        &sandbox,
        &spec_granting("home", default.parent().unwrap(), &tapes),
        dir,
    )
    .await
    .err()
    .expect("refused");
    assert!(matches!(e, ProviderStartError::Reserved(_)), "{e:?}");

    // The other order: a running provider, then a spool inside its grant.
    let early_dir = dir.join("early");
    std::fs::create_dir_all(&early_dir).unwrap();
    let early = WasmProvider::start(&sandbox, &spec_granting("early", &early_dir, &tapes), dir)
        .await
        .unwrap();
    let e = Spool::open(early_dir.join("spool")).unwrap_err();
    assert!(e.to_string().contains("early"), "{e}");
    drop(early);
    Spool::open(early_dir.join("spool")).expect("free once the provider is gone");

    assert_eq!(std::fs::read(&victim_file).unwrap(), victim_bytes);
}
