//! Copying tapes from one [`TapeStore`] to another (`tapedeck migrate`):
//! streaming, verified, resumable.
//!
//! [`Migration::tape`] copies one tape, given as the source's `get` (or
//! `list`) reported it:
//!
//! 1. What the destination holds under the tape's id decides what happens:
//!    nothing → `create`; a copy still `recording` (left by an interrupted
//!    migration) → `resume` it; an ended tape equal to the source (header,
//!    state, totals, end time, digest) → skipped as already migrated;
//!    anything else → a conflict, reported and left untouched.
//! 2. The source's frames stream page by page from seq 0 through a
//!    verifying [`FrameStream`] (pages of `page_frames` / `page_bytes`;
//!    memory holds one page). Frames below a resumed copy's `next-seq` are
//!    not sent again: they are hashed into the digest chain, and the chain
//!    over them must equal the chain over the copy's own frames (read back
//!    from the destination first), so a copy whose frames are not the
//!    source's is a conflict, and nothing is appended to it. Every other
//!    page is one `append`.
//! 3. After the last page the source's totals and its recorded digest (if
//!    it has one) are checked against the frames read: a source whose
//!    frames do not match its own digest is not copied as intact.
//! 4. Read back (unless turned off): the copy's frames are read from the
//!    destination and their chain compared with the source's, before the
//!    copy is finished.
//! 5. `finish` with the source's summary (frame count, byte count, end
//!    time, digest, seal) and the reason of its state (`finished` →
//!    `completed`, `crashed` → `crashed`, `aborted` → `aborted`); then `get`
//!    on the destination must report the source's header (envelope
//!    included), state, totals, end time and digest.
//!
//! Everything the host owns is carried verbatim: the header (with its
//! envelope) as `create` is given it, each frame as the source returns it
//! (terms and attributes included), the seal in the summary. The seal is
//! not compared here: checking seals is the seal layer's work.
//!
//! **A failure before step 5 leaves the copy `recording`**, never finished
//! and not aborted: `recording` is the state in which the contract says a
//! tape is incomplete and can be continued, so running the migration again
//! resumes it (re-checking the frames it holds against the source), and an
//! aborted copy could not be resumed, only deleted. A copy that fails after
//! `finish` (the destination reports other totals or digest) is finished
//! already; the error says so, and it has to be deleted by hand.
//!
//! **Aborted tapes** end with `finish` and reason `aborted`, carrying the
//! source's summary (as `import` does). The contract lets a provider treat
//! that as `abort`, which keeps neither end time nor digest: such a copy
//! has the migration time as its end time and no digest. This is accepted
//! for aborted tapes only, with a note ([`Migrated::note`]), and a later
//! run still sees the copy as migrated.
//!
//! **Tapes still recording** at the source are live: they are skipped
//! ([`Skip::SourceRecording`]) unless [`MigrateOptions::include_recording`]
//! is set. Then the frames so far are copied and the copy stays
//! `recording`; a later run resumes it, and ends it once the source has
//! ended.
//!
//! A tape that ended without a digest is copied without one (a faithful
//! copy); it is still checked, by the read-back against the chain over the
//! frames read from the source.

mod compare;
mod outcome;
#[cfg(test)]
mod tests;

pub use outcome::*;

use crate::error::ProviderError;
use crate::read::{
    FrameDecoder, FrameStream, IntegrityError, Mismatch, ReadError, TapeLoadError, TapeReader,
};
use crate::recorder::DigestChain;
use crate::store::codec::StoredForm;
use crate::store::seal::{SealStatus, TrustedHosts, seal_status};
use crate::store::{TapeStore, TapeWriter};
use compare::{compare, compare_headers};
use std::sync::Arc;
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeInfo, TapeState, TapeSummary};

/// Copies tapes from one store to another; see the module docs.
pub struct Migration<'a, A: TapeStore, B: TapeStore> {
    from: &'a A,
    to: &'a B,
    from_name: String,
    to_name: String,
    options: MigrateOptions,
    /// Set for a copy as stored ([`as_stored`](Self::as_stored)).
    form: Option<&'a dyn StoredForm>,
    /// The keys seals are checked against (the source's).
    trusted: Option<TrustedHosts>,
}

