//! Crashes, torn writes, and several instances on one root.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod common;

use common::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use tapedeck_types::{EndReason, ErrorKind, TapeFilter, TapeState};

fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn len(path: &std::path::Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

#[test]
fn torn_tail_is_ignored_by_readers_and_truncated_by_resume() {
    let (dir, s) = store();
    let fs = frames(0, 100);
    let w = start(&s, header("t", 1), &fs[..70]);
    drop(w); // the recorder dies...
    let path = tape_path(dir.path(), "t");
    let good_len = len(&path);
    // ...in the middle of writing a record.
    append_raw(&path, &[0xA7, 0x11, 200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);

    let s2 = open(dir.path());
    assert_eq!(s2.get("t").unwrap().frame_count, 70);
    assert_eq!(read_all(&s2, "t", 1000), fs[..70]);
    // The instance that wrote it sees the same.
    assert_eq!(s.get("t").unwrap().frame_count, 70);

    let mut w = s2.resume("t").unwrap();
    assert_eq!(w.next_seq(), 70);
    assert_eq!(len(&path), good_len, "resume cuts the torn tail");
    assert_eq!(w.append(&fs[70..]).unwrap(), 100);
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(read_all(&s, "t", 33), fs);
    assert_eq!(s.get("t").unwrap().state, TapeState::Finished);
}

#[test]
fn garbage_tail_and_lost_seek_index_are_repaired() {
    let (dir, s) = store();
    let fs = frames(0, 300);
    drop(start(&s, header("t", 1), &fs[..200]));
    append_raw(
        &tape_path(dir.path(), "t"),
        b"\x00\x00garbage that is not a record",
    );
    // The seek index is lost or damaged: it is only an accelerator.
    let seek = dir.path().join("tapes/t.seek");
    let mut idx = fs::read(&seek).unwrap();
    idx.truncate(idx.len() - 20);
    fs::write(&seek, &idx).unwrap();

    let s2 = open(dir.path());
    assert_eq!(s2.read_frames("t", 190, 5, u64::MAX).unwrap(), fs[190..195]);
    let mut w = s2.resume("t").unwrap();
    assert_eq!(w.next_seq(), 200);
    assert_eq!(
        len(&seek),
        4 * 48,
        "rebuilt: entries for frames 0, 64, 128, 192"
    );
    w.append(&fs[200..]).unwrap();
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(len(&seek), 5 * 48);
    assert_eq!(s.read_frames("t", 299, 5, u64::MAX).unwrap(), fs[299..]);
    fs::remove_file(&seek).unwrap();
    assert_eq!(s.read_frames("t", 250, 2, u64::MAX).unwrap(), fs[250..252]);
}

#[test]
fn a_term_whose_frame_was_torn_does_not_count() {
    let (dir, s) = store();
    let fs = vec![request(0, "initialize"), response(1, "x")];
    let w = start(&s, header("t", 1), &fs);
    drop(w);
    // Simulate a batch torn after its terms record: write a valid terms
    // record and half a frame by hand, reusing the store's own encoding via a
    // second tape.
    let (dir2, s2) = store();
    let mut w2 = start(&s2, header("t", 1), &fs);
    let before = len(&tape_path(dir2.path(), "t"));
    w2.append(&[request(2, "secret/method")]).unwrap();
    let bytes = fs::read(tape_path(dir2.path(), "t")).unwrap();
    let batch = &bytes[before as usize..];
    append_raw(&tape_path(dir.path(), "t"), &batch[..batch.len() - 5]);

    let s3 = open(dir.path());
    assert_eq!(s3.get("t").unwrap().frame_count, 2);
    let mut w = s3.resume("t").unwrap();
    assert_eq!(w.next_seq(), 2);
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    let q = method_query;
    assert_eq!(
        s3.search(&q("initialize"), None, 10).unwrap().tapes.len(),
        1
    );
    assert!(
        s3.search(&q("secret/method"), None, 10)
            .unwrap()
            .tapes
            .is_empty()
    );
}

#[test]
fn two_instances_see_each_others_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let b = open(dir.path());
    let fs = frames(0, 20);

    let mut w = a.create(header("t", 1)).unwrap();
    assert_eq!(b.get("t").unwrap().frame_count, 0);
    w.append(&fs[..10]).unwrap();
    assert_eq!(b.get("t").unwrap().frame_count, 10);
    assert_eq!(read_all(&b, "t", 3), fs[..10]);
    assert_kind(b.create(header("t", 2)), ErrorKind::AlreadyExists, "\"t\"");
    w.append(&fs[10..]).unwrap();
    let recording = TapeFilter {
        state: Some(TapeState::Recording),
        ..Default::default()
    };
    let page = b.list(&recording, None, 10).unwrap();
    assert_eq!(page.tapes.len(), 1);
    assert_eq!(page.tapes[0].frame_count, 20);
    w.finish(&summary(&fs, 5), EndReason::Completed).unwrap();
    assert_eq!(b.get("t").unwrap().state, TapeState::Finished);
    assert!(b.list(&recording, None, 10).unwrap().tapes.is_empty());

    b.save(header("u", 2), &fs, &summary(&fs, 1), EndReason::Completed)
        .unwrap();
    assert_eq!(
        a.list(&TapeFilter::default(), None, 10)
            .unwrap()
            .tapes
            .len(),
        2
    );
    b.delete("t").unwrap();
    assert_kind(a.get("t"), ErrorKind::NotFound, "\"t\"");
    // Re-created by a, seen as the new incarnation by b.
    record(&a, header("t", 3), &fs[..1], EndReason::Crashed);
    let info = b.get("t").unwrap();
    assert_eq!(
        (info.state, info.frame_count, info.header.created_at_us),
        (TapeState::Crashed, 1, 3)
    );
    assert_eq!(a.stats().unwrap(), b.stats().unwrap());
}

#[test]
fn a_recording_tape_resumed_by_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let b = open(dir.path());
    let fs = frames(0, 10);
    let mut wa = start(&a, header("t", 1), &fs[..5]);
    // The host gives up on instance a and resumes in b.
    let mut wb = b.resume("t").unwrap();
    wb.append(&fs[5..]).unwrap();
    // The stale writer in a notices the file changed and refuses to write.
    assert_kind(wa.append(&frames(5, 6)), ErrorKind::Io, "another writer");
    wb.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(read_all(&a, "t", 4), fs);
}

