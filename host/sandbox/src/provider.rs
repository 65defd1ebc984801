//! [`WasmProvider`]: a [`TapeStore`] backed by a sandboxed component.
//!
//! Besides calling the guest, this is where the host checks the guest's
//! answers against the contract (page sizes, sequence numbers, ids, filters,
//! the bounds of terms, attributes, envelopes and seals, one result per
//! `append-many` entry): a provider that answers wrongly is treated like one
//! that trapped.

use super::Sandbox;
use super::bindings::wit;
use super::convert::{self, frame_to_wit};
use super::load::ComponentError;
use super::pool::{Pool, guest_call};
use super::spec::{ComponentSource, ProviderSpec};
use std::path::Path;
use std::sync::Arc;
use tapedeck_store::ProviderError;
use tapedeck_store::text;
use tapedeck_store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_types::terms::{MAX_ENVELOPE, MAX_SEAL, check_frame_fields};
use tapedeck_types::{
    EndReason, Frame, ProviderInfo, SearchQuery, StorageStats, TapeAppend, TapeFilter, TapeHeader,
    TapeInfo, TapePage, TapeSummary, validate_tape_id,
};
use wasmtime::component::ResourceAny;

/// Why a provider could not be started.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderStartError {
    /// The component was refused at load.
    #[error(transparent)]
    Load(#[from] ComponentError),
    /// The grants or limits are unusable.
    #[error("provider `{provider}`: {detail}")]
    Config {
        /// Provider name.
        provider: String,
        /// What is wrong.
        detail: String,
    },
    /// A grant meets a host-only directory (the spool): the provider is not
    /// started.
    #[error(transparent)]
    Reserved(#[from] super::reserved::ReservedError),
    /// The first instance failed to start or rejected its configuration.
    #[error(transparent)]
    Init(#[from] ProviderError),
}

/// A running sandboxed provider. Cheap to clone; all clones share instances.
#[derive(Clone)]
pub struct WasmProvider {
    pool: Arc<Pool>,
    info: Arc<ProviderInfo>,
    /// Its grants, registered as in use (see `reserved.rs`).
    _grants: super::reserved::Registration,
}

impl WasmProvider {
    /// Loads the component of `spec`, checks it, and starts its first
    /// instance with the spec's configuration. Relative host paths in grants
    /// are resolved against `base_dir`.
    pub async fn start(
        sandbox: &Sandbox,
        spec: &ProviderSpec,
        base_dir: &Path,
    ) -> Result<WasmProvider, ProviderStartError> {
        let config_err = |detail: String| ProviderStartError::Config {
            provider: spec.name.clone(),
            detail,
        };
        spec.limits.validate().map_err(config_err)?;
        // Before anything is created or run: no grant may meet the spool.
        let hosts: Vec<std::path::PathBuf> = spec
            .grants
            .dirs
            .iter()
            .map(|d| base_dir.join(&d.host))
            .collect();
        let registration =
            super::reserved::check_grants(&spec.name, hosts.iter().map(|p| p.as_path()))?;
        let grants = spec.grants.prepare(base_dir).map_err(config_err)?;
        let loaded = match &spec.component {
            ComponentSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| ComponentError::Io {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                sandbox.load(&path.display().to_string(), &bytes)?
            }
            ComponentSource::Bytes { label, bytes } => sandbox.load(label, bytes)?,
        };
        let config_json = serde_json::to_string(&spec.config)
            .map_err(|e| config_err(format!("config is not representable as JSON: {e}")))?;
        let pool = Pool::new(
            &spec.name,
            sandbox.engine.clone(),
            loaded,
            config_json,
            spec.secrets.clone(),
            grants,
            spec.limits.clone(),
        );
        let info = pool.start().await?;
        tracing::debug!(
            target: "tapedeck::sandbox",
            provider = %spec.name,
            "started {} {} (capabilities: {:?})",
            info.name,
            info.version,
            info.capabilities.names()
        );
        Ok(WasmProvider {
            pool: Arc::new(pool),
            info: Arc::new(info),
            _grants: registration,
        })
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.pool.name
    }

    /// What the provider's live instances hold between calls: (instances,
    /// resources in their tables, linear memory in bytes). Instances in a
    /// call are not counted.
    pub fn usage(&self) -> (u64, u64, u64) {
        self.pool.usage()
    }

    /// Starts one more instance of the same component, grants and limits
    /// with `config` instead, returns what its `init` answered, and drops
    /// it (to test that a provider checks its configuration). The
    /// provider's own instances are not touched.
    pub async fn try_config(
        &self,
        config: &serde_json::Value,
    ) -> Result<ProviderInfo, ProviderError> {
        let json = serde_json::to_string(config).map_err(|e| ProviderError::Unavailable {
            provider: self.name().to_string(),
            detail: format!("config is not representable as JSON: {e}"),
        })?;
        self.pool.with_config(json).start().await
    }

    /// Arms a torn write for testing the provider (`provider test`): the
    /// `nth` file write from now (1: the next), by any instance, stores only
    /// the first half of its bytes, then that instance traps and is
    /// discarded, as after a crash between the write and its
    /// acknowledgement. See [`torn_write_fired`](Self::torn_write_fired).
    pub fn arm_torn_write(&self, nth: u32) {
        self.pool.faults.arm(nth);
    }

    /// Whether the torn write armed last happened (fewer writes may have
    /// come); disarms it.
    pub fn torn_write_fired(&self) -> bool {
        self.pool.faults.take_fired()
    }

    /// Instances created and discarded so far.
    pub fn instance_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.pool.counters.instantiations.load(Relaxed),
            self.pool.counters.recycles.load(Relaxed),
        )
    }

    /// The time one instantiation from the provider's `InstancePre` takes: a
    /// fresh store and the component's start, without `init`. The instance is
    /// dropped at once. For benchmarks and diagnostics; calls in flight are
    /// not affected.
    pub async fn time_instantiation(&self) -> Result<std::time::Duration, ProviderError> {
        self.pool.time_instantiation().await
    }

    /// What the host enforced on this provider so far, by protection: traps,
    /// CPU and wall-clock limits, memory, table, instance, resource, random
    /// and return-size limits, contract violations and log lines dropped.
    pub fn protection_report(&self) -> super::ProtectionReport {
        self.pool.counters.protections.report()
    }

    /// One page of `list` or `search`: at most `limit` tapes, each id valid
    /// (`validate_tape_id`) and present once, each tape matching `filter`
    /// (a search's conditions on frames cannot be checked without reading
    /// them). Cursors across pages are checked by the walker
    /// ([`tapedeck_store::TapePages`]).
    fn check_page(&self, page: &TapePage, limit: u32, filter: &TapeFilter) -> Result<(), String> {
        if page.tapes.len() > limit as usize {
            return Err(format!(
                "returned {} tapes for a page limit of {limit}",
                page.tapes.len()
            ));
        }
        // Ids as `get` would accept them: a caller (`migrate`) passes them on
        // to another provider, or prints them.
        let mut ids = std::collections::HashSet::with_capacity(page.tapes.len());
        for t in &page.tapes {
            let id = t.header.id.as_str();
            validate_tape_id(id)
                .map_err(|e| format!("returned a tape whose id is invalid: {e}"))?;
            if !ids.insert(id) {
                return Err(format!("returned tape `{id}` twice in one page"));
            }
        }
        if let Some(t) = page.tapes.iter().find(|t| !filter.matches(t)) {
            return Err(format!(
                "returned tape `{}`, which does not match the filter",
                t.header.id
            ));
        }
        Ok(())
    }
}

