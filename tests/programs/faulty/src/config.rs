//! The provider's configuration: the fs store's settings, fault rules and
//! the tamper mode (see the crate documentation for the schema).

use fs_store::FsConfig;
use serde_json::{Map, Value};
use tapedeck_types::{ErrorKind, StorageError, validate_tape_id};

/// A function of the `tape-storage` interface (including the writer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Init,
    Create,
    Resume,
    NextSeq,
    Append,
    Finish,
    Abort,
    Save,
    AppendMany,
    Get,
    ReadFrames,
    Delete,
    List,
    Search,
    Stats,
}

impl Call {
    const ALL: [Call; 15] = [
        Call::Init,
        Call::Create,
        Call::Resume,
        Call::NextSeq,
        Call::Append,
        Call::Finish,
        Call::Abort,
        Call::Save,
        Call::AppendMany,
        Call::Get,
        Call::ReadFrames,
        Call::Delete,
        Call::List,
        Call::Search,
        Call::Stats,
    ];

    /// The WIT name (`next-seq`, `read-frames`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Init => "init",
            Call::Create => "create",
            Call::Resume => "resume",
            Call::NextSeq => "next-seq",
            Call::Append => "append",
            Call::Finish => "finish",
            Call::Abort => "abort",
            Call::Save => "save",
            Call::AppendMany => "append-many",
            Call::Get => "get",
            Call::ReadFrames => "read-frames",
            Call::Delete => "delete",
            Call::List => "list",
            Call::Search => "search",
            Call::Stats => "stats",
        }
    }

    fn parse(s: &str) -> Option<Call> {
        Call::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Return a storage error of the rule's kind.
    Error,
    /// Panic.
    Trap,
    /// Loop forever without calling the host.
    Spin,
    /// Sleep forever in a WASI call.
    Hang,
    /// Sleep this many milliseconds, then behave correctly.
    Slow(u64),
    /// Acknowledge without doing it (`append`, `finish`); elsewhere `Error`.
    AckThenLose,
    /// A well-typed wrong answer; `Error` where there is none to give.
    Garbage,
}

const FAULTS: &str = "error, trap, spin, hang, slow, ack-then-lose, garbage";

impl Fault {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Trap => "trap",
            Fault::Spin => "spin",
            Fault::Hang => "hang",
            Fault::Slow(_) => "slow",
            Fault::AckThenLose => "ack-then-lose",
            Fault::Garbage => "garbage",
        }
    }
}

/// One fault rule: `fault` on calls `after + 1 ..= after + times` of `call`
/// (every call after `after` when `times` is 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The call it applies to.
    pub call: Call,
    /// What it does.
    pub fault: Fault,
    /// The error kind when it behaves as `error`.
    pub kind: ErrorKind,
    /// Calls that pass untouched first.
    pub after: u64,
    /// Calls it fires on; 0 = every call after `after`.
    pub times: u64,
}

impl Rule {
    /// Does the rule fire on call number `n` (1-based) of its `call`?
    pub fn fires_on(&self, n: u64) -> bool {
        n > self.after && (self.times == 0 || n - self.after <= self.times)
    }

    /// Has the rule fired for the last time once `n` calls were counted?
    pub fn spent_after(&self, n: u64) -> bool {
        self.times != 0 && n >= self.after.saturating_add(self.times)
    }
}

/// How reads of ended tapes are falsified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperMode {
    /// One byte of frame `frame`'s payload changed.
    Alter,
    /// Frame `frame` left out, later frames renumbered.
    Drop,
    /// Frames `frame` and `frame + 1` swap payloads, directions, timestamps.
    Reorder,
    /// An extra frame inserted after frame `frame`, later frames renumbered.
    Add,
    /// The digest reported by `get` / `list` / `search` changed.
    Digest,
    /// As `alter`, with the reported digest recomputed over the tampered
    /// frames.
    Rechain,
    /// The two tapes of [`Tamper::tapes`] exchange everything but their ids.
    Swap,
    /// The reported header's name and tags changed.
    Header,
    /// The reported seal left out.
    Unseal,
}

