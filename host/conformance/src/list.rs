//! `list`: order, paging, stability, bounds, and every filter.

use super::check::{self, ensure, expect_kinds, ok};
use super::fixtures::{json_frames, now_us, random_epoch, summary_of};
use super::ops::{Listing, append};
use super::{CaseResult, Ctx};
use std::collections::HashSet;
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, TapeFilter, TapeInfo, TapeState};

const SEC: u64 = 1_000_000;

/// A filter on this case's session.
fn session_filter<S: TapeStore>(cx: &Ctx<S>) -> TapeFilter {
    TapeFilter {
        session_id: Some(cx.session()),
        ..Default::default()
    }
}

/// `ids` sorted newest first, as `list` must return them.
fn newest_first(mut tapes: Vec<(u64, String)>) -> Vec<String> {
    tapes.sort_by(|a, b| b.cmp(a));
    tapes.into_iter().map(|(_, id)| id).collect()
}

/// Makes `n` tapes in this case's session, created at `base + offsets[i]`,
/// alternating between `create`+`finish` and `save`. Returns `(created, id)`.
async fn make_tapes<S: TapeStore>(
    cx: &Ctx<S>,
    base: u64,
    offsets: &[u64],
) -> Result<Vec<(u64, String)>, String> {
    let mut out = Vec::new();
    for (i, off) in offsets.iter().enumerate() {
        let id = cx.id(&format!("t{i}"));
        let header = cx.header_at(&id, base + off);
        let frames = json_frames(0..1);
        if i % 2 == 0 {
            cx.record(header, &frames, Some(EndReason::Completed))
                .await?;
        } else {
            cx.save(header, &frames, summary_of(&frames), EndReason::Completed)
                .await?;
        }
        out.push((base + off, id));
    }
    Ok(out)
}

/// Newest first: created_at descending, ties broken by id descending.
pub(crate) async fn order<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let base = random_epoch();
    let tapes = make_tapes(
        &cx,
        base,
        &[3 * SEC, SEC, 5 * SEC, 2 * SEC, 5 * SEC, 4 * SEC, 5 * SEC, 1],
    )
    .await?;
    let want = newest_first(tapes);
    let filter = session_filter(&cx);
    let got = cx.ours(Listing::List(&filter), 1000).await?;
    ensure!(
        got == want,
        "list by session returned {got:?}, expected {want:?}"
    );
    // The same order within the whole store (list_all checks the order of
    // every tape, foreign ones included).
    let all = cx.ours(Listing::List(&TapeFilter::default()), 1000).await?;
    ensure!(
        all == want,
        "list of every tape returned ours as {all:?}, expected {want:?}"
    );
    Ok(())
}

/// Paging with limits 1, 2, 7 and 1000 returns every tape once, in order.
pub(crate) async fn paging<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let base = random_epoch();
    let offsets: Vec<u64> = (0..23u64).map(|i| (i % 17) * SEC).collect();
    let want = newest_first(make_tapes(&cx, base, &offsets).await?);
    let filter = session_filter(&cx);
    for limit in [1, 2, 7, 1000] {
        let got = cx.ours(Listing::List(&filter), limit).await?;
        if got != want {
            let missing: Vec<&String> = want.iter().filter(|id| !got.contains(id)).collect();
            return Err(if missing.is_empty() {
                format!(
                    "paging with limit {limit} returned the tapes in order {got:?}, expected {want:?}"
                )
            } else {
                format!(
                    "paging with limit {limit} skipped tapes {}",
                    check::show_ids(&missing)
                )
            });
        }
    }
    Ok(())
}

/// Pages the rest of a listing from `cursor`, checking each page.
async fn rest<S: TapeStore>(
    cx: &Ctx<S>,
    filter: &TapeFilter,
    mut cursor: Option<String>,
    limit: u32,
) -> Result<Vec<(usize, TapeInfo)>, String> {
    let mut out = Vec::new();
    let mut page_no = 1;
    while let Some(c) = cursor {
        page_no += 1;
        ensure!(page_no < 10_000, "list did not end after 10,000 pages");
        let call = format!("list page {page_no} (limit {limit})");
        let page = ok(cx.store.list(filter, Some(&c), limit).await, &call)?;
        ensure!(
            page.tapes.len() <= limit as usize,
            "{call} returned {} tapes",
            page.tapes.len()
        );
        out.extend(page.tapes.into_iter().map(|t| (page_no, t)));
        cursor = page.next_cursor;
    }
    Ok(out)
}

