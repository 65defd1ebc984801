//! Network grants, end to end: the `net-attacker` provider tries to reach
//! what it was not granted, through `wasi:sockets` and `wasi:http`, against
//! servers these tests start on loopback.
//!
//! Every refusal is paired with its granted counterpart, so a test fails both
//! if a protection is removed (the attack succeeds, and the target server
//! counts the visit) and if everything is simply denied. Only 127.0.0.1 is
//! ever connected to; names are resolved from a test map
//! (`Grants::network_test_hosts`), never through DNS.

use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use tapedeck::embedded;
use tapedeck::recorder::{Recorder, RecorderOptions, TapeMeta};
use tapedeck::sandbox::{ComponentSource, Grants, Limits, ProviderSpec, Sandbox, WasmProvider};
use tapedeck::store::TapeStore;
use tapedeck::units::ByteSize;
use tapedeck_tests::artifacts;
use tapedeck_types::Direction;

// ---------------------------------------------------------------------------
// Servers on loopback

/// A TCP server on 127.0.0.1 answering each line `L` with `PONG L`; counts
/// the connections it accepted.
struct TcpServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl TcpServer {
    fn start() -> TcpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                count.fetch_add(1, SeqCst);
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    if reader.read_line(&mut line).is_ok() {
                        let _ = writeln!(conn, "PONG {}", line.trim_end());
                    }
                });
            }
        });
        TcpServer { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(SeqCst)
    }
}

/// A UDP server on 127.0.0.1 answering each datagram `D` with `PONG D`;
/// counts the datagrams it received.
struct UdpServer {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl UdpServer {
    fn start() -> UdpServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                count.fetch_add(1, SeqCst);
                let mut reply = b"PONG ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, from);
            }
        });
        UdpServer { port, received }
    }
}

/// What the HTTP server answers for a path.
enum Reply {
    /// 200 with this body.
    Ok(&'static str),
    /// 302 to this URL.
    Redirect(String),
    /// 200 with this many bytes, with or without `content-length`.
    Big { bytes: usize, chunked: bool },
}

/// A minimal HTTP/1.1 server on 127.0.0.1 (one request per connection);
/// counts requests per path.
struct HttpServer {
    port: u16,
    hits: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
}

impl HttpServer {
    fn start(routes: impl Fn(u16, &str) -> Option<Reply> + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<std::sync::Mutex<BTreeMap<String, usize>>> = Arc::default();
        let count = hits.clone();
        let routes = Arc::new(routes);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let count = count.clone();
                let routes = routes.clone();
                std::thread::spawn(move || serve(conn, port, &*routes, &count));
            }
        });
        HttpServer { port, hits }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(
    mut conn: std::net::TcpStream,
    port: u16,
    routes: &(dyn Fn(u16, &str) -> Option<Reply> + Send + Sync),
    hits: &std::sync::Mutex<BTreeMap<String, usize>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let out = match routes(port, &path) {
        Some(Reply::Ok(body)) => format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
        Some(Reply::Redirect(to)) => format!(
            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ),
        Some(Reply::Big { bytes, chunked }) => {
            let chunk = vec![b'x'; 64 * 1024];
            let header = if chunked {
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n")
            };
            if conn.write_all(header.as_bytes()).is_err() {
                return;
            }
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                let r = if chunked {
                    conn.write_all(format!("{n:x}\r\n").as_bytes())
                        .and_then(|_| conn.write_all(&chunk[..n]))
                        .and_then(|_| conn.write_all(b"\r\n"))
                } else {
                    conn.write_all(&chunk[..n])
                };
                if r.is_err() {
                    return;
                }
                left -= n;
            }
            if chunked {
                let _ = conn.write_all(b"0\r\n\r\n");
            }
            return;
        }
        None => {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
        }
    };
    let _ = conn.write_all(out.as_bytes());
}

// ---------------------------------------------------------------------------
// The attacker

