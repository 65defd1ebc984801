//! `Proxy` / `run_proxy` over real child processes: every line forwarded and
//! recorded byte-exact, the server's exit status, stderr and the end of the
//! session recorded as host events, signals passed to the server's process
//! group, nothing of the server left running, a server that did not start,
//! and a provider that is still starting (or never starts) holding nothing
//! up: the session runs into the spool and recovery ends the tape as it
//! really ended.
//!
//! No timing thresholds beyond generous upper bounds on work that must not
//! wait for a provider at all.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapedeck::recorder::{
    DigestChain, EndCause, HostEvent, Proxy, ProxyError, ProxyOutcome, Recorder, RecorderOptions,
    ServerExit, Signals, Stored, TapeMeta, run_proxy,
};
use tapedeck::spool::{ProviderKey, Spool, recover_all};
use tapedeck::store::{Starting, TapeStore};
use tapedeck::units::Millis;
use tapedeck_tests::native::unsynced as native_store;
use tapedeck_tests::recording::{self, read_all};
use tapedeck_types::{Direction, Frame, TapeFilter, TapeState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn meta(name: &str) -> TapeMeta {
    recording::meta("proxy", name)
}

fn cmd(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// The traffic frames (host events left out) of one direction.
fn traffic(frames: &[Frame], d: Direction) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| f.direction == d && HostEvent::of(f).is_none())
        .map(|f| f.payload.clone())
        .collect()
}

fn events(frames: &[Frame]) -> Vec<HostEvent> {
    frames.iter().filter_map(HostEvent::of).collect()
}

/// The tape `outcome` names, as stored: its info checked against its
/// frames and digest.
async fn stored<S: TapeStore>(store: &S, outcome: &ProxyOutcome) -> (TapeState, Vec<Frame>) {
    let info = store.get(&outcome.tape_id).await.unwrap();
    let frames = read_all(store, &outcome.tape_id).await;
    assert_eq!(info.frame_count, frames.len() as u64);
    assert_eq!(info.frame_count, outcome.frames);
    if let Some(d) = &info.digest {
        DigestChain::verify(&frames, d).unwrap();
    }
    (info.state, frames)
}

/// Runs `command` through `run_proxy`, writing `input` as the client (then
/// closing its side unless `keep_open`), and returns the result and what the
/// client received.
async fn proxy<S: TapeStore + 'static>(
    proxy: Proxy<'_, S>,
    input: Vec<u8>,
    keep_open: bool,
) -> (Result<ProxyOutcome, ProxyError>, Vec<u8>) {
    let (mut client_w, proxy_in) = tokio::io::duplex(4096);
    let (proxy_out, mut client_r) = tokio::io::duplex(4096);
    let writer = tokio::spawn(async move {
        // The server may exit before reading everything.
        let _ = client_w.write_all(&input).await;
        if keep_open {
            std::future::pending::<()>().await;
        }
        drop(client_w);
    });
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        client_r.read_to_end(&mut out).await.unwrap();
        out
    });
    let result = proxy.run(proxy_in, proxy_out).await;
    let received = reader.await.unwrap();
    writer.abort();
    (result, received)
}

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if bytes.ends_with(b"\n") || bytes.is_empty() {
        out.pop();
    }
    out
}

/// A session running in the background: the client's ends of its stdin
/// and stdout, and the proxy's task.
struct Live {
    client_w: tokio::io::DuplexStream,
    client_r: BufReader<tokio::io::DuplexStream>,
    run: tokio::task::JoinHandle<Result<ProxyOutcome, ProxyError>>,
}

/// Starts `command` through a [`Proxy`] of `recorder` (tape `name`, obeying
/// `signals`) on a task of its own.
fn spawn_session<S: TapeStore + 'static>(
    recorder: &Recorder<S>,
    command: Vec<OsString>,
    name: &str,
    signals: Signals,
) -> Live {
    let (client_w, proxy_in) = tokio::io::duplex(4096);
    let (proxy_out, client_r) = tokio::io::duplex(4096);
    let recorder = recorder.clone();
    let name = name.to_string();
    let run = tokio::spawn(async move {
        Proxy::new(&recorder, &command, meta(&name))
            .signals(signals)
            .run(proxy_in, proxy_out)
            .await
    });
    Live {
        client_w,
        client_r: BufReader::new(client_r),
        run,
    }
}

