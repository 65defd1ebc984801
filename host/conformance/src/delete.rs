//! `delete` (capability `delete`).

use super::check::{self, ensure, expect_kind, ok};
use super::fixtures::{frame, json_frames, summary_of};
use super::ops::{Listing, append, finish};
use super::{CaseResult, Ctx};
use std::collections::HashSet;
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::terms::method_term;
use tapedeck_types::{EndReason, ErrorKind, SearchQuery, TapeFilter, TapeState};

/// `delete`, which must succeed.
async fn delete<S: TapeStore>(cx: &Ctx<S>, id: &str) -> CaseResult {
    ok(cx.store.delete(id).await, &format!("delete(`{id}`)"))
}

/// A deleted tape is gone from `get`, `read_frames`, `resume`, `list` and
/// `search`; deleting it again is `not-found`; other tapes are untouched.
pub(crate) async fn removes_everywhere<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("gone");
    let mut frames = json_frames(0..4);
    frames.push(frame(
        4,
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"deleted-marker"}}"#,
    ));
    cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    let keep = cx.id("keep");
    let kept = cx.record(cx.header(&keep), &frames, None).await?;

    delete(&cx, &id).await?;
    let nf = ErrorKind::NotFound;
    expect_kind(
        cx.store.get(&id).await,
        nf,
        &format!("get(`{id}`) after delete"),
    )?;
    expect_kind(
        cx.store.read_frames(&id, 0, 100, u64::MAX).await,
        nf,
        &format!("read_frames(`{id}`) after delete"),
    )?;
    expect_kind(
        cx.store.resume(&id).await.map(drop),
        nf,
        &format!("resume(`{id}`) after delete"),
    )?;
    expect_kind(
        cx.store.delete(&id).await,
        nf,
        &format!("delete(`{id}`) a second time"),
    )?;

    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    let listed = cx.ours(Listing::List(&filter), 1000).await?;
    ensure!(
        listed == vec![keep.clone()],
        "list after delete returned {listed:?}, expected only `{keep}`"
    );
    let all = cx.ours(Listing::List(&TapeFilter::default()), 1000).await?;
    ensure!(
        !all.contains(&id),
        "list of every tape still returns deleted `{id}`"
    );
    if cx.caps.search {
        let q = SearchQuery {
            filter: filter.clone(),
            terms: vec![method_term("notifications/message")],
            text: None,
        };
        let found = cx.ours(Listing::Search(&q), 1000).await?;
        ensure!(
            found == vec![keep.clone()],
            "search by method term after delete returned {found:?}, expected only `{keep}`"
        );
    }
    if cx.caps.text_search {
        let q = SearchQuery {
            filter: filter.clone(),
            terms: Vec::new(),
            text: Some("deleted-marker".to_string()),
        };
        let found = cx.ours(Listing::Search(&q), 1000).await?;
        ensure!(
            found == vec![keep.clone()],
            "search by text after delete returned {found:?}, expected only `{keep}`"
        );
    }
    let after = cx.get(&keep).await?;
    ensure!(
        after == kept,
        "deleting `{id}` changed `{keep}`: {after:?}, before {kept:?}"
    );
    let read = cx.read_all(&keep, 0, 100, u64::MAX).await?;
    check::frames_eq(
        &read,
        &frames,
        &format!("read_frames(`{keep}`) after deleting another tape"),
    )
}

/// Tapes in every state can be deleted.
pub(crate) async fn any_state<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let mut ids = Vec::new();
    for (label, end) in [
        ("recording", None),
        ("finished", Some(EndReason::Completed)),
        ("crashed", Some(EndReason::Crashed)),
    ] {
        let id = cx.id(label);
        cx.record(cx.header(&id), &frames, end).await?;
        ids.push(id);
    }
    let id = cx.id("aborted");
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames, 3).await?;
    ok(w.abort("conformance").await, &format!("abort(`{id}`)"))?;
    drop(w);
    ids.push(id);
    let id = cx.id("saved");
    cx.save(
        cx.header(&id),
        &frames,
        summary_of(&frames),
        EndReason::Aborted,
    )
    .await?;
    ids.push(id);
    let empty = cx.id("empty");
    drop(cx.create(cx.header(&empty)).await?);
    ids.push(empty);
    for id in &ids {
        let state = cx.get(id).await?.state;
        delete(&cx, id).await?;
        expect_kind(
            cx.store.get(id).await,
            ErrorKind::NotFound,
            &format!("get(`{id}`) after deleting it in state {}", state.as_str()),
        )?;
    }
    Ok(())
}

