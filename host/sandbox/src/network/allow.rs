//! Network grant entries: the allow-list vocabulary of Spin's
//! `allowed_outbound_hosts`, parsed and checked.
//!
//! An entry is `scheme://host[:port]`:
//!
//! * scheme: `tcp`, `udp` (`wasi:sockets`), `http`, `https` (`wasi:http`
//!   outgoing requests), or `*` (all four);
//! * host: an IP address (`127.0.0.1`, `[::1]`), a network in CIDR notation
//!   (`10.0.0.0/8`, `[fd00::/8]`), an exact DNS name (`api.example.com`), a
//!   wildcard `*.example.com` (every name below `example.com`, not
//!   `example.com` itself), `localhost` (the loopback addresses, never looked
//!   up), or `*` (any name and any public address);
//! * port: a number, `*` (any port), or omitted for the scheme's default
//!   (`http` 80, `https` 443; `tcp`, `udp` and `*` have none and need one).
//!
//! An entry without a scheme (`*.example.com`, `api.example.com:8443`) means
//! `http` and `https`, each on its default port unless a port is given.
//! Paths, user names, queries and port ranges are refused. Errors name the
//! entry and say what is wrong with it.

use super::ranges::{Cidr, canonical};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// A network grant entry that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network grant {entry:?}: {reason}")]
pub struct GrantError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a rule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TCP connections through `wasi:sockets`.
    Tcp,
    /// UDP datagrams through `wasi:sockets`.
    Udp,
    /// Plain HTTP requests through `wasi:http`.
    Http,
    /// HTTPS requests through `wasi:http`.
    Https,
    /// All of the above.
    Any,
}

impl Scheme {
    /// True if a rule for `self` allows a use of `other` (never [`Scheme::Any`]).
    pub fn covers(self, other: Scheme) -> bool {
        self == Scheme::Any || self == other
    }

    /// True for the socket schemes (`tcp`, `udp`, `*`).
    pub fn is_socket(self) -> bool {
        matches!(self, Scheme::Tcp | Scheme::Udp | Scheme::Any)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Tcp => "tcp",
            Scheme::Udp => "udp",
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Any => "*",
        })
    }
}

/// Which hosts a rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any name, and any address outside the forbidden ranges.
    Any,
    /// An address or network; reaches forbidden addresses inside it only if
    /// it lies entirely in their range (see [`super::ranges::reaches`]).
    Net(Cidr),
    /// `localhost`: the loopback addresses, without a DNS lookup.
    Localhost,
    /// One DNS name (lowercase, no trailing dot).
    Name(String),
    /// `*.suffix`: every name that ends with `.suffix`.
    Subdomains(String),
}

impl HostPattern {
    /// True if the name `name` (normalised, see [`normalize_name`]) is one
    /// this pattern allows looking up.
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Net(_) => false,
            HostPattern::Localhost => name == "localhost",
            HostPattern::Name(n) => n == name,
            HostPattern::Subdomains(s) => name
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// Which ports a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// `*`.
    Any,
    /// One port.
    Port(u16),
}

impl PortPattern {
    /// True if `port` is allowed.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Port(p) => p == port,
        }
    }
}

/// One allow rule: a scheme, a host pattern and a port pattern. An entry
/// yields one rule, or two for an entry without a scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    /// What the rule is for.
    pub scheme: Scheme,
    /// Which hosts.
    pub host: HostPattern,
    /// Which ports.
    pub port: PortPattern,
    /// The entry it came from, for messages.
    pub entry: Arc<str>,
}