/// True while process `pid` exists (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn quiet() -> tapedeck::recorder::ProxyOptions {
    tapedeck::recorder::ProxyOptions {
        stderr_passthrough: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_and_records_every_line_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}\n");
    input.extend_from_slice(b"not json at all\n");
    input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\r\n");
    input.extend_from_slice("{\"text\":\"h\u{e9}llo 😀\"}\n".as_bytes());
    input.extend_from_slice(b"\xff\xfe binary \x00\n");
    input.extend_from_slice(b"\n");
    let big = format!("{{\"blob\":\"{}\"}}", "y".repeat(300_000));
    input.extend_from_slice(big.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(b"{\"last\":\"no newline\"}");
    let command = cmd(&["cat"]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("proxy")),
        input.clone(),
        false,
    )
    .await;
    let outcome = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(outcome.server, ServerExit::Code(0));
    assert_eq!(outcome.cause, EndCause::ClientClosed);
    assert!(!outcome.failed_to_start);
    assert_eq!(received, input, "cat echoes the input exactly");
    let tape = outcome.tape().expect("the provider has the tape").clone();
    assert_eq!(tape.state, TapeState::Finished);

    let sent = lines(&input);
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    assert_eq!(traffic(&frames, Direction::ClientToServer), sent);
    assert_eq!(traffic(&frames, Direction::ServerToClient), sent);
    for f in frames.iter().filter(|f| HostEvent::of(f).is_none()) {
        let json = serde_json::from_slice::<serde_json::Value>(&f.payload).is_ok();
        assert_eq!(f.not_json, !json, "frame {}", f.seq);
    }
    // cat echoes line i only after receiving it: the echo comes later.
    for i in 0..sent.len() {
        let nth = |d: Direction| {
            frames
                .iter()
                .filter(|f| f.direction == d && HostEvent::of(f).is_none())
                .nth(i)
                .map(|f| f.seq)
                .unwrap()
        };
        assert!(nth(Direction::ClientToServer) < nth(Direction::ServerToClient));
    }
    // The tape ends with the session's end, and nothing else was added.
    assert_eq!(
        events(&frames),
        [HostEvent::SessionEnd {
            cause: EndCause::ClientClosed,
            server: ServerExit::Code(0),
            failed_to_start: false,
            stderr_dropped: 0,
        }]
    );
    assert_eq!(
        frames.last().map(HostEvent::of),
        Some(Some(events(&frames)[0].clone()))
    );
    assert_eq!(tape.frame_count, 2 * sent.len() as u64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_exit_code_signal_and_stderr_are_in_the_tape() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());

    // Answers, complains on stderr, exits 3.
    let command = cmd(&["sh", "-c", "cat; echo 'bad thing' >&2; exit 3"]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("p")).options(quiet()),
        b"[1]\n".to_vec(),
        false,
    )
    .await;
    let outcome = result.unwrap();
    assert_eq!(outcome.exit_code, 3);
    assert_eq!(received, b"[1]\n");
    assert!(!outcome.failed_to_start, "it answered: it started");
    assert_eq!(outcome.stderr_tail, ["bad thing"]);
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    assert_eq!(
        events(&frames),
        [
            HostEvent::Stderr {
                text: "bad thing".into()
            },
            HostEvent::SessionEnd {
                cause: EndCause::ClientClosed,
                server: ServerExit::Code(3),
                failed_to_start: false,
                stderr_dropped: 0,
            }
        ]
    );
}

/// A server killed in the middle of a request: the tape is finished (the
/// recorder did not crash), ends with the unanswered request, then says
/// how the server ended and why the session did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_request_leaves_a_tape_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let script = "read a; echo \"$a\"; read b; echo 'dying' >&2; kill -KILL $$";
    let command = cmd(&["sh", "-c", script]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("killed")).options(quiet()),
        b"{\"id\":1}\n{\"id\":2,\"method\":\"tools/call\"}\n".to_vec(),
        true,
    )
    .await;
    let outcome = result.unwrap();
    assert_eq!(received, b"{\"id\":1}\n");
    assert_eq!(outcome.server, ServerExit::Signal("SIGKILL".into()));
    assert_eq!(outcome.exit_code, 128 + 9);
    assert_eq!(outcome.cause, EndCause::ServerExited);
    assert!(!outcome.failed_to_start);
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    let c2s = traffic(&frames, Direction::ClientToServer);
    assert_eq!(c2s.last().unwrap(), b"{\"id\":2,\"method\":\"tools/call\"}");
    let events = events(&frames);
    assert!(
        events.contains(&HostEvent::Stderr {
            text: "dying".into()
        }),
        "{events:?}"
    );
    assert_eq!(
        events.last().unwrap(),
        &HostEvent::SessionEnd {
            cause: EndCause::ServerExited,
            server: ServerExit::Signal("SIGKILL".into()),
            failed_to_start: false,
            stderr_dropped: 0,
        }
    );
}

