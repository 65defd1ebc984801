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
//!    time, digest) and the reason of its state (`finished` → `completed`,
//!    `crashed` → `crashed`, `aborted` → `aborted`); then `get` on the
//!    destination must report the source's header, state, totals, end time
//!    and digest.
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

use crate::error::ProviderError;
use crate::integrity::{
    DEFAULT_PAGE_BYTES, DEFAULT_PAGE_FRAMES, FrameStream, IntegrityError, LoadError, ReadError,
    TapeReader, Verification,
};
use crate::recorder::DigestChain;
use crate::store::{TapeStore, TapeWriter};
use std::fmt;
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeInfo, TapeState, TapeSummary};

/// How a [`Migration`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Copy tapes still `recording` at the source (the frames so far; the
    /// copy stays `recording`) instead of skipping them.
    pub include_recording: bool,
    /// Read the copy back and compare it with the source before finishing
    /// it (default on).
    pub read_back: bool,
    /// Most frames per `read-frames` (and so per `append`).
    pub page_frames: u32,
    /// About the most payload bytes per `read-frames` (a provider may
    /// exceed it by one frame).
    pub page_bytes: u64,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            include_recording: false,
            read_back: true,
            page_frames: DEFAULT_PAGE_FRAMES,
            page_bytes: DEFAULT_PAGE_BYTES,
        }
    }
}

/// What [`Migration::tape`] is doing, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading the frames a resumed copy holds, and hashing the source's
    /// frames up to the copy's `next-seq`, to compare them.
    CheckingCopy,
    /// Streaming the source's frames into the copy.
    Copying,
    /// Reading the copy back to compare it with the source.
    ReadingBack,
    /// Finishing the copy and checking what the destination reports.
    Finishing,
}

impl Phase {
    /// `checking the copy`, `copying`, `reading back`, `finishing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::CheckingCopy => "checking the copy",
            Phase::Copying => "copying",
            Phase::ReadingBack => "reading back",
            Phase::Finishing => "finishing",
        }
    }
}

/// Receives the progress of [`Migration::tape`]; every method does nothing
/// by default.
pub trait Progress {
    /// The tape's migration entered `phase`.
    fn phase(&mut self, phase: Phase) {
        let _ = phase;
    }

    /// `frames` more frames of the source (`bytes` payload bytes) were
    /// processed: sent to the destination, or, below a resumed copy's
    /// `next-seq`, checked against it.
    fn advanced(&mut self, frames: u64, bytes: u64) {
        let _ = (frames, bytes);
    }
}

/// No progress display.
impl Progress for () {}

/// A tape [`Migration::tape`] dealt with without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The tape was copied (or its copy continued).
    Migrated(Box<Migrated>),
    /// Nothing was done.
    Skipped(Skip),
}

/// A tape copied to the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// What the destination reports for the copy. `recording` when the
    /// source was still recording ([`MigrateOptions::include_recording`]).
    pub info: TapeInfo,
    /// The copy was resumed from this `next-seq` (frames below it were
    /// already there and were checked, not sent).
    pub resumed_from: Option<u64>,
    /// Frames sent in this run.
    pub frames_sent: u64,
    /// What reading the source established (verified against its digest,
    /// or why not).
    pub source: Verification,
    /// The copy was read back and matched the source before it was
    /// finished.
    pub read_back: bool,
    /// Something worth saying about an otherwise good copy (an aborted
    /// tape whose destination kept no digest).
    pub note: Option<String>,
}

/// Why a tape was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The destination has an ended tape equal to the source.
    AlreadyMigrated,
    /// The source is still recording (a live tape) and
    /// [`MigrateOptions::include_recording`] is off.
    SourceRecording,
}

impl Skip {
    /// A short kebab-case name: `already-migrated`, `source-recording`.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::AlreadyMigrated => "already-migrated",
            Skip::SourceRecording => "source-recording",
        }
    }
}

/// `already migrated`, `still recording at the source`.
impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::AlreadyMigrated => "already migrated",
            Skip::SourceRecording => "still recording at the source",
        })
    }
}

