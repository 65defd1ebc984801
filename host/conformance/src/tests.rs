//! Tests of the runner itself (timeouts, panics, gating) over a tiny fake
//! store that supports nothing and hangs in `get`.

use super::*;
use tapedeck_store::ProviderResult;
use tapedeck_store::testing::{NoWriter, unsupported};
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeAppend, TapeFilter, TapeHeader,
    TapeInfo, TapePage, TapeSummary,
};

struct Fake {
    info: ProviderInfo,
}

impl Fake {
    fn new(capabilities: Capabilities) -> Arc<Fake> {
        Arc::new(Fake {
            info: ProviderInfo {
                name: "fake".into(),
                version: "0.0.0".into(),
                capabilities,
            },
        })
    }
}

impl TapeStore for Fake {
    type Writer = NoWriter;
    fn provider_info(&self) -> &ProviderInfo {
        &self.info
    }
    async fn create(&self, _: TapeHeader) -> ProviderResult<NoWriter> {
        unsupported()
    }
    async fn resume(&self, _: &str) -> ProviderResult<NoWriter> {
        unsupported()
    }
    async fn save(
        &self,
        _: TapeHeader,
        _: &[Frame],
        _: TapeSummary,
        _: EndReason,
    ) -> ProviderResult<TapeInfo> {
        unsupported()
    }
    /// Hangs forever.
    async fn get(&self, _: &str) -> ProviderResult<TapeInfo> {
        std::future::pending().await
    }
    async fn read_frames(&self, _: &str, _: u64, _: u32, _: u64) -> ProviderResult<Vec<Frame>> {
        unsupported()
    }
    async fn delete(&self, _: &str) -> ProviderResult<()> {
        unsupported()
    }
    async fn list(&self, _: &TapeFilter, _: Option<&str>, _: u32) -> ProviderResult<TapePage> {
        unsupported()
    }
    async fn search(&self, _: &SearchQuery, _: Option<&str>, _: u32) -> ProviderResult<TapePage> {
        unsupported()
    }
    async fn stats(&self) -> ProviderResult<StorageStats> {
        unsupported()
    }
    async fn append_many(&self, _: &[TapeAppend]) -> ProviderResult<Vec<ProviderResult<u64>>> {
        unsupported()
    }
}

fn hangs(cx: Arc<Ctx<Fake>>) -> CaseFuture {
    Box::pin(async move {
        let _ = cx.store.get("x").await;
        Ok(())
    })
}

fn panics(_: Arc<Ctx<Fake>>) -> CaseFuture {
    Box::pin(async move { panic!("boom {}", 42) })
}

fn fails(_: Arc<Ctx<Fake>>) -> CaseFuture {
    Box::pin(async move { Err("read_frames(from 5) returned seq 7 first, expected 5".to_string()) })
}

fn passes(_: Arc<Ctx<Fake>>) -> CaseFuture {
    Box::pin(async move { Ok(()) })
}

fn case(name: &'static str, gate: Gate, body: fn(Arc<Ctx<Fake>>) -> CaseFuture) -> Case<Fake> {
    Case {
        name,
        gate,
        body,
        rule: "the rule",
    }
}

