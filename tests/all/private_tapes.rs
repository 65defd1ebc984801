//! Private tapes end to end, with the binary: after `tapedeck keys init`, a
//! recorded MCP session whose tool arguments carry a known secret and a
//! known method and tool name leaves none of them, and no payload in clear,
//! in the fs provider's directory or in PostgreSQL's tables (a throwaway
//! server), while `show` (verified), `export`, `search --method / --tool /
//! --text` and `migrate` to PostgreSQL and back all work; a rotated key
//! keeps old tapes readable; a missing key is an error naming it.

use tapedeck_tests::artifacts;
use tapedeck_tests::cli::{provider_table, text};
use tapedeck_tests::postgres::{self, PgServer};

use crate::{cache_dir, tapedeck_in};
use tapedeck::config::Config;
use tapedeck::sandbox::cache::ComponentCache;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::TapeStore;
use tapedeck::types::{Frame, TapeFilter, TapeInfo};
use tapedeck_tests::all_bytes;

const SECRET: &str = "wire-4711-to-account-DE0000";
const METHOD: &str = "bank/transfer";
const TOOL: &str = "wire_money";

/// Requests naming [`METHOD`] and [`TOOL`], carrying [`SECRET`] (which no
/// redaction rule matches: encryption alone must hide it).
fn session() -> String {
    [
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{METHOD}","params":{{"note":"{SECRET}"}}}}"#),
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"text":"{SECRET}"}}}}}}"#
        ),
    ]
    .map(|l| l + "\n")
    .concat()
}

/// What must not appear in anything a provider stores.
fn clear_texts() -> Vec<String> {
    let mut v: Vec<String> = [SECRET, METHOD, TOOL, "jsonrpc", "tools/call"]
        .map(String::from)
        .to_vec();
    // PostgreSQL shows bytea as hex.
    v.push(to_hex(SECRET));
    v.push(to_hex("jsonrpc"));
    v
}

fn to_hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn assert_nothing_in_clear(what: &str, held: &[u8]) {
    for clear in clear_texts() {
        assert!(
            !held
                .windows(clear.len())
                .any(|w| w.eq_ignore_ascii_case(clear.as_bytes())),
            "{what} holds {clear:?} in clear"
        );
    }
}

/// Every row of every table in `schema`, as JSON text.
/// Every tape provider `name` holds, as it holds them (below the host's
/// codec): info and frames.
fn stored(dir: &std::path::Path, name: &str) -> Vec<(TapeInfo, Vec<Frame>)> {
    tapedeck_tests::block_on(async {
        let config = Config::load(&dir.join("tapedeck.toml")).unwrap();
        let (spec, base) = config.provider_spec(Some(name)).unwrap();
        let sandbox = Sandbox::builder()
            .cache(Some(ComponentCache::at(cache_dir())))
            .build()
            .unwrap();
        let provider = WasmProvider::start(&sandbox, &spec, &base).await.unwrap();
        let page = provider
            .list(&TapeFilter::default(), None, 100)
            .await
            .unwrap();
        let mut tapes = Vec::new();
        for info in page.tapes {
            let frames = provider
                .read_frames(&info.header.id, 0, 10_000, 1 << 30)
                .await
                .unwrap();
            tapes.push((info, frames));
        }
        tapes
    })
}

fn all_rows(pg: &PgServer, schema: &str) -> String {
    let tables = pg
        .psql(&format!(
            "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = '{schema}'"
        ))
        .unwrap();
    assert!(!tables.is_empty(), "no tables in schema {schema}");
    let mut out = String::new();
    for t in tables.split(',') {
        out.push_str(
            &pg.psql(&format!(
                "SELECT coalesce(string_agg(row_to_json(r)::text, E'\\n'), '') FROM \"{schema}\".\"{t}\" r"
            ))
            .unwrap(),
        );
    }
    out
}

