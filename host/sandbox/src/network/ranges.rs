//! Address networks (CIDR) and the ranges a provider never reaches unless a
//! grant names them explicitly.
//!
//! Forbidden by default: everything that is not a public unicast address —
//! loopback, private (RFC 1918, unique local), link-local and the cloud
//! metadata endpoints inside it, shared address space (CGNAT), unspecified,
//! multicast, reserved and special-purpose blocks. A grant opens a forbidden
//! address only when its host is an address or network that lies entirely
//! inside the forbidden range containing that address (`tcp://10.0.0.0/8:6379`
//! opens 10/8; `tcp://0.0.0.0/0:443` opens no private address), or when it is
//! `localhost` (the loopback addresses). The metadata endpoints are ranges of
//! their own, so only a grant of exactly that address opens them.
//!
//! Addresses are compared in canonical form: an IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`) and a NAT64 address (`64:ff9b::10.0.0.1`) are the IPv4
//! address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: an address and a prefix length, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// The network `addr/len`, or `None` if `len` is too long for the family
    /// or `addr` has bits set below the prefix.
    pub fn new(addr: IpAddr, len: u8) -> Option<Cidr> {
        let c = Cidr { addr, len };
        (len <= c.max_len() && c.mask(addr) == Some(bits(addr))).then_some(c)
    }

    /// The network holding exactly `addr` (canonicalised).
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = canonical(addr);
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, len }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Parses `addr/len` (IPv6 without brackets). IPv4-mapped IPv6 networks
    /// are refused: write the IPv4 network.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not in CIDR notation (address/length)"))?;
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` in `{s}` is not an IP address"))?;
        if let IpAddr::V6(v6) = addr
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(format!(
                "`{s}` is an IPv4-mapped IPv6 network; write the IPv4 network instead"
            ));
        }
        let len: u8 = l
            .parse()
            .map_err(|_| format!("prefix length `{l}` in `{s}` is not a number"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("prefix length {len} in `{s}` is over {max}"));
        }
        Cidr::new(addr, len).ok_or_else(|| {
            let net = Cidr::masked(addr, len);
            format!("`{s}` has bits set after the prefix; the network is `{net}`")
        })
    }

    /// The network of `len` bits containing `addr`.
    fn masked(addr: IpAddr, len: u8) -> Cidr {
        let b = bits(addr) & prefix_mask(addr, len);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(b as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(b)),
        };
        Cidr { addr, len }
    }

    fn max_len(&self) -> u8 {
        if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// `ip`'s bits under this network's mask, if the families match.
    fn mask(&self, ip: IpAddr) -> Option<u128> {
        (ip.is_ipv4() == self.addr.is_ipv4()).then(|| bits(ip) & prefix_mask(ip, self.len))
    }

    /// True if `ip` (canonicalised) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.mask(canonical(ip)) == Some(bits(self.addr))
    }

    /// True if every address of `self` is in `other`.
    pub fn is_within(&self, other: &Cidr) -> bool {
        self.len >= other.len && other.contains(self.addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn prefix_mask(ip: IpAddr, len: u8) -> u128 {
    let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let len = u32::from(len).min(width);
    if len == 0 {
        return 0;
    }
    let ones = if len == 128 {
        u128::MAX
    } else {
        (1u128 << len) - 1
    };
    ones << (width - len)
}

/// The address `ip` stands for: IPv4-mapped (`::ffff:a.b.c.d`) and NAT64
/// (`64:ff9b::a.b.c.d`) IPv6 addresses become the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// A range providers do not reach by default.
#[derive(Debug, PartialEq, Eq)]
pub struct Range {
    /// The network.
    pub cidr: Cidr,
    /// What it is, for messages ("private", "loopback", …).
    pub what: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, what: &'static str) -> Range {
    Range {
        cidr: Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            len,
        },
        what,
    }
}

const fn v6(segments: [u16; 8], len: u8, what: &'static str) -> Range {
    let [a, b, c, d, e, f, g, h] = segments;
    Range {
        cidr: Cidr {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            len,
        },
        what,
    }
}

/// Every forbidden range. Where ranges nest, the most specific one decides
/// (see [`forbidden_range`]).
pub const FORBIDDEN: &[Range] = &[
    v4(0, 0, 0, 0, 8, "unspecified (\"this network\")"),
    v4(10, 0, 0, 0, 8, "private"),
    v4(100, 64, 0, 0, 10, "shared address space (CGNAT)"),
    v4(100, 100, 100, 200, 32, "cloud metadata"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(169, 254, 169, 254, 32, "cloud metadata"),
    v4(172, 16, 0, 0, 12, "private"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments"),
    v4(192, 168, 0, 0, 16, "private"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved and broadcast"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible (deprecated)"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "private (unique local)"),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, "cloud metadata"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

/// The most specific forbidden range holding `ip` (canonicalised), if any.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static Range> {
    let ip = canonical(ip);
    FORBIDDEN
        .iter()
        .filter(|r| r.cidr.contains(ip))
        .max_by_key(|r| r.cidr.len)
}

/// True if a grant of `net` reaches `ip`: `ip` is in `net`, and if `ip` is
/// forbidden, `net` lies entirely inside the range that forbids it.
pub fn reaches(net: &Cidr, ip: IpAddr) -> bool {
    net.contains(ip) && forbidden_range(ip).is_none_or(|r| net.is_within(&r.cidr))
}

/// True for the loopback addresses (`127.0.0.0/8`, `::1`), what `localhost`
/// stands for.
pub fn is_loopback(ip: IpAddr) -> bool {
    canonical(ip).is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parse_contains_within() {
        let ten = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains(ip("10.1.2.3")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("::1")));
        assert!(Cidr::parse("10.1.0.0/16").unwrap().is_within(&ten));
        assert!(!Cidr::parse("10.0.0.0/7").unwrap().is_within(&ten));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")) && all.prefix_len() == 0);
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));

        let e = Cidr::parse("10.0.0.1/8").unwrap_err();
        assert!(e.contains("10.0.0.0/8"), "{e}");
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("over 32"));
        assert!(Cidr::parse("::ffff:10.0.0.0/104").is_err());
        assert!(Cidr::parse("example.com/8").is_err());
    }

    #[test]
    fn ranges_classify() {
        let what = |s: &str| forbidden_range(ip(s)).map(|r| r.what);
        assert_eq!(what("10.2.3.4"), Some("private"));
        assert_eq!(what("172.31.0.1"), Some("private"));
        assert_eq!(what("172.32.0.1"), None);
        assert_eq!(what("192.168.1.1"), Some("private"));
        assert_eq!(what("127.0.0.1"), Some("loopback"));
        assert_eq!(what("::1"), Some("loopback"));
        assert_eq!(what("169.254.1.1"), Some("link-local"));
        assert_eq!(what("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(what("fd00:ec2::254"), Some("cloud metadata"));
        assert_eq!(what("fe80::1"), Some("link-local"));
        assert_eq!(what("fc00::1"), Some("private (unique local)"));
        assert_eq!(what("100.64.0.1"), Some("shared address space (CGNAT)"));
        assert_eq!(what("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(what("::"), Some("unspecified"));
        assert_eq!(what("255.255.255.255"), Some("reserved and broadcast"));
        assert_eq!(what("224.0.0.1"), Some("multicast"));
        assert_eq!(what("::ffff:127.0.0.1"), Some("loopback"), "mapped back");
        assert_eq!(what("64:ff9b::a9fe:a9fe"), Some("cloud metadata"), "NAT64");
        assert_eq!(what("64:ff9b::808:808"), None, "NAT64 of a public address");
        assert_eq!(what("8.8.8.8"), None);
        assert_eq!(what("2606:4700::1111"), None);
    }

    #[test]
    fn only_a_grant_inside_the_range_reaches_it() {
        let net = |s: &str| Cidr::parse(s).unwrap();
        assert!(reaches(&net("10.0.0.0/8"), ip("10.9.9.9")));
        assert!(reaches(&Cidr::host(ip("127.0.0.1")), ip("127.0.0.1")));
        assert!(!reaches(&net("0.0.0.0/0"), ip("10.9.9.9")));
        assert!(reaches(&net("0.0.0.0/0"), ip("8.8.8.8")));
        assert!(!reaches(&net("10.0.0.0/7"), ip("10.9.9.9")));
        // Metadata is a range of its own: link-local /16 does not open it.
        assert!(reaches(&net("169.254.0.0/16"), ip("169.254.1.1")));
        assert!(!reaches(&net("169.254.0.0/16"), ip("169.254.169.254")));
        assert!(reaches(
            &Cidr::host(ip("169.254.169.254")),
            ip("169.254.169.254")
        ));
        assert!(!reaches(&net("::/0"), ip("::1")));
        assert!(is_loopback(ip("127.5.5.5")) && is_loopback(ip("::ffff:127.0.0.1")));
        assert!(!is_loopback(ip("10.0.0.1")));
    }
}
