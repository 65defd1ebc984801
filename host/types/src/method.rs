//! Extracting the JSON-RPC method of a frame, for search.

/// The `"method"` member of a JSON-RPC request or notification, if `payload`
/// is a JSON object with a string `"method"`. Responses, arrays (batches),
/// invalid JSON and non-UTF-8 payloads give `None`.
pub fn json_rpc_method(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<serde_json::Value>,
    }
    // Only an object can be a request or notification (serde would also
    // accept an array as a struct).
    if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let probe: Probe = serde_json::from_slice(payload).ok()?;
    match probe.method? {
        serde_json::Value::String(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::json_rpc_method;

    #[test]
    fn finds_methods_of_requests_and_notifications_only() {
        let m = |s: &str| json_rpc_method(s.as_bytes());
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#),
            Some("tools/call".into())
        );
        assert_eq!(
            m(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Some("notifications/initialized".into())
        );
        assert_eq!(m(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        assert_eq!(m(r#"{"method":5}"#), None);
        assert_eq!(m(r#"[{"method":"x"}]"#), None);
        assert_eq!(m(r#"["tools/call"]"#), None);
        assert_eq!(m(r#"  {"method":"padded"}"#), Some("padded".into()));
        assert_eq!(m("not json"), None);
        assert_eq!(json_rpc_method(&[0xff, 0xfe]), None);
    }
}
