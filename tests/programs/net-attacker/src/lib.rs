//! A hostile storage provider for the host's network sandbox tests.
//!
//! It stores nothing. `init(config)` takes a JSON object mapping attack ids
//! to `"<verb> <target>"`; `get(id)` runs that attack and reports the outcome
//! as the tape's name: `ok: …` (what it reached) or `error: …` (what the guest
//! was told). Verbs:
//!
//! * `connect HOST:PORT` — TCP connect (a name is looked up through
//!   `wasi:sockets/ip-name-lookup`), send `PING\n`, read one line back;
//! * `lookup NAME` — resolve a name, list the addresses;
//! * `listen ADDR` — bind a TCP listener;
//! * `udp-bind ADDR` — bind a UDP socket (an explicit bind, no listen);
//! * `udp HOST:PORT` — send `PING` from an ephemeral port, read the reply;
//! * `http-get URL` — one `wasi:http` GET: status and body (or `location`);
//! * `http-follow URL` — a GET, then a GET of its `location` if it redirects.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// The raw bindings of the contract and their export glue (which needs
/// `unsafe`): this guest does without the SDK on purpose.
#[allow(unsafe_code, reason = "wit-bindgen's generated glue")]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "wit"],
        world: "tapedeck:net-attacker/attacker",
        generate_all,
    });

    // Exported only in wasm: natively, symbol names like
    // `tapedeck:storage/…` do not link as a cdylib (rust-lang/rust#141310).
    #[cfg(target_arch = "wasm32")]
    use super::Provider;
    #[cfg(target_arch = "wasm32")]
    export!(Provider);
}
use bindings::*;

use exports::tapedeck::storage::tape_storage::{
    EndReason, Frame, Guest, GuestTapeWriter, ProviderInfo, SearchQuery, StorageError,
    StorageStats, TapeAppend, TapeFilter, TapeHeader, TapeInfo, TapePage, TapeSummary, TapeWriter,
};
use tapedeck::storage::types::{Capabilities, TapeState};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, IncomingBody, Method, OutgoingRequest, Scheme, http_error_code};
use wasi::io::streams::StreamError;

thread_local! {
    static ATTACKS: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

fn outcome<T: std::fmt::Display, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("ok: {v}"),
        Err(e) => format!("error: {e}"),
    }
}

