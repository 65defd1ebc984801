//! What contract 0.2 added: terms and attributes, the envelope and the
//! seal stored verbatim, search by terms, `append_many`, `finish` with
//! reason `aborted` keeping the summary, and tapes written by format 1.

#![allow(clippy::unwrap_used, reason = "tests: a failed step is a failed test")]

mod common;

use common::*;
use fs_store::FsStore;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use tapedeck_types::terms::method_term;
use tapedeck_types::{
    Direction, EndReason, ErrorKind, Frame, SearchQuery, StorageError, TapeAppend, TapeFilter,
    TapeState, TapeSummary,
};

fn with(mut f: Frame, terms: &[&str], attributes: &[(&str, &str)]) -> Frame {
    f.terms = terms.iter().map(|t| t.to_string()).collect();
    f.attributes = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    f
}

fn sealed(frames: &[Frame], ended_at: u64, seal: &[u8]) -> TapeSummary {
    TapeSummary {
        seal: Some(seal.to_vec()),
        ..summary(frames, ended_at)
    }
}

fn entry(id: &str, frames: &[Frame]) -> TapeAppend {
    TapeAppend {
        id: id.into(),
        frames: frames.to_vec(),
    }
}

fn found(s: &FsStore, q: &SearchQuery) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = s.search(q, cursor.as_deref(), 2).unwrap();
        out.extend(page.tapes.into_iter().map(|t| t.header.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn terms_attributes_envelope_and_seal_round_trip_verbatim() {
    let (dir, s) = store();
    let mut h = header("t", 1);
    h.envelope = Some(vec![0x00, 0xff, 0x80, b'{', 0x0a]);
    let fs = vec![
        // Ciphertext-like payload: the store never parses it.
        with(
            frame(0, &[0xde, 0xad, b'{', 0x00]),
            &[
                "method:tools/call",
                "tool:Ünïcode",
                "method:tools/call",
                "k#0badc0ffee",
            ],
            &[("z", ""), ("a", "1"), ("z", "again")],
        ),
        with(frame(1, b"{}"), &[], &[("transport", "http")]),
        frame(2, b"plain"),
    ];
    let mut w = s.create(h.clone()).unwrap();
    w.append(&fs).unwrap();
    assert_eq!(read_all(&s, "t", 1), fs);
    let sum = sealed(&fs, 9, &[1, 2, 3, 0, 255]);
    let info = w.finish(&sum, EndReason::Completed).unwrap();
    assert_eq!(info.header, h);
    assert_eq!(info.seal, sum.seal);
    assert_eq!(info.digest, sum.digest);
    for s2 in [&s, &open(dir.path())] {
        assert_eq!(s2.get("t").unwrap(), info);
        assert_eq!(read_all(s2, "t", 2), fs);
        let listed = s2.list(&TapeFilter::default(), None, 10).unwrap();
        assert_eq!(listed.tapes, vec![info.clone()]);
    }

    // The same through `save`.
    let mut h2 = header("saved", 2);
    h2.envelope = Some(b"envelope".to_vec());
    let info = s
        .save(
            h2.clone(),
            &fs,
            &sealed(&fs, 3, b"seal"),
            EndReason::Crashed,
        )
        .unwrap();
    assert_eq!(
        (info.header.clone(), info.seal.clone()),
        (h2, Some(b"seal".to_vec()))
    );
    let s2 = open(dir.path());
    assert_eq!(s2.get("saved").unwrap(), info);
    assert_eq!(read_all(&s2, "saved", 100), fs);
    let q = terms_query(&["k#0badc0ffee"]);
    assert_eq!(found(&s2, &q), set(&["saved", "t"]));
}

#[test]
fn the_largest_fields_the_contract_allows_round_trip() {
    let (dir, s) = store();
    let mut h = header("big", 1);
    h.envelope = Some((0..16 * 1024).map(|i| (i % 251) as u8).collect());
    let mut f = frame(0, b"x");
    f.terms = (0..32)
        .map(|i| format!("{i:02}{}", "t".repeat(254)))
        .collect();
    f.attributes = (0..32)
        .map(|i| (format!("{i:02}{}", "k".repeat(62)), "v".repeat(4096)))
        .collect();
    let fs = vec![f];
    let seal: Vec<u8> = (0..1024).map(|i| (i % 256) as u8).collect();
    let mut w = s.create(h.clone()).unwrap();
    w.append(&fs).unwrap();
    let info = w
        .finish(&sealed(&fs, 5, &seal), EndReason::Completed)
        .unwrap();
    // Catalog entries this large are logged slim and completed from the
    // tape file on replay.
    let s2 = open(dir.path());
    assert_eq!(s2.get("big").unwrap(), info);
    assert_eq!(info.header, h);
    assert_eq!(info.seal, Some(seal));
    assert_eq!(read_all(&s2, "big", 1), fs);
    assert_eq!(found(&s2, &terms_query(&[&fs[0].terms[31]])), set(&["big"]));
}

#[test]
fn fields_beyond_the_contracts_bounds_are_invalid_input() {
    let (_dir, s) = store();
    let mut big = header("e", 1);
    big.envelope = Some(vec![0; 16 * 1024 + 1]);
    assert_kind(s.create(big.clone()), ErrorKind::InvalidInput, "envelope");
    assert_kind(
        s.save(big, &[], &summary(&[], 1), EndReason::Completed),
        ErrorKind::InvalidInput,
        "envelope",
    );
    let mut w = s.create(header("t", 1)).unwrap();
    let long = "x".repeat(257);
    let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for bad in [
        with(frame(0, b"{}"), &[""], &[]),
        with(frame(0, b"{}"), &[&long], &[]),
        with(frame(0, b"{}"), &many, &[]),
        with(frame(0, b"{}"), &[], &[("", "v")]),
    ] {
        assert_kind(
            w.append(std::slice::from_ref(&bad)),
            ErrorKind::InvalidInput,
            "frame 0",
        );
        assert_kind(
            s.append_many(&[entry("t", std::slice::from_ref(&bad))])
                .remove(0),
            ErrorKind::InvalidInput,
            "frame 0",
        );
        let sum = summary(std::slice::from_ref(&bad), 1);
        assert_kind(
            s.save(header("s", 1), &[bad], &sum, EndReason::Completed),
            ErrorKind::InvalidInput,
            "frame 0",
        );
    }
    assert_eq!(w.next_seq(), 0);
    let fs = frames(0, 1);
    w.append(&fs).unwrap();
    let too_big = sealed(&fs, 1, &[0; 1025]);
    assert_kind(
        w.finish(&too_big, EndReason::Completed),
        ErrorKind::InvalidInput,
        "seal",
    );
    assert_eq!(s.get("t").unwrap().state, TapeState::Recording);
    w.finish(&sealed(&fs, 1, &[0; 1024]), EndReason::Completed)
        .unwrap();
}

#[test]
fn search_needs_every_term_compared_exactly() {
    let (dir, s) = store();
    let a = vec![
        with(frame(0, b"{}"), &["method:a", "tool:x"], &[]),
        with(frame(1, b"hello"), &["method:b"], &[]),
    ];
    let b = vec![
        with(frame(0, b"{}"), &["method:a"], &[]),
        with(frame(1, b"{}"), &["Method:B"], &[]),
    ];
    let c = vec![with(frame(0, b"hello"), &["method:b", "tool:x"], &[])];
    record(&s, header("a", 1), &a, EndReason::Completed);
    record(&s, header("b", 2), &b, EndReason::Aborted);
    // A recording tape, its terms split over two appends and a resume.
    let mut wc = s.create(header("c", 3)).unwrap();
    wc.append(&c).unwrap();
    drop(wc);
    let mut wc = s.resume("c").unwrap();
    wc.append(&[frame(1, b"{}")]).unwrap();

    let check = |s: &FsStore| {
        let q = |terms: &[&str]| found(s, &terms_query(terms));
        assert_eq!(q(&[]), set(&["a", "b", "c"]), "no terms: no condition");
        assert_eq!(q(&["method:a"]), set(&["a", "b"]));
        assert_eq!(q(&["method:b"]), set(&["a", "c"]));
        assert_eq!(
            q(&["method:a", "method:b"]),
            set(&["a"]),
            "every term, in any frames"
        );
        assert_eq!(q(&["tool:x", "method:b"]), set(&["a", "c"]));
        assert_eq!(q(&["method:a", "method:a"]), set(&["a", "b"]));
        assert_eq!(q(&["Method:B"]), set(&["b"]), "case matters");
        assert_eq!(q(&["method:B"]), set(&[]));
        assert_eq!(q(&["method:"]), set(&[]), "no prefixes");
        assert_eq!(q(&["method"]), set(&[]));
        assert_eq!(q(&["method:a "]), set(&[]));
        assert_eq!(q(&["nowhere"]), set(&[]));
        assert_eq!(q(&["method:a", "nowhere"]), set(&[]));
        let both = SearchQuery {
            terms: vec!["method:b".into()],
            text: Some("hello".into()),
            ..Default::default()
        };
        assert_eq!(found(s, &both), set(&["a", "c"]));
        let both = SearchQuery {
            terms: vec!["method:a".into()],
            text: Some("hello".into()),
            ..Default::default()
        };
        assert_eq!(found(s, &both), set(&["a"]));
        let filtered = SearchQuery {
            filter: TapeFilter {
                session_id: Some("session-c".into()),
                ..Default::default()
            },
            terms: vec!["tool:x".into()],
            text: None,
        };
        assert_eq!(found(s, &filtered), set(&["c"]));
    };
    check(&s);
    check(&open(dir.path()));
    // The recording tape's terms come from the catalog once it ended.
    let all: Vec<Frame> = c.iter().cloned().chain([frame(1, b"{}")]).collect();
    wc.finish(&summary(&all, 4), EndReason::Completed).unwrap();
    check(&s);
    check(&open(dir.path()));
}

#[test]
fn finish_with_reason_aborted_keeps_the_summary() {
    let (dir, s) = store();
    let fs = frames(0, 3);
    let mut w = start(&s, header("t", 1), &fs);
    let sum = sealed(&fs, 777, b"the seal");
    let info = w.finish(&sum, EndReason::Aborted).unwrap();
    assert_eq!(info.state, TapeState::Aborted);
    assert_eq!(info.ended_at_us, Some(777));
    assert_eq!(info.digest, sum.digest);
    assert_eq!(info.seal, sum.seal);
    assert_eq!(open(dir.path()).get("t").unwrap(), info);
    // Idempotent with the same summary, refused with another seal.
    assert_eq!(w.finish(&sum, EndReason::Aborted).unwrap(), info);
    assert_kind(
        w.finish(&sealed(&fs, 777, b"other"), EndReason::Aborted),
        ErrorKind::InvalidInput,
        "already ended",
    );
    w.abort("late").unwrap();
    assert_eq!(s.get("t").unwrap(), info);
    // `abort` itself still records no summary.
    let mut w = start(&s, header("u", 2), &fs);
    w.abort("gave up").unwrap();
    let info = s.get("u").unwrap();
    assert_eq!(
        (info.state, info.digest, info.seal),
        (TapeState::Aborted, None, None)
    );
}

#[test]
fn append_many_gives_one_independent_result_per_entry() {
    let (dir, s) = store();
    let fs = frames(0, 10);
    drop(start(&s, header("a", 1), &fs[..2]));
    drop(start(&s, header("b", 2), &fs[..2]));
    record(&s, header("done", 3), &fs[..1], EndReason::Completed);
    assert!(s.append_many(&[]).is_empty());
    let mut r = s
        .append_many(&[
            entry("a", &fs[2..5]),
            entry("missing", &fs[..1]),
            entry("b", &fs[3..5]),
            entry("done", &fs[1..2]),
            entry("a", &fs[5..6]),
            entry("../x", &fs[..1]),
            entry("b", &fs[0..4]),
        ])
        .into_iter();
    assert_eq!(r.next().unwrap().unwrap(), 5);
    assert_kind(r.next().unwrap(), ErrorKind::NotFound, "\"missing\"");
    assert_kind(r.next().unwrap(), ErrorKind::InvalidInput, "gap");
    assert_kind(r.next().unwrap(), ErrorKind::InvalidInput, "finished");
    assert_kind(r.next().unwrap(), ErrorKind::InvalidInput, "more than once");
    assert_kind(r.next().unwrap(), ErrorKind::InvalidInput, "tape id");
    assert_kind(r.next().unwrap(), ErrorKind::InvalidInput, "more than once");
    assert!(r.next().is_none());
    // Only the first entry for "a" was applied; "b" stored nothing.
    for s2 in [&s, &open(dir.path())] {
        assert_eq!(read_all(s2, "a", 3), fs[..5]);
        assert_eq!(read_all(s2, "b", 3), fs[..2]);
        assert_eq!(s2.get("done").unwrap().frame_count, 1);
        assert_kind(s2.get("missing"), ErrorKind::NotFound, "\"missing\"");
    }
    // Redelivery: frames stored already are skipped; a batch of only those
    // changes nothing.
    let r = s.append_many(&[entry("a", &fs[3..7]), entry("b", &fs[..2])]);
    assert_eq!(r, vec![Ok(7), Ok(2)]);
    assert_eq!(read_all(&s, "a", 100), fs[..7]);
    // A tape appended to by `append_many` only can be resumed and finished.
    let mut w = open(dir.path()).resume("a").unwrap();
    assert_eq!(w.next_seq(), 7);
    w.append(&fs[7..]).unwrap();
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(read_all(&s, "a", 4), fs);
}

#[test]
fn append_many_appends_through_the_tapes_writer() {
    let (dir, s) = store();
    let fs: Vec<Frame> = (0..200)
        .map(|i| {
            with(
                frame(i, b"{}"),
                &[&format!("n:{}", i % 7)],
                &[("i", &i.to_string())],
            )
        })
        .collect();
    let mut w = start(&s, header("t", 1), &fs[..2]);
    for chunk in (2..150).collect::<Vec<u64>>().chunks(37) {
        let (from, to) = (chunk[0] as usize, *chunk.last().unwrap() as usize + 1);
        assert_eq!(
            s.append_many(&[entry("t", &fs[from..to])]),
            vec![Ok(to as u64)]
        );
        // The writer stays current.
        assert_eq!(w.next_seq(), to as u64);
    }
    assert_eq!(w.append(&fs[150..160]).unwrap(), 160);
    assert_eq!(s.append_many(&[entry("t", &fs[160..])]), vec![Ok(200)]);
    let info = w.finish(&summary(&fs, 2), EndReason::Completed).unwrap();
    assert_eq!(info.frame_count, 200);
    let s2 = open(dir.path());
    assert_eq!(read_all(&s2, "t", 1000), fs);
    assert_eq!(s2.read_frames("t", 190, 3, u64::MAX).unwrap(), fs[190..193]);
    assert_eq!(
        fs::metadata(dir.path().join("tapes/t.seek")).unwrap().len(),
        4 * 48,
        "seek entries for frames 0, 64, 128 and 192"
    );
    assert_eq!(found(&s2, &terms_query(&["n:6", "n:0"])), set(&["t"]));
    assert_kind(
        s.append_many(&[entry("t", &fs[..1])]).remove(0),
        ErrorKind::InvalidInput,
        "finished",
    );
}

#[test]
fn writers_that_others_wrote_past_are_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path());
    let b = open(dir.path());
    let fs = frames(0, 8);
    // A writer in another instance: `append_many` here is another writer.
    let mut wa = start(&a, header("t", 1), &fs[..2]);
    assert_eq!(b.append_many(&[entry("t", &fs[2..4])]), vec![Ok(4)]);
    assert_kind(wa.append(&fs[2..3]), ErrorKind::Io, "another writer");
    // A writer superseded by a resume in the same instance stays so, and
    // `append_many` goes through the newer one.
    let old = a.resume("t");
    let mut w2 = a.resume("t").unwrap();
    assert_eq!(a.append_many(&[entry("t", &fs[4..5])]), vec![Ok(5)]);
    assert_eq!(w2.next_seq(), 5);
    assert_kind(
        old.unwrap().append(&fs[4..5]),
        ErrorKind::Io,
        "another writer",
    );
    // Once another instance wrote, `append_many` here takes over from this
    // instance's writer, as a `resume` would.
    let mut wb = b.resume("t").unwrap();
    assert_eq!(wb.append(&fs[5..6]).unwrap(), 6);
    assert_eq!(a.append_many(&[entry("t", &fs[6..7])]), vec![Ok(7)]);
    assert_kind(w2.append(&fs[5..6]), ErrorKind::Io, "another writer");
    let mut w3 = a.resume("t").unwrap();
    assert_eq!(w3.append(&fs[7..]).unwrap(), 8);
    w3.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(read_all(&b, "t", 10), fs);
}

