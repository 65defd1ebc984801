//! The replay engine: a tape indexed once, then each client message matched
//! in constant time (a hash of its normalized form) and answered with what
//! the server sent, ids rewritten to the client's.
//!
//! Which recorded server messages a client message releases: a response to
//! recorded request R goes out once R was matched and every answer the
//! client gave to a server request between R and that response (a sampling
//! or elicitation round trip inside the call) was received; any other
//! server message (a notification, progress, a server request) goes out
//! once the client message recorded just before it was matched. So
//! server-initiated traffic comes where it came, and concurrent requests
//! recorded interleaved do not wait for each other.

use crate::json::{self, Difference, canonical};
use crate::options::{Matching, Repeat, ReplayOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tapedeck_types::{Direction, Frame};

/// One message the replay sends to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The recorded bytes (a response with the client's id), no newline.
    pub bytes: Vec<u8>,
    /// How long to wait before sending it (zero unless timing says so).
    pub delay: Duration,
    /// The recorded frame's sequence number.
    pub seq: u64,
}

/// What a client message was, as the replay understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A request: its id (JSON text) and method.
    Request { id: String, method: String },
    /// A notification: its method.
    Notification { method: String },
    /// An answer to a server request: its id (JSON text).
    Answer { id: String },
    /// Not a JSON-RPC message (not JSON, a batch, no method and no id):
    /// matched by its exact bytes.
    Other,
}

struct Parsed {
    kind: Kind,
    /// The message without what matching ignores (`None`: not JSON).
    normalized: Option<Value>,
}

/// A recorded client message.
struct Recorded {
    seq: u64,
    timestamp_us: u64,
    kind: Kind,
    normalized: Option<Value>,
    /// How often it was matched.
    used: u32,
    /// The client's id at its latest match (for its responses).
    client_id: Option<String>,
    /// Server messages it takes part in releasing.
    releases: Vec<usize>,
}

/// A recorded server message.
struct ServerMessage {
    seq: u64,
    timestamp_us: u64,
    bytes: Vec<u8>,
    /// For a response: the recorded request (index into `client`).
    answers: Option<usize>,
    /// Client messages still to be matched before it goes out.
    waiting_for: usize,
    sent: bool,
}

/// A client message that matched nothing.
#[derive(Debug, Clone)]
pub struct Miss {
    /// What it was (`tools/call` request id 7, …), for people.
    pub what: String,
    /// Why nothing matched.
    pub why: String,
    /// The nearest recorded candidates, best first: (seq, what, where it
    /// differs).
    pub candidates: Vec<(u64, String, Vec<Difference>)>,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no match for {}: {}", self.what, self.why)?;
        if self.candidates.is_empty() {
            return write!(f, "\n  (no recorded candidate)");
        }
        for (seq, what, differences) in &self.candidates {
            write!(f, "\n  nearest: frame {seq}, {what}")?;
            for d in differences {
                write!(f, "\n    {d}")?;
            }
        }
        Ok(())
    }
}

/// What a whole replay came to.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Client requests answered from the tape.
    pub answered: u64,
    /// Client messages that matched nothing.
    pub misses: Vec<Miss>,
    /// Recorded client requests never asked: (seq, what).
    pub unused: Vec<(u64, String)>,
}

impl Report {
    /// No miss, and (with `require_all`) every recorded request asked.
    pub fn clean(&self, require_all: bool) -> bool {
        self.misses.is_empty() && (!require_all || self.unused.is_empty())
    }
}

/// Why a tape cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The tape holds no client request: nothing to answer.
    #[error("the tape holds no client request, so there is nothing to replay")]
    Empty,
    /// Reading or writing the client's stream failed.
    #[error("the client's stream: {0}")]
    Io(#[from] std::io::Error),
}

/// A tape ready to answer a client.
pub struct Replayer {
    options: ReplayOptions,
    client: Vec<Recorded>,
    server: Vec<ServerMessage>,
    /// Matching key -> recorded client messages with that key, in order.
    by_key: HashMap<String, Vec<usize>>,
    /// Matching key -> how many times it was asked.
    asked: HashMap<String, usize>,
    /// Next recorded message for `Matching::Sequential`, per kind.
    next_in_sequence: [usize; 4],
    /// Server messages to send before the client says anything.
    opening: Vec<usize>,
    answered: u64,
    misses: Vec<Miss>,
    /// Applied to each client message before it is matched (redaction).
    incoming: Option<Incoming>,
    /// Applied to each recorded message before it is sent (secrets put
    /// back).
    outgoing: Option<Incoming>,
}