/// Parses one grant entry into its rules.
pub fn parse_entry(entry: &str) -> Result<Vec<AllowRule>, GrantError> {
    let err = |reason: String| GrantError {
        entry: entry.to_string(),
        reason,
    };
    let text = entry.trim();
    if text.is_empty() {
        return Err(err("the entry is empty".into()));
    }
    let (schemes, rest): (Vec<Scheme>, &str) = match text.split_once("://") {
        Some((s, rest)) => {
            let scheme = match s.to_ascii_lowercase().as_str() {
                "tcp" => Scheme::Tcp,
                "udp" => Scheme::Udp,
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                "*" => Scheme::Any,
                _ => {
                    return Err(err(format!(
                        "unknown scheme `{s}` (expected tcp, udp, http, https or *)"
                    )));
                }
            };
            (vec![scheme], rest)
        }
        None => (vec![Scheme::Http, Scheme::Https], text),
    };
    let (host, port) = split_host_port(rest).map_err(err)?;
    let host = parse_host(host).map_err(err)?;
    let entry: Arc<str> = Arc::from(text);
    schemes
        .into_iter()
        .map(|scheme| {
            let port = match port {
                Some("*") => PortPattern::Any,
                Some(p) => PortPattern::Port(parse_port(p).map_err(err)?),
                None => match scheme {
                    Scheme::Http => PortPattern::Port(80),
                    Scheme::Https => PortPattern::Port(443),
                    _ => {
                        return Err(err(format!(
                            "`{scheme}` entries need a port, e.g. `{scheme}://{host_text}:5432` or `{scheme}://{host_text}:*`",
                            host_text = rest
                        )));
                    }
                },
            };
            Ok(AllowRule {
                scheme,
                host: host.clone(),
                port,
                entry: entry.clone(),
            })
        })
        .collect()
}

/// Splits `host[:port]`, with IPv6 hosts in brackets.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.contains(['@', '?', '#']) {
        return Err(
            "entries name a scheme, a host and a port only (no user, query or fragment)".into(),
        );
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("an opening `[` without its closing `]`")?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!(
                    "unexpected `{after}` after `[{host}]` (expected `:port`)"
                )),
            },
        };
    }
    match rest.matches(':').count() {
        0 => Ok((rest, None)),
        1 => {
            let (h, p) = rest.split_once(':').expect("one colon");
            Ok((h, Some(p)))
        }
        _ => Err("IPv6 addresses and networks go in brackets, e.g. `tcp://[::1]:5432`".into()),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port a provider can reach".into()),
        Ok(n) => Ok(n),
        Err(_) if p.contains('/') => {
            Err(format!("`{p}` is not a port; entries cannot contain paths"))
        }
        Err(_) if p.contains('-') || p.contains("..") => Err(format!(
            "`{p}`: port ranges are not supported; give one port or `*`"
        )),
        Err(_) => Err(format!("`{p}` is not a port (1 to 65535, or `*`)")),
    }
}

fn parse_host(h: &str) -> Result<HostPattern, String> {
    if h.is_empty() {
        return Err("the host is missing".into());
    }
    if h == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(HostPattern::Net(Cidr::host(ip)));
    }
    if let Some((addr, _)) = h.split_once('/') {
        if addr.parse::<IpAddr>().is_err() {
            return Err(format!("`{h}`: entries cannot contain paths"));
        }
        return Cidr::parse(h).map(HostPattern::Net);
    }
    if let Some(suffix) = h.strip_prefix("*.") {
        let suffix = normalize_name(suffix).map_err(|e| format!("wildcard `{h}`: {e}"))?;
        return Ok(HostPattern::Subdomains(suffix));
    }
    let name = normalize_name(h)?;
    if name == "localhost" {
        return Ok(HostPattern::Localhost);
    }
    Ok(HostPattern::Name(name))
}

