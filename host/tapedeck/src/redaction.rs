//! Redaction settings (`[redaction]` in the configuration): which secrets
//! are taken out of recorded messages before they reach the spool or any
//! provider, with the rules of [`crate::redact`].
//!
//! ```toml
//! [redaction]
//! enabled = true            # default true; `tapedeck record --no-redact` for one session
//! preset = true             # the default rules (key names, token patterns)
//! keys = ["x-tenant-secret"]               # more member names, any case
//! pointers = ["/params/arguments/ssn"]     # JSON pointers, `*` for any one member
//! patterns = [{ name = "employee-id", regex = "EMP-[0-9]{6}" }]
//! ```
//!
//! Placeholders are keyed with a key derived from the host key
//! ([`HostSeal::redaction_key`]): the same secret gets the same placeholder
//! in every tape this host records, and nobody without the host key can
//! test a guess against one. The forwarded messages are never changed:
//! only the recorded copy is.

use crate::redact::{Redactor, RuleError, Rules};
use crate::seals::HostSeal;
use serde::Deserialize;
use std::sync::Arc;

/// `[redaction]`: every field has a default (on, with the preset).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RedactionSettings {
    /// Redact recorded messages (`enabled`, default true).
    pub enabled: bool,
    /// Start from the default preset (`preset`, default true):
    /// [`crate::redact::PRESET_KEYS`], key names ending like
    /// [`crate::redact::PRESET_KEY_SUFFIXES`] and
    /// [`crate::redact::PRESET_PATTERNS`].
    pub preset: bool,
    /// More member names whose values are secrets (`keys`).
    pub keys: Vec<String>,
    /// JSON pointers whose values are secrets (`pointers`).
    pub pointers: Vec<String>,
    /// More text patterns (`patterns`, each `{ name, regex }`).
    pub patterns: Vec<PatternSetting>,
}

/// One configured text pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSetting {
    /// Shown in placeholders: lowercase letters, digits and hyphens.
    pub name: String,
    /// The regular expression (Rust `regex` syntax; only the group named
    /// `secret` is replaced when there is one).
    pub regex: String,
}

impl Default for RedactionSettings {
    fn default() -> Self {
        RedactionSettings {
            enabled: true,
            preset: true,
            keys: Vec::new(),
            pointers: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

impl RedactionSettings {
    /// Redaction switched off (what `--no-redact` gives).
    pub fn off() -> Self {
        RedactionSettings {
            enabled: false,
            ..Self::default()
        }
    }

    /// The rules these settings describe (whether or not `enabled`).
    pub fn rules(&self) -> Result<Rules, RuleError> {
        let mut rules = if self.preset {
            Rules::preset()
        } else {
            Rules::empty()
        };
        for k in &self.keys {
            rules = rules.key(k)?;
        }
        for p in &self.pointers {
            rules = rules.pointer(p)?;
        }
        for p in &self.patterns {
            rules = rules.pattern(&p.name, &p.regex)?;
        }
        Ok(rules)
    }

    /// The redactor to record with: `None` when redaction is off or there
    /// are no rules; its placeholders keyed by `seal`'s host key.
    pub fn redactor(&self, seal: &HostSeal) -> Result<Option<Arc<Redactor>>, RuleError> {
        if !self.enabled {
            return Ok(None);
        }
        let rules = self.rules()?;
        if rules.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Redactor::new(rules, seal.redaction_key()))))
    }

    /// A redactor for finding secrets ([`Redactor::scan`]) with these
    /// rules, whether or not redaction is `enabled` (its placeholders are
    /// not this host's: use it only to scan).
    pub fn scanner(&self) -> Result<Redactor, RuleError> {
        Ok(Redactor::new(self.rules()?, [0; 32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::SecretKey;
    use crate::store::seal::TrustedHosts;

    fn seal() -> HostSeal {
        HostSeal::new(SecretKey::generate().unwrap(), TrustedHosts::default())
    }

    #[test]
    fn the_default_redacts_with_the_preset_keyed_by_the_host() {
        let seal = seal();
        let r = RedactionSettings::default()
            .redactor(&seal)
            .unwrap()
            .unwrap();
        let out = r.redact(br#"{"params":{"arguments":{"api_key":"k-123"}}}"#);
        assert_eq!(out.replaced, 1);
        assert!(!String::from_utf8_lossy(&out.payload).contains("k-123"));
        // Same host key, same placeholder; another host, another.
        let again = RedactionSettings::default()
            .redactor(&seal)
            .unwrap()
            .unwrap();
        assert_eq!(
            again.redact(br#"{"api_key":"k-123"}"#).payload,
            r.redact(br#"{"api_key":"k-123"}"#).payload
        );
        let other = RedactionSettings::default()
            .redactor(&self::seal())
            .unwrap()
            .unwrap();
        assert_ne!(
            other.redact(br#"{"api_key":"k-123"}"#).payload,
            r.redact(br#"{"api_key":"k-123"}"#).payload
        );
    }

    #[test]
    fn off_or_empty_means_no_redactor_and_bad_rules_are_named() {
        assert!(
            RedactionSettings::off()
                .redactor(&seal())
                .unwrap()
                .is_none()
        );
        let none = RedactionSettings {
            preset: false,
            ..Default::default()
        };
        assert!(none.redactor(&seal()).unwrap().is_none());
        let custom = RedactionSettings {
            preset: false,
            keys: vec!["ssn".into()],
            pointers: vec!["/params/x".into()],
            patterns: vec![PatternSetting {
                name: "employee-id".into(),
                regex: "EMP-[0-9]{6}".into(),
            }],
            ..Default::default()
        };
        let r = custom.redactor(&seal()).unwrap().unwrap();
        let out = r.redact(br#"{"ssn":"1","params":{"x":"2"},"note":"EMP-123456","token":"t"}"#);
        assert_eq!(
            out.replaced,
            3,
            "{:?}",
            String::from_utf8_lossy(&out.payload)
        );
        let bad = RedactionSettings {
            patterns: vec![PatternSetting {
                name: "broken".into(),
                regex: "(".into(),
            }],
            ..Default::default()
        };
        let e = bad.rules().unwrap_err().to_string();
        assert!(e.contains("broken"), "{e}");
    }
}
