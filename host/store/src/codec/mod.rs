//! The host's codec: tapes stored compressed and, once the host has tape
//! keys, encrypted, with blind index terms, so that a provider holds
//! neither payloads nor method names in clear.
//!
//! [`Codec`] is a layer over any [`TapeStore`], below the seal
//! (`Sealing(Codec(provider))`): everything above it (the seal, the
//! recorder, readers, migrate, export) sees tapes exactly as recorded, and
//! only the provider sees the stored form:
//!
//! - **frames**: each payload a body (terms inside when encrypted, zstd
//!   with a shipped dictionary when that makes it smaller), encrypted with
//!   AES-256-GCM-SIV under the tape's own data key, with the tape id, seq,
//!   direction and timestamp as associated data ([`tape`]); `not_json` set;
//!   index terms blinded ([`blind`]);
//! - **the header's envelope**: the host envelope with `codec` (what
//!   [`TapeCodec`] needs: compression, dictionary, cipher, the id of the
//!   KEK that wrapped the data key, the wrapped key) and `original` (the
//!   envelope as given, base64, restored verbatim on the way up);
//! - **the summary**: `byte-count` the stored bytes (what the provider can
//!   check), and the digest field carries the recorded byte count (16 hex
//!   digits) followed by the recorded digest, both restored on the way up.
//!   The seal, made above this layer, covers the recorded form.
//!
//! Header fields (id, session, name, tags, times), frame numbers,
//! timestamps, directions, attributes and sizes stay in clear: listings and
//! the contract need them (`SECURITY.md` says what they reveal).
//!
//! A tape written by this host without the layer, or before keys existed,
//! has no `codec` and passes through unchanged. A search by terms with
//! keys runs twice through the provider, blind terms first, then plain
//! ones (tapes stored unencrypted), behind one cursor (`b:…`, `p:…`). A `--text` search cannot
//! be answered by a provider that stores compressed or encrypted payloads:
//! the layer refuses it with the reason ([`ProviderError::Codec`]).

mod blind;
mod compress;
pub mod keyring;
mod tape;

pub use blind::{BLIND_PREFIX, blind};
pub use keyring::{TapeKeys, kek_id};
pub use tape::{CIPHER, CodecSpec, MAX_PAYLOAD, NONE, TapeCodec, ZSTD};

use crate::envelope::Envelope;
use crate::read::FrameDecoder;
use crate::{Layer, ProviderError, ProviderResult, TapeStore, TapeWriter, WriterLayer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tapedeck_types::terms::MAX_ENVELOPE;
use tapedeck_types::{
    EndReason, Frame, SearchQuery, TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage,
    TapeState, TapeSummary,
};

const CODEC_FIELD: &str = "codec";
const ORIGINAL_FIELD: &str = "original";
/// Tapes whose codec is kept in memory at once (recording ones are also
/// held by their writers).
const CACHED_TAPES: usize = 1024;

/// Why the codec could not do its work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Tape keys could not be made, read or written, or are malformed.
    #[error("tape keys: {0}")]
    Keys(String),
    /// The tape is encrypted with a KEK this host does not have.
    #[error(
        "tape {tape} is encrypted with key {kek}, which this host does not have: add the key ring that holds it (`tapedeck keys show` lists this host's keys)"
    )]
    MissingKey {
        /// The tape.
        tape: String,
        /// The KEK's id.
        kek: String,
    },
    /// The tape's envelope does not describe a codec this host can use.
    #[error("tape {tape}: {why}")]
    Envelope {
        /// The tape.
        tape: String,
        /// What is wrong.
        why: String,
    },
    /// A payload could not be compressed.
    #[error("zstd cannot compress a payload: {0}")]
    Compress(String),
    /// A frame could not be encrypted.
    #[error("tape {tape}: frame {seq} could not be encrypted")]
    Encode {
        /// The tape.
        tape: String,
        /// The frame.
        seq: u64,
    },
}

