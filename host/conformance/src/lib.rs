//! `tapedeck-conformance`, the provider conformance suite: one set of behaviour tests that exercises
//! every operation of the `tape-storage` contract (`wit/tape-storage.wit`)
//! against any [`TapeStore`].
//!
//! It is what `tapedeck provider test` runs against a sandboxed provider, and
//! what `cargo test` runs against the native fs store. Like OpenDAL's behaviour
//! tests, there is one suite for every backend: cases that need an optional
//! capability (`delete`, `search`, `text-search`) are skipped when the provider
//! does not declare it, and for every capability that is *not* declared a case
//! checks that the provider answers `unsupported`.
//!
//! # How cases run
//!
//! Cases run one after the other, each as its own spawned task with a
//! wall-clock limit ([`SuiteOptions::case_timeout`]): a provider that hangs
//! fails that case and the suite goes on, and a panic inside a case is
//! reported as a failure of that case. Every case uses tape ids made unique by
//! a random per-run prefix and filters listings by a session id, tag or name of
//! its own, so the suite works on a store that already holds other tapes.
//! When the provider declares `delete`, the tapes a case created are deleted
//! after it, whatever its outcome.
//!
//! A few cases page through every tape in the store (to check the global
//! order, and that `stats` adds up to what `list` shows), so they take longer
//! on a store with very many tapes; the `stats/*` cases expect that nothing
//! else writes to the store while they run.
//!
//! ```no_run
//! # async fn demo<S: tapedeck_store::TapeStore + 'static>(store: std::sync::Arc<S>) {
//! use tapedeck_conformance::{self as conformance, SuiteOptions};
//! let report = conformance::run(store, &SuiteOptions::default(), |case| {
//!     println!("{:<45} {}", case.name, case.status);
//! })
//! .await;
//! assert!(report.is_success());
//! # }
//! ```

mod append_many;
mod attributes;
mod check;
mod concurrency;
mod delete;
mod envelope;
mod errors;
mod fixtures;
mod large;
mod list;
mod ops;
mod payload;
mod read;
mod save;
mod seal;
mod search;
mod stats;
mod terms;
mod write;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck_store::TapeStore;
use tapedeck_types::Capabilities;

pub(crate) use fixtures::Ctx;

/// How to run the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteOptions {
    /// Run the large cases (a tape of at least 100,000 frames and 10 MiB, and
    /// a tape of 1 MiB frames). Default `true`.
    pub large: bool,
    /// Run only the cases whose name contains this substring.
    pub filter: Option<String>,
    /// Wall-clock limit for one case. Default 120 s. (Deleting the case's
    /// tapes afterwards gets what is left of it, and at least 5 s.)
    pub case_timeout: Duration,
    /// Number of concurrent writers in `concurrency/writers` (at least 2 are
    /// used) and of racers in `concurrency/create-same-id` (2 to 16).
    /// Default 16.
    pub writers: usize,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            large: true,
            filter: None,
            case_timeout: Duration::from_secs(120),
            writers: 16,
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseStatus {
    /// Every check held.
    Passed,
    /// A check failed, the case panicked or it timed out; the reason says
    /// which call misbehaved and how.
    Failed(String),
    /// The case did not run; the reason says why (a capability the provider
    /// did not declare, large cases turned off, ...).
    Skipped(String),
}

impl CaseStatus {
    /// True for [`CaseStatus::Passed`].
    pub fn is_passed(&self) -> bool {
        matches!(self, CaseStatus::Passed)
    }
    /// True for [`CaseStatus::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, CaseStatus::Failed(_))
    }
    /// True for [`CaseStatus::Skipped`].
    pub fn is_skipped(&self) -> bool {
        matches!(self, CaseStatus::Skipped(_))
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseStatus::Passed => f.write_str("ok"),
            CaseStatus::Failed(why) => write!(f, "FAILED: {why}"),
            CaseStatus::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// One case's name, result and duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    /// The case's name, e.g. `write/append-idempotent`.
    pub name: &'static str,
    /// What happened.
    pub status: CaseStatus,
    /// How long the case took, clean-up included (next to nothing when
    /// skipped).
    pub duration: Duration,
}

/// The outcomes of a suite run, in the order the cases ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// One entry per case that matched [`SuiteOptions::filter`].
    pub outcomes: Vec<CaseOutcome>,
}

impl SuiteReport {
    /// Number of cases that passed.
    pub fn passed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.status.is_passed())
            .count()
    }
    /// Number of cases that failed.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.status.is_failed())
            .count()
    }
    /// Number of cases that were skipped.
    pub fn skipped(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.status.is_skipped())
            .count()
    }
    /// True when no case failed.
    pub fn is_success(&self) -> bool {
        self.failed() == 0
    }
    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.outcomes.iter().filter(|o| o.status.is_failed())
    }
}

