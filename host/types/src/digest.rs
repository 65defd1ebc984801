//! The tape digest: a SHA-256 hash chain over every frame, in order.
//!
//! ```text
//! d_0     = sha256("tapedeck-chain-v1")
//! d_{n+1} = sha256(d_n || seq_le || ts_le || dir_byte || flags_byte || payload_len_le || payload
//!                  [|| attr_count_le || (key_len_le || key || value_len_le || value)*])
//! ```
//!
//! The attribute part is present only when the frame has attributes (the
//! host's own facts about it, contract 0.2), so a frame without any hashes
//! as before and every earlier digest still holds; with it, the seal over
//! the digest covers attributes too. Index terms are not covered: the host
//! derives them from the payload and can check them against it.
//!
//! `seq_le`, `ts_le` and `payload_len_le` are the frame's sequence number, its
//! timestamp (µs) and its payload length as 8-byte little-endian integers;
//! `dir_byte` is 0 for client→server and 1 for server→client; `flags_byte`
//! has bit 0 set when the frame is flagged `not_json`. The tape's digest (the
//! `digest` of its summary, lowercase hex) is `d_N` for a tape of `N` frames.
//!
//! Because every link covers the previous one, a changed, missing, added or
//! reordered frame changes the final digest. A reader verifies a tape
//! streaming, page by page, with [`DigestChain::push`] and
//! [`DigestChain::matches`], without holding the whole tape.

use crate::{Direction, Frame};
use sha2::{Digest, Sha256};
use std::fmt;

/// The domain-separation string hashed to start the chain (`d_0`).
pub const CHAIN_DOMAIN: &[u8] = b"tapedeck-chain-v1";

/// A running digest chain over a tape's frames (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct DigestChain {
    state: [u8; 32],
    frames: u64,
}

impl fmt::Debug for DigestChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestChain")
            .field("digest", &self.hex())
            .field("frames", &self.frames)
            .finish()
    }
}

impl Default for DigestChain {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestChain {
    /// The chain of a tape with no frames: `d_0`.
    pub fn new() -> Self {
        DigestChain {
            state: Sha256::digest(CHAIN_DOMAIN).into(),
            frames: 0,
        }
    }

    /// The chain over `frames`, in the order given.
    pub fn over<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Self {
        let mut chain = Self::new();
        for f in frames {
            chain.push(f);
        }
        chain
    }

    /// Extends the chain by one frame.
    pub fn push(&mut self, frame: &Frame) {
        self.push_parts(
            frame.seq,
            frame.timestamp_us,
            frame.direction,
            frame.not_json,
            &frame.payload,
            &frame.attributes,
        );
    }

    /// Extends the chain by one frame given as its parts.
    pub fn push_parts(
        &mut self,
        seq: u64,
        timestamp_us: u64,
        direction: Direction,
        not_json: bool,
        payload: &[u8],
        attributes: &[(String, String)],
    ) {
        let mut h = Sha256::new();
        h.update(self.state);
        h.update(seq.to_le_bytes());
        h.update(timestamp_us.to_le_bytes());
        h.update([direction_byte(direction)]);
        h.update([u8::from(not_json)]);
        h.update((payload.len() as u64).to_le_bytes());
        h.update(payload);
        // Attributes, when a frame has any, follow the payload: a frame
        // without them hashes as in chain v1, so earlier digests hold.
        if !attributes.is_empty() {
            h.update((attributes.len() as u64).to_le_bytes());
            for (k, v) in attributes {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
        }
        self.state = h.finalize().into();
        self.frames += 1;
    }

    /// Number of frames pushed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The current digest, `d_n` after `n` frames.
    pub fn bytes(&self) -> [u8; 32] {
        self.state
    }

    /// The current digest as lowercase hex (the form stored in a summary).
    pub fn hex(&self) -> String {
        hex::encode(self.state)
    }

    /// True if the current digest equals `expected` (hex, either case).
    pub fn matches(&self, expected: &str) -> bool {
        hex::decode(expected.trim()).is_ok_and(|d| d == self.state)
    }

    /// Checks `frames` against the digest `expected` (hex) recorded for them.
    pub fn verify<'a>(
        frames: impl IntoIterator<Item = &'a Frame>,
        expected: &str,
    ) -> Result<(), DigestMismatch> {
        Self::over(frames).check(expected)
    }