/// Fetches page 1 (limit 3), lets `between` create tapes, pages on, and
/// checks that the listing holds exactly the tapes that existed at page 1,
/// in order, and none of the new ones.
async fn stable_with<S: TapeStore>(cx: &Ctx<S>, new_offsets: &[u64]) -> CaseResult {
    let base = random_epoch();
    let offsets: Vec<u64> = (0..10u64).map(|i| (i + 1) * 10 * SEC).collect();
    let want = newest_first(make_tapes(cx, base, &offsets).await?);
    let filter = session_filter(cx);
    let limit = 3;
    let first = ok(
        cx.store.list(&filter, None, limit).await,
        "list page 1 (limit 3)",
    )?;
    ensure!(
        first.tapes.len() <= 3,
        "list page 1 returned {} tapes with limit 3",
        first.tapes.len()
    );
    ensure!(
        first.next_cursor.is_some(),
        "list page 1 (limit 3) of 10 tapes returned no next cursor"
    );

    // New tapes, between pages.
    let mut new_ids = HashSet::new();
    let mut writers = Vec::new();
    for (i, off) in new_offsets.iter().enumerate() {
        let id = cx.id(&format!("new{i}"));
        let created = if *off == u64::MAX {
            now_us()
        } else {
            base + off
        };
        let header = cx.header_at(&id, created);
        if i % 2 == 0 {
            let mut w = cx.create(header).await?;
            append(&mut w, &json_frames(0..1), 1).await?;
            writers.push(w);
        } else {
            let frames = json_frames(0..1);
            cx.save(header, &frames, summary_of(&frames), EndReason::Completed)
                .await?;
        }
        new_ids.insert(id);
    }

    let mut got: Vec<(usize, TapeInfo)> = first.tapes.into_iter().map(|t| (1, t)).collect();
    got.extend(rest(cx, &filter, first.next_cursor, limit).await?);
    let mut seen = HashSet::new();
    for (page_no, t) in &got {
        let id = &t.header.id;
        ensure!(
            !new_ids.contains(id) || *page_no == 1,
            "list page {page_no} returned tape `{id}`, created after page 1 was fetched"
        );
        ensure!(
            seen.insert(id.clone()),
            "list page {page_no} repeated tape `{id}`"
        );
    }
    let ids: Vec<String> = got
        .iter()
        .map(|(_, t)| t.header.id.clone())
        .filter(|id| !new_ids.contains(id))
        .collect();
    if ids != want {
        let missing: Vec<&String> = want.iter().filter(|id| !ids.contains(id)).collect();
        return Err(if missing.is_empty() {
            format!("paging while tapes were created returned {ids:?}, expected {want:?}")
        } else {
            format!(
                "paging while tapes were created skipped {}",
                check::show_ids(&missing)
            )
        });
    }
    // A fresh listing sees the new tapes.
    let fresh = cx.ours(Listing::List(&filter), 1000).await?;
    for id in &new_ids {
        ensure!(
            fresh.contains(id),
            "a fresh list does not show new tape `{id}`"
        );
    }
    drop(writers);
    Ok(())
}

/// Tapes created between pages with a newer `created_at` (what a recorder
/// does) do not appear on later pages, nothing is skipped or repeated.
pub(crate) async fn paging_stable_new_newest<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    stable_with(&cx, &[u64::MAX, u64::MAX, 200 * SEC]).await
}

/// Tapes created between pages with an older `created_at` (an import), which
/// would sort into the pages not yet fetched, do not appear on them either.
pub(crate) async fn paging_stable_new_backdated<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    // Between existing tapes, tied with one (tape 3 is at 40 s), and older than all.
    stable_with(&cx, &[55 * SEC, 40 * SEC, 25 * SEC, 0]).await
}

/// A cursor the provider never issued is rejected.
pub(crate) async fn bad_cursor<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    check_bad_cursors(&cx, Listing::List(&session_filter(&cx))).await
}

/// Shared with `search`: garbage cursors are `invalid-input` (or
/// `not-found`, which the contract also allows for a cursor).
pub(crate) async fn check_bad_cursors<S: TapeStore>(cx: &Ctx<S>, what: Listing<'_>) -> CaseResult {
    let long = "c".repeat(10 * 1024);
    for cursor in [
        "not-a-cursor",
        "\u{0}\u{ff}garbage",
        "../../../../etc/passwd",
        "eyJub3QiOiJvdXJzIn0=",
        "-1",
        long.as_str(),
    ] {
        let shown: String = cursor.chars().take(24).collect();
        let call = format!("{}(cursor {shown:?}…)", what.call());
        expect_kinds(
            cx.page(what, Some(cursor), 10).await,
            &[ErrorKind::InvalidInput, ErrorKind::NotFound],
            &call,
        )?;
    }
    Ok(())
}

