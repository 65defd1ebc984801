//! Conversions between the host model (`tapedeck_types`) and the
//! component-model types generated from the WIT contract.

use super::bindings::wit;
use tapedeck_store::text::{self, MAX_ERROR_MESSAGE};
use tapedeck_types as m;

pub(crate) fn frame_to_wit(f: &m::Frame) -> wit::Frame {
    wit::Frame {
        seq: f.seq,
        timestamp: f.timestamp_us,
        direction: direction_to_wit(f.direction),
        payload: f.payload.clone(),
        flags: if f.not_json {
            wit::FrameFlags::NOT_JSON
        } else {
            wit::FrameFlags::empty()
        },
        terms: f.terms.clone(),
        attributes: f.attributes.clone(),
    }
}

pub(crate) fn frame_from_wit(f: wit::Frame) -> m::Frame {
    m::Frame {
        seq: f.seq,
        timestamp_us: f.timestamp,
        direction: match f.direction {
            wit::Direction::ClientToServer => m::Direction::ClientToServer,
            wit::Direction::ServerToClient => m::Direction::ServerToClient,
        },
        payload: f.payload,
        not_json: f.flags.contains(wit::FrameFlags::NOT_JSON),
        terms: f.terms,
        attributes: f.attributes,
    }
}

fn direction_to_wit(d: m::Direction) -> wit::Direction {
    match d {
        m::Direction::ClientToServer => wit::Direction::ClientToServer,
        m::Direction::ServerToClient => wit::Direction::ServerToClient,
    }
}

pub(crate) fn header_to_wit(h: &m::TapeHeader) -> wit::TapeHeader {
    wit::TapeHeader {
        id: h.id.clone(),
        session_id: h.session_id.clone(),
        name: h.name.clone(),
        tags: h.tags.clone(),
        created_at: h.created_at_us,
        envelope: h.envelope.clone(),
    }
}

fn header_from_wit(h: wit::TapeHeader) -> m::TapeHeader {
    m::TapeHeader {
        id: h.id,
        session_id: h.session_id,
        name: h.name,
        tags: h.tags,
        created_at_us: h.created_at,
        envelope: h.envelope,
    }
}

fn state_to_wit(s: m::TapeState) -> wit::TapeState {
    match s {
        m::TapeState::Recording => wit::TapeState::Recording,
        m::TapeState::Finished => wit::TapeState::Finished,
        m::TapeState::Aborted => wit::TapeState::Aborted,
        m::TapeState::Crashed => wit::TapeState::Crashed,
    }
}

fn state_from_wit(s: wit::TapeState) -> m::TapeState {
    match s {
        wit::TapeState::Recording => m::TapeState::Recording,
        wit::TapeState::Finished => m::TapeState::Finished,
        wit::TapeState::Aborted => m::TapeState::Aborted,
        wit::TapeState::Crashed => m::TapeState::Crashed,
    }
}

pub(crate) fn reason_to_wit(r: m::EndReason) -> wit::EndReason {
    match r {
        m::EndReason::Completed => wit::EndReason::Completed,
        m::EndReason::Crashed => wit::EndReason::Crashed,
        m::EndReason::Aborted => wit::EndReason::Aborted,
    }
}

pub(crate) fn summary_to_wit(s: &m::TapeSummary) -> wit::TapeSummary {
    wit::TapeSummary {
        frame_count: s.frame_count,
        byte_count: s.byte_count,
        ended_at: s.ended_at_us,
        digest: s.digest.clone(),
        seal: s.seal.clone(),
    }
}

pub(crate) fn info_from_wit(i: wit::TapeInfo) -> m::TapeInfo {
    m::TapeInfo {
        header: header_from_wit(i.header),
        state: state_from_wit(i.state),
        frame_count: i.frame_count,
        byte_count: i.byte_count,
        ended_at_us: i.ended_at,
        digest: i.digest,
        seal: i.seal,
    }
}

pub(crate) fn filter_to_wit(f: &m::TapeFilter) -> wit::TapeFilter {
    wit::TapeFilter {
        session_id: f.session_id.clone(),
        name_contains: f.name_contains.clone(),
        tags: f.tags.clone(),
        created_since: f.created_since_us,
        created_until: f.created_until_us,
        state: f.state.map(state_to_wit),
    }
}

pub(crate) fn query_to_wit(q: &m::SearchQuery) -> wit::SearchQuery {
    wit::SearchQuery {
        filter: filter_to_wit(&q.filter),
        terms: q.terms.clone(),
        text: q.text.clone(),
    }
}

pub(crate) fn page_from_wit(p: wit::TapePage) -> m::TapePage {
    m::TapePage {
        tapes: p.tapes.into_iter().map(info_from_wit).collect(),
        next_cursor: p.next_cursor,
    }
}

pub(crate) fn stats_from_wit(s: wit::StorageStats) -> m::StorageStats {
    m::StorageStats {
        tape_count: s.tape_count,
        recording_count: s.recording_count,
        frame_count: s.frame_count,
        byte_count: s.byte_count,
        stored_bytes: s.stored_bytes,
    }
}

pub(crate) fn info_to_model(p: wit::ProviderInfo) -> m::ProviderInfo {
    m::ProviderInfo {
        name: p.name,
        version: p.version,
        capabilities: m::Capabilities {
            delete: p.capabilities.contains(wit::Capabilities::DELETE),
            search: p.capabilities.contains(wit::Capabilities::SEARCH),
            text_search: p.capabilities.contains(wit::Capabilities::TEXT_SEARCH),
        },
    }
}

/// A provider's `storage-error` as the host's [`m::StorageError`]. The
/// message is provider text on its way to logs and terminals: control
/// characters are escaped and it is cut at [`MAX_ERROR_MESSAGE`] bytes
/// (`… (N bytes cut)`), here, once, for every caller.
pub(crate) fn error_from_wit(e: wit::StorageError) -> m::StorageError {
    use m::ErrorKind as K;
    let (kind, msg) = match e {
        wit::StorageError::NotFound(s) => (K::NotFound, s),
        wit::StorageError::AlreadyExists(s) => (K::AlreadyExists, s),
        wit::StorageError::InvalidInput(s) => (K::InvalidInput, s),
        wit::StorageError::Unsupported(s) => (K::Unsupported, s),
        wit::StorageError::QuotaExceeded(s) => (K::QuotaExceeded, s),
        wit::StorageError::Io(s) => (K::Io, s),
        wit::StorageError::Internal(s) => (K::Internal, s),
    };
    m::StorageError::new(kind, text::bounded(&msg, MAX_ERROR_MESSAGE))
}
