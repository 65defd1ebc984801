//! Which tapes a listing or a search returns.

use crate::tape::{TapeInfo, TapeState};
use serde::{Deserialize, Serialize};

/// Conditions on a tape's header and state; every condition set must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TapeFilter {
    /// Exact session id.
    pub session_id: Option<String>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Every pair must be among the tape's tags.
    pub tags: Vec<(String, String)>,
    /// Created at or after (µs since the Unix epoch).
    pub created_since_us: Option<u64>,
    /// Created strictly before (µs since the Unix epoch).
    pub created_until_us: Option<u64>,
    /// In this state.
    pub state: Option<TapeState>,
}

impl TapeFilter {
    /// Does `tape` satisfy every condition?
    pub fn matches(&self, tape: &TapeInfo) -> bool {
        let h = &tape.header;
        if let Some(s) = &self.session_id
            && *s != h.session_id
        {
            return false;
        }
        if let Some(n) = &self.name_contains
            && !h.name.to_lowercase().contains(&n.to_lowercase())
        {
            return false;
        }
        if !self.tags.iter().all(|t| h.tags.contains(t)) {
            return false;
        }
        if let Some(since) = self.created_since_us
            && h.created_at_us < since
        {
            return false;
        }
        if let Some(until) = self.created_until_us
            && h.created_at_us >= until
        {
            return false;
        }
        if let Some(state) = self.state
            && state != tape.state
        {
            return false;
        }
        true
    }
}

/// A search: a tape filter plus conditions on frame contents.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Conditions on the tape.
    pub filter: TapeFilter,
    /// Every term is among the terms of some frame of the tape.
    pub terms: Vec<String>,
    /// Some frame's payload contains these bytes.
    pub text: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tape::TapeHeader;

    fn tape(session: &str, name: &str, tags: &[(&str, &str)], at: u64) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: "t".into(),
                session_id: session.into(),
                name: name.into(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                created_at_us: at,
                envelope: None,
            },
            state: TapeState::Finished,
            frame_count: 0,
            byte_count: 0,
            ended_at_us: Some(at),
            digest: None,
            seal: None,
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let t = tape("s1", "Weather Demo", &[("env", "ci"), ("team", "a")], 100);
        assert!(TapeFilter::default().matches(&t));
        let f = |f: TapeFilter| f.matches(&t);
        assert!(f(TapeFilter {
            session_id: Some("s1".into()),
            ..Default::default()
        }));
        assert!(!f(TapeFilter {
            session_id: Some("s2".into()),
            ..Default::default()
        }));
        assert!(f(TapeFilter {
            name_contains: Some("weather d".into()),
            ..Default::default()
        }));
        assert!(f(TapeFilter {
            tags: vec![("team".into(), "a".into()), ("env".into(), "ci".into())],
            ..Default::default()
        }));
        assert!(!f(TapeFilter {
            tags: vec![("env".into(), "prod".into())],
            ..Default::default()
        }));
        assert!(f(TapeFilter {
            created_since_us: Some(100),
            created_until_us: Some(101),
            ..Default::default()
        }));
        assert!(!f(TapeFilter {
            created_until_us: Some(100),
            ..Default::default()
        }));
        assert!(!f(TapeFilter {
            state: Some(TapeState::Recording),
            ..Default::default()
        }));
    }
}
