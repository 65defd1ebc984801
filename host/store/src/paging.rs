//! Walking a listing: [`TapePages`], the one way the host follows the
//! cursors of `list` and `search`.
//!
//! The contract pages listings with cursors that are opaque to the host, so
//! a provider decides when a listing ends. A provider that lies about its
//! cursors could keep a caller paging forever, each call answering at once
//! (so no per-call timeout fires): by returning a cursor again (a loop), by
//! returning empty pages that each carry a new cursor (no progress), or by
//! inventing new pages without end (memory grows with everything collected).
//! `TapePages` hands out one page at a time (memory holds one page, plus a
//! 64-bit hash per cursor and per tape seen) and ends the walk with an error:
//!
//! - [`ProviderError::Contract`] when a page holds more tapes than were asked
//!   for; when a cursor comes back that this walk has seen before (cursors
//!   are remembered as hashes keyed per walk, so a provider cannot aim at a
//!   collision); when more than [`PageLimits::max_empty_pages`] pages in a
//!   row are empty yet carry a cursor; or when a tape appears twice (within a
//!   page or on a later page: the contract promises a listing repeats no
//!   tape);
//! - [`ProviderError::ResourceLimit`] when the walk would go past
//!   [`PageLimits::max_tapes`] tapes or [`PageLimits::max_pages`] pages: the
//!   bound on the work of one command. The defaults are generous
//!   ([`DEFAULT_MAX_TAPES`], [`DEFAULT_MAX_PAGES`]); a listing that large is
//!   better narrowed with a filter.
//!
//! No single answer was wrong in these cases, so unlike the checks of one
//! answer in `WasmProvider` (in `tapedeck`) (ids, page size,
//! filter matches, duplicates within the page), no instance is discarded.
//!
//! Every caller that follows cursors uses this walker: the CLI's `list`,
//! `search`, `migrate` and the resolution of id prefixes. A caller prints or
//! copies each page before asking for the next, so memory stays bounded
//! however long the listing. (The conformance suite pages on its own, with
//! its own bounds, to report each breach as a failed case.)

use crate::error::ProviderError;
use crate::{ProviderResult, TapeStore};
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use tapedeck_types::{SearchQuery, TapeFilter, TapeInfo};

/// The contract's largest page (`limit` is 1..=1000).
pub const MAX_PAGE: u32 = 1000;

/// Default of [`PageLimits::max_empty_pages`]: empty pages carrying a
/// cursor followed in a row. No provider in this repository ever returns
/// one (they put a cursor only after a tape); the allowance is for a
/// provider that scans its storage in bounded steps.
pub const DEFAULT_MAX_EMPTY_PAGES: u32 = 16;

/// Default of [`PageLimits::max_tapes`]: tapes in one walk (their hashes
/// take some 16 to 32 MiB at the end of such a walk).
pub const DEFAULT_MAX_TAPES: u64 = 1_000_000;

/// Default of [`PageLimits::max_pages`]: pages in one walk (a million tapes
/// in pages of 10).
pub const DEFAULT_MAX_PAGES: u64 = 100_000;

/// Bounds of one walk; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// The most tapes one walk hands out.
    pub max_tapes: u64,
    /// The most pages one walk asks for.
    pub max_pages: u64,
    /// The most empty pages carrying a cursor followed in a row.
    pub max_empty_pages: u32,
}

impl Default for PageLimits {
    fn default() -> Self {
        PageLimits {
            max_tapes: DEFAULT_MAX_TAPES,
            max_pages: DEFAULT_MAX_PAGES,
            max_empty_pages: DEFAULT_MAX_EMPTY_PAGES,
        }
    }
}

/// What is listed.
enum Listing {
    List(TapeFilter),
    Search(SearchQuery),
}

/// One walk over the pages of a `list` or `search` (see the module docs):
/// [`next_page`](Self::next_page) until `None`.
pub struct TapePages<'a, S: TapeStore> {
    store: &'a S,
    listing: Listing,
    provider: String,
    page_size: u32,
    limits: PageLimits,
    /// The cursor of the next page (none before the first).
    cursor: Option<String>,
    /// The listing ended (a page without cursor) or the walk failed.
    done: bool,
    pages: u64,
    tapes: u64,
    empty_run: u32,
    hasher: RandomState,
    seen_cursors: HashSet<u64>,
    seen_ids: HashSet<u64>,
}

impl<'a, S: TapeStore> TapePages<'a, S> {
    /// The tapes of `store` matching `filter` (`list`), newest first.
    pub fn list(store: &'a S, filter: TapeFilter) -> Self {
        TapePages::new(store, Listing::List(filter))
    }

