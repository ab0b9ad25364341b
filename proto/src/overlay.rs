//! The overlay address plan: IPv4 from the CGNAT range 100.64.0.0/10 (as Tailscale), IPv6 from a
//! Warren ULA /64. Without a coordinator a node's addresses are derived from its public key, so
//! two hosts that only know each other's keys agree on the addresses.

use crate::key::NodeKey;
use blake2::{Blake2s256, Digest};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const OVERLAY_V4: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 0), 10) {
    Ok(n) => n,
    Err(_) => panic!("bad constant"),
};

/// fd57:6172:7265:6e00::/64 — "Warren" in the ULA global ID and subnet.
pub const OVERLAY_V6: Ipv6Net = match Ipv6Net::new(
    Ipv6Addr::new(0xfd57, 0x6172, 0x7265, 0x6e00, 0, 0, 0, 0),
    64,
) {
    Ok(n) => n,
    Err(_) => panic!("bad constant"),
};

fn digest(domain: &[u8], key: &NodeKey) -> [u8; 32] {
    let mut h = Blake2s256::new();
    h.update(domain);
    h.update(key.0);
    h.finalize().into()
}

/// The IPv4 overlay address for a key: 22 hash bits inside 100.64.0.0/10, never the network or
/// broadcast address of the /10.
pub fn derive_v4(key: &NodeKey) -> Ipv4Addr {
    v4_from(&digest(b"warren overlay v4", key))
}

/// 22 bits of `d` as a host address of [`OVERLAY_V4`] (never its network or broadcast).
fn v4_from(d: &[u8; 32]) -> Ipv4Addr {
    let host_bits = 32 - OVERLAY_V4.prefix_len() as u32;
    let mask = (1u32 << host_bits) - 1;
    let mut host = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & mask;
    if host == 0 || host == mask {
        host = 1;
    }
    Ipv4Addr::from(u32::from(OVERLAY_V4.network()) | host)
}

/// The `attempt`-th IPv4 address a host tries when its earlier ones clashed with another
/// host's (attempt 0 is [`derive_v4`]): a fresh hash each time, so two hosts that clashed
/// once do not clash again.
pub fn derive_v4_attempt(key: &NodeKey, attempt: u32) -> Ipv4Addr {
    if attempt == 0 {
        return derive_v4(key);
    }
    let mut h = Blake2s256::new();
    h.update(b"warren overlay v4 attempt");
    h.update(attempt.to_be_bytes());
    h.update(key.0);
    v4_from(&h.finalize().into())
}

/// The IPv6 overlay address for a key: 64 hash bits inside [`OVERLAY_V6`].
pub fn derive_v6(key: &NodeKey) -> Ipv6Addr {
    let d = digest(b"warren overlay v6", key);
    let mut o = OVERLAY_V6.network().octets();
    o[8..16].copy_from_slice(&d[..8]);
    Ipv6Addr::from(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_addresses_are_inside_the_plan_and_stable() {
        for i in 0..200u8 {
            let k = NodeKey([i; 32]);
            let v4 = derive_v4(&k);
            assert!(OVERLAY_V4.contains(&v4));
            assert_ne!(v4, OVERLAY_V4.network());
            assert_ne!(v4, OVERLAY_V4.broadcast());
            assert!(OVERLAY_V6.contains(&derive_v6(&k)));
            assert_eq!(derive_v4(&k), v4);
        }
        assert_ne!(derive_v4(&NodeKey([1; 32])), derive_v4(&NodeKey([2; 32])));
    }

    #[test]
    fn attempts_give_fresh_addresses_inside_the_plan() {
        let k = NodeKey([9; 32]);
        assert_eq!(derive_v4_attempt(&k, 0), derive_v4(&k));
        let tried: std::collections::BTreeSet<_> =
            (0..50).map(|a| derive_v4_attempt(&k, a)).collect();
        assert_eq!(tried.len(), 50);
        assert!(tried.iter().all(|a| OVERLAY_V4.contains(a)));
    }
}
