//! `list` and `search`: order, paging, filters, frame conditions.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod common;

use common::*;
use std::collections::HashSet;
use tapedeck_types::terms::method_term;
use tapedeck_types::{EndReason, ErrorKind, SearchQuery, TapeFilter, TapeState};

fn ids(page: &tapedeck_types::TapePage) -> Vec<String> {
    page.tapes.iter().map(|t| t.header.id.clone()).collect()
}

fn list_all(s: &fs_store::FsStore, filter: &TapeFilter, limit: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list(filter, cursor.as_deref(), limit).unwrap();
        assert!(page.tapes.len() <= limit as usize);
        out.extend(ids(&page));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn newest_first_then_id_descending_across_pages() {
    let (_dir, s) = store();
    let mut expected = Vec::new();
    for i in 0..25u64 {
        let id = format!("t{i:02}");
        // Several tapes share a created_at.
        let at = 1000 + i / 3;
        s.save(header(&id, at), &[], &summary(&[], 1), EndReason::Completed)
            .unwrap();
        expected.push((at, id));
    }
    expected.sort();
    expected.reverse();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    for limit in [1, 7, 25, 1000] {
        assert_eq!(
            list_all(&s, &TapeFilter::default(), limit),
            expected,
            "limit {limit}"
        );
    }
    let page = s.list(&TapeFilter::default(), None, 25).unwrap();
    assert_eq!(page.next_cursor, None, "no cursor on the last page");
}

#[test]
fn paging_is_stable_under_concurrent_changes() {
    let (dir, s) = store();
    for i in 0..20u64 {
        s.save(
            header(&format!("t{i:02}"), 100 + i),
            &[],
            &summary(&[], 1),
            EndReason::Completed,
        )
        .unwrap();
    }
    let first = s.list(&TapeFilter::default(), None, 5).unwrap();
    assert_eq!(ids(&first), ["t19", "t18", "t17", "t16", "t15"]);
    // Meanwhile, another instance: adds a tape that would sort into a later
    // page (old created_at), adds a newest one, deletes a tape of a later page
    // and one already returned.
    let other = open(dir.path());
    other
        .save(
            header("old-import", 105),
            &[],
            &summary(&[], 1),
            EndReason::Completed,
        )
        .unwrap();
    other
        .save(
            header("newest", 999),
            &[],
            &summary(&[], 1),
            EndReason::Completed,
        )
        .unwrap();
    other.delete("t10").unwrap();
    other.delete("t18").unwrap();
    let mut seen: Vec<String> = ids(&first);
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let page = s.list(&TapeFilter::default(), Some(&c), 5).unwrap();
        seen.extend(ids(&page));
        cursor = page.next_cursor;
    }
    let mut expected: Vec<String> = (0..20).rev().map(|i| format!("t{i:02}")).collect();
    expected.retain(|id| id != "t10");
    assert_eq!(seen, expected);
    // A fresh listing sees the new ones.
    let fresh = list_all(&s, &TapeFilter::default(), 100);
    assert_eq!(fresh[0], "newest");
    assert!(fresh.contains(&"old-import".to_string()));
}

#[test]
fn bad_cursors_and_limits_are_invalid_input() {
    let (_dir, s) = store();
    let f = TapeFilter::default();
    for c in ["", "nonsense", "c1.1.2", "c1.x.2.id", "c1.1.2.../etc"] {
        assert_kind(s.list(&f, Some(c), 10), ErrorKind::InvalidInput, "cursor");
        assert_kind(
            s.search(&SearchQuery::default(), Some(c), 10),
            ErrorKind::InvalidInput,
            "cursor",
        );
    }
    assert_kind(s.list(&f, None, 0), ErrorKind::InvalidInput, "limit");
    assert_kind(s.list(&f, None, 1001), ErrorKind::InvalidInput, "limit");
    assert_kind(
        s.search(&SearchQuery::default(), None, 1001),
        ErrorKind::InvalidInput,
        "limit",
    );
    assert!(s.list(&f, None, 1000).unwrap().tapes.is_empty());
}

fn filter_fixture() -> (
    tempfile::TempDir,
    fs_store::FsStore,
    Vec<fs_store::FsWriter>,
) {
    let (dir, s) = store();
    let fs = frames(0, 2);
    let mk = |id: &str, session: &str, name: &str, tags: &[(&str, &str)], at: u64| {
        let mut h = header(id, at);
        h.session_id = session.into();
        h.name = name.into();
        h.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        h
    };
    record(
        &s,
        mk(
            "a",
            "s1",
            "Weather Demo",
            &[("env", "ci"), ("team", "x")],
            10,
        ),
        &fs,
        EndReason::Completed,
    );
    record(
        &s,
        mk("b", "s2", "weather prod", &[("env", "prod")], 20),
        &fs,
        EndReason::Aborted,
    );
    record(
        &s,
        mk("c", "s1", "Other", &[("env", "ci")], 30),
        &fs,
        EndReason::Crashed,
    );
    let w = start(
        &s,
        mk(
            "d",
            "s3",
            "Live WEATHER",
            &[("team", "x"), ("env", "ci")],
            40,
        ),
        &fs,
    );
    (dir, s, vec![w])
}

