//! One tape's codec: how its frames are stored, as its envelope says.
//!
//! A stored payload is, before encryption, a *body*:
//!
//! ```text
//! body  = flags (1 byte: 16 zstd, 2 not-json, 4 terms inside,
//!                 8 terms derived from the payload;
//!                 1 zstd as tapes stored before 16 have it)
//!         inner, as a compact zstd frame (flag 16, see
//!         compress::compress), or as is
//!       | flags (1 zstd), length of inner u32 le, inner as a zstd frame
//! inner = payload
//!         [ terms, then their length u32 le ]                      (flag 4)
//! terms = count u16 le, then each: len u16 le, bytes
//! ```
//!
//! (The terms follow the payload, so that the dictionary, trained on
//! payloads, matches from the first byte.) The terms are kept only when
//! they are not what the host derives from the payload anyway (flag 8:
//! recomputed when read), which is the case of every recorded frame.
//!
//! Encrypted, the stored payload is `AES-256-GCM-SIV(data key, nonce,
//! associated data, body)`, the nonce made of the frame's seq and direction
//! and the associated data binding tape id, seq, direction and timestamp,
//! so that ciphertext moved to another tape or position does not decrypt.
//! The data key is random per tape, wrapped by the host's current KEK with
//! the tape id as associated data, and kept in the envelope. The frame's
//! index terms travel inside the body and are stored outside as blind
//! terms ([`super::blind`]).

use super::CodecError;
use super::blind::blind_terms;
use super::compress;
use super::keyring::{Secret, TapeKeys};
use aes_gcm_siv::aead::{Aead, Payload};
use aes_gcm_siv::{Aes256GcmSiv, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{Direction, Frame};

/// The AEAD of encrypted tapes.
pub const CIPHER: &str = "aes-256-gcm-siv";
/// Compression by zstd.
pub const ZSTD: &str = "zstd";
/// No compression.
pub const NONE: &str = "none";
/// The largest payload a stored body may decode to (a provider cannot make
/// the host allocate more with a forged length).
pub const MAX_PAYLOAD: usize = 256 << 20;

const FRAME_DOMAIN: &[u8] = b"tapedeck-frame-v1\0";
const DEK_DOMAIN: &[u8] = b"tapedeck-dek-v1\0";
const FLAG_ZSTD: u8 = 1;
const FLAG_NOT_JSON: u8 = 2;
const FLAG_TERMS: u8 = 4;
const FLAG_DERIVED: u8 = 8;
const FLAG_COMPACT_ZSTD: u8 = 16;
/// Payloads shorter than this are stored as they are.
const MIN_COMPRESS: usize = 24;

/// What a tape's envelope says about its codec (`"codec"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CodecSpec {
    /// Format version (1).
    pub v: u32,
    /// [`ZSTD`] or [`NONE`].
    pub compression: String,
    /// The zstd dictionary's id, if one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dictionary: Option<String>,
    /// [`CIPHER`] when the payloads are encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// The id of the KEK that wrapped the data key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kek: Option<String>,
    /// The wrapped data key: base64 of nonce (12 bytes) and ciphertext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dek: Option<String>,
}

impl CodecSpec {
    /// True when the payloads are encrypted.
    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }
}

/// One tape's codec, ready to encode and decode its frames.
pub struct TapeCodec {
    id: String,
    spec: CodecSpec,
    dictionary: Option<&'static compress::Dictionary>,
    cipher: Option<Aes256GcmSiv>,
    index: Option<Secret>,
}

