//! Writers: `create`, `append`, `finish`, `abort`, `resume`, and dropping a
//! writer.

use super::check::{self, ensure, eq, expect_kind, ok};
use super::fixtures::{RUN_TAG, digest, json_frames, summary_of};
use super::ops::{Listing, append, finish, seqs};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeFilter, TapeHeader, TapeState, TapeSummary};

/// create → get → append → get → append → finish → get → read_frames.
pub(crate) async fn round_trip<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("rt");
    let header = cx.header(&id);
    let frames = json_frames(0..10);
    let mut w = cx.create(header.clone()).await?;
    eq(w.id(), id.as_str(), "the writer's id()")?;

    let info = cx.get(&id).await?;
    check::info(
        &info,
        &header,
        TapeState::Recording,
        0,
        0,
        "get after create",
    )?;
    eq(info.ended_at_us, None, "get after create: ended_at")?;
    eq(info.digest, None, "get after create: digest")?;

    append(&mut w, &frames[..4], 4).await?;
    let info = cx.get(&id).await?;
    let bytes4 = super::fixtures::byte_sum(&frames[..4]);
    check::info(
        &info,
        &header,
        TapeState::Recording,
        4,
        bytes4,
        "get after 4 frames",
    )?;

    append(&mut w, &frames[4..], 10).await?;
    let summary = summary_of(&frames);
    let done = finish(&mut w, summary.clone(), EndReason::Completed).await?;
    let bytes = summary.byte_count;
    check::info(
        &done,
        &header,
        TapeState::Finished,
        10,
        bytes,
        "finish's result",
    )?;
    eq(
        done.ended_at_us,
        Some(summary.ended_at_us),
        "finish's result: ended_at",
    )?;
    eq(&done.digest, &summary.digest, "finish's result: digest")?;
    drop(w);

    let got = cx.get(&id).await?;
    ensure!(
        got == done,
        "get after finish returned {got:?}, but finish returned {done:?}"
    );
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames, &format!("read_frames(`{id}`)"))
}

/// Headers come back exactly as given: free text with quotes, newlines and
/// non-ASCII, empty session and name, duplicate tag keys in order, extreme
/// but valid creation times.
pub(crate) async fn header_preserved<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let token = cx.token();
    let tags = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tags.push((RUN_TAG.to_string(), cx.run_id.clone()));
        tags.push(("token".to_string(), token.clone()));
        tags
    };
    let headers = vec![
        TapeHeader {
            id: cx.id("h0"),
            session_id: String::new(),
            name: String::new(),
            tags: tags(&[]),
            created_at_us: 0,
            envelope: None,
        },
        TapeHeader {
            id: cx.id("h1"),
            session_id: "sess \"quoted\" \\ back\nslash ☃".to_string(),
            name: "Ünïcödé ☃ تجربة שלום e\u{301} 🎞️\nsecond line\t{\"json\": true}".to_string(),
            tags: tags(&[
                ("env", "ci"),
                ("env", "prod"),
                ("emoji", "🎞️"),
                ("empty", ""),
                ("z-last", "1"),
                ("a-first", "2"),
            ]),
            // 2200-01-01: far, but still fits a signed 64-bit column.
            created_at_us: 7_258_118_400_000_000,
            envelope: None,
        },
        TapeHeader {
            id: cx.id("h2"),
            session_id: cx.session(),
            name: "x".repeat(4096),
            tags: tags(&[("k", &"v".repeat(1024))]),
            created_at_us: super::fixtures::now_us(),
            envelope: None,
        },
    ];
    for (i, header) in headers.iter().enumerate() {
        let frames = json_frames(0..2);
        let end = if i == 1 {
            None
        } else {
            Some(EndReason::Completed)
        };
        let info = cx.record(header.clone(), &frames, end).await?;
        let state = if end.is_some() {
            TapeState::Finished
        } else {
            TapeState::Recording
        };
        check::info(
            &info,
            header,
            state,
            2,
            super::fixtures::byte_sum(&frames),
            &format!("get(`{}`)", header.id),
        )?;
    }
    // list returns the same headers.
    let filter = TapeFilter {
        tags: vec![("token".to_string(), token.clone())],
        ..Default::default()
    };
    let listed = cx.list_all(Listing::List(&filter), 1000).await?;
    for header in &headers {
        let Some(t) = listed.iter().find(|t| t.header.id == header.id) else {
            return Err(format!(
                "list by tag `token` did not return tape `{}`",
                header.id
            ));
        };
        ensure!(
            t.header == *header,
            "list returned the header of `{}` as {:?}, expected {:?}",
            header.id,
            t.header,
            header
        );
    }
    Ok(())
}

