//! The frame conditions of a search: JSON-RPC method and raw substring.

/// The JSON-RPC method of a payload: the string member `"method"` of a JSON
/// object. Only objects count (the contract says "a JSON object"), so the
/// payload must start with `{` (after JSON whitespace) before it is parsed.
pub(crate) fn frame_method(payload: &[u8]) -> Option<String> {
    let first = payload
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    if *first != b'{' {
        return None;
    }
    tapedeck_types::json_rpc_method(payload)
}

/// Does `haystack` contain `needle` (byte-wise, case-sensitive)? The empty
/// needle is contained in everything.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match haystack[i..=last_start].iter().position(|&b| b == first) {
            None => return false,
            Some(p) => {
                let at = i + p;
                if &haystack[at + 1..at + needle.len()] == rest {
                    return true;
                }
                i = at + 1;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_objects_only() {
        assert_eq!(
            frame_method(br#" {"jsonrpc":"2.0","method":"tools/list","id":1}"#).as_deref(),
            Some("tools/list")
        );
        assert_eq!(frame_method(br#"["tools/list"]"#), None);
        assert_eq!(frame_method(br#"{"id":1,"result":{}}"#), None);
        assert_eq!(frame_method(&[0xff, b'{']), None);
        assert_eq!(frame_method(b""), None);
    }

    #[test]
    fn substring() {
        assert!(contains(b"hello world", b"o w"));
        assert!(contains(b"hello", b"hello"));
        assert!(contains(b"hello", b""));
        assert!(contains(b"aab", b"ab"));
        assert!(!contains(b"hello", b"Hello"));
        assert!(!contains(b"he", b"hello"));
        assert!(contains(&[0, 0xff, 1], &[0xff, 1]));
    }
}
