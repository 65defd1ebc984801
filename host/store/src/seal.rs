//! Seals: the host's ed25519 signature over what a tape is.
//!
//! The tape digest ([`crate::digest`]) is a hash chain anyone can
//! recompute, so a provider that rewrites frames can also rewrite the
//! digest it stores. A seal closes that gap: the host signs, with a key the
//! provider never sees, the tape's id, a hash of its header, its totals,
//! its end (state and time) and its final digest. A tape whose frames,
//! header or totals were changed by anyone without the key no longer
//! matches its seal; neither does a tape whose content was swapped with
//! another's (the id is signed).
//!
//! ```text
//! message = "tapedeck-seal-v1\0"
//!         || len(id) u16 le || id
//!         || header_hash (32 bytes, see `header_hash`)
//!         || state (1 byte: 0 recording, 1 finished, 2 aborted, 3 crashed)
//!         || frame_count u64 le || byte_count u64 le
//!         || ended_at: 0, or 1 || u64 le
//!         || digest: 0, or 1 || len u16 le || digest (lowercase hex)
//! seal    = "tds1" || public key (32 bytes) || signature (64 bytes)
//! ```
//!
//! `header_hash` covers id, session, name, tags, creation time and the
//! host's envelope. [`Sealing`] is the layer that seals every tape ended
//! through a store; [`seal_status`] is what a reader checks.
//!
//! A seal names its key; it counts only if that key is trusted
//! ([`TrustedHosts`]: the host's own key and the keys of the other hosts an
//! operator lists).

use crate::digest::DigestChain;
use crate::envelope::{Envelope, mark_sealed};
use crate::keys::{PublicKey, SecretKey};
use crate::{Layer, ProviderError, ProviderResult, TapeStore, TapeWriter, WriterLayer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use tapedeck_types::{EndReason, Frame, TapeHeader, TapeInfo, TapeState, TapeSummary};

/// The domain string every seal's message starts with.
pub const SEAL_DOMAIN: &[u8] = b"tapedeck-seal-v1\0";
/// The domain string of a header's hash.
pub const HEADER_DOMAIN: &[u8] = b"tapedeck-header-v1\0";
const MAGIC: &[u8; 4] = b"tds1";
/// The length of a seal in bytes.
pub const SEAL_LEN: usize = 4 + 32 + 64;

/// Why a tape's seal does not vouch for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The tape carries no seal, and seals are required here
    /// ([`TrustedHosts::require_seals`]).
    #[error(
        "the tape carries no seal, and this host requires one (a tape from before seals: read it with --no-verify, or turn `[seals] require` off)"
    )]
    Missing,
    /// The tape carries no seal, but its header says it was created to be
    /// sealed by `key` ([`crate::envelope`]): the seal was removed.
    #[error(
        "the tape carries no seal, but its header says it was created to be sealed by {key}: the seal was removed"
    )]
    Removed {
        /// The key the header names.
        key: String,
    },
    /// The seal is not a seal (wrong length or format).
    #[error("the seal is malformed: {0}")]
    Malformed(String),
    /// The seal was made by a key this host does not trust.
    #[error("the tape is sealed by {key}, which is not a trusted host key (trusted: {trusted})")]
    Untrusted {
        /// The key that sealed.
        key: String,
        /// The trusted keys.
        trusted: String,
    },
    /// The seal does not match the tape: its id, header, totals, end or
    /// digest differ from what was sealed (or the seal was forged).
    #[error(
        "the tape's id, header, totals, end or digest differ from what {key} sealed: it was changed after it was sealed"
    )]
    Mismatch {
        /// The key that claims to have sealed.
        key: String,
    },
}

/// A seal: who sealed, and the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Seal {
    /// The key that sealed.
    pub key: PublicKey,
    signature: [u8; 64],
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seal(by {})", self.key)
    }
}

impl Seal {
    /// Seals what `info` says of a tape with `key`.
    pub fn new(key: &SecretKey, info: &TapeInfo) -> Seal {
        Seal {
            key: key.public(),
            signature: key.sign(&message(info)),
        }
    }

