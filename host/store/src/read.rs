//! Integrity verification on read: a tape's frames, read back from any
//! [`TapeStore`], checked against what the tape records about itself.
//!
//! When a recording ends, the host stores the final value of a SHA-256 hash
//! chain over the frames ([`DigestChain`]) in the tape's summary
//! ([`TapeInfo::digest`]). [`TapeReader::read_verified`] reads a tape back
//! page by page, in bounded memory, and checks:
//!
//! - sequence numbers run from 0 without gaps (the sandbox checks each page a
//!   `WasmProvider` (in `tapedeck`) returns already, but any
//!   store may be used here);
//! - the frames and payload bytes returned add up to the totals `get`
//!   reported;
//! - for a tape that has ended and carries a digest, the chain over the
//!   frames returned reproduces it: a frame that was altered, reordered,
//!   added or removed is found even when the totals agree.
//!
//! Each page goes to the caller once its frames passed the structural checks.
//! The digest can only be compared after the last frame, so a caller that
//! writes pages somewhere must *commit* (rename the file, report success) only
//! when `read_verified` returns `Ok`.
//!
//! The digest is a chain anyone can recompute, so it vouches for the frames
//! only when the host's seal vouches for the digest ([`crate::seal`]). A
//! reader of a store that seals ([`TapeStore::trusted_hosts`], or
//! [`TapeReader::trusting`]) checks the seal of an ended tape before the
//! first frame: a broken, forged, untrusted or removed seal is an
//! [`IntegrityError`] ([`Mismatch::Seal`]). Only a sealed tape whose frames
//! reproduce its digest is [`Verification::Verified`].
//!
//! A tape still `recording`, one that ended without a digest (imported
//! from a file that had none) or without a seal (recorded before seals),
//! or one read with no trusted keys, is not an error: the result is
//! [`Verification::Unverified`] with the reason. [`load_tape`] reads and
//! verifies a whole tape into memory, for library users.

use crate::TapeStore;
use crate::digest::{DigestChain, DigestMismatch};
use crate::error::ProviderError;
use crate::keys::PublicKey;
use crate::seal::{SealError, SealStatus, TrustedHosts, seal_status};
use std::convert::Infallible;
use std::fmt;
use tapedeck_types::{Frame, TapeInfo, TapeState};

/// Turns a frame as a store holds it into the frame as recorded (the
/// host's codec, [`crate::codec::TapeCodec`]): for a stream that hands out
/// stored frames but verifies recorded ones ([`TapeReader::stream_stored`]).
pub trait FrameDecoder: Send + Sync {
    /// The frame as recorded; an error says why `frame` is not one this
    /// decoder made.
    fn decode(&self, frame: Frame) -> Result<Frame, String>;
}

/// Default for the most frames asked for in one `read-frames` call.
pub const DEFAULT_PAGE_FRAMES: u32 = 1000;
/// Default for the most payload bytes asked for in one `read-frames` call
/// (a provider may exceed it by one frame).
pub const DEFAULT_PAGE_BYTES: u64 = 4 << 20;

/// What reading a tape established about its integrity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per tape read; the key is what a caller reports"
)]
pub enum Verification {
    /// The tape carries a trusted host's seal, and the frames reproduce
    /// the digest it sealed.
    Verified {
        /// The digest (lowercase hex).
        digest: String,
        /// How many frames the chain covered.
        frames: u64,
        /// The host key whose seal vouches for the tape.
        sealed_by: PublicKey,
    },
    /// The frames passed the structural checks that apply (none when
    /// [`UnverifiedReason::Skipped`]) but there is no digest to compare.
    Unverified {
        /// Why the digest was not checked.
        reason: UnverifiedReason,
        /// How many frames were read.
        frames: u64,
    },
}

impl Verification {
    /// True for [`Verification::Verified`].
    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }

    /// How many frames were read.
    pub fn frames(&self) -> u64 {
        match self {
            Verification::Verified { frames, .. } | Verification::Unverified { frames, .. } => {
                *frames
            }
        }
    }
}

/// `verified (sealed by ed25519:…, sha256 chain over 12 frames)` or `not verified: still
/// recording`.
impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Verified {
                frames, sealed_by, ..
            } => {
                write!(
                    f,
                    "verified (sealed by {sealed_by}, sha256 chain over {frames} frames)"
                )
            }
            Verification::Unverified { reason, .. } => write!(f, "not verified: {reason}"),
        }
    }
}

/// Why a tape read without error was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedReason {
    /// The tape is still `recording`: its digest is stored when it ends.
    Recording,
    /// The tape ended without a digest (e.g. imported from a file without
    /// one).
    NoDigest,
    /// The caller asked for no checks ([`TapeReader::read_unverified`]).
    Skipped,
    /// The tape ended without a seal (recorded before seals, or by a host
    /// that did not seal): its frames reproduce the digest it carries, but
    /// nothing vouches for that digest.
    Unsealed,
    /// The reader has no trusted host keys to check a seal against (the
    /// store does not seal): the frames reproduce the digest the tape
    /// carries, but nothing vouches for that digest.
    NoTrustedKeys,
}

