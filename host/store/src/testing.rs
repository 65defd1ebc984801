//! Stores for tests (feature `testing`): [`MemStore`], an in-memory store
//! that keeps the contract and fails or lies on request; [`NoWriter`] and
//! [`unsupported`] for fakes that never write; [`sample_frames`].

use crate::error::ProviderError;
use crate::{ProviderResult, TapeStore, TapeWriter};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tapedeck_types::{
    Capabilities, Direction, EndReason, Frame, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeState, TapeSummary,
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
/// appends, finish checks, paging), for unit tests that write. Clones
/// share the tapes. Faults on request: appends that fail after a number
/// of successful ones, reads that return altered payloads.
#[derive(Clone)]
pub struct MemStore {
    info: Arc<ProviderInfo>,
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Default)]
struct MemInner {
    tapes: BTreeMap<String, (TapeInfo, Vec<Frame>)>,
    /// Frames appended (newly stored) by writers.
    appended: u64,
    /// Successful appends left before every append fails.
    appends_left: Option<u64>,
    /// `read_frames` flips the last byte of every payload.
    tamper_reads: bool,
}

impl MemStore {
    /// An empty store whose provider is called `name`.
    pub fn new(name: &str) -> MemStore {
        MemStore {
            info: Arc::new(ProviderInfo {
                name: name.into(),
                version: "0.0.0".into(),
                capabilities: Capabilities::default(),
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

    /// Frames newly stored by `append` so far.
    pub fn appended(&self) -> u64 {
        self.lock().appended
    }

    /// Every `append` fails after `n` more successful ones (`None`:
    /// never).
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
        _: TapeHeader,
        _: &[Frame],
        _: TapeSummary,
        _: EndReason,
    ) -> ProviderResult<TapeInfo> {
        unsupported()
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
        let mut tapes: Vec<TapeInfo> = self
            .lock()
            .tapes
            .values()
            .map(|(info, _)| info.clone())
            .filter(|t| filter.matches(t))
            .collect();
        tapes.sort_by(|a, b| {
            (b.header.created_at_us, &b.header.id).cmp(&(a.header.created_at_us, &a.header.id))
        });
        let Ok(from) = cursor.map_or(Ok(0), str::parse::<usize>) else {
            return error(self.name(), StorageError::invalid_input("bad cursor"));
        };
        let to = (from + limit as usize).min(tapes.len());
        Ok(TapePage {
            tapes: tapes[from..to].to_vec(),
            next_cursor: (to < tapes.len()).then(|| to.to_string()),
        })
    }

    async fn search(&self, _: &SearchQuery, _: Option<&str>, _: u32) -> ProviderResult<TapePage> {
        unsupported()
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        unsupported()
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
        let (name, id) = (self.store.name().to_string(), self.id.clone());
        let next = self.recording(|inner| {
            if let Some(left) = &mut inner.appends_left {
                if *left == 0 {
                    return error(&name, StorageError::io("injected append failure"));
                }
                *left -= 1;
            }
            let (info, stored) = inner.tapes.get_mut(&id).expect("checked");
            let next = stored.len() as u64;
            let new: Vec<&Frame> = frames.iter().filter(|f| f.seq >= next).collect();
            if new
                .iter()
                .enumerate()
                .any(|(i, f)| f.seq != next + i as u64)
            {
                return error(&name, StorageError::invalid_input("gap"));
            }
            for f in &new {
                info.frame_count += 1;
                info.byte_count += f.payload.len() as u64;
                stored.push((*f).clone());
            }
            inner.appended += new.len() as u64;
            Ok(next + new.len() as u64)
        })?;
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
