//! The spool file format: a magic string, then length-prefixed, CRC-checked
//! records.
//!
//! ```text
//! file   = "TDSPOOL2" record*                     (format 2; format 1,
//!                                                  "TDSPOOL1", is still read)
//! record = len:u32le crc:u32le kind:u8 body       (len = 1 + body length,
//!                                                  crc = CRC-32 of kind‖body)
//! kind 1 Begin  body = JSON `Begin`               (always the first record)
//! kind 2 Frame  body = seq:u64le ts:u64le dir:u8 flags:u8 payload
//!                                                 (a frame without terms or
//!                                                  attributes)
//! kind 3 Ack    body = next_seq:u64le             (the provider acknowledged
//!                                                  frames 0..next_seq)
//! kind 4 End    body = JSON `EndRecord`           (the recording ended)
//! kind 5 Frame with host fields (format 2)
//!               body = seq:u64le ts:u64le dir:u8 flags:u8
//!                      terms:u32le (len:u32le utf8)*
//!                      attributes:u32le (len:u32le utf8 len:u32le utf8)*
//!                      payload
//! ```
//!
//! Format 1 (before contract 0.2) has no kind 5: its frames carry no terms
//! or attributes. Format 2 writes kind 2 for a frame with neither (a line
//! that is not JSON) and kind 5 otherwise. A format-1 reader refuses a
//! format-2 file at its signature rather than misreading kind 5 records as
//! damage.
//!
//! A record is written with a single `write` call, so a crash of the process
//! leaves whole records; a power loss may leave a torn last record, which the
//! reader detects (short or failing its CRC) and ignores, with everything
//! after it.

use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use tapedeck_types::{Direction, EndReason, Frame, TapeHeader};

/// The first bytes of every spool file written (format version 2).
pub(crate) const MAGIC: &[u8; 8] = b"TDSPOOL2";

/// The first bytes of a spool file of format version 1 (before contract
/// 0.2), still read: a tape spooled before an upgrade is recovered.
pub(crate) const MAGIC_V1: &[u8; 8] = b"TDSPOOL1";

/// Whether `magic` starts a spool file this version reads.
pub(crate) fn known_magic(magic: &[u8]) -> bool {
    magic == MAGIC || magic == MAGIC_V1
}

/// Bytes before a record's kind: length and CRC.
const PREFIX: usize = 8;

/// Largest record accepted when reading (a frame of up to 1 GiB); anything
/// larger is a corrupt length.
const MAX_RECORD: u32 = 1 << 30;

const KIND_BEGIN: u8 = 1;
const KIND_FRAME: u8 = 2;
const KIND_ACK: u8 = 3;
const KIND_END: u8 = 4;
const KIND_FRAME_FIELDS: u8 = 5;

/// Bytes of a frame body before its payload (kind 2) or its fields (kind 5).
const FRAME_HEAD: usize = 18;

/// The first record: what the spool file is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begin {
    /// The configured provider's name.
    pub provider: String,
    /// The [`ProviderKey`](super::ProviderKey) (hex) of the storage the tape
    /// goes to; recovery delivers only to a provider with the same key.
    pub provider_key: String,
    /// The process that recorded it.
    pub pid: u32,
    /// The tape's header, as given to `create`.
    pub header: TapeHeader,
}

/// The last record of a recording that ended (before the provider was told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRecord {
    /// How it ended.
    pub reason: EndReason,
    /// When, in µs since the Unix epoch.
    pub ended_at_us: u64,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// See [`Begin`].
    Begin(Box<Begin>),
    /// A frame, as recorded.
    Frame(Frame),
    /// The provider acknowledged frames `0..next_seq`.
    Ack(u64),
    /// See [`EndRecord`].
    End(EndRecord),
}

