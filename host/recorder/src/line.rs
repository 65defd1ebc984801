//! Facts about one recorded line: its time and whether it is JSON.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in µs since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// True if `payload` is one valid JSON text (UTF-8, surrounding whitespace
/// allowed, so a line that ended in `\r\n` still counts as JSON).
pub(crate) fn is_json(payload: &[u8]) -> bool {
    // serde_json skips string contents it is told to ignore without checking
    // their UTF-8, so check that first: JSON text is UTF-8.
    std::str::from_utf8(payload).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_recognised_and_others_are_not() {
        for ok in [
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"[..],
            b"{\"a\":1}\r",
            b"  [1, 2, 3]  ",
            b"42",
            b"\"text\"",
            "{\"t\":\"h\u{e9}llo \u{1f600}\"}".as_bytes(),
        ] {
            assert!(is_json(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b"   ",
            b"not json",
            b"{\"a\":1",
            b"{\"a\":1} {\"b\":2}",
            b"{\"a\":\"\xff\xfe\"}",
            b"\xff\xfe",
        ] {
            assert!(!is_json(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_us() > 1_577_836_800_000_000);
    }
}
