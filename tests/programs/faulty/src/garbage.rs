//! The `garbage` fault: well-typed answers that are wrong in ways the host's
//! checks of answers must catch (another tape's id, absurd numbers, frames
//! out of sequence, pages too long and not matching the filter).

use tapedeck_types::{
    Direction, Frame, StorageStats, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeState,
};

/// The `next-seq` that `append` and `next-seq` report.
pub const SEQ: u64 = u64::MAX / 2;

/// Offset added to the sequence numbers `read-frames` reports.
pub const SEQ_SHIFT: u64 = 1_000_000;

/// `get`: the tape asked for (or an invented one) under another id, with
/// absurd counts.
pub fn info(id: &str, real: Option<TapeInfo>) -> TapeInfo {
    let mut info = real.unwrap_or_else(|| TapeInfo {
        header: TapeHeader {
            id: String::new(),
            session_id: "garbage".into(),
            name: "garbage".into(),
            tags: Vec::new(),
            created_at_us: 0,
            envelope: None,
        },
        state: TapeState::Finished,
        frame_count: 0,
        byte_count: 0,
        ended_at_us: Some(0),
        digest: None,
        seal: None,
    });
    info.header.id = format!("{id}-garbage");
    info.frame_count = u64::MAX / 2;
    info.byte_count = u64::MAX / 3;
    info
}

/// `read-frames`: the real frames with their sequence numbers shifted, or,
/// when there are none, one invented frame that is out of sequence too.
pub fn frames(from: u64, real: Vec<Frame>) -> Vec<Frame> {
    if real.is_empty() {
        return vec![Frame::new(
            from.wrapping_add(SEQ_SHIFT),
            0,
            Direction::ServerToClient,
            b"{\"garbage\":true}".to_vec(),
            false,
        )];
    }
    real.into_iter()
        .map(|mut f| {
            f.seq = f.seq.wrapping_add(SEQ_SHIFT);
            f
        })
        .collect()
}

/// A tape that fails `filter` wherever the filter sets something.
fn mismatch(filter: &TapeFilter, i: u32) -> TapeInfo {
    let created_at_us = match (filter.created_since_us, filter.created_until_us) {
        (Some(since), _) if since > 0 => since - 1,
        (_, Some(until)) => until,
        _ => 0,
    };
    TapeInfo {
        header: TapeHeader {
            id: format!("garbage-{i}"),
            session_id: match &filter.session_id {
                Some(s) => format!("{s}-not"),
                None => "garbage".into(),
            },
            name: String::new(),
            tags: Vec::new(),
            created_at_us,
            envelope: None,
        },
        state: if filter.state == Some(TapeState::Finished) {
            TapeState::Aborted
        } else {
            TapeState::Finished
        },
        frame_count: 0,
        byte_count: 0,
        ended_at_us: Some(created_at_us),
        digest: None,
        seal: None,
    }
}

/// `list` / `search`: the real page padded with invented tapes that do not
/// match the filter, to one more than `limit`.
pub fn page(real: TapePage, filter: &TapeFilter, limit: u32) -> TapePage {
    let mut tapes = real.tapes;
    let mut i = 0;
    while tapes.len() <= limit as usize {
        tapes.push(mismatch(filter, i));
        i += 1;
    }
    TapePage {
        tapes,
        next_cursor: real.next_cursor,
    }
}

/// `stats`: more tapes recording than tapes, and totals at the limit.
pub fn stats() -> StorageStats {
    StorageStats {
        tape_count: 1,
        recording_count: u64::MAX,
        frame_count: u64::MAX,
        byte_count: u64::MAX,
        stored_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_too_long_and_do_not_match() {
        let filter = TapeFilter {
            session_id: Some("s1".into()),
            name_contains: Some("x".into()),
            tags: vec![("k".into(), "v".into())],
            created_since_us: Some(10),
            created_until_us: Some(20),
            state: Some(TapeState::Finished),
        };
        let p = page(TapePage::default(), &filter, 3);
        assert_eq!(p.tapes.len(), 4);
        assert!(p.tapes.iter().all(|t| !filter.matches(t)));
        // Each condition alone is failed too.
        for f in [
            TapeFilter {
                session_id: Some("s".into()),
                ..TapeFilter::default()
            },
            TapeFilter {
                created_since_us: Some(5),
                ..TapeFilter::default()
            },
            TapeFilter {
                created_until_us: Some(5),
                ..TapeFilter::default()
            },
            TapeFilter {
                state: Some(TapeState::Finished),
                ..TapeFilter::default()
            },
            TapeFilter {
                state: Some(TapeState::Recording),
                ..TapeFilter::default()
            },
        ] {
            let p = page(TapePage::default(), &f, 1);
            assert_eq!(p.tapes.len(), 2);
            assert!(p.tapes.iter().all(|t| !f.matches(t)), "{f:?}");
        }
    }

    #[test]
    fn frames_are_out_of_sequence() {
        let f = frames(5, Vec::new());
        assert_eq!(f.len(), 1);
        assert_ne!(f[0].seq, 5);
        let real = vec![Frame::new(
            5,
            1,
            Direction::ClientToServer,
            b"{}".to_vec(),
            false,
        )];
        assert_ne!(frames(5, real)[0].seq, 5);
    }

    #[test]
    fn info_names_another_tape() {
        let i = info("abc", None);
        assert_ne!(i.header.id, "abc");
        assert!(i.frame_count > 1 << 60);
    }
}