impl<'a, A: TapeStore, B: TapeStore> Migration<'a, A, B> {
    /// A migration from `from` to `to` with default options, naming the
    /// providers in errors by the names they gave at `init`.
    pub fn new(from: &'a A, to: &'a B) -> Self {
        Migration {
            from,
            to,
            from_name: from.provider_info().name.clone(),
            to_name: to.provider_info().name.clone(),
            options: MigrateOptions::default(),
            form: None,
            trusted: from.trusted_hosts().cloned(),
        }
    }

    /// Copies tapes *as stored*: `from` and `to` are the stores below the
    /// host's codec (what the providers hold), and each tape's envelope,
    /// frames (compressed, encrypted) and summary are copied unchanged.
    /// `form` (the source's codec layer, [`crate::store::codec::Codec`])
    /// reads them as recorded, so that the source is verified against its
    /// recorded digest and seal (checked against `trusted`), and the copy
    /// read back against the source, exactly as for a copy through the
    /// codec: an encrypted tape needs its key. An ended tape without a seal
    /// is still refused unless [`MigrateOptions::allow_unsealed`]; its copy
    /// stays unsealed (the seal is copied, never made).
    pub fn as_stored(mut self, form: &'a dyn StoredForm, trusted: Option<TrustedHosts>) -> Self {
        self.form = Some(form);
        self.trusted = trusted;
        self
    }

    /// Names the providers `from` and `to` in errors (e.g. their configured
    /// names).
    pub fn provider_names(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.from_name = from.into();
        self.to_name = to.into();
        self
    }

