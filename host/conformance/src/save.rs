//! `save`: a whole tape at once, atomically.

use super::check::{self, ensure, eq, expect_kind};
use super::fixtures::{json_frames, raw_frame, renumber, seq_frame, summary_of};
use super::ops::append;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeState, TapeSummary};

/// JSON frames with a binary one and an empty one among them.
fn mixed_frames() -> Vec<Frame> {
    let mut frames = json_frames(0..6);
    frames.push(raw_frame(6, vec![0u8, 0xff, b'\n', 0x80]));
    frames.push(raw_frame(7, ""));
    frames.extend(renumber(&json_frames(0..2), 8));
    frames
}

/// Checks that `id` does not exist (after a save that must have stored
/// nothing).
async fn absent<S: TapeStore>(cx: &Ctx<S>, id: &str, after: &str) -> CaseResult {
    match cx.store.get(id).await {
        Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => Ok(()),
        Err(e) => Err(format!(
            "after {after}, get(`{id}`) failed with `{}`, expected `not-found` ({e})",
            e.code()
        )),
        Ok(info) => Err(format!(
            "after {after}, tape `{id}` exists ({} frames, state {}): save is not atomic",
            info.frame_count,
            info.state.as_str()
        )),
    }
}

/// save → get → read_frames; the saved tape cannot be resumed.
pub(crate) async fn round_trip<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("save");
    let header = cx.header(&id);
    let frames = mixed_frames();
    let summary = summary_of(&frames);
    let info = cx
        .save(
            header.clone(),
            &frames,
            summary.clone(),
            EndReason::Completed,
        )
        .await?;
    let n = frames.len() as u64;
    check::info(
        &info,
        &header,
        TapeState::Finished,
        n,
        summary.byte_count,
        "save's result",
    )?;
    eq(
        info.ended_at_us,
        Some(summary.ended_at_us),
        "save's result: ended_at",
    )?;
    eq(&info.digest, &summary.digest, "save's result: digest")?;
    let got = cx.get(&id).await?;
    ensure!(
        got == info,
        "get(`{id}`) returned {got:?}, save returned {info:?}"
    );
    let read = cx.read_all(&id, 0, 3, u64::MAX).await?;
    check::frames_eq(&read, &frames, &format!("read_frames(`{id}`)"))?;
    expect_kind(
        cx.store.resume(&id).await.map(drop),
        ErrorKind::InvalidInput,
        &format!("resume(`{id}`) of a saved, finished tape"),
    )
}

/// The end reason decides the state: completed → finished, crashed →
/// crashed, aborted → aborted.
pub(crate) async fn end_reasons<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    for reason in [EndReason::Completed, EndReason::Crashed, EndReason::Aborted] {
        let state = reason.end_state();
        let id = cx.id(state.as_str());
        let header = cx.header(&id);
        let frames = json_frames(0..4);
        let summary = summary_of(&frames);
        let info = cx
            .save(header.clone(), &frames, summary.clone(), reason)
            .await?;
        cx.check_ended("save", &info, &header, reason, &summary, &frames)
            .await?;
    }
    Ok(())
}

/// A tape without frames can be saved.
pub(crate) async fn empty<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("save0");
    let header = cx.header(&id);
    let info = cx
        .save(header.clone(), &[], summary_of(&[]), EndReason::Completed)
        .await?;
    check::info(&info, &header, TapeState::Finished, 0, 0, "save's result")?;
    let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
    ensure!(
        read.is_empty(),
        "read_frames of an empty saved tape returned {} frames",
        read.len()
    );
    Ok(())
}