fn check_frames(
    frames: &[Frame],
    from_seq: u64,
    max_frames: u32,
    max_bytes: u64,
) -> Result<(), String> {
    if frames.len() > max_frames as usize {
        return Err(format!(
            "returned {} frames when at most {max_frames} were asked for",
            frames.len()
        ));
    }
    for (i, f) in frames.iter().enumerate() {
        let want = from_seq + i as u64;
        if f.seq != want {
            return Err(format!(
                "returned frame seq {} at position {i}, expected {want} (frames out of order or missing)",
                f.seq
            ));
        }
    }
    for f in frames {
        check_frame_fields(&f.terms, &f.attributes)
            .map_err(|d| format!("returned frame seq {} with {d}", f.seq))?;
    }
    let total: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
    if frames.len() > 1 && total - frames.last().map_or(0, |f| f.payload.len() as u64) >= max_bytes
    {
        return Err(format!(
            "returned {total} payload bytes, past the requested maximum of {max_bytes}"
        ));
    }
    Ok(())
}

/// The longest tape digest accepted in an answer, in hex digits: a SHA-512,
/// twice what the host writes (`DigestChain::hex`, 64 digits of SHA-256);
/// the contract stores digests verbatim, so a longer hash stays possible.
const MAX_DIGEST_HEX: usize = 128;