/// `next_seq` starts at 0, follows appends, and an empty batch changes
/// nothing.
pub(crate) async fn next_seq<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("ns");
    let frames = json_frames(0..6);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &[], 0).await?;
    append(&mut w, &frames[..1], 1).await?;
    append(&mut w, &frames[1..4], 4).await?;
    append(&mut w, &[], 4).await?;
    append(&mut w, &frames[4..], 6).await?;
    let info = cx.get(&id).await?;
    eq(info.frame_count, 6, "get: frame_count")?;
    Ok(())
}

/// A copy of `frames` with different payloads (same seqs).
fn altered(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| Frame {
            payload: format!("{{\"altered\":{}}}", f.seq).into_bytes(),
            ..f.clone()
        })
        .collect()
}

/// Redelivered and partially overlapping batches: frames below `next_seq`
/// are skipped without comparison, the rest appended.
pub(crate) async fn append_idempotent<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("idem");
    let frames = json_frames(0..8);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..5], 5).await?;
    // The same batch again (redelivery after an unknown outcome).
    append(&mut w, &frames[..5], 5).await?;
    // A batch entirely below next_seq, with different payloads: skipped.
    append(&mut w, &altered(&frames[1..3]), 5).await?;
    // Overlapping: 3 and 4 are stored already (and differ), 5..8 are new.
    let mut overlap = altered(&frames[3..5]);
    overlap.extend_from_slice(&frames[5..]);
    append(&mut w, &overlap, 8).await?;

    let info = cx.get(&id).await?;
    eq(info.frame_count, 8, "get after redeliveries: frame_count")?;
    eq(
        info.byte_count,
        super::fixtures::byte_sum(&frames),
        "get after redeliveries: byte_count",
    )?;
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames, "read_frames after redeliveries")?;
    finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
    Ok(())
}

/// Checks that the tape still holds exactly `frames`, and the writer agrees.
async fn unchanged<S: TapeStore>(
    cx: &Ctx<S>,
    w: &mut S::Writer,
    frames: &[Frame],
    after: &str,
) -> CaseResult {
    let id = w.id().to_string();
    let n = frames.len() as u64;
    ensure!(
        w.next_seq() == n,
        "after {after}, the writer's next_seq() is {}, expected {n}",
        w.next_seq()
    );
    let info = cx.get(&id).await?;
    ensure!(
        info.frame_count == n && info.byte_count == super::fixtures::byte_sum(frames),
        "after {after}, get reports {} frames / {} bytes, expected {n} / {} (something was stored)",
        info.frame_count,
        info.byte_count,
        super::fixtures::byte_sum(frames)
    );
    eq(
        info.state,
        TapeState::Recording,
        &format!("after {after}: state"),
    )?;
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, frames, &format!("read_frames after {after}"))
}

/// A batch leaving a gap fails with `invalid-input` and stores nothing.
pub(crate) async fn append_gap_rejected<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("gap");
    let frames = json_frames(0..8);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..3], 3).await?;
    for bad in [&frames[5..7], &frames[4..5], &frames[7..8]] {
        let call = format!("append({}) after 3 frames", seqs(bad));
        expect_kind(w.append(bad).await, ErrorKind::InvalidInput, &call)?;
        unchanged(&cx, &mut w, &frames[..3], &call).await?;
    }
    // The writer is still usable.
    append(&mut w, &frames[3..5], 5).await?;
    Ok(())
}

/// A batch whose seqs are not consecutive fails with `invalid-input` and
/// stores nothing, not even its valid head.
pub(crate) async fn append_non_consecutive_rejected<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("noncons");
    let frames = json_frames(0..8);
    let f = |seqs: &[usize]| -> Vec<Frame> { seqs.iter().map(|&i| frames[i].clone()).collect() };
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..3], 3).await?;
    for bad in [
        f(&[3, 4, 6]),
        f(&[3, 3, 4]),
        f(&[4, 3]),
        f(&[3, 5]),
        f(&[1, 2, 4]),
        f(&[2, 3, 4, 4]),
    ] {
        let call = format!("append({}) after 3 frames", seqs(&bad));
        expect_kind(w.append(&bad).await, ErrorKind::InvalidInput, &call)?;
        unchanged(&cx, &mut w, &frames[..3], &call).await?;
    }
    append(&mut w, &frames[3..5], 5).await?;
    Ok(())
}

