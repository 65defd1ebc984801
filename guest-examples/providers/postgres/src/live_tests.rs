//! The store against a real server, natively: a throwaway PostgreSQL
//! (`tapedeck_pg_server::PgServer`: Debian's binaries, 127.0.0.1 only, a
//! temporary directory, stopped and removed at the end). Without
//! PostgreSQL the test fails naming the install step. One server, one
//! schema per scenario.

use tapedeck_pg_server::PgServer;
use tapedeck_types::{
    Direction, EndReason, Frame, SearchQuery, StorageError, TapeAppend, TapeFilter, TapeHeader,
    TapeState, TapeSummary,
};

use crate::config::Config;
use crate::schema;
use crate::store::PgStore;
use crate::wire::{Conn, Statement};

/// The provider's configuration for `schema` on the test server (with a
/// short retry, so a refused statement fails fast).
fn config(server: &PgServer, schema: &str) -> Config {
    let mut json = server.provider_config(schema);
    json["retry_ms"] = serde_json::json!(2000);
    Config::from_json(&json.to_string()).unwrap()
}

/// The rows of `sql`, each column as text (`sql` must cast to text).
fn texts(conn: &mut Conn, sql: &str) -> Vec<Vec<String>> {
    let out = conn
        .query(&Statement::unnamed(sql.into(), vec![]), &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    out.rows
        .iter()
        .map(|r| {
            (0..)
                .map_while(|i| (!r.is_null(i)).then(|| r.text(i).unwrap()))
                .collect()
        })
        .collect()
}

fn header(id: &str, envelope: Option<&[u8]>) -> TapeHeader {
    TapeHeader {
        id: id.into(),
        session_id: "s".into(),
        name: format!("tape {id}"),
        tags: vec![("k".into(), "v".into())],
        created_at_us: 1_000,
        envelope: envelope.map(<[u8]>::to_vec),
    }
}

fn frame(seq: u64, terms: &[&str], attributes: &[(&str, &str)]) -> Frame {
    Frame {
        terms: terms.iter().map(|t| t.to_string()).collect(),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Frame::new(
            seq,
            2_000 + seq,
            Direction::ClientToServer,
            format!("payload {seq}").into_bytes(),
            true,
        )
    }
}

fn summary(frames: &[Frame], digest: &str, seal: &[u8]) -> TapeSummary {
    TapeSummary {
        frame_count: frames.len() as u64,
        byte_count: frames.iter().map(|f| f.payload.len() as u64).sum(),
        ended_at_us: 9_000,
        digest: Some(digest.into()),
        seal: Some(seal.to_vec()),
    }
}

fn search(store: &mut PgStore, terms: &[&str], text: Option<&str>) -> Vec<String> {
    let q = SearchQuery {
        filter: TapeFilter::default(),
        terms: terms.iter().map(|t| t.to_string()).collect(),
        text: text.map(String::from),
    };
    let mut ids: Vec<String> = store
        .search(&q, None, 1000)
        .unwrap()
        .tapes
        .into_iter()
        .map(|t| t.header.id)
        .collect();
    ids.sort();
    ids
}

fn read_all(store: &mut PgStore, id: &str) -> Vec<Frame> {
    store.read_frames(id, 0, 1000, u64::MAX).unwrap()
}

#[test]
fn against_a_live_server() {
    let server = PgServer::start().unwrap_or_else(|why| panic!("{why}"));
    a_database_of_the_previous_version_is_migrated_and_keeps_working(&server);
    new_fields_round_trip_verbatim_and_terms_search_is_exact_and_and(&server);
    finish_aborted_keeps_the_summary(&server);
    append_many_gives_each_entry_its_own_result(&server);
    the_terms_index_serves_a_terms_search(&server);
}

fn a_database_of_the_previous_version_is_migrated_and_keeps_working(server: &PgServer) {
    let cfg = config(server, "old");
    let mut conn = Conn::connect(&cfg).unwrap();
    schema::migrate_to(&mut conn, "old", 2).unwrap();
    // Rows as version 2 of this provider wrote them (with the method).
    let payload = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    conn.simple(&format!(
        "SET search_path = old, public;
         INSERT INTO tapes (id, session_id, name, tags, created_at, state, creator)
             VALUES ('old-rec', 's', 'old one', '[{{\"k\": \"a\", \"v\": \"b\"}}]', 5, 'recording', 'x');
         INSERT INTO frames (tape_id, seq, ts, direction, flags, payload, method, is_text)
             VALUES ('old-rec', 0, 6, 0, 0, convert_to('{payload}', 'UTF8'), 'tools/call', true);
         UPDATE tapes SET frame_count = 1, byte_count = {} WHERE id = 'old-rec';
         INSERT INTO tapes (id, session_id, name, tags, created_at, state, creator, frame_count,
                            byte_count, ended_at, digest)
             VALUES ('old-done', 's', 'done', '[]', 4, 'finished', 'x', 0, 0, 7, 'abc');",
        payload.len()
    ))
    .unwrap();
    drop(conn);

    let mut store = PgStore::open(cfg.clone()).unwrap();
    let mut conn = Conn::connect(&cfg).unwrap();
    assert_eq!(
        texts(
            &mut conn,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM old.schema_migrations"
        ),
        [["1,2,3"]]
    );
    let old = store.get("old-rec").unwrap();
    assert_eq!(
        (old.state, old.frame_count, old.header.envelope, old.seal),
        (TapeState::Recording, 1, None, None)
    );
    assert_eq!(old.header.tags, [("a".to_string(), "b".to_string())]);
    let done = store.get("old-done").unwrap();
    assert_eq!(
        (done.state, done.digest.as_deref(), done.seal),
        (TapeState::Finished, Some("abc"), None)
    );
    let frames = read_all(&mut store, "old-rec");
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].payload, payload.as_bytes());
    assert!(frames[0].terms.is_empty() && frames[0].attributes.is_empty());
    // No backfill: old frames have no terms; text search still sees them.
    assert!(search(&mut store, &["method:tools/call"], None).is_empty());
    assert_eq!(search(&mut store, &[], Some("echo")), ["old-rec"]);
    // The old recording continues, with terms now.
    let mut w = store.resume("old-rec").unwrap();
    assert_eq!(w.next_seq(), 1);
    let more = [frame(1, &["method:tools/call"], &[("end", "")])];
    assert_eq!(store.append(&mut w, &more).unwrap(), 2);
    assert_eq!(
        search(&mut store, &["method:tools/call"], None),
        ["old-rec"]
    );
    let all = read_all(&mut store, "old-rec");
    let bytes = all.iter().map(|f| f.payload.len() as u64).sum();
    let s = TapeSummary {
        frame_count: 2,
        byte_count: bytes,
        ended_at_us: 10,
        digest: None,
        seal: Some(vec![1, 2]),
    };
    let info = store.finish(&w, &s, EndReason::Completed).unwrap();
    assert_eq!(
        (info.state, info.seal.as_deref()),
        (TapeState::Finished, Some(&[1u8, 2][..]))
    );
    // A fresh store over the migrated schema migrates nothing again.
    drop(PgStore::open(cfg).unwrap());
    assert_eq!(
        texts(
            &mut conn,
            "SELECT count(*)::text FROM old.schema_migrations"
        ),
        [["3"]]
    );
}

