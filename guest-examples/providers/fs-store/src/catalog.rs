//! The in-memory catalog: every tape's header and end, replayed from the
//! catalog log, so that `list`, `get` and the header part of `search` never
//! open a tape file for an ended tape.
//!
//! Replay rules (applied identically by every instance, in log order):
//!
//! * `created (id, nonce)` adds the tape unless that incarnation was deleted
//!   already or the id is taken (a duplicate from adoption is a no-op; the
//!   first entry's position is the tape's place in listing snapshots).
//! * `ended (id, nonce)` records the end of that incarnation, once.
//! * `deleted (id, nonce)` removes that incarnation and remembers it as a
//!   tombstone, so a late `created` for it (an adoption racing the delete)
//!   cannot bring it back, and a file of it left by an interrupted delete is
//!   recognised as a zombie.

use crate::indexlog::LogEntry;
use crate::tapefile::EndInfo;
use crate::writer::Tail;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, Weak};
use tapedeck_types::{TapeHeader, TapeInfo, TapeState};

/// Counts of a recording tape as last read from its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Live {
    /// File length covered by this reading.
    pub file_len: u64,
    /// End of the valid records (where scanning resumes).
    pub valid_end: u64,
    /// Frames stored.
    pub next_seq: u64,
    /// Payload bytes stored.
    pub bytes: u64,
    /// Offset of the last index record (0 = none).
    pub last_index: u64,
}

/// The distinct terms of a recording tape, as of one index record: valid
/// while the tape's last index record is still `at` (offsets of valid
/// records are never reused, so the key identifies the set).
#[derive(Debug, Clone, Default)]
pub(crate) struct TermIndex {
    /// Offset of the last index record the set covers (0 = none).
    pub at: u64,
    /// The terms.
    pub terms: HashSet<String>,
}

/// What the catalog keeps about an ended tape.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    /// The end, with `terms` moved out into `term_ids`.
    pub end: EndInfo,
    /// Interned terms, sorted.
    pub term_ids: Box<[u32]>,
    /// Bytes of the tape and seek files.
    pub stored_bytes: u64,
    /// The end is in the log (not only found in the tape file).
    pub logged: bool,
}

/// One tape.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The tape's info as returned by `get` and `list`, kept current (so
    /// filters run on it without copying anything).
    pub info: TapeInfo,
    /// Incarnation token.
    pub nonce: u64,
    /// Offset of the first `created` entry of this incarnation.
    pub log_pos: u64,
    /// Set once the tape ended.
    pub end: Option<Ended>,
    /// For a recording tape: its counts as last read.
    pub live: Option<Live>,
    /// For a recording tape: its terms, once this instance needed them.
    pub index: Option<TermIndex>,
    /// The newest writer this instance made for the tape (`create` or
    /// `resume`), through which `append_many` appends while it is alive and
    /// current.
    pub writer: Option<Weak<Mutex<Tail>>>,
}

/// All tapes known to this instance.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    tapes: HashMap<String, Entry>,
    /// `(created_at, id)` of every tape, for newest-first listing.
    order: BTreeSet<(u64, String)>,
    tombstones: HashSet<(String, u64)>,
    term_names: Vec<String>,
    term_ids: HashMap<String, u32>,
}

impl Catalog {
    /// Applies one log entry found at `pos`. Slim entries must have been
    /// completed from the tape file first; ones that could not be are
    /// skipped.
    pub(crate) fn apply(&mut self, pos: u64, entry: LogEntry) {
        match entry {
            LogEntry::Created {
                id,
                nonce,
                header,
                ended,
                end,
                stored_bytes,
            } => {
                if self.tapes.contains_key(&id) || self.tombstones.contains(&(id.clone(), nonce)) {
                    if let (Some(end), true) = (end, ended) {
                        self.set_end(&id, nonce, end, stored_bytes, true);
                    }
                    return;
                }
                let Some(header) = header.map(TapeHeader::from) else {
                    return;
                };
                if ended && end.is_none() {
                    return;
                }
                self.order.insert((header.created_at_us, id.clone()));
                self.tapes.insert(
                    id.clone(),
                    Entry {
                        info: TapeInfo {
                            header,
                            state: TapeState::Recording,
                            frame_count: 0,
                            byte_count: 0,
                            ended_at_us: None,
                            digest: None,
                            seal: None,
                        },
                        nonce,
                        log_pos: pos,
                        end: None,
                        live: None,
                        index: None,
                        writer: None,
                    },
                );
                if let Some(end) = end {
                    self.set_end(&id, nonce, end, stored_bytes, true);
                }
            }
            LogEntry::Ended {
                id,
                nonce,
                end,
                stored_bytes,
            } => {
                if let Some(end) = end {
                    self.set_end(&id, nonce, end, stored_bytes, true);
                }
            }
            LogEntry::Deleted { id, nonce } => {
                if self.tapes.get(&id).is_some_and(|e| e.nonce == nonce) {
                    let e = self.tapes.remove(&id).expect("present");
                    self.order
                        .remove(&(e.info.header.created_at_us, id.clone()));
                }
                self.tombstones.insert((id, nonce));
            }
        }
    }

