//! Tampering: a falsified view of an ended tape that is structurally
//! perfect (sequence numbers consecutive from 0, counts in `get` equal to
//! what `read-frames` returns, any paging seeing one consistent sequence),
//! so that only the host's checks (its digest chain and its seal) can tell.
//!
//! The frame modes define the view over the stream of stored frames, which
//! is read in order from the position where a requested page starts, so
//! every page of the tampered tape is a slice of the same logical frame
//! list. `swap` shows another stored tape's frames, `digest`, `header` and
//! `unseal` leave frames alone.
//!
//! Everything reads the stored tapes through [`Store`]: the fs store in the
//! provider, a map in the tests.

use crate::config::{Tamper, TamperMode};
use std::collections::VecDeque;
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{DigestChain, Direction, Frame, TapeHeader, TapeInfo, TapeState};

/// The payload of the frame that `add` inserts: a well-formed JSON-RPC
/// notification from the server.
pub const EXTRA_PAYLOAD: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"inserted by faulty-provider"}}"#;

/// What `header` appends to the name of every ended tape.
pub const EDITED_NAME: &str = " (edited)";

/// The tag `header` adds to every ended tape.
pub const EDITED_TAG: (&str, &str) = ("edited-by", "faulty");

/// Frames per read when `rechain` reads a whole tape to recompute its
/// digest.
const CHAIN_PAGE_FRAMES: u32 = 256;

/// Payload bytes per read (roughly) when `rechain` reads a whole tape.
const CHAIN_PAGE_BYTES: u64 = 1 << 20;

/// The stored tapes, as tampering reads them.
pub trait Store {
    /// What a failed read returns.
    type Error;

    /// Tape `id` as stored (`get`), or `None` if there is no such tape.
    fn tape(&self, id: &str) -> Result<Option<TapeInfo>, Self::Error>;

