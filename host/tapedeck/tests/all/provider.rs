//! The embedded fs provider through the sandbox, on what contract 0.2
//! added: `append_many` with one result per entry, and the host's fields
//! (terms, attributes, envelope, seal) stored and returned verbatim, and
//! found by a terms search.

use tapedeck::embedded::fs_provider_spec;
use tapedeck::error::ProviderError;
use tapedeck::sandbox::{Sandbox, WasmProvider};
use tapedeck::store::{TapeStore, TapeWriter};
use tapedeck::types::terms::{method_term, payload_terms, tool_term};
use tapedeck::types::{
    Direction, EndReason, ErrorKind, Frame, SearchQuery, TapeAppend, TapeHeader, TapeState,
    TapeSummary,
};

fn header(id: &str) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: "s".into(),
        name: id.into(),
        tags: Vec::new(),
        created_at_us: 1_700_000_000_000_000,
        envelope: None,
    }
}

/// Frame `seq` of a `tools/call` of `tool`, with the terms the recorder
/// gives it and an attribute.
fn call(seq: u64, tool: &str) -> Frame {
    let payload = format!(
        r#"{{"jsonrpc":"2.0","id":{seq},"method":"tools/call","params":{{"name":"{tool}"}}}}"#
    );
    Frame {
        terms: payload_terms(payload.as_bytes()),
        attributes: vec![
            ("transport".into(), "stdio".into()),
            ("n".into(), seq.to_string()),
        ],
        ..Frame::new(
            seq,
            1_700_000_000_000_000 + seq,
            Direction::ClientToServer,
            payload.into_bytes(),
            false,
        )
    }
}

fn summary(frames: &[Frame], seal: Option<Vec<u8>>) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 1_700_000_001_000_000,
        digest: Some(tapedeck::recorder::DigestChain::over(frames).hex()),
        seal,
    }
}

fn kind(r: &Result<u64, ProviderError>) -> Option<ErrorKind> {
    r.as_ref().err().and_then(ProviderError::storage_kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_many_and_the_host_fields_through_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new().unwrap();
    let store = WasmProvider::start(
        &sandbox,
        &fs_provider_spec(tmp.path().join("tapes")),
        tmp.path(),
    )
    .await
    .unwrap();
    let mut a = header("a");
    a.envelope = Some(vec![0, 1, 2, 0xff]);
    store.create(a.clone()).await.unwrap();
    store.create(header("b")).await.unwrap();
    let mut done = store.create(header("done")).await.unwrap();
    done.finish(summary(&[], None), EndReason::Completed)
        .await
        .unwrap();

    let entry = |id: &str, frames: Vec<Frame>| TapeAppend {
        id: id.into(),
        frames,
    };
    let results = store
        .append_many(&[
            entry("a", vec![call(0, "transfer"), call(1, "balance")]),
            entry("b", vec![call(1, "x")]),
            entry("missing", vec![call(0, "x")]),
            entry("done", vec![call(0, "x")]),
            entry("a", vec![call(2, "x")]),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().ok(), Some(&2));
    assert_eq!(kind(&results[1]), Some(ErrorKind::InvalidInput), "a gap");
    assert_eq!(kind(&results[2]), Some(ErrorKind::NotFound));
    assert_eq!(
        kind(&results[3]),
        Some(ErrorKind::InvalidInput),
        "not recording"
    );
    assert_eq!(
        kind(&results[4]),
        Some(ErrorKind::InvalidInput),
        "a repeated id"
    );
    assert!(
        matches!(&results[2], Err(ProviderError::Storage { provider, .. }) if provider == "fs"),
        "{:?}",
        results[2]
    );
    assert_eq!(store.get("b").await.unwrap().frame_count, 0);

    // The rest of a's frames through its writer; then finished with a seal.
    let frames = vec![call(0, "transfer"), call(1, "balance"), call(2, "transfer")];
    let mut w = store.resume("a").await.unwrap();
    assert_eq!(w.next_seq(), 2);
    w.append(&frames).await.unwrap();
    let seal = vec![0x5e; 64];
    let info = w
        .finish(summary(&frames, Some(seal.clone())), EndReason::Completed)
        .await
        .unwrap();
    assert_eq!(info.seal.as_ref(), Some(&seal));
    let got = store.get("a").await.unwrap();
    assert_eq!(
        (got.header, got.seal, got.state),
        (a, Some(seal), TapeState::Finished)
    );
    assert_eq!(
        store.read_frames("a", 0, 10, 1 << 20).await.unwrap(),
        frames
    );

    assert!(store.provider_info().capabilities.search);
    let ids = |terms: Vec<String>| {
        let store = store.clone();
        async move {
            let query = SearchQuery {
                terms,
                ..SearchQuery::default()
            };
            let page = store.search(&query, None, 10).await.unwrap();
            page.tapes
                .into_iter()
                .map(|t| t.header.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids(vec![method_term("tools/call"), tool_term("balance")]).await,
        ["a"]
    );
    assert!(
        ids(vec![tool_term("x")]).await.is_empty(),
        "refused entries store nothing"
    );
    assert!(
        ids(vec![tool_term("transfe")]).await.is_empty(),
        "exact terms only"
    );
}
