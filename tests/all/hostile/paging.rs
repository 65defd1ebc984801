//! Listings that lie (`tests/programs/hostile/src/paging.rs`,
//! config `list-attack`): cursors that repeat, empty pages that never end,
//! new pages without end, invalid or duplicate ids, pages over their limit
//! or outside the filter.
//!
//! The library's tests walk the hostile provider with [`TapePages`] (the
//! walker every caller uses) and call `list` / `search` directly, each
//! beside the healthy recording of [`Env::run`]. The CLI's tests run the
//! `tapedeck` binary (`cargo build -p tapedeck-cli` first, or `cargo test
//! --workspace`) with a configuration naming the hostile provider, under a
//! deadline and a memory cap, and assert that it ends with a clear error
//! (or, for an endless listing, prints and copies page by page in bounded
//! memory) instead of hanging or collecting everything first.

use super::{Env, tapedeck_in};
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tapedeck::error::ProviderError;
use tapedeck::sandbox::{Limits, Protection, WasmProvider};
use tapedeck::store::paging::DEFAULT_MAX_EMPTY_PAGES;
use tapedeck::store::{PageLimits, ProviderResult, TapePages, TapeStore};
use tapedeck_tests::artifacts;
use tapedeck_tests::cli::text;
use tapedeck_types::{SearchQuery, TapeFilter};

// ---------------------------------------------------------------------------
// The library: the walker and the checks of each page

/// The hostile provider with `config` (a `list-attack` and its settings).
async fn liar(env: &Env, config: Value) -> WasmProvider {
    env.start(&env.hostile_spec(Limits::default()).with_config(config))
        .await
}

/// A search the hostile provider must answer through `search` (a frame
/// condition), not `list`.
fn method_search() -> SearchQuery {
    SearchQuery {
        terms: vec![tapedeck_types::terms::method_term("tools/call")],
        ..SearchQuery::default()
    }
}

/// Walks `pages` to its end; the number of tapes handed out.
async fn walk(pages: &mut TapePages<'_, WasmProvider>) -> ProviderResult<u64> {
    let mut n = 0;
    while let Some(page) = pages.next_page().await? {
        n += page.len() as u64;
    }
    Ok(n)
}

/// The detail of a contract violation in `call`.
fn violation(e: &ProviderError, want_call: &str) -> String {
    match e {
        ProviderError::Contract { call, detail, .. } if *call == want_call => detail.clone(),
        e => panic!("expected a contract violation in `{want_call}`: {e:?}"),
    }
}

// F3. Protection: the walker remembers the hash of every cursor of a walk
// (`store/paging.rs`); without it the walk follows the loop forever.
#[tokio::test(flavor = "current_thread")]
async fn a_repeated_cursor_ends_the_walk() {
    let env = Env::new().await;
    // The same cursor again (page 2), and a cycle of three (page 4).
    for (cycle, cursor, pages_asked) in [(1, "c0", 2), (3, "c1", 4)] {
        let p = liar(
            &env,
            json!({"list-attack": "repeat-cursor", "cursor-cycle": cycle}),
        )
        .await;
        let mut pages = TapePages::list(&p, TapeFilter::default()).provider_name(p.name());
        let e = env.run(&p, walk(&mut pages)).await.unwrap_err();
        let detail = violation(&e, "list");
        assert!(
            detail.contains(&format!(
                "returned on page {pages_asked} a next-cursor it had returned before in this \
                 listing (\"{cursor}\")"
            )),
            "{detail}"
        );
        assert_eq!(pages.pages(), pages_asked);
        assert!(!pages.has_more(), "the walk is over");
        assert_eq!(pages.next_page().await.unwrap(), None);
        // The same through `search`.
        let mut pages = TapePages::search(&p, method_search());
        let e = env.run(&p, walk(&mut pages)).await.unwrap_err();
        assert!(violation(&e, "search").contains("returned before"), "{e}");
        // Each page was a well-formed answer: no instance was discarded.
        assert_eq!(p.instance_counts().1, 0);
    }
}

