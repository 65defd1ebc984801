//! The storage logic of tapedeck's default filesystem provider.
//!
//! Plain Rust over `std::fs`: it runs natively (tests, the native benchmark
//! baseline) and inside a `wasm32-wasip2` component (`fs-provider`), where
//! `std::fs` goes through WASI to the directory the operator granted.
//!
//! # On-disk layout
//!
//! ```text
//! <root>/index.log         catalog log: append-only `created` / `ended` / `deleted` entries
//! <root>/tapes/<id>.tape   one append-only file of records per tape
//! <root>/tapes/<id>.seek   sparse seek index: a 48-byte entry per 64 frames
//! <root>/tmp/              files being written before they are published
//! ```
//!
//! Every record in a tape file and in the log is `magic | kind | len | crc32 |
//! body` (see `record.rs`). A tape file holds a header record (JSON: the
//! header with the host's envelope, and a random *nonce* naming this
//! incarnation of the id), then frame records (binary; payload bytes, terms
//! and attributes verbatim), each preceded by a terms record when it carries
//! terms no earlier frame of the tape had, then at most one end record
//! (JSON: state, totals, the host's digest and seal, the sorted term set).
//! That is format 2; tapes written in format 1 (no terms, attributes,
//! envelope or seal; method records the provider had parsed out of the
//! payloads) are still read, as having none of them (see `tapefile.rs`).
//!
//! The store never looks into a payload: the terms `search` matches are the
//! host's, given with each frame and compared by exact equality.
//!
//! # Who is the source of truth
//!
//! The tape file is: the catalog log is a cache that lets `list`, `get` and
//! `search` answer without opening tape files, and that every instance
//! replays at open and then tails (a `stat` per operation, and a read of the
//! new bytes). Every catalog change is one small entry written with one
//! `write` to a file opened for appending, so concurrent instances never
//! rewrite or interleave each other's entries. Nothing is ever rewritten in
//! place: tape files and the log only grow, except that `resume` cuts a torn
//! tail off a tape file. Compaction of the log (dropping deleted tapes) is
//! future work: it needs an atomic swap that concurrent tailing instances can
//! detect, which plain WASI files do not offer.
//!
//! # Crash safety (an instance may stop between any two calls)
//!
//! * `create` / `save` write the whole new tape file in `tmp/` (fsynced when
//!   `fsync` is on), then `hard_link` it to `tapes/<id>.tape`, which fails if
//!   the id exists: the file appears complete or not at all, and two
//!   instances cannot both create one id. Then the `created` entry is logged.
//!   Stopped in between, the file has no entry: the next `open` (or a `get`
//!   of that id) *adopts* it by logging the entry.
//! * `append` writes the batch in one write at the end of the valid data; a
//!   failed write is cut back. A torn tail (power loss, or a write cut by the
//!   host) fails its CRC: readers stop before it, `resume` truncates it. A
//!   terms record not followed by its frame belongs to the torn tail.
//! * `append_many` does, per entry, what an `append` does, through the
//!   tape's writer in this store if it has a current one, else after the
//!   tape's valid data as the catalog knows it (cutting a torn tail first,
//!   as `resume` does). Entries share one lock and one catalog refresh.
//! * `finish` fsyncs the frames, writes the end record, fsyncs again, then
//!   logs `ended`. Stopped before logging, every instance still sees the end
//!   in the file (a recording tape is always checked against its file), and
//!   the next `open` logs it.
//! * `delete` logs `deleted` (fsynced) first, then removes the files. A file
//!   left by an interrupted delete has a deleted nonce (a *zombie*): it is
//!   never adopted and is removed at the next `open` or `create` of the id.
//!   Files are renamed aside and checked before removal, so a new tape
//!   created concurrently under the same id is never removed.
//! * The seek index is written after the frames it points to and every entry
//!   is checked against the tape before use, so it may lag or be lost
//!   without harm; `resume` repairs it.
//!
//! # Costs
//!
//! `append` is O(batch); `read_frames` reads at most 63 frames before
//! `from_seq` (with an intact seek index); `get`, `list` and `stats` of
//! ended tapes touch no tape file; a recording tape costs a `stat`, plus a
//! read of what was appended since the last look; `search` by terms uses
//! per-tape term sets in memory (interned, for ended tapes; for recording
//! ones, read once from the chain of terms records, O(distinct terms), then
//! kept current by appends), by text it streams only the frames of tapes
//! that pass every other condition. `append_many` costs, per entry, what an
//! `append` costs, plus opening the tape file when this store has no writer
//! for it. `open` replays the whole log once and lists `tapes/`.
//!
//! # Source map
//!
//! `record.rs` (record framing), `tapefile.rs` (tape records, formats 1
//! and 2, scanning), `stored.rs` (the header and opaque bytes in JSON),
//! `seek.rs` (seek index), `indexlog.rs` (catalog log), `catalog.rs`
//! (in-memory catalog, replay rules), `cursor.rs`, `config.rs`, `store.rs`
//! (the public operations, `append_many`), `batch.rs` (checking and
//! encoding frames), `writer.rs` (appends, finish, abort), `inner.rs` (log
//! tailing, live counts, term sets), `listing.rs` (list and search),
//! `search.rs` (substrings), `publish.rs` (temp file + link), `recovery.rs`
//! (adoption, zombies, reconciliation).

#![deny(missing_docs)]

mod batch;
mod catalog;
mod clock;
mod config;
mod cursor;
mod errors;
mod indexlog;
mod inner;
mod listing;
mod publish;
mod record;
mod recovery;
mod search;
mod seek;
mod store;
mod stored;
mod tapefile;
mod writer;

pub use config::FsConfig;
pub use store::FsStore;
pub use writer::FsWriter;
