//! Listings that lie: `list` and `search` answers that would keep a host
//! paging forever, grow its memory without bound, or hand it ids it must
//! not pass on. Chosen by the config key `list-attack`; while one is set,
//! every `list` and `search` answers with it and the provider declares the
//! `search` capability (so `search` reaches it too).
//!
//! * `repeat-cursor`: a page of three tapes whose next cursor is one the
//!   host has seen already: always the same with `cursor-cycle` 1 (the
//!   default), else cursors `c0 … c<n-1>` in a cycle;
//! * `empty-pages-forever`: empty pages, each with a new cursor;
//! * `endless-new-pages`: full pages (`limit` tapes) of new, valid tapes
//!   without end: `endless-000000000000`, `…001`, … created one microsecond
//!   apart, newest first, named `endless tape N` padded with `x` to
//!   `list-name-bytes` bytes (default: not padded). `get` and `read-frames`
//!   answer for these tapes too (finished, no frames), so they can be copied;
//! * `bad-ids`: one page holding a valid tape, then tapes with the ids in
//!   `bad-ids` (default `../../../../tmp/pwned-list`, ``, `a/b`,
//!   `/etc/passwd`);
//! * `too-many`: `limit + 1` valid tapes on the first page;
//! * `not-matching-filter`: a tape that fails the filter's session, name,
//!   tag, time or state condition (the first one the filter sets; with an
//!   empty filter, a matching tape);
//! * `duplicate-ids`: one page holding the same tape twice;
//! * `repeat-tapes`: the same tape on every page, each under a new cursor.
//!
//! Every tape these attacks return matches the filter, unless the attack is
//! not matching it, so that only the lie under test is caught.

use crate::exports::tapedeck::storage::tape_storage::{
    StorageError, TapeFilter, TapeHeader, TapeInfo, TapePage,
};
use crate::tapedeck::storage::types::{Capabilities, TapeState};
use std::cell::RefCell;

/// The `list-attack` setting, parsed.
#[derive(Clone)]
enum Attack {
    RepeatCursor { cycle: u64 },
    EmptyPagesForever,
    EndlessNewPages { name_bytes: usize },
    BadIds(Vec<String>),
    TooMany,
    NotMatchingFilter,
    DuplicateIds,
    RepeatTapes,
}

thread_local! {
    static ATTACK: RefCell<Option<Attack>> = const { RefCell::new(None) };
}

fn attack() -> Option<Attack> {
    ATTACK.with_borrow(|a| a.clone())
}

/// The ids `bad-ids` returns by default.
const BAD_IDS: [&str; 4] = ["../../../../tmp/pwned-list", "", "a/b", "/etc/passwd"];

/// When the endless tapes start (2026-01-01T00:00:00Z), counting down.
const ENDLESS_NEWEST_US: u64 = 1_767_225_600_000_000;

/// The prefix of the endless tapes' ids.
const ENDLESS: &str = "endless-";

/// Reads `list-attack` (and its settings) from the provider's config.
pub fn configure(config: &serde_json::Value) -> Result<(), StorageError> {
    let Some(name) = config.get("list-attack") else {
        return Ok(());
    };
    let bad = |what: &str| StorageError::InvalidInput(format!("config: {what}"));
    let attack = match name
        .as_str()
        .ok_or_else(|| bad("list-attack is not a string"))?
    {
        "repeat-cursor" => Attack::RepeatCursor {
            cycle: config["cursor-cycle"].as_u64().unwrap_or(1).max(1),
        },
        "empty-pages-forever" => Attack::EmptyPagesForever,
        "endless-new-pages" => Attack::EndlessNewPages {
            name_bytes: config["list-name-bytes"].as_u64().unwrap_or(0) as usize,
        },
        "bad-ids" => Attack::BadIds(match config.get("bad-ids") {
            None => BAD_IDS.iter().map(|s| s.to_string()).collect(),
            Some(ids) => ids
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                .ok_or_else(|| bad("bad-ids is not a list of strings"))?,
        }),
        "too-many" => Attack::TooMany,
        "not-matching-filter" => Attack::NotMatchingFilter,
        "duplicate-ids" => Attack::DuplicateIds,
        "repeat-tapes" => Attack::RepeatTapes,
        other => return Err(bad(&format!("unknown list-attack {other:?}"))),
    };
    ATTACK.with_borrow_mut(|a| *a = Some(attack));
    Ok(())
}

/// `search` while a listing attack is set (so `search` is asked too).
pub fn capabilities() -> Capabilities {
    match attack() {
        Some(_) => Capabilities::SEARCH,
        None => Capabilities::empty(),
    }
}

