//! `tapedeck show TAPE [--frames] [filters] [--follow] [--no-verify]`: one
//! tape's header, state, totals and digest, optionally its frames, and
//! whether the frames the provider returns are intact (see
//! [`tapedeck::read`]; a mismatch is an error, exit 1).
//!
//! The frame filters (`--method`, `--dir`, `--from`, `--limit`) choose
//! which frames are printed, never which are checked: the whole tape is
//! still read and verified against its digest.
//!
//! `--follow` prints the frames of a tape still `recording` as they arrive
//! (polling the provider every [`POLL`]), until the tape ends; then its
//! final state and the verification of every frame that was printed.

use super::{Context, output, read_tape, resolve_tape, tape_error};
use anyhow::{anyhow, bail};
use clap::Args;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use tapedeck::Store;
use tapedeck::jsonl::EncodedFrame;
use tapedeck::read::{
    DEFAULT_PAGE_BYTES, DEFAULT_PAGE_FRAMES, IntegrityError, UnverifiedReason, Verification,
};
use tapedeck::recorder::{DigestChain, HostEvent};
use tapedeck::store::TapeStore;
use tapedeck::types::{Direction, Frame, TapeInfo, TapeState};

/// How often `--follow` asks the provider for new frames.
const POLL: Duration = Duration::from_millis(200);

/// On a terminal (without `--full`), payloads are cut after this many
/// characters, followed by `… (N bytes)`.
const SHORT_PAYLOAD: usize = 200;

/// Exit code after Ctrl-C ends `--follow` (128 + SIGINT, as a shell reports).
const INTERRUPTED: u8 = 130;

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The tape: its id, `latest` for the newest tape, a unique prefix of
    /// its id, or its name (the newest tape of that name).
    #[arg(value_name = "TAPE")]
    id: String,
    /// Also print the frames: sequence number, time, direction (→ client to
    /// server, ← server to client) and payload. With --json, the object gets
    /// a "frame_list" array of frames encoded as in the JSONL export (with a
    /// frame's index "terms" and its "attributes" when it has any). Implied
    /// by the frame filters and --follow.
    #[arg(long)]
    frames: bool,
    /// Only frames of JSON-RPC method M: requests and notifications whose
    /// "method" is M and, as responses carry no method, the responses to
    /// those requests (same "id", the other direction). Batches (arrays)
    /// and lines that are not JSON never match.
    #[arg(long, value_name = "M")]
    method: Option<String>,
    /// Only frames in this direction: c2s (client to server) or s2c (server
    /// to client).
    #[arg(long = "dir", value_name = "DIR", value_parser = parse_direction)]
    direction: Option<Direction>,
    /// Only frames from sequence number SEQ on (frames count from 0).
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// Print at most N frames (of those the other filters let through).
    /// With --follow, following ends once N frames were printed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Keep printing the frames of a tape that is still recording as they
    /// arrive (like `tail -f`), until the tape ends: then print its final
    /// state and whether every frame verifies. Ctrl-C stops following (exit
    /// 130). With --json, one JSON object per line: the tape
    /// ({"type":"tape",…}), each frame as in the JSONL export
    /// ({"type":"frame",…}), and the tape again once it ended, with
    /// "integrity". A tape that already ended is shown as with --frames (with
    /// --json, as those lines at once).
    #[arg(long)]
    follow: bool,
    /// Print payloads whole. On a terminal, a payload longer than 200
    /// characters is cut, with its size; elsewhere (a pipe, a file) and
    /// with --json, payloads are always whole.
    #[arg(long)]
    full: bool,
    /// Do not check the frames against the tape's totals and digest: show
    /// whatever the provider returns, to rescue data from a damaged tape.
    #[arg(long)]
    no_verify: bool,
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    Direction::from_short(s).ok_or_else(|| {
        format!("{s:?} is not a direction: c2s (client to server) or s2c (server to client)")
    })
}

