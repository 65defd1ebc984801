//! Error kinds: `not-found`, `already-exists`, `invalid-input` for bad ids,
//! and `unsupported` for capabilities not declared.

use super::check::{self, ensure, expect_kind, expect_kinds};
use super::fixtures::{json_frames, summary_of};
use super::ops::{Listing, append, finish};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::terms::method_term;
use tapedeck_types::{EndReason, ErrorKind, SearchQuery, TapeFilter, TapeHeader, TapeState};

/// A missing tape is `not-found` for `get`, `read_frames`, `resume` and
/// (with `delete`) `delete`.
pub(crate) async fn not_found<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("missing");
    let nf = ErrorKind::NotFound;
    expect_kind(cx.store.get(&id).await, nf, &format!("get(`{id}`)"))?;
    for from in [0, 5] {
        expect_kind(
            cx.store.read_frames(&id, from, 10, 1024).await,
            nf,
            &format!("read_frames(`{id}`, from {from}) of a missing tape"),
        )?;
    }
    expect_kind(
        cx.store.resume(&id).await.map(drop),
        nf,
        &format!("resume(`{id}`)"),
    )?;
    if cx.caps.delete {
        expect_kind(cx.store.delete(&id).await, nf, &format!("delete(`{id}`)"))?;
    }
    // An id that differs from an existing one only by a suffix is missing too.
    let real = cx.id("real");
    cx.record(
        cx.header(&real),
        &json_frames(0..1),
        Some(EndReason::Completed),
    )
    .await?;
    let near = format!("{real}x");
    expect_kind(cx.store.get(&near).await, nf, &format!("get(`{near}`)"))?;
    Ok(())
}

/// `create` and `save` over an existing id, in any state, are
/// `already-exists`, and the existing tape is untouched.
pub(crate) async fn already_exists<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let live = cx.id("live");
    let mut w = cx.create(cx.header(&live)).await?;
    append(&mut w, &frames[..2], 2).await?;
    let mut ids = vec![live.clone()];
    for (label, end) in [
        ("finished", EndReason::Completed),
        ("crashed", EndReason::Crashed),
    ] {
        let id = cx.id(label);
        cx.record(cx.header(&id), &frames, Some(end)).await?;
        ids.push(id);
    }
    let aborted = cx.id("aborted");
    let mut w2 = cx.create(cx.header(&aborted)).await?;
    w2.abort("conformance")
        .await
        .map_err(|e| format!("abort(`{aborted}`) failed: {e}"))?;
    drop(w2);
    ids.push(aborted);

    for id in &ids {
        let before = cx.get(id).await?;
        let state = before.state.as_str();
        let mut other: TapeHeader = cx.header(id);
        other.name = "intruder".to_string();
        let call = format!("create(`{id}`) over a {state} tape");
        expect_kind(
            cx.store.create(other.clone()).await.map(drop),
            ErrorKind::AlreadyExists,
            &call,
        )?;
        let call2 = format!("save(`{id}`) over a {state} tape");
        expect_kind(
            cx.store
                .save(other, &frames, summary_of(&frames), EndReason::Completed)
                .await,
            ErrorKind::AlreadyExists,
            &call2,
        )?;
        let after = cx.get(id).await?;
        ensure!(
            after == before,
            "after {call} and {call2}, get returned {after:?}, before {before:?}"
        );
    }
    // The live writer still works after the failed attempts.
    append(&mut w, &frames[2..], 3).await?;
    finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
    let read = cx.read_all(&live, 0, 100, u64::MAX).await?;
    check::frames_eq(&read, &frames, &format!("read_frames(`{live}`)"))
}

/// Ids every provider must refuse.
fn bad_ids() -> Vec<(String, &'static str)> {
    vec![
        ("../x".into(), "`../x`"),
        ("..".into(), "`..`"),
        (".".into(), "`.`"),
        ("/etc/passwd".into(), "`/etc/passwd`"),
        ("a/b".into(), "`a/b`"),
        ("x/../../y".into(), "`x/../../y`"),
        ("a\\b".into(), "`a\\b`"),
        ("C:\\x".into(), "`C:\\x`"),
        ("".into(), "the empty id"),
        ("y".repeat(10 * 1024), "a 10 KiB id"),
        ("z".repeat(129), "a 129-byte id"),
        ("nul\0byte".into(), "an id with a NUL byte"),
        ("\0".into(), "a lone NUL byte"),
        (".hidden".into(), "`.hidden`"),
        ("a..b".into(), "`a..b`"),
        ("a b".into(), "an id with a space"),
        ("tab\tid".into(), "an id with a tab"),
        ("line\nid".into(), "an id with a newline"),
        ("é".into(), "a non-ASCII id"),
        ("%2e%2e".into(), "`%2e%2e`"),
        ("a;drop".into(), "`a;drop`"),
        ("a'b".into(), "an id with a quote"),
        ("*".into(), "`*`"),
    ]
}

