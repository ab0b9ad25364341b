//! This host's interface addresses, from `getifaddrs`.

use crate::platform::IfAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every IPv4 and IPv6 address of every interface (empty when the kernel will not say).
pub fn list() -> Vec<IfAddr> {
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
            let v4 = |sa: *const libc::sockaddr| {
                let sa = &*(sa as *const libc::sockaddr_in);
                Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))
            };
            let ip = match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => IpAddr::V4(v4(ifa.ifa_addr)),
                libc::AF_INET6 => {
                    let sa = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            let has_broadcast = ifa.ifa_flags & libc::IFF_BROADCAST as u32 != 0;
            let broadcast = (ip.is_ipv4() && has_broadcast && !ifa.ifa_ifu.is_null())
                .then(|| v4(ifa.ifa_ifu))
                .filter(|b| !b.is_unspecified());
            let prefix_len = (!ifa.ifa_netmask.is_null()).then(|| {
                let mask = &*ifa.ifa_netmask;
                match mask.sa_family as i32 {
                    libc::AF_INET6 => {
                        let sa = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                        sa.sin6_addr
                            .s6_addr
                            .iter()
                            .map(|b| b.count_ones())
                            .sum::<u32>() as u8
                    }
                    // Some kernels leave the family of an IPv4 netmask unset.
                    _ => v4(ifa.ifa_netmask).to_bits().count_ones() as u8,
                }
            });
            out.push(IfAddr {
                name: std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned(),
                ip,
                broadcast,
                prefix_len,
            });
        }
        libc::freeifaddrs(ifap);
    }
    out
}
