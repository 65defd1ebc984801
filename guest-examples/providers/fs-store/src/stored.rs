//! How the host's opaque bytes are kept in the JSON records (tape headers,
//! end records, catalog entries): as lowercase hex strings, which are about
//! half the size of serde's default array of numbers, so catalog entries
//! stay small and `open` replays the log fast.

use serde::{Deserialize, Serialize};
use tapedeck_types::TapeHeader;

/// A [`TapeHeader`] as stored: the same fields under the same names (so a
/// header written by format 1, which had no envelope, reads as one without
/// an envelope), with the envelope in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredHeader {
    /// See [`TapeHeader::id`].
    pub id: String,
    /// See [`TapeHeader::session_id`].
    pub session_id: String,
    /// See [`TapeHeader::name`].
    pub name: String,
    /// See [`TapeHeader::tags`].
    pub tags: Vec<(String, String)>,
    /// See [`TapeHeader::created_at_us`].
    pub created_at_us: u64,
    /// See [`TapeHeader::envelope`]; absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub envelope: Option<Vec<u8>>,
}

impl From<TapeHeader> for StoredHeader {
    fn from(h: TapeHeader) -> Self {
        StoredHeader {
            id: h.id,
            session_id: h.session_id,
            name: h.name,
            tags: h.tags,
            created_at_us: h.created_at_us,
            envelope: h.envelope,
        }
    }
}

impl From<StoredHeader> for TapeHeader {
    fn from(h: StoredHeader) -> Self {
        TapeHeader {
            id: h.id,
            session_id: h.session_id,
            name: h.name,
            tags: h.tags,
            created_at_us: h.created_at_us,
            envelope: h.envelope,
        }
    }
}

/// `Option<Vec<u8>>` as an optional lowercase hex string (`with = "hex_opt"`).
pub(crate) mod hex_opt {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    /// Lowercase hex of `bytes`.
    pub(crate) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }

    /// The bytes of a hex string (either case); `None` if it is not one.
    pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let s = s.as_bytes();
        if !s.len().is_multiple_of(2) {
            return None;
        }
        s.chunks_exact(2)
            .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
            .collect()
    }

    /// Serializes as `null` or a hex string.
    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => s.serialize_some(&encode(bytes)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes `null` or a hex string.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| decode(&s).ok_or_else(|| D::Error::custom("not a hex string")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let h = hex_opt::encode(&all);
        assert_eq!(&h[..6], "000102");
        assert_eq!(hex_opt::decode(&h), Some(all));
        assert_eq!(hex_opt::decode("ABff"), Some(vec![0xab, 0xff]));
        for bad in ["a", "0g", "é0"] {
            assert_eq!(hex_opt::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_keep_their_envelope_and_read_the_old_form() {
        let h = TapeHeader {
            id: "t".into(),
            session_id: "s".into(),
            name: "n".into(),
            tags: vec![("k".into(), "v".into())],
            created_at_us: 7,
            envelope: Some(vec![0, 0xff, 0x10]),
        };
        let json = serde_json::to_string(&StoredHeader::from(h.clone())).unwrap();
        assert!(json.contains(r#""envelope":"00ff10""#), "{json}");
        let back: StoredHeader = serde_json::from_str(&json).unwrap();
        assert_eq!(TapeHeader::from(back), h);
        // Format 1 wrote `TapeHeader` without an envelope.
        let old = r#"{"id":"t","session_id":"s","name":"n","tags":[["k","v"]],"created_at_us":7}"#;
        let back: StoredHeader = serde_json::from_str(old).unwrap();
        assert_eq!(back.envelope, None);
        let none = serde_json::to_string(&StoredHeader::from(TapeHeader {
            envelope: None,
            ..h
        }))
        .unwrap();
        assert!(!none.contains("envelope"), "{none}");
    }
}