/// Normalises a DNS name for matching: ASCII letters, digits and hyphens in
/// dot-separated labels of 1 to 63 characters, at most 253 in all; lowercase;
/// one trailing dot dropped. The last label must start with a letter, so
/// numeric and hexadecimal address forms (`127.1`, `0x7f.1`) that resolvers
/// turn into addresses are not names. Non-ASCII names must be given in their
/// `xn--` form.
pub fn normalize_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(format!("`{name}` is not a DNS name (1 to 253 characters)"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "`{name}` is not a DNS name (labels of letters, digits and inner hyphens; \
                 wildcards only as a leading `*.`; non-ASCII names in their xn-- form)"
            ));
        }
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{name}` is neither an IP address nor a DNS name (its last label must start with a letter)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Parses an address a guest asked for (`1.2.3.4`, `::1`, `[::1]`), canonicalised.
pub fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(entry: &str) -> AllowRule {
        let mut r = parse_entry(entry).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.len(), 1, "{entry}");
        r.remove(0)
    }

    fn net(s: &str) -> HostPattern {
        HostPattern::Net(Cidr::parse(s).unwrap())
    }

    #[test]
    fn parses_the_documented_forms() {
        let r = one("tcp://127.0.0.1:5432");
        assert_eq!(r.scheme, Scheme::Tcp);
        assert_eq!(r.host, net("127.0.0.1/32"));
        assert_eq!(r.port, PortPattern::Port(5432));
        assert_eq!(&*r.entry, "tcp://127.0.0.1:5432");

        let r = one("https://api.example.com");
        assert_eq!(
            (r.scheme, r.host, r.port),
            (
                Scheme::Https,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Port(443)
            )
        );
        let r = one("http://localhost:9000");
        assert_eq!(
            (r.host, r.port),
            (HostPattern::Localhost, PortPattern::Port(9000))
        );
        let r = one("tcp://10.0.0.0/8:6379");
        assert_eq!(
            (r.host, r.port),
            (net("10.0.0.0/8"), PortPattern::Port(6379))
        );
        let r = one("udp://[::1]:53");
        assert_eq!((r.scheme, r.host), (Scheme::Udp, net("::1/128")));
        let r = one("tcp://[fd00::/8]:*");
        assert_eq!((r.host, r.port), (net("fd00::/8"), PortPattern::Any));
        let r = one("*://*:*");
        assert_eq!(
            (r.scheme, r.host, r.port),
            (Scheme::Any, HostPattern::Any, PortPattern::Any)
        );
        let r = one("HTTPS://API.Example.COM.");
        assert_eq!(r.host, HostPattern::Name("api.example.com".into()));
        let r = one("tcp://[::ffff:10.0.0.1]:1");
        assert_eq!(
            r.host,
            net("10.0.0.1/32"),
            "IPv4-mapped is the IPv4 address"
        );

        let bare = parse_entry("*.example.com").unwrap();
        assert_eq!(bare.len(), 2);
        assert_eq!(
            (bare[0].scheme, bare[0].port),
            (Scheme::Http, PortPattern::Port(80))
        );
        assert_eq!(
            (bare[1].scheme, bare[1].port),
            (Scheme::Https, PortPattern::Port(443))
        );
        assert_eq!(bare[0].host, HostPattern::Subdomains("example.com".into()));
        let bare = parse_entry("api.example.com:8443").unwrap();
        assert!(bare.iter().all(|r| r.port == PortPattern::Port(8443)));
    }

    #[test]
    fn refuses_with_the_entry_named() {
        let e = |entry: &str| parse_entry(entry).unwrap_err();
        for (entry, says) in [
            ("", "empty"),
            ("ftp://example.com:21", "unknown scheme `ftp`"),
            ("tcp://example.com", "need a port"),
            ("*://example.com", "need a port"),
            ("tcp://::1:5432", "brackets"),
            ("https://api.example.com/v1", "paths"),
            ("https://api.example.com:443/v1", "paths"),
            ("https://user@api.example.com", "no user"),
            ("tcp://10.0.0.1/8:6379", "10.0.0.0/8"),
            ("tcp://10.0.0.0/40:1", "over 32"),
            ("tcp://db:0", "port 0"),
            ("tcp://db:70000", "not a port"),
            ("tcp://db:8000-9000", "ranges"),
            ("tcp://exa_mple.com:1", "not a DNS name"),
            ("tcp://foo.*.com:1", "not a DNS name"),
            ("tcp://127.1:1", "last label"),
            ("tcp://0x7f.1:1", "last label"),
            ("tcp://[::1:5432", "closing"),
            ("tcp://[::1]x:1", "expected `:port`"),
            ("tcp://bücher.example:1", "xn--"),
        ] {
            let err = e(entry);
            assert_eq!(err.entry, entry);
            let msg = err.to_string();
            assert!(msg.contains(says), "{entry}: {msg}");
            assert!(msg.contains(&format!("{entry:?}")), "{msg}");
        }
    }

    #[test]
    fn name_patterns() {
        let sub = HostPattern::Subdomains("example.com".into());
        assert!(sub.matches_name("a.example.com"));
        assert!(sub.matches_name("a.b.example.com"));
        assert!(!sub.matches_name("example.com"));
        assert!(!sub.matches_name("badexample.com"));
        assert!(!sub.matches_name("example.com.evil"));
        assert!(HostPattern::Localhost.matches_name("localhost"));
        assert!(!HostPattern::Name("a.b".into()).matches_name("x.a.b"));
        assert!(!net("127.0.0.1/32").matches_name("localhost"));
        assert_eq!(parse_ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(
            parse_ip_literal("::ffff:127.0.0.1"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_ip_literal("example.com"), None);
    }
}
