//! The JSONL interchange format used by `export` and `import`.
//!
//! One JSON object per line, each with a `type`:
//!
//! ```text
//! {"type":"header","format":"tapedeck-tape","version":2,"id":"…","session_id":"…","name":"…","tags":[["env","ci"]],"created_at_us":1732406400000000}
//! {"type":"frame","seq":0,"ts_us":1732406400000123,"dir":"c2s","msg":{"jsonrpc":"2.0","id":1,"method":"initialize"},"terms":["method:initialize"]}
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
//!
//! Version 2 (contract 0.2) adds optional fields, each written only when
//! there is something to write: a frame's index `terms` (a list of strings)
//! and `attributes` (a list of `[key, value]` pairs), the header's
//! `envelope` and the end line's `seal` (standard base64). A frame line
//! without `terms` (every version-1 line) is given the terms the host
//! derives from its payload ([`payload_terms`]), as the recorder does.
//! Version 1 files are still read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::{BufRead, Write};
use tapedeck_types::terms::{MAX_ENVELOPE, MAX_SEAL, check_frame_fields, payload_terms};
use tapedeck_types::{Direction, Frame, TapeHeader, TapeState, TapeSummary};

/// The `format` value of a header line.
pub const FORMAT: &str = "tapedeck-tape";
/// The format version this build writes.
pub const VERSION: u32 = 2;
/// The oldest format version this build reads (version 1: before terms,
/// attributes, envelope and seal).
pub const OLDEST_VERSION: u32 = 1;

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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        envelope: Option<String>,
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terms: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attributes: Vec<(String, String)>,
    },
    End {
        state: TapeState,
        frame_count: u64,
        byte_count: u64,
        ended_at_us: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seal: Option<String>,
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
    #[serde(default)]
    terms: Option<Vec<String>>,
    #[serde(default)]
    attributes: Vec<(String, String)>,
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
                terms: f.terms,
                attributes: f.attributes,
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
            envelope: header.envelope.as_deref().map(|e| B64.encode(e)),
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
            seal: summary.seal.as_deref().map(|s| B64.encode(s)),
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
/// (`{"type":"frame","seq":…,"ts_us":…,"dir":…,"msg"|"text"|"b64":…}`, and
/// `terms` and `attributes` when it has any), to embed frames in other JSON
/// output (`tapedeck show --json --frames`) exactly as `export` writes them.
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
            terms: (!f.terms.is_empty()).then(|| f.terms.clone()),
            attributes: f.attributes.clone(),
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
                envelope,
            } => {
                if format != FORMAT {
                    return Err(r.err(format!("format is {format:?}, expected {FORMAT:?}")));
                }
                if !(OLDEST_VERSION..=VERSION).contains(&version) {
                    return Err(r.err(format!(
                        "format version {version} is not supported (this tapedeck reads versions {OLDEST_VERSION} to {VERSION})"
                    )));
                }
                if let Err(e) = tapedeck_types::validate_tape_id(&id) {
                    return Err(r.err(e));
                }
                let envelope = envelope
                    .map(|e| r.bytes("envelope", &e, MAX_ENVELOPE))
                    .transpose()?;
                r.header = TapeHeader {
                    id,
                    session_id,
                    name,
                    tags,
                    created_at_us,
                    envelope,
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

    /// Decodes the base64 field `name`, of at most `max` bytes.
    fn bytes(&self, name: &str, b64: &str, max: usize) -> Result<Vec<u8>, JsonlError> {
        let bytes = B64
            .decode(b64.as_bytes())
            .map_err(|e| self.err(format!("{name} is not valid base64: {e}")))?;
        if bytes.len() > max {
            return Err(self.err(format!(
                "{name} is {} bytes, more than the {max} a tape may carry",
                bytes.len()
            )));
        }
        Ok(bytes)
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
                terms,
                attributes,
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
                // A line without terms (version 1) gets what the host
                // derives, as the recorder gives them.
                let terms = match terms {
                    Some(t) => t,
                    None if not_json => Vec::new(),
                    None => payload_terms(&payload),
                };
                check_frame_fields(&terms, &attributes)
                    .map_err(|e| self.err(format!("frame seq {seq} has {e}")))?;
                (
                    Some(Frame {
                        seq,
                        timestamp_us: ts_us,
                        direction,
                        payload,
                        not_json,
                        terms,
                        attributes,
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
                seal,
            } => {
                let seal = seal.map(|s| self.bytes("seal", &s, MAX_SEAL)).transpose()?;
                (
                    None,
                    Some(TapeEnd {
                        state,
                        summary: TapeSummary {
                            frame_count,
                            byte_count,
                            ended_at_us,
                            digest,
                            seal,
                        },
                    }),
                )
            }
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
            // As the recorder records them.
            terms: if not_json {
                Vec::new()
            } else {
                payload_terms(&payload)
            },
            payload,
            not_json,
            attributes: Vec::new(),
        })
        .collect()
    }

    fn export(frames: &[Frame]) -> Vec<u8> {
        export_with(&header(), frames, None)
    }

    fn export_with(header: &TapeHeader, frames: &[Frame], seal: Option<Vec<u8>>) -> Vec<u8> {
        let mut w = JsonlWriter::new(Vec::new(), header).unwrap();
        for f in frames {
            w.frame(f).unwrap();
        }
        let summary = TapeSummary {
            frame_count: frames.len() as u64,
            byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
            ended_at_us: 999,
            digest: Some("ab".into()),
            seal,
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

        let future = text.replacen("\"version\":2", "\"version\":9", 1);
        let e = import(future.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("format version 9 is not supported"), "{e}");
        let past = text.replacen("\"version\":2", "\"version\":0", 1);
        let e = import(past.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("format version 0 is not supported"), "{e}");

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

    #[test]
    fn host_fields_round_trip() {
        let mut h = header();
        h.envelope = Some(vec![0, 1, 2, 0xff]);
        let mut fs = frames();
        fs[0].terms = vec!["kh:0123abcd".into(), "method:initialize".into()];
        fs[0].attributes = vec![
            ("transport".into(), "http".into()),
            ("e".into(), String::new()),
        ];
        fs[2].attributes = vec![("k".into(), "v".into())];
        let seal = vec![7u8; 64];
        let bytes = export_with(&h, &fs, Some(seal.clone()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""envelope":"AAEC/w==""#), "{text}");
        assert!(
            text.contains(r#""terms":["kh:0123abcd","method:initialize"],"attributes":[["transport","http"],["e",""]]"#),
            "{text}"
        );
        assert!(text.contains(r#""seal":""#), "{text}");
        let (got_h, got, end) = import(&bytes).unwrap();
        assert_eq!(got_h, h);
        assert_eq!(got, fs);
        assert_eq!(end.summary.seal, Some(seal));
    }

    #[test]
    fn version_1_lines_are_read_with_terms_derived() {
        let v1 = concat!(
            r#"{"type":"header","format":"tapedeck-tape","version":1,"id":"old","session_id":"s","name":"n","tags":[],"created_at_us":1}"#,
            "\n",
            r#"{"type":"frame","seq":0,"ts_us":2,"dir":"c2s","msg":{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer"}}}"#,
            "\n",
            r#"{"type":"frame","seq":1,"ts_us":3,"dir":"s2c","msg":{"jsonrpc":"2.0","id":1,"result":{}}}"#,
            "\n",
            r#"{"type":"frame","seq":2,"ts_us":4,"dir":"s2c","text":"{\"method\":\"x\"} trailing","not_json":true}"#,
            "\n",
            r#"{"type":"end","state":"finished","frame_count":3,"byte_count":134,"ended_at_us":5,"digest":"ab"}"#,
            "\n",
        );
        let (h, got, end) = import(v1.as_bytes()).unwrap();
        assert_eq!((h.id.as_str(), h.envelope), ("old", None));
        assert_eq!(got[0].terms, ["method:tools/call", "tool:transfer"]);
        assert!(got[1].terms.is_empty() && got[2].terms.is_empty());
        assert!(got.iter().all(|f| f.attributes.is_empty()));
        assert_eq!(end.summary.seal, None);
        // Written as in the file, terms present but empty: kept empty.
        let empty = v1.replacen(r#"}}}"#, r#"}},"terms":[]}"#, 1);
        let (_, got, _) = import(empty.as_bytes()).unwrap();
        assert!(got[0].terms.is_empty());
    }

    #[test]
    fn host_fields_out_of_bounds_are_refused_naming_the_line() {
        let text = String::from_utf8(export(&frames())).unwrap();
        let many = format!(r#""terms":[{}]"#, vec![r#""t""#; 33].join(","));
        let bad = text.replacen(r#""terms":["method:initialize"]"#, &many, 1);
        let e = import(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 2: frame seq 0 has 33 terms"), "{e}");
        let bad = text.replacen(
            r#""dir":"c2s","#,
            r#""dir":"c2s","attributes":[["","v"]],"#,
            1,
        );
        let e = import(bad.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("line 2:") && e.contains("attribute key of 0 bytes"),
            "{e}"
        );
        let big = B64.encode(vec![0u8; MAX_SEAL + 1]);
        let bad = text.replacen(
            r#""digest":"ab""#,
            &format!(r#""digest":"ab","seal":"{big}""#),
            1,
        );
        let e = import(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("seal is 1025 bytes"), "{e}");
        let bad = text.replacen(
            r#""created_at_us":10"#,
            r#""created_at_us":10,"envelope":"!""#,
            1,
        );
        let e = import(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 1: envelope is not valid base64"), "{e}");
    }
}
