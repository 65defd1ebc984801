use crate::json::JsonPath;
use crate::*;
use tapedeck_types::{Direction, Frame};

const C: Direction = Direction::ClientToServer;
const S: Direction = Direction::ServerToClient;

fn tape(messages: &[(Direction, &str)]) -> Vec<Frame> {
    messages
        .iter()
        .enumerate()
        .map(|(i, (d, m))| Frame::new(i as u64, i as u64 * 1000, *d, m.as_bytes().to_vec(), false))
        .collect()
}

fn texts(out: &[Outgoing]) -> Vec<String> {
    out.iter()
        .map(|o| String::from_utf8(o.bytes.clone()).unwrap())
        .collect()
}

fn call(id: &str, city: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"weather","arguments":{{"city":"{city}"}},"_meta":{{"progressToken":{id}}}}}}}"#
    )
}

fn result(id: &str, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{text}"}}]}}}}"#
    )
}

#[test]
fn a_request_gets_its_recorded_answer_with_the_clients_id_and_the_rest_verbatim() {
    let frames = tape(&[(C, &call("3", "Paris")), (S, &result("3", "sunny"))]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    // Another id, members in another order, another progress token.
    let asked = r#"{"method":"tools/call","params":{"arguments":{"city":"Paris"},"name":"weather","_meta":{"progressToken":99}},"jsonrpc":"2.0","id":"req-9"}"#;
    assert_eq!(
        texts(&r.handle(asked.as_bytes())),
        [result("\"req-9\"", "sunny")]
    );
    let report = r.report();
    assert_eq!(report.answered, 1);
    assert!(report.clean(true));
}

#[test]
fn other_arguments_miss_with_an_error_the_nearest_candidate_and_a_diff() {
    let frames = tape(&[
        (C, &call("1", "Paris")),
        (S, &result("1", "sunny")),
        (C, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#),
        (S, r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#),
    ]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    let out = texts(&r.handle(call("7", "Oslo").as_bytes()));
    assert_eq!(out.len(), 1);
    let error: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(error["id"], 7);
    assert_eq!(error["error"]["code"], -32603);
    let report = r.report();
    assert_eq!(report.misses.len(), 1);
    let miss = report.misses[0].to_string();
    assert!(
        miss.contains("no match for `tools/call` request (id 7)"),
        "{miss}"
    );
    assert!(miss.contains("nearest: frame 0"), "{miss}");
    assert!(
        miss.contains(r#"/params/arguments/city: recorded "Paris", got "Oslo""#),
        "{miss}"
    );
    assert!(!report.clean(false));
    assert_eq!(report.unused.len(), 2);
}

#[test]
fn ignored_paths_and_strict_and_sequential_matching() {
    let frames = tape(&[
        (
            C,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"now","arguments":{"tz":"UTC","at":1}}}"#,
        ),
        (S, &result("1", "noon")),
    ]);
    let asked = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"now","arguments":{"tz":"UTC","at":2}}}"#;
    let mut plain = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    assert!(texts(&plain.handle(asked))[0].contains("error"));
    let ignoring = ReplayOptions::default().ignore(JsonPath::parse("params.arguments.at").unwrap());
    let mut r = Replayer::new(&frames, ignoring).unwrap();
    assert_eq!(texts(&r.handle(asked)), [result("5", "noon")]);
    let mut seq = Replayer::new(
        &frames,
        ReplayOptions::default().matching(Matching::Sequential),
    )
    .unwrap();
    assert_eq!(
        texts(&seq.handle(br#"{"jsonrpc":"2.0","id":8,"method":"anything"}"#)),
        [result("8", "noon")]
    );
    let strict = ReplayOptions::default().matching(Matching::Strict);
    let mut r = Replayer::new(&frames, strict.clone()).unwrap();
    let same = br#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"now","arguments":{"tz":"UTC","at":1}}}"#;
    assert_eq!(texts(&r.handle(same)), [result("77", "noon")]);
    let mut r = Replayer::new(&frames, strict).unwrap();
    let reordered = br#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"arguments":{"tz":"UTC","at":1},"name":"now"}}"#;
    assert!(texts(&r.handle(reordered))[0].contains("error"));
}

#[test]
fn repeated_requests_follow_the_repeat_mode() {
    let frames = tape(&[
        (C, &call("1", "Paris")),
        (S, &result("1", "first")),
        (C, &call("2", "Paris")),
        (S, &result("2", "second")),
    ]);
    let answers = |repeat: Repeat| {
        let mut r = Replayer::new(&frames, ReplayOptions::default().repeat(repeat)).unwrap();
        (0..4)
            .map(|i| {
                let out = texts(&r.handle(call(&format!("{}", 10 + i), "Paris").as_bytes()));
                let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
                v["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or("miss")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(answers(Repeat::Once), ["first", "second", "miss", "miss"]);
    assert_eq!(
        answers(Repeat::Cycle),
        ["first", "second", "first", "second"]
    );
    assert_eq!(
        answers(Repeat::Last),
        ["first", "second", "second", "second"]
    );
}

#[test]
fn in_order_refuses_a_request_that_skips_ahead() {
    let frames = tape(&[
        (C, &call("1", "Paris")),
        (S, &result("1", "p")),
        (C, &call("2", "Rome")),
        (S, &result("2", "r")),
    ]);
    let mut r = Replayer::new(&frames, ReplayOptions::default().repeat(Repeat::InOrder)).unwrap();
    assert!(texts(&r.handle(call("5", "Rome").as_bytes()))[0].contains("still unanswered"));
    assert_eq!(
        texts(&r.handle(call("6", "Paris").as_bytes())),
        [result("6", "p")]
    );
    assert_eq!(
        texts(&r.handle(call("7", "Rome").as_bytes())),
        [result("7", "r")]
    );
}

#[test]
fn server_traffic_comes_where_it_came_and_a_sampling_round_trip_completes_the_call() {
    let sampling =
        r#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[]}}"#;
    let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}"#;
    let frames = tape(&[
        (
            C,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"a","version":"1"}}}"#,
        ),
        (
            S,
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#,
        ),
        (
            C,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ),
        (C, &call("2", "Paris")),
        (S, progress),
        (S, sampling),
        (
            C,
            r#"{"jsonrpc":"2.0","id":0,"result":{"content":{"type":"text","text":"ok"}}}"#,
        ),
        (S, &result("2", "sunny")),
    ]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    // Another client name and version: clientInfo is ignored.
    let init = br#"{"jsonrpc":"2.0","id":100,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"b","version":"2"}}}"#;
    assert_eq!(
        texts(&r.handle(init)),
        [r#"{"jsonrpc":"2.0","id":100,"result":{"protocolVersion":"2025-11-25"}}"#]
    );
    assert!(
        r.handle(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .is_empty()
    );
    // The call releases the progress and the sampling request, not yet
    // the result: that waits for the client's answer.
    assert_eq!(
        texts(&r.handle(call("101", "Paris").as_bytes())),
        [progress, sampling]
    );
    let answer =
        br#"{"jsonrpc":"2.0","id":0,"result":{"content":{"type":"text","text":"other words"}}}"#;
    assert_eq!(texts(&r.handle(answer)), [result("101", "sunny")]);
    assert!(r.report().clean(true));
}

#[test]
fn concurrent_recorded_requests_do_not_wait_for_each_other() {
    let frames = tape(&[
        (C, &call("1", "Paris")),
        (C, &call("2", "Rome")),
        (S, &result("2", "r")),
        (S, &result("1", "p")),
    ]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    assert_eq!(
        texts(&r.handle(call("\"a\"", "Paris").as_bytes())),
        [result("\"a\"", "p")]
    );
    assert_eq!(
        texts(&r.handle(call("\"b\"", "Rome").as_bytes())),
        [result("\"b\"", "r")]
    );
}

#[test]
fn recorded_timing_is_scaled() {
    let frames = tape(&[(C, &call("1", "Paris")), (S, &result("1", "p"))]);
    let mut r = Replayer::new(
        &frames,
        ReplayOptions::default().timing(Timing::parse("x2").unwrap()),
    )
    .unwrap();
    let out = r.handle(call("1", "Paris").as_bytes());
    assert_eq!(out[0].delay, std::time::Duration::from_micros(500));
    assert_eq!(
        Timing::parse("instant").unwrap().delay(1_000_000),
        std::time::Duration::ZERO
    );
    assert!(Timing::parse("x0").is_err() && Timing::parse("fast").is_err());
}

#[test]
fn a_tape_without_requests_is_refused() {
    let frames = tape(&[(S, r#"{"jsonrpc":"2.0","method":"notifications/message"}"#)]);
    assert!(matches!(
        Replayer::new(&frames, ReplayOptions::default()),
        Err(ReplayError::Empty)
    ));
}

#[test]
fn the_id_splice_keeps_every_other_byte() {
    let raw = br#"{ "result" : {"id": 5, "s": "a\"}b"}, "id" :  12 , "jsonrpc":"2.0"}"#;
    assert_eq!(
        json::with_id(raw, "\"x\"").unwrap(),
        br#"{ "result" : {"id": 5, "s": "a\"}b"}, "id" :  "x" , "jsonrpc":"2.0"}"#.to_vec()
    );
    assert!(json::with_id(b"[1,2]", "1").is_none());
    assert!(JsonPath::parse("").is_err() && JsonPath::parse("a..b").is_err());
    assert_eq!(JsonPath::parse("/a~1b/c").unwrap().to_string(), "/a~1b/c");
}

#[tokio::test]
async fn serve_answers_line_by_line_and_reports_at_the_end() {
    let frames = tape(&[(C, &call("1", "Paris")), (S, &result("1", "p"))]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    let input = format!("{}\n\n{}\n", call("4", "Paris"), call("5", "Oslo"));
    let mut output = Vec::new();
    let mut seen = Vec::new();
    let report = serve(&mut r, input.as_bytes(), &mut output, OnMiss::Error, |m| {
        seen.push(m.to_string())
    })
    .await
    .unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&output).unwrap().lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], result("4", "p"));
    assert!(lines[1].contains("\"error\""));
    assert_eq!(seen.len(), 1);
    assert_eq!(report.answered, 1);
    assert_eq!(report.misses.len(), 1);
}

#[test]
fn a_line_that_is_not_json_is_matched_by_its_bytes() {
    let frames = tape(&[
        (C, "not json at all"),
        (S, "not json at all"),
        (C, &call("1", "Paris")),
        (S, &result("1", "p")),
    ]);
    let mut r = Replayer::new(&frames, ReplayOptions::default()).unwrap();
    assert_eq!(texts(&r.handle(b"not json at all")), ["not json at all"]);
    assert!(r.handle(b"other words").is_empty());
    assert_eq!(r.report().misses.len(), 1);
    assert!(r.report().misses[0].why.contains("not a JSON-RPC message"));
}

#[test]
fn two_tapes_compared_request_by_request_and_tool_by_tool() {
    let tools = |desc: &str, extra: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{{"name":"echo","description":"{desc}"}}{extra}]}}}}"#
        )
    };
    let a = tape(&[
        (C, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
        (S, &tools("Echoes.", r#",{"name":"old"}"#)),
        (C, &call("2", "Paris")),
        (S, &result("2", "sunny")),
        (C, &call("3", "Rome")),
        (S, &result("3", "warm")),
    ]);
    let b = tape(&[
        (C, r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#),
        (
            S,
            &tools("Repeats.", r#",{"name":"new"}"#).replace("\"id\":1", "\"id\":7"),
        ),
        (C, &call("8", "Paris")),
        (S, &result("8", "rain")),
        (C, &call("9", "Oslo")),
        (S, &result("9", "cold")),
        (
            S,
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
        ),
    ]);
    let d = compare::compare(&a, &b, &ReplayOptions::default());
    assert!(!d.is_empty());
    assert_eq!(d.same, 0);
    assert_eq!(d.removed.len(), 1);
    assert!(d.removed[0].1.contains("Rome"), "{:?}", d.removed);
    assert_eq!(d.added.len(), 1);
    assert!(d.added[0].1.contains("Oslo"), "{:?}", d.added);
    // tools/list and the Paris call answered differently.
    assert_eq!(d.changed.len(), 2, "{:?}", d.changed);
    assert!(
        d.changed[1].differences[0]
            .to_string()
            .contains(r#"recorded "sunny", got "rain""#)
    );
    assert_eq!(d.tools_removed, ["old"]);
    assert_eq!(d.tools_added, ["new"]);
    assert_eq!(d.tools_changed.len(), 1);
    assert_eq!(d.tools_changed[0].differences[0].path, "/description");
    assert_eq!(
        d.notifications,
        [("notifications/message".to_string(), 0, 1)]
    );
    assert!(compare::compare(&a, &a, &ReplayOptions::default()).is_empty());
}
