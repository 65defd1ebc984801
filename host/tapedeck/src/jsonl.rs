//! The JSONL interchange format used by `export` and `import`.
//!
//! One JSON object per line, each with a `type`:
//!
//! ```text
//! {"type":"header","format":"tapedeck-tape","version":1,"id":"…","session_id":"…","name":"…","tags":[["env","ci"]],"created_at_us":1732406400000000}
//! {"type":"frame","seq":0,"ts_us":1732406400000123,"dir":"c2s","msg":{"jsonrpc":"2.0","id":1,"method":"initialize"}}
//! {"type":"frame","seq":1,"ts_us":1732406400000456,"dir":"s2c","text":"not json at all","not_json":true}
//! {"type":"frame","seq":2,"ts_us":1732406400000789,"dir":"s2c","b64":"//79","not_json":true}
//! {"type":"end","state":"finished","frame_count":3,"byte_count":52,"ended_at_us":1732406401000000,"digest":"…"}
//! ```
//!
//! A payload is stored so that import gives back the exact bytes: as `msg`
//! (the JSON message itself, verbatim) when it is valid JSON on one line; as
//! `text` (a JSON string) when it is other UTF-8; as `b64` (standard base64)
//! otherwise. `version` is the format version; readers refuse versions they
//! do not know. Frames are numbered from 0 without gaps, and the `end` line
//! must agree with them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Write};
use tapedeck_types::{Direction, Frame, TapeHeader, TapeState, TapeSummary};

/// The `format` value of a header line.
pub const FORMAT: &str = "tapedeck-tape";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// What went wrong reading a JSONL tape, with the line it happened on.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line is malformed or inconsistent.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The input ended early.
    #[error("{0}")]
    Truncated(String),
}

/// One line, as written. (Reading goes through [`Line::parse`]: serde's
/// internally tagged enums cannot hold a borrowed `RawValue`.)
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum Line<'a> {
    Header {
        format: String,
        version: u32,
        id: String,
        session_id: String,
        name: String,
        tags: Vec<(String, String)>,
        created_at_us: u64,
    },
    Frame {
        seq: u64,
        ts_us: u64,
        dir: String,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        msg: Option<&'a RawValue>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        b64: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_json: bool,
    },
    End {
        state: TapeState,
        frame_count: u64,
        byte_count: u64,
        ended_at_us: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
}

#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

/// A frame line, for reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameLine<'a> {
    #[serde(rename = "type")]
    _type: &'a str,
    seq: u64,
    ts_us: u64,
    dir: String,
    #[serde(borrow, default)]
    msg: Option<&'a RawValue>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    b64: Option<String>,
    #[serde(default)]
    not_json: bool,
}

impl<'a> Line<'a> {
    fn parse(s: &'a str) -> Result<Line<'a>, serde_json::Error> {
        let kind: Kind<'_> = serde_json::from_str(s)?;
        if kind.kind == "frame" {
            let f: FrameLine<'a> = serde_json::from_str(s)?;
            Ok(Line::Frame {
                seq: f.seq,
                ts_us: f.ts_us,
                dir: f.dir,
                msg: f.msg,
                text: f.text,
                b64: f.b64,
                not_json: f.not_json,
            })
        } else {
            serde_json::from_str(s)
        }
    }
}

/// Writes one tape as JSONL, streaming.
pub struct JsonlWriter<W: Write> {
    out: W,
    next_seq: u64,
}

impl<W: Write> JsonlWriter<W> {
    /// Writes the header line.
    pub fn new(mut out: W, header: &TapeHeader) -> Result<Self, JsonlError> {
        let line = Line::Header {
            format: FORMAT.into(),
            version: VERSION,
            id: header.id.clone(),
            session_id: header.session_id.clone(),
            name: header.name.clone(),
            tags: header.tags.clone(),
            created_at_us: header.created_at_us,
        };
        write_line(&mut out, &line)?;
        Ok(JsonlWriter { out, next_seq: 0 })
    }

