//! This host's own addresses: the LAN candidates a peer on the same network can reach directly.

use std::net::{IpAddr, SocketAddr};

/// Non-loopback, non-link-local addresses of every interface except `skip` (our own TUN),
/// paired with the daemon's UDP port.
pub fn lan_endpoints(port: u16, skip: &str) -> Vec<SocketAddr> {
    crate::platform::ifaddrs::list()
        .into_iter()
        .filter(|a| a.name != skip && usable(a.ip))
        .map(|a| SocketAddr::new(a.ip, port))
        .collect()
}

fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_loopback_and_link_local() {
        for (ip, ok) in [
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("10.0.0.1", true),
            ("::1", false),
            ("fe80::1", false),
            ("2001:db8::1", true),
        ] {
            assert_eq!(usable(ip.parse().unwrap()), ok, "{ip}");
        }
        // Whatever this host has, loopback never appears.
        assert!(lan_endpoints(1, "none")
            .iter()
            .all(|a| !a.ip().is_loopback()));
    }
}
