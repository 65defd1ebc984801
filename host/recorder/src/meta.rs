//! [`TapeMeta`]: what the caller says about a recording before it starts.

/// What describes a tape besides its frames; the recorder adds the id and the
/// creation time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapeMeta {
    /// The MCP session being recorded (free text, may be empty).
    pub session_id: String,
    /// A human-readable name (free text, may be empty).
    pub name: String,
    /// Key/value tags, in order; keys must be non-empty (the provider refuses
    /// an empty key).
    pub tags: Vec<(String, String)>,
}

impl TapeMeta {
    /// A tape named `name`, of a new session (a fresh UUIDv7), without tags.
    pub fn named(name: impl Into<String>) -> Self {
        TapeMeta {
            session_id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            tags: Vec::new(),
        }
    }

    /// Adds the tag `key=value`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }
}