    /// Sets the options.
    pub fn options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// The store tapes are copied from (as given to [`new`](Self::new)).
    pub fn source(&self) -> &'a A {
        self.from
    }

    /// The source's `get` of tape `id` (for a tape named by the user).
    pub async fn source_info(&self, id: &str) -> Result<TapeInfo, MigrateError> {
        self.from
            .get(id)
            .await
            .map_err(|e| self.call_failed(Side::Source, id, "get", e, CopyLeft::Nothing))
    }

    /// Copies the tape `source` describes (as the source's `get` or `list`
    /// reported it) to the destination; see the module docs.
    pub async fn tape(
        &self,
        source: &TapeInfo,
        progress: &mut dyn Progress,
    ) -> Result<Outcome, MigrateError> {
        let id = source.header.id.as_str();
        if source.state == TapeState::Recording && !self.options.include_recording {
            return Ok(Outcome::Skipped(Skip::SourceRecording));
        }
        // A tape read as stored must decode (its key at hand) before
        // anything is written.
        let reading = self.reading(Side::Source, source)?;
        if let Some(refused) = self.check_seal(reading.recorded(source)) {
            return Err(refused);
        }
        let existing = match self.to.get(id).await {
            Ok(info) => Some(info),
            Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => None,
            Err(e) => {
                return Err(self.call_failed(Side::Destination, id, "get", e, CopyLeft::Nothing));
            }
        };
        let (mut writer, copy) = match existing {
            None => {
                let writer = self.to.create(source.header.clone()).await.map_err(|e| {
                    self.call_failed(Side::Destination, id, "create", e, CopyLeft::Nothing)
                })?;
                (writer, None)
            }
            Some(dest) if dest.state != TapeState::Recording => {
                let (differences, _) = compare(source, &dest);
                if differences.is_empty() {
                    return Ok(Outcome::Skipped(Skip::AlreadyMigrated));
                }
                return Err(self.conflict(id, differences));
            }
            Some(dest) => {
                let mut differences = compare_headers(source, &dest);
                if source.state != TapeState::Recording && dest.frame_count > source.frame_count {
                    differences.push(format!(
                        "it is recording with {} frames, the source has {}",
                        dest.frame_count, source.frame_count
                    ));
                }
                if !differences.is_empty() {
                    return Err(self.conflict(id, differences));
                }
                progress.phase(Phase::CheckingCopy);
                let writer = self.to.resume(id).await.map_err(|e| {
                    self.call_failed(Side::Destination, id, "resume", e, CopyLeft::Untouched)
                })?;
                let held = writer.next_seq();
                let chain = self.read_copy(&dest, Some(held)).await?;
                (writer, Some((held, chain)))
            }
        };

        let reader = self.reader(self.from, &self.from_name);
        let mut stream = reading.stream(&reader, source);
        if let Some((held, copy_chain)) = &copy {
            self.check_held(&mut stream, *held, copy_chain, progress)
                .await?;
        }
        progress.phase(Phase::Copying);
        let mut frames_sent = 0u64;
        while let Some(page) = self.next_source_page(&mut stream, None).await? {
            writer.append(&page).await.map_err(|e| {
                self.call_failed(Side::Destination, id, "append", e, CopyLeft::Recording)
            })?;
            frames_sent += page.len() as u64;
            progress.advanced(page.len() as u64, payload_bytes(&page));
        }
        let chain = stream.chain().clone();
        let verification = stream.finish().map_err(|e| MigrateError {
            tape: id.to_string(),
            destination: self.to_name.clone(),
            kind: MigrateErrorKind::SourceIntegrity(e),
            copy: CopyLeft::Recording,
        })?;
        let resumed_from = copy.map(|(held, _)| held);
        let dest_get = |copy_left| {
            let id = id.to_string();
            async move {
                self.to
                    .get(&id)
                    .await
                    .map_err(|e| self.call_failed(Side::Destination, &id, "get", e, copy_left))
            }
        };

        if source.state == TapeState::Recording {
            // A live tape: the frames so far; the copy stays recording.
            let dest = dest_get(CopyLeft::Recording).await?;
            return Ok(Outcome::Migrated(Box::new(Migrated {
                info: self.reading(Side::Destination, &dest)?.recorded_or(dest),
                stored_as_is: self.form.is_some(),
                resumed_from,
                frames_sent,
                source: verification,
                read_back: false,
                note: None,
            })));
        }
        if self.options.read_back {
            progress.phase(Phase::ReadingBack);
            let dest = dest_get(CopyLeft::Recording).await?;
            let copy_chain = self.read_copy(&dest, None).await?;
            if copy_chain != chain {
                return Err(self.copy_differs(
                    id,
                    vec![format!(
                        "its {} frames read back do not reproduce the chain over the \
                         source's {} frames (expected {}, computed {})",
                        copy_chain.frames(),
                        chain.frames(),
                        chain.hex(),
                        copy_chain.hex()
                    )],
                    CopyLeft::Recording,
                ));
            }
        }
        progress.phase(Phase::Finishing);
        let reason = EndReason::for_state(source.state).expect("an ended tape");
        writer
            .finish(summary_of(source), reason)
            .await
            .map_err(|e| {
                self.call_failed(Side::Destination, id, "finish", e, CopyLeft::Recording)
            })?;
        let dest = dest_get(CopyLeft::Finished).await?;
        let (differences, note) = compare(source, &dest);
        if !differences.is_empty() {
            return Err(self.copy_differs(id, differences, CopyLeft::Finished));
        }
        Ok(Outcome::Migrated(Box::new(Migrated {
            info: self.reading(Side::Destination, &dest)?.recorded_or(dest),
            stored_as_is: self.form.is_some(),
            resumed_from,
            frames_sent,
            source: verification,
            read_back: self.options.read_back,
            note,
        })))
    }

    /// Reads the source's frames below `held` (the resumed copy's
    /// `next-seq`) without sending them, and compares their chain with the
    /// chain over the copy's frames: a copy that is not a prefix of the
    /// source is a conflict.
    async fn check_held(
        &self,
        stream: &mut FrameStream<'_, A>,
        held: u64,
        copy_chain: &DigestChain,
        progress: &mut dyn Progress,
    ) -> Result<(), MigrateError> {
        let id = stream.id().to_string();
        while stream.frames_read() < held {
            let Some(page) = self.next_source_page(stream, Some(held)).await? else {
                return Err(self.conflict(
                    &id,
                    vec![format!(
                        "it is recording with {held} frames, the source has {}",
                        stream.frames_read()
                    )],
                ));
            };
            progress.advanced(page.len() as u64, payload_bytes(&page));
        }
        if stream.chain() != copy_chain {
            return Err(self.conflict(
                &id,
                vec![format!(
                    "it is recording, and its {held} frames are not the source's first {held}"
                )],
            ));
        }
        Ok(())
    }

    /// The next page of the source, ending at frame `end` if given.
    async fn next_source_page(
        &self,
        stream: &mut FrameStream<'_, A>,
        end: Option<u64>,
    ) -> Result<Option<Vec<Frame>>, MigrateError> {
        let id = stream.id().to_string();
        let max = end.map_or(u32::MAX, |end| frames_until(stream.frames_read(), end));
        stream.next_page_max(max).await.map_err(|e| match e {
            ReadError::Provider(e) => {
                self.call_failed(Side::Source, &id, "read-frames", e, CopyLeft::Recording)
            }
            ReadError::Integrity(e) => MigrateError {
                tape: id.clone(),
                destination: self.to_name.clone(),
                kind: MigrateErrorKind::SourceIntegrity(e),
                copy: CopyLeft::Recording,
            },
            ReadError::Page(never) => match never {},
        })
    }

    /// The chain over the frames of the copy `dest` (as the destination's
    /// `get` reported it) in the destination: its first `upto` frames, or
    /// all of them, checked for order and against its totals.
    async fn read_copy(
        &self,
        dest: &TapeInfo,
        upto: Option<u64>,
    ) -> Result<DigestChain, MigrateError> {
        let id = dest.header.id.as_str();
        let reader = self.reader(self.to, &self.to_name);
        let reading = self.reading(Side::Destination, dest)?;
        let mut stream = reading.stream(&reader, dest);
        let fail = |e: TapeLoadError| match e {
            ReadError::Provider(e) => {
                self.call_failed(Side::Destination, id, "read-frames", e, CopyLeft::Recording)
            }
            ReadError::Integrity(e) => {
                self.copy_differs(id, vec![e.to_string()], CopyLeft::Recording)
            }
            ReadError::Page(never) => match never {},
        };
        while upto.is_none_or(|end| stream.frames_read() < end) {
            let max = upto.map_or(u32::MAX, |end| frames_until(stream.frames_read(), end));
            if stream.next_page_max(max).await.map_err(fail)?.is_none() {
                break;
            }
        }
        if let Some(end) = upto
            && stream.frames_read() < end
        {
            return Err(self.copy_differs(
                id,
                vec![format!(
                    "its next-seq is {end} but it returns {} frames",
                    stream.frames_read()
                )],
                CopyLeft::Recording,
            ));
        }
        let chain = stream.chain().clone();
        if upto.is_none() {
            stream
                .finish()
                .map_err(|e| self.copy_differs(id, vec![e.to_string()], CopyLeft::Recording))?;
        }
        Ok(chain)
    }

    /// A reader of `store` (named `name`) with the migration's page size;
    /// for a copy as stored, checking seals against the keys given (the
    /// stores below the codec know none).
    fn reader<'r, S: TapeStore>(&self, store: &'r S, name: &str) -> TapeReader<'r, S> {
        let reader = TapeReader::new(store)
            .provider_name(name)
            .page_size(self.options.page_frames, self.options.page_bytes);
        match (&self.form, &self.trusted) {
            (Some(_), Some(t)) => reader.trusting(t.clone()),
            _ => reader,
        }
    }

    /// How the tape `info` (as `side` reported it) is read: as given, or as
    /// stored and decoded for the checks.
    #[allow(
        clippy::result_large_err,
        reason = "the error every step of a migration returns, once per tape"
    )]
    fn reading(&self, side: Side, info: &TapeInfo) -> Result<Reading, MigrateError> {
        let Some(form) = self.form else {
            return Ok(Reading::AsGiven);
        };
        let id = info.header.id.as_str();
        let copy = match side {
            Side::Source => CopyLeft::Nothing,
            Side::Destination => CopyLeft::Recording,
        };
        let recorded = form
            .recorded_info(info)
            .map_err(|e| self.call_failed(side, id, "get", e, copy))?;
        let decoder = form
            .decoder(info)
            .map_err(|e| self.call_failed(side, id, "read-frames", e, copy))?;
        Ok(Reading::Stored {
            recorded: Box::new(recorded),
            decoder,
        })
    }

    /// `call` on `side` failed for tape `id`, leaving the copy as `copy`.
    fn call_failed(
        &self,
        side: Side,
        id: &str,
        call: &'static str,
        error: ProviderError,
        copy: CopyLeft,
    ) -> MigrateError {
        let provider = match side {
            Side::Source => &self.from_name,
            Side::Destination => &self.to_name,
        };
        MigrateError {
            tape: id.to_string(),
            destination: self.to_name.clone(),
            kind: MigrateErrorKind::Call {
                side,
                provider: provider.clone(),
                call,
                error,
            },
            copy,
        }
    }

    fn conflict(&self, id: &str, differences: Vec<String>) -> MigrateError {
        MigrateError {
            tape: id.to_string(),
            destination: self.to_name.clone(),
            kind: MigrateErrorKind::Conflict {
                provider: self.to_name.clone(),
                differences,
            },
            copy: CopyLeft::Untouched,
        }
    }

    fn copy_differs(&self, id: &str, differences: Vec<String>, copy: CopyLeft) -> MigrateError {
        MigrateError {
            tape: id.to_string(),
            destination: self.to_name.clone(),
            kind: MigrateErrorKind::CopyDiffers {
                provider: self.to_name.clone(),
                differences,
            },
            copy,
        }
    }
}

