//! The new cases of contract 0.2 catch what they check: the in-memory
//! store passes them, and each mutant (the same store with one deliberate
//! violation) fails the case that checks it, with a reason naming it.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use tapedeck_store::testing::MemStore;
use tapedeck_store::{Layer, ProviderError, ProviderResult, TapeWriter, WriterLayer};
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{
    EndReason, Frame, SearchQuery, StorageError, TapeAppend, TapeHeader, TapeInfo, TapePage,
    TapeSummary,
};

/// One deliberate violation (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// `search` done by the layer, correctly (checks the layer's own search).
    ExactSearch,
    /// A term matches any term it is a prefix of.
    PrefixMatch,
    /// Terms compared case-insensitively.
    CaseFolding,
    /// `%` and `_` in a term are SQL LIKE wildcards.
    LikeWildcards,
    /// Terms compared with surrounding spaces trimmed.
    TrimsSpaces,
    /// Every term must be on one frame.
    SameFrame,
    /// Any one of the terms is enough.
    AnyTerm,
    /// The provider also derives terms from payloads.
    ParsesPayloads,
    /// `read_frames` drops terms.
    DropsTerms,
    /// `read_frames` returns terms sorted.
    SortsTerms,
    /// `read_frames` drops attributes.
    DropsAttributes,
    /// `read_frames` returns attributes sorted.
    SortsAttributes,
    /// `save` drops the header's envelope.
    SaveDropsEnvelope,
    /// `save` drops the seal.
    SaveDropsSeal,
    /// `finish` with reason `aborted` aborts (the summary is lost).
    AbortedDropsSummary,
    /// `append_many` stops at the first failing entry: the rest fail too.
    StopsAtFirstFailure,
    /// `append_many` applies a repeated id like any other entry.
    AllowsRepeatedIds,
    /// `read_frames` with `max_frames` 0 reads one frame.
    ZeroMaxFrames,
    /// Every call leaves a handle open (as the harness counts them).
    LeaksHandles,
    /// `init` ignores settings it does not know.
    AcceptsUnknownSettings,
    /// A torn append leaves its half-written frame, and resume keeps it.
    KeepsTornTail,
}

/// What the mutants' harness sees and injects.
#[derive(Default)]
struct Faults {
    /// Calls made (a leaking mutant holds one handle per call).
    calls: AtomicU64,
    /// Appends until the torn one (1: the next); 0: disarmed.
    torn: AtomicU32,
    fired: AtomicBool,
}

/// The harness over a [`Mutant`]: restarts judge the configuration as the
/// mutant would, usage counts its calls, a torn write tears an append.
struct MutantHarness {
    faults: Arc<Faults>,
    bug: Bug,
}

impl Harness for MutantHarness {
    fn init_with<'a>(
        &'a self,
        config: &'a serde_json::Value,
    ) -> HarnessFuture<'a, Option<Result<(), ProviderError>>> {
        Box::pin(async move {
            let unknown = config.as_object().and_then(|o| o.keys().next().cloned());
            Some(match unknown {
                Some(k) if self.bug != Bug::AcceptsUnknownSettings => {
                    invalid(&format!("unknown setting `{k}`"))
                }
                _ => Ok(()),
            })
        })
    }

    fn config(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({}))
    }

    fn usage(&self) -> Option<Usage> {
        let calls = self.faults.calls.load(Ordering::SeqCst);
        Some(Usage {
            instances: 1,
            resources: if self.bug == Bug::LeaksHandles {
                calls
            } else {
                3
            },
            memory: 1 << 20,
        })
    }

    fn arm(&self, fault: TornWrite) -> bool {
        self.faults.fired.store(false, Ordering::SeqCst);
        self.faults.torn.store(fault.nth, Ordering::SeqCst);
        true
    }

    fn fired(&self) -> bool {
        self.faults.torn.store(0, Ordering::SeqCst);
        self.faults.fired.swap(false, Ordering::SeqCst)
    }
}

impl Bug {
    fn searches(self) -> bool {
        matches!(
            self,
            Bug::ExactSearch
                | Bug::PrefixMatch
                | Bug::CaseFolding
                | Bug::LikeWildcards
                | Bug::TrimsSpaces
                | Bug::SameFrame
                | Bug::AnyTerm
                | Bug::ParsesPayloads
        )
    }

    /// Does `have` (a stored term) match `want` (a query term)?
    fn term_matches(self, have: &str, want: &str) -> bool {
        match self {
            Bug::PrefixMatch => have.starts_with(want),
            Bug::CaseFolding => have.to_lowercase() == want.to_lowercase(),
            Bug::LikeWildcards => like(want, have),
            Bug::TrimsSpaces => have.trim() == want.trim(),
            _ => have == want,
        }
    }