/// `limit` must be 1..=1000.
pub(crate) async fn limit_bounds<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    check_limits(&cx, Listing::List(&session_filter(&cx))).await
}

/// Shared with `search`: limits 0, 1001 and `u32::MAX` are `invalid-input`;
/// 1 and 1000 work.
pub(crate) async fn check_limits<S: TapeStore>(cx: &Ctx<S>, what: Listing<'_>) -> CaseResult {
    let frames = json_frames(0..2);
    for i in 0..2 {
        let id = cx.id(&format!("lim{i}"));
        cx.record(cx.header(&id), &frames, Some(EndReason::Completed))
            .await?;
    }
    for limit in [0, 1001, u32::MAX] {
        let call = format!("{}(limit {limit})", what.call());
        expect_kinds(
            cx.page(what, None, limit).await,
            &[ErrorKind::InvalidInput],
            &call,
        )?;
    }
    for limit in [1, 1000] {
        let call = format!("{}(limit {limit})", what.call());
        let page = ok(cx.page(what, None, limit).await, &call)?;
        ensure!(
            page.tapes.len() <= limit as usize,
            "{call} returned {} tapes",
            page.tapes.len()
        );
        ensure!(
            !page.tapes.is_empty(),
            "{call} returned no tapes, but 2 match"
        );
        if limit == 1 {
            ensure!(
                page.next_cursor.is_some(),
                "{call} returned no cursor, but 2 tapes match"
            );
        }
    }
    Ok(())
}

/// What `list` says about a tape is what `get` says, in every state.
pub(crate) async fn info_matches_get<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = json_frames(0..3);
    cx.record(
        cx.header(&cx.id("fin")),
        &frames,
        Some(EndReason::Completed),
    )
    .await?;
    cx.record(cx.header(&cx.id("rec")), &frames, None).await?;
    cx.record(
        cx.header(&cx.id("crash")),
        &frames,
        Some(EndReason::Crashed),
    )
    .await?;
    let id = cx.id("abort");
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames, 3).await?;
    ok(w.abort("conformance").await, &format!("abort(`{id}`)"))?;
    drop(w);
    let filter = session_filter(&cx);
    let listed = cx.list_all(Listing::List(&filter), 1000).await?;
    ensure!(
        listed.len() == 4,
        "list by session returned {} tapes, expected 4",
        listed.len()
    );
    for t in listed {
        let got = cx.get(&t.header.id).await?;
        ensure!(
            got == t,
            "list returned {t:?} for `{}`, but get returned {got:?}",
            t.header.id
        );
    }
    Ok(())
}

/// Five tapes that differ in every filtered field, labelled a..e.
struct Corpus {
    token: String,
    s1: String,
    s2: String,
    base: u64,
    tapes: Vec<(&'static str, TapeInfo)>,
}

impl Corpus {
    async fn build<S: TapeStore>(cx: &Ctx<S>) -> Result<Corpus, String> {
        let token = cx.token();
        let s1 = format!("{token}-s1");
        let s2 = format!("{token}-s2");
        let base = random_epoch();
        let tag = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            v.push(("token".to_string(), token.clone()));
            v
        };
        let frames = json_frames(0..2);
        let mut tapes = Vec::new();

        let mut h = cx.header_at(&cx.id("a"), base + 10 * SEC);
        (h.session_id, h.name, h.tags) = (
            s1.clone(),
            format!("Weather Demo ⛅ {token}"),
            tag(&[("env", "ci"), ("team", "a")]),
        );
        tapes.push((
            "a",
            cx.record(h, &frames, Some(EndReason::Completed)).await?,
        ));

        let mut h = cx.header_at(&cx.id("b"), base + 20 * SEC);
        (h.session_id, h.name, h.tags) = (
            s1.clone(),
            format!("weather-report {token}"),
            tag(&[("env", "prod")]),
        );
        tapes.push(("b", cx.record(h, &frames, None).await?));

        let mut h = cx.header_at(&cx.id("c"), base + 30 * SEC);
        (h.session_id, h.name, h.tags) = (
            s2.clone(),
            format!("Other {token}"),
            tag(&[("env", "ci"), ("env", "prod")]),
        );
        let id = h.id.clone();
        let mut w = cx.create(h).await?;
        append(&mut w, &frames, 2).await?;
        ok(w.abort("conformance").await, &format!("abort(`{id}`)"))?;
        drop(w);
        tapes.push(("c", cx.get(&id).await?));

