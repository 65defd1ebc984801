//! A hostile storage provider, for the host's sandbox tests.
//!
//! It stores tapes correctly in instance memory, but `get(id)` with an attack
//! name runs that attack instead of answering (`read-frames` for the attacks
//! that lie in a page of frames). An attack the sandbox refused answers a
//! tape whose name is `refused: <what the guest saw>`; one that got through
//! answers `ESCAPED: <what>`, so tests can assert refusal precisely. Attacks
//! the host must stop (loops, bombs, malformed answers) never answer.
//!
//! Grants the tests give it: a read-write directory at `/data`, a read-only
//! directory at `/ro` holding `file.txt` and an empty `empty/` (and, for
//! `hang-read`, a FIFO `fifo` with a link `fifo-link` to it), and nothing
//! else. The table-growth bomb is not here: Rust cannot emit `table.grow`
//! (see `../table-bomb/table-bomb.wat`). Configuration (JSON, every key
//! optional):
//!
//! * `other`: the host path of another provider's directory (not granted),
//!   which the escape attacks aim at (`<other>/secret.txt`);
//! * `slow-ms`: every call sleeps this long first;
//! * `always`: an attack run at the start of every call after `init`;
//! * `info-attack`: what `init` says about the provider is an attack (see
//!   `text.rs`, which also holds the `get` attacks through text).
//!
//! `list-attack` (with its settings) makes every `list` and `search` answer
//! lie about its pages; see `paging.rs`.

mod fs;
mod limits;
mod paging;
mod report;
mod store;
mod text;

use std::cell::RefCell;
use std::time::Duration;

/// The raw bindings of the contract and their export glue (which needs
/// `unsafe`): this guest does without the SDK on purpose.
#[allow(unsafe_code, reason = "wit-bindgen's generated glue")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "provider" });

    // Exported only in wasm: natively, symbol names like
    // `tapedeck:storage/…` do not link as a cdylib (rust-lang/rust#141310).
    #[cfg(target_arch = "wasm32")]
    use super::Provider;
    #[cfg(target_arch = "wasm32")]
    export!(Provider);
}
use bindings::*;

use exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, Guest, GuestTapeWriter, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary, TapeWriter,
};
use tapedeck::storage::types::{Capabilities, TapeState};

/// The provider's configuration.
#[derive(Default, Clone)]
struct Config {
    other: String,
    slow: Option<Duration>,
    always: Option<String>,
}

thread_local! {
    static CONFIG: RefCell<Config> = RefCell::new(Config::default());
}

fn config() -> Config {
    CONFIG.with_borrow(|c| c.clone())
}

/// What every call does first: sleep when configured slow, and run the
/// `always` attack.
fn on_call() {
    let c = config();
    if let Some(d) = c.slow {
        std::thread::sleep(d);
    }
    if let Some(attack) = c.always {
        run_attack(&attack);
    }
}

/// A tape info whose name carries an attack's outcome.
fn outcome(id: &str, name: String) -> TapeInfo {
    TapeInfo {
        header: TapeHeader {
            id: id.to_string(),
            session_id: String::new(),
            name,
            tags: Vec::new(),
            created_at: 0,
            envelope: None,
        },
        state: TapeState::Finished,
        frame_count: 0,
        byte_count: 0,
        ended_at: Some(0),
        digest: None,
        seal: None,
    }
}

