//! zstd, with the dictionaries this tapedeck ships.
//!
//! A dictionary is data trained on MCP traffic, so that a frame of a few
//! hundred bytes (most of a session) compresses as well as a long file:
//! the keys, method names and schema boilerplate every message repeats
//! are in the dictionary instead of in each frame. Each has an id recorded
//! in the tape's envelope; a dictionary, once shipped, never changes and is
//! never removed (old tapes name it), a better one gets a new id.

use std::cell::RefCell;
use std::io;

/// A shipped dictionary.
#[derive(Debug)]
pub struct Dictionary {
    /// Its id, as envelopes name it.
    pub id: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// Every dictionary this tapedeck can read, oldest first; the last is the
/// one new tapes use. `mcp-1`: 16 KiB trained by
/// `scripts/train-dictionary.sh` on 4,951 payloads of 60 sessions between
/// the official MCP Python SDK's client and a server of its own
/// (`scripts/dictionary/`), both protocol eras.
static DICTIONARIES: &[Dictionary] = &[Dictionary {
    id: "mcp-1",
    bytes: include_bytes!("dictionaries/mcp-1.dict"),
}];

/// The compression level: zstd's default, fast enough for the recorder
/// and close to the best ratio on small frames with a dictionary.
const LEVEL: i32 = 3;

/// The dictionary new tapes are compressed with, if any.
pub fn current() -> Option<&'static Dictionary> {
    DICTIONARIES.last()
}

/// The dictionary named `id`.
pub fn by_id(id: &str) -> Option<&'static Dictionary> {
    DICTIONARIES.iter().find(|d| d.id == id)
}

thread_local! {
    /// One compressor and one decompressor per thread and dictionary (a
    /// context with a dictionary loaded is costly to make).
    static CONTEXTS: RefCell<Vec<(Option<&'static str>, zstd::bulk::Compressor<'static>, zstd::bulk::Decompressor<'static>)>> =
        const { RefCell::new(Vec::new()) };
}

fn with_contexts<T>(
    dictionary: Option<&'static Dictionary>,
    f: impl FnOnce(
        &mut zstd::bulk::Compressor<'static>,
        &mut zstd::bulk::Decompressor<'static>,
    ) -> io::Result<T>,
) -> io::Result<T> {
    CONTEXTS.with(|cell| {
        let mut contexts = cell.borrow_mut();
        let id = dictionary.map(|d| d.id);
        let at = match contexts.iter().position(|(d, _, _)| *d == id) {
            Some(i) => i,
            None => {
                let bytes = dictionary.map_or(&[][..], |d| d.bytes);
                contexts.push((
                    id,
                    zstd::bulk::Compressor::with_dictionary(LEVEL, bytes)?,
                    zstd::bulk::Decompressor::with_dictionary(bytes)?,
                ));
                contexts.len() - 1
            }
        };
        let (_, c, d) = &mut contexts[at];
        f(c, d)
    })
}

/// `data` compressed (with `dictionary`, if any).
pub fn compress(
    dictionary: Option<&'static Dictionary>,
    data: &[u8],
) -> Result<Vec<u8>, super::CodecError> {
    with_contexts(dictionary, |c, _| c.compress(data))
        .map_err(|e| super::CodecError::Compress(e.to_string()))
}

/// `data` decompressed to exactly `len` bytes at most.
pub fn decompress(
    dictionary: Option<&'static Dictionary>,
    data: &[u8],
    len: usize,
) -> io::Result<Vec<u8>> {
    with_contexts(dictionary, |_, d| d.decompress(data, len))
}
