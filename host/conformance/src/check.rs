//! Assertion helpers. Each returns `Err(reason)` with a sentence that names
//! the call and what was wrong, e.g. "read_frames(`t`, from 5) returned seq 7
//! first, expected 5".

use super::CaseResult;
use std::fmt::Debug;
use tapedeck_store::ProviderResult;
use tapedeck_types::{ErrorKind, Frame, TapeFilter, TapeHeader, TapeInfo, TapeState};

/// Fails the case with a formatted reason unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

/// The value of a call that must succeed; an error becomes "`call` failed: …".
pub(crate) fn ok<T>(result: ProviderResult<T>, call: &str) -> Result<T, String> {
    result.map_err(|e| format!("{call} failed: {e}"))
}

/// Checks that a call failed with a storage error of `kind`.
pub(crate) fn expect_kind<T>(result: ProviderResult<T>, kind: ErrorKind, call: &str) -> CaseResult {
    expect_kinds(result, &[kind], call)
}

/// Checks that a call failed with a storage error of one of `kinds`.
pub(crate) fn expect_kinds<T>(
    result: ProviderResult<T>,
    kinds: &[ErrorKind],
    call: &str,
) -> CaseResult {
    let wanted = kinds
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    match result {
        Ok(_) => Err(format!("{call} succeeded, expected {wanted}")),
        Err(e) => match e.storage_kind() {
            Some(k) if kinds.contains(&k) => Ok(()),
            _ => Err(format!(
                "{call} failed with `{}`, expected {wanted} ({e})",
                e.code()
            )),
        },
    }
}

/// `ids` for a message: at most five, then how many there are in all.
pub(crate) fn show_ids(ids: &[&String]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(|id| format!("`{id}`")).collect();
    if ids.len() > 5 {
        format!("{}, … ({} in all)", shown.join(", "), ids.len())
    } else {
        shown.join(", ")
    }
}

/// Checks `got == want`.
pub(crate) fn eq<T: PartialEq + Debug>(got: T, want: T, what: &str) -> CaseResult {
    ensure!(got == want, "{what}: got {got:?}, expected {want:?}");
    Ok(())
}

/// A short, escaped excerpt of `bytes` around position `at`.
fn excerpt(bytes: &[u8], at: usize) -> String {
    if at >= bytes.len() {
        return "<end of payload>".to_string();
    }
    let start = at.saturating_sub(8);
    let end = (at + 8).min(bytes.len());
    format!("\"{}\"", bytes[start..end].escape_ascii())
}

/// How `got` differs from `want`, if it does.
pub(crate) fn payload_diff(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.len().min(want.len()));
    Some(format!(
        "is {} bytes, expected {}; first difference at byte {at}: got {}, expected {}",
        got.len(),
        want.len(),
        excerpt(got, at),
        excerpt(want, at)
    ))
}

/// Checks that `got` is `want`, field by field.
pub(crate) fn frame_eq(got: &Frame, want: &Frame, what: &str) -> CaseResult {
    ensure!(
        got.seq == want.seq,
        "{what}: got seq {}, expected {}",
        got.seq,
        want.seq
    );
    let seq = want.seq;
    ensure!(
        got.timestamp_us == want.timestamp_us,
        "{what}: frame {seq} has timestamp {}, expected {}",
        got.timestamp_us,
        want.timestamp_us
    );
    ensure!(
        got.direction == want.direction,
        "{what}: frame {seq} has direction {:?}, expected {:?}",
        got.direction,
        want.direction
    );
    ensure!(
        got.not_json == want.not_json,
        "{what}: frame {seq} has not_json {}, expected {}",
        got.not_json,
        want.not_json
    );
    if let Some(diff) = payload_diff(&got.payload, &want.payload) {
        return Err(format!("{what}: frame {seq} payload {diff}"));
    }
    if let Some(diff) = list_diff(&got.terms, &want.terms) {
        return Err(format!("{what}: frame {seq} terms {diff}"));
    }
    if let Some(diff) = list_diff(&got.attributes, &want.attributes) {
        return Err(format!("{what}: frame {seq} attributes {diff}"));
    }
    Ok(())
}

/// A value for a message: its `Debug` form, cut after 80 characters.
pub(crate) fn short<T: Debug + ?Sized>(value: &T) -> String {
    let s = format!("{value:?}");
    match s.char_indices().nth(80) {
        Some((at, _)) => format!("{}… ({} characters)", &s[..at], s.chars().count()),
        None => s,
    }
}

