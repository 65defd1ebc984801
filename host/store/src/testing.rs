//! Stores for tests (feature `testing`): [`MemStore`], an in-memory store
//! that keeps the contract and fails or lies on request; [`NoWriter`] and
//! [`unsupported`] for fakes that never write; [`sample_frames`].

use crate::error::ProviderError;
use crate::{ProviderResult, TapeStore, TapeWriter};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tapedeck_types::{
    Capabilities, Direction, EndReason, Frame, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeState, TapeSummary,
};

/// The `unsupported` storage error of a fake provider called `fake`.
pub fn unsupported<T>() -> ProviderResult<T> {
    Err(ProviderError::Storage {
        provider: "fake".into(),
        error: StorageError::unsupported("fake"),
    })
}

/// A writer that refuses everything, for fakes that never write.
pub struct NoWriter;

impl TapeWriter for NoWriter {
    fn id(&self) -> &str {
        "fake"
    }
    fn next_seq(&self) -> u64 {
        0
    }
    async fn append(&mut self, _: &[Frame]) -> ProviderResult<u64> {
        unsupported()
    }
    async fn finish(&mut self, _: TapeSummary, _: EndReason) -> ProviderResult<TapeInfo> {
        unsupported()
    }
    async fn abort(&mut self, _: &str) -> ProviderResult<()> {
        unsupported()
    }
}

/// Frames `0..n` for tests: 10 µs apart from 1,700,000,000 s,
/// client to server first, then alternating, with `payload(seq)`.
pub fn sample_frames(n: u64, payload: impl Fn(u64) -> Vec<u8>) -> Vec<Frame> {
    (0..n)
        .map(|seq| Frame {
            seq,
            timestamp_us: 1_700_000_000_000_000 + seq * 10,
            direction: if seq % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            payload: payload(seq),
            not_json: false,
            terms: Vec::new(),
            attributes: Vec::new(),
        })
        .collect()
}

/// A storage error of the fake provider called `name`.
fn error<T>(name: &str, error: StorageError) -> ProviderResult<T> {
    Err(ProviderError::Storage {
        provider: name.into(),
        error,
    })
}

/// A store in memory that keeps the contract (ordering, idempotent
/// appends, `append_many` with per-entry results, finish checks, `save`,
/// paging, terms and text search), for unit tests that write. It keeps
/// terms, attributes, envelopes and seals verbatim. Clones share the
/// tapes. Faults on request: appends that fail after a number of
/// successful ones, reads that return altered payloads.
#[derive(Clone)]
pub struct MemStore {
    info: Arc<ProviderInfo>,
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Default)]
struct MemInner {
    tapes: BTreeMap<String, (TapeInfo, Vec<Frame>)>,
    /// Frames appended (newly stored) by writers and `append_many`.
    appended: u64,
    /// `append_many` calls so far.
    append_many_calls: u64,
    /// Successful appends left before every append fails.
    appends_left: Option<u64>,
    /// `read_frames` flips the last byte of every payload.
    tamper_reads: bool,
}

impl MemInner {
    /// What `resume(id)` then `append(frames)` on the writer do: appends
    /// the frames not stored yet, or fails storing nothing. Every attempt
    /// on a recording tape counts against `appends_left`.
    fn append(&mut self, name: &str, id: &str, frames: &[Frame]) -> ProviderResult<u64> {
        let Some((info, stored)) = self.tapes.get_mut(id) else {
            return error(name, StorageError::not_found(id));
        };
        if info.state != TapeState::Recording {
            return error(name, StorageError::invalid_input("not recording"));
        }
        if let Some(left) = &mut self.appends_left {
            if *left == 0 {
                return error(name, StorageError::io("injected append failure"));
            }
            *left -= 1;
        }
        let next = stored.len() as u64;
        let new: Vec<&Frame> = frames.iter().filter(|f| f.seq >= next).collect();
        if new
            .iter()
            .enumerate()
            .any(|(i, f)| f.seq != next + i as u64)
        {
            return error(name, StorageError::invalid_input("gap"));
        }
        for f in &new {
            info.frame_count += 1;
            info.byte_count += f.payload.len() as u64;
            stored.push((*f).clone());
        }
        self.appended += new.len() as u64;
        Ok(next + new.len() as u64)
    }