        let mut h = cx.header_at(&cx.id("d"), base + 40 * SEC);
        (h.session_id, h.name, h.tags) = (s2.clone(), String::new(), tag(&[]));
        tapes.push(("d", cx.record(h, &frames, Some(EndReason::Crashed)).await?));

        let mut h = cx.header_at(&cx.id("e"), base + 40 * SEC);
        (h.session_id, h.name, h.tags) = (
            String::new(),
            format!("WEATHER {token}"),
            tag(&[("team", "a")]),
        );
        tapes.push((
            "e",
            cx.save(h, &frames, summary_of(&frames), EndReason::Completed)
                .await?,
        ));
        Ok(Corpus {
            token,
            s1,
            s2,
            base,
            tapes,
        })
    }

    fn label(&self, id: &str) -> String {
        self.tapes
            .iter()
            .find(|(_, t)| t.header.id == id)
            .map_or_else(|| id.to_string(), |(l, _)| l.to_string())
    }

    /// The corpus tapes `filter` must return, in order, checked against the
    /// labels a case expects (so a case cannot pass vacuously).
    fn expected(&self, filter: &TapeFilter, labels: &[&str]) -> Result<Vec<String>, String> {
        let want = newest_first(
            self.tapes
                .iter()
                .filter(|(_, t)| filter.matches(t))
                .map(|(_, t)| (t.header.created_at_us, t.header.id.clone()))
                .collect(),
        );
        let mut got_labels: Vec<String> = want.iter().map(|id| self.label(id)).collect();
        got_labels.sort();
        let mut labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        labels.sort();
        ensure!(
            got_labels == labels,
            "conformance suite bug: filter {filter:?} should select {labels:?}, the reference matcher selects {got_labels:?}"
        );
        Ok(want)
    }

    /// Lists with `filter` (alone, over the whole store) and compares our tapes.
    async fn check<S: TapeStore>(
        &self,
        cx: &Ctx<S>,
        filter: TapeFilter,
        labels: &[&str],
        limit: u32,
    ) -> CaseResult {
        let want = self.expected(&filter, labels)?;
        let got = cx.ours(Listing::List(&filter), limit).await?;
        if got != want {
            let show = |ids: &[String]| {
                ids.iter()
                    .map(|id| self.label(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "list with {filter:?} (limit {limit}) returned our tapes [{}], expected [{}]",
                show(&got),
                show(&want)
            ));
        }
        Ok(())
    }

    fn token_tag(&self) -> (String, String) {
        ("token".to_string(), self.token.clone())
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `session_id`: exact, case-sensitive, empty allowed.
pub(crate) async fn filter_session<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let f = |s: &str| TapeFilter {
        session_id: Some(s.to_string()),
        ..Default::default()
    };
    c.check(&cx, f(&c.s1), &["a", "b"], 1000).await?;
    c.check(&cx, f(&c.s2), &["c", "d"], 1).await?;
    c.check(&cx, f(""), &["e"], 1000).await?;
    c.check(&cx, f(&c.s1.to_uppercase()), &[], 1000).await?;
    c.check(&cx, f(&c.s1[..c.s1.len() - 1]), &[], 1000).await
}

/// `name_contains`: case-insensitive substring.
pub(crate) async fn filter_name<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let f = |s: &str| TapeFilter {
        name_contains: Some(s.to_string()),
        ..Default::default()
    };
    let t = &c.token;
    c.check(&cx, f(t), &["a", "b", "c", "e"], 1000).await?;
    c.check(&cx, f(&t.to_uppercase()), &["a", "b", "c", "e"], 2)
        .await?;
    c.check(&cx, f(&format!("weather demo ⛅ {t}")), &["a"], 1000)
        .await?;
    c.check(
        &cx,
        f(&format!("WEATHER-REPORT {}", t.to_uppercase())),
        &["b"],
        1000,
    )
    .await?;
    c.check(&cx, f(&format!("er {t}")), &["c", "e"], 1000)
        .await?;
    c.check(&cx, f(&format!("{t}-nothing")), &[], 1000).await
}

/// `tags`: every pair listed must be among the tape's tags.
pub(crate) async fn filter_tags<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let f = |pairs: &[(&str, &str)]| {
        let mut t = tags(pairs);
        t.push(c.token_tag());
        TapeFilter {
            tags: t,
            ..Default::default()
        }
    };
    c.check(&cx, f(&[]), &["a", "b", "c", "d", "e"], 2).await?;
    c.check(&cx, f(&[("env", "ci")]), &["a", "c"], 1000).await?;
    c.check(&cx, f(&[("env", "prod"), ("env", "ci")]), &["c"], 1000)
        .await?;
    c.check(&cx, f(&[("team", "a"), ("env", "ci")]), &["a"], 1000)
        .await?;
    c.check(&cx, f(&[("env", "ci"), ("team", "b")]), &[], 1000)
        .await?;
    c.check(&cx, f(&[("env", "CI")]), &[], 1000).await?;
    c.check(&cx, f(&[("ENV", "ci")]), &[], 1000).await?;
    c.check(&cx, f(&[("env", "ci"), ("env", "ci")]), &["a", "c"], 1000)
        .await?;
    // The token tag alone, first in the list.
    let mut only = TapeFilter {
        tags: vec![c.token_tag()],
        ..Default::default()
    };
    only.tags.extend(tags(&[("team", "a")]));
    c.check(&cx, only, &["a", "e"], 1000).await
}