/// The page a `list` or `search` answers with, if a listing attack is set.
pub fn page(
    filter: &TapeFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Option<Result<TapePage, StorageError>> {
    let page = |tapes: Vec<TapeInfo>, next: Option<String>| {
        Some(Ok(TapePage {
            tapes,
            next_cursor: next,
        }))
    };
    match attack()? {
        Attack::RepeatCursor { cycle } => {
            let n = cursor
                .and_then(|c| c.strip_prefix('c'))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            let tapes = (0..3)
                .map(|i| matching(filter, &format!("loop-{n}-{i}"), ENDLESS_NEWEST_US - i))
                .collect();
            page(tapes, Some(format!("c{}", (n + 1) % cycle)))
        }
        Attack::EmptyPagesForever => {
            let n = cursor
                .and_then(|c| c.strip_prefix("empty-"))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            page(Vec::new(), Some(format!("empty-{}", n + 1)))
        }
        Attack::EndlessNewPages { name_bytes } => {
            let from = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            let to = from + u64::from(limit);
            let tapes = (from..to)
                .map(|k| {
                    let mut t = endless(k, name_bytes);
                    // Within the filter, as far as a synthetic tape can be.
                    if let Some(s) = &filter.session_id {
                        t.header.session_id = s.clone();
                    }
                    t
                })
                .collect();
            page(tapes, Some(to.to_string()))
        }
        Attack::BadIds(ids) => {
            let mut tapes = vec![matching(filter, "a-valid-tape", ENDLESS_NEWEST_US)];
            tapes.extend(
                ids.iter()
                    .enumerate()
                    .map(|(i, id)| matching(filter, id, ENDLESS_NEWEST_US - 1 - i as u64)),
            );
            page(tapes, None)
        }
        Attack::TooMany => {
            let tapes = (0..=u64::from(limit))
                .map(|i| matching(filter, &format!("one-too-many-{i}"), ENDLESS_NEWEST_US - i))
                .collect();
            page(tapes, None)
        }
        Attack::NotMatchingFilter => {
            let mut t = matching(filter, "not-matching", ENDLESS_NEWEST_US);
            mismatch(filter, &mut t);
            page(vec![t], None)
        }
        Attack::DuplicateIds => {
            let t = matching(filter, "twice", ENDLESS_NEWEST_US);
            page(vec![t.clone(), t], None)
        }
        Attack::RepeatTapes => {
            let n = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
            let t = matching(filter, "same-tape", ENDLESS_NEWEST_US);
            page(vec![t], Some((n + 1).to_string()))
        }
    }
}

/// `get` of a tape `endless-new-pages` listed.
pub fn get(id: &str) -> Option<Result<TapeInfo, StorageError>> {
    let Some(Attack::EndlessNewPages { name_bytes }) = attack() else {
        return None;
    };
    let k = id.strip_prefix(ENDLESS)?.parse::<u64>().ok()?;
    Some(Ok(endless(k, name_bytes)))
}

/// Whether `id` is a tape `endless-new-pages` listed (its `read-frames`
/// answers no frames).
pub fn is_listed(id: &str) -> bool {
    get(id).is_some()
}

/// Endless tape number `k`: finished, without frames.
fn endless(k: u64, name_bytes: usize) -> TapeInfo {
    let created = ENDLESS_NEWEST_US - k;
    let mut name = format!("endless tape {k}");
    if name.len() < name_bytes {
        name.extend(std::iter::repeat_n('x', name_bytes - name.len()));
    }
    TapeInfo {
        header: TapeHeader {
            id: format!("{ENDLESS}{k:012}"),
            session_id: String::new(),
            name,
            tags: Vec::new(),
            created_at: created,
            envelope: None,
        },
        state: TapeState::Finished,
        frame_count: 0,
        byte_count: 0,
        ended_at: Some(created + 1),
        digest: None,
        seal: None,
    }
}

/// A finished tape `id` that satisfies every condition of `filter`, created
/// at `created` unless the filter's time range says otherwise.
fn matching(filter: &TapeFilter, id: &str, created: u64) -> TapeInfo {
    let created = match (filter.created_since, filter.created_until) {
        (Some(since), _) if created < since => since,
        (_, Some(until)) if created >= until => until.saturating_sub(1),
        _ => created,
    };
    let state = filter.state.unwrap_or(TapeState::Finished);
    TapeInfo {
        header: TapeHeader {
            id: id.to_string(),
            session_id: filter.session_id.clone().unwrap_or_default(),
            name: filter.name_contains.clone().unwrap_or_default(),
            tags: filter.tags.clone(),
            created_at: created,
            envelope: None,
        },
        state,
        frame_count: 0,
        byte_count: 0,
        ended_at: (state != TapeState::Recording).then_some(created + 1),
        digest: None,
        seal: None,
    }
}

/// Makes `t` fail the first condition `filter` sets.
fn mismatch(filter: &TapeFilter, t: &mut TapeInfo) {
    if let Some(s) = &filter.session_id {
        t.header.session_id = format!("not-{s}");
    } else if filter.name_contains.is_some() {
        t.header.name = String::new();
    } else if let Some((k, v)) = filter.tags.first() {
        t.header.tags = vec![(k.clone(), format!("not-{v}"))];
    } else if let Some(since) = filter.created_since.filter(|s| *s > 0) {
        t.header.created_at = since - 1;
    } else if let Some(until) = filter.created_until {
        t.header.created_at = until;
    } else if let Some(state) = filter.state {
        t.state = if state == TapeState::Finished {
            TapeState::Aborted
        } else {
            TapeState::Finished
        };
    }
}
