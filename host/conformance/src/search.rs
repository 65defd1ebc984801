//! `search`: the `terms` condition (capability `search`), here with the
//! terms the host derives from JSON-RPC messages (`method:…`, `tool:…`), and
//! the `text` condition (capability `text-search`). Terms the host did not
//! derive from payloads at all are in `terms`.

use super::check::{ensure, short};
use super::fixtures::{frame, json_frames, raw_frame};
use super::list::{check_bad_cursors, check_limits};
use super::ops::Listing;
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::terms::{method_term, tool_term};
use tapedeck_types::{Direction, EndReason, Frame, SearchQuery, TapeFilter, TapeState};

/// Labelled tapes of one case.
pub(crate) struct Tapes {
    ids: Vec<(&'static str, String)>,
}

impl Tapes {
    pub(crate) fn new() -> Self {
        Tapes { ids: Vec::new() }
    }

    /// Records `frames` as tape `label` in this case's session, finished
    /// unless `end` says otherwise.
    pub(crate) async fn add<S: TapeStore>(
        &mut self,
        cx: &Ctx<S>,
        label: &'static str,
        frames: &[Frame],
        end: Option<EndReason>,
    ) -> CaseResult {
        let id = cx.id(label);
        cx.record(cx.header(&id), frames, end).await?;
        self.ids.push((label, id));
        Ok(())
    }

    /// Labels a tape the case made itself.
    pub(crate) fn named(&mut self, label: &'static str, id: String) {
        self.ids.push((label, id));
    }

    pub(crate) fn label(&self, id: &str) -> String {
        self.ids
            .iter()
            .find(|(_, i)| i == id)
            .map_or_else(|| id.to_string(), |(l, _)| l.to_string())
    }

