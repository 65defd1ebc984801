//! `read_frames`: paging by frames and by bytes, starting anywhere, past the
//! end, and on a tape still being written.

use super::check::{self, ensure, ok};
use super::fixtures::{frame, json_frames};
use super::ops::append;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::{EndReason, Frame};

/// Frames whose payloads are exactly `len` bytes of JSON.
fn sized_frames(n: u64, len: usize) -> Vec<Frame> {
    (0..n)
        .map(|seq| {
            let mut p = format!("{{\"seq\":{seq},\"pad\":\"");
            while p.len() < len - 2 {
                p.push('.');
            }
            p.push_str("\"}");
            frame(seq, p)
        })
        .collect()
}

/// One `read_frames` call, checked as a page.
async fn read_page<S: TapeStore>(
    cx: &Ctx<S>,
    id: &str,
    from: u64,
    max_frames: u32,
    max_bytes: u64,
) -> Result<Vec<Frame>, String> {
    let call =
        format!("read_frames(`{id}`, from {from}, max_frames {max_frames}, max_bytes {max_bytes})");
    let page = ok(
        cx.store.read_frames(id, from, max_frames, max_bytes).await,
        &call,
    )?;
    check::read_page(&page, from, max_frames, max_bytes, &call)?;
    Ok(page)
}

/// Reading the whole tape with page sizes 1, 2, 7, 24, 25, 26 and 1000
/// frames gives every frame once, in order.
pub(crate) async fn paging_max_frames<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("pf");
    let frames = json_frames(0..25);
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    for max_frames in [1, 2, 7, 24, 25, 26, 1000] {
        let read = cx.read_all(&id, 0, max_frames, u64::MAX).await?;
        check::frames_eq(
            &read,
            &frames,
            &format!("reading `{id}` {max_frames} frames at a time"),
        )?;
    }
    Ok(())
}

/// Pages stop once their payloads reach `max_bytes`.
pub(crate) async fn paging_max_bytes<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("pb");
    let frames = sized_frames(20, 100);
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    for max_bytes in [1, 99, 100, 101, 250, 1000, 1999, 2000, 10_000] {
        let read = cx.read_all(&id, 0, 1000, max_bytes).await?;
        check::frames_eq(
            &read,
            &frames,
            &format!("reading `{id}` with max_bytes {max_bytes}"),
        )?;
    }
    // Both bounds at once.
    let read = cx.read_all(&id, 0, 3, 250).await?;
    check::frames_eq(
        &read,
        &frames,
        &format!("reading `{id}` with max_frames 3, max_bytes 250"),
    )?;
    // With 100-byte frames and max_bytes 100, every page holds one frame.
    let page = read_page(&cx, &id, 4, 1000, 100).await?;
    ensure!(
        page.len() == 1,
        "read_frames(`{id}`, from 4, max_bytes 100) returned {} frames of 100 bytes, expected 1",
        page.len()
    );
    Ok(())
}

/// A frame larger than `max_bytes` is still returned, alone.
pub(crate) async fn oversized_frame<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("big1");
    let frames = vec![
        frame(0, "small-0"),
        frame(1, vec![b'x'; 10_000]),
        frame(2, "small-2"),
        frame(3, vec![b'y'; 20_000]),
    ];
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    for (from, max_bytes) in [(1, 100), (1, 1), (3, 9_999), (0, 0), (1, 0)] {
        let page = read_page(&cx, &id, from, 10, max_bytes).await?;
        let call = format!("read_frames(`{id}`, from {from}, max_bytes {max_bytes})");
        ensure!(
            page.len() == 1,
            "{call} returned {} frames, expected exactly one (the first frame is always returned, \
             however large, and it alone reaches max_bytes)",
            page.len()
        );
        check::frame_eq(&page[0], &frames[from as usize], &call)?;
    }
    let read = cx.read_all(&id, 0, 10, 1).await?;
    check::frames_eq(&read, &frames, "reading with max_bytes 1")
}

/// Reading from the middle starts exactly at `from_seq`.
pub(crate) async fn from_middle<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("mid");
    let frames = json_frames(0..25);
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    for from in [1u64, 10, 13, 24] {
        let page = read_page(&cx, &id, from, 5, u64::MAX).await?;
        ensure!(
            !page.is_empty(),
            "read_frames(`{id}`, from {from}) returned nothing, but frames remain"
        );
        let read = cx.read_all(&id, from, 4, u64::MAX).await?;
        check::frames_eq(
            &read,
            &frames[from as usize..],
            &format!("reading `{id}` from {from}"),
        )?;
    }
    Ok(())
}

/// Reading at or past the end gives an empty list, not an error.
pub(crate) async fn past_end<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("end");
    let frames = json_frames(0..10);
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    let empty = cx.id("end0");
    drop(cx.create(cx.header(&empty)).await?);
    for (id, from) in [
        (&id, 10u64),
        (&id, 11),
        (&id, 1_000_000),
        (&id, u64::MAX),
        (&empty, 0),
        (&empty, 5),
    ] {
        let page = read_page(&cx, id, from, 100, u64::MAX).await?;
        ensure!(
            page.is_empty(),
            "read_frames(`{id}`, from {from}) returned {} frames past the end",
            page.len()
        );
    }
    Ok(())
}

/// A tape being written can be read, and shows each batch once appended.
pub(crate) async fn recording_tape<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("live");
    let frames = json_frames(0..9);
    let mut w = cx.create(cx.header(&id)).await?;
    let page = read_page(&cx, &id, 0, 100, u64::MAX).await?;
    ensure!(
        page.is_empty(),
        "read_frames of a new tape returned {} frames",
        page.len()
    );
    append(&mut w, &frames[..5], 5).await?;
    let read = cx.read_all(&id, 0, 2, u64::MAX).await?;
    check::frames_eq(&read, &frames[..5], "reading a recording tape of 5 frames")?;
    let page = read_page(&cx, &id, 5, 100, u64::MAX).await?;
    ensure!(
        page.is_empty(),
        "read_frames(from 5) of a 5-frame tape returned {} frames",
        page.len()
    );
    append(&mut w, &frames[5..], 9).await?;
    let read = cx.read_all(&id, 5, 100, u64::MAX).await?;
    check::frames_eq(
        &read,
        &frames[5..],
        "reading the second batch of a recording tape",
    )?;
    drop(w);
    let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
    check::frames_eq(
        &read,
        &frames,
        "reading a recording tape after its writer was dropped",
    )
}

/// `max-frames` 0 asks for nothing a page could hold: `invalid-input`, on a
/// tape with frames and on one without.
pub(crate) async fn max_frames_zero<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("mz");
    cx.record(cx.header(&id), &json_frames(0..3), None).await?;
    let empty = cx.id("mz-empty");
    cx.record(cx.header(&empty), &[], None).await?;
    for (tape, from) in [(&id, 0), (&id, 2), (&empty, 0)] {
        check::expect_kind(
            cx.store.read_frames(tape, from, 0, u64::MAX).await,
            tapedeck_types::ErrorKind::InvalidInput,
            &format!("read_frames(`{tape}`, from {from}, max_frames 0)"),
        )?;
    }
    Ok(())
}
