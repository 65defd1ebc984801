//! Writing, reading, ending and deleting tapes; the contract's rules.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod common;

use common::*;
use fs_store::{FsConfig, FsStore};
use tapedeck_types::{EndReason, ErrorKind, TapeState, TapeSummary};

#[test]
fn round_trip_keeps_everything_verbatim() {
    let (dir, s) = store();
    let mut h = header("t1", 100);
    h.tags = vec![
        ("k".into(), "v1".into()),
        ("k".into(), "v2".into()),
        ("a".into(), "".into()),
    ];
    h.name = "Ünïcode name".into();
    let mut fs = vec![request(0, "initialize"), response(1, "ok")];
    fs.push(frame(2, &[0xff, 0xfe, 0x00, b'\n', 0x80]));
    fs.push(frame(3, b""));
    fs.push(frame(4, &vec![b'x'; 200_000]));
    let mut w = s.create(h.clone()).unwrap();
    assert_eq!(w.id(), "t1");
    assert_eq!(w.next_seq(), 0);
    assert_eq!(w.append(&fs[..2]).unwrap(), 2);
    assert_eq!(w.append(&fs[2..]).unwrap(), 5);
    assert_eq!(w.next_seq(), 5);

    let live = s.get("t1").unwrap();
    assert_eq!(live.state, TapeState::Recording);
    assert_eq!(live.frame_count, 5);
    assert_eq!(live.ended_at_us, None);
    assert_eq!(read_all(&s, "t1", 2), fs);

    let sum = summary(&fs, 555);
    let info = w.finish(&sum, EndReason::Completed).unwrap();
    assert_eq!(info.header, h);
    assert_eq!(info.state, TapeState::Finished);
    assert_eq!(info.frame_count, 5);
    assert_eq!(info.byte_count, sum.byte_count);
    assert_eq!(info.ended_at_us, Some(555));
    assert_eq!(info.digest, sum.digest);
    assert_eq!(s.get("t1").unwrap(), info);

    // A fresh instance sees exactly the same.
    let s2 = open(dir.path());
    assert_eq!(s2.get("t1").unwrap(), info);
    assert_eq!(read_all(&s2, "t1", 1000), fs);
}

#[test]
fn fsync_on_works_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStore::open(FsConfig {
        root: dir.path().join("nested/root"),
        fsync: true,
    })
    .unwrap();
    let fs = frames(0, 10);
    record(&s, header("a", 1), &fs, EndReason::Completed);
    s.save(header("b", 2), &fs, &summary(&fs, 3), EndReason::Crashed)
        .unwrap();
    s.delete("a").unwrap();
    assert_eq!(s.stats().unwrap().tape_count, 1);
}

#[test]
fn redelivered_frames_are_skipped_and_gaps_rejected() {
    let (_dir, s) = store();
    let mut w = s.create(header("t", 1)).unwrap();
    let fs = frames(0, 20);
    assert_eq!(w.append(&fs[0..10]).unwrap(), 10);
    // Overlapping redelivery: 5..10 skipped without comparison, 10..15 added.
    let mut redelivered = frames(5, 15);
    redelivered[0].payload = b"different".to_vec();
    assert_eq!(w.append(&redelivered).unwrap(), 15);
    // Entirely old batch and empty batch: no-ops.
    assert_eq!(w.append(&fs[0..3]).unwrap(), 15);
    assert_eq!(w.append(&[]).unwrap(), 15);
    // A gap stores nothing.
    assert_kind(w.append(&fs[16..18]), ErrorKind::InvalidInput, "gap");
    // A non-consecutive batch stores nothing, even its valid head.
    let bad = vec![fs[15].clone(), fs[17].clone()];
    assert_kind(w.append(&bad), ErrorKind::InvalidInput, "not consecutive");
    let dup = vec![fs[15].clone(), fs[15].clone()];
    assert_kind(w.append(&dup), ErrorKind::InvalidInput, "not consecutive");
    assert_eq!(w.next_seq(), 15);
    assert_eq!(s.get("t").unwrap().frame_count, 15);
    assert_eq!(w.append(&fs[15..]).unwrap(), 20);
    assert_eq!(read_all(&s, "t", 7), fs);
}