impl<A: TapeStore, B: TapeStore> Migration<'_, A, B> {
    /// Before anything is copied: the seal of an ended source tape (as
    /// recorded), when the source checks seals
    /// ([`TapeStore::trusted_hosts`], or the keys given to
    /// [`as_stored`](Self::as_stored)). A broken seal is a [`MigrateErrorKind::SourceIntegrity`]; none at all is
    /// [`MigrateErrorKind::Unsealed`] unless allowed. `None`: go on.
    fn check_seal(&self, source: &TapeInfo) -> Option<MigrateError> {
        let trusted = self.trusted.as_ref()?;
        let error = |kind| MigrateError {
            tape: source.header.id.clone(),
            destination: self.to_name.clone(),
            kind,
            copy: CopyLeft::Nothing,
        };
        match seal_status(source, trusted) {
            SealStatus::Sealed(_) => None,
            SealStatus::Unsealed
                if source.state == TapeState::Recording || self.options.allow_unsealed =>
            {
                None
            }
            SealStatus::Unsealed => Some(error(MigrateErrorKind::Unsealed {
                provider: self.from_name.clone(),
            })),
            SealStatus::Broken(e) => {
                Some(error(MigrateErrorKind::SourceIntegrity(IntegrityError {
                    tape: source.header.id.clone(),
                    provider: self.from_name.clone(),
                    mismatch: Mismatch::Seal(e),
                })))
            }
        }
    }
}