    /// Stored frames of tape `id`, with the paging rules of `read-frames`.
    fn frames(
        &self,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, Self::Error>;
}

/// The frame `add` inserts after `after` (same timestamp, so timestamps stay
/// in order), with the terms the host derives for its payload.
fn extra_frame(after: &Frame) -> Frame {
    let mut f = Frame::new(
        after.seq + 1,
        after.timestamp_us,
        Direction::ServerToClient,
        EXTRA_PAYLOAD.to_vec(),
        false,
    );
    f.terms = payload_terms(EXTRA_PAYLOAD);
    f
}

/// Changes one byte of `payload`: the case of the first ASCII letter from the
/// middle on (else before it), so a JSON payload most likely stays JSON;
/// failing that, the lowest bit of the middle byte. An empty payload gets one
/// byte (a space), the only change possible; `get` accounts for it.
pub fn alter_payload(payload: &mut Vec<u8>) {
    if payload.is_empty() {
        payload.push(b' ');
        return;
    }
    let mid = payload.len() / 2;
    let letter = (mid..payload.len())
        .chain(0..mid)
        .find(|&i| payload[i].is_ascii_alphabetic());
    match letter {
        Some(i) => payload[i] ^= 0x20,
        None => payload[mid] ^= 0x01,
    }
}

/// Changes the last hex digit of a digest (the nibble's lowest bit), so it
/// stays well-formed lowercase hex. An empty digest is left alone.
pub fn flip_digest(digest: &mut String) {
    let Some(last) = digest.pop() else { return };
    let flipped = match last.to_digit(16) {
        Some(v) => char::from_digit(v ^ 1, 16).expect("a nibble"),
        None => '0',
    };
    digest.push(flipped);
}

/// What a provider that swapped two rows reports for tape `id`: everything
/// of `other` (state, counts, end, digest, seal, header) but the id.
fn swapped(id: String, other: TapeInfo) -> TapeInfo {
    TapeInfo {
        header: TapeHeader { id, ..other.header },
        ..other
    }
}

impl Tamper {
    /// What `get` / `list` / `search` report for `info`, a stored tape.
    /// A recording tape is reported as stored. For an ended one:
    ///
    /// * the frame modes (`alter`, `drop`, `reorder`, `add`) report counts
    ///   that agree with [`Tamper::frames`], and the stored digest and seal;
    /// * `rechain` reports the counts of `alter` and the digest recomputed
    ///   over the tampered frames (reading the whole tape, in pages: the
    ///   cost of a `read-frames` of it for every tape reported);
    /// * `digest` reports a changed digest;
    /// * `swap` reports the other tape of the pair under this one's id (when
    ///   this is one of them and the other is stored and ended);
    /// * `header` reports a changed name and one more tag;
    /// * `unseal` reports no seal.
    ///
    /// Nothing else changes: in particular the header (envelope included)
    /// is as stored except under `swap` and `header`, and the seal except
    /// under `swap` and `unseal`.
    pub fn info<S: Store>(&self, store: &S, mut info: TapeInfo) -> Result<TapeInfo, S::Error> {
        if info.state == TapeState::Recording {
            return Ok(info);
        }
        let k = self.frame;
        let in_range = k < info.frame_count;
        match self.mode {
            TamperMode::Alter | TamperMode::Rechain | TamperMode::Drop if in_range => {
                let id = info.header.id.clone();
                let Some(f) = store.frames(&id, k, 1, u64::MAX)?.into_iter().next() else {
                    return Ok(info);
                };
                if self.mode == TamperMode::Drop {
                    info.frame_count -= 1;
                    info.byte_count = info.byte_count.saturating_sub(f.payload.len() as u64);
                    return Ok(info);
                }
                if f.payload.is_empty() {
                    info.byte_count += 1;
                }
                if self.mode == TamperMode::Rechain && info.digest.is_some() {
                    info.digest = Some(self.chain(store, &id)?);
                }
            }
            TamperMode::Alter | TamperMode::Rechain | TamperMode::Drop => {}
            TamperMode::Add => {
                if in_range {
                    info.frame_count += 1;
                    info.byte_count += EXTRA_PAYLOAD.len() as u64;
                }
            }
            TamperMode::Reorder => {}
            TamperMode::Digest => {
                if let Some(d) = info.digest.as_mut() {
                    flip_digest(d);
                }
            }
            TamperMode::Swap => {
                if let Some(other) = self.partner(store, &info.header.id)? {
                    info = swapped(info.header.id, other);
                }
            }
            TamperMode::Header => {
                info.header.name.push_str(EDITED_NAME);
                let (key, value) = EDITED_TAG;
                info.header.tags.push((key.into(), value.into()));
            }
            TamperMode::Unseal => info.seal = None,
        }
        Ok(info)
    }