// F4. Protection: the walker follows at most `DEFAULT_MAX_EMPTY_PAGES` empty
// pages with a cursor in a row (`store/paging.rs`). Each call answers at
// once, so no timeout would ever end the walk.
#[tokio::test(flavor = "current_thread")]
async fn empty_pages_that_never_end_end_the_walk() {
    let env = Env::new().await;
    let p = liar(&env, json!({"list-attack": "empty-pages-forever"})).await;
    let t = Instant::now();
    // As plain `tapedeck list` asks: 50 tapes.
    let mut pages = TapePages::list(&p, TapeFilter::default());
    let e = env
        .run(&p, async { pages.next_page_max(50).await })
        .await
        .unwrap_err();
    let detail = violation(&e, "list");
    assert!(
        detail.contains(&format!(
            "returned {} empty pages in a row, each with a next-cursor: the listing makes no \
             progress (at most {DEFAULT_MAX_EMPTY_PAGES} are followed)",
            DEFAULT_MAX_EMPTY_PAGES + 1
        )),
        "{detail}"
    );
    assert_eq!(pages.pages(), u64::from(DEFAULT_MAX_EMPTY_PAGES) + 1);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let mut pages = TapePages::search(&p, method_search());
    let e = env.run(&p, walk(&mut pages)).await.unwrap_err();
    assert!(violation(&e, "search").contains("makes no progress"), "{e}");
}

// F5. Protection: the walker's bound on the tapes of one walk
// (`PageLimits::max_tapes`), and its check that no tape comes twice.
#[tokio::test(flavor = "current_thread")]
async fn endless_new_pages_stop_at_the_bound_of_one_walk() {
    let env = Env::new().await;
    let p = liar(&env, json!({"list-attack": "endless-new-pages"})).await;
    let limits = PageLimits {
        max_tapes: 5_000,
        ..PageLimits::default()
    };
    let mut pages = TapePages::list(&p, TapeFilter::default()).limits(limits);
    let mut handed = 0u64;
    let e = env
        .run(&p, async {
            loop {
                match pages.next_page().await? {
                    Some(page) => handed += page.len() as u64,
                    None => return Ok(()),
                }
            }
        })
        .await
        .unwrap_err();
    assert_eq!(handed, 5_000, "full pages up to the bound, then the error");
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "list", .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("listed more than 5000 tapes in one walk, the most one walk takes"),
        "{e}"
    );
    assert_eq!(pages.pages(), 6);
    // The default bound is generous and documented.
    assert_eq!(PageLimits::default().max_tapes, 1_000_000);

    // The same tape on every page, each time under a new cursor.
    let p = liar(&env, json!({"list-attack": "repeat-tapes"})).await;
    let mut pages = TapePages::list(&p, TapeFilter::default());
    let e = env.run(&p, walk(&mut pages)).await.unwrap_err();
    assert!(
        violation(&e, "list").contains(
            "returned tape \"same-tape\" on page 2 although this listing had returned it already"
        ),
        "{e}"
    );
}

// F6. Protection: the host's check of each `list` / `search` page
// (`check_page` in `sandbox/provider.rs`): ids valid as `get`'s would be.
#[tokio::test(flavor = "current_thread")]
async fn invalid_ids_in_a_listing_are_a_contract_violation() {
    let env = Env::new().await;
    for (id, why) in [
        ("../../../../tmp/pwned-list", "contains '/'"),
        ("", "tape id is empty"),
        ("a/b", "contains '/'"),
        ("/etc/passwd", "contains '/'"),
    ] {
        let p = liar(&env, json!({"list-attack": "bad-ids", "bad-ids": [id]})).await;
        for call in ["list", "search"] {
            let attack = async {
                match call {
                    "list" => p.list(&TapeFilter::default(), None, 50).await,
                    _ => p.search(&method_search(), None, 50).await,
                }
            };
            let e = env.stopped(&p, Protection::ContractViolation, attack).await;
            let detail = violation(&e, call);
            assert!(
                detail.starts_with("returned a tape whose id is invalid: ") && detail.contains(why),
                "{id:?}: {detail}"
            );
        }
        drop(p);
    }
}

