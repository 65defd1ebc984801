//! `Deck`, the library's entry point: a session recorded in a few lines,
//! what an earlier process left in the spool recovered when a deck opens,
//! and a provider granted the spool refused, all without the CLI.

use std::ffi::OsString;
use std::path::Path;
use tapedeck::config::Config;
use tapedeck::recorder::{HostEvent, TapeMeta};
use tapedeck::sandbox::ProviderStartError;
use tapedeck::store::TapeStore;
use tapedeck::types::{Direction, TapeFilter, TapeState};
use tapedeck::{Deck, DeckError, HostSeal, SealSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A host key of the test's own in `dir` (not the user's).
fn seal(dir: &Path) -> HostSeal {
    let settings = SealSettings {
        key_file: Some(dir.join("host-key")),
        ..SealSettings::default()
    };
    settings.load().unwrap()
}

/// A deck over `dir/tapes` with its spool in `dir/spool`.
async fn deck(dir: &Path) -> Deck {
    Deck::builder()
        .config(Config::embedded_default())
        .host_seal(seal(dir))
        .tapes_dir(dir.join("tapes"))
        .spool_dir(dir.join("spool"))
        .open()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deck_records_a_session_through_its_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let deck = deck(tmp.path()).await;
    assert!(deck.recovery().recovered.is_empty());
    let (mut client_w, proxy_in) = tokio::io::duplex(4096);
    let (proxy_out, mut client_r) = tokio::io::duplex(4096);
    client_w
        .write_all(b"{\"id\":1}\n{\"id\":2}\n")
        .await
        .unwrap();
    drop(client_w);
    let server: Vec<OsString> = vec!["cat".into()];
    let outcome = deck
        .record(
            &server,
            TapeMeta::named("deck").tag("k", "v"),
            proxy_in,
            proxy_out,
        )
        .await
        .unwrap();
    let mut echoed = Vec::new();
    client_r.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"{\"id\":1}\n{\"id\":2}\n");
    let tape = outcome.tape().expect("stored").clone();
    assert_eq!(tape.state, TapeState::Finished);
    assert_eq!(tape.header.name, "deck");
    assert_eq!(tape.header.tags, [("k".to_string(), "v".to_string())]);
    let frames = deck
        .store()
        .read_frames(&outcome.tape_id, 0, 100, 1 << 20)
        .await
        .unwrap();
    let traffic = frames.iter().filter(|f| HostEvent::of(f).is_none()).count();
    assert_eq!(traffic, 4, "two lines each way");
    // Nothing left in the spool once the provider has the tape.
    let spooled = std::fs::read_dir(tmp.path().join("spool"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .count();
    assert_eq!(spooled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_deck_recovers_what_an_earlier_process_left() {
    let tmp = tempfile::tempdir().unwrap();
    // An earlier "process": its recording is dropped without an end, as
    // when tapedeck is killed; its runtime goes with it.
    let dir = tmp.path().to_path_buf();
    let id = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let id = rt.block_on(async {
            let deck = deck(&dir).await;
            let rec = deck
                .recorder()
                .start(TapeMeta::named("lost"))
                .await
                .unwrap();
            rec.record(Direction::ClientToServer, b"[1]".to_vec());
            rec.record(Direction::ServerToClient, b"[2]".to_vec());
            let id = rec.id().to_string();
            drop(rec);
            id
        });
        drop(rt);
        id
    })
    .join()
    .unwrap();

    let deck = deck(tmp.path()).await;
    let recovered = &deck.recovery().recovered;
    assert_eq!(recovered.len(), 1, "{:?}", deck.recovery().failed);
    assert_eq!(recovered[0].tape.header.id, id);
    let tape = deck.store().get(&id).await.unwrap();
    assert_eq!(tape.state, TapeState::Crashed);
    assert_eq!(tape.frame_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deck_never_starts_a_provider_granted_its_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Deck::builder()
        .config(Config::embedded_default())
        .host_seal(seal(tmp.path()))
        .tapes_dir(tmp.path())
        .spool_dir(tmp.path().join("spool"))
        .open()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            DeckError::Start {
                error: ProviderStartError::Reserved(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("spool directory"), "{e}");
    let page = deck(&tmp.path().join("other"))
        .await
        .store()
        .list(&TapeFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.tapes.is_empty());
}

/// A provider configuration value read from a file is a secret: the
/// provider receives it, but no error (here the fs provider's own message,
/// which quotes its `root`) shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_configuration_never_reaches_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("root.secret"), "/nowhere/hunter2-secret\n").unwrap();
    let file = tmp.path().join("tapedeck.toml");
    std::fs::write(
        &file,
        r#"
provider = "vault"
[providers.vault]
component = "embedded:fs"
config = { root = { file = "root.secret" } }
grants.dirs = [{ host = "tapes", guest = "/tapes", mode = "read-write", create = true }]
"#,
    )
    .unwrap();
    let config = Config::load(&file).unwrap();
    let (spec, _) = config.provider_spec(None).unwrap();
    assert_eq!(spec.config["root"], "/nowhere/hunter2-secret");
    let shown = format!("{spec:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let opened = Deck::builder()
        .config(config)
        .host_seal(seal(tmp.path()))
        .spool_dir(tmp.path().join("spool"))
        .open()
        .await;
    let Err(err) = opened else {
        panic!("the fs provider should refuse a root outside its grants");
    };
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("<secret>"), "{text}");

    // A missing secret is named, with what to do.
    std::fs::write(
        &file,
        "[providers.pg]\ncomponent = \"embedded:fs\"\nconfig = { password = { env = \"TAPEDECK_TEST_UNSET_7c1d\" } }\n",
    )
    .unwrap();
    let err = Config::load(&file)
        .unwrap()
        .provider_spec(Some("pg"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`config.password`") && err.contains("TAPEDECK_TEST_UNSET_7c1d is not set"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deck_redacts_what_it_records_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let line = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"password":"hunter2"}}}"#;
    for (settings, kept) in [
        (None, false),
        (Some(tapedeck::RedactionSettings::off()), true),
    ] {
        let mut builder = Deck::builder()
            .config(Config::embedded_default())
            .host_seal(seal(tmp.path()))
            .tapes_dir(tmp.path().join("tapes"))
            .spool_dir(tmp.path().join("spool"));
        if let Some(s) = settings {
            builder = builder.redaction(s);
        }
        let deck = builder.open().await.unwrap();
        let recording = deck.recorder().start(TapeMeta::named("r")).await.unwrap();
        recording.record(Direction::ClientToServer, line.to_vec());
        let outcome = recording.finish().await.unwrap();
        let frames = deck
            .store()
            .read_frames(&outcome.tape.header.id, 0, 10, 1 << 20)
            .await
            .unwrap();
        let stored = String::from_utf8_lossy(&frames[0].payload).into_owned();
        assert_eq!(stored.contains("hunter2"), kept, "{stored}");
        assert_eq!(stored.contains("[REDACTED:secret:"), !kept, "{stored}");
    }
}
