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

/// The compression level. On recorded SDK traffic (`tapedeck-codec-bench`)
/// 6 stores 21.9% of the payload bytes against 23.4% at zstd's default 3
/// and 21.2% at 9, at about 80,000 frames a second on one core, several
/// times what a sandboxed provider appends; higher levels gain almost
/// nothing on frames this small.
const LEVEL: i32 = 6;

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
                let mut compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, bytes)?;
                // The envelope names the dictionary: its id in every frame
                // would be four bytes per frame for nothing.
                compressor.set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false))?;
                contexts.push((
                    id,
                    compressor,
                    zstd::bulk::Decompressor::with_dictionary(bytes)?,
                ));
                contexts.len() - 1
            }
        };
        let (_, c, d) = &mut contexts[at];
        f(c, d)
    })
}

/// The four bytes every zstd frame starts with.
const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();

/// `data` compressed (with `dictionary`, if any) as a *compact* zstd frame:
/// without the magic number and the dictionary id (constant in a tape), with
/// the content size. Eight bytes a frame, which on MCP traffic (a few
/// hundred bytes a message) is a few percent of what is stored.
pub fn compress(
    dictionary: Option<&'static Dictionary>,
    data: &[u8],
) -> Result<Vec<u8>, super::CodecError> {
    let mut frame = with_contexts(dictionary, |c, _| c.compress(data))
        .map_err(|e| super::CodecError::Compress(e.to_string()))?;
    if !frame.starts_with(&MAGIC) {
        return Err(super::CodecError::Compress(
            "zstd made a frame without its magic number".into(),
        ));
    }
    frame.drain(..MAGIC.len());
    Ok(frame)
}

/// A compact frame ([`compress`]) decompressed; its claimed content size is
/// checked against `max` before anything is allocated, and against what it
/// decompresses to after.
pub fn decompress_compact(
    dictionary: Option<&'static Dictionary>,
    compact: &[u8],
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut frame = Vec::with_capacity(MAGIC.len() + compact.len());
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(compact);
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let len = match zstd::zstd_safe::get_frame_content_size(&frame) {
        Ok(Some(len)) => usize::try_from(len).unwrap_or(usize::MAX),
        Ok(None) => return Err(invalid("the frame does not say its content size")),
        Err(_) => return Err(invalid("the frame header is not zstd's")),
    };
    if len > max {
        return Err(invalid(&format!(
            "the frame claims {len} bytes, more than the {max} a payload may have"
        )));
    }
    let data = with_contexts(dictionary, |_, d| d.decompress(&frame, len))?;
    if data.len() != len {
        return Err(invalid("the frame is not the length it claims"));
    }
    Ok(data)
}

/// A standard zstd frame (tapes stored before compact frames) decompressed
/// to exactly `len` bytes at most.
pub fn decompress(
    dictionary: Option<&'static Dictionary>,
    data: &[u8],
    len: usize,
) -> io::Result<Vec<u8>> {
    with_contexts(dictionary, |_, d| d.decompress(data, len))
}