/// How one tape's frames are read and checked.
enum Reading {
    /// As the store returns them, checked against its `get`.
    AsGiven,
    /// As stored; checked, decoded, against the tape as recorded.
    Stored {
        recorded: Box<TapeInfo>,
        decoder: Option<Arc<dyn FrameDecoder>>,
    },
}

impl Reading {
    /// The stream of the tape `info` describes (as its store reported it).
    fn stream<'a, S: TapeStore>(
        &'a self,
        reader: &'a TapeReader<'_, S>,
        info: &'a TapeInfo,
    ) -> FrameStream<'a, S> {
        match self {
            Reading::AsGiven => reader.stream(info),
            Reading::Stored { recorded, decoder } => {
                reader.stream_stored(info, recorded, decoder.as_deref())
            }
        }
    }

    /// The tape as recorded, `info` being how its store reported it.
    fn recorded<'a>(&'a self, info: &'a TapeInfo) -> &'a TapeInfo {
        match self {
            Reading::AsGiven => info,
            Reading::Stored { recorded, .. } => recorded,
        }
    }

    /// Like [`recorded`](Self::recorded), by value.
    fn recorded_or(self, info: TapeInfo) -> TapeInfo {
        match self {
            Reading::AsGiven => info,
            Reading::Stored { recorded, .. } => *recorded,
        }
    }
}

/// The summary the copy is finished with: the source's totals, end time
/// (its creation time if it reports none, as `export` writes), digest and
/// seal.
fn summary_of(source: &TapeInfo) -> TapeSummary {
    TapeSummary {
        frame_count: source.frame_count,
        byte_count: source.byte_count,
        ended_at_us: source.ended_at_us.unwrap_or(source.header.created_at_us),
        digest: source.digest.clone(),
        seal: source.seal.clone(),
    }
}

/// Payload bytes of `frames`.
fn payload_bytes(frames: &[Frame]) -> u64 {
    frames.iter().map(|f| f.payload.len() as u64).sum()
}

/// How many frames to ask for to stop at frame `end`, having read `read`.
fn frames_until(read: u64, end: u64) -> u32 {
    u32::try_from(end.saturating_sub(read)).unwrap_or(u32::MAX)
}