/// A transformation of each client message before matching.
type Incoming = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

fn parse(bytes: &[u8], options: &ReplayOptions) -> Parsed {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Parsed {
            kind: Kind::Other,
            normalized: None,
        };
    };
    let method = value
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = value
        .get("id")
        .filter(|id| !id.is_null() || method.is_none())
        .map(canonical);
    let kind = match (method, id) {
        (Some(method), Some(id)) => Kind::Request { id, method },
        (Some(method), None) => Kind::Notification { method },
        (None, Some(id)) if value.is_object() => Kind::Answer { id },
        _ => Kind::Other,
    };
    let mut normalized = options.comparable(value);
    // The client's name and version: another client asks the same.
    if let Some(Value::Object(params)) = normalized.get_mut("params") {
        params.remove("clientInfo");
    }
    Parsed {
        kind,
        normalized: Some(normalized),
    }
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Request { id, method } => format!("`{method}` request (id {id})"),
        Kind::Notification { method } => format!("`{method}` notification"),
        Kind::Answer { id } => format!("answer to server request {id}"),
        Kind::Other => "a line that is not a JSON-RPC message".to_string(),
    }
}

fn kind_slot(kind: &Kind) -> usize {
    match kind {
        Kind::Request { .. } => 0,
        Kind::Notification { .. } => 1,
        Kind::Answer { .. } => 2,
        Kind::Other => 3,
    }
}

impl Replayer {
    /// Indexes `frames` (the traffic of a whole tape, in order: without
    /// the host's own event frames, which `tapedeck::replay::load` leaves
    /// out) for replay.
    pub fn new(frames: &[Frame], options: ReplayOptions) -> Result<Replayer, ReplayError> {
        let mut r = Replayer {
            options,
            client: Vec::new(),
            server: Vec::new(),
            by_key: HashMap::new(),
            asked: HashMap::new(),
            next_in_sequence: [0; 4],
            opening: Vec::new(),
            answered: 0,
            misses: Vec::new(),
            incoming: None,
            outgoing: None,
        };
        // Recorded request id -> its index in `client` (the latest one).
        let mut requests: HashMap<String, usize> = HashMap::new();
        // Client answers to server requests, in order (index in `client`).
        let mut answers: Vec<usize> = Vec::new();
        for frame in frames {
            match frame.direction {
                Direction::ClientToServer => {
                    let parsed = parse(&frame.payload, &r.options);
                    let index = r.client.len();
                    if let Some(key) = r.key(&parsed, &frame.payload) {
                        r.by_key.entry(key).or_default().push(index);
                    }
                    match &parsed.kind {
                        Kind::Request { id, .. } => {
                            requests.insert(id.clone(), index);
                        }
                        Kind::Answer { .. } => answers.push(index),
                        _ => {}
                    }
                    r.client.push(Recorded {
                        seq: frame.seq,
                        timestamp_us: frame.timestamp_us,
                        kind: parsed.kind,
                        normalized: parsed.normalized,
                        used: 0,
                        client_id: None,
                        releases: Vec::new(),
                    });
                }
                Direction::ServerToClient => {
                    let index = r.server.len();
                    let parsed = parse(&frame.payload, &r.options);
                    let request = match &parsed.kind {
                        Kind::Answer { id } => requests.get(id).copied(),
                        _ => None,
                    };
                    let triggers: Vec<usize> = match request {
                        // The request, and the client's answers to server
                        // requests made while it ran.
                        Some(req) => std::iter::once(req)
                            .chain(answers.iter().copied().filter(|a| *a > req))
                            .collect(),
                        // What the client said last.
                        None => r.client.len().checked_sub(1).into_iter().collect(),
                    };
                    for t in &triggers {
                        r.client[*t].releases.push(index);
                    }
                    if triggers.is_empty() {
                        r.opening.push(index);
                    }
                    r.server.push(ServerMessage {
                        seq: frame.seq,
                        timestamp_us: frame.timestamp_us,
                        bytes: frame.payload.clone(),
                        answers: request,
                        waiting_for: triggers.len(),
                        sent: false,
                    });
                }
            }
        }
        if !r
            .client
            .iter()
            .any(|c| matches!(c.kind, Kind::Request { .. }))
        {
            return Err(ReplayError::Empty);
        }
        Ok(r)
    }