/// A program that starts but exits with a failure before writing anything
/// (a missing script) did not start: its tape is aborted and says why;
/// a program that cannot be run at all leaves no tape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_start_leaves_no_misleading_tape() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let command = cmd(&["python3", "/nonexistent/server.py"]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("missing")).options(quiet()),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}\n".to_vec(),
        true,
    )
    .await;
    let outcome = result.unwrap();
    assert!(received.is_empty());
    assert!(outcome.failed_to_start);
    assert_eq!(
        outcome.exit_code, 2,
        "python's exit code for a missing file"
    );
    assert!(
        outcome
            .stderr_tail
            .iter()
            .any(|l| l.contains("/nonexistent/server.py")),
        "{:?}",
        outcome.stderr_tail
    );
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Aborted, "not an empty `finished` tape");
    let events = events(&frames);
    assert!(
        matches!(
            events.last(),
            Some(HostEvent::SessionEnd {
                failed_to_start: true,
                server: ServerExit::Code(2),
                ..
            })
        ),
        "{events:?}"
    );

    let command = cmd(&["/nonexistent/cmd", "--flag"]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("x")),
        b"[1]\n".to_vec(),
        false,
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, ProxyError::Spawn { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/cmd --flag"), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");
    assert!(received.is_empty());
    let page = store.list(&TapeFilter::default(), None, 10).await.unwrap();
    assert_eq!(
        page.tapes.len(),
        1,
        "only the aborted tape: {:?}",
        page.tapes
    );

    let empty: Vec<OsString> = Vec::new();
    let (result, _) = proxy(Proxy::new(&recorder, &empty, meta("x")), Vec::new(), false).await;
    assert!(matches!(result, Err(ProxyError::NoCommand)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_server_exits_the_proxy_stops_reading_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    // The client never closes its side; the server answers one line and exits.
    let command = cmd(&["sh", "-c", "read line; echo \"$line\"; exit 5"]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("p")),
        b"[\"hello\"]\n".to_vec(),
        true,
    )
    .await;
    let outcome = result.unwrap();
    assert_eq!(outcome.exit_code, 5);
    assert_eq!(outcome.cause, EndCause::ServerExited);
    assert_eq!(received, b"[\"hello\"]\n");
    let (_, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(
        traffic(&frames, Direction::ClientToServer),
        [b"[\"hello\"]"]
    );
    assert_eq!(
        traffic(&frames, Direction::ServerToClient),
        [b"[\"hello\"]"]
    );
}

/// A signal while the session is live: passed to the server, which still
/// gets to write its last line (forwarded and recorded); the tape is
/// finished and says the session ended on the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_passed_to_the_server_and_ends_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let script = "trap 'echo \"[\\\"bye\\\"]\"; exit 0' TERM; echo '[\"ready\"]'; \
                  while :; do sleep 0.05; done";
    let command = cmd(&["sh", "-c", script]);
    let (sender, signals) = Signals::channel();
    let Live {
        mut client_w,
        mut client_r,
        run,
    } = spawn_session(&recorder, command, "sig", signals);
    let mut line = String::new();
    client_r.read_line(&mut line).await.unwrap();
    assert_eq!(line, "[\"ready\"]\n");
    client_w.write_all(b"[\"request\"]\n").await.unwrap();
    assert!(sender.send(15));
    let outcome = run.await.unwrap().unwrap();
    let mut rest = String::new();
    client_r.read_to_string(&mut rest).await.unwrap();
    assert_eq!(
        rest, "[\"bye\"]\n",
        "the server's last words reach the client"
    );
    assert_eq!(outcome.cause, EndCause::Signal("SIGTERM".into()));
    assert_eq!(outcome.server, ServerExit::Code(0));
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    assert_eq!(
        traffic(&frames, Direction::ServerToClient),
        [b"[\"ready\"]".to_vec(), b"[\"bye\"]".to_vec()]
    );
    // (The shell may report on stderr that its `sleep` got the signal too.)
    let events: Vec<_> = events(&frames)
        .into_iter()
        .filter(|e| !matches!(e, HostEvent::Stderr { .. }))
        .collect();
    assert_eq!(
        events,
        [
            HostEvent::Signal {
                signal: "SIGTERM".into()
            },
            HostEvent::SessionEnd {
                cause: EndCause::Signal("SIGTERM".into()),
                server: ServerExit::Code(0),
                failed_to_start: false,
                stderr_dropped: 0,
            }
        ]
    );
}