/// An optional capability a case depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cap {
    Delete,
    Search,
    TextSearch,
}

impl Cap {
    fn name(self) -> &'static str {
        match self {
            Cap::Delete => "delete",
            Cap::Search => "search",
            Cap::TextSearch => "text-search",
        }
    }

    fn declared(self, caps: &Capabilities) -> bool {
        match self {
            Cap::Delete => caps.delete,
            Cap::Search => caps.search,
            Cap::TextSearch => caps.text_search,
        }
    }
}

/// When a case runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    /// Capabilities that must be declared.
    needs: &'static [Cap],
    /// Capabilities that must *not* be declared (cases checking `unsupported`).
    lacks: &'static [Cap],
    /// Only with [`SuiteOptions::large`].
    large: bool,
}

impl Gate {
    const ALWAYS: Gate = Gate {
        needs: &[],
        lacks: &[],
        large: false,
    };
    const LARGE: Gate = Gate {
        needs: &[],
        lacks: &[],
        large: true,
    };
    const fn needs(needs: &'static [Cap]) -> Gate {
        Gate {
            needs,
            lacks: &[],
            large: false,
        }
    }
    const fn lacks(lacks: &'static [Cap]) -> Gate {
        Gate {
            needs: &[],
            lacks,
            large: false,
        }
    }

    /// Why the case must be skipped, if it must.
    fn skip_reason(&self, caps: &Capabilities, options: &SuiteOptions) -> Option<String> {
        if self.large && !options.large {
            return Some("large cases are turned off".to_string());
        }
        if let Some(cap) = self.needs.iter().find(|c| !c.declared(caps)) {
            return Some(format!("needs capability `{}`", cap.name()));
        }
        if let Some(cap) = self.lacks.iter().find(|c| c.declared(caps)) {
            return Some(format!(
                "capability `{}` is declared (this case checks the answer when it is not)",
                cap.name()
            ));
        }
        None
    }
}

/// What a case body returns: `Err` holds the reason it failed.
pub(crate) type CaseResult = Result<(), String>;

/// A boxed case body, ready to spawn.
pub(crate) type CaseFuture = Pin<Box<dyn Future<Output = CaseResult> + Send + 'static>>;

/// One case: a name, a gate and a body.
pub(crate) struct Case<S> {
    name: &'static str,
    gate: Gate,
    body: fn(Arc<Ctx<S>>) -> CaseFuture,
}

/// Declares the suite's cases once: the name table behind [`case_names`] and
/// the generic constructor of the bodies.
macro_rules! suite {
    ($( $name:literal, $gate:expr, $body:path; )*) => {
        const TABLE: &[(&str, Gate)] = &[ $( ($name, $gate) ),* ];

        fn registry<S: TapeStore + 'static>() -> Vec<Case<S>> {
            vec![ $( {
                fn body<S: TapeStore + 'static>(cx: Arc<Ctx<S>>) -> CaseFuture {
                    Box::pin($body(cx))
                }
                Case { name: $name, gate: $gate, body: body::<S> }
            } ),* ]
        }
    };
}

const DELETE: &[Cap] = &[Cap::Delete];
const SEARCH: &[Cap] = &[Cap::Search];
const TEXT: &[Cap] = &[Cap::Search, Cap::TextSearch];
const TEXT_SEARCH: &[Cap] = &[Cap::TextSearch];

