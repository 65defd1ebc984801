use super::{BLIND_PREFIX, Codec, CodecSettings, TapeKeys, ZSTD, stored_spec};
use crate::keys::SecretKey;
use crate::read::{TapeReader, Verification};
use crate::seal::{Sealing, TrustedHosts};
use crate::testing::{MemStore, sample_frames};
use crate::{DigestChain, TapeStore, TapeWriter};
use std::sync::Arc;
use tapedeck_types::terms::payload_terms;
use tapedeck_types::{
    EndReason, Frame, SearchQuery, TapeAppend, TapeFilter, TapeHeader, TapeState, TapeSummary,
};

const SECRET: &str = "transfer-9999-to-mallory";

fn header(id: &str) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: "s".into(),
        name: "n".into(),
        tags: vec![("k".into(), "v".into())],
        created_at_us: 5,
        envelope: None,
    }
}

/// MCP-like frames carrying [`SECRET`] and the method `tools/call`, with
/// the host's terms.
fn frames(n: u64) -> Vec<Frame> {
    let mut frames = sample_frames(n, |s| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{s},"method":"tools/call","params":{{"name":"bank","arguments":{{"note":"{SECRET}","padding":"{}"}}}}}}"#,
            "abc ".repeat(40)
        )
        .into_bytes()
    });
    for f in &mut frames {
        f.terms = payload_terms(&f.payload);
    }
    frames.last_mut().unwrap().not_json = true;
    // Terms the host would not derive (an import may carry any).
    frames[1].terms = vec!["custom:term".into(), "method:other".into()];
    frames
}

fn summary(frames: &[Frame]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 77,
        digest: Some(DigestChain::over(frames).hex()),
        seal: None,
    }
}