    /// What `read-frames` returns for tape `id`: the stored frames for a
    /// recording tape (or a read of none, or an unknown tape: the store's
    /// answer); for an ended one, the other tape's frames under `swap`
    /// (see [`Tamper::info`]), else the page of [`Tamper::read`].
    pub fn frames<S: Store>(
        &self,
        store: &S,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, S::Error> {
        let ended = max_frames > 0
            && store
                .tape(id)?
                .is_some_and(|t| t.state != TapeState::Recording);
        if !ended {
            return store.frames(id, from, max_frames, max_bytes);
        }
        if self.mode == TamperMode::Swap {
            let shown = self.partner(store, id)?.map(|other| other.header.id);
            return store.frames(shown.as_deref().unwrap_or(id), from, max_frames, max_bytes);
        }
        self.read(from, max_frames, max_bytes, |from, n, bytes| {
            store.frames(id, from, n, bytes)
        })
    }

    /// Under `swap`, for ended tape `id`: the other tape of the pair when
    /// `id` is one of them and the other is stored and ended.
    fn partner<S: Store>(&self, store: &S, id: &str) -> Result<Option<TapeInfo>, S::Error> {
        let Some([a, b]) = &self.tapes else {
            return Ok(None);
        };
        let other = if id == a {
            b
        } else if id == b {
            a
        } else {
            return Ok(None);
        };
        Ok(store
            .tape(other)?
            .filter(|t| t.state != TapeState::Recording))
    }

    /// The digest chain over the whole tampered tape `id`, read in pages.
    fn chain<S: Store>(&self, store: &S, id: &str) -> Result<String, S::Error> {
        let mut chain = DigestChain::new();
        loop {
            let page = self.read(
                chain.frames(),
                CHAIN_PAGE_FRAMES,
                CHAIN_PAGE_BYTES,
                |from, n, bytes| store.frames(id, from, n, bytes),
            )?;
            if page.is_empty() {
                return Ok(chain.hex());
            }
            for f in &page {
                chain.push(f);
            }
        }
    }

    /// The stored frame to start reading from for tampered sequence
    /// number `from`.
    fn stored_start(&self, from: u64) -> u64 {
        let k = self.frame;
        match self.mode {
            TamperMode::Drop if from >= k => from.saturating_add(1),
            TamperMode::Add if from == k.saturating_add(1) => k,
            TamperMode::Add if from > k => from - 1,
            TamperMode::Reorder if from == k.saturating_add(1) => k,
            _ => from,
        }
    }

    /// One page of the tampered frames of one stored tape, with the paging
    /// rules of `read-frames` (frames with `seq >= from`, at most
    /// `max_frames`, no further frame once the payloads reach `max_bytes`,
    /// at least one if any remain). Only the frame modes (`alter`,
    /// `rechain`, `drop`, `reorder`, `add`) change frames.
    ///
    /// `read(from, max_frames, max_bytes)` reads *stored* frames the same
    /// way; it is called as often as needed (a dropped frame, for instance,
    /// uses up stored bytes that the tampered page does not count).
    pub fn read<E>(
        &self,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
        read: impl FnMut(u64, u32, u64) -> Result<Vec<Frame>, E>,
    ) -> Result<Vec<Frame>, E> {
        let mut stream = Stream {
            mode: self.mode,
            frame: self.frame,
            stored: Stored {
                read,
                next: self.stored_start(from),
                chunk: max_frames.saturating_add(2),
                max_bytes,
                buf: VecDeque::new(),
                done: false,
            },
            pending: VecDeque::new(),
        };
        let mut out: Vec<Frame> = Vec::new();
        let mut total = 0u64;
        while out.len() < max_frames as usize {
            let Some(f) = stream.next()? else { break };
            if f.seq < from {
                continue;
            }
            let len = f.payload.len() as u64;
            if !out.is_empty() && (total >= max_bytes || total.saturating_add(len) > max_bytes) {
                break;
            }
            total += len;
            out.push(f);
        }
        Ok(out)
    }
}

/// Stored frames, in order, read in chunks.
struct Stored<R> {
    read: R,
    next: u64,
    chunk: u32,
    max_bytes: u64,
    buf: VecDeque<Frame>,
    done: bool,
}

impl<E, R: FnMut(u64, u32, u64) -> Result<Vec<Frame>, E>> Stored<R> {
    fn next(&mut self) -> Result<Option<Frame>, E> {
        if self.buf.is_empty() && !self.done {
            let frames = (self.read)(self.next, self.chunk, self.max_bytes)?;
            match frames.last() {
                Some(last) => self.next = last.seq + 1,
                None => self.done = true,
            }
            self.buf.extend(frames);
        }
        Ok(self.buf.pop_front())
    }
}

/// The tampered frames, in order, from the stored ones.
struct Stream<R> {
    mode: TamperMode,
    frame: u64,
    stored: Stored<R>,
    pending: VecDeque<Frame>,
}

impl<E, R: FnMut(u64, u32, u64) -> Result<Vec<Frame>, E>> Stream<R> {
    fn next(&mut self) -> Result<Option<Frame>, E> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        let Some(mut f) = self.stored.next()? else {
            return Ok(None);
        };
        let k = self.frame;
        match self.mode {
            TamperMode::Digest | TamperMode::Swap | TamperMode::Header | TamperMode::Unseal => {}
            TamperMode::Alter | TamperMode::Rechain => {
                if f.seq == k {
                    alter_payload(&mut f.payload);
                }
            }
            TamperMode::Drop => {
                if f.seq == k {
                    let Some(next) = self.stored.next()? else {
                        return Ok(None);
                    };
                    f = next;
                }
                if f.seq > k {
                    f.seq -= 1;
                }
            }
            TamperMode::Reorder => {
                if f.seq == k
                    && let Some(mut g) = self.stored.next()?
                {
                    std::mem::swap(&mut f.payload, &mut g.payload);
                    std::mem::swap(&mut f.direction, &mut g.direction);
                    std::mem::swap(&mut f.timestamp_us, &mut g.timestamp_us);
                    std::mem::swap(&mut f.not_json, &mut g.not_json);
                    std::mem::swap(&mut f.terms, &mut g.terms);
                    std::mem::swap(&mut f.attributes, &mut g.attributes);
                    self.pending.push_back(g);
                }
            }
            TamperMode::Add => {
                if f.seq == k {
                    self.pending.push_back(extra_frame(&f));
                } else if f.seq > k {
                    f.seq += 1;
                }
            }
        }
        Ok(Some(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A stored tape of `n` frames with payloads of varying sizes, each
    /// with terms and attributes of its own.
    fn tape(n: u64) -> Vec<Frame> {
        (0..n)
            .map(|seq| Frame {
                seq,
                timestamp_us: 1_000 + seq * 10,
                direction: if seq % 2 == 0 {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                },
                payload: format!(
                    r#"{{"jsonrpc":"2.0","id":{seq},"method":"tools/call","pad":"{}"}}"#,
                    "x".repeat((seq as usize * 7) % 23)
                )
                .into_bytes(),
                not_json: seq == 2,
                terms: vec!["method:tools/call".into(), format!("n:{seq}")],
                attributes: vec![("frame".into(), seq.to_string())],
            })
            .collect()
    }

    /// Another tape of `n` frames, different from [`tape`] in every frame.
    fn other_tape(n: u64) -> Vec<Frame> {
        tape(n)
            .into_iter()
            .map(|mut f| {
                f.timestamp_us += 500_000;
                f.payload = f.payload.to_ascii_uppercase();
                f.terms = vec![format!("other:{}", f.seq)];
                f.attributes.clear();
                f
            })
            .collect()
    }

    /// `read-frames` over stored frames, with fs-store's paging rules.
    fn store_read(frames: &[Frame], from: u64, max_frames: u32, max_bytes: u64) -> Vec<Frame> {
        let mut out: Vec<Frame> = Vec::new();
        let mut total = 0u64;
        for f in frames.iter().filter(|f| f.seq >= from) {
            let len = f.payload.len() as u64;
            if !out.is_empty() && total + len > max_bytes {
                break;
            }
            total += len;
            out.push(f.clone());
            if out.len() >= max_frames as usize {
                break;
            }
        }
        out
    }

    /// Stored tapes in memory.
    #[derive(Default)]
    struct Mem(BTreeMap<String, (TapeInfo, Vec<Frame>)>);

    impl Mem {
        /// A store of one ended tape `t` with `frames`.
        fn one(frames: Vec<Frame>) -> Mem {
            Mem::default().with(info_of("t", &frames), frames)
        }

        fn with(mut self, info: TapeInfo, frames: Vec<Frame>) -> Mem {
            self.0.insert(info.header.id.clone(), (info, frames));
            self
        }

        /// Tape `id` as stored.
        fn info(&self, id: &str) -> TapeInfo {
            self.0[id].0.clone()
        }

        /// The frames of tape `id` as stored.
        fn stored(&self, id: &str) -> Vec<Frame> {
            self.0[id].1.clone()
        }
    }

    impl Store for Mem {
        type Error = String;

        fn tape(&self, id: &str) -> Result<Option<TapeInfo>, String> {
            Ok(self.0.get(id).map(|(info, _)| info.clone()))
        }

        fn frames(
            &self,
            id: &str,
            from: u64,
            max_frames: u32,
            max_bytes: u64,
        ) -> Result<Vec<Frame>, String> {
            let (_, frames) = self.0.get(id).ok_or(format!("no tape {id}"))?;
            Ok(store_read(frames, from, max_frames, max_bytes))
        }
    }

    /// An ended tape `id` holding `frames`, with its true digest, a seal
    /// and a header with every field set.
    fn info_of(id: &str, frames: &[Frame]) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: id.into(),
                session_id: format!("session of {id}"),
                name: format!("tape {id}"),
                tags: vec![("tape".into(), id.into())],
                created_at_us: 7,
                envelope: Some(format!("the envelope of {id}").into_bytes()),
            },
            state: TapeState::Finished,
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: Some(1),
            digest: Some(DigestChain::over(frames).hex()),
            seal: Some(format!("the seal of {id}").into_bytes()),
        }
    }