#[test]
fn finish_checks_the_summary_and_is_idempotent() {
    let (_dir, s) = store();
    let fs = frames(0, 5);
    let mut w = start(&s, header("t", 1), &fs);
    let good = summary(&fs, 77);
    let mut wrong = good.clone();
    wrong.frame_count = 4;
    assert_kind(
        w.finish(&wrong, EndReason::Completed),
        ErrorKind::InvalidInput,
        "frame-count",
    );
    let mut wrong = good.clone();
    wrong.byte_count += 1;
    assert_kind(
        w.finish(&wrong, EndReason::Completed),
        ErrorKind::InvalidInput,
        "byte-count",
    );
    // Nothing changed: still recording, still appendable.
    assert_eq!(s.get("t").unwrap().state, TapeState::Recording);

    let info = w.finish(&good, EndReason::Completed).unwrap();
    assert_eq!(w.finish(&good, EndReason::Completed).unwrap(), info);
    let mut later = good.clone();
    later.ended_at_us += 1;
    assert_kind(
        w.finish(&later, EndReason::Completed),
        ErrorKind::InvalidInput,
        "already ended",
    );
    assert_kind(
        w.finish(&good, EndReason::Crashed),
        ErrorKind::InvalidInput,
        "already ended",
    );
    assert_kind(w.append(&frames(5, 6)), ErrorKind::InvalidInput, "finished");
    // Redelivery of stored frames after finish is still a no-op.
    assert_eq!(w.append(&fs).unwrap(), 5);
    assert_kind(w.abort("late"), ErrorKind::InvalidInput, "finished");
    assert_eq!(s.get("t").unwrap(), info);
}

#[test]
fn end_reasons_map_to_states() {
    let (_dir, s) = store();
    let fs = frames(0, 3);
    for (id, reason, state) in [
        ("c", EndReason::Completed, TapeState::Finished),
        ("x", EndReason::Crashed, TapeState::Crashed),
        ("a", EndReason::Aborted, TapeState::Aborted),
    ] {
        record(&s, header(id, 1), &fs, reason);
        assert_eq!(s.get(id).unwrap().state, state);
    }
}

#[test]
fn abort_keeps_frames_and_is_idempotent() {
    let (_dir, s) = store();
    let fs = frames(0, 4);
    let mut w = start(&s, header("t", 1), &fs);
    w.abort("user pressed ctrl-c").unwrap();
    w.abort("again").unwrap();
    let info = s.get("t").unwrap();
    assert_eq!(info.state, TapeState::Aborted);
    assert_eq!(info.frame_count, 4);
    assert!(info.ended_at_us.is_some());
    assert_eq!(read_all(&s, "t", 10), fs);
    assert_kind(
        w.finish(&summary(&fs, 1), EndReason::Completed),
        ErrorKind::InvalidInput,
        "already ended",
    );
    assert_kind(s.resume("t"), ErrorKind::InvalidInput, "aborted");
}

#[test]
fn create_and_save_refuse_existing_ids() {
    let (_dir, s) = store();
    let fs = frames(0, 2);
    record(&s, header("t", 1), &fs, EndReason::Completed);
    assert_kind(s.create(header("t", 2)), ErrorKind::AlreadyExists, "\"t\"");
    assert_kind(
        s.save(header("t", 2), &fs, &summary(&fs, 1), EndReason::Completed),
        ErrorKind::AlreadyExists,
        "\"t\"",
    );
    let _w = s.create(header("r", 1)).unwrap();
    assert_kind(s.create(header("r", 1)), ErrorKind::AlreadyExists, "\"r\"");
}

