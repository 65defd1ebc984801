//! `tapedeck-redact`: secrets taken out of recorded messages before they
//! are stored anywhere.
//!
//! A [`Redactor`] applies [`Rules`] to one payload (a JSON-RPC message, or
//! any other line) and returns the recorded copy with every secret replaced
//! by a placeholder:
//!
//! ```text
//! [REDACTED:<kind>:<16 hex digits>]
//! ```
//!
//! The hex digits are a keyed hash (HMAC-SHA-256, the host's redaction key)
//! of the secret: equal secrets get equal placeholders within and across
//! tapes of one host, so a replay can still match a request that carried
//! one, while nobody without the key can test guesses against a
//! placeholder. `kind` names the pattern that found the secret, or
//! `secret` for a value found by its member's name or a pointer.
//!
//! - **Key names** ([`Rules::key`], the preset's `authorization`,
//!   `password`, `api_key`, names ending in `token` or `secret`, …): the
//!   whole value of such a member, every string inside it if it is an
//!   object or array.
//! - **JSON pointers** ([`Rules::pointer`], `*` for any one member): the
//!   values there, whole.
//! - **Patterns** ([`Rules::pattern`], the preset's bearer tokens, JWTs,
//!   PEM private keys, GitHub, AWS, GCP, Slack, OpenAI and Stripe keys,
//!   passwords in URLs): in every string of a JSON message, anywhere in
//!   any other payload.
//!
//! Only the bytes of a redacted string change: member order, spacing and
//! everything else in the message stay as they were written. A value a
//! pattern matches entirely keeps the pattern's placeholder even when its
//! member's name also marks it, so one secret reads the same wherever it
//! appears.

mod rules;
mod walk;

pub use rules::{
    PRESET_ALLOWED_KEYS, PRESET_KEY_SUFFIXES, PRESET_KEYS, PRESET_PATTERNS, Pointer, RuleError,
    Rules, normalize_key,
};

use hmac::{Hmac, KeyInit, Mac};
use rules::Pattern;
use sha2_011::Sha256;
use std::borrow::Cow;
use walk::{StringValue, Whole, walk};

/// The start of every placeholder.
pub const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// Redacts payloads with one set of rules and one key (see the crate docs).
#[derive(Clone)]
pub struct Redactor {
    rules: Rules,
    key: [u8; 32],
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// A secret found by [`Redactor::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What found it: a pattern's name, `key <name>` or `pointer <ptr>`.
    pub rule: String,
    /// Where in a JSON payload (a JSON pointer), if it is one.
    pub pointer: Option<String>,
    /// Its first characters and length, never the secret itself.
    pub preview: String,
}

/// What a redaction did to one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    /// The payload to record.
    pub payload: Cow<'a, [u8]>,
    /// Secrets replaced.
    pub replaced: usize,
}

impl Redactor {
    /// A redactor applying `rules`, its placeholders keyed with `key` (keep
    /// it secret and stable: the same key gives the same placeholders).
    pub fn new(rules: Rules, key: [u8; 32]) -> Redactor {
        Redactor { rules, key }
    }

    /// The rules applied.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The placeholder of `secret` found by `kind`.
    pub fn placeholder(&self, kind: &str, secret: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(secret);
        let tag = mac.finalize().into_bytes();
        format!("{PLACEHOLDER_PREFIX}{kind}:{}]", hex::encode(&tag[..8]))
    }