impl TamperMode {
    /// Every mode.
    pub const ALL: [TamperMode; 9] = [
        TamperMode::Alter,
        TamperMode::Drop,
        TamperMode::Reorder,
        TamperMode::Add,
        TamperMode::Digest,
        TamperMode::Rechain,
        TamperMode::Swap,
        TamperMode::Header,
        TamperMode::Unseal,
    ];

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            TamperMode::Alter => "alter",
            TamperMode::Drop => "drop",
            TamperMode::Reorder => "reorder",
            TamperMode::Add => "add",
            TamperMode::Digest => "digest",
            TamperMode::Rechain => "rechain",
            TamperMode::Swap => "swap",
            TamperMode::Header => "header",
            TamperMode::Unseal => "unseal",
        }
    }

    fn parse(s: &str) -> Option<TamperMode> {
        TamperMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The `tamper` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tamper {
    /// What is falsified.
    pub mode: TamperMode,
    /// The frame it is done to (ignored by `digest`, `swap`, `header` and
    /// `unseal`).
    pub frame: u64,
    /// The two tapes `swap` exchanges: two different valid tape ids, set
    /// for `swap` and only for it.
    pub tapes: Option<[String; 2]>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `root` and `fsync`, as the fs provider takes them.
    pub fs: FsConfig,
    /// Fault rules, in config order (the index is the rule's counter name).
    pub faults: Vec<Rule>,
    /// Tampering with reads of ended tapes, if any.
    pub tamper: Option<Tamper>,
}

fn bad(message: String) -> StorageError {
    StorageError::invalid_input(format!("faulty provider config: {message}"))
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, StorageError> {
    value
        .as_object()
        .ok_or_else(|| bad(format!("\"{what}\" must be a JSON object, got {value}")))
}

fn string<'a>(value: &'a Value, what: &str) -> Result<&'a str, StorageError> {
    value
        .as_str()
        .ok_or_else(|| bad(format!("\"{what}\" must be a string, got {value}")))
}

fn count(value: &Value, what: &str) -> Result<u64, StorageError> {
    value.as_u64().ok_or_else(|| {
        bad(format!(
            "\"{what}\" must be a non-negative integer, got {value}"
        ))
    })
}