    /// The tapes of `store` matching `query` (`search`, which needs the
    /// provider's `search` capability), newest first.
    pub fn search(store: &'a S, query: SearchQuery) -> Self {
        TapePages::new(store, Listing::Search(query))
    }

    fn new(store: &'a S, listing: Listing) -> Self {
        TapePages {
            store,
            listing,
            provider: store.provider_info().name.clone(),
            page_size: MAX_PAGE,
            limits: PageLimits::default(),
            cursor: None,
            done: false,
            pages: 0,
            tapes: 0,
            empty_run: 0,
            hasher: RandomState::new(),
            seen_cursors: HashSet::new(),
            seen_ids: HashSet::new(),
        }
    }

    /// Names the provider `name` in errors (e.g. its configured name; by
    /// default the name it gave at `init`).
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = name.into();
        self
    }

    /// Asks for at most `size` tapes a call (clamped to 1..=[`MAX_PAGE`];
    /// default [`MAX_PAGE`]).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE);
        self
    }

    /// Sets the bounds of the walk (default [`PageLimits::default`]).
    pub fn limits(mut self, limits: PageLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Pages asked for so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Tapes handed out so far.
    pub fn tapes(&self) -> u64 {
        self.tapes
    }

    /// True until the listing has ended (or the walk failed): more tapes
    /// may follow.
    pub fn has_more(&self) -> bool {
        !self.done
    }

    /// The next tapes (at most the page size, at least one), checked; `None`
    /// once the listing has ended. Empty pages carrying a cursor are
    /// followed (within [`PageLimits::max_empty_pages`]), not handed out.
    pub async fn next_page(&mut self) -> ProviderResult<Option<Vec<TapeInfo>>> {
        self.next_page_max(self.page_size).await
    }

    /// Like [`next_page`](Self::next_page), asking for at most `max` tapes
    /// (at least 1, at most the page size): to stop at a number of tapes.
    ///
    /// A provider error leaves the walk where it was (the same page can be
    /// asked for again); a failed check ends it.
    pub async fn next_page_max(&mut self, max: u32) -> ProviderResult<Option<Vec<TapeInfo>>> {
        let max = max.clamp(1, self.page_size);
        while !self.done {
            if self.pages >= self.limits.max_pages {
                return Err(self.fail_limit(format!(
                    "followed {} pages of one listing without reaching its end, the most one \
                     walk follows (narrow the listing with a filter)",
                    self.pages
                )));
            }
            let cursor = self.cursor.as_deref();
            let page = match &self.listing {
                Listing::List(filter) => self.store.list(filter, cursor, max).await?,
                Listing::Search(query) => self.store.search(query, cursor, max).await?,
            };
            self.pages += 1;
            let page_no = self.pages;
            if page.tapes.len() > max as usize {
                return Err(self.fail_contract(format!(
                    "returned {} tapes on page {page_no} for a page limit of {max}",
                    page.tapes.len()
                )));
            }
            if let Some(next) = &page.next_cursor
                && !self.seen_cursors.insert(self.hasher.hash_one(next))
            {
                return Err(self.fail_contract(format!(
                    "returned on page {page_no} a next-cursor it had returned before in this \
                     listing ({}): following it would repeat the listing forever",
                    shown(next)
                )));
            }
            let total = self.tapes + page.tapes.len() as u64;
            if total > self.limits.max_tapes {
                return Err(self.fail_limit(format!(
                    "listed more than {} tapes in one walk, the most one walk takes (narrow \
                     the listing with a filter)",
                    self.limits.max_tapes
                )));
            }
            for t in &page.tapes {
                if !self.seen_ids.insert(self.hasher.hash_one(&t.header.id)) {
                    return Err(self.fail_contract(format!(
                        "returned tape {} on page {page_no} although this listing had \
                         returned it already (a listing repeats no tape)",
                        shown(&t.header.id)
                    )));
                }
            }
            self.tapes = total;
            match (page.tapes.is_empty(), page.next_cursor) {
                (_, None) => self.done = true,
                (true, Some(next)) => {
                    self.empty_run += 1;
                    if self.empty_run > self.limits.max_empty_pages {
                        return Err(self.fail_contract(format!(
                            "returned {} empty pages in a row, each with a next-cursor: the \
                             listing makes no progress (at most {} are followed)",
                            self.empty_run, self.limits.max_empty_pages
                        )));
                    }
                    self.cursor = Some(next);
                }
                (false, Some(next)) => {
                    self.empty_run = 0;
                    self.cursor = Some(next);
                }
            }
            if !page.tapes.is_empty() {
                return Ok(Some(page.tapes));
            }
        }
        Ok(None)
    }

    fn call(&self) -> &'static str {
        match self.listing {
            Listing::List(_) => "list",
            Listing::Search(_) => "search",
        }
    }

    /// Ends the walk with a contract violation.
    fn fail_contract(&mut self, detail: String) -> ProviderError {
        self.done = true;
        ProviderError::Contract {
            provider: self.provider.clone(),
            call: self.call(),
            detail,
        }
    }

    /// Ends the walk at one of its bounds.
    fn fail_limit(&mut self, detail: String) -> ProviderError {
        self.done = true;
        ProviderError::ResourceLimit {
            provider: self.provider.clone(),
            call: self.call(),
            detail,
        }
    }
}