/// How the list `got` differs from `want` (order counts), if it does:
/// the first entry that differs, or the one missing or extra.
pub(crate) fn list_diff<T: PartialEq + Debug>(got: &[T], want: &[T]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.len().min(want.len()));
    let detail = match (got.get(at), want.get(at)) {
        (Some(g), Some(w)) => format!("entry {at} is {}, expected {}", short(g), short(w)),
        (None, Some(w)) => format!("entry {at} ({}) is missing", short(w)),
        (Some(g), None) => format!("entry {at} ({}) is extra", short(g)),
        (None, None) => String::new(),
    };
    Some(format!(
        "are {} entries, expected {}; {detail}",
        got.len(),
        want.len()
    ))
}

/// How the optional bytes `got` differ from `want` (an envelope, a seal),
/// if they do.
pub(crate) fn bytes_diff(got: Option<&[u8]>, want: Option<&[u8]>) -> Option<String> {
    match (got, want) {
        (None, None) => None,
        (Some(g), None) => Some(format!("is {} bytes, expected none", g.len())),
        (None, Some(w)) => Some(format!("is none, expected {} bytes", w.len())),
        (Some(g), Some(w)) => payload_diff(g, w),
    }
}

/// Which field of the tape info `got` differs from `want`, if one does.
pub(crate) fn info_diff(got: &TapeInfo, want: &TapeInfo) -> Option<String> {
    if got == want {
        return None;
    }
    if let Some(diff) = header_diff(&got.header, &want.header) {
        return Some(format!("header's {diff}"));
    }
    if got.state != want.state {
        return Some(format!(
            "state is {}, expected {}",
            got.state.as_str(),
            want.state.as_str()
        ));
    }
    if (got.frame_count, got.byte_count) != (want.frame_count, want.byte_count) {
        return Some(format!(
            "totals are {} frames / {} bytes, expected {} / {}",
            got.frame_count, got.byte_count, want.frame_count, want.byte_count
        ));
    }
    if got.ended_at_us != want.ended_at_us {
        return Some(format!(
            "ended_at is {:?}, expected {:?}",
            got.ended_at_us, want.ended_at_us
        ));
    }
    if got.digest != want.digest {
        return Some(format!(
            "digest is {}, expected {}",
            short(&got.digest),
            short(&want.digest)
        ));
    }
    if let Some(diff) = bytes_diff(got.seal.as_deref(), want.seal.as_deref()) {
        return Some(format!("seal {diff}"));
    }
    Some(format!("is {}, expected {}", short(got), short(want)))
}

/// Checks that the tapes `listed` by `call` include every tape of `want`
/// exactly as `want` says (what `get`, `finish` or `save` returned).
pub(crate) fn listed_as(listed: &[TapeInfo], want: &[TapeInfo], call: &str) -> CaseResult {
    for w in want {
        let id = &w.header.id;
        let Some(got) = listed.iter().find(|t| t.header.id == *id) else {
            return Err(format!("{call} did not return tape `{id}`"));
        };
        if let Some(diff) = info_diff(got, w) {
            return Err(format!("{call} returned tape `{id}`, but its {diff}"));
        }
    }
    Ok(())
}

/// Which field of the header `got` differs from `want`, if one does.
pub(crate) fn header_diff(got: &TapeHeader, want: &TapeHeader) -> Option<String> {
    if got == want {
        return None;
    }
    if got.id != want.id {
        return Some(format!("id is {:?}, expected {:?}", got.id, want.id));
    }
    if got.session_id != want.session_id {
        return Some(format!(
            "session_id is {}, expected {}",
            short(&got.session_id),
            short(&want.session_id)
        ));
    }
    if got.name != want.name {
        return Some(format!(
            "name is {}, expected {}",
            short(&got.name),
            short(&want.name)
        ));
    }
    if let Some(diff) = list_diff(&got.tags, &want.tags) {
        return Some(format!("tags {diff}"));
    }
    if got.created_at_us != want.created_at_us {
        return Some(format!(
            "created_at is {}, expected {}",
            got.created_at_us, want.created_at_us
        ));
    }
    if let Some(diff) = bytes_diff(got.envelope.as_deref(), want.envelope.as_deref()) {
        return Some(format!("envelope {diff}"));
    }
    Some(format!("is {}, expected {}", short(got), short(want)))
}

/// Checks that `got` are exactly the frames `want`.
pub(crate) fn frames_eq(got: &[Frame], want: &[Frame], what: &str) -> CaseResult {
    for (g, w) in got.iter().zip(want) {
        frame_eq(g, w, what)?;
    }
    ensure!(
        got.len() == want.len(),
        "{what}: got {} frames, expected {}",
        got.len(),
        want.len()
    );
    Ok(())
}

