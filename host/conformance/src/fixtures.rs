//! Test data: the per-case context with its unique ids, and generators for
//! headers, frames, payloads and summaries.

use super::SuiteOptions;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tapedeck_store::TapeStore;
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{Capabilities, Direction, ErrorKind, Frame, TapeHeader, TapeSummary};

/// Tag key put on every tape the suite creates; its value is the run id.
pub(crate) const RUN_TAG: &str = "tapedeck-conformance";

/// Frame timestamps start here (2025-01-01T00:00:00Z), one millisecond apart.
pub(crate) const TS_BASE: u64 = 1_735_689_600_000_000;

/// A short random id for one suite run (`[0-9a-z]`, 10 characters).
pub(crate) fn run_id() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(now_us() as u128);
    h.write_u32(std::process::id());
    let mut n = h.finish();
    let mut s = String::new();
    for _ in 0..10 {
        s.push(char::from_digit((n % 36) as u32, 36).unwrap_or('x'));
        n /= 36;
    }
    s
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A pseudo-random base time for `created_at` values of one case, somewhere
/// in 2001..2021, so that cases filtering by creation time rarely meet
/// anybody else's tapes (and cope when they do).
pub(crate) fn random_epoch() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(now_us());
    const Y2001: u64 = 978_307_200_000_000;
    const TWENTY_YEARS: u64 = 20 * 365 * 86_400_000_000;
    // Round to a second so that the offsets cases add stay readable.
    Y2001 + (h.finish() % TWENTY_YEARS) / 1_000_000 * 1_000_000
}

/// Everything one case needs: the store, the options, and unique names.
pub(crate) struct Ctx<S> {
    /// The store under test.
    pub store: Arc<S>,
    /// The suite's options.
    pub options: SuiteOptions,
    /// What the provider declared.
    pub caps: Capabilities,
    /// The case's name.
    pub case: &'static str,
    /// The run id, value of the [`RUN_TAG`] tag.
    pub run_id: String,
    /// `ct-<run>-<case index>`: every id and token of this case starts so.
    prefix: String,
    counter: AtomicU64,
    /// Ids handed out, deleted after the case when `delete` is declared.
    created: Mutex<Vec<String>>,
}

impl<S: TapeStore> Ctx<S> {
    /// A context for case number `index` of run `run_id`.
    pub fn new(
        store: Arc<S>,
        options: SuiteOptions,
        run_id: &str,
        index: usize,
        run: u32,
        case: &'static str,
    ) -> Self {
        let caps = store.provider_info().capabilities;
        // A repeated case gets new ids each run.
        let prefix = match run {
            0 | 1 => format!("ct-{run_id}-{index:02}"),
            n => format!("ct-{run_id}-{index:02}r{n}"),
        };
        Ctx {
            store,
            options,
            caps,
            case,
            run_id: run_id.to_string(),
            prefix,
            counter: AtomicU64::new(0),
            created: Mutex::new(Vec::new()),
        }
    }

    /// A fresh unique token, `ct-<run>-<case>-<n>`; a valid tape id.
    pub fn token(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }

    /// A fresh unique tape id ending in `label`, remembered for clean-up.
    pub fn id(&self, label: &str) -> String {
        let id = format!("{}-{label}", self.token());
        self.track(&id);
        id
    }

    /// A fresh unique tape id exactly `len` bytes long (at least 40).
    pub fn id_of_len(&self, len: usize) -> String {
        let mut id = format!("{}-", self.token());
        while id.len() < len {
            id.push(char::from(b'a' + (id.len() % 26) as u8));
        }
        id.truncate(len);
        self.track(&id);
        id
    }

    /// Remembers `id` for clean-up.
    pub fn track(&self, id: &str) {
        if let Ok(mut ids) = self.created.lock() {
            ids.push(id.to_string());
        }
    }

    /// Does `id` belong to this case?
    pub fn is_ours(&self, id: &str) -> bool {
        id.starts_with(&format!("{}-", self.prefix))
    }

    /// The session id every tape of this case gets by default.
    pub fn session(&self) -> String {
        format!("{}-session", self.prefix)
    }

    /// A header for `id`: this case's session, a name naming the case, the
    /// run tag, created now.
    pub fn header(&self, id: &str) -> TapeHeader {
        TapeHeader {
            id: id.to_string(),
            session_id: self.session(),
            name: format!("conformance {}", self.case),
            tags: vec![
                (RUN_TAG.to_string(), self.run_id.clone()),
                ("case".to_string(), self.case.to_string()),
            ],
            created_at_us: now_us(),
            envelope: None,
        }
    }

    /// A header for `id` created at `created_at_us`.
    pub fn header_at(&self, id: &str, created_at_us: u64) -> TapeHeader {
        TapeHeader {
            created_at_us,
            ..self.header(id)
        }
    }