fn new_fields_round_trip_verbatim_and_terms_search_is_exact_and_and(server: &PgServer) {
    let mut store = PgStore::open(config(server, "fields")).unwrap();
    let envelope: Vec<u8> = (0..=255).cycle().take(16 * 1024).collect();
    let mut w = store.create(&header("a", Some(&envelope))).unwrap();
    let long = "é".repeat(128);
    let frames = vec![
        frame(
            0,
            &["method:tools/call", "tool:echo", "tool:echo", "nul:\0x"],
            &[
                ("k", "1"),
                ("k", ""),
                ("ключ", "値 ☃ 🎞"),
                ("long", &"v".repeat(4096)),
            ],
        ),
        frame(1, &[], &[]),
        frame(2, &["method:resources/read", &long], &[("only", "one")]),
    ];
    assert_eq!(store.append(&mut w, &frames).unwrap(), 3);
    // A redelivered batch is skipped, even with other terms.
    let redelivered = [frame(2, &["other"], &[]), frame(3, &["prompt:p"], &[])];
    assert_eq!(store.append(&mut w, &redelivered).unwrap(), 4);
    let mut expected = frames.clone();
    expected.push(redelivered[1].clone());
    assert_eq!(read_all(&mut store, "a"), expected);
    assert_eq!(
        store.get("a").unwrap().header.envelope.as_deref(),
        Some(&envelope[..])
    );

    let mut w = store.create(&header("b", Some(b""))).unwrap();
    let b = [
        frame(0, &["method:tools/call"], &[]),
        frame(1, &["tool:other"], &[]),
    ];
    store.append(&mut w, &b).unwrap();
    assert_eq!(
        store.get("b").unwrap().header.envelope.as_deref(),
        Some(&b""[..])
    );
    store.create(&header("c", None)).unwrap();
    assert_eq!(store.get("c").unwrap().header.envelope, None);

    assert_eq!(search(&mut store, &["method:tools/call"], None), ["a", "b"]);
    // AND over the tape: the terms may sit on different frames.
    assert_eq!(
        search(&mut store, &["tool:echo", "method:resources/read"], None),
        ["a"]
    );
    assert_eq!(
        search(&mut store, &["method:tools/call", "tool:other"], None),
        ["b"]
    );
    assert!(search(&mut store, &["tool:echo", "tool:other"], None).is_empty());
    // Exact equality: no prefix, no case folding, no substring.
    for near in [
        "method:tools",
        "METHOD:TOOLS/CALL",
        "tools/call",
        "tool:ech",
        "nul:",
    ] {
        assert!(search(&mut store, &[near], None).is_empty(), "{near}");
    }
    assert_eq!(search(&mut store, &["nul:\0x"], None), ["a"]);
    assert_eq!(search(&mut store, &[&long], None), ["a"]);
    // A redelivered frame's other terms were not stored.
    assert!(search(&mut store, &["other"], None).is_empty());
    assert_eq!(search(&mut store, &["tool:echo", "tool:echo"], None), ["a"]);
    assert_eq!(search(&mut store, &[], None), ["a", "b", "c"]);
    assert_eq!(
        search(&mut store, &["method:tools/call"], Some("payload 1")),
        ["a", "b"]
    );

    // save keeps everything too.
    let saved = vec![frame(0, &["t"], &[("a", "b")]), frame(1, &["u"], &[])];
    let info = store
        .save(
            &header("saved", Some(b"env")),
            &saved,
            &summary(&saved, "d", &[0; 1024]),
            EndReason::Crashed,
        )
        .unwrap();
    assert_eq!(info.header.envelope.as_deref(), Some(&b"env"[..]));
    assert_eq!(info.seal.as_deref(), Some(&[0u8; 1024][..]));
    assert_eq!(info.state, TapeState::Crashed);
    assert_eq!(store.get("saved").unwrap(), info);
    assert_eq!(read_all(&mut store, "saved"), saved);
    assert_eq!(search(&mut store, &["t", "u"], None), ["saved"]);
    let listed = store.list(&TapeFilter::default(), None, 10).unwrap();
    let listed = listed.tapes.iter().find(|t| t.header.id == "saved");
    assert_eq!(listed, Some(&info));
}