/// `tapedeck show`.
pub async fn run(ctx: &mut Context, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let info = resolve_tape(&store, &args.id).await?;
    let mut filter = FrameFilter::new(&args);
    let frames = args.frames || args.follow || filter.is_active();
    let verify = !args.no_verify;
    let width =
        (!args.full && !ctx.json && std::io::stdout().is_terminal()).then_some(SHORT_PAYLOAD);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // With --json, the same JSON lines whatever the tape's state.
    if args.follow && (ctx.json || info.state == TapeState::Recording) {
        let mut follow = Follow {
            store: &store,
            json: ctx.json,
            width,
            verify,
            filter,
            out: &mut out,
        };
        return follow.run(info).await;
    }
    if ctx.json {
        write_tape_fields(&mut out, &info, None)?;
        let result = if frames {
            out.write_all(b",\"frame_list\":[")?;
            let mut first = true;
            let result = read_tape(&store, &info, verify, |page| {
                for f in page.iter().filter(|f| filter.wants(f)) {
                    if !std::mem::take(&mut first) {
                        out.write_all(b",")?;
                    }
                    write_frame_json(&mut out, f)?;
                }
                Ok(())
            })
            .await;
            out.write_all(b"]")?;
            result
        } else {
            read_tape(&store, &info, verify, |_| Ok(())).await
        };
        // A failed check still ends the document, saying what failed.
        let (integrity, result) = integrity_member(result)?;
        out.write_all(b",\"integrity\":")?;
        serde_json::to_writer(&mut out, &integrity)?;
        out.write_all(b"}\n")?;
        out.flush()?;
        result?;
    } else {
        out.write_all(header(&info).as_bytes())?;
        let result = if frames {
            writeln!(out)?;
            let result = read_tape(&store, &info, verify, |page| {
                for f in page.iter().filter(|f| filter.wants(f)) {
                    writeln!(out, "{}", frame_line(f, width))?;
                }
                Ok(())
            })
            .await;
            if let Ok(v) = &result {
                if v.frames() == 0 {
                    writeln!(out, "(no frames)")?;
                } else if filter.shown == 0 {
                    writeln!(out, "(no frames match)")?;
                }
                writeln!(out)?;
            }
            result
        } else {
            read_tape(&store, &info, verify, |_| Ok(())).await
        };
        // What was printed stays printed; an error goes to stderr.
        out.flush()?;
        let verification = result?;
        writeln!(out, "{}", line("integrity", &verification.to_string()))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `{` and the fields of [`output::tape_json`] (after `"type"`, when
/// given), leaving the object open for more fields.
fn write_tape_fields(
    out: &mut impl Write,
    info: &TapeInfo,
    kind: Option<&str>,
) -> anyhow::Result<()> {
    let serde_json::Value::Object(fields) = output::tape_json(info) else {
        unreachable!("tape_json builds an object")
    };
    out.write_all(b"{")?;
    if let Some(kind) = kind {
        out.write_all(b"\"type\":")?;
        serde_json::to_writer(&mut *out, kind)?;
        if !fields.is_empty() {
            out.write_all(b",")?;
        }
    }
    // Written field by field so the frames can stream after them.
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":")?;
        serde_json::to_writer(&mut *out, value)?;
    }
    Ok(())
}

/// Which frames are printed (`--method`, `--dir`, `--from`, `--limit`).
/// [`wants`](Self::wants) must see every frame of the tape, in order: a
/// response matches `--method` through the request before it.
struct FrameFilter {
    method: Option<String>,
    direction: Option<Direction>,
    from: u64,
    limit: Option<u64>,
    /// Requests of `method` not answered yet: the direction they travelled
    /// and their `id` (as JSON text).
    pending: HashSet<(Direction, String)>,
    /// Frames let through so far.
    shown: u64,
}

impl FrameFilter {
    fn new(args: &ShowArgs) -> Self {
        FrameFilter {
            method: args.method.clone(),
            direction: args.direction,
            from: args.from.unwrap_or(0),
            limit: args.limit,
            pending: HashSet::new(),
            shown: 0,
        }
    }

    /// True when any filter is given.
    fn is_active(&self) -> bool {
        self.method.is_some() || self.direction.is_some() || self.from > 0 || self.limit.is_some()
    }

    /// True once `--limit` frames were let through.
    fn is_done(&self) -> bool {
        self.limit.is_some_and(|l| self.shown >= l)
    }

    /// Should `f` be printed? Counts it if so.
    fn wants(&mut self, f: &Frame) -> bool {
        // Always looked at, to pair responses with requests.
        let method = match &self.method {
            Some(m) => method_matches(&mut self.pending, m, f),
            None => true,
        };
        let wanted = method
            && self.direction.is_none_or(|d| d == f.direction)
            && f.seq >= self.from
            && !self.is_done();
        if wanted {
            self.shown += 1;
        }
        wanted
    }
}

/// `f` is a request or notification of `method`, or the response to a
/// request of `method` in `pending` (the requests seen so far that await
/// their response: the direction they travelled and their id).
fn method_matches(pending: &mut HashSet<(Direction, String)>, method: &str, f: &Frame) -> bool {
    let Some(message) = Message::of(f) else {
        return false;
    };
    match (message.method, message.id) {
        (Some(m), id) => {
            let matches = m == method;
            if let (true, Some(id)) = (matches, id) {
                pending.insert((f.direction, id));
            }
            matches
        }
        (None, Some(id)) => {
            let request = match f.direction {
                Direction::ClientToServer => Direction::ServerToClient,
                Direction::ServerToClient => Direction::ClientToServer,
            };
            pending.remove(&(request, id))
        }
        (None, None) => false,
    }
}

/// What `--method` needs of a JSON-RPC message.
struct Message {
    /// `"method"`, when it is a string (a request or notification).
    method: Option<String>,
    /// `"id"` as JSON text, when present and not null.
    id: Option<String>,
}

impl Message {
    /// The message in `f`'s payload, if it is a JSON object.
    fn of(f: &Frame) -> Option<Message> {
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(default, borrow)]
            id: Option<&'a serde_json::value::RawValue>,
            #[serde(default)]
            method: Option<serde_json::Value>,
        }
        // Only an object is one message (serde also reads arrays as structs).
        if f.not_json || f.payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let probe: Probe = serde_json::from_slice(&f.payload).ok()?;
        Some(Message {
            method: match probe.method {
                Some(serde_json::Value::String(m)) => Some(m),
                _ => None,
            },
            id: probe
                .id
                .map(|raw| raw.get().to_string())
                .filter(|id| id != "null"),
        })
    }
}