/// Runs the attack named `id`. `Some(name)` is the outcome to report for an
/// attack that came back; `None` means `id` is not an attack.
fn run_attack(id: &str) -> Option<String> {
    let other = config().other;
    let report = match id {
        // Filesystem: reading outside the grants.
        "passwd" => fs::passwd(),
        "dotdot" => fs::dotdot(&other),
        "absolute" => fs::absolute(&other),
        "symlink-out" => fs::symlink_out(&other),
        "symlink-planted" => fs::symlink_planted(),
        // Filesystem: changing a read-only grant.
        "ro-write" => fs::ro_write(),
        "ro-create" => fs::ro_create(),
        "ro-truncate" => fs::ro_truncate(),
        "ro-rename" => fs::ro_rename(),
        "ro-link" => fs::ro_link(),
        "ro-remove" => fs::ro_remove(),
        "ro-set-times" => fs::ro_set_times(),
        "ro-mkdir" => fs::ro_mkdir(),
        // Filesystem: what the grants do allow (controls for the tests).
        "rw-ok" => fs::rw_ok(),
        "list-data" => fs::list_data(),
        "write-marker" => fs::write_marker(),
        // Limits.
        "infinite-loop" => limits::infinite_loop(),
        "hang-read" => limits::hang_read(),
        "hang-poll" => limits::hang_poll(),
        "memory-bomb" => limits::memory_bomb(),
        "deep-recursion" => limits::deep_recursion(),
        "panic" => limits::panic(),
        "million-resources" => limits::million_resources(),
        "million-handles" => limits::million_handles(),
        "log-flood" => limits::log_flood(),
        "random-bomb" => limits::random_bomb(),
        "random-huge" => limits::random_huge(),
        _ => return None,
    };
    Some(report)
}

struct Provider;

impl Guest for Provider {
    type TapeWriter = store::Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        let v: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| StorageError::InvalidInput(format!("config: {e}")))?;
        let c = Config {
            other: v["other"].as_str().unwrap_or("/nonexistent").to_string(),
            slow: v["slow-ms"].as_u64().map(Duration::from_millis),
            always: v["always"].as_str().map(str::to_string),
        };
        CONFIG.with_borrow_mut(|cfg| *cfg = c);
        paging::configure(&v)?;
        let mut info = ProviderInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::empty() | paging::capabilities(),
        };
        if let Some(attack) = v["info-attack"].as_str() {
            text::info_attack(attack, &mut info);
        }
        Ok(info)
    }

    fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
        on_call();
        store::create(header)
    }

    fn resume(id: String) -> Result<TapeWriter, StorageError> {
        on_call();
        store::resume(id)
    }

    fn save(
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        on_call();
        store::save(header, frames, summary, reason)
    }

    fn append_many(appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        on_call();
        store::append_many(appends)
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        on_call();
        if let Some(answer) = paging::get(&id) {
            return answer;
        }
        if let Some(answer) = text::get(&id) {
            return answer;
        }
        match id.as_str() {
            // Answers with another tape than the one asked for.
            "wrong-id" => return Ok(outcome("some-other-tape", "not the tape asked for".into())),
            "bad-utf8" => return Ok(outcome(&id, limits::bad_utf8())),
            _ => {}
        }
        match run_attack(&id) {
            Some(report) => Ok(outcome(&id, report)),
            None => store::get(&id),
        }
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        on_call();
        match id.as_str() {
            "huge-list" => Ok(limits::huge_list()),
            "out-of-order" => Ok(limits::out_of_order(from_seq)),
            id if text::is_attack(id) => Ok(Vec::new()),
            id if paging::is_listed(id) => Ok(Vec::new()),
            _ => store::read_frames(&id, from_seq, max_frames, max_bytes),
        }
    }

    fn delete(_id: String) -> Result<(), StorageError> {
        on_call();
        Err(StorageError::Unsupported("delete".into()))
    }

    fn list(
        filter: TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        on_call();
        if let Some(page) = paging::page(&filter, cursor.as_deref(), limit) {
            return page;
        }
        store::list(filter, cursor, limit)
    }

    fn search(q: SearchQuery, c: Option<String>, l: u32) -> Result<TapePage, StorageError> {
        on_call();
        if let Some(page) = paging::page(&q.filter, c.as_deref(), l) {
            return page;
        }
        Err(StorageError::Unsupported("search".into()))
    }

    fn stats() -> Result<StorageStats, StorageError> {
        on_call();
        Ok(store::stats())
    }
}

impl GuestTapeWriter for store::Writer {
    fn next_seq(&self) -> u64 {
        self.next()
    }

    fn append(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        on_call();
        self.append_frames(frames)
    }

    fn finish(&self, summary: TapeSummary, reason: EndReason) -> Result<TapeInfo, StorageError> {
        on_call();
        self.end(Some(summary), reason)
    }

    fn abort(&self, _reason: String) -> Result<(), StorageError> {
        on_call();
        self.end(None, EndReason::Aborted).map(|_| ())
    }
}
