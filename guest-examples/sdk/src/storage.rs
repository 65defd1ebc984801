//! What a provider implements: [`TapeStorage`] (the interface's functions)
//! and [`TapeWriter`] (the `tape-writer` resource), in the plain model of
//! `tapedeck-types`. The contract's rules for each function are in
//! `wit/tape-storage.wit`; the ones the SDK keeps itself are in the crate
//! documentation.

use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageError, StorageStats, TapeAppend,
    TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary,
};

/// A provider's storage: one value per component instance, made by
/// [`init`](TapeStorage::init) and given by `&mut` to every later call.
///
/// Export it with [`export_provider!`](crate::export_provider).
pub trait TapeStorage: Sized + 'static {
    /// What `create` and `resume` return: the state of one tape being
    /// written, held by the host as a `tape-writer` resource.
    type Writer: TapeWriter<Self>;

    /// Opens the store from the provider's `config` table, a JSON object
    /// (`{}` when the operator gave none). Unknown or invalid settings are
    /// `invalid-input` naming the setting.
    fn init(config: &str) -> Result<Self, StorageError>;

    /// What `init` answers, asked once, right after [`init`](Self::init)
    /// succeeded: the provider's name (lowercase with hyphens), its version
    /// (semver, e.g. `env!("CARGO_PKG_VERSION")`) and its capabilities,
    /// which also decide what the SDK answers `unsupported` for.
    fn info(&self) -> ProviderInfo;

    /// Starts a new tape in state `recording` with no frames;
    /// `already-exists` if the id is taken.
    fn create(&mut self, header: TapeHeader) -> Result<Self::Writer, StorageError>;

    /// Continues a tape that is still `recording`.
    fn resume(&mut self, id: &str) -> Result<Self::Writer, StorageError>;

    /// Stores a whole tape at once, atomically.
    fn save(
        &mut self,
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError>;

    /// Header, state and totals of one tape.
    fn get(&mut self, id: &str) -> Result<TapeInfo, StorageError>;

    /// Frames with `seq >= from_seq`, in order, within `max_frames` and
    /// `max_bytes` (see `read-frames` in the contract).
    fn read_frames(
        &mut self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError>;

    /// Removes a tape. Called only when [`info`](Self::info) declares
    /// `delete`; the default answers `unsupported`.
    fn delete(&mut self, id: &str) -> Result<(), StorageError> {
        let _ = id;
        Err(StorageError::unsupported(
            "this provider does not implement delete",
        ))
    }

    /// Tapes matching `filter`, newest first, at most `limit` per page.
    fn list(
        &mut self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError>;

    /// Like `list`, with conditions on the frames: every one of
    /// `query.terms` among the `terms` of the tape's frames (exact
    /// equality; not necessarily the same frame), and, with `text`, a
    /// payload containing those bytes. Called only when
    /// [`info`](Self::info) declares `search` (and `text-search` if the
    /// query has `text`); the default answers `unsupported`.
    fn search(
        &mut self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        let _ = (query, cursor, limit);
        Err(StorageError::unsupported(
            "this provider does not implement search",
        ))
    }

    /// Totals over all tapes.
    fn stats(&mut self) -> Result<StorageStats, StorageError>;

    /// `append-many`: for each entry, what `resume(id)` then `append` on
    /// that writer would do, one result per entry in order. Entries are
    /// independent (one failing stores nothing of its own and changes
    /// nothing for the others); an id repeated in one call is
    /// `invalid-input` for its later entries only. The default does exactly
    /// that, dropping each writer after its append (which leaves the tape
    /// `recording`); a provider may store all entries in one transaction or
    /// pass instead.
    fn append_many(&mut self, appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        let mut seen = std::collections::HashSet::new();
        appends
            .into_iter()
            .map(|a| {
                if !seen.insert(a.id.clone()) {
                    return Err(StorageError::invalid_input(format!(
                        "tape `{}` appears more than once in one append-many",
                        a.id
                    )));
                }
                let mut writer = self.resume(&a.id)?;
                writer.append(self, a.frames)
            })
            .collect()
    }
}

/// One tape being written (the `tape-writer` resource). Every method also
/// gets the instance's store `S`, for writers that work through it (a
/// database connection, say); a self-contained writer ignores it.
///
/// Dropping a writer (the host dropped the resource) without `finish` or
/// `abort` must leave the tape `recording`.
pub trait TapeWriter<S>: 'static {
    /// The sequence number the next appended frame must carry (the number
    /// of frames stored). The interface gives it no error result.
    fn next_seq(&mut self, store: &mut S) -> u64;

    /// Appends a batch and returns the new `next-seq`: frames below it are
    /// skipped, a gap or a non-consecutive batch is `invalid-input` and
    /// stores nothing.
    fn append(&mut self, store: &mut S, frames: Vec<Frame>) -> Result<u64, StorageError>;

    /// Ends the recording: everything durable, the summary recorded (its
    /// end time, digest and seal, whatever the reason, `aborted` included),
    /// the tape `finished`, `crashed` or `aborted` as `reason` says.
    fn finish(
        &mut self,
        store: &mut S,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError>;

    /// Gives up the recording: the tape becomes `aborted`. Idempotent.
    fn abort(&mut self, store: &mut S, reason: &str) -> Result<(), StorageError>;
}