suite! {
    "write/round-trip", Gate::ALWAYS, write::round_trip;
    "write/header-preserved", Gate::ALWAYS, write::header_preserved;
    "write/next-seq", Gate::ALWAYS, write::next_seq;
    "write/append-idempotent", Gate::ALWAYS, write::append_idempotent;
    "write/append-gap-rejected", Gate::ALWAYS, write::append_gap_rejected;
    "write/append-non-consecutive-rejected", Gate::ALWAYS, write::append_non_consecutive_rejected;
    "write/finish-wrong-summary", Gate::ALWAYS, write::finish_wrong_summary;
    "write/finish-idempotent", Gate::ALWAYS, write::finish_idempotent;
    "write/finish-digest-verbatim", Gate::ALWAYS, write::finish_digest_verbatim;
    "write/finish-end-reasons", Gate::ALWAYS, write::finish_end_reasons;
    "write/finish-empty-tape", Gate::ALWAYS, write::finish_empty_tape;
    "write/finished-tape-immutable", Gate::ALWAYS, write::finished_tape_immutable;
    "write/abort", Gate::ALWAYS, write::abort;
    "write/drop-leaves-recording", Gate::ALWAYS, write::drop_leaves_recording;
    "write/resume", Gate::ALWAYS, write::resume;
    "write/resume-ended-rejected", Gate::ALWAYS, write::resume_ended_rejected;
    "write/redelivery-after-resume", Gate::ALWAYS, write::redelivery_after_resume;
    "read/paging-max-frames", Gate::ALWAYS, read::paging_max_frames;
    "read/paging-max-bytes", Gate::ALWAYS, read::paging_max_bytes;
    "read/oversized-frame", Gate::ALWAYS, read::oversized_frame;
    "read/from-middle", Gate::ALWAYS, read::from_middle;
    "read/past-end", Gate::ALWAYS, read::past_end;
    "read/recording-tape", Gate::ALWAYS, read::recording_tape;
    "payload/binary", Gate::ALWAYS, payload::binary;
    "payload/empty", Gate::ALWAYS, payload::empty;
    "payload/unicode", Gate::ALWAYS, payload::unicode;
    "payload/control-bytes", Gate::ALWAYS, payload::control_bytes;
    "payload/flags-and-directions", Gate::ALWAYS, payload::flags_and_directions;
    "payload/large-frame", Gate::ALWAYS, payload::large_frame;
    "save/round-trip", Gate::ALWAYS, save::round_trip;
    "save/end-reasons", Gate::ALWAYS, save::end_reasons;
    "save/empty", Gate::ALWAYS, save::empty;
    "save/already-exists", Gate::ALWAYS, save::already_exists;
    "save/summary-mismatch", Gate::ALWAYS, save::summary_mismatch;
    "save/bad-sequence", Gate::ALWAYS, save::bad_sequence;
    "save/many-frames", Gate::ALWAYS, save::many_frames;
    "append-many/several-tapes", Gate::ALWAYS, append_many::several_tapes;
    "append-many/not-found", Gate::ALWAYS, append_many::not_found;
    "append-many/not-recording", Gate::ALWAYS, append_many::not_recording;
    "append-many/gap", Gate::ALWAYS, append_many::gap;
    "append-many/non-consecutive", Gate::ALWAYS, append_many::non_consecutive;
    "append-many/repeated-id", Gate::ALWAYS, append_many::repeated_id;
    "append-many/mixed-failures", Gate::ALWAYS, append_many::mixed;
    "append-many/redelivery", Gate::ALWAYS, append_many::redelivery;
    "append-many/empty", Gate::ALWAYS, append_many::empty;
    "terms/verbatim", Gate::ALWAYS, terms::verbatim;
    "terms/exact-match", Gate::needs(SEARCH), terms::exact_match;
    "terms/all-over-tape", Gate::needs(SEARCH), terms::all_over_tape;
    "terms/payload-not-parsed", Gate::needs(SEARCH), terms::payload_not_parsed;
    "terms/every-write-path", Gate::needs(SEARCH), terms::every_write_path;
    "attributes/verbatim", Gate::ALWAYS, attributes::verbatim;
    "envelope/verbatim", Gate::ALWAYS, envelope::verbatim;
    "seal/finish-verbatim", Gate::ALWAYS, seal::finish_verbatim;
    "seal/save-verbatim", Gate::ALWAYS, seal::save_verbatim;
    "seal/finish-aborted", Gate::ALWAYS, seal::finish_aborted;
    "list/order", Gate::ALWAYS, list::order;
    "list/paging", Gate::ALWAYS, list::paging;
    "list/paging-stable-new-newest", Gate::ALWAYS, list::paging_stable_new_newest;
    "list/paging-stable-new-backdated", Gate::ALWAYS, list::paging_stable_new_backdated;
    "list/bad-cursor", Gate::ALWAYS, list::bad_cursor;
    "list/limit-bounds", Gate::ALWAYS, list::limit_bounds;
    "list/info-matches-get", Gate::ALWAYS, list::info_matches_get;
    "list/filter-session", Gate::ALWAYS, list::filter_session;
    "list/filter-name", Gate::ALWAYS, list::filter_name;
    "list/filter-tags", Gate::ALWAYS, list::filter_tags;
    "list/filter-created", Gate::ALWAYS, list::filter_created;
    "list/filter-state", Gate::ALWAYS, list::filter_state;
    "list/filter-combined", Gate::ALWAYS, list::filter_combined;
    "search/method", Gate::needs(SEARCH), search::method;
    "search/method-with-filter", Gate::needs(SEARCH), search::method_with_filter;
    "search/filter-only", Gate::needs(SEARCH), search::filter_only;
    "search/paging", Gate::needs(SEARCH), search::paging;
    "search/bad-cursor-and-limit", Gate::needs(SEARCH), search::bad_cursor_and_limit;
    "search/text", Gate::needs(TEXT), search::text;
    "search/text-raw-bytes", Gate::needs(TEXT), search::text_raw_bytes;
    "search/text-and-method", Gate::needs(TEXT), search::text_and_method;
    "delete/removes-everywhere", Gate::needs(DELETE), delete::removes_everywhere;
    "delete/any-state", Gate::needs(DELETE), delete::any_state;
    "delete/id-reusable", Gate::needs(DELETE), delete::id_reusable;
    "delete/missing", Gate::needs(DELETE), delete::missing;
    "delete/list-paging-stable", Gate::needs(DELETE), delete::list_paging_stable;
    "stats/deltas", Gate::ALWAYS, stats::deltas;
    "stats/delete-deltas", Gate::needs(DELETE), stats::delete_deltas;
    "stats/match-list", Gate::ALWAYS, stats::match_list;
    "errors/not-found", Gate::ALWAYS, errors::not_found;
    "errors/already-exists", Gate::ALWAYS, errors::already_exists;
    "errors/invalid-ids", Gate::ALWAYS, errors::invalid_ids;
    "errors/valid-id-edges", Gate::ALWAYS, errors::valid_id_edges;
    "errors/undeclared-delete", Gate::lacks(DELETE), errors::undeclared_delete;
    "errors/undeclared-search", Gate::lacks(SEARCH), errors::undeclared_search;
    "errors/undeclared-text-search", Gate::lacks(TEXT_SEARCH), errors::undeclared_text_search;
    "concurrency/writers", Gate::ALWAYS, concurrency::writers;
    "concurrency/read-while-writing", Gate::ALWAYS, concurrency::read_while_writing;
    "concurrency/create-same-id", Gate::ALWAYS, concurrency::create_same_id;
    "large/many-frames", Gate::LARGE, large::many_frames;
    "large/big-frames", Gate::LARGE, large::big_frames;
}

