//! How a replay matches, repeats and paces: [`ReplayOptions`], built with
//! documented defaults.

use crate::json::JsonPath;
use serde_json::Value;
use std::time::Duration;

/// How a client message finds its recorded counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    /// The method, and the params compared structurally (member order and
    /// whitespace do not matter) without the ignored members: `_meta` at
    /// any depth (progress tokens, trace context), `params.clientInfo`, and
    /// every `--ignore` path. The default.
    #[default]
    MethodAndParams,
    /// The next recorded client message, whatever it holds.
    Sequential,
    /// Byte for byte, apart from the id.
    Strict,
}

impl Matching {
    /// Parses `method+params`, `sequential` or `strict`.
    pub fn parse(s: &str) -> Result<Matching, String> {
        match s {
            "method+params" => Ok(Matching::MethodAndParams),
            "sequential" => Ok(Matching::Sequential),
            "strict" => Ok(Matching::Strict),
            _ => Err(format!(
                "unknown matching `{s}` (known: method+params, sequential, strict)"
            )),
        }
    }
}

/// What answers a request asked more often than it was recorded, or again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Repeat {
    /// Each recording answers once: the n-th identical request gets the
    /// n-th recorded answer, one more is a miss. The default.
    #[default]
    Once,
    /// As `once`, and requests must also come in the recorded order: a
    /// request whose recording comes after one still unanswered is a miss.
    InOrder,
    /// The recordings of identical requests answer in turn, then from the
    /// first again.
    Cycle,
    /// In turn, then the last recording answers every further request.
    Last,
}

impl Repeat {
    /// Parses `once`, `in-order`, `cycle` or `last`.
    pub fn parse(s: &str) -> Result<Repeat, String> {
        match s {
            "once" => Ok(Repeat::Once),
            "in-order" => Ok(Repeat::InOrder),
            "cycle" => Ok(Repeat::Cycle),
            "last" => Ok(Repeat::Last),
            _ => Err(format!(
                "unknown repeat mode `{s}` (known: once, in-order, cycle, last)"
            )),
        }
    }
}

/// When answers are sent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Timing {
    /// At once. The default.
    #[default]
    Instant,
    /// With the recorded delays divided by this factor (`recorded` is 1,
    /// `x2` twice as fast).
    Scaled(f64),
}

impl Timing {
    /// Parses `instant`, `recorded` or `xN` (N > 0: N times as fast as
    /// recorded).
    pub fn parse(s: &str) -> Result<Timing, String> {
        match s {
            "instant" => Ok(Timing::Instant),
            "recorded" => Ok(Timing::Scaled(1.0)),
            _ => match s.strip_prefix('x').and_then(|f| f.parse::<f64>().ok()) {
                Some(f) if f > 0.0 && f.is_finite() => Ok(Timing::Scaled(f)),
                _ => Err(format!(
                    "unknown timing `{s}` (known: instant, recorded, xN such as x2 or x0.5)"
                )),
            },
        }
    }

    /// The delay to wait for a recorded gap of `recorded_us`.
    pub fn delay(self, recorded_us: u64) -> Duration {
        match self {
            Timing::Instant => Duration::ZERO,
            Timing::Scaled(f) => Duration::from_secs_f64(recorded_us as f64 / 1e6 / f),
        }
    }
}

/// How a replay behaves. `ReplayOptions::default()` matches by method and
/// params, answers each recording once, at once.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// How client messages are matched (default: method and params).
    pub matching: Matching,
    /// What repeated requests get (default: each recording once).
    pub repeat: Repeat,
    /// When answers are sent (default: at once).
    pub timing: Timing,
    /// Members left out of the comparison, besides `_meta` and
    /// `params.clientInfo` (default: none).
    pub ignore: Vec<JsonPath>,
}

impl ReplayOptions {
    /// Sets the matching.
    pub fn matching(mut self, m: Matching) -> Self {
        self.matching = m;
        self
    }

    /// Sets the repeat mode.
    pub fn repeat(mut self, r: Repeat) -> Self {
        self.repeat = r;
        self
    }

    /// Sets the timing.
    pub fn timing(mut self, t: Timing) -> Self {
        self.timing = t;
        self
    }

    /// `message` as it is compared: without its `id` and `jsonrpc`,
    /// without `_meta` at any depth, without the `ignore` paths (the one
    /// normalization of matching, drift checks and tape diffs).
    pub fn comparable(&self, mut message: Value) -> Value {
        if let Value::Object(map) = &mut message {
            map.remove("id");
            map.remove("jsonrpc");
        }
        crate::json::remove_everywhere(&mut message, "_meta");
        for p in &self.ignore {
            p.remove_from(&mut message);
        }
        message
    }

    /// Adds a path left out of the comparison.
    pub fn ignore(mut self, path: JsonPath) -> Self {
        self.ignore.push(path);
        self
    }
}
