//! A storage provider that fails on request, for the host's tests.
//!
//! Left alone it is the fs provider: every call goes to
//! [`fs_store::FsStore`] exactly as in `fs-provider` (both are
//! [`tapedeck_guest_sdk::TapeStorage`]s), so it passes the conformance
//! suite. Its configuration adds two layers on top:
//!
//! * **faults**: rules that make the Nth call of a function fail in a chosen
//!   way (an error, a trap, a spin, a hang, a delay, a lost acknowledgement,
//!   a wrong answer), to test what the host does about each;
//! * **tamper**: reads of ended tapes that are falsified while staying
//!   structurally perfect (frames changed, a digest recomputed to match
//!   them, two tapes swapped, a header edited, a seal left out), to prove
//!   that only the host's checks (its SHA-256 digest chain, and its seal
//!   over the tape) can catch them (and that they do).
//!
//! It reports itself as provider `faulty`, with the fs store's capabilities
//! (`delete`, `search`, `text-search`).
//!
//! # Configuration
//!
//! The `config` JSON object given to `init`; every key is optional, and an
//! unknown key or a bad value makes `init` fail with `invalid-input` naming
//! the key (e.g. `faults[1].call`) and the value:
//!
//! ```json
//! {
//!   "root": "/tapes",
//!   "fsync": true,
//!   "faults": [
//!     {"call": "append", "fault": "trap", "after": 2, "times": 1},
//!     {"call": "get", "fault": "error", "kind": "io", "after": 0, "times": 0},
//!     {"call": "finish", "fault": "slow", "ms": 300}
//!   ],
//!   "tamper": {"mode": "alter", "frame": 3}
//! }
//! ```
//!
//! * `root` (string, default `/tapes`) and `fsync` (bool, default `true`):
//!   the fs store's settings, as for `fs-provider` (checked by
//!   [`fs_store::FsConfig::from_json`]). The call counters live in
//!   `<root>/.faults/`, so `root` must be granted read-write.
//! * `faults` (array, default empty): fault rules, each an object with:
//!   * `call` (required): the function it applies to, one of `init`,
//!     `create`, `resume`, `next-seq`, `append`, `finish`, `abort`, `save`,
//!     `append-many`, `get`, `read-frames`, `delete`, `list`, `search`,
//!     `stats`. `append-many` has no error of its own, so where a rule on it
//!     returns an error, every entry of that call fails with it.
//!   * `fault` (required): what it does when it fires:
//!     * `error`: the call returns `storage-error` of `kind`, with the message
//!       `injected fault: <call> #<n> (faults[<i>])` (`n` = which call of that
//!       function, from 1; `i` = the rule's index).
//!     * `trap`: the call panics with `injected trap: <call> #<n> (faults[<i>])`.
//!     * `spin`: the call loops forever without calling the host (the host's
//!       CPU budget must stop it).
//!     * `hang`: the call sleeps forever in WASI (`std::thread::sleep`; the
//!       host's wall-clock timeout must stop it).
//!     * `slow`: the call sleeps `ms` milliseconds, then behaves correctly.
//!     * `ack-then-lose`: `append` returns the `next-seq` the batch would have
//!       given (the highest `seq` in it plus one, or the current `next-seq`)
//!       and stores nothing; `append-many` does so for every entry (an entry
//!       whose tape cannot be read gets that error); `finish` returns a
//!       `tape-info` claiming the end state for the reason given, with the
//!       summary's counts, end time, digest and seal, and does not finish
//!       (the tape stays `recording`). On any other call it acts as `error`.
//!     * `garbage`: a well-typed wrong answer. `append` stores the batch
//!       (correctly) but returns `next-seq` `u64::MAX / 2`, and so does
//!       `append-many` for every entry it stored; `next-seq`
//!       returns `u64::MAX / 2`; `get` returns the tape (or an invented one)
//!       under the id `<id>-garbage` with absurd counts; `read-frames`
//!       returns the real page with every `seq` shifted by 1 000 000 (or,
//!       when there are none, one invented frame out of sequence); `list` and
//!       `search` return the real page padded to `limit + 1` tapes with
//!       invented ones that fail every condition the filter sets; `stats`
//!       returns more recording tapes than tapes and totals of `u64::MAX`.
//!       On `init`, `create`, `resume`, `save`, `finish`, `abort` and
//!       `delete` it acts as `error`.
//!   * `kind` (default `io`; only with `error`, `ack-then-lose`, `garbage`):
//!     the `storage-error` case when the rule acts as `error`: `io`,
//!     `internal`, `quota-exceeded`, `not-found`, `invalid-input`,
//!     `already-exists` or `unsupported`.
//!   * `ms` (required with `slow`, refused otherwise): the delay.
//!   * `after` (default 0): how many calls of `call` pass untouched first.
//!   * `times` (default 1; 0 = forever): how many calls it then fires on.
//!     So a rule fires on calls `after + 1 ..= after + times`.
//!
//!   `next-seq` has no error result, so `error` and `ack-then-lose` are
//!   refused for it. Every rule for a function counts every call of it
//!   (including `init`: a faulting `init` is an instance that cannot start).
//!   When several rules fire on one call, the `slow` ones sleep in turn and
//!   the first other one, in config order, decides the outcome.
//! * `tamper` (object, default none): falsifies reads of tapes that are not
//!   `recording` (so recording and finishing work normally); `frame` (default
//!   0) is a sequence number of the stored tape, and a tape too short for it
//!   is left alone. Writes (`finish`, `save`) return the true `tape-info`.
//!   * `mode` (required): one of
//!     * `alter`: one byte of frame `frame`'s payload changes (the case of an
//!       ASCII letter when there is one, so JSON most likely stays JSON; an
//!       empty payload becomes one space, and the byte count says so);
//!     * `drop`: frame `frame` is left out and the later frames renumbered;
//!       `get`, `list` and `search` report one frame and its bytes fewer;
//!     * `reorder`: frames `frame` and `frame + 1` swap payloads, directions,
//!       timestamps (and `not-json` flags); sequence numbers stay;
//!     * `add`: a JSON-RPC notification (`notifications/message`, server to
//!       client, with frame `frame`'s timestamp) is inserted after frame
//!       `frame` and the later frames renumbered; counts include it;
//!     * `digest`: frames are untouched, but `get`, `list` and `search`
//!       report the digest with its last hex digit changed;
//!     * `rechain`: frames as for `alter`, and `get`, `list` and `search`
//!       report the digest recomputed over the tampered frames, so the frames
//!       match it (a provider that rewrites the chain and the stored digest:
//!       only the seal can tell). To do so, every tape reported is read
//!       whole, in pages of 256 frames: the cost of a `read-frames` of the
//!       tape per tape in a `get`, `list` or `search` answer. A tape without
//!       a digest is reported without one;
//!     * `swap`: the two tapes named by `tapes` exchange everything but
//!       their ids, as if a provider had swapped two rows: reads of ended
//!       tape A (`get`, `list` and `search` entries, `read-frames`) return
//!       tape B's state, counts, end time, digest, seal, header (all of it
//!       but `id`: session, name, tags, creation time, envelope) and
//!       frames, under A's id, and reads of B return A's. When either tape
//!       is missing or recording, neither is swapped;
//!     * `header`: `get`, `list` and `search` report the header with
//!       ` (edited)` appended to its name and the tag
//!       `("edited-by", "faulty")` added after the others;
//!     * `unseal`: `get`, `list` and `search` report no seal (the envelope
//!       still says the tape is to be sealed).
//!   * `frame` (default 0): which frame (ignored by `digest`, `swap`,
//!     `header` and `unseal`).
//!   * `tapes` (required with `swap`, refused otherwise): the two tapes to
//!     swap, exactly two different valid tape ids, e.g.
//!     `{"mode": "swap", "tapes": ["A", "B"]}`.
//!
//!   Every tampered tape is self-consistent: sequence numbers run from 0
//!   without gaps, `get`'s counts match what `read-frames` returns, and any
//!   paging (`from-seq`, `max-frames`, `max-bytes`) reads the same sequence.
//!   A frame's terms and attributes travel with its payload (`reorder`
//!   swaps them too; the frame `add` inserts carries the terms the host
//!   derives for it; `swap` shows the other tape's frames as stored). The
//!   header (its envelope included) and the seal are returned as stored,
//!   except that `swap` shows the other tape's, `header` edits the header
//!   and `unseal` leaves the seal out: the frame modes and `digest` change
//!   frames, counts or the digest, never the seal, which is what the host's
//!   seal check catches. `list` and `search` select tapes by what is stored
//!   (their filters and terms see the true tapes) and report the selected
//!   ones tampered. `stats` is not tampered with.
//!
//! # Call counters
//!
//! The host discards an instance after a trap or a timeout, and the next
//! instance runs `init` again, so calls are counted in files under
//! `<root>/.faults/` (where fs-store never looks; see `counters.rs`), and a
//! call is counted *before* its fault fires: a trapping call does not trap
//! again in the next instance unless its rule says so. Counters are per rule
//! index and outlive the provider: use a fresh root (or remove `.faults`)
//! for every test.

