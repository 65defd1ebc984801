//! Listing cursors: `c1.<snapshot>.<created_at>.<id>` (hex numbers).
//!
//! `created_at` and `id` are the last tape returned; the next page starts
//! strictly after it in listing order, so a tape deleted in between does not
//! shift anything. `snapshot` is the catalog log offset replayed when the
//! first page was made: tapes whose `created` entry lies at or after it are
//! left out of later pages, so a tape created after the first page never
//! appears (even one imported with an old `created_at`).

use tapedeck_types::{StorageError, validate_tape_id};

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Catalog log offset at the first page.
    pub snapshot: u64,
    /// `created_at` of the last tape returned.
    pub created_at: u64,
    /// Id of the last tape returned.
    pub id: String,
}

impl Cursor {
    /// The opaque string form.
    pub(crate) fn encode(&self) -> String {
        format!("c1.{:x}.{:x}.{}", self.snapshot, self.created_at, self.id)
    }

    /// Parses a cursor made by [`Cursor::encode`]; anything else is
    /// `invalid-input`.
    pub(crate) fn parse(s: &str) -> Result<Cursor, StorageError> {
        let bad = || {
            let shown: String = s.chars().take(60).collect();
            StorageError::invalid_input(format!(
                "cursor {shown:?} is not a cursor returned by this provider"
            ))
        };
        let mut parts = s.splitn(4, '.');
        let (Some("c1"), Some(snapshot), Some(created_at), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let hex = |p: &str| {
            if p.is_empty() || p.len() > 16 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                None
            } else {
                u64::from_str_radix(p, 16).ok()
            }
        };
        let (Some(snapshot), Some(created_at)) = (hex(snapshot), hex(created_at)) else {
            return Err(bad());
        };
        validate_tape_id(id).map_err(|_| bad())?;
        Ok(Cursor {
            snapshot,
            created_at,
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let c = Cursor {
            snapshot: 0x1234,
            created_at: u64::MAX,
            id: "a.b-c_d".into(),
        };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "c1",
            "c2.1.2.x",
            "c1.zz.2.x",
            "c1.1.2.",
            "c1.1.2.../x",
            "c1.+1.2.x",
            "c1.11111111111111111.2.x",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
