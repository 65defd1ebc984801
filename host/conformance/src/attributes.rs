//! Frame attributes belong to the host: key/value pairs stored and returned
//! verbatim and in order, whichever call wrote them.

use super::fixtures::{frame, opaque_bytes, raw_frame, with_attributes, with_terms};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::Frame;
use tapedeck_types::terms::{MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES};

/// Attributes of every kind a provider might mangle: repeated keys (in
/// order), empty values, the longest key and value allowed (ASCII and
/// multi-byte), Unicode, quotes, control characters, separators, the most
/// pairs allowed, unsorted.
fn attribute_frames() -> Vec<Frame> {
    let long_ascii = "v".repeat(MAX_ATTRIBUTE_VALUE);
    let long_unicode = "é".repeat(MAX_ATTRIBUTE_VALUE / 2);
    let long_key = "k".repeat(MAX_ATTRIBUTE_KEY);
    let most: Vec<(String, String)> = (0..MAX_ATTRIBUTES)
        .map(|i| {
            let key = if i % 3 == 0 { "dup" } else { "k" };
            (format!("{key}{}", (MAX_ATTRIBUTES - i) % 5), format!("{i}"))
        })
        .collect();
    let most: Vec<(&str, &str)> = most.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vec![
        with_attributes(
            frame(
                0,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
            ),
            &[
                ("transport", "stdio"),
                ("transport", "http"),
                ("empty", ""),
                ("transport", ""),
                ("long", &long_ascii),
            ],
        ),
        with_attributes(
            raw_frame(1, opaque_bytes(1, 100)),
            &[
                ("ключ", "значение ☃"),
                ("emoji", "🎞️ e\u{301}"),
                ("é", "\u{e9}"),
                ("quote", "\"'\\"),
                ("control", "line\nbreak\ttab\r"),
                ("json", "{\"a\":[1,2]}"),
                ("k=v", "a=b; c:d, 100% _x_"),
                (" ", " "),
            ],
        ),
        with_attributes(raw_frame(2, ""), &[(&long_key, &long_unicode)]),
        with_attributes(frame(3, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), &most),
        // Terms and no attributes, then both.
        with_terms(
            frame(4, r#"{"jsonrpc":"2.0","id":2,"result":{}}"#),
            &["t:4"],
        ),
        with_attributes(
            with_terms(raw_frame(5, opaque_bytes(5, 10)), &["t:5", "t:5b"]),
            &[("z", "last"), ("a", "first")],
        ),
        with_attributes(raw_frame(6, "end"), &[("session-end", "eof")]),
    ]
}

/// Attributes come back verbatim and in order from `read_frames`, whether
/// the tape was written by `append`, `save` or `append_many`.
pub(crate) async fn verbatim<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    cx.store_three_ways("attrs", &attribute_frames()).await?;
    Ok(())
}
