//! Large tapes: the seek index and batch appends.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod common;

use common::*;
use tapedeck_types::{EndReason, ErrorKind};

#[test]
fn reading_the_end_of_a_100k_frame_tape_uses_the_seek_index() {
    let (dir, s) = store();
    let total = 100_000u64;
    let mut w = s.create(header("big", 1)).unwrap();
    let mut all = Vec::with_capacity(total as usize);
    for batch in 0..(total / 1000) {
        let fs = frames(batch * 1000, (batch + 1) * 1000);
        w.append(&fs).unwrap();
        all.extend(fs);
    }
    // Reads while recording, from another instance.
    let other = open(dir.path());
    assert_eq!(
        other.read_frames("big", 77_777, 3, u64::MAX).unwrap(),
        all[77_777..77_780]
    );
    w.finish(&summary(&all, 1), EndReason::Completed).unwrap();

    assert_eq!(
        s.read_frames("big", 99_990, 100, u64::MAX).unwrap(),
        all[99_990..]
    );
    assert_eq!(
        s.read_frames("big", 50_000, 5, u64::MAX).unwrap(),
        all[50_000..50_005]
    );
    assert_eq!(
        s.read_frames("big", 64 * 700, 1, u64::MAX).unwrap(),
        all[44_800..44_801]
    );
    assert_eq!(
        s.read_frames("big", 64 * 700 - 1, 2, u64::MAX).unwrap(),
        all[44_799..44_801]
    );

    // Damage frame 10. A read near the end never passes it (it starts at a
    // seek entry); a read from the start hits it and reports corruption.
    let path = tape_path(dir.path(), "big");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = br#""text":"frame 10""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 3] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let fresh = open(dir.path());
    assert_eq!(
        fresh.read_frames("big", 99_990, 100, u64::MAX).unwrap(),
        all[99_990..]
    );
    assert_eq!(
        fresh.read_frames("big", 64, 3, u64::MAX).unwrap(),
        all[64..67]
    );
    assert_eq!(
        fresh.read_frames("big", 5, 5, u64::MAX).unwrap(),
        all[5..10]
    );
    let err = fresh.read_frames("big", 5, 100, u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io, "{err}");
    // get and list answer from the catalog without reading frames.
    assert_eq!(fresh.get("big").unwrap().frame_count, total);
    assert_eq!(fresh.stats().unwrap().frame_count, total);
}

/// Appending to a long tape keeps every earlier frame intact and readable
/// from any position. (How an append's cost grows with the tape is measured
/// by the benchmarks, not asserted here: timings are not tests.)
#[test]
fn batches_appended_to_a_long_tape_stay_readable_from_anywhere() {
    let (_dir, s) = store();
    let mut w = s.create(header("t", 1)).unwrap();
    let kib = vec![b'x'; 1024];
    let batch = |n: u64| -> Vec<_> { (n * 1000..(n + 1) * 1000).map(|i| frame(i, &kib)).collect() };
    for n in 0..41 {
        w.append(&batch(n)).unwrap();
    }
    assert_eq!(w.next_seq(), 41_000);
    for from in [0u64, 999, 1000, 20_500, 40_999] {
        let got = s.read_frames("t", from, 3, u64::MAX).unwrap();
        let want: Vec<_> = (from..(from + 3).min(41_000))
            .map(|i| frame(i, &kib))
            .collect();
        assert_eq!(got, want, "read from {from}");
    }
}