    /// A tamper setting; `swap` swaps tapes `t` and `u`.
    fn tamper(mode: TamperMode, frame: u64) -> Tamper {
        let tapes = (mode == TamperMode::Swap).then(|| ["t".into(), "u".into()]);
        Tamper { mode, frame, tapes }
    }

    /// The whole tampered tape `t`, read in one go.
    fn whole(t: &Tamper, store: &Mem) -> Vec<Frame> {
        t.frames(store, "t", 0, u32::MAX, u64::MAX).unwrap()
    }

    /// What `get` reports for tampered tape `t`.
    fn tampered_info(t: &Tamper, store: &Mem) -> TapeInfo {
        t.info(store, store.info("t")).unwrap()
    }

    /// Tampered tape `id` read in pages of `max_frames` / `max_bytes`,
    /// checking that each page keeps to them.
    fn paged(t: &Tamper, store: &Mem, id: &str, max_frames: u32, max_bytes: u64) -> Vec<Frame> {
        let mut all = Vec::new();
        loop {
            let page = t
                .frames(store, id, all.len() as u64, max_frames, max_bytes)
                .unwrap();
            if page.is_empty() {
                return all;
            }
            assert!(page.len() <= max_frames as usize);
            let before_last: u64 = page[..page.len() - 1]
                .iter()
                .map(|f| f.payload.len() as u64)
                .sum();
            assert!(
                page.len() == 1 || before_last < max_bytes,
                "page past max-bytes"
            );
            all.extend(page);
        }
    }

