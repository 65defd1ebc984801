//! Network grants: what a provider may reach through `wasi:sockets` and
//! `wasi:http`, and the host code that enforces it.
//!
//! Nothing is reachable by default. An operator grants destinations in the
//! vocabulary of Spin's `allowed_outbound_hosts` (`grants.network` in the
//! configuration; syntax in [`allow`]):
//!
//! ```toml
//! grants.network = [
//!   "tcp://127.0.0.1:5432",     # one address and port
//!   "tcp://10.0.0.0/8:6379",    # a network
//!   "https://api.example.com",  # HTTPS on 443
//!   "http://localhost:9000",    # loopback, by name
//!   "*.example.com",            # HTTP and HTTPS to any subdomain
//! ]
//! ```
//!
//! Where each rule is enforced:
//! * `wasi:sockets` TCP/UDP: wasmtime-wasi's `socket_addr_check`, on every
//!   bind, listen, connect, send and receive ([`InstanceNetwork::check_socket`]);
//!   TCP and UDP are enabled at all only if a rule covers them.
//! * `wasi:sockets/ip-name-lookup`: replaced ([`lookup`]) so that only
//!   granted names are resolved, by the host, and the answers are checked.
//! * `wasi:http` outgoing requests: the send-request hook ([`http`]).
//!
//! Private, loopback, link-local (with the cloud metadata endpoints),
//! CGNAT, unspecified and other non-public ranges ([`ranges`]) are refused
//! unless a grant names them as an address or network, or as `localhost`.

pub mod allow;
pub mod http;
pub mod lookup;
pub mod policy;
pub mod ranges;

pub use allow::{GrantError, Scheme};
pub use policy::{InstanceNetwork, NetworkError, NetworkPolicy};

use std::sync::Arc;
use wasmtime_wasi::WasiCtxBuilder;

/// Lets the instance's sockets reach what `net` grants: enables TCP and/or
/// UDP when a rule covers them and installs the per-address check. Without
/// `net`, nothing changes (wasmtime-wasi denies every socket by default).
pub fn configure_sockets(b: &mut WasiCtxBuilder, net: Option<&Arc<InstanceNetwork>>) {
    let Some(net) = net else { return };
    let policy = net.policy();
    b.allow_tcp(policy.grants(Scheme::Tcp));
    b.allow_udp(policy.grants(Scheme::Udp));
    let net = net.clone();
    b.socket_addr_check(move |addr, use_| {
        let ok = net.check_socket(addr, use_).is_ok();
        Box::pin(async move { ok })
    });
}
