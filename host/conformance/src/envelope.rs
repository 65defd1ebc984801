//! The header's envelope belongs to the host: opaque bytes (up to 16 KiB)
//! stored with the header and returned verbatim by `get`, `list` and
//! `search`; none stays none.

use super::check;
use super::fixtures::{json_frames, opaque_bytes, summary_of};
use super::ops::{Listing, append, finish};
use super::search::terms_query;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::terms::{MAX_ENVELOPE, method_term};
use tapedeck_types::{EndReason, TapeFilter, TapeHeader, TapeInfo, TapeState};

/// Envelopes a provider might mangle: none, empty, a single 0x00 or 0xff,
/// every byte value, JSON-looking text, invalid UTF-8, the largest allowed.
pub(crate) fn envelopes() -> Vec<(&'static str, Option<Vec<u8>>)> {
    vec![
        ("none", None),
        ("empty", Some(Vec::new())),
        ("zero", Some(vec![0x00])),
        ("ff", Some(vec![0xff])),
        ("all-bytes", Some((0..=255u8).collect())),
        (
            "json",
            Some(br#"{"alg":"xchacha20poly1305","kid":"k1"}"#.to_vec()),
        ),
        (
            "bad-utf8",
            Some(vec![0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80]),
        ),
        ("max", Some(opaque_bytes(16, MAX_ENVELOPE))),
    ]
}

/// Every envelope comes back verbatim on a tape made by `create` (while
/// recording and once finished) and on one made by `save`, from `get`,
/// `list` and (when declared) `search`.
pub(crate) async fn verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    let summary = summary_of(&frames);
    let mut want: Vec<TapeInfo> = Vec::new();
    for (label, envelope) in envelopes() {
        // One header per tape (`cx.header` stamps the time of the call).
        let header = |id: &str| TapeHeader {
            envelope: envelope.clone(),
            ..cx.header(id)
        };
        // Made by create, still recording.
        let live = cx.id(&format!("{label}-live"));
        let live_header = header(&live);
        let mut w = cx.create(live_header.clone()).await?;
        append(&mut w, &frames[..1], 1).await?;
        drop(w);
        let info = cx.get(&live).await?;
        let bytes = frames[0].payload.len() as u64;
        check::info(
            &info,
            &live_header,
            TapeState::Recording,
            1,
            bytes,
            &format!("get(`{live}`) (envelope {label}, made by create)"),
        )?;
        want.push(info);

        // Made by create, finished.
        let done = cx.id(&format!("{label}-done"));
        let done_header = header(&done);
        let mut w = cx.create(done_header.clone()).await?;
        let info = cx.get(&done).await?;
        check::info(
            &info,
            &done_header,
            TapeState::Recording,
            0,
            0,
            &format!("get(`{done}`) after create (envelope {label})"),
        )?;
        append(&mut w, &frames, 3).await?;
        let info = finish(&mut w, summary.clone(), EndReason::Completed).await?;
        cx.check_ended(
            "finish",
            &info,
            &done_header,
            EndReason::Completed,
            &summary,
            &frames,
        )
        .await?;
        want.push(info);

        // Made by save.
        let saved = cx.id(&format!("{label}-saved"));
        let saved_header = header(&saved);
        let info = cx
            .save(
                saved_header.clone(),
                &frames,
                summary.clone(),
                EndReason::Completed,
            )
            .await?;
        cx.check_ended(
            "save",
            &info,
            &saved_header,
            EndReason::Completed,
            &summary,
            &frames,
        )
        .await?;
        want.push(info);
    }
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    };
    for limit in [1000, 3] {
        let listed = cx.list_all(Listing::List(&filter), limit).await?;
        check::listed_as(&listed, &want, &format!("list by session (limit {limit})"))?;
    }
    if cx.caps.search {
        let q = terms_query(&cx, Vec::new(), None);
        let found = cx.list_all(Listing::Search(&q), 1000).await?;
        check::listed_as(&found, &want, "search by session")?;
        let q = terms_query(&cx, vec![method_term("tools/call")], None);
        let found = cx.list_all(Listing::Search(&q), 1000).await?;
        check::listed_as(&found, &want, "search by session and a method term")?;
    }
    Ok(())
}
