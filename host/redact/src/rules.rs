//! What is a secret: key names, JSON pointers and text patterns, and the
//! default preset.

use regex::bytes::{Regex, RegexSet};

/// A rule that could not be built; names the rule and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// A pattern is not a valid regular expression.
    #[error("redaction pattern `{name}`: {detail}")]
    Pattern {
        /// The pattern's name.
        name: String,
        /// What the regex parser said.
        detail: String,
    },
    /// A pattern's name is empty or has characters other than lowercase
    /// letters, digits and hyphens (it appears inside placeholders).
    #[error(
        "redaction pattern name `{0}`: use lowercase letters, digits and hyphens (it is shown in placeholders)"
    )]
    PatternName(String),
    /// A JSON pointer is not one (it must start with `/`).
    #[error(
        "redaction pointer `{0}`: a JSON pointer starts with `/` (e.g. `/params/arguments/password`, `*` for any one member)"
    )]
    Pointer(String),
    /// A key name is empty once normalized.
    #[error("redaction key `{0}`: no letters or digits")]
    Key(String),
}

/// Key names whose values are secrets, whatever the case and separators
/// (`api_key`, `apiKey`, `API-KEY` are one name).
pub const PRESET_KEYS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api-key",
    "apikey",
    "x-api-key",
    "private-key",
    "credentials",
    "client-secret",
    "access-token",
    "refresh-token",
    "id-token",
    "session-token",
    "auth-token",
];

/// Endings that make a key name a secret's (`github_token`,
/// `aws_secret_access_key`, `db_password`).
pub const PRESET_KEY_SUFFIXES: &[&str] = &[
    "token",
    "secret",
    "password",
    "apikey",
    "privatekey",
    "secretaccesskey",
];

/// Key names that end like a secret's but are protocol fields (MCP's
/// `progressToken`, pagination tokens): never redacted by name.
pub const PRESET_ALLOWED_KEYS: &[&str] = &["progressToken", "nextPageToken", "pageToken"];

/// Token-shaped text, found in any string or non-JSON payload. A pattern
/// with a group named `secret` replaces only that group. Applied in this
/// order: specific shapes first, so a GitHub token after `token ` is named
/// as one.
pub const PRESET_PATTERNS: &[(&str, &str)] = &[
    (
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
    ),
    (
        "github-token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    ),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    (
        "aws-secret-key",
        r"(?i)aws_?secret_?access_?key\W{0,4}(?P<secret>[A-Za-z0-9/+]{40})\b",
    ),
    ("gcp-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("slack-token", r"\bxox[abposrce]-[A-Za-z0-9-]{10,}"),
    (
        "slack-webhook",
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}",
    ),
    (
        "openai-key",
        r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,}",
    ),
    (
        "stripe-key",
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
    ),
    (
        "bearer",
        r"(?i)\b(?:bearer|token)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
    ),
    (
        "basic-auth",
        r"(?i)\bbasic\s+(?P<secret>[A-Za-z0-9+/]{12,}=*)",
    ),
    (
        "url-password",
        r"\b[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<secret>[^\s/@]{3,})@",
    ),
];

/// One text pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub(crate) name: String,
    pub(crate) regex: Regex,
    /// The index of the `secret` group, if the pattern has one.
    pub(crate) group: Option<usize>,
}

/// A JSON pointer with `*` standing for any one member or element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    segments: Vec<String>,
    text: String,
}

impl Pointer {
    /// Parses `/a/b/*/c` (RFC 6901 escapes `~0` and `~1` apply).
    pub fn parse(text: &str) -> Result<Pointer, RuleError> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(RuleError::Pointer(text.into()));
        };
        let segments = rest
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        Ok(Pointer {
            segments,
            text: text.into(),
        })
    }

    /// True when `path` is this pointer or lies beneath it.
    pub(crate) fn covers(&self, path: &[String]) -> bool {
        path.len() >= self.segments.len()
            && self
                .segments
                .iter()
                .zip(path)
                .all(|(want, got)| want == "*" || want == got)
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A key name as rules compare it: lowercase letters and digits only.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The rules a [`Redactor`](crate::Redactor) applies. Start from
/// [`Rules::preset`] (the default, on unless configured off) or
/// [`Rules::empty`], then add.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) keys: Vec<String>,
    pub(crate) suffixes: Vec<String>,
    pub(crate) allowed: Vec<String>,
    pub(crate) pointers: Vec<Pointer>,
    pub(crate) patterns: Vec<Pattern>,
    /// Matches anywhere in a raw payload when any pattern might match in
    /// one of its strings (a quick test before the strings are decoded).
    pub(crate) prefilter: Option<RegexSet>,
}

impl Rules {
    /// No rules at all.
    pub fn empty() -> Rules {
        Rules {
            keys: Vec::new(),
            suffixes: Vec::new(),
            allowed: Vec::new(),
            pointers: Vec::new(),
            patterns: Vec::new(),
            prefilter: None,
        }
    }

