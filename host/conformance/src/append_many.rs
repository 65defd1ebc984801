//! `append_many`: frames for several recording tapes in one call, one
//! result per entry, each entry what `resume` + `append` would do and
//! independent of the others.

use super::check::{self, ensure, eq, ok};
use super::fixtures::{byte_sum, json_frames, renumber, summary_of, with_attributes, with_terms};
use super::ops::{Listing, Want, append, append_many_call, entry, finish};
use super::search::terms_query;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeInfo, TapeState};

/// Frames for tape number `n` of a case: JSON-RPC frames with the host's
/// terms, some with attributes, payloads naming the tape.
fn tape_frames(n: usize, count: u64) -> Vec<Frame> {
    json_frames(0..count)
        .into_iter()
        .map(|f| {
            let seq = f.seq;
            let mut payload = f.payload.clone();
            // `…}` → `…,"tape":n}`: still JSON, now different per tape.
            payload.pop();
            payload.extend_from_slice(format!(",\"tape\":{n}}}").as_bytes());
            let f = Frame { payload, ..f };
            if seq % 3 == 1 {
                with_attributes(f, &[("tape", &n.to_string()), ("seq", &seq.to_string())])
            } else {
                f
            }
        })
        .collect()
}

/// Creates a recording tape labelled `label` holding `frames` (the writer
/// is dropped: the tape stays `recording`).
async fn recording<S: TapeStore>(
    cx: &Ctx<S>,
    label: &str,
    frames: &[Frame],
) -> Result<String, String> {
    let id = cx.id(label);
    let mut w = cx.create(cx.header(&id)).await?;
    if !frames.is_empty() {
        append(&mut w, frames, frames.len() as u64).await?;
    }
    Ok(id)
}

/// Checks that tape `id` is `recording` and holds exactly `frames`, and that
/// a writer from `resume` sees them (`next_seq`).
async fn holds<S: TapeStore>(cx: &Ctx<S>, id: &str, frames: &[Frame], after: &str) -> CaseResult {
    let n = frames.len() as u64;
    let info = cx.get(id).await?;
    ensure!(
        info.state == TapeState::Recording,
        "after {after}, get(`{id}`) says state {}, expected recording",
        info.state.as_str()
    );
    ensure!(
        info.frame_count == n && info.byte_count == byte_sum(frames),
        "after {after}, get(`{id}`) reports {} frames / {} bytes, expected {n} / {}",
        info.frame_count,
        info.byte_count,
        byte_sum(frames)
    );
    let read = cx.read_all(id, 0, 1000, u64::MAX).await?;
    check::frames_eq(&read, frames, &format!("read_frames(`{id}`) after {after}"))?;
    let w = cx.resume(id).await?;
    ensure!(
        w.next_seq() == n,
        "after {after}, resume(`{id}`) gives a writer with next_seq() {}, expected {n}",
        w.next_seq()
    );
    Ok(())
}

