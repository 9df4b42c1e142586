//! Which addresses the server may connect to: every globally routable
//! address, and nothing else unless the operator allows it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Deserialize;

/// The operator's rules for outbound connections. The default allows
/// nothing beyond the public Internet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkPolicy {
    /// Non-public networks that may be reached anyway (self-hosted upstreams).
    /// An IPv6 form that embeds an IPv4 address (`::ffff:10.0.0.5`) is
    /// allowed when the IPv4 address inside is.
    pub allowed_networks: Vec<IpNet>,
    /// Loopback may be reached (tests; a hub calling a server on the same host).
    pub allow_loopback: bool,
}

/// An address the policy refuses, and the range it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedAddress {
    /// The address refused.
    pub addr: IpAddr,
    /// The range class: "loopback", "private", "link-local", …
    pub class: &'static str,
}

impl fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr, self.class)
    }
}

impl std::error::Error for BlockedAddress {}

impl NetworkPolicy {
    /// `Ok` when `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedAddress> {
        let Some(class) = special_class(ip) else {
            return Ok(());
        };
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .allowed_networks
            .iter()
            .any(|n| n.contains(&ip) || embedded.is_some_and(|v4| n.contains(&v4)));
        if allowed || (class == LOOPBACK && self.allow_loopback) {
            return Ok(());
        }
        Err(BlockedAddress { addr: ip, class })
    }
}

const LOOPBACK: &str = "loopback";

/// The class of a non-global address, or `None` for a globally routable
/// one. IPv6 forms that embed an IPv4 address (mapped, compatible,
/// translated, NAT64, 6to4) are judged by the IPv4 address inside.
pub fn special_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        // 0.0.0.0 reaches the local host on Linux; all of 0/8 is "this network".
        (0, _, _) => "unspecified",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "carrier-grade NAT",
        (127, _, _) => LOOPBACK,
        // Includes 169.254.169.254, the cloud metadata service.
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        _ if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address carries, for the forms that route to
/// it: mapped `::ffff:0:0/96`, compatible `::/96`, translated
/// `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some(LOOPBACK);
    }
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        let compatible = s[..6] == [0; 6];
        return match v4_class(v4) {
            Some(class) => Some(class),
            // ::a.b.c.d is deprecated (RFC 4291) and not routed anywhere.
            None if compatible => Some("IPv4-compatible (deprecated)"),
            None => None,
        };
    }
    Some(match s {
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0xdb8, ..] => "documentation",
        // 2001::/23, Teredo (2001::/32) included.
        [0x2001, b, ..] if b < 0x200 => "IETF protocol assignments",
        [0x3fff, b, ..] if b < 0x1000 => "documentation",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        // Only 2000::/3 is global unicast; the rest is reserved or unassigned.
        [a, ..] if a & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// Every refused class, both families, its edges included.
    #[test]
    fn every_non_global_range_is_refused_by_default() {
        let table = [
            // IPv4
            ("0.0.0.0", "unspecified"),
            ("0.255.255.255", "unspecified"),
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "link-local"),
            ("169.254.0.1", "link-local"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            // IPv6
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("3fff:fff::1", "documentation"),
            ("2001::1", "IETF protocol assignments"),
            ("2001:1ff::1", "IETF protocol assignments"),
            ("100::1", "discard-only"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
            ("5f00::1", "reserved"),
            ("4000::1", "reserved"),
            ("1::1", "reserved"),
            // IPv6 forms that carry an IPv4 address: judged by it.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::127.0.0.1", "loopback"),
            ("::10.1.2.3", "private"),
            ("::8.8.8.8", "IPv4-compatible (deprecated)"),
            ("::ffff:0:192.168.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("2002:a9fe:a9fe::", "link-local"),
        ];
        let strict = NetworkPolicy::default();
        for (addr, expected) in table {
            assert_eq!(special_class(ip(addr)), Some(expected), "{addr}");
            let err = strict.check(ip(addr)).unwrap_err();
            assert_eq!(err.class, expected, "{addr}");
            assert_eq!(err.addr, ip(addr));
        }
    }

    #[test]
    fn global_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "2001:200::1",
            "3fff:1000::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(special_class(ip(addr)), None, "{addr}");
            assert_eq!(NetworkPolicy::default().check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn the_message_names_address_and_class() {
        let err = NetworkPolicy::default().check(ip("10.0.0.5")).unwrap_err();
        assert_eq!(err.to_string(), "10.0.0.5 (private)");
    }

    #[test]
    fn allowed_networks_open_exactly_their_range() {
        let p = NetworkPolicy {
            allowed_networks: vec![net("10.0.0.0/24"), net("fd00:1::/64")],
            allow_loopback: false,
        };
        let table = [
            ("10.0.0.5", true),
            ("10.0.0.255", true),
            ("10.0.1.5", false),
            ("::ffff:10.0.0.5", true),
            ("64:ff9b::a00:5", true),
            ("::ffff:10.0.1.5", false),
            ("fd00:1::5", true),
            ("fd00:2::5", false),
            ("127.0.0.1", false),
            ("::1", false),
            ("169.254.169.254", false),
            ("8.8.8.8", true),
        ];
        for (addr, ok) in table {
            assert_eq!(p.check(ip(addr)).is_ok(), ok, "{addr}");
        }
    }

    #[test]
    fn loopback_only_by_its_switch_or_an_allowed_network() {
        let lo = NetworkPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        for (addr, ok) in [
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", false),
            ("169.254.169.254", false),
            ("0.0.0.0", false),
            ("::", false),
        ] {
            assert_eq!(lo.check(ip(addr)).is_ok(), ok, "{addr}");
        }
        let one = NetworkPolicy {
            allowed_networks: vec![net("127.0.0.2/32")],
            allow_loopback: false,
        };
        assert!(one.check(ip("127.0.0.2")).is_ok());
        assert_eq!(one.check(ip("127.0.0.1")).unwrap_err().class, "loopback");
    }

    #[test]
    fn deserializes_with_defaults() {
        let p: NetworkPolicy =
            serde_json::from_str(r#"{"allowed_networks": ["10.1.0.0/16"]}"#).unwrap();
        assert_eq!(p.allowed_networks, vec![net("10.1.0.0/16")]);
        assert!(!p.allow_loopback);
        let p: NetworkPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, NetworkPolicy::default());
        assert!(serde_json::from_str::<NetworkPolicy>(r#"{"allow_loopbak": true}"#).is_err());
    }
}