/// Every operation taking an id refuses invalid ids with `invalid-input`.
pub(crate) async fn invalid_ids<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..2);
    let bad = ErrorKind::InvalidInput;
    for (id, shown) in bad_ids() {
        let header = TapeHeader {
            id: id.clone(),
            ..cx.header("placeholder")
        };
        expect_kind(
            cx.store.create(header.clone()).await.map(drop),
            bad,
            &format!("create with {shown}"),
        )?;
        expect_kind(
            cx.store
                .save(header, &frames, summary_of(&frames), EndReason::Completed)
                .await,
            bad,
            &format!("save with {shown}"),
        )?;
        expect_kind(cx.store.get(&id).await, bad, &format!("get of {shown}"))?;
        expect_kind(
            cx.store.read_frames(&id, 0, 10, 1024).await,
            bad,
            &format!("read_frames of {shown}"),
        )?;
        expect_kind(
            cx.store.resume(&id).await.map(drop),
            bad,
            &format!("resume of {shown}"),
        )?;
        if cx.caps.delete {
            expect_kind(
                cx.store.delete(&id).await,
                bad,
                &format!("delete of {shown}"),
            )?;
        }
    }
    // Nothing of ours was created under any name.
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    let listed = cx.list_all(Listing::List(&filter), 1000).await?;
    ensure!(
        listed.is_empty(),
        "invalid ids were refused, yet list by session shows {:?}",
        listed.iter().map(|t| &t.header.id).collect::<Vec<_>>()
    );
    Ok(())
}

/// Valid ids at the edges work everywhere: 128 bytes, every allowed kind of
/// character, single dots, and ids differing only in case are distinct tapes.
pub(crate) async fn valid_id_edges<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let long = cx.id_of_len(128);
    let mixed = cx.id("Az09-_.x.y_Z-");
    let dotted = cx.id("end.");
    let upper = cx.id("CASE");
    let lower = upper.to_lowercase();
    cx.track(&lower);
    let ids = [long, mixed, dotted, upper, lower];
    for (i, id) in ids.iter().enumerate() {
        let frames = json_frames(0..(i as u64 + 1));
        let header = cx.header(id);
        let info = cx
            .record(header.clone(), &frames, Some(EndReason::Completed))
            .await?;
        check::info(
            &info,
            &header,
            TapeState::Finished,
            frames.len() as u64,
            summary_of(&frames).byte_count,
            &format!("get(`{id}`)"),
        )?;
        let read = cx.read_all(id, 0, 100, u64::MAX).await?;
        check::frames_eq(&read, &frames, &format!("read_frames(`{id}`)"))?;
    }
    // Both case variants still hold their own frames.
    for (i, id) in ids.iter().enumerate().skip(3) {
        let info = cx.get(id).await?;
        ensure!(
            info.frame_count == i as u64 + 1,
            "tape `{id}` has {} frames, expected {}: ids differing only in case collide",
            info.frame_count,
            i + 1
        );
    }
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    let mut listed = cx.ours(Listing::List(&filter), 1000).await?;
    listed.sort();
    let mut want: Vec<String> = ids.to_vec();
    want.sort();
    ensure!(
        listed == want,
        "list by session returned {listed:?}, expected {want:?}"
    );
    Ok(())
}

/// Without `delete` declared, `delete` answers `unsupported` and removes
/// nothing.
pub(crate) async fn undeclared_delete<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let id = cx.id("undeletable");
    let before = cx
        .record(
            cx.header(&id),
            &json_frames(0..2),
            Some(EndReason::Completed),
        )
        .await?;
    expect_kind(
        cx.store.delete(&id).await,
        ErrorKind::Unsupported,
        &format!("delete(`{id}`) without capability `delete`"),
    )?;
    let after = cx.get(&id).await?;
    ensure!(
        after == before,
        "after the refused delete, get returned {after:?}, before {before:?}"
    );
    Ok(())
}

/// Without `search` declared, `search` answers `unsupported`.
pub(crate) async fn undeclared_search<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let q = SearchQuery {
        filter: TapeFilter {
            session_id: Some(cx.session()),
            ..Default::default()
        },
        terms: vec![method_term("tools/call")],
        text: None,
    };
    expect_kind(
        cx.store.search(&q, None, 10).await,
        ErrorKind::Unsupported,
        "search by a method term without capability `search`",
    )?;
    let plain = SearchQuery {
        terms: Vec::new(),
        ..q
    };
    expect_kinds(
        cx.store.search(&plain, None, 10).await,
        &[ErrorKind::Unsupported],
        "search without conditions, without capability `search`",
    )
}

/// Without `text-search` declared, a search with `text` answers
/// `unsupported`.
pub(crate) async fn undeclared_text_search<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let q = SearchQuery {
        filter: TapeFilter {
            session_id: Some(cx.session()),
            ..Default::default()
        },
        terms: Vec::new(),
        text: Some("tools/call".to_string()),
    };
    expect_kind(
        cx.store.search(&q, None, 10).await,
        ErrorKind::Unsupported,
        "search by text without capability `text-search`",
    )
}