/// `show --follow` of a tape still recording.
struct Follow<'a, W: Write> {
    store: &'a Store,
    json: bool,
    width: Option<usize>,
    verify: bool,
    filter: FrameFilter,
    out: &'a mut W,
}

/// How following a tape stopped.
enum Followed {
    /// The tape ended; every frame up to its end was read.
    Ended(Box<TapeInfo>),
    /// `--limit` frames were printed.
    Limit,
}

impl<W: Write> Follow<'_, W> {
    async fn run(&mut self, info: TapeInfo) -> anyhow::Result<ExitCode> {
        let id = info.header.id.clone();
        let interrupt = interrupted()?;
        if self.json {
            write_tape_fields(self.out, &info, Some("tape"))?;
            self.out.write_all(b"}\n")?;
        } else {
            self.out.write_all(header(&info).as_bytes())?;
            writeln!(self.out)?;
        }
        self.out.flush()?;
        let mut chain = DigestChain::new();
        let followed = tokio::select! {
            followed = self.frames(&id, &mut chain) => Some(followed?),
            () = interrupt => None,
        };
        let ended = match followed {
            Some(Followed::Ended(ended)) => *ended,
            Some(Followed::Limit) => {
                self.out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            None => {
                self.out.flush()?;
                eprintln!("tapedeck: stopped following tape {id}");
                return Ok(ExitCode::from(INTERRUPTED));
            }
        };
        if !self.json && self.filter.shown == 0 {
            let none = if chain.frames() == 0 {
                "(no frames)"
            } else {
                "(no frames match)"
            };
            writeln!(self.out, "{none}")?;
        }
        self.out.flush()?;
        let result = self.check(&ended, &chain).await;
        if self.json {
            let (integrity, result) = integrity_member(result)?;
            write_tape_fields(self.out, &ended, Some("tape"))?;
            self.out.write_all(b",\"integrity\":")?;
            serde_json::to_writer(&mut *self.out, &integrity)?;
            self.out.write_all(b"}\n")?;
            self.out.flush()?;
            result?;
        } else {
            writeln!(self.out)?;
            self.out.write_all(footer(&ended).as_bytes())?;
            self.out.flush()?;
            let verification = result?;
            writeln!(self.out, "{}", line("integrity", &verification.to_string()))?;
        }
        self.out.flush()?;
        Ok(ExitCode::SUCCESS)
    }

    /// Reads the frames of tape `id` from seq 0, printing those the filter
    /// wants and adding every one to `chain`; when the provider has no more,
    /// asks whether the tape is still recording: if so waits [`POLL`], else
    /// reads what came before its end and returns how it ended.
    async fn frames(&mut self, id: &str, chain: &mut DigestChain) -> anyhow::Result<Followed> {
        let store = self.store;
        let mut ended = None;
        loop {
            let next = chain.frames();
            let page = store
                .read_frames(id, next, DEFAULT_PAGE_FRAMES, DEFAULT_PAGE_BYTES)
                .await
                .map_err(|e| tape_error(e, store, id))?;
            if page.is_empty() {
                if let Some(info) = ended {
                    return Ok(Followed::Ended(Box::new(info)));
                }
                let info = store.get(id).await.map_err(|e| tape_error(e, store, id))?;
                if info.state == TapeState::Recording {
                    tokio::time::sleep(POLL).await;
                } else {
                    // Frames may have arrived between the read and `get`.
                    ended = Some(info);
                }
                continue;
            }
            for (expected, f) in (next..).zip(&page) {
                if f.seq != expected {
                    bail!(
                        "tape {id}: provider {} returned frame {} where frame {expected} was expected",
                        store.name(),
                        f.seq
                    );
                }
                chain.push(f);
                if self.filter.wants(f) {
                    if self.json {
                        write_frame_json(&mut *self.out, f)?;
                        self.out.write_all(b"\n")?;
                    } else {
                        writeln!(self.out, "{}", frame_line(f, self.width))?;
                    }
                }
            }
            self.out.flush()?;
            if self.filter.is_done() {
                return Ok(Followed::Limit);
            }
        }
    }

    /// After the tape ended: reads it again, verified against its digest
    /// (unless `--no-verify`), and checks that the frames followed are the
    /// frames verified.
    async fn check(
        &self,
        ended: &TapeInfo,
        followed: &DigestChain,
    ) -> anyhow::Result<Verification> {
        if !self.verify {
            return Ok(Verification::Unverified {
                reason: UnverifiedReason::Skipped,
                frames: followed.frames(),
            });
        }
        let mut chain = DigestChain::new();
        let verification = read_tape(self.store, ended, true, |page| {
            page.iter().for_each(|f| chain.push(f));
            Ok(())
        })
        .await?;
        if chain.frames() != followed.frames() || chain.hex() != followed.hex() {
            return Err(anyhow!(
                "tape {}: the {} frames provider {} returned while the tape was recording are not the first {} it returns now that it ended",
                ended.header.id,
                followed.frames(),
                self.store.name(),
                followed.frames()
            ));
        }
        Ok(verification)
    }
}