/// Frames for several tapes in one call, in any order of ids, some
/// entries empty: each entry returns its tape's new `next_seq`, the frames
/// read back in order, a writer from `resume` continues from there, and
/// (when declared) `search` finds the tapes by their frames' terms.
pub(crate) async fn several_tapes<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let term = format!("many:{}", cx.token());
    let frames: Vec<Vec<Frame>> = (0..4)
        .map(|n| {
            let mut f = tape_frames(n, 8);
            f[5] = with_terms(f[5].clone(), &["many:shared", &term]);
            f
        })
        .collect();
    let mut ids = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        // Tape 3 starts with two frames stored by a writer.
        let stored = if n == 3 { &f[..2] } else { &f[..0] };
        ids.push(recording(&cx, &format!("t{n}"), stored).await?);
    }
    cx.append_many(
        &[
            entry(&ids[0], &frames[0][..3]),
            entry(&ids[1], &frames[1][..1]),
            entry(&ids[3], &frames[3][2..6]),
            entry(&ids[2], &[]),
        ],
        &[Want::Next(3), Want::Next(1), Want::Next(6), Want::Next(0)],
    )
    .await?;
    cx.append_many(
        &[
            entry(&ids[2], &frames[2][..7]),
            entry(&ids[1], &frames[1][1..6]),
            entry(&ids[0], &frames[0][3..4]),
            entry(&ids[3], &[]),
        ],
        &[Want::Next(7), Want::Next(6), Want::Next(4), Want::Next(6)],
    )
    .await?;
    let stored = [4, 6, 7, 6];
    for (n, id) in ids.iter().enumerate() {
        holds(&cx, id, &frames[n][..stored[n]], "two append_many calls").await?;
    }
    if cx.caps.search {
        let q = terms_query(&cx, vec![term.clone()], None);
        let mut found = cx.ours(Listing::Search(&q), 1000).await?;
        found.sort();
        let mut want: Vec<String> = ids.iter().filter(|id| *id != &ids[0]).cloned().collect();
        want.sort();
        ensure!(
            found == want,
            "search for term {term:?} after append_many found {found:?}, expected {want:?} \
             (the tapes whose frame 5 was stored)"
        );
    }
    // Writers from `resume` go on where append_many left off.
    for (n, id) in ids.iter().enumerate() {
        let mut w = cx.resume(id).await?;
        append(&mut w, &frames[n][stored[n]..], 8).await?;
        let info = finish(&mut w, summary_of(&frames[n]), EndReason::Completed).await?;
        eq(
            info.frame_count,
            8,
            &format!("finish(`{id}`)'s result: frame_count"),
        )?;
        let read = cx.read_all(id, 0, 3, u64::MAX).await?;
        check::frames_eq(
            &read,
            &frames[n],
            &format!("read_frames(`{id}`) after finish"),
        )?;
    }
    Ok(())
}

/// What one bad entry must not disturb: two good tapes get frames in the
/// same call, before and after it, and the bad entry's tape (if any) is
/// left as it was.
async fn fails_alone<S: TapeStore>(cx: &Ctx<S>, bad: BadEntry, kind: ErrorKind) -> CaseResult {
    let before_frames = tape_frames(1, 4);
    let after_frames = tape_frames(2, 5);
    let before = recording(cx, "before", &before_frames[..2]).await?;
    let after = recording(cx, "after", &after_frames[..1]).await?;
    let bad_before: ProviderResult<TapeInfo> = cx.store.get(&bad.id).await;
    let appends = [
        entry(&before, &before_frames[2..]),
        entry(&bad.id, &bad.frames),
        entry(&after, &after_frames[1..]),
    ];
    let call = append_many_call(&appends);
    cx.append_many(&appends, &[Want::Next(4), Want::Fails(kind), Want::Next(5)])
        .await?;
    holds(cx, &before, &before_frames, &call).await?;
    holds(cx, &after, &after_frames, &call).await?;
    let bad_after = cx.store.get(&bad.id).await;
    match (bad_before, bad_after) {
        (Ok(was), Ok(is)) => {
            if let Some(diff) = check::info_diff(&is, &was) {
                return Err(format!(
                    "after {call}, get(`{}`) changed: its {diff}",
                    bad.id
                ));
            }
            let read = cx.read_all(&bad.id, 0, 1000, u64::MAX).await?;
            check::frames_eq(
                &read,
                &bad.stored,
                &format!("read_frames(`{}`) after {call}", bad.id),
            )
        }
        (Err(_), Err(e)) if e.storage_kind() == Some(ErrorKind::NotFound) => Ok(()),
        (Err(_), Ok(is)) => Err(format!(
            "after {call}, tape `{}` exists ({} frames, state {}): append_many made it",
            bad.id,
            is.frame_count,
            is.state.as_str()
        )),
        (Ok(_), Err(e)) => Err(format!("after {call}, get(`{}`) failed: {e}", bad.id)),
        (Err(_), Err(e)) => Err(format!(
            "after {call}, get(`{}`) failed with `{}`, expected `not-found` ({e})",
            bad.id,
            e.code()
        )),
    }
}