    #[test]
    fn each_frame_mode_changes_what_it_says() {
        let stored = tape(6);
        let store = Mem::one(stored.clone());
        let t = |mode| tamper(mode, 3);

        let alter = whole(&t(TamperMode::Alter), &store);
        assert_eq!(alter.len(), 6);
        for (a, s) in alter.iter().zip(&stored) {
            assert_eq!(a.seq, s.seq);
            if a.seq == 3 {
                assert_ne!(a.payload, s.payload);
                assert_eq!(a.payload.len(), s.payload.len());
                let diff = a.payload.iter().zip(&s.payload).filter(|(x, y)| x != y);
                assert_eq!(diff.count(), 1);
                let _: serde_json::Value = serde_json::from_slice(&a.payload).unwrap();
            } else {
                assert_eq!(a, s);
            }
        }
        // The digest stays the stored one, which the frames no longer match.
        let info = tampered_info(&t(TamperMode::Alter), &store);
        assert_eq!(info, store.info("t"));
        assert_ne!(info.digest, Some(DigestChain::over(&alter).hex()));

        // Rechain: the same frames, and a digest that matches them.
        assert_eq!(whole(&t(TamperMode::Rechain), &store), alter);
        let info = tampered_info(&t(TamperMode::Rechain), &store);
        assert_eq!(info.digest, Some(DigestChain::over(&alter).hex()));
        assert_ne!(info.digest, store.info("t").digest);
        assert_eq!(
            TapeInfo {
                digest: store.info("t").digest,
                ..info
            },
            store.info("t")
        );

        let dropped = whole(&t(TamperMode::Drop), &store);
        assert_eq!(dropped.len(), 5);
        assert_eq!(&dropped[..3], &stored[..3]);
        for (i, f) in dropped[3..].iter().enumerate() {
            assert_eq!(f.seq, 3 + i as u64);
            assert_eq!(f.payload, stored[4 + i].payload);
        }

        let reordered = whole(&t(TamperMode::Reorder), &store);
        assert_eq!(reordered.len(), 6);
        assert_eq!((reordered[3].seq, reordered[4].seq), (3, 4));
        assert_eq!(reordered[3].payload, stored[4].payload);
        assert_eq!(reordered[3].direction, stored[4].direction);
        assert_eq!(reordered[3].timestamp_us, stored[4].timestamp_us);
        assert_eq!(reordered[4].payload, stored[3].payload);
        assert_eq!(reordered[4].direction, stored[3].direction);
        assert_eq!(reordered[4].timestamp_us, stored[3].timestamp_us);
        assert_eq!(reordered[3].terms, stored[4].terms);
        assert_eq!(reordered[4].attributes, stored[3].attributes);
        assert_eq!(&reordered[..3], &stored[..3]);
        assert_eq!(reordered[5], stored[5]);

        let added = whole(&t(TamperMode::Add), &store);
        assert_eq!(added.len(), 7);
        assert_eq!(&added[..4], &stored[..4]);
        assert_eq!(added[4].seq, 4);
        assert_eq!(added[4].payload, EXTRA_PAYLOAD);
        assert_eq!(added[4].terms, ["method:notifications/message"]);
        let _: serde_json::Value = serde_json::from_slice(&added[4].payload).unwrap();
        assert_eq!(added[5].seq, 5);
        assert_eq!(added[5].payload, stored[4].payload);
        assert_eq!(added[6].seq, 6);

        let store = Mem::one(stored.clone()).with(
            TapeInfo {
                digest: Some("00ab".into()),
                ..info_of("d", &stored)
            },
            stored.clone(),
        );
        let digest = tamper(TamperMode::Digest, 3);
        assert_eq!(whole(&digest, &store), stored);
        let info = digest.info(&store, store.info("d")).unwrap();
        assert_eq!(info.digest.as_deref(), Some("00aa"));
        assert_eq!(info.frame_count, 6);
    }