    /// The matching key of a message (`None`: it cannot be matched by key).
    fn key(&self, parsed: &Parsed, bytes: &[u8]) -> Option<String> {
        match (&parsed.kind, self.options.matching) {
            // An answer to a server request is matched by its id: the
            // replay sent that request with the recorded id.
            (Kind::Answer { id }, _) => Some(format!("answer {id}")),
            // A line that is not JSON-RPC is matched by its bytes.
            (Kind::Other, _) => Some(format!(
                "raw {}",
                String::from_utf8_lossy(bytes.trim_ascii())
            )),
            (_, Matching::Sequential) => None,
            (_, Matching::Strict) => {
                let without_id = json::with_id(bytes, "null").unwrap_or_else(|| bytes.to_vec());
                Some(format!(
                    "strict {}",
                    String::from_utf8_lossy(without_id.trim_ascii())
                ))
            }
            (_, Matching::MethodAndParams) => parsed.normalized.as_ref().map(canonical),
        }
    }

    /// Applies `f` to each client message before matching it (the host
    /// redacts requests with the rules the tape was recorded with, so that
    /// a request carrying a real secret matches its recorded placeholder).
    pub fn with_incoming(mut self, f: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.incoming = Some(Box::new(f));
        self
    }

    /// Applies `f` to each recorded message before it is sent (the host
    /// puts real values back in place of redaction placeholders,
    /// `--secret`).
    pub fn with_outgoing(mut self, f: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.outgoing = Some(Box::new(f));
        self
    }

    /// What to send before the client says anything (a server that speaks
    /// first).
    pub fn opening(&mut self) -> Vec<Outgoing> {
        let ready = std::mem::take(&mut self.opening);
        self.send(ready, None)
    }

    /// Answers one client message (a line, without its newline): the
    /// recorded server messages it releases, or, for a request that matches
    /// nothing, a JSON-RPC error (and the miss is kept for the report).
    pub fn handle(&mut self, line: &[u8]) -> Vec<Outgoing> {
        let transformed = self.incoming.as_ref().map(|f| f(line));
        let line = transformed.as_deref().unwrap_or(line);
        let parsed = parse(line, &self.options);
        match self.find(&parsed, line) {
            Ok(index) => {
                let client_id = match &parsed.kind {
                    Kind::Request { id, .. } => {
                        self.answered += 1;
                        json::member_span(line, "id")
                            .map(|(s, e)| String::from_utf8_lossy(&line[s..e]).into_owned())
                            .or(Some(id.clone()))
                    }
                    _ => None,
                };
                let recorded = &mut self.client[index];
                recorded.used += 1;
                if client_id.is_some() {
                    recorded.client_id = client_id;
                }
                let first_time = recorded.used == 1;
                let releases = recorded.releases.clone();
                let since = recorded.timestamp_us;
                let mut ready = Vec::new();
                for s in releases {
                    let m = &mut self.server[s];
                    if first_time {
                        m.waiting_for -= 1;
                        if m.waiting_for == 0 {
                            ready.push(s);
                        }
                    } else if m.sent {
                        // A repeat: what it released the first time, again.
                        ready.push(s);
                    }
                }
                self.send(ready, Some(since))
            }
            Err(why) => {
                let what = describe(&parsed.kind);
                let candidates = self.nearest(&parsed);
                let miss = Miss {
                    what,
                    why,
                    candidates,
                };
                let reply = match &parsed.kind {
                    // Only a request gets an answer: a JSON-RPC error.
                    Kind::Request { .. } => {
                        let id = json::member_span(line, "id")
                            .map(|(s, e)| String::from_utf8_lossy(&line[s..e]).into_owned())
                            .unwrap_or_else(|| "null".into());
                        let message = format!("tapedeck replay: {miss}");
                        let error = serde_json::json!({
                            "code": -32603,
                            "message": message.lines().next().unwrap_or_default(),
                            "data": { "tapedeck": message },
                        });
                        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#);
                        vec![Outgoing {
                            bytes: body.into_bytes(),
                            delay: Duration::ZERO,
                            seq: 0,
                        }]
                    }
                    _ => Vec::new(),
                };
                self.misses.push(miss);
                reply
            }
        }
    }

