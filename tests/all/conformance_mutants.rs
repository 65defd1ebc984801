//! The conformance suite catches broken providers: each mutant wraps the
//! native fs store with one deliberate contract violation, and the cases
//! that check that part of the contract must fail (with a reason naming it)
//! while the suite carries on.

use std::sync::Arc;
use std::time::Duration;
use tapedeck::conformance::{self, CaseStatus, SuiteOptions};
use tapedeck::store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_tests::native::{self, NativeFsStore, NativeFsWriter};
use tapedeck_types::{EndReason, Frame, StorageStats, TapeFilter, TapeInfo, TapePage, TapeSummary};

/// One deliberate contract violation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    /// `list` drops the last tape of every page that has a next cursor.
    ListDropsLast,
    /// `list` matches names case-sensitively.
    NameCaseSensitive,
    /// `read_frames` ignores `max_bytes`.
    ReadIgnoresMaxBytes,
    /// `read_frames` from the middle starts one frame late.
    ReadSkipsOne,
    /// `append` renumbers a batch that leaves a gap instead of refusing it.
    AcceptsGaps,
    /// `finish` drops the digest.
    DropsDigest,
    /// `get` says `not-found` for invalid ids.
    NoIdCheckInGet,
    /// `stats` counts one frame too many.
    StatsOffByOne,
    /// `get` never answers.
    GetHangs,
}

struct Mutant {
    inner: NativeFsStore,
    bug: Bug,
}

struct MutantWriter {
    inner: NativeFsWriter,
    bug: Bug,
}

// Each mutant overrides only the calls its bug lives in; the rest are
// forwarded (`Layer`).
impl tapedeck::store::Layer for Mutant {
    type Inner = NativeFsStore;
    type Writer = MutantWriter;
    fn inner(&self) -> &NativeFsStore {
        &self.inner
    }
    fn wrap_writer(&self, inner: NativeFsWriter) -> MutantWriter {
        MutantWriter {
            inner,
            bug: self.bug,
        }
    }
    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        if self.bug == Bug::GetHangs {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.bug == Bug::NoIdCheckInGet && tapedeck_types::validate_tape_id(id).is_err() {
            return Err(tapedeck::error::ProviderError::Storage {
                provider: "mutant".into(),
                error: tapedeck_types::StorageError::not_found(id),
            });
        }
        self.inner.get(id).await
    }
    async fn read_frames(
        &self,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        match self.bug {
            Bug::ReadIgnoresMaxBytes => {
                self.inner.read_frames(id, from, max_frames, u64::MAX).await
            }
            Bug::ReadSkipsOne if from > 0 => {
                self.inner
                    .read_frames(id, from + 1, max_frames, max_bytes)
                    .await
            }
            _ => {
                self.inner
                    .read_frames(id, from, max_frames, max_bytes)
                    .await
            }
        }
    }
    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        let mut page = match (self.bug, &filter.name_contains) {
            (Bug::NameCaseSensitive, Some(name)) => {
                let mut page = self.inner.list(filter, cursor, limit).await?;
                page.tapes.retain(|t| t.header.name.contains(name.as_str()));
                page
            }
            _ => self.inner.list(filter, cursor, limit).await?,
        };
        if self.bug == Bug::ListDropsLast && page.next_cursor.is_some() {
            page.tapes.pop();
        }
        Ok(page)
    }
    async fn stats(&self) -> ProviderResult<StorageStats> {
        let mut s = self.inner.stats().await?;
        if self.bug == Bug::StatsOffByOne {
            s.frame_count += 1;
        }
        Ok(s)
    }
}

impl tapedeck::store::WriterLayer for MutantWriter {
    type Inner = NativeFsWriter;
    fn inner(&self) -> &NativeFsWriter {
        &self.inner
    }
    fn inner_mut(&mut self) -> &mut NativeFsWriter {
        &mut self.inner
    }
    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let next = self.inner.next_seq();
        if self.bug == Bug::AcceptsGaps && frames.first().is_some_and(|f| f.seq > next) {
            let renumbered: Vec<Frame> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| Frame {
                    seq: next + i as u64,
                    ..f.clone()
                })
                .collect();
            return self.inner.append(&renumbered).await;
        }
        self.inner.append(frames).await
    }
    async fn finish(
        &mut self,
        mut summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        if self.bug == Bug::DropsDigest {
            summary.digest = None;
        }
        self.inner.finish(summary, reason).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutant_is_caught() {
    let mutants = [
        (Bug::ListDropsLast, "list/paging", "list/paging", "skipped"),
        (
            Bug::NameCaseSensitive,
            "list/filter-name",
            "list/filter-name",
            "returned our tapes",
        ),
        (
            Bug::ReadIgnoresMaxBytes,
            "read/paging-max-bytes",
            "read/paging-max-bytes",
            "max_bytes",
        ),
        (
            Bug::ReadSkipsOne,
            "read/from-middle",
            "read/from-middle",
            "first, expected",
        ),
        (
            Bug::AcceptsGaps,
            "write/append-gap",
            "write/append-gap-rejected",
            "succeeded, expected `invalid-input`",
        ),
        (
            Bug::DropsDigest,
            "write/finish-digest",
            "write/finish-digest-verbatim",
            "digest",
        ),
        (
            Bug::NoIdCheckInGet,
            "errors/invalid-ids",
            "errors/invalid-ids",
            "expected `invalid-input`",
        ),
        (
            Bug::StatsOffByOne,
            "stats/",
            "stats/match-list",
            "list of every tape adds up",
        ),
        (
            Bug::GetHangs,
            "errors/not-found",
            "errors/not-found",
            "timed out",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (bug, filter, case, reason)) in mutants.into_iter().enumerate() {
        let inner = native::unsynced(&dir.path().join(format!("m{i}")));
        let options = SuiteOptions {
            filter: Some(filter.to_string()),
            case_timeout: Duration::from_secs(if bug == Bug::GetHangs { 1 } else { 60 }),
            large: false,
            ..SuiteOptions::default()
        };
        let report = conformance::run(Arc::new(Mutant { inner, bug }), &options, |_| {}).await;
        let outcome = report
            .outcomes
            .iter()
            .find(|o| o.name == case)
            .unwrap_or_else(|| panic!("{bug:?}: case {case} did not run"));
        match &outcome.status {
            CaseStatus::Failed(why) => {
                assert!(
                    why.contains(reason),
                    "{bug:?}: {case} failed for another reason: {why}"
                );
                println!("{bug:?} caught by {case}: {why}");
            }
            other => panic!("{bug:?} was not caught by {case}: {other:?}"),
        }
    }
}
