//! Index terms and the other host-owned fields of contract 0.2, and their
//! bounds.
//!
//! The host derives a frame's terms from its payload; a provider stores
//! them and matches them by equality, so it never parses a payload (which
//! may be ciphertext). Terms name what a user searches by:
//!
//! | term | from |
//! | --- | --- |
//! | `method:<m>` | a JSON-RPC request or notification's `method` |
//! | `tool:<name>` | `params.name` of `tools/call` |
//! | `resource:<uri>` | `params.uri` of `resources/read`, `resources/subscribe`, `resources/unsubscribe` |
//! | `prompt:<name>` | `params.name` of `prompts/get` |
//!
//! A term longer than [`MAX_TERM_LEN`] is cut and ends with a hash of the
//! whole value, so that long values still match exactly. A JSON-RPC batch
//! (an array) gives the terms of each of its messages.

use crate::method::json_rpc_method;
use sha2::{Digest, Sha256};

/// The most terms on one frame.
pub const MAX_TERMS: usize = 32;
/// The longest term, in bytes.
pub const MAX_TERM_LEN: usize = 256;
/// The most attributes on one frame.
pub const MAX_ATTRIBUTES: usize = 32;
/// The longest attribute key, in bytes.
pub const MAX_ATTRIBUTE_KEY: usize = 64;
/// The longest attribute value, in bytes.
pub const MAX_ATTRIBUTE_VALUE: usize = 4096;
/// The largest header envelope, in bytes.
pub const MAX_ENVELOPE: usize = 16 * 1024;
/// The largest seal, in bytes.
pub const MAX_SEAL: usize = 1024;

/// The term of a JSON-RPC method.
pub fn method_term(method: &str) -> String {
    term("method:", method)
}

/// The term of a tool called by `tools/call`.
pub fn tool_term(name: &str) -> String {
    term("tool:", name)
}

/// The term of a resource read by `resources/read`.
pub fn resource_term(uri: &str) -> String {
    term("resource:", uri)
}

/// The term of a prompt fetched by `prompts/get`.
pub fn prompt_term(name: &str) -> String {
    term("prompt:", name)
}

/// `kind` + `value`, or, when longer than [`MAX_TERM_LEN`], its head and
/// `#` + 32 hex digits of the SHA-256 of the whole value.
fn term(kind: &str, value: &str) -> String {
    let full = kind.len() + value.len();
    if full <= MAX_TERM_LEN {
        return format!("{kind}{value}");
    }
    let hash = hex::encode(&Sha256::digest(value.as_bytes())[..16]);
    let room = MAX_TERM_LEN - kind.len() - 1 - hash.len();
    let mut end = room.min(value.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{kind}{}#{hash}", &value[..end])
}

/// The terms of a payload (see the module docs), without duplicates, at
/// most [`MAX_TERMS`].
pub fn payload_terms(payload: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => message_terms(payload, &mut out),
        Some(b'[') => {
            if let Ok(items) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(payload)
            {
                for item in items {
                    message_terms(item.get().as_bytes(), &mut out);
                }
            }
        }
        _ => {}
    }
    out.truncate(MAX_TERMS);
    out
}

fn message_terms(payload: &[u8], out: &mut Vec<String>) {
    let Some(method) = json_rpc_method(payload) else {
        return;
    };
    let mut push = |t: String| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    let param = |key: &str| -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Msg {
            params: Option<serde_json::Value>,
        }
        let msg: Msg = serde_json::from_slice(payload).ok()?;
        match msg.params?.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    };
    let extra = match method.as_str() {
        "tools/call" => param("name").map(|n| tool_term(&n)),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            param("uri").map(|u| resource_term(&u))
        }
        "prompts/get" => param("name").map(|n| prompt_term(&n)),
        _ => None,
    };
    push(method_term(&method));
    if let Some(t) = extra {
        push(t);
    }
}

/// Checks the host-owned fields of a frame against their bounds; `Err`
/// says which is out of bounds.
pub fn check_frame_fields(terms: &[String], attributes: &[(String, String)]) -> Result<(), String> {
    if terms.len() > MAX_TERMS {
        return Err(format!("{} terms (at most {MAX_TERMS})", terms.len()));
    }
    if let Some(t) = terms
        .iter()
        .find(|t| t.is_empty() || t.len() > MAX_TERM_LEN)
    {
        return Err(format!("a term of {} bytes (1 to {MAX_TERM_LEN})", t.len()));
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!(
            "{} attributes (at most {MAX_ATTRIBUTES})",
            attributes.len()
        ));
    }
    if let Some((k, _)) = attributes
        .iter()
        .find(|(k, _)| k.is_empty() || k.len() > MAX_ATTRIBUTE_KEY)
    {
        return Err(format!(
            "an attribute key of {} bytes (1 to {MAX_ATTRIBUTE_KEY})",
            k.len()
        ));
    }
    if let Some((_, v)) = attributes
        .iter()
        .find(|(_, v)| v.len() > MAX_ATTRIBUTE_VALUE)
    {
        return Err(format!(
            "an attribute value of {} bytes (at most {MAX_ATTRIBUTE_VALUE})",
            v.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> Vec<String> {
        payload_terms(s.as_bytes())
    }

    #[test]
    fn requests_give_their_method_and_what_they_name() {
        assert_eq!(
            terms(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer","arguments":{}}}"#
            ),
            ["method:tools/call", "tool:transfer"]
        );
        assert_eq!(
            terms(
                r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}"#
            ),
            ["method:resources/read", "resource:file:///a"]
        );
        assert_eq!(
            terms(r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}"#),
            ["method:prompts/get", "prompt:p"]
        );
        assert_eq!(
            terms(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            ["method:notifications/initialized"]
        );
        assert_eq!(
            terms(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#),
            ["method:tools/call"]
        );
    }

    #[test]
    fn responses_and_non_json_give_none_and_batches_give_each() {
        assert!(terms(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_empty());
        assert!(terms("not json").is_empty());
        assert!(payload_terms(&[0xff, 0xfe]).is_empty());
        assert_eq!(
            terms(r#"[{"method":"a"},{"id":1,"result":1},{"method":"b"},{"method":"a"}]"#),
            ["method:a", "method:b"]
        );
    }

    #[test]
    fn long_values_are_cut_with_a_hash_of_the_whole() {
        let a = resource_term(&format!("file:///{}a", "x".repeat(400)));
        let b = resource_term(&format!("file:///{}b", "x".repeat(400)));
        assert_eq!(a.len(), MAX_TERM_LEN);
        assert_ne!(a, b);
        assert_eq!(a, resource_term(&format!("file:///{}a", "x".repeat(400))));
        let multibyte = tool_term(&"é".repeat(300));
        assert!(multibyte.len() <= MAX_TERM_LEN);
    }

    #[test]
    fn bounds_are_checked() {
        assert!(check_frame_fields(&["method:x".into()], &[("k".into(), "v".into())]).is_ok());
        assert!(check_frame_fields(&[String::new()], &[]).is_err());
        assert!(check_frame_fields(&vec!["t".into(); 33], &[]).is_err());
        assert!(check_frame_fields(&[], &[(String::new(), "v".into())]).is_err());
        assert!(check_frame_fields(&[], &[("k".into(), "v".repeat(4097))]).is_err());
    }
}
