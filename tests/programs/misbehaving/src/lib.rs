//! A deliberately bad storage provider, for the host's own tests.
//!
//! It keeps tapes in instance memory (so they vanish when the host recycles
//! the instance) and breaks the contract in ways the conformance suite must
//! report with a readable reason:
//!
//! * `append` does not skip frames it has already stored (a redelivered batch
//!   is stored twice);
//! * tape ids are not validated (`../x` is accepted);
//! * `list` ignores every filter except the session id;
//! * with the configuration `{"append-many": "short"}`, `append-many`
//!   answers one result fewer than it was given entries (`"extra"`: one
//!   more); without it, each entry is what `resume` and `append` would do.
//!
//! `get` with one of these ids misbehaves instead of answering:
//! `trap` panics, `loop` spins forever, `sleep` blocks in a host call for an
//! hour, `oom` allocates until memory runs out, `deep` recurses until the
//! stack overflows, `noisy` writes to stdout and stderr and floods the log. Any other call keeps working, so tests can check that the
//! host recovers. `get("probe")` reports what the sandbox lets it see
//! (environment, arguments, `/etc/passwd`, a TCP connection, the `/data`
//! directory) as a JSON object in the tape's name.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

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

struct Tape {
    info: TapeInfo,
    frames: Vec<Frame>,
}

/// How `append-many` breaks the contract (the configuration's `append-many`).
#[derive(Clone, Copy)]
enum AppendMany {
    /// It does not: one result per entry.
    Honest,
    /// One result fewer than entries.
    Short,
    /// One result more than entries.
    Extra,
}

thread_local! {
    static TAPES: RefCell<BTreeMap<String, Tape>> = const { RefCell::new(BTreeMap::new()) };
    static APPEND_MANY: Cell<AppendMany> = const { Cell::new(AppendMany::Honest) };
}

fn with_tape<T>(
    id: &str,
    f: impl FnOnce(&mut Tape) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    TAPES.with_borrow_mut(|t| match t.get_mut(id) {
        Some(tape) => f(tape),
        None => Err(StorageError::NotFound(format!("no tape {id}"))),
    })
}

fn new_info(header: TapeHeader) -> TapeInfo {
    TapeInfo {
        header,
        state: TapeState::Recording,
        frame_count: 0,
        byte_count: 0,
        ended_at: None,
        digest: None,
        seal: None,
    }
}

/// Recurses until the stack overflows (the guard keeps the compiler from
/// proving it never returns).
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = [n; 64];
    std::hint::black_box(&pad);
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1) + pad[3]
}

/// What the sandbox lets this guest see, as a JSON object.
fn probe() -> String {
    let outcome = |r: std::io::Result<String>| match r {
        Ok(s) => format!("ok: {s}"),
        Err(e) => format!("error: {e}"),
    };
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let args: Vec<String> = std::env::args().collect();
    let passwd = outcome(std::fs::read_to_string("/etc/passwd"));
    let tcp =
        outcome(std::net::TcpStream::connect("127.0.0.1:22").map(|_| "connected".to_string()));
    let root = outcome(std::fs::read_dir("/data").map(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(",")
    }));
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let list = |v: &[String]| {
        format!(
            "[{}]",
            v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(",")
        )
    };
    format!(
        "{{\"env\":{},\"args\":{},\"passwd\":{},\"tcp\":{},\"data\":{}}}",
        list(&env),
        list(&args),
        quote(&passwd),
        quote(&tcp),
        quote(&root)
    )
}

struct Provider;