fn finish_aborted_keeps_the_summary(server: &PgServer) {
    let mut store = PgStore::open(config(server, "finish")).unwrap();
    let mut w = store.create(&header("x", None)).unwrap();
    let frames = [frame(0, &[], &[])];
    store.append(&mut w, &frames).unwrap();
    let s = summary(&frames, "feed", b"seal");
    let info = store.finish(&w, &s, EndReason::Aborted).unwrap();
    assert_eq!(info.state, TapeState::Aborted);
    assert_eq!(
        (
            info.ended_at_us,
            info.digest.as_deref(),
            info.seal.as_deref()
        ),
        (Some(9_000), Some("feed"), Some(&b"seal"[..]))
    );
    assert_eq!(store.get("x").unwrap(), info);
    // Idempotent with the same summary; a different seal is refused.
    assert_eq!(store.finish(&w, &s, EndReason::Aborted).unwrap(), info);
    let other = TapeSummary {
        seal: Some(b"other".to_vec()),
        ..s.clone()
    };
    let e = store.finish(&w, &other, EndReason::Aborted).unwrap_err();
    assert_eq!(e.kind, tapedeck_types::ErrorKind::InvalidInput, "{e:?}");
    let e = store.finish(&w, &s, EndReason::Completed).unwrap_err();
    assert_eq!(e.kind, tapedeck_types::ErrorKind::InvalidInput, "{e:?}");
    assert_eq!(store.get("x").unwrap(), info);
    // abort still works as before.
    let w = store.create(&header("y", None)).unwrap();
    store.abort(&w).unwrap();
    let y = store.get("y").unwrap();
    assert_eq!(
        (y.state, y.digest, y.seal),
        (TapeState::Aborted, None, None)
    );
}

fn kinds(results: &[Result<u64, StorageError>]) -> Vec<Result<u64, tapedeck_types::ErrorKind>> {
    results
        .iter()
        .map(|r| r.as_ref().map(|n| *n).map_err(|e| e.kind))
        .collect()
}

