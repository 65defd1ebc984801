//! Secret values of a provider's configuration (a password read from an
//! environment variable or a file), kept out of everything the host writes.
//!
//! The provider receives them in its `init` configuration, as it must; the
//! host never prints them: a [`ProviderSpec`](crate::ProviderSpec)'s `Debug`
//! shows them as `<secret>`, and every message that carries provider text
//! (a storage error, a trap with the guest's stderr, a contract violation, a
//! log line) has each secret value replaced by `<secret>` before it leaves
//! the sandbox, in case the provider echoed its configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use tapedeck_store::ProviderError;

/// What a secret value is replaced by.
pub const REDACTED: &str = "<secret>";

/// Secret values shorter than this are not searched for in messages (a
/// one- or two-character "secret" would redact every message); they are
/// still kept out of `Debug` output and the spool key.
pub const MIN_SCRUBBED_LEN: usize = 4;

/// The secret values of one provider's configuration. `Debug` shows only
/// how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Arc<[String]>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} hidden)", self.values.len())
    }
}

impl Secrets {
    /// Secrets with these values (empty ones are ignored). Longest first, so
    /// a secret containing another is replaced whole.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets {
            values: values.into(),
        }
    }

    /// True when there is no secret.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// True when `value` is one of the secrets.
    pub fn contains(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// `text` with every secret value (of at least [`MIN_SCRUBBED_LEN`]
    /// bytes) replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in self.values.iter().filter(|v| v.len() >= MIN_SCRUBBED_LEN) {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), REDACTED));
            }
        }
        out
    }

    /// `value` (a provider configuration) with every string equal to a
    /// secret replaced by [`REDACTED`]: what may be shown or hashed.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match value {
            J::String(s) if self.contains(s) => J::String(REDACTED.into()),
            J::Array(a) => J::Array(a.iter().map(|v| self.redact_json(v)).collect()),
            J::Object(o) => J::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// `e` with the secrets scrubbed from the text the provider had a hand
    /// in (its error message, a trap's detail, a violation's quote).
    pub fn scrub_error(&self, e: ProviderError) -> ProviderError {
        if self.is_empty() {
            return e;
        }
        let s = |t: String| match self.scrub(&t) {
            Cow::Borrowed(_) => t,
            Cow::Owned(o) => o,
        };
        match e {
            ProviderError::Storage {
                provider,
                mut error,
            } => {
                error.message = s(error.message);
                ProviderError::Storage { provider, error }
            }
            ProviderError::Trap {
                provider,
                call,
                detail,
            } => ProviderError::Trap {
                provider,
                call,
                detail: s(detail),
            },
            ProviderError::ResourceLimit {
                provider,
                call,
                detail,
            } => ProviderError::ResourceLimit {
                provider,
                call,
                detail: s(detail),
            },
            ProviderError::Contract {
                provider,
                call,
                detail,
            } => ProviderError::Contract {
                provider,
                call,
                detail: s(detail),
            },
            ProviderError::Unavailable { provider, detail } => ProviderError::Unavailable {
                provider,
                detail: s(detail),
            },
            ProviderError::NotStarted { provider, detail } => ProviderError::NotStarted {
                provider,
                detail: s(detail),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::{ErrorKind, StorageError};

    #[test]
    fn secrets_are_scrubbed_from_text_json_and_errors() {
        let s = Secrets::new(["hunter22".to_string(), "x".to_string(), String::new()]);
        assert_eq!(format!("{s:?}"), "Secrets(2 hidden)");
        assert_eq!(
            s.scrub("auth failed for hunter22@db (x)"),
            "auth failed for <secret>@db (x)"
        );
        assert!(matches!(s.scrub("nothing here"), Cow::Borrowed(_)));
        let cfg = serde_json::json!({"user": "u", "password": "hunter22", "list": ["x", "y"]});
        assert_eq!(
            s.redact_json(&cfg),
            serde_json::json!({"user": "u", "password": "<secret>", "list": ["<secret>", "y"]})
        );
        let e = s.scrub_error(ProviderError::Storage {
            provider: "pg".into(),
            error: StorageError::new(ErrorKind::Io, "connect with password hunter22 failed"),
        });
        assert!(!e.to_string().contains("hunter22"), "{e}");
        assert!(e.to_string().contains("<secret>"), "{e}");
    }

    #[test]
    fn a_longer_secret_is_replaced_whole() {
        let s = Secrets::new(["abcd".to_string(), "abcdefgh".to_string()]);
        assert_eq!(s.scrub("[abcdefgh] [abcd]"), "[<secret>] [<secret>]");
    }
}
