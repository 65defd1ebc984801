//! Tampering: a falsified view of an ended tape that is structurally
//! perfect (sequence numbers consecutive from 0, counts in `get` equal to
//! what `read-frames` returns, any paging seeing one consistent sequence),
//! so that only the host's digest chain can tell.
//!
//! The view is defined over the stream of stored frames, which is read in
//! order from the position where a requested page starts, so every page of
//! the tampered tape is a slice of the same logical frame list.

use crate::config::{Tamper, TamperMode};
use std::collections::VecDeque;
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{Direction, Frame, TapeInfo};

/// The payload of the frame that `add` inserts: a well-formed JSON-RPC
/// notification from the server.
pub const EXTRA_PAYLOAD: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"inserted by faulty-provider"}}"#;

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

impl Tamper {
    /// Does [`Tamper::info`] need the stored frame number `self.frame` of
    /// this tape (to know its payload length)?
    pub fn needs_frame(&self, info: &TapeInfo) -> bool {
        matches!(self.mode, TamperMode::Alter | TamperMode::Drop) && self.frame < info.frame_count
    }

    /// What `get` / `list` / `search` report for an ended tape: counts that
    /// agree with [`Tamper::read`], and for `digest` a changed digest. The
    /// header (with its envelope) and the seal stay as stored.
    /// `frame` is stored frame number `self.frame` when
    /// [`Tamper::needs_frame`] says so.
    pub fn info(&self, mut info: TapeInfo, frame: Option<&Frame>) -> TapeInfo {
        let k = self.frame;
        let in_range = k < info.frame_count;
        match self.mode {
            TamperMode::Digest => {
                if let Some(d) = info.digest.as_mut() {
                    flip_digest(d);
                }
            }
            TamperMode::Alter => {
                if in_range && frame.is_some_and(|f| f.payload.is_empty()) {
                    info.byte_count += 1;
                }
            }
            TamperMode::Drop => {
                if in_range && let Some(f) = frame {
                    info.frame_count -= 1;
                    info.byte_count = info.byte_count.saturating_sub(f.payload.len() as u64);
                }
            }
            TamperMode::Add => {
                if in_range {
                    info.frame_count += 1;
                    info.byte_count += EXTRA_PAYLOAD.len() as u64;
                }
            }
            TamperMode::Reorder => {}
        }
        info
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

    /// One page of the tampered tape, with the paging rules of `read-frames`
    /// (frames with `seq >= from`, at most `max_frames`, no further frame once
    /// the payloads reach `max_bytes`, at least one if any remain).
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
            tamper: *self,
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
    tamper: Tamper,
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
        let k = self.tamper.frame;
        match self.tamper.mode {
            TamperMode::Digest => {}
            TamperMode::Alter => {
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
    use tapedeck_types::{TapeHeader, TapeState};

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

    /// `read-frames` over stored frames, with fs-store's paging rules.
    fn store_read(
        frames: &[Frame],
    ) -> impl FnMut(u64, u32, u64) -> Result<Vec<Frame>, String> + '_ {
        move |from, max_frames, max_bytes| {
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
            Ok(out)
        }
    }

    fn info_of(frames: &[Frame]) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: "t".into(),
                session_id: String::new(),
                name: String::new(),
                tags: Vec::new(),
                created_at_us: 0,
                envelope: Some(b"the envelope".to_vec()),
            },
            state: TapeState::Finished,
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: Some(1),
            digest: Some("00ab".into()),
            seal: Some(b"the seal".to_vec()),
        }
    }

    /// The whole tampered tape, read in one go.
    fn whole(t: &Tamper, frames: &[Frame]) -> Vec<Frame> {
        t.read(0, u32::MAX, u64::MAX, store_read(frames)).unwrap()
    }

    /// What `get` reports for the tampered tape.
    fn tampered_info(t: &Tamper, frames: &[Frame]) -> TapeInfo {
        let info = info_of(frames);
        let k = t.needs_frame(&info).then(|| &frames[t.frame as usize]);
        t.info(info, k)
    }

    fn modes() -> [TamperMode; 5] {
        [
            TamperMode::Alter,
            TamperMode::Drop,
            TamperMode::Reorder,
            TamperMode::Add,
            TamperMode::Digest,
        ]
    }

    #[test]
    fn each_mode_changes_what_it_says() {
        let stored = tape(6);
        let t = |mode| Tamper { mode, frame: 3 };

        let alter = whole(&t(TamperMode::Alter), &stored);
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

        let dropped = whole(&t(TamperMode::Drop), &stored);
        assert_eq!(dropped.len(), 5);
        assert_eq!(&dropped[..3], &stored[..3]);
        for (i, f) in dropped[3..].iter().enumerate() {
            assert_eq!(f.seq, 3 + i as u64);
            assert_eq!(f.payload, stored[4 + i].payload);
        }

        let reordered = whole(&t(TamperMode::Reorder), &stored);
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

        let added = whole(&t(TamperMode::Add), &stored);
        assert_eq!(added.len(), 7);
        assert_eq!(&added[..4], &stored[..4]);
        assert_eq!(added[4].seq, 4);
        assert_eq!(added[4].payload, EXTRA_PAYLOAD);
        assert_eq!(added[4].terms, ["method:notifications/message"]);
        let _: serde_json::Value = serde_json::from_slice(&added[4].payload).unwrap();
        assert_eq!(added[5].seq, 5);
        assert_eq!(added[5].payload, stored[4].payload);
        assert_eq!(added[6].seq, 6);

        assert_eq!(whole(&t(TamperMode::Digest), &stored), stored);
        let info = tampered_info(&t(TamperMode::Digest), &stored);
        assert_eq!(info.digest.as_deref(), Some("00aa"));
        assert_eq!(info.frame_count, 6);
    }

    /// Counts agree with the frames, seqs run from 0, and every way of paging
    /// through the tape sees the same frames as reading it whole.
    #[test]
    fn every_paging_sees_one_consistent_tape() {
        for n in [0u64, 1, 2, 3, 4, 5, 9, 70] {
            let stored = tape(n);
            for mode in modes() {
                for frame in [0, 1, 2, n.saturating_sub(2), n.saturating_sub(1), n, n + 5] {
                    let t = Tamper { mode, frame };
                    let all = whole(&t, &stored);
                    let info = tampered_info(&t, &stored);
                    let ctx = format!("{mode:?} frame {frame} of {n}");
                    assert_eq!(info.frame_count, all.len() as u64, "{ctx}");
                    let bytes: u64 = all.iter().map(|f| f.payload.len() as u64).sum();
                    assert_eq!(info.byte_count, bytes, "{ctx}");
                    for (i, f) in all.iter().enumerate() {
                        assert_eq!(f.seq, i as u64, "{ctx}");
                    }
                    for max_frames in [1u32, 2, 3, 7] {
                        for max_bytes in [0u64, 1, 40, 100, u64::MAX] {
                            let mut paged = Vec::new();
                            loop {
                                let page = t
                                    .read(
                                        paged.len() as u64,
                                        max_frames,
                                        max_bytes,
                                        store_read(&stored),
                                    )
                                    .unwrap();
                                if page.is_empty() {
                                    break;
                                }
                                assert!(page.len() <= max_frames as usize, "{ctx}");
                                let before_last: u64 = page[..page.len() - 1]
                                    .iter()
                                    .map(|f| f.payload.len() as u64)
                                    .sum();
                                assert!(
                                    page.len() == 1 || before_last < max_bytes,
                                    "{ctx}: page past max-bytes"
                                );
                                paged.extend(page);
                            }
                            assert_eq!(paged, all, "{ctx} paged by {max_frames}/{max_bytes}");
                        }
                    }
                    // Starting anywhere gives the tail of the same tape.
                    for from in 0..=all.len() as u64 + 1 {
                        let tail = t
                            .read(from, u32::MAX, u64::MAX, store_read(&stored))
                            .unwrap();
                        assert_eq!(
                            tail,
                            all[(from as usize).min(all.len())..],
                            "{ctx} from {from}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_header_and_the_seal_stay_as_stored() {
        let stored = tape(5);
        for mode in modes() {
            for frame in [0, 2, 4, 9] {
                let t = Tamper { mode, frame };
                let info = tampered_info(&t, &stored);
                let orig = info_of(&stored);
                assert_eq!(info.header, orig.header, "{mode:?}");
                assert_eq!(info.seal, orig.seal, "{mode:?}");
            }
        }
    }

    #[test]
    fn out_of_range_frames_change_nothing() {
        let stored = tape(4);
        for mode in [TamperMode::Alter, TamperMode::Drop, TamperMode::Add] {
            let t = Tamper { mode, frame: 4 };
            assert_eq!(whole(&t, &stored), stored, "{mode:?}");
            assert_eq!(tampered_info(&t, &stored), info_of(&stored), "{mode:?}");
        }
        // Reorder needs two frames: the last one alone stays put.
        let t = Tamper {
            mode: TamperMode::Reorder,
            frame: 3,
        };
        assert_eq!(whole(&t, &stored), stored);
    }

    #[test]
    fn an_empty_payload_is_altered_too() {
        let mut stored = tape(3);
        stored[1].payload.clear();
        let t = Tamper {
            mode: TamperMode::Alter,
            frame: 1,
        };
        let all = whole(&t, &stored);
        assert_eq!(all[1].payload, b" ");
        assert_eq!(
            tampered_info(&t, &stored).byte_count,
            info_of(&stored).byte_count + 1
        );
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
        let t = Tamper {
            mode: TamperMode::Drop,
            frame: 0,
        };
        let r = t.read(0, 5, 100, |_, _, _| Err::<Vec<Frame>, _>("disk on fire"));
        assert_eq!(r.unwrap_err(), "disk on fire");
    }
}