/// Why a tape could not be migrated, and what became of its copy.
/// Displays as `tape ID: ` what went wrong (naming the provider), then
/// what was left at the destination.
#[derive(Debug, thiserror::Error)]
pub struct MigrateError {
    /// The tape's id.
    pub tape: String,
    /// The destination provider's name.
    pub destination: String,
    /// What went wrong.
    #[source]
    pub kind: MigrateErrorKind,
    /// What the destination holds now.
    pub copy: CopyLeft,
}

impl MigrateError {
    /// True when the destination holds a different tape under this id.
    pub fn is_conflict(&self) -> bool {
        matches!(self.kind, MigrateErrorKind::Conflict { .. })
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            // Already begins with `tape ID: `.
            MigrateErrorKind::SourceIntegrity(e) => write!(f, "{e}")?,
            kind => write!(f, "tape {}: {kind}", self.tape)?,
        }
        let to = &self.destination;
        match self.copy {
            CopyLeft::Nothing => Ok(()),
            CopyLeft::Untouched => write!(f, "; left untouched"),
            // It holds the frames as the source returned them.
            CopyLeft::Recording if matches!(self.kind, MigrateErrorKind::SourceIntegrity(_)) => {
                write!(
                    f,
                    "; the copy in provider {to} is left recording, not finished, with the \
                     frames as read: delete it"
                )
            }
            CopyLeft::Recording => write!(
                f,
                "; the copy in provider {to} is left recording, not finished: \
                 run the migration again to resume it, or delete it"
            ),
            CopyLeft::Finished => write!(
                f,
                "; the copy in provider {to} is finished but differs from the source: \
                 delete it, then run the migration again"
            ),
        }
    }
}

/// What went wrong in [`MigrateError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateErrorKind {
    /// A call to the source or the destination failed (`not-found` from the
    /// source: no such tape).
    #[error("{}", call_error(*side, provider, call, error))]
    Call {
        /// Which provider.
        side: Side,
        /// Its name.
        provider: String,
        /// The contract function called.
        call: &'static str,
        /// How it failed (names the provider).
        error: ProviderError,
    },
    /// The source's frames disagree with what the source records about the
    /// tape (totals, order, digest).
    #[error(transparent)]
    SourceIntegrity(IntegrityError),
    /// The destination holds a different tape under this id.
    #[error(
        "provider {provider} already has a different tape with this id: {}",
        differences.join("; ")
    )]
    Conflict {
        /// The destination provider's name.
        provider: String,
        /// What differs, one item each.
        differences: Vec<String>,
    },
    /// The copy in the destination does not read back, or does not report
    /// itself, as the source.
    #[error(
        "the copy in provider {provider} differs from the source: {}",
        differences.join("; ")
    )]
    CopyDiffers {
        /// The destination provider's name.
        provider: String,
        /// What differs, one item each.
        differences: Vec<String>,
    },
}

/// Which end of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The provider tapes are copied from.
    Source,
    /// The provider tapes are copied to.
    Destination,
}

impl Side {
    /// `source` or `destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// `no such tape in provider fs (the source)` for `not-found` from the
/// source, else `` `append` on provider pg (the destination) failed: … ``.
fn call_error(side: Side, provider: &str, call: &str, error: &ProviderError) -> String {
    let side = side.as_str();
    if error.storage_kind() == Some(ErrorKind::NotFound) {
        format!("no such tape in provider {provider} (the {side})")
    } else {
        format!("`{call}` on provider {provider} (the {side}) failed: {error}")
    }
}

/// What a failed migration left in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyLeft {
    /// Nothing was written.
    Nothing,
    /// The tape the destination already had was not changed.
    Untouched,
    /// The copy is `recording`: incomplete, resumable.
    Recording,
    /// The copy is finished, but does not match the source.
    Finished,
}

impl CopyLeft {
    /// A short kebab-case name: `nothing`, `untouched`, `recording`,
    /// `finished`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyLeft::Nothing => "nothing",
            CopyLeft::Untouched => "untouched",
            CopyLeft::Recording => "recording",
            CopyLeft::Finished => "finished",
        }
    }
}

