use super::*;
use crate::read::{UnverifiedReason, Verification};
use tapedeck_store::testing::{MemStore, sample_frames};
use tapedeck_types::{TapeFilter, TapeHeader};

/// `n` frames of tape `id`, payloads of varying length, one not JSON.
fn frames(id: &str, n: u64) -> Vec<Frame> {
    let mut frames = sample_frames(n, |seq| {
        format!("{{\"tape\":\"{id}\",\"n\":{}}}", "x".repeat(seq as usize)).into_bytes()
    });
    if let Some(f) = frames.get_mut(3) {
        f.not_json = true;
    }
    frames
}

/// Tape `id` in `state` over `frames`, with its digest when it ended.
fn info(id: &str, created: u64, state: TapeState, frames: &[Frame]) -> TapeInfo {
    let ended = state != TapeState::Recording;
    TapeInfo {
        header: TapeHeader {
            id: id.into(),
            session_id: format!("session-{id}"),
            name: format!("tape {id}"),
            tags: vec![("env".into(), "ci".into()), ("env".into(), "eu".into())],
            created_at_us: 1_700_000_000_000_000 + created,
            envelope: None,
        },
        state,
        frame_count: frames.len() as u64,
        byte_count: payload_bytes(frames),
        ended_at_us: ended.then_some(1_700_000_001_000_000 + created),
        digest: ended.then(|| DigestChain::over(frames).hex()),
        seal: None,
    }
}

fn put(store: &MemStore, id: &str, created: u64, state: TapeState, n: u64) {
    let f = frames(id, n);
    store.put(info(id, created, state, &f), f);
}

/// A source with a tape in every state, one without a digest, one
/// empty.
fn source() -> MemStore {
    let src = MemStore::new("src");
    put(&src, "fin", 1, TapeState::Finished, 7);
    put(&src, "crash", 2, TapeState::Crashed, 3);
    put(&src, "abrt", 3, TapeState::Aborted, 2);
    put(&src, "empty", 4, TapeState::Finished, 0);
    put(&src, "live", 5, TapeState::Recording, 4);
    let f = frames("nodig", 5);
    let mut i = info("nodig", 6, TapeState::Finished, &f);
    i.digest = None;
    src.put(i, f);
    src
}

/// Pages of two frames: several appends per tape.
fn small_pages() -> MigrateOptions {
    MigrateOptions {
        page_frames: 2,
        ..MigrateOptions::default()
    }
}

/// Counts what a migration reports.
#[derive(Default)]
struct Seen {
    phases: Vec<Phase>,
    frames: u64,
    bytes: u64,
}

impl Progress for Seen {
    fn phase(&mut self, phase: Phase) {
        self.phases.push(phase);
    }
    fn advanced(&mut self, frames: u64, bytes: u64) {
        self.frames += frames;
        self.bytes += bytes;
    }
}

async fn migrate(
    src: &MemStore,
    dst: &MemStore,
    options: MigrateOptions,
    id: &str,
) -> Result<Outcome, MigrateError> {
    let m = Migration::new(src, dst).options(options);
    let info = m.source_info(id).await?;
    m.tape(&info, &mut ()).await
}

fn migrated(outcome: Result<Outcome, MigrateError>) -> Migrated {
    match outcome {
        Ok(Outcome::Migrated(m)) => *m,
        other => panic!("expected a migrated tape, got {other:?}"),
    }
}

