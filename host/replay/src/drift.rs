//! Drift: a tape's client messages sent again to a live server, its answers
//! compared with the recorded ones, structurally (`tapedeck verify`).
//!
//! The messages go out as recorded, ids included, one request at a time
//! (the next once the answer came); a request the live server makes of the
//! client (sampling, elicitation, roots) is answered with what the client
//! answered to the recorded request of the same method, if any. Answers are
//! compared without `_meta` and the ignored paths; notifications are not
//! compared (progress and logging vary run to run).

use crate::json::{self, Difference};
use crate::options::ReplayOptions;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tapedeck_types::{Direction, Frame};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// One recorded request whose live answer differs.
#[derive(Debug, Clone)]
pub struct Drift {
    /// The request's frame.
    pub seq: u64,
    /// What it was (`tools/call` request id 3).
    pub what: String,
    /// Where the answers differ (empty with `missing`).
    pub differences: Vec<Difference>,
    /// Set when the live server gave no answer in time, or ended first.
    pub missing: Option<String>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "frame {}, {}:", self.seq, self.what)?;
        if let Some(why) = &self.missing {
            write!(f, " {why}")?;
        }
        for d in &self.differences {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// What a drift check found.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    /// Requests sent and answered.
    pub compared: u64,
    /// Answers that differ, or never came.
    pub drifts: Vec<Drift>,
}

fn normalized(bytes: &[u8], options: &ReplayOptions) -> Option<Value> {
    serde_json::from_slice(bytes)
        .ok()
        .map(|v| options.comparable(v))
}

fn id_of(v: &Value) -> Option<String> {
    v.get("id").filter(|id| !id.is_null()).map(Value::to_string)
}

/// Sends the client messages of `frames` to a live server (its stdin is
/// `to_server`, its stdout `from_server`) and compares its answers with the
/// recorded ones; waits at most `patience` for each answer.
pub async fn check<R, W>(
    frames: &[Frame],
    options: &ReplayOptions,
    from_server: R,
    mut to_server: W,
    patience: Duration,
) -> std::io::Result<DriftReport>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Recorded answers by request id; what the client answered to each
    // recorded server request, by that request's method.
    let mut answers: HashMap<String, &Frame> = HashMap::new();
    let mut server_requests: HashMap<String, String> = HashMap::new();
    let mut client_answers: HashMap<String, VecDeque<&Frame>> = HashMap::new();
    for f in frames {
        let Ok(v) = serde_json::from_slice::<Value>(&f.payload) else {
            continue;
        };
        let method = v.get("method").and_then(Value::as_str);
        match (f.direction, method, id_of(&v)) {
            (Direction::ServerToClient, None, Some(id)) => {
                answers.entry(id).or_insert(f);
            }
            (Direction::ServerToClient, Some(m), Some(id)) => {
                server_requests.insert(id, m.to_string());
            }
            (Direction::ClientToServer, None, Some(id)) => {
                if let Some(m) = server_requests.get(&id) {
                    client_answers.entry(m.clone()).or_default().push_back(f);
                }
            }
            _ => {}
        }
    }
    let mut lines = from_server.split(b'\n');
    let mut early: HashMap<String, Vec<u8>> = HashMap::new();
    let mut report = DriftReport::default();
    let mut server_gone = false;
    for f in frames
        .iter()
        .filter(|f| f.direction == Direction::ClientToServer)
    {
        let v: Option<Value> = serde_json::from_slice(&f.payload).ok();
        let method = v
            .as_ref()
            .and_then(|v| v.get("method"))
            .and_then(Value::as_str);
        let id = v.as_ref().and_then(id_of);
        // The client's answers to server requests go out when the live
        // server asks.
        if method.is_none() && id.is_some() {
            continue;
        }
        if server_gone {
            break;
        }
        to_server.write_all(&f.payload).await?;
        to_server.write_all(b"\n").await?;
        to_server.flush().await?;
        let (Some(method), Some(id)) = (method, id) else {
            continue; // a notification: nothing to wait for
        };
        let what = format!("`{method}` request (id {id})");
        let deadline = tokio::time::Instant::now() + patience;
        let live = loop {
            if let Some(bytes) = early.remove(&id) {
                break Ok(bytes);
            }
            let next = tokio::time::timeout_at(deadline, lines.next_segment()).await;
            let line = match next {
                Err(_) => break Err(format!("no answer within {patience:?}")),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(None)) => {
                    server_gone = true;
                    break Err("the server closed its output before answering".into());
                }
                Ok(Ok(Some(line))) => line,
            };
            let Ok(lv) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let live_method = lv.get("method").and_then(Value::as_str).map(str::to_string);
            match (live_method, lv.get("id").filter(|i| !i.is_null())) {
                // The live server asks the client something: answer as the
                // client did when recording.
                (Some(m), Some(live_id)) => {
                    let live_id = live_id.to_string();
                    let reply = match client_answers.get_mut(&m).and_then(VecDeque::pop_front) {
                        Some(recorded) => json::with_id(&recorded.payload, &live_id)
                            .unwrap_or_else(|| recorded.payload.clone()),
                        None => format!(
                            r#"{{"jsonrpc":"2.0","id":{live_id},"error":{{"code":-32601,"message":"tapedeck verify: the recorded client never answered `{m}`"}}}}"#
                        )
                        .into_bytes(),
                    };
                    to_server.write_all(&reply).await?;
                    to_server.write_all(b"\n").await?;
                    to_server.flush().await?;
                }
                (None, Some(live_id)) => {
                    let live_id = live_id.to_string();
                    if live_id == id {
                        break Ok(line);
                    }
                    early.insert(live_id, line);
                }
                _ => {} // a notification
            }
        };
        match live {
            Err(why) => report.drifts.push(Drift {
                seq: f.seq,
                what,
                differences: Vec::new(),
                missing: Some(why),
            }),
            Ok(bytes) => {
                report.compared += 1;
                let recorded = answers
                    .get(&id)
                    .and_then(|r| normalized(&r.payload, options));
                let got = normalized(&bytes, options);
                let differences = match (&recorded, &got) {
                    (Some(r), Some(g)) => json::diff(r, g, 20),
                    (None, _) => {
                        // Nothing recorded to compare with (the recording
                        // ended first): not drift.
                        Vec::new()
                    }
                    (Some(r), None) => vec![Difference {
                        path: String::new(),
                        recorded: Some(r.clone()),
                        got: None,
                    }],
                };
                if !differences.is_empty() {
                    report.drifts.push(Drift {
                        seq: f.seq,
                        what,
                        differences,
                        missing: None,
                    });
                }
            }
        }
    }
    Ok(report)
}