    /// Does a tape of `frames` match the query `terms`?
    fn tape_matches(self, terms: &[String], frames: &[Frame]) -> bool {
        let frame_terms = |f: &Frame| -> Vec<String> {
            let mut t = f.terms.clone();
            if self == Bug::ParsesPayloads {
                t.extend(payload_terms(&f.payload));
            }
            t
        };
        let on =
            |f: &Frame, want: &String| frame_terms(f).iter().any(|h| self.term_matches(h, want));
        match self {
            Bug::SameFrame => {
                terms.is_empty() || frames.iter().any(|f| terms.iter().all(|t| on(f, t)))
            }
            Bug::AnyTerm => {
                terms.is_empty() || terms.iter().any(|t| frames.iter().any(|f| on(f, t)))
            }
            _ => terms.iter().all(|t| frames.iter().any(|f| on(f, t))),
        }
    }
}

/// SQL LIKE: `%` any run, `_` any one character.
fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('%', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('_', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(&p, &s)
}

struct Mutant {
    inner: MemStore,
    bug: Bug,
    faults: Arc<Faults>,
}

struct MutantWriter {
    inner: <MemStore as TapeStore>::Writer,
    store: MemStore,
    bug: Bug,
    faults: Arc<Faults>,
}

fn invalid<T>(what: &str) -> ProviderResult<T> {
    Err(ProviderError::Storage {
        provider: "mutant".into(),
        error: StorageError::invalid_input(what),
    })
}

impl Layer for Mutant {
    type Inner = MemStore;
    type Writer = MutantWriter;
    fn inner(&self) -> &MemStore {
        &self.inner
    }
    fn wrap_writer(&self, inner: <MemStore as TapeStore>::Writer) -> MutantWriter {
        self.faults.calls.fetch_add(1, Ordering::SeqCst);
        MutantWriter {
            inner,
            store: self.inner.clone(),
            bug: self.bug,
            faults: self.faults.clone(),
        }
    }

    async fn save(
        &self,
        mut header: TapeHeader,
        frames: &[Frame],
        mut summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        if self.bug == Bug::SaveDropsEnvelope {
            header.envelope = None;
        }
        if self.bug == Bug::SaveDropsSeal {
            summary.seal = None;
        }
        self.inner.save(header, frames, summary, reason).await
    }

    async fn read_frames(
        &self,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        self.faults.calls.fetch_add(1, Ordering::SeqCst);
        let max_frames = match (self.bug, max_frames) {
            (Bug::ZeroMaxFrames, 0) => 1,
            _ => max_frames,
        };
        let mut frames = self
            .inner
            .read_frames(id, from, max_frames, max_bytes)
            .await?;
        for f in &mut frames {
            match self.bug {
                Bug::DropsTerms => f.terms.clear(),
                Bug::SortsTerms => f.terms.sort(),
                Bug::DropsAttributes => f.attributes.clear(),
                Bug::SortsAttributes => f.attributes.sort(),
                _ => {}
            }
        }
        Ok(frames)
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        if !self.bug.searches() {
            return self.inner.search(query, cursor, limit).await;
        }
        let mut tapes = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .inner
                .list(&query.filter, next.as_deref(), 1000)
                .await?;
            tapes.extend(page.tapes);
            match page.next_cursor {
                Some(c) => next = Some(c),
                None => break,
            }
        }
        let mut hits = Vec::new();
        for tape in tapes {
            let frames = self
                .inner
                .read_frames(&tape.header.id, 0, u32::MAX, u64::MAX)
                .await?;
            let text = query.text.as_ref().is_none_or(|t| {
                frames
                    .iter()
                    .any(|f| f.payload.windows(t.len().max(1)).any(|w| w == t.as_bytes()))
            });
            if text && self.bug.tape_matches(&query.terms, &frames) {
                hits.push(tape);
            }
        }
        let Ok(start) = cursor.map_or(Ok(0), str::parse::<usize>) else {
            return invalid("cursor");
        };
        if limit == 0 || limit > 1000 {
            return invalid("limit");
        }
        let end = (start + limit as usize).min(hits.len());
        Ok(TapePage {
            tapes: hits[start.min(end)..end].to_vec(),
            next_cursor: (end < hits.len()).then(|| end.to_string()),
        })
    }

    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        match self.bug {
            Bug::StopsAtFirstFailure => {
                let mut out = Vec::new();
                for a in appends {
                    let r = match out
                        .iter()
                        .find_map(|r: &ProviderResult<u64>| r.as_ref().err())
                    {
                        Some(e) => Err(e.clone()),
                        None => self
                            .inner
                            .append_many(std::slice::from_ref(a))
                            .await?
                            .remove(0),
                    };
                    out.push(r);
                }
                Ok(out)
            }
            Bug::AllowsRepeatedIds => {
                let mut out = Vec::new();
                for a in appends {
                    out.push(
                        self.inner
                            .append_many(std::slice::from_ref(a))
                            .await?
                            .remove(0),
                    );
                }
                Ok(out)
            }
            _ => self.inner.append_many(appends).await,
        }
    }
}