impl std::fmt::Debug for TapeCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapeCodec")
            .field("id", &self.id)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl TapeCodec {
    /// A codec for a new tape `id`: compressed with the current dictionary
    /// when `compress`, encrypted under a new data key wrapped by `keys`'
    /// current KEK when `keys` is given.
    pub fn create(
        id: &str,
        compress: bool,
        keys: Option<&TapeKeys>,
    ) -> Result<TapeCodec, CodecError> {
        let dictionary = compress.then(compress::current).flatten();
        let mut spec = CodecSpec {
            v: 1,
            compression: if compress { ZSTD } else { NONE }.to_string(),
            dictionary: dictionary.map(|d| d.id.to_string()),
            cipher: None,
            kek: None,
            dek: None,
        };
        let mut cipher = None;
        if let Some(keys) = keys {
            let dek = Secret::generate()?;
            let (kek_id, kek) = keys.current();
            let mut nonce = [0u8; 12];
            getrandom::fill(&mut nonce)
                .map_err(|e| CodecError::Keys(format!("no randomness: {e}")))?;
            let wrapped = Aes256GcmSiv::new_from_slice(&kek.0)
                .expect("32-byte key")
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &dek.0,
                        aad: &dek_aad(id),
                    },
                )
                .map_err(|_| CodecError::Keys("cannot wrap a data key".into()))?;
            let mut stored = nonce.to_vec();
            stored.extend_from_slice(&wrapped);
            spec.cipher = Some(CIPHER.into());
            spec.kek = Some(kek_id.to_string());
            spec.dek = Some(B64.encode(stored));
            cipher = Some(Aes256GcmSiv::new_from_slice(&dek.0).expect("32-byte key"));
        }
        Ok(TapeCodec {
            id: id.to_string(),
            spec,
            dictionary,
            index: cipher.as_ref().and(keys).map(|k| k.index().clone()),
            cipher,
        })
    }

    /// The codec of the existing tape `id` whose envelope says `spec`,
    /// unwrapping its data key with `keys` when it is encrypted.
    pub fn open(
        id: &str,
        spec: CodecSpec,
        keys: Option<&TapeKeys>,
    ) -> Result<TapeCodec, CodecError> {
        let bad = |why: String| CodecError::Envelope {
            tape: id.to_string(),
            why,
        };
        if spec.v != 1 {
            return Err(bad(format!(
                "codec version {} (this tapedeck knows 1): a newer tapedeck wrote it",
                spec.v
            )));
        }
        let dictionary = match (spec.compression.as_str(), &spec.dictionary) {
            (NONE, None) => None,
            (ZSTD, None) => None,
            (ZSTD, Some(d)) => Some(compress::by_id(d).ok_or_else(|| {
                bad(format!(
                    "compressed with dictionary {d:?}, which this tapedeck does not ship (a newer one wrote it)"
                ))
            })?),
            (other, _) => return Err(bad(format!("unknown compression {other:?}"))),
        };
        let mut cipher = None;
        let mut index = None;
        if let Some(c) = &spec.cipher {
            if c != CIPHER {
                return Err(bad(format!("unknown cipher {c:?}")));
            }
            let (Some(kek_id), Some(dek)) = (&spec.kek, &spec.dek) else {
                return Err(bad("encrypted, but no wrapped data key".into()));
            };
            let keys = keys.ok_or_else(|| CodecError::MissingKey {
                tape: id.to_string(),
                kek: kek_id.clone(),
            })?;
            let kek = keys.kek(kek_id).ok_or_else(|| CodecError::MissingKey {
                tape: id.to_string(),
                kek: kek_id.clone(),
            })?;
            let stored = B64
                .decode(dek)
                .map_err(|_| bad("the wrapped data key is not base64".into()))?;
            if stored.len() != 12 + 32 + 16 {
                return Err(bad("the wrapped data key has the wrong length".into()));
            }
            let dek = Aes256GcmSiv::new_from_slice(&kek.0)
                .expect("32-byte key")
                .decrypt(
                    Nonce::from_slice(&stored[..12]),
                    Payload {
                        msg: &stored[12..],
                        aad: &dek_aad(id),
                    },
                )
                .map_err(|_| {
                    bad(format!(
                        "its data key does not unwrap with {kek_id}: the envelope was altered or belongs to another tape"
                    ))
                })?;
            cipher = Some(Aes256GcmSiv::new_from_slice(&dek).expect("32-byte key"));
            index = Some(keys.index().clone());
        }
        Ok(TapeCodec {
            id: id.to_string(),
            spec,
            dictionary,
            cipher,
            index,
        })
    }

    /// What the envelope records.
    pub fn spec(&self) -> &CodecSpec {
        &self.spec
    }

    /// The frame as stored: payload compressed and, for an encrypted tape,
    /// encrypted, with its terms blinded.
    pub fn encode(&self, f: &Frame) -> Result<Frame, CodecError> {
        let mut flags = 0u8;
        if f.not_json {
            flags |= FLAG_NOT_JSON;
        }
        // The terms inside (encrypted tapes only), compressed with the
        // payload they were derived from.
        let derived = self.cipher.is_some()
            && !f.terms.is_empty()
            && !f.not_json
            && f.terms == payload_terms(&f.payload);
        if derived {
            flags |= FLAG_DERIVED;
        }
        let inner: std::borrow::Cow<'_, [u8]> =
            if self.cipher.is_some() && !f.terms.is_empty() && !derived {
                flags |= FLAG_TERMS;
                let mut inner = f.payload.clone();
                let start = inner.len();
                inner.extend_from_slice(&(f.terms.len() as u16).to_le_bytes());
                for t in &f.terms {
                    inner.extend_from_slice(&(t.len() as u16).to_le_bytes());
                    inner.extend_from_slice(t.as_bytes());
                }
                let block = (inner.len() - start) as u32;
                inner.extend_from_slice(&block.to_le_bytes());
                std::borrow::Cow::Owned(inner)
            } else {
                std::borrow::Cow::Borrowed(&f.payload)
            };
        let compressed = (self.spec.compression == ZSTD && inner.len() >= MIN_COMPRESS)
            .then(|| compress::compress(self.dictionary, &inner))
            .transpose()?
            .filter(|c| c.len() < inner.len());
        let mut body = Vec::with_capacity(1 + compressed.as_ref().map_or(inner.len(), Vec::len));
        if compressed.is_some() {
            flags |= FLAG_COMPACT_ZSTD;
        }
        body.push(flags);
        body.extend_from_slice(compressed.as_deref().unwrap_or(&inner));
        let (payload, terms) = match (&self.cipher, &self.index) {
            (Some(cipher), Some(index)) => {
                let sealed = cipher
                    .encrypt(
                        &nonce(f.seq, f.direction),
                        Payload {
                            msg: &body,
                            aad: &frame_aad(&self.id, f),
                        },
                    )
                    .map_err(|_| CodecError::Encode {
                        tape: self.id.clone(),
                        seq: f.seq,
                    })?;
                (sealed, blind_terms(index, &f.terms))
            }
            _ => (body, f.terms.clone()),
        };
        Ok(Frame {
            seq: f.seq,
            timestamp_us: f.timestamp_us,
            direction: f.direction,
            payload,
            not_json: true,
            terms,
            attributes: f.attributes.clone(),
        })
    }

    /// The frame as recorded, from the frame as stored. An error means the
    /// stored frame was not made by this codec for this tape and position.
    pub fn decode(&self, mut f: Frame) -> Result<Frame, String> {
        let body = match &self.cipher {
            Some(cipher) => cipher
                .decrypt(
                    &nonce(f.seq, f.direction),
                    Payload {
                        msg: &f.payload,
                        aad: &frame_aad(&self.id, &f),
                    },
                )
                .map_err(|_| {
                    format!(
                        "frame {} does not decrypt: it was altered, or moved from another tape or position",
                        f.seq
                    )
                })?,
            None => std::mem::take(&mut f.payload),
        };
        let bad = |why: &str| format!("frame {} is not a stored body: {why}", f.seq);
        let (&flags, rest) = body.split_first().ok_or_else(|| bad("empty"))?;
        if flags & !(FLAG_ZSTD | FLAG_NOT_JSON | FLAG_TERMS | FLAG_DERIVED | FLAG_COMPACT_ZSTD) != 0
            || flags & FLAG_ZSTD != 0 && flags & FLAG_COMPACT_ZSTD != 0
        {
            return Err(bad("unknown flags"));
        }
        let inner;
        let mut rest = if flags & FLAG_COMPACT_ZSTD != 0 {
            inner = compress::decompress_compact(self.dictionary, rest, MAX_PAYLOAD)
                .map_err(|e| bad(&format!("zstd: {e}")))?;
            &inner[..]
        } else if flags & FLAG_ZSTD != 0 {
            let (len, data) = rest.split_at_checked(4).ok_or_else(|| bad("truncated"))?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            if len > MAX_PAYLOAD {
                return Err(bad("it claims a payload over 256 MiB"));
            }
            inner = compress::decompress(self.dictionary, data, len)
                .map_err(|e| bad(&format!("zstd: {e}")))?;
            if inner.len() != len {
                return Err(bad("its payload is not the length it claims"));
            }
            &inner[..]
        } else {
            rest
        };
        let mut terms_block: &[u8] = &[];
        if flags & FLAG_TERMS != 0 {
            let (head, len) = rest
                .split_at_checked(rest.len().saturating_sub(4))
                .filter(|(_, l)| l.len() == 4)
                .ok_or_else(|| bad("truncated"))?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let (payload, block) = head
                .split_at_checked(
                    head.len()
                        .checked_sub(len)
                        .ok_or_else(|| bad("truncated"))?,
                )
                .ok_or_else(|| bad("truncated"))?;
            rest = payload;
            terms_block = block;
        }
        let payload = rest;
        let mut rest = terms_block;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err(bad("truncated"));
            }
            let (a, b) = rest.split_at(n);
            rest = b;
            Ok(a)
        };
        if flags & FLAG_TERMS != 0 {
            let n = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes"));
            let mut terms = Vec::with_capacity(usize::from(n).min(64));
            for _ in 0..n {
                let len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes"));
                let t = take(usize::from(len))?;
                terms.push(String::from_utf8(t.to_vec()).map_err(|_| bad("a term is not UTF-8"))?);
            }
            f.terms = terms;
        }
        f.payload = payload.to_vec();
        if flags & FLAG_DERIVED != 0 {
            f.terms = payload_terms(&f.payload);
        }
        f.not_json = flags & FLAG_NOT_JSON != 0;
        Ok(f)
    }
}

impl crate::read::FrameDecoder for TapeCodec {
    fn decode(&self, frame: Frame) -> Result<Frame, String> {
        TapeCodec::decode(self, frame)
    }
}

fn dek_aad(id: &str) -> Vec<u8> {
    let mut aad = DEK_DOMAIN.to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn direction_byte(d: Direction) -> u8 {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

fn nonce(seq: u64, direction: Direction) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    n[8] = direction_byte(direction);
    *Nonce::from_slice(&n)
}

fn frame_aad(id: &str, f: &Frame) -> Vec<u8> {
    let mut aad = Vec::with_capacity(FRAME_DOMAIN.len() + id.len() + 20);
    aad.extend_from_slice(FRAME_DOMAIN);
    aad.extend_from_slice(&(id.len() as u16).to_le_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&f.seq.to_le_bytes());
    aad.push(direction_byte(f.direction));
    aad.extend_from_slice(&f.timestamp_us.to_le_bytes());
    aad
}