fn keys() -> Arc<TapeKeys> {
    Arc::new(TapeKeys::generate().unwrap())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Everything the provider holds of tape `id`, as bytes.
fn raw(store: &MemStore, id: &str) -> Vec<u8> {
    let (info, frames) = store.tape(id).unwrap();
    let mut out = format!("{info:?}").into_bytes();
    for f in frames {
        out.extend_from_slice(&f.payload);
        out.extend(f.terms.concat().into_bytes());
    }
    out
}

#[tokio::test]
async fn an_encrypted_tape_reads_back_as_recorded_and_the_provider_holds_no_clear_text() {
    let keys = keys();
    let store = Codec::new(MemStore::new("mem"), CodecSettings::encrypted(keys.clone()));
    let frames = frames(6);
    let mut w = store.create(header("a")).await.unwrap();
    w.append(&frames[..4]).await.unwrap();
    w.append(&frames[2..]).await.unwrap(); // a redelivery overlaps
    let info = w
        .finish(summary(&frames), EndReason::Completed)
        .await
        .unwrap();
    assert_eq!(info.byte_count, summary(&frames).byte_count);
    assert_eq!(info.digest, summary(&frames).digest);
    assert_eq!(info.header, header("a"));

    let got = store.get("a").await.unwrap();
    assert_eq!(got, info);
    let back = store.read_frames("a", 0, 100, 1 << 20).await.unwrap();
    assert_eq!(back, frames);

    let held = raw(store.get_ref(), "a");
    for clear in [SECRET, "tools/call", "method:", "bank", "abc abc"] {
        assert!(!contains(&held, clear), "the provider holds {clear:?}");
    }
    let (stored, stored_frames) = store.get_ref().tape("a").unwrap();
    assert!(stored_frames.iter().all(|f| f.not_json));
    assert!(
        stored_frames[0]
            .terms
            .iter()
            .all(|t| t.starts_with(BLIND_PREFIX))
    );
    // Compressed as well as encrypted.
    assert!(stored.byte_count < info.byte_count, "{stored:?}");
    let spec = stored_spec(stored.header.envelope.as_deref())
        .unwrap()
        .unwrap();
    assert_eq!(spec.kek.as_deref(), Some(keys.current_id()));

    // Search by method finds it through blind terms; text is refused.
    let query = SearchQuery {
        filter: TapeFilter::default(),
        terms: vec!["method:tools/call".into()],
        text: None,
    };
    let page = store.search(&query, None, 10).await.unwrap();
    assert_eq!(page.tapes.len(), 1);
    assert_eq!(page.tapes[0], info);
    // A tape stored before the keys (plain terms) is found too, after the
    // blind ones, behind the same cursor.
    let plain = Codec::new(store.get_ref().clone(), CodecSettings::default());
    plain
        .save(
            header("old"),
            &frames,
            summary(&frames),
            EndReason::Completed,
        )
        .await
        .unwrap();
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.search(&query, cursor.as_deref(), 1).await.unwrap();
        found.extend(page.tapes.into_iter().map(|t| t.header.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(found, ["a", "old"]);
    let e = store.search(&query, Some("x"), 1).await.unwrap_err();
    assert!(e.to_string().contains("not one this host made"), "{e}");
    let text = SearchQuery {
        text: Some(SECRET.into()),
        ..query
    };
    let e = store.search(&text, None, 10).await.unwrap_err().to_string();
    assert!(e.contains("text search is refused"), "{e}");
    let listed = store.list(&TapeFilter::default(), None, 10).await.unwrap();
    assert_eq!(listed.tapes.len(), 2);
    assert!(listed.tapes.contains(&info));
}

#[tokio::test]
async fn a_sealed_encrypted_tape_verifies_and_survives_a_new_process() {
    let keys = keys();
    let host = Arc::new(SecretKey::generate().unwrap());
    let store = Sealing::new(
        Codec::new(MemStore::new("mem"), CodecSettings::encrypted(keys.clone())),
        host.clone(),
        TrustedHosts::default(),
    );
    let frames = frames(5);
    let mut w = store.create(header("a")).await.unwrap();
    w.append(&frames[..3]).await.unwrap();
    drop(w);
    // Resumed (as recovery does), through append-many, then ended.
    let mut w = store.resume("a").await.unwrap();
    let results = store
        .append_many(&[TapeAppend {
            id: "a".into(),
            frames: frames[3..].to_vec(),
        }])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &5);
    let info = w
        .finish(summary(&frames), EndReason::Completed)
        .await
        .unwrap();
    let mut read = Vec::new();
    let v = TapeReader::new(&store)
        .read_verified(&info, |page| {
            read.extend(page);
            Ok::<(), std::convert::Infallible>(())
        })
        .await
        .unwrap();
    assert!(matches!(v, Verification::Verified { .. }), "{v:?}");
    assert_eq!(read, frames);

    // Another process with the same keys reads it (no cache).
    let (stored, stored_frames) = store.get_ref().get_ref().tape("a").unwrap();
    let again = MemStore::new("mem");
    again.put(stored.clone(), stored_frames.clone());
    let fresh = Sealing::new(
        Codec::new(again, CodecSettings::plain(Some(keys.clone()))),
        host.clone(),
        TrustedHosts::default(),
    );
    let info = fresh.get("a").await.unwrap();
    let v = TapeReader::new(&fresh)
        .read_verified(&info, |_| Ok::<(), std::convert::Infallible>(()))
        .await
        .unwrap();
    assert!(v.is_verified(), "{v:?}");

    // Without the key: a clear error naming it.
    let keyless = MemStore::new("mem");
    keyless.put(stored, stored_frames);
    let keyless = Codec::new(keyless, CodecSettings::default());
    assert_eq!(keyless.get("a").await.unwrap().header, info.header);
    let e = keyless
        .read_frames("a", 0, 10, 1 << 20)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(keys.current_id()) && e.contains("does not have"),
        "{e}"
    );
}

#[tokio::test]
async fn ciphertext_altered_or_moved_does_not_decrypt() {
    let keys = keys();
    let frames = frames(4);
    let store = Codec::new(MemStore::new("mem"), CodecSettings::encrypted(keys.clone()));
    for id in ["a", "b"] {
        let mut w = store.create(header(id)).await.unwrap();
        w.append(&frames).await.unwrap();
        w.finish(summary(&frames), EndReason::Completed)
            .await
            .unwrap();
    }
    let (info_a, frames_a) = store.get_ref().tape("a").unwrap();
    let (info_b, frames_b) = store.get_ref().tape("b").unwrap();
    type Change = Box<dyn Fn(&mut Vec<Frame>)>;
    let changes: Vec<(&str, Change)> = vec![
        ("a flipped bit", Box::new(|f| f[1].payload[5] ^= 1)),
        ("swapped positions", Box::new(|f| f.swap(0, 2))),
        (
            "another tape's frame",
            Box::new(move |f| f[1].payload = frames_b[1].payload.clone()),
        ),
        ("a changed timestamp", Box::new(|f| f[1].timestamp_us += 1)),
    ];
    for (what, change) in changes {
        let mem = MemStore::new("mem");
        let mut altered = frames_a.clone();
        change(&mut altered);
        for (i, f) in altered.iter_mut().enumerate() {
            f.seq = i as u64;
        }
        mem.put(info_a.clone(), altered);
        let codec = Codec::new(mem, CodecSettings::plain(Some(keys.clone())));
        let e = codec.read_frames("a", 0, 10, 1 << 20).await.unwrap_err();
        assert!(e.to_string().contains("does not decrypt"), "{what}: {e}");
    }
    // Tape b's envelope (its wrapped data key) on tape a.
    let mem = MemStore::new("mem");
    let mut info = info_a.clone();
    info.header.envelope = info_b.header.envelope.clone();
    mem.put(info, frames_a.clone());
    let codec = Codec::new(mem, CodecSettings::plain(Some(keys.clone())));
    let e = codec.read_frames("a", 0, 10, 1 << 20).await.unwrap_err();
    assert!(e.to_string().contains("does not unwrap"), "{e}");
}

#[tokio::test]
async fn compression_alone_keeps_terms_and_shrinks_payloads() {
    let store = Codec::new(MemStore::new("mem"), CodecSettings::default());
    let frames = frames(8);
    let info = store
        .save(header("c"), &frames, summary(&frames), EndReason::Completed)
        .await
        .unwrap();
    assert_eq!(info.byte_count, summary(&frames).byte_count);
    assert_eq!(
        store.read_frames("c", 0, 100, 1 << 20).await.unwrap(),
        frames
    );
    let (stored, stored_frames) = store.get_ref().tape("c").unwrap();
    assert!(stored.byte_count < info.byte_count, "{stored:?}");
    assert_eq!(stored_frames[0].terms, frames[0].terms);
    let spec = stored_spec(stored.header.envelope.as_deref())
        .unwrap()
        .unwrap();
    assert_eq!((spec.compression.as_str(), spec.cipher), (ZSTD, None));
    // A provider-forged length cannot make the host allocate much.
    let mut forged = stored_frames.clone();
    forged[0].payload = vec![1, 0xff, 0xff, 0xff, 0x7f, 0x28, 0xb5];
    let mem = MemStore::new("mem");
    mem.put(stored.clone(), forged);
    let e = Codec::new(mem, CodecSettings::default())
        .read_frames("c", 0, 10, 1 << 20)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("over 256 MiB"), "{e}");
    // Compact frames: no magic number, no dictionary id; a forged content
    // size is refused before anything is allocated.
    assert_eq!(stored_frames[0].payload[0], 16, "compact zstd");
    assert_ne!(&stored_frames[0].payload[1..5], &[0x28, 0xb5, 0x2f, 0xfd]);
    let mut forged = stored_frames.clone();
    forged[0].payload = vec![16, 0xa0, 0, 0, 0, 0x40, 0, 0, 0];
    let mem = MemStore::new("mem");
    mem.put(stored.clone(), forged);
    let e = Codec::new(mem, CodecSettings::default())
        .read_frames("c", 0, 10, 1 << 20)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("claims 1073741824 bytes"), "{e}");
    // The body of tapes stored before compact frames (flag 1: length,
    // then a whole zstd frame) still reads.
    let dictionary = super::compress::current().unwrap();
    let whole = zstd::bulk::Compressor::with_dictionary(3, dictionary.bytes)
        .unwrap()
        .compress(&frames[0].payload)
        .unwrap();
    let mut legacy = vec![1];
    legacy.extend_from_slice(&(frames[0].payload.len() as u32).to_le_bytes());
    legacy.extend_from_slice(&whole);
    let mut old = stored_frames.clone();
    old[0].payload = legacy;
    let mem = MemStore::new("mem");
    mem.put(stored, old);
    assert_eq!(
        Codec::new(mem, CodecSettings::default())
            .read_frames("c", 0, 100, 1 << 20)
            .await
            .unwrap(),
        frames
    );
}