    /// The stored form ([`SEAL_LEN`] bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEAL_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.key.to_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Parses the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Seal, SealError> {
        if bytes.len() != SEAL_LEN {
            return Err(SealError::Malformed(format!(
                "{} bytes, expected {SEAL_LEN}",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(SealError::Malformed("unknown format".into()));
        }
        let key: [u8; 32] = bytes[4..36].try_into().expect("32 bytes");
        let key = PublicKey::from_bytes(&key)
            .ok_or_else(|| SealError::Malformed("not a valid ed25519 key".into()))?;
        let signature: [u8; 64] = bytes[36..].try_into().expect("64 bytes");
        Ok(Seal { key, signature })
    }

    /// Checks this seal against what `info` says of the tape, and that its
    /// key is trusted. Returns the key.
    pub fn check(&self, info: &TapeInfo, trusted: &TrustedHosts) -> Result<PublicKey, SealError> {
        if !trusted.contains(&self.key) {
            return Err(SealError::Untrusted {
                key: self.key.to_string(),
                trusted: trusted.to_string(),
            });
        }
        if !self.key.verifies(&message(info), &self.signature) {
            return Err(SealError::Mismatch {
                key: self.key.to_string(),
            });
        }
        Ok(self.key)
    }
}

/// The host keys whose seals this host accepts: its own, and those of the
/// hosts it shares tapes with.
///
/// It also says whether a reader refuses an ended tape that carries no
/// seal at all ([`require_seals`](Self::require_seals); default: such a
/// tape is read and reported unsealed, never verified).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedHosts {
    keys: Vec<PublicKey>,
    require: bool,
}

impl TrustedHosts {
    /// Trusts `keys`.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut v: Vec<PublicKey> = Vec::new();
        for k in keys {
            if !v.contains(&k) {
                v.push(k);
            }
        }
        TrustedHosts {
            keys: v,
            require: false,
        }
    }

    /// With `on`, an ended tape without a seal is an error for readers
    /// ([`SealError::Missing`]) instead of an unsealed tape. Default: off.
    pub fn require_seals(mut self, on: bool) -> Self {
        self.require = on;
        self
    }

    /// True when readers refuse ended tapes without a seal.
    pub fn requires_seals(&self) -> bool {
        self.require
    }

    /// These keys and `key` (first), with the same policy.
    pub fn including(self, key: PublicKey) -> Self {
        TrustedHosts::new(std::iter::once(key).chain(self.keys)).require_seals(self.require)
    }

    /// True when `key` is trusted.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

impl fmt::Display for TrustedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.keys.is_empty() {
            return f.write_str("none");
        }
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}")?;
        }
        Ok(())
    }
}

/// What a tape's seal says of it, for a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealStatus {
    /// Sealed by this trusted key, and the seal matches the tape.
    Sealed(PublicKey),
    /// The tape carries no seal (recorded before seals, or elsewhere):
    /// shown as unsealed, never as verified.
    Unsealed,
    /// The seal is malformed, untrusted, or does not match the tape.
    Broken(SealError),
}

/// What `info`'s seal says of the tape, checked against `trusted`.
///
/// An ended tape without a seal is [`SealStatus::Broken`] when its
/// envelope says it was created to be sealed ([`SealError::Removed`]) or
/// `trusted` requires seals ([`SealError::Missing`]); otherwise, like a
/// tape still recording, it is [`SealStatus::Unsealed`].
pub fn seal_status(info: &TapeInfo, trusted: &TrustedHosts) -> SealStatus {
    let Some(bytes) = &info.seal else {
        if info.state == TapeState::Recording {
            return SealStatus::Unsealed;
        }
        if let Some(claim) =
            Envelope::of(info.header.envelope.as_deref()).and_then(|e| e.sealed_by())
        {
            let key = match claim {
                Ok(k) => k.to_string(),
                Err(e) => format!("a malformed key ({e})"),
            };
            return SealStatus::Broken(SealError::Removed { key });
        }
        if trusted.requires_seals() {
            return SealStatus::Broken(SealError::Missing);
        }
        return SealStatus::Unsealed;
    };
    match Seal::from_bytes(bytes).and_then(|s| s.check(info, trusted)) {
        Ok(key) => SealStatus::Sealed(key),
        Err(e) => SealStatus::Broken(e),
    }
}

/// What a tape will be once `summary` ends it for `reason`: the facts a
/// seal made at `finish` or `save` covers.
fn ended(header: &TapeHeader, summary: &TapeSummary, reason: EndReason) -> TapeInfo {
    TapeInfo {
        header: header.clone(),
        state: reason.end_state(),
        frame_count: summary.frame_count,
        byte_count: summary.byte_count,
        ended_at_us: Some(summary.ended_at_us),
        digest: summary.digest.clone(),
        seal: None,
    }
}

