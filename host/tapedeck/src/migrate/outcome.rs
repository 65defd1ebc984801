//! What a migration is told and what it reports: options, progress,
//! outcomes and typed errors.

use crate::error::ProviderError;
use crate::read::{DEFAULT_PAGE_BYTES, DEFAULT_PAGE_FRAMES, IntegrityError, Verification};
use std::fmt;
use tapedeck_types::{ErrorKind, TapeInfo};

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
    /// Copy ended tapes that carry no seal at a source that seals (tapes
    /// from before seals). Off by default: a sealing destination seals
    /// the copy with this host's key, vouching for frames nothing vouched
    /// for ([`MigrateErrorKind::Unsealed`]).
    pub allow_unsealed: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            include_recording: false,
            read_back: true,
            page_frames: DEFAULT_PAGE_FRAMES,
            page_bytes: DEFAULT_PAGE_BYTES,
            allow_unsealed: false,
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
    /// What the destination reports for the copy (as recorded, for a copy
    /// as stored). `recording` when the source was still recording
    /// ([`MigrateOptions::include_recording`]).
    pub info: TapeInfo,
    /// The tape was copied as stored ([`super::Migration::as_stored`]):
    /// envelope and frames unchanged, compressed or encrypted as they were.
    pub stored_as_is: bool,
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
    /// The tape carries no seal at a source that seals, and
    /// [`MigrateOptions::allow_unsealed`] is off.
    #[error(
        "provider {provider} holds it without a seal, so nothing vouches for its frames, and its copy would be sealed by this host: copy it anyway with --allow-unsealed (`MigrateOptions::allow_unsealed`) if you trust that provider's storage"
    )]
    Unsealed {
        /// The source provider's name.
        provider: String,
    },
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