/// `finish` with a summary that disagrees with the stored frames fails with
/// `invalid-input` and changes nothing; the correct one then works.
pub(crate) async fn finish_wrong_summary<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("badsum");
    let frames = json_frames(0..6);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..4], 4).await?;
    let good = summary_of(&frames[..4]);
    let wrong = [
        (
            "frame_count + 1",
            TapeSummary {
                frame_count: good.frame_count + 1,
                ..good.clone()
            },
        ),
        (
            "frame_count - 1",
            TapeSummary {
                frame_count: good.frame_count - 1,
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
            "byte_count 0",
            TapeSummary {
                byte_count: 0,
                ..good.clone()
            },
        ),
    ];
    for (what, summary) in wrong {
        for reason in [EndReason::Completed, EndReason::Crashed] {
            let call = format!("finish(`{id}`, {reason:?}) with {what}");
            expect_kind(
                w.finish(summary.clone(), reason).await,
                ErrorKind::InvalidInput,
                &call,
            )?;
            let info = cx.get(&id).await?;
            eq(
                info.state,
                TapeState::Recording,
                &format!("after {call}: state"),
            )?;
            eq(info.ended_at_us, None, &format!("after {call}: ended_at"))?;
            eq(info.digest, None, &format!("after {call}: digest"))?;
        }
    }
    // Nothing changed: the writer still appends, and the right summary works.
    append(&mut w, &frames[4..], 6).await?;
    let done = finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
    eq(
        done.state,
        TapeState::Finished,
        "finish after the failed ones: state",
    )?;
    eq(
        done.frame_count,
        6,
        "finish after the failed ones: frame_count",
    )?;
    Ok(())
}

/// Finishing a finished tape again with the same summary succeeds and changes
/// nothing.
pub(crate) async fn finish_idempotent<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("fin2");
    let frames = json_frames(0..5);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames, 5).await?;
    let summary = summary_of(&frames);
    let first = finish(&mut w, summary.clone(), EndReason::Completed).await?;
    let second = ok(
        w.finish(summary.clone(), EndReason::Completed).await,
        &format!("finish(`{id}`) a second time with the same summary"),
    )?;
    ensure!(
        first == second,
        "the second finish returned {second:?}, the first {first:?}"
    );
    let got = cx.get(&id).await?;
    ensure!(
        got == first,
        "get returned {got:?} after finish returned {first:?}"
    );
    Ok(())
}

/// The digest given to `finish` comes back unchanged; none stays none.
pub(crate) async fn finish_digest_verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let sha512ish = format!("{}{}", digest(1), digest(2));
    for (label, d) in [
        ("sha256", Some(digest(7))),
        ("sha512", Some(sha512ish)),
        ("short", Some("0a".to_string())),
        ("none", None),
    ] {
        let id = cx.id(label);
        let frames = json_frames(0..3);
        let mut w = cx.create(cx.header(&id)).await?;
        append(&mut w, &frames, 3).await?;
        let summary = TapeSummary {
            digest: d.clone(),
            ..summary_of(&frames)
        };
        let done = finish(&mut w, summary, EndReason::Completed).await?;
        eq(
            &done.digest,
            &d,
            &format!("finish(`{id}`)'s result: digest"),
        )?;
        let got = cx.get(&id).await?;
        eq(&got.digest, &d, &format!("get(`{id}`): digest"))?;
    }
    Ok(())
}

/// `finish` with reason `crashed` ends in `crashed`; with `aborted` in
/// `aborted`, frames kept and the summary (end time, digest) recorded.
pub(crate) async fn finish_end_reasons<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    for (reason, state) in [
        (EndReason::Completed, TapeState::Finished),
        (EndReason::Crashed, TapeState::Crashed),
        (EndReason::Aborted, TapeState::Aborted),
    ] {
        let id = cx.id(state.as_str());
        let header = cx.header(&id);
        let frames = json_frames(0..4);
        let mut w = cx.create(header.clone()).await?;
        append(&mut w, &frames, 4).await?;
        let summary = summary_of(&frames);
        let done = finish(&mut w, summary.clone(), reason).await?;
        cx.check_ended("finish", &done, &header, reason, &summary, &frames)
            .await?;
    }
    Ok(())
}

