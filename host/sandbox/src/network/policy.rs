//! Decisions: which socket address, name lookup or HTTP destination a
//! provider may use.
//!
//! [`NetworkPolicy`] is a provider's parsed grants; [`InstanceNetwork`] is
//! one instance's view of it, which also remembers the addresses that names
//! the instance looked up resolved to, so that a later connection to such an
//! address is allowed by the rule that granted the name (and only by it: on
//! that rule's scheme and port).
//!
//! The rules, in short:
//! * sockets: a connection or datagram needs a rule whose scheme covers it
//!   (`tcp`/`udp`/`*`), whose port matches, and whose host is an address or
//!   network holding the peer, `localhost` for a loopback peer, `*` for a
//!   public peer, or a name the instance looked up and got this (public)
//!   address for. The only bind allowed is the implicit one to the
//!   unspecified address on an ephemeral port (wasi-libc does it before each
//!   connect); listening is never allowed.
//! * lookups: only names some socket rule names (exactly, by `*.suffix`, or
//!   `*`); the name is resolved by the host, and addresses in forbidden ranges
//!   are dropped unless an address/network or `localhost` rule opens them.
//! * HTTP: the same matching by scheme, host and port; the host resolves the
//!   name and returns only addresses that pass, which it then connects to.
//!
//! Forbidden ranges are in [`super::ranges`].

use super::allow::{
    AllowRule, GrantError, HostPattern, Scheme, normalize_name, parse_entry, parse_ip_literal,
};
use super::ranges::{canonical, forbidden_range, is_loopback, reaches};
use crate::limits::Limits;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi::sockets::SocketAddrUse;

/// Longest a host-side DNS lookup may take (also bounded by the call timeout).
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Most resolved addresses one instance remembers; addresses beyond it are
/// not recorded (connections to them are refused), so a provider looking up
/// names in a loop cannot grow host memory.
pub const MAX_RESOLVED: usize = 1024;

/// Why the host refused, or could not complete, a network use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// No grant covers this use.
    #[error("no network grant allows {0}")]
    NotGranted(String),
    /// The address is in a forbidden range and no grant names it.
    #[error(
        "{addr} is a {what} address, which only a grant naming it (as an address, or a network inside that range) opens"
    )]
    Forbidden {
        /// The address.
        addr: IpAddr,
        /// Its range.
        what: &'static str,
    },
    /// A listening socket was asked for.
    #[error("listening for connections is never granted")]
    Listen,
    /// An explicit bind.
    #[error("binding {0} is not allowed (only the implicit bind to an ephemeral port is)")]
    Bind(SocketAddr),
    /// The name is not a DNS name.
    #[error("{0}")]
    InvalidName(String),
    /// The name is granted, but resolved only to refused addresses.
    #[error("`{name}` resolved only to refused addresses ({addrs})")]
    ResolvedForbidden {
        /// The name.
        name: String,
        /// What it resolved to.
        addrs: String,
    },
    /// The name did not resolve.
    #[error("looking up `{name}` failed: {detail}")]
    LookupFailed {
        /// The name.
        name: String,
        /// The resolver's error.
        detail: String,
    },
    /// The lookup took too long.
    #[error("looking up `{0}` timed out")]
    LookupTimeout(String),
}

/// A provider's network grants, parsed.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    rules: Vec<AllowRule>,
    /// Test hook: when set, names resolve from this map only (never DNS).
    static_hosts: Option<Arc<BTreeMap<String, Vec<IpAddr>>>>,
}

impl NetworkPolicy {
    /// Parses grant entries (see [`super::allow`]).
    pub fn parse(entries: &[String]) -> Result<NetworkPolicy, GrantError> {
        let mut rules = Vec::new();
        for e in entries {
            rules.extend(parse_entry(e)?);
        }
        Ok(NetworkPolicy {
            rules,
            static_hosts: None,
        })
    }