    /// The page of the tapes `keep` accepts after `cursor`, newest first;
    /// the cursor is the position of the next tape.
    fn page(
        &self,
        name: &str,
        keep: impl Fn(&TapeInfo, &[Frame]) -> bool,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        let mut tapes: Vec<TapeInfo> = self
            .tapes
            .values()
            .filter(|(info, frames)| keep(info, frames))
            .map(|(info, _)| info.clone())
            .collect();
        tapes.sort_by(|a, b| {
            (b.header.created_at_us, &b.header.id).cmp(&(a.header.created_at_us, &a.header.id))
        });
        let Ok(from) = cursor.map_or(Ok(0), str::parse::<usize>) else {
            return error(name, StorageError::invalid_input("bad cursor"));
        };
        let from = from.min(tapes.len());
        let to = (from + limit as usize).min(tapes.len());
        Ok(TapePage {
            tapes: tapes[from..to].to_vec(),
            next_cursor: (to < tapes.len()).then(|| to.to_string()),
        })
    }
}

/// Does `query` hold for a tape with these frames (its filter aside)?
/// Every term is among the terms of some frame (exact equality), and
/// some payload contains the text.
fn frames_match(query: &SearchQuery, frames: &[Frame]) -> bool {
    let terms = query
        .terms
        .iter()
        .all(|t| frames.iter().any(|f| f.terms.contains(t)));
    let text = query.text.as_ref().is_none_or(|text| {
        let needle = text.as_bytes();
        frames
            .iter()
            .any(|f| needle.is_empty() || f.payload.windows(needle.len()).any(|w| w == needle))
    });
    terms && text
}