/// A store whose tapes are sealed by the host when they end: every
/// `finish` and `save` through it carries the host's seal over what the
/// tape will be (a seal already in the summary is kept when it is trusted
/// and matches, as for the import of a sealed export; any other is
/// replaced). Recording, recovery, import and migrate all end tapes through
/// the store they are given, so wrapping that store once seals them all.
///
/// The answer of `finish` / `save` is checked against the seal made: a
/// provider that stores something else than it was given is caught at
/// once (`Contract`), and on every later read by [`seal_status`].
pub struct Sealing<S> {
    inner: S,
    key: Arc<SecretKey>,
    trusted: TrustedHosts,
}

impl<S> Sealing<S> {
    /// Seals `inner`'s tapes with `key`; seals by `trusted` keys (this
    /// host's own is always trusted) given with a summary are kept.
    pub fn new(inner: S, key: Arc<SecretKey>, trusted: TrustedHosts) -> Self {
        let trusted = trusted.including(key.public());
        Sealing {
            inner,
            key,
            trusted,
        }
    }

    /// The store behind the seal.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The keys whose seals this store accepts.
    pub fn trusted(&self) -> &TrustedHosts {
        &self.trusted
    }
}

/// Whether `summary` already carries a trusted seal that matches `header`
/// ending for `reason` (as an import of a sealed export does).
fn carries_trusted_seal(
    trusted: &TrustedHosts,
    header: &TapeHeader,
    summary: &TapeSummary,
    reason: EndReason,
) -> bool {
    let facts = ended(header, summary, reason);
    summary
        .seal
        .as_deref()
        .and_then(|b| Seal::from_bytes(b).ok())
        .is_some_and(|s| s.check(&facts, trusted).is_ok())
}

/// `summary` sealed by `key` for `header` ending for `reason`.
fn seal_summary(
    key: &SecretKey,
    header: &TapeHeader,
    mut summary: TapeSummary,
    reason: EndReason,
) -> TapeSummary {
    summary.seal = Some(Seal::new(key, &ended(header, &summary, reason)).to_bytes());
    summary
}

/// Checks that what a provider answered for an ended tape matches its seal.
fn check_answer(
    info: TapeInfo,
    trusted: &TrustedHosts,
    provider: &str,
    call: &'static str,
) -> ProviderResult<TapeInfo> {
    match seal_status(&info, trusted) {
        SealStatus::Sealed(_) => Ok(info),
        SealStatus::Unsealed => Err(ProviderError::Contract {
            provider: provider.to_string(),
            call,
            detail: format!(
                "tape {:?} came back without the seal it was given",
                info.header.id
            ),
        }),
        SealStatus::Broken(e) => Err(ProviderError::Contract {
            provider: provider.to_string(),
            call,
            detail: format!(
                "tape {:?} came back unlike what was sealed: {e}",
                info.header.id
            ),
        }),
    }
}

impl<S: TapeStore> Layer for Sealing<S> {
    type Inner = S;
    type Writer = SealingWriter<S::Writer>;

    fn inner(&self) -> &S {
        &self.inner
    }

    /// Only `create` and `resume` make writers here, and both give the
    /// header; a writer wrapped without one ends its tape unsealed.
    fn wrap_writer(&self, writer: S::Writer) -> SealingWriter<S::Writer> {
        SealingWriter {
            inner: writer,
            header: None,
            key: self.key.clone(),
            trusted: self.trusted.clone(),
            provider: self.inner.provider_info().name.clone(),
            written: None,
        }
    }

    fn trusted_hosts(&self) -> Option<&TrustedHosts> {
        Some(&self.trusted)
    }

    /// Creates the tape with the envelope marked `sealed-by` this host's
    /// key ([`crate::envelope`]), so that a seal removed later is found.
    async fn create(&self, mut header: TapeHeader) -> ProviderResult<SealingWriter<S::Writer>> {
        header.envelope = mark_sealed(header.envelope.take(), &self.key.public());
        let writer = self.inner.create(header.clone()).await?;
        let mut w = self.wrap_writer(writer);
        w.header = Some(header);
        w.written = Some(Written::default());
        Ok(w)
    }