/// The bad entry of [`fails_alone`]: its tape, the frames sent, and the
/// frames the tape holds (and must still hold afterwards).
struct BadEntry {
    id: String,
    frames: Vec<Frame>,
    stored: Vec<Frame>,
}

/// An entry for a tape that does not exist fails with `not-found`, and
/// does not create it.
pub(crate) async fn not_found<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let bad = BadEntry {
        id: cx.id("missing"),
        frames: json_frames(0..2),
        stored: Vec::new(),
    };
    fails_alone(&cx, bad, ErrorKind::NotFound).await
}

/// An entry for a tape that is not `recording` (finished, or aborted)
/// fails with `invalid-input` and leaves the tape alone.
pub(crate) async fn not_recording<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..5);
    let finished = cx.id("finished");
    cx.record(
        cx.header(&finished),
        &frames[..3],
        Some(EndReason::Completed),
    )
    .await?;
    let bad = BadEntry {
        id: finished,
        frames: frames[3..].to_vec(),
        stored: frames[..3].to_vec(),
    };
    fails_alone(&cx, bad, ErrorKind::InvalidInput).await?;

    let aborted = cx.id("aborted");
    let mut w = cx.create(cx.header(&aborted)).await?;
    append(&mut w, &frames[..2], 2).await?;
    ok(w.abort("conformance").await, &format!("abort(`{aborted}`)"))?;
    drop(w);
    let bad = BadEntry {
        id: aborted,
        frames: frames[2..].to_vec(),
        stored: frames[..2].to_vec(),
    };
    fails_alone(&cx, bad, ErrorKind::InvalidInput).await
}

/// An entry that would leave a gap fails with `invalid-input` and stores
/// nothing of it.
pub(crate) async fn gap<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..6);
    let id = recording(&cx, "gap", &frames[..2]).await?;
    let bad = BadEntry {
        id,
        frames: frames[3..].to_vec(),
        stored: frames[..2].to_vec(),
    };
    fails_alone(&cx, bad, ErrorKind::InvalidInput).await
}

/// An entry whose frames are not consecutive fails with `invalid-input`
/// and stores nothing of it, not even its valid head.
pub(crate) async fn non_consecutive<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..6);
    let id = recording(&cx, "noncons", &frames[..2]).await?;
    let bad = BadEntry {
        id,
        frames: vec![frames[2].clone(), frames[3].clone(), frames[5].clone()],
        stored: frames[..2].to_vec(),
    };
    fails_alone(&cx, bad, ErrorKind::InvalidInput).await
}

/// A tape named twice in one call: the first entry is applied, the repeated
/// one fails with `invalid-input` (whatever its frames) and stores nothing;
/// the entries around them are applied.
pub(crate) async fn repeated_id<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let twice = tape_frames(0, 6);
    let other = tape_frames(1, 3);
    let id = recording(&cx, "twice", &twice[..1]).await?;
    let other_id = recording(&cx, "other", &[]).await?;
    let appends = [
        entry(&id, &twice[1..3]),
        entry(&other_id, &other),
        entry(&id, &twice[3..]),
    ];
    cx.append_many(
        &appends,
        &[
            Want::Next(3),
            Want::Next(3),
            Want::Fails(ErrorKind::InvalidInput),
        ],
    )
    .await?;
    let call = append_many_call(&appends);
    holds(&cx, &id, &twice[..3], &call).await?;
    holds(&cx, &other_id, &other, &call).await?;
    // The same entry twice, as a confused batcher might send it.
    let appends = [entry(&id, &twice[3..4]), entry(&id, &twice[3..4])];
    cx.append_many(
        &appends,
        &[Want::Next(4), Want::Fails(ErrorKind::InvalidInput)],
    )
    .await?;
    holds(&cx, &id, &twice[..4], &append_many_call(&appends)).await
}