impl MemStore {
    /// An empty store whose provider is called `name`.
    pub fn new(name: &str) -> MemStore {
        MemStore {
            info: Arc::new(ProviderInfo {
                name: name.into(),
                version: "0.0.0".into(),
                capabilities: Capabilities {
                    search: true,
                    text_search: true,
                    ..Capabilities::default()
                },
            }),
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MemInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn name(&self) -> &str {
        &self.info.name
    }

    /// Stores `frames` as tape `info` says, unchecked (a damaged or
    /// tampered tape, or a tape in any state).
    pub fn put(&self, info: TapeInfo, frames: Vec<Frame>) {
        let id = info.header.id.clone();
        self.lock().tapes.insert(id, (info, frames));
    }

    /// Tape `id` and its frames, as stored.
    pub fn tape(&self, id: &str) -> Option<(TapeInfo, Vec<Frame>)> {
        self.lock().tapes.get(id).cloned()
    }

    /// Frames newly stored by `append` and `append_many` so far.
    pub fn appended(&self) -> u64 {
        self.lock().appended
    }

    /// `append_many` calls so far.
    pub fn append_many_calls(&self) -> u64 {
        self.lock().append_many_calls
    }

    /// Every `append` (and every entry of `append_many`) fails after `n`
    /// more successful ones (`None`: never).
    pub fn fail_appends_after(&self, n: Option<u64>) {
        self.lock().appends_left = n;
    }

    /// Whether `read_frames` returns altered payloads.
    pub fn tamper_reads(&self, on: bool) {
        self.lock().tamper_reads = on;
    }

    fn writer(&self, id: &str, next: u64) -> MemWriter {
        MemWriter {
            store: self.clone(),
            id: id.into(),
            next,
        }
    }
}

impl TapeStore for MemStore {
    type Writer = MemWriter;

    fn provider_info(&self) -> &ProviderInfo {
        &self.info
    }

    async fn create(&self, header: TapeHeader) -> ProviderResult<MemWriter> {
        let mut inner = self.lock();
        if inner.tapes.contains_key(&header.id) {
            return error(self.name(), StorageError::already_exists(header.id));
        }
        let id = header.id.clone();
        let info = TapeInfo {
            header,
            state: TapeState::Recording,
            frame_count: 0,
            byte_count: 0,
            ended_at_us: None,
            digest: None,
            seal: None,
        };
        inner.tapes.insert(id.clone(), (info, Vec::new()));
        Ok(self.writer(&id, 0))
    }

    async fn resume(&self, id: &str) -> ProviderResult<MemWriter> {
        let inner = self.lock();
        match inner.tapes.get(id) {
            None => error(self.name(), StorageError::not_found(id)),
            Some((info, _)) if info.state != TapeState::Recording => {
                error(self.name(), StorageError::invalid_input("not recording"))
            }
            Some((info, _)) => Ok(self.writer(id, info.frame_count)),
        }
    }

    async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let mut inner = self.lock();
        if inner.tapes.contains_key(&header.id) {
            return error(self.name(), StorageError::already_exists(header.id));
        }
        if frames.iter().enumerate().any(|(i, f)| f.seq != i as u64) {
            return error(self.name(), StorageError::invalid_input("gap"));
        }
        let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
        if (summary.frame_count, summary.byte_count) != (frames.len() as u64, bytes) {
            return error(
                self.name(),
                StorageError::invalid_input("summary disagrees"),
            );
        }
        let info = TapeInfo {
            header,
            state: reason.end_state(),
            frame_count: summary.frame_count,
            byte_count: summary.byte_count,
            ended_at_us: Some(summary.ended_at_us),
            digest: summary.digest,
            seal: summary.seal,
        };
        inner
            .tapes
            .insert(info.header.id.clone(), (info.clone(), frames.to_vec()));
        Ok(info)
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        match self.lock().tapes.get(id) {
            Some((info, _)) => Ok(info.clone()),
            None => error(self.name(), StorageError::not_found(id)),
        }
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        let inner = self.lock();
        let Some((_, frames)) = inner.tapes.get(id) else {
            return error(self.name(), StorageError::not_found(id));
        };
        if max_frames == 0 {
            return error(
                self.name(),
                StorageError::invalid_input("max-frames must be at least 1"),
            );
        }
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for f in frames.iter().skip(from_seq as usize) {
            if out.len() == max_frames as usize || bytes >= max_bytes {
                break;
            }
            bytes += f.payload.len() as u64;
            let mut f = f.clone();
            if inner.tamper_reads
                && let Some(b) = f.payload.last_mut()
            {
                *b ^= 1;
            }
            out.push(f);
        }
        Ok(out)
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        match self.lock().tapes.remove(id) {
            Some(_) => Ok(()),
            None => error(self.name(), StorageError::not_found(id)),
        }
    }

    /// Newest first; the cursor is the position of the next tape.
    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.lock()
            .page(self.name(), |t, _| filter.matches(t), cursor, limit)
    }

    /// As `list`; every term must be among the terms of some frame
    /// (exact equality, not necessarily the same frame) and some payload
    /// must contain the text.
    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        self.lock().page(
            self.name(),
            |t, frames| query.filter.matches(t) && frames_match(query, frames),
            cursor,
            limit,
        )
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        unsupported()
    }

    /// Each entry as `resume` then `append`; a repeated id is
    /// `invalid-input` for that entry only.
    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        let mut inner = self.lock();
        inner.append_many_calls += 1;
        let mut seen = HashSet::new();
        Ok(appends
            .iter()
            .map(|a| {
                if !seen.insert(a.id.as_str()) {
                    return error(
                        self.name(),
                        StorageError::invalid_input(format!(
                            "tape {} appears more than once in one append-many",
                            a.id
                        )),
                    );
                }
                inner.append(self.name(), &a.id, &a.frames)
            })
            .collect())
    }
}

/// A writer of [`MemStore`].
pub struct MemWriter {
    store: MemStore,
    id: String,
    next: u64,
}

impl MemWriter {
    /// Runs `f` on the tape, which must still be recording.
    fn recording<T>(
        &self,
        f: impl FnOnce(&mut MemInner) -> ProviderResult<T>,
    ) -> ProviderResult<T> {
        let mut inner = self.store.lock();
        match inner.tapes.get(&self.id) {
            Some((info, _)) if info.state == TapeState::Recording => f(&mut inner),
            _ => error(
                self.store.name(),
                StorageError::invalid_input("not recording"),
            ),
        }
    }
}

