//! Conversions between the component-model types generated from
//! `wit/tape-storage.wit` (in [`crate::bindings`]) and the plain Rust model
//! of `tapedeck-types`, in the directions the exports need.
//!
//! Payloads are moved, never copied.

use crate::bindings::tapedeck::storage::types as wit;
use tapedeck_types as tt;

impl From<wit::Direction> for tt::Direction {
    fn from(d: wit::Direction) -> Self {
        match d {
            wit::Direction::ClientToServer => tt::Direction::ClientToServer,
            wit::Direction::ServerToClient => tt::Direction::ServerToClient,
        }
    }
}

impl From<tt::Direction> for wit::Direction {
    fn from(d: tt::Direction) -> Self {
        match d {
            tt::Direction::ClientToServer => wit::Direction::ClientToServer,
            tt::Direction::ServerToClient => wit::Direction::ServerToClient,
        }
    }
}

impl From<wit::Frame> for tt::Frame {
    fn from(f: wit::Frame) -> Self {
        tt::Frame {
            seq: f.seq,
            timestamp_us: f.timestamp,
            direction: f.direction.into(),
            payload: f.payload,
            not_json: f.flags.contains(wit::FrameFlags::NOT_JSON),
            terms: f.terms,
            attributes: f.attributes,
        }
    }
}

impl From<tt::Frame> for wit::Frame {
    fn from(f: tt::Frame) -> Self {
        wit::Frame {
            seq: f.seq,
            timestamp: f.timestamp_us,
            direction: f.direction.into(),
            payload: f.payload,
            flags: if f.not_json {
                wit::FrameFlags::NOT_JSON
            } else {
                wit::FrameFlags::empty()
            },
            terms: f.terms,
            attributes: f.attributes,
        }
    }
}