    /// Compares the current digest with `expected` (hex) recorded for the
    /// frames pushed so far.
    pub fn check(&self, expected: &str) -> Result<(), DigestMismatch> {
        if self.matches(expected) {
            Ok(())
        } else {
            Err(DigestMismatch {
                expected: expected.to_string(),
                computed: self.hex(),
                frames: self.frames,
            })
        }
    }
}

/// The byte a direction contributes to the chain.
fn direction_byte(direction: Direction) -> u8 {
    match direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// Frames whose chain does not reproduce the recorded digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "digest mismatch over {frames} frames: recorded {expected}, computed {computed} \
     (a frame was changed, lost, added or reordered)"
)]
pub struct DigestMismatch {
    /// The digest recorded with the tape.
    pub expected: String,
    /// The digest of the frames as read.
    pub computed: String,
    /// How many frames were hashed.
    pub frames: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Frame> {
        (0..5)
            .map(|seq| {
                let direction = if seq % 2 == 0 {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                let payload = format!("{{\"id\":{seq}}}").into_bytes();
                Frame::new(
                    seq,
                    1_700_000_000_000_000 + seq * 10,
                    direction,
                    payload,
                    false,
                )
            })
            .collect()
    }

    #[test]
    fn the_empty_chain_is_the_hash_of_the_domain() {
        let chain = DigestChain::new();
        assert_eq!(
            chain.bytes(),
            <[u8; 32]>::from(Sha256::digest(CHAIN_DOMAIN))
        );
        assert_eq!(chain.frames(), 0);
        assert_eq!(chain.hex().len(), 64);
    }

    #[test]
    fn each_link_follows_the_documented_layout() {
        let f = Frame {
            seq: 7,
            timestamp_us: 42,
            direction: Direction::ServerToClient,
            payload: b"\xff\x00x".to_vec(),
            not_json: true,
            terms: Vec::new(),
            attributes: Vec::new(),
        };
        let d0: [u8; 32] = Sha256::digest(CHAIN_DOMAIN).into();
        let mut bytes = d0.to_vec();
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&42u64.to_le_bytes());
        bytes.push(1);
        bytes.push(1);
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(b"\xff\x00x");
        let want: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(DigestChain::over([&f]).bytes(), want);
    }

    #[test]
    fn verifies_the_frames_it_was_computed_over() {
        let fs = frames();
        let digest = DigestChain::over(&fs).hex();
        DigestChain::verify(&fs, &digest).unwrap();
        DigestChain::verify(&fs, &digest.to_uppercase()).unwrap();
        // Streaming gives the same result.
        let mut chain = DigestChain::new();
        for f in &fs {
            chain.push(f);
        }
        assert!(chain.matches(&digest));
        assert_eq!(chain.frames(), 5);
    }

    #[test]
    fn detects_a_changed_frame() {
        let fs = frames();
        let digest = DigestChain::over(&fs).hex();
        let mutations: [fn(&mut Frame); 5] = [
            |f| f.payload[1] ^= 1,
            |f| f.timestamp_us += 1,
            |f| f.not_json = !f.not_json,
            |f| f.direction = Direction::ServerToClient,
            |f| f.payload.push(b' '),
        ];
        for (i, mutate) in mutations.iter().enumerate() {
            let mut changed = fs.clone();
            mutate(&mut changed[2]);
            if changed == fs {
                continue; // the direction mutation may be a no-op on this frame
            }
            let err = DigestChain::verify(&changed, &digest).unwrap_err();
            assert_eq!(err.expected, digest, "mutation {i}");
            assert_ne!(err.computed, digest, "mutation {i}");
        }
    }

    #[test]
    fn detects_a_missing_an_added_or_a_reordered_frame() {
        let fs = frames();
        let digest = DigestChain::over(&fs).hex();

        let mut missing = fs.clone();
        missing.remove(3);
        assert!(DigestChain::verify(&missing, &digest).is_err());

        let truncated = &fs[..4];
        assert!(DigestChain::verify(truncated, &digest).is_err());

        let mut added = fs.clone();
        added.push(fs[4].clone());
        assert!(DigestChain::verify(&added, &digest).is_err());

        let mut reordered = fs.clone();
        reordered.swap(1, 2);
        assert!(DigestChain::verify(&reordered, &digest).is_err());

        // Swapping payloads between frames that keep their seq is caught too.
        let mut swapped = fs.clone();
        let p = swapped[1].payload.clone();
        swapped[1].payload = swapped[3].payload.clone();
        swapped[3].payload = p;
        assert!(DigestChain::verify(&swapped, &digest).is_err());
    }

    #[test]
    fn attributes_are_covered_and_frames_without_them_hash_as_before() {
        let plain = Frame::new(0, 1, Direction::ClientToServer, b"x".to_vec(), false);
        let mut with_terms = plain.clone();
        with_terms.terms = vec!["method:x".into()];
        // Terms are not covered: the host derives them from the payload.
        assert_eq!(
            DigestChain::over([&plain]).hex(),
            DigestChain::over([&with_terms]).hex()
        );
        let mut a = plain.clone();
        a.attributes = vec![("k".into(), "v".into())];
        let mut b = plain.clone();
        b.attributes = vec![("k".into(), "w".into())];
        let mut c = plain.clone();
        c.attributes = vec![("kv".into(), String::new())];
        let d = |f: &Frame| DigestChain::over([f]).hex();
        assert_ne!(d(&plain), d(&a));
        assert_ne!(d(&a), d(&b));
        assert_ne!(d(&a), d(&c));
    }

    #[test]
    fn a_malformed_digest_never_matches() {
        let chain = DigestChain::over(&frames());
        assert!(!chain.matches("not hex"));
        assert!(!chain.matches(""));
        assert!(!chain.matches(&chain.hex()[..62]));
    }
}
