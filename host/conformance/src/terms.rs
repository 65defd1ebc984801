//! Index terms are opaque: whatever strings the host puts on a frame are
//! stored and returned verbatim, in order, and `search` (capability
//! `search`) matches them by exact equality only, over the whole tape,
//! without ever looking at payloads.

use super::check::{self, ensure};
use super::fixtures::{digest, frame, json_frames, opaque_bytes, raw_frame, renumber, with_terms};
use super::ops::{Listing, append};
use super::search::{Tapes, terms_query};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::terms::{MAX_TERM_LEN, MAX_TERMS, method_term};
use tapedeck_types::{EndReason, Frame, TapeState};

/// A term of exactly [`MAX_TERM_LEN`] bytes ending in `last`.
fn long_term(last: char) -> String {
    let mut t = "long:".to_string();
    while t.len() < MAX_TERM_LEN - last.len_utf8() {
        t.push(char::from(b'a' + (t.len() % 26) as u8));
    }
    t.push(last);
    t
}

/// The first `len` bytes of the ASCII string `s`.
fn head(s: &str, len: usize) -> String {
    s[..len].to_string()
}

/// Terms of every kind a provider might mangle: hashes, Unicode, spaces,
/// colons, `%` and `_` (SQL wildcards), quotes and backslashes, control
/// characters, case variants, the longest allowed term and its prefixes,
/// unsorted, and a frame with the most terms allowed.
fn opaque_frames() -> Vec<Frame> {
    let hex = digest(11);
    let long = long_term('z');
    let most: Vec<String> = (0..MAX_TERMS as u64)
        .rev()
        .map(|i| format!("k{i:02}:{}", head(&digest(i), 16)))
        .collect();
    let most: Vec<&str> = most.iter().map(String::as_str).collect();
    vec![
        with_terms(
            frame(
                0,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
            ),
            &[&hex, "tool:überprüfen ☃", "名前:値", "מפתח:ערך"],
        ),
        with_terms(
            raw_frame(1, opaque_bytes(1, 200)),
            &["with space", " leading", "trailing ", "a:b:c", "::", ":"],
        ),
        with_terms(
            frame(2, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            &[
                "100%",
                "%41",
                "a_b",
                "_",
                "%",
                "\"quoted\"",
                "it's",
                "back\\slash",
                "tab\there",
                "new\nline",
                "*",
                ".*",
                "[a-z]",
            ],
        ),
        with_terms(
            raw_frame(3, ""),
            &["CaseTerm", "caseterm", "CASETERM", "e\u{301}", "\u{e9}"],
        ),
        with_terms(
            frame(
                4,
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            ),
            &[
                "z-last",
                "a-first",
                &long,
                "prefix-longer",
                "prefix",
                "x",
                "m-middle",
            ],
        ),
        with_terms(raw_frame(5, opaque_bytes(5, 64)), &most),
        raw_frame(6, "no terms"),
        // Terms the host derived, left as they are.
        frame(
            7,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a b"}}"#,
        ),
    ]
}

/// Terms come back verbatim and in order from `read_frames`, however they
/// look, whether the tape was written by `append`, `save` or
/// `append_many`; a frame's terms need not be derived from its payload.
pub(crate) async fn verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    cx.store_three_ways("terms", &opaque_frames()).await?;
    Ok(())
}

