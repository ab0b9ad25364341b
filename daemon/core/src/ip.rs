//! Just enough IP header parsing to route a packet: version, source and destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const V4_MIN: usize = 20;
const V6_MIN: usize = 40;

/// Destination address of an IPv4 or IPv6 packet, or `None` if the header is truncated or the
/// version is neither.
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= V4_MIN => Some(IpAddr::V4(v4_at(packet, 16))),
        6 if packet.len() >= V6_MIN => Some(IpAddr::V6(v6_at(packet, 24))),
        _ => None,
    }
}

/// Source address of an IPv4 or IPv6 packet.
pub fn source(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= V4_MIN => Some(IpAddr::V4(v4_at(packet, 12))),
        6 if packet.len() >= V6_MIN => Some(IpAddr::V6(v6_at(packet, 8))),
        _ => None,
    }
}

fn v4_at(p: &[u8], off: usize) -> Ipv4Addr {
    Ipv4Addr::new(p[off], p[off + 1], p[off + 2], p[off + 3])
}

fn v6_at(p: &[u8], off: usize) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b.copy_from_slice(&p[off..off + 16]);
    Ipv6Addr::from(b)
}

#[cfg(test)]
pub(crate) mod testpkt {
    //! Minimal packet builders for tests.
    use std::net::Ipv4Addr;

    /// An IPv4/UDP packet with a correct total-length field (checksums are not needed here).
    pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p[28..].copy_from_slice(payload);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_addresses() {
        let p = testpkt::ipv4_udp([1, 2, 3, 4].into(), [5, 6, 7, 8].into(), b"x");
        assert_eq!(source(&p), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(destination(&p), Some("5.6.7.8".parse().unwrap()));

        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[8..24].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        v6[24..40].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(source(&v6), Some("fd00::1".parse().unwrap()));
        assert_eq!(destination(&v6), Some("fd00::2".parse().unwrap()));
    }

    #[test]
    fn truncated_or_unknown_versions() {
        assert_eq!(destination(&[]), None);
        assert_eq!(destination(&[0x45; 19]), None);
        assert_eq!(destination(&[0x60; 39]), None);
        assert_eq!(destination(&[0x50; 60]), None);
        assert_eq!(source(&[0x45; 19]), None);
    }
}