impl WriterLayer for MutantWriter {
    type Inner = <MemStore as TapeStore>::Writer;
    fn inner(&self) -> &Self::Inner {
        &self.inner
    }
    fn inner_mut(&mut self) -> &mut Self::Inner {
        &mut self.inner
    }
    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        self.faults.calls.fetch_add(1, Ordering::SeqCst);
        let torn = self
            .faults
            .torn
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok();
        if torn != Some(1) {
            return self.inner.append(frames).await;
        }
        // Torn: half the batch stored, then the "instance" dies.
        self.faults.fired.store(true, Ordering::SeqCst);
        let half = frames.len() / 2;
        self.inner.append(&frames[..half]).await?;
        if self.bug == Bug::KeepsTornTail {
            let mut f = frames[half].clone();
            f.payload.truncate(f.payload.len() / 2);
            self.inner.append(&[f]).await?;
        }
        Err(ProviderError::Trap {
            provider: "mutant".into(),
            call: "append",
            detail: "torn".into(),
        })
    }
    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        if self.bug == Bug::AbortedDropsSummary && reason == EndReason::Aborted {
            self.inner.abort("finish(aborted)").await?;
            return self.store.get(self.inner.id()).await;
        }
        self.inner.finish(summary, reason).await
    }
}

/// Runs the cases whose name contains `filter` against `bug`.
async fn suite(bug: Bug, filter: &str) -> SuiteReport {
    let faults = Arc::new(Faults::default());
    let store = Arc::new(Mutant {
        inner: MemStore::new("mem"),
        bug,
        faults: faults.clone(),
    });
    let options = SuiteOptions {
        large: false,
        filter: Some(filter.to_string()),
        case_timeout: Duration::from_secs(60),
        harness: Some(Arc::new(MutantHarness { faults, bug })),
        ..SuiteOptions::default()
    };
    run(store, &options, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_passes_the_new_cases() {
    for bug in [Bug::None, Bug::ExactSearch] {
        for filter in [
            "terms/",
            "attributes/",
            "envelope/",
            "seal/save-verbatim",
            "append-many/",
            "search/",
            "write/finish-end-reasons",
            "save/end-reasons",
            "read/max-frames-zero",
            "init/",
            "soak/",
            "faults/",
        ] {
            let report = suite(bug, filter).await;
            assert!(!report.outcomes.is_empty(), "{filter}");
            for o in &report.outcomes {
                // The memory store does not check limits (a case of 0.1).
                if o.name != "search/bad-cursor-and-limit" {
                    assert!(o.status.is_passed(), "{bug:?}: {}: {}", o.name, o.status);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mutant_fails_the_case_that_checks_it() {
    let table: &[(Bug, &str, &str)] = &[
        (Bug::PrefixMatch, "terms/exact-match", "found our tapes"),
        (Bug::CaseFolding, "terms/exact-match", "found our tapes"),
        (Bug::LikeWildcards, "terms/exact-match", "found our tapes"),
        (Bug::TrimsSpaces, "terms/exact-match", "found our tapes"),
        (Bug::SameFrame, "terms/all-over-tape", "found our tapes"),
        (Bug::AnyTerm, "terms/all-over-tape", "found our tapes"),
        (
            Bug::ParsesPayloads,
            "terms/payload-not-parsed",
            "found our tapes",
        ),
        (Bug::DropsTerms, "terms/verbatim", "terms are 0 entries"),
        (Bug::SortsTerms, "terms/verbatim", "terms are"),
        (
            Bug::DropsAttributes,
            "attributes/verbatim",
            "attributes are 0 entries",
        ),
        (
            Bug::SortsAttributes,
            "attributes/verbatim",
            "attributes are",
        ),
        (
            Bug::SaveDropsEnvelope,
            "envelope/verbatim",
            "envelope is none",
        ),
        (Bug::SaveDropsSeal, "seal/save-verbatim", "seal is none"),
        (
            Bug::AbortedDropsSummary,
            "write/finish-end-reasons",
            "Aborted",
        ),
        (Bug::StopsAtFirstFailure, "append-many/not-found", "entry 2"),
        (
            Bug::StopsAtFirstFailure,
            "append-many/mixed-failures",
            "entry 1",
        ),
        (
            Bug::AllowsRepeatedIds,
            "append-many/repeated-id",
            "expected `invalid-input`",
        ),
        (
            Bug::ZeroMaxFrames,
            "read/max-frames-zero",
            "max_frames 0) succeeded, expected `invalid-input`",
        ),
        (
            Bug::LeaksHandles,
            "soak/one-instance",
            "a call leaves handles open",
        ),
        (
            Bug::AcceptsUnknownSettings,
            "init/unknown-setting",
            "succeeded, expected `invalid-input`",
        ),
        (
            Bug::KeepsTornTail,
            "faults/torn-append-then-resume",
            "after write 1 of an append",
        ),
    ];
    for &(bug, case, reason) in table {
        let report = suite(bug, case).await;
        let o = report.outcomes.iter().find(|o| o.name == case).unwrap();
        match &o.status {
            CaseStatus::Failed(why) => assert!(why.contains(reason), "{bug:?}: {case}: {why}"),
            other => panic!("{bug:?}: {case} did not fail: {other:?}"),
        }
    }
}