/// Parses an error kind (kebab-case, as in WIT).
fn kind(s: &str, what: &str) -> Result<ErrorKind, StorageError> {
    [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidInput,
        ErrorKind::Unsupported,
        ErrorKind::QuotaExceeded,
        ErrorKind::Io,
        ErrorKind::Internal,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .ok_or_else(|| {
        bad(format!(
            "\"{what}\": unknown error kind \"{s}\" (known: io, internal, quota-exceeded, \
             not-found, invalid-input, already-exists, unsupported)"
        ))
    })
}

fn rule(i: usize, value: &Value) -> Result<Rule, StorageError> {
    let at = format!("faults[{i}]");
    let map = object(value, &at)?;
    for key in map.keys() {
        if !["call", "fault", "kind", "after", "times", "ms"].contains(&key.as_str()) {
            return Err(bad(format!(
                "unknown setting \"{at}.{key}\" (known: call, fault, kind, after, times, ms)"
            )));
        }
    }
    let field = |key: &str| {
        map.get(key)
            .ok_or_else(|| bad(format!("\"{at}.{key}\" is missing")))
    };
    let call_name = string(field("call")?, &format!("{at}.call"))?;
    let call = Call::parse(call_name).ok_or_else(|| {
        let known: Vec<&str> = Call::ALL.iter().map(|c| c.as_str()).collect();
        bad(format!(
            "\"{at}.call\": unknown call \"{call_name}\" (known: {})",
            known.join(", ")
        ))
    })?;
    let fault_name = string(field("fault")?, &format!("{at}.fault"))?;
    let fault = match fault_name {
        "error" => Fault::Error,
        "trap" => Fault::Trap,
        "spin" => Fault::Spin,
        "hang" => Fault::Hang,
        "slow" => Fault::Slow(count(field("ms")?, &format!("{at}.ms"))?),
        "ack-then-lose" => Fault::AckThenLose,
        "garbage" => Fault::Garbage,
        other => {
            return Err(bad(format!(
                "\"{at}.fault\": unknown fault \"{other}\" (known: {FAULTS})"
            )));
        }
    };
    if map.contains_key("ms") && !matches!(fault, Fault::Slow(_)) {
        return Err(bad(format!(
            "\"{at}.ms\" only applies to fault \"slow\", not \"{fault_name}\""
        )));
    }
    let may_error = matches!(fault, Fault::Error | Fault::AckThenLose | Fault::Garbage);
    if map.contains_key("kind") && !may_error {
        return Err(bad(format!(
            "\"{at}.kind\" only applies to faults error, ack-then-lose and garbage, not \"{fault_name}\""
        )));
    }
    if call == Call::NextSeq && matches!(fault, Fault::Error | Fault::AckThenLose) {
        return Err(bad(format!(
            "\"{at}\": next-seq cannot return an error, so fault \"{fault_name}\" is not possible \
             there (use trap, spin, hang, slow or garbage)"
        )));
    }
    let kind = match map.get("kind") {
        Some(v) => kind(string(v, &format!("{at}.kind"))?, &format!("{at}.kind"))?,
        None => ErrorKind::Io,
    };
    let after = match map.get("after") {
        Some(v) => count(v, &format!("{at}.after"))?,
        None => 0,
    };
    let times = match map.get("times") {
        Some(v) => count(v, &format!("{at}.times"))?,
        None => 1,
    };
    Ok(Rule {
        call,
        fault,
        kind,
        after,
        times,
    })
}

/// Parses `tamper.tapes`: exactly two different valid tape ids.
fn tape_pair(value: &Value) -> Result<[String; 2], StorageError> {
    let expected = || {
        bad(format!(
            "\"tamper.tapes\" must be an array of exactly two tape ids, e.g. [\"A\", \"B\"], \
             got {value}"
        ))
    };
    let Some([a, b]) = value.as_array().map(Vec::as_slice) else {
        return Err(expected());
    };
    let (Some(a), Some(b)) = (a.as_str(), b.as_str()) else {
        return Err(expected());
    };
    for id in [a, b] {
        validate_tape_id(id).map_err(|e| bad(format!("\"tamper.tapes\": {e}")))?;
    }
    if a == b {
        return Err(bad(format!(
            "\"tamper.tapes\" must name two different tapes, got {value}"
        )));
    }
    Ok([a.to_owned(), b.to_owned()])
}

fn tamper(value: &Value) -> Result<Tamper, StorageError> {
    let map = object(value, "tamper")?;
    for key in map.keys() {
        if !["mode", "frame", "tapes"].contains(&key.as_str()) {
            return Err(bad(format!(
                "unknown setting \"tamper.{key}\" (known: mode, frame, tapes)"
            )));
        }
    }
    let mode_value = map
        .get("mode")
        .ok_or_else(|| bad("\"tamper.mode\" is missing".into()))?;
    let mode_name = string(mode_value, "tamper.mode")?;
    let mode = TamperMode::parse(mode_name).ok_or_else(|| {
        let known: Vec<&str> = TamperMode::ALL.iter().map(|m| m.as_str()).collect();
        bad(format!(
            "\"tamper.mode\": unknown mode \"{mode_name}\" (known: {})",
            known.join(", ")
        ))
    })?;
    let frame = match map.get("frame") {
        Some(v) => count(v, "tamper.frame")?,
        None => 0,
    };
    let tapes = match (map.get("tapes"), mode) {
        (Some(v), TamperMode::Swap) => Some(tape_pair(v)?),
        (None, TamperMode::Swap) => {
            return Err(bad(
                "\"tamper.tapes\" is missing: mode \"swap\" needs the two tapes to swap, \
                 e.g. \"tapes\": [\"A\", \"B\"]"
                    .into(),
            ));
        }
        (Some(_), _) => {
            return Err(bad(format!(
                "\"tamper.tapes\" only applies to mode \"swap\", not \"{mode_name}\""
            )));
        }
        (None, _) => None,
    };
    Ok(Tamper { mode, frame, tapes })
}

impl Config {
    /// Parses the provider's `config` JSON object. `root` and `fsync` are
    /// checked by [`FsConfig::from_json`]; anything invalid is
    /// `invalid-input` naming the key (and the value).
    pub fn from_json(json: &str) -> Result<Config, StorageError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(bad(format!("must be a JSON object, got {value}")));
        };
        let mut fs = Map::new();
        let mut faults = Vec::new();
        let mut tamper_setting = None;
        for (key, value) in map {
            match key.as_str() {
                "root" | "fsync" => {
                    fs.insert(key, value);
                }
                "faults" => {
                    let Value::Array(rules) = &value else {
                        return Err(bad(format!("\"faults\" must be an array, got {value}")));
                    };
                    faults = rules
                        .iter()
                        .enumerate()
                        .map(|(i, r)| rule(i, r))
                        .collect::<Result<_, _>>()?;
                }
                "tamper" => {
                    if !value.is_null() {
                        tamper_setting = Some(tamper(&value)?);
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown setting \"{other}\" (known: root, fsync, faults, tamper)"
                    )));
                }
            }
        }
        let fs = FsConfig::from_json(&Value::Object(fs).to_string())?;
        Ok(Config {
            fs,
            faults,
            tamper: tamper_setting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_documented_example_parses() {
        let c = Config::from_json(
            r#"{
                "root": "/tapes",
                "faults": [
                    {"call": "append", "fault": "trap", "after": 2, "times": 1},
                    {"call": "get", "fault": "error", "kind": "io", "after": 0, "times": 0},
                    {"call": "finish", "fault": "slow", "ms": 300}
                ],
                "tamper": {"mode": "alter", "frame": 3}
            }"#,
        )
        .unwrap();
        assert_eq!(c.fs.root, PathBuf::from("/tapes"));
        assert!(c.fs.fsync);
        assert_eq!(c.faults.len(), 3);
        assert_eq!(
            c.faults[0],
            Rule {
                call: Call::Append,
                fault: Fault::Trap,
                kind: ErrorKind::Io,
                after: 2,
                times: 1
            }
        );
        assert_eq!(c.faults[1].times, 0);
        assert_eq!(c.faults[2].fault, Fault::Slow(300));
        assert_eq!(c.faults[2].after, 0);
        assert_eq!(c.faults[2].times, 1);
        assert_eq!(
            c.tamper,
            Some(Tamper {
                mode: TamperMode::Alter,
                frame: 3,
                tapes: None
            })
        );
    }

    #[test]
    fn defaults() {
        let c = Config::from_json("{}").unwrap();
        assert_eq!(c.fs, FsConfig::default());
        assert!(c.faults.is_empty());
        assert!(c.tamper.is_none());
        let c = Config::from_json(
            r#"{"fsync": false, "tamper": {"mode": "digest"},
                "faults": [{"call": "read-frames", "fault": "garbage", "kind": "internal"}]}"#,
        )
        .unwrap();
        assert!(!c.fs.fsync);
        assert_eq!(c.tamper.unwrap().frame, 0);
        assert_eq!(c.faults[0].call, Call::ReadFrames);
        assert_eq!(c.faults[0].kind, ErrorKind::Internal);
    }

    #[test]
    fn every_call_name_parses() {
        for call in Call::ALL {
            let json = format!(
                r#"{{"faults":[{{"call":"{}","fault":"trap"}}]}}"#,
                call.as_str()
            );
            assert_eq!(Config::from_json(&json).unwrap().faults[0].call, call);
        }
    }

    #[test]
    fn invalid_settings_are_named() {
        for (json, needle) in [
            (r#"{"roots":"/x"}"#, "\"roots\""),
            (r#"{"root":7}"#, "\"root\""),
            (r#"{"faults":{}}"#, "\"faults\""),
            (
                r#"{"faults":[{"call":"apend","fault":"trap"}]}"#,
                "\"apend\"",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"explode"}]}"#,
                "\"explode\"",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"error","kind":"disk"}]}"#,
                "\"disk\"",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"error","kind":3}]}"#,
                "faults[0].kind",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"error","often":3}]}"#,
                "faults[0].often",
            ),
            (r#"{"faults":[{"fault":"error"}]}"#, "faults[0].call"),
            (r#"{"faults":[{"call":"get"}]}"#, "faults[0].fault"),
            (
                r#"{"faults":[{"call":"get","fault":"slow"}]}"#,
                "faults[0].ms",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"trap","ms":5}]}"#,
                "faults[0].ms",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"trap","kind":"io"}]}"#,
                "faults[0].kind",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"error","after":-1}]}"#,
                "faults[0].after",
            ),
            (
                r#"{"faults":[{"call":"get","fault":"error","times":"2"}]}"#,
                "faults[0].times",
            ),
            (
                r#"{"faults":[{"call":"next-seq","fault":"error"}]}"#,
                "next-seq",
            ),
            (r#"{"faults":[1]}"#, "faults[0]"),
            (r#"{"tamper":{"mode":"shred"}}"#, "\"shred\""),
            (r#"{"tamper":{"frame":1}}"#, "tamper.mode"),
            (r#"{"tamper":{"mode":"drop","frames":1}}"#, "tamper.frames"),
            (r#"{"tamper":{"mode":"drop","frame":1.5}}"#, "tamper.frame"),
            (r#"{"tamper":"drop"}"#, "\"tamper\""),
            (r#"{"tamper":{"mode":"swap"}}"#, "tamper.tapes"),
            (r#"{"tamper":{"mode":"swap","tapes":"a"}}"#, "tamper.tapes"),
            (r#"{"tamper":{"mode":"swap","tapes":[]}}"#, "tamper.tapes"),
            (
                r#"{"tamper":{"mode":"swap","tapes":["a"]}}"#,
                "tamper.tapes",
            ),
            (
                r#"{"tamper":{"mode":"swap","tapes":["a","b","c"]}}"#,
                "exactly two",
            ),
            (
                r#"{"tamper":{"mode":"swap","tapes":["a",2]}}"#,
                "tamper.tapes",
            ),
            (
                r#"{"tamper":{"mode":"swap","tapes":["a","a"]}}"#,
                "two different",
            ),
            (r#"{"tamper":{"mode":"swap","tapes":["a","../b"]}}"#, "../b"),
            (r#"{"tamper":{"mode":"swap","tapes":["","b"]}}"#, "empty"),
            (
                r#"{"tamper":{"mode":"alter","tapes":["a","b"]}}"#,
                "only applies to mode \"swap\"",
            ),
            (
                r#"{"tamper":{"mode":"unseal","tapes":["a","b"]}}"#,
                "tamper.tapes",
            ),
            ("[]", "JSON object"),
            ("{", "not valid JSON"),
        ] {
            let e = Config::from_json(json).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{json}");
            assert!(e.message.contains(needle), "{json}: {}", e.message);
        }
    }

    #[test]
    fn every_tamper_mode_parses() {
        for mode in TamperMode::ALL {
            let tapes = if mode == TamperMode::Swap {
                r#", "tapes": ["tape-a", "tape_b.2"]"#
            } else {
                ""
            };
            let json = format!(
                r#"{{"tamper": {{"mode": "{}", "frame": 2{tapes}}}}}"#,
                mode.as_str()
            );
            let t = Config::from_json(&json).unwrap().tamper.unwrap();
            assert_eq!((t.mode, t.frame), (mode, 2), "{json}");
            let expected = (mode == TamperMode::Swap).then(|| ["tape-a".into(), "tape_b.2".into()]);
            assert_eq!(t.tapes, expected, "{json}");
        }
        let t = Config::from_json(r#"{"tamper": {"mode": "swap", "tapes": ["b", "a"]}}"#)
            .unwrap()
            .tamper
            .unwrap();
        assert_eq!(t.frame, 0);
        assert_eq!(t.tapes, Some(["b".into(), "a".into()]));
    }

    #[test]
    fn an_unknown_mode_lists_every_mode() {
        let e = Config::from_json(r#"{"tamper": {"mode": "shred"}}"#).unwrap_err();
        for name in [
            "alter", "drop", "reorder", "add", "digest", "rechain", "swap", "header", "unseal",
        ] {
            assert!(e.message.contains(name), "{name}: {}", e.message);
        }
    }

    #[test]
    fn firing_window() {
        let rule = |after, times| Rule {
            call: Call::Get,
            fault: Fault::Error,
            kind: ErrorKind::Io,
            after,
            times,
        };
        let fired = |r: &Rule| (1..=8).filter(|&n| r.fires_on(n)).collect::<Vec<_>>();
        assert_eq!(fired(&rule(0, 1)), [1]);
        assert_eq!(fired(&rule(2, 1)), [3]);
        assert_eq!(fired(&rule(2, 3)), [3, 4, 5]);
        assert_eq!(fired(&rule(0, 0)), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(fired(&rule(5, 0)), [6, 7, 8]);
        assert!(!rule(2, 3).spent_after(4));
        assert!(rule(2, 3).spent_after(5));
        assert!(!rule(2, 0).spent_after(1_000));
    }
}
