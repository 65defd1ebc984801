//! Comparing a copy with the source's tape: what differs, in words.

use super::summary_of;
use crate::store::envelope::same_but_marked;
use std::fmt;
use tapedeck_types::{TapeInfo, TapeState};

/// Adds `what: copy (source: source)` to `out` when the two differ.
fn differ(out: &mut Vec<String>, what: &str, copy: impl fmt::Debug, source: impl fmt::Debug) {
    let (copy, source) = (format!("{copy:?}"), format!("{source:?}"));
    if copy != source {
        out.push(format!("{what} {copy} (source: {source})"));
    }
}

/// What differs between the headers of the source's tape and the copy.
pub(super) fn compare_headers(source: &TapeInfo, copy: &TapeInfo) -> Vec<String> {
    let (s, c) = (&source.header, &copy.header);
    let mut out = Vec::new();
    differ(&mut out, "session", &c.session_id, &s.session_id);
    differ(&mut out, "name", &c.name, &s.name);
    differ(&mut out, "tags", &c.tags, &s.tags);
    differ(
        &mut out,
        "created at (µs)",
        c.created_at_us,
        s.created_at_us,
    );
    // A sealing destination marks the envelope of a tape it creates
    // (`store::envelope`); anything else is a difference.
    if !same_but_marked(s.envelope.as_deref(), c.envelope.as_deref()) {
        // Up to 16 KiB of bytes: their sizes say enough.
        let size = |e: &Option<Vec<u8>>| {
            e.as_ref()
                .map_or("none".into(), |e| format!("{} bytes", e.len()))
        };
        let (copy, source) = (size(&c.envelope), size(&s.envelope));
        let same = if copy == source { ", other bytes" } else { "" };
        out.push(format!("envelope {copy}{same} (source: {source})"));
    }
    out
}

/// What differs between the source's tape and an ended copy (state,
/// totals, end time, digest: what the copy is finished with), and a note
/// when an aborted copy kept neither end time nor digest (accepted, see
/// the module docs).
pub(super) fn compare(source: &TapeInfo, copy: &TapeInfo) -> (Vec<String>, Option<String>) {
    let mut out = compare_headers(source, copy);
    let summary = summary_of(source);
    differ(
        &mut out,
        "state",
        copy.state.as_str(),
        source.state.as_str(),
    );
    differ(&mut out, "frames", copy.frame_count, summary.frame_count);
    differ(
        &mut out,
        "payload bytes",
        copy.byte_count,
        summary.byte_count,
    );
    let summary_dropped = source.state == TapeState::Aborted
        && copy.state == TapeState::Aborted
        && copy.digest.is_none()
        && summary.digest.is_some();
    if summary_dropped {
        let note = "the destination kept neither the end time nor the digest of this aborted \
                    tape (the contract lets `finish` with reason aborted behave as `abort`)";
        return (out, Some(note.to_string()));
    }
    let ended = |us: Option<u64>| us.map_or("none".to_string(), |us| us.to_string());
    differ(
        &mut out,
        "end time (µs)",
        ended(copy.ended_at_us),
        ended(Some(summary.ended_at_us)),
    );
    let digest = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
    differ(
        &mut out,
        "digest",
        digest(&copy.digest),
        digest(&summary.digest),
    );
    (out, None)
}