    async fn resume(&self, id: &str) -> ProviderResult<SealingWriter<S::Writer>> {
        let header = self.inner.get(id).await?.header;
        let writer = self.inner.resume(id).await?;
        let mut w = self.wrap_writer(writer);
        w.header = Some(header);
        Ok(w)
    }

    /// Keeps a trusted seal that matches (the header untouched); otherwise
    /// marks the envelope `sealed-by` this host and seals.
    async fn save(
        &self,
        mut header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let summary = if carries_trusted_seal(&self.trusted, &header, &summary, reason) {
            summary
        } else {
            header.envelope = mark_sealed(header.envelope.take(), &self.key.public());
            seal_summary(&self.key, &header, summary, reason)
        };
        let info = self.inner.save(header, frames, summary, reason).await?;
        check_answer(
            info,
            &self.trusted,
            &self.inner.provider_info().name,
            "save",
        )
    }
}

/// What a writer made by `create` has appended: enough to end the tape
/// sealed when it is aborted.
#[derive(Default)]
struct Written {
    chain: DigestChain,
    bytes: u64,
    last_timestamp_us: u64,
}

impl Written {
    /// Takes in what an `append` of `frames` stored: the frames from the
    /// count seen so far up to `next_seq`. `false` when they do not cover
    /// that range (what was stored is then unknown here).
    fn stored(&mut self, frames: &[Frame], next_seq: u64) -> bool {
        for f in frames {
            if f.seq < self.chain.frames() {
                continue;
            }
            if f.seq >= next_seq {
                break;
            }
            if f.seq != self.chain.frames() {
                return false;
            }
            self.chain.push(f);
            self.bytes += f.payload.len() as u64;
            self.last_timestamp_us = self.last_timestamp_us.max(f.timestamp_us);
        }
        self.chain.frames() == next_seq
    }

    fn summary(&self) -> TapeSummary {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        TapeSummary {
            frame_count: self.chain.frames(),
            byte_count: self.bytes,
            ended_at_us: now.max(self.last_timestamp_us),
            digest: Some(self.chain.hex()),
            seal: None,
        }
    }
}

/// A writer whose `finish` seals the tape ([`Sealing`]); its `abort`, when
/// every frame of the tape went through it, is a sealed `finish` with
/// reason `aborted` (the tape ends `aborted` either way, but keeps its
/// totals, digest and seal).
pub struct SealingWriter<W> {
    inner: W,
    header: Option<TapeHeader>,
    key: Arc<SecretKey>,
    trusted: TrustedHosts,
    provider: String,
    /// Set for a writer made by `create` while every append is known.
    written: Option<Written>,
}

impl<W: TapeWriter> WriterLayer for SealingWriter<W> {
    type Inner = W;

    fn inner(&self) -> &W {
        &self.inner
    }

    fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let result = self.inner.append(frames).await;
        if let Some(w) = self.written.as_mut() {
            // A failed append may have stored some of the frames.
            let known = match &result {
                Ok(next) => w.stored(frames, *next),
                Err(_) => false,
            };
            if !known {
                self.written = None;
            }
        }
        result
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let Some(header) = &self.header else {
            return self.inner.finish(summary, reason).await;
        };
        let summary = if carries_trusted_seal(&self.trusted, header, &summary, reason) {
            summary
        } else {
            seal_summary(&self.key, header, summary, reason)
        };
        let info = self.inner.finish(summary, reason).await?;
        check_answer(info, &self.trusted, &self.provider, "finish")
    }

    async fn abort(&mut self, reason: &str) -> ProviderResult<()> {
        // Frames may have reached the tape another way (`append-many`).
        let next = self.inner.next_seq();
        let written = self.written.as_ref().filter(|w| w.chain.frames() == next);
        match written.map(Written::summary) {
            Some(summary) => {
                WriterLayer::finish(self, summary, EndReason::Aborted).await?;
                Ok(())
            }
            None => self.inner.abort(reason).await,
        }
    }
}