impl From<wit::TapeAppend> for tt::TapeAppend {
    fn from(a: wit::TapeAppend) -> Self {
        tt::TapeAppend {
            id: a.id,
            frames: a.frames.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<wit::TapeHeader> for tt::TapeHeader {
    fn from(h: wit::TapeHeader) -> Self {
        tt::TapeHeader {
            id: h.id,
            session_id: h.session_id,
            name: h.name,
            tags: h.tags,
            created_at_us: h.created_at,
            envelope: h.envelope,
        }
    }
}

impl From<tt::TapeHeader> for wit::TapeHeader {
    fn from(h: tt::TapeHeader) -> Self {
        wit::TapeHeader {
            id: h.id,
            session_id: h.session_id,
            name: h.name,
            tags: h.tags,
            created_at: h.created_at_us,
            envelope: h.envelope,
        }
    }
}

impl From<wit::TapeState> for tt::TapeState {
    fn from(s: wit::TapeState) -> Self {
        match s {
            wit::TapeState::Recording => tt::TapeState::Recording,
            wit::TapeState::Finished => tt::TapeState::Finished,
            wit::TapeState::Aborted => tt::TapeState::Aborted,
            wit::TapeState::Crashed => tt::TapeState::Crashed,
        }
    }
}

impl From<tt::TapeState> for wit::TapeState {
    fn from(s: tt::TapeState) -> Self {
        match s {
            tt::TapeState::Recording => wit::TapeState::Recording,
            tt::TapeState::Finished => wit::TapeState::Finished,
            tt::TapeState::Aborted => wit::TapeState::Aborted,
            tt::TapeState::Crashed => wit::TapeState::Crashed,
        }
    }
}

impl From<wit::EndReason> for tt::EndReason {
    fn from(r: wit::EndReason) -> Self {
        match r {
            wit::EndReason::Completed => tt::EndReason::Completed,
            wit::EndReason::Crashed => tt::EndReason::Crashed,
            wit::EndReason::Aborted => tt::EndReason::Aborted,
        }
    }
}

impl From<wit::TapeSummary> for tt::TapeSummary {
    fn from(s: wit::TapeSummary) -> Self {
        tt::TapeSummary {
            frame_count: s.frame_count,
            byte_count: s.byte_count,
            ended_at_us: s.ended_at,
            digest: s.digest,
            seal: s.seal,
        }
    }
}

impl From<tt::TapeInfo> for wit::TapeInfo {
    fn from(i: tt::TapeInfo) -> Self {
        wit::TapeInfo {
            header: i.header.into(),
            state: i.state.into(),
            frame_count: i.frame_count,
            byte_count: i.byte_count,
            ended_at: i.ended_at_us,
            digest: i.digest,
            seal: i.seal,
        }
    }
}

impl From<wit::TapeFilter> for tt::TapeFilter {
    fn from(f: wit::TapeFilter) -> Self {
        tt::TapeFilter {
            session_id: f.session_id,
            name_contains: f.name_contains,
            tags: f.tags,
            created_since_us: f.created_since,
            created_until_us: f.created_until,
            state: f.state.map(Into::into),
        }
    }
}

impl From<wit::SearchQuery> for tt::SearchQuery {
    fn from(q: wit::SearchQuery) -> Self {
        tt::SearchQuery {
            filter: q.filter.into(),
            terms: q.terms,
            text: q.text,
        }
    }
}

impl From<tt::TapePage> for wit::TapePage {
    fn from(p: tt::TapePage) -> Self {
        wit::TapePage {
            tapes: p.tapes.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl From<tt::StorageStats> for wit::StorageStats {
    fn from(s: tt::StorageStats) -> Self {
        wit::StorageStats {
            tape_count: s.tape_count,
            recording_count: s.recording_count,
            frame_count: s.frame_count,
            byte_count: s.byte_count,
            stored_bytes: s.stored_bytes,
        }
    }
}

impl From<tt::Capabilities> for wit::Capabilities {
    fn from(c: tt::Capabilities) -> Self {
        let mut out = wit::Capabilities::empty();
        if c.delete {
            out |= wit::Capabilities::DELETE;
        }
        if c.search {
            out |= wit::Capabilities::SEARCH;
        }
        if c.text_search {
            out |= wit::Capabilities::TEXT_SEARCH;
        }
        out
    }
}

impl From<tt::ProviderInfo> for wit::ProviderInfo {
    fn from(i: tt::ProviderInfo) -> Self {
        wit::ProviderInfo {
            name: i.name,
            version: i.version,
            capabilities: i.capabilities.into(),
        }
    }
}

impl From<tt::StorageError> for wit::StorageError {
    fn from(e: tt::StorageError) -> Self {
        let m = e.message;
        match e.kind {
            tt::ErrorKind::NotFound => wit::StorageError::NotFound(m),
            tt::ErrorKind::AlreadyExists => wit::StorageError::AlreadyExists(m),
            tt::ErrorKind::InvalidInput => wit::StorageError::InvalidInput(m),
            tt::ErrorKind::Unsupported => wit::StorageError::Unsupported(m),
            tt::ErrorKind::QuotaExceeded => wit::StorageError::QuotaExceeded(m),
            tt::ErrorKind::Io => wit::StorageError::Io(m),
            tt::ErrorKind::Internal => wit::StorageError::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> tt::Frame {
        tt::Frame {
            seq: 4,
            timestamp_us: 5,
            direction: tt::Direction::ServerToClient,
            payload: vec![0xff, 0x00, b'{'],
            not_json: true,
            terms: vec!["method:a".into(), "tool:Ü".into(), "method:a".into()],
            attributes: vec![("z".into(), String::new()), ("a".into(), "1".into())],
        }
    }

    #[test]
    fn frames_keep_terms_and_attributes_both_ways() {
        let f = frame();
        let w: wit::Frame = f.clone().into();
        assert_eq!(w.terms, f.terms);
        assert_eq!(w.attributes, f.attributes);
        assert_eq!(w.flags, wit::FrameFlags::NOT_JSON);
        assert_eq!(tt::Frame::from(w), f);
        let a = tt::TapeAppend::from(wit::TapeAppend {
            id: "t".into(),
            frames: vec![f.clone().into(), f.clone().into()],
        });
        assert_eq!(
            a,
            tt::TapeAppend {
                id: "t".into(),
                frames: vec![f.clone(), f]
            }
        );
    }

    #[test]
    fn envelope_and_seal_pass_unchanged() {
        let header = tt::TapeHeader {
            id: "t".into(),
            session_id: "s".into(),
            name: "n".into(),
            tags: vec![("k".into(), "v".into())],
            created_at_us: 1,
            envelope: Some(vec![0, 1, 0xff]),
        };
        let w: wit::TapeHeader = header.clone().into();
        assert_eq!(w.envelope, header.envelope);
        assert_eq!(tt::TapeHeader::from(w), header);
        let summary = tt::TapeSummary::from(wit::TapeSummary {
            frame_count: 1,
            byte_count: 2,
            ended_at: 3,
            digest: Some("ab".into()),
            seal: Some(vec![9, 8]),
        });
        assert_eq!(summary.seal, Some(vec![9, 8]));
        let info = wit::TapeInfo::from(tt::TapeInfo {
            header,
            state: tt::TapeState::Aborted,
            frame_count: 1,
            byte_count: 2,
            ended_at_us: Some(3),
            digest: summary.digest,
            seal: summary.seal,
        });
        assert_eq!(info.seal, Some(vec![9, 8]));
        assert_eq!(info.header.envelope, Some(vec![0, 1, 0xff]));
        let q = tt::SearchQuery::from(wit::SearchQuery {
            filter: wit::TapeFilter {
                session_id: None,
                name_contains: None,
                tags: Vec::new(),
                created_since: None,
                created_until: None,
                state: None,
            },
            terms: vec!["a".into(), "b".into()],
            text: None,
        });
        assert_eq!(q.terms, ["a", "b"]);
    }
}