#[test]
fn a_tape_file_whose_catalog_entry_was_lost_is_adopted() {
    // Create in one root, then move the files into a root whose log never
    // heard of them: exactly what a crash between link and log looks like.
    let (src, s) = store();
    let fs = frames(0, 100);
    record(&s, header("done", 1), &fs, EndReason::Completed);
    drop(start(&s, header("live", 2), &fs[..30]));
    let (dst, _) = store();
    let old = open(dst.path());
    for f in ["done.tape", "done.seek", "live.tape", "live.seek"] {
        fs::copy(
            src.path().join("tapes").join(f),
            dst.path().join("tapes").join(f),
        )
        .unwrap();
    }
    // A long-lived instance finds it on `get`; a fresh one at open.
    assert_eq!(old.get("done").unwrap().frame_count, 100);
    let copied = tape_path(dst.path(), "late");
    fs::copy(tape_path(src.path(), "done"), &copied).unwrap();
    let s2 = open(dst.path());
    assert_eq!(s2.get("done").unwrap().state, TapeState::Finished);
    assert_eq!(s2.get("live").unwrap().frame_count, 30);
    assert_eq!(
        s2.list(&TapeFilter::default(), None, 10)
            .unwrap()
            .tapes
            .len(),
        2,
        "a file whose header names another id is ignored"
    );
    assert_eq!(read_all(&s2, "done", 1000), fs);
    let mut w = s2.resume("live").unwrap();
    w.append(&fs[30..]).unwrap();
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
}

