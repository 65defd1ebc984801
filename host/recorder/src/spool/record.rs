//! The spool file format: a magic string, then length-prefixed, CRC-checked
//! records.
//!
//! ```text
//! file   = "TDSPOOL1" record*
//! record = len:u32le crc:u32le kind:u8 body       (len = 1 + body length,
//!                                                  crc = CRC-32 of kind‖body)
//! kind 1 Begin  body = JSON `Begin`               (always the first record)
//! kind 2 Frame  body = seq:u64le ts:u64le dir:u8 flags:u8 payload
//! kind 3 Ack    body = next_seq:u64le             (the provider acknowledged
//!                                                  frames 0..next_seq)
//! kind 4 End    body = JSON `EndRecord`           (the recording ended)
//! ```
//!
//! A record is written with a single `write` call, so a crash of the process
//! leaves whole records; a power loss may leave a torn last record, which the
//! reader detects (short or failing its CRC) and ignores, with everything
//! after it.

use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use tapedeck_types::{Direction, EndReason, Frame, TapeHeader};

/// The first bytes of every spool file (format version 1).
pub(crate) const MAGIC: &[u8; 8] = b"TDSPOOL1";

/// Bytes before a record's kind: length and CRC.
const PREFIX: usize = 8;

/// Largest record accepted when reading (a frame of up to 1 GiB); anything
/// larger is a corrupt length.
const MAX_RECORD: u32 = 1 << 30;

const KIND_BEGIN: u8 = 1;
const KIND_FRAME: u8 = 2;
const KIND_ACK: u8 = 3;
const KIND_END: u8 = 4;

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

/// Appends the encoding of a frame record to `out`.
pub(crate) fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(18 + frame.payload.len());
    body.extend_from_slice(&frame.seq.to_le_bytes());
    body.extend_from_slice(&frame.timestamp_us.to_le_bytes());
    body.push(match frame.direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    });
    body.push(u8::from(frame.not_json));
    body.extend_from_slice(&frame.payload);
    encode(KIND_FRAME, &body, out);
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
        KIND_FRAME if body.len() >= 18 => {
            let direction = match body[16] {
                0 => Direction::ClientToServer,
                1 => Direction::ServerToClient,
                d => return Err(format!("a frame with direction byte {d}")),
            };
            Ok(Record::Frame(Frame {
                seq: u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
                timestamp_us: u64::from_le_bytes(body[8..16].try_into().expect("8 bytes")),
                direction,
                not_json: body[17] & 1 == 1,
                payload: body[18..].to_vec(),
                terms: Vec::new(),
                attributes: Vec::new(),
            }))
        }
        KIND_FRAME => Err(format!("a frame record of {} bytes", body.len())),
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

    #[test]
    fn a_torn_tail_is_detected_at_every_cut() {
        let mut buf = Vec::new();
        encode_frame(&frame(0, b"first"), &mut buf);
        let whole = buf.len();
        encode_frame(&frame(1, b"second frame"), &mut buf);
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

    #[test]
    fn a_flipped_bit_is_detected() {
        let mut buf = Vec::new();
        encode_frame(&frame(0, b"payload"), &mut buf);
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