/// An untrusted string for an error message: quoted, escaped, at most 64
/// characters of it.
fn shown(s: &str) -> String {
    let head: String = s.chars().take(64).collect();
    if head.len() < s.len() {
        format!("{head:?}… ({} bytes)", s.len())
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NoWriter, unsupported};
    use std::sync::Mutex;
    use tapedeck_types::{
        Capabilities, EndReason, Frame, ProviderInfo, StorageStats, TapeAppend, TapeHeader,
        TapePage, TapeState, TapeSummary,
    };

    fn tape(id: &str) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: id.into(),
                session_id: String::new(),
                name: String::new(),
                tags: Vec::new(),
                created_at_us: 0,
                envelope: None,
            },
            state: TapeState::Finished,
            frame_count: 0,
            byte_count: 0,
            ended_at_us: Some(1),
            digest: None,
            seal: None,
        }
    }

    /// A store whose listing is `answer(cursor, limit)`; it records the
    /// calls made.
    struct Scripted<F> {
        info: ProviderInfo,
        answer: F,
        calls: Mutex<Vec<(Option<String>, u32)>>,
    }

    impl<F: Fn(Option<&str>, u32) -> TapePage + Send + Sync> Scripted<F> {
        fn new(answer: F) -> Self {
            Scripted {
                info: ProviderInfo {
                    name: "scripted".into(),
                    version: "0".into(),
                    capabilities: Capabilities::default(),
                },
                answer,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl<F: Fn(Option<&str>, u32) -> TapePage + Send + Sync> TapeStore for Scripted<F> {
        type Writer = NoWriter;
        fn provider_info(&self) -> &ProviderInfo {
            &self.info
        }
        async fn create(&self, _: TapeHeader) -> ProviderResult<NoWriter> {
            unsupported()
        }
        async fn resume(&self, _: &str) -> ProviderResult<NoWriter> {
            unsupported()
        }
        async fn save(
            &self,
            _: TapeHeader,
            _: &[Frame],
            _: TapeSummary,
            _: EndReason,
        ) -> ProviderResult<TapeInfo> {
            unsupported()
        }
        async fn get(&self, _: &str) -> ProviderResult<TapeInfo> {
            unsupported()
        }
        async fn read_frames(&self, _: &str, _: u64, _: u32, _: u64) -> ProviderResult<Vec<Frame>> {
            unsupported()
        }
        async fn delete(&self, _: &str) -> ProviderResult<()> {
            unsupported()
        }
        async fn list(
            &self,
            _: &TapeFilter,
            cursor: Option<&str>,
            limit: u32,
        ) -> ProviderResult<TapePage> {
            self.calls
                .lock()
                .unwrap()
                .push((cursor.map(str::to_string), limit));
            Ok((self.answer)(cursor, limit))
        }
        async fn search(
            &self,
            query: &SearchQuery,
            cursor: Option<&str>,
            limit: u32,
        ) -> ProviderResult<TapePage> {
            self.list(&query.filter, cursor, limit).await
        }
        async fn stats(&self) -> ProviderResult<StorageStats> {
            unsupported()
        }
        async fn append_many(&self, _: &[TapeAppend]) -> ProviderResult<Vec<ProviderResult<u64>>> {
            unsupported()
        }
    }

    /// Pages of `per_page` tapes `t<n>` out of `total`; the cursor is the
    /// index of the next tape.
    fn honest(total: usize, per_page: usize) -> impl Fn(Option<&str>, u32) -> TapePage {
        move |cursor, limit| {
            let from: usize = cursor.map_or(0, |c| c.parse().unwrap());
            let to = (from + per_page.min(limit as usize)).min(total);
            TapePage {
                tapes: (from..to).map(|i| tape(&format!("t{i}"))).collect(),
                next_cursor: (to < total).then(|| to.to_string()),
            }
        }
    }

    async fn drain<S: TapeStore>(pages: &mut TapePages<'_, S>) -> ProviderResult<Vec<String>> {
        let mut ids = Vec::new();
        while let Some(page) = pages.next_page().await? {
            assert!(!page.is_empty(), "pages handed out are never empty");
            ids.extend(page.into_iter().map(|t| t.header.id));
        }
        Ok(ids)
    }

    fn contract(e: &ProviderError) -> &str {
        match e {
            ProviderError::Contract { detail, .. } => detail,
            e => panic!("not a contract violation: {e}"),
        }
    }

    #[tokio::test]
    async fn an_honest_listing_is_walked_to_its_end() {
        let store = Scripted::new(honest(25, 10));
        let mut pages = TapePages::list(&store, TapeFilter::default()).page_size(10);
        let ids = drain(&mut pages).await.unwrap();
        assert_eq!(ids.len(), 25);
        assert_eq!((pages.pages(), pages.tapes()), (3, 25));
        assert!(!pages.has_more());
        assert_eq!(pages.next_page().await.unwrap(), None, "ended stays ended");
        assert_eq!(store.calls(), 3);
    }

    #[tokio::test]
    async fn next_page_max_asks_for_no_more_than_wanted() {
        let store = Scripted::new(honest(25, 10));
        let mut pages = TapePages::list(&store, TapeFilter::default()).page_size(10);
        let page = pages.next_page_max(3).await.unwrap().unwrap();
        assert_eq!(page.len(), 3);
        assert!(pages.has_more());
        assert_eq!(store.calls.lock().unwrap()[0], (None, 3));
        // Asking past the page size is clamped to it.
        pages.next_page_max(500).await.unwrap();
        assert_eq!(store.calls.lock().unwrap()[1], (Some("3".into()), 10));
    }

    #[tokio::test]
    async fn a_repeated_cursor_is_a_contract_violation() {
        // The same cursor every time, and a cycle of three.
        for period in [1usize, 3] {
            let store = Scripted::new(move |cursor: Option<&str>, _| {
                let n: usize = cursor.map_or(0, |c| c.parse().unwrap());
                TapePage {
                    tapes: vec![tape(&format!("t{n}"))],
                    next_cursor: Some(((n + 1) % period).to_string()),
                }
            });
            let mut pages = TapePages::list(&store, TapeFilter::default());
            let e = drain(&mut pages).await.unwrap_err();
            assert!(
                contract(&e).contains("next-cursor it had returned before"),
                "{e}"
            );
            assert!(
                e.to_string()
                    .contains("`scripted` broke the contract in `list`")
            );
            assert_eq!(store.calls(), period + 1, "period {period}");
            assert!(!pages.has_more(), "a failed walk is over");
            assert_eq!(pages.next_page().await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn empty_pages_with_a_cursor_are_followed_only_so_far() {
        // A few are followed (a provider scanning in steps) ...
        let store = Scripted::new(|cursor: Option<&str>, _| {
            let n: u32 = cursor.map_or(0, |c| c.parse().unwrap());
            TapePage {
                tapes: if n == 5 { vec![tape("late")] } else { vec![] },
                next_cursor: (n < 5).then(|| (n + 1).to_string()),
            }
        });
        let ids = drain(&mut TapePages::list(&store, TapeFilter::default()))
            .await
            .unwrap();
        assert_eq!(ids, ["late"]);
        // ... but not forever.
        let store = Scripted::new(|cursor: Option<&str>, _| {
            let n: u64 = cursor.map_or(0, |c| c.parse().unwrap());
            TapePage {
                tapes: vec![],
                next_cursor: Some((n + 1).to_string()),
            }
        });
        let e = drain(&mut TapePages::list(&store, TapeFilter::default()))
            .await
            .unwrap_err();
        assert!(contract(&e).contains("17 empty pages in a row"), "{e}");
        assert_eq!(store.calls(), DEFAULT_MAX_EMPTY_PAGES as usize + 1);
    }

    #[tokio::test]
    async fn a_tape_listed_twice_is_a_contract_violation() {
        // On a later page under a new cursor ...
        let store = Scripted::new(|cursor: Option<&str>, _| {
            let n: u64 = cursor.map_or(0, |c| c.parse().unwrap());
            TapePage {
                tapes: vec![tape(&format!("t{n}")), tape("again")],
                next_cursor: Some((n + 1).to_string()),
            }
        });
        let e = drain(&mut TapePages::search(&store, SearchQuery::default()))
            .await
            .unwrap_err();
        assert!(
            contract(&e).contains("returned tape \"again\" on page 2 although"),
            "{e}"
        );
        assert!(matches!(e, ProviderError::Contract { call: "search", .. }));
        // ... and within one page.
        let store = Scripted::new(|_: Option<&str>, _| TapePage {
            tapes: vec![tape("a"), tape("a")],
            next_cursor: None,
        });
        let e = drain(&mut TapePages::list(&store, TapeFilter::default()))
            .await
            .unwrap_err();
        assert!(contract(&e).contains("\"a\" on page 1"), "{e}");
    }

    #[tokio::test]
    async fn a_page_over_its_limit_is_a_contract_violation() {
        let store = Scripted::new(|_: Option<&str>, limit| TapePage {
            tapes: (0..=limit).map(|i| tape(&format!("t{i}"))).collect(),
            next_cursor: None,
        });
        let mut pages = TapePages::list(&store, TapeFilter::default()).page_size(4);
        let e = drain(&mut pages).await.unwrap_err();
        assert!(
            contract(&e).contains("returned 5 tapes on page 1 for a page limit of 4"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn endless_new_pages_stop_at_the_bounds() {
        let endless = |cursor: Option<&str>, limit: u32| {
            let n: u64 = cursor.map_or(0, |c| c.parse().unwrap());
            TapePage {
                tapes: (0..limit as u64)
                    .map(|i| tape(&format!("t{}", n * 1000 + i)))
                    .collect(),
                next_cursor: Some((n + 1).to_string()),
            }
        };
        let store = Scripted::new(endless);
        let limits = PageLimits {
            max_tapes: 250,
            ..PageLimits::default()
        };
        let mut pages = TapePages::list(&store, TapeFilter::default())
            .page_size(100)
            .limits(limits);
        let mut handed = 0;
        let e = loop {
            match pages.next_page().await {
                Ok(Some(page)) => handed += page.len(),
                Ok(None) => panic!("an endless listing ended"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            handed, 200,
            "the page that would pass the bound is not handed out"
        );
        assert!(matches!(
            e,
            ProviderError::ResourceLimit { call: "list", .. }
        ));
        assert!(
            e.to_string().contains("more than 250 tapes in one walk"),
            "{e}"
        );

        let store = Scripted::new(endless);
        let limits = PageLimits {
            max_pages: 7,
            ..PageLimits::default()
        };
        let mut pages = TapePages::list(&store, TapeFilter::default())
            .page_size(1)
            .limits(limits)
            .provider_name("configured");
        let e = drain(&mut pages).await.unwrap_err();
        assert!(
            e.to_string().starts_with(
                "provider `configured` hit its resource limit in `list`: followed 7 pages"
            ),
            "{e}"
        );
        assert_eq!(store.calls(), 7);
    }

    #[tokio::test]
    async fn a_provider_error_can_be_retried() {
        let fail = Mutex::new(true);
        let store = Scripted::new(honest(5, 2));
        struct Flaky<'a, S> {
            inner: &'a S,
            fail: &'a Mutex<bool>,
        }
        // Only `list` is its own; the rest is forwarded.
        impl<S: TapeStore> crate::Layer for Flaky<'_, S> {
            type Inner = S;
            type Writer = S::Writer;
            fn inner(&self) -> &S {
                self.inner
            }
            fn wrap_writer(&self, writer: S::Writer) -> S::Writer {
                writer
            }
            async fn list(
                &self,
                filter: &TapeFilter,
                cursor: Option<&str>,
                limit: u32,
            ) -> ProviderResult<TapePage> {
                if cursor.is_some() && std::mem::take(&mut *self.fail.lock().unwrap()) {
                    return unsupported();
                }
                self.inner.list(filter, cursor, limit).await
            }
        }
        let flaky = Flaky {
            inner: &store,
            fail: &fail,
        };
        let mut pages = TapePages::list(&flaky, TapeFilter::default()).page_size(2);
        assert_eq!(pages.next_page().await.unwrap().unwrap().len(), 2);
        assert!(matches!(
            pages.next_page().await,
            Err(ProviderError::Storage { .. })
        ));
        let rest = drain(&mut pages).await.unwrap();
        assert_eq!(rest, ["t2", "t3", "t4"]);
    }

    #[test]
    fn untrusted_strings_are_shown_short_and_escaped() {
        assert_eq!(shown("a/b"), "\"a/b\"");
        assert_eq!(shown("x\n"), "\"x\\n\"");
        let long = shown(&"y".repeat(1000));
        assert!(long.ends_with("… (1000 bytes)"), "{long}");
    }
}
