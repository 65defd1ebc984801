//! [`RecordError`]: how ending a recording can fail.

use tapedeck_store::error::ProviderError;

/// Why a recording could not be ended cleanly.
///
/// A recorder never drops a frame silently: when frames could not be stored,
/// this says how many.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Some frames could not be stored, and the recorder has no spool to keep
    /// them in: appending kept failing until `end-timeout` (or failed in a
    /// way retrying cannot fix). The recorder then tried to mark the tape
    /// `aborted`, keeping the frames that were stored.
    #[error(
        "tape {id}: {not_stored} of {recorded} recorded frames were not stored \
         (only frames 0..{stored} are in the tape): {error}"
    )]
    NotStored {
        /// The tape.
        id: String,
        /// Frames recorded in total.
        recorded: u64,
        /// Frames stored (frames `0..stored` are in the tape).
        stored: u64,
        /// Frames recorded but not stored (`recorded - stored`).
        not_stored: u64,
        /// The last error from `append`.
        error: ProviderError,
    },
    /// The provider did not take every frame, or did not end the tape, by
    /// the end of the recording's `end-timeout`; every frame is safe in the
    /// spool, and recovery (the next `tapedeck` command using this provider,
    /// or `tapedeck recover`) delivers them and ends the tape.
    #[error(
        "tape {id}: the provider holds {delivered} of {recorded} frames and did not end the tape ({error}); \
         all {recorded} frames are kept in the spool file {} and will be delivered by the next tapedeck command \
         using this provider, or by `tapedeck recover`",
        spool.display()
    )]
    Spooled {
        /// The tape.
        id: String,
        /// Frames recorded in total (all of them in the spool).
        recorded: u64,
        /// Frames the provider acknowledged.
        delivered: u64,
        /// The spool file.
        spool: std::path::PathBuf,
        /// The last error from the provider.
        error: ProviderError,
    },
    /// Every frame was stored, but the provider refused or failed `finish`.
    /// The tape is left `recording` (recoverable with `resume`).
    #[error("tape {id}: all {frames} frames were stored, but finishing the tape failed: {error}")]
    Finish {
        /// The tape.
        id: String,
        /// Frames stored.
        frames: u64,
        /// What `finish` returned.
        error: ProviderError,
    },
    /// Every frame was stored, but the provider refused or failed `abort`.
    #[error("tape {id}: aborting the tape failed: {error}")]
    Abort {
        /// The tape.
        id: String,
        /// What `abort` returned.
        error: ProviderError,
    },
    /// The recording's background task ended abnormally (it panicked or its
    /// runtime shut down); what it held is lost.
    #[error("tape {id}: the recording task failed after {recorded} recorded frames: {detail}")]
    Task {
        /// The tape.
        id: String,
        /// Frames recorded in total.
        recorded: u64,
        /// What happened.
        detail: String,
    },
}

impl RecordError {
    /// The tape this error is about.
    pub fn tape_id(&self) -> &str {
        match self {
            RecordError::NotStored { id, .. }
            | RecordError::Spooled { id, .. }
            | RecordError::Finish { id, .. }
            | RecordError::Abort { id, .. }
            | RecordError::Task { id, .. } => id,
        }
    }

    /// Frames recorded but not stored (0 unless [`RecordError::NotStored`]).
    pub fn frames_not_stored(&self) -> u64 {
        match self {
            RecordError::NotStored { not_stored, .. } => *not_stored,
            _ => 0,
        }
    }
}