#[test]
fn append_many_cuts_a_torn_tail_first() {
    let (dir, s) = store();
    let fs: Vec<Frame> = (0..100)
        .map(|i| with(frame(i, b"{}"), &["t:x"], &[]))
        .collect();
    drop(start(&s, header("t", 1), &fs[..70]));
    let path = tape_path(dir.path(), "t");
    let good = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0xA7, 0x14, 200, 0, 0, 0, 1, 2, 3, 4, 5])
        .unwrap();
    let s2 = open(dir.path());
    assert_eq!(s2.append_many(&[entry("t", &fs[70..])]), vec![Ok(100)]);
    assert!(fs::metadata(&path).unwrap().len() > good);
    assert_eq!(read_all(&s, "t", 33), fs);
    assert_eq!(s.read_frames("t", 99, 1, u64::MAX).unwrap(), fs[99..]);
    let mut w = s.resume("t").unwrap();
    assert_eq!(w.next_seq(), 100);
    w.finish(&summary(&fs, 1), EndReason::Completed).unwrap();
    assert_eq!(found(&s, &terms_query(&["t:x"])), set(&["t"]));
}

/// One record of the framing tape files and the log share (`record.rs`).
fn rec(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&len.to_le_bytes());
    h.update(body);
    let mut out = vec![0xA7, kind];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// A format-1 frame record.