    /// Test hook: resolve names from `hosts` instead of DNS (a name missing
    /// from the map does not resolve). Keys are normalised names.
    #[doc(hidden)]
    pub fn with_static_hosts(mut self, hosts: BTreeMap<String, Vec<IpAddr>>) -> Self {
        self.static_hosts = Some(Arc::new(hosts));
        self
    }

    /// The rules, in grant order.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// True if nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True if some rule covers `scheme`.
    pub fn grants(&self, scheme: Scheme) -> bool {
        self.rules.iter().any(|r| r.scheme.covers(scheme))
    }

    /// Checks that `name` may be looked up: some socket rule names it.
    /// Returns the normalised name.
    pub fn check_lookup(&self, name: &str) -> Result<String, NetworkError> {
        let name = normalize_name(name).map_err(NetworkError::InvalidName)?;
        if self
            .rules
            .iter()
            .any(|r| r.scheme.is_socket() && r.host.matches_name(&name))
        {
            Ok(name)
        } else {
            Err(NetworkError::NotGranted(format!("looking up `{name}`")))
        }
    }

    /// True if an address/network or `localhost` rule accepted by `rule_ok`
    /// reaches the forbidden address `ip`.
    fn opens(&self, ip: IpAddr, rule_ok: impl Fn(&AllowRule) -> bool) -> bool {
        self.rules
            .iter()
            .filter(|r| rule_ok(r))
            .any(|r| match &r.host {
                HostPattern::Net(c) => reaches(c, ip),
                HostPattern::Localhost => is_loopback(ip),
                _ => false,
            })
    }

    /// Checks a peer address for `scheme` (`Tcp`, `Udp`, `Http` or `Https`).
    /// `looked_up(i)` says whether the instance resolved a name of rule `i`
    /// to this address.
    pub fn check_peer(
        &self,
        scheme: Scheme,
        addr: SocketAddr,
        looked_up: impl Fn(usize) -> bool,
    ) -> Result<(), NetworkError> {
        let ip = canonical(addr.ip());
        let forbidden = forbidden_range(ip);
        let mut blocked = None;
        for (i, r) in self.rules.iter().enumerate() {
            if !r.scheme.covers(scheme) || !r.port.matches(addr.port()) {
                continue;
            }
            let ok = match &r.host {
                HostPattern::Net(c) => {
                    let ok = reaches(c, ip);
                    if !ok && c.contains(ip) {
                        blocked = forbidden;
                    }
                    ok
                }
                HostPattern::Localhost => is_loopback(ip),
                HostPattern::Any => {
                    if forbidden.is_some() {
                        blocked = forbidden;
                    }
                    forbidden.is_none()
                }
                HostPattern::Name(_) | HostPattern::Subdomains(_) => {
                    forbidden.is_none() && looked_up(i)
                }
            };
            if ok {
                return Ok(());
            }
        }
        Err(match blocked {
            Some(r) => NetworkError::Forbidden {
                addr: ip,
                what: r.what,
            },
            None => NetworkError::NotGranted(format!("{scheme} to {addr}")),
        })
    }

    /// Resolves `name` (normalised) on the host: `localhost` to the loopback
    /// addresses without asking anyone, other names through the system
    /// resolver (or the test map), within `timeout`.
    async fn resolve(&self, name: &str, timeout: Duration) -> Result<Vec<IpAddr>, NetworkError> {
        if name == "localhost" {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        if let Some(hosts) = &self.static_hosts {
            return hosts
                .get(name)
                .cloned()
                .ok_or_else(|| NetworkError::LookupFailed {
                    name: name.to_string(),
                    detail: "not in the test host map".into(),
                });
        }
        match tokio::time::timeout(timeout, tokio::net::lookup_host((name, 0))).await {
            Err(_) => Err(NetworkError::LookupTimeout(name.to_string())),
            Ok(Err(e)) => Err(NetworkError::LookupFailed {
                name: name.to_string(),
                detail: e.to_string(),
            }),
            Ok(Ok(addrs)) => {
                let mut out: Vec<IpAddr> = Vec::new();
                for a in addrs {
                    let ip = canonical(a.ip());
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
                Ok(out)
            }
        }
    }
}

/// One instance's network: the policy, the addresses its lookups resolved
/// to, and the limits its host-side network work runs under.
pub struct InstanceNetwork {
    policy: Arc<NetworkPolicy>,
    provider: Arc<str>,
    /// The call timeout: no host-side network step may take longer.
    timeout: Duration,
    max_http_response: u64,
    /// Address → indices of the name rules whose lookups returned it.
    resolved: Mutex<HashMap<IpAddr, Vec<usize>>>,
}

impl std::fmt::Debug for InstanceNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceNetwork")
            .field("provider", &self.provider)
            .field("rules", &self.policy.rules.len())
            .finish_non_exhaustive()
    }
}