/// How new tapes are stored; every field has a default (compressed, not
/// encrypted, no keys).
#[derive(Debug, Clone)]
pub struct CodecSettings {
    /// Compress payloads (default true).
    pub compress: bool,
    /// Encrypt new tapes with these keys' current KEK (`None`: stored
    /// unencrypted). Reading uses [`read_keys`](Self::read_keys).
    pub encrypt_with: Option<Arc<TapeKeys>>,
    /// Keys to read encrypted tapes with (usually the same ring).
    pub read_keys: Option<Arc<TapeKeys>>,
}

impl Default for CodecSettings {
    fn default() -> Self {
        CodecSettings {
            compress: true,
            encrypt_with: None,
            read_keys: None,
        }
    }
}

impl CodecSettings {
    /// Nothing encoded: new tapes stored as recorded (existing encoded ones
    /// are still read with `read_keys`).
    pub fn plain(read_keys: Option<Arc<TapeKeys>>) -> Self {
        CodecSettings {
            compress: false,
            encrypt_with: None,
            read_keys,
        }
    }

    /// With `keys`: compressed and encrypted, the host's default once a key
    /// ring exists.
    pub fn encrypted(keys: Arc<TapeKeys>) -> Self {
        CodecSettings {
            compress: true,
            encrypt_with: Some(keys.clone()),
            read_keys: Some(keys),
        }
    }

    /// True when new tapes are stored other than as recorded (compressed
    /// or encrypted).
    pub fn encodes(&self) -> bool {
        self.compress || self.encrypt_with.is_some()
    }
}

/// What the layer knows of one tape.
struct TapeEntry {
    /// `None`: stored as recorded.
    codec: Option<Arc<TapeCodec>>,
    /// Frames and stored bytes appended so far through this layer (for
    /// the stored summary at `finish`).
    stored: Mutex<Stored>,
}

#[derive(Clone, Copy)]
struct Stored {
    frames: u64,
    bytes: u64,
    /// False once frames reached the tape that this layer did not see.
    known: bool,
}

impl Stored {
    /// Takes in an append of `frames` (stored form) answered `next`.
    fn appended(&mut self, frames: &[Frame], next: u64) {
        for f in frames {
            if f.seq == self.frames && f.seq < next {
                self.frames += 1;
                self.bytes += f.payload.len() as u64;
            }
        }
        if self.frames != next {
            self.known = false;
        }
    }
}

/// A store whose tapes are stored encoded (see the module docs).
pub struct Codec<S> {
    inner: S,
    settings: CodecSettings,
    tapes: Mutex<HashMap<String, Arc<TapeEntry>>>,
}

impl<S: TapeStore> Codec<S> {
    /// `inner` with new tapes stored as `settings` say.
    pub fn new(inner: S, settings: CodecSettings) -> Self {
        Codec {
            inner,
            settings,
            tapes: Mutex::new(HashMap::new()),
        }
    }

    /// The store below the codec (what the provider holds).
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// How new tapes are stored.
    pub fn settings(&self) -> &CodecSettings {
        &self.settings
    }

    fn provider(&self) -> String {
        self.inner.provider_info().name.clone()
    }

    fn codec_error(&self, e: CodecError) -> ProviderError {
        ProviderError::Codec {
            provider: self.provider(),
            detail: e.to_string(),
        }
    }

    fn contract(&self, call: &'static str, detail: String) -> ProviderError {
        ProviderError::Contract {
            provider: self.provider(),
            call,
            detail,
        }
    }

    fn remember(&self, id: &str, entry: Arc<TapeEntry>) {
        let mut tapes = self.tapes.lock().expect("codec cache");
        if tapes.len() >= CACHED_TAPES {
            tapes.clear();
        }
        tapes.insert(id.to_string(), entry);
    }