/// A tape's digest, if it has one, is what the host gives providers:
/// lowercase hex (1 to [`MAX_DIGEST_HEX`] digits). Anything else (escape
/// sequences for `show` to print, a mebibyte of text) is a lie about the
/// tape; the error quotes it escaped and cut.
fn check_digest(info: &TapeInfo) -> Result<(), String> {
    let Some(d) = &info.digest else {
        return Ok(());
    };
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if d.is_empty() || d.len() > MAX_DIGEST_HEX || !d.bytes().all(hex) {
        return Err(format!(
            "returned tape `{}` with the digest `{}` ({} bytes), which is not lowercase hex \
             of at most {MAX_DIGEST_HEX} digits as the host gave it",
            text::quote(&info.header.id),
            text::quote(d),
            d.len()
        ));
    }
    Ok(())
}

/// Everything of a tape's info the host checks: its digest
/// ([`check_digest`]), an envelope of at most [`MAX_ENVELOPE`] bytes and a
/// seal of at most [`MAX_SEAL`] bytes (the host gives no larger ones).
fn check_info(info: &TapeInfo) -> Result<(), String> {
    check_digest(info)?;
    let id = || text::quote(&info.header.id);
    if let Some(e) = &info.header.envelope
        && e.len() > MAX_ENVELOPE
    {
        return Err(format!(
            "returned tape `{}` with an envelope of {} bytes (at most {MAX_ENVELOPE})",
            id(),
            e.len()
        ));
    }
    if let Some(s) = &info.seal
        && s.len() > MAX_SEAL
    {
        return Err(format!(
            "returned tape `{}` with a seal of {} bytes (at most {MAX_SEAL})",
            id(),
            s.len()
        ));
    }
    Ok(())
}

/// The answer to `append-many` against what was asked: one result per
/// entry, and a next-seq past the last frame of a successful entry (a
/// redelivery may answer more: the frames stored already).
fn check_append_many(
    appends: &[TapeAppend],
    results: &[Result<u64, wit::StorageError>],
) -> Result<(), String> {
    if results.len() != appends.len() {
        return Err(format!(
            "returned {} results for {} entries (one per entry)",
            results.len(),
            appends.len()
        ));
    }
    for (a, r) in appends.iter().zip(results) {
        if let (Ok(next), Some(last)) = (r, a.frames.last())
            && *next <= last.seq
        {
            return Err(format!(
                "append-many to `{}` returned next-seq {next}, but frame {} was appended",
                a.id, last.seq
            ));
        }
    }
    Ok(())
}

impl TapeStore for WasmProvider {
    type Writer = WasmWriter;

    fn provider_info(&self) -> &ProviderInfo {
        &self.info
    }

