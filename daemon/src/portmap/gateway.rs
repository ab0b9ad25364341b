//! Which router to ask: the IPv4 default gateway, and our own address as it sees us.

use crate::platform;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The default IPv4 gateway (from the system's routing table, `platform::gateway`) and the
/// local address the system would use to reach it; `None` without a default route.
pub fn default_v4() -> Option<(Ipv4Addr, Ipv4Addr)> {
    let gateway = platform::gateway::default_v4()?;
    Some((gateway, source_for(gateway)?))
}

/// The local address routing picks to reach `gateway`: a connected UDP socket sends nothing
/// but tells.
fn source_for(gateway: Ipv4Addr) -> Option<Ipv4Addr> {
    let probe = UdpSocket::bind("0.0.0.0:0").ok()?;
    probe
        .connect(SocketAddr::new(IpAddr::V4(gateway), crab_nat::GATEWAY_PORT))
        .ok()?;
    match probe.local_addr().ok()?.ip() {
        IpAddr::V4(local) => Some(local),
        IpAddr::V6(_) => None,
    }
}

/// An external address a peer elsewhere could reach: not a private, shared (carrier-grade
/// NAT), loopback, link-local or unspecified one. A router behind another NAT hands out
/// mappings on such an address, and they are useless to peers.
pub fn usable_external(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            !(v4.is_private()
                || shared
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => !(v6.is_loopback() || v6.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_route_comes_with_the_address_that_reaches_it() {
        // Without a default route (a bare CI box, Wine) there is nothing to check but that
        // asking does not fail.
        if let Some((gateway, local)) = default_v4() {
            assert!(!gateway.is_unspecified(), "{gateway}");
            assert!(!local.is_unspecified(), "{local} for {gateway}");
        }
    }

    #[test]
    fn the_source_for_loopback_is_loopback() {
        assert_eq!(source_for(Ipv4Addr::LOCALHOST), Some(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn private_and_shared_external_addresses_are_useless() {
        for (ip, ok) in [
            ("198.20.0.2", true),
            ("192.168.1.1", false),
            ("10.1.2.3", false),
            ("100.100.1.1", false),
            ("100.128.0.1", true),
            ("0.0.0.0", false),
        ] {
            assert_eq!(usable_external(ip.parse().unwrap()), ok, "{ip}");
        }
    }
}