#[test]
fn every_filter_field() {
    let (_dir, s, _writers) = filter_fixture();
    let q = |f: TapeFilter| list_all(&s, &f, 2);
    assert_eq!(q(TapeFilter::default()), ["d", "c", "b", "a"]);
    assert_eq!(
        q(TapeFilter {
            session_id: Some("s1".into()),
            ..Default::default()
        }),
        ["c", "a"]
    );
    assert_eq!(
        q(TapeFilter {
            session_id: Some("S1".into()),
            ..Default::default()
        }),
        Vec::<String>::new()
    );
    assert_eq!(
        q(TapeFilter {
            name_contains: Some("WEATHER".into()),
            ..Default::default()
        }),
        ["d", "b", "a"]
    );
    assert_eq!(
        q(TapeFilter {
            tags: vec![("env".into(), "ci".into())],
            ..Default::default()
        }),
        ["d", "c", "a"]
    );
    assert_eq!(
        q(TapeFilter {
            tags: vec![("env".into(), "ci".into()), ("team".into(), "x".into())],
            ..Default::default()
        }),
        ["d", "a"]
    );
    assert_eq!(
        q(TapeFilter {
            created_since_us: Some(20),
            ..Default::default()
        }),
        ["d", "c", "b"]
    );
    assert_eq!(
        q(TapeFilter {
            created_until_us: Some(30),
            ..Default::default()
        }),
        ["b", "a"]
    );
    assert_eq!(
        q(TapeFilter {
            created_since_us: Some(20),
            created_until_us: Some(40),
            ..Default::default()
        }),
        ["c", "b"]
    );
    for (state, want) in [
        (TapeState::Recording, "d"),
        (TapeState::Finished, "a"),
        (TapeState::Aborted, "b"),
        (TapeState::Crashed, "c"),
    ] {
        assert_eq!(
            q(TapeFilter {
                state: Some(state),
                ..Default::default()
            }),
            [want]
        );
    }
    assert_eq!(
        q(TapeFilter {
            session_id: Some("s1".into()),
            name_contains: Some("weather".into()),
            state: Some(TapeState::Finished),
            ..Default::default()
        }),
        ["a"]
    );
}

#[test]
fn search_by_terms_and_text() {
    let (dir, s) = store();
    let tape = |id: &str, at: u64, frames: Vec<tapedeck_types::Frame>, finish: bool| {
        let mut w = s.create(header(id, at)).unwrap();
        w.append(&frames).unwrap();
        if finish {
            w.finish(&summary(&frames, 1), EndReason::Completed)
                .unwrap();
        }
        w
    };
    let _a = tape(
        "a",
        1,
        vec![
            request(0, "initialize"),
            response(1, "Hello World"),
            request(2, "tools/call"),
        ],
        true,
    );
    let _b = tape(
        "b",
        2,
        vec![request(0, "initialize"), response(1, "hello world")],
        true,
    );
    let _c = tape(
        "c",
        3,
        vec![
            frame(0, br#"["tools/call"]"#),
            frame(1, br#"{"method":7}"#),
            frame(2, &[0xff, b'H', b'e']),
        ],
        true,
    );
    // A recording tape is searched too.
    let _d = tape(
        "d",
        4,
        vec![request(0, "tools/call"), response(1, "Hello again")],
        false,
    );
    let search = |method: Option<&str>, text: Option<&str>| {
        let q = SearchQuery {
            terms: method.map(method_term).into_iter().collect(),
            text: text.map(Into::into),
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.search(&q, cursor.as_deref(), 1).unwrap();
            out.extend(ids(&page));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    };
    assert_eq!(search(Some("initialize"), None), ["b", "a"]);
    assert_eq!(
        search(Some("tools/call"), None),
        ["d", "a"],
        "arrays and non-string methods do not count"
    );
    assert_eq!(search(Some("nope"), None), Vec::<String>::new());
    assert_eq!(search(None, Some("Hello")), ["d", "a"], "case-sensitive");
    assert_eq!(search(None, Some("\"jsonrpc\"")), ["d", "b", "a"]);
    assert_eq!(search(Some("tools/call"), Some("World")), ["a"]);
    assert_eq!(
        search(Some("initialize"), Some("again")),
        Vec::<String>::new()
    );
    assert_eq!(search(None, None), ["d", "c", "b", "a"]);
    // Header filters combine with frame conditions.
    let q = SearchQuery {
        filter: TapeFilter {
            state: Some(TapeState::Recording),
            ..Default::default()
        },
        terms: vec![method_term("tools/call")],
        text: None,
    };
    assert_eq!(ids(&s.search(&q, None, 10).unwrap()), ["d"]);
    // Another instance answers the same.
    let s2 = open(dir.path());
    let q = method_query("tools/call");
    let got: HashSet<String> = ids(&s2.search(&q, None, 10).unwrap()).into_iter().collect();
    assert_eq!(got, HashSet::from(["a".to_string(), "d".to_string()]));
}

#[test]
fn large_names_and_tags_round_trip_through_the_catalog() {
    let (dir, s) = store();
    let mut h = header("big", 1);
    h.name = "n".repeat(20_000);
    h.tags = (0..200)
        .map(|i| (format!("key{i}"), "v".repeat(50)))
        .collect();
    let methods: Vec<_> = (0..300)
        .map(|i| request(i, &format!("method/number/{i}")))
        .collect();
    record(&s, h.clone(), &methods, EndReason::Completed);
    let s2 = open(dir.path());
    assert_eq!(s2.get("big").unwrap().header, h);
    let q = method_query("method/number/299");
    assert_eq!(ids(&s2.search(&q, None, 10).unwrap()), ["big"]);
    let f = TapeFilter {
        tags: vec![("key7".into(), "v".repeat(50))],
        ..Default::default()
    };
    assert_eq!(ids(&s2.list(&f, None, 10).unwrap()), ["big"]);
}
