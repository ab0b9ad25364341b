//! This host's own addresses: the LAN candidates a peer on the same network can reach directly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Non-loopback, non-link-local addresses of every interface except `skip` (our own TUN),
/// paired with the daemon's UDP port.
pub fn lan_endpoints(port: u16, skip: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            if name == skip {
                continue;
            }
            let ip = match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            if usable(ip) {
                out.push(SocketAddr::new(ip, port));
            }
        }
        libc::freeifaddrs(ifap);
    }
    out
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
