//! Unit tests of the spool: files, reading back, status, grants.

use super::*;
use tapedeck_types::{Direction, EndReason, Frame, TapeHeader};

fn header(id: &str) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: "s".into(),
        name: "n".into(),
        tags: vec![],
        created_at_us: 1,
        envelope: None,
    }
}

fn frame(seq: u64) -> Frame {
    Frame {
        seq,
        timestamp_us: 100 + seq,
        direction: if seq.is_multiple_of(2) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        },
        payload: format!("{{\"n\":{seq}}}").into_bytes(),
        not_json: false,
        terms: Vec::new(),
        attributes: Vec::new(),
    }
}

fn key() -> ProviderKey {
    ProviderKey::from_parts("fs", "0123456789abcdef0123")
}

#[test]
fn a_spool_file_holds_every_frame_written() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let file = spool.create_file(&key(), &header("t1")).unwrap();
    for seq in 0..1000 {
        file.write_frame(&frame(seq)).unwrap();
    }
    file.write_ack(600);
    assert_eq!(file.frames_written(), 1000);
    assert_eq!(file.frames_synced(), 0);
    assert!(file.dirty_since().is_some());
    file.sync().unwrap();
    assert_eq!(file.frames_synced(), 1000);
    assert!(file.dirty_since().is_none());

    // Read back from anywhere (through the seek index).
    for from in [0, 1, 255, 256, 257, 700, 999] {
        let got = file.read_frames(from, 10, u64::MAX).unwrap();
        let want: Vec<_> = (from..(from + 10).min(1000)).map(frame).collect();
        assert_eq!(got, want, "from {from}");
    }
    assert_eq!(file.read_frames(1000, 10, u64::MAX).unwrap(), vec![]);
    // A byte bound still returns one frame.
    assert_eq!(file.read_frames(5, 10, 1).unwrap(), vec![frame(5)]);

    // What another process sees.
    let entry = SpoolEntry::read(file.path()).unwrap();
    assert_eq!(entry.tape_id(), "t1");
    assert_eq!(entry.frames, 1000);
    assert_eq!(entry.acked, 600);
    assert_eq!(entry.pending(), 400);
    assert_eq!(entry.end, None);
    assert_eq!(entry.damage, None);
    assert_eq!(entry.begin.provider_key, key().hex());
    let mut reader = entry.frame_reader().unwrap();
    reader.skip_to(998).unwrap();
    assert_eq!(
        reader.next_batch(10, u64::MAX).unwrap(),
        vec![frame(998), frame(999)]
    );
    assert!(reader.next_batch(10, u64::MAX).unwrap().is_empty());

    file.write_end(&EndRecord {
        reason: EndReason::Completed,
        ended_at_us: 5,
    })
    .unwrap();
    let entry = SpoolEntry::read(file.path()).unwrap();
    assert_eq!(entry.end.map(|e| e.reason), Some(EndReason::Completed));
    let path = file.path().to_path_buf();
    file.release().unwrap();
    assert!(!path.exists());
}

#[test]
fn a_torn_tail_keeps_every_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let file = spool.create_file(&key(), &header("t2")).unwrap();
    for seq in 0..5 {
        file.write_frame(&frame(seq)).unwrap();
    }
    let path = file.path().to_path_buf();
    drop(file);
    // A power loss in the middle of the sixth record.
    let mut extra = Vec::new();
    record::encode_frame(&frame(5), &mut extra);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&extra[..extra.len() - 3]);
    std::fs::write(&path, bytes).unwrap();
    let entry = SpoolEntry::read(&path).unwrap();
    assert_eq!(entry.frames, 5);
    assert!(
        entry.damage.as_deref().unwrap().contains("cut short"),
        "{:?}",
        entry.damage
    );
    let mut reader = entry.frame_reader().unwrap();
    assert_eq!(reader.next_batch(100, u64::MAX).unwrap().len(), 5);
    assert!(reader.next_batch(100, u64::MAX).unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_a_spool_file_is_named_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.spool");
    std::fs::write(&path, b"hello world, not a spool").unwrap();
    let err = SpoolEntry::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("x.spool") && err.contains("signature"),
        "{err}"
    );
}

#[test]
fn status_tells_live_files_from_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let live = spool.create_file(&key(), &header("a-live")).unwrap();
    live.write_frame(&frame(0)).unwrap();
    let gone = spool.create_file(&key(), &header("b-gone")).unwrap();
    for seq in 0..3 {
        gone.write_frame(&frame(seq)).unwrap();
    }
    gone.write_ack(1);
    drop(gone);
    let other = ProviderKey::from_parts("pg", "fedcba98765432100000");
    drop(spool.create_file(&other, &header("c-other")).unwrap());

    let status = SpoolStatus::read(&spool).unwrap();
    let states: Vec<_> = status
        .entries
        .iter()
        .map(|e| (e.entry.tape_id().to_string(), e.state, e.entry.pending()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a-live".into(), EntryState::Live, 1),
            ("b-gone".into(), EntryState::Waiting, 2),
            ("c-other".into(), EntryState::Waiting, 0),
        ]
    );
    let per = status.per_provider();
    assert_eq!(per.len(), 2);
    assert_eq!(
        (
            per[0].provider.as_str(),
            per[0].tapes,
            per[0].live,
            per[0].pending
        ),
        ("fs", 2, 1, 3)
    );
    assert_eq!(spool.files_of(&key()).unwrap().len(), 2);
    assert_eq!(spool.files_of(&other).unwrap().len(), 1);
    assert_eq!(spool.files().unwrap().len(), 3);
}