#[test]
fn save_stores_a_whole_tape_and_validates_it() {
    let (dir, s) = store();
    let mut fs: Vec<_> = (0..300)
        .map(|i| {
            if i % 3 == 0 {
                request(i, &format!("m{}", i % 7))
            } else {
                response(i, "r")
            }
        })
        .collect();
    fs.push(frame(300, &[0xc3, 0x28]));
    let sum = summary(&fs, 42);
    let info = s
        .save(header("imp", 5), &fs, &sum, EndReason::Completed)
        .unwrap();
    assert_eq!(info.state, TapeState::Finished);
    assert_eq!(info.frame_count, 301);
    assert_eq!(info.ended_at_us, Some(42));
    assert_eq!(read_all(&s, "imp", 64), fs);
    assert_eq!(
        s.read_frames("imp", 250, 3, u64::MAX).unwrap(),
        fs[250..253]
    );
    let s2 = open(dir.path());
    assert_eq!(s2.get("imp").unwrap(), info);

    let bad_seq = vec![frame(0, b"a"), frame(2, b"b")];
    let sum2 = summary(&bad_seq, 1);
    assert_kind(
        s.save(header("g", 1), &bad_seq, &sum2, EndReason::Completed),
        ErrorKind::InvalidInput,
        "seq 2",
    );
    let one = frames(0, 2);
    let mut sum3 = summary(&one, 1);
    sum3.frame_count = 3;
    assert_kind(
        s.save(header("g", 1), &one, &sum3, EndReason::Completed),
        ErrorKind::InvalidInput,
        "frame-count",
    );
    let mut sum4 = summary(&one, 1);
    sum4.byte_count = 0;
    assert_kind(
        s.save(header("g", 1), &one, &sum4, EndReason::Completed),
        ErrorKind::InvalidInput,
        "byte-count",
    );
    assert_kind(s.get("g"), ErrorKind::NotFound, "\"g\"");
    // An empty tape can be saved too.
    let empty = TapeSummary {
        frame_count: 0,
        byte_count: 0,
        ended_at_us: 1,
        digest: None,
        seal: None,
    };
    assert_eq!(
        s.save(header("e", 1), &[], &empty, EndReason::Aborted)
            .unwrap()
            .state,
        TapeState::Aborted
    );
    assert!(s.read_frames("e", 0, 10, 10).unwrap().is_empty());
    // No temp file is left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn read_frames_bounds() {
    let (_dir, s) = store();
    let fs: Vec<_> = (0..10).map(|i| frame(i, &[b'a'; 100])).collect();
    let mut w = start(&s, header("t", 1), &fs);
    assert_eq!(s.read_frames("t", 0, 3, u64::MAX).unwrap(), fs[0..3]);
    assert_eq!(s.read_frames("t", 2, 100, 250).unwrap(), fs[2..4]);
    assert_eq!(s.read_frames("t", 2, 100, 200).unwrap(), fs[2..4]);
    assert_eq!(s.read_frames("t", 2, 100, 199).unwrap(), fs[2..3]);
    // At least one frame, however large.
    assert_eq!(s.read_frames("t", 9, 100, 0).unwrap(), fs[9..10]);
    assert!(s.read_frames("t", 10, 100, 1000).unwrap().is_empty());
    assert!(s.read_frames("t", u64::MAX, 100, 1000).unwrap().is_empty());
    assert_kind(
        s.read_frames("t", 0, 0, 1000),
        ErrorKind::InvalidInput,
        "max-frames",
    );
    assert_kind(
        s.read_frames("nope", 0, 1, 1),
        ErrorKind::NotFound,
        "\"nope\"",
    );
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert!(s.read_frames("t", 10, 100, 1000).unwrap().is_empty());
    assert_eq!(s.read_frames("t", 5, 100, u64::MAX).unwrap(), fs[5..]);
}

#[test]
fn resume_continues_recording_tapes_only() {
    let (dir, s) = store();
    let fs = vec![
        request(0, "initialize"),
        response(1, "a"),
        request(2, "tools/list"),
    ];
    let w = start(&s, header("t", 1), &fs);
    drop(w);
    let s2 = open(dir.path());
    let mut w = s2.resume("t").unwrap();
    assert_eq!(w.next_seq(), 3);
    let more = vec![request(3, "tools/call"), request(4, "initialize")];
    assert_eq!(w.append(&more).unwrap(), 5);
    let all: Vec<_> = fs.iter().chain(&more).cloned().collect();
    w.finish(&summary(&all, 9), EndReason::Completed).unwrap();
    assert_eq!(read_all(&s, "t", 2), all);
    // Terms seen before the resume are in the tape's term set.
    for m in ["initialize", "tools/list", "tools/call"] {
        let q = method_query(m);
        assert_eq!(s.search(&q, None, 10).unwrap().tapes.len(), 1, "{m}");
    }
    assert_kind(s.resume("t"), ErrorKind::InvalidInput, "finished");
    assert_kind(s.resume("missing"), ErrorKind::NotFound, "\"missing\"");
}