    /// The recorded client message `parsed` matches.
    fn find(&mut self, parsed: &Parsed, line: &[u8]) -> Result<usize, String> {
        if self.options.matching == Matching::Sequential
            && matches!(
                parsed.kind,
                Kind::Request { .. } | Kind::Notification { .. }
            )
        {
            let slot = kind_slot(&parsed.kind);
            let next = self.client[self.next_in_sequence[slot]..]
                .iter()
                .position(|c| kind_slot(&c.kind) == slot)
                .map(|p| p + self.next_in_sequence[slot]);
            return match next {
                Some(i) => {
                    self.next_in_sequence[slot] = i + 1;
                    Ok(i)
                }
                None => Err("every recorded message of its kind was used".into()),
            };
        }
        let key = self.key(parsed, line).ok_or("it cannot be matched")?;
        let Some(list) = self.by_key.get(&key) else {
            return Err(match parsed.kind {
                Kind::Other => "it is not a JSON-RPC message, and no such line was recorded".into(),
                _ => "no recorded message is equal to it (ignoring the id, `_meta`, clientInfo and --ignore paths)".into(),
            });
        };
        let asked = self.asked.entry(key).or_insert(0);
        let n = *asked;
        let pick = match self.options.repeat {
            Repeat::Once | Repeat::InOrder => list.get(n).copied(),
            Repeat::Cycle => Some(list[n % list.len()]),
            Repeat::Last => Some(list[n.min(list.len() - 1)]),
        };
        let Some(index) = pick else {
            return Err(format!(
                "it was recorded {} time(s) and every recording was used (--repeat once)",
                list.len()
            ));
        };
        if self.options.repeat == Repeat::InOrder
            && let Some(earlier) = self.client[..index].iter().find(|c| {
                c.used == 0
                    && matches!(c.kind, Kind::Request { .. })
                    && !matches!(parsed.kind, Kind::Answer { .. })
            })
        {
            return Err(format!(
                "--repeat in-order: frame {} ({}) was recorded before it and is still unanswered",
                earlier.seq,
                describe(&earlier.kind)
            ));
        }
        *asked += 1;
        Ok(index)
    }

    /// The recorded requests nearest to `parsed` (same method first), with
    /// where they differ.
    fn nearest(&self, parsed: &Parsed) -> Vec<(u64, String, Vec<Difference>)> {
        let Some(got) = &parsed.normalized else {
            return Vec::new();
        };
        let method = match &parsed.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method.as_str()),
            _ => None,
        };
        let mut ranked: Vec<(bool, usize, usize)> = self
            .client
            .iter()
            .enumerate()
            .filter(|(_, c)| kind_slot(&c.kind) == kind_slot(&parsed.kind))
            .filter_map(|(i, c)| {
                let recorded = c.normalized.as_ref()?;
                let same_method = match (&c.kind, method) {
                    (
                        Kind::Request { method: m, .. } | Kind::Notification { method: m },
                        Some(want),
                    ) => m == want,
                    _ => false,
                };
                Some((!same_method, json::distance(recorded, got, 1000), i))
            })
            .collect();
        ranked.sort();
        ranked
            .into_iter()
            .take(3)
            .map(|(_, _, i)| {
                let c = &self.client[i];
                let recorded = c.normalized.as_ref().unwrap_or(&Value::Null);
                (c.seq, describe(&c.kind), json::diff(recorded, got, 8))
            })
            .collect()
    }

    /// The server messages `ready` (indices), in recorded order, with ids
    /// rewritten and delays measured from `since` (a recorded time).
    fn send(&mut self, mut ready: Vec<usize>, since: Option<u64>) -> Vec<Outgoing> {
        ready.sort_unstable();
        ready.dedup();
        let mut last = since;
        let mut out = Vec::with_capacity(ready.len());
        for s in ready {
            let m = &mut self.server[s];
            m.sent = true;
            let gap = last.map_or(0, |t| m.timestamp_us.saturating_sub(t));
            last = Some(m.timestamp_us.max(last.unwrap_or(0)));
            let bytes = match m.answers.and_then(|r| self.client[r].client_id.as_deref()) {
                Some(id) => json::with_id(&m.bytes, id).unwrap_or_else(|| m.bytes.clone()),
                None => m.bytes.clone(),
            };
            let bytes = match &self.outgoing {
                Some(f) => f(&bytes),
                None => bytes,
            };
            out.push(Outgoing {
                bytes,
                delay: self.options.timing.delay(gap),
                seq: m.seq,
            });
        }
        out
    }

    /// The report so far: answers, misses, recorded requests never asked.
    pub fn report(&self) -> Report {
        Report {
            answered: self.answered,
            misses: self.misses.clone(),
            unused: self
                .client
                .iter()
                .filter(|c| c.used == 0 && matches!(c.kind, Kind::Request { .. }))
                .map(|c| (c.seq, describe(&c.kind)))
                .collect(),
        }
    }
}