#[test]
fn an_interrupted_delete_leaves_no_visible_tape() {
    let (dir, s) = store();
    let fs = frames(0, 3);
    record(&s, header("t", 1), &fs, EndReason::Completed);
    let saved = fs::read(tape_path(dir.path(), "t")).unwrap();
    s.delete("t").unwrap();
    // The delete was logged but the file removal never happened.
    fs::write(tape_path(dir.path(), "t"), &saved).unwrap();
    assert_kind(s.get("t"), ErrorKind::NotFound, "\"t\"");
    let s2 = open(dir.path());
    assert_kind(s2.get("t"), ErrorKind::NotFound, "\"t\"");
    assert!(
        !tape_path(dir.path(), "t").exists(),
        "open removes the leftover"
    );
    // And create clears one found in its way.
    fs::write(tape_path(dir.path(), "t"), &saved).unwrap();
    record(&s2, header("t", 9), &fs[..1], EndReason::Completed);
    assert_eq!(s.get("t").unwrap().header.created_at_us, 9);
}

#[test]
fn an_end_written_but_not_logged_is_seen_and_logged_at_open() {
    let (dir, s) = store();
    let fs = vec![request(0, "tools/call"), response(1, "r")];
    let mut w = start(&s, header("t", 1), &fs);
    let log = dir.path().join("index.log");
    let log_before = fs::read(&log).unwrap();
    w.finish(&summary(&fs, 7), EndReason::Crashed).unwrap();
    // Lose the `ended` entry.
    fs::write(&log, &log_before).unwrap();
    let s2 = open(dir.path());
    let info = s2.get("t").unwrap();
    assert_eq!(
        (info.state, info.ended_at_us),
        (TapeState::Crashed, Some(7))
    );
    assert!(
        len(&log) > log_before.len() as u64,
        "the end was logged again"
    );
    let q = method_query("tools/call");
    assert_eq!(open(dir.path()).search(&q, None, 5).unwrap().tapes.len(), 1);
}

#[test]
fn a_torn_catalog_entry_hides_nothing_after_it() {
    let (dir, s) = store();
    record(&s, header("a", 1), &frames(0, 1), EndReason::Completed);
    // A torn entry from a crashed instance, then more entries from others.
    append_raw(
        &dir.path().join("index.log"),
        &[0xA7, 0x01, 0x40, 0x00, 0x00, 0x00, 9, 9, 9, 9, b'{'],
    );
    let other = open(dir.path());
    record(&other, header("b", 2), &frames(0, 1), EndReason::Completed);
    let ids: Vec<_> = open(dir.path())
        .list(&TapeFilter::default(), None, 10)
        .unwrap()
        .tapes
        .into_iter()
        .map(|t| t.header.id)
        .collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(s.get("b").unwrap().frame_count, 1);
}

#[test]
fn corruption_inside_a_finished_tape_is_an_io_error() {
    let (dir, s) = store();
    let fs = frames(0, 10);
    record(&s, header("t", 1), &fs, EndReason::Completed);
    let path = tape_path(dir.path(), "t");
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let err = s.read_frames("t", 0, 100, u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io);
    assert!(
        err.message.contains("t.tape") && err.message.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn leftover_temp_files_do_not_matter() {
    let (dir, s) = store();
    fs::write(
        dir.path().join("tmp/t.0000000000000001.new"),
        b"half a tape",
    )
    .unwrap();
    record(&s, header("t", 1), &frames(0, 1), EndReason::Completed);
    assert_eq!(open(dir.path()).get("t").unwrap().frame_count, 1);
}

#[test]
fn stray_files_in_the_tapes_directory_are_ignored() {
    let (dir, s) = store();
    record(&s, header("t", 1), &frames(0, 1), EndReason::Completed);
    let tapes = dir.path().join("tapes");
    fs::write(tapes.join("junk.tape"), b"not a tape file at all").unwrap();
    fs::write(tapes.join("empty.tape"), b"").unwrap();
    fs::write(tapes.join("bad name!.tape"), b"").unwrap();
    fs::write(tapes.join("README"), b"hello").unwrap();
    let s2 = open(dir.path());
    let all = s2.list(&TapeFilter::default(), None, 10).unwrap();
    assert_eq!(all.tapes.len(), 1);
    assert_kind(s2.get("junk"), ErrorKind::NotFound, "\"junk\"");
    // The id is taken on disk, so create refuses it rather than clobber it.
    assert_kind(
        s2.create(header("junk", 1)),
        ErrorKind::AlreadyExists,
        "\"junk\"",
    );
    assert_eq!(
        fs::read(tapes.join("junk.tape")).unwrap(),
        b"not a tape file at all"
    );
}