    /// Searches with `query` and checks that our tapes found are `labels`
    /// (as a set; order is checked by `list_all`).
    pub(crate) async fn expect<S: TapeStore>(
        &self,
        cx: &Ctx<S>,
        query: &SearchQuery,
        labels: &[&str],
        limit: u32,
    ) -> CaseResult {
        let found = cx.ours(Listing::Search(query), limit).await?;
        let mut got: Vec<String> = found.iter().map(|id| self.label(id)).collect();
        got.sort();
        let mut want: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        want.sort();
        ensure!(
            got == want,
            "search with {} (limit {limit}) found our tapes {got:?}, expected {want:?}",
            describe(query)
        );
        Ok(())
    }
}

/// A short description of a query's conditions.
fn describe(q: &SearchQuery) -> String {
    let mut parts = Vec::new();
    if !q.terms.is_empty() {
        let terms: Vec<String> = q.terms.iter().map(short).collect();
        parts.push(format!("terms [{}]", terms.join(", ")));
    }
    if let Some(t) = &q.text {
        parts.push(format!("text {t:?}"));
    }
    if q.filter != TapeFilter::default() {
        parts.push(format!("filter {:?}", q.filter));
    }
    if parts.is_empty() {
        "no conditions".to_string()
    } else {
        parts.join(", ")
    }
}

/// A query on this case's session: the term of `method` (if any) and `text`.
fn session_query<S: TapeStore>(
    cx: &Ctx<S>,
    method: Option<&str>,
    text: Option<&str>,
) -> SearchQuery {
    terms_query(cx, method.map(method_term).into_iter().collect(), text)
}

/// A query on this case's session: `terms` and `text`.
pub(crate) fn terms_query<S: TapeStore>(
    cx: &Ctx<S>,
    terms: Vec<String>,
    text: Option<&str>,
) -> SearchQuery {
    SearchQuery {
        filter: TapeFilter {
            session_id: Some(cx.session()),
            ..Default::default()
        },
        terms,
        text: text.map(str::to_string),
    }
}

/// A frame travelling `direction`.
fn dir(mut f: Frame, direction: Direction) -> Frame {
    f.direction = direction;
    f
}

/// The term of a method (`method:<m>`, as the host derives it from requests
/// and notifications in either direction, by JSON value, and from each
/// message of a batch) matches exactly; responses, nested members,
/// non-strings and invalid JSON carry no such term. Also the `tool:<name>`
/// term of `tools/call`.
pub(crate) async fn method<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let c2s = Direction::ClientToServer;
    let s2c = Direction::ServerToClient;
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    t.add(&cx, "request", &json_frames(0..2), done).await?;
    t.add(
        &cx,
        "notification",
        &[
            frame(0, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            dir(frame(1, r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#), s2c),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "response",
        &[
            dir(frame(0, r#"{"jsonrpc":"2.0","id":1,"result":{"method":"tools/call"}}"#), s2c),
            dir(frame(1, r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"tools/call","data":{"method":"tools/call"}}}"#), s2c),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "non-string",
        &[
            frame(0, r#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            frame(1, r#"{"jsonrpc":"2.0","id":2,"method":null}"#),
            frame(2, r#"{"jsonrpc":"2.0","id":3,"method":["tools/call"]}"#),
            frame(
                3,
                r#"{"jsonrpc":"2.0","id":4,"method":{"name":"tools/call"}}"#,
            ),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "batch",
        &[frame(
            0,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"}]"#,
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "not-json",
        &[
            raw_frame(0, r#"{"jsonrpc":"2.0","method":"tools/call""#),
            raw_frame(1, b"method tools/call \xff".to_vec()),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "server-request",
        &[dir(
            frame(
                0,
                r#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#,
            ),
            s2c,
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "spaced",
        &[dir(
            frame(0, "{ \"params\" : {} ,\n \"method\" : \"tools/call\" , \"id\" : 9, \"jsonrpc\":\"2.0\" }"),
            c2s,
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "escaped",
        &[frame(
            0,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call"}"#,
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "near-miss",
        &[
            frame(0, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call-extra"}"#),
            frame(1, r#"{"jsonrpc":"2.0","id":2,"method":"Tools/Call"}"#),
            frame(2, r#"{"jsonrpc":"2.0","id":3,"method":"tools/call "}"#),
        ],
        done,
    )
    .await?;
    t.add(&cx, "recording", &json_frames(0..1), None).await?;

    let q = |m: &str| session_query(&cx, Some(m), None);
    t.expect(
        &cx,
        &q("tools/call"),
        &["request", "batch", "spaced", "escaped", "recording"],
        1000,
    )
    .await?;
    let tool = terms_query(&cx, vec![tool_term("echo")], None);
    t.expect(&cx, &tool, &["request", "recording"], 1000)
        .await?;
    t.expect(&cx, &q("notifications/progress"), &["notification"], 1000)
        .await?;
    t.expect(
        &cx,
        &q("notifications/initialized"),
        &["notification"],
        1000,
    )
    .await?;
    t.expect(&cx, &q("sampling/createMessage"), &["server-request"], 1000)
        .await?;
    t.expect(&cx, &q("Tools/Call"), &["near-miss"], 1000)
        .await?;
    t.expect(&cx, &q("tools/"), &[], 1000).await?;
    t.expect(&cx, &q("result"), &[], 1000).await?;
    t.expect(&cx, &q(""), &[], 1000).await
}

/// The method's term and the tape filter must both hold.
pub(crate) async fn method_with_filter<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    t.add(&cx, "done", &json_frames(0..2), Some(EndReason::Completed))
        .await?;
    t.add(&cx, "live", &json_frames(0..2), None).await?;
    t.add(&cx, "crashed", &json_frames(0..2), Some(EndReason::Crashed))
        .await?;
    t.add(
        &cx,
        "other",
        &[frame(0, r#"{"jsonrpc":"2.0","method":"ping","id":1}"#)],
        Some(EndReason::Completed),
    )
    .await?;
    let mut q = session_query(&cx, Some("tools/call"), None);
    t.expect(&cx, &q, &["done", "live", "crashed"], 1000)
        .await?;
    q.filter.state = Some(TapeState::Finished);
    t.expect(&cx, &q, &["done"], 1000).await?;
    q.filter.state = Some(TapeState::Recording);
    t.expect(&cx, &q, &["live"], 1000).await?;
    q.filter.session_id = Some(format!("{}-other", cx.session()));
    t.expect(&cx, &q, &[], 1000).await?;
    // The method alone, over the whole store, filtered by the run tag.
    let q = SearchQuery {
        filter: TapeFilter {
            tags: vec![(super::fixtures::RUN_TAG.to_string(), cx.run_id.clone())],
            ..Default::default()
        },
        terms: vec![method_term("ping")],
        text: None,
    };
    t.expect(&cx, &q, &["other"], 1000).await
}

/// A search without conditions on frames returns what `list` returns.
pub(crate) async fn filter_only<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    t.add(&cx, "one", &json_frames(0..2), Some(EndReason::Completed))
        .await?;
    t.add(&cx, "two", &[raw_frame(0, "plain")], None).await?;
    t.add(&cx, "three", &[], Some(EndReason::Crashed)).await?;
    let q = session_query(&cx, None, None);
    let searched = cx.list_all(Listing::Search(&q), 2).await?;
    let listed = cx.list_all(Listing::List(&q.filter), 2).await?;
    ensure!(
        searched == listed,
        "search without frame conditions returned {:?}, list returned {:?}",
        searched
            .iter()
            .map(|i| t.label(&i.header.id))
            .collect::<Vec<_>>(),
        listed
            .iter()
            .map(|i| t.label(&i.header.id))
            .collect::<Vec<_>>()
    );
    ensure!(
        searched.len() == 3,
        "search by session found {} tapes, expected 3",
        searched.len()
    );
    Ok(())
}

/// Paging through search results with limits 1, 2, 4 and 1000.
pub(crate) async fn paging<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    const MATCH: [&str; 9] = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"];
    for (i, label) in MATCH.iter().enumerate() {
        t.add(&cx, label, &json_frames(0..2), Some(EndReason::Completed))
            .await?;
        if i.is_multiple_of(3) {
            t.add(
                &cx,
                "miss",
                &[frame(0, r#"{"jsonrpc":"2.0","method":"ping","id":1}"#)],
                Some(EndReason::Completed),
            )
            .await?;
        }
    }
    let q = session_query(&cx, Some("tools/call"), None);
    for limit in [1, 2, 4, 1000] {
        t.expect(&cx, &q, &MATCH, limit).await?;
    }
    Ok(())
}

/// Cursors and limits are checked as in `list`.
pub(crate) async fn bad_cursor_and_limit<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let q = session_query(&cx, Some("tools/call"), None);
    check_limits(&cx, Listing::Search(&q)).await?;
    check_bad_cursors(&cx, Listing::Search(&q)).await
}

/// `text`: a case-sensitive substring of one frame's raw payload, Unicode
/// included.
pub(crate) async fn text<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    t.add(
        &cx,
        "hello",
        &[
            frame(
                0,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"q":"Hello Wörld 🌍"}}"#,
            ),
            frame(
                1,
                r#"{"jsonrpc":"2.0","id":1,"result":{"text":"שלום e\u0301"}}"#,
            ),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "response",
        &[frame(
            0,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":"needle in a response"}}"#,
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "split",
        &[frame(0, "ends with needle-fi"), frame(1, "rst and more")],
        None,
    )
    .await?;
    t.add(&cx, "rtl", &[frame(0, "{\"t\":\"مرحبا 👩‍👩‍👧\"}")], done)
        .await?;
    let q = |s: &str| session_query(&cx, None, Some(s));
    t.expect(&cx, &q("Wörld 🌍"), &["hello"], 1000).await?;
    t.expect(&cx, &q("wörld"), &[], 1000).await?;
    t.expect(&cx, &q("Hello"), &["hello"], 1000).await?;
    t.expect(&cx, &q("needle"), &["response", "split"], 1)
        .await?;
    t.expect(&cx, &q("needle-fi"), &["split"], 1000).await?;
    t.expect(&cx, &q("needle-first"), &[], 1000).await?;
    t.expect(&cx, &q("مرحبا 👩‍👩‍👧"), &["rtl"], 1000).await?;
    t.expect(&cx, &q("👩"), &["rtl"], 1000).await?;
    t.expect(&cx, &q("tools/call"), &["hello"], 1000).await?;
    t.expect(&cx, &q("\"jsonrpc\":\"2.0\""), &["hello", "response"], 1000)
        .await
}

/// `text` matches raw payload bytes: inside binary payloads, and JSON
/// escapes as written (not decoded).
pub(crate) async fn text_raw_bytes<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    let mut bin = vec![0xff, 0x00, 0xfe];
    bin.extend_from_slice(b"needle-bin");
    bin.push(0x80);
    t.add(&cx, "binary", &[raw_frame(0, bin)], done).await?;
    t.add(
        &cx,
        "escaped",
        &[frame(0, r#"{"a":"caf\u00e9","b":"line\nbreak"}"#)],
        done,
    )
    .await?;
    t.add(
        &cx,
        "newline",
        &[raw_frame(0, "first line\nsecond line")],
        done,
    )
    .await?;
    let q = |s: &str| session_query(&cx, None, Some(s));
    t.expect(&cx, &q("needle-bin"), &["binary"], 1000).await?;
    t.expect(&cx, &q("café"), &[], 1000).await?;
    t.expect(&cx, &q("caf\\u00e9"), &["escaped"], 1000).await?;
    t.expect(&cx, &q("line\\nbreak"), &["escaped"], 1000)
        .await?;
    t.expect(&cx, &q("line\nsecond"), &["newline"], 1000).await
}

/// `text` and a method's term together: each must hold (in any frame).
pub(crate) async fn text_and_method<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    let mut both = json_frames(0..2);
    both.push(frame(
        2,
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"marker-xyzzy"}}"#,
    ));
    t.add(&cx, "both", &both, done).await?;
    t.add(&cx, "method-only", &json_frames(0..2), done).await?;
    t.add(
        &cx,
        "text-only",
        &[frame(
            0,
            r#"{"jsonrpc":"2.0","id":1,"result":{"t":"marker-xyzzy"}}"#,
        )],
        done,
    )
    .await?;
    let q = session_query(&cx, Some("tools/call"), Some("marker-xyzzy"));
    t.expect(&cx, &q, &["both"], 1000).await?;
    let q = session_query(&cx, Some("notifications/message"), Some("marker-xyzzy"));
    t.expect(&cx, &q, &["both"], 1000).await?;
    let q = session_query(&cx, Some("ping"), Some("marker-xyzzy"));
    t.expect(&cx, &q, &[], 1000).await
}