impl Guest for Provider {
    type TapeWriter = Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        // No JSON parser here: the setting is found in the text, whitespace
        // aside (this guest keeps its dependencies to the bindings).
        let compact: String = config.chars().filter(|c| !c.is_whitespace()).collect();
        let mode = if compact.contains(r#""append-many":"short""#) {
            AppendMany::Short
        } else if compact.contains(r#""append-many":"extra""#) {
            AppendMany::Extra
        } else if compact.contains(r#""append-many""#) {
            return Err(StorageError::InvalidInput(
                "append-many: must be \"short\" or \"extra\"".into(),
            ));
        } else {
            AppendMany::Honest
        };
        APPEND_MANY.set(mode);
        Ok(ProviderInfo {
            name: "misbehaving".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::empty(),
        })
    }

    fn create(header: TapeHeader) -> Result<TapeWriter, StorageError> {
        let id = header.id.clone();
        TAPES.with_borrow_mut(|t| {
            if t.contains_key(&id) {
                return Err(StorageError::AlreadyExists(id.clone()));
            }
            t.insert(
                id.clone(),
                Tape {
                    info: new_info(header),
                    frames: Vec::new(),
                },
            );
            Ok(())
        })?;
        Ok(TapeWriter::new(Writer { id }))
    }

    fn resume(id: String) -> Result<TapeWriter, StorageError> {
        with_tape(&id, |_| Ok(()))?;
        Ok(TapeWriter::new(Writer { id }))
    }

    fn save(
        header: TapeHeader,
        frames: Vec<Frame>,
        summary: TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let id = header.id.clone();
        let mut info = new_info(header);
        info.frame_count = frames.len() as u64;
        info.byte_count = frames.iter().map(|f| f.payload.len() as u64).sum();
        info.ended_at = Some(summary.ended_at);
        info.digest = summary.digest;
        info.seal = summary.seal;
        info.state = match reason {
            EndReason::Completed => TapeState::Finished,
            EndReason::Crashed => TapeState::Crashed,
            EndReason::Aborted => TapeState::Aborted,
        };
        TAPES.with_borrow_mut(|t| {
            t.insert(
                id,
                Tape {
                    info: info.clone(),
                    frames,
                },
            )
        });
        Ok(info)
    }

    fn append_many(appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        let mode = APPEND_MANY.get();
        let mut seen = BTreeSet::new();
        let mut results: Vec<Result<u64, StorageError>> = appends
            .into_iter()
            .map(|a| {
                if !seen.insert(a.id.clone()) {
                    return Err(StorageError::InvalidInput(format!("{} repeated", a.id)));
                }
                Writer { id: a.id }.append(a.frames)
            })
            .collect();
        match mode {
            AppendMany::Honest => {}
            // Contract breach: a result is missing.
            AppendMany::Short => {
                results.pop();
            }
            // Contract breach: a result for an entry that was not given.
            AppendMany::Extra => results.push(Ok(0)),
        }
        results
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        match id.as_str() {
            "trap" => panic!("misbehaving provider: asked to trap"),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "deep" => {
                std::hint::black_box(recurse(0));
            }
            "noisy" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                for i in 0..1000 {
                    tapedeck::storage::log::emit(
                        tapedeck::storage::log::Level::Info,
                        &format!("log line {i}"),
                    );
                }
            }
            "probe" => {
                let mut info = new_info(TapeHeader {
                    id,
                    session_id: String::new(),
                    name: probe(),
                    tags: Vec::new(),
                    created_at: 0,
                    envelope: None,
                });
                info.state = TapeState::Finished;
                return Ok(info);
            }
            _ => {}
        }
        with_tape(&id, |t| Ok(t.info.clone()))
    }

    fn read_frames(
        id: String,
        from_seq: u64,
        max_frames: u32,
        _max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        with_tape(&id, |t| {
            Ok(t.frames
                .iter()
                .skip(from_seq as usize)
                .take(max_frames as usize)
                .cloned()
                .collect())
        })
    }

    fn delete(_id: String) -> Result<(), StorageError> {
        Err(StorageError::Unsupported("delete".into()))
    }

    fn list(
        filter: TapeFilter,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        let skip: usize = match cursor {
            Some(c) => c
                .parse()
                .map_err(|_| StorageError::InvalidInput(format!("bad cursor {c}")))?,
            None => 0,
        };
        TAPES.with_borrow(|t| {
            let mut all: Vec<&TapeInfo> = t
                .values()
                .map(|t| &t.info)
                .filter(|i| {
                    filter
                        .session_id
                        .as_ref()
                        .is_none_or(|s| *s == i.header.session_id)
                })
                .collect();
            all.sort_by(|a, b| {
                (b.header.created_at, &b.header.id).cmp(&(a.header.created_at, &a.header.id))
            });
            let page: Vec<TapeInfo> = all
                .iter()
                .skip(skip)
                .take(limit as usize)
                .map(|i| (*i).clone())
                .collect();
            let next = skip + page.len();
            Ok(TapePage {
                next_cursor: (next < all.len()).then(|| next.to_string()),
                tapes: page,
            })
        })
    }

    fn search(_q: SearchQuery, _c: Option<String>, _l: u32) -> Result<TapePage, StorageError> {
        Err(StorageError::Unsupported("search".into()))
    }

    fn stats() -> Result<StorageStats, StorageError> {
        TAPES.with_borrow(|t| {
            Ok(StorageStats {
                tape_count: t.len() as u64,
                recording_count: t
                    .values()
                    .filter(|t| t.info.state == TapeState::Recording)
                    .count() as u64,
                frame_count: t.values().map(|t| t.info.frame_count).sum(),
                byte_count: t.values().map(|t| t.info.byte_count).sum(),
                stored_bytes: 0,
            })
        })
    }
}

struct Writer {
    id: String,
}

impl GuestTapeWriter for Writer {
    fn next_seq(&self) -> u64 {
        with_tape(&self.id, |t| Ok(t.frames.len() as u64)).unwrap_or(0)
    }

    fn append(&self, frames: Vec<Frame>) -> Result<u64, StorageError> {
        with_tape(&self.id, |t| {
            // Contract breach: redelivered frames are stored again.
            for f in frames {
                t.info.byte_count += f.payload.len() as u64;
                t.frames.push(f);
            }
            t.info.frame_count = t.frames.len() as u64;
            Ok(t.frames.last().map_or(0, |f| f.seq + 1))
        })
    }

    fn finish(&self, summary: TapeSummary, reason: EndReason) -> Result<TapeInfo, StorageError> {
        with_tape(&self.id, |t| {
            t.info.state = match reason {
                EndReason::Completed => TapeState::Finished,
                EndReason::Crashed => TapeState::Crashed,
                EndReason::Aborted => TapeState::Aborted,
            };
            t.info.ended_at = Some(summary.ended_at);
            t.info.digest = summary.digest;
            t.info.seal = summary.seal;
            Ok(t.info.clone())
        })
    }

    fn abort(&self, _reason: String) -> Result<(), StorageError> {
        with_tape(&self.id, |t| {
            t.info.state = TapeState::Aborted;
            Ok(())
        })
    }
}
