//! Reading a spool file back: [`SpoolEntry`] (what it holds) and
//! [`FrameReader`] (its frames, in batches), for recovery and `spool status`.

use super::SpoolError;
use super::record::{self, Begin, EndRecord, Next, Record};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use tapedeck_types::Frame;
use tapedeck_types::terms::payload_terms;

/// What a spool file holds, from one pass over it.
#[derive(Debug, Clone)]
pub struct SpoolEntry {
    /// The file.
    pub path: PathBuf,
    /// Its begin record: provider, provider key, recording process, header.
    pub begin: Begin,
    /// Frames spooled (`0..frames`, every one readable).
    pub frames: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// The last acknowledgement the recorder wrote (`0..acked` were taken
    /// by the provider, as far as the recorder knew).
    pub acked: u64,
    /// The end record, if the recording ended.
    pub end: Option<EndRecord>,
    /// Timestamp of the last frame.
    pub last_frame_at_us: Option<u64>,
    /// Set when the file ends in a torn or damaged record (a power loss in
    /// the middle of a write): what was found, and at which byte. Everything
    /// before it is intact and is delivered.
    pub damage: Option<String>,
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// Its format version: 2, or 1 for a file written before contract 0.2
    /// (its frames carry no terms; [`FrameReader`] derives them as the
    /// recorder does now).
    pub format: u8,
}

impl SpoolEntry {
    /// Reads `path` (which another process may still be appending to).
    pub fn read(path: &Path) -> Result<SpoolEntry, SpoolError> {
        let err = |e: io::Error| SpoolError::io(path, "cannot read", e);
        let file = File::open(path).map_err(err)?;
        let file_bytes = file.metadata().map_err(err)?.len();
        let mut r = BufReader::new(file);
        let (begin, format) = read_begin(path, &mut r)?;
        let mut entry = SpoolEntry {
            path: path.to_path_buf(),
            begin,
            frames: 0,
            bytes: 0,
            acked: 0,
            end: None,
            last_frame_at_us: None,
            damage: None,
            file_bytes,
            format,
        };
        let mut pos = 0u64;
        let mut frames = FrameCheck::default();
        loop {
            let next = record::read_next(&mut r).map_err(err)?;
            match next {
                Next::Record(Record::Frame(f), n) => {
                    if let Err(why) = frames.check(&f) {
                        entry.damage =
                            Some(format!("{why} (record at byte {pos} after the header)"));
                        break;
                    }
                    entry.frames += 1;
                    entry.bytes += f.payload.len() as u64;
                    entry.last_frame_at_us = Some(f.timestamp_us);
                    pos += n;
                }
                Next::Record(Record::Ack(next_seq), n) => {
                    entry.acked = entry.acked.max(next_seq);
                    pos += n;
                }
                Next::Record(Record::End(end), n) => {
                    entry.end = Some(end);
                    pos += n;
                }
                Next::Record(Record::Begin(_), _) => {
                    entry.damage = Some(format!(
                        "a second begin record at byte {pos} after the header"
                    ));
                    break;
                }
                Next::Eof => break,
                Next::Torn(why) => {
                    entry.damage = Some(format!("{why} at byte {pos} after the header"));
                    break;
                }
            }
        }
        entry.acked = entry.acked.min(entry.frames);
        Ok(entry)
    }

    /// The tape's id.
    pub fn tape_id(&self) -> &str {
        &self.begin.header.id
    }

    /// Frames spooled but not known to be taken by the provider.
    pub fn pending(&self) -> u64 {
        self.frames - self.acked
    }

    /// A reader of this entry's frames, from the first.
    pub fn frame_reader(&self) -> Result<FrameReader, SpoolError> {
        let err = |e: io::Error| SpoolError::io(&self.path, "cannot read", e);
        let mut r = BufReader::new(File::open(&self.path).map_err(err)?);
        let (_, format) = read_begin(&self.path, &mut r)?;
        Ok(FrameReader {
            r,
            check: FrameCheck::default(),
            limit: self.frames,
            path: self.path.clone(),
            derive_terms: format == 1,
        })
    }
}

/// Reads and checks the magic and the begin record; returns the begin
/// record and the format version.
fn read_begin(path: &Path, r: &mut impl Read) -> Result<(Begin, u8), SpoolError> {
    let err = |e: io::Error| SpoolError::io(path, "cannot read", e);
    let mut magic = [0u8; 8];
    let got = r.read(&mut magic).map_err(err)?;
    if got < magic.len() || !record::known_magic(&magic) {
        return Err(SpoolError::Damaged {
            path: path.to_path_buf(),
            why: "it does not start with a spool file signature (TDSPOOL2, or TDSPOOL1 before contract 0.2)".into(),
        });
    }
    let format = if &magic == record::MAGIC_V1 { 1 } else { 2 };
    match record::read_next(r).map_err(err)? {
        Next::Record(Record::Begin(b), _) => Ok((*b, format)),
        Next::Record(..) => Err(SpoolError::Damaged {
            path: path.to_path_buf(),
            why: "its first record is not a begin record".into(),
        }),
        Next::Eof | Next::Torn(_) => Err(SpoolError::Damaged {
            path: path.to_path_buf(),
            why: "its begin record is missing or damaged".into(),
        }),
    }
}

/// Checks that frames come numbered `0, 1, 2, …`.
#[derive(Default)]
struct FrameCheck {
    next: u64,
}

impl FrameCheck {
    fn check(&mut self, f: &Frame) -> Result<(), String> {
        if f.seq != self.next {
            return Err(format!(
                "frame {} where frame {} was expected",
                f.seq, self.next
            ));
        }
        self.next += 1;
        Ok(())
    }
}

/// The frames of a spool file, in order, in batches.
pub struct FrameReader {
    r: BufReader<File>,
    check: FrameCheck,
    /// Frames the entry was found to hold; nothing past them is read.
    limit: u64,
    path: PathBuf,
    /// A format-1 file: give JSON frames the terms the recorder derives.
    derive_terms: bool,
}

impl FrameReader {
    /// The next frames: at most `max_frames`, and no more once `max_bytes`
    /// of payload are reached (at least one frame if any remain). Empty at
    /// the end.
    pub fn next_batch(
        &mut self,
        max_frames: usize,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, SpoolError> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        while self.check.next < self.limit
            && out.len() < max_frames
            && (out.is_empty() || bytes < max_bytes)
        {
            let next = record::read_next(&mut self.r)
                .map_err(|e| SpoolError::io(&self.path, "cannot read", e))?;
            match next {
                Next::Record(Record::Frame(mut f), _) => {
                    self.check.check(&f).map_err(|why| SpoolError::Damaged {
                        path: self.path.clone(),
                        why,
                    })?;
                    if self.derive_terms && !f.not_json {
                        f.terms = payload_terms(&f.payload);
                    }
                    bytes += f.payload.len() as u64;
                    out.push(f);
                }
                Next::Record(..) => {}
                Next::Eof | Next::Torn(_) => {
                    return Err(SpoolError::Damaged {
                        path: self.path.clone(),
                        why: format!(
                            "it changed while being read: frame {} is gone",
                            self.check.next
                        ),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Skips frames until the next one is `seq`.
    pub fn skip_to(&mut self, seq: u64) -> Result<(), SpoolError> {
        while self.check.next < seq.min(self.limit) {
            let n = usize::try_from(seq - self.check.next).unwrap_or(usize::MAX);
            self.next_batch(n.min(4096), u64::MAX)?;
        }
        Ok(())
    }
}