/// Appends the encoding of a frame record to `out`: kind 2 for a frame
/// without terms or attributes, kind 5 with them.
pub(crate) fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let plain = frame.terms.is_empty() && frame.attributes.is_empty();
    let fields: usize = frame.terms.iter().map(|t| 4 + t.len()).sum::<usize>()
        + frame
            .attributes
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
    let mut body = Vec::with_capacity(FRAME_HEAD + 8 + fields + frame.payload.len());
    body.extend_from_slice(&frame.seq.to_le_bytes());
    body.extend_from_slice(&frame.timestamp_us.to_le_bytes());
    body.push(match frame.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    });
    body.push(u8::from(frame.not_json));
    if !plain {
        put_len(frame.terms.len(), &mut body);
        for t in &frame.terms {
            put_str(t, &mut body);
        }
        put_len(frame.attributes.len(), &mut body);
        for (k, v) in &frame.attributes {
            put_str(k, &mut body);
            put_str(v, &mut body);
        }
    }
    body.extend_from_slice(&frame.payload);
    encode(
        if plain { KIND_FRAME } else { KIND_FRAME_FIELDS },
        &body,
        out,
    );
}

fn put_len(n: usize, out: &mut Vec<u8>) {
    let n = u32::try_from(n).expect("spooled fields are under 4 GiB");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    put_len(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// Reads the host fields of a kind-5 frame body from `body`, advancing it
/// past them.
struct Fields<'a> {
    body: &'a [u8],
}

impl<'a> Fields<'a> {
    fn len(&mut self) -> Result<usize, String> {
        let Some((n, rest)) = self.body.split_first_chunk::<4>() else {
            return Err("a frame record whose fields are cut short".into());
        };
        self.body = rest;
        Ok(u32::from_le_bytes(*n) as usize)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        if n > self.body.len() {
            return Err("a frame record whose fields are cut short".into());
        }
        let (s, rest) = self.body.split_at(n);
        self.body = rest;
        String::from_utf8(s.to_vec())
            .map_err(|_| "a frame record with a field that is not UTF-8".into())
    }

    /// A count of items of at least `min` bytes each, checked against
    /// what is left (a corrupt count allocates nothing).
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.len()?;
        if n > self.body.len() / min {
            return Err(format!("a frame record claiming {n} fields"));
        }
        Ok(n)
    }
}

/// Appends the encoding of an ack record to `out`.
pub(crate) fn encode_ack(next_seq: u64, out: &mut Vec<u8>) {
    encode(KIND_ACK, &next_seq.to_le_bytes(), out);
}

/// Appends the encoding of a begin record to `out`.
pub(crate) fn encode_begin(begin: &Begin, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(begin).expect("a Begin serializes");
    encode(KIND_BEGIN, &body, out);
}

/// Appends the encoding of an end record to `out`.
pub(crate) fn encode_end(end: &EndRecord, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(end).expect("an EndRecord serializes");
    encode(KIND_END, &body, out);
}

fn encode(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len() + 1).expect("records are under 4 GiB");
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind]);
    crc.update(body);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// What reading the next record found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A whole, valid record, and its encoded length.
    Record(Record, u64),
    /// The clean end of the file.
    Eof,
    /// A torn or corrupt record starts here: `why`. Nothing after it is read.
    Torn(String),
}

/// Reads the next record from `r`.
pub(crate) fn read_next(r: &mut impl Read) -> io::Result<Next> {
    let mut prefix = [0u8; PREFIX];
    match read_full(r, &mut prefix)? {
        0 => return Ok(Next::Eof),
        n if n < PREFIX => return Ok(Next::Torn(format!("a record cut short after {n} bytes"))),
        _ => {}
    }
    let len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD {
        return Ok(Next::Torn(format!("a record with impossible length {len}")));
    }
    let mut data = vec![0u8; len as usize];
    let got = read_full(r, &mut data)?;
    if got < data.len() {
        return Ok(Next::Torn(format!(
            "a record cut short ({got} of {len} bytes)"
        )));
    }
    if crc32fast::hash(&data) != crc {
        return Ok(Next::Torn("a record whose checksum does not match".into()));
    }
    let total = PREFIX as u64 + u64::from(len);
    match decode(data[0], &data[1..]) {
        Ok(record) => Ok(Next::Record(record, total)),
        Err(why) => Ok(Next::Torn(why)),
    }
}