/// After `delete` the id can be used again, by `create` and by `save`, and
/// nothing of the old tape shows through.
pub(crate) async fn id_reusable<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("reuse");
    let old = json_frames(0..5);
    cx.record(cx.header(&id), &old, Some(EndReason::Completed))
        .await?;
    delete(&cx, &id).await?;

    let mut header = cx.header(&id);
    header.name = "second life".to_string();
    let mut w = cx.create(header.clone()).await?;
    let info = cx.get(&id).await?;
    check::info(
        &info,
        &header,
        TapeState::Recording,
        0,
        0,
        "get of the re-created tape",
    )?;
    ensure!(
        info.digest.is_none() && info.ended_at_us.is_none(),
        "the re-created tape kept the old end: {info:?}"
    );
    let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
    ensure!(
        read.is_empty(),
        "read_frames of the re-created tape returned {} old frames",
        read.len()
    );
    let new = vec![frame(0, "{\"new\":0}"), frame(1, "{\"new\":1}")];
    append(&mut w, &new, 2).await?;
    finish(&mut w, summary_of(&new), EndReason::Completed).await?;
    drop(w);
    let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
    check::frames_eq(&read, &new, "read_frames of the re-created tape")?;

    delete(&cx, &id).await?;
    let info = cx
        .save(
            cx.header(&id),
            &old[..3],
            summary_of(&old[..3]),
            EndReason::Crashed,
        )
        .await?;
    ensure!(
        info.frame_count == 3,
        "save after delete: frame_count {}, expected 3",
        info.frame_count
    );
    let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
    check::frames_eq(
        &read,
        &old[..3],
        "read_frames of the tape saved after delete",
    )
}

/// Deleting a tape that does not exist is `not-found`.
pub(crate) async fn missing<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("never");
    expect_kind(
        cx.store.delete(&id).await,
        ErrorKind::NotFound,
        &format!("delete(`{id}`) of a tape that never existed"),
    )
}

/// Deleting tapes between pages skips or repeats none of the others.
pub(crate) async fn list_paging_stable<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let base = super::fixtures::random_epoch();
    let frames = json_frames(0..1);
    let mut want = Vec::new();
    for i in 0..10u64 {
        let id = cx.id(&format!("t{i}"));
        cx.save(
            cx.header_at(&id, base + i * 1_000_000),
            &frames,
            summary_of(&frames),
            EndReason::Completed,
        )
        .await?;
        want.push(id);
    }
    want.reverse(); // newest first
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    let first = ok(
        cx.store.list(&filter, None, 3).await,
        "list page 1 (limit 3)",
    )?;
    ensure!(
        first.next_cursor.is_some(),
        "list page 1 (limit 3) of 10 tapes returned no cursor"
    );
    let seen: Vec<String> = first.tapes.iter().map(|t| t.header.id.clone()).collect();
    // Delete one tape already seen and one not yet seen.
    let gone_seen = seen
        .first()
        .cloned()
        .ok_or("list page 1 returned no tapes")?;
    let gone_unseen = want[7].clone();
    delete(&cx, &gone_seen).await?;
    delete(&cx, &gone_unseen).await?;

    let mut got = seen.clone();
    let mut cursor = first.next_cursor;
    let mut page_no = 1;
    while let Some(c) = cursor {
        page_no += 1;
        ensure!(page_no < 1000, "list did not end after 1000 pages");
        let page = ok(
            cx.store.list(&filter, Some(&c), 3).await,
            &format!("list page {page_no}"),
        )?;
        got.extend(page.tapes.into_iter().map(|t| t.header.id));
        cursor = page.next_cursor;
    }
    let mut unique = HashSet::new();
    for id in &got {
        ensure!(
            unique.insert(id),
            "paging while deleting repeated tape `{id}`"
        );
    }
    for id in &want {
        if *id != gone_unseen && *id != gone_seen {
            ensure!(
                got.contains(id),
                "paging while deleting skipped tape `{id}`, which still exists"
            );
        }
    }
    Ok(())
}