#[test]
fn after_keys_init_no_secret_method_or_payload_reaches_storage_and_everything_still_works() {
    let pg = PgServer::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut config = provider_table("fs", "embedded:fs", "tapes", "");
    config.push_str(&provider_table("back", "embedded:fs", "back", ""));
    config.push_str(&format!(
        "[providers.pg]\ncomponent = {:?}\ngrants.network = [{:?}]\nconfig = {{ host = \"127.0.0.1\", \
         port = {}, database = \"postgres\", user = {:?}, password = {:?}, schema = \"private\" }}\n",
        artifacts::POSTGRES_PROVIDER,
        pg.grant(),
        pg.port(),
        postgres::USER,
        pg.password()
    ));
    std::fs::write(dir.join("tapedeck.toml"), config).unwrap();
    let td = tapedeck_in(dir);

    let made = td.ok(&["keys", "init"]);
    assert!(made.contains("made tape key tk-"), "{made}");
    td.expect(&["keys", "init"], 1);
    let first_key = made.split_whitespace().nth(3).unwrap().to_string();
    assert!(td.ok(&["keys", "show"]).contains(&first_key));

    // Recorded into the fs provider: nothing in clear on disk.
    let echo = tapedeck_tests::fixture("echo_server.py");
    let out = td.output_with_input(
        &[
            "record",
            "--name",
            "bank",
            "--",
            "python3",
            echo.to_str().unwrap(),
        ],
        session().as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "the client gets both answers"
    );
    assert_nothing_in_clear(
        "the fs provider's directory",
        &all_bytes(&dir.join("tapes")),
    );

    // Every reader sees the tape as recorded.
    let show = td.ok(&["show", "latest"]);
    assert!(show.contains("verified"), "{show}");
    let export = td.ok(&["export", "latest"]);
    assert!(
        export.contains(SECRET) && export.contains(METHOD),
        "{export}"
    );
    for search in [
        vec!["search", "--method", METHOD],
        vec!["search", "--tool", TOOL],
        vec!["search", "--text", SECRET],
    ] {
        let found = td.ok(&search);
        assert!(found.contains("bank"), "{search:?}: {found}");
    }
    assert!(
        td.ok(&["search", "--text", "not-there"])
            .contains("no tapes")
    );

    // To PostgreSQL and back: nothing in clear in its tables, the same
    // export everywhere, still verified.
    let moved = td.ok(&["migrate", "--from", "fs", "--to", "pg"]);
    assert!(
        moved.contains("1 migrated") && moved.contains("copied as stored"),
        "{moved}"
    );
    assert_nothing_in_clear("PostgreSQL's tables", all_rows(&pg, "private").as_bytes());
    td.ok(&["migrate", "--from", "pg", "--to", "back"]);
    assert_nothing_in_clear(
        "the other fs provider's directory",
        &all_bytes(&dir.join("back")),
    );
    // Copied as stored: the envelope, ciphertext and summary the second fs
    // provider holds are the first one's, byte for byte.
    assert_eq!(stored(dir, "back"), stored(dir, "fs"));
    for provider in ["pg", "back"] {
        assert_eq!(
            td.ok(&["--provider", provider, "export", "latest"]),
            export,
            "{provider}"
        );
        assert!(
            td.ok(&["--provider", provider, "show", "latest"])
                .contains("verified")
        );
    }
    assert!(
        td.ok(&["--provider", "pg", "search", "--tool", TOOL])
            .contains("bank")
    );

    // Recorded straight into PostgreSQL.
    let out = td.output_with_input(
        &[
            "--provider",
            "pg",
            "record",
            "--name",
            "direct",
            "--",
            "python3",
            echo.to_str().unwrap(),
        ],
        session().as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_nothing_in_clear("PostgreSQL's tables", all_rows(&pg, "private").as_bytes());

    // A rotated key: new tapes use it, old ones stay readable.
    let rotated = td.ok(&["keys", "rotate"]);
    assert!(rotated.contains(&first_key), "{rotated}");
    let out = td.output_with_input(
        &[
            "record",
            "--name",
            "after",
            "--",
            "python3",
            echo.to_str().unwrap(),
        ],
        session().as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["bank", "after"] {
        let listed = td.ok(&["list", "--name", name]);
        let id = listed
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert!(td.ok(&["show", &id]).contains("verified"), "{name}");
    }

    // Re-encoded instead: a new data key, other ciphertext, the same tape.
    let moved = td.ok(&["migrate", "--from", "fs", "--to", "back", "--reencode"]);
    assert!(
        moved.contains("1 migrated, 1 skipped") && !moved.contains("copied as stored"),
        "{moved}"
    );
    let (fs, back) = (stored(dir, "fs"), stored(dir, "back"));
    let after = |tapes: &[(TapeInfo, Vec<Frame>)]| {
        tapes
            .iter()
            .find(|(i, _)| i.header.name == "after")
            .cloned()
            .unwrap()
    };
    assert_ne!(after(&fs).1[0].payload, after(&back).1[0].payload);
    assert_eq!(
        td.ok(&["--provider", "back", "export", "latest"]),
        td.ok(&["export", "latest"])
    );

    // Without the key ring: listing works, reading names the missing key.
    std::fs::remove_file(dir.join("data/tapedeck/tape-keys")).unwrap();
    assert!(td.ok(&["list"]).contains("bank"));
    let refused = td.expect(&["show", "latest", "--frames"], 1);
    let why = text(&refused.stderr);
    assert!(
        why.contains("tk-") && why.contains("does not have"),
        "{why}"
    );
}
