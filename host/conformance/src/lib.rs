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
mod harness;
mod init;
mod large;
mod list;
mod ops;
mod payload;
mod read;
mod save;
mod seal;
mod search;
mod soak;
mod stats;
mod terms;
mod torn;
mod write;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck_store::TapeStore;
use tapedeck_types::Capabilities;

pub(crate) use fixtures::Ctx;
pub use harness::{Harness, HarnessFuture, TornWrite, Usage};

/// How to run the suite.
#[derive(Clone)]
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
    /// Runs of each case (at least 1, default 1): a case passes only if
    /// every run does, so races that show once in a while show.
    pub repeat: u32,
    /// Powers beyond the store's calls (default none: the cases that need
    /// them are skipped).
    pub harness: Option<Arc<dyn Harness>>,
    /// Keep the tapes each case made (default false: deleted after it when
    /// the provider declares `delete`), to look at them.
    pub keep: bool,
}

impl fmt::Debug for SuiteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuiteOptions")
            .field("large", &self.large)
            .field("filter", &self.filter)
            .field("case_timeout", &self.case_timeout)
            .field("writers", &self.writers)
            .field("repeat", &self.repeat)
            .field("harness", &self.harness.is_some())
            .field("keep", &self.keep)
            .finish()
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            large: true,
            filter: None,
            case_timeout: Duration::from_secs(120),
            writers: 16,
            repeat: 1,
            harness: None,
            keep: false,
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
    /// The contract rule the case checks, in one line (what to read when
    /// it fails).
    pub rule: &'static str,
    /// Which run of the case this was (1 unless [`SuiteOptions::repeat`]).
    pub run: u32,
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
    /// Only with a [`SuiteOptions::harness`].
    harness: bool,
}

impl Gate {
    const ALWAYS: Gate = Gate {
        needs: &[],
        lacks: &[],
        large: false,
        harness: false,
    };
    const LARGE: Gate = Gate {
        large: true,
        ..Gate::ALWAYS
    };
    const HARNESS: Gate = Gate {
        harness: true,
        ..Gate::ALWAYS
    };
    const fn needs(needs: &'static [Cap]) -> Gate {
        Gate {
            needs,
            ..Gate::ALWAYS
        }
    }
    const fn lacks(lacks: &'static [Cap]) -> Gate {
        Gate {
            lacks,
            ..Gate::ALWAYS
        }
    }

    /// Why the case must be skipped, if it must.
    fn skip_reason(&self, caps: &Capabilities, options: &SuiteOptions) -> Option<String> {
        if self.large && !options.large {
            return Some("large cases are turned off".to_string());
        }
        if self.harness && options.harness.is_none() {
            return Some(
                "needs a harness that can restart the provider or tear its writes \
                 (`tapedeck provider test` gives one)"
                    .to_string(),
            );
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
    /// The contract rule it checks, in one line.
    rule: &'static str,
}

/// Declares the suite's cases once: the name table behind [`case_names`] and
/// the generic constructor of the bodies.
macro_rules! suite {
    ($( $name:literal, $gate:expr, $body:path, $rule:literal; )*) => {
        const TABLE: &[(&str, Gate, &str)] = &[ $( ($name, $gate, $rule) ),* ];

        fn registry<S: TapeStore + 'static>() -> Vec<Case<S>> {
            vec![ $( {
                fn body<S: TapeStore + 'static>(cx: Arc<Ctx<S>>) -> CaseFuture {
                    Box::pin($body(cx))
                }
                Case { name: $name, gate: $gate, body: body::<S>, rule: $rule }
            } ),* ]
        }
    };
}

const DELETE: &[Cap] = &[Cap::Delete];
const SEARCH: &[Cap] = &[Cap::Search];
const TEXT: &[Cap] = &[Cap::Search, Cap::TextSearch];
const TEXT_SEARCH: &[Cap] = &[Cap::TextSearch];

