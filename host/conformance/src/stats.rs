//! `stats`: totals move by exactly what a case wrote, and agree with `list`.
//!
//! Cases run one at a time, so no other case writes meanwhile; a store that
//! something else writes to during the suite can fail these cases.

use super::check::{ensure, ok};
use super::fixtures::{byte_sum, json_frames, seq_frame, summary_of};
use super::ops::{Listing, append, finish};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, Frame, StorageStats, TapeFilter, TapeState};

async fn stats<S: TapeStore>(cx: &Ctx<S>, when: &str) -> Result<StorageStats, String> {
    ok(cx.store.stats().await, &format!("stats() {when}"))
}

/// Checks `after - before` field by field (tape, recording, frame and byte
/// counts).
fn delta(before: &StorageStats, after: &StorageStats, want: [i64; 4], what: &str) -> CaseResult {
    let fields = [
        ("tape_count", before.tape_count, after.tape_count),
        (
            "recording_count",
            before.recording_count,
            after.recording_count,
        ),
        ("frame_count", before.frame_count, after.frame_count),
        ("byte_count", before.byte_count, after.byte_count),
    ];
    for ((name, b, a), w) in fields.into_iter().zip(want) {
        let got = a as i128 - b as i128;
        ensure!(
            got == w as i128,
            "{what}: stats().{name} went from {b} to {a} ({got:+}), expected {w:+}"
        );
    }
    Ok(())
}

/// Creating, appending, saving, finishing and aborting move the totals by
/// exactly what was written.
pub(crate) async fn deltas<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let s0 = stats(&cx, "at the start").await?;

    let a = cx.id("rec");
    let a_frames: Vec<Frame> = (0..7).map(seq_frame).collect();
    let mut w = cx.create(cx.header(&a)).await?;
    let s1 = stats(&cx, "after create").await?;
    delta(&s0, &s1, [1, 1, 0, 0], "after create")?;
    append(&mut w, &a_frames, 7).await?;
    drop(w);
    let a_bytes = byte_sum(&a_frames) as i64;
    let s2 = stats(&cx, "after appending 7 frames").await?;
    delta(&s1, &s2, [0, 0, 7, a_bytes], "after appending 7 frames")?;
    ensure!(
        s2.stored_bytes > 0,
        "stats().stored_bytes is 0 after storing {a_bytes} payload bytes"
    );

    let b = cx.id("saved");
    let b_frames = json_frames(0..5);
    cx.save(
        cx.header(&b),
        &b_frames,
        summary_of(&b_frames),
        EndReason::Completed,
    )
    .await?;
    let b_bytes = byte_sum(&b_frames) as i64;
    let s3 = stats(&cx, "after save").await?;
    delta(&s2, &s3, [1, 0, 5, b_bytes], "after saving 5 frames")?;

    let mut w = cx.resume(&a).await?;
    finish(&mut w, summary_of(&a_frames), EndReason::Completed).await?;
    drop(w);
    let s4 = stats(&cx, "after finish").await?;
    delta(
        &s3,
        &s4,
        [0, -1, 0, 0],
        "after finishing the recording tape",
    )?;

    let c = cx.id("aborted");
    let mut w = cx.create(cx.header(&c)).await?;
    append(&mut w, &json_frames(0..1), 1).await?;
    ok(w.abort("conformance").await, &format!("abort(`{c}`)"))?;
    drop(w);
    let c_bytes = byte_sum(&json_frames(0..1)) as i64;
    let s5 = stats(&cx, "after abort").await?;
    delta(
        &s4,
        &s5,
        [1, 0, 1, c_bytes],
        "after creating, appending to and aborting a tape",
    )?;
    delta(
        &s0,
        &s5,
        [3, 0, 13, a_bytes + b_bytes + c_bytes],
        "over the whole case",
    )
}

/// Deleting a tape takes its frames and bytes off the totals.
pub(crate) async fn delete_deltas<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let done = cx.id("done");
    let frames = json_frames(0..6);
    cx.save(
        cx.header(&done),
        &frames,
        summary_of(&frames),
        EndReason::Completed,
    )
    .await?;
    let live = cx.id("live");
    cx.record(cx.header(&live), &frames[..2], None).await?;
    let s0 = stats(&cx, "before delete").await?;
    ok(cx.store.delete(&done).await, &format!("delete(`{done}`)"))?;
    let s1 = stats(&cx, "after deleting a finished tape").await?;
    delta(
        &s0,
        &s1,
        [-1, 0, -6, -(byte_sum(&frames) as i64)],
        "after deleting a finished tape",
    )?;
    ok(cx.store.delete(&live).await, &format!("delete(`{live}`)"))?;
    let s2 = stats(&cx, "after deleting a recording tape").await?;
    delta(
        &s1,
        &s2,
        [-1, -1, -2, -(byte_sum(&frames[..2]) as i64)],
        "after deleting a recording tape",
    )
}

/// The totals are the sums over `list` of every tape.
pub(crate) async fn match_list<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    // Make sure there is something in every state of interest.
    let frames = json_frames(0..3);
    cx.record(cx.header(&cx.id("live")), &frames, None).await?;
    cx.record(
        cx.header(&cx.id("done")),
        &frames,
        Some(EndReason::Completed),
    )
    .await?;
    let before = stats(&cx, "before listing").await?;
    let tapes = cx
        .list_all(Listing::List(&TapeFilter::default()), 1000)
        .await?;
    let after = stats(&cx, "after listing").await?;
    ensure!(
        before == after,
        "stats() changed while listing: {before:?}, then {after:?}"
    );
    let sum = StorageStats {
        tape_count: tapes.len() as u64,
        recording_count: tapes
            .iter()
            .filter(|t| t.state == TapeState::Recording)
            .count() as u64,
        frame_count: tapes.iter().map(|t| t.frame_count).sum(),
        byte_count: tapes.iter().map(|t| t.byte_count).sum(),
        stored_bytes: after.stored_bytes,
    };
    ensure!(
        sum == after,
        "stats() reports {} tapes ({} recording, {} frames, {} bytes), but list of every tape adds up to \
         {} tapes ({} recording, {} frames, {} bytes)",
        after.tape_count,
        after.recording_count,
        after.frame_count,
        after.byte_count,
        sum.tape_count,
        sum.recording_count,
        sum.frame_count,
        sum.byte_count
    );
    Ok(())
}
