//! Outgoing `wasi:http` requests: the send-request hook.
//!
//! wasmtime-wasi-http is linked without its default sender, so every request
//! a provider makes comes here. [`HttpHooks::send_request`]:
//!
//! 1. refuses everything when the provider has no network grant;
//! 2. checks scheme, host and port against the grants, resolves a name on
//!    the host and keeps only the addresses the grants reach
//!    ([`InstanceNetwork::http_targets`]) — a refusal is `HTTP-request-denied`
//!    (not granted) or `destination-IP-prohibited` (a forbidden address);
//! 3. connects to one of those vetted addresses (never to the authority as
//!    written, so the name is not resolved a second time), with TLS for
//!    `https` verified against the name;
//! 4. sends the request over HTTP/1.1 without following redirects: a 3xx is
//!    the guest's answer, and a request to its `location` is a new request,
//!    checked again;
//! 5. bounds the connect (TCP and TLS handshake), first-byte and
//!    between-bytes timeouts by the provider's call timeout (the guest may
//!    ask for less, never more), and caps the response body at the
//!    `max-http-response` limit.

use super::allow::Scheme;
use super::policy::{InstanceNetwork, NetworkError};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The future a send returns: the response and the connection's remaining
/// I/O (driven by wasmtime-wasi-http in a task of its own).
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The `wasi:http` hooks of one instance.
#[derive(Debug, Default)]
pub struct HttpHooks {
    net: Option<Arc<InstanceNetwork>>,
}

impl HttpHooks {
    /// Hooks enforcing `net`'s grants (`None`: every request is refused).
    pub fn new(net: Option<Arc<InstanceNetwork>>) -> Self {
        HttpHooks { net }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        let net = self.net.clone();
        Box::new(async move {
            match net {
                Some(net) => send(&net, request, options).await,
                None => {
                    tracing::warn!(
                        target: "tapedeck::sandbox",
                        "network: refused an HTTP request to {}: the provider has no network grant",
                        request.uri()
                    );
                    Err(Error::HttpRequestDenied)
                }
            }
        })
    }
}

/// What the guest sees for a refused or failed destination check.
fn http_error(e: NetworkError) -> Error {
    match e {
        NetworkError::Forbidden { .. } | NetworkError::ResolvedForbidden { .. } => {
            Error::DestinationIpProhibited
        }
        NetworkError::InvalidName(_) => Error::HttpRequestUriInvalid,
        NetworkError::LookupTimeout(_) => Error::DnsTimeout,
        NetworkError::LookupFailed { detail, .. } => Error::DnsError {
            rcode: Some(detail),
            info_code: None,
        },
        _ => Error::HttpRequestDenied,
    }
}

/// The guest's timeout, if any, never above the call timeout.
fn bounded(asked: Option<Duration>, bound: Duration) -> Duration {
    asked.map_or(bound, |a| a.min(bound))
}

async fn send(
    net: &InstanceNetwork,
    mut req: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let uri = req.uri().clone();
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => return Err(Error::HttpProtocolError),
    };
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    if authority.as_str().contains('@') {
        return Err(Error::HttpRequestUriInvalid);
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    let port = authority.port_u16().unwrap_or(match scheme {
        Scheme::Https => 443,
        _ => 80,
    });

    let bound = net.step_timeout();
    let connect_timeout = bounded(options.and_then(|o| o.connect_timeout), bound);
    let first_byte_timeout = bounded(options.and_then(|o| o.first_byte_timeout), bound);
    // Tokio panics on a zero interval.
    let between_bytes_timeout =
        bounded(options.and_then(|o| o.between_bytes_timeout), bound).max(Duration::from_nanos(1));

    let targets = net
        .http_targets(scheme, &host, port)
        .await
        .map_err(http_error)?;
    let tcp = match tokio::time::timeout(connect_timeout, connect_any(&targets)).await {
        Ok(r) => r.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = if scheme == Scheme::Https {
        let tls = tokio::time::timeout(connect_timeout, tls_connect(&host, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // Origin form on the wire: the scheme and authority only matter to a proxy.
    *req.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let head = req.method() == http::Method::HEAD;
    let cap = net.max_http_response();

    let send = async move {
        let res = tokio::time::timeout(first_byte_timeout, sender.send_request(req))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)?;
        if !head
            && let Some(len) = res
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            && len > cap
        {
            return Err(Error::HttpResponseBodySize(Some(len)));
        }
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok(res.map(|incoming| ResponseBody {
            incoming,
            timeout,
            left: cap,
            cap,
            done: false,
        }))
    };
    // Wait for the response while driving the connection's I/O.
    let mut send = pin!(send);
    let mut conn = Some(conn);
    let res = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else {
                return Poll::Pending;
            };
            let r = ready!(Pin::new(c).poll(cx));
            conn = None;
            match r {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let io: IoFuture = Box::new(async move {
        match conn {
            None => Ok(()),
            Some(c) => c.await.map_err(|e| {
                if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                }
            }),
        }
    });
    Ok((res.map(BodyExt::boxed_unsync), io))
}

/// Connects to the first of `targets` that accepts.
async fn connect_any(targets: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = None;
    for t in targets {
        match TcpStream::connect(t).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// The TLS client configuration: ring, the default protocol versions, the
/// webpki root certificates.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::InternalError(Some(format!("TLS configuration: {e}"))))
}

/// TLS over `tcp`, verified for `host` (a name, or an address literal).
async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    use rustls::pki_types::ServerName;
    let name = match super::allow::parse_ip_literal(host) {
        Some(ip) => ServerName::from(ip),
        None => ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(Error::Tls)
}

/// A response body under the between-bytes timeout and the size cap.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
    left: u64,
    cap: u64,
    done: bool,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(if e.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    Error::from(e)
                })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > self.left {
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.cap)))));
                }
                self.left -= n;
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                self.done = true;
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_never_exceed_the_call_timeout() {
        let call = Duration::from_secs(30);
        assert_eq!(bounded(None, call), call);
        assert_eq!(bounded(Some(Duration::from_secs(600)), call), call);
        assert_eq!(
            bounded(Some(Duration::from_secs(2)), call),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn refusals_map_to_http_error_codes() {
        assert!(matches!(
            http_error(NetworkError::NotGranted("x".into())),
            Error::HttpRequestDenied
        ));
        assert!(matches!(
            http_error(NetworkError::Forbidden {
                addr: "10.0.0.1".parse().unwrap(),
                what: "private"
            }),
            Error::DestinationIpProhibited
        ));
        assert!(matches!(
            http_error(NetworkError::ResolvedForbidden {
                name: "x".into(),
                addrs: "127.0.0.1".into()
            }),
            Error::DestinationIpProhibited
        ));
        assert!(tls_config().is_ok());
    }
}