/// A tape with no frames can be finished.
pub(crate) async fn finish_empty_tape<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("empty");
    let header = cx.header(&id);
    let mut w = cx.create(header.clone()).await?;
    let done = finish(&mut w, summary_of(&[]), EndReason::Completed).await?;
    check::info(&done, &header, TapeState::Finished, 0, 0, "finish's result")?;
    let read = cx.read_all(&id, 0, 10, 1024).await?;
    ensure!(
        read.is_empty(),
        "read_frames of an empty tape returned {} frames",
        read.len()
    );
    Ok(())
}

/// After `finish`, the tape never changes: new frames are refused, `abort`
/// and a disagreeing `finish` leave it as it was.
pub(crate) async fn finished_tape_immutable<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("frozen");
    let frames = json_frames(0..6);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..4], 4).await?;
    let done = finish(&mut w, summary_of(&frames[..4]), EndReason::Completed).await?;

    let call = format!("append({}) to finished `{id}`", seqs(&frames[4..]));
    match w.append(&frames[4..]).await {
        Ok(n) => {
            return Err(format!(
                "{call} succeeded (returned {n}), expected an error"
            ));
        }
        Err(e) if e.storage_kind().is_none() => {
            return Err(format!(
                "{call} failed with `{}` instead of a storage error: {e}",
                e.code()
            ));
        }
        Err(_) => {}
    }
    let call2 = format!("finish(`{id}`) again with frame_count 6");
    expect_kind(
        w.finish(summary_of(&frames), EndReason::Completed).await,
        ErrorKind::InvalidInput,
        &call2,
    )?;
    // `abort` may succeed as a no-op or fail; either way the tape stays finished.
    let _ = w.abort("conformance: abort after finish").await;
    drop(w);
    let got = cx.get(&id).await?;
    ensure!(
        got == done,
        "after {call}, {call2} and abort, get returned {got:?}; finish had returned {done:?}"
    );
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames[..4], "read_frames of the finished tape")
}

/// `abort` keeps the frames, moves the tape to `aborted`, and is idempotent.
pub(crate) async fn abort<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("abort");
    let header = cx.header(&id);
    let frames = json_frames(0..3);
    let mut w = cx.create(header.clone()).await?;
    append(&mut w, &frames, 3).await?;
    ok(
        w.abort("conformance: abort").await,
        &format!("abort(`{id}`)"),
    )?;
    let info = cx.get(&id).await?;
    check::info(
        &info,
        &header,
        TapeState::Aborted,
        3,
        summary_of(&frames).byte_count,
        "get after abort",
    )?;
    ok(
        w.abort("conformance: abort again").await,
        &format!("abort(`{id}`) a second time"),
    )?;
    drop(w);
    let again = cx.get(&id).await?;
    ensure!(
        again == info,
        "get after the second abort returned {again:?}, before it {info:?}"
    );
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames, "read_frames of the aborted tape")?;

    // Aborting a tape without frames.
    let id = cx.id("abort0");
    let header = cx.header(&id);
    let mut w = cx.create(header.clone()).await?;
    ok(w.abort("").await, &format!("abort(`{id}`) with no frames"))?;
    let info = cx.get(&id).await?;
    check::info(
        &info,
        &header,
        TapeState::Aborted,
        0,
        0,
        "get after abort with no frames",
    )
}

/// Dropping a writer without `finish` or `abort` leaves the tape `recording`
/// with every appended frame, ready for `resume`.
pub(crate) async fn drop_leaves_recording<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("drop");
    let header = cx.header(&id);
    let frames = json_frames(0..6);
    let mut w = cx.create(header.clone()).await?;
    append(&mut w, &frames[..3], 3).await?;
    drop(w);
    let info = cx.get(&id).await?;
    let bytes3 = super::fixtures::byte_sum(&frames[..3]);
    check::info(
        &info,
        &header,
        TapeState::Recording,
        3,
        bytes3,
        "get after dropping the writer",
    )?;
    eq(
        info.ended_at_us,
        None,
        "get after dropping the writer: ended_at",
    )?;
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames[..3], "read_frames after dropping the writer")?;

    let mut w = cx.resume(&id).await?;
    eq(w.next_seq(), 3, "next_seq() of the resumed writer")?;
    append(&mut w, &frames[3..], 6).await?;
    let done = finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
    check::info(
        &done,
        &header,
        TapeState::Finished,
        6,
        summary_of(&frames).byte_count,
        "finish after resume",
    )
}