    /// `payload` with its secrets replaced (borrowed unchanged when there
    /// were none).
    pub fn redact<'a>(&self, payload: &'a [u8]) -> Redacted<'a> {
        if self.rules.is_empty() {
            return unchanged(payload);
        }
        let patterns_may_match = self.patterns_may_match(payload);
        let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
        let mut replaced = 0;
        let walked = walk(
            payload,
            &|k| self.rules.is_secret_key(k),
            &|p| self.rules.pointers.iter().any(|ptr| ptr.covers(p)),
            &mut |s: StringValue<'_>| {
                if s.whole.is_none() && !patterns_may_match {
                    return;
                }
                let raw = &payload[s.start..s.end];
                let Ok(text) = serde_json::from_slice::<String>(raw) else {
                    return;
                };
                if text.starts_with(PLACEHOLDER_PREFIX) && s.whole.is_some() {
                    return;
                }
                let (new, n) = match s.whole {
                    Some(_) => self.whole_value(&text),
                    None => match self.apply_patterns(text.as_bytes()) {
                        (Cow::Owned(b), n) => (String::from_utf8_lossy(&b).into_owned(), n),
                        (Cow::Borrowed(_), _) => return,
                    },
                };
                replaced += n;
                let encoded = serde_json::to_vec(&new).expect("a string serializes");
                edits.push((s.start, s.end, encoded));
            },
        );
        if walked.is_none() {
            // Not JSON: the patterns, over the raw bytes.
            return match self.apply_patterns(payload) {
                (Cow::Borrowed(_), _) => unchanged(payload),
                (owned, n) => Redacted {
                    payload: owned,
                    replaced: n,
                },
            };
        }
        if edits.is_empty() {
            return unchanged(payload);
        }
        let mut out = Vec::with_capacity(payload.len() + edits.len() * 32);
        let mut at = 0;
        for (start, end, bytes) in edits {
            out.extend_from_slice(&payload[at..start]);
            out.extend_from_slice(&bytes);
            at = end;
        }
        out.extend_from_slice(&payload[at..]);
        Redacted {
            payload: Cow::Owned(out),
            replaced,
        }
    }

    /// The secrets in `payload` that [`redact`](Redactor::redact) would
    /// replace (placeholders already there are not reported).
    pub fn scan(&self, payload: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        let walked = walk(
            payload,
            &|k| self.rules.is_secret_key(k),
            &|p| self.rules.pointers.iter().any(|ptr| ptr.covers(p)),
            &mut |s: StringValue<'_>| {
                let Ok(text) = serde_json::from_slice::<String>(&payload[s.start..s.end]) else {
                    return;
                };
                let pointer = Some(pointer_text(s.path));
                let before = found.len();
                self.find_patterns(text.as_bytes(), &pointer, &mut found);
                if found.len() == before
                    && let Some(why) = s.whole
                    && !text.is_empty()
                    && !text.starts_with(PLACEHOLDER_PREFIX)
                {
                    let rule = match why {
                        Whole::Key => format!("key {}", s.path.last().map_or("", String::as_str)),
                        Whole::Pointer => "pointer".to_string(),
                    };
                    found.push(Finding {
                        rule,
                        pointer,
                        preview: preview(text.as_bytes()),
                    });
                }
            },
        );
        if walked.is_none() {
            found.clear();
            self.find_patterns(payload, &None, &mut found);
        }
        found
    }

    fn find_patterns(&self, text: &[u8], pointer: &Option<String>, found: &mut Vec<Finding>) {
        for p in &self.rules.patterns {
            for caps in p.regex.captures_iter(text) {
                let m = secret_match(p, &caps);
                found.push(Finding {
                    rule: p.name.clone(),
                    pointer: pointer.clone(),
                    preview: preview(&text[m.0..m.1]),
                });
            }
        }
    }

    /// True unless no pattern can match any string of `payload`.
    fn patterns_may_match(&self, payload: &[u8]) -> bool {
        match &self.rules.prefilter {
            None => false,
            // An escaped string could hide a match from the raw bytes.
            Some(set) => set.is_match(payload) || payload.windows(2).any(|w| w == b"\\u"),
        }
    }

    /// A value secret by its name or place: the pattern's placeholders if
    /// one pattern matches it entirely, else one placeholder for it all.
    fn whole_value(&self, text: &str) -> (String, usize) {
        let trimmed = text.trim().as_bytes();
        for p in &self.rules.patterns {
            if let Some(m) = p.regex.find(trimmed)
                && m.start() == 0
                && m.end() == trimmed.len()
            {
                let (b, n) = self.apply_patterns(text.as_bytes());
                return (String::from_utf8_lossy(&b).into_owned(), n.max(1));
            }
        }
        (self.placeholder("secret", text.as_bytes()), 1)
    }

    /// `text` with every pattern's matches replaced, one pattern after
    /// the other; the count of replacements.
    fn apply_patterns<'a>(&self, text: &'a [u8]) -> (Cow<'a, [u8]>, usize) {
        let mut current: Cow<'a, [u8]> = Cow::Borrowed(text);
        let mut total = 0;
        for p in &self.rules.patterns {
            let mut out = Vec::new();
            let mut at = 0;
            let mut n = 0;
            for caps in p.regex.captures_iter(&current) {
                let (start, end) = secret_match(p, &caps);
                out.extend_from_slice(&current[at..start]);
                out.extend_from_slice(self.placeholder(&p.name, &current[start..end]).as_bytes());
                at = end;
                n += 1;
            }
            if n > 0 {
                out.extend_from_slice(&current[at..]);
                current = Cow::Owned(out);
                total += n;
            }
        }
        (current, total)
    }
}

fn unchanged(payload: &[u8]) -> Redacted<'_> {
    Redacted {
        payload: Cow::Borrowed(payload),
        replaced: 0,
    }
}

/// The span of a pattern's secret: its `secret` group, else the match.
fn secret_match(p: &Pattern, caps: &regex::bytes::Captures<'_>) -> (usize, usize) {
    let m = p
        .group
        .and_then(|g| caps.get(g))
        .unwrap_or_else(|| caps.get(0).expect("group 0 is the match"));
    (m.start(), m.end())
}

/// A path as a JSON pointer.
fn pointer_text(path: &[String]) -> String {
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The first characters of a secret and its length (never all of it).
fn preview(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let shown: String = text
        .chars()
        .take(4.min(text.chars().count() / 4))
        .filter(|c| !c.is_control())
        .collect();
    format!("{shown}… ({} bytes)", secret.len())
}

#[cfg(test)]
mod tests;
