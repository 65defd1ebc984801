//! The provider's files, byte by byte (little-endian):
//!
//! * `header`: u64 stamp (when this provider stored the tape, for paging),
//!   then the header: id, session id, name, tags, created-at, envelope;
//! * `frames`: one record per frame, appended: u8 `0xF5`, u8 1 on the last
//!   frame of an append (0 before), u32 body length, then the body: u64 seq,
//!   u64 timestamp, u8 direction, u8 not-json, payload, terms, attributes.
//!   Only whole appends count: bytes after the last record marked 1 are a
//!   torn append, which readers ignore and `resume` cuts off;
//! * `end`: u8 state (1 finished, 2 aborted, 3 crashed), u8 1 if a summary
//!   follows: frame count, byte count, ended-at, digest, seal.
//!
//! A string or byte string is a u32 length and its bytes; a list is a u32
//! count and its items; an option is u8 0, or u8 1 and the value.

use tapedeck_guest_sdk::{Direction, Frame, StorageError, TapeHeader, TapeState, TapeSummary};

/// First byte of every frame record.
pub const MAGIC: u8 = 0xF5;
/// Bytes before a frame record's body.
pub const RECORD_HEAD: usize = 6;

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    pub fn pairs(&mut self, v: &[(String, String)]) {
        self.u32(v.len() as u32);
        for (k, val) in v {
            self.bytes(k.as_bytes());
            self.bytes(val.as_bytes());
        }
    }
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
}

/// Reads values back; every read checks the bounds (a file may be damaged).
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

fn damaged() -> StorageError {
    StorageError::io("a stored file is damaged (truncated or malformed)")
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(damaged)?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, StorageError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>, StorageError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub fn string(&mut self) -> Result<String, StorageError> {
        String::from_utf8(self.bytes()?).map_err(|_| damaged())
    }
    pub fn pairs(&mut self) -> Result<Vec<(String, String)>, StorageError> {
        let n = self.u32()?;
        (0..n)
            .map(|_| Ok((self.string()?, self.string()?)))
            .collect()
    }
    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.bytes()?),
        })
    }
}

/// The `header` file: the provider's stamp and the host's header.
pub fn encode_header(stamp: u64, h: &TapeHeader) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(stamp);
    w.bytes(h.id.as_bytes());
    w.bytes(h.session_id.as_bytes());
    w.bytes(h.name.as_bytes());
    w.pairs(&h.tags);
    w.u64(h.created_at_us);
    w.opt_bytes(h.envelope.as_deref());
    w.0
}

/// Reads a `header` file: (stamp, header).
pub fn decode_header(buf: &[u8]) -> Result<(u64, TapeHeader), StorageError> {
    let mut r = Reader::new(buf);
    let stamp = r.u64()?;
    let header = TapeHeader {
        id: r.string()?,
        session_id: r.string()?,
        name: r.string()?,
        tags: r.pairs()?,
        created_at_us: r.u64()?,
        envelope: r.opt_bytes()?,
    };
    Ok((stamp, header))
}

/// Appends the records of `frames` (one append) to `out`.
pub fn encode_frames(frames: &[Frame], out: &mut Vec<u8>) {
    for (i, f) in frames.iter().enumerate() {
        let mut body = Writer::default();
        body.u64(f.seq);
        body.u64(f.timestamp_us);
        body.u8(match f.direction {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        });
        body.u8(u8::from(f.not_json));
        body.bytes(&f.payload);
        body.u32(f.terms.len() as u32);
        for t in &f.terms {
            body.bytes(t.as_bytes());
        }
        body.pairs(&f.attributes);
        out.push(MAGIC);
        out.push(u8::from(i + 1 == frames.len()));
        out.extend_from_slice(&(body.0.len() as u32).to_le_bytes());
        out.extend_from_slice(&body.0);
    }
}

/// Where the frame records of one `frames` file are: the byte range of each
/// record's body, for the whole appends only, and the length of the file
/// those appends fill (anything after it is a torn append).
pub fn scan_frames(buf: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut bodies = Vec::new();
    let mut committed = (0, 0);
    let mut at = 0;
    while at + RECORD_HEAD <= buf.len() && buf[at] == MAGIC {
        let last = buf[at + 1] == 1;
        let len = u32::from_le_bytes([buf[at + 2], buf[at + 3], buf[at + 4], buf[at + 5]]);
        let start = at + RECORD_HEAD;
        let Some(end) = start.checked_add(len as usize).filter(|e| *e <= buf.len()) else {
            break;
        };
        bodies.push((start, end));
        at = end;
        if last {
            committed = (bodies.len(), at);
        }
    }
    bodies.truncate(committed.0);
    (bodies, committed.1)
}

/// Decodes one frame record's body.
pub fn decode_frame(body: &[u8]) -> Result<Frame, StorageError> {
    let mut r = Reader::new(body);
    let seq = r.u64()?;
    let timestamp_us = r.u64()?;
    let direction = match r.u8()? {
        0 => Direction::ClientToServer,
        _ => Direction::ServerToClient,
    };
    let not_json = r.u8()? != 0;
    let payload = r.bytes()?;
    let n = r.u32()?;
    let terms = (0..n).map(|_| r.string()).collect::<Result<_, _>>()?;
    let attributes = r.pairs()?;
    Ok(Frame {
        seq,
        timestamp_us,
        direction,
        payload,
        not_json,
        terms,
        attributes,
    })
}

/// The payload length of a frame record's body, without decoding the rest.
pub fn payload_len(body: &[u8]) -> Result<u64, StorageError> {
    let mut r = Reader::new(body);
    r.at = 18;
    Ok(u64::from(r.u32()?))
}

/// The `end` file: the final state and, when known, the summary.
pub fn encode_end(state: TapeState, summary: Option<&TapeSummary>) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(match state {
        TapeState::Finished => 1,
        TapeState::Aborted => 2,
        _ => 3,
    });
    match summary {
        Some(s) => {
            w.u8(1);
            w.u64(s.frame_count);
            w.u64(s.byte_count);
            w.u64(s.ended_at_us);
            w.opt_bytes(s.digest.as_ref().map(|d| d.as_bytes()));
            w.opt_bytes(s.seal.as_deref());
        }
        None => w.u8(0),
    }
    w.0
}

/// Reads an `end` file: (state, summary).
pub fn decode_end(buf: &[u8]) -> Result<(TapeState, Option<TapeSummary>), StorageError> {
    let mut r = Reader::new(buf);
    let state = match r.u8()? {
        1 => TapeState::Finished,
        2 => TapeState::Aborted,
        _ => TapeState::Crashed,
    };
    let summary = match r.u8()? {
        0 => None,
        _ => Some(TapeSummary {
            frame_count: r.u64()?,
            byte_count: r.u64()?,
            ended_at_us: r.u64()?,
            digest: r
                .opt_bytes()?
                .map(|d| String::from_utf8(d).map_err(|_| damaged()))
                .transpose()?,
            seal: r.opt_bytes()?,
        }),
    };
    Ok((state, summary))
}