// F6. Protection: `check_page` (`sandbox/provider.rs`): no more than
// `limit` tapes, no id twice, every tape matching the filter.
#[tokio::test(flavor = "current_thread")]
async fn a_page_over_its_limit_outside_its_filter_or_with_an_id_twice_is_refused() {
    let env = Env::new().await;
    let by_session = TapeFilter {
        session_id: Some("s1".into()),
        ..TapeFilter::default()
    };
    let by_state = TapeFilter {
        state: Some(tapedeck_types::TapeState::Crashed),
        ..TapeFilter::default()
    };
    for (attack, filter, want) in [
        (
            "too-many",
            TapeFilter::default(),
            "returned 11 tapes for a page limit of 10",
        ),
        (
            "not-matching-filter",
            by_session,
            "returned tape `not-matching`, which does not match the filter",
        ),
        (
            "not-matching-filter",
            by_state,
            "returned tape `not-matching`, which does not match the filter",
        ),
        (
            "duplicate-ids",
            TapeFilter::default(),
            "returned tape `twice` twice in one page",
        ),
    ] {
        let p = liar(&env, json!({ "list-attack": attack })).await;
        let e = env
            .stopped(&p, Protection::ContractViolation, p.list(&filter, None, 10))
            .await;
        assert!(violation(&e, "list").contains(want), "{attack}: {e}");
        let query = SearchQuery {
            filter: filter.clone(),
            ..method_search()
        };
        let e = env
            .stopped(
                &p,
                Protection::ContractViolation,
                p.search(&query, None, 10),
            )
            .await;
        assert!(violation(&e, "search").contains(want), "{attack}: {e}");
        drop(p);
    }
}

// ---------------------------------------------------------------------------
// The CLI: the real binary, under a deadline and a memory cap

/// The most a watched `tapedeck` may take before it counts as hung.
const CLI_DEADLINE: Duration = Duration::from_secs(60);

/// Above this peak RSS a watched `tapedeck` is killed at once (it collects
/// what it should stream), so that a regression fails the test without
/// taking the machine's memory.
const MEMORY_CAP: u64 = 768 << 20;

/// The most memory `tapedeck` may hold while it streams an endless listing
/// (its baseline, with the engine and a component, is well below).
const STREAMING_RSS: u64 = 160 << 20;

/// A working directory whose `tapedeck.toml` configures provider `hostile`
/// (with `config`) and `fs` (the embedded fs provider in `./fs`).
struct CliDir {
    tmp: tempfile::TempDir,
}

impl CliDir {
    fn new(config: Value) -> CliDir {
        let tmp = tempfile::tempdir().unwrap();
        let table: Vec<String> = config
            .as_object()
            .unwrap()
            .iter()
            // JSON strings, numbers and arrays of them are TOML as well.
            .map(|(k, v)| format!("{} = {v}", Value::from(k.as_str())))
            .collect();
        let toml = format!(
            "[providers.hostile]\ncomponent = {:?}\nconfig = {{ {} }}\n\n\
             [providers.fs]\ncomponent = \"embedded:fs\"\nconfig = {{ root = \"/tapes\" }}\n\
             [[providers.fs.grants.dirs]]\nhost = \"fs\"\nguest = \"/tapes\"\nmode = \"rw\"\n\
             create = true\n",
            artifacts::HOSTILE_PROVIDER,
            table.join(", ")
        );
        std::fs::write(tmp.path().join("tapedeck.toml"), toml).unwrap();
        let dir = CliDir { tmp };
        // Compiles the component into the shared cache first, so that the
        // deadlines below measure the command, not the compiler.
        let out = dir
            .command(&["--provider", "hostile", "stats"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = tapedeck_in(self.path()).command();
        cmd.args(args);
        cmd
    }

    /// Runs `tapedeck --provider hostile ARGS` under watch, to its end.
    fn hostile(&self, args: &[&str]) -> Watched {
        let mut all = vec!["--provider", "hostile"];
        all.extend_from_slice(args);
        watch(self.command(&all), |_, _| false)
    }
}

/// What a watched run of `tapedeck` did.
struct Watched {
    /// How it exited; `None`: it was killed (see `why_killed`).
    status: Option<ExitStatus>,
    why_killed: Option<String>,
    /// The first 64 KiB of stdout, and its size in lines and bytes.
    head: String,
    lines: u64,
    bytes: u64,
    stderr: String,
    /// The highest peak RSS (`VmHWM`) seen while it ran, in bytes.
    peak_rss: u64,
    elapsed: Duration,
}

impl Watched {
    /// It exited by itself, with an error, and said `want` on stderr.
    fn assert_failed_with(&self, want: &str) {
        assert!(
            self.status.is_some_and(|s| !s.success()),
            "expected an error exit, got {:?} (killed: {:?}) after {:?}\nstderr: {}",
            self.status,
            self.why_killed,
            self.elapsed,
            self.stderr
        );
        assert!(
            self.stderr.contains(want),
            "stderr lacks {want:?}:\n{}",
            self.stderr
        );
    }
}

/// Runs `cmd` with stdout and stderr read as they come, sampling its peak
/// RSS every 10 ms, and kills it when `enough(lines, bytes)` of stdout is
/// true, when it exceeds [`MEMORY_CAP`], or after [`CLI_DEADLINE`].
fn watch(mut cmd: Command, enough: impl Fn(u64, u64) -> bool) -> Watched {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let head = Arc::new(Mutex::new(Vec::new()));
    let stdout = {
        let (mut out, lines, bytes, head) = (
            child.stdout.take().unwrap(),
            lines.clone(),
            bytes.clone(),
            head.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match out.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let chunk = &buf[..n];
                let mut head = head.lock().unwrap();
                let room = (1usize << 16).saturating_sub(head.len());
                head.extend_from_slice(&chunk[..room.min(n)]);
                lines.fetch_add(
                    chunk.iter().filter(|b| **b == b'\n').count() as u64,
                    Relaxed,
                );
                bytes.fetch_add(n as u64, Relaxed);
            }
        })
    };
    let stderr = {
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = (&mut err).take(1 << 20).read_to_end(&mut s);
            // Drain the rest, so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut err, &mut std::io::sink());
            s
        })
    };
    let mut peak_rss = 0;
    let mut why_killed = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        peak_rss = peak_rss.max(vm_hwm(child.id()).unwrap_or(0));
        let why = if peak_rss > MEMORY_CAP {
            Some(format!("its peak RSS reached {} MiB", peak_rss >> 20))
        } else if enough(lines.load(Relaxed), bytes.load(Relaxed)) {
            Some("it had printed enough".to_string())
        } else if start.elapsed() > CLI_DEADLINE {
            Some(format!("it was still running after {CLI_DEADLINE:?}"))
        } else {
            None
        };
        if let Some(why) = why {
            let _ = child.kill();
            let _ = child.wait();
            why_killed = Some(why);
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    stdout.join().unwrap();
    let stderr = text(&stderr.join().unwrap());
    let head = text(&head.lock().unwrap());
    Watched {
        status,
        why_killed,
        head,
        lines: lines.load(Relaxed),
        bytes: bytes.load(Relaxed),
        stderr,
        peak_rss,
        elapsed,
    }
}