/// `save` over an existing id (recording or ended) fails with
/// `already-exists` and leaves the existing tape alone.
pub(crate) async fn already_exists<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let other = mixed_frames();

    let live = cx.id("live");
    let mut w = cx.create(cx.header(&live)).await?;
    append(&mut w, &frames[..2], 2).await?;
    let saved = cx.id("saved");
    cx.save(
        cx.header(&saved),
        &frames,
        summary_of(&frames),
        EndReason::Completed,
    )
    .await?;
    let crashed = cx.id("crashed");
    cx.save(
        cx.header(&crashed),
        &frames,
        summary_of(&frames),
        EndReason::Crashed,
    )
    .await?;

    for id in [&live, &saved, &crashed] {
        let before = cx.get(id).await?;
        let call = format!(
            "save(`{id}`) over an existing {} tape",
            before.state.as_str()
        );
        expect_kind(
            cx.store
                .save(
                    cx.header(id),
                    &other,
                    summary_of(&other),
                    EndReason::Completed,
                )
                .await,
            ErrorKind::AlreadyExists,
            &call,
        )?;
        let after = cx.get(id).await?;
        ensure!(
            after == before,
            "after {call}, get returned {after:?}, before {before:?}"
        );
        let read = cx.read_all(id, 0, 100, u64::MAX).await?;
        let want = if id == &live {
            &frames[..2]
        } else {
            &frames[..]
        };
        check::frames_eq(&read, want, &format!("read_frames after {call}"))?;
    }
    // The live writer is unaffected.
    append(&mut w, &frames[2..], 3).await
}

/// A summary that disagrees with the frames is `invalid-input`, and nothing
/// is stored; the id stays free.
pub(crate) async fn summary_mismatch<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("mismatch");
    let frames = json_frames(0..5);
    let good = summary_of(&frames);
    let wrong = [
        (
            "frame_count + 1",
            TapeSummary {
                frame_count: 6,
                ..good.clone()
            },
        ),
        (
            "frame_count - 1",
            TapeSummary {
                frame_count: 4,
                ..good.clone()
            },
        ),
        (
            "frame_count 0",
            TapeSummary {
                frame_count: 0,
                ..good.clone()
            },
        ),
        (
            "byte_count + 1",
            TapeSummary {
                byte_count: good.byte_count + 1,
                ..good.clone()
            },
        ),
        (
            "byte_count - 1",
            TapeSummary {
                byte_count: good.byte_count - 1,
                ..good.clone()
            },
        ),
    ];
    for (what, summary) in wrong {
        for reason in [EndReason::Completed, EndReason::Crashed] {
            let call = format!("save(`{id}`, {reason:?}) with {what}");
            expect_kind(
                cx.store
                    .save(cx.header(&id), &frames, summary.clone(), reason)
                    .await,
                ErrorKind::InvalidInput,
                &call,
            )?;
            absent(&cx, &id, &call).await?;
        }
    }
    cx.save(cx.header(&id), &frames, good, EndReason::Completed)
        .await?;
    Ok(())
}

/// Frames not numbered `0..` without gaps are `invalid-input`, and nothing is
/// stored.
pub(crate) async fn bad_sequence<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("badseq");
    let base = json_frames(0..4);
    let pick = |seqs: &[u64]| -> Vec<Frame> {
        seqs.iter()
            .enumerate()
            .map(|(i, &s)| Frame {
                seq: s,
                ..base[i].clone()
            })
            .collect()
    };
    for seqs in [
        &[1u64, 2, 3][..],
        &[0, 1, 3],
        &[0, 0, 1],
        &[1, 0],
        &[0, 2, 1, 3],
        &[5],
    ] {
        let frames = pick(seqs);
        let call = format!("save(`{id}`) with frames numbered {seqs:?}");
        expect_kind(
            cx.store
                .save(
                    cx.header(&id),
                    &frames,
                    summary_of(&frames),
                    EndReason::Completed,
                )
                .await,
            ErrorKind::InvalidInput,
            &call,
        )?;
        absent(&cx, &id, &call).await?;
    }
    Ok(())
}

/// 5,000 frames in one `save`.
pub(crate) async fn many_frames<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("save5k");
    let frames: Vec<Frame> = (0..5000).map(seq_frame).collect();
    let summary = summary_of(&frames);
    let info = cx
        .save(
            cx.header(&id),
            &frames,
            summary.clone(),
            EndReason::Completed,
        )
        .await?;
    eq(info.frame_count, 5000, "save's result: frame_count")?;
    eq(
        info.byte_count,
        summary.byte_count,
        "save's result: byte_count",
    )?;
    let read = cx.read_all(&id, 0, 1000, 64 * 1024).await?;
    check::frames_eq(&read, &frames, &format!("read_frames(`{id}`)"))
}
