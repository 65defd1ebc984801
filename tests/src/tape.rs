//! [`Tape`]: a tape built in a test, written as the JSONL that `tapedeck
//! export` writes (with the library's own `JsonlWriter`) and put in place
//! with `tapedeck import` ([`Tapedeck::import`](crate::cli::Tapedeck::import)).

use std::path::Path;
use tapedeck::jsonl::JsonlWriter;
use tapedeck::recorder::DigestChain;
use tapedeck::types::{Frame, TapeHeader, TapeState, TapeSummary};

/// 2026-11-24T10:00:00Z, in microseconds: when the tests' tapes begin.
pub const T0: u64 = 1_795_514_400_000_000;

/// A tape to import: its header, its frames, the state it ended in and when.
#[derive(Clone, Debug)]
pub struct Tape {
    /// The header (its `id` names the file [`Tape::write`] writes).
    pub header: TapeHeader,
    /// The frames, in order.
    pub frames: Vec<Frame>,
    /// How it ended.
    pub state: TapeState,
    /// When it ended, in microseconds.
    pub ended_at_us: u64,
}

impl Tape {
    /// `frames` under `header`, finished `duration_us` after it was created.
    pub fn new(header: TapeHeader, frames: Vec<Frame>, duration_us: u64) -> Tape {
        Tape {
            ended_at_us: header.created_at_us + duration_us,
            header,
            frames,
            state: TapeState::Finished,
        }
    }

    /// Its end line's totals, with the digest chain over its frames.
    pub fn summary(&self) -> TapeSummary {
        TapeSummary {
            frame_count: self.frames.len() as u64,
            byte_count: self.frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: self.ended_at_us,
            digest: Some(DigestChain::over(&self.frames).hex()),
            seal: None,
        }
    }

    /// The tape as JSONL, ending with [`Tape::summary`].
    pub fn jsonl(&self) -> Vec<u8> {
        self.jsonl_with(&self.summary())
    }

    /// The tape as JSONL, ending with `summary` (which may lie).
    pub fn jsonl_with(&self, summary: &TapeSummary) -> Vec<u8> {
        let mut w = JsonlWriter::new(Vec::new(), &self.header).unwrap();
        for f in &self.frames {
            w.frame(f).unwrap();
        }
        w.finish(self.state, summary).unwrap()
    }

    /// The name of the file [`Tape::write`] writes: `ID.jsonl`.
    pub fn file_name(&self) -> String {
        format!("{}.jsonl", self.header.id)
    }

    /// Writes [`Tape::jsonl`] to `dir/ID.jsonl`; returns the file name.
    pub fn write(&self, dir: &Path) -> String {
        let name = self.file_name();
        std::fs::write(dir.join(&name), self.jsonl()).unwrap();
        name
    }
}

/// `jsonl` (an export) without what the host adds when it stores a tape:
/// the header's `envelope` and the end line's `seal`. The rest is byte for
/// byte what was exported.
pub fn unsealed(jsonl: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(jsonl.to_vec()).expect("JSONL is UTF-8");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut line = line.to_string();
        let field = if line.starts_with(r#"{"type":"header""#) {
            Some(r#","envelope":""#)
        } else if line.starts_with(r#"{"type":"end""#) {
            Some(r#","seal":""#)
        } else {
            None
        };
        if let Some(field) = field
            && let Some(start) = line.find(field)
        {
            let value = start + field.len();
            let end = value + line[value..].find('"').expect("a closing quote");
            line.replace_range(start..=end, "");
        }
        out.push_str(&line);
    }
    out.into_bytes()
}