/// The SHA-256 of a header's canonical encoding: every field, each
/// length-prefixed, in a fixed order.
pub fn header_hash(h: &TapeHeader) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(HEADER_DOMAIN);
    let mut field = |b: &[u8]| {
        d.update((b.len() as u64).to_le_bytes());
        d.update(b);
    };
    field(h.id.as_bytes());
    field(h.session_id.as_bytes());
    field(h.name.as_bytes());
    field(&(h.tags.len() as u64).to_le_bytes());
    for (k, v) in &h.tags {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    field(&h.created_at_us.to_le_bytes());
    match &h.envelope {
        None => field(&[0]),
        Some(e) => {
            field(&[1]);
            field(e);
        }
    }
    d.finalize().into()
}

/// The message a seal signs (see the module docs).
fn message(info: &TapeInfo) -> Vec<u8> {
    let id = info.header.id.as_bytes();
    let mut m = Vec::with_capacity(SEAL_DOMAIN.len() + id.len() + 200);
    m.extend_from_slice(SEAL_DOMAIN);
    m.extend_from_slice(&(id.len() as u16).to_le_bytes());
    m.extend_from_slice(id);
    m.extend_from_slice(&header_hash(&info.header));
    m.push(match info.state {
        TapeState::Recording => 0,
        TapeState::Finished => 1,
        TapeState::Aborted => 2,
        TapeState::Crashed => 3,
    });
    m.extend_from_slice(&info.frame_count.to_le_bytes());
    m.extend_from_slice(&info.byte_count.to_le_bytes());
    match info.ended_at_us {
        None => m.push(0),
        Some(t) => {
            m.push(1);
            m.extend_from_slice(&t.to_le_bytes());
        }
    }
    match &info.digest {
        None => m.push(0),
        Some(d) => {
            m.push(1);
            m.extend_from_slice(&(d.len() as u16).to_le_bytes());
            m.extend_from_slice(d.as_bytes());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: id.into(),
                session_id: "s".into(),
                name: "transfer".into(),
                tags: vec![("k".into(), "v".into())],
                created_at_us: 1,
                envelope: Some(vec![0, 1, 2]),
            },
            state: TapeState::Finished,
            frame_count: 2,
            byte_count: 20,
            ended_at_us: Some(9),
            digest: Some("ab".repeat(32)),
            seal: None,
        }
    }

    #[test]
    fn a_seal_round_trips_and_vouches_for_its_tape() {
        let host = SecretKey::generate().unwrap();
        let trusted = TrustedHosts::new([host.public()]);
        let seal = Seal::from_bytes(&Seal::new(&host, &info("a")).to_bytes()).unwrap();
        assert_eq!(seal.check(&info("a"), &trusted), Ok(host.public()));
    }

    #[test]
    fn any_change_to_what_was_sealed_is_caught() {
        let host = SecretKey::generate().unwrap();
        let trusted = TrustedHosts::new([host.public()]);
        let seal = Seal::new(&host, &info("a"));
        type Change = Box<dyn Fn(&mut TapeInfo)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "id (a swapped tape)",
                Box::new(|i| i.header.id = "b".into()),
            ),
            ("name", Box::new(|i| i.header.name = "transfer 999".into())),
            ("tags", Box::new(|i| i.header.tags.clear())),
            ("session", Box::new(|i| i.header.session_id.push('x'))),
            ("created", Box::new(|i| i.header.created_at_us += 1)),
            ("envelope", Box::new(|i| i.header.envelope = None)),
            (
                "envelope bytes",
                Box::new(|i| i.header.envelope = Some(vec![0, 1, 3])),
            ),
            ("state", Box::new(|i| i.state = TapeState::Crashed)),
            ("frames", Box::new(|i| i.frame_count -= 1)),
            ("bytes", Box::new(|i| i.byte_count += 1)),
            ("end", Box::new(|i| i.ended_at_us = None)),
            ("digest", Box::new(|i| i.digest = Some("cd".repeat(32)))),
        ];
        for (what, change) in changes {
            let mut i = info("a");
            change(&mut i);
            let e = seal.check(&i, &trusted).unwrap_err();
            assert!(matches!(e, SealError::Mismatch { .. }), "{what}: {e}");
        }
    }

    #[test]
    fn untrusted_forged_and_malformed_seals_are_refused() {
        let host = SecretKey::generate().unwrap();
        let mallory = SecretKey::generate().unwrap();
        let trusted = TrustedHosts::new([host.public(), host.public()]);
        assert_eq!(trusted.keys().len(), 1);
        let e = Seal::new(&mallory, &info("a"))
            .check(&info("a"), &trusted)
            .unwrap_err();
        assert!(matches!(e, SealError::Untrusted { .. }), "{e}");
        // Mallory's signature under the host's key.
        let mut forged = Seal::new(&mallory, &info("a")).to_bytes();
        forged[4..36].copy_from_slice(&host.public().to_bytes());
        let e = Seal::from_bytes(&forged)
            .unwrap()
            .check(&info("a"), &trusted)
            .unwrap_err();
        assert!(matches!(e, SealError::Mismatch { .. }), "{e}");
        assert!(matches!(
            Seal::from_bytes(b"short"),
            Err(SealError::Malformed(_))
        ));
        let mut other = Seal::new(&host, &info("a")).to_bytes();
        other[0] = b'x';
        assert!(matches!(
            Seal::from_bytes(&other),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn the_header_encoding_is_unambiguous() {
        let mut a = info("a").header;
        let mut b = a.clone();
        a.name = "ab".into();
        a.session_id = "c".into();
        b.name = "a".into();
        b.session_id = "bc".into();
        assert_ne!(header_hash(&a), header_hash(&b));
    }
}

#[cfg(test)]
mod layer_tests {
    use super::{Seal, SealError, SealStatus, Sealing, TrustedHosts, ended, seal_status};
    use crate::digest::DigestChain;
    use crate::envelope::Envelope;
    use crate::keys::SecretKey;
    use crate::testing::{MemStore, sample_frames};
    use crate::{TapeStore, TapeWriter};
    use std::sync::Arc;
    use tapedeck_types::{Direction, EndReason, Frame, TapeHeader, TapeState, TapeSummary};

    fn mem(store: &Sealing<MemStore>) -> &MemStore {
        crate::Layer::inner(store)
    }

    fn header(id: &str) -> TapeHeader {
        TapeHeader {
            id: id.into(),
            session_id: "s".into(),
            name: "n".into(),
            tags: Vec::new(),
            created_at_us: 5,
            envelope: None,
        }
    }

    fn summary(frames: &[Frame]) -> TapeSummary {
        TapeSummary {
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: 77,
            digest: Some(crate::DigestChain::over(frames).hex()),
            seal: None,
        }
    }

    fn sealing(key: &Arc<SecretKey>) -> Sealing<MemStore> {
        Sealing::new(MemStore::new("mem"), key.clone(), TrustedHosts::default())
    }

    #[tokio::test]
    async fn tapes_ended_through_the_layer_are_sealed_and_checked_on_read() {
        let key = Arc::new(SecretKey::generate().unwrap());
        let store = sealing(&key);
        let frames = sample_frames(3, |s| format!("{{\"n\":{s}}}").into_bytes());
        let mut w = store.create(header("a")).await.unwrap();
        w.append(&frames).await.unwrap();
        let info = w
            .finish(summary(&frames), EndReason::Completed)
            .await
            .unwrap();
        assert_eq!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(key.public())
        );
        let info = store.get("a").await.unwrap();
        assert_eq!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(key.public())
        );

        // Resumed, then aborted with a summary: sealed too.
        let mut w = store.create(header("b")).await.unwrap();
        w.append(&frames).await.unwrap();
        drop(w);
        let mut w = store.resume("b").await.unwrap();
        let info = w
            .finish(summary(&frames), EndReason::Aborted)
            .await
            .unwrap();
        assert_eq!(info.state, TapeState::Aborted);
        assert!(matches!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(_)
        ));

        // Another host that does not trust this key sees it as broken.
        let other = TrustedHosts::new([SecretKey::generate().unwrap().public()]);
        assert!(matches!(
            seal_status(&info, &other),
            SealStatus::Broken(SealError::Untrusted { .. })
        ));
    }

    #[tokio::test]
    async fn a_provider_rewriting_a_tape_breaks_its_seal() {
        let key = Arc::new(SecretKey::generate().unwrap());
        let store = sealing(&key);
        let frames = sample_frames(2, |_| b"transfer 100".to_vec());
        store
            .save(header("t"), &frames, summary(&frames), EndReason::Completed)
            .await
            .unwrap();
        // The provider's storage is changed behind the host's back: the
        // frames rewritten and the digest recomputed, as a lying provider
        // would.
        let (mut info, _) = mem(&store).tape("t").unwrap();
        let forged: Vec<Frame> = frames
            .iter()
            .map(|f| {
                Frame::new(
                    f.seq,
                    f.timestamp_us,
                    Direction::ClientToServer,
                    b"transfer 999".to_vec(),
                    false,
                )
            })
            .collect();
        info.digest = Some(crate::DigestChain::over(&forged).hex());
        mem(&store).put(info, forged);
        let info = store.get("t").await.unwrap();
        assert!(matches!(
            seal_status(&info, store.trusted()),
            SealStatus::Broken(SealError::Mismatch { .. })
        ));
        // A dropped seal: the envelope says the tape was to be sealed.
        let (mut info, frames) = mem(&store).tape("t").unwrap();
        info.seal = None;
        mem(&store).put(info.clone(), frames.clone());
        let got = store.get("t").await.unwrap();
        assert_eq!(
            seal_status(&got, store.trusted()),
            SealStatus::Broken(SealError::Removed {
                key: key.public().to_string()
            })
        );
        // The envelope edited as well, the tape looks as if never sealed:
        // unsealed (never sealed, so never verified), or refused where
        // seals are required.
        info.header.envelope = None;
        mem(&store).put(info, frames);
        let got = store.get("t").await.unwrap();
        assert_eq!(seal_status(&got, store.trusted()), SealStatus::Unsealed);
        let strict = store.trusted().clone().require_seals(true);
        assert_eq!(
            seal_status(&got, &strict),
            SealStatus::Broken(SealError::Missing)
        );
    }

    #[tokio::test]
    async fn created_tapes_are_marked_and_an_abort_ends_them_sealed() {
        let key = Arc::new(SecretKey::generate().unwrap());
        let store = sealing(&key);
        let frames = sample_frames(4, |s| format!("{{\"n\":{s}}}").into_bytes());
        let mut w = store.create(header("a")).await.unwrap();
        w.append(&frames[..2]).await.unwrap();
        // Frames already stored are skipped, the rest appended.
        w.append(&frames[1..3]).await.unwrap();
        w.abort("given up").await.unwrap();
        let info = store.get("a").await.unwrap();
        let env = Envelope::of(info.header.envelope.as_deref()).unwrap();
        assert_eq!(env.sealed_by(), Some(Ok(key.public())));
        assert_eq!(info.state, TapeState::Aborted);
        assert_eq!(info.frame_count, 3);
        assert_eq!(
            info.digest.as_deref(),
            Some(DigestChain::over(&frames[..3]).hex().as_str())
        );
        assert_eq!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(key.public())
        );

        // A resumed writer does not know the frames before it: a plain
        // abort, which leaves the tape without a seal it was marked for.
        let mut w = store.create(header("b")).await.unwrap();
        w.append(&frames).await.unwrap();
        drop(w);
        let mut w = store.resume("b").await.unwrap();
        w.abort("given up").await.unwrap();
        let info = store.get("b").await.unwrap();
        assert!(matches!(
            seal_status(&info, store.trusted()),
            SealStatus::Broken(SealError::Removed { .. })
        ));
        // A recording tape carries no seal yet.
        let _w = store.create(header("c")).await.unwrap();
        let info = store.get("c").await.unwrap();
        assert_eq!(seal_status(&info, store.trusted()), SealStatus::Unsealed);
    }

    #[tokio::test]
    async fn a_trusted_matching_seal_given_at_save_is_kept_and_others_are_replaced() {
        let key = Arc::new(SecretKey::generate().unwrap());
        let partner = SecretKey::generate().unwrap();
        let store = Sealing::new(
            MemStore::new("mem"),
            key.clone(),
            TrustedHosts::new([partner.public()]),
        );
        let frames = sample_frames(1, |_| b"x".to_vec());
        let mut s = summary(&frames);
        s.seal =
            Some(Seal::new(&partner, &ended(&header("p"), &s, EndReason::Completed)).to_bytes());
        let info = store
            .save(header("p"), &frames, s.clone(), EndReason::Completed)
            .await
            .unwrap();
        assert_eq!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(partner.public())
        );
        // A seal for other facts (another id) is replaced by this host's.
        let info = store
            .save(header("q"), &frames, s, EndReason::Completed)
            .await
            .unwrap();
        assert_eq!(
            seal_status(&info, store.trusted()),
            SealStatus::Sealed(key.public())
        );
    }
}