/// Checks one page of `read_frames(from, max_frames, max_bytes)`: at most
/// `max_frames`, consecutive from `from`, and no frame after the payloads
/// reached `max_bytes` (except that a first frame is always allowed).
///
/// The byte rule accepts both readings of the contract: "stop once the total
/// reaches `max_bytes`" (the frame that reaches it is included) and "never
/// exceed `max_bytes` unless the page has a single frame".
pub(crate) fn read_page(
    page: &[Frame],
    from: u64,
    max_frames: u32,
    max_bytes: u64,
    call: &str,
) -> CaseResult {
    ensure!(
        page.len() as u64 <= u64::from(max_frames),
        "{call} returned {} frames, more than max_frames {max_frames}",
        page.len()
    );
    for (i, f) in page.iter().enumerate() {
        let want = from + i as u64;
        if f.seq != want {
            return Err(if i == 0 {
                format!("{call} returned seq {} first, expected {want}", f.seq)
            } else {
                format!(
                    "{call} returned seq {} after seq {}, expected {want}",
                    f.seq,
                    want - 1
                )
            });
        }
    }
    if page.len() > 1 {
        let total = page.iter().map(|f| f.payload.len() as u64).sum::<u64>();
        let before_last = total - page[page.len() - 1].payload.len() as u64;
        ensure!(
            total <= max_bytes || before_last < max_bytes,
            "{call} returned {} frames with {total} payload bytes: max_bytes {max_bytes} \
             was reached before the last frame",
            page.len()
        );
    }
    Ok(())
}

/// Why `tape` does not satisfy `filter`, if it does not.
pub(crate) fn filter_mismatch(filter: &TapeFilter, tape: &TapeInfo) -> Option<String> {
    let h = &tape.header;
    if let Some(s) = &filter.session_id
        && *s != h.session_id
    {
        return Some(format!("its session id is {:?}, not {s:?}", h.session_id));
    }
    if let Some(n) = &filter.name_contains
        && !h.name.to_lowercase().contains(&n.to_lowercase())
    {
        return Some(format!("its name {:?} does not contain {n:?}", h.name));
    }
    if let Some(t) = filter.tags.iter().find(|t| !h.tags.contains(t)) {
        return Some(format!("its tags {:?} lack {t:?}", h.tags));
    }
    if let Some(since) = filter.created_since_us
        && h.created_at_us < since
    {
        return Some(format!(
            "it was created at {}, before created_since {since}",
            h.created_at_us
        ));
    }
    if let Some(until) = filter.created_until_us
        && h.created_at_us >= until
    {
        return Some(format!(
            "it was created at {}, not before created_until {until}",
            h.created_at_us
        ));
    }
    if let Some(state) = filter.state
        && state != tape.state
    {
        return Some(format!(
            "its state is {}, not {}",
            tape.state.as_str(),
            state.as_str()
        ));
    }
    None
}

/// Checks that `b` may follow `a` in a newest-first listing (created_at
/// descending, then id descending).
pub(crate) fn newest_first(a: &TapeInfo, b: &TapeInfo, what: &str) -> CaseResult {
    let ka = (a.header.created_at_us, a.header.id.as_str());
    let kb = (b.header.created_at_us, b.header.id.as_str());
    ensure!(
        ka > kb,
        "{what}: tape `{}` (created {}) came after `{}` (created {}); expected newest first \
         (created_at descending, then id descending)",
        b.header.id,
        b.header.created_at_us,
        a.header.id,
        a.header.created_at_us
    );
    Ok(())
}

/// Checks a tape's header, state and totals.
pub(crate) fn info(
    got: &TapeInfo,
    header: &TapeHeader,
    state: TapeState,
    frames: u64,
    bytes: u64,
    what: &str,
) -> CaseResult {
    if let Some(diff) = header_diff(&got.header, header) {
        return Err(format!("{what}: header changed: its {diff}"));
    }
    ensure!(
        got.state == state,
        "{what}: state is {}, expected {}",
        got.state.as_str(),
        state.as_str()
    );
    ensure!(
        got.frame_count == frames,
        "{what}: frame_count is {}, expected {frames}",
        got.frame_count
    );
    ensure!(
        got.byte_count == bytes,
        "{what}: byte_count is {}, expected {bytes}",
        got.byte_count
    );
    Ok(())
}
