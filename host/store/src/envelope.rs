//! The host's envelope on a tape header: what the host records about how
//! it stores the tape, opaque to the provider (which stores and returns it
//! verbatim) and covered by the seal (it is part of the header's hash).
//!
//! Encoded as a JSON object, so that later host features add fields
//! without a new format; fields this host does not know are kept as they
//! are:
//!
//! ```json
//! {"tapedeck-envelope": 1, "sealed-by": "ed25519:…"}
//! ```
//!
//! - `sealed-by`: the tape was created by a host that seals what it ends,
//!   with this key. A tape that says so but comes back ended without a
//!   seal lost it on the way ([`crate::seal::SealError::Missing`]): only a
//!   tape whose header was edited as well looks like one never sealed, and
//!   that is shown as unsealed, never as verified (or refused where seals
//!   are required).
//!
//! Bytes that are not such an object (a provider's or another program's
//! envelope) are not an [`Envelope`]: [`Envelope::parse`] says `None` and
//! the host leaves them alone.

use crate::keys::PublicKey;
use serde_json::{Map, Value};

/// The format version written in `tapedeck-envelope`.
pub const ENVELOPE_VERSION: u64 = 1;
const VERSION_KEY: &str = "tapedeck-envelope";
const SEALED_BY: &str = "sealed-by";

/// A parsed host envelope (see the module docs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    fields: Map<String, Value>,
}

impl Envelope {
    /// An empty envelope of the current version.
    pub fn new() -> Self {
        let mut fields = Map::new();
        fields.insert(VERSION_KEY.into(), Value::from(ENVELOPE_VERSION));
        Envelope { fields }
    }

    /// Parses `bytes`; `None` when they are not a host envelope.
    pub fn parse(bytes: &[u8]) -> Option<Envelope> {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(bytes) else {
            return None;
        };
        fields.get(VERSION_KEY)?.as_u64()?;
        Some(Envelope { fields })
    }

    /// The envelope of a header (`None`: no envelope, or not a host's).
    pub fn of(envelope: Option<&[u8]>) -> Option<Envelope> {
        envelope.and_then(Envelope::parse)
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.fields).expect("a JSON map serializes")
    }

    /// The key the tape was created to be sealed with, if the envelope
    /// names one (a malformed key counts as named: the claim was made).
    pub fn sealed_by(&self) -> Option<Result<PublicKey, String>> {
        let v = self.fields.get(SEALED_BY)?;
        Some(match v.as_str() {
            Some(s) => PublicKey::parse(s).map_err(|e| e.to_string()),
            None => Err(format!("`{SEALED_BY}` is not a string")),
        })
    }

    /// The field `key`, if the envelope has it.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// Sets the field `key` (a host feature's own; see [`crate::codec`]).
    pub fn set_field(&mut self, key: &str, value: Value) {
        self.fields.insert(key.into(), value);
    }

    /// Records that the tape is sealed by `key` when it ends.
    pub fn set_sealed_by(&mut self, key: &PublicKey) {
        self.fields
            .insert(SEALED_BY.into(), Value::from(key.to_string()));
    }
}

/// `envelope` (a header's) marked `sealed-by` `key`: a new host envelope
/// when there is none, the host envelope with the field added when it has
/// none; an envelope that names a key already (a tape copied from another
/// host) and foreign bytes come back as they are.
pub fn mark_sealed(envelope: Option<Vec<u8>>, key: &PublicKey) -> Option<Vec<u8>> {
    let mut env = match envelope.as_deref() {
        None => Envelope::new(),
        Some(bytes) => match Envelope::parse(bytes) {
            Some(e) if e.sealed_by().is_none() => e,
            _ => return envelope,
        },
    };
    env.set_sealed_by(key);
    Some(env.to_bytes())
}

/// True when `copy` is `source`, or `source` as a sealing store marks it
/// ([`mark_sealed`] with the key `copy` names): a copy's envelope may gain
/// the destination host's mark and nothing else.
pub fn same_but_marked(source: Option<&[u8]>, copy: Option<&[u8]>) -> bool {
    if source == copy {
        return true;
    }
    let Some(Ok(key)) = Envelope::of(copy).and_then(|e| e.sealed_by()) else {
        return false;
    };
    mark_sealed(source.map(<[u8]>::to_vec), &key).as_deref() == copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn a_marked_envelope_names_its_key_and_keeps_other_fields() {
        let key = SecretKey::generate().unwrap().public();
        let bytes = mark_sealed(None, &key).unwrap();
        let env = Envelope::parse(&bytes).unwrap();
        assert_eq!(env.sealed_by(), Some(Ok(key)));

        let later = br#"{"tapedeck-envelope": 3, "cipher": "x"}"#.to_vec();
        let bytes = mark_sealed(Some(later), &key).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["cipher"], "x");
        assert_eq!(v["tapedeck-envelope"], 3);
        assert_eq!(Envelope::parse(&bytes).unwrap().sealed_by(), Some(Ok(key)));
    }

    #[test]
    fn foreign_bytes_are_not_an_envelope_and_are_left_alone() {
        let key = SecretKey::generate().unwrap().public();
        for foreign in [
            &b"\x00\x01"[..],
            b"[1]",
            br#"{"a":1}"#,
            br#"{"tapedeck-envelope":"x"}"#,
        ] {
            assert_eq!(Envelope::parse(foreign), None, "{foreign:?}");
            assert_eq!(
                mark_sealed(Some(foreign.to_vec()), &key),
                Some(foreign.to_vec())
            );
        }
        let marked = mark_sealed(None, &key);
        let other = SecretKey::generate().unwrap().public();
        assert_eq!(mark_sealed(marked.clone(), &other), marked);
        assert!(same_but_marked(None, marked.as_deref()));
        assert!(same_but_marked(marked.as_deref(), marked.as_deref()));
        assert!(!same_but_marked(marked.as_deref(), None));
        assert!(!same_but_marked(Some(b"x"), marked.as_deref()));
        let odd = Envelope::parse(br#"{"tapedeck-envelope":1,"sealed-by":7}"#).unwrap();
        assert!(matches!(odd.sealed_by(), Some(Err(_))));
        assert_eq!(Envelope::new().sealed_by(), None);
    }
}
