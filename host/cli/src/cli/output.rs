//! Rendering for people (aligned tables, `2026-11-24 10:03:12 UTC`,
//! `1.2 MiB`) and for programs (`--json`: one JSON document on stdout).

use super::time::Utc;
use serde::Serialize;
use std::io::Write;
use tapedeck::read::{IntegrityError, Verification};
use tapedeck::types::{Capabilities, TapeInfo};

/// `2026-11-24 10:03:12 UTC`.
pub fn time(us: u64) -> String {
    let u = Utc::from_us(us);
    format!("{} {} UTC", u.date(), u.time())
}

/// `2026-11-24 10:03:12.123` (frames: milliseconds matter).
pub fn time_ms(us: u64) -> String {
    let u = Utc::from_us(us);
    format!("{} {}.{:03}", u.date(), u.time(), u.micros / 1000)
}

/// RFC 3339 in UTC: `2026-11-24T10:03:12Z`, with microseconds when there are
/// any (`2026-11-24T10:03:12.000123Z`).
pub fn rfc3339(us: u64) -> String {
    let u = Utc::from_us(us);
    if u.micros == 0 {
        format!("{}T{}Z", u.date(), u.time())
    } else {
        format!("{}T{}.{:06}Z", u.date(), u.time(), u.micros)
    }
}

/// `512 B`, `1.0 KiB`, `1.2 MiB`, `3.4 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1m 48s`, `2h 5m`, `3d 4h`, `450ms`: a duration for people.
pub fn duration(us: u64) -> String {
    let ms = us / 1000;
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}.{}s", ms % 1000 / 100),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// `s` on one line: control characters (newlines, tabs, escapes) are shown
/// escaped, so a name or payload cannot break a table or the terminal (the
/// library's, which the sandbox also applies to provider text).
pub use tapedeck::text::printable;

/// `delete, search, text-search`, or `none`.
pub fn capabilities(c: &Capabilities) -> String {
    match c.names() {
        n if n.is_empty() => "none".to_string(),
        n => n.join(", "),
    }
}