/// The names of every case, in the order they run.
pub fn case_names() -> Vec<&'static str> {
    TABLE.iter().map(|(name, _)| *name).collect()
}

/// Runs the suite against `store`, calling `on_case` after each case (for
/// progress output), and returns every outcome.
///
/// Must be called inside a Tokio runtime: each case is spawned as a task so
/// that a panic or a hang fails only that case. A multi-thread runtime is
/// recommended (a store whose calls block the thread can only be timed out on
/// one).
pub async fn run<S: TapeStore + 'static>(
    store: Arc<S>,
    options: &SuiteOptions,
    on_case: impl FnMut(&CaseOutcome),
) -> SuiteReport {
    run_cases(store, options, registry::<S>(), on_case).await
}

/// Runs `cases` (the registry, or a test's own cases) against `store`.
async fn run_cases<S: TapeStore + 'static>(
    store: Arc<S>,
    options: &SuiteOptions,
    cases: Vec<Case<S>>,
    mut on_case: impl FnMut(&CaseOutcome),
) -> SuiteReport {
    let run_id = fixtures::run_id();
    let caps = store.provider_info().capabilities;
    let mut report = SuiteReport::default();
    for (index, case) in cases.into_iter().enumerate() {
        if let Some(filter) = &options.filter
            && !case.name.contains(filter.as_str())
        {
            continue;
        }
        let started = Instant::now();
        let status = match case.gate.skip_reason(&caps, options) {
            Some(reason) => CaseStatus::Skipped(reason),
            None => {
                let cx = Arc::new(Ctx::new(
                    store.clone(),
                    options.clone(),
                    &run_id,
                    index,
                    case.name,
                ));
                run_one(&case, cx, options.case_timeout).await
            }
        };
        let outcome = CaseOutcome {
            name: case.name,
            status,
            duration: started.elapsed(),
        };
        on_case(&outcome);
        report.outcomes.push(outcome);
    }
    report
}

/// Runs one case as a task bounded by `limit`, then deletes its tapes.
async fn run_one<S: TapeStore + 'static>(
    case: &Case<S>,
    cx: Arc<Ctx<S>>,
    limit: Duration,
) -> CaseStatus {
    let deadline = tokio::time::Instant::now() + limit;
    let task = tokio::spawn((case.body)(cx.clone()));
    let abort = task.abort_handle();
    let status = match tokio::time::timeout_at(deadline, task).await {
        Err(_) => {
            abort.abort();
            CaseStatus::Failed(format!(
                "timed out after {limit:?} (the provider hung or is too slow)"
            ))
        }
        Ok(Err(join)) if join.is_panic() => {
            let panic = join.into_panic();
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            CaseStatus::Failed(format!("panicked: {msg}"))
        }
        Ok(Err(join)) => CaseStatus::Failed(format!("case task failed: {join}")),
        Ok(Ok(Err(reason))) => CaseStatus::Failed(reason),
        Ok(Ok(Ok(()))) => CaseStatus::Passed,
    };
    // Clean up whatever the case created, within what is left of its time
    // (at least a few seconds, so a timed-out case still gets cleaned).
    let cleanup_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(5));
    let _ = tokio::time::timeout_at(cleanup_deadline, cx.cleanup()).await;
    status
}

#[cfg(test)]
mod mutants;
#[cfg(test)]
mod tests;
