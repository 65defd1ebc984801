//! The binary record framing shared by tape files and the index log.
//!
//! Every record is
//!
//! ```text
//! magic u8 (0xA7) | kind u8 | len u32 LE | crc u32 LE | body (len bytes)
//! ```
//!
//! where the CRC-32 covers `kind`, `len` and `body`, so a torn or corrupted
//! record (including a corrupted length) is detected. Readers never trust a
//! length before checking it against the bytes that actually exist, so a
//! garbage length cannot make them allocate more than the file holds.

use std::io::{self, Read};

/// First byte of every record.
pub(crate) const MAGIC: u8 = 0xA7;
/// Bytes before the body.
pub(crate) const HEADER_LEN: usize = 10;

/// Appends one record to `out`.
pub(crate) fn encode(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    encode_parts(kind, &[body], out);
}

/// Appends one record whose body is the concatenation of `parts` (saves
/// copying a large payload into a temporary body first).
pub(crate) fn encode_parts(kind: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(total).expect("record bodies are bounded well below 4 GiB");
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&len.to_le_bytes());
    for p in parts {
        h.update(p);
    }
    out.reserve(HEADER_LEN + total);
    out.push(MAGIC);
    out.push(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// The length of a record with a body of `body_len` bytes.
pub(crate) fn encoded_len(body_len: usize) -> u64 {
    (HEADER_LEN + body_len) as u64
}

fn checksum(kind: u8, len: u32, body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&len.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// The outcome of parsing a record from a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A complete, valid record of `size` bytes (header included).
    Record {
        /// The record kind.
        kind: u8,
        /// The body.
        body: &'a [u8],
        /// Header plus body length.
        size: usize,
    },
    /// The slice holds the start of a plausible record but not all of it:
    /// `needed` bytes in total are required.
    Incomplete {
        /// Total record size needed (header included), or `HEADER_LEN` when
        /// not even the header is present.
        needed: usize,
    },
    /// Not a record: bad magic, oversized length or CRC mismatch.
    Invalid,
}

/// Parses the record at the start of `buf`, accepting bodies up to `max_body`.
pub(crate) fn parse(buf: &[u8], max_body: u32) -> Parsed<'_> {
    if buf.is_empty() {
        return Parsed::Incomplete { needed: HEADER_LEN };
    }
    if buf[0] != MAGIC {
        return Parsed::Invalid;
    }
    if buf.len() < HEADER_LEN {
        return Parsed::Incomplete { needed: HEADER_LEN };
    }
    let kind = buf[1];
    let len = u32::from_le_bytes(buf[2..6].try_into().expect("4 bytes"));
    if len > max_body {
        return Parsed::Invalid;
    }
    let size = HEADER_LEN + len as usize;
    if buf.len() < size {
        return Parsed::Incomplete { needed: size };
    }
    let crc = u32::from_le_bytes(buf[6..10].try_into().expect("4 bytes"));
    let body = &buf[HEADER_LEN..size];
    if checksum(kind, len, body) != crc {
        return Parsed::Invalid;
    }
    Parsed::Record { kind, body, size }
}

/// What [`RecordReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// A valid record; its body is in [`RecordReader::body`].
    Record(u8),
    /// The end of the readable range, exactly at a record boundary.
    Eof,
    /// A record that does not fit in the readable range (a torn tail, or a
    /// write still in progress).
    Incomplete,
    /// Bytes that are not a valid record (corruption or a torn write).
    Invalid,
}

/// Reads records one by one from a byte stream, never past `limit` (the file
/// length observed when reading started).
///
/// After anything but [`Next::Record`], the reader must not be used any more:
/// [`RecordReader::pos`] stays at the start of the offending record.
pub(crate) struct RecordReader<R> {
    inner: R,
    pos: u64,
    limit: u64,
    max_body: u32,
    body: Vec<u8>,
}

impl<R: Read> RecordReader<R> {
    /// A reader whose stream is positioned at file offset `pos`.
    pub(crate) fn new(inner: R, pos: u64, limit: u64, max_body: u32) -> Self {
        RecordReader {
            inner,
            pos,
            limit,
            max_body,
            body: Vec::new(),
        }
    }

    /// File offset of the next record (the end of the last valid one).
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// The body of the record last returned.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Reads the next record.
    pub(crate) fn next(&mut self) -> io::Result<Next> {
        let remaining = self.limit.saturating_sub(self.pos);
        if remaining == 0 {
            return Ok(Next::Eof);
        }
        if remaining < HEADER_LEN as u64 {
            return Ok(Next::Incomplete);
        }
        let mut header = [0u8; HEADER_LEN];
        self.inner.read_exact(&mut header)?;
        if header[0] != MAGIC {
            return Ok(Next::Invalid);
        }
        let kind = header[1];
        let len = u32::from_le_bytes(header[2..6].try_into().expect("4 bytes"));
        if len > self.max_body {
            return Ok(Next::Invalid);
        }
        if encoded_len(len as usize) > remaining {
            return Ok(Next::Incomplete);
        }
        let crc = u32::from_le_bytes(header[6..10].try_into().expect("4 bytes"));
        self.body.clear();
        self.body.resize(len as usize, 0);
        self.inner.read_exact(&mut self.body)?;
        if checksum(kind, len, &self.body) != crc {
            return Ok(Next::Invalid);
        }
        self.pos += encoded_len(len as usize);
        Ok(Next::Record(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(kind, body, &mut v);
        v
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let r = rec(7, b"hello");
        assert_eq!(r.len() as u64, encoded_len(5));
        assert_eq!(
            parse(&r, 100),
            Parsed::Record {
                kind: 7,
                body: b"hello",
                size: r.len()
            }
        );
        // Torn: every strict prefix is incomplete.
        for cut in 0..r.len() {
            assert!(
                matches!(parse(&r[..cut], 100), Parsed::Incomplete { .. }),
                "{cut}"
            );
        }
        // Any flipped byte is caught.
        for i in 0..r.len() {
            let mut bad = r.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(parse(&bad, 100), Parsed::Record { .. }),
                "flip at {i}"
            );
        }
        // Oversized bodies are rejected before any allocation.
        assert_eq!(parse(&r, 4), Parsed::Invalid);
    }

    #[test]
    fn reader_stops_at_torn_tail() {
        let mut data = rec(1, b"a");
        data.extend(rec(2, &[0xff, 0x00, 0xfe]));
        let good = data.len() as u64;
        let third = rec(3, b"torn record");
        data.extend(&third[..7]);
        let mut r = RecordReader::new(&data[..], 0, data.len() as u64, 1 << 20);
        assert_eq!(r.next().unwrap(), Next::Record(1));
        assert_eq!(r.body(), b"a");
        assert_eq!(r.next().unwrap(), Next::Record(2));
        assert_eq!(r.body(), &[0xff, 0x00, 0xfe]);
        assert_eq!(r.pos(), good);
        assert_eq!(r.next().unwrap(), Next::Incomplete);
        assert_eq!(r.pos(), good);

        let mut r = RecordReader::new(&data[..], 0, good, 1 << 20);
        r.next().unwrap();
        r.next().unwrap();
        assert_eq!(r.next().unwrap(), Next::Eof);
    }
}