/// A server that ignores the signal is killed after `exit-grace`, and so
/// is everything it started; nothing survives the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_signal_is_killed_with_its_children() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let options = RecorderOptions {
        exit_grace: Millis(300),
        ..RecorderOptions::default()
    };
    let recorder = Recorder::new(store.clone(), options);
    // A child that also ignores TERM, then the server reports both pids.
    let script = "trap '' TERM; sh -c \"trap '' TERM; while :; do sleep 0.05; done\" & \
                  echo \"[$$, $!]\"; while :; do sleep 0.05; done";
    let command = cmd(&["sh", "-c", script]);
    let (sender, signals) = Signals::channel();
    let Live {
        client_w: _client_w,
        mut client_r,
        run,
    } = spawn_session(&recorder, command, "stubborn", signals);
    let mut line = String::new();
    client_r.read_line(&mut line).await.unwrap();
    let pids: Vec<u32> = serde_json::from_str(&line).unwrap();
    assert!(pids.iter().all(|p| alive(*p)));
    let signalled = Instant::now();
    assert!(sender.send(15));
    let outcome = run.await.unwrap().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "bounded by the grace, not by the server"
    );
    assert_eq!(outcome.server, ServerExit::Signal("SIGKILL".into()));
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived the proxy");
    }
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    let events = events(&frames);
    assert!(
        events.iter().any(|e| matches!(e, HostEvent::Killed { .. })),
        "{events:?}"
    );
}

/// A server that exits normally but leaves a process behind holding its
/// stdout: the proxy does not hang on it, and ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_server_leaves_running_is_ended() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let pid_file = tmp.path().join("leftover.pid");
    let script = format!(
        "read a; sleep 1000 & echo $! > {}; echo \"$a\"; exit 0",
        pid_file.display()
    );
    let command = cmd(&["sh", "-c", &script]);
    let (result, received) = proxy(
        Proxy::new(&recorder, &command, meta("leftover")),
        b"[7]\n".to_vec(),
        true,
    )
    .await;
    let outcome = result.unwrap();
    assert_eq!(received, b"[7]\n");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid), "the server's leftover {pid} survived");
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    assert!(
        events(&frames)
            .iter()
            .any(|e| matches!(e, HostEvent::Killed { .. })),
        "the kill is in the tape"
    );
}

/// The client goes away while the server still talks: later server lines
/// are recorded, marked as never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_toward_a_client_that_is_gone_are_marked_undelivered() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let script = "read a; echo '[1]'; sleep 0.3; echo '[2]'; echo '[3]'";
    let command = cmd(&["sh", "-c", script]);
    let Live {
        mut client_w,
        mut client_r,
        run,
    } = spawn_session(&recorder, command, "gone", Signals::none());
    client_w.write_all(b"[0]\n").await.unwrap();
    let mut line = String::new();
    client_r.read_line(&mut line).await.unwrap();
    assert_eq!(line, "[1]\n");
    drop(client_r);
    let outcome = run.await.unwrap().unwrap();
    drop(client_w);
    let (_, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(
        traffic(&frames, Direction::ServerToClient),
        [b"[1]".to_vec(), b"[2]".to_vec(), b"[3]".to_vec()]
    );
    let two = frames.iter().find(|f| f.payload == b"[2]").unwrap().seq;
    let events = events(&frames);
    assert!(
        events.iter().any(|e| matches!(e, HostEvent::Undelivered { to, from_seq, .. } if to == "client" && *from_seq == two)),
        "{events:?}"
    );
}

