//! Human-friendly sizes (`"256MiB"`) and durations (`"10s"`) for configuration.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A size in bytes. In configuration: an integer (bytes) or a string with a
/// unit: `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB` (KB = 1000, KiB = 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A duration in milliseconds. In configuration: an integer (milliseconds) or
/// a string with a unit: `ms`, `s`, `m` (e.g. `"500ms"`, `"10s"`, `"2m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub u64);

impl Millis {
    /// As a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

/// Parses a [`ByteSize`] string.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, unit) = split_unit(s);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (expected e.g. \"64MiB\" or 1048576)"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1 << 10,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size unit {unit:?} in {s:?} (use B, KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a [`Millis`] string.
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let (num, unit) = split_unit(s);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (expected e.g. \"10s\" or \"500ms\")"))?;
    let mult = match unit {
        "ms" | "" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {s:?} (use ms, s or m)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

fn split_unit(s: &str) -> (&str, &str) {
    let s = s.trim();
    let at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (s[..at].trim(), s[at..].trim())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Num(u64),
    Str(String),
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Ok(ByteSize(n)),
            NumOrStr::Str(s) => parse_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Ok(Millis(n)),
            NumOrStr::Str(s) => parse_millis(&s)
                .map(Millis)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000 && self.0.is_multiple_of(1000) {
            write!(f, "{}s", self.0 / 1000)
        } else {
            write!(f, "{}ms", self.0)
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1 GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert!(parse_size("12 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("lots").is_err());
        assert!(
            parse_size("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_millis("10s"), Ok(10_000));
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("7"), Ok(7));
        assert!(parse_millis("1h").is_err());
        assert_eq!(Millis(30_000).to_string(), "30s");
        assert_eq!(Millis(1500).to_string(), "1500ms");
    }
}