use std::time::Duration;

mod config;
mod counters;
mod garbage;
mod tamper;

use config::{Call, Config, Fault, Rule, Tamper};
use counters::Counters;
use fs_store::{FsStore, FsWriter};
use tapedeck_guest_sdk::{TapeStorage, TapeWriter, log};
use tapedeck_types as tt;

/// What `init` set up.
struct Faulty {
    store: FsStore,
    faults: Vec<Rule>,
    tamper: Option<Tamper>,
    counters: Counters,
}

/// A fired rule whose effect depends on the call.
enum Injected {
    /// `ack-then-lose`, with the error to return where it acts as `error`.
    AckThenLose(tt::StorageError),
    /// `garbage`, with the error to return where it acts as `error`.
    Garbage(tt::StorageError),
}

impl Injected {
    /// The outcome where the call has no special behaviour for the fault.
    fn error(self) -> tt::StorageError {
        match self {
            Injected::AckThenLose(e) | Injected::Garbage(e) => e,
        }
    }
}

/// Loops forever without calling the host.
fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Blocks forever in a WASI sleep.
fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Counts this call for every rule on `call` and carries out the rules that
/// fire: `error` returns the error, `trap` / `spin` / `hang` never return,
/// `slow` sleeps; `ack-then-lose` and `garbage` are left to the caller.
fn inject(
    faults: &[Rule],
    counters: &Counters,
    call: Call,
) -> Result<Option<Injected>, tt::StorageError> {
    let mut fired = Vec::new();
    for (i, rule) in faults.iter().enumerate() {
        if rule.call != call {
            continue;
        }
        let n = counters.take(i, |n| rule.spent_after(n)).map_err(|e| {
            tt::StorageError::io(format!(
                "faulty provider: cannot count {} calls in {}: {e}",
                call.as_str(),
                counters.dir().display()
            ))
        })?;
        if let Some(n) = n
            && rule.fires_on(n)
        {
            fired.push((i, n));
        }
    }
    for (i, n) in fired {
        let rule = &faults[i];
        let label = format!("{} #{n} (faults[{i}])", call.as_str());
        log::warn(&format!(
            "faulty provider: injecting {} on {label}",
            rule.fault.as_str()
        ));
        let error = || tt::StorageError::new(rule.kind, format!("injected fault: {label}"));
        match rule.fault {
            Fault::Slow(ms) => std::thread::sleep(Duration::from_millis(ms)),
            Fault::Error => return Err(error()),
            Fault::Trap => panic!("injected trap: {label}"),
            Fault::Spin => spin(),
            Fault::Hang => hang(),
            Fault::AckThenLose => return Ok(Some(Injected::AckThenLose(error()))),
            Fault::Garbage => return Ok(Some(Injected::Garbage(error()))),
        }
    }
    Ok(None)
}