    /// Writes one frame line. Frames must come in order from 0.
    pub fn frame(&mut self, f: &Frame) -> Result<(), JsonlError> {
        if f.seq != self.next_seq {
            return Err(JsonlError::Line {
                line: self.next_seq + 2,
                message: format!(
                    "frame seq {} written where {} was due",
                    f.seq, self.next_seq
                ),
            });
        }
        self.next_seq += 1;
        write_line(&mut self.out, &EncodedFrame::new(f).0)
    }

    /// Writes the end line and returns the output.
    pub fn finish(mut self, state: TapeState, summary: &TapeSummary) -> Result<W, JsonlError> {
        let line = Line::End {
            state,
            frame_count: summary.frame_count,
            byte_count: summary.byte_count,
            ended_at_us: summary.ended_at_us,
            digest: summary.digest.clone(),
        };
        write_line(&mut self.out, &line)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_line(out: &mut impl Write, line: &Line<'_>) -> Result<(), JsonlError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A frame encoded as a `frame` line of this format
/// (`{"type":"frame","seq":…,"ts_us":…,"dir":…,"msg"|"text"|"b64":…}`), to
/// embed frames in other JSON output (`tapedeck show --json --frames`)
/// exactly as `export` writes them.
#[derive(Serialize)]
#[serde(transparent)]
pub struct EncodedFrame<'a>(Line<'a>);

impl<'a> EncodedFrame<'a> {
    /// Encodes `f`; the payload is borrowed when it is written verbatim.
    pub fn new(f: &'a Frame) -> Self {
        let (msg, text, b64) = encode_payload(&f.payload);
        EncodedFrame(Line::Frame {
            seq: f.seq,
            ts_us: f.timestamp_us,
            dir: f.direction.as_short().into(),
            msg,
            text,
            b64,
            not_json: f.not_json,
        })
    }
}

/// Chooses the representation of a payload: verbatim JSON, a string, or base64.
fn encode_payload(p: &[u8]) -> (Option<&RawValue>, Option<String>, Option<String>) {
    if let Ok(s) = std::str::from_utf8(p) {
        if !s.contains(['\n', '\r'])
            && let Ok(raw) = serde_json::from_str::<&RawValue>(s)
            // RawValue trims nothing: only accept if it is the whole text.
            && raw.get().len() == s.len()
        {
            return (Some(raw), None, None);
        }
        return (None, Some(s.to_string()), None);
    }
    (None, None, Some(B64.encode(p)))
}

/// The end line of a tape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapeEnd {
    /// The state the tape was in when exported.
    pub state: TapeState,
    /// Its totals.
    pub summary: TapeSummary,
}

/// Reads a JSONL tape, streaming: the header first, then frames one by one,
/// then the end line. Every inconsistency is an error naming its line.
pub struct JsonlReader<R: BufRead> {
    input: R,
    line_no: u64,
    buf: String,
    /// The header line.
    pub header: TapeHeader,
    next_seq: u64,
    bytes: u64,
    end: Option<TapeEnd>,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads and checks the header line.
    pub fn new(input: R) -> Result<Self, JsonlError> {
        let mut r = JsonlReader {
            input,
            line_no: 0,
            buf: String::new(),
            header: TapeHeader {
                id: String::new(),
                session_id: String::new(),
                name: String::new(),
                tags: Vec::new(),
                created_at_us: 0,
                envelope: None,
            },
            next_seq: 0,
            bytes: 0,
            end: None,
        };
        if !r.read_line()? {
            return Err(JsonlError::Truncated(
                "the input is empty: expected a tapedeck JSONL tape".into(),
            ));
        }
        let line = r.parse()?;
        match line {
            Line::Header {
                format,
                version,
                id,
                session_id,
                name,
                tags,
                created_at_us,
            } => {
                if format != FORMAT {
                    return Err(r.err(format!("format is {format:?}, expected {FORMAT:?}")));
                }
                if version != VERSION {
                    return Err(r.err(format!(
                        "format version {version} is not supported (this tapedeck reads version {VERSION})"
                    )));
                }
                if let Err(e) = tapedeck_types::validate_tape_id(&id) {
                    return Err(r.err(e));
                }
                r.header = TapeHeader {
                    id,
                    session_id,
                    name,
                    tags,
                    created_at_us,
                    envelope: None,
                };
                Ok(r)
            }
            _ => Err(r.err("the first line must be the header (\"type\":\"header\")".into())),
        }
    }

