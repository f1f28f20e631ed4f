//! Which IP addresses are public: the SSRF guard's one question.
//!
//! Refused: every row of IANA's IPv4 and IPv6 Special-Purpose Address Registries (snapshot of
//! 2025-10-09), even the few marked globally reachable (anycast relays nobody posts webhooks to),
//! plus IPv4 multicast, IPv6 multicast and site-local, and every IPv6 address outside the global
//! unicast block `2000::/3`.
//!
//! IPv6 forms that reach an IPv4 host (IPv4-mapped `::ffff:a.b.c.d`, SIIT-translated
//! `::ffff:0:a.b.c.d` and the NAT64 well-known prefix `64:ff9b::a.b.c.d`) are judged by that
//! IPv4 address: `[::ffff:127.0.0.1]` and `[64:ff9b::7f00:1]` are loopback. NAT64 stays usable for
//! public receivers, which is how an IPv6-only host behind DNS64 reaches an IPv4-only one. Forms
//! that go through a relay or a translator the gateway does not control (IPv4-compatible `::/96`,
//! 6to4 `2002::/16`, Teredo `2001::/32`, local-use NAT64 `64:ff9b:1::/48`) are refused whole,
//! whatever they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// IPv4 blocks that are never a webhook target: the special-purpose registry, multicast.
const V4_REFUSED: &[(&str, u8)] = &[
    ("0.0.0.0", 8),       // "this network"
    ("10.0.0.0", 8),      // private use
    ("100.64.0.0", 10),   // shared address space (CGNAT)
    ("127.0.0.0", 8),     // loopback
    ("169.254.0.0", 16),  // link local (cloud metadata services live here)
    ("172.16.0.0", 12),   // private use
    ("192.0.0.0", 24),    // IETF protocol assignments (incl. PCP, TURN, NAT64 discovery)
    ("192.0.2.0", 24),    // documentation (TEST-NET-1)
    ("192.31.196.0", 24), // AS112-v4
    ("192.52.193.0", 24), // AMT
    ("192.88.99.0", 24),  // deprecated 6to4 relay anycast, 6a44
    ("192.168.0.0", 16),  // private use
    ("192.175.48.0", 24), // direct delegation AS112
    ("198.18.0.0", 15),   // benchmarking
    ("198.51.100.0", 24), // documentation (TEST-NET-2)
    ("203.0.113.0", 24),  // documentation (TEST-NET-3)
    ("224.0.0.0", 4),     // multicast
    ("240.0.0.0", 4),     // reserved, and the limited broadcast address
];

/// IPv6 blocks inside `2000::/3` that are never a webhook target (everything outside it is
/// refused anyway, but for the IPv4-reaching forms above).
const V6_REFUSED: &[(&str, u8)] = &[
    ("2001::", 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID, AMT, ...
    ("2001:db8::", 32), // documentation
    ("2002::", 16), // 6to4
    ("2620:4f:8000::", 48), // direct delegation AS112
    ("3fff::", 20), // documentation
];

/// A block as a prefix of the address's bits (IPv4 addresses as the low 32 bits).
struct Block {
    bits: u128,
    mask: u128,
}

impl Block {
    fn contains(&self, bits: u128) -> bool {
        bits & self.mask == self.bits
    }
}

fn blocks(table: &[(&str, u8)]) -> Vec<Block> {
    table
        .iter()
        .map(|(address, len)| {
            let (bits, width) = match address.parse::<IpAddr>().expect("a valid block") {
                IpAddr::V4(v4) => (u128::from(v4.to_bits()), 32),
                IpAddr::V6(v6) => (v6.to_bits(), 128),
            };
            let ones = u128::MAX.checked_shr(128 - u32::from(*len)).unwrap_or(0);
            let mask = ones << (width - u32::from(*len));
            Block {
                bits: bits & mask,
                mask,
            }
        })
        .collect()
}

static V4_BLOCKS: LazyLock<Vec<Block>> = LazyLock::new(|| blocks(V4_REFUSED));
static V6_BLOCKS: LazyLock<Vec<Block>> = LazyLock::new(|| blocks(V6_REFUSED));

/// Whether a webhook may be delivered to `ip` (without `webhook_allow_private`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match reached_ipv4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u128::from(ip.to_bits());
    !V4_BLOCKS.iter().any(|b| b.contains(bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = ip.to_bits();
    let global_unicast = bits >> 125 == 0b001;
    global_unicast && !V6_BLOCKS.iter().any(|b| b.contains(bits))
}

/// The IPv4 host an IPv6 address stands for, in the forms that reach one directly: IPv4-mapped
/// (`::ffff:0:0/96`), SIIT-translated (`::ffff:0:0:0/96`), NAT64 well-known (`64:ff9b::/96`).
fn reached_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    const MAPPED: u128 = 0xffff;
    const TRANSLATED: u128 = 0xffff_0000;
    const NAT64: u128 = 0x0064_ff9b_0000_0000_0000_0000;
    let bits = ip.to_bits();
    let prefix = bits >> 32;
    matches!(prefix, MAPPED | TRANSLATED | NAT64).then(|| Ipv4Addr::from_bits(bits as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().expect(ip))
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.9",
            "192.88.99.1",
            "198.19.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "100:0:0:1::1",
            "5f00::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "2620:4f:8000::1",
            // the attack review (docs/security.md): IPv6 forms of loopback
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "64:ff9b:1::808:808",
            // forms that embed a public address but go through relays
            "::8.8.8.8",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
    }

    /// Cross-check with an independent copy of the registries (the `iprfc` crate, generated
    /// from IANA's XML): the first and last address of every row, plus IPv4 multicast (RFC
    /// 3171) and RFC 4291's IPv6 blocks (IPv4-compatible, site-local, multicast...).
    #[test]
    fn every_registry_row_is_refused() {
        let rows = [iprfc::RFC6890, iprfc::RFC3171, iprfc::RFC4291];
        let nets: Vec<_> = rows.iter().flat_map(|rfc| rfc.ip_nets()).collect();
        assert!(nets.len() > 50, "the registries have {} rows", nets.len());
        for net in nets {
            for ip in [net.network(), net.broadcast()] {
                assert!(!is_public(ip), "{ip} (in {net}) must be refused");
            }
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "2a00:1450:4001:830::200e",
            // IPv4 hosts reached through IPv6 forms that lead straight to them
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }
}
