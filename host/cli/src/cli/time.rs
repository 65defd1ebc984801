//! Times on the command line (`--since`, `--until`) and in output, in UTC,
//! as microseconds since the Unix epoch (the tape model's unit).

use std::time::{SystemTime, UNIX_EPOCH};

const US_PER_SEC: u64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Now, in µs since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Parses a time given on the command line: RFC 3339
/// (`2026-11-24T10:00:00Z`, `2026-11-24T12:00:00.5+02:00`), a date
/// (`2026-11-24`, midnight UTC), or a duration meaning "that long before
/// `now_us`" (`90s`, `30m`, `2h`, `7d`, `2w`).
pub fn parse_time(s: &str, now_us: u64) -> Result<u64, String> {
    let s = s.trim();
    let err = |why: &str| {
        format!(
            "invalid time {s:?}{why}: expected RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration ago (30m, 2h, 7d)"
        )
    };
    if let Some(ago) = parse_ago(s) {
        let ago = ago.ok_or_else(|| err(" (too long ago)"))?;
        return now_us.checked_sub(ago).ok_or_else(|| err(" (before 1970)"));
    }
    let us = parse_rfc3339(s).map_err(|why| err(&why))?;
    u64::try_from(us).map_err(|_| err(" (before 1970)"))
}

/// `Some(Some(µs))` for a relative duration, `Some(None)` if it overflows,
/// `None` if `s` is not one.
fn parse_ago(s: &str) -> Option<Option<u64>> {
    let at = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(at);
    let secs: u64 = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    let n: u64 = num.parse().ok()?;
    Some(n.checked_mul(secs).and_then(|s| s.checked_mul(US_PER_SEC)))
}

/// Parses an age (`90s`, `30m`, `12h`, `30d`, `2w`) into µs: what
/// `record --max-age` takes, in the units `--since` takes.
pub fn parse_age(s: &str) -> Result<u64, String> {
    match parse_ago(s) {
        Some(Some(us)) => Ok(us),
        Some(None) => Err(format!("age {s:?} is too long")),
        None => Err(format!(
            "{s:?} is not an age: a number and s, m, h, d or w (30d, 12h)"
        )),
    }
}

/// Parses RFC 3339 or a bare date into µs since the epoch (may be negative).
/// The error is a short parenthesised reason.
fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        match s.get(r.clone()) {
            Some(t) if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) => {
                Ok(t.parse().map_err(|_| String::new())?)
            }
            _ => Err(String::new()),
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(String::new());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(" (no such date)".into());
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Ok(days * SECS_PER_DAY * US_PER_SEC as i64);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err(String::new());
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(" (no such time of day)".into());
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(String::new());
        }
        let mut padded: String = frac[..digits].chars().take(6).collect();
        while padded.len() < 6 {
            padded.push('0');
        }
        micros = padded.parse().map_err(|_| String::new())?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let h: i64 = rest[1..3].parse().map_err(|_| String::new())?;
            let m: i64 = rest[4..6].parse().map_err(|_| String::new())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        "" => return Err(" (missing time zone: add Z for UTC)".into()),
        _ => return Err(String::new()),
    };
    let secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Ok(secs * US_PER_SEC as i64 + micros)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01 (inverse of
/// [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A UTC time broken into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: i64,
    /// Day of the month, from 1.
    pub day: i64,
    /// Hour, 0 to 23.
    pub hour: u64,
    /// Minute.
    pub minute: u64,
    /// Second.
    pub second: u64,
    /// Microseconds within the second.
    pub micros: u64,
}

impl Utc {
    /// The fields of `us` µs since the epoch.
    pub fn from_us(us: u64) -> Utc {
        let secs = us / US_PER_SEC;
        let (year, month, day) = civil_from_days((secs / SECS_PER_DAY as u64) as i64);
        let tod = secs % SECS_PER_DAY as u64;
        Utc {
            year,
            month,
            day,
            hour: tod / 3600,
            minute: tod / 60 % 60,
            second: tod % 60,
            micros: us % US_PER_SEC,
        }
    }

    /// `2026-11-24`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `10:03:12`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000 * US_PER_SEC; // 2026-11-18T11:06:40Z

    fn t(s: &str) -> Result<u64, String> {
        parse_time(s, NOW)
    }

    #[test]
    fn rfc3339_and_dates() {
        assert_eq!(t("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(t("2026-11-24"), Ok(1_795_478_400 * US_PER_SEC));
        assert_eq!(t("2026-11-24T10:00:00Z"), Ok(1_795_514_400 * US_PER_SEC));
        assert_eq!(t("2026-11-24t10:00:00z"), t("2026-11-24T10:00:00Z"));
        assert_eq!(t("2026-11-24 10:00:00Z"), t("2026-11-24T10:00:00Z"));
        assert_eq!(t("2026-11-24T12:00:00+02:00"), t("2026-11-24T10:00:00Z"));
        assert_eq!(t("2026-11-24T05:30:00-04:30"), t("2026-11-24T10:00:00Z"));
        assert_eq!(
            t("2026-11-24T10:00:00.25Z"),
            Ok(1_795_514_400 * US_PER_SEC + 250_000)
        );
        assert_eq!(
            t("2026-11-24T10:00:00.123456789Z"),
            Ok(1_795_514_400 * US_PER_SEC + 123_456)
        );
        assert_eq!(t("2024-02-29"), Ok(1_709_164_800 * US_PER_SEC));
    }

    #[test]
    fn relative_durations_are_ago() {
        assert_eq!(t("90s"), Ok(NOW - 90 * US_PER_SEC));
        assert_eq!(t("30m"), Ok(NOW - 1800 * US_PER_SEC));
        assert_eq!(t("2h"), Ok(NOW - 7200 * US_PER_SEC));
        assert_eq!(t("7d"), Ok(NOW - 7 * 86_400 * US_PER_SEC));
        assert_eq!(t("1w"), t("7d"));
        assert_eq!(t("0s"), Ok(NOW));
        assert!(t("100000d").unwrap_err().contains("before 1970"));
        assert!(
            t("99999999999999999w")
                .unwrap_err()
                .contains("too long ago")
        );
    }

    #[test]
    fn errors_say_what_is_accepted() {
        for bad in [
            "yesterday",
            "2h ago",
            "",
            "2026-13-01",
            "2026-02-30",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00Z",
            "2026-11-24T10:00:00.Z",
            "1969-12-31",
            "5y",
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.contains("expected RFC 3339"), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!(t("2026-02-30").unwrap_err().contains("no such date"));
        assert!(t("2026-11-24T10:00:00").unwrap_err().contains("time zone"));
    }

    #[test]
    fn fields_round_trip() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-11-24T10:03:12Z",
            "2100-03-01T00:00:01Z",
        ] {
            let us = t(s).unwrap();
            let u = Utc::from_us(us);
            assert_eq!(format!("{}T{}Z", u.date(), u.time()), s);
        }
        let u = Utc::from_us(t("2026-11-24T10:03:12.000123Z").unwrap());
        assert_eq!(u.micros, 123);
    }
}