/// The peak resident set size of process `pid` so far (`VmHWM`), in bytes.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

// F3 through the CLI: `list --all` and `search --all` end with the
// contract violation instead of paging forever.
#[test]
fn cli_list_and_search_end_on_a_repeated_cursor() {
    let dir = CliDir::new(json!({"list-attack": "repeat-cursor"}));
    for args in [
        &["list", "--all"][..],
        &["list"],
        &["list", "--all", "--json"],
        &["search", "--all"],
        &["search", "--all", "--method", "tools/call"],
    ] {
        let run = dir.hostile(args);
        let call = if args.contains(&"--method") {
            "search"
        } else {
            "list"
        };
        run.assert_failed_with(&format!(
            "provider `hostile` broke the contract in `{call}`: returned on page 2 a \
             next-cursor it had returned before in this listing (\"c0\")"
        ));
        // What came before the loop was printed; nothing was repeated.
        assert_eq!(
            run.head.matches("loop-0-0").count(),
            1,
            "{args:?}: {}",
            run.head
        );
    }
}

// F4 through the CLI: plain `tapedeck list` (50 tapes) on empty pages that
// each carry a cursor ends at once with the violation.
#[test]
fn cli_list_ends_on_empty_pages_that_never_end() {
    let dir = CliDir::new(json!({"list-attack": "empty-pages-forever"}));
    for args in [
        &["list"][..],
        &["list", "--all"],
        &["search", "--all", "--method", "x"],
    ] {
        let run = dir.hostile(args);
        run.assert_failed_with("empty pages in a row, each with a next-cursor");
        assert!(
            run.elapsed < Duration::from_secs(15),
            "{args:?} took {:?}",
            run.elapsed
        );
        assert_eq!(run.lines, 0, "{args:?} printed: {}", run.head);
    }
}