impl UnverifiedReason {
    /// A short kebab-case name: `still-recording`, `no-digest`, `skipped`,
    /// `unsealed`, `no-trusted-keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnverifiedReason::Recording => "still-recording",
            UnverifiedReason::NoDigest => "no-digest",
            UnverifiedReason::Skipped => "skipped",
            UnverifiedReason::Unsealed => "unsealed",
            UnverifiedReason::NoTrustedKeys => "no-trusted-keys",
        }
    }
}

/// `still recording`, `no digest recorded`, `check skipped`, `unsealed
/// (…)`, `no trusted host keys (…)`.
impl fmt::Display for UnverifiedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnverifiedReason::Recording => "still recording",
            UnverifiedReason::NoDigest => "no digest recorded",
            UnverifiedReason::Skipped => "check skipped",
            UnverifiedReason::Unsealed => {
                "unsealed (the frames match the digest the provider returned, but no host seal vouches for it)"
            }
            UnverifiedReason::NoTrustedKeys => {
                "no trusted host keys to check its seal against (the frames match the digest the provider returned)"
            }
        })
    }
}

/// The frames a provider returned for a tape do not agree with what the tape
/// records. Displays as `tape ID: integrity check failed: ` and the
/// [`Mismatch`], which names the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IntegrityError {
    /// The tape's id.
    pub tape: String,
    /// The name of the provider that returned the frames.
    pub provider: String,
    /// What disagrees.
    pub mismatch: Mismatch,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let provider = &self.provider;
        write!(f, "tape {}: integrity check failed: ", self.tape)?;
        match &self.mismatch {
            Mismatch::Seq { position, seq } => write!(
                f,
                "frame {position} returned by provider {provider} has seq {seq} \
                 (frames out of order or missing)"
            ),
            Mismatch::MissingFrames { returned, recorded } => write!(
                f,
                "provider {provider} returned {returned} frames but the tape records \
                 {recorded} ({})",
                if recorded - returned == 1 {
                    "a frame is missing".to_string()
                } else {
                    format!("{} frames are missing", recorded - returned)
                }
            ),
            Mismatch::ExtraFrames { recorded } => write!(
                f,
                "provider {provider} returned more than the {recorded} frames the tape \
                 records (a frame was added)"
            ),
            Mismatch::ByteCount {
                frames,
                returned,
                recorded,
            } => write!(
                f,
                "the {frames} frames provider {provider} returned hold {returned} payload \
                 bytes but the tape records {recorded} (a payload was altered)"
            ),
            Mismatch::Seal(e) => write!(
                f,
                "the seal of the tape provider {provider} returned does not vouch for it: {e}"
            ),
            Mismatch::Undecodable { seq, why } => write!(
                f,
                "frame {seq} provider {provider} returned is not one the host stored: {why}"
            ),
            Mismatch::Digest { state, mismatch } => write!(
                f,
                "the frames provider {provider} returned do not match the digest recorded \
                 when the tape was {} (expected {}, computed {} over {} frames): a frame was \
                 altered, reordered, added or removed",
                ended_as(*state),
                mismatch.expected,
                mismatch.computed,
                mismatch.frames
            ),
        }
    }
}

/// How a tape in `state` ended, for "the digest recorded when the tape was …".
fn ended_as(state: TapeState) -> &'static str {
    match state {
        TapeState::Finished => "finished",
        TapeState::Aborted => "aborted",
        TapeState::Crashed => "closed after a crash",
        TapeState::Recording => "recorded",
    }
}

/// What an [`IntegrityError`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The frame at `position` (counting from 0 over the whole tape) carries
    /// sequence number `seq`.
    Seq {
        /// Where the frame was returned.
        position: u64,
        /// The sequence number it carries.
        seq: u64,
    },
    /// The provider ran out of frames before the tape's frame count.
    MissingFrames {
        /// Frames returned.
        returned: u64,
        /// Frames the tape records.
        recorded: u64,
    },
    /// The provider returned a frame beyond the frame count of a tape that
    /// has ended.
    ExtraFrames {
        /// Frames the tape records.
        recorded: u64,
    },
    /// The payload bytes of the tape's frames differ from its byte count.
    ByteCount {
        /// Frames counted (the tape's frame count).
        frames: u64,
        /// Payload bytes returned in those frames.
        returned: u64,
        /// Payload bytes the tape records.
        recorded: u64,
    },
    /// The tape's seal is broken, forged, untrusted or was removed
    /// (checked before the first frame; see [`crate::seal`]).
    Seal(SealError),
    /// A frame read as stored ([`TapeReader::stream_stored`]) does not
    /// decode to a recorded frame.
    Undecodable {
        /// The frame's sequence number.
        seq: u64,
        /// Why.
        why: String,
    },
    /// The hash chain over the frames does not reproduce the digest recorded
    /// when the tape ended in `state`.
    Digest {
        /// The state the tape ended in.
        state: TapeState,
        /// The digests compared.
        mismatch: DigestMismatch,
    },
}

