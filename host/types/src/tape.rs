//! Tapes, frames and the records that describe them.

use serde::{Deserialize, Serialize};

/// Which way a frame travelled through the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the MCP client to the MCP server.
    ClientToServer,
    /// From the MCP server to the MCP client.
    ServerToClient,
}

impl Direction {
    /// Short form used in listings and the JSONL format: `c2s` or `s2c`.
    pub fn as_short(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    /// Parses [`Direction::as_short`] output.
    pub fn from_short(s: &str) -> Option<Self> {
        match s {
            "c2s" => Some(Direction::ClientToServer),
            "s2c" => Some(Direction::ServerToClient),
            _ => None,
        }
    }
}

/// One message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Position in the tape, from 0, without gaps.
    pub seq: u64,
    /// When the recorder read it, in µs since the Unix epoch.
    pub timestamp_us: u64,
    /// Which way it travelled.
    pub direction: Direction,
    /// The message bytes, verbatim, without the line terminator.
    pub payload: Vec<u8>,
    /// The payload is not valid JSON.
    pub not_json: bool,
    /// Index terms the host derived from the payload ([`crate::terms`]),
    /// stored verbatim and matched by equality in a search.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// Facts the host records about the frame, stored verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
}

impl Frame {
    /// A frame with no terms and no attributes.
    pub fn new(
        seq: u64,
        timestamp_us: u64,
        direction: Direction,
        payload: Vec<u8>,
        not_json: bool,
    ) -> Frame {
        Frame {
            seq,
            timestamp_us,
            direction,
            payload,
            not_json,
            terms: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// What is known about a tape when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeHeader {
    /// The tape's id (see [`crate::validate_tape_id`]).
    pub id: String,
    /// The MCP session recorded (may be empty).
    pub session_id: String,
    /// A human-readable name (may be empty).
    pub name: String,
    /// Key/value tags, in order.
    pub tags: Vec<(String, String)>,
    /// When the recording started, in µs since the Unix epoch.
    pub created_at_us: u64,
    /// The host's envelope for the tape, stored verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Vec<u8>>,
}

/// The lifecycle state of a tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TapeState {
    /// Frames may still arrive.
    Recording,
    /// Every frame is stored durably.
    Finished,
    /// Abandoned; the frames received so far are kept.
    Aborted,
    /// Closed by crash recovery.
    Crashed,
}

impl TapeState {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TapeState::Recording => "recording",
            TapeState::Finished => "finished",
            TapeState::Aborted => "aborted",
            TapeState::Crashed => "crashed",
        }
    }

    /// Parses [`TapeState::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        [
            TapeState::Recording,
            TapeState::Finished,
            TapeState::Aborted,
            TapeState::Crashed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// How a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The session ended normally.
    Completed,
    /// Recovery closed the tape after a recorder crash.
    Crashed,
    /// The recording was abandoned.
    Aborted,
}

impl EndReason {
    /// The state a tape ends in for this reason.
    pub fn end_state(self) -> TapeState {
        match self {
            EndReason::Completed => TapeState::Finished,
            EndReason::Crashed => TapeState::Crashed,
            EndReason::Aborted => TapeState::Aborted,
        }
    }

    /// The reason that leads to `state`, if `state` is an end state.
    pub fn for_state(state: TapeState) -> Option<Self> {
        match state {
            TapeState::Recording => None,
            TapeState::Finished => Some(EndReason::Completed),
            TapeState::Crashed => Some(EndReason::Crashed),
            TapeState::Aborted => Some(EndReason::Aborted),
        }
    }
}

/// Totals computed by the host while recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeSummary {
    /// Number of frames.
    pub frame_count: u64,
    /// Sum of payload lengths.
    pub byte_count: u64,
    /// When the recording ended, in µs since the Unix epoch.
    pub ended_at_us: u64,
    /// The host's integrity digest (lowercase hex), stored verbatim.
    pub digest: Option<String>,
    /// The host's seal over the tape, stored verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Vec<u8>>,
}

/// Everything known about a tape, without its frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeInfo {
    /// The header, unchanged.
    pub header: TapeHeader,
    /// Current state.
    pub state: TapeState,
    /// Frames stored so far.
    pub frame_count: u64,
    /// Payload bytes stored so far.
    pub byte_count: u64,
    /// When the tape ended; `None` while recording.
    pub ended_at_us: Option<u64>,
    /// The digest given at finish or save.
    pub digest: Option<String>,
    /// The seal given at finish or save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Vec<u8>>,
}

/// Frames for one tape, in an `append_many` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeAppend {
    /// The tape, which must be recording.
    pub id: String,
    /// The frames, as for an append on its writer.
    pub frames: Vec<Frame>,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TapePage {
    /// The tapes on this page.
    pub tapes: Vec<TapeInfo>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Totals over all tapes of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StorageStats {
    /// Tapes in any state.
    pub tape_count: u64,
    /// Tapes still recording.
    pub recording_count: u64,
    /// Frames over all tapes.
    pub frame_count: u64,
    /// Payload bytes over all tapes.
    pub byte_count: u64,
    /// Bytes used in the backend, including overhead.
    pub stored_bytes: u64,
}

/// Optional features a provider implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// `delete` is implemented.
    pub delete: bool,
    /// `search` is implemented, with the terms condition.
    pub search: bool,
    /// `search` implements the text condition.
    pub text_search: bool,
}

impl Capabilities {
    /// Names of the declared capabilities, e.g. `["delete", "search"]`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.delete {
            out.push("delete");
        }
        if self.search {
            out.push("search");
        }
        if self.text_search {
            out.push("text-search");
        }
        out
    }
}

/// What `init` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's name.
    pub name: String,
    /// The provider's version.
    pub version: String,
    /// Optional features implemented.
    pub capabilities: Capabilities,
}
