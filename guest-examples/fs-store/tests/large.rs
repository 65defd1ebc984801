//! Large tapes: the seek index and batch appends.

mod common;

use common::*;
use std::time::Instant;
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

#[test]
fn appends_cost_the_batch_not_the_tape() {
    let (_dir, s) = store();
    let mut w = s.create(header("t", 1)).unwrap();
    let kib = vec![b'x'; 1024];
    let batch = |n: u64| -> Vec<_> { (n * 1000..(n + 1) * 1000).map(|i| frame(i, &kib)).collect() };
    let first = Instant::now();
    w.append(&batch(0)).unwrap();
    let first = first.elapsed();
    for n in 1..40 {
        w.append(&batch(n)).unwrap();
    }
    let last = Instant::now();
    w.append(&batch(40)).unwrap();
    let last = last.elapsed();
    assert_eq!(w.next_seq(), 41_000);
    // Generous bound: the 41st batch must not be anywhere near 40x the first.
    assert!(
        last < first * 10 + std::time::Duration::from_millis(50),
        "first {first:?}, last {last:?}"
    );
}