    /// The entry of an existing tape, from the cache or from `info`.
    fn entry_of(&self, info: &TapeInfo) -> ProviderResult<Arc<TapeEntry>> {
        if let Some(e) = self.tapes.lock().expect("codec cache").get(&info.header.id) {
            return Ok(e.clone());
        }
        let codec = match stored_spec(info.header.envelope.as_deref())
            .map_err(|why| self.contract("get", format!("tape {}: {why}", info.header.id)))?
        {
            None => None,
            Some(spec) => Some(Arc::new(
                TapeCodec::open(&info.header.id, spec, self.settings.read_keys.as_deref())
                    .map_err(|e| self.codec_error(e))?,
            )),
        };
        let entry = Arc::new(TapeEntry {
            codec,
            stored: Mutex::new(Stored {
                frames: info.frame_count,
                bytes: info.byte_count,
                known: info.state == TapeState::Recording,
            }),
        });
        self.remember(&info.header.id, entry.clone());
        Ok(entry)
    }

    async fn entry(&self, id: &str) -> ProviderResult<Arc<TapeEntry>> {
        if let Some(e) = self.tapes.lock().expect("codec cache").get(id) {
            return Ok(e.clone());
        }
        let info = self.inner.get(id).await?;
        self.entry_of(&info)
    }

    /// A new tape's codec and its header as stored.
    fn new_tape(&self, header: &mut TapeHeader) -> ProviderResult<Option<Arc<TapeCodec>>> {
        if !self.settings.encodes() {
            return Ok(None);
        }
        let codec = TapeCodec::create(
            &header.id,
            self.settings.compress,
            self.settings.encrypt_with.as_deref(),
        )
        .map_err(|e| self.codec_error(e))?;
        header.envelope = Some(stored_envelope(header.envelope.as_deref(), codec.spec()));
        if header
            .envelope
            .as_ref()
            .is_some_and(|e| e.len() > MAX_ENVELOPE)
        {
            return Err(self.codec_error(CodecError::Envelope {
                tape: header.id.clone(),
                why: format!("its envelope would exceed {MAX_ENVELOPE} bytes once encoded"),
            }));
        }
        Ok(Some(Arc::new(codec)))
    }

    fn encode_all(&self, codec: &TapeCodec, frames: &[Frame]) -> ProviderResult<Vec<Frame>> {
        encode_frames(codec, frames, &self.provider())
    }

    /// `info` as recorded, from `info` as stored.
    fn recorded(&self, call: &'static str, info: TapeInfo) -> ProviderResult<TapeInfo> {
        recorded_info(info).map_err(|(id, why)| self.contract(call, format!("tape {id}: {why}")))
    }

