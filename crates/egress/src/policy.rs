//! Which addresses the server may connect to: every globally routable
//! address, and nothing else unless the operator allows it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Deserialize;

/// The operator's rules for outbound connections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkPolicy {
    /// Private networks that may be reached anyway (self-hosted upstreams).
    pub allowed_networks: Vec<IpNet>,
    /// Loopback may be reached (tests; a hub calling a local server).
    pub allow_loopback: bool,
}

/// An address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{addr} is a {class} address")]
pub struct BlockedAddress {
    pub addr: IpAddr,
    pub class: &'static str,
}

impl NetworkPolicy {
    /// Ok when `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedAddress> {
        let Some(class) = special_class(ip) else {
            return Ok(());
        };
        if self.allowed_networks.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if class == "loopback" && self.allow_loopback {
            return Ok(());
        }
        Err(BlockedAddress { addr: ip, class })
    }
}

/// The class of a non-global address, or `None` for a global one. IPv6
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are
/// judged by the IPv4 address inside.
pub fn special_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private",
        (100, 64..=127, _) => "carrier-grade NAT",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, 16..=31, _) => "private",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "deprecated 6to4 relay",
        (192, 168, _) => "private",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let seg = ip.segments();
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4).or(None);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return Some(v4_class(v4).unwrap_or("IPv4-compatible"));
    }
    // NAT64 64:ff9b::/96 carries an IPv4 address in its last 32 bits.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return v4_class(v4);
    }
    // 6to4 2002::/16 carries an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return v4_class(v4);
    }
    Some(match seg[0] {
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        s if s & 0xfe00 == 0xfc00 => "unique local",
        s if s & 0xff00 == 0xff00 => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2001 if seg[1] < 0x0200 => "IETF protocol assignment",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        special_class(s.parse().unwrap())
    }

    #[test]
    fn every_non_global_range_is_classified() {
        let table = [
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("10.1.2.3", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "link-local"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.0.0.8", "IETF protocol assignment"),
            ("192.0.2.1", "documentation"),
            ("192.168.1.1", "private"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("100::1", "discard-only"),
        ];
        for (addr, expected) in table {
            assert_eq!(class(addr), Some(expected), "{addr}");
        }
    }

    #[test]
    fn global_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

    #[test]
    fn allow_list_and_loopback_switch() {
        let strict = NetworkPolicy::default();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let err = strict.check(ip).unwrap_err();
        assert_eq!(err.class, "private");
        assert_eq!(err.to_string(), "10.0.0.5 is a private address");
        let allowed = NetworkPolicy {
            allowed_networks: vec!["10.0.0.0/24".parse().unwrap()],
            allow_loopback: false,
        };
        assert!(allowed.check(ip).is_ok());
        assert!(allowed.check("10.0.1.5".parse().unwrap()).is_err());
        assert!(allowed.check("127.0.0.1".parse().unwrap()).is_err());
        let lo = NetworkPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert!(lo.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(lo.check("::1".parse().unwrap()).is_ok());
        assert!(lo.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(lo.check("169.254.169.254".parse().unwrap()).is_err());
        assert!(strict.check("93.184.216.34".parse().unwrap()).is_ok());
    }
}
