//! Which router to ask: the IPv4 default gateway, and our own address as it sees us.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The default IPv4 gateway (from `/proc/net/route`) and the local address the kernel would
/// use to reach it; `None` without a default route.
pub fn default_v4() -> Option<(Ipv4Addr, Ipv4Addr)> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    let gateway = parse_default_route(&table)?;
    // A connected UDP socket sends nothing but tells which source address routing picks.
    let probe = UdpSocket::bind("0.0.0.0:0").ok()?;
    probe
        .connect(SocketAddr::new(IpAddr::V4(gateway), crab_nat::GATEWAY_PORT))
        .ok()?;
    match probe.local_addr().ok()?.ip() {
        IpAddr::V4(local) => Some((gateway, local)),
        IpAddr::V6(_) => None,
    }
}

/// The gateway of the first default route (destination 0, flag RTF_GATEWAY) in the kernel's
/// table, whose addresses are hexadecimal in host byte order.
fn parse_default_route(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags) = (f.get(1)?, f.get(2)?, f.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY {
            return None;
        }
        let gw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(u32::from_be(gw)))
    })
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
    fn finds_the_default_gateway() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(
            parse_default_route(table),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
        assert_eq!(parse_default_route("Iface\tDestination\n"), None);
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