fn quick() -> SuiteOptions {
    SuiteOptions {
        // Long enough for a panicking case to capture its backtrace
        // (RUST_BACKTRACE=1) on a loaded machine; only the hanging case
        // waits for it.
        case_timeout: Duration::from_secs(2),
        ..SuiteOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_panic_and_error_fail_only_their_case() {
    let cases = vec![
        case("t/hangs", Gate::ALWAYS, hangs),
        case("t/panics", Gate::ALWAYS, panics),
        case("t/fails", Gate::ALWAYS, fails),
        case("t/passes", Gate::ALWAYS, passes),
    ];
    let mut seen = Vec::new();
    let report = run_cases(Fake::new(Capabilities::default()), &quick(), cases, |o| {
        seen.push(o.name)
    })
    .await;
    assert_eq!(seen, ["t/hangs", "t/panics", "t/fails", "t/passes"]);
    let st: Vec<&CaseStatus> = report.outcomes.iter().map(|o| &o.status).collect();
    assert!(
        matches!(st[0], CaseStatus::Failed(m) if m.contains("timed out")),
        "{:?}",
        st[0]
    );
    assert!(
        matches!(st[1], CaseStatus::Failed(m) if m == "panicked: boom 42"),
        "{:?}",
        st[1]
    );
    assert!(
        matches!(st[2], CaseStatus::Failed(m) if m.contains("returned seq 7 first")),
        "{:?}",
        st[2]
    );
    assert_eq!(st[3], &CaseStatus::Passed);
    assert!(report.outcomes[0].duration >= Duration::from_millis(200));
    assert_eq!(
        (report.passed(), report.failed(), report.skipped()),
        (1, 3, 0)
    );
    assert!(!report.is_success());
    assert_eq!(report.failures().count(), 3);
}

#[tokio::test]
async fn gates_skip_with_a_reason() {
    let cases = vec![
        case("t/search", Gate::needs(SEARCH), passes),
        case("t/text", Gate::needs(TEXT), passes),
        case("t/no-delete", Gate::lacks(DELETE), passes),
        case("t/large", Gate::LARGE, passes),
    ];
    let caps = Capabilities {
        delete: true,
        search: false,
        text_search: true,
    };
    let options = SuiteOptions {
        large: false,
        ..quick()
    };
    let report = run_cases(Fake::new(caps), &options, cases, |_| {}).await;
    let why: Vec<String> = report
        .outcomes
        .iter()
        .map(|o| match &o.status {
            CaseStatus::Skipped(w) => w.clone(),
            other => panic!("{} was not skipped: {other:?}", o.name),
        })
        .collect();
    assert_eq!(why[0], "needs capability `search`");
    assert_eq!(why[1], "needs capability `search`");
    assert!(
        why[2].starts_with("capability `delete` is declared"),
        "{}",
        why[2]
    );
    assert_eq!(why[3], "large cases are turned off");
    assert!(report.is_success());
    assert_eq!(report.skipped(), 4);
}

#[tokio::test]
async fn filter_selects_cases_by_substring() {
    let cases = vec![
        case("a/one", Gate::ALWAYS, passes),
        case("b/two", Gate::ALWAYS, passes),
        case("a/three", Gate::ALWAYS, passes),
    ];
    let options = SuiteOptions {
        filter: Some("a/".into()),
        ..quick()
    };
    let report = run_cases(Fake::new(Capabilities::default()), &options, cases, |_| {}).await;
    let names: Vec<&str> = report.outcomes.iter().map(|o| o.name).collect();
    assert_eq!(names, ["a/one", "a/three"]);
}

#[tokio::test]
async fn real_cases_are_gated_by_capabilities() {
    // Nothing declared: every delete/search case is skipped, undeclared-* run.
    let report = run(Fake::new(Capabilities::default()), &quick(), |_| {}).await;
    for o in &report.outcomes {
        let gated = o.name.starts_with("search/")
            || o.name.starts_with("delete/")
            || o.name == "stats/delete-deltas"
            || TABLE
                .iter()
                .any(|(name, gate, _)| *name == o.name && !gate.needs.is_empty());
        let harnessed = TABLE
            .iter()
            .any(|(name, gate, _)| *name == o.name && gate.harness);
        if gated {
            assert!(
                matches!(&o.status, CaseStatus::Skipped(w) if w.starts_with("needs capability")),
                "{}: {:?}",
                o.name,
                o.status
            );
        } else if harnessed {
            assert!(
                matches!(&o.status, CaseStatus::Skipped(w) if w.starts_with("needs a harness")),
                "{}: {:?}",
                o.name,
                o.status
            );
        } else {
            // The fake answers everything with `unsupported` or hangs.
            assert!(!o.status.is_skipped(), "{}: {:?}", o.name, o.status);
        }
    }
    // The fake answers `unsupported` to search, so the undeclared cases pass.
    for name in ["errors/undeclared-search", "errors/undeclared-text-search"] {
        let o = report.outcomes.iter().find(|o| o.name == name).unwrap();
        assert_eq!(o.status, CaseStatus::Passed, "{name}");
    }
    // A provider that hangs fails by timeout.
    let o = report
        .outcomes
        .iter()
        .find(|o| o.name == "errors/not-found")
        .unwrap();
    assert!(
        matches!(&o.status, CaseStatus::Failed(m) if m.contains("timed out")),
        "{:?}",
        o.status
    );

    // Everything declared: the undeclared-* cases are skipped.
    let all = Capabilities {
        delete: true,
        search: true,
        text_search: true,
    };
    let options = SuiteOptions {
        filter: Some("errors/undeclared".into()),
        ..quick()
    };
    let report = run(Fake::new(all), &options, |_| {}).await;
    assert_eq!(report.outcomes.len(), 3);
    assert_eq!(report.skipped(), 3);
}

#[test]
fn case_names_are_unique_and_well_formed() {
    let names = case_names();
    assert!(names.len() >= 60, "{}", names.len());
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate case names");
    for name in &names {
        let (area, case) = name.split_once('/').expect(name);
        assert!(!area.is_empty() && !case.is_empty(), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/'),
            "{name}"
        );
    }
    let registry: Vec<&str> = registry::<Fake>().iter().map(|c| c.name).collect();
    assert_eq!(registry, names);
}

#[test]
fn status_display() {
    assert_eq!(CaseStatus::Passed.to_string(), "ok");
    assert_eq!(CaseStatus::Failed("x".into()).to_string(), "FAILED: x");
    assert_eq!(CaseStatus::Skipped("y".into()).to_string(), "skipped: y");
}