/// `env=ci, team=a`, or `(none)`.
pub fn tags(tags: &[(String, String)]) -> String {
    if tags.is_empty() {
        return "(none)".to_string();
    }
    tags.iter()
        .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tape as JSON (`list --json`, `search --json`, `show --json`): `id`,
/// `name`, `session`, `created` (RFC 3339), `created_us`, `state`, `frames`,
/// `bytes`, `tags` (array of `[key, value]` pairs: keys may repeat),
/// `ended` / `ended_us` (null while recording) and `digest`.
pub fn tape_json(t: &TapeInfo) -> serde_json::Value {
    let h = &t.header;
    serde_json::json!({
        "id": h.id,
        "name": h.name,
        "session": h.session_id,
        "created": rfc3339(h.created_at_us),
        "created_us": h.created_at_us,
        "state": t.state.as_str(),
        "frames": t.frame_count,
        "bytes": t.byte_count,
        "tags": h.tags,
        "ended": t.ended_at_us.map(rfc3339),
        "ended_us": t.ended_at_us,
        "digest": t.digest,
    })
}

/// The `"integrity"` field of `show --json` and `export --json`:
/// `{"verified": bool, "status": …, "sealed_by": …, "detail": …}`, where
/// `status` is `verified`, `still-recording`, `no-digest`, `unsealed`,
/// `no-trusted-keys`, `skipped` or `failed`, `sealed_by` the host key whose
/// seal vouches for a verified tape (else null), and `detail` the sentence
/// `show` prints (or the error).
pub fn integrity_json(result: Result<&Verification, &IntegrityError>) -> serde_json::Value {
    let (status, detail, sealed_by) = match result {
        Ok(v @ Verification::Verified { sealed_by, .. }) => {
            ("verified", v.to_string(), Some(sealed_by.to_string()))
        }
        Ok(v @ Verification::Unverified { reason, .. }) => (reason.as_str(), v.to_string(), None),
        Err(e) => ("failed", e.to_string(), None),
    };
    serde_json::json!({
        "verified": status == "verified",
        "status": status,
        "sealed_by": sealed_by,
        "detail": detail,
    })
}

/// Writes `value` as one line of compact JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table with a header row, columns padded to their widest cell.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles and alignments.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// The rendered table; the last column is not padded.
    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.columns.iter().map(|(t, _)| width(t)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|(t, _)| t.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let last = row.len() - 1;
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[i] - width(cell));
                match (self.columns[i].1, i == last) {
                    (Align::Right, _) => line.push_str(&format!("{pad}{cell}")),
                    (Align::Left, true) => line.push_str(cell),
                    (Align::Left, false) => line.push_str(&format!("{cell}{pad}")),
                }
                if i != last {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The tape listing table: id, created, state, frames, bytes, name.
pub fn tape_table(tapes: &[TapeInfo]) -> String {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("CREATED", Align::Left),
        ("STATE", Align::Left),
        ("FRAMES", Align::Right),
        ("BYTES", Align::Right),
        ("NAME", Align::Left),
    ]);
    for t in tapes {
        table.row(vec![
            t.header.id.clone(),
            time(t.header.created_at_us),
            t.state.as_str().to_string(),
            t.frame_count.to_string(),
            size(t.byte_count),
            printable(&t.header.name).into_owned(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck::types::{TapeHeader, TapeState};

    fn tape(id: &str, name: &str, frames: u64, bytes: u64) -> TapeInfo {
        TapeInfo {
            header: TapeHeader {
                id: id.into(),
                session_id: "s1".into(),
                name: name.into(),
                tags: vec![("env".into(), "ci".into()), ("env".into(), "eu".into())],
                created_at_us: 1_795_514_592_000_000,
                envelope: None,
            },
            state: TapeState::Finished,
            frame_count: frames,
            byte_count: bytes,
            ended_at_us: Some(1_795_514_600_000_123),
            digest: Some("ab12".into()),
            seal: None,
        }
    }

    #[test]
    fn times() {
        assert_eq!(time(1_795_514_592_000_000), "2026-11-24 10:03:12 UTC");
        assert_eq!(time_ms(1_795_514_592_123_999), "2026-11-24 10:03:12.123");
        assert_eq!(rfc3339(1_795_514_592_000_000), "2026-11-24T10:03:12Z");
        assert_eq!(
            rfc3339(1_795_514_592_000_123),
            "2026-11-24T10:03:12.000123Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1_258_291), "1.2 MiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(450_000), "450ms");
        assert_eq!(duration(1_500_000), "1.5s");
        assert_eq!(duration(108_000_000), "1m 48s");
        assert_eq!(duration(7_500_000_000), "2h 5m");
        assert_eq!(duration(273_600_000_000), "3d 4h");
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("plain ✓"), "plain ✓");
        assert_eq!(printable("a\nb\t\u{1b}[31m"), "a\\nb\\t\\u{1b}[31m");
    }

    #[test]
    fn tables_align_and_escape() {
        let out = tape_table(&[
            tape("t1", "demo", 3, 52),
            tape("tape-22", "two\nlines", 12_345, 1_258_291),
        ]);
        assert_eq!(
            out,
            "ID       CREATED                  STATE     FRAMES    BYTES  NAME\n\
             t1       2026-11-24 10:03:12 UTC  finished       3     52 B  demo\n\
             tape-22  2026-11-24 10:03:12 UTC  finished   12345  1.2 MiB  two\\nlines\n"
        );
    }

    #[test]
    fn tape_json_has_the_documented_fields() {
        let v = tape_json(&tape("t1", "demo", 3, 52));
        assert_eq!(
            v,
            serde_json::json!({
                "id": "t1", "name": "demo", "session": "s1",
                "created": "2026-11-24T10:03:12Z", "created_us": 1_795_514_592_000_000u64,
                "state": "finished", "frames": 3, "bytes": 52,
                "tags": [["env", "ci"], ["env", "eu"]],
                "ended": "2026-11-24T10:03:20.000123Z", "ended_us": 1_795_514_600_000_123u64,
                "digest": "ab12",
            })
        );
    }
}