/// `search` matches a term by exact equality of its bytes: not a prefix,
/// not a substring, not another case, not another Unicode normalisation,
/// not with a trailing space, and `%`, `_`, `*` and `.*` are not wildcards.
pub(crate) async fn exact_match<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let hex = digest(21);
    let long = long_term('z');
    let exact: Vec<String> = [
        hex.as_str(),
        "tool:überprüfen ☃",
        "e\u{301}",
        "with space",
        "trailing ",
        "a:b:c",
        "100%",
        "%41",
        "a_b",
        "\"quoted\" it's",
        "CaseTerm",
        &long,
        "prefix",
        "[a-z]*",
    ]
    .map(str::to_string)
    .to_vec();
    let near: Vec<String> = [
        hex.to_uppercase().as_str(),
        "tool:überprüfen",
        "\u{e9}",
        "with  space",
        "trailing",
        "a:b",
        "1000",
        "x41",
        "A",
        "aXb",
        "\"quoted\" its",
        "caseterm",
        "CASETERM",
        &long_term('y'),
        &head(&long, MAX_TERM_LEN - 1),
        "prefix-longer",
        "pre",
        "ab",
    ]
    .map(str::to_string)
    .to_vec();
    // Spread over frames, a few terms each.
    let spread = |terms: &[String]| -> Vec<Frame> {
        terms
            .chunks(3)
            .enumerate()
            .map(|(i, chunk)| {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                with_terms(raw_frame(i as u64, opaque_bytes(i as u64, 32)), &chunk)
            })
            .collect()
    };
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    t.add(&cx, "exact", &spread(&exact), done).await?;
    t.add(&cx, "near", &spread(&near), done).await?;
    t.add(&cx, "none", &json_frames(0..2), done).await?;

    let q = |term: &str| terms_query(&cx, vec![term.to_string()], None);
    for term in &exact {
        t.expect(&cx, &q(term), &["exact"], 1000).await?;
    }
    for term in &near {
        t.expect(&cx, &q(term), &["near"], 1000).await?;
    }
    for term in [
        "space",
        "with",
        "%",
        "_",
        "*",
        ".*",
        "a%",
        "a_",
        "prefix%",
        "prefix*",
        "überprüfen",
        "tool:",
        "caseTerm",
        "a:b:c ",
        " a:b:c",
        "\u{e9}\u{301}",
        &head(&hex, 32),
        &head(&long, MAX_TERM_LEN - 2),
        "method:tools/call-nothing",
    ] {
        t.expect(&cx, &q(term), &[], 1000).await?;
    }
    Ok(())
}

/// Several terms must all be on the tape, each on some frame (not
/// necessarily the same one); the order and repetition of the query's terms
/// do not matter; an empty list is no condition. Recording tapes count.
pub(crate) async fn all_over_tape<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let hashed = digest(31);
    let (a, b, c, d) = ("all:α", "all:β b", hashed.as_str(), "all:d");
    let filler = |seq| frame(seq, r#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
    let spread = vec![
        with_terms(filler(0), &[a]),
        filler(1),
        with_terms(filler(2), &["other", b]),
        filler(3),
        with_terms(filler(4), &[c]),
    ];
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    t.add(&cx, "spread", &spread, done).await?;
    t.add(
        &cx,
        "same-frame",
        &[with_terms(filler(0), &[c, b, a])],
        done,
    )
    .await?;
    t.add(
        &cx,
        "missing-c",
        &[with_terms(filler(0), &[a]), with_terms(filler(1), &[b])],
        done,
    )
    .await?;
    t.add(&cx, "only-c", &[with_terms(filler(0), &[c])], done)
        .await?;
    t.add(&cx, "none", &json_frames(0..2), done).await?;
    // Still recording, its terms arriving in separate appends.
    let live = cx.id("live");
    let mut w = cx.create(cx.header(&live)).await?;
    for f in &spread {
        append(&mut w, std::slice::from_ref(f), f.seq + 1).await?;
    }
    drop(w);
    t.named("live", live);

    let q = |terms: &[&str]| terms_query(&cx, terms.iter().map(|s| s.to_string()).collect(), None);
    let all = [
        "spread",
        "same-frame",
        "missing-c",
        "only-c",
        "none",
        "live",
    ];
    t.expect(&cx, &q(&[]), &all, 1000).await?;
    t.expect(
        &cx,
        &q(&[a]),
        &["spread", "same-frame", "missing-c", "live"],
        1000,
    )
    .await?;
    t.expect(
        &cx,
        &q(&[a, b]),
        &["spread", "same-frame", "missing-c", "live"],
        1000,
    )
    .await?;
    t.expect(&cx, &q(&[a, b, c]), &["spread", "same-frame", "live"], 1000)
        .await?;
    t.expect(&cx, &q(&[c, b, a]), &["spread", "same-frame", "live"], 1)
        .await?;
    t.expect(
        &cx,
        &q(&[a, a]),
        &["spread", "same-frame", "missing-c", "live"],
        1000,
    )
    .await?;
    t.expect(
        &cx,
        &q(&[c]),
        &["spread", "same-frame", "only-c", "live"],
        2,
    )
    .await?;
    t.expect(&cx, &q(&[a, d]), &[], 1000).await?;
    t.expect(&cx, &q(&[d]), &[], 1000).await?;
    let mut finished = q(&[a, b, c]);
    finished.filter.state = Some(TapeState::Finished);
    t.expect(&cx, &finished, &["spread", "same-frame"], 1000)
        .await?;
    Ok(())
}