/// `created_since` is inclusive, `created_until` exclusive.
pub(crate) async fn filter_created<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let b = c.base;
    let f = |since: Option<u64>, until: Option<u64>| TapeFilter {
        created_since_us: since,
        created_until_us: until,
        ..Default::default()
    };
    c.check(
        &cx,
        f(Some(b + 20 * SEC), None),
        &["b", "c", "d", "e"],
        1000,
    )
    .await?;
    c.check(&cx, f(Some(b + 20 * SEC + 1), None), &["c", "d", "e"], 1000)
        .await?;
    c.check(&cx, f(None, Some(b + 40 * SEC)), &["a", "b", "c"], 1000)
        .await?;
    c.check(
        &cx,
        f(None, Some(b + 40 * SEC + 1)),
        &["a", "b", "c", "d", "e"],
        2,
    )
    .await?;
    c.check(
        &cx,
        f(Some(b + 20 * SEC), Some(b + 40 * SEC)),
        &["b", "c"],
        1000,
    )
    .await?;
    c.check(&cx, f(Some(b + 40 * SEC), None), &["d", "e"], 1000)
        .await?;
    c.check(&cx, f(None, Some(b + 10 * SEC)), &[], 1000).await?;
    c.check(&cx, f(Some(b + 20 * SEC), Some(b + 20 * SEC)), &[], 1000)
        .await?;
    c.check(&cx, f(Some(b + 30 * SEC), Some(b + 20 * SEC)), &[], 1000)
        .await
}

/// `state`: each of the four.
pub(crate) async fn filter_state<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let f = |state: TapeState| TapeFilter {
        state: Some(state),
        ..Default::default()
    };
    c.check(&cx, f(TapeState::Finished), &["a", "e"], 1000)
        .await?;
    c.check(&cx, f(TapeState::Recording), &["b"], 1000).await?;
    c.check(&cx, f(TapeState::Aborted), &["c"], 1000).await?;
    c.check(&cx, f(TapeState::Crashed), &["d"], 1000).await
}

/// Several conditions at once: all must hold.
pub(crate) async fn filter_combined<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c = Corpus::build(&cx).await?;
    let b = c.base;
    let all = TapeFilter {
        session_id: Some(c.s1.clone()),
        name_contains: Some("WEATHER".to_string()),
        tags: vec![("env".to_string(), "ci".to_string()), c.token_tag()],
        created_since_us: Some(b),
        created_until_us: Some(b + 60 * SEC),
        state: Some(TapeState::Finished),
    };
    c.check(&cx, all.clone(), &["a"], 1000).await?;
    c.check(
        &cx,
        TapeFilter {
            state: Some(TapeState::Recording),
            ..all.clone()
        },
        &[],
        1000,
    )
    .await?;
    c.check(
        &cx,
        TapeFilter {
            session_id: Some(c.s2.clone()),
            ..all.clone()
        },
        &[],
        1000,
    )
    .await?;
    c.check(
        &cx,
        TapeFilter {
            created_until_us: Some(b + 10 * SEC),
            ..all.clone()
        },
        &[],
        1000,
    )
    .await?;
    c.check(
        &cx,
        TapeFilter {
            session_id: Some(c.s2.clone()),
            tags: vec![("env".to_string(), "prod".to_string())],
            created_until_us: Some(b + 40 * SEC),
            ..Default::default()
        },
        &["c"],
        1000,
    )
    .await?;
    c.check(
        &cx,
        TapeFilter {
            name_contains: Some(c.token.clone()),
            state: Some(TapeState::Finished),
            ..Default::default()
        },
        &["a", "e"],
        1,
    )
    .await?;
    c.check(
        &cx,
        TapeFilter {
            tags: vec![("team".to_string(), "a".to_string()), c.token_tag()],
            created_since_us: Some(b + 40 * SEC),
            ..Default::default()
        },
        &["e"],
        1000,
    )
    .await
}