/// Why reading a tape failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError<E> {
    /// A provider call failed (including `not-found` for an unknown tape).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The frames returned disagree with the tape.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// The caller's page callback failed; reading stopped there.
    #[error(transparent)]
    Page(E),
}

/// Why [`load_tape`] failed: a provider error or an [`IntegrityError`].
pub type TapeLoadError = ReadError<Infallible>;

/// A whole tape read into memory by [`load_tape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedTape {
    /// What `get` reported.
    pub info: TapeInfo,
    /// Every frame, in order.
    pub frames: Vec<Frame>,
    /// The outcome of the integrity check.
    pub verification: Verification,
}

/// Reads tape `id` from `store` into memory and verifies it (default page
/// sizes; errors name the provider by the name it gave at `init`).
pub async fn load_tape<S: TapeStore>(store: &S, id: &str) -> Result<LoadedTape, TapeLoadError> {
    TapeReader::new(store).load(id).await
}

/// Reads tapes from one store page by page; see the module docs.
pub struct TapeReader<'s, S: TapeStore> {
    store: &'s S,
    provider: String,
    page_frames: u32,
    page_bytes: u64,
    trusted: Option<TrustedHosts>,
}

impl<'s, S: TapeStore> TapeReader<'s, S> {
    /// A reader of `store` with pages of [`DEFAULT_PAGE_FRAMES`] and
    /// [`DEFAULT_PAGE_BYTES`], naming the provider in errors by
    /// `store.provider_info().name`, checking seals against the store's
    /// [`TapeStore::trusted_hosts`].
    pub fn new(store: &'s S) -> Self {
        TapeReader {
            store,
            provider: store.provider_info().name.clone(),
            page_frames: DEFAULT_PAGE_FRAMES,
            page_bytes: DEFAULT_PAGE_BYTES,
            trusted: store.trusted_hosts().cloned(),
        }
    }

    /// Checks seals against `trusted` (instead of the store's keys).
    pub fn trusting(mut self, trusted: TrustedHosts) -> Self {
        self.trusted = Some(trusted);
        self
    }

    /// Names the provider `name` in errors (e.g. its configured name).
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = name.into();
        self
    }

    /// Asks for at most `frames` frames (at least 1) and about `bytes`
    /// payload bytes per `read-frames` call.
    pub fn page_size(mut self, frames: u32, bytes: u64) -> Self {
        self.page_frames = frames.max(1);
        self.page_bytes = bytes;
        self
    }

    /// The frames of the tape `info` describes (as `get` returned it), as a
    /// [`FrameStream`] that checks each page before handing it out and the
    /// totals and digest at [`FrameStream::finish`] (see the module docs).
    pub fn stream<'a>(&'a self, info: &'a TapeInfo) -> FrameStream<'a, S> {
        let check = Check::new(info, self.trusted.as_ref());
        FrameStream::new(self, &info.header.id, Some(check))
    }

    /// The frames of a tape as the store holds them (`stored`: its `get` of
    /// this store), checked as the recorded tape `recorded` (the same tape
    /// read through the codec that stored it): each page is decoded by
    /// `decoder` (none: stored as recorded) for the checks and the digest
    /// chain, and handed out as stored. Copying tapes verbatim (migrate)
    /// reads this way.
    pub fn stream_stored<'a>(
        &'a self,
        stored: &'a TapeInfo,
        recorded: &'a TapeInfo,
        decoder: Option<&'a dyn FrameDecoder>,
    ) -> FrameStream<'a, S> {
        let check = Check::new(recorded, self.trusted.as_ref());
        let mut stream = FrameStream::new(self, &stored.header.id, Some(check));
        stream.decoder = decoder;
        stream
    }

    /// The frames of tape `id` as a [`FrameStream`] that checks only their
    /// order (see [`read_unverified`](Self::read_unverified)).
    pub fn stream_unverified<'a>(&'a self, id: &'a str) -> FrameStream<'a, S> {
        FrameStream::new(self, id, None)
    }

    /// Reads the frames of the tape `info` describes (as `get` returned it),
    /// checks them (see the module docs) and hands each page to `each` once
    /// its frames passed the structural checks. The digest is compared after
    /// the last page: only an `Ok` means every frame was intact.
    ///
    /// A tape still `recording` is read until the provider has no more
    /// frames (more may have arrived since `get`).
    pub async fn read_verified<E>(
        &self,
        info: &TapeInfo,
        each: impl FnMut(Vec<Frame>) -> Result<(), E>,
    ) -> Result<Verification, ReadError<E>> {
        drain(self.stream(info), each).await
    }

    /// Reads every frame the provider returns for tape `id`, handing each
    /// page to `each`, without comparing totals or the digest: to rescue the
    /// data of a damaged tape. Only the order of sequence numbers is checked
    /// (frames out of order cannot be used). The result is
    /// [`UnverifiedReason::Skipped`].
    pub async fn read_unverified<E>(
        &self,
        id: &str,
        each: impl FnMut(Vec<Frame>) -> Result<(), E>,
    ) -> Result<Verification, ReadError<E>> {
        drain(self.stream_unverified(id), each).await
    }

    /// Reads tape `id` (`get`, then every frame) into memory and verifies it
    /// as [`read_verified`](Self::read_verified) does.
    pub async fn load(&self, id: &str) -> Result<LoadedTape, TapeLoadError> {
        let info = self.store.get(id).await?;
        let mut frames = Vec::new();
        let verification = self
            .read_verified(&info, |page| {
                frames.extend(page);
                Ok::<(), Infallible>(())
            })
            .await?;
        Ok(LoadedTape {
            info,
            frames,
            verification,
        })
    }
}

