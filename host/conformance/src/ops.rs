//! Store calls wrapped for cases: each checks what the contract promises about
//! its result and turns an error into a failure reason naming the call.

use super::CaseResult;
use super::check::{self, ensure, eq, expect_kind, ok};
use super::fixtures::{Ctx, summary_of};
use std::collections::HashSet;
use tapedeck_store::{ProviderResult, TapeStore, TapeWriter};
use tapedeck_types::{
    EndReason, ErrorKind, Frame, SearchQuery, TapeAppend, TapeFilter, TapeHeader, TapeInfo,
    TapePage, TapeSummary,
};

/// `[3..8]` for consecutive frames, `[3, 4, 6]` otherwise.
pub(crate) fn seqs(frames: &[Frame]) -> String {
    let consecutive = frames
        .windows(2)
        .all(|w| w[1].seq == w[0].seq.wrapping_add(1));
    match (frames.first(), frames.last()) {
        (Some(a), Some(b)) if consecutive && frames.len() > 2 => {
            format!("[{}..={}]", a.seq, b.seq)
        }
        _ => format!(
            "[{}]",
            frames
                .iter()
                .map(|f| f.seq.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Appends `frames` and checks that both the returned value and the writer's
/// `next_seq` are `want_next`.
pub(crate) async fn append<W: TapeWriter>(
    w: &mut W,
    frames: &[Frame],
    want_next: u64,
) -> CaseResult {
    let call = format!("append({}) to `{}`", seqs(frames), w.id());
    let next = ok(w.append(frames).await, &call)?;
    ensure!(
        next == want_next,
        "{call} returned next_seq {next}, expected {want_next}"
    );
    ensure!(
        w.next_seq() == want_next,
        "after {call}, the writer's next_seq() is {}, expected {want_next}",
        w.next_seq()
    );
    Ok(())
}

/// What one entry of an `append_many` call must return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Success, with this new `next-seq`.
    Next(u64),
    /// Failure with a storage error of this kind.
    Fails(ErrorKind),
}

/// An `append_many` entry: `frames` for tape `id`.
pub(crate) fn entry(id: &str, frames: &[Frame]) -> TapeAppend {
    TapeAppend {
        id: id.to_string(),
        frames: frames.to_vec(),
    }
}

/// `append_many([`a` [0..=2], `b` [5]])`, for messages.
pub(crate) fn append_many_call(appends: &[TapeAppend]) -> String {
    let entries: Vec<String> = appends
        .iter()
        .map(|a| format!("`{}` {}", a.id, seqs(&a.frames)))
        .collect();
    format!("append_many([{}])", entries.join(", "))
}

/// Finishes with `summary` and `reason`.
pub(crate) async fn finish<W: TapeWriter>(
    w: &mut W,
    summary: TapeSummary,
    reason: EndReason,
) -> Result<TapeInfo, String> {
    let call = format!("finish(`{}`, {reason:?})", w.id());
    ok(w.finish(summary, reason).await, &call)
}

/// What to page through: `list` with a filter or `search` with a query.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listing<'a> {
    /// `list(filter)`.
    List(&'a TapeFilter),
    /// `search(query)`.
    Search(&'a SearchQuery),
}

impl Listing<'_> {
    /// The tape conditions.
    pub fn filter(&self) -> &TapeFilter {
        match self {
            Listing::List(f) => f,
            Listing::Search(q) => &q.filter,
        }
    }
    /// `list` or `search`.
    pub fn call(&self) -> &'static str {
        match self {
            Listing::List(_) => "list",
            Listing::Search(_) => "search",
        }
    }
}

impl<S: TapeStore> Ctx<S> {
    /// `create`, which must succeed; the writer's `next_seq` must be 0.
    pub async fn create(&self, header: TapeHeader) -> Result<S::Writer, String> {
        let call = format!("create(`{}`)", header.id);
        let w = ok(self.store.create(header).await, &call)?;
        ensure!(
            w.next_seq() == 0,
            "the writer returned by {call} has next_seq {}, expected 0",
            w.next_seq()
        );
        Ok(w)
    }

    /// `resume`, which must succeed.
    pub async fn resume(&self, id: &str) -> Result<S::Writer, String> {
        ok(self.store.resume(id).await, &format!("resume(`{id}`)"))
    }

    /// `get`, which must succeed and return the tape asked for.
    pub async fn get(&self, id: &str) -> Result<TapeInfo, String> {
        let call = format!("get(`{id}`)");
        let info = ok(self.store.get(id).await, &call)?;
        ensure!(
            info.header.id == id,
            "{call} returned tape `{}`",
            info.header.id
        );
        Ok(info)
    }

    /// `save`, which must succeed.
    pub async fn save(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, String> {
        let call = format!("save(`{}`, {} frames, {reason:?})", header.id, frames.len());
        ok(
            self.store.save(header, frames, summary, reason).await,
            &call,
        )
    }

    /// `append_many(appends)`: the call must succeed as a whole, return one
    /// result per entry, and entry `i` must return `want[i]`.
    pub async fn append_many(&self, appends: &[TapeAppend], want: &[Want]) -> CaseResult {
        let call = append_many_call(appends);
        let results = ok(self.store.append_many(appends).await, &call)?;
        ensure!(
            results.len() == appends.len(),
            "{call} returned {} results for {} entries",
            results.len(),
            appends.len()
        );
        for (i, (got, want)) in results.into_iter().zip(want).enumerate() {
            let what = format!(
                "{call}: entry {i} (`{}` {})",
                appends[i].id,
                seqs(&appends[i].frames)
            );
            match (got, *want) {
                (Ok(next), Want::Next(n)) => {
                    ensure!(next == n, "{what} returned next_seq {next}, expected {n}")
                }
                (Err(e), Want::Next(n)) => {
                    return Err(format!(
                        "{what} failed with `{}`, expected next_seq {n} ({e})",
                        e.code()
                    ));
                }
                (got, Want::Fails(kind)) => expect_kind(got, kind, &what)?,
            }
        }
        Ok(())
    }

    /// Stores `frames` as three tapes labelled `label`: through a writer
    /// (`create`, `append`, `finish`), through `save`, and through
    /// `append_many` (after `create`, three frames per call, then `finish` on
    /// a resumed writer, whose `next_seq` must count them). Checks that each
    /// reads back exactly `frames`, in one page and one frame at a time, and
    /// returns the three ids with how each was written.
    pub async fn store_three_ways(
        &self,
        label: &str,
        frames: &[Frame],
    ) -> Result<Vec<(String, &'static str)>, String> {
        let summary = summary_of(frames);
        let written = self.id(&format!("{label}-append"));
        self.record(self.header(&written), frames, Some(EndReason::Completed))
            .await?;
        let saved = self.id(&format!("{label}-save"));
        self.save(
            self.header(&saved),
            frames,
            summary.clone(),
            EndReason::Completed,
        )
        .await?;
        let many = self.id(&format!("{label}-many"));
        drop(self.create(self.header(&many)).await?);
        for batch in frames.chunks(3) {
            let next = batch.last().map_or(0, |f| f.seq + 1);
            self.append_many(&[entry(&many, batch)], &[Want::Next(next)])
                .await?;
        }
        let mut w = self.resume(&many).await?;
        ensure!(
            w.next_seq() == frames.len() as u64,
            "resume(`{many}`) after append_many of {} frames: next_seq() is {}",
            frames.len(),
            w.next_seq()
        );
        finish(&mut w, summary, EndReason::Completed).await?;
        drop(w);
        let ids = vec![
            (written, "written by append"),
            (saved, "written by save"),
            (many, "written by append_many"),
        ];
        for (id, how) in &ids {
            let read = self.read_all(id, 0, 1000, u64::MAX).await?;
            check::frames_eq(&read, frames, &format!("read_frames(`{id}`) ({how})"))?;
            let read = self.read_all(id, 0, 1, u64::MAX).await?;
            check::frames_eq(
                &read,
                frames,
                &format!("read_frames(`{id}`) one frame at a time ({how})"),
            )?;
        }
        Ok(ids)
    }

    /// Records a tape through a writer: `create`, `append` in batches of 64,
    /// then `finish` with the right summary when `end` is given (otherwise the
    /// writer is dropped and the tape stays `recording`). Returns `get`'s view.
    pub async fn record(
        &self,
        header: TapeHeader,
        frames: &[Frame],
        end: Option<EndReason>,
    ) -> Result<TapeInfo, String> {
        let id = header.id.clone();
        let mut w = self.create(header).await?;
        for batch in frames.chunks(64) {
            let next = batch.last().map_or(0, |f| f.seq + 1);
            append(&mut w, batch, next).await?;
        }
        if let Some(reason) = end {
            finish(&mut w, summary_of(frames), reason).await?;
        }
        drop(w);
        self.get(&id).await
    }

    /// Checks a tape that `op` (`save` or `finish`) just ended with `reason`:
    /// the returned info (header, state, totals, and the summary's end time,
    /// digest and seal, which every end reason records), that `get` agrees
    /// with it, and that every frame reads back.
    pub async fn check_ended(
        &self,
        op: &str,
        info: &TapeInfo,
        header: &TapeHeader,
        reason: EndReason,
        summary: &TapeSummary,
        frames: &[Frame],
    ) -> Result<(), String> {
        let id = &header.id;
        let what = format!("{op}(`{id}`, {reason:?})'s result");
        check::info(
            info,
            header,
            reason.end_state(),
            frames.len() as u64,
            summary.byte_count,
            &what,
        )?;
        eq(
            info.ended_at_us,
            Some(summary.ended_at_us),
            &format!("{what}: ended_at"),
        )?;
        eq(&info.digest, &summary.digest, &format!("{what}: digest"))?;
        if let Some(diff) = check::bytes_diff(info.seal.as_deref(), summary.seal.as_deref()) {
            return Err(format!("{what}: seal {diff}"));
        }
        let got = self.get(id).await?;
        if let Some(diff) = check::info_diff(&got, info) {
            return Err(format!(
                "get(`{id}`) disagrees with what {op} returned: its {diff}"
            ));
        }
        let read = self.read_all(id, 0, 1000, u64::MAX).await?;
        check::frames_eq(&read, frames, &format!("read_frames(`{id}`)"))
    }

    /// Reads every frame from `from` on, in pages of at most `max_frames` /
    /// `max_bytes`, checking each page.
    pub async fn read_all(
        &self,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, String> {
        let mut out: Vec<Frame> = Vec::new();
        let mut at = from;
        loop {
            let call = format!(
                "read_frames(`{id}`, from {at}, max_frames {max_frames}, max_bytes {max_bytes})"
            );
            let page = ok(
                self.store.read_frames(id, at, max_frames, max_bytes).await,
                &call,
            )?;
            check::read_page(&page, at, max_frames, max_bytes, &call)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            at = last.seq + 1;
            out.extend(page);
        }
    }

    /// One page of `what`.
    pub async fn page(
        &self,
        what: Listing<'_>,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        match what {
            Listing::List(f) => self.store.list(f, cursor, limit).await,
            Listing::Search(q) => self.store.search(q, cursor, limit).await,
        }
    }

    /// Pages through all of `what` with `limit`, checking that each page has
    /// at most `limit` tapes, that every tape matches the filter, that no tape
    /// repeats and that the whole listing is newest first.
    pub async fn list_all(&self, what: Listing<'_>, limit: u32) -> Result<Vec<TapeInfo>, String> {
        let name = what.call();
        let mut all: Vec<TapeInfo> = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        let mut empty_run = 0;
        for page_no in 1.. {
            let call = format!("{name} page {page_no} (limit {limit})");
            let page = ok(self.page(what, cursor.as_deref(), limit).await, &call)?;
            ensure!(
                page.tapes.len() as u64 <= u64::from(limit),
                "{call} returned {} tapes, more than the limit",
                page.tapes.len()
            );
            empty_run = if page.tapes.is_empty() {
                empty_run + 1
            } else {
                0
            };
            for tape in page.tapes {
                let id = &tape.header.id;
                ensure!(
                    seen.insert(id.clone()),
                    "{name} page {page_no} repeated tape `{id}`"
                );
                if let Some(why) = check::filter_mismatch(what.filter(), &tape) {
                    return Err(format!(
                        "{name} page {page_no} returned tape `{id}` although {why}"
                    ));
                }
                if let Some(prev) = all.last() {
                    check::newest_first(prev, &tape, &format!("{name} page {page_no}"))?;
                }
                all.push(tape);
            }
            match page.next_cursor {
                None => break,
                Some(c) => cursor = Some(c),
            }
            ensure!(
                empty_run < 1000,
                "{name} returned 1000 empty pages in a row, each with a next cursor"
            );
        }
        Ok(all)
    }

    /// The ids of this case's tapes in `what`, in listing order (after the
    /// checks of [`Ctx::list_all`]).
    pub async fn ours(&self, what: Listing<'_>, limit: u32) -> Result<Vec<String>, String> {
        Ok(self
            .list_all(what, limit)
            .await?
            .into_iter()
            .map(|t| t.header.id)
            .filter(|id| self.is_ours(id))
            .collect())
    }
}