// F5 through the CLI: `list --all` / `search --all` print page by page:
// rows keep coming from an endless listing while memory stays flat (each
// tape carries a 2 KiB name, so 100,000 tapes are 200 MiB of names that
// must not be held). Before streaming, nothing was printed until the
// listing ended, which it never does.
#[test]
fn cli_list_all_prints_an_endless_listing_page_by_page_in_bounded_memory() {
    let dir = CliDir::new(json!({"list-attack": "endless-new-pages", "list-name-bytes": 2048}));
    const TAPES: u64 = 100_000;
    for (args, json) in [
        (&["list", "--all"][..], false),
        (&["list", "--all", "--json"], true),
        (&["search", "--all", "--method", "tools/call"], false),
    ] {
        let mut all = vec!["--provider", "hostile"];
        all.extend_from_slice(args);
        // A JSON array is one line; its tapes are counted by their bytes.
        let run = watch(dir.command(&all), |lines, bytes| {
            if json {
                bytes > TAPES * 2048
            } else {
                lines > TAPES
            }
        });
        assert_eq!(
            run.why_killed.as_deref(),
            Some("it had printed enough"),
            "{args:?} after {:?}, {} lines, {} bytes; stderr: {}",
            run.elapsed,
            run.lines,
            run.bytes,
            run.stderr
        );
        let (first, tape) = if json {
            ("[{", "\"id\":\"endless-000000000000\"")
        } else {
            ("ID ", "\nendless-000000000000 ")
        };
        assert!(
            run.head.starts_with(first) && run.head.contains(tape),
            "{args:?}: {}",
            &run.head[..200]
        );
        eprintln!(
            "{args:?}: {} MiB printed in {:?}, peak RSS {} MiB",
            run.bytes >> 20,
            run.elapsed,
            run.peak_rss >> 20
        );
        assert!(
            run.peak_rss < STREAMING_RSS,
            "{args:?}: peak RSS {} MiB after {} MiB printed",
            run.peak_rss >> 20,
            run.bytes >> 20
        );
    }
}

// F5 through the CLI: `migrate` copies page by page: the endless source's
// tapes reach the destination while the listing goes on, in bounded
// memory. Before, it listed (and held) every tape first and never copied
// one.
#[test]
fn cli_migrate_copies_an_endless_listing_page_by_page() {
    let dir = CliDir::new(json!({"list-attack": "endless-new-pages", "list-name-bytes": 2048}));
    let run = watch(
        // The hostile provider's tapes carry no seal.
        dir.command(&[
            "--json",
            "migrate",
            "--from",
            "hostile",
            "--to",
            "fs",
            "--allow-unsealed",
        ]),
        |lines, _| lines >= 20,
    );
    assert_eq!(
        run.why_killed.as_deref(),
        Some("it had printed enough"),
        "after {:?}: {}\nstderr: {}",
        run.elapsed,
        run.head,
        run.stderr
    );
    let first: Value = serde_json::from_str(run.head.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], "endless-000000000000");
    assert_eq!(first["status"], "migrated", "{first}");
    assert!(
        run.peak_rss < STREAMING_RSS,
        "peak RSS {} MiB",
        run.peak_rss >> 20
    );
    // The copies are in the destination.
    let out = dir
        .command(&["--provider", "fs", "--json", "list", "--all"])
        .output()
        .unwrap();
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed.len() >= 20, "{}", listed.len());
    assert!(
        listed
            .iter()
            .all(|t| t["id"].as_str().unwrap().starts_with("endless-"))
    );
}

// F6 through the CLI: `list` and `search` refuse invalid ids instead of
// printing them, and `migrate` never hands them to the destination.
#[test]
fn cli_list_search_and_migrate_refuse_invalid_ids() {
    let dir = CliDir::new(json!({"list-attack": "bad-ids"}));
    let want = "provider `hostile` broke the contract in `list`: returned a tape whose id is \
                invalid: tape id \"../../../../tmp/pwned-list\" contains '/'";
    for args in [
        &["list"][..],
        &["list", "--all", "--json"],
        &["search", "--all"],
    ] {
        let run = dir.hostile(args);
        run.assert_failed_with(want);
        assert_eq!(run.lines, 0, "{args:?} printed: {}", run.head);
    }
    let run = dir.hostile(&["search", "--method", "tools/call"]);
    run.assert_failed_with("broke the contract in `search`: returned a tape whose id is invalid");

    let run = watch(
        dir.command(&["migrate", "--from", "hostile", "--to", "fs"]),
        |_, _| false,
    );
    run.assert_failed_with(&format!(
        "cannot list the tapes of provider hostile: {want}"
    ));
    assert!(!run.head.contains("migrated tape"), "{}", run.head);
    assert!(
        !run.stderr.contains("pwned-list\" in provider fs") && !run.stderr.contains("error: tape"),
        "the destination was asked: {}",
        run.stderr
    );
    // Nothing reached the destination, not even the valid tape of the page.
    let out = dir
        .command(&["--provider", "fs", "--json", "list", "--all"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "[]\n", "{}", text(&out.stderr));
}