    /// Deletes every tape this case made, if the provider can delete.
    pub async fn cleanup(&self) {
        if !self.caps.delete || self.options.keep {
            return;
        }
        let ids = match self.created.lock() {
            Ok(mut ids) => std::mem::take(&mut *ids),
            Err(_) => return,
        };
        for id in ids {
            match self.store.delete(&id).await {
                Ok(()) => {}
                Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => {}
                Err(_) => {}
            }
        }
    }
}

/// A frame with `payload` and the terms the host derives from it
/// ([`payload_terms`]), as the recorder builds it; even frames travel client
/// to server, odd ones server to client; timestamps are [`TS_BASE`] plus
/// `seq` milliseconds.
pub(crate) fn frame(seq: u64, payload: impl Into<Vec<u8>>) -> Frame {
    let payload = payload.into();
    let terms = payload_terms(&payload);
    Frame {
        terms,
        ..bare_frame(seq, payload, false)
    }
}

/// A frame whose payload is not JSON (flag set), hence without terms.
pub(crate) fn raw_frame(seq: u64, payload: impl Into<Vec<u8>>) -> Frame {
    bare_frame(seq, payload.into(), true)
}

/// A frame without terms or attributes, numbered and timed as [`frame`].
fn bare_frame(seq: u64, payload: Vec<u8>, not_json: bool) -> Frame {
    let direction = if seq.is_multiple_of(2) {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    Frame::new(seq, TS_BASE + seq * 1000, direction, payload, not_json)
}

/// `frame` with its terms replaced by `terms` (which need not have anything
/// to do with its payload: terms are opaque to a provider).
pub(crate) fn with_terms(frame: Frame, terms: &[&str]) -> Frame {
    Frame {
        terms: strings(terms),
        ..frame
    }
}

/// `frame` with `attributes`.
pub(crate) fn with_attributes(frame: Frame, attributes: &[(&str, &str)]) -> Frame {
    Frame {
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..frame
    }
}

/// Owned copies of `items`.
pub(crate) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `len` pseudo-random bytes derived from `seed`, every byte value likely,
/// starting with 0x00 and 0xff so that both are always there.
pub(crate) fn opaque_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out: Vec<u8> = [0x00, 0xff].into_iter().take(len).collect();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

/// A realistic MCP exchange: even frames are `tools/call` requests, odd
/// frames their responses.
pub(crate) fn json_frames(seqs: std::ops::Range<u64>) -> Vec<Frame> {
    seqs.map(|seq| {
        let payload = if seq.is_multiple_of(2) {
            format!(
                r#"{{"jsonrpc":"2.0","id":{seq},"method":"tools/call","params":{{"name":"echo","arguments":{{"n":{seq}}}}}}}"#
            )
        } else {
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"content":[{{"type":"text","text":"echo {seq}"}}]}}}}"#,
                seq - 1
            )
        };
        frame(seq, payload)
    })
    .collect()
}

/// `frames` renumbered from `first` on (payloads kept).
pub(crate) fn renumber(frames: &[Frame], first: u64) -> Vec<Frame> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Frame {
            seq: first + i as u64,
            ..f.clone()
        })
        .collect()
}

/// Sum of the payload lengths.
pub(crate) fn byte_sum(frames: &[Frame]) -> u64 {
    frames.iter().map(|f| f.payload.len() as u64).sum()
}

/// A 64-character lowercase hex digest derived from `n`.
pub(crate) fn digest(n: u64) -> String {
    let mut s = String::with_capacity(64);
    let mut x = n ^ 0x9e37_79b9_7f4a_7c15;
    while s.len() < 64 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        s.push_str(&format!("{:016x}", x));
    }
    s.truncate(64);
    s
}

/// The summary of a tape holding `frames`, ended one second after the last
/// frame, with a digest.
pub(crate) fn summary_of(frames: &[Frame]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: byte_sum(frames),
        ended_at_us: TS_BASE + frames.len() as u64 * 1000 + 1_000_000,
        digest: Some(digest(frames.len() as u64)),
        seal: None,
    }
}

/// Deterministic payload of frame `seq` for the large cases: 64 to 160
/// bytes, derived from `seq` (every 16th frame binary, the rest JSON), so a
/// reader can regenerate it instead of keeping the tape in memory.
pub(crate) fn seq_payload(seq: u64) -> Vec<u8> {
    let pad = 40 + (seq.wrapping_mul(7919) % 97) as usize;
    if seq % 16 == 15 {
        let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..pad + 24)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    } else {
        let fill = char::from(b'a' + (seq % 26) as u8);
        let mut p =
            format!(r#"{{"jsonrpc":"2.0","method":"bulk/item","params":{{"seq":{seq},"pad":""#);
        p.extend(std::iter::repeat_n(fill, pad));
        p.push_str("\"}}");
        p.into_bytes()
    }
}

/// Frame `seq` of the large cases.
pub(crate) fn seq_frame(seq: u64) -> Frame {
    let payload = seq_payload(seq);
    if seq % 16 == 15 {
        raw_frame(seq, payload)
    } else {
        frame(seq, payload)
    }
}