fn decode(kind: u8, body: &[u8]) -> Result<Record, String> {
    match kind {
        KIND_BEGIN => serde_json::from_slice(body)
            .map(|b| Record::Begin(Box::new(b)))
            .map_err(|e| format!("an unreadable begin record: {e}")),
        KIND_END => serde_json::from_slice(body)
            .map(Record::End)
            .map_err(|e| format!("an unreadable end record: {e}")),
        KIND_ACK => body
            .try_into()
            .map(|b| Record::Ack(u64::from_le_bytes(b)))
            .map_err(|_| format!("an ack record of {} bytes", body.len())),
        KIND_FRAME | KIND_FRAME_FIELDS if body.len() >= FRAME_HEAD => {
            let direction = match body[16] {
                0 => Direction::ClientToServer,
                1 => Direction::ServerToClient,
                d => return Err(format!("a frame with direction byte {d}")),
            };
            let mut frame = Frame::new(
                u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")),
                direction,
                Vec::new(),
                body[17] & 1 == 1,
            );
            let mut rest = Fields {
                body: &body[FRAME_HEAD..],
            };
            if kind == KIND_FRAME_FIELDS {
                let terms = rest.count(4)?;
                frame.terms = (0..terms)
                    .map(|_| rest.string())
                    .collect::<Result<_, _>>()?;
                let attributes = rest.count(8)?;
                frame.attributes = (0..attributes)
                    .map(|_| Ok((rest.string()?, rest.string()?)))
                    .collect::<Result<_, String>>()?;
            }
            frame.payload = rest.body.to_vec();
            Ok(Record::Frame(frame))
        }
        KIND_FRAME | KIND_FRAME_FIELDS => Err(format!("a frame record of {} bytes", body.len())),
        k => Err(format!("a record of unknown kind {k}")),
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, payload: &[u8]) -> Frame {
        Frame {
            seq,
            timestamp_us: 1_700_000_000_000_000 + seq,
            direction: if seq.is_multiple_of(2) {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            payload: payload.to_vec(),
            not_json: seq == 1,
            terms: Vec::new(),
            attributes: Vec::new(),
        }
    }

    fn all(bytes: &[u8]) -> (Vec<Record>, Option<String>) {
        let mut r = bytes;
        let mut out = Vec::new();
        loop {
            match read_next(&mut r).unwrap() {
                Next::Record(rec, _) => out.push(rec),
                Next::Eof => return (out, None),
                Next::Torn(why) => return (out, Some(why)),
            }
        }
    }

    #[test]
    fn records_round_trip() {
        let begin = Begin {
            provider: "fs".into(),
            provider_key: "ab".into(),
            pid: 7,
            header: TapeHeader {
                id: "t".into(),
                session_id: "s".into(),
                name: "n".into(),
                tags: vec![("k".into(), "v".into())],
                created_at_us: 5,
                envelope: None,
            },
        };
        let end = EndRecord {
            reason: EndReason::Completed,
            ended_at_us: 9,
        };
        let mut buf = Vec::new();
        encode_begin(&begin, &mut buf);
        encode_frame(&frame(0, br#"{"a":1}"#), &mut buf);
        encode_frame(&frame(1, b"\xff\x00 not json"), &mut buf);
        encode_frame(&frame(2, b""), &mut buf);
        encode_ack(2, &mut buf);
        encode_end(&end, &mut buf);
        let (records, torn) = all(&buf);
        assert_eq!(torn, None);
        assert_eq!(
            records,
            vec![
                Record::Begin(Box::new(begin)),
                Record::Frame(frame(0, br#"{"a":1}"#)),
                Record::Frame(frame(1, b"\xff\x00 not json")),
                Record::Frame(frame(2, b"")),
                Record::Ack(2),
                Record::End(end),
            ]
        );
    }

    /// Frame `seq` with terms and attributes (a kind-5 record).
    fn with_fields(seq: u64, payload: &[u8]) -> Frame {
        let mut f = frame(seq, payload);
        f.terms = vec!["method:tools/call".into(), "tool:h\u{e9}llo".into()];
        f.attributes = vec![
            ("transport".into(), "stdio".into()),
            ("empty".into(), String::new()),
        ];
        f
    }

    #[test]
    fn frames_keep_their_terms_and_attributes() {
        let mut buf = Vec::new();
        let only_terms = Frame {
            attributes: Vec::new(),
            ..with_fields(2, b"{}")
        };
        let only_attributes = Frame {
            terms: Vec::new(),
            ..with_fields(3, b"")
        };
        for f in [
            with_fields(0, br#"{"method":"tools/call"}"#),
            frame(1, b"plain"),
            only_terms.clone(),
            only_attributes.clone(),
        ] {
            encode_frame(&f, &mut buf);
        }
        let (records, torn) = all(&buf);
        assert_eq!(torn, None);
        assert_eq!(
            records,
            vec![
                Record::Frame(with_fields(0, br#"{"method":"tools/call"}"#)),
                Record::Frame(frame(1, b"plain")),
                Record::Frame(only_terms),
                Record::Frame(only_attributes),
            ]
        );
        // A frame without fields is written as in format 1 (kind 2).
        let mut plain = Vec::new();
        encode_frame(&frame(1, b"plain"), &mut plain);
        assert_eq!(plain[8], KIND_FRAME);
        let mut fields = Vec::new();
        encode_frame(&with_fields(1, b"x"), &mut fields);
        assert_eq!(fields[8], KIND_FRAME_FIELDS);
    }

    #[test]
    fn a_format_1_frame_record_still_reads() {
        // Written by the format-1 encoder: kind 2, no fields.
        let mut body = Vec::new();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&9u64.to_le_bytes());
        body.extend_from_slice(&[1, 0]);
        body.extend_from_slice(br#"{"jsonrpc":"2.0","method":"ping"}"#);
        let mut buf = Vec::new();
        encode(KIND_FRAME, &body, &mut buf);
        let (records, torn) = all(&buf);
        assert_eq!(torn, None);
        assert_eq!(
            records,
            [Record::Frame(Frame::new(
                7,
                9,
                Direction::ServerToClient,
                br#"{"jsonrpc":"2.0","method":"ping"}"#.to_vec(),
                false
            ))]
        );
    }

    #[test]
    fn fields_that_do_not_fit_are_damage() {
        let mut head = Vec::new();
        head.extend_from_slice(&0u64.to_le_bytes());
        head.extend_from_slice(&0u64.to_le_bytes());
        head.extend_from_slice(&[0, 0]);
        for (fields, why) in [
            (&[1, 0, 0, 0][..], "claiming 1"),
            (&[0, 0, 0][..], "cut short"),
            (&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0][..], "claiming"),
            (&[1, 0, 0, 0, 9, 0, 0, 0, b'x'][..], "cut short"),
            (&[1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 0][..], "not UTF-8"),
        ] {
            let mut body = head.clone();
            body.extend_from_slice(fields);
            let mut buf = Vec::new();
            encode(KIND_FRAME_FIELDS, &body, &mut buf);
            let (records, torn) = all(&buf);
            assert!(records.is_empty(), "{records:?}");
            let torn = torn.unwrap();
            assert!(torn.contains(why), "{torn}");
        }
    }

    #[test]
    fn a_torn_tail_is_detected_at_every_cut() {
        for second in [frame(1, b"second frame"), with_fields(1, b"second frame")] {
            let mut buf = Vec::new();
            encode_frame(&frame(0, b"first"), &mut buf);
            let whole = buf.len();
            encode_frame(&second, &mut buf);
            for cut in whole + 1..buf.len() {
                let (records, torn) = all(&buf[..cut]);
                assert_eq!(
                    records,
                    vec![Record::Frame(frame(0, b"first"))],
                    "cut {cut}"
                );
                assert!(torn.is_some(), "cut at {cut} not detected");
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&with_fields(0, b"payload"), &mut buf);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            let (records, torn) = all(&bad);
            assert!(
                records.is_empty() && torn.is_some(),
                "flip at byte {i} gave {records:?}"
            );
        }
    }
}