/// A network setup for one provider.
#[derive(Default)]
struct Setup {
    /// `grants.network`.
    network: Vec<String>,
    /// Test name → address map (nothing is looked up through DNS).
    hosts: Vec<(&'static str, &'static str)>,
    /// Attack id → `"<verb> <target>"`.
    attacks: Vec<(&'static str, String)>,
    limits: Limits,
}

async fn attacker_in(sandbox: &Sandbox, s: Setup) -> WasmProvider {
    let attacks: serde_json::Map<String, serde_json::Value> = s
        .attacks
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut hosts: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for (name, ip) in s.hosts {
        hosts
            .entry(name.to_string())
            .or_default()
            .push(ip.parse().unwrap());
    }
    let spec = ProviderSpec::new(
        "net-attacker",
        ComponentSource::File(artifacts::NET_ATTACKER_PROVIDER.into()),
    )
    .with_config(serde_json::Value::Object(attacks))
    .with_grants(Grants {
        network: s.network,
        network_test_hosts: hosts,
        ..Grants::default()
    })
    .with_limits(s.limits);
    WasmProvider::start(sandbox, &spec, Path::new("."))
        .await
        .unwrap_or_else(|e| panic!("start net-attacker: {e}"))
}

async fn attacker(s: Setup) -> WasmProvider {
    attacker_in(&Sandbox::new().unwrap(), s).await
}

/// Runs attack `id`; returns what the guest saw (`ok: …` or `error: …`).
async fn run(p: &WasmProvider, id: &str) -> String {
    p.get(id)
        .await
        .unwrap_or_else(|e| panic!("attack {id}: the call itself failed: {e}"))
        .header
        .name
}

fn assert_ok(what: &str, seen: &str, expected: &str) {
    assert_eq!(seen, format!("ok: {expected}"), "{what}");
}

fn assert_refused(what: &str, seen: &str, error: &str) {
    assert!(
        seen.starts_with("error:") && seen.contains(error),
        "{what}: expected a refusal mentioning {error:?}, the guest saw {seen:?}"
    );
}

/// How the guest's std reports a socket the host refused (`access-denied`).
const SOCKET_DENIED: &str = "Permission denied";

// ---------------------------------------------------------------------------
// Sockets

#[tokio::test]
async fn tcp_connects_only_to_a_granted_port() {
    let granted = TcpServer::start();
    let other = TcpServer::start();
    let p = attacker(Setup {
        network: vec![format!("tcp://127.0.0.1:{}", granted.port)],
        attacks: vec![
            ("granted", format!("connect 127.0.0.1:{}", granted.port)),
            ("other-port", format!("connect 127.0.0.1:{}", other.port)),
            ("ipv6-loopback", format!("connect [::1]:{}", granted.port)),
        ],
        ..Setup::default()
    })
    .await;
    assert_ok("granted port", &run(&p, "granted").await, "PONG PING");
    assert_eq!(granted.accepted(), 1);
    assert_refused(
        "ungranted port",
        &run(&p, "other-port").await,
        SOCKET_DENIED,
    );
    // Not even `::1`: the grant names 127.0.0.1 only.
    assert_refused("::1", &run(&p, "ipv6-loopback").await, SOCKET_DENIED);
    assert_eq!(other.accepted(), 0, "the ungranted server saw a connection");
    assert_eq!(granted.accepted(), 1);
}

#[tokio::test]
async fn nothing_is_reachable_without_a_network_grant() {
    let tcp = TcpServer::start();
    let http = HttpServer::start(|_, p| (p == "/ok").then_some(Reply::Ok("hello")));
    let p = attacker(Setup {
        attacks: vec![
            ("tcp", format!("connect 127.0.0.1:{}", tcp.port)),
            ("lookup", "lookup localhost".to_string()),
            ("http", format!("http-get {}", http.url("/ok"))),
        ],
        ..Setup::default()
    })
    .await;
    assert_refused("tcp", &run(&p, "tcp").await, SOCKET_DENIED);
    // As before network grants existed: lookups fail permanently.
    assert_refused(
        "lookup",
        &run(&p, "lookup").await,
        "failed to lookup address information: Non-recoverable error",
    );
    assert_refused("http", &run(&p, "http").await, "HttpRequestDenied");
    assert_eq!(tcp.accepted() + http.total_hits(), 0);
}

#[tokio::test]
async fn a_granted_name_resolving_to_a_forbidden_address_is_refused() {
    let server = TcpServer::start();
    let attacks = vec![
        (
            "by-name",
            format!("connect db.example.test:{}", server.port),
        ),
        ("lookup", "lookup db.example.test".to_string()),
        ("by-address", format!("connect 127.0.0.1:{}", server.port)),
    ];
    // `db.example.test` resolves to loopback; granting the name is no grant
    // of loopback.
    let name_only = attacker(Setup {
        network: vec![format!("tcp://db.example.test:{}", server.port)],
        hosts: vec![("db.example.test", "127.0.0.1")],
        attacks: attacks.clone(),
        ..Setup::default()
    })
    .await;
    // The lookup yields nothing (`access-denied`), so neither does a connect.
    assert_refused(
        "connect by name",
        &run(&name_only, "by-name").await,
        SOCKET_DENIED,
    );
    assert_refused("lookup", &run(&name_only, "lookup").await, SOCKET_DENIED);
    assert_refused(
        "the address itself",
        &run(&name_only, "by-address").await,
        SOCKET_DENIED,
    );
    assert_eq!(server.accepted(), 0, "reached loopback through a name");

    // Counterpart: with loopback granted explicitly, the same name connects.
    let opened = attacker(Setup {
        network: vec![
            format!("tcp://db.example.test:{}", server.port),
            format!("tcp://127.0.0.1:{}", server.port),
        ],
        hosts: vec![("db.example.test", "127.0.0.1")],
        attacks,
        ..Setup::default()
    })
    .await;
    assert_ok("lookup", &run(&opened, "lookup").await, "127.0.0.1");
    assert_ok("by name", &run(&opened, "by-name").await, "PONG PING");
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn only_granted_names_are_looked_up() {
    let server = TcpServer::start();
    // Both names are in the map, with documentation (never routed) addresses:
    // only the granted one may be resolved.
    let p = attacker(Setup {
        network: vec![
            format!("tcp://api.example.test:{}", server.port),
            format!("tcp://localhost:{}", server.port),
        ],
        hosts: vec![
            ("api.example.test", "192.0.2.10"),
            ("evil.example.test", "192.0.2.66"),
        ],
        attacks: vec![
            ("granted", "lookup api.example.test".to_string()),
            ("ungranted", "lookup evil.example.test".to_string()),
            ("localhost", "lookup localhost".to_string()),
            (
                "localhost-connect",
                format!("connect localhost:{}", server.port),
            ),
        ],
        ..Setup::default()
    })
    .await;
    assert_ok("granted name", &run(&p, "granted").await, "192.0.2.10");
    // Refused before anything is resolved (`access-denied`).
    assert_refused("ungranted name", &run(&p, "ungranted").await, SOCKET_DENIED);
    // `localhost` is the loopback addresses, resolved by the host itself.
    assert_ok("localhost", &run(&p, "localhost").await, "127.0.0.1,::1");
    assert_ok(
        "connect to localhost",
        &run(&p, "localhost-connect").await,
        "PONG PING",
    );
}

#[tokio::test]
async fn no_listening_sockets() {
    let server = TcpServer::start();
    let p = attacker(Setup {
        network: vec![
            format!("tcp://127.0.0.1:{}", server.port),
            "tcp://127.0.0.1:*".to_string(),
        ],
        attacks: vec![
            ("loopback", "listen 127.0.0.1:0".to_string()),
            ("any", "listen 0.0.0.0:0".to_string()),
            ("connect", format!("connect 127.0.0.1:{}", server.port)),
        ],
        ..Setup::default()
    })
    .await;
    for id in ["loopback", "any"] {
        assert_refused(id, &run(&p, id).await, SOCKET_DENIED);
    }
    // The implicit bind before a connect still works.
    assert_ok("connect", &run(&p, "connect").await, "PONG PING");
}

#[tokio::test]
async fn udp_only_to_granted_peers() {
    let granted = UdpServer::start();
    let other = UdpServer::start();
    let p = attacker(Setup {
        network: vec![format!("udp://127.0.0.1:{}", granted.port)],
        attacks: vec![
            ("granted", format!("udp 127.0.0.1:{}", granted.port)),
            ("other", format!("udp 127.0.0.1:{}", other.port)),
            ("tcp", format!("connect 127.0.0.1:{}", granted.port)),
            ("bind", "udp-bind 127.0.0.1:0".to_string()),
        ],
        ..Setup::default()
    })
    .await;
    assert_ok("granted peer", &run(&p, "granted").await, "PONG PING");
    // Only the implicit bind (unspecified address, ephemeral port) is allowed.
    assert_refused("explicit bind", &run(&p, "bind").await, SOCKET_DENIED);
    assert_refused("ungranted peer", &run(&p, "other").await, SOCKET_DENIED);
    assert_eq!(other.received.load(SeqCst), 0);
    // A UDP grant is no TCP grant.
    assert_refused("tcp", &run(&p, "tcp").await, SOCKET_DENIED);
}

// ---------------------------------------------------------------------------
// HTTP

/// The granted server: `/ok`, a redirect to itself, a redirect to `outside`,
/// and big bodies.
fn granted_http(outside: u16) -> HttpServer {
    HttpServer::start(move |port, path| match path {
        "/ok" => Some(Reply::Ok("hello")),
        "/redirect-in" => Some(Reply::Redirect(format!("http://127.0.0.1:{port}/ok"))),
        "/redirect-out" => Some(Reply::Redirect(format!(
            "http://127.0.0.1:{outside}/secret"
        ))),
        "/big" => Some(Reply::Big {
            bytes: 2 << 20,
            chunked: false,
        }),
        "/big-chunked" => Some(Reply::Big {
            bytes: 2 << 20,
            chunked: true,
        }),
        _ => None,
    })
}

fn secret_http() -> HttpServer {
    HttpServer::start(|_, p| (p == "/secret").then_some(Reply::Ok("secret")))
}

#[tokio::test]
async fn http_only_to_granted_hosts_and_ports() {
    let outside = secret_http();
    let server = granted_http(outside.port);
    let p = attacker(Setup {
        network: vec![format!("http://127.0.0.1:{}", server.port)],
        attacks: vec![
            ("granted", format!("http-get {}", server.url("/ok"))),
            ("other-port", format!("http-get {}", outside.url("/secret"))),
            (
                "other-host",
                format!("http-get http://localhost:{}/ok", server.port),
            ),
            (
                "https",
                format!("http-get https://127.0.0.1:{}/ok", server.port),
            ),
        ],
        ..Setup::default()
    })
    .await;
    assert_ok("granted", &run(&p, "granted").await, "200 hello");
    assert_refused(
        "ungranted port",
        &run(&p, "other-port").await,
        "HttpRequestDenied",
    );
    assert_refused(
        "ungranted host",
        &run(&p, "other-host").await,
        "HttpRequestDenied",
    );
    assert_refused(
        "ungranted scheme",
        &run(&p, "https").await,
        "HttpRequestDenied",
    );
    assert_eq!(outside.total_hits(), 0);
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn a_redirect_is_checked_like_any_other_request() {
    let outside = secret_http();
    let server = granted_http(outside.port);
    let p = attacker(Setup {
        network: vec![format!("http://127.0.0.1:{}", server.port)],
        attacks: vec![
            (
                "out",
                format!("http-follow {}", server.url("/redirect-out")),
            ),
            ("in", format!("http-follow {}", server.url("/redirect-in"))),
            (
                "no-follow",
                format!("http-get {}", server.url("/redirect-out")),
            ),
        ],
        ..Setup::default()
    })
    .await;
    // The host does not follow redirects: the guest sees the 302 itself.
    assert_ok(
        "a redirect is returned",
        &run(&p, "no-follow").await,
        &format!("302 -> {}", outside.url("/secret")),
    );
    assert_refused(
        "following to an ungranted port",
        &run(&p, "out").await,
        "HttpRequestDenied",
    );
    assert_eq!(outside.total_hits(), 0, "the redirect target was reached");
    assert_ok(
        "following within the grant",
        &run(&p, "in").await,
        &format!("followed to {}: 200 hello", server.url("/ok")),
    );
}

#[tokio::test]
async fn http_connects_to_the_address_the_host_vetted() {
    let server = granted_http(1);
    let url = format!("http-get http://api.example.test:{}/ok", server.port);
    // `api.example.test` exists only in the test map: if the host connected
    // to the authority as written, the request could not succeed.
    let opened = attacker(Setup {
        network: vec![
            format!("http://api.example.test:{}", server.port),
            format!("http://127.0.0.1:{}", server.port),
        ],
        hosts: vec![("api.example.test", "127.0.0.1")],
        attacks: vec![("by-name", url.clone())],
        ..Setup::default()
    })
    .await;
    assert_ok("granted name", &run(&opened, "by-name").await, "200 hello");
    assert_eq!(server.hits("/ok"), 1);

    // Without loopback granted, the name is no path to it.
    let name_only = attacker(Setup {
        network: vec![format!("http://api.example.test:{}", server.port)],
        hosts: vec![("api.example.test", "127.0.0.1")],
        attacks: vec![("by-name", url)],
        ..Setup::default()
    })
    .await;
    assert_refused(
        "name resolving to loopback",
        &run(&name_only, "by-name").await,
        "DestinationIpProhibited",
    );
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn http_response_bodies_are_capped() {
    let server = granted_http(1);
    let p = attacker(Setup {
        network: vec![format!("http://127.0.0.1:{}", server.port)],
        attacks: vec![
            ("small", format!("http-get {}", server.url("/ok"))),
            ("big", format!("http-get {}", server.url("/big"))),
            (
                "big-chunked",
                format!("http-get {}", server.url("/big-chunked")),
            ),
        ],
        limits: Limits {
            max_http_response: ByteSize(1 << 20),
            ..Limits::default()
        },
        ..Setup::default()
    })
    .await;
    assert_ok("small", &run(&p, "small").await, "200 hello");
    assert_refused(
        "declared too big",
        &run(&p, "big").await,
        "HttpResponseBodySize",
    );
    // A cap hit while streaming reaches the guest as the body stream's
    // error (wasmtime-wasi-http reports it as text, not as an error code).
    assert_refused(
        "streamed too big",
        &run(&p, "big-chunked").await,
        "HTTP response body size exceeds limit: 1048576 bytes",
    );
}

// ---------------------------------------------------------------------------
// Isolation

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_on_another_provider_is_unaffected_by_the_attacks() {
    const FRAMES: usize = 400;
    let tcp = TcpServer::start();
    let outside = secret_http();
    let http = granted_http(outside.port);
    let sandbox = Sandbox::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let fs = WasmProvider::start(
        &sandbox,
        &embedded::fs_provider_spec(tmp.path()),
        Path::new("."),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let p = attacker_in(
        &sandbox,
        Setup {
            network: vec![format!("http://127.0.0.1:{}", http.port)],
            attacks: vec![
                ("tcp", format!("connect 127.0.0.1:{}", tcp.port)),
                ("lookup", "lookup evil.example.test".to_string()),
                ("listen", "listen 0.0.0.0:0".to_string()),
                (
                    "redirect",
                    format!("http-follow {}", http.url("/redirect-out")),
                ),
            ],
            ..Setup::default()
        },
    )
    .await;

    let recorder = Recorder::new(Arc::new(fs), RecorderOptions::default());
    let recording = recorder
        .start(TapeMeta {
            session_id: "s".into(),
            name: "healthy".into(),
            tags: Vec::new(),
        })
        .await
        .unwrap();
    let attacks = tokio::spawn(async move {
        let mut seen = Vec::new();
        for round in 0..5 {
            for id in ["tcp", "lookup", "listen", "redirect"] {
                seen.push((round, id, run(&p, id).await));
            }
        }
        seen
    });
    let payload = |i: usize| format!("{{\"jsonrpc\":\"2.0\",\"id\":{i}}}").into_bytes();
    for i in 0..FRAMES {
        let dir = if i.is_multiple_of(2) {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        recording.record(dir, payload(i));
        if i.is_multiple_of(20) {
            tokio::task::yield_now().await;
        }
    }
    let seen = attacks.await.unwrap();
    let outcome = recording.finish().await.unwrap_or_else(|e| panic!("{e}"));
    for (round, id, s) in &seen {
        assert!(s.starts_with("error:"), "round {round}, {id}: {s}");
    }
    assert_eq!(tcp.accepted() + outside.total_hits(), 0);

    let store = recorder.store();
    let id = &outcome.tape.header.id;
    let mut frames = Vec::new();
    loop {
        let page = store
            .read_frames(id, frames.len() as u64, 100, 1 << 20)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        frames.extend(page);
    }
    assert_eq!(frames.len(), FRAMES);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64);
        assert_eq!(f.payload, payload(i), "frame {i}");
    }
    assert_eq!(store.get(id).await.unwrap().frame_count, FRAMES as u64);
}
