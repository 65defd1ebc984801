//! Large tapes: 100,000 frames / 10+ MiB written like a recorder, and
//! 1 MiB frames. Read back page by page and compared against regenerated
//! payloads, so the tape is never held in memory twice.

use super::check::{self, ensure, eq, ok};
use super::fixtures::{raw_frame, seq_frame, seq_payload};
use super::ops::{append, finish};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::{EndReason, Frame, TapeState, TapeSummary};

/// Reads `id` from `from` to the end in pages of `max_frames` / `max_bytes`,
/// comparing every frame with `expected(seq)`; returns how many were read.
async fn verify_stream<S: TapeStore>(
    cx: &Ctx<S>,
    id: &str,
    from: u64,
    max_frames: u32,
    max_bytes: u64,
    expected: impl Fn(u64) -> Frame,
) -> Result<u64, String> {
    let mut at = from;
    loop {
        let call = format!(
            "read_frames(`{id}`, from {at}, max_frames {max_frames}, max_bytes {max_bytes})"
        );
        let page = ok(
            cx.store.read_frames(id, at, max_frames, max_bytes).await,
            &call,
        )?;
        check::read_page(&page, at, max_frames, max_bytes, &call)?;
        if page.is_empty() {
            return Ok(at - from);
        }
        for f in &page {
            check::frame_eq(f, &expected(f.seq), &call)?;
        }
        at += page.len() as u64;
    }
}

/// 100,000 frames and over 10 MiB in one tape, appended 500 at a time, then
/// read back in full and from the middle.
pub(crate) async fn many_frames<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    const FRAMES: u64 = 100_000;
    const BATCH: u64 = 500;
    let id = cx.id("100k");
    let header = cx.header(&id);
    let mut w = cx.create(header.clone()).await?;
    let mut bytes = 0u64;
    let mut at = 0;
    while at < FRAMES {
        let batch: Vec<Frame> = (at..(at + BATCH).min(FRAMES)).map(seq_frame).collect();
        bytes += batch.iter().map(|f| f.payload.len() as u64).sum::<u64>();
        at += batch.len() as u64;
        append(&mut w, &batch, at).await?;
    }
    ensure!(
        bytes >= 10 * 1024 * 1024,
        "conformance suite bug: the large tape has only {bytes} payload bytes"
    );
    let summary = TapeSummary {
        frame_count: FRAMES,
        byte_count: bytes,
        ended_at_us: super::fixtures::now_us(),
        digest: Some(super::fixtures::digest(FRAMES)),
        seal: None,
    };
    let done = finish(&mut w, summary, EndReason::Completed).await?;
    check::info(
        &done,
        &header,
        TapeState::Finished,
        FRAMES,
        bytes,
        "finish's result",
    )?;
    drop(w);
    let info = cx.get(&id).await?;
    check::info(&info, &header, TapeState::Finished, FRAMES, bytes, "get")?;

    let n = verify_stream(&cx, &id, 0, 1000, 256 * 1024, seq_frame).await?;
    eq(n, FRAMES, &format!("frames read back from `{id}`"))?;
    let n = verify_stream(&cx, &id, 54_321, 4096, u64::MAX, seq_frame).await?;
    eq(
        n,
        FRAMES - 54_321,
        &format!("frames read back from `{id}` from seq 54321"),
    )?;
    Ok(())
}

/// Frame `seq` of the big-frames case: 1 MiB derived from `seq`.
fn big_frame(seq: u64) -> Frame {
    let seed = seq_payload(seq);
    let payload: Vec<u8> = seed.iter().copied().cycle().take(1024 * 1024).collect();
    raw_frame(seq, payload)
}

/// Twelve 1 MiB frames, appended two at a time, read back with pages of at
/// most 3 MiB and one frame at a time.
pub(crate) async fn big_frames<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    const FRAMES: u64 = 12;
    let id = cx.id("big");
    let mut w = cx.create(cx.header(&id)).await?;
    for first in (0..FRAMES).step_by(2) {
        let batch = [big_frame(first), big_frame(first + 1)];
        append(&mut w, &batch, first + 2).await?;
    }
    let summary = TapeSummary {
        frame_count: FRAMES,
        byte_count: FRAMES * 1024 * 1024,
        ended_at_us: super::fixtures::now_us(),
        digest: None,
        seal: None,
    };
    finish(&mut w, summary, EndReason::Completed).await?;
    drop(w);
    let n = verify_stream(&cx, &id, 0, 100, 3 * 1024 * 1024, big_frame).await?;
    eq(n, FRAMES, &format!("frames read back from `{id}`"))?;
    let n = verify_stream(&cx, &id, 5, 1, u64::MAX, big_frame).await?;
    eq(
        n,
        FRAMES - 5,
        &format!("frames read back from `{id}` from seq 5"),
    )?;
    Ok(())
}
