//! Payloads are kept byte for byte: binary, empty, Unicode, control bytes,
//! flags, directions, timestamps, and a single large frame.

use super::check::{self, eq};
use super::fixtures::{TS_BASE, byte_sum, frame, raw_frame, summary_of};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::{Direction, EndReason, Frame, TapeState};

/// Stores `frames` twice, through a writer and through `save`, and checks
/// that both read back identical, in one page and one frame at a time.
async fn round_trip<S: TapeStore>(cx: &Ctx<S>, label: &str, frames: &[Frame]) -> CaseResult {
    let bytes = byte_sum(frames);
    let n = frames.len() as u64;

    let id = cx.id(label);
    let info = cx
        .record(cx.header(&id), frames, Some(EndReason::Completed))
        .await?;
    eq(info.frame_count, n, &format!("get(`{id}`): frame_count"))?;
    eq(info.byte_count, bytes, &format!("get(`{id}`): byte_count"))?;

    let saved = cx.id(&format!("{label}-saved"));
    let info = cx
        .save(
            cx.header(&saved),
            frames,
            summary_of(frames),
            EndReason::Completed,
        )
        .await?;
    eq(
        info.state,
        TapeState::Finished,
        &format!("save(`{saved}`)'s result: state"),
    )?;
    eq(
        info.byte_count,
        bytes,
        &format!("save(`{saved}`)'s result: byte_count"),
    )?;

    for id in [&id, &saved] {
        let read = cx.read_all(id, 0, 1000, u64::MAX).await?;
        check::frames_eq(&read, frames, &format!("read_frames(`{id}`)"))?;
        let read = cx.read_all(id, 0, 1, u64::MAX).await?;
        check::frames_eq(
            &read,
            frames,
            &format!("read_frames(`{id}`) one frame at a time"),
        )?;
    }
    Ok(())
}

/// Non-UTF-8 payloads: every byte value, invalid UTF-8 sequences.
pub(crate) async fn binary<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let all: Vec<u8> = (0..=255u8).collect();
    let reversed: Vec<u8> = (0..=255u8).rev().collect();
    let payloads: Vec<Vec<u8>> = vec![
        all.clone(),
        reversed,
        all.iter().copied().cycle().skip(128).take(1000).collect(),
        vec![0xff, 0xfe, 0x00, 0x00],  // UTF-32 BOM look-alike
        vec![0xed, 0xa0, 0x80],        // a lone surrogate
        vec![0xc0, 0xaf],              // an overlong '/'
        vec![0xf0, 0x9f, 0x98],        // a truncated emoji
        b"{\"ok\":\"\xff\"}".to_vec(), // JSON-looking, invalid UTF-8
        vec![0x80; 64],                // continuation bytes only
    ];
    let frames: Vec<Frame> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| raw_frame(i as u64, p))
        .collect();
    round_trip(&cx, "bin", &frames).await
}

/// Empty payloads count zero bytes and read back empty.
pub(crate) async fn empty<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let frames = vec![
        raw_frame(0, ""),
        frame(1, "{}"),
        raw_frame(2, ""),
        raw_frame(3, ""),
    ];
    round_trip(&cx, "empty", &frames).await?;
    let only_empty: Vec<Frame> = (0..3).map(|seq| raw_frame(seq, "")).collect();
    round_trip(&cx, "empty0", &only_empty).await
}

/// Unicode in every shape: emoji (with ZWJ and flags), RTL text, combining
/// marks (not normalised), astral planes, a byte order mark.
pub(crate) async fn unicode<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let texts = [
        "{\"text\":\"emoji 🎞️ 👩‍👩‍👧‍👦 🇺🇳 🏳️‍🌈\"}",
        "{\"text\":\"مرحبا بالعالم \u{200F}שלום עולם\"}",
        "{\"text\":\"e\u{301} vs é, a\u{30a}, Z\u{336}\u{33f}\u{350}a\u{34a}l\u{31b}g\u{36e}o\u{35d}\"}",
        "{\"text\":\"é\"}",
        "{\"text\":\"e\u{301}\"}",
        "{\"text\":\"𝕏 𐍈 𝄞 中文 日本語 한국어\"}",
        "\u{FEFF}{\"bom\":true}",
        "{\"text\":\"\u{FFFF} \u{FFFD} \u{E000}\"}",
        "{\"escaped\":\"\\u00e9\\ud83c\\udf9e\"}",
    ];
    let frames: Vec<Frame> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.starts_with('\u{FEFF}') {
                raw_frame(i as u64, *t)
            } else {
                frame(i as u64, *t)
            }
        })
        .collect();
    round_trip(&cx, "utf8", &frames).await
}

/// Newlines, carriage returns, NUL and other control bytes inside and at the
/// ends of payloads (a line-based store must escape them).
pub(crate) async fn control_bytes<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let payloads: [&[u8]; 12] = [
        b"line one\nline two",
        b"crlf\r\nend",
        b"cr only\rend",
        b"nul\0in the middle",
        b"\0",
        b"\n",
        b"trailing newline\n",
        b"\r\n",
        b"  spaces and\ttab  ",
        b"\x1b[31mred\x1b[0m \x07 \x08 \x7f",
        "{\"sep\":\"\u{2028}\u{2029}\"}".as_bytes(),
        b"{\"a\":1}\n{\"b\":2}\n",
    ];
    let frames: Vec<Frame> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| raw_frame(i as u64, *p))
        .collect();
    round_trip(&cx, "ctl", &frames).await
}

/// Every combination of direction and `not_json`, and timestamps that are
/// extreme or go backwards, are kept per frame.
pub(crate) async fn flags_and_directions<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let timestamps = [
        0,
        1,
        TS_BASE,
        TS_BASE - 5,
        i64::MAX as u64,
        TS_BASE + 1,
        42,
        TS_BASE,
    ];
    let frames: Vec<Frame> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| Frame {
            seq: i as u64,
            timestamp_us: ts,
            direction: if i % 4 < 2 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            not_json: i % 2 == 1,
            payload: if i % 2 == 1 {
                format!("not json {i}").into_bytes()
            } else {
                format!("{{\"i\":{i}}}").into_bytes()
            },
            terms: Vec::new(),
            attributes: Vec::new(),
        })
        .collect();
    round_trip(&cx, "flags", &frames).await
}

/// One 4 MiB frame among small ones, read back whole even with a small
/// `max_bytes`.
pub(crate) async fn large_frame<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let frames = vec![
        frame(0, "{\"before\":1}"),
        raw_frame(1, big),
        frame(2, "{\"after\":1}"),
    ];
    let id = cx.id("4mib");
    let info = cx
        .record(cx.header(&id), &frames, Some(EndReason::Completed))
        .await?;
    eq(
        info.byte_count,
        byte_sum(&frames),
        &format!("get(`{id}`): byte_count"),
    )?;
    for max_bytes in [u64::MAX, 1024 * 1024, 1] {
        let read = cx.read_all(&id, 0, 1000, max_bytes).await?;
        check::frames_eq(
            &read,
            &frames,
            &format!("reading `{id}` with max_bytes {max_bytes}"),
        )?;
    }
    Ok(())
}