/// Hands every page of `stream` to `each`, then finishes the stream.
async fn drain<S: TapeStore, E>(
    mut stream: FrameStream<'_, S>,
    mut each: impl FnMut(Vec<Frame>) -> Result<(), E>,
) -> Result<Verification, ReadError<E>> {
    let widen = |e: TapeLoadError| match e {
        ReadError::Provider(e) => ReadError::Provider(e),
        ReadError::Integrity(e) => ReadError::Integrity(e),
        ReadError::Page(never) => match never {},
    };
    while let Some(page) = stream.next_page().await.map_err(widen)? {
        each(page).map_err(ReadError::Page)?;
    }
    Ok(stream.finish()?)
}

/// One tape's frames, read from the provider a page at a time when the
/// caller asks ([`TapeReader::stream`]), so that the caller may await
/// between pages (e.g. write each page elsewhere) while memory stays
/// bounded by one page.
///
/// Pages start at seq 0. Each page is checked before it is handed out:
/// sequence numbers continue without a gap and, for a verified stream, no
/// frame lies beyond the count of an ended tape. The digest chain over the
/// frames handed out so far is kept whether or not there is a digest to
/// compare ([`chain`](Self::chain)). After the last page (`None`),
/// [`finish`](Self::finish) compares the totals and the digest.
pub struct FrameStream<'a, S: TapeStore> {
    store: &'a S,
    provider: &'a str,
    page_frames: u32,
    page_bytes: u64,
    id: &'a str,
    /// Frames handed out so far: the seq of the next one.
    next: u64,
    chain: DigestChain,
    /// `None` for an unverified stream.
    check: Option<Check<'a>>,
    /// Frames are checked as this decodes them (and handed out as read).
    decoder: Option<&'a dyn FrameDecoder>,
    /// The provider returned an empty page.
    ended: bool,
}

impl<'a, S: TapeStore> FrameStream<'a, S> {
    fn new<'s>(reader: &'a TapeReader<'s, S>, id: &'a str, check: Option<Check<'a>>) -> Self {
        FrameStream {
            store: reader.store,
            provider: &reader.provider,
            page_frames: reader.page_frames,
            page_bytes: reader.page_bytes,
            id,
            next: 0,
            chain: DigestChain::new(),
            check,
            decoder: None,
            ended: false,
        }
    }

    /// The tape's id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Frames handed out so far (the sequence number of the next one).
    pub fn frames_read(&self) -> u64 {
        self.next
    }

    /// The digest chain over the frames handed out so far (as recorded, for
    /// a stream of stored frames).
    pub fn chain(&self) -> &DigestChain {
        &self.chain
    }

    /// The next page (at most the reader's page size), checked; `None` once
    /// the provider has no more frames.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Frame>>, TapeLoadError> {
        self.next_page_max(self.page_frames).await
    }

    /// Like [`next_page`](Self::next_page), asking for at most `max_frames`
    /// frames (at least 1, at most the reader's page size): to stop exactly
    /// at a given frame.
    pub async fn next_page_max(
        &mut self,
        max_frames: u32,
    ) -> Result<Option<Vec<Frame>>, TapeLoadError> {
        if self.ended {
            return Ok(None);
        }
        if let Some(Err(e)) = self.check.as_ref().map(|c| &c.seal) {
            return Err(self.error(Mismatch::Seal(e.clone())).into());
        }
        let max_frames = max_frames.clamp(1, self.page_frames);
        let page = self
            .store
            .read_frames(self.id, self.next, max_frames, self.page_bytes)
            .await?;
        if page.is_empty() {
            self.ended = true;
            return Ok(None);
        }
        for (position, f) in (self.next..).zip(&page) {
            if f.seq != position {
                return Err(self
                    .error(Mismatch::Seq {
                        position,
                        seq: f.seq,
                    })
                    .into());
            }
        }
        let decoded;
        let recorded = match self.decoder {
            None => &page,
            Some(decoder) => {
                decoded = page
                    .iter()
                    .map(|f| {
                        decoder
                            .decode(f.clone())
                            .map_err(|why| Mismatch::Undecodable { seq: f.seq, why })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| self.error(m))?;
                &decoded
            }
        };
        let checked = match &mut self.check {
            Some(check) => check.page(recorded),
            None => Ok(()),
        };
        checked.map_err(|m| self.error(m))?;
        for f in recorded {
            self.chain.push(f);
        }
        self.next += page.len() as u64;
        Ok(Some(page))
    }

    /// After the last page: for a verified stream, compares the totals,
    /// then the digest; an unverified one is [`UnverifiedReason::Skipped`].
    pub fn finish(self) -> Result<Verification, IntegrityError> {
        match &self.check {
            None => Ok(Verification::Unverified {
                reason: UnverifiedReason::Skipped,
                frames: self.next,
            }),
            Some(check) => check.finish(&self.chain).map_err(|m| self.error(m)),
        }
    }

    fn error(&self, mismatch: Mismatch) -> IntegrityError {
        IntegrityError {
            tape: self.id.to_string(),
            provider: self.provider.to_string(),
            mismatch,
        }
    }
}