fn old_frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&(1_000 + seq).to_le_bytes());
    body.push(u8::from(!seq.is_multiple_of(2)));
    body.push(0);
    body.extend_from_slice(payload);
    rec(0x11, &body)
}

/// A format-1 method record.
fn old_method(prev: u64, name: &str) -> Vec<u8> {
    let mut body = prev.to_le_bytes().to_vec();
    body.extend_from_slice(name.as_bytes());
    rec(0x12, &body)
}

#[test]
fn tapes_written_by_format_1_stay_readable_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("tapes")).unwrap();
    let req = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    let resp = br#"{"jsonrpc":"2.0","id":0,"result":{}}"#;
    let header_json = |id: &str, nonce: u64| {
        format!(
            r#"{{"format":1,"nonce":{nonce},"header":{{"id":"{id}","session_id":"s-{id}","name":"Old {id}","tags":[["env","prod"]],"created_at_us":100}}}}"#
        )
    };
    // A finished tape, its `created` entry (with the end inline) in the log.
    let mut done = rec(0x10, header_json("done", 11).as_bytes());
    done.extend(old_method(0, "initialize"));
    done.extend(old_frame(0, req));
    done.extend(old_frame(1, resp));
    let bytes = (req.len() + resp.len()) as u64;
    let end = format!(
        r#"{{"state":"finished","frame_count":2,"byte_count":{bytes},"ended_at_us":500,"digest":"abcd","methods":["initialize"]}}"#
    );
    done.extend(rec(0x13, format!(r#"{{"end":{end}}}"#).as_bytes()));
    fs::write(root.join("tapes/done.tape"), &done).unwrap();
    let entry = format!(
        r#"{{"op":"created","id":"done","nonce":11,"header":{{"id":"done","session_id":"s-done","name":"Old done","tags":[["env","prod"]],"created_at_us":100}},"ended":true,"end":{end},"stored_bytes":{}}}"#,
        done.len()
    );
    fs::write(root.join("index.log"), rec(0x01, entry.as_bytes())).unwrap();
    // A recording tape with no log entry (adopted at open), no seek index.
    let mut live = rec(0x10, header_json("live", 22).as_bytes());
    let at = live.len() as u64;
    live.extend(old_method(0, "initialize"));
    live.extend(old_frame(0, req));
    live.extend(old_method(at, "tools/list"));
    live.extend(old_frame(
        1,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    ));
    fs::write(root.join("tapes/live.tape"), &live).unwrap();

    let s = open(root);
    let old_frames = [
        Frame::new(0, 1_000, Direction::ClientToServer, req.to_vec(), false),
        Frame::new(1, 1_001, Direction::ServerToClient, resp.to_vec(), false),
    ];
    let info = s.get("done").unwrap();
    assert_eq!(info.header.name, "Old done");
    assert_eq!(info.header.tags, vec![("env".into(), "prod".into())]);
    assert_eq!(info.header.envelope, None);
    assert_eq!(
        (
            info.state,
            info.frame_count,
            info.byte_count,
            info.ended_at_us
        ),
        (TapeState::Finished, 2, bytes, Some(500))
    );
    assert_eq!(
        (info.digest.as_deref(), info.seal.as_ref()),
        (Some("abcd"), None)
    );
    assert_eq!(read_all(&s, "done", 1), old_frames);
    assert_eq!(s.get("live").unwrap().frame_count, 2);
    // Format 1 kept no terms: its tapes match only searches without terms.
    assert!(found(&s, &terms_query(&[&method_term("initialize")])).is_empty());
    assert_eq!(found(&s, &SearchQuery::default()), set(&["done", "live"]));
    let text = SearchQuery {
        text: Some("tools/list".into()),
        ..Default::default()
    };
    assert_eq!(found(&s, &text), set(&["live"]));

    // The recording one goes on in format 2.
    let mut w = s.resume("live").unwrap();
    assert_eq!(w.next_seq(), 2);
    let new = vec![with(frame(2, b"{}"), &["method:x"], &[("k", "v")])];
    w.append(&new).unwrap();
    let mut all = read_all(&s, "live", 10);
    assert_eq!(all.len(), 3);
    assert!(
        all[..2]
            .iter()
            .all(|f| f.terms.is_empty() && f.attributes.is_empty())
    );
    assert_eq!(all.pop().unwrap(), new[0]);
    let total: u64 = s.get("live").unwrap().byte_count;
    let sum = TapeSummary {
        frame_count: 3,
        byte_count: total,
        ended_at_us: 9,
        digest: None,
        seal: Some(b"s".to_vec()),
    };
    w.finish(&sum, EndReason::Completed).unwrap();
    let s2 = open(root);
    assert_eq!(s2.get("live").unwrap().seal, Some(b"s".to_vec()));
    assert_eq!(found(&s2, &terms_query(&["method:x"])), set(&["live"]));
    assert_eq!(s2.get("done").unwrap(), info);
    assert_eq!(read_all(&s2, "done", 10), old_frames);
}

#[test]
fn a_tape_file_of_an_unknown_format_is_refused() {
    let (dir, s) = store();
    let body = r#"{"format":3,"nonce":5,"header":{"id":"x","session_id":"","name":"","tags":[],"created_at_us":1}}"#;
    fs::write(tape_path(dir.path(), "x"), rec(0x10, body.as_bytes())).unwrap();
    let e: StorageError = s.get("x").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert!(e.message.contains("format 3"), "{e}");
}