/// Completes on Ctrl-C (SIGINT), listened for from this call on: a Ctrl-C
/// then no longer ends the process.
fn interrupted() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt())?;
        Ok(async move {
            sigint.recv().await;
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// The header block: one `key  value` line per fact.
fn header(t: &TapeInfo) -> String {
    let h = &t.header;
    let lines = vec![
        ("tape", h.id.clone()),
        ("name", output::printable(&h.name).into_owned()),
        ("session", output::printable(&h.session_id).into_owned()),
        ("tags", output::tags(&h.tags)),
        ("created", output::time(h.created_at_us)),
    ];
    lines
        .into_iter()
        .map(|(k, v)| line(k, &v) + "\n")
        .chain(std::iter::once(footer(t)))
        .collect()
}

/// How the tape ended (or that it did not yet) and its totals: the end of
/// the header block, and what `--follow` prints once the tape ended.
fn footer(t: &TapeInfo) -> String {
    let mut lines = Vec::new();
    if let Some(end) = t.ended_at_us {
        lines.push((
            "ended",
            format!(
                "{} (after {})",
                output::time(end),
                output::duration(end.saturating_sub(t.header.created_at_us))
            ),
        ));
    }
    lines.extend([
        ("state", t.state.as_str().to_string()),
        ("frames", t.frame_count.to_string()),
        (
            "bytes",
            format!("{} ({} bytes)", output::size(t.byte_count), t.byte_count),
        ),
        ("digest", t.digest.clone().unwrap_or_else(|| "none".into())),
    ]);
    lines.into_iter().map(|(k, v)| line(k, &v) + "\n").collect()
}

/// The `integrity` member of a JSON document for a read's `result`, and the
/// result to report after the document is complete. A failure that is not
/// an integrity check's (the provider failed: nothing to conclude) is
/// returned at once as the error.
fn integrity_member(
    result: anyhow::Result<Verification>,
) -> anyhow::Result<(serde_json::Value, anyhow::Result<Verification>)> {
    let integrity = match &result {
        Ok(v) => output::integrity_json(Ok(v)),
        Err(e) => match e.downcast_ref::<IntegrityError>() {
            Some(e) => output::integrity_json(Err(e)),
            None => serde_json::Value::Null,
        },
    };
    match result {
        Err(e) if e.downcast_ref::<IntegrityError>().is_none() => Err(e),
        r => Ok((integrity, r)),
    }
}

/// A frame as JSON, in the shape of the JSONL export; a host event (see
/// [`HostEvent`]) also carries `"event"`: what it says, as an object.
fn write_frame_json(out: &mut impl Write, f: &Frame) -> anyhow::Result<()> {
    match HostEvent::of(f) {
        None => serde_json::to_writer(out, &EncodedFrame::new(f))?,
        Some(event) => {
            let mut v = serde_json::to_value(EncodedFrame::new(f))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("event".into(), serde_json::to_value(&event)?);
            }
            serde_json::to_writer(out, &v)?;
        }
    }
    Ok(())
}

/// One `key  value` line of the header block (without the newline).
fn line(key: &str, value: &str) -> String {
    format!("{key:<9} {value}")
}

/// `     3  2026-11-24 10:03:12.123  →  {"jsonrpc":…}`; a host event (see
/// [`HostEvent`]) shows as `⚑` and what it says; a payload that is
/// not UTF-8 shows as `<N bytes binary>`, and `[not json]` marks lines that
/// were not JSON. Control characters are escaped; with `width`, a payload
/// longer than `width` characters (escaped) is cut there and followed by
/// `… (N bytes)`.
fn frame_line(f: &Frame, width: Option<usize>) -> String {
    if let Some(event) = HostEvent::of(f) {
        // What tapedeck itself recorded (stderr, signals, the end).
        return format!(
            "{:>6}  {}  ⚑  {}",
            f.seq,
            output::time_ms(f.timestamp_us),
            shorten(
                &output::printable(&event.to_string()),
                width,
                f.payload.len()
            )
        );
    }
    let arrow = match f.direction {
        Direction::ClientToServer => "→",
        Direction::ServerToClient => "←",
    };
    let payload = match std::str::from_utf8(&f.payload) {
        Ok("") => "<empty>".to_string(),
        Ok(s) => shorten(&output::printable(s), width, f.payload.len()),
        Err(_) => format!("<{} bytes binary>", f.payload.len()),
    };
    let flag = if f.not_json { "[not json] " } else { "" };
    format!(
        "{:>6}  {}  {arrow}  {flag}{payload}",
        f.seq,
        output::time_ms(f.timestamp_us)
    )
}

/// `text` cut after `width` characters, with the payload's size `bytes`.
fn shorten(text: &str, width: Option<usize>, bytes: usize) -> String {
    match width.and_then(|w| text.char_indices().nth(w)) {
        Some((cut, _)) => format!("{}… ({bytes} bytes)", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tapedeck::types::TapeHeader;

    fn frame(payload: &[u8], direction: Direction, not_json: bool) -> Frame {
        Frame {
            seq: 7,
            timestamp_us: 1_795_514_592_123_000,
            direction,
            payload: payload.to_vec(),
            not_json,
            terms: Vec::new(),
            attributes: Vec::new(),
        }
    }

    #[test]
    fn frame_lines() {
        assert_eq!(
            frame_line(
                &frame(br#"{"method":"ping"}"#, Direction::ClientToServer, false),
                None
            ),
            r#"     7  2026-11-24 10:03:12.123  →  {"method":"ping"}"#
        );
        assert_eq!(
            frame_line(&frame(b"oops\n", Direction::ServerToClient, true), None),
            r"     7  2026-11-24 10:03:12.123  ←  [not json] oops\n"
        );
        assert_eq!(
            frame_line(
                &frame(b"\xff\x00\x01", Direction::ServerToClient, true),
                Some(1)
            ),
            "     7  2026-11-24 10:03:12.123  ←  [not json] <3 bytes binary>"
        );
    }

    #[test]
    fn long_payloads_are_cut_only_when_asked() {
        let long = format!(r#"{{"text":"{}"}}"#, "é".repeat(300));
        let f = frame(long.as_bytes(), Direction::ServerToClient, false);
        assert!(frame_line(&f, None).ends_with(&long));
        let cut = frame_line(&f, Some(20));
        let payload = cut.split("←  ").nth(1).unwrap();
        assert_eq!(
            payload,
            format!(r#"{{"text":"{}… ({} bytes)"#, "é".repeat(11), long.len())
        );
        // Exactly the width: whole.
        assert_eq!(shorten("abc", Some(3), 3), "abc");
        assert_eq!(shorten("abcd", Some(3), 4), "abc… (4 bytes)");
        // Escapes count as what is printed.
        assert_eq!(
            frame_line(&frame(b"a\x1bb", Direction::ServerToClient, true), Some(4)),
            r"     7  2026-11-24 10:03:12.123  ←  [not json] a\u{… (3 bytes)"
        );
    }

    /// `tapedeck show t ARGS` parsed.
    fn args(extra: &[&str]) -> ShowArgs {
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            show: ShowArgs,
        }
        let mut argv = vec!["show", "t"];
        argv.extend_from_slice(extra);
        Cmd::try_parse_from(argv).unwrap().show
    }

    fn at(seq: u64, direction: Direction, payload: &str) -> Frame {
        Frame {
            seq,
            timestamp_us: 0,
            direction,
            payload: payload.as_bytes().to_vec(),
            not_json: serde_json::from_str::<serde_json::Value>(payload).is_err(),
            terms: Vec::new(),
            attributes: Vec::new(),
        }
    }

    fn shown(extra: &[&str], frames: &[Frame]) -> Vec<u64> {
        let mut filter = FrameFilter::new(&args(extra));
        frames
            .iter()
            .filter(|f| filter.wants(f))
            .map(|f| f.seq)
            .collect()
    }

    #[test]
    fn filters_by_method_direction_seq_and_count() {
        use Direction::{ClientToServer as C2S, ServerToClient as S2C};
        let frames = [
            at(0, C2S, r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#),
            at(1, S2C, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            at(
                2,
                C2S,
                r#"{"jsonrpc":"2.0","id":"a","method":"tools/call"}"#,
            ),
            at(
                3,
                S2C,
                r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
            ),
            // A server request with the same id as the client's: not an
            // answer to it.
            at(
                4,
                S2C,
                r#"{"jsonrpc":"2.0","id":"a","method":"sampling/createMessage"}"#,
            ),
            at(5, C2S, r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            at(
                6,
                S2C,
                r#"{"jsonrpc":"2.0","id":"a","result":{"content":[]}}"#,
            ),
            at(
                7,
                C2S,
                r#"[{"jsonrpc":"2.0","id":3,"method":"tools/call"}]"#,
            ),
            at(8, S2C, "not json"),
            at(9, S2C, r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
        ];
        assert_eq!(shown(&[], &frames), (0..10).collect::<Vec<_>>());
        assert_eq!(shown(&["--method", "tools/call"], &frames), [2, 6]);
        assert_eq!(shown(&["--method", "initialize"], &frames), [0, 1]);
        assert_eq!(
            shown(&["--method", "sampling/createMessage"], &frames),
            [4, 5]
        );
        assert_eq!(shown(&["--dir", "c2s"], &frames), [0, 2, 5, 7]);
        assert_eq!(shown(&["--from", "6"], &frames), [6, 7, 8, 9]);
        assert_eq!(shown(&["--limit", "2", "--dir", "s2c"], &frames), [1, 3]);
        // A response to a request before --from still belongs to it.
        assert_eq!(
            shown(&["--method", "tools/call", "--from", "3"], &frames),
            [6]
        );
        assert!(!FrameFilter::new(&args(&[])).is_active());
        assert!(FrameFilter::new(&args(&["--from", "1"])).is_active());
    }

    #[test]
    fn bad_filter_values_are_refused() {
        #[derive(Parser, Debug)]
        struct Cmd {
            #[command(flatten)]
            show: ShowArgs,
        }
        let err = Cmd::try_parse_from(["show", "t", "--dir", "up"]).unwrap_err();
        assert!(err.to_string().contains("c2s"), "{err}");
        assert!(Cmd::try_parse_from(["show", "t", "--limit", "0"]).is_err());
    }

    #[test]
    fn header_block() {
        let info = TapeInfo {
            header: TapeHeader {
                id: "t1".into(),
                session_id: "s1".into(),
                name: "demo".into(),
                tags: vec![("env".into(), "ci".into())],
                created_at_us: 1_795_514_592_000_000,
                envelope: None,
            },
            state: TapeState::Finished,
            frame_count: 3,
            byte_count: 2048,
            ended_at_us: Some(1_795_514_700_000_000),
            digest: None,
            seal: None,
        };
        assert_eq!(
            header(&info),
            "tape      t1\nname      demo\nsession   s1\ntags      env=ci\n\
             created   2026-11-24 10:03:12 UTC\nended     2026-11-24 10:05:00 UTC (after 1m 48s)\n\
             state     finished\nframes    3\nbytes     2.0 KiB (2048 bytes)\ndigest    none\n"
        );
        assert_eq!(
            footer(&info),
            "ended     2026-11-24 10:05:00 UTC (after 1m 48s)\n\
             state     finished\nframes    3\nbytes     2.0 KiB (2048 bytes)\ndigest    none\n"
        );
    }

    #[test]
    fn json_frames_carry_terms_and_attributes_when_they_have_any() {
        let json = |f: &Frame| {
            let mut out = Vec::new();
            write_frame_json(&mut out, f).unwrap();
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()
        };
        let plain = frame(b"{}", Direction::ClientToServer, false);
        let v = json(&plain);
        assert!(
            v.get("terms").is_none() && v.get("attributes").is_none(),
            "{v}"
        );
        let mut rich = plain.clone();
        rich.terms = vec!["method:tools/call".into(), "tool:t".into()];
        rich.attributes = vec![("transport".into(), "http".into())];
        let v = json(&rich);
        assert_eq!(
            v["terms"],
            serde_json::json!(["method:tools/call", "tool:t"])
        );
        assert_eq!(v["attributes"], serde_json::json!([["transport", "http"]]));
    }
}