    fn recorded_page(&self, call: &'static str, page: TapePage) -> ProviderResult<TapePage> {
        Ok(TapePage {
            tapes: page
                .tapes
                .into_iter()
                .map(|t| self.recorded(call, t))
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }
}

/// `frames` as `codec` stores them; a failure is `provider`'s codec error.
fn encode_frames(
    codec: &TapeCodec,
    frames: &[Frame],
    provider: &str,
) -> ProviderResult<Vec<Frame>> {
    frames
        .iter()
        .map(|f| {
            codec.encode(f).map_err(|e| ProviderError::Codec {
                provider: provider.to_string(),
                detail: e.to_string(),
            })
        })
        .collect()
}

/// The `codec` of a stored envelope, if it has one.
fn stored_spec(envelope: Option<&[u8]>) -> Result<Option<CodecSpec>, String> {
    let Some(env) = Envelope::of(envelope) else {
        return Ok(None);
    };
    let Some(v) = env.field(CODEC_FIELD) else {
        return Ok(None);
    };
    serde_json::from_value(v.clone())
        .map(Some)
        .map_err(|e| format!("its envelope's codec is malformed ({e})"))
}

/// The envelope stored for a tape whose envelope was `original`.
fn stored_envelope(original: Option<&[u8]>, spec: &CodecSpec) -> Vec<u8> {
    let mut env = Envelope::new();
    env.set_field(
        CODEC_FIELD,
        serde_json::to_value(spec).expect("a spec serializes"),
    );
    if let Some(o) = original {
        env.set_field(ORIGINAL_FIELD, Value::from(B64.encode(o)));
    }
    env.to_bytes()
}

/// The digest field stored for `summary` (recorded bytes, then digest).
fn stored_digest(summary: &TapeSummary) -> String {
    format!(
        "{:016x}{}",
        summary.byte_count,
        summary.digest.as_deref().unwrap_or("")
    )
}

/// `summary` as stored: stored bytes, recorded totals in the digest.
fn stored_summary(summary: &TapeSummary, stored_bytes: u64) -> TapeSummary {
    TapeSummary {
        frame_count: summary.frame_count,
        byte_count: stored_bytes,
        ended_at_us: summary.ended_at_us,
        digest: Some(stored_digest(summary)),
        seal: summary.seal.clone(),
    }
}

/// `info` as recorded: the original envelope, and for an ended tape the
/// recorded byte count and digest. `Err((id, why))` when the stored form
/// is not one this layer makes.
fn recorded_info(mut info: TapeInfo) -> Result<TapeInfo, (String, String)> {
    let id = info.header.id.clone();
    let fail = |why: String| (id.clone(), why);
    if stored_spec(info.header.envelope.as_deref())
        .map_err(&fail)?
        .is_none()
    {
        return Ok(info);
    }
    let env = Envelope::of(info.header.envelope.as_deref()).expect("has a codec");
    info.header.envelope = match env.field(ORIGINAL_FIELD) {
        None => None,
        Some(Value::String(s)) => Some(
            B64.decode(s)
                .map_err(|_| fail("its original envelope is not base64".into()))?,
        ),
        Some(_) => return Err(fail("its original envelope is not a string".into())),
    };
    if info.state == TapeState::Recording {
        return Ok(info);
    }
    let Some(d) = info.digest.take() else {
        return Err(fail(format!(
            "it is {} without the totals the host stored with it",
            info.state.as_str()
        )));
    };
    if d.len() < 16 || !d.is_ascii() {
        return Err(fail(format!(
            "its digest field {d:?} is not the one the host stored"
        )));
    }
    info.byte_count = u64::from_str_radix(&d[..16], 16).map_err(|_| {
        fail(format!(
            "its digest field {d:?} is not the one the host stored"
        ))
    })?;
    info.digest = (d.len() > 16).then(|| d[16..].to_string());
    Ok(info)
}

/// How a store's tapes read as recorded from the form its provider holds
/// them in: what copying tapes as stored (`migrate`) needs to verify them
/// ([`crate::read::TapeReader::stream_stored`]).
pub trait StoredForm: Send + Sync {
    /// `stored` (as the store below reported it) as recorded.
    fn recorded_info(&self, stored: &TapeInfo) -> ProviderResult<TapeInfo>;
    /// What decodes `stored`'s frames (`None`: they are stored as
    /// recorded). An encrypted tape needs the key that wrapped its data key.
    fn decoder(&self, stored: &TapeInfo) -> ProviderResult<Option<Arc<dyn FrameDecoder>>>;
}

impl<S: TapeStore> StoredForm for Codec<S> {
    fn recorded_info(&self, stored: &TapeInfo) -> ProviderResult<TapeInfo> {
        self.recorded("get", stored.clone())
    }

    fn decoder(&self, stored: &TapeInfo) -> ProviderResult<Option<Arc<dyn FrameDecoder>>> {
        Ok(self
            .entry_of(stored)?
            .codec
            .clone()
            .map(|c| c as Arc<dyn FrameDecoder>))
    }
}

impl<S: TapeStore> Layer for Codec<S> {
    type Inner = S;
    type Writer = CodecWriter<S::Writer>;

    fn inner(&self) -> &S {
        &self.inner
    }

    /// Writers made by `create` and `resume` know their tape's codec; one
    /// wrapped without stores frames as given.
    fn wrap_writer(&self, writer: S::Writer) -> CodecWriter<S::Writer> {
        CodecWriter {
            inner: writer,
            entry: Arc::new(TapeEntry {
                codec: None,
                stored: Mutex::new(Stored {
                    frames: 0,
                    bytes: 0,
                    known: false,
                }),
            }),
            provider: self.provider(),
        }
    }

    async fn create(&self, mut header: TapeHeader) -> ProviderResult<CodecWriter<S::Writer>> {
        let codec = self.new_tape(&mut header)?;
        let id = header.id.clone();
        let writer = self.inner.create(header).await?;
        let entry = Arc::new(TapeEntry {
            codec,
            stored: Mutex::new(Stored {
                frames: 0,
                bytes: 0,
                known: true,
            }),
        });
        self.remember(&id, entry.clone());
        Ok(CodecWriter {
            inner: writer,
            entry,
            provider: self.provider(),
        })
    }

    async fn resume(&self, id: &str) -> ProviderResult<CodecWriter<S::Writer>> {
        let info = self.inner.get(id).await?;
        // What was stored so far, as the provider counts it now.
        self.tapes.lock().expect("codec cache").remove(id);
        let entry = self.entry_of(&info)?;
        let writer = self.inner.resume(id).await?;
        Ok(CodecWriter {
            inner: writer,
            entry,
            provider: self.provider(),
        })
    }

    async fn save(
        &self,
        mut header: TapeHeader,
        frames: &[Frame],
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        let Some(codec) = self.new_tape(&mut header)? else {
            return self.inner.save(header, frames, summary, reason).await;
        };
        let encoded = self.encode_all(&codec, frames)?;
        let bytes = encoded.iter().map(|f| f.payload.len() as u64).sum();
        let info = self
            .inner
            .save(header, &encoded, stored_summary(&summary, bytes), reason)
            .await?;
        self.recorded("save", info)
    }

    async fn get(&self, id: &str) -> ProviderResult<TapeInfo> {
        let info = self.inner.get(id).await?;
        self.recorded("get", info)
    }

    async fn read_frames(
        &self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> ProviderResult<Vec<Frame>> {
        let entry = self.entry(id).await?;
        let frames = self
            .inner
            .read_frames(id, from_seq, max_frames, max_bytes)
            .await?;
        let Some(codec) = &entry.codec else {
            return Ok(frames);
        };
        frames
            .into_iter()
            .map(|f| {
                codec
                    .decode(f)
                    .map_err(|why| self.contract("read-frames", format!("tape {id}: {why}")))
            })
            .collect()
    }

    async fn delete(&self, id: &str) -> ProviderResult<()> {
        self.tapes.lock().expect("codec cache").remove(id);
        self.inner.delete(id).await
    }

    async fn list(
        &self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        let page = self.inner.list(filter, cursor, limit).await?;
        self.recorded_page("list", page)
    }

    async fn search(
        &self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> ProviderResult<TapePage> {
        if query.text.is_some() && self.settings.encodes() {
            return Err(ProviderError::Codec {
                provider: self.provider(),
                detail: format!(
                    "a text search is refused: this host stores the payloads of provider {}'s tapes {}, so the provider cannot search their text; search by method, tool, resource or prompt instead, or `tapedeck export` the tape and search the export",
                    self.provider(),
                    if self.settings.encrypt_with.is_some() {
                        "compressed and encrypted"
                    } else {
                        "compressed"
                    }
                ),
            });
        }
        let Some(keys) = self
            .settings
            .read_keys
            .as_ref()
            .filter(|_| !query.terms.is_empty())
        else {
            let page = self.inner.search(query, cursor, limit).await?;
            return self.recorded_page("search", page);
        };
        // Encrypted tapes carry blind terms, the others (recorded before
        // the keys, or by a provider with `encrypt = false`) plain ones: the
        // blind search first, then the plain one, one cursor for both.
        let (blind_phase, inner_cursor) = match cursor {
            None => (true, None),
            Some(c) => match c.split_once(':') {
                Some(("b", rest)) => (true, Some(rest)),
                Some(("p", "")) => (false, None),
                Some(("p", rest)) => (false, Some(rest)),
                _ => {
                    return Err(self.contract(
                        "search",
                        format!("the cursor {c:?} is not one this host made"),
                    ));
                }
            },
        };
        let mut q = query.clone();
        if blind_phase {
            q.terms = query.terms.iter().map(|t| blind(keys.index(), t)).collect();
        }
        let page = self.inner.search(&q, inner_cursor, limit).await?;
        let next = match (blind_phase, page.next_cursor.as_deref()) {
            (true, Some(n)) => Some(format!("b:{n}")),
            (true, None) => Some("p:".to_string()),
            (false, Some(n)) => Some(format!("p:{n}")),
            (false, None) => None,
        };
        self.recorded_page(
            "search",
            TapePage {
                tapes: page.tapes,
                next_cursor: next,
            },
        )
    }

    async fn append_many(
        &self,
        appends: &[TapeAppend],
    ) -> ProviderResult<Vec<ProviderResult<u64>>> {
        let mut entries = Vec::with_capacity(appends.len());
        let mut encoded = Vec::with_capacity(appends.len());
        for a in appends {
            let entry = self.entry(&a.id).await?;
            let frames = match &entry.codec {
                Some(c) => self.encode_all(c, &a.frames)?,
                None => a.frames.clone(),
            };
            encoded.push(TapeAppend {
                id: a.id.clone(),
                frames,
            });
            entries.push(entry);
        }
        let results = self.inner.append_many(&encoded).await?;
        for ((entry, a), r) in entries.iter().zip(&encoded).zip(&results) {
            if let Ok(next) = r {
                entry
                    .stored
                    .lock()
                    .expect("stored count")
                    .appended(&a.frames, *next);
            }
        }
        Ok(results)
    }
}

/// A writer of a [`Codec`] store: encodes what it appends, and ends the
/// tape with the stored form of the summary.
pub struct CodecWriter<W> {
    inner: W,
    entry: Arc<TapeEntry>,
    provider: String,
}

impl<W: TapeWriter> WriterLayer for CodecWriter<W> {
    type Inner = W;

    fn inner(&self) -> &W {
        &self.inner
    }

    fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    async fn append(&mut self, frames: &[Frame]) -> ProviderResult<u64> {
        let Some(codec) = self.entry.codec.clone() else {
            return self.inner.append(frames).await;
        };
        let encoded = encode_frames(&codec, frames, &self.provider)?;
        let next = self.inner.append(&encoded).await?;
        self.entry
            .stored
            .lock()
            .expect("stored count")
            .appended(&encoded, next);
        Ok(next)
    }

    async fn finish(
        &mut self,
        summary: TapeSummary,
        reason: EndReason,
    ) -> ProviderResult<TapeInfo> {
        if self.entry.codec.is_none() {
            return self.inner.finish(summary, reason).await;
        }
        let stored = *self.entry.stored.lock().expect("stored count");
        if !stored.known || stored.frames != summary.frame_count {
            let seen = if stored.known {
                format!("{} frames were appended through it", stored.frames)
            } else {
                "frames reached it another way".to_string()
            };
            return Err(ProviderError::Codec {
                provider: self.provider.clone(),
                detail: format!(
                    "cannot end tape {}: the summary counts {} frames, but {seen}, so the size it stores is unknown",
                    self.inner.id(),
                    summary.frame_count
                ),
            });
        }
        let info = self
            .inner
            .finish(stored_summary(&summary, stored.bytes), reason)
            .await?;
        recorded_info(info).map_err(|(id, why)| ProviderError::Contract {
            provider: self.provider.clone(),
            call: "finish",
            detail: format!("tape {id}: {why}"),
        })
    }
}

#[cfg(test)]
mod tests;