    async fn create(&self, header: TapeHeader) -> ProviderResult<WasmWriter> {
        let slot = self.pool.pick();
        let mut g = self.pool.enter(slot, "create").await?;
        let wit_header = convert::header_to_wit(&header);
        let handle = guest_call!(g, |store, guest| guest.call_create(store, &wit_header))?;
        Ok(WasmWriter {
            pool: self.pool.clone(),
            slot,
            id: header.id,
            handle: Some((g.generation(), handle)),
            next_seq: 0,
        })
    }

    async fn resume(&self, id: &str) -> ProviderResult<WasmWriter> {
        let slot = self.pool.pick();
        let mut g = self.pool.enter(slot, "resume").await?;
        let wid = id.to_string();
        let handle = guest_call!(g, |store, guest| guest.call_resume(store, &wid))?;
        let next = guest_call!(g, |store, guest| async {
            guest
                .tape_writer()
                .call_next_seq(store, handle)
                .await
                .map(Ok::<u64, wit::StorageError>)
        })?;
        Ok(WasmWriter {
            pool: self.pool.clone(),
            slot,
            id: id.to_string(),
            handle: Some((g.generation(), handle)),
            next_seq: next,
        })
    }

    async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let mut g = self.pool.enter(self.pool.pick(), "save").await?;
        let h = convert::header_to_wit(&header);
        let f: Vec<wit::Frame> = frames.iter().map(frame_to_wit).collect();
        let s = convert::summary_to_wit(&summary);
        let r = convert::reason_to_wit(reason);
        let info = guest_call!(g, |store, guest| guest.call_save(store, &h, &f, &s, r))?;
        let info = convert::info_from_wit(info);
        if info.header.id != header.id {
            return Err(g.violation(format!(
                "saved tape `{}` but reported tape `{}`",
                header.id,
                text::quote(&info.header.id)
            )));
        }
        check_info(&info).map_err(|d| g.violation(d))?;
        Ok(info)
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        let mut g = self.pool.enter(self.pool.pick(), "get").await?;
        let wid = id.to_string();
        let info =
            convert::info_from_wit(guest_call!(g, |store, guest| guest.call_get(store, &wid))?);
        if info.header.id != id {
            return Err(g.violation(format!(
                "asked for tape `{id}`, answered with tape `{}`",
                text::quote(&info.header.id)
            )));
        }
        check_info(&info).map_err(|d| g.violation(d))?;
        Ok(info)
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        let mut g = self.pool.enter(self.pool.pick(), "read-frames").await?;
        let wid = id.to_string();
        let frames = guest_call!(g, |store, guest| guest
            .call_read_frames(store, &wid, from_seq, max_frames, max_bytes))?;
        let frames: Vec<Frame> = frames.into_iter().map(convert::frame_from_wit).collect();
        check_frames(&frames, from_seq, max_frames, max_bytes).map_err(|d| g.violation(d))?;
        Ok(frames)
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        let mut g = self.pool.enter(self.pool.pick(), "delete").await?;
        let wid = id.to_string();
        guest_call!(g, |store, guest| guest.call_delete(store, &wid))
    }

    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        let mut g = self.pool.enter(self.pool.pick(), "list").await?;
        let f = convert::filter_to_wit(filter);
        let page = guest_call!(g, |store, guest| guest.call_list(store, &f, cursor, limit))?;
        let page = convert::page_from_wit(page);
        page.tapes
            .iter()
            .try_for_each(check_info)
            .map_err(|d| g.violation(d))?;
        self.check_page(&page, limit, filter)
            .map_err(|d| g.violation(d))?;
        Ok(page)
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        let mut g = self.pool.enter(self.pool.pick(), "search").await?;
        let q = convert::query_to_wit(query);
        let page = guest_call!(g, |store, guest| guest
            .call_search(store, &q, cursor, limit))?;
        let page = convert::page_from_wit(page);
        page.tapes
            .iter()
            .try_for_each(check_info)
            .map_err(|d| g.violation(d))?;
        self.check_page(&page, limit, &query.filter)
            .map_err(|d| g.violation(d))?;
        Ok(page)
    }

    async fn stats(&self) -> ProviderResult<StorageStats> {
        let mut g = self.pool.enter(self.pool.pick(), "stats").await?;
        let s = convert::stats_from_wit(guest_call!(g, |store, guest| guest.call_stats(store))?);
        if s.recording_count > s.tape_count || (s.frame_count == 0 && s.byte_count > 0) {
            return Err(g.violation(format!(
                "stats cannot be true: {} tapes of which {} recording, {} frames holding {} bytes",
                s.tape_count, s.recording_count, s.frame_count, s.byte_count
            )));
        }
        Ok(s)
    }

    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        if appends.is_empty() {
            return Ok(Vec::new());
        }
        let mut g = self.pool.enter(self.pool.pick(), "append-many").await?;
        let batch: Vec<wit::TapeAppend> = appends
            .iter()
            .map(|a| wit::TapeAppend {
                id: a.id.clone(),
                frames: a.frames.iter().map(frame_to_wit).collect(),
            })
            .collect();
        let results = guest_call!(g, |store, guest| async {
            guest
                .call_append_many(store, &batch)
                .await
                .map(Ok::<_, wit::StorageError>)
        })?;
        check_append_many(appends, &results).map_err(|d| g.violation(d))?;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(|e| self.pool.storage_error(e)))
            .collect())
    }
}