    /// The default preset: [`PRESET_KEYS`], [`PRESET_KEY_SUFFIXES`] (except
    /// [`PRESET_ALLOWED_KEYS`]) and [`PRESET_PATTERNS`].
    pub fn preset() -> Rules {
        let mut rules = Rules::empty();
        for key in PRESET_KEYS {
            rules = rules.key(key).expect("preset keys are valid");
        }
        rules.suffixes = PRESET_KEY_SUFFIXES.iter().map(|s| s.to_string()).collect();
        rules.allowed = PRESET_ALLOWED_KEYS
            .iter()
            .map(|k| normalize_key(k))
            .collect();
        for (name, regex) in PRESET_PATTERNS {
            rules = rules.pattern(name, regex).expect("preset patterns compile");
        }
        rules
    }

    /// Values under a member named `key` (any case and separators) are
    /// secrets, whole: a string, or every string inside an object or array.
    pub fn key(mut self, key: &str) -> Result<Rules, RuleError> {
        let k = normalize_key(key);
        if k.is_empty() {
            return Err(RuleError::Key(key.into()));
        }
        self.allowed.retain(|a| a != &k);
        if !self.keys.contains(&k) {
            self.keys.push(k);
        }
        Ok(self)
    }

    /// Values at `pointer` (or beneath it) are secrets, whole.
    pub fn pointer(mut self, pointer: &str) -> Result<Rules, RuleError> {
        self.pointers.push(Pointer::parse(pointer)?);
        Ok(self)
    }

    /// Text matching `regex` is a secret (only its group named `secret`,
    /// if it has one), in every string of a JSON payload and anywhere in
    /// any other payload. `name` appears in the placeholder.
    pub fn pattern(mut self, name: &str, regex: &str) -> Result<Rules, RuleError> {
        let name_ok = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(RuleError::PatternName(name.into()));
        }
        let bad = |e: regex::Error| RuleError::Pattern {
            name: name.into(),
            detail: e.to_string(),
        };
        let regex = regex::bytes::RegexBuilder::new(regex)
            .size_limit(1 << 22)
            .build()
            .map_err(bad)?;
        let group = regex.capture_names().position(|n| n == Some("secret"));
        self.patterns.retain(|p| p.name != name);
        self.patterns.push(Pattern {
            name: name.into(),
            regex,
            group,
        });
        self.prefilter = Some(
            RegexSet::new(self.patterns.iter().map(|p| p.regex.as_str()))
                .expect("each pattern compiled alone"),
        );
        Ok(self)
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.suffixes.is_empty()
            && self.pointers.is_empty()
            && self.patterns.is_empty()
    }

    /// Whether a member named `key` holds a secret (by name).
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        let k = normalize_key(key);
        if k.is_empty() || self.allowed.contains(&k) {
            return false;
        }
        self.keys.contains(&k) || self.suffixes.iter().any(|s| k.ends_with(s.as_str()))
    }

    /// The names of the text patterns, in order.
    pub fn pattern_names(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_match_whatever_the_case_and_separators() {
        let r = Rules::preset();
        for k in [
            "api_key",
            "apiKey",
            "API-KEY",
            "Authorization",
            "github_token",
            "aws_secret_access_key",
            "DB_PASSWORD",
            "client_secret",
        ] {
            assert!(r.is_secret_key(k), "{k}");
        }
        for k in [
            "progressToken",
            "max_tokens",
            "input_tokens",
            "name",
            "keyword",
            "",
        ] {
            assert!(!r.is_secret_key(k), "{k}");
        }
        let r = r.key("progressToken").unwrap();
        assert!(r.is_secret_key("progress_token"));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let e = Rules::empty().pattern("x", "(").unwrap_err();
        assert!(e.to_string().starts_with("redaction pattern `x`: "), "{e}");
        let e = Rules::empty().pattern("Has Space", "a").unwrap_err();
        assert!(e.to_string().contains("lowercase"), "{e}");
        let e = Rules::empty().pointer("params/x").unwrap_err();
        assert!(e.to_string().contains("starts with `/`"), "{e}");
        assert!(Rules::empty().key("--").is_err());
    }

    #[test]
    fn pointers_cover_their_subtree_and_stars_match_one_member() {
        let p = Pointer::parse("/params/*/token").unwrap();
        let path = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(p.covers(&path(&["params", "a", "token"])));
        assert!(p.covers(&path(&["params", "0", "token", "x"])));
        assert!(!p.covers(&path(&["params", "a"])));
        assert!(!p.covers(&path(&["result", "a", "token"])));
        let p = Pointer::parse("/a~1b/c~0d").unwrap();
        assert!(p.covers(&path(&["a/b", "c~d"])));
    }
}