#[tokio::test]
async fn plain_settings_store_tapes_as_recorded_and_envelopes_round_trip() {
    let store = Codec::new(MemStore::new("mem"), CodecSettings::plain(None));
    let frames = frames(2);
    let mut h = header("p");
    h.envelope = Some(b"{\"tapedeck-envelope\":1,\"x\":\"y\"}".to_vec());
    store
        .save(h.clone(), &frames, summary(&frames), EndReason::Completed)
        .await
        .unwrap();
    let (stored, stored_frames) = store.get_ref().tape("p").unwrap();
    assert_eq!(stored_frames, frames);
    assert_eq!(stored.header, h);

    // Encoded, a foreign envelope comes back byte for byte.
    let store = Codec::new(MemStore::new("mem"), CodecSettings::encrypted(keys()));
    h.envelope = Some(b" not json \x00".to_vec());
    let info = store
        .save(h.clone(), &frames, summary(&frames), EndReason::Aborted)
        .await
        .unwrap();
    assert_eq!(info.header, h);
    assert_eq!(info.state, TapeState::Aborted);
    // A stored digest field the host did not make is refused.
    let (mut stored, stored_frames) = store.get_ref().tape("p").unwrap();
    stored.digest = Some("abc".into());
    let mem = MemStore::new("mem");
    mem.put(stored, stored_frames);
    let e = Codec::new(mem, CodecSettings::default())
        .get("p")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not the one the host stored"), "{e}");
}

#[tokio::test]
async fn a_writer_that_did_not_see_every_frame_cannot_end_its_tape() {
    let store = Codec::new(MemStore::new("mem"), CodecSettings::default());
    let frames = frames(3);
    let mut w = store.create(header("u")).await.unwrap();
    w.append(&frames[..1]).await.unwrap();
    // Frames appended below the codec, behind its back.
    let mut raw = store.get_ref().resume("u").await.unwrap();
    raw.append(&frames[1..]).await.unwrap();
    let e = w
        .finish(summary(&frames), EndReason::Completed)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("summary counts 3 frames") && e.contains("1 frames were appended"),
        "{e}"
    );
}