/// The provider is still starting (a component being compiled) when the
/// session runs: every line is forwarded at once, before the provider is
/// up; the tape is stored once it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_still_starting_holds_up_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::open(tmp.path().join("spool")).unwrap();
    let key = ProviderKey::from_parts("native", "00");
    let (release, started) = tokio::sync::oneshot::channel::<()>();
    let dir = tmp.path().join("tapes");
    let starting = Starting::spawn("native", async move {
        let _ = started.await;
        Ok(native_store(&dir))
    });
    let recorder = Recorder::new(Arc::new(starting.clone()), RecorderOptions::default())
        .with_spool(spool, key);
    let command = cmd(&["cat"]);
    let Live {
        mut client_w,
        mut client_r,
        run,
    } = spawn_session(&recorder, command, "early", Signals::none());
    for i in 0..20 {
        client_w
            .write_all(format!("{{\"id\":{i}}}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        client_r.read_line(&mut line).await.unwrap();
        assert_eq!(line, format!("{{\"id\":{i}}}\n"));
    }
    assert!(
        starting.get().is_none(),
        "answered while the provider was down"
    );
    drop(client_w);
    // The session is over; the end waits for the provider.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!run.is_finished());
    release.send(()).unwrap();
    let outcome = run.await.unwrap().unwrap();
    let store = starting.get().unwrap().clone();
    let (state, frames) = stored(store.as_ref(), &outcome).await;
    assert_eq!(state, TapeState::Finished);
    assert_eq!(traffic(&frames, Direction::ClientToServer).len(), 20);
    assert_eq!(traffic(&frames, Direction::ServerToClient).len(), 20);
}

/// A provider that cannot start at all, then a signal: the session ran,
/// the proxy returns within the grace with the tape in the spool, and
/// recovery (by a later process, here a working store) ends it `finished`
/// with every frame — as the session ended, not `crashed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_signal_the_end_waits_in_the_spool_and_recovery_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spool = Spool::open(tmp.path().join("spool")).unwrap();
    let key = ProviderKey::from_parts("native", "01");
    let dir = tmp.path().join("tapes");
    // The recording process, on a runtime of its own: dropping the runtime
    // is the process exiting (its tasks stop, its spool lock goes).
    let (outcome, file) = {
        let (spool, key, dir) = (spool.clone(), key.clone(), dir.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let outcome = rt.block_on(session_into_a_provider_that_never_starts(spool, key, dir));
            drop(rt);
            outcome
        })
        .join()
        .unwrap()
    };
    assert!(file.exists(), "{}", file.display());

    // A later process: the provider works now.
    let store = native_store(&dir);
    let report = recover_all(&spool, &store, &key).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.recovered.len(), 1);
    let (state, frames) = stored(&store, &outcome).await;
    assert_eq!(
        state,
        TapeState::Finished,
        "ended as the session did, not crashed"
    );
    assert_eq!(traffic(&frames, Direction::ClientToServer).len(), 5);
    assert_eq!(traffic(&frames, Direction::ServerToClient).len(), 5);
    assert!(matches!(
        events(&frames).last(),
        Some(HostEvent::SessionEnd { cause: EndCause::Signal(s), .. }) if s == "SIGTERM"
    ));
    assert!(!file.exists());
}

/// Records five lines with a provider that never starts, then sends
/// SIGTERM; returns the outcome and the tape's spool file.
async fn session_into_a_provider_that_never_starts(
    spool: Spool,
    key: ProviderKey,
    dir: std::path::PathBuf,
) -> (ProxyOutcome, std::path::PathBuf) {
    let (never, started) = tokio::sync::oneshot::channel::<()>();
    let starting = Starting::spawn("native", async move {
        let _ = started.await;
        Ok(native_store(&dir))
    });
    let recorder =
        Recorder::new(Arc::new(starting), RecorderOptions::default()).with_spool(spool, key);
    let script = "trap 'exit 0' TERM; while read l; do echo \"$l\"; done";
    let command = cmd(&["sh", "-c", script]);
    let (sender, signals) = Signals::channel();
    let Live {
        mut client_w,
        mut client_r,
        run,
    } = spawn_session(&recorder, command, "term", signals);
    for i in 0..5 {
        client_w
            .write_all(format!("[{i}]\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        client_r.read_line(&mut line).await.unwrap();
    }
    let signalled = Instant::now();
    assert!(sender.send(15));
    let outcome = run.await.unwrap().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let Stored::Spooled {
        spool: file,
        reason,
    } = &outcome.stored
    else {
        panic!("{:?}", outcome.stored)
    };
    assert!(reason.contains("SIGTERM"), "{reason}");
    let file = file.clone();
    // Dropping the sender would start the provider: it never does.
    std::mem::forget(never);
    (outcome, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_proxy_is_the_proxy_with_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(native_store(tmp.path()));
    let recorder = Recorder::new(store.clone(), RecorderOptions::default());
    let (client_w, proxy_in) = tokio::io::duplex(64);
    drop(client_w);
    let (proxy_out, _client_r) = tokio::io::duplex(64);
    let outcome = run_proxy(&recorder, &cmd(&["cat"]), meta("d"), proxy_in, proxy_out)
        .await
        .unwrap();
    assert_eq!(outcome.tape().unwrap().state, TapeState::Finished);
    assert_eq!(outcome.frames, 1, "only the session's end");
}