impl TapeWriter for MemWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn next_seq(&self) -> u64 {
        self.next
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let (name, id) = (self.store.name(), self.id.as_str());
        let next = self.recording(|inner| inner.append(name, id, frames))?;
        self.next = next;
        Ok(next)
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let (name, id) = (self.store.name().to_string(), self.id.clone());
        self.recording(|inner| {
            let (info, _) = inner.tapes.get_mut(&id).expect("checked");
            if (summary.frame_count, summary.byte_count) != (info.frame_count, info.byte_count) {
                return error(&name, StorageError::invalid_input("summary disagrees"));
            }
            info.state = reason.end_state();
            info.ended_at_us = Some(summary.ended_at_us);
            info.digest = summary.digest;
            info.seal = summary.seal;
            Ok(info.clone())
        })
    }

    async fn abort(&mut self, _: &str) -> ProviderResult<()> {
        let id = self.id.clone();
        self.recording(|inner| {
            let (info, _) = inner.tapes.get_mut(&id).expect("checked");
            info.state = TapeState::Aborted;
            info.ended_at_us = Some(1);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &str, at: u64) -> TapeHeader {
        TapeHeader {
            id: id.into(),
            session_id: String::new(),
            name: String::new(),
            tags: Vec::new(),
            created_at_us: at,
            envelope: None,
        }
    }

    /// A frame `seq` with these terms (payload `p<seq>`).
    fn frame(seq: u64, terms: &[&str]) -> Frame {
        Frame {
            terms: terms.iter().map(|t| t.to_string()).collect(),
            ..Frame::new(
                seq,
                seq,
                Direction::ClientToServer,
                format!("p{seq}").into_bytes(),
                false,
            )
        }
    }

    fn summary(frames: &[Frame], seal: Option<Vec<u8>>) -> TapeSummary {
        TapeSummary {
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: 99,
            digest: Some("d".into()),
            seal,
        }
    }

    fn kind(r: &ProviderResult<u64>) -> Option<tapedeck_types::ErrorKind> {
        match r {
            Err(ProviderError::Storage { error, .. }) => Some(error.kind),
            _ => None,
        }
    }

    #[tokio::test]
    async fn host_fields_are_kept_verbatim() {
        let store = MemStore::new("mem");
        let mut h = header("a", 1);
        h.envelope = Some(vec![0, 1, 2, 255]);
        let mut w = store.create(h.clone()).await.unwrap();
        let mut f = frame(0, &["method:x", "Tool:Y", "method:x"]);
        f.attributes = vec![("k".into(), "v".into()), ("a".into(), String::new())];
        w.append(std::slice::from_ref(&f)).await.unwrap();
        let s = summary(std::slice::from_ref(&f), Some(vec![7; 64]));
        let info = w.finish(s.clone(), EndReason::Completed).await.unwrap();
        assert_eq!(info.seal, s.seal);
        let got = store.get("a").await.unwrap();
        assert_eq!(got.header, h);
        assert_eq!(got.seal, s.seal);
        assert_eq!(
            store.read_frames("a", 0, 10, 1 << 20).await.unwrap(),
            [f.clone()]
        );

        let mut h2 = header("b", 2);
        h2.envelope = Some(b"env".to_vec());
        let saved = store
            .save(
                h2.clone(),
                std::slice::from_ref(&f),
                s.clone(),
                EndReason::Crashed,
            )
            .await
            .unwrap();
        assert_eq!(
            (saved.header, saved.seal, saved.state),
            (h2, s.seal, TapeState::Crashed)
        );
        assert_eq!(store.read_frames("b", 0, 10, 1 << 20).await.unwrap(), [f]);
    }

    #[tokio::test]
    async fn finishing_aborted_keeps_the_summary() {
        let store = MemStore::new("mem");
        let mut w = store.create(header("a", 1)).await.unwrap();
        let frames = [frame(0, &[])];
        w.append(&frames).await.unwrap();
        let s = summary(&frames, Some(b"seal".to_vec()));
        w.finish(s.clone(), EndReason::Aborted).await.unwrap();
        let info = store.get("a").await.unwrap();
        assert_eq!(info.state, TapeState::Aborted);
        assert_eq!(info.ended_at_us, Some(s.ended_at_us));
        assert_eq!(info.digest, s.digest);
        assert_eq!(info.seal, s.seal);
    }

    #[tokio::test]
    async fn search_needs_every_term_on_some_frame_by_exact_equality() {
        let store = MemStore::new("mem");
        // a: both terms on one frame; b: on two frames; c: only one of them.
        for (id, at, frames) in [
            ("a", 1, vec![frame(0, &["method:x", "tool:t"])]),
            ("b", 2, vec![frame(0, &["method:x"]), frame(1, &["tool:t"])]),
            ("c", 3, vec![frame(0, &["method:x"])]),
        ] {
            let s = summary(&frames, None);
            store
                .save(header(id, at), &frames, s, EndReason::Completed)
                .await
                .unwrap();
        }
        let ids = |terms: &[&str], text: Option<&str>| {
            let store = store.clone();
            let query = SearchQuery {
                terms: terms.iter().map(|t| t.to_string()).collect(),
                text: text.map(str::to_string),
                ..SearchQuery::default()
            };
            async move {
                let page = store.search(&query, None, 10).await.unwrap();
                page.tapes
                    .into_iter()
                    .map(|t| t.header.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(&["method:x", "tool:t"], None).await, ["b", "a"]);
        assert_eq!(ids(&["method:x"], None).await, ["c", "b", "a"]);
        assert_eq!(ids(&[], None).await, ["c", "b", "a"]);
        assert!(ids(&["method:"], None).await.is_empty(), "no prefixes");
        assert!(ids(&["Method:x"], None).await.is_empty(), "no case folding");
        assert!(ids(&["tool:t "], None).await.is_empty());
        assert_eq!(ids(&["tool:t"], Some("p1")).await, ["b"]);
        let page = store
            .search(
                &SearchQuery {
                    terms: vec!["method:x".into()],
                    ..SearchQuery::default()
                },
                None,
                2,
            )
            .await
            .unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn append_many_gives_one_independent_result_per_entry() {
        let store = MemStore::new("mem");
        for id in ["a", "b", "done"] {
            store.create(header(id, 1)).await.unwrap();
        }
        let mut w = store.resume("done").await.unwrap();
        w.abort("x").await.unwrap();
        let entry = |id: &str, seqs: std::ops::Range<u64>| TapeAppend {
            id: id.into(),
            frames: seqs.map(|s| frame(s, &["t"])).collect(),
        };
        let results = store
            .append_many(&[
                entry("a", 0..2),
                entry("b", 1..3),
                entry("missing", 0..1),
                entry("done", 0..1),
                entry("a", 2..3),
                entry("b", 0..1),
            ])
            .await
            .unwrap();
        use tapedeck_types::ErrorKind::{InvalidInput, NotFound};
        assert_eq!(results.len(), 6);
        assert_eq!(results[0].as_ref().ok(), Some(&2));
        assert_eq!(kind(&results[1]), Some(InvalidInput), "gap");
        assert_eq!(kind(&results[2]), Some(NotFound));
        assert_eq!(kind(&results[3]), Some(InvalidInput), "not recording");
        assert_eq!(kind(&results[4]), Some(InvalidInput), "repeated id");
        assert_eq!(
            kind(&results[5]),
            Some(InvalidInput),
            "repeated after a failure"
        );
        assert_eq!(store.tape("a").unwrap().1.len(), 2);
        assert!(store.tape("b").unwrap().1.is_empty());
        assert!(store.tape("done").unwrap().1.is_empty());
        assert_eq!(store.appended(), 2);
        assert_eq!(store.append_many_calls(), 1);
        // A redelivery skips what is stored; b's entry alone is fine.
        let again = store
            .append_many(&[entry("a", 0..3), entry("b", 0..1)])
            .await
            .unwrap();
        assert_eq!(again[0].as_ref().ok(), Some(&3));
        assert_eq!(again[1].as_ref().ok(), Some(&1));
        assert_eq!(store.appended(), 4);
    }
}