/// A writer on one tape, pinned to one instance slot. If that instance is
/// replaced (after a trap, a timeout, ...), the next operation resumes the
/// tape on the fresh instance transparently.
pub struct WasmWriter {
    pool: Arc<Pool>,
    slot: usize,
    id: String,
    /// The guest resource and the instance generation it belongs to.
    handle: Option<(u64, ResourceAny)>,
    next_seq: u64,
}

impl WasmWriter {
    /// Makes sure `handle` belongs to the slot's current instance, resuming
    /// the tape there if not.
    async fn current_handle(
        &mut self,
        g: &mut super::pool::SlotGuard<'_>,
    ) -> ProviderResult<ResourceAny> {
        if let Some((generation, h)) = self.handle
            && generation == g.generation()
        {
            return Ok(h);
        }
        let id = self.id.clone();
        let h = guest_call!(g, |store, guest| guest.call_resume(store, &id))?;
        self.handle = Some((g.generation(), h));
        Ok(h)
    }

    fn release(&mut self) {
        if let Some((generation, h)) = self.handle.take() {
            self.pool.orphan(self.slot, generation, h);
        }
    }
}

impl Drop for WasmWriter {
    fn drop(&mut self) {
        self.release();
    }
}

impl TapeWriter for WasmWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let pool = self.pool.clone();
        let mut g = pool.enter(self.slot, "append").await?;
        let h = self.current_handle(&mut g).await?;
        let batch: Vec<wit::Frame> = frames.iter().map(frame_to_wit).collect();
        let next = guest_call!(g, |store, guest| guest
            .tape_writer()
            .call_append(store, h, &batch))?;
        let expected = frames
            .last()
            .map_or(self.next_seq, |f| f.seq + 1)
            .max(self.next_seq);
        if next != expected {
            return Err(g.violation(format!(
                "append to `{}` returned next-seq {next}, expected {expected}",
                self.id
            )));
        }
        self.next_seq = next;
        Ok(next)
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let pool = self.pool.clone();
        let mut g = pool.enter(self.slot, "finish").await?;
        let h = self.current_handle(&mut g).await?;
        let s = convert::summary_to_wit(&summary);
        let r = convert::reason_to_wit(reason);
        let info = guest_call!(g, |store, guest| guest
            .tape_writer()
            .call_finish(store, h, &s, r))?;
        let info = convert::info_from_wit(info);
        check_info(&info).map_err(|d| g.violation(d))?;
        Ok(info)
    }

    async fn abort(&mut self, reason: &str) -> ProviderResult<()> {
        let pool = self.pool.clone();
        let mut g = pool.enter(self.slot, "abort").await?;
        let h = self.current_handle(&mut g).await?;
        guest_call!(g, |store, guest| guest
            .tape_writer()
            .call_abort(store, h, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::Direction;

    fn frame(seq: u64) -> Frame {
        Frame::new(seq, 0, Direction::ClientToServer, b"{}".to_vec(), false)
    }

    fn info() -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: "t".into(),
                session_id: String::new(),
                name: String::new(),
                tags: Vec::new(),
                created_at_us: 0,
                envelope: Some(vec![0; MAX_ENVELOPE]),
            },
            state: tapedeck_types::TapeState::Finished,
            frame_count: 0,
            byte_count: 0,
            ended_at_us: Some(1),
            digest: None,
            seal: Some(vec![0; MAX_SEAL]),
        }
    }

    #[test]
    fn frames_with_terms_or_attributes_out_of_bounds_are_refused() {
        let mut ok = frame(0);
        ok.terms = vec!["method:x".into(); 32];
        ok.attributes = vec![("k".into(), "v".repeat(4096))];
        assert_eq!(check_frames(&[ok], 0, 10, 1 << 20), Ok(()));
        let mut many = frame(0);
        many.terms = vec!["t".into(); 33];
        let e = check_frames(&[frame(0), frame(1), many], 1, 10, 1 << 20);
        assert!(e.is_err(), "seq first");
        let mut many = frame(1);
        many.terms = vec!["t".into(); 33];
        let e = check_frames(&[frame(0), many], 0, 10, 1 << 20).unwrap_err();
        assert!(e.contains("frame seq 1 with 33 terms"), "{e}");
        let mut empty = frame(0);
        empty.terms = vec![String::new()];
        let e = check_frames(&[empty], 0, 10, 1 << 20).unwrap_err();
        assert!(e.contains("a term of 0 bytes"), "{e}");
        let mut key = frame(0);
        key.attributes = vec![("k".repeat(65), String::new())];
        let e = check_frames(&[key], 0, 10, 1 << 20).unwrap_err();
        assert!(e.contains("attribute key of 65 bytes"), "{e}");
    }

    #[test]
    fn envelopes_and_seals_past_their_bounds_are_refused() {
        assert_eq!(check_info(&info()), Ok(()));
        let mut big = info();
        big.header.envelope = Some(vec![0; MAX_ENVELOPE + 1]);
        let e = check_info(&big).unwrap_err();
        assert!(
            e.contains("tape `t` with an envelope of 16385 bytes"),
            "{e}"
        );
        let mut big = info();
        big.seal = Some(vec![0; MAX_SEAL + 1]);
        let e = check_info(&big).unwrap_err();
        assert!(e.contains("tape `t` with a seal of 1025 bytes"), "{e}");
        let mut bad = info();
        bad.digest = Some("XYZ".into());
        assert!(check_info(&bad).is_err(), "the digest is still checked");
    }

    #[test]
    fn append_many_answers_one_result_per_entry() {
        let appends = [
            TapeAppend {
                id: "a".into(),
                frames: vec![frame(3), frame(4)],
            },
            TapeAppend {
                id: "b".into(),
                frames: Vec::new(),
            },
        ];
        let failed = Err(wit::StorageError::NotFound("b".into()));
        assert_eq!(
            check_append_many(&appends, &[Ok(5), failed.clone()]),
            Ok(())
        );
        assert_eq!(check_append_many(&appends, &[Ok(9), Ok(0)]), Ok(()));
        let e = check_append_many(&appends, &[Ok(5)]).unwrap_err();
        assert!(e.contains("returned 1 results for 2 entries"), "{e}");
        let e = check_append_many(&appends, &[Ok(5), Ok(1), Ok(1)]).unwrap_err();
        assert!(e.contains("returned 3 results for 2 entries"), "{e}");
        let e = check_append_many(&appends, &[Ok(4), failed]).unwrap_err();
        assert!(e.contains("`a` returned next-seq 4"), "{e}");
    }
}