/// The running check of one tape's frames against its [`TapeInfo`]; frames
/// arrive in sequence (the stream checks that).
struct Check<'a> {
    info: &'a TapeInfo,
    /// Frames seen so far.
    frames: u64,
    /// Payload bytes of the first `info.frame_count` frames seen.
    bytes: u64,
    /// What the seal says (an error stops the stream before any frame).
    seal: Result<Sealed, SealError>,
}

/// What the seal of a tape that passed its seal check vouches for.
#[derive(Debug, Clone, Copy)]
enum Sealed {
    By(PublicKey),
    /// Unsealed, or still recording (nothing to vouch for yet).
    No,
    /// No trusted keys to check against.
    Unchecked,
}

impl<'a> Check<'a> {
    fn new(info: &'a TapeInfo, trusted: Option<&TrustedHosts>) -> Self {
        let seal = match trusted {
            None => Ok(Sealed::Unchecked),
            Some(t) => match seal_status(info, t) {
                SealStatus::Sealed(key) => Ok(Sealed::By(key)),
                SealStatus::Unsealed => Ok(Sealed::No),
                SealStatus::Broken(e) => Err(e),
            },
        };
        Check {
            info,
            frames: 0,
            bytes: 0,
            seal,
        }
    }

    /// Takes in one page; fails on a frame beyond the count of an ended tape.
    fn page(&mut self, page: &[Frame]) -> Result<(), Mismatch> {
        let recorded = self.info.frame_count;
        for f in page {
            if self.frames >= recorded {
                // A recording tape grows while it is read.
                if self.info.state != TapeState::Recording {
                    return Err(Mismatch::ExtraFrames { recorded });
                }
            } else {
                self.bytes += f.payload.len() as u64;
            }
            self.frames += 1;
        }
        Ok(())
    }