/// Copies tapes from one store to another; see the module docs.
pub struct Migration<'a, A: TapeStore, B: TapeStore> {
    from: &'a A,
    to: &'a B,
    from_name: String,
    to_name: String,
    options: MigrateOptions,
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
        }
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

        let reader = TapeReader::new(self.from)
            .provider_name(&self.from_name)
            .page_size(self.options.page_frames, self.options.page_bytes);
        let mut stream = reader.stream(source);
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
            return Ok(Outcome::Migrated(Box::new(Migrated {
                info: dest_get(CopyLeft::Recording).await?,
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
            info: dest,
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
        let reader = TapeReader::new(self.to)
            .provider_name(&self.to_name)
            .page_size(self.options.page_frames, self.options.page_bytes);
        let mut stream = reader.stream(dest);
        let fail = |e: LoadError| match e {
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

/// The summary the copy is finished with: the source's totals, end time
/// (its creation time if it reports none, as `export` writes) and digest.
fn summary_of(source: &TapeInfo) -> TapeSummary {
    TapeSummary {
        frame_count: source.frame_count,
        byte_count: source.byte_count,
        ended_at_us: source.ended_at_us.unwrap_or(source.header.created_at_us),
        digest: source.digest.clone(),
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

/// Adds `what: copy (source: source)` to `out` when the two differ.
fn differ(out: &mut Vec<String>, what: &str, copy: impl fmt::Debug, source: impl fmt::Debug) {
    let (copy, source) = (format!("{copy:?}"), format!("{source:?}"));
    if copy != source {
        out.push(format!("{what} {copy} (source: {source})"));
    }
}

/// What differs between the headers of the source's tape and the copy.
fn compare_headers(source: &TapeInfo, copy: &TapeInfo) -> Vec<String> {
    let (s, c) = (&source.header, &copy.header);
    let mut out = Vec::new();
    differ(&mut out, "session", &c.session_id, &s.session_id);
    differ(&mut out, "name", &c.name, &s.name);
    differ(&mut out, "tags", &c.tags, &s.tags);
    differ(
        &mut out,
        "created at (µs)",
        c.created_at_us,
        s.created_at_us,
    );
    out
}

/// What differs between the source's tape and an ended copy (state,
/// totals, end time, digest: what the copy is finished with), and a note
/// when an aborted copy kept neither end time nor digest (accepted, see
/// the module docs).
fn compare(source: &TapeInfo, copy: &TapeInfo) -> (Vec<String>, Option<String>) {
    let mut out = compare_headers(source, copy);
    let summary = summary_of(source);
    differ(
        &mut out,
        "state",
        copy.state.as_str(),
        source.state.as_str(),
    );
    differ(&mut out, "frames", copy.frame_count, summary.frame_count);
    differ(
        &mut out,
        "payload bytes",
        copy.byte_count,
        summary.byte_count,
    );
    let summary_dropped = source.state == TapeState::Aborted
        && copy.state == TapeState::Aborted
        && copy.digest.is_none()
        && summary.digest.is_some();
    if summary_dropped {
        let note = "the destination kept neither the end time nor the digest of this aborted \
                    tape (the contract lets `finish` with reason aborted behave as `abort`)";
        return (out, Some(note.to_string()));
    }
    let ended = |us: Option<u64>| us.map_or("none".to_string(), |us| us.to_string());
    differ(
        &mut out,
        "end time (µs)",
        ended(copy.ended_at_us),
        ended(Some(summary.ended_at_us)),
    );
    let digest = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
    differ(
        &mut out,
        "digest",
        digest(&copy.digest),
        digest(&summary.digest),
    );
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fake::{MemStore, sample_frames};
    use tapedeck_types::{TapeFilter, TapeHeader};

    /// `n` frames of tape `id`, payloads of varying length, one not JSON.
    fn frames(id: &str, n: u64) -> Vec<Frame> {
        let mut frames = sample_frames(n, |seq| {
            format!("{{\"tape\":\"{id}\",\"n\":{}}}", "x".repeat(seq as usize)).into_bytes()
        });
        if let Some(f) = frames.get_mut(3) {
            f.not_json = true;
        }
        frames
    }

    /// Tape `id` in `state` over `frames`, with its digest when it ended.
    fn info(id: &str, created: u64, state: TapeState, frames: &[Frame]) -> TapeInfo {
        let ended = state != TapeState::Recording;
        TapeInfo {
            header: TapeHeader {
                id: id.into(),
                session_id: format!("session-{id}"),
                name: format!("tape {id}"),
                tags: vec![("env".into(), "ci".into()), ("env".into(), "eu".into())],
                created_at_us: 1_700_000_000_000_000 + created,
            },
            state,
            frame_count: frames.len() as u64,
            byte_count: payload_bytes(frames),
            ended_at_us: ended.then_some(1_700_000_001_000_000 + created),
            digest: ended.then(|| DigestChain::over(frames).hex()),
        }
    }

    fn put(store: &MemStore, id: &str, created: u64, state: TapeState, n: u64) {
        let f = frames(id, n);
        store.put(info(id, created, state, &f), f);
    }

    /// A source with a tape in every state, one without a digest, one
    /// empty.
    fn source() -> MemStore {
        let src = MemStore::new("src");
        put(&src, "fin", 1, TapeState::Finished, 7);
        put(&src, "crash", 2, TapeState::Crashed, 3);
        put(&src, "abrt", 3, TapeState::Aborted, 2);
        put(&src, "empty", 4, TapeState::Finished, 0);
        put(&src, "live", 5, TapeState::Recording, 4);
        let f = frames("nodig", 5);
        let mut i = info("nodig", 6, TapeState::Finished, &f);
        i.digest = None;
        src.put(i, f);
        src
    }

    /// Pages of two frames: several appends per tape.
    fn small_pages() -> MigrateOptions {
        MigrateOptions {
            page_frames: 2,
            ..MigrateOptions::default()
        }
    }

    /// Counts what a migration reports.
    #[derive(Default)]
    struct Seen {
        phases: Vec<Phase>,
        frames: u64,
        bytes: u64,
    }

    impl Progress for Seen {
        fn phase(&mut self, phase: Phase) {
            self.phases.push(phase);
        }
        fn advanced(&mut self, frames: u64, bytes: u64) {
            self.frames += frames;
            self.bytes += bytes;
        }
    }

    async fn migrate(
        src: &MemStore,
        dst: &MemStore,
        options: MigrateOptions,
        id: &str,
    ) -> Result<Outcome, MigrateError> {
        let m = Migration::new(src, dst).options(options);
        let info = m.source_info(id).await?;
        m.tape(&info, &mut ()).await
    }

    fn migrated(outcome: Result<Outcome, MigrateError>) -> Migrated {
        match outcome {
            Ok(Outcome::Migrated(m)) => *m,
            other => panic!("expected a migrated tape, got {other:?}"),
        }
    }

    fn failed(outcome: Result<Outcome, MigrateError>) -> MigrateError {
        match outcome {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn same(src: &MemStore, dst: &MemStore, id: &str) {
        assert_eq!(dst.tape(id), src.tape(id), "tape {id}");
    }

    #[tokio::test]
    async fn every_ended_tape_is_copied_equal_and_live_ones_are_skipped() {
        let (src, dst) = (source(), MemStore::new("dst"));
        let page = src.list(&TapeFilter::default(), None, 100).await.unwrap();
        let m = Migration::new(&src, &dst).options(small_pages());
        for tape in &page.tapes {
            let id = tape.header.id.as_str();
            let mut seen = Seen::default();
            let outcome = m.tape(tape, &mut seen).await;
            if id == "live" {
                assert_eq!(outcome.unwrap(), Outcome::Skipped(Skip::SourceRecording));
                assert!(dst.tape(id).is_none());
                continue;
            }
            let done = migrated(outcome);
            same(&src, &dst, id);
            assert_eq!(done.info, dst.tape(id).unwrap().0);
            assert_eq!(done.resumed_from, None);
            assert_eq!(done.frames_sent, tape.frame_count);
            assert!(done.read_back);
            assert_eq!(done.note, None);
            assert_eq!(done.source.is_verified(), id != "nodig", "{id}");
            assert_eq!(
                (seen.frames, seen.bytes),
                (tape.frame_count, tape.byte_count)
            );
            assert_eq!(
                seen.phases,
                [Phase::Copying, Phase::ReadingBack, Phase::Finishing]
            );
        }
        let sent = dst.appended();
        assert_eq!(sent, 7 + 3 + 2 + 5);

        // Again: nothing to do.
        for tape in &page.tapes {
            let expected = if tape.state == TapeState::Recording {
                Skip::SourceRecording
            } else {
                Skip::AlreadyMigrated
            };
            let outcome = m.tape(tape, &mut ()).await.unwrap();
            assert_eq!(outcome, Outcome::Skipped(expected));
        }
        assert_eq!(dst.appended(), sent);
    }

    #[tokio::test]
    async fn a_partial_copy_is_resumed_without_sending_its_frames_again() {
        let (src, dst) = (source(), MemStore::new("dst"));
        let mut f = frames("fin", 7);
        f.truncate(3);
        dst.put(info("fin", 1, TapeState::Recording, &f), f);
        let mut seen = Seen::default();
        let m = Migration::new(&src, &dst).options(small_pages());
        let info = m.source_info("fin").await.unwrap();
        let done = migrated(m.tape(&info, &mut seen).await);
        assert_eq!(done.resumed_from, Some(3));
        assert_eq!(done.frames_sent, 4);
        assert_eq!(dst.appended(), 4, "frames below next-seq are not re-sent");
        same(&src, &dst, "fin");
        assert_eq!(seen.frames, 7, "checked and sent frames both count");
        assert_eq!(seen.phases[..2], [Phase::CheckingCopy, Phase::Copying]);
    }

    #[tokio::test]
    async fn an_interrupted_copy_is_left_recording_and_resumed() {
        let (src, dst) = (source(), MemStore::new("dst"));
        dst.fail_appends_after(Some(2));
        let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
        assert!(matches!(
            e.kind,
            MigrateErrorKind::Call {
                side: Side::Destination,
                call: "append",
                ..
            }
        ));
        assert_eq!(e.copy, CopyLeft::Recording);
        assert!(!e.is_conflict());
        let msg = e.to_string();
        assert!(
            msg.starts_with("tape fin: `append` on provider dst (the destination) failed: provider `dst`: io: injected append failure; the copy in provider dst is left recording, not finished: run the migration again to resume it"),
            "{msg}"
        );
        let (partial, held) = dst.tape("fin").unwrap();
        assert_eq!((partial.state, held.len()), (TapeState::Recording, 4));

        dst.fail_appends_after(None);
        let done = migrated(migrate(&src, &dst, small_pages(), "fin").await);
        assert_eq!((done.resumed_from, done.frames_sent), (Some(4), 3));
        same(&src, &dst, "fin");
    }

    #[tokio::test]
    async fn a_copy_that_is_not_the_source_is_a_conflict_left_untouched() {
        let src = source();
        // A partial copy whose second frame differs.
        let dst = MemStore::new("dst");
        let mut f = frames("fin", 3);
        f[1].payload = b"{\"other\":1}".to_vec();
        dst.put(info("fin", 1, TapeState::Recording, &f), f);
        let before = dst.tape("fin");
        let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
        assert!(e.is_conflict());
        assert_eq!(e.copy, CopyLeft::Untouched);
        assert_eq!(
            e.to_string(),
            "tape fin: provider dst already has a different tape with this id: it is \
             recording, and its 3 frames are not the source's first 3; left untouched"
        );
        assert_eq!(dst.tape("fin"), before);
        assert_eq!(dst.appended(), 0);

        // A partial copy longer than the source.
        let dst = MemStore::new("dst");
        put(&dst, "crash", 2, TapeState::Recording, 5);
        let e = failed(migrate(&src, &dst, small_pages(), "crash").await);
        assert!(e.is_conflict());
        assert!(
            e.to_string()
                .contains("it is recording with 5 frames, the source has 3"),
            "{e}"
        );

        // An ended tape with another name and digest.
        let dst = MemStore::new("dst");
        let f = frames("other", 7);
        let mut other = info("fin", 1, TapeState::Finished, &f);
        other.header.name = "renamed".into();
        dst.put(other, f);
        let before = dst.tape("fin");
        let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
        assert!(e.is_conflict());
        let msg = e.to_string();
        assert!(
            msg.starts_with("tape fin: provider dst already has a different tape with this id: name \"renamed\" (source: \"tape fin\"); "),
            "{msg}"
        );
        assert!(msg.contains("; digest \""), "{msg}");
        assert!(msg.ends_with("; left untouched"), "{msg}");
        assert_eq!(dst.tape("fin"), before);
    }

    #[tokio::test]
    async fn a_damaged_source_is_not_finished_at_the_destination() {
        let (src, dst) = (source(), MemStore::new("dst"));
        // Same length: only the digest can tell.
        let (info, mut f) = src.tape("fin").unwrap();
        f[5].payload[2] = b'X';
        src.put(info, f);
        for _ in 0..2 {
            let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
            assert!(matches!(e.kind, MigrateErrorKind::SourceIntegrity(_)));
            assert_eq!(e.copy, CopyLeft::Recording);
            let msg = e.to_string();
            assert!(
                msg.starts_with("tape fin: integrity check failed: the frames provider src returned do not match the digest recorded when the tape was finished"),
                "{msg}"
            );
            assert!(
                msg.ends_with("; the copy in provider dst is left recording, not finished, with the frames as read: delete it"),
                "{msg}"
            );
            let (copy, _) = dst.tape("fin").unwrap();
            assert_eq!(copy.state, TapeState::Recording);
        }
    }

    #[tokio::test]
    async fn a_copy_that_reads_back_differently_is_not_finished() {
        let (src, dst) = (source(), MemStore::new("dst"));
        dst.tamper_reads(true);
        let e = failed(migrate(&src, &dst, small_pages(), "nodig").await);
        assert!(
            matches!(e.kind, MigrateErrorKind::CopyDiffers { .. }),
            "{e}"
        );
        assert_eq!(e.copy, CopyLeft::Recording);
        assert!(
            e.to_string().starts_with(
                "tape nodig: the copy in provider dst differs from the source: its 5 frames \
                 read back do not reproduce the chain over the source's 5 frames"
            ),
            "{e}"
        );
        assert_eq!(dst.tape("nodig").unwrap().0.state, TapeState::Recording);

        // Without the read-back, only `get` is compared (and agrees).
        let options = MigrateOptions {
            read_back: false,
            ..small_pages()
        };
        let dst = MemStore::new("dst");
        dst.tamper_reads(true);
        let done = migrated(migrate(&src, &dst, options, "fin").await);
        assert!(!done.read_back);
    }

    #[tokio::test]
    async fn a_live_tape_is_copied_on_request_and_finished_later() {
        let (src, dst) = (source(), MemStore::new("dst"));
        let options = MigrateOptions {
            include_recording: true,
            ..small_pages()
        };
        let done = migrated(migrate(&src, &dst, options.clone(), "live").await);
        assert_eq!(done.info.state, TapeState::Recording);
        assert_eq!((done.frames_sent, done.info.frame_count), (4, 4));

        // More frames, then the source ends.
        put(&src, "live", 5, TapeState::Finished, 9);
        let done = migrated(migrate(&src, &dst, options, "live").await);
        assert_eq!((done.resumed_from, done.frames_sent), (Some(4), 5));
        same(&src, &dst, "live");
    }

    #[tokio::test]
    async fn an_unknown_tape_names_the_source() {
        let (src, dst) = (source(), MemStore::new("dst"));
        let e = failed(migrate(&src, &dst, small_pages(), "nope").await);
        assert_eq!(
            e.to_string(),
            "tape nope: no such tape in provider src (the source)"
        );
        let m = Migration::new(&src, &dst).provider_names("fs", "pg");
        let e = m.source_info("nope").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "tape nope: no such tape in provider fs (the source)"
        );
    }

    #[test]
    fn an_aborted_copy_without_its_summary_is_accepted_with_a_note() {
        let f = frames("abrt", 2);
        let source = info("abrt", 3, TapeState::Aborted, &f);
        let mut copy = source.clone();
        copy.digest = None;
        copy.ended_at_us = Some(42);
        let (differences, note) = compare(&source, &copy);
        assert!(differences.is_empty(), "{differences:?}");
        assert!(
            note.unwrap()
                .contains("kept neither the end time nor the digest")
        );

        // Not for other states.
        let mut source = source;
        source.state = TapeState::Crashed;
        copy.state = TapeState::Crashed;
        let (differences, note) = compare(&source, &copy);
        assert_eq!(note, None);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(differences[0].starts_with("end time (µs) \"42\" (source: \""));
        assert!(differences[1].starts_with("digest \"none\" (source: \""));
    }
}