suite! {
    "write/round-trip", Gate::ALWAYS, write::round_trip,
        "create starts a recording tape with 0 frames; append, finish and get agree on header, state, totals and digest; read-frames returns every frame";
    "write/header-preserved", Gate::ALWAYS, write::header_preserved,
        "get and list return the header exactly as given: empty, Unicode and multi-line text, duplicate tag keys in order, extreme created-at";
    "write/next-seq", Gate::ALWAYS, write::next_seq,
        "next-seq starts at 0 and append returns the new next-seq after each batch; an empty batch succeeds and changes nothing";
    "write/append-idempotent", Gate::ALWAYS, write::append_idempotent,
        "append: frames below next-seq are redelivered copies — skip them without comparing payloads, append the rest, answer the new next-seq";
    "write/append-gap-rejected", Gate::ALWAYS, write::append_gap_rejected,
        "append: a batch whose first new seq is above next-seq fails with invalid-input, stores nothing, and the writer stays usable";
    "write/append-non-consecutive-rejected", Gate::ALWAYS, write::append_non_consecutive_rejected,
        "append: a batch with non-consecutive seqs (holes, repeats, reversed) fails with invalid-input and stores nothing, not even its valid head";
    "write/finish-wrong-summary", Gate::ALWAYS, write::finish_wrong_summary,
        "finish: a summary whose frame-count or byte-count differs from what is stored fails with invalid-input and leaves the tape recording";
    "write/finish-idempotent", Gate::ALWAYS, write::finish_idempotent,
        "finish on an already finished tape with the same summary succeeds and returns the same tape-info, which get also returns";
    "write/finish-digest-verbatim", Gate::ALWAYS, write::finish_digest_verbatim,
        "finish stores the summary's digest verbatim, whatever its length, and finish and get return it unchanged; no digest stays none";
    "write/finish-end-reasons", Gate::ALWAYS, write::finish_end_reasons,
        "finish moves the tape to finished, crashed or aborted per reason, records ended-at, digest and seal, and keeps every frame";
    "write/finish-empty-tape", Gate::ALWAYS, write::finish_empty_tape,
        "finish succeeds on a tape with no frames (frame-count 0), and the finished tape reads back empty";
    "write/finished-tape-immutable", Gate::ALWAYS, write::finished_tape_immutable,
        "after finish the tape never changes: append fails with a storage-error, finish with another summary gives invalid-input, abort changes nothing";
    "write/abort", Gate::ALWAYS, write::abort,
        "abort moves the tape to aborted keeping the frames stored so far (also none), and a second abort succeeds and changes nothing";
    "write/drop-leaves-recording", Gate::ALWAYS, write::drop_leaves_recording,
        "dropping a writer without finish or abort leaves the tape recording with every appended frame; resume continues at next-seq";
    "write/resume", Gate::ALWAYS, write::resume,
        "resume gives a writer whose next-seq is the number of stored frames, every time; redelivered frames below it are skipped";
    "write/resume-ended-rejected", Gate::ALWAYS, write::resume_ended_rejected,
        "resume of a finished, crashed or aborted tape fails with invalid-input and changes nothing; resume of a missing tape fails with not-found";
    "write/redelivery-after-resume", Gate::ALWAYS, write::redelivery_after_resume,
        "after resume, append skips frames below next-seq unseen (even altered) and appends only the new part of straddling batches; nothing twice";
    "read/paging-max-frames", Gate::ALWAYS, read::paging_max_frames,
        "read-frames returns at most max-frames frames, in seq order, from from-seq; paging through the tape returns every frame once";
    "read/paging-max-bytes", Gate::ALWAYS, read::paging_max_bytes,
        "read-frames ends a page once its payloads reach max-bytes (the frame reaching it may be included); paging with any max-bytes loses nothing";
    "read/oversized-frame", Gate::ALWAYS, read::oversized_frame,
        "read-frames returns a frame larger than max-bytes (even with max-bytes 0) alone, as the only frame of the page";
    "read/from-middle", Gate::ALWAYS, read::from_middle,
        "read-frames starts exactly at from-seq and returns a non-empty page while frames remain at or after it";
    "read/past-end", Gate::ALWAYS, read::past_end,
        "read-frames at or past the end (up to the largest u64, or on a tape with no frames) returns an empty list, not an error";
    "read/max-frames-zero", Gate::ALWAYS, read::max_frames_zero,
        "read-frames with max-frames 0 fails with invalid-input (a page must be asked at least one frame)";
    "read/recording-tape", Gate::ALWAYS, read::recording_tape,
        "read-frames works on a recording tape and shows each batch as soon as append returns, and after the writer is dropped";
    "payload/binary", Gate::ALWAYS, payload::binary,
        "payloads are opaque bytes: every byte value and invalid UTF-8 read back byte for byte, whether written by append or save";
    "payload/empty", Gate::ALWAYS, payload::empty,
        "empty payloads are stored, count 0 toward byte-count and read back empty, whether written by append or save";
    "payload/unicode", Gate::ALWAYS, payload::unicode,
        "Unicode payloads (emoji, RTL, combining marks, BOM) read back byte for byte, never normalised or re-encoded";
    "payload/control-bytes", Gate::ALWAYS, payload::control_bytes,
        "payloads with newlines, CR, NUL and other control bytes read back byte for byte — a line-based store must escape them";
    "payload/flags-and-directions", Gate::ALWAYS, payload::flags_and_directions,
        "each frame's direction, not-json flag and timestamp (extreme or going backwards) are stored and returned as given";
    "payload/large-frame", Gate::ALWAYS, payload::large_frame,
        "a 4 MiB frame is stored whole, counted in byte-count, and returned whole by read-frames even with a small max-bytes";
    "save/round-trip", Gate::ALWAYS, save::round_trip,
        "save stores header, frames and summary and returns a finished tape-info that get matches; resume of the saved tape fails with invalid-input";
    "save/end-reasons", Gate::ALWAYS, save::end_reasons,
        "save's reason sets the state (completed: finished, crashed: crashed, aborted: aborted) and records ended-at, digest, seal and frames";
    "save/empty", Gate::ALWAYS, save::empty,
        "save accepts a tape with no frames and stores it finished with frame-count 0 and nothing to read";
    "save/already-exists", Gate::ALWAYS, save::already_exists,
        "save over an existing id (recording or ended) fails with already-exists and leaves that tape, and its live writer, untouched";
    "save/summary-mismatch", Gate::ALWAYS, save::summary_mismatch,
        "save with a summary whose frame-count or byte-count disagrees with the frames fails with invalid-input and stores nothing";
    "save/bad-sequence", Gate::ALWAYS, save::bad_sequence,
        "save with frames not numbered 0.. consecutively (late start, gap, repeat, disorder) fails with invalid-input and stores nothing";
    "save/many-frames", Gate::ALWAYS, save::many_frames,
        "save stores 5,000 frames in one call, with the right totals, and every frame reads back";
    "append-many/several-tapes", Gate::ALWAYS, append_many::several_tapes,
        "append-many does resume then append for each entry, in any id order, returning each tape's new next-seq; an empty entry returns next-seq";
    "append-many/not-found", Gate::ALWAYS, append_many::not_found,
        "append-many: an entry for a missing tape fails with not-found and does not create it; the other entries are applied";
    "append-many/not-recording", Gate::ALWAYS, append_many::not_recording,
        "append-many: an entry for a finished or aborted tape fails with invalid-input and leaves it unchanged; the other entries are applied";
    "append-many/gap", Gate::ALWAYS, append_many::gap,
        "append-many: an entry that would leave a gap fails with invalid-input and stores nothing of it; the other entries are applied";
    "append-many/non-consecutive", Gate::ALWAYS, append_many::non_consecutive,
        "append-many: an entry with non-consecutive seqs fails with invalid-input and stores none of it, not even its head; others are applied";
    "append-many/repeated-id", Gate::ALWAYS, append_many::repeated_id,
        "append-many: the first entry for an id is applied; a later entry repeating that id fails with invalid-input and stores nothing";
    "append-many/mixed-failures", Gate::ALWAYS, append_many::mixed,
        "append-many: entries fail independently — every good entry is applied, whatever fails before, between or after it";
    "append-many/redelivery", Gate::ALWAYS, append_many::redelivery,
        "append-many skips frames below next-seq unseen, as append does; repeating the same call returns the same next-seqs and changes nothing";
    "append-many/empty", Gate::ALWAYS, append_many::empty,
        "append-many with no entries returns no results; an entry with no frames returns the tape's next-seq and changes nothing";
    "terms/verbatim", Gate::ALWAYS, terms::verbatim,
        "frame terms are stored verbatim and in order (up to 32, any characters, 256 bytes) whether written by append, save or append-many";
    "terms/exact-match", Gate::needs(SEARCH), terms::exact_match,
        "search matches terms by exact byte equality: no prefix, substring, case folding, Unicode normalisation, trimming or wildcards";
    "terms/all-over-tape", Gate::needs(SEARCH), terms::all_over_tape,
        "search: every query term must be on some frame of the tape, not necessarily the same; order and repeats ignored; no terms matches all";
    "terms/payload-not-parsed", Gate::needs(SEARCH), terms::payload_not_parsed,
        "search matches a frame's terms only, never what its payload says; text search still looks at the raw payload bytes";
    "terms/every-write-path", Gate::needs(SEARCH), terms::every_write_path,
        "search finds terms on frames stored by save and append-many just as on frames stored by append";
    "attributes/verbatim", Gate::ALWAYS, attributes::verbatim,
        "frame attributes are stored verbatim and in order (repeated keys, empty values, max sizes) whether written by append, save or append-many";
    "envelope/verbatim", Gate::ALWAYS, envelope::verbatim,
        "the header's envelope is stored verbatim (none, empty, any bytes, up to 16 KiB) and returned unchanged by get, list and search";
    "seal/finish-verbatim", Gate::ALWAYS, seal::finish_verbatim,
        "finish stores the summary's seal verbatim with any reason; finish, get, list and search return it unchanged; none stays none";
    "seal/save-verbatim", Gate::ALWAYS, seal::save_verbatim,
        "save stores the summary's seal verbatim with any reason; save, get, list and search return it unchanged; none stays none";
    "seal/finish-aborted", Gate::ALWAYS, seal::finish_aborted,
        "finish with reason aborted gives an aborted tape keeping summary, seal and frames; finish again is idempotent; resume gives invalid-input";
    "list/order", Gate::ALWAYS, list::order,
        "list returns tapes newest first: created-at descending, then id descending, over the whole store";
    "list/paging", Gate::ALWAYS, list::paging,
        "list pages with any limit, followed by next-cursor, return every matching tape exactly once, in order, at most limit per page";
    "list/paging-stable-new-newest", Gate::ALWAYS, list::paging_stable_new_newest,
        "list paging is stable: a tape created after page 1 never appears later (snapshot by your own insertion stamp, not created-at)";
    "list/paging-stable-new-backdated", Gate::ALWAYS, list::paging_stable_new_backdated,
        "list paging is stable even for a back-dated new tape: cursor = keyset position (created-at, id) plus your own insertion stamp, never an offset";
    "list/bad-cursor", Gate::ALWAYS, list::bad_cursor,
        "list with a cursor this provider did not issue fails with invalid-input (not-found is also accepted)";
    "list/limit-bounds", Gate::ALWAYS, list::limit_bounds,
        "list with limit 0 or above 1000 fails with invalid-input; limits 1 and 1000 work, and a page cut short by the limit has a next-cursor";
    "list/info-matches-get", Gate::ALWAYS, list::info_matches_get,
        "list returns for each tape the same tape-info as get, in every state";
    "list/filter-session", Gate::ALWAYS, list::filter_session,
        "list filter session-id matches exactly: case-sensitive, no prefix; an empty session-id matches tapes whose session-id is empty";
    "list/filter-name", Gate::ALWAYS, list::filter_name,
        "list filter name-contains matches a case-insensitive substring of the name, Unicode included";
    "list/filter-tags", Gate::ALWAYS, list::filter_tags,
        "list filter tags: every (key, value) pair given must be among the tape's tags, compared case-sensitively; repeated pairs are harmless";
    "list/filter-created", Gate::ALWAYS, list::filter_created,
        "list filter created-since is inclusive and created-until exclusive; an empty or inverted range matches nothing";
    "list/filter-state", Gate::ALWAYS, list::filter_state,
        "list filter state returns only tapes in that state: recording, finished, aborted or crashed";
    "list/filter-combined", Gate::ALWAYS, list::filter_combined,
        "list: every filter field that is set must match (logical AND)";
    "search/method", Gate::needs(SEARCH), search::method,
        "search by a host-derived method: or tool: term matches those terms exactly; near misses, prefixes and the empty method match nothing";
    "search/method-with-filter", Gate::needs(SEARCH), search::method_with_filter,
        "search: the terms condition and the tape filter (state, session-id, tags) must all hold";
    "search/filter-only", Gate::needs(SEARCH), search::filter_only,
        "search without terms or text returns exactly what list returns for the same filter, in the same order";
    "search/paging", Gate::needs(SEARCH), search::paging,
        "search pages with any limit, followed by next-cursor, return every match exactly once, newest first, at most limit per page";
    "search/bad-cursor-and-limit", Gate::needs(SEARCH), search::bad_cursor_and_limit,
        "search fails with invalid-input for a limit outside 1..=1000 and for a cursor it did not issue (not-found accepted for the cursor)";
    "search/text", Gate::needs(TEXT), search::text,
        "search text matches a case-sensitive substring of one frame's raw payload, Unicode included, never across two frames";
    "search/text-raw-bytes", Gate::needs(TEXT), search::text_raw_bytes,
        "search text matches raw payload bytes: inside binary payloads, and JSON escapes as written, never decoded";
    "search/text-and-method", Gate::needs(TEXT), search::text_and_method,
        "search with both terms and text returns only tapes where both hold, each on any frame";
    "delete/removes-everywhere", Gate::needs(DELETE), delete::removes_everywhere,
        "after delete, get, read-frames, resume and delete give not-found and list and search omit the tape; other tapes are untouched";
    "delete/any-state", Gate::needs(DELETE), delete::any_state,
        "delete removes a tape in any state (recording, finished, crashed, aborted, saved, empty); get then fails with not-found";
    "delete/id-reusable", Gate::needs(DELETE), delete::id_reusable,
        "after delete the id is free for create and save, and nothing of the old tape (frames, end, digest) shows through";
    "delete/missing", Gate::needs(DELETE), delete::missing,
        "delete of a tape that does not exist fails with not-found";
    "delete/list-paging-stable", Gate::needs(DELETE), delete::list_paging_stable,
        "deleting tapes between list pages neither skips nor repeats any tape that still exists";
    "stats/deltas", Gate::ALWAYS, stats::deltas,
        "stats totals move by exactly what create, append, save, finish and abort stored; stored-bytes is non-zero once payloads are stored";
    "stats/delete-deltas", Gate::needs(DELETE), stats::delete_deltas,
        "stats: delete takes the tape, its frames and bytes off the totals, and off recording-count if it was recording";
    "stats/match-list", Gate::ALWAYS, stats::match_list,
        "stats tape-count, recording-count, frame-count and byte-count equal the sums over a list of every tape";
    "errors/not-found", Gate::ALWAYS, errors::not_found,
        "get, read-frames, resume and delete of a missing tape fail with not-found, also for an id that merely extends an existing one";
    "errors/already-exists", Gate::ALWAYS, errors::already_exists,
        "create and save over an existing id, in any state, fail with already-exists and leave the tape and its live writer untouched";
    "errors/invalid-ids", Gate::ALWAYS, errors::invalid_ids,
        "create, save, get, read-frames, resume and delete reject an invalid tape-id with invalid-input and create nothing";
    "errors/valid-id-edges", Gate::ALWAYS, errors::valid_id_edges,
        "accept every valid tape-id: 128 bytes, letters, digits, - _ and single dots; ids differing only in case are distinct tapes";
    "errors/undeclared-delete", Gate::lacks(DELETE), errors::undeclared_delete,
        "without the delete capability, delete fails with unsupported and removes nothing";
    "errors/undeclared-search", Gate::lacks(SEARCH), errors::undeclared_search,
        "without the search capability, search fails with unsupported, even with no terms";
    "errors/undeclared-text-search", Gate::lacks(TEXT_SEARCH), errors::undeclared_text_search,
        "without the text-search capability, search with a text condition fails with unsupported";
    "concurrency/writers", Gate::ALWAYS, concurrency::writers,
        "concurrent writers on different tapes do not interfere: each tape ends with exactly its own frames, in order";
    "concurrency/read-while-writing", Gate::ALWAYS, concurrency::read_while_writing,
        "get and read-frames during appends see a growing, consistent prefix of the tape, never shrinking";
    "concurrency/create-same-id", Gate::ALWAYS, concurrency::create_same_id,
        "concurrent create or save of one id: exactly one succeeds, the others fail with already-exists, and the tape holds the winner's data";
    "init/unknown-setting", Gate::HARNESS, init::unknown_setting,
        "init refuses a config with a setting it does not know, with invalid-input naming the setting (a typo must not be ignored)";
    "soak/one-instance", Gate::ALWAYS, soak::one_instance,
        "calls release what they open: 640 tapes and 1,000 reads through the same instances leave the handles they hold where they were";
    "faults/torn-append-then-resume", Gate::HARNESS, torn::append_then_resume,
        "after a crash mid-append, resume keeps every acknowledged frame, drops the torn tail and the tape goes on";
    "large/many-frames", Gate::LARGE, large::many_frames,
        "a 100,000-frame, 10+ MiB tape appended 500 at a time is stored whole and reads back in full and from the middle";
    "large/big-frames", Gate::LARGE, large::big_frames,
        "1 MiB frames appended two at a time are stored whole and read back with 3 MiB pages and one frame at a time";
}

/// The names of every case, in the order they run.
pub fn case_names() -> Vec<&'static str> {
    TABLE.iter().map(|(name, _, _)| *name).collect()
}

/// The contract rule case `name` checks, in one line.
pub fn case_rule(name: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, rule)| *rule)
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
        let repeat = options.repeat.max(1);
        let mut run = 1;
        let status = match case.gate.skip_reason(&caps, options) {
            Some(reason) => CaseStatus::Skipped(reason),
            None => loop {
                let cx = Arc::new(Ctx::new(
                    store.clone(),
                    options.clone(),
                    &run_id,
                    index,
                    run,
                    case.name,
                ));
                match run_one(&case, cx, options.case_timeout).await {
                    CaseStatus::Passed if run < repeat => run += 1,
                    CaseStatus::Failed(why) if repeat > 1 => {
                        break CaseStatus::Failed(format!("run {run} of {repeat}: {why}"));
                    }
                    status => break status,
                }
            },
        };
        let outcome = CaseOutcome {
            name: case.name,
            rule: case.rule,
            run,
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