    /// After the last page: compares the totals, then `chain` (over every
    /// frame taken in) with the digest of an ended tape that has one.
    fn finish(&self, chain: &DigestChain) -> Result<Verification, Mismatch> {
        let info = self.info;
        if self.frames < info.frame_count {
            return Err(Mismatch::MissingFrames {
                returned: self.frames,
                recorded: info.frame_count,
            });
        }
        // A recording tape's bytes are counted as stored (compressed,
        // encrypted: `crate::codec`) until it ends.
        if info.state != TapeState::Recording && self.bytes != info.byte_count {
            return Err(Mismatch::ByteCount {
                frames: info.frame_count,
                returned: self.bytes,
                recorded: info.byte_count,
            });
        }
        let frames = self.frames;
        let expected = match (info.state, &info.digest) {
            (TapeState::Recording, _) => {
                let reason = UnverifiedReason::Recording;
                return Ok(Verification::Unverified { reason, frames });
            }
            (_, None) => {
                let reason = UnverifiedReason::NoDigest;
                return Ok(Verification::Unverified { reason, frames });
            }
            (_, Some(digest)) => digest,
        };
        chain.check(expected).map_err(|mismatch| Mismatch::Digest {
            state: info.state,
            mismatch,
        })?;
        let reason = match &self.seal {
            Err(e) => return Err(Mismatch::Seal(e.clone())),
            Ok(Sealed::By(key)) => {
                return Ok(Verification::Verified {
                    digest: chain.hex(),
                    frames,
                    sealed_by: *key,
                });
            }
            Ok(Sealed::No) => UnverifiedReason::Unsealed,
            Ok(Sealed::Unchecked) => UnverifiedReason::NoTrustedKeys,
        };
        Ok(Verification::Unverified { reason, frames })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::seal::Seal;
    use crate::testing::{MemStore, sample_frames};
    use tapedeck_types::TapeHeader;

    /// One tape, served by a [`MemStore`] as stored: `read_frames` pages
    /// by position, whatever the frames' sequence numbers say (as a
    /// provider that damaged or tampered with a tape would). Read with no
    /// trusted keys unless [`sealed`](Fake::sealed).
    struct Fake {
        info: TapeInfo,
        frames: Vec<Frame>,
        trusted: Option<TrustedHosts>,
    }

    impl Fake {
        /// A finished tape `t1` of five frames with its digest.
        fn intact() -> Fake {
            let frames = sample_frames(5, |seq| format!("{{\"id\":{seq}}}").into_bytes());
            let info = TapeInfo {
                header: TapeHeader {
                    id: "t1".into(),
                    session_id: String::new(),
                    name: String::new(),
                    tags: Vec::new(),
                    created_at_us: 1_700_000_000_000_000,
                    envelope: None,
                },
                state: TapeState::Finished,
                frame_count: 5,
                byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
                ended_at_us: Some(1_700_000_000_100_000),
                digest: Some(DigestChain::over(&frames).hex()),
                seal: None,
            };
            Fake {
                info,
                frames,
                trusted: None,
            }
        }

        /// Sealed by a new host key (over what `info` says now), read
        /// trusting that key.
        fn sealed(mut self) -> (Fake, PublicKey) {
            let key = SecretKey::generate().unwrap();
            self.info.seal = Some(Seal::new(&key, &self.info).to_bytes());
            self.trusted = Some(TrustedHosts::new([key.public()]));
            (self, key.public())
        }

        /// A store holding the tape as it is now.
        fn store(&self) -> MemStore {
            let store = MemStore::new("fake");
            store.put(self.info.clone(), self.frames.clone());
            store
        }

        /// Makes `get` agree with the frames now stored (a provider that
        /// altered both consistently); the digest stays the recorded one.
        fn recount(mut self) -> Fake {
            self.info.frame_count = self.frames.len() as u64;
            self.info.byte_count = self.frames.iter().map(|f| f.payload.len() as u64).sum();
            self
        }

        /// Renumbers the frames 0, 1, 2, … in their current order.
        fn renumber(mut self) -> Fake {
            for (i, f) in self.frames.iter_mut().enumerate() {
                f.seq = i as u64;
            }
            self
        }

        /// Reads with pages of two frames; returns the outcome and the pages
        /// handed out.
        async fn read(&self) -> (Result<Verification, ReadError<Infallible>>, Vec<Vec<u64>>) {
            let mut pages = Vec::new();
            let store = self.store();
            let mut reader = TapeReader::new(&store).page_size(2, 1 << 20);
            if let Some(t) = &self.trusted {
                reader = reader.trusting(t.clone());
            }
            let result = reader
                .read_verified(&self.info, |page| {
                    pages.push(page.iter().map(|f| f.seq).collect());
                    Ok(())
                })
                .await;
            (result, pages)
        }

        /// The integrity error reading gives, as text.
        async fn failure(&self) -> String {
            match self.read().await.0 {
                Err(ReadError::Integrity(e)) => e.to_string(),
                other => panic!("expected an integrity error, got {other:?}"),
            }
        }
    }

    fn digest_failure(msg: &str, frames: u64) {
        assert!(
            msg.starts_with("tape t1: integrity check failed: the frames provider fake returned do not match the digest recorded when the tape was finished (expected "),
            "{msg}"
        );
        assert!(
            msg.ends_with(&format!(
                " over {frames} frames): a frame was altered, reordered, added or removed"
            )),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn an_intact_sealed_tape_is_verified_page_by_page() {
        let (fake, key) = Fake::intact().sealed();
        let (result, pages) = fake.read().await;
        let v = result.unwrap();
        assert_eq!(
            v,
            Verification::Verified {
                digest: fake.info.digest.clone().unwrap(),
                frames: 5,
                sealed_by: key,
            }
        );
        assert!(v.is_verified());
        assert_eq!(
            v.to_string(),
            format!("verified (sealed by {key}, sha256 chain over 5 frames)")
        );
        assert_eq!(pages, [vec![0, 1], vec![2, 3], vec![4]]);

        // Without keys to check the seal against, nothing is verified.
        let loaded = load_tape(&fake.store(), "t1").await.unwrap();
        assert_eq!(loaded.frames, fake.frames);
        assert_eq!(loaded.info, fake.info);
        assert_eq!(
            loaded.verification,
            Verification::Unverified {
                reason: UnverifiedReason::NoTrustedKeys,
                frames: 5
            }
        );
    }

    #[tokio::test]
    async fn an_intact_unsealed_tape_is_not_verified() {
        let mut fake = Fake::intact();
        fake.trusted = Some(TrustedHosts::new([SecretKey::generate().unwrap().public()]));
        let v = fake.read().await.0.unwrap();
        assert_eq!(
            v,
            Verification::Unverified {
                reason: UnverifiedReason::Unsealed,
                frames: 5
            }
        );
        assert!(v.to_string().starts_with("not verified: unsealed"), "{v}");
        // Where seals are required, it is refused before any frame.
        fake.trusted = fake.trusted.map(|t| t.require_seals(true));
        let (result, pages) = fake.read().await;
        let Err(ReadError::Integrity(e)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(e.mismatch, Mismatch::Seal(SealError::Missing));
        assert!(pages.is_empty());
    }

    /// A provider that rewrites a frame and recomputes the digest (and
    /// the counts) passes the digest check; the seal catches it before
    /// the first frame is handed out.
    #[tokio::test]
    async fn a_rewritten_tape_with_a_recomputed_digest_breaks_its_seal() {
        let (mut fake, key) = Fake::intact().sealed();
        fake.frames[2].payload = br#"{"id":"transfer 999"}"#.to_vec();
        fake.info.digest = Some(DigestChain::over(&fake.frames).hex());
        let mut fake = fake.recount();
        let (result, pages) = fake.read().await;
        let Err(ReadError::Integrity(e)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(
            e.mismatch,
            Mismatch::Seal(SealError::Mismatch {
                key: key.to_string()
            })
        );
        assert!(pages.is_empty());
        let msg = e.to_string();
        assert!(
            msg.starts_with("tape t1: integrity check failed: the seal of the tape provider fake returned does not vouch for it: "),
            "{msg}"
        );
        // So does one that drops the seal of a tape created to be sealed.
        fake.info.seal = None;
        fake.info.header.envelope = crate::envelope::mark_sealed(None, &key);
        let Err(ReadError::Integrity(e)) = fake.read().await.0 else {
            panic!()
        };
        assert!(matches!(
            e.mismatch,
            Mismatch::Seal(SealError::Removed { .. })
        ));
        // And one that seals with a key of its own.
        let own = SecretKey::generate().unwrap();
        fake.info.seal = Some(Seal::new(&own, &fake.info).to_bytes());
        let Err(ReadError::Integrity(e)) = fake.read().await.0 else {
            panic!()
        };
        assert!(matches!(
            e.mismatch,
            Mismatch::Seal(SealError::Untrusted { .. })
        ));
    }

    #[tokio::test]
    async fn the_digest_is_compared_in_either_case() {
        let mut fake = Fake::intact();
        fake.info.digest = fake.info.digest.map(|d| d.to_uppercase());
        let (mut fake, _) = fake.sealed();
        assert!(fake.read().await.0.unwrap().is_verified());
        fake.trusted = None;
        assert_eq!(
            fake.read().await.0.unwrap(),
            Verification::Unverified {
                reason: UnverifiedReason::NoTrustedKeys,
                frames: 5
            }
        );
    }

    #[tokio::test]
    async fn an_altered_payload_is_found() {
        // Same length: only the digest can tell.
        let mut fake = Fake::intact();
        fake.frames[3].payload[6] = b'9';
        digest_failure(&fake.failure().await, 5);

        // Another length: the byte count already tells.
        let mut fake = Fake::intact();
        fake.frames[3].payload.push(b' ');
        assert_eq!(
            fake.failure().await,
            "tape t1: integrity check failed: the 5 frames provider fake returned hold 41 \
             payload bytes but the tape records 40 (a payload was altered)"
        );

        // Any other field of a frame.
        let mut fake = Fake::intact();
        fake.frames[1].timestamp_us += 1;
        digest_failure(&fake.failure().await, 5);
    }

    #[tokio::test]
    async fn a_dropped_frame_is_found() {
        // Renumbered, with totals to match: only the digest can tell.
        let mut fake = Fake::intact();
        fake.frames.remove(2);
        let fake = fake.renumber().recount();
        digest_failure(&fake.failure().await, 4);

        // Leaving a gap in the sequence.
        let mut fake = Fake::intact();
        fake.frames.remove(2);
        assert_eq!(
            fake.failure().await,
            "tape t1: integrity check failed: frame 2 returned by provider fake has seq 3 \
             (frames out of order or missing)"
        );

        // The last ones, against the recorded totals.
        let mut fake = Fake::intact();
        fake.frames.truncate(4);
        assert_eq!(
            fake.failure().await,
            "tape t1: integrity check failed: provider fake returned 4 frames but the tape \
             records 5 (a frame is missing)"
        );
        fake.frames.truncate(2);
        assert!(fake.failure().await.contains("(3 frames are missing)"));
    }

    #[tokio::test]
    async fn reordered_frames_are_found() {
        // Renumbered after the swap: only the digest can tell.
        let mut fake = Fake::intact();
        fake.frames.swap(1, 2);
        let fake = fake.renumber();
        digest_failure(&fake.failure().await, 5);

        // As stored: the sequence numbers tell.
        let mut fake = Fake::intact();
        fake.frames.swap(1, 2);
        let (result, pages) = fake.read().await;
        assert!(result.unwrap_err().to_string().ends_with(
            "frame 1 returned by provider fake has seq 2 (frames out of order or missing)"
        ));
        assert!(pages.is_empty(), "a page that fails is not handed out");
    }

    #[tokio::test]
    async fn an_added_frame_is_found() {
        let mut fake = Fake::intact();
        let mut extra = fake.frames[4].clone();
        extra.seq = 5;
        fake.frames.push(extra);
        let (result, pages) = fake.read().await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "tape t1: integrity check failed: provider fake returned more than the 5 frames \
             the tape records (a frame was added)"
        );
        assert_eq!(
            pages,
            [vec![0, 1], vec![2, 3]],
            "the page with it is held back"
        );

        // With totals to match: only the digest can tell.
        let fake = fake.recount();
        digest_failure(&fake.failure().await, 6);
    }

    #[tokio::test]
    async fn a_wrong_digest_is_found() {
        let mut fake = Fake::intact();
        fake.info.digest = Some(DigestChain::new().hex());
        let msg = fake.failure().await;
        digest_failure(&msg, 5);
        assert!(
            msg.contains(&format!(
                "(expected {}, computed {}",
                DigestChain::new().hex(),
                DigestChain::over(&fake.frames).hex()
            )),
            "{msg}"
        );

        fake.info.digest = Some("not a digest".into());
        fake.info.state = TapeState::Crashed;
        assert!(
            fake.failure().await.contains(
                "recorded when the tape was closed after a crash (expected not a digest,"
            )
        );
    }

    #[tokio::test]
    async fn a_recording_tape_is_read_unverified() {
        let mut fake = Fake::intact();
        fake.info.state = TapeState::Recording;
        fake.info.digest = None;
        fake.info.ended_at_us = None;
        // `get` saw three frames; two more arrived since.
        fake.info.frame_count = 3;
        fake.info.byte_count = fake.frames[..3]
            .iter()
            .map(|f| f.payload.len() as u64)
            .sum();
        let v = fake.read().await.0.unwrap();
        assert_eq!(
            v,
            Verification::Unverified {
                reason: UnverifiedReason::Recording,
                frames: 5
            }
        );
        assert_eq!(v.to_string(), "not verified: still recording");

        // Fewer frames than `get` saw are still missing frames.
        fake.frames.truncate(2);
        assert!(fake.failure().await.contains("(a frame is missing)"));
    }

    #[tokio::test]
    async fn a_tape_without_a_digest_is_read_unverified_but_counted() {
        let mut fake = Fake::intact();
        fake.info.digest = None;
        let v = fake.read().await.0.unwrap();
        assert_eq!(
            v,
            Verification::Unverified {
                reason: UnverifiedReason::NoDigest,
                frames: 5
            }
        );
        assert_eq!(v.to_string(), "not verified: no digest recorded");
        assert!(!v.is_verified());

        fake.frames.pop();
        assert!(
            fake.failure()
                .await
                .contains("returned 4 frames but the tape records 5")
        );
    }

    #[tokio::test]
    async fn read_unverified_returns_whatever_is_stored() {
        let mut fake = Fake::intact();
        fake.frames.remove(1);
        let fake = fake.renumber();
        let mut seqs = Vec::new();
        let v = TapeReader::new(&fake.store())
            .page_size(3, 1 << 20)
            .read_unverified("t1", |page| {
                seqs.extend(page.iter().map(|f| f.seq));
                Ok::<(), Infallible>(())
            })
            .await
            .unwrap();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(
            v,
            Verification::Unverified {
                reason: UnverifiedReason::Skipped,
                frames: 4
            }
        );
    }

    #[tokio::test]
    async fn errors_of_the_provider_and_the_callback_pass_through() {
        let fake = Fake::intact();
        let store = fake.store();
        let err = load_tape(&store, "nope").await.unwrap_err();
        assert!(
            matches!(&err, ReadError::Provider(p) if p.storage_kind() == Some(tapedeck_types::ErrorKind::NotFound)),
            "{err:?}"
        );

        let mut calls = 0;
        let err = TapeReader::new(&store)
            .provider_name("configured")
            .page_size(2, 1 << 20)
            .read_verified(&fake.info, |_| {
                calls += 1;
                Err("disk full")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Page("disk full")), "{err:?}");
        assert_eq!(calls, 1, "reading stops at the first failing page");
    }

    #[tokio::test]
    async fn errors_name_the_provider_as_told() {
        let mut fake = Fake::intact();
        fake.frames.pop();
        let err = TapeReader::new(&fake.store())
            .provider_name("fs")
            .read_verified(&fake.info, |_| Ok::<(), Infallible>(()))
            .await
            .unwrap_err();
        let ReadError::Integrity(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.provider, "fs");
        assert_eq!(
            e.mismatch,
            Mismatch::MissingFrames {
                returned: 4,
                recorded: 5
            }
        );
        assert!(e.to_string().contains("provider fs returned 4 frames"));
    }
}
