use super::*;
use crate::sandbox::DirMode;
use crate::units::{ByteSize, Millis};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/td/tapedeck.toml"))
}

fn parse_err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_example_file_parses_and_shows_every_default() {
    let example = include_str!("../../../../tapedeck.example.toml");
    // The example's secret reads a variable the test does not set: the
    // provider cannot start, and the error says which variable.
    let secret = "api-token = { env = \"ARCHIVE_TOKEN\" }\n";
    assert!(example.contains(secret));
    let c = Config::parse(example, Path::new("tapedeck.example.toml")).unwrap();
    assert_eq!(
        c.providers["archive"].config["api-token"],
        serde_json::json!({"env": "ARCHIVE_TOKEN"})
    );
    let err = c.provider_spec(Some("archive")).unwrap_err().to_string();
    assert!(
        err.contains("`config.api-token`: environment variable ARCHIVE_TOKEN is not set"),
        "{err}"
    );
    let text = &example.replace(secret, "");
    let c = Config::parse(text, Path::new("tapedeck.example.toml")).unwrap();
    assert_eq!(c.provider, "fs");
    assert_eq!(c.provider_names(), ["archive", "fs"]);
    // The fs table is exactly what tapedeck defines implicitly.
    assert_eq!(c.providers["fs"], embedded_fs(PathBuf::from("tapes")));
    let archive = &c.providers["archive"];
    assert_eq!(
        archive.limits,
        Limits::default(),
        "every limit at its default"
    );
    assert_eq!(c.recorder, RecorderOptions::default());
    let modes: Vec<DirMode> = archive.grants.dirs.iter().map(|g| g.mode).collect();
    assert_eq!(modes, [DirMode::ReadOnly, DirMode::ReadWrite]);
    assert_eq!(archive.grants.network, ["https://archive.example.com"]);
    assert_eq!(
        archive.config,
        serde_json::json!({"root": "/data", "templates": "/templates"})
    );
    assert!(archive.compress && archive.encrypt);
    assert_eq!(c.redaction, crate::RedactionSettings::default());
    assert_eq!(
        c.encryption,
        crate::encryption::EncryptionSettings::default()
    );
    let (spec, base) = c.provider_spec(Some("archive")).unwrap();
    assert_eq!(base, PathBuf::from("."));
    match spec.component {
        ComponentSource::File(p) => assert_eq!(p, Path::new("./providers/archive-provider.wasm")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_file_is_the_embedded_default_next_to_the_file() {
    let c = parse("").unwrap();
    assert_eq!(c.provider, "fs");
    assert_eq!(c.base_dir, Path::new("/etc/td"));
    let (spec, base) = c.provider_spec(None).unwrap();
    assert_eq!(spec.name, "fs");
    assert!(matches!(spec.component, ComponentSource::Bytes { .. }));
    assert_eq!(spec.config, serde_json::json!({"root": "/tapes"}));
    // /etc/td/tapes does not exist: the user's data directory.
    assert_eq!(
        spec.grants.dirs[0].host,
        embedded::default_tapes_dir(Path::new("/etc/td"))
    );
    assert_eq!(base, Path::new("/etc/td"));
    let d = Config::embedded_default();
    assert_eq!(d.base_dir, Path::new("."));
}

#[test]
fn the_default_tapes_dir_is_a_local_tapes_dir_else_the_users_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let fallback = embedded::default_tapes_dir(tmp.path());
    if std::env::var_os("HOME").is_some() {
        assert!(fallback.is_absolute(), "{}", fallback.display());
        assert!(
            fallback.ends_with("tapedeck/tapes"),
            "{}",
            fallback.display()
        );
    }
    std::fs::create_dir(tmp.path().join("tapes")).unwrap();
    assert_eq!(embedded::default_tapes_dir(tmp.path()), Path::new("tapes"));
    let c = Config::parse("", &tmp.path().join("tapedeck.toml")).unwrap();
    let (spec, base) = c.provider_spec(None).unwrap();
    assert_eq!(
        base.join(&spec.grants.dirs[0].host),
        tmp.path().join("tapes")
    );
}

#[test]
fn unknown_keys_are_refused_with_name_line_and_file() {
    let e = parse("provider = \"fs\"\nbogus = 1\n");
    match &e {
        Err(ConfigError::Parse { line, message, .. }) => {
            assert_eq!(*line, Some(2));
            assert!(message.contains("bogus"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("/etc/td/tapedeck.toml"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
    assert!(msg.contains("bogus"), "{msg}");

    // Nested tables: a provider key, a grant key, a limit, a recorder key.
    let cases = [
        (
            "[providers.x]\ncomponent = \"x.wasm\"\ncolour = \"red\"\n",
            "colour",
            3,
        ),
        (
            "[providers.x]\ncomponent = \"x.wasm\"\n[[providers.x.grants.dirs]]\nhost = \"a\"\nguest = \"/a\"\nmode = \"ro\"\nwritable = true\n",
            "writable",
            7,
        ),
        (
            "[providers.x]\ncomponent = \"x.wasm\"\n\n[providers.x.limits]\nmemroy = \"1GiB\"\n",
            "memroy",
            5,
        ),
        (
            "[recorder]\nbatch-frames = 3\nbatch-size = 4\n",
            "batch-size",
            3,
        ),
        (
            "[providers.x]\ncomponent = \"x.wasm\"\ngrants = { files = [] }\n",
            "files",
            3,
        ),
    ];
    for (text, key, line) in cases {
        let msg = parse_err(text);
        assert!(msg.contains(key), "{key}: {msg}");
        assert!(msg.contains(&format!("line {line}")), "{key}: {msg}");
    }
}

#[test]
fn bad_values_name_what_is_wrong() {
    let m =
        parse_err("[providers.x]\ncomponent = \"x.wasm\"\nlimits = { memory = \"12 parsecs\" }\n");
    assert!(m.contains("line 3") && m.contains("parsecs"), "{m}");
    let m = parse_err("[providers.x]\ncomponent = \"x.wasm\"\nlimits = { instances = 0 }\n");
    assert!(m.contains("provider `x`") && m.contains("instances"), "{m}");
    let m = parse_err("[providers.x]\ncomponent = \"x.wasm\"\nsha256 = \"abc\"\n");
    assert!(m.contains("provider `x`") && m.contains("sha256"), "{m}");
    let m = parse_err("[providers.x]\ncomponent = \"embedded:s3\"\n");
    assert!(m.contains("no embedded provider \"s3\""), "{m}");
    let m = parse_err("[providers.x]\nconfig = {}\n");
    assert!(m.contains("component"), "{m}");
    let m = parse_err("\n\nprovider = \"nope\"\n");
    assert!(
        m.contains("line 3") && m.contains("nope") && m.contains("fs"),
        "{m}"
    );
    let m = parse_err("[providers.x]\ncomponent = \"x.wasm\"\nconfig = 5\n");
    assert!(m.contains("line 3"), "{m}");
    let m = parse_err(
        "[providers.x]\ncomponent = \"x.wasm\"\ngrants.dirs = [{ host = \"a\", guest = \"data\", mode = \"rw\" }]\n",
    );
    assert!(m.contains("must be absolute"), "{m}");
    let m = parse_err(
        "[providers.x]\ncomponent = \"x.wasm\"\ngrants.network = [\"https://ok.example.com\", \"tcp://db.example.com\"]\n",
    );
    assert!(
        m.contains("provider `x`")
            && m.contains("grants.network")
            && m.contains("\"tcp://db.example.com\"")
            && m.contains("need a port"),
        "{m}"
    );
}

#[test]
fn provider_config_tables_become_json() {
    let c = parse(
        "provider = \"x\"\n[providers.x]\ncomponent = \"sub/x.wasm\"\n\
         config = { n = 3, f = 1.5, list = [1, \"a\"], when = 2026-11-24T10:00:00Z, nested = { ok = true } }\n\
         limits = { memory = \"64MiB\", cpu-per-call = \"2s\" }\n\
         [recorder]\nflush-interval = 5\n",
    )
    .unwrap();
    let p = &c.providers["x"];
    assert_eq!(
        p.config,
        serde_json::json!({"n": 3, "f": 1.5, "list": [1, "a"], "when": "2026-11-24T10:00:00Z", "nested": {"ok": true}})
    );
    assert_eq!(p.limits.memory, ByteSize(64 << 20));
    assert_eq!(p.limits.cpu_per_call, Millis(2000));
    assert_eq!(c.recorder.flush_interval, Millis(5));
    let (spec, _) = c.provider_spec(None).unwrap();
    assert_eq!(spec.name, "x");
    match spec.component {
        ComponentSource::File(p) => assert_eq!(p, Path::new("/etc/td/sub/x.wasm")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_provider_names_list_the_configured_ones() {
    let c = parse("[providers.archive]\ncomponent = \"a.wasm\"\n").unwrap();
    let e = c.provider_spec(Some("s3")).unwrap_err().to_string();
    assert!(e.contains("`s3`") && e.contains("archive, fs"), "{e}");
}

#[test]
fn the_tapes_dir_override_moves_only_the_implicit_fs_provider() {
    let mut c = parse("").unwrap();
    assert!(c.set_tapes_dir(Path::new("/srv/tapes")));
    let (spec, _) = c.provider_spec(Some("fs")).unwrap();
    assert_eq!(spec.grants.dirs[0].host, Path::new("/srv/tapes"));

    let mut c = parse(
        "[providers.fs]\ncomponent = \"embedded:fs\"\nconfig = { root = \"/t\" }\ngrants.dirs = [{ host = \"mine\", guest = \"/t\", mode = \"rw\" }]\n",
    )
    .unwrap();
    assert!(!c.set_tapes_dir(Path::new("/srv/tapes")));
    assert_eq!(c.providers["fs"].grants.dirs[0].host, Path::new("mine"));
}

#[test]
fn sha256_is_checked_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wasm"), b"component bytes").unwrap();
    let good = hex::encode(Sha256::digest(b"component bytes"));
    let path = dir.path().join("tapedeck.toml");
    let text = |h: &str| format!("[providers.p]\ncomponent = \"p.wasm\"\nsha256 = \"{h}\"\n");

    let c = Config::parse(&text(&good.to_uppercase()), &path).unwrap();
    let (spec, _) = c.provider_spec(Some("p")).unwrap();
    match spec.component {
        ComponentSource::Bytes { label, bytes } => {
            assert!(label.ends_with("p.wasm"), "{label}");
            assert_eq!(&*bytes, b"component bytes");
        }
        other => panic!("{other:?}"),
    }

    let wrong = "ab".repeat(32);
    let c = Config::parse(&text(&wrong), &path).unwrap();
    let e = c.provider_spec(Some("p")).unwrap_err().to_string();
    assert!(e.contains(&wrong) && e.contains(&good), "{e}");

    std::fs::remove_file(dir.path().join("p.wasm")).unwrap();
    let e = c.provider_spec(Some("p")).unwrap_err().to_string();
    assert!(e.contains("cannot read component"), "{e}");
}

#[test]
fn discovery() {
    let missing = Path::new("/nonexistent/tapedeck.toml");
    let e = Config::discover(Some(missing)).unwrap_err();
    assert!(matches!(e, ConfigError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/tapedeck.toml"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "provider = \"fs\"\n").unwrap();
    let c = Config::discover(Some(&path)).unwrap();
    assert_eq!(c.path.as_deref(), Some(path.as_path()));
    assert_eq!(c.base_dir, dir.path());
}

#[test]
fn line_and_column() {
    assert_eq!(line_col("ab\ncd\n", 0), (1, 1));
    assert_eq!(line_col("ab\ncd\n", 4), (2, 2));
    assert_eq!(line_col("ab\ncd\n", 99), (3, 1));
}

#[test]
fn parse_errors_read_like_compiler_errors() {
    let m = parse_err("provider = \"fs\"\nbogus = 1\n");
    assert_eq!(
        m,
        "invalid configuration file /etc/td/tapedeck.toml, line 2, column 1: unknown field `bogus`, expected one of `provider`, `trusted-keys`, `providers`, `recorder`, `seals`, `redaction`, `encryption`\n  |\n2 | bogus = 1\n  | ^^^^^"
    );
    assert_eq!(
        snippet("a\n  xyz = 1", 2, 3, 3),
        "  |\n2 |   xyz = 1\n  |   ^^^"
    );
}

#[test]
fn redaction_is_on_by_default_and_configurable() {
    let c = parse("").unwrap();
    assert_eq!(c.redaction, crate::RedactionSettings::default());
    assert!(c.redaction.enabled && c.redaction.preset);
    let c = parse(
        "[redaction]\nenabled = false\npreset = false\nkeys = [\"ssn\"]\n\
         pointers = [\"/params/arguments/card\"]\n\
         patterns = [{ name = \"employee-id\", regex = \"EMP-[0-9]{6}\" }]\n",
    )
    .unwrap();
    assert!(!c.redaction.enabled && !c.redaction.preset);
    assert_eq!(c.redaction.keys, ["ssn"]);
    assert_eq!(c.redaction.patterns[0].name, "employee-id");
    let e = parse("[redaction]\npatterns = [{ name = \"Bad Name\", regex = \"x\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("[redaction]") && e.contains("Bad Name"), "{e}");
    let e = parse("[redaction]\npointers = [\"params\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("starts with `/`"), "{e}");
    let e = parse("[redaction]\nkey = [\"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown field `key`") && e.contains("line 2"),
        "{e}"
    );
}