    /// Records the end of incarnation `nonce` of `id` (first end wins; a
    /// logged copy of an end found in the file marks it logged).
    pub(crate) fn set_end(
        &mut self,
        id: &str,
        nonce: u64,
        mut end: EndInfo,
        stored_bytes: u64,
        logged: bool,
    ) {
        let Some(entry) = self.tapes.get(id) else {
            return;
        };
        if entry.nonce != nonce {
            return;
        }
        if let Some(e) = &entry.end {
            if logged && !e.logged {
                self.tapes
                    .get_mut(id)
                    .expect("present")
                    .end
                    .as_mut()
                    .expect("ended")
                    .logged = true;
            }
            return;
        }
        let mut ids: Vec<u32> = end.terms.drain(..).map(|t| self.intern(t)).collect();
        ids.sort_unstable();
        ids.dedup();
        let entry = self.tapes.get_mut(id).expect("present");
        entry.live = None;
        entry.index = None;
        entry.writer = None;
        entry.info.state = end.state;
        entry.info.frame_count = end.frame_count;
        entry.info.byte_count = end.byte_count;
        entry.info.ended_at_us = Some(end.ended_at_us);
        entry.info.digest = end.digest.clone();
        entry.info.seal = end.seal.clone();
        entry.end = Some(Ended {
            end,
            term_ids: ids.into_boxed_slice(),
            stored_bytes,
            logged,
        });
    }

    fn intern(&mut self, term: String) -> u32 {
        if let Some(&id) = self.term_ids.get(&term) {
            return id;
        }
        let id = u32::try_from(self.term_names.len()).expect("fewer than 4 billion terms");
        self.term_names.push(term.clone());
        self.term_ids.insert(term, id);
        id
    }

    /// Sets the live counts of a recording tape (incarnation `nonce`).
    pub(crate) fn set_live(&mut self, id: &str, nonce: u64, live: Live) {
        if let Some(e) = self.tapes.get_mut(id)
            && e.nonce == nonce
            && e.end.is_none()
        {
            e.live = Some(live);
            e.info.frame_count = live.next_seq;
            e.info.byte_count = live.bytes;
        }
    }

    /// The interned id of a term, if any ended tape has it.
    pub(crate) fn term_id(&self, term: &str) -> Option<u32> {
        self.term_ids.get(term).copied()
    }

    /// The terms of an ended tape, sorted.
    pub(crate) fn term_names(&self, ended: &Ended) -> Vec<String> {
        let mut out: Vec<String> = ended
            .term_ids
            .iter()
            .map(|&i| self.term_names[i as usize].clone())
            .collect();
        out.sort();
        out
    }

    /// Records `writer` as the newest writer of incarnation `nonce` of `id`
    /// in this instance (`None`: there is none that is current).
    pub(crate) fn set_writer(&mut self, id: &str, nonce: u64, writer: Option<Weak<Mutex<Tail>>>) {
        if let Some(e) = self.tapes.get_mut(id)
            && e.nonce == nonce
        {
            e.writer = writer;
        }
    }

    /// The tape `id`, to update what this instance keeps about it.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.tapes.get_mut(id)
    }

    /// The tape `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.tapes.get(id)
    }

    /// Was incarnation `nonce` of `id` deleted?
    pub(crate) fn is_tombstoned(&self, id: &str, nonce: u64) -> bool {
        self.tombstones.contains(&(id.to_string(), nonce))
    }

    /// The next key in listing order (newest first) after `after`, or the
    /// first one.
    pub(crate) fn next_in_order(&self, after: Option<&(u64, String)>) -> Option<(u64, String)> {
        let upper = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.order
            .range((Bound::Unbounded, upper))
            .next_back()
            .cloned()
    }

    /// Ids of all tapes.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.tapes.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(id: &str, nonce: u64, at: u64) -> LogEntry {
        LogEntry::Created {
            id: id.into(),
            nonce,
            header: Some(
                TapeHeader {
                    id: id.into(),
                    session_id: String::new(),
                    name: String::new(),
                    tags: vec![],
                    created_at_us: at,
                    envelope: None,
                }
                .into(),
            ),
            ended: false,
            end: None,
            stored_bytes: 0,
        }
    }

    #[test]
    fn replay_rules() {
        let mut c = Catalog::default();
        c.apply(0, created("a", 1, 10));
        c.apply(5, created("a", 1, 10)); // adoption duplicate
        assert_eq!(c.get("a").unwrap().log_pos, 0);
        c.apply(
            9,
            LogEntry::Deleted {
                id: "a".into(),
                nonce: 1,
            },
        );
        assert!(c.get("a").is_none());
        c.apply(12, created("a", 1, 10)); // late adoption of a deleted one
        assert!(c.get("a").is_none());
        assert!(c.is_tombstoned("a", 1));
        c.apply(20, created("a", 2, 30)); // the id reused
        assert_eq!(c.get("a").unwrap().nonce, 2);
        c.apply(
            25,
            LogEntry::Deleted {
                id: "a".into(),
                nonce: 1,
            },
        ); // stale delete
        assert!(c.get("a").is_some());
    }

    #[test]
    fn order_is_newest_first_then_id_desc() {
        let mut c = Catalog::default();
        for (id, at) in [("b", 5), ("a", 5), ("c", 1), ("d", 9)] {
            c.apply(0, created(id, 1, at));
        }
        let mut got = vec![];
        let mut k = None;
        while let Some(next) = c.next_in_order(k.as_ref()) {
            got.push(next.1.clone());
            k = Some(next);
        }
        assert_eq!(got, ["d", "b", "a", "c"]);
    }
}