fn append_many_gives_each_entry_its_own_result(server: &PgServer) {
    use tapedeck_types::ErrorKind::{InvalidInput, NotFound};
    let mut store = PgStore::open(config(server, "many")).unwrap();
    for id in ["m1", "m2", "m3", "m4", "m5", "done"] {
        let mut w = store.create(&header(id, None)).unwrap();
        store.append(&mut w, &[frame(0, &["first"], &[])]).unwrap();
        if id == "done" {
            let f = read_all(&mut store, id);
            store
                .finish(&w, &summary(&f, "d", b""), EndReason::Completed)
                .unwrap();
        }
    }
    let entry = |id: &str, seqs: std::ops::Range<u64>| TapeAppend {
        id: id.into(),
        frames: seqs
            .map(|s| {
                frame(
                    s,
                    &[&format!("term:{id}"), "shared"],
                    &[("seq", &s.to_string())],
                )
            })
            .collect(),
    };
    let appends = vec![
        entry("m3", 1..3),   // fine
        entry("nope", 0..1), // no such tape
        entry("m1", 1..4),   // fine
        entry("done", 1..2), // ended
        entry("m2", 3..4),   // a gap
        entry("m1", 4..5),   // repeated id
        entry("bad/id", 0..1),
        TapeAppend {
            id: "m5".into(),
            frames: vec![frame(1, &[], &[]), frame(3, &[], &[])], // not consecutive
        },
        entry("m4", 0..3), // frame 0 is stored already: the rest is appended
        TapeAppend {
            id: "m2".into(),
            frames: vec![],
        }, // repeated (m2 above), even empty
    ];
    let results = store.append_many(&appends);
    assert_eq!(
        kinds(&results),
        [
            Ok(3),
            Err(NotFound),
            Ok(4),
            Err(InvalidInput),
            Err(InvalidInput),
            Err(InvalidInput),
            Err(InvalidInput),
            Err(InvalidInput),
            Ok(3),
            Err(InvalidInput),
        ]
    );
    for (id, n) in [
        ("m1", 4),
        ("m2", 1),
        ("m3", 3),
        ("m4", 3),
        ("m5", 1),
        ("done", 1),
    ] {
        let info = store.get(id).unwrap();
        let frames = read_all(&mut store, id);
        assert_eq!((info.frame_count, frames.len() as u64), (n, n), "{id}");
        let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
        assert_eq!(info.byte_count, bytes, "{id}");
    }
    let m1 = read_all(&mut store, "m1");
    assert_eq!(&m1[1..], &appends[2].frames[..]);
    assert_eq!(search(&mut store, &["shared"], None), ["m1", "m3", "m4"]);
    // The same call again (a retry after a lost reply) stores nothing
    // twice; an empty entry reports the count.
    let again = store.append_many(&appends[..3]);
    assert_eq!(kinds(&again), [Ok(3), Err(NotFound), Ok(4)]);
    assert_eq!(read_all(&mut store, "m1").len(), 4);
    let empty = store.append_many(&[
        TapeAppend {
            id: "m2".into(),
            frames: vec![],
        },
        TapeAppend {
            id: "done".into(),
            frames: vec![],
        },
    ]);
    assert_eq!(kinds(&empty), [Ok(1), Err(InvalidInput)]);
    assert!(store.append_many(&[]).is_empty());
    // A batch the server fails as a whole (here a trigger refuses a
    // frame) runs each entry on its own: only the refused one fails.
    let mut conn = Conn::connect(&config(server, "many")).unwrap();
    conn.simple(
        "CREATE FUNCTION many.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.terms @> ARRAY['boom'::bytea] THEN RAISE EXCEPTION 'boom'; END IF; \
           RETURN NEW; END $$; \
         CREATE TRIGGER boom BEFORE INSERT ON many.frames FOR EACH ROW EXECUTE FUNCTION many.boom()",
    )
    .unwrap();
    let batch = vec![
        TapeAppend {
            id: "m2".into(),
            frames: vec![frame(1, &["x"], &[])],
        },
        TapeAppend {
            id: "m3".into(),
            frames: vec![frame(3, &["boom"], &[])],
        },
        TapeAppend {
            id: "m5".into(),
            frames: vec![frame(1, &["y"], &[])],
        },
    ];
    let results = store.append_many(&batch);
    assert_eq!(results[0], Ok(2));
    assert_eq!(results[2], Ok(2));
    let e = results[1].as_ref().unwrap_err();
    assert!(e.message.contains("boom"), "{e:?}");
    assert_eq!(store.get("m3").unwrap().frame_count, 3);
    assert_eq!(search(&mut store, &["y"], None), ["m5"]);
}

fn the_terms_index_serves_a_terms_search(server: &PgServer) {
    let cfg = config(server, "fields");
    let mut conn = Conn::connect(&cfg).unwrap();
    conn.simple("SET enable_seqscan = off").unwrap();
    let plan = texts(
        &mut conn,
        "EXPLAIN SELECT 1 FROM fields.frames f \
         WHERE f.terms <> '{}' AND f.terms @> ARRAY['x'::bytea]",
    );
    let plan = plan.into_iter().flatten().collect::<Vec<_>>().join("\n");
    assert!(plan.contains("frames_terms"), "{plan}");
}