fn failed(outcome: Result<Outcome, MigrateError>) -> MigrateError {
    match outcome {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn same(src: &MemStore, dst: &MemStore, id: &str) {
    assert_eq!(dst.tape(id), src.tape(id), "tape {id}");
}

#[tokio::test]
async fn every_ended_tape_is_copied_equal_and_live_ones_are_skipped() {
    let (src, dst) = (source(), MemStore::new("dst"));
    let page = src.list(&TapeFilter::default(), None, 100).await.unwrap();
    let m = Migration::new(&src, &dst).options(small_pages());
    for tape in &page.tapes {
        let id = tape.header.id.as_str();
        let mut seen = Seen::default();
        let outcome = m.tape(tape, &mut seen).await;
        if id == "live" {
            assert_eq!(outcome.unwrap(), Outcome::Skipped(Skip::SourceRecording));
            assert!(dst.tape(id).is_none());
            continue;
        }
        let done = migrated(outcome);
        same(&src, &dst, id);
        assert_eq!(done.info, dst.tape(id).unwrap().0);
        assert_eq!(done.resumed_from, None);
        assert_eq!(done.frames_sent, tape.frame_count);
        assert!(done.read_back);
        assert_eq!(done.note, None);
        // Raw stores check no seals: nothing is verified, the digest is.
        let want = if id == "nodig" {
            UnverifiedReason::NoDigest
        } else {
            UnverifiedReason::NoTrustedKeys
        };
        assert!(
            matches!(done.source, Verification::Unverified { reason, .. } if reason == want),
            "{id}: {:?}",
            done.source
        );
        assert_eq!(
            (seen.frames, seen.bytes),
            (tape.frame_count, tape.byte_count)
        );
        assert_eq!(
            seen.phases,
            [Phase::Copying, Phase::ReadingBack, Phase::Finishing]
        );
    }
    let sent = dst.appended();
    assert_eq!(sent, 7 + 3 + 2 + 5);

    // Again: nothing to do.
    for tape in &page.tapes {
        let expected = if tape.state == TapeState::Recording {
            Skip::SourceRecording
        } else {
            Skip::AlreadyMigrated
        };
        let outcome = m.tape(tape, &mut ()).await.unwrap();
        assert_eq!(outcome, Outcome::Skipped(expected));
    }
    assert_eq!(dst.appended(), sent);
}

#[tokio::test]
async fn a_partial_copy_is_resumed_without_sending_its_frames_again() {
    let (src, dst) = (source(), MemStore::new("dst"));
    let mut f = frames("fin", 7);
    f.truncate(3);
    dst.put(info("fin", 1, TapeState::Recording, &f), f);
    let mut seen = Seen::default();
    let m = Migration::new(&src, &dst).options(small_pages());
    let info = m.source_info("fin").await.unwrap();
    let done = migrated(m.tape(&info, &mut seen).await);
    assert_eq!(done.resumed_from, Some(3));
    assert_eq!(done.frames_sent, 4);
    assert_eq!(dst.appended(), 4, "frames below next-seq are not re-sent");
    same(&src, &dst, "fin");
    assert_eq!(seen.frames, 7, "checked and sent frames both count");
    assert_eq!(seen.phases[..2], [Phase::CheckingCopy, Phase::Copying]);
}

#[tokio::test]
async fn an_interrupted_copy_is_left_recording_and_resumed() {
    let (src, dst) = (source(), MemStore::new("dst"));
    dst.fail_appends_after(Some(2));
    let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
    assert!(matches!(
        e.kind,
        MigrateErrorKind::Call {
            side: Side::Destination,
            call: "append",
            ..
        }
    ));
    assert_eq!(e.copy, CopyLeft::Recording);
    assert!(!e.is_conflict());
    let msg = e.to_string();
    assert!(
        msg.starts_with("tape fin: `append` on provider dst (the destination) failed: provider `dst`: io: injected append failure; the copy in provider dst is left recording, not finished: run the migration again to resume it"),
        "{msg}"
    );
    let (partial, held) = dst.tape("fin").unwrap();
    assert_eq!((partial.state, held.len()), (TapeState::Recording, 4));

    dst.fail_appends_after(None);
    let done = migrated(migrate(&src, &dst, small_pages(), "fin").await);
    assert_eq!((done.resumed_from, done.frames_sent), (Some(4), 3));
    same(&src, &dst, "fin");
}

#[tokio::test]
async fn a_copy_that_is_not_the_source_is_a_conflict_left_untouched() {
    let src = source();
    // A partial copy whose second frame differs.
    let dst = MemStore::new("dst");
    let mut f = frames("fin", 3);
    f[1].payload = b"{\"other\":1}".to_vec();
    dst.put(info("fin", 1, TapeState::Recording, &f), f);
    let before = dst.tape("fin");
    let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
    assert!(e.is_conflict());
    assert_eq!(e.copy, CopyLeft::Untouched);
    assert_eq!(
        e.to_string(),
        "tape fin: provider dst already has a different tape with this id: it is \
         recording, and its 3 frames are not the source's first 3; left untouched"
    );
    assert_eq!(dst.tape("fin"), before);
    assert_eq!(dst.appended(), 0);

    // A partial copy longer than the source.
    let dst = MemStore::new("dst");
    put(&dst, "crash", 2, TapeState::Recording, 5);
    let e = failed(migrate(&src, &dst, small_pages(), "crash").await);
    assert!(e.is_conflict());
    assert!(
        e.to_string()
            .contains("it is recording with 5 frames, the source has 3"),
        "{e}"
    );

    // An ended tape with another name and digest.
    let dst = MemStore::new("dst");
    let f = frames("other", 7);
    let mut other = info("fin", 1, TapeState::Finished, &f);
    other.header.name = "renamed".into();
    dst.put(other, f);
    let before = dst.tape("fin");
    let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
    assert!(e.is_conflict());
    let msg = e.to_string();
    assert!(
        msg.starts_with("tape fin: provider dst already has a different tape with this id: name \"renamed\" (source: \"tape fin\"); "),
        "{msg}"
    );
    assert!(msg.contains("; digest \""), "{msg}");
    assert!(msg.ends_with("; left untouched"), "{msg}");
    assert_eq!(dst.tape("fin"), before);
}

#[tokio::test]
async fn a_damaged_source_is_not_finished_at_the_destination() {
    let (src, dst) = (source(), MemStore::new("dst"));
    // Same length: only the digest can tell.
    let (info, mut f) = src.tape("fin").unwrap();
    f[5].payload[2] = b'X';
    src.put(info, f);
    for _ in 0..2 {
        let e = failed(migrate(&src, &dst, small_pages(), "fin").await);
        assert!(matches!(e.kind, MigrateErrorKind::SourceIntegrity(_)));
        assert_eq!(e.copy, CopyLeft::Recording);
        let msg = e.to_string();
        assert!(
            msg.starts_with("tape fin: integrity check failed: the frames provider src returned do not match the digest recorded when the tape was finished"),
            "{msg}"
        );
        assert!(
            msg.ends_with("; the copy in provider dst is left recording, not finished, with the frames as read: delete it"),
            "{msg}"
        );
        let (copy, _) = dst.tape("fin").unwrap();
        assert_eq!(copy.state, TapeState::Recording);
    }
}

#[tokio::test]
async fn a_copy_that_reads_back_differently_is_not_finished() {
    let (src, dst) = (source(), MemStore::new("dst"));
    dst.tamper_reads(true);
    let e = failed(migrate(&src, &dst, small_pages(), "nodig").await);
    assert!(
        matches!(e.kind, MigrateErrorKind::CopyDiffers { .. }),
        "{e}"
    );
    assert_eq!(e.copy, CopyLeft::Recording);
    assert!(
        e.to_string().starts_with(
            "tape nodig: the copy in provider dst differs from the source: its 5 frames \
             read back do not reproduce the chain over the source's 5 frames"
        ),
        "{e}"
    );
    assert_eq!(dst.tape("nodig").unwrap().0.state, TapeState::Recording);

    // Without the read-back, only `get` is compared (and agrees).
    let options = MigrateOptions {
        read_back: false,
        ..small_pages()
    };
    let dst = MemStore::new("dst");
    dst.tamper_reads(true);
    let done = migrated(migrate(&src, &dst, options, "fin").await);
    assert!(!done.read_back);
}

#[tokio::test]
async fn a_live_tape_is_copied_on_request_and_finished_later() {
    let (src, dst) = (source(), MemStore::new("dst"));
    let options = MigrateOptions {
        include_recording: true,
        ..small_pages()
    };
    let done = migrated(migrate(&src, &dst, options.clone(), "live").await);
    assert_eq!(done.info.state, TapeState::Recording);
    assert_eq!((done.frames_sent, done.info.frame_count), (4, 4));

    // More frames, then the source ends.
    put(&src, "live", 5, TapeState::Finished, 9);
    let done = migrated(migrate(&src, &dst, options, "live").await);
    assert_eq!((done.resumed_from, done.frames_sent), (Some(4), 5));
    same(&src, &dst, "live");
}

#[tokio::test]
async fn an_unknown_tape_names_the_source() {
    let (src, dst) = (source(), MemStore::new("dst"));
    let e = failed(migrate(&src, &dst, small_pages(), "nope").await);
    assert_eq!(
        e.to_string(),
        "tape nope: no such tape in provider src (the source)"
    );
    let m = Migration::new(&src, &dst).provider_names("fs", "pg");
    let e = m.source_info("nope").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "tape nope: no such tape in provider fs (the source)"
    );
}

#[test]
fn an_aborted_copy_without_its_summary_is_accepted_with_a_note() {
    let f = frames("abrt", 2);
    let source = info("abrt", 3, TapeState::Aborted, &f);
    let mut copy = source.clone();
    copy.digest = None;
    copy.ended_at_us = Some(42);
    let (differences, note) = compare(&source, &copy);
    assert!(differences.is_empty(), "{differences:?}");
    assert!(
        note.unwrap()
            .contains("kept neither the end time nor the digest")
    );

    // Not for other states.
    let mut source = source;
    source.state = TapeState::Crashed;
    copy.state = TapeState::Crashed;
    let (differences, note) = compare(&source, &copy);
    assert_eq!(note, None);
    assert_eq!(differences.len(), 2, "{differences:?}");
    assert!(differences[0].starts_with("end time (µs) \"42\" (source: \""));
    assert!(differences[1].starts_with("digest \"none\" (source: \""));
}

#[tokio::test]
async fn terms_attributes_envelope_and_seal_are_carried_verbatim() {
    let (src, dst) = (MemStore::new("src"), MemStore::new("dst"));
    let mut f = frames("host", 5);
    for (i, frame) in f.iter_mut().enumerate() {
        frame.terms = vec![format!("method:m{i}"), "kh:00ff".into()];
        if i % 2 == 0 {
            frame.attributes = vec![
                ("transport".into(), "http".into()),
                ("i".into(), i.to_string()),
            ];
        }
    }
    let mut i = info("host", 1, TapeState::Aborted, &f);
    i.header.envelope = Some(vec![1, 2, 3, 0, 255]);
    i.seal = Some(vec![9; 64]);
    src.put(i, f);
    let done = migrated(migrate(&src, &dst, small_pages(), "host").await);
    same(&src, &dst, "host");
    assert_eq!(done.note, None, "the aborted copy kept its summary");
    assert_eq!(done.info.seal, Some(vec![9; 64]));
    assert_eq!(done.info.header.envelope, Some(vec![1, 2, 3, 0, 255]));
}

#[test]
fn a_copy_with_another_envelope_differs() {
    let f = frames("t", 2);
    let mut source = info("t", 3, TapeState::Finished, &f);
    source.header.envelope = Some(vec![1; 100]);
    let mut copy = source.clone();
    copy.header.envelope = Some(vec![2; 100]);
    assert_eq!(
        compare_headers(&source, &copy),
        ["envelope 100 bytes, other bytes (source: 100 bytes)"]
    );
    copy.header.envelope = None;
    assert_eq!(
        compare(&source, &copy).0,
        ["envelope none (source: 100 bytes)"]
    );
}

/// An encrypted, sealed tape written through `Sealing(Codec(raw))`.
async fn stored_tape(
    keys: &std::sync::Arc<crate::store::codec::TapeKeys>,
    host: &std::sync::Arc<crate::store::keys::SecretKey>,
) -> (MemStore, Vec<Frame>) {
    use crate::store::codec::{Codec, CodecSettings};
    use crate::store::seal::Sealing;
    let store = Sealing::new(
        Codec::new(MemStore::new("src"), CodecSettings::encrypted(keys.clone())),
        host.clone(),
        TrustedHosts::default(),
    );
    let f = frames("enc", 9);
    let mut w = store
        .create(info("enc", 1, TapeState::Finished, &f).header)
        .await
        .unwrap();
    w.append(&f).await.unwrap();
    w.finish(
        summary_of(&info("enc", 1, TapeState::Finished, &f)),
        EndReason::Completed,
    )
    .await
    .unwrap();
    let (i, stored) = store.get_ref().get_ref().tape("enc").unwrap();
    let raw = MemStore::new("src");
    raw.put(i, stored);
    (raw, f)
}

#[tokio::test]
async fn a_copy_as_stored_keeps_the_ciphertext_and_is_verified_by_decoding() {
    use crate::store::codec::{Codec, CodecSettings, TapeKeys};
    use crate::store::keys::SecretKey;
    use crate::store::seal::Sealing;
    let keys = std::sync::Arc::new(TapeKeys::generate().unwrap());
    let host = std::sync::Arc::new(SecretKey::generate().unwrap());
    let trusted = TrustedHosts::default().including(host.public());
    let (src, recorded) = stored_tape(&keys, &host).await;
    let form = Codec::new(
        MemStore::new("form"),
        CodecSettings::plain(Some(keys.clone())),
    );
    let dst = MemStore::new("dst");
    let m = Migration::new(&src, &dst)
        .as_stored(&form, Some(trusted.clone()))
        .options(small_pages());
    let source = m.source_info("enc").await.unwrap();
    let done = migrated(m.tape(&source, &mut ()).await);
    assert!(done.stored_as_is);
    assert!(done.source.is_verified(), "{:?}", done.source);
    assert!(done.read_back);
    // What the destination holds is what the source holds, byte for byte.
    same(&src, &dst, "enc");
    // Reported as recorded.
    assert_eq!(done.info.byte_count, payload_bytes(&recorded));
    let envelope = String::from_utf8(done.info.header.envelope.clone().unwrap()).unwrap();
    assert!(!envelope.contains("codec"), "{envelope}");
    // Read through the host's layers, the copy is the recorded tape,
    // sealed.
    let (i, f) = dst.tape("enc").unwrap();
    let again = MemStore::new("dst");
    again.put(i, f);
    let reader = Sealing::new(
        Codec::new(again, CodecSettings::plain(Some(keys.clone()))),
        host.clone(),
        TrustedHosts::default(),
    );
    let loaded = crate::read::load_tape(&reader, "enc").await.unwrap();
    assert!(loaded.verification.is_verified());
    assert_eq!(
        loaded.frames.iter().map(|f| &f.payload).collect::<Vec<_>>(),
        recorded.iter().map(|f| &f.payload).collect::<Vec<_>>()
    );
    // Again: already there.
    assert!(matches!(
        m.tape(&source, &mut ()).await,
        Ok(Outcome::Skipped(Skip::AlreadyMigrated))
    ));
}

#[tokio::test]
async fn a_copy_as_stored_refuses_a_frame_that_does_not_decode_or_a_missing_key() {
    use crate::store::codec::{Codec, CodecSettings, TapeKeys};
    use crate::store::keys::SecretKey;
    let keys = std::sync::Arc::new(TapeKeys::generate().unwrap());
    let host = std::sync::Arc::new(SecretKey::generate().unwrap());
    let (src, _) = stored_tape(&keys, &host).await;
    // One stored frame swapped for another's ciphertext: same size, so
    // only decoding tells.
    let (i, mut f) = src.tape("enc").unwrap();
    let moved = f[4].payload.clone();
    f[3].payload = moved;
    let tampered = MemStore::new("src");
    tampered.put(i, f);
    let form = Codec::new(
        MemStore::new("form"),
        CodecSettings::plain(Some(keys.clone())),
    );
    let dst = MemStore::new("dst");
    let m = Migration::new(&tampered, &dst).as_stored(&form, None);
    let source = m.source_info("enc").await.unwrap();
    let e = failed(m.tape(&source, &mut ()).await);
    assert!(
        matches!(&e.kind, MigrateErrorKind::SourceIntegrity(i) if matches!(i.mismatch, Mismatch::Undecodable { seq: 3, .. })),
        "{e}"
    );
    assert!(e.to_string().contains("frame 3"), "{e}");

    // Without the tape key: refused before anything is copied, naming it.
    let keyless = Codec::new(MemStore::new("form"), CodecSettings::default());
    let dst = MemStore::new("dst");
    let m = Migration::new(&src, &dst).as_stored(&keyless, None);
    let source = m.source_info("enc").await.unwrap();
    let e = failed(m.tape(&source, &mut ()).await);
    assert!(e.to_string().contains(keys.current_id()), "{e}");
    assert!(dst.tape("enc").is_none(), "nothing was created");
}
