//! The summary's seal belongs to the host: opaque bytes (up to 1 KiB) given
//! to `finish` or `save`, returned verbatim by `get`, `list` and `search`,
//! whatever the end reason; none stays none.

use super::check::{self, ensure, ok};
use super::fixtures::{json_frames, opaque_bytes, summary_of};
use super::ops::{Listing, append, finish};
use super::search::terms_query;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::terms::MAX_SEAL;
use tapedeck_types::{EndReason, TapeFilter, TapeInfo, TapeState, TapeSummary};

/// Seals a provider might mangle: none, empty, a single 0x00 or 0xff, every
/// byte value, invalid UTF-8, a signature's 64 bytes, the largest allowed.
fn seals() -> Vec<(&'static str, Option<Vec<u8>>)> {
    vec![
        ("none", None),
        ("empty", Some(Vec::new())),
        ("zero", Some(vec![0x00])),
        ("ff", Some(vec![0xff])),
        ("all-bytes", Some((0..=255u8).collect())),
        (
            "bad-utf8",
            Some(vec![0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80]),
        ),
        ("sig", Some(opaque_bytes(64, 64))),
        ("max", Some(opaque_bytes(1024, MAX_SEAL))),
    ]
}

/// The three end reasons, taken in turn.
const REASONS: [EndReason; 3] = [EndReason::Completed, EndReason::Crashed, EndReason::Aborted];

/// Checks that `list` (and, when declared, `search`) by this case's session
/// return every tape of `want` as `want` says.
async fn listed_everywhere<S: TapeStore>(cx: &Ctx<S>, want: &[TapeInfo]) -> CaseResult {
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    for limit in [1000, 2] {
        let listed = cx.list_all(Listing::List(&filter), limit).await?;
        check::listed_as(&listed, want, &format!("list by session (limit {limit})"))?;
    }
    if cx.caps.search {
        let q = terms_query(cx, Vec::new(), None);
        let found = cx.list_all(Listing::Search(&q), 1000).await?;
        check::listed_as(&found, want, "search by session")?;
    }
    Ok(())
}

/// A seal given to `finish` comes back verbatim from `finish`, `get`,
/// `list` and `search`, with every end reason; finishing again with the
/// same summary returns the same.
pub(crate) async fn finish_verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let mut want = Vec::new();
    for (i, (label, seal)) in seals().into_iter().enumerate() {
        let reason = REASONS[i % REASONS.len()];
        let id = cx.id(label);
        let header = cx.header(&id);
        let summary = TapeSummary {
            seal,
            ..summary_of(&frames)
        };
        let mut w = cx.create(header.clone()).await?;
        append(&mut w, &frames, 3).await?;
        let info = finish(&mut w, summary.clone(), reason).await?;
        cx.check_ended("finish", &info, &header, reason, &summary, &frames)
            .await?;
        let call = format!("finish(`{id}`, {reason:?}) a second time with the same summary");
        let again = ok(w.finish(summary, reason).await, &call)?;
        if let Some(diff) = check::info_diff(&again, &info) {
            return Err(format!("{call} returned a different info: its {diff}"));
        }
        want.push(info);
    }
    listed_everywhere(&cx, &want).await
}

/// A seal given to `save` comes back verbatim from `save`, `get`, `list`
/// and `search`, with every end reason.
pub(crate) async fn save_verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..2);
    let mut want = Vec::new();
    for (i, (label, seal)) in seals().into_iter().enumerate() {
        let reason = REASONS[i % REASONS.len()];
        let id = cx.id(label);
        let header = cx.header(&id);
        let summary = TapeSummary {
            seal,
            ..summary_of(&frames)
        };
        let info = cx
            .save(header.clone(), &frames, summary.clone(), reason)
            .await?;
        cx.check_ended("save", &info, &header, reason, &summary, &frames)
            .await?;
        want.push(info);
    }
    listed_everywhere(&cx, &want).await
}

/// `finish` with reason `aborted` records the summary: the tape is
/// `aborted` with the summary's end time, digest and seal and every frame;
/// finishing again with the same summary changes nothing; the tape cannot
/// be resumed.
pub(crate) async fn finish_aborted<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("aborted");
    let header = cx.header(&id);
    let frames = json_frames(0..5);
    let summary = TapeSummary {
        seal: Some(opaque_bytes(7, 96)),
        ..summary_of(&frames)
    };
    let mut w = cx.create(header.clone()).await?;
    append(&mut w, &frames, 5).await?;
    let info = finish(&mut w, summary.clone(), EndReason::Aborted).await?;
    ensure!(
        info.state == TapeState::Aborted,
        "finish(`{id}`, Aborted) returned state {}, expected aborted",
        info.state.as_str()
    );
    cx.check_ended(
        "finish",
        &info,
        &header,
        EndReason::Aborted,
        &summary,
        &frames,
    )
    .await?;
    let call = format!("finish(`{id}`, Aborted) a second time with the same summary");
    let again = ok(w.finish(summary, EndReason::Aborted).await, &call)?;
    if let Some(diff) = check::info_diff(&again, &info) {
        return Err(format!("{call} returned a different info: its {diff}"));
    }
    drop(w);
    let got = cx.get(&id).await?;
    if let Some(diff) = check::info_diff(&got, &info) {
        return Err(format!("get(`{id}`) after {call}: its {diff}"));
    }
    check::expect_kind(
        cx.store.resume(&id).await.map(drop),
        tapedeck_types::ErrorKind::InvalidInput,
        &format!("resume(`{id}`) of a tape finished with reason aborted"),
    )?;
    listed_everywhere(&cx, &[info]).await
}