#[test]
fn delete_removes_tape_and_frees_the_id() {
    let (dir, s) = store();
    let fs = frames(0, 3);
    record(&s, header("t", 1), &fs, EndReason::Completed);
    let mut w = start(&s, header("r", 2), &fs);
    s.delete("t").unwrap();
    assert_kind(s.get("t"), ErrorKind::NotFound, "\"t\"");
    assert_kind(s.read_frames("t", 0, 1, 1), ErrorKind::NotFound, "\"t\"");
    assert_kind(s.delete("t"), ErrorKind::NotFound, "\"t\"");
    assert!(!tape_path(dir.path(), "t").exists());
    assert!(!dir.path().join("tapes/t.seek").exists());
    // A recording tape can be deleted; its writer then fails.
    s.delete("r").unwrap();
    assert_kind(w.append(&frames(3, 4)), ErrorKind::NotFound, "deleted");
    // The id can be used again, and the new tape is a different one.
    let other = frames(0, 1);
    record(&s, header("t", 5), &other, EndReason::Crashed);
    assert_eq!(s.get("t").unwrap().state, TapeState::Crashed);
    assert_eq!(read_all(&s, "t", 10), other);
    assert_eq!(open(dir.path()).get("t").unwrap().header.created_at_us, 5);
}

#[test]
fn stats_add_up() {
    let (dir, s) = store();
    let fs = frames(0, 10);
    record(&s, header("a", 1), &fs, EndReason::Completed);
    let _w = start(&s, header("b", 2), &fs[..4]);
    let st = s.stats().unwrap();
    assert_eq!(st.tape_count, 2);
    assert_eq!(st.recording_count, 1);
    assert_eq!(st.frame_count, 14);
    let bytes: u64 = fs.iter().map(|f| f.payload.len() as u64).sum::<u64>()
        + fs[..4].iter().map(|f| f.payload.len() as u64).sum::<u64>();
    assert_eq!(st.byte_count, bytes);
    let on_disk: u64 = [
        "tapes/a.tape",
        "tapes/a.seek",
        "tapes/b.tape",
        "tapes/b.seek",
        "index.log",
    ]
    .iter()
    .map(|p| std::fs::metadata(dir.path().join(p)).unwrap().len())
    .sum();
    assert_eq!(st.stored_bytes, on_disk);
    assert_eq!(open(dir.path()).stats().unwrap(), st);
}

#[test]
fn invalid_ids_are_rejected_before_any_path_is_built() {
    let (dir, s) = store();
    let long = "x".repeat(10 * 1024);
    let fs = frames(0, 1);
    for id in [
        "../x",
        "",
        long.as_str(),
        "a/b",
        "/etc/passwd",
        "..",
        ".hidden",
        "a\\b",
    ] {
        assert_kind(s.create(header(id, 1)), ErrorKind::InvalidInput, "tape id");
        assert_kind(
            s.save(header(id, 1), &fs, &summary(&fs, 1), EndReason::Completed),
            ErrorKind::InvalidInput,
            "tape id",
        );
        assert_kind(s.get(id), ErrorKind::InvalidInput, "tape id");
        assert_kind(s.resume(id), ErrorKind::InvalidInput, "tape id");
        assert_kind(s.delete(id), ErrorKind::InvalidInput, "tape id");
        assert_kind(
            s.read_frames(id, 0, 1, 1),
            ErrorKind::InvalidInput,
            "tape id",
        );
    }
    assert!(!dir.path().parent().unwrap().join("x.tape").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tapes")).unwrap().count(),
        0
    );
    assert_eq!(s.stats().unwrap().tape_count, 0);
}

#[test]
fn oversized_payload_is_invalid_input() {
    let (_dir, s) = store();
    let mut w = s.create(header("t", 1)).unwrap();
    let huge = tapedeck_types::Frame::new(
        0,
        0,
        tapedeck_types::Direction::ClientToServer,
        vec![0u8; (256 << 20) + 1],
        true,
    );
    assert_kind(w.append(&[huge]), ErrorKind::InvalidInput, "payload");
    assert_eq!(w.next_seq(), 0);
}

#[test]
fn stores_and_writers_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<FsStore>();
    send::<fs_store::FsWriter>();
    let (_dir, s) = store();
    let s2 = s.clone();
    std::thread::spawn(move || record(&s2, header("t", 1), &frames(0, 2), EndReason::Completed))
        .join()
        .unwrap();
    assert_eq!(s.get("t").unwrap().frame_count, 2);
}