impl InstanceNetwork {
    /// A fresh view of `policy` for one instance of `provider`.
    pub fn new(policy: Arc<NetworkPolicy>, provider: &str, limits: &Limits) -> Self {
        InstanceNetwork {
            policy,
            provider: provider.into(),
            timeout: limits.timeout(),
            max_http_response: limits.max_http_response.0,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// The provider's name (for logs).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Longest any one host-side network step (connect, first byte, next
    /// byte) may take: the call timeout.
    pub fn step_timeout(&self) -> Duration {
        self.timeout
    }

    /// Most bytes of one HTTP response body.
    pub fn max_http_response(&self) -> u64 {
        self.max_http_response
    }

    fn dns_timeout(&self) -> Duration {
        DNS_TIMEOUT.min(self.timeout)
    }

    fn refused(&self, what: impl std::fmt::Display, err: &NetworkError) {
        tracing::warn!(
            target: "tapedeck::sandbox",
            provider = %self.provider,
            "network: refused {what}: {err}"
        );
    }

    /// The `socket_addr_check` of `wasi:sockets`: called by wasmtime-wasi on
    /// every bind, listen, accept, connect, send and receive.
    pub fn check_socket(&self, addr: SocketAddr, use_: SocketAddrUse) -> Result<(), NetworkError> {
        let bind = |scheme: Scheme| {
            if addr.ip().is_unspecified() && addr.port() == 0 && self.policy.grants(scheme) {
                Ok(())
            } else {
                Err(NetworkError::Bind(addr))
            }
        };
        let r = match use_ {
            SocketAddrUse::TcpBind => bind(Scheme::Tcp),
            SocketAddrUse::UdpBind => bind(Scheme::Udp),
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => Err(NetworkError::Listen),
            SocketAddrUse::TcpConnect => self.check_peer(Scheme::Tcp, addr),
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.check_peer(Scheme::Udp, addr)
            }
        };
        if let Err(e) = &r {
            if matches!(use_, SocketAddrUse::UdpReceive) {
                tracing::debug!(
                    target: "tapedeck::sandbox",
                    provider = %self.provider,
                    "network: dropped a datagram from {addr}: {e}"
                );
            } else {
                self.refused(format_args!("{use_:?} {addr}"), e);
            }
        }
        r
    }

    fn check_peer(&self, scheme: Scheme, addr: SocketAddr) -> Result<(), NetworkError> {
        let ip = canonical(addr.ip());
        let resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        let known = resolved.get(&ip);
        self.policy
            .check_peer(scheme, addr, |i| known.is_some_and(|k| k.contains(&i)))
    }

    /// Checks, before anything is resolved, that `name` may be looked up
    /// (a refusal is logged).
    pub fn precheck_lookup(&self, name: &str) -> Result<(), NetworkError> {
        self.policy
            .check_lookup(name)
            .map(|_| ())
            .inspect_err(|e| self.refused(format_args!("lookup of {name:?}"), e))
    }

    /// `wasi:sockets/ip-name-lookup`: an address literal is returned as is
    /// (nothing is looked up); a name must be granted to a socket rule, is
    /// resolved by the host, and only addresses a connection could be
    /// granted to are returned (and remembered for the rules naming it).
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, NetworkError> {
        if let Some(ip) = parse_ip_literal(name) {
            return Ok(vec![ip]);
        }
        let r = self.lookup_name(name).await;
        if let Err(e) = &r {
            self.refused(format_args!("lookup of {name:?}"), e);
        }
        r
    }

    async fn lookup_name(&self, name: &str) -> Result<Vec<IpAddr>, NetworkError> {
        let name = self.policy.check_lookup(name)?;
        let all = self.policy.resolve(&name, self.dns_timeout()).await?;
        let kept: Vec<IpAddr> = all
            .iter()
            .map(|ip| canonical(*ip))
            .filter(|ip| {
                forbidden_range(*ip).is_none() || self.policy.opens(*ip, |r| r.scheme.is_socket())
            })
            .collect();
        if kept.is_empty() {
            return Err(NetworkError::ResolvedForbidden {
                addrs: list(&all),
                name,
            });
        }
        let rules: Vec<usize> = self
            .policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.scheme.is_socket()
                    && matches!(r.host, HostPattern::Name(_) | HostPattern::Subdomains(_))
                    && r.host.matches_name(&name)
            })
            .map(|(i, _)| i)
            .collect();
        let mut resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        for ip in &kept {
            if !resolved.contains_key(ip) && resolved.len() >= MAX_RESOLVED {
                tracing::warn!(
                    target: "tapedeck::sandbox",
                    provider = %self.provider,
                    "network: more than {MAX_RESOLVED} resolved addresses; {ip} (for `{name}`) is not remembered"
                );
                continue;
            }
            let entry = resolved.entry(*ip).or_default();
            for i in &rules {
                if !entry.contains(i) {
                    entry.push(*i);
                }
            }
        }
        Ok(kept)
    }

    /// The addresses an HTTP request to `scheme://host:port` may connect to,
    /// in resolver order: `host` must be granted for this scheme and port; a
    /// name is resolved by the host, and forbidden addresses are kept only if
    /// an address/network or `localhost` rule for this scheme and port opens
    /// them.
    pub async fn http_targets(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, NetworkError> {
        let r = self.http_targets_inner(scheme, host, port).await;
        if let Err(e) = &r {
            self.refused(format_args!("{scheme}://{host}:{port}"), e);
        }
        r
    }

    async fn http_targets_inner(
        &self,
        scheme: Scheme,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, NetworkError> {
        if let Some(ip) = parse_ip_literal(host) {
            let addr = SocketAddr::new(ip, port);
            self.policy.check_peer(scheme, addr, |_| false)?;
            return Ok(vec![addr]);
        }
        let name = normalize_name(host).map_err(NetworkError::InvalidName)?;
        let rule_ok = |r: &AllowRule| r.scheme.covers(scheme) && r.port.matches(port);
        if !self
            .policy
            .rules
            .iter()
            .any(|r| rule_ok(r) && r.host.matches_name(&name))
        {
            return Err(NetworkError::NotGranted(format!(
                "{scheme}://{name}:{port}"
            )));
        }
        let all = self.policy.resolve(&name, self.dns_timeout()).await?;
        let kept: Vec<SocketAddr> = all
            .iter()
            .map(|ip| canonical(*ip))
            .filter(|ip| forbidden_range(*ip).is_none() || self.policy.opens(*ip, rule_ok))
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if kept.is_empty() {
            return Err(NetworkError::ResolvedForbidden {
                addrs: list(&all),
                name,
            });
        }
        Ok(kept)
    }
}

fn list(ips: &[IpAddr]) -> String {
    if ips.is_empty() {
        return "none".into();
    }
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str], hosts: &[(&str, &[&str])]) -> Arc<NetworkPolicy> {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let hosts = hosts
            .iter()
            .map(|(n, ips)| {
                (
                    n.to_string(),
                    ips.iter().map(|i| i.parse().unwrap()).collect(),
                )
            })
            .collect();
        Arc::new(
            NetworkPolicy::parse(&entries)
                .unwrap()
                .with_static_hosts(hosts),
        )
    }

    fn instance(p: Arc<NetworkPolicy>) -> InstanceNetwork {
        InstanceNetwork::new(p, "test", &Limits::default())
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sockets_need_a_matching_rule() {
        let net = instance(policy(
            &[
                "tcp://127.0.0.1:5432",
                "udp://10.0.0.0/8:53",
                "tcp://0.0.0.0/0:443",
            ],
            &[],
        ));
        use SocketAddrUse::*;
        assert!(net.check_socket(sa("127.0.0.1:5432"), TcpConnect).is_ok());
        assert!(matches!(
            net.check_socket(sa("127.0.0.1:5433"), TcpConnect),
            Err(NetworkError::NotGranted(_))
        ));
        assert!(
            net.check_socket(sa("127.0.0.1:5432"), UdpSend).is_err(),
            "scheme"
        );
        assert!(net.check_socket(sa("10.1.2.3:53"), UdpSend).is_ok());
        assert!(net.check_socket(sa("10.1.2.3:53"), UdpReceive).is_ok());
        assert!(net.check_socket(sa("10.1.2.3:53"), TcpConnect).is_err());
        // 0.0.0.0/0 reaches public addresses, not private or metadata ones.
        assert!(
            net.check_socket(sa("93.184.216.34:443"), TcpConnect)
                .is_ok()
        );
        assert_eq!(
            net.check_socket(sa("169.254.169.254:443"), TcpConnect),
            Err(NetworkError::Forbidden {
                addr: "169.254.169.254".parse().unwrap(),
                what: "cloud metadata"
            })
        );
        assert!(net.check_socket(sa("192.168.0.1:443"), TcpConnect).is_err());
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(
            net.check_socket(sa("[::ffff:127.0.0.1]:5432"), TcpConnect)
                .is_ok()
        );
        assert!(
            net.check_socket(sa("[::ffff:10.0.0.1]:443"), TcpConnect)
                .is_err()
        );
    }

    #[test]
    fn only_the_implicit_bind_and_never_listen() {
        use SocketAddrUse::*;
        let net = instance(policy(&["tcp://127.0.0.1:5432"], &[]));
        assert!(net.check_socket(sa("0.0.0.0:0"), TcpBind).is_ok());
        assert!(net.check_socket(sa("[::]:0"), TcpBind).is_ok());
        assert_eq!(
            net.check_socket(sa("127.0.0.1:0"), TcpBind),
            Err(NetworkError::Bind(sa("127.0.0.1:0")))
        );
        assert!(net.check_socket(sa("0.0.0.0:8080"), TcpBind).is_err());
        assert_eq!(
            net.check_socket(sa("0.0.0.0:0"), TcpListen),
            Err(NetworkError::Listen)
        );
        assert!(net.check_socket(sa("127.0.0.1:5432"), TcpAccept).is_err());
        assert!(
            net.check_socket(sa("0.0.0.0:0"), UdpBind).is_err(),
            "no udp grant"
        );
        let none = instance(policy(&[], &[]));
        assert!(none.check_socket(sa("0.0.0.0:0"), TcpBind).is_err());
        assert!(none.check_socket(sa("127.0.0.1:5432"), TcpConnect).is_err());
    }

    #[test]
    fn localhost_means_loopback() {
        use SocketAddrUse::*;
        let net = instance(policy(&["tcp://localhost:9000"], &[]));
        assert!(net.check_socket(sa("127.0.0.1:9000"), TcpConnect).is_ok());
        assert!(net.check_socket(sa("[::1]:9000"), TcpConnect).is_ok());
        assert!(net.check_socket(sa("10.0.0.1:9000"), TcpConnect).is_err());
        assert!(net.check_socket(sa("127.0.0.1:9001"), TcpConnect).is_err());
    }

    #[tokio::test]
    async fn lookups_only_of_granted_names_and_checked_again() {
        use SocketAddrUse::*;
        let net = instance(policy(
            &[
                "tcp://db.example.test:5432",
                "tcp://*.svc.test:80",
                "tcp://meta.test:80",
            ],
            &[
                ("db.example.test", &["93.184.216.34", "127.0.0.1"]),
                ("a.svc.test", &["93.184.216.35"]),
                ("meta.test", &["169.254.169.254"]),
                ("other.test", &["93.184.216.36"]),
            ],
        ));
        // An ungranted name is never resolved.
        assert!(matches!(
            net.lookup("other.test").await,
            Err(NetworkError::NotGranted(_))
        ));
        assert!(
            net.check_socket(sa("93.184.216.36:5432"), TcpConnect)
                .is_err()
        );
        // Before the lookup, the name's address is not granted.
        assert!(
            net.check_socket(sa("93.184.216.34:5432"), TcpConnect)
                .is_err()
        );
        // The loopback answer is dropped: a granted name is no path to it.
        let got = net.lookup("DB.example.test.").await.unwrap();
        assert_eq!(got, vec!["93.184.216.34".parse::<IpAddr>().unwrap()]);
        assert!(
            net.check_socket(sa("93.184.216.34:5432"), TcpConnect)
                .is_ok()
        );
        assert!(
            net.check_socket(sa("93.184.216.34:5433"), TcpConnect)
                .is_err(),
            "port"
        );
        assert!(net.check_socket(sa("127.0.0.1:5432"), TcpConnect).is_err());
        // A name resolving only to metadata is refused outright.
        assert!(matches!(
            net.lookup("meta.test").await,
            Err(NetworkError::ResolvedForbidden { .. })
        ));
        assert!(
            net.check_socket(sa("169.254.169.254:80"), TcpConnect)
                .is_err()
        );
        // Wildcards: the subdomain's address, on the wildcard rule's port only.
        net.lookup("a.svc.test").await.unwrap();
        assert!(net.check_socket(sa("93.184.216.35:80"), TcpConnect).is_ok());
        assert!(
            net.check_socket(sa("93.184.216.35:5432"), TcpConnect)
                .is_err()
        );
        assert!(net.lookup("svc.test").await.is_err());
        // Literals are returned, not looked up (and not thereby granted).
        assert_eq!(
            net.lookup("10.0.0.1").await.unwrap(),
            vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(net.check_socket(sa("10.0.0.1:5432"), TcpConnect).is_err());
        assert!(matches!(
            net.lookup("bad_name").await,
            Err(NetworkError::InvalidName(_))
        ));
        // HTTP rules do not grant lookups.
        let http = instance(policy(
            &["https://api.test"],
            &[("api.test", &["93.184.216.34"])],
        ));
        assert!(http.lookup("api.test").await.is_err());
    }

    #[tokio::test]
    async fn a_resolved_private_address_needs_an_explicit_grant() {
        use SocketAddrUse::*;
        let hosts: &[(&str, &[&str])] = &[("db.internal.test", &["10.0.0.5"])];
        let strict = instance(policy(&["tcp://db.internal.test:5432"], hosts));
        assert!(strict.lookup("db.internal.test").await.is_err());
        let opened = instance(policy(
            &["tcp://db.internal.test:5432", "tcp://10.0.0.5:5432"],
            hosts,
        ));
        assert_eq!(opened.lookup("db.internal.test").await.unwrap().len(), 1);
        assert!(opened.check_socket(sa("10.0.0.5:5432"), TcpConnect).is_ok());
        // The explicit rule decides the port, not the name rule.
        let other_port = instance(policy(
            &["tcp://db.internal.test:5432", "udp://10.0.0.5:53"],
            hosts,
        ));
        other_port.lookup("db.internal.test").await.unwrap();
        assert!(
            other_port
                .check_socket(sa("10.0.0.5:5432"), TcpConnect)
                .is_err()
        );
    }

    #[tokio::test]
    async fn http_destinations() {
        let hosts: &[(&str, &[&str])] = &[
            ("api.test", &["93.184.216.34"]),
            ("loop.test", &["127.0.0.1"]),
            ("meta.test", &["169.254.169.254"]),
        ];
        let net = instance(policy(
            &[
                "https://api.test",
                "http://loop.test:8080",
                "http://127.0.0.1:9000",
                "http://meta.test",
                "*.wild.test",
            ],
            hosts,
        ));
        assert_eq!(
            net.http_targets(Scheme::Https, "api.test", 443)
                .await
                .unwrap(),
            vec![sa("93.184.216.34:443")]
        );
        assert!(matches!(
            net.http_targets(Scheme::Http, "api.test", 80).await,
            Err(NetworkError::NotGranted(_))
        ));
        assert!(
            net.http_targets(Scheme::Https, "api.test", 8443)
                .await
                .is_err()
        );
        assert!(
            net.http_targets(Scheme::Https, "other.test", 443)
                .await
                .is_err()
        );
        // A granted name resolving to loopback, without loopback granted.
        assert!(matches!(
            net.http_targets(Scheme::Http, "loop.test", 8080).await,
            Err(NetworkError::ResolvedForbidden { .. })
        ));
        assert!(matches!(
            net.http_targets(Scheme::Http, "meta.test", 80).await,
            Err(NetworkError::ResolvedForbidden { .. })
        ));
        assert_eq!(
            net.http_targets(Scheme::Http, "127.0.0.1", 9000)
                .await
                .unwrap(),
            vec![sa("127.0.0.1:9000")]
        );
        assert!(matches!(
            net.http_targets(Scheme::Http, "127.0.0.1", 9001).await,
            Err(NetworkError::NotGranted(_))
        ));
        assert!(net.http_targets(Scheme::Http, "[::1]", 9000).await.is_err());
        assert!(matches!(
            net.http_targets(Scheme::Https, "x.wild.test", 443).await,
            Err(NetworkError::LookupFailed { .. })
        ));
        // Sockets rules do not grant HTTP, and HTTP rules do not grant sockets.
        let tcp = instance(policy(&["tcp://127.0.0.1:80"], &[]));
        assert!(
            tcp.http_targets(Scheme::Http, "127.0.0.1", 80)
                .await
                .is_err()
        );
        assert!(
            net.check_socket(sa("127.0.0.1:9000"), SocketAddrUse::TcpConnect)
                .is_err()
        );
    }

    #[tokio::test]
    async fn localhost_resolves_without_dns() {
        let net = instance(policy(
            &["tcp://localhost:9000", "http://localhost:9000"],
            &[],
        ));
        let got = net.lookup("localhost").await.unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|ip| ip.is_loopback()));
        let http = net
            .http_targets(Scheme::Http, "localhost", 9000)
            .await
            .unwrap();
        assert_eq!(http[0], sa("127.0.0.1:9000"));
    }

    #[tokio::test]
    async fn remembered_addresses_are_capped() {
        let hosts: Vec<(String, Vec<IpAddr>)> = (0..MAX_RESOLVED + 10)
            .map(|i| {
                let ip = IpAddr::V4(Ipv4Addr::from(0x5db8_0000u32 + i as u32));
                (format!("h{i}.test"), vec![ip])
            })
            .collect();
        let p = NetworkPolicy::parse(&["tcp://*.test:1".to_string()])
            .unwrap()
            .with_static_hosts(hosts.iter().cloned().collect());
        let net = instance(Arc::new(p));
        for (name, _) in &hosts {
            net.lookup(name).await.unwrap();
        }
        assert_eq!(net.resolved.lock().unwrap().len(), MAX_RESOLVED);
        let last = hosts.last().unwrap().1[0];
        assert!(
            net.check_socket(SocketAddr::new(last, 1), SocketAddrUse::TcpConnect)
                .is_err()
        );
    }
}