/// `resume` continues where the stored frames end, several times, with
/// redelivered frames skipped.
pub(crate) async fn resume<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("resume");
    let frames = json_frames(0..7);
    drop(cx.create(cx.header(&id)).await?);

    let mut w = cx.resume(&id).await?;
    eq(w.id(), id.as_str(), "the resumed writer's id()")?;
    eq(w.next_seq(), 0, "next_seq() after resuming an empty tape")?;
    append(&mut w, &frames[..2], 2).await?;
    drop(w);

    let mut w = cx.resume(&id).await?;
    eq(
        w.next_seq(),
        2,
        "next_seq() after resuming a tape of 2 frames",
    )?;
    append(&mut w, &frames[..5], 5).await?;
    drop(w);

    let mut w = cx.resume(&id).await?;
    eq(
        w.next_seq(),
        5,
        "next_seq() after resuming a tape of 5 frames",
    )?;
    append(&mut w, &frames[5..], 7).await?;
    finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames, "read_frames after three writers")
}

/// What crash recovery does: a writer's last batch had an unknown outcome
/// (it was stored, but the recorder died before the answer); a new writer
/// from `resume` redelivers everything from frame 0, in batches that
/// straddle `next-seq`, with different bytes below it. Frames below
/// `next-seq` are skipped without comparison, nothing is stored twice or
/// out of order, and the tape ends `crashed` with exactly the frames sent.
pub(crate) async fn redelivery_after_resume<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("redeliver");
    let frames = json_frames(0..11);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..3], 3).await?;
    append(&mut w, &frames[3..6], 6).await?;
    // The recorder dies: its writer is gone, the outcome of the last batch
    // unknown to whoever resumes.
    drop(w);

    let mut w = cx.resume(&id).await?;
    eq(
        w.next_seq(),
        6,
        "next_seq() after resuming a tape of 6 frames",
    )?;
    // Redelivery from the start, as recovery reads the spool: the first
    // batches are entirely below next_seq (and altered: skipped unseen), one
    // straddles it, the last is new.
    append(&mut w, &altered(&frames[0..4]), 6).await?;
    let mut straddling = altered(&frames[4..6]);
    straddling.extend_from_slice(&frames[6..8]);
    append(&mut w, &straddling, 8).await?;
    // The same batch again: an answer lost once more.
    append(&mut w, &frames[4..8], 8).await?;
    append(&mut w, &frames[8..], 11).await?;
    finish(&mut w, summary_of(&frames), EndReason::Crashed).await?;

    let info = cx.get(&id).await?;
    eq(
        info.state,
        TapeState::Crashed,
        "state after finish(crashed)",
    )?;
    eq(info.frame_count, 11, "frame_count after redelivery")?;
    let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, &frames, "read_frames after redelivery from frame 0")
}

/// `resume` of a tape that is not `recording` fails with `invalid-input`
/// and changes nothing; of a missing tape with `not-found`.
pub(crate) async fn resume_ended_rejected<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let mut ended = Vec::new();
    for reason in [EndReason::Completed, EndReason::Crashed] {
        let id = cx.id(reason.end_state().as_str());
        ended.push(cx.record(cx.header(&id), &frames, Some(reason)).await?);
    }
    let id = cx.id("aborted");
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames, 3).await?;
    ok(w.abort("conformance").await, &format!("abort(`{id}`)"))?;
    drop(w);
    ended.push(cx.get(&id).await?);

    for before in ended {
        let id = &before.header.id;
        let call = format!("resume(`{id}`) of a {} tape", before.state.as_str());
        expect_kind(
            cx.store.resume(id).await.map(drop),
            ErrorKind::InvalidInput,
            &call,
        )?;
        let after = cx.get(id).await?;
        ensure!(
            after == before,
            "after {call}, get returned {after:?}, before {before:?}"
        );
    }
    let missing = cx.id("missing");
    expect_kind(
        cx.store.resume(&missing).await.map(drop),
        ErrorKind::NotFound,
        &format!("resume(`{missing}`) of a tape that does not exist"),
    )
}
