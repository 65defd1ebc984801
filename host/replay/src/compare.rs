//! Two tapes compared (`tapedeck diff A B`): the client requests of each
//! paired by method and params (the n-th occurrence in A with the n-th in
//! B), then what only one tape asked, which answers changed and where, and
//! which tools the servers offered differently (`tools/list`).

use crate::json::{self, Difference};
use crate::options::ReplayOptions;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use tapedeck_types::{Direction, Frame};

/// One request of a tape, with its answer.
#[derive(Debug, Clone)]
struct Exchange {
    seq: u64,
    method: String,
    request: Value,
    answer: Option<Value>,
}

/// A request whose answer differs between the tapes.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The request (`tools/call` {"name":"echo",…}).
    pub what: String,
    /// Its frame in A and in B.
    pub seqs: (u64, u64),
    /// Where the answers differ (recorded = A, got = B).
    pub differences: Vec<Difference>,
}

/// How one tool's definition changed.
#[derive(Debug, Clone)]
pub struct ToolChange {
    /// The tool's name.
    pub name: String,
    /// Where its definitions differ (recorded = A, got = B).
    pub differences: Vec<Difference>,
}

/// What differs between tape A and tape B.
#[derive(Debug, Clone, Default)]
pub struct TapeDiff {
    /// Requests both tapes made, with the same answer.
    pub same: usize,
    /// Requests only A made: (seq, what).
    pub removed: Vec<(u64, String)>,
    /// Requests only B made: (seq, what).
    pub added: Vec<(u64, String)>,
    /// Requests both made, answered differently.
    pub changed: Vec<Changed>,
    /// Tools only A's server offered.
    pub tools_removed: Vec<String>,
    /// Tools only B's server offered.
    pub tools_added: Vec<String>,
    /// Tools both offered, defined differently.
    pub tools_changed: Vec<ToolChange>,
    /// Notifications per method whose number differs: (method, in A, in B).
    pub notifications: Vec<(String, usize, usize)>,
}

impl TapeDiff {
    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.changed.is_empty()
            && self.tools_removed.is_empty()
            && self.tools_added.is_empty()
            && self.tools_changed.is_empty()
            && self.notifications.is_empty()
    }
}

fn summary(method: &str, request: &Value) -> String {
    let params = request
        .get("params")
        .map(|p| p.to_string())
        .unwrap_or_default();
    let params = if params.len() > 100 {
        let cut = params
            .char_indices()
            .nth(97)
            .map_or(params.len(), |(i, _)| i);
        format!("{}…", &params[..cut])
    } else {
        params
    };
    format!("`{method}` {params}").trim_end().to_string()
}

/// The requests of a tape with their answers, and its notifications per
/// method.
fn exchanges(frames: &[Frame], options: &ReplayOptions) -> (Vec<Exchange>, HashMap<String, usize>) {
    let mut out: Vec<Exchange> = Vec::new();
    let mut pending: HashMap<String, usize> = HashMap::new();
    let mut notifications: HashMap<String, usize> = HashMap::new();
    for f in frames {
        let Ok(v) = serde_json::from_slice::<Value>(&f.payload) else {
            continue;
        };
        let method = v.get("method").and_then(Value::as_str).map(str::to_string);
        let id = v.get("id").filter(|i| !i.is_null()).map(Value::to_string);
        match (f.direction, method, id) {
            (Direction::ClientToServer, Some(method), Some(id)) => {
                pending.insert(id, out.len());
                out.push(Exchange {
                    seq: f.seq,
                    method,
                    request: options.comparable(v),
                    answer: None,
                });
            }
            (Direction::ServerToClient, None, Some(id)) => {
                if let Some(i) = pending.remove(&id) {
                    out[i].answer = Some(options.comparable(v));
                }
            }
            (_, Some(method), None) => *notifications.entry(method).or_default() += 1,
            _ => {}
        }
    }
    (out, notifications)
}

/// The tools of the first `tools/list` answer, by name.
fn tools(exchanges: &[Exchange]) -> Option<BTreeMap<String, Value>> {
    let answer = exchanges
        .iter()
        .find(|e| e.method == "tools/list")?
        .answer
        .as_ref()?;
    let list = answer.pointer("/result/tools")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|t| Some((t.get("name")?.as_str()?.to_string(), t.clone())))
            .collect(),
    )
}

/// Compares the traffic of tape A (`a`) with that of tape B (`b`).
pub fn compare(a: &[Frame], b: &[Frame], options: &ReplayOptions) -> TapeDiff {
    let (xa, na) = exchanges(a, options);
    let (xb, nb) = exchanges(b, options);
    let key = |e: &Exchange| json::canonical(&e.request);
    let mut in_b: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, e) in xb.iter().enumerate() {
        in_b.entry(key(e)).or_default().push(i);
    }
    let mut taken = vec![false; xb.len()];
    let mut diff = TapeDiff::default();
    for e in &xa {
        let partner = in_b.get_mut(&key(e)).and_then(|v| {
            let first = *v.first()?;
            v.remove(0);
            Some(first)
        });
        let Some(j) = partner else {
            diff.removed.push((e.seq, summary(&e.method, &e.request)));
            continue;
        };
        taken[j] = true;
        let other = &xb[j];
        let differences = match (&e.answer, &other.answer) {
            (Some(x), Some(y)) => json::diff(x, y, 20),
            (None, None) => Vec::new(),
            (x, y) => vec![Difference {
                path: String::new(),
                recorded: x.clone(),
                got: y.clone(),
            }],
        };
        if differences.is_empty() {
            diff.same += 1;
        } else {
            diff.changed.push(Changed {
                what: summary(&e.method, &e.request),
                seqs: (e.seq, other.seq),
                differences,
            });
        }
    }
    for (j, e) in xb.iter().enumerate() {
        if !taken[j] {
            diff.added.push((e.seq, summary(&e.method, &e.request)));
        }
    }
    if let (Some(ta), Some(tb)) = (tools(&xa), tools(&xb)) {
        for (name, def) in &ta {
            match tb.get(name) {
                None => diff.tools_removed.push(name.clone()),
                Some(other) => {
                    let differences = json::diff(def, other, 20);
                    if !differences.is_empty() {
                        diff.tools_changed.push(ToolChange {
                            name: name.clone(),
                            differences,
                        });
                    }
                }
            }
        }
        diff.tools_added = tb
            .keys()
            .filter(|n| !ta.contains_key(*n))
            .cloned()
            .collect();
    }
    let mut methods: Vec<&String> = na.keys().chain(nb.keys()).collect();
    methods.sort();
    methods.dedup();
    for m in methods {
        let (x, y) = (
            na.get(m).copied().unwrap_or(0),
            nb.get(m).copied().unwrap_or(0),
        );
        if x != y {
            diff.notifications.push((m.clone(), x, y));
        }
    }
    diff
}
