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

/// Frame `seq` as the recorder records it now: a JSON request with the
/// terms the host derives, and an attribute.
fn frame_with_fields(seq: u64) -> Frame {
    let payload = format!(
        r#"{{"jsonrpc":"2.0","id":{seq},"method":"tools/call","params":{{"name":"t{seq}"}}}}"#
    );
    Frame {
        terms: tapedeck_types::terms::payload_terms(payload.as_bytes()),
        attributes: vec![("k".into(), format!("v{seq}"))],
        ..Frame::new(
            seq,
            100 + seq,
            Direction::ClientToServer,
            payload.into_bytes(),
            false,
        )
    }
}

#[test]
fn frames_keep_their_terms_and_attributes_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let file = spool.create_file(&key(), &header("t3")).unwrap();
    let frames: Vec<Frame> = (0..4)
        .map(|seq| {
            if seq == 2 {
                frame(seq)
            } else {
                frame_with_fields(seq)
            }
        })
        .collect();
    for f in &frames {
        file.write_frame(f).unwrap();
    }
    assert_eq!(frames[0].terms, ["method:tools/call", "tool:t0"]);
    assert_eq!(file.read_frames(0, 10, u64::MAX).unwrap(), frames);
    let entry = SpoolEntry::read(file.path()).unwrap();
    assert_eq!((entry.format, entry.frames, &entry.damage), (2, 4, &None));
    let mut reader = entry.frame_reader().unwrap();
    assert_eq!(reader.next_batch(10, u64::MAX).unwrap(), frames);
}

/// A spool file as the recorder wrote it before contract 0.2 (format 1,
/// "TDSPOOL1"), byte by byte: a begin record, frames 0..3 (a request, a
/// response, a line that is not JSON), an ack of frame 0. The process
/// died before the end.
fn format_1_file(provider_key: &str) -> Vec<u8> {
    fn record(kind: u8, body: &[u8], out: &mut Vec<u8>) {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[kind]);
        crc.update(body);
        out.extend_from_slice(&(body.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.push(kind);
        out.extend_from_slice(body);
    }
    let mut out = b"TDSPOOL1".to_vec();
    let begin = format!(
        r#"{{"provider":"fs","provider_key":"{provider_key}","pid":1,"header":{{"id":"old-tape","session_id":"s","name":"before the upgrade","tags":[["k","v"]],"created_at_us":1}}}}"#
    );
    record(1, begin.as_bytes(), &mut out);
    let lines: [(u8, u8, &[u8]); 3] = [
        (
            0,
            0,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"transfer"}}"#,
        ),
        (1, 0, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
        (1, 1, b"not json"),
    ];
    for (seq, (dir, not_json, payload)) in lines.into_iter().enumerate() {
        let mut body = Vec::new();
        body.extend_from_slice(&(seq as u64).to_le_bytes());
        body.extend_from_slice(&(10 + seq as u64).to_le_bytes());
        body.extend_from_slice(&[dir, not_json]);
        body.extend_from_slice(payload);
        record(2, &body, &mut out);
    }
    record(3, &1u64.to_le_bytes(), &mut out);
    out
}

#[tokio::test]
async fn a_format_1_file_is_recovered_with_the_terms_derived() {
    use tapedeck_store::TapeStore;
    use tapedeck_store::testing::MemStore;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let path = spool.provider_dir(&key()).unwrap().join("old-tape.spool");
    std::fs::write(&path, format_1_file(key().hex())).unwrap();
    let entry = SpoolEntry::read(&path).unwrap();
    assert_eq!(
        (
            entry.format,
            entry.frames,
            entry.acked,
            entry.damage.clone()
        ),
        (1, 3, 1, None)
    );
    assert_eq!(entry.begin.header.envelope, None);
    assert_eq!(spool.files_of(&key()).unwrap(), std::slice::from_ref(&path));

    let store = MemStore::new("fs");
    let report = recover_all(&spool, &store, &key()).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.recovered.len(), 1);
    assert_eq!(report.recovered[0].reason, EndReason::Crashed);
    assert!(!path.exists());
    let info = store.get("old-tape").await.unwrap();
    assert_eq!(info.header.name, "before the upgrade");
    assert_eq!(info.frame_count, 3);
    let frames = store
        .read_frames("old-tape", 0, 10, u64::MAX)
        .await
        .unwrap();
    let terms: Vec<&[String]> = frames.iter().map(|f| f.terms.as_slice()).collect();
    assert_eq!(
        terms,
        [
            &["method:tools/call".to_string(), "tool:transfer".to_string()][..],
            &[],
            &[]
        ]
    );
    assert!(frames[2].not_json);
    assert_eq!(frames[2].payload, b"not json");
}

#[test]
fn a_spool_file_appears_whole_and_locked_and_a_second_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let file = spool.create_file(&key(), &header("t1")).unwrap();
    // Linked into place from a name recovery ignores, which is gone.
    let names: Vec<String> = std::fs::read_dir(file.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["t1.spool"]);
    // Whole: a reader finds the signature and the begin record.
    let entry = SpoolEntry::read(file.path()).unwrap();
    assert_eq!(entry.tape_id(), "t1");
    // Locked by its writer, under its final name.
    let other = std::fs::File::open(file.path()).unwrap();
    assert!(other.try_lock().is_err());
    // The same tape twice is refused.
    assert!(spool.create_file(&key(), &header("t1")).is_err());
}