    fn err(&self, message: String) -> JsonlError {
        JsonlError::Line {
            line: self.line_no,
            message,
        }
    }

    fn read_line(&mut self) -> Result<bool, JsonlError> {
        self.buf.clear();
        let n = self.input.read_line(&mut self.buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                JsonlError::Line {
                    line: self.line_no + 1,
                    message: "not valid UTF-8".into(),
                }
            } else {
                JsonlError::Io(e)
            }
        })?;
        self.line_no += 1;
        Ok(n > 0)
    }

    fn parse(&self) -> Result<Line<'_>, JsonlError> {
        Line::parse(self.buf.trim_end_matches(['\n', '\r'])).map_err(|e| self.err(e.to_string()))
    }

    /// The next frame, or `None` after the end line (whose data is then in
    /// [`JsonlReader::end`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, JsonlError> {
        if self.end.is_some() {
            return Ok(None);
        }
        if !self.read_line()? {
            return Err(JsonlError::Truncated(format!(
                "the input ends after {} frames without an end line: the export is incomplete",
                self.next_seq
            )));
        }
        let (frame, end) = match self.parse()? {
            Line::Frame {
                seq,
                ts_us,
                dir,
                msg,
                text,
                b64,
                not_json,
            } => {
                if seq != self.next_seq {
                    return Err(self.err(format!(
                        "frame seq {seq} where {} was expected (frames missing or out of order)",
                        self.next_seq
                    )));
                }
                let direction = Direction::from_short(&dir).ok_or_else(|| {
                    self.err(format!("dir is {dir:?}, expected \"c2s\" or \"s2c\""))
                })?;
                let payload = match (msg, text, b64) {
                    (Some(m), None, None) => m.get().as_bytes().to_vec(),
                    (None, Some(t), None) => t.into_bytes(),
                    (None, None, Some(b)) => B64
                        .decode(b.as_bytes())
                        .map_err(|e| self.err(format!("b64 is not valid base64: {e}")))?,
                    _ => {
                        return Err(self.err(
                            "a frame needs exactly one of \"msg\", \"text\" or \"b64\"".into(),
                        ));
                    }
                };
                (
                    Some(Frame {
                        seq,
                        timestamp_us: ts_us,
                        direction,
                        payload,
                        not_json,
                        terms: Vec::new(),
                        attributes: Vec::new(),
                    }),
                    None,
                )
            }
            Line::End {
                state,
                frame_count,
                byte_count,
                ended_at_us,
                digest,
            } => (
                None,
                Some(TapeEnd {
                    state,
                    summary: TapeSummary {
                        frame_count,
                        byte_count,
                        ended_at_us,
                        digest,
                        seal: None,
                    },
                }),
            ),
            Line::Header { .. } => return Err(self.err("a second header line".into())),
        };
        if let Some(f) = frame {
            self.next_seq += 1;
            self.bytes += f.payload.len() as u64;
            return Ok(Some(f));
        }
        let end = end.expect("end line");
        if end.summary.frame_count != self.next_seq || end.summary.byte_count != self.bytes {
            return Err(self.err(format!(
                "the end line says {} frames and {} bytes, but the file holds {} frames and {} bytes",
                end.summary.frame_count, end.summary.byte_count, self.next_seq, self.bytes
            )));
        }
        if end.state == TapeState::Recording {
            return Err(self.err("an exported tape cannot end in state \"recording\"".into()));
        }
        self.end = Some(end);
        if self.read_line()? && !self.buf.trim().is_empty() {
            return Err(self.err("content after the end line".into()));
        }
        Ok(None)
    }

    /// The 1-based number of the line read last; once the input has ended
    /// early, the number of the line that was missing (to name it in a
    /// [`JsonlError::Truncated`] report).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// The end line, once [`JsonlReader::next_frame`] has returned `None`.
    pub fn end(&self) -> Option<&TapeEnd> {
        self.end.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> TapeHeader {
        TapeHeader {
            id: "t1".into(),
            session_id: "s".into(),
            name: "demo ✓".into(),
            tags: vec![("env".into(), "ci".into())],
            created_at_us: 10,
            envelope: None,
        }
    }

    fn frames() -> Vec<Frame> {
        let p = |s: &[u8], nj| (s.to_vec(), nj);
        [
            p(br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#, false),
            p(br#"{ "spaced" : [1, 2.50, 1e3] }"#, false),
            p("plain text – ünïcode 🎉".as_bytes(), true),
            p(b"\xff\xfe\x00binary", true),
            p(b"", true),
            p(b"{\"multi\":\n1}", false),
            p(b"  {\"lead\":1}", false),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (payload, not_json))| Frame {
            seq: i as u64,
            timestamp_us: 100 + i as u64,
            direction: if i % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            payload,
            not_json,
            terms: Vec::new(),
            attributes: Vec::new(),
        })
        .collect()
    }

    fn export(frames: &[Frame]) -> Vec<u8> {
        let mut w = JsonlWriter::new(Vec::new(), &header()).unwrap();
        for f in frames {
            w.frame(f).unwrap();
        }
        let summary = TapeSummary {
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: 999,
            digest: Some("ab".into()),
            seal: None,
        };
        w.finish(TapeState::Finished, &summary).unwrap()
    }

    fn import(bytes: &[u8]) -> Result<(TapeHeader, Vec<Frame>, TapeEnd), JsonlError> {
        let mut r = JsonlReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame()? {
            out.push(f);
        }
        Ok((r.header.clone(), out, r.end().unwrap().clone()))
    }

    #[test]
    fn round_trip_is_byte_exact() {
        let fs = frames();
        let bytes = export(&fs);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""msg":{"jsonrpc":"2.0","id":1,"method":"initialize"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""msg":{ "spaced" : [1, 2.50, 1e3] }"#),
            "{text}"
        );
        assert!(text.contains(r#""b64":"//4AYmluYXJ5""#), "{text}");
        let (h, got, end) = import(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(got, fs);
        assert_eq!(end.state, TapeState::Finished);
        assert_eq!(end.summary.digest.as_deref(), Some("ab"));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let bytes = export(&frames());
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        let missing: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let e = import(missing.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("line 4: frame seq 3 where 2 was expected"),
            "{e}"
        );

        let truncated: String = lines[..4].iter().map(|l| format!("{l}\n")).collect();
        let e = import(truncated.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("without an end line"), "{e}");

        let bad = text.replacen("\"c2s\"", "\"sideways\"", 1);
        let e = import(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 2:") && e.contains("sideways"), "{e}");

        let future = text.replacen("\"version\":1", "\"version\":9", 1);
        let e = import(future.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("format version 9 is not supported"), "{e}");

        let evil = text.replacen("\"id\":\"t1\"", "\"id\":\"../etc\"", 1);
        let e = import(evil.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 1:") && e.contains("tape id"), "{e}");

        let e = import(b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");

        let e = import(b"{\"type\":\"frame\"}\n").unwrap_err().to_string();
        assert!(e.starts_with("line 1:"), "{e}");

        let lying = text.replacen("\"frame_count\":7", "\"frame_count\":8", 1);
        let e = import(lying.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("says 8 frames"), "{e}");
    }
}