/// Several failing entries in one call, each failing alone: the good
/// entries between them are all applied.
pub(crate) async fn mixed<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames: Vec<Vec<Frame>> = (0..4).map(|n| tape_frames(n, 6)).collect();
    let mut good = Vec::new();
    for (n, f) in frames.iter().take(3).enumerate() {
        good.push(recording(&cx, &format!("good{n}"), &f[..1]).await?);
    }
    let gapped = recording(&cx, "gapped", &frames[3][..2]).await?;
    let finished = cx.id("finished");
    cx.record(cx.header(&finished), &frames[3], Some(EndReason::Completed))
        .await?;
    let missing = cx.id("missing");
    let appends = [
        entry(&missing, &frames[3][..2]),
        entry(&good[0], &frames[0][1..]),
        entry(&gapped, &frames[3][3..]),
        entry(&good[1], &frames[1][1..4]),
        entry(&finished, &renumber(&frames[3][..1], 6)),
        entry(&good[1], &frames[1][4..]),
        entry(&good[2], &frames[2][..3]),
    ];
    let bad = Want::Fails(ErrorKind::InvalidInput);
    cx.append_many(
        &appends,
        &[
            Want::Fails(ErrorKind::NotFound),
            Want::Next(6),
            bad,
            Want::Next(4),
            bad,
            bad,
            Want::Next(3),
        ],
    )
    .await?;
    let call = append_many_call(&appends);
    holds(&cx, &good[0], &frames[0], &call).await?;
    holds(&cx, &good[1], &frames[1][..4], &call).await?;
    holds(&cx, &good[2], &frames[2][..3], &call).await?;
    holds(&cx, &gapped, &frames[3][..2], &call).await?;
    let info = cx.get(&finished).await?;
    eq(
        (info.state, info.frame_count),
        (TapeState::Finished, 6),
        &format!("after {call}, get(`{finished}`): (state, frame_count)"),
    )
}

/// Frames below a tape's `next_seq` are skipped without comparison, as with
/// `append`: an entry entirely below it returns `next_seq` unchanged, one
/// straddling it appends only the new frames, and the same call repeated
/// (an answer lost) changes nothing.
pub(crate) async fn redelivery<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let a_frames = tape_frames(0, 4);
    let b_frames = tape_frames(1, 7);
    let a = recording(&cx, "below", &a_frames).await?;
    let b = recording(&cx, "straddle", &b_frames[..4]).await?;
    let altered = |frames: &[Frame]| -> Vec<Frame> {
        frames
            .iter()
            .map(|f| Frame {
                payload: format!("{{\"altered\":{}}}", f.seq).into_bytes(),
                terms: vec!["altered".to_string()],
                ..f.clone()
            })
            .collect()
    };
    let mut straddling = altered(&b_frames[2..4]);
    straddling.extend_from_slice(&b_frames[4..]);
    let appends = [entry(&a, &altered(&a_frames[1..3])), entry(&b, &straddling)];
    cx.append_many(&appends, &[Want::Next(4), Want::Next(7)])
        .await?;
    cx.append_many(&appends, &[Want::Next(4), Want::Next(7)])
        .await?;
    let call = format!("{} twice", append_many_call(&appends));
    holds(&cx, &a, &a_frames, &call).await?;
    holds(&cx, &b, &b_frames, &call).await
}

/// An empty call returns no results; entries without frames return the
/// tape's `next_seq` and change nothing.
pub(crate) async fn empty<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let results = ok(cx.store.append_many(&[]).await, "append_many([])")?;
    ensure!(
        results.is_empty(),
        "append_many([]) returned {} results, expected none",
        results.len()
    );
    let frames = tape_frames(0, 3);
    let a = recording(&cx, "empty", &[]).await?;
    let b = recording(&cx, "three", &frames).await?;
    let appends = [entry(&a, &[]), entry(&b, &[])];
    cx.append_many(&appends, &[Want::Next(0), Want::Next(3)])
        .await?;
    let call = append_many_call(&appends);
    holds(&cx, &a, &[], &call).await?;
    holds(&cx, &b, &frames, &call).await
}