fn connect(target: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(target)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"PING\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

fn lookup(name: &str) -> std::io::Result<String> {
    let addrs: Vec<String> = (name, 0u16)
        .to_socket_addrs()?
        .map(|a| a.ip().to_string())
        .collect();
    Ok(addrs.join(","))
}

fn listen(addr: &str) -> std::io::Result<String> {
    let l = TcpListener::bind(addr)?;
    Ok(format!("listening on {}", l.local_addr()?))
}

fn udp_bind(addr: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind(addr)?;
    Ok(format!("bound {}", s.local_addr()?))
}

fn udp(target: &str) -> std::io::Result<String> {
    // No read timeout: wasi-libc has no SO_RCVTIMEO for UDP; the call's
    // wall-clock limit bounds the wait.
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.send_to(b"PING", target)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// What one `wasi:http` GET returned.
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

fn http_get(url: &str) -> Result<Response, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let bad = |what: &str| format!("cannot set the request's {what}");
    req.set_method(&Method::Get).map_err(|()| bad("method"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    req.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
    req.set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    let future = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    let response = loop {
        match future.get() {
            Some(r) => break r,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "response already taken".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let body = response
        .consume()
        .map_err(|()| "body already taken".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match http_error_code(&e) {
                    Some(code) => format!("{code:?}"),
                    None => e.to_debug_string(),
                });
            }
        }
    }
    drop(stream);
    let _ = IncomingBody::finish(body);
    Ok(Response {
        status,
        location,
        body: bytes,
    })
}

fn describe(r: &Response) -> String {
    match &r.location {
        Some(to) if (300..400).contains(&r.status) => format!("{} -> {to}", r.status),
        _ => format!("{} {}", r.status, String::from_utf8_lossy(&r.body)),
    }
}

fn http_follow(url: &str) -> Result<String, String> {
    let first = http_get(url)?;
    match first.location {
        Some(to) if (300..400).contains(&first.status) => {
            http_get(&to).map(|r| format!("followed to {to}: {}", describe(&r)))
        }
        _ => Ok(describe(&first)),
    }
}

fn attack(spec: &str) -> String {
    let (verb, target) = spec.split_once(' ').unwrap_or((spec, ""));
    match verb {
        "connect" => outcome(connect(target)),
        "lookup" => outcome(lookup(target)),
        "listen" => outcome(listen(target)),
        "udp" => outcome(udp(target)),
        "udp-bind" => outcome(udp_bind(target)),
        "http-get" => outcome(http_get(target).map(|r| describe(&r))),
        "http-follow" => outcome(http_follow(target)),
        _ => format!("error: unknown attack {verb:?}"),
    }
}

fn report(id: String, name: String) -> TapeInfo {
    TapeInfo {
        header: TapeHeader {
            id,
            session_id: String::new(),
            name,
            tags: Vec::new(),
            created_at: 0,
            envelope: None,
        },
        state: TapeState::Finished,
        frame_count: 0,
        byte_count: 0,
        ended_at: None,
        digest: None,
        seal: None,
    }
}

fn unsupported<T>(what: &str) -> Result<T, StorageError> {
    Err(StorageError::Unsupported(format!(
        "net-attacker stores nothing ({what})"
    )))
}

struct Provider;

impl Guest for Provider {
    type TapeWriter = Writer;

    fn init(config: String) -> Result<ProviderInfo, StorageError> {
        let attacks: BTreeMap<String, String> = serde_json::from_str(&config)
            .map_err(|e| StorageError::InvalidInput(format!("config: {e}")))?;
        ATTACKS.with_borrow_mut(|a| *a = attacks);
        Ok(ProviderInfo {
            name: "net-attacker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: Capabilities::empty(),
        })
    }

    fn create(_header: TapeHeader) -> Result<TapeWriter, StorageError> {
        unsupported("create")
    }

    fn resume(_id: String) -> Result<TapeWriter, StorageError> {
        unsupported("resume")
    }

    fn save(
        _header: TapeHeader,
        _frames: Vec<Frame>,
        _summary: TapeSummary,
        _reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        unsupported("save")
    }

    fn append_many(appends: Vec<TapeAppend>) -> Vec<Result<u64, StorageError>> {
        appends.iter().map(|_| unsupported("append-many")).collect()
    }

    fn get(id: String) -> Result<TapeInfo, StorageError> {
        let spec = ATTACKS.with_borrow(|a| a.get(&id).cloned());
        match spec {
            Some(spec) => Ok(report(id, attack(&spec))),
            None => Err(StorageError::NotFound(format!("no attack {id}"))),
        }
    }

    fn read_frames(
        _id: String,
        _from_seq: u64,
        _max_frames: u32,
        _max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        unsupported("read-frames")
    }

    fn delete(_id: String) -> Result<(), StorageError> {
        unsupported("delete")
    }

    fn list(
        _filter: TapeFilter,
        _cursor: Option<String>,
        _limit: u32,
    ) -> Result<TapePage, StorageError> {
        Ok(TapePage {
            tapes: Vec::new(),
            next_cursor: None,
        })
    }

    fn search(_q: SearchQuery, _c: Option<String>, _l: u32) -> Result<TapePage, StorageError> {
        unsupported("search")
    }

    fn stats() -> Result<StorageStats, StorageError> {
        Ok(StorageStats {
            tape_count: 0,
            recording_count: 0,
            frame_count: 0,
            byte_count: 0,
            stored_bytes: 0,
        })
    }
}

/// Never created.
struct Writer;

impl GuestTapeWriter for Writer {
    fn next_seq(&self) -> u64 {
        0
    }

    fn append(&self, _frames: Vec<Frame>) -> Result<u64, StorageError> {
        unsupported("append")
    }

    fn finish(&self, _summary: TapeSummary, _reason: EndReason) -> Result<TapeInfo, StorageError> {
        unsupported("finish")
    }

    fn abort(&self, _reason: String) -> Result<(), StorageError> {
        unsupported("abort")
    }
}