impl Faulty {
    /// Runs the faults for `call` (the caller handles `ack-then-lose` and
    /// `garbage`).
    fn enter(&self, call: Call) -> Result<Option<Injected>, tt::StorageError> {
        inject(&self.faults, &self.counters, call)
    }

    /// Runs the faults for a `call` on which every fault that returns acts
    /// as `error`.
    fn enter_plain(&self, call: Call) -> Result<(), tt::StorageError> {
        match self.enter(call)? {
            Some(injected) => Err(injected.error()),
            None => Ok(()),
        }
    }

    /// `info` as reported under the `tamper` setting.
    fn tampered(&self, info: tt::TapeInfo) -> Result<tt::TapeInfo, tt::StorageError> {
        match &self.tamper {
            Some(t) => t.info(&self.store, info),
            None => Ok(info),
        }
    }

    /// A page as reported under the `tamper` setting.
    fn tampered_page(&self, page: tt::TapePage) -> Result<tt::TapePage, tt::StorageError> {
        Ok(tt::TapePage {
            tapes: page
                .tapes
                .into_iter()
                .map(|t| self.tampered(t))
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    /// `read-frames` under the `tamper` setting.
    fn tampered_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<tt::Frame>, tt::StorageError> {
        match &self.tamper {
            Some(t) => t.frames(&self.store, id, from_seq, max_frames, max_bytes),
            None => self.store.read_frames(id, from_seq, max_frames, max_bytes),
        }
    }
}

/// Tampering reads the fs store (a `swap` also reads the other tape).
impl tamper::Store for FsStore {
    type Error = tt::StorageError;

    fn tape(&self, id: &str) -> Result<Option<tt::TapeInfo>, tt::StorageError> {
        match self.get(id) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind == tt::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn frames(
        &self,
        id: &str,
        from: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<tt::Frame>, tt::StorageError> {
        self.read_frames(id, from, max_frames, max_bytes)
    }
}

impl TapeStorage for Faulty {
    type Writer = FsWriter;

    fn init(config: &str) -> Result<Self, tt::StorageError> {
        let config = Config::from_json(config)?;
        let counters = Counters::new(&config.fs.root);
        if let Some(injected) = inject(&config.faults, &counters, Call::Init)? {
            return Err(injected.error());
        }
        let root = config.fs.root.display().to_string();
        let store = FsStore::open(config.fs)?;
        log::debug(&format!(
            "faulty provider: fs store opened at {root}, {} fault rule(s), tamper {:?}",
            config.faults.len(),
            config.tamper
        ));
        Ok(Faulty {
            store,
            faults: config.faults,
            tamper: config.tamper,
            counters,
        })
    }

    fn info(&self) -> tt::ProviderInfo {
        tt::ProviderInfo {
            name: "faulty".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: FsStore::capabilities(),
        }
    }

    fn create(&mut self, header: tt::TapeHeader) -> Result<FsWriter, tt::StorageError> {
        self.enter_plain(Call::Create)?;
        self.store.create(header)
    }

    fn resume(&mut self, id: &str) -> Result<FsWriter, tt::StorageError> {
        self.enter_plain(Call::Resume)?;
        self.store.resume(id)
    }

    fn save(
        &mut self,
        header: tt::TapeHeader,
        frames: Vec<tt::Frame>,
        summary: tt::TapeSummary,
        reason: tt::EndReason,
    ) -> Result<tt::TapeInfo, tt::StorageError> {
        self.enter_plain(Call::Save)?;
        self.store.save(header, &frames, &summary, reason)
    }

    fn get(&mut self, id: &str) -> Result<tt::TapeInfo, tt::StorageError> {
        match self.enter(Call::Get)? {
            None => self.store.get(id).and_then(|info| self.tampered(info)),
            Some(Injected::Garbage(_)) => Ok(garbage::info(id, self.store.get(id).ok())),
            Some(injected) => Err(injected.error()),
        }
    }

    fn read_frames(
        &mut self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<tt::Frame>, tt::StorageError> {
        match self.enter(Call::ReadFrames)? {
            None => self.tampered_frames(id, from_seq, max_frames, max_bytes),
            Some(Injected::Garbage(_)) => {
                let real = self
                    .store
                    .read_frames(id, from_seq, max_frames.max(1), max_bytes)
                    .unwrap_or_default();
                Ok(garbage::frames(from_seq, real))
            }
            Some(injected) => Err(injected.error()),
        }
    }

    fn delete(&mut self, id: &str) -> Result<(), tt::StorageError> {
        self.enter_plain(Call::Delete)?;
        self.store.delete(id)
    }

    fn list(
        &mut self,
        filter: &tt::TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<tt::TapePage, tt::StorageError> {
        match self.enter(Call::List)? {
            None => self
                .store
                .list(filter, cursor, limit)
                .and_then(|p| self.tampered_page(p)),
            Some(Injected::Garbage(_)) => {
                let real = self.store.list(filter, cursor, limit);
                Ok(garbage::page(real.unwrap_or_default(), filter, limit))
            }
            Some(injected) => Err(injected.error()),
        }
    }

    fn search(
        &mut self,
        query: &tt::SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<tt::TapePage, tt::StorageError> {
        match self.enter(Call::Search)? {
            None => self
                .store
                .search(query, cursor, limit)
                .and_then(|p| self.tampered_page(p)),
            Some(Injected::Garbage(_)) => {
                let real = self.store.search(query, cursor, limit);
                Ok(garbage::page(
                    real.unwrap_or_default(),
                    &query.filter,
                    limit,
                ))
            }
            Some(injected) => Err(injected.error()),
        }
    }

    fn stats(&mut self) -> Result<tt::StorageStats, tt::StorageError> {
        match self.enter(Call::Stats)? {
            None => self.store.stats(),
            Some(Injected::Garbage(_)) => Ok(garbage::stats()),
            Some(injected) => Err(injected.error()),
        }
    }

    /// fs-store's `append_many`, with the faults of `append-many` (which
    /// has no error of its own: an error is every entry's).
    fn append_many(&mut self, appends: Vec<tt::TapeAppend>) -> Vec<Result<u64, tt::StorageError>> {
        let every = |e: tt::StorageError| appends.iter().map(|_| Err(e.clone())).collect();
        match self.enter(Call::AppendMany) {
            Err(e) => every(e),
            Ok(None) => self.store.append_many(&appends),
            Ok(Some(Injected::AckThenLose(_))) => appends
                .iter()
                .map(|a| {
                    let next = self.store.get(&a.id)?.frame_count;
                    Ok(a.frames
                        .last()
                        .map_or(next, |f| next.max(f.seq.saturating_add(1))))
                })
                .collect(),
            Ok(Some(Injected::Garbage(_))) => self
                .store
                .append_many(&appends)
                .into_iter()
                .map(|r| r.map(|_| garbage::SEQ))
                .collect(),
        }
    }
}

/// The `tape-writer` resource: an [`FsWriter`], with the faults of the
/// writer's functions (counted through the instance's [`Faulty`]).
impl TapeWriter<Faulty> for FsWriter {
    fn next_seq(&mut self, f: &mut Faulty) -> u64 {
        // `next-seq` cannot report an error: `error` and `ack-then-lose` are
        // refused for it by the config, so only a failure to count is left.
        match f.enter(Call::NextSeq) {
            Ok(Some(Injected::Garbage(_))) => garbage::SEQ,
            Ok(_) => FsWriter::next_seq(self),
            Err(e) => {
                // Reported as the component-model error it used to be.
                let e =
                    tapedeck_guest_sdk::bindings::tapedeck::storage::types::StorageError::from(e);
                panic!("faulty provider: next-seq: {e:?}")
            }
        }
    }

    fn append(&mut self, f: &mut Faulty, frames: Vec<tt::Frame>) -> Result<u64, tt::StorageError> {
        match f.enter(Call::Append)? {
            None => FsWriter::append(self, &frames),
            Some(Injected::AckThenLose(_)) => {
                let next = FsWriter::next_seq(self);
                Ok(frames
                    .last()
                    .map_or(next, |f| next.max(f.seq.saturating_add(1))))
            }
            Some(Injected::Garbage(_)) => {
                FsWriter::append(self, &frames)?;
                Ok(garbage::SEQ)
            }
        }
    }

    fn finish(
        &mut self,
        f: &mut Faulty,
        summary: tt::TapeSummary,
        reason: tt::EndReason,
    ) -> Result<tt::TapeInfo, tt::StorageError> {
        match f.enter(Call::Finish)? {
            None => FsWriter::finish(self, &summary, reason),
            Some(Injected::AckThenLose(_)) => {
                let mut info = f.store.get(self.id())?;
                info.state = reason.end_state();
                info.frame_count = summary.frame_count;
                info.byte_count = summary.byte_count;
                info.ended_at_us = Some(summary.ended_at_us);
                info.digest = summary.digest;
                info.seal = summary.seal;
                Ok(info)
            }
            Some(injected) => Err(injected.error()),
        }
    }

    fn abort(&mut self, f: &mut Faulty, reason: &str) -> Result<(), tt::StorageError> {
        f.enter_plain(Call::Abort)?;
        FsWriter::abort(self, reason)
    }
}

tapedeck_guest_sdk::export_provider!(Faulty);

#[cfg(test)]
mod tests {
    use super::*;
    use config::TamperMode;

    /// A provider over a fresh fs store in `dir`, with no faults and the
    /// given tamper setting.
    fn faulty(dir: &std::path::Path, tamper: Tamper) -> Faulty {
        let fs = fs_store::FsConfig {
            root: dir.to_path_buf(),
            fsync: false,
        };
        Faulty {
            counters: Counters::new(&fs.root),
            store: FsStore::open(fs).unwrap(),
            faults: Vec::new(),
            tamper: Some(tamper),
        }
    }

    /// Saves an ended tape `id` of `n` frames (payloads naming the tape).
    fn save(f: &mut Faulty, id: &str, n: u64) -> Vec<tt::Frame> {
        let frames: Vec<tt::Frame> = (0..n)
            .map(|seq| {
                let payload = format!(r#"{{"jsonrpc":"2.0","id":{seq},"tape":"{id}"}}"#);
                tt::Frame::new(
                    seq,
                    10 + seq,
                    tt::Direction::ClientToServer,
                    payload.into_bytes(),
                    false,
                )
            })
            .collect();
        let header = tt::TapeHeader {
            id: id.into(),
            session_id: format!("s-{id}"),
            name: format!("tape {id}"),
            tags: vec![("tape".into(), id.into())],
            created_at_us: 1,
            envelope: Some(br#"{"tapedeck-envelope":1}"#.to_vec()),
        };
        let summary = tt::TapeSummary {
            frame_count: n,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: 100 + n,
            digest: Some(tt::DigestChain::over(&frames).hex()),
            seal: Some(format!("seal of {id}").into_bytes()),
        };
        f.save(header, frames.clone(), summary, tt::EndReason::Completed)
            .unwrap();
        frames
    }

    fn frames(f: &mut Faulty, id: &str) -> Vec<tt::Frame> {
        f.read_frames(id, 0, u32::MAX, u64::MAX).unwrap()
    }

    #[test]
    fn swap_through_the_fs_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = faulty(
            dir.path(),
            Tamper {
                mode: TamperMode::Swap,
                frame: 0,
                tapes: Some(["a".into(), "b".into()]),
            },
        );
        let a = save(&mut f, "a", 3);
        let b = save(&mut f, "b", 5);
        let c = save(&mut f, "c", 2);
        let (info_a, info_b) = (f.store.get("a").unwrap(), f.store.get("b").unwrap());
        assert_eq!(frames(&mut f, "a"), b);
        assert_eq!(frames(&mut f, "b"), a);
        assert_eq!(frames(&mut f, "c"), c);
        assert_eq!(f.read_frames("a", 4, 1, 0).unwrap(), b[4..]);
        let got = f.get("a").unwrap();
        assert_eq!(got.header.id, "a");
        assert_eq!(got.header.name, "tape b");
        assert_eq!((got.frame_count, got.seal), (5, info_b.seal.clone()));
        assert_eq!(got.digest, info_b.digest);
        let page = f.list(&tt::TapeFilter::default(), None, 10).unwrap();
        let by_id = |id: &str| page.tapes.iter().find(|t| t.header.id == id).unwrap();
        assert_eq!(by_id("b").header.name, "tape a");
        assert_eq!(by_id("b").digest, info_a.digest);
        assert_eq!(*by_id("c"), f.store.get("c").unwrap());
        let found = f.search(&tt::SearchQuery::default(), None, 10).unwrap();
        assert_eq!(found.tapes, page.tapes);

        // Without tape b, nothing is swapped.
        f.delete("b").unwrap();
        assert_eq!(f.get("a").unwrap(), info_a);
        assert_eq!(frames(&mut f, "a"), a);
    }

    #[test]
    fn rechain_header_and_unseal_through_the_fs_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = faulty(
            dir.path(),
            Tamper {
                mode: TamperMode::Rechain,
                frame: 1,
                tapes: None,
            },
        );
        let stored = save(&mut f, "t", 4);
        let info = f.store.get("t").unwrap();
        let read = frames(&mut f, "t");
        assert_ne!(read, stored);
        let got = f.get("t").unwrap();
        assert_eq!(got.digest, Some(tt::DigestChain::over(&read).hex()));
        assert_ne!(got.digest, info.digest);
        assert_eq!(got.seal, info.seal);

        f.tamper = Some(Tamper {
            mode: TamperMode::Header,
            frame: 0,
            tapes: None,
        });
        let got = f.get("t").unwrap();
        assert_eq!(got.header.name, "tape t (edited)");
        assert_eq!(
            got.header.tags.last().unwrap(),
            &("edited-by".into(), "faulty".into())
        );
        assert_eq!(
            (got.digest, got.seal),
            (info.digest.clone(), info.seal.clone())
        );
        assert_eq!(frames(&mut f, "t"), stored);

        f.tamper = Some(Tamper {
            mode: TamperMode::Unseal,
            frame: 0,
            tapes: None,
        });
        let page = f.list(&tt::TapeFilter::default(), None, 10).unwrap();
        assert_eq!(page.tapes, [tt::TapeInfo { seal: None, ..info }]);
        assert_eq!(frames(&mut f, "t"), stored);
    }
}