    /// Counts agree with the frames, seqs run from 0, and every way of paging
    /// through the tape sees the same frames as reading it whole.
    #[test]
    fn every_paging_sees_one_consistent_tape() {
        for n in [0u64, 1, 2, 3, 4, 5, 9, 70] {
            let stored = tape(n);
            let other = other_tape(n / 2 + 3);
            let store = Mem::one(stored.clone()).with(info_of("u", &other), other);
            for mode in TamperMode::ALL {
                for frame in [0, 1, 2, n.saturating_sub(2), n.saturating_sub(1), n, n + 5] {
                    let t = tamper(mode, frame);
                    let all = whole(&t, &store);
                    let info = tampered_info(&t, &store);
                    let ctx = format!("{mode:?} frame {frame} of {n}");
                    assert_eq!(info.frame_count, all.len() as u64, "{ctx}");
                    let bytes: u64 = all.iter().map(|f| f.payload.len() as u64).sum();
                    assert_eq!(info.byte_count, bytes, "{ctx}");
                    for (i, f) in all.iter().enumerate() {
                        assert_eq!(f.seq, i as u64, "{ctx}");
                    }
                    for max_frames in [1u32, 2, 3, 7] {
                        for max_bytes in [0u64, 1, 40, 100, u64::MAX] {
                            let paged = paged(&t, &store, "t", max_frames, max_bytes);
                            assert_eq!(paged, all, "{ctx} paged by {max_frames}/{max_bytes}");
                        }
                    }
                    // Starting anywhere gives the tail of the same tape.
                    for from in 0..=all.len() as u64 + 1 {
                        let tail = t.frames(&store, "t", from, u32::MAX, u64::MAX).unwrap();
                        assert_eq!(
                            tail,
                            all[(from as usize).min(all.len())..],
                            "{ctx} from {from}"
                        );
                    }
                    // The reported digest matches the frames just where the
                    // provider lies consistently (or does not lie).
                    let honest = all == stored && mode != TamperMode::Digest;
                    let consistent =
                        honest || matches!(mode, TamperMode::Rechain | TamperMode::Swap);
                    assert_eq!(
                        info.digest == Some(DigestChain::over(&all).hex()),
                        consistent,
                        "{ctx}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_frame_modes_keep_the_header_and_the_seal() {
        let store = Mem::one(tape(5));
        for mode in TamperMode::ALL {
            if matches!(
                mode,
                TamperMode::Swap | TamperMode::Header | TamperMode::Unseal
            ) {
                continue;
            }
            for frame in [0, 2, 4, 9] {
                let info = tampered_info(&tamper(mode, frame), &store);
                let orig = store.info("t");
                assert_eq!(info.header, orig.header, "{mode:?}");
                assert_eq!(info.seal, orig.seal, "{mode:?}");
            }
        }
    }

    #[test]
    fn out_of_range_frames_change_nothing() {
        let stored = tape(4);
        let store = Mem::one(stored.clone());
        for mode in [
            TamperMode::Alter,
            TamperMode::Rechain,
            TamperMode::Drop,
            TamperMode::Add,
        ] {
            let t = tamper(mode, 4);
            assert_eq!(whole(&t, &store), stored, "{mode:?}");
            assert_eq!(tampered_info(&t, &store), store.info("t"), "{mode:?}");
        }
        // Reorder needs two frames: the last one alone stays put.
        assert_eq!(whole(&tamper(TamperMode::Reorder, 3), &store), stored);
    }

    #[test]
    fn recording_tapes_are_left_alone() {
        let stored = tape(4);
        let recording = TapeInfo {
            state: TapeState::Recording,
            ended_at_us: None,
            digest: None,
            seal: None,
            ..info_of("t", &stored)
        };
        let other = other_tape(2);
        let store = Mem::default()
            .with(recording.clone(), stored.clone())
            .with(info_of("u", &other), other.clone());
        for mode in TamperMode::ALL {
            let t = tamper(mode, 1);
            assert_eq!(
                t.info(&store, recording.clone()).unwrap(),
                recording,
                "{mode:?}"
            );
            assert_eq!(whole(&t, &store), stored, "{mode:?}");
        }
        // Swap needs both tapes ended: ended `u` keeps its own content too.
        let t = tamper(TamperMode::Swap, 0);
        assert_eq!(t.info(&store, store.info("u")).unwrap(), store.info("u"));
        assert_eq!(t.frames(&store, "u", 0, 9, u64::MAX).unwrap(), other);
    }

    #[test]
    fn an_empty_payload_is_altered_too() {
        let mut stored = tape(3);
        stored[1].payload.clear();
        let store = Mem::one(stored);
        for mode in [TamperMode::Alter, TamperMode::Rechain] {
            let t = tamper(mode, 1);
            let all = whole(&t, &store);
            assert_eq!(all[1].payload, b" ");
            let info = tampered_info(&t, &store);
            assert_eq!(info.byte_count, store.info("t").byte_count + 1);
            let rechained = mode == TamperMode::Rechain;
            assert_eq!(
                info.digest == Some(DigestChain::over(&all).hex()),
                rechained
            );
        }
    }

    #[test]
    fn rechain_recomputes_the_digest_over_what_is_read() {
        // Long enough for several of the pages the digest is computed in.
        let mut stored = tape(700);
        for f in stored.iter_mut().step_by(50) {
            f.payload.extend(std::iter::repeat_n(b' ', 20_000));
        }
        let store = Mem::one(stored.clone());
        for frame in [0, 1, 255, 256, 699] {
            let t = tamper(TamperMode::Rechain, frame);
            let info = tampered_info(&t, &store);
            let digest = info.digest.clone().unwrap();
            assert_ne!(
                Some(&digest),
                store.info("t").digest.as_ref(),
                "frame {frame}"
            );
            assert!(DigestChain::over(&whole(&t, &store)).matches(&digest));
            for (max_frames, max_bytes) in [(1, u64::MAX), (7, 30_000), (1000, 1)] {
                let frames = paged(&t, &store, "t", max_frames, max_bytes);
                assert_eq!(frames.len(), 700);
                assert_eq!(DigestChain::over(&frames).hex(), digest);
            }
            // Only the digest (and never the seal) differs from the stored info.
            assert_eq!(
                TapeInfo {
                    digest: store.info("t").digest,
                    ..info
                },
                store.info("t")
            );
        }
        // A tape without a digest stays without one (its frames are altered).
        let store = Mem::default().with(
            TapeInfo {
                digest: None,
                ..info_of("t", &stored)
            },
            stored.clone(),
        );
        let t = tamper(TamperMode::Rechain, 3);
        assert_eq!(tampered_info(&t, &store).digest, None);
        assert_ne!(whole(&t, &store), stored);
    }

    #[test]
    fn swap_exchanges_two_ended_tapes_and_keeps_their_ids() {
        let (a, b, c) = (tape(5), other_tape(3), tape(2));
        let store = Mem::default()
            .with(info_of("t", &a), a.clone())
            .with(
                TapeInfo {
                    state: TapeState::Aborted,
                    ended_at_us: Some(99),
                    ..info_of("u", &b)
                },
                b.clone(),
            )
            .with(info_of("c", &c), c.clone());
        let t = tamper(TamperMode::Swap, 1);
        for (id, shown) in [("t", "u"), ("u", "t")] {
            let info = t.info(&store, store.info(id)).unwrap();
            let mut expected = store.info(shown);
            expected.header.id = id.into();
            assert_eq!(info, expected, "{id}");
            assert_eq!(info.seal, store.info(shown).seal);
            assert_eq!(info.header.envelope, store.info(shown).header.envelope);
            for (max_frames, max_bytes) in [(u32::MAX, u64::MAX), (2, 40), (1, 0)] {
                let frames = paged(&t, &store, id, max_frames, max_bytes);
                assert_eq!(frames, store.stored(shown), "{id}");
            }
            assert_eq!(
                t.frames(&store, id, 1, 1, u64::MAX).unwrap(),
                store.stored(shown)[1..2]
            );
        }
        // Other tapes are left alone.
        assert_eq!(t.info(&store, store.info("c")).unwrap(), store.info("c"));
        assert_eq!(whole_of(&t, &store, "c"), c);

        // With the other tape missing, nothing is swapped.
        let lonely = Mem::default().with(info_of("t", &a), a.clone());
        assert_eq!(t.info(&lonely, lonely.info("t")).unwrap(), lonely.info("t"));
        assert_eq!(whole(&t, &lonely), a);
    }

    fn whole_of(t: &Tamper, store: &Mem, id: &str) -> Vec<Frame> {
        t.frames(store, id, 0, u32::MAX, u64::MAX).unwrap()
    }

    #[test]
    fn header_changes_only_the_name_and_the_tags() {
        let stored = tape(4);
        let store = Mem::one(stored.clone());
        let t = tamper(TamperMode::Header, 2);
        let info = tampered_info(&t, &store);
        let mut expected = store.info("t");
        expected.header.name = "tape t (edited)".into();
        expected
            .header
            .tags
            .push(("edited-by".into(), "faulty".into()));
        assert_eq!(info, expected);
        assert_eq!(whole(&t, &store), stored);
    }

    #[test]
    fn unseal_drops_only_the_seal() {
        let stored = tape(4);
        let store = Mem::one(stored.clone());
        let t = tamper(TamperMode::Unseal, 2);
        let info = tampered_info(&t, &store);
        assert_eq!(
            info,
            TapeInfo {
                seal: None,
                ..store.info("t")
            }
        );
        assert!(info.header.envelope.is_some());
        assert_eq!(whole(&t, &store), stored);
    }

    #[test]
    fn payloads_without_letters_and_digests() {
        let mut p = b"[1,2]".to_vec();
        alter_payload(&mut p);
        assert_eq!(p, b"[1-2]");
        let mut p = b"ab".to_vec();
        alter_payload(&mut p);
        assert_eq!(p, b"aB");
        for (from, to) in [
            ("ff", "fe"),
            ("a0", "a1"),
            ("19", "18"),
            ("", ""),
            ("1a", "1b"),
        ] {
            let mut d = from.to_string();
            flip_digest(&mut d);
            assert_eq!(d, to);
        }
    }

    #[test]
    fn read_errors_pass_through() {
        let t = tamper(TamperMode::Drop, 0);
        let r = t.read(0, 5, 100, |_, _, _| Err::<Vec<Frame>, _>("disk on fire"));
        assert_eq!(r.unwrap_err(), "disk on fire");
        // A failing store's errors come back from both reads.
        let gone = Mem::default();
        for mode in TamperMode::ALL {
            let t = tamper(mode, 0);
            let e = t.frames(&gone, "t", 0, 1, 1).unwrap_err();
            assert_eq!(e, "no tape t", "{mode:?}");
        }
        let info = info_of("t", &tape(3));
        let e = tamper(TamperMode::Rechain, 1).info(&gone, info);
        assert_eq!(e.unwrap_err(), "no tape t");
    }
}