/// The provider matches the terms it was given and never parses payloads:
/// a payload with `"method":"x"` but no term does not match `method:x`; a
/// frame whose terms say otherwise matches what its terms say; an opaque
/// payload with the term matches.
pub(crate) async fn payload_not_parsed<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"name":"y"}}"#;
    let mut t = Tapes::new();
    let done = Some(EndReason::Completed);
    t.add(
        &cx,
        "payload-only",
        &[
            with_terms(frame(0, request), &[]),
            with_terms(
                frame(
                    1,
                    r#"[{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","method":"z"}]"#,
                ),
                &[],
            ),
        ],
        done,
    )
    .await?;
    t.add(
        &cx,
        "term-only",
        &[with_terms(
            raw_frame(0, opaque_bytes(3, 48)),
            &[&method_term("x")],
        )],
        done,
    )
    .await?;
    t.add(
        &cx,
        "lying",
        &[with_terms(frame(0, request), &[&method_term("w")])],
        done,
    )
    .await?;
    let q = |term: String| terms_query(&cx, vec![term], None);
    t.expect(&cx, &q(method_term("x")), &["term-only"], 1000)
        .await?;
    t.expect(&cx, &q(method_term("w")), &["lying"], 1000)
        .await?;
    t.expect(&cx, &q(method_term("z")), &[], 1000).await?;
    t.expect(&cx, &q("tool:y".to_string()), &[], 1000).await?;
    if cx.caps.text_search {
        // Text search still looks at the raw payload, terms or not.
        let text = terms_query(&cx, Vec::new(), Some(r#""method":"x""#));
        t.expect(&cx, &text, &["payload-only", "lying"], 1000)
            .await?;
        let both = terms_query(&cx, vec![method_term("x")], Some(r#""method":"x""#));
        t.expect(&cx, &both, &[], 1000).await?;
    }
    Ok(())
}

/// Terms of frames stored by `save` and by `append_many` are searched like
/// those stored by `append`.
pub(crate) async fn every_write_path<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let term = format!("path:{}", cx.token());
    let frames = renumber(
        &[
            frame(
                0,
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            ),
            with_terms(raw_frame(0, opaque_bytes(9, 40)), &["path:other", &term]),
            raw_frame(0, "tail"),
        ],
        0,
    );
    let ids = cx.store_three_ways("path", &frames).await?;
    let q = terms_query(&cx, vec![term.clone()], None);
    let found = cx.ours(Listing::Search(&q), 1000).await?;
    for (id, how) in &ids {
        ensure!(
            found.contains(id),
            "search for term {term:?} did not find tape `{id}` ({how}), which has it on frame 1; \
             it found {}",
            check::show_ids(&found.iter().collect::<Vec<_>>())
        );
    }
    ensure!(
        found.len() == ids.len(),
        "search for term {term:?} found {} of our tapes, expected the {} that have it",
        found.len(),
        ids.len()
    );
    Ok(())
}
